/* adx_filter: the include filter (payload.md "The include filter"). A path
 * is split at its FIRST "/": the namespace before it, the glob after it, so
 * "uns/a/b" matches the top-level uns key "a/b" (fnmatch's "*" crosses "/"
 * too, as in the reference). */
#include "adx_filter.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_common.h"
#include "adx_glob.h"
#include "adx_utf8.h"

/* "obs, var, ...": the namespaces a client may name, from the one table. */
static const char *ns_list(char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < AD_NS__COUNT && len < cap; k++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", k ? ", " : "", ad_ns_table[k].name);
    return buf;
}

static void entry_ptr(char *buf, size_t cap, const char *base, size_t i)
{
    char idx[24];
    snprintf(buf, cap, "%s", base ? base : "");
    snprintf(idx, sizeof idx, "%zu", i);
    adx_ptr_append_key(buf, cap, idx);
}

/* Namespace index of path i, or -1 with the error recorded. */
static int parse_one(const char *path, const char *ptr, const char **pattern, adx_err *err)
{
    if (!path)
        return adx_err_set(err, ADX_E_BAD_INCLUDE, ptr,
                           "include entries must be strings of the form \"namespace/pattern\"");
    const char *slash = strchr(path, '/');
    size_t nl = slash ? (size_t)(slash - path) : strlen(path);
    bool always_kept = (nl == 1 && path[0] == 'X') || (nl == 3 && memcmp(path, "raw", 3) == 0);
    char list[128];
    if (always_kept)
        return adx_err_set(err, ADX_E_BAD_INCLUDE, ptr,
                           "\"%s\": X and raw are always kept and cannot be filtered; remove this "
                           "entry (namespaces: %s)",
                           path, ns_list(list, sizeof list));
    if (!slash)
        return adx_err_set(err, ADX_E_BAD_INCLUDE, ptr,
                           "\"%s\" is not of the form \"namespace/pattern\" (namespaces: %s; e.g. "
                           "\"obsm/X_*\")",
                           path, ns_list(list, sizeof list));
    int ns = ad_ns_find(path, nl);
    if (ns < 0)
        return adx_err_set(err, ADX_E_BAD_INCLUDE, ptr,
                           "\"%.*s\" is not a namespace; use one of %s", (int)nl, path,
                           ns_list(list, sizeof list));
    const char *name = ad_ns_table[ns].name;
    if (slash[1] == '\0')
        return adx_err_set(err, ADX_E_BAD_INCLUDE, ptr,
                           "\"%s\" has an empty pattern; use \"%s/*\" to keep everything in %s",
                           path, name, name);
    *pattern = slash + 1;
    return ns;
}

int flt_validate(const char *const *paths, size_t n, const char *ptr_base, adx_err *err)
{
    int bad = 0;
    /* Every bad entry becomes an item, so a client fixes them in one round. */
    for (size_t i = 0; i < n; i++) {
        char ptr[ADX_ERR_PTR_MAX];
        const char *pat;
        entry_ptr(ptr, sizeof ptr, ptr_base, i);
        if (parse_one(paths[i], ptr, &pat, err) < 0) bad = 1;
    }
    return bad ? -1 : 0;
}

typedef struct filt {
    const char *pattern;
    int ns;
    uint64_t matched;
    glob_lit lit;
    size_t next; /* the next pattern of the same literal text or affix slot; SIZE_MAX = none */
} filt;

/* Patterns by their literal prefix (or suffix), hashed the way a key's
 * bytes are walked, so that one walk over a key finds every pattern whose
 * prefix it starts with: O(key length) whatever the number of patterns. */
typedef struct affix {
    size_t cap;    /* slots, a power of two; 0 = no pattern */
    uint64_t *key; /* hash of (affix, its length) | 1; 0 = free slot */
    size_t *head;  /* the first pattern in the slot */
    bool *len;     /* [0..maxlen]: some affix has this length */
    size_t maxlen;
} affix;

