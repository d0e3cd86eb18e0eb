/* categorical_columns for inputs that are not JSON (h5ad files, Polis
 * folders): plain obs/var columns whose name matches a glob become
 * categoricals as pandas' astype("category") makes them (ad_cat_from_values,
 * AD_CAT_SORTED). For JSON the decoder does this while typing values. */
#include "adx_sanitize.h"

#include <inttypes.h>
#include <stdio.h>

#include "adx_glob.h"

/* Replaces *col with its categorical; *col untouched on failure. */
static int to_categorical(ad_elem **col, adx_err *err, const char *ptr)
{
    ad_elem *e = ad_elem_new(AD_K_CATEGORICAL);
    if (!e) return adx_err_set(err, ADX_E_NOMEM, ptr, "out of memory");
    if (ad_cat_from_values(&e->u.cat, &(*col)->u.arr, NULL, AD_CAT_SORTED, NULL, ptr, err) < 0) {
        ad_elem_free(e);
        return -1;
    }
    ad_elem_free(*col);
    *col = e;
    return 0;
}

static int frame(ad_frame *f, const char *name, glob_set *globs, uint64_t max_tests, adx_err *err)
{
    for (size_t c = 0; c < f->ncols; c++) {
        ad_elem *e = f->cols[c];
        if (e->kind != AD_K_ARRAY || e->u.arr.ndim != 1) continue;
        int m = glob_set_any(globs, f->names[c]);
        if (m < 0)
            return adx_err_set(err, ADX_E_LIMIT, "/categorical_columns",
                               "matching categorical_columns against the column names takes "
                               "more than max_include_tests (%" PRIu64 ") glob steps",
                               max_tests);
        if (!m) continue;
        char ptr[ADX_ERR_PTR_MAX];
        snprintf(ptr, sizeof ptr, "/%s", name);
        adx_ptr_append_key(ptr, sizeof ptr, f->names[c]);
        if (to_categorical(&f->cols[c], err, ptr)) return -1;
    }
    return 0;
}

int san_categorize_columns(ad_anndata *a, const char *const *globs, size_t n, uint64_t max_tests,
                           adx_err *err)
{
    if (!globs || !n) return 0;
    glob_set *s = glob_set_new(globs, n, max_tests, NULL);
    if (!s) return adx_err_set(err, ADX_E_NOMEM, "/categorical_columns", "out of memory");
    int rc = frame(&a->obs, "obs", s, max_tests, err);
    if (!rc) rc = frame(&a->var, "var", s, max_tests, err);
    glob_set_free(s);
    return rc;
}
