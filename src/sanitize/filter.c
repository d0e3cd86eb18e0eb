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
    bool matched;
} filt;

/* The patterns of one namespace as a glob_set (adx_glob.h: about one pass
 * over each key's bytes, however many patterns), and which path each is. */
typedef struct nsf {
    glob_set *set;
    size_t *path, n; /* set pattern j (of n) is path[j] */
    bool over;       /* the glob steps passed max_include_tests */
} nsf;

static bool keep_key(const char *key, ad_elem *v, void *ud)
{
    (void)v;
    nsf *c = ud;
    int r = c->set ? glob_set_any(c->set, key) : 0;
    if (r < 0) c->over = true;
    return r != 0; /* past the bound nothing more is dropped: the filter fails */
}

static void nsf_free(nsf *c)
{
    glob_set_free(c->set);
    free(c->path);
    memset(c, 0, sizeof *c);
}

/* The set of namespace ns's patterns out of f[0..n); their pointers go to
 * `pats` (the set keeps them until nsf_free). -1 when out of memory. */
static int nsf_init(nsf *c, const filt *f, size_t n, int ns, const char **pats, uint64_t max_tests,
                    uint64_t *tests)
{
    memset(c, 0, sizeof *c);
    c->path = malloc((n ? n : 1) * sizeof *c->path);
    if (!c->path) return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (f[i].ns == ns) {
            c->path[k] = i;
            pats[k++] = f[i].pattern;
        }
    c->n = k;
    if (!k) return 0; /* no pattern: every key goes */
    c->set = glob_set_new(pats, k, max_tests, tests);
    return c->set ? 0 : -1;
}

/* Every namespace's set, one bound on the glob steps for them all. */
struct flt_set {
    filt *f;
    const char **pats; /* each path's pattern once, in namespace order */
    nsf ns[AD_NS__COUNT];
    uint64_t tests;
};

/* An invalid entry (flt_validate's to report) matches nothing. */
flt_set *flt_set_new(const char *const *paths, size_t n, uint64_t max_tests)
{
    flt_set *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->f = calloc(n ? n : 1, sizeof *s->f);
    s->pats = malloc((n ? n : 1) * sizeof *s->pats);
    bool ok = s->f && s->pats;
    for (size_t i = 0; ok && i < n; i++) {
        adx_err ignored;
        adx_err_init(&ignored);
        s->f[i].pattern = "";
        s->f[i].ns = paths[i] ? parse_one(paths[i], "", &s->f[i].pattern, &ignored) : -1;
    }
    for (size_t k = 0, at = 0; ok && k < AD_NS__COUNT; at += s->ns[k++].n)
        ok = nsf_init(&s->ns[k], s->f, n, (int)k, s->pats + at, max_tests, &s->tests) == 0;
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
    bool keep = keep_key(key, NULL, &s->ns[k]);
    return s->ns[k].over ? -1 : keep;
}

void flt_set_free(flt_set *s)
{
    if (!s) return;
    for (int k = 0; k < AD_NS__COUNT; k++)
        nsf_free(&s->ns[k]);
    free(s->pats);
    free(s->f);
    free(s);
}

int flt_apply(ad_anndata *a, const char *const *paths, size_t n, uint64_t max_tests,
              const char *ptr_base, adx_report *rep, adx_err *err)
{
    if (flt_validate(paths, n, ptr_base, err) < 0) return -1;
    flt_set *s = flt_set_new(paths, n, max_tests);
    if (!s) return adx_err_set(err, ADX_E_NOMEM, ptr_base, "out of memory applying include");
    /* A namespace no path names has no pattern to match, so every key goes:
     * the same pass empties it. */
    int ret = 0;
    for (int k = 0; k < AD_NS__COUNT && ret == 0; k++) {
        nsf *c = &s->ns[k];
        if (ad_ns_table[k].frame)
            ad_frame_retain(ad_ns_frame(a, (ad_ns)k), keep_key, c);
        else
            ad_dict_retain(ad_ns_dict(a, (ad_ns)k), keep_key, c);
        if (c->over)
            ret = adx_err_set(err, ADX_E_LIMIT, ptr_base,
                              "matching the include patterns against the keys of %s takes more "
                              "than max_include_tests (%" PRIu64
                              ") glob steps; use fewer or shorter patterns, preferably ones "
                              "that begin or end with literal text",
                              ad_ns_table[k].name, max_tests);
        for (size_t j = 0; j < c->n; j++)
            if (glob_set_matched(c->set, j)) s->f[c->path[j]].matched = true;
    }
    for (size_t i = 0; ret == 0 && i < n; i++) {
        if (s->f[i].matched) continue;
        char ptr[ADX_ERR_PTR_MAX];
        entry_ptr(ptr, sizeof ptr, ptr_base, i);
        if (rep_add(rep, ptr, REP_INCLUDE_NO_MATCH, 0, paths[i]) < 0)
            ret = adx_err_set(err, ADX_E_NOMEM, ptr, "out of memory recording the report");
    }
    flt_set_free(s);
    return ret;
}
