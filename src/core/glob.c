/* adx_glob: Python fnmatch.fnmatchcase, mirrored from fnmatch.translate
 * (CPython 3.11) so that include patterns mean exactly what they mean in the
 * reference implementation, including its bracket quirks. */
#include "adx_glob.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adx_common.h"
#include "adx_utf8.h"

/* Code points of s (len bytes); an invalid byte counts as its own. */
static size_t decode_all(const char *s, size_t len, uint32_t *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0, i = 0;
    while (i < len)
        i += utf8_next_lenient(p + i, len - i, &out[n++]);
    return n;
}

/* A bracket expression: its content p[start, end) is everything between "["
 * and the closing "]", including a leading "!" (translate() keeps the "!"
 * in its first chunk and only decides negation on the final text). */
typedef struct {
    const uint32_t *p;
    size_t start, end;
} bracket;

/* Span [s, e) of the working copy with deleted positions skipped. */
static size_t first_live(const unsigned char *dead, size_t s, size_t e)
{
    while (s < e && dead[s])
        s++;
    return s; /* == e when empty */
}

static size_t last_live(const unsigned char *dead, size_t s, size_t e)
{
    while (e > s && dead[e - 1])
        e--;
    return e > s ? e - 1 : SIZE_MAX;
}

/* Membership for a bracket whose content has a "-", following translate():
 * split into chunks at "-" (a "-" right after a separator starts the next
 * chunk), a trailing "-" is literal, empty ranges (last(prev) > first(next))
 * are removed from the end by merging neighbours, and the joined text is
 * then a regex class: "!" first means negation — even when merging moved it
 * there, as in "[z-b!-]" — an empty class never matches, "!" alone matches
 * anything, and between chunks last(prev)..first(next) is a range.
 * Returns 1 in, 0 out, -1 for a pattern translate() itself raises on
 * (IndexError on a chunk emptied by a merge). */
static int dash_class(const bracket *b, uint32_t c, int *neg_out)
{
    const uint32_t *p = b->p;
    size_t len = b->end - b->start;
    /* A chunk starts at least two characters after the previous one, so
     * there are at most len / 2 + 2 of them. */
    size_t maxch = len / 2 + 2;
    size_t *cs = malloc(maxch * sizeof *cs), *ce = malloc(maxch * sizeof *ce);
    unsigned char *dead = calloc(len + 2, 1);
    uint32_t *w = malloc((len + 2) * sizeof *w);
    int ret = -1;
    if (!cs || !ce || !dead || !w) goto out;
    size_t nch = 0, wl = 0;
    size_t i = b->start, k = b->start + (p[b->start] == '!' ? 2 : 1);
    for (;;) {
        size_t f = k;
        while (f < b->end && p[f] != '-')
            f++;
        if (f >= b->end) break;
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
    } else {
        w[wl++] = '-'; /* chunks[-1] += '-': the last chunk ends at wl */
        ce[nch - 1] = wl;
    }
    for (size_t t = nch - 1; t >= 1; t--) {
        size_t l = last_live(dead, cs[t - 1], ce[t - 1]);
        size_t f = first_live(dead, cs[t], ce[t]);
        if (l == SIZE_MAX || f == ce[t]) goto out; /* IndexError in translate() */
        if (w[l] > w[f]) {
            dead[l] = dead[f] = 1;
            ce[t - 1] = ce[t];
            memmove(cs + t, cs + t + 1, (nch - t - 1) * sizeof *cs);
            memmove(ce + t, ce + t + 1, (nch - t - 1) * sizeof *ce);
            nch--;
        }
    }
    size_t f0 = first_live(dead, cs[0], ce[0]);
    if (nch == 1 && f0 == ce[0]) { /* empty class: never matches */
        *neg_out = 0;
        ret = 0;
        goto out;
    }
    int neg = 0;
    if (f0 < ce[0] && w[f0] == '!') {
        if (nch == 1 && first_live(dead, f0 + 1, ce[0]) == ce[0]) { /* "!" alone */
            *neg_out = 0;
            ret = 1;
            goto out;
        }
        neg = 1;
        dead[f0] = 1;
    }
    int in = 0;
    for (size_t t = 0; t < nch && !in; t++) {
        size_t fl = first_live(dead, cs[t], ce[t]);
        for (size_t q = fl; q < ce[t]; q++)
            if (!dead[q] && w[q] == c) in = 1;
        if (t + 1 == nch) break;
        if (fl == ce[t]) {
            /* An empty first chunk leaves the separator first in the class,
             * where a regex reads "-" as a literal, not a range. */
            if (c == '-') in = 1;
            continue;
        }
        size_t lo = last_live(dead, cs[t], ce[t]);
        size_t hi = first_live(dead, cs[t + 1], ce[t + 1]);
        if (hi < ce[t + 1] && c >= w[lo] && c <= w[hi]) in = 1;
    }
    *neg_out = neg;
    ret = in;
out:
    free(cs);
    free(ce);
    free(dead);
    free(w);
    return ret;
}

