/* ad_natural_cmp: the order of natsort.natsorted's default key, which
 * anndata 0.8 uses to order categories (strings_to_categoricals).
 *
 * natsort's key for a str: NFD-normalise, split with (\d+|[digits]) — a
 * run of decimal digits of any script, or one non-decimal digit such as
 * "²" — turn the numbers into ints, drop empty text pieces, and put "" in
 * front of a leading number and between two adjacent numbers. Keys thus
 * alternate text, number, text, ... and compare element by element (text
 * by code point, numbers by value; a key that is a prefix sorts first).
 *
 * Here the key is never built: both strings are walked in lockstep through
 * an allocation-free NFD iterator, which keeps sorting a large column cheap.
 * Not reproduced: NFD's canonical reordering of several combining marks in
 * a row (only strings with stacked, non-canonically ordered marks differ). */
#include "adx_model.h"

#include <string.h>

#include "adx_utf8.h"
#include "unicode_tables.h"

/* Hangul syllables decompose algorithmically (Unicode 3.12). */
enum { H_SBASE = 0xAC00, H_LBASE = 0x1100, H_VBASE = 0x1161, H_TBASE = 0x11A7 };
enum { H_VCOUNT = 21, H_TCOUNT = 28, H_NCOUNT = H_VCOUNT * H_TCOUNT, H_SCOUNT = 11172 };

typedef struct nfd_iter {
    const unsigned char *s, *end;
    uint32_t pend[4];
    int npend, ipend;
} nfd_iter;

static void nfd_fill(nfd_iter *it)
{
    if (it->ipend < it->npend || it->s >= it->end) return;
    it->ipend = 0;
    if (*it->s < 0x80) { /* ASCII never decomposes: skip the tables */
        it->pend[0] = *it->s++;
        it->npend = 1;
        return;
    }
    /* Lenient: an invalid byte is its own code point, so any bytes order. */
    uint32_t c;
    it->s += utf8_next_lenient(it->s, (size_t)(it->end - it->s), &c);
    if (c < 0xC0) { /* nor does anything below the first decomposable, U+00C0 */
        it->pend[0] = c;
        it->npend = 1;
        return;
    }
    if (c >= H_SBASE && c < H_SBASE + H_SCOUNT) {
        uint32_t si = c - H_SBASE;
        it->pend[0] = H_LBASE + si / H_NCOUNT;
        it->pend[1] = H_VBASE + (si % H_NCOUNT) / H_TCOUNT;
        it->npend = 2;
        if (si % H_TCOUNT) it->pend[it->npend++] = H_TBASE + si % H_TCOUNT;
        return;
    }
    size_t lo = 0, hi = sizeof uni_nfd / sizeof *uni_nfd;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (uni_nfd[mid].cp < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < sizeof uni_nfd / sizeof *uni_nfd && uni_nfd[lo].cp == c) {
        memcpy(it->pend, uni_nfd_pool + uni_nfd[lo].off, uni_nfd[lo].len * sizeof(uint32_t));
        it->npend = uni_nfd[lo].len;
        return;
    }
    it->pend[0] = c;
    it->npend = 1;
}

static int nfd_peek(nfd_iter *it, uint32_t *c)
{
    nfd_fill(it);
    if (it->ipend >= it->npend) return 0;
    *c = it->pend[it->ipend];
    return 1;
}

static void nfd_skip(nfd_iter *it)
{
    it->ipend++;
}

