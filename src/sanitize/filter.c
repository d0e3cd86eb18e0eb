/* adx_filter: the include filter (payload.md "The include filter"). A path
 * is split at its FIRST "/": the namespace before it, the glob after it, so
 * "uns/a/b" matches the top-level uns key "a/b" (fnmatch's "*" crosses "/"
 * too, as in the reference). */
#include "adx_filter.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    uint64_t matched;
} filt;

/* Keys kept in namespace ns: those any path of that namespace matches. Each
 * path's match count is updated so unmatched paths can be reported. */
static bool keep_key(filt *f, size_t n, int ns, const char *key)
{
    bool keep = false;
    for (size_t i = 0; i < n; i++)
        if (f[i].ns == ns && glob_match(f[i].pattern, key)) {
            f[i].matched++;
            keep = true;
        }
    return keep;
}

static void filter_frame(ad_frame *df, filt *f, size_t n, int ns)
{
    for (size_t i = 0; i < df->ncols;) {
        if (keep_key(f, n, ns, df->names[i]))
            i++;
        else
            ad_frame_remove_at(df, i); /* the index is not a column: never dropped */
    }
}

static void filter_dict(ad_dict *d, filt *f, size_t n, int ns)
{
    for (size_t i = 0; i < d->n;) {
        if (keep_key(f, n, ns, d->keys[i]))
            i++;
        else
            ad_dict_remove_at(d, i);
    }
}

bool flt_keeps(const char *const *paths, size_t n, const char *ns, const char *key)
{
    size_t nsl = strlen(ns);
    for (size_t i = 0; i < n; i++) {
        const char *slash = paths[i] ? strchr(paths[i], '/') : NULL;
        if (slash && (size_t)(slash - paths[i]) == nsl && memcmp(paths[i], ns, nsl) == 0 &&
            slash[1] && glob_match(slash + 1, key))
            return true;
    }
    return false;
}

int flt_apply(ad_anndata *a, const char *const *paths, size_t n, const char *ptr_base,
              adx_report *rep, adx_err *err)
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
        }
    }
    /* A namespace no path names has no pattern to match, so every key goes:
     * the same loop empties it. */
    for (int ns = 0; ns < AD_NS__COUNT; ns++) {
        if (ad_ns_table[ns].frame)
            filter_frame(ad_ns_frame(a, (ad_ns)ns), f, n, ns);
        else
            filter_dict(ad_ns_dict(a, (ad_ns)ns), f, n, ns);
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