/* 1 if c is matched by the bracket, 0 if not, -1 if the pattern is one
 * translate() rejects (then nothing matches, where Python would raise). */
static int bracket_match(const bracket *b, uint32_t c)
{
    const uint32_t *p = b->p;
    int has_dash = 0;
    for (size_t i = b->start; i < b->end; i++)
        if (p[i] == '-') has_dash = 1;
    if (has_dash) {
        int neg = 0;
        int in = dash_class(b, c, &neg);
        if (in < 0) return -1;
        return neg ? !in : in;
    }
    /* Without "-" the content is the class text itself; it is never empty
     * (a "]" right after "[" or "[!" is content) nor a lone "!". */
    int neg = p[b->start] == '!';
    int in = 0;
    for (size_t i = b->start + (size_t)neg; i < b->end; i++)
        if (p[i] == c) in = 1;
    return neg ? !in : in;
}

/* Parse a bracket at p[i] == '['; returns index after ']' or 0 if the '['
 * is literal (unclosed). */
static size_t bracket_parse(const uint32_t *p, size_t n, size_t i, bracket *b)
{
    size_t j = i + 1;
    b->p = p;
    if (j < n && p[j] == '!') j++;
    if (j < n && p[j] == ']') j++;
    while (j < n && p[j] != ']')
        j++;
    if (j >= n) return 0;
    b->start = i + 1;
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
            return bracket_match(&b, c) == 1;
        }
    }
    *pi = i + 1;
    return p[i] == c;
}

bool glob_match(const char *pattern, const char *name)
{
    /* Most keys and patterns are short: their code points fit on the stack
     * (a filter may match millions of pairs; two mallocs each cost more
     * than the match). */
    enum { SHORT = 128 };
    uint32_t pb[SHORT], sb[SHORT];
    size_t pl = strlen(pattern), nl = strlen(name);
    uint32_t *p = pl < SHORT ? pb : malloc((pl + 1) * sizeof *p);
    uint32_t *s = nl < SHORT ? sb : malloc((nl + 1) * sizeof *s);
    bool ok = false;
    if (!p || !s) goto out;
    size_t pn = decode_all(pattern, pl, p), sn = decode_all(name, nl, s);
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
    if (p != pb) free(p);
    if (s != sb) free(s);
    return ok;
}

void glob_lit_init(glob_lit *g, const char *pattern)
{
    size_t len = strlen(pattern);
    size_t pre = strcspn(pattern, "*?[");
    *g = (glob_lit){
        .valid = utf8_valid(pattern, len, NULL), .literal = pre == len, .len = len, .pre = pre};
    const char *star = strrchr(pattern, '*');
    /* a "*" inside a bracket is no wildcard: no suffix from a pattern with one */
    if (star && !strchr(pattern, '[') && !strchr(star, '?'))
        g->suf = len - (size_t)(star + 1 - pattern);
    /* "abc*", "*.csv", "a**z", "*": the wildcards are one run of "*" */
    g->exact = star && g->pre + strspn(pattern + g->pre, "*") + g->suf == len;
}

int glob_lit_check(const glob_lit *g, const char *pattern, const char *name, size_t nlen,
                   bool name_valid)
{
    if (!g->valid || !name_valid) return -1;
    if (g->literal) return nlen == g->len && memcmp(name, pattern, nlen) == 0;
    if (nlen < g->pre + g->suf || memcmp(name, pattern, g->pre) != 0 ||
        memcmp(name + nlen - g->suf, pattern + g->len - g->suf, g->suf) != 0)
        return 0;
    return g->exact ? 1 : -1;
}

