/* adx_glob: Python fnmatch.fnmatchcase, mirrored from fnmatch.translate
 * (CPython 3.11) so that include patterns mean exactly what they mean in the
 * reference implementation, including its bracket quirks. */
#include "adx_glob.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t utf8_decode(const char *s, uint32_t *out)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c = *p;
        int extra = c >= 0xF0 && c < 0xF8 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        if (c >= 0xF8 || (c >= 0x80 && c < 0xC0)) extra = 0;
        uint32_t cp = extra == 0 ? c : (c & (0x3F >> extra));
        int k = 1;
        for (; k <= extra; k++) {
            if ((p[k] & 0xC0) != 0x80) break;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if (k <= extra) { /* truncated sequence: one code point per byte */
            cp = c;
            k = 1;
        }
        out[n++] = cp;
        p += k;
    }
    return n;
}

/* A parsed bracket expression: chunks [cs[t], ce[t]) over the pattern. */
typedef struct {
    const uint32_t *p;
    size_t start, end; /* content, after '[' and optional '!', before ']' */
    int neg;
} bracket;

/* Membership following translate(): the content splits at '-' into chunks;
 * consecutive chunks form a range last(prev)..first(next); empty ranges
 * (last > first) are removed by merging; every other char is literal. */
static int bracket_has(const bracket *b, uint32_t c)
{
    enum { MAXCH = 64 };
    size_t cs[MAXCH], ce[MAXCH];
    size_t nch = 0;
    const uint32_t *p = b->p;
    int has_dash = 0;
    for (size_t i = b->start; i < b->end; i++)
        if (p[i] == '-') has_dash = 1;
    if (!has_dash) {
        for (size_t i = b->start; i < b->end; i++)
            if (p[i] == c) return 1;
        return 0;
    }
    /* Chunks may be edited by merging, so work on a copy of code points. */
    uint32_t buf[512];
    size_t len = b->end - b->start;
    uint32_t *w = len <= 512 ? buf : malloc(len * sizeof *w);
    if (!w) return 0;
    size_t wl = 0;
    size_t i = b->start, k = b->start + 1;
    for (;;) {
        size_t f = k;
        while (f < b->end && p[f] != '-')
            f++;
        if (f >= b->end || nch + 2 >= MAXCH) break;
        cs[nch] = wl;
        for (size_t q = i; q < f; q++)
            w[wl++] = p[q];
        ce[nch++] = wl;
        i = f + 1;
        k = f + 3;
    }
    if (i < b->end) {
        cs[nch] = wl;
        for (size_t q = i; q < b->end; q++)
            w[wl++] = p[q];
        ce[nch++] = wl;
    } else if (nch > 0) {
        /* trailing '-' is literal: append to the last chunk */
        uint32_t *nw = w;
        (void)nw;
        /* shift is not needed: chunks are contiguous and the last ends at wl */
        w[wl++] = '-';
        ce[nch - 1] = wl;
    }
    /* merge empty ranges, from the end as translate() does */
    for (size_t t = nch - 1; t >= 1 && nch > 0; t--) {
        if (ce[t - 1] > cs[t - 1] && ce[t] > cs[t] && w[ce[t - 1] - 1] > w[cs[t]]) {
            /* chunks[t-1] = chunks[t-1][:-1] + chunks[t][1:] */
            size_t a_end = ce[t - 1] - 1;
            size_t blen = ce[t] - cs[t] - 1;
            memmove(w + a_end, w + cs[t] + 1, blen * sizeof *w);
            size_t newend = a_end + blen;
            size_t shift = ce[t] - newend;
            /* later chunks move left by `shift` */
            memmove(w + newend, w + ce[t], (wl - ce[t]) * sizeof *w);
            wl -= shift;
            ce[t - 1] = newend;
            for (size_t u = t + 1; u < nch; u++) {
                cs[u] -= shift;
                ce[u] -= shift;
            }
            memmove(cs + t, cs + t + 1, (nch - t - 1) * sizeof *cs);
            memmove(ce + t, ce + t + 1, (nch - t - 1) * sizeof *ce);
            nch--;
        }
        if (t == 1) break;
    }
    int found = 0;
    for (size_t t = 0; t < nch && !found; t++) {
        size_t lo = cs[t] + (t > 0 ? 1 : 0);
        size_t hi = ce[t] - (t + 1 < nch ? 1 : 0);
        for (size_t q = lo; q < hi; q++)
            if (w[q] == c) found = 1;
        if (t + 1 < nch && ce[t] > cs[t] && ce[t + 1] > cs[t + 1]) {
            uint32_t a = w[ce[t] - 1], z = w[cs[t + 1]];
            if (c >= a && c <= z) found = 1;
        }
    }
    if (w != buf) free(w);
    return found;
}

/* Parse a bracket at p[i] == '['; returns index after ']' or 0 if the '['
 * is literal (unclosed). */
static size_t bracket_parse(const uint32_t *p, size_t n, size_t i, bracket *b)
{
    size_t j = i + 1;
    b->p = p;
    b->neg = 0;
    if (j < n && p[j] == '!') j++;
    if (j < n && p[j] == ']') j++;
    while (j < n && p[j] != ']')
        j++;
    if (j >= n) return 0;
    b->start = i + 1;
    if (p[b->start] == '!') {
        b->neg = 1;
        b->start++;
    }
    b->end = j;
    return j + 1;
}

static int match_one(const uint32_t *p, size_t pn, size_t *pi, uint32_t c)
{
    size_t i = *pi;
    if (p[i] == '?') {
        *pi = i + 1;
        return 1;
    }
    if (p[i] == '[') {
        bracket b;
        size_t next = bracket_parse(p, pn, i, &b);
        if (next) {
            *pi = next;
            int in = bracket_has(&b, c);
            return b.neg ? !in : in;
        }
    }
    *pi = i + 1;
    return p[i] == c;
}

bool glob_match(const char *pattern, const char *name)
{
    size_t pl = strlen(pattern), nl = strlen(name);
    uint32_t *p = malloc((pl + 1) * sizeof *p);
    uint32_t *s = malloc((nl + 1) * sizeof *s);
    bool ok = false;
    if (!p || !s) goto out;
    size_t pn = utf8_decode(pattern, p), sn = utf8_decode(name, s);
    size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            while (pi < pn && p[pi] == '*')
                pi++;
            star_p = pi;
            star_s = si;
            continue;
        }
        size_t npi = pi;
        if (pi < pn && match_one(p, pn, &npi, s[si])) {
            pi = npi;
            si++;
            continue;
        }
        if (star_p == SIZE_MAX) goto out;
        pi = star_p;
        si = ++star_s;
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    ok = pi == pn;
out:
    free(p);
    free(s);
    return ok;
}

bool glob_match_any(const char *const *patterns, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (glob_match(patterns[i], name)) return true;
    return false;
}
