/* Number tokens (jdec_num.h). */
#include "jdec_num.h"

#include <stdlib.h>
#include <string.h>

#include "jdec_pow5.h"

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Eisel-Lemire: w * 10^q (w exact, at most 19 digits) correctly rounded
 * from a 128-bit approximation of 5^q; false when the approximation cannot
 * decide (then strtod does), and for subnormals, which are rare enough to
 * leave to strtod. */
static bool eisel_lemire(uint64_t w, int64_t q, bool neg, double *out)
{
    if (w == 0 || q < -342 || q > 308) return false;
    int lz = __builtin_clzll(w);
    w <<= lz;
    const uint64_t *p5 = jn_pow5[q + 342];
    unsigned __int128 prod = (unsigned __int128)w * p5[0];
    uint64_t hi = (uint64_t)(prod >> 64), lo = (uint64_t)prod;
    if ((hi & 0x1FF) == 0x1FF) {
        /* the truncation could carry into the kept bits: add the next word */
        uint64_t hi2 = (uint64_t)(((unsigned __int128)w * p5[1]) >> 64);
        lo += hi2;
        if (hi2 > lo) hi++;
    }
    if (lo == UINT64_MAX && (q < -27 || q > 55)) return false;
    int upper = (int)(hi >> 63);
    int shift = upper + 64 - 52 - 3;
    uint64_t m = hi >> shift;
    int64_t p2 = (((152170 + 65536) * q) >> 16) + 63 + upper - lz + 1023;
    if (p2 <= 0) return false;
    /* exactly halfway: round to even */
    if (lo <= 1 && q >= -4 && q <= 23 && (m & 3) == 1 && (m << shift) == hi) m &= ~(uint64_t)1;
    m += m & 1;
    m >>= 1;
    if (m >= (uint64_t)2 << 52) {
        m = (uint64_t)1 << 52;
        p2++;
    }
    m &= ~((uint64_t)1 << 52);
    if (p2 >= 0x7FF) {
        p2 = 0x7FF;
        m = 0;
    }
    uint64_t bits = m | (uint64_t)p2 << 52 | (uint64_t)neg << 63;
    memcpy(out, &bits, sizeof bits);
    return true;
}

static inline bool is_digit(char c)
{
    return (unsigned)(c - '0') <= 9;
}

/* One pass over the token: grammar, the significand and the exponent
 * together. `prefix`: the token is what lies before the first byte that
 * cannot continue it; 0 is returned (nothing decided) when that is `end`
 * (the token may go on) or a number character (a malformed token, which the
 * caller reads whole for its error). Else the token must be all of
 * [tok, end). */
static inline int parse(const char *tok, const char *end, bool prefix, locale_t c_locale,
                        jn_num *out, const char **endp)
{
    const char *p = tok;
    bool neg = false;
    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    if (p == end || !is_digit(*p)) return prefix ? 0 : JN_BAD;
    const char *int_start = p;
    uint64_t w = 0;
    int nd = 0;        /* significant digits in w */
    bool more = false; /* and some beyond the 19 it holds */
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) return prefix ? 0 : JN_BAD; /* leading zero */
    } else {
        while (p < end && is_digit(*p)) {
            if (nd < 19)
                w = w * 10 + (uint64_t)(*p - '0'), nd++;
            else
                more = true;
            p++;
        }
    }
    const char *int_end = p;
    bool real = false;
    int64_t fracd = 0; /* fraction digits taken into w (leading zeros too) */
    if (p < end && *p == '.') {
        real = true;
        const char *fs = ++p;
        while (p < end && is_digit(*p)) {
            if (nd < 19) {
                if (nd || *p != '0') w = w * 10 + (uint64_t)(*p - '0'), nd++;
                fracd++;
            } else {
                more = true;
            }
            p++;
        }
        if (p == fs) return prefix ? 0 : JN_BAD;
    }
    int64_t exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        bool eneg = false;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        const char *es = p;
        while (p < end && is_digit(*p)) {
            if (exp < 100000000) exp = exp * 10 + (*p - '0');
            p++;
        }
        if (p == es) return prefix ? 0 : JN_BAD;
        if (eneg) exp = -exp;
    }
    if (prefix) {
        if (p == end || jn_is_numchar((unsigned char)*p)) return 0;
    } else if (p != end) {
        return JN_BAD;
    }
    *endp = p;

    if (!real) {
        uint64_t v = w;
        if (more) {
            /* 20 digits or more: exactly, with overflow */
            v = 0;
            for (const char *q = int_start; q < int_end; q++) {
                unsigned dg = (unsigned)(*q - '0');
                if (v > (UINT64_MAX - dg) / 10) return JN_RANGE;
                v = v * 10 + dg;
            }
        }
        if (neg) {
            if (v > (uint64_t)INT64_MAX + 1) return JN_RANGE;
            out->i = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
            return JN_INT;
        }
        if (v > (uint64_t)INT64_MAX) {
            out->u = v;
            return JN_UINT;
        }
        out->i = (int64_t)v;
        return JN_INT;
    }
    if (!more) {
        if (nd == 0) {
            out->d = neg ? -0.0 : 0.0;
            return JN_REAL;
        }
        int64_t e10 = exp - fracd;
        if (nd <= 15 && e10 >= -22 && e10 <= 22) {
            /* Clinger: w and 10^|e10| are exact doubles, so one IEEE
             * operation rounds correctly. */
            double d = (double)w;
            d = e10 < 0 ? d / pow10_exact[-e10] : d * pow10_exact[e10];
            out->d = neg ? -d : d;
            return JN_REAL;
        }
        if (eisel_lemire(w, e10, neg, &out->d)) return JN_REAL;
    }
    /* strtod stops where the token does: a non-number byte or the end */
    out->d = strtod_l(tok, NULL, c_locale);
    return JN_REAL;
}

int jn_parse(const char *tok, size_t len, locale_t c_locale, jn_num *out)
{
    const char *e;
    return parse(tok, tok + len, false, c_locale, out, &e);
}

int jn_scan(const char *s, const char *end, locale_t c_locale, jn_num *out, const char **endp)
{
    return parse(s, end, true, c_locale, out, endp);
}
