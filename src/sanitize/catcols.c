/* categorical_columns for inputs that are not JSON (h5ad files, Polis
 * folders): plain obs/var columns whose name matches a glob become
 * categoricals as pandas' astype("category") makes them — categories the
 * sorted distinct values (numbers by value, strings by code point), NaN a
 * missing code -1. For JSON the decoder does this while typing values. */
#include "adx_sanitize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adx_glob.h"

static int cmp_rows(const void *x, const void *y, void *ctx)
{
    const ad_array *a = ctx;
    uint64_t i = *(const uint64_t *)x, j = *(const uint64_t *)y;
    if (a->dtype == AD_STR) {
        size_t li = ad_str_len(a, i), lj = ad_str_len(a, j);
        int c = memcmp(ad_str_at(a, i), ad_str_at(a, j), li < lj ? li : lj);
        return c ? c : (li > lj) - (li < lj);
    }
    if (ad_dtype_is_float(a->dtype)) {
        double p = ad_array_get_f64(a, i), q = ad_array_get_f64(a, j);
        return (p > q) - (p < q);
    }
    if (a->dtype == AD_U64) {
        uint64_t p = ((const uint64_t *)a->data)[i], q = ((const uint64_t *)a->data)[j];
        return (p > q) - (p < q);
    }
    int64_t p = ad_array_get_i64(a, i), q = ad_array_get_i64(a, j);
    return (p > q) - (p < q);
}

static bool missing(const ad_array *a, uint64_t i)
{
    return ad_dtype_is_float(a->dtype) && isnan(ad_array_get_f64(a, i));
}

/* Replaces *col with its categorical; *col untouched on failure. */
static int to_categorical(ad_elem **col, adx_err *err, const char *ptr)
{
    const ad_array *a = &(*col)->u.arr;
    uint64_t n = a->n, k = 0;
    size_t bytes;
    if (ad_bytes(AD_I64, n ? n : 1, &bytes) < 0) goto nomem;
    uint64_t *rows = malloc(bytes);
    int64_t *code_of = malloc(bytes);
    ad_elem *e = ad_elem_new(AD_K_CATEGORICAL);
    if (!rows || !code_of || !e) {
        free(rows);
        free(code_of);
        ad_elem_free(e);
        goto nomem;
    }
    for (uint64_t i = 0; i < n; i++)
        if (!missing(a, i)) rows[k++] = i;
    qsort_r(rows, k, sizeof *rows, cmp_rows, (void *)a);
    /* Distinct values: first row of each run of equal ones. */
    uint64_t ncat = 0;
    for (uint64_t r = 0; r < k; r++) {
        if (r == 0 || cmp_rows(&rows[r - 1], &rows[r], (void *)a) != 0) rows[ncat++] = rows[r];
        code_of[rows[r]] = (int64_t)ncat - 1;
    }
    for (uint64_t i = 0; i < n; i++)
        if (missing(a, i)) code_of[i] = -1;
    ad_categorical *cat = &e->u.cat;
    uint64_t sh[1] = {ncat}, shn[1] = {n};
    int rc = 0;
    if (a->dtype == AD_STR) {
        ad_strbuild sb = {0};
        for (uint64_t c = 0; rc == 0 && c < ncat; c++)
            rc = ad_sb_push(&sb, ad_str_at(a, rows[c]), ad_str_len(a, rows[c]));
        if (rc == 0) rc = ad_sb_finish(&sb, &cat->categories, 1, sh);
        ad_sb_free(&sb);
    } else {
        rc = ad_array_init(&cat->categories, a->dtype, 1, sh);
        size_t es = ad_dtype_size(a->dtype);
        for (uint64_t c = 0; rc == 0 && c < ncat; c++)
            memcpy((char *)cat->categories.data + c * es, (const char *)a->data + rows[c] * es, es);
    }
    if (rc == 0) rc = ad_array_init(&cat->codes, san_codes_dtype(ncat), 1, shn);
    for (uint64_t i = 0; rc == 0 && i < n; i++)
        ad_codes_set(&cat->codes, i, code_of[i]);
    free(rows);
    free(code_of);
    if (rc != 0) {
        ad_elem_free(e);
        goto nomem;
    }
    ad_elem_free(*col);
    *col = e;
    return 0;
nomem:
    return adx_err_set(err, ADX_E_NOMEM, ptr, "out of memory");
}

static int frame(ad_frame *f, const char *name, const char *const *globs, size_t n, adx_err *err)
{
    for (size_t c = 0; c < f->ncols; c++) {
        ad_elem *e = f->cols[c];
        if (e->kind != AD_K_ARRAY || e->u.arr.ndim != 1) continue;
        if (!glob_match_any(globs, n, f->names[c])) continue;
        char ptr[ADX_ERR_PTR_MAX];
        snprintf(ptr, sizeof ptr, "/%s", name);
        adx_ptr_append_key(ptr, sizeof ptr, f->names[c]);
        if (to_categorical(&f->cols[c], err, ptr)) return -1;
    }
    return 0;
}

int san_categorize_columns(ad_anndata *a, const char *const *globs, size_t n, adx_err *err)
{
    if (!globs || !n) return 0;
    if (frame(&a->obs, "obs", globs, n, err)) return -1;
    return frame(&a->var, "var", globs, n, err);
}