static uint64_t fnv_step(uint64_t h, unsigned char b)
{
    return (h ^ b) * 1099511628211ull;
}

static uint64_t slot_key(uint64_t h, size_t l)
{
    return (h ^ ((uint64_t)l * 0x9e3779b97f4a7c15ull)) | 1;
}

/* Pattern i's affix: its first l bytes, or (suffix) its last l read
 * backwards. */
static uint64_t affix_hash(const char *pat, size_t plen, size_t l, bool suffix)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t k = 0; k < l; k++)
        h = fnv_step(h, (unsigned char)pat[suffix ? plen - 1 - k : k]);
    return slot_key(h, l);
}

static int affix_init(affix *x, filt *f, const size_t *idx, size_t n, bool suffix)
{
    memset(x, 0, sizeof *x);
    if (!n) return 0;
    x->cap = 8;
    while (x->cap < 2 * n)
        x->cap *= 2;
    for (size_t k = 0; k < n; k++) {
        size_t l = suffix ? f[idx[k]].lit.suf : f[idx[k]].lit.pre;
        if (l > x->maxlen) x->maxlen = l;
    }
    x->key = calloc(x->cap, sizeof *x->key);
    x->head = malloc(x->cap * sizeof *x->head);
    x->len = calloc(x->maxlen + 1, sizeof *x->len);
    if (!x->key || !x->head || !x->len) return -1;
    for (size_t k = 0; k < n; k++) {
        filt *p = &f[idx[k]];
        size_t l = suffix ? p->lit.suf : p->lit.pre;
        uint64_t key = affix_hash(p->pattern, p->lit.len, l, suffix);
        size_t s = (size_t)key & (x->cap - 1);
        while (x->key[s] && x->key[s] != key)
            s = (s + 1) & (x->cap - 1);
        p->next = x->key[s] ? x->head[s] : SIZE_MAX;
        x->key[s] = key;
        x->head[s] = idx[k];
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

/* The patterns of one namespace, arranged so that a key costs about one
 * walk over its bytes: literal patterns in a hash map by text, patterns
 * with a literal prefix (else suffix) in an affix index, and only the rest
 * tried on every key. What the literal text cannot decide is a glob match,
 * counted against max_include_tests. */
typedef struct nsf {
    filt *f;
    adx_strmap lit;      /* text -> its number among the distinct texts */
    size_t *first;       /* that number -> the first literal pattern with the text */
    affix pre, suf;      /* patterns with a literal prefix; without one, with a suffix */
    size_t *all, nall;   /* every pattern, for keys that are not valid UTF-8 */
    size_t *rest, nrest; /* neither literal, prefix nor suffix (or not valid UTF-8) */
    uint64_t tests, max_tests;
    bool over;
} nsf;

static bool test(nsf *c, filt *p, const char *key, size_t kl, bool valid)
{
    int r = glob_lit_check(&p->lit, p->pattern, key, kl, valid);
    if (r >= 0) return r;
    if (++c->tests > c->max_tests) {
        c->over = true;
        return false;
    }
    return glob_match(p->pattern, key);
}

/* Try pattern i on the key. A pattern that has matched already is tried
 * again only while no other pattern kept the key: its count needs no more
 * than one (it only tells whether to report the pattern). */
static void try_pattern(nsf *c, size_t i, const char *key, size_t kl, bool valid, bool *keep)
{
    filt *p = &c->f[i];
    if (c->over || (*keep && p->matched)) return;
    if (test(c, p, key, kl, valid)) {
        p->matched++;
        *keep = true;
    }
}

static void try_affix(nsf *c, const affix *x, bool suffix, const char *key, size_t kl, bool *keep)
{
    uint64_t h = 1469598103934665603ull;
    size_t top = kl < x->maxlen ? kl : x->maxlen;
    for (size_t l = 1; l <= top && !c->over; l++) {
        h = fnv_step(h, (unsigned char)key[suffix ? kl - l : l - 1]);
        if (!x->len[l]) continue;
        uint64_t k = slot_key(h, l);
        size_t s = (size_t)k & (x->cap - 1);
        while (x->key[s] && x->key[s] != k)
            s = (s + 1) & (x->cap - 1);
        if (!x->key[s]) continue;
        for (size_t i = x->head[s]; i != SIZE_MAX; i = c->f[i].next) /* test() checks the bytes */
            try_pattern(c, i, key, kl, true, keep);
    }
}

/* Whether any pattern of the namespace matches `key` (ad_*_retain's test). */
static bool keep_key(const char *key, void *ud)
{
    nsf *c = ud;
    if (c->over) return true; /* the filter fails as a whole */
    size_t kl = strlen(key);
    bool keep = false;
    if (!utf8_valid(key, kl, NULL)) {
        for (size_t k = 0; k < c->nall; k++)
            try_pattern(c, c->all[k], key, kl, false, &keep);
        return keep;
    }
    size_t t = adx_strmap_get(&c->lit, key);
    for (size_t i = t == SIZE_MAX ? t : c->first[t]; i != SIZE_MAX; i = c->f[i].next) {
        c->f[i].matched++;
        keep = true;
    }
    try_affix(c, &c->pre, false, key, kl, &keep);
    try_affix(c, &c->suf, true, key, kl, &keep);
    for (size_t k = 0; k < c->nrest; k++)
        try_pattern(c, c->rest[k], key, kl, true, &keep);
    return keep;
}

static void nsf_free(nsf *c)
{
    adx_strmap_free(&c->lit);
    affix_free(&c->pre);
    affix_free(&c->suf);
    free(c->first);
    free(c->all);
    free(c->rest);
}

/* The patterns of namespace ns out of f[0..n). -1 when out of memory. */
static int nsf_init(nsf *c, filt *f, size_t n, int ns, uint64_t max_tests, uint64_t tests)
{
    *c = (nsf){.f = f, .max_tests = max_tests ? max_tests : UINT64_MAX, .tests = tests};
    size_t cap = n ? n : 1, *pre = malloc(cap * sizeof *pre), *suf = malloc(cap * sizeof *suf);
    size_t npre = 0, nsuf = 0;
    c->first = malloc(cap * sizeof *c->first);
    c->all = malloc(cap * sizeof *c->all);
    c->rest = malloc(cap * sizeof *c->rest);
    int rc = -1;
    if (!pre || !suf || !c->first || !c->all || !c->rest) goto out;
    for (size_t i = 0; i < n; i++) {
        if (f[i].ns != ns) continue;
        const glob_lit *g = &f[i].lit;
        f[i].next = SIZE_MAX;
        c->all[c->nall++] = i;
        if (!g->valid) {
            c->rest[c->nrest++] = i;
        } else if (g->pre) {
            if (!g->literal) pre[npre++] = i;
        } else if (g->suf) {
            suf[nsuf++] = i;
        } else {
            c->rest[c->nrest++] = i;
        }
        if (!g->valid || !g->literal) continue;
        size_t t;
        bool added;
        if (adx_strmap_add(&c->lit, f[i].pattern, &t, &added) < 0) goto out;
        if (added) {
            c->first[t] = i;
            continue;
        }
        /* the same text again: chained after the first, each is counted */
        size_t at = c->first[t];
        while (f[at].next != SIZE_MAX)
            at = f[at].next;
        f[at].next = i;
    }
    rc = affix_init(&c->pre, f, pre, npre, false) || affix_init(&c->suf, f, suf, nsuf, true) ? -1
                                                                                             : 0;
out:
    free(pre);
    free(suf);
    return rc;
}

struct flt_set {
    filt *f;
    nsf ns[AD_NS__COUNT];
    uint64_t max_tests;
};

flt_set *flt_set_new(const char *const *paths, size_t n, uint64_t max_tests)
{
    flt_set *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->max_tests = max_tests;
    s->f = calloc(n ? n : 1, sizeof *s->f);
    bool ok = s->f != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        adx_err ignored;
        adx_err_init(&ignored);
        s->f[i].pattern = "";
        s->f[i].ns = paths[i] ? parse_one(paths[i], "", &s->f[i].pattern, &ignored) : -1;
        glob_lit_init(&s->f[i].lit, s->f[i].pattern);
    }
    for (int k = 0; ok && k < AD_NS__COUNT; k++)
        ok = nsf_init(&s->ns[k], s->f, ok ? n : 0, k, max_tests, 0) == 0;
    if (!ok) {
        flt_set_free(s);
        return NULL;
    }
    return s;
}

int flt_set_keeps(flt_set *s, const char *ns, const char *key)
{
    int k = ad_ns_find(ns, strlen(ns));
    if (k < 0) return 0;
    nsf *c = &s->ns[k];
    bool keep = keep_key(key, c);
    /* the budget is the set's, across namespaces */
    for (int o = 0; o < AD_NS__COUNT; o++)
        if (o != k) s->ns[o].tests = c->tests;
    return c->over ? -1 : keep;
}

void flt_set_free(flt_set *s)
{
    if (!s) return;
    for (int k = 0; k < AD_NS__COUNT; k++)
        nsf_free(&s->ns[k]);
    free(s->f);
    free(s);
}

bool flt_keeps(const char *const *paths, size_t n, const char *ns, const char *key)
{
    flt_set *s = flt_set_new(paths, n, 0);
    int k = s ? flt_set_keeps(s, ns, key) : 0; /* out of memory: as no match */
    flt_set_free(s);
    return k > 0;
}

int flt_apply(ad_anndata *a, const char *const *paths, size_t n, uint64_t max_tests,
              const char *ptr_base, adx_report *rep, adx_err *err)
{
    if (flt_validate(paths, n, ptr_base, err) < 0) return -1;
    filt *f = NULL;
    if (n) {
        f = calloc(n, sizeof *f);
        if (!f) return adx_err_set(err, ADX_E_NOMEM, ptr_base, "out of memory applying include");
        for (size_t i = 0; i < n; i++) {
            char ptr[ADX_ERR_PTR_MAX];
            entry_ptr(ptr, sizeof ptr, ptr_base, i);
            f[i].ns = parse_one(paths[i], ptr, &f[i].pattern, err);
            glob_lit_init(&f[i].lit, f[i].pattern);
        }
    }
    /* A namespace no path names has no pattern to match, so every key goes:
     * the same pass empties it. */
    uint64_t tests = 0;
    for (int ns = 0; ns < AD_NS__COUNT; ns++) {
        nsf c;
        if (nsf_init(&c, f, n, ns, max_tests, tests) < 0) {
            nsf_free(&c);
            free(f);
            return adx_err_set(err, ADX_E_NOMEM, ptr_base, "out of memory applying include");
        }
        if (ad_ns_table[ns].frame)
            ad_frame_retain(ad_ns_frame(a, (ad_ns)ns), keep_key, &c);
        else
            ad_dict_retain(ad_ns_dict(a, (ad_ns)ns), keep_key, &c);
        tests = c.tests;
        bool over = c.over;
        nsf_free(&c);
        if (over) {
            free(f);
            return adx_err_set(err, ADX_E_LIMIT, ptr_base,
                               "matching the include patterns against the keys of %s takes more "
                               "than max_include_tests (%" PRIu64
                               ") glob matches; use fewer patterns that neither begin nor end "
                               "with literal text",
                               ad_ns_table[ns].name, max_tests);
        }
    }
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i].matched) continue;
        char ptr[ADX_ERR_PTR_MAX];
        entry_ptr(ptr, sizeof ptr, ptr_base, i);
        if (rep_add(rep, ptr, REP_INCLUDE_NO_MATCH, 0, paths[i]) < 0) {
            ret = adx_err_set(err, ADX_E_NOMEM, ptr, "out of memory recording the report");
            break;
        }
    }
    free(f);
    return ret;
}