/* Decimal value of c (\d), or -1. */
static int decimal_value(uint32_t c)
{
    if (c < 0x80) return c >= '0' && c <= '9' ? (int)(c - '0') : -1;
    size_t lo = 0, hi = sizeof uni_decimal_zero / sizeof *uni_decimal_zero;
    while (lo < hi) { /* last zero <= c */
        size_t mid = lo + (hi - lo) / 2;
        if (uni_decimal_zero[mid] <= c)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return -1;
    uint32_t z = uni_decimal_zero[lo - 1];
    return c - z < 10 ? (int)(c - z) : -1;
}

/* Value of a digit that is not decimal ("²"), or -1. */
static int extra_digit_value(uint32_t c)
{
    size_t lo = 0, hi = sizeof uni_digit_extra / sizeof *uni_digit_extra;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (uni_digit_extra[mid].cp < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < sizeof uni_digit_extra / sizeof *uni_digit_extra && uni_digit_extra[lo].cp == c)
        return uni_digit_extra[lo].value;
    return -1;
}

static int is_number_start(uint32_t c)
{
    return decimal_value(c) >= 0 || (c >= 0x80 && extra_digit_value(c) >= 0);
}

/* Compare the text pieces at both iterators (either may be empty: "" before
 * a number), consuming them. */
static int cmp_text(nfd_iter *a, nfd_iter *b)
{
    for (;;) {
        uint32_t ca = 0, cb = 0;
        int ha = nfd_peek(a, &ca) && !is_number_start(ca);
        int hb = nfd_peek(b, &cb) && !is_number_start(cb);
        if (!ha || !hb) return ha - hb; /* a prefix sorts first */
        if (ca != cb) return ca < cb ? -1 : 1;
        nfd_skip(a);
        nfd_skip(b);
    }
}

/* One number token: a run of decimals, or a single non-decimal digit. */
typedef struct num_tok {
    nfd_iter *it;
    int single, done;
} num_tok;

static int num_next(num_tok *t)
{
    uint32_t c;
    if (t->done || !nfd_peek(t->it, &c)) return -1;
    int v = decimal_value(c);
    if (t->single) {
        if (v >= 0) return -1; /* unreachable: a single token is one char */
        t->done = 1;
        v = extra_digit_value(c);
    } else if (v < 0) {
        return -1;
    }
    nfd_skip(t->it);
    return v;
}

static void num_start(num_tok *t, nfd_iter *it)
{
    uint32_t c = 0;
    nfd_peek(it, &c);
    t->it = it;
    t->done = 0;
    t->single = decimal_value(c) < 0;
}

/* Compare the numbers at both iterators by value, consuming them. */
static int cmp_num(nfd_iter *a, nfd_iter *b)
{
    num_tok ta, tb;
    num_start(&ta, a);
    num_start(&tb, b);
    int da = num_next(&ta), db = num_next(&tb);
    /* leading zeros do not change an int */
    while (da == 0)
        da = num_next(&ta);
    while (db == 0)
        db = num_next(&tb);
    int diff = 0;
    for (;;) {
        if (da < 0 || db < 0) {
            if (da < 0 && db < 0) return diff;
            return da < 0 ? -1 : 1; /* fewer significant digits: smaller */
        }
        if (!diff && da != db) diff = da < db ? -1 : 1;
        da = num_next(&ta);
        db = num_next(&tb);
    }
}

static int ascii_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The same walk for pure ASCII, where there is nothing to decompose and only
 * 0-9 are digits: most columns, and the bulk of sorting time otherwise. */
static int ascii_cmp(const unsigned char *a, const unsigned char *ae, const unsigned char *b,
                     const unsigned char *be)
{
    for (int text = 1;; text = !text) {
        if (a == ae || b == be) return a == ae && b == be ? 0 : a == ae ? -1 : 1;
        if (text) {
            for (;;) {
                int ha = a < ae && !ascii_digit(*a), hb = b < be && !ascii_digit(*b);
                if (!ha || !hb) {
                    if (ha != hb) return ha - hb;
                    break;
                }
                if (*a != *b) return *a < *b ? -1 : 1;
                a++;
                b++;
            }
        } else {
            while (a < ae && *a == '0')
                a++;
            while (b < be && *b == '0')
                b++;
            const unsigned char *sa = a, *sb = b;
            while (a < ae && ascii_digit(*a))
                a++;
            while (b < be && ascii_digit(*b))
                b++;
            if (a - sa != b - sb) return a - sa < b - sb ? -1 : 1;
            int c = memcmp(sa, sb, (size_t)(a - sa));
            if (c) return c;
        }
    }
}

static int is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

static int at_end(nfd_iter *it)
{
    uint32_t c;
    return !nfd_peek(it, &c);
}

/* The general walk over NFD code points; 0 when the keys are equal. */
static int unicode_cmp(const unsigned char *a, const unsigned char *ae, const unsigned char *b,
                       const unsigned char *be)
{
    nfd_iter ia = {a, ae, {0}, 0, 0}, ib = {b, be, {0}, 0, 0};
    for (int text = 1;; text = !text) {
        int ea = at_end(&ia), eb = at_end(&ib);
        if (ea || eb) return ea && eb ? 0 : ea ? -1 : 1; /* the shorter key sorts first */
        int c = text ? cmp_text(&ia, &ib) : cmp_num(&ia, &ib);
        if (c) return c;
    }
}

int ad_natural_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    /* Sorting compares neighbours that share long prefixes ("group_10…").
     * Up to the last ASCII non-digit of the common prefix both keys are the
     * same tokens and decompose the same way (ASCII is a code-point
     * boundary and NFD works per code point here), so resume there, inside
     * a text token. */
    size_t m = 0, skip = 0;
    while (m < al && m < bl && a[m] == b[m]) {
        unsigned char ch = (unsigned char)a[m++];
        if (ch < 0x80 && !ascii_digit(ch)) skip = m;
    }
    const unsigned char *ua = (const unsigned char *)a, *ub = (const unsigned char *)b;
    int c = is_ascii(a + skip, al - skip) && is_ascii(b + skip, bl - skip)
                ? ascii_cmp(ua + skip, ua + al, ub + skip, ub + bl)
                : unicode_cmp(ua + skip, ua + al, ub + skip, ub + bl);
    if (c) return c;
    /* Equal keys ("a01", "a1"): Python's stable sort keeps pandas' order,
     * which is by code point — the order of the UTF-8 bytes. */
    size_t n = al < bl ? al : bl;
    c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl;
}