/* ------------------------------------------------------------ glob sets */

/* Patterns by their literal prefix (or suffix), hashed the way a name's
 * bytes are walked, so that one walk over a name finds every pattern whose
 * prefix it starts with: O(name length) whatever the number of patterns. */
typedef struct affix {
    size_t cap;    /* slots, a power of two; 0 = no pattern */
    uint64_t *key; /* hash of (affix, its length) | 1; 0 = free slot */
    size_t *head;  /* the first pattern in the slot */
    bool *len;     /* [0..maxlen]: some affix has this length */
    size_t maxlen;
} affix;

struct glob_set {
    const char *const *pat;
    size_t n;
    glob_lit *lit;
    size_t *next;    /* the next pattern of the same literal text or affix slot; SIZE_MAX = none */
    bool *matched;   /* pattern i has matched a name */
    adx_strmap text; /* literal text -> its number among the distinct texts */
    size_t *first;   /* that number -> the first literal pattern with the text */
    affix pre, suf;  /* patterns with a literal prefix; without one, with a suffix */
    size_t *rest, nrest; /* neither literal, prefix nor suffix (or not valid UTF-8) */
    uint64_t own_tests, *tests, max_tests;
    bool over;
};

static uint64_t fnv_step(uint64_t h, unsigned char b)
{
    return (h ^ b) * 1099511628211ull;
}

static uint64_t slot_key(uint64_t h, size_t l)
{
    return (h ^ ((uint64_t)l * 0x9e3779b97f4a7c15ull)) | 1;
}

/* A pattern's affix: its first l bytes, or (suffix) its last l read
 * backwards, as a name is walked. */
static uint64_t affix_hash(const char *pat, size_t plen, size_t l, bool suffix)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t k = 0; k < l; k++)
        h = fnv_step(h, (unsigned char)pat[suffix ? plen - 1 - k : k]);
    return slot_key(h, l);
}

static int affix_init(affix *x, glob_set *s, const size_t *idx, size_t n, bool suffix)
{
    memset(x, 0, sizeof *x);
    if (!n) return 0;
    x->cap = 8;
    while (x->cap < 2 * n)
        x->cap *= 2;
    for (size_t k = 0; k < n; k++) {
        size_t l = suffix ? s->lit[idx[k]].suf : s->lit[idx[k]].pre;
        if (l > x->maxlen) x->maxlen = l;
    }
    x->key = calloc(x->cap, sizeof *x->key);
    x->head = malloc(x->cap * sizeof *x->head);
    x->len = calloc(x->maxlen + 1, sizeof *x->len);
    if (!x->key || !x->head || !x->len) return -1;
    for (size_t k = 0; k < n; k++) {
        size_t i = idx[k], l = suffix ? s->lit[i].suf : s->lit[i].pre;
        uint64_t key = affix_hash(s->pat[i], s->lit[i].len, l, suffix);
        size_t at = (size_t)key & (x->cap - 1);
        while (x->key[at] && x->key[at] != key)
            at = (at + 1) & (x->cap - 1);
        s->next[i] = x->key[at] ? x->head[at] : SIZE_MAX;
        x->key[at] = key;
        x->head[at] = i;
        x->len[l] = true;
    }
    return 0;
}

static void affix_free(affix *x)
{
    free(x->key);
    free(x->head);
    free(x->len);
}

void glob_set_free(glob_set *s)
{
    if (!s) return;
    adx_strmap_free(&s->text);
    affix_free(&s->pre);
    affix_free(&s->suf);
    free(s->lit);
    free(s->next);
    free(s->matched);
    free(s->first);
    free(s->rest);
    free(s);
}

