#include "csvfmt.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int csvb_buf_put(csvb_buf *b, const char *s, size_t n)
{
    size_t need;
    if (__builtin_add_overflow(b->len, n + 1, &need)) return -1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            if (__builtin_mul_overflow(cap, 2, &cap)) return -1;
        char *p = realloc(b->s, cap);
        if (!p) return -1;
        b->s = p;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

void csvb_buf_free(csvb_buf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

/* numpy's str() of a float: the shortest digits that round-trip in the
 * value's own precision (dragon4 "unique" mode), positional when
 * 1e-4 <= |x| < 1e16 (compared in long double, as numpy does: 0.0001f is
 * 9.99999997e-05 and prints "1e-04"), else scientific with two or more
 * exponent digits. */
static void fmt_shortest(double x, bool f32, char buf[32])
{
    if (isnan(x)) {
        strcpy(buf, "nan");
        return;
    }
    if (isinf(x)) {
        strcpy(buf, x < 0 ? "-inf" : "inf");
        return;
    }
    /* The correctly rounded %.*e at the shortest round-tripping precision
     * is that digit string; round-tripping is monotonic in the precision,
     * so a binary search needs ~4 conversions instead of up to 17. */
    char e[40], best[40];
    int lo = 0, hi = f32 ? 8 : 16;
    snprintf(best, sizeof best, "%.*e", hi, x);
    /* Measured data mostly needs all digits: probe one below the maximum
     * first, so those values cost two conversions, not five. */
    snprintf(e, sizeof e, "%.*e", hi - 1, x);
    if (f32 ? strtof(e, NULL) == (float)x : strtod(e, NULL) == x) {
        memcpy(best, e, sizeof e);
        hi--;
    } else {
        lo = hi;
    }
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(e, sizeof e, "%.*e", mid, x);
        bool ok = f32 ? strtof(e, NULL) == (float)x : strtod(e, NULL) == x;
        if (ok) {
            memcpy(best, e, sizeof e);
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    char digits[24];
    int nd = 0;
    const char *p = best;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 23) digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char *o = buf;
    if (neg) *o++ = '-';
    long double ax = fabsl((long double)x);
    if (ax == 0 || (ax >= 1e-4L && ax < 1e16L)) {
        if (exp < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -exp - 1; i++)
                *o++ = '0';
            memcpy(o, digits, (size_t)nd);
            o += nd;
        } else {
            for (int i = 0; i <= exp; i++)
                *o++ = i < nd ? digits[i] : '0';
            *o++ = '.';
            if (nd > exp + 1) {
                memcpy(o, digits + exp + 1, (size_t)(nd - exp - 1));
                o += nd - exp - 1;
            } else {
                *o++ = '0';
            }
        }
        *o = '\0';
        return;
    }
    *o++ = digits[0];
    if (nd > 1) {
        *o++ = '.';
        memcpy(o, digits + 1, (size_t)(nd - 1));
        o += nd - 1;
    }
    /* double exponents reach 3 digits (1e-308); %02u pads to numpy's 2. */
    unsigned ae = (unsigned)(exp < 0 ? -exp : exp) % 1000u;
    snprintf(o, (size_t)(buf + 32 - o), "e%c%02u", exp < 0 ? '-' : '+', ae);
}

void csvb_fmt_f32(float x, char buf[32])
{
    fmt_shortest((double)x, true, buf);
}

void csvb_fmt_f64(double x, char buf[32])
{
    fmt_shortest(x, false, buf);
}

size_t csvb_fmt_num(const ad_array *a, uint64_t i, char buf[32])
{
    switch (a->dtype) {
    case AD_BOOL:
        strcpy(buf, ((const uint8_t *)a->data)[i] ? "True" : "False");
        break;
    case AD_F32: {
        float v = ((const float *)a->data)[i];
        if (isnan(v))
            buf[0] = '\0';
        else
            csvb_fmt_f32(v, buf);
        break;
    }
    case AD_F64: {
        double v = ((const double *)a->data)[i];
        if (isnan(v))
            buf[0] = '\0';
        else
            csvb_fmt_f64(v, buf);
        break;
    }
    case AD_U8:
    case AD_U16:
    case AD_U32:
    case AD_U64: {
        uint64_t v;
        switch (a->dtype) {
        case AD_U8:
            v = ((const uint8_t *)a->data)[i];
            break;
        case AD_U16:
            v = ((const uint16_t *)a->data)[i];
            break;
        case AD_U32:
            v = ((const uint32_t *)a->data)[i];
            break;
        default:
            v = ((const uint64_t *)a->data)[i];
            break;
        }
        snprintf(buf, 32, "%" PRIu64, v);
        break;
    }
    default:
        snprintf(buf, 32, "%" PRId64, ad_array_get_i64(a, i));
        break;
    }
    return strlen(buf);
}

bool csvb_needs_quote(const char *s, size_t n, char sep)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == sep || s[i] == '"' || s[i] == '\n' || s[i] == '\r') return true;
    return false;
}

int csvb_put_field(csvb_buf *b, const char *s, size_t n, char sep)
{
    if (!csvb_needs_quote(s, n, sep)) return csvb_buf_put(b, s, n);
    if (csvb_buf_put(b, "\"", 1) < 0) return -1;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            if (csvb_buf_put(b, s + start, i + 1 - start) < 0) return -1;
            if (csvb_buf_put(b, "\"", 1) < 0) return -1;
            start = i + 1;
        }
    }
    if (csvb_buf_put(b, s + start, n - start) < 0) return -1;
    return csvb_buf_put(b, "\"", 1);
}

int csvb_put_record(csvb_buf *b, const char *const *fields, const size_t *lens, size_t n, char sep)
{
    if (n == 1 && lens[0] == 0) return csvb_buf_put(b, "\"\"\n", 3);
    for (size_t i = 0; i < n; i++) {
        if (i && csvb_buf_put(b, &sep, 1) < 0) return -1;
        if (csvb_put_field(b, fields[i], lens[i], sep) < 0) return -1;
    }
    return csvb_buf_put(b, "\n", 1);
}