glob_set *glob_set_new(const char *const *patterns, size_t n, uint64_t max_tests, uint64_t *tests)
{
    glob_set *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t cap = n ? n : 1, *pre = malloc(cap * sizeof *pre), *suf = malloc(cap * sizeof *suf);
    size_t npre = 0, nsuf = 0;
    *s = (glob_set){.pat = patterns, .n = n, .max_tests = max_tests ? max_tests : UINT64_MAX};
    s->tests = tests ? tests : &s->own_tests;
    s->lit = calloc(cap, sizeof *s->lit);
    s->next = malloc(cap * sizeof *s->next);
    s->matched = calloc(cap, sizeof *s->matched);
    s->first = malloc(cap * sizeof *s->first);
    s->rest = malloc(cap * sizeof *s->rest);
    bool ok = pre && suf && s->lit && s->next && s->matched && s->first && s->rest;
    for (size_t i = 0; ok && i < n; i++) {
        glob_lit *g = &s->lit[i];
        glob_lit_init(g, patterns[i]);
        s->next[i] = SIZE_MAX;
        if (!g->valid)
            s->rest[s->nrest++] = i;
        else if (g->pre && !g->literal)
            pre[npre++] = i;
        else if (!g->pre && g->suf)
            suf[nsuf++] = i;
        else if (!g->literal)
            s->rest[s->nrest++] = i;
        if (!g->valid || !g->literal) continue;
        size_t t;
        bool added;
        if (adx_strmap_add(&s->text, patterns[i], &t, &added) < 0) {
            ok = false;
        } else if (added) {
            s->first[t] = i;
        } else { /* the same text again: chained after the first, each counts */
            size_t at = s->first[t];
            while (s->next[at] != SIZE_MAX)
                at = s->next[at];
            s->next[at] = i;
        }
    }
    ok = ok && affix_init(&s->pre, s, pre, npre, false) == 0 &&
         affix_init(&s->suf, s, suf, nsuf, true) == 0;
    free(pre);
    free(suf);
    if (!ok) {
        glob_set_free(s);
        return NULL;
    }
    return s;
}

/* Try pattern i on the name. A pattern that has matched already is tried
 * again only while no other pattern matched the name: whether it ever
 * matched is all that is kept of it. */
static void try_one(glob_set *s, size_t i, const char *name, size_t nl, bool valid, bool *any)
{
    if (s->over || (*any && s->matched[i])) return;
    int r = glob_lit_check(&s->lit[i], s->pat[i], name, nl, valid);
    if (r < 0) {
        if (++*s->tests > s->max_tests) {
            s->over = true;
            return;
        }
        r = glob_match(s->pat[i], name);
    }
    if (r) s->matched[i] = *any = true;
}

static void try_affix(glob_set *s, const affix *x, bool suffix, const char *name, size_t nl,
                      bool *any)
{
    uint64_t h = 1469598103934665603ull;
    size_t top = nl < x->maxlen ? nl : x->maxlen;
    for (size_t l = 1; l <= top && !s->over; l++) {
        h = fnv_step(h, (unsigned char)name[suffix ? nl - l : l - 1]);
        if (!x->len[l]) continue;
        uint64_t k = slot_key(h, l);
        size_t at = (size_t)k & (x->cap - 1);
        while (x->key[at] && x->key[at] != k)
            at = (at + 1) & (x->cap - 1);
        if (!x->key[at]) continue;
        for (size_t i = x->head[at]; i != SIZE_MAX; i = s->next[i]) /* the bytes: glob_lit_check */
            try_one(s, i, name, nl, true, any);
    }
}

int glob_set_any(glob_set *s, const char *name)
{
    if (s->over) return -1;
    size_t nl = strlen(name);
    bool any = false;
    if (!utf8_valid(name, nl, NULL)) {
        for (size_t i = 0; i < s->n; i++)
            try_one(s, i, name, nl, false, &any);
    } else {
        size_t t = adx_strmap_get(&s->text, name);
        for (size_t i = t == SIZE_MAX ? t : s->first[t]; i != SIZE_MAX; i = s->next[i])
            s->matched[i] = any = true;
        try_affix(s, &s->pre, false, name, nl, &any);
        try_affix(s, &s->suf, true, name, nl, &any);
        for (size_t k = 0; k < s->nrest; k++)
            try_one(s, s->rest[k], name, nl, true, &any);
    }
    return s->over ? -1 : any;
}

bool glob_set_matched(const glob_set *s, size_t i)
{
    return i < s->n && s->matched[i];
}
