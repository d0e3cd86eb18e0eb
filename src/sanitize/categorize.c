/* san_strings_to_categoricals: what anndata 0.8 does before writing h5ad
 * (anndata/_io/h5ad.py calls AnnData.strings_to_categoricals() on obs and
 * var, then on raw.var). Per string column: pd.Categorical(values) — sorted
 * distinct values — kept only when there are fewer categories than rows, then
 * reordered by natsort.natsorted (san_natural_cmp, natsort.c). */
#include "adx_sanitize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A distinct value and its group number in code-point order. */
typedef struct sview {
    const char *s;
    size_t len;
    uint64_t g;
} sview;

static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static int idx_bytes_cmp(const void *x, const void *y, void *ctx)
{
    const ad_array *a = ctx;
    uint64_t i = *(const uint64_t *)x, j = *(const uint64_t *)y;
    int c = bytes_cmp(ad_str_at(a, i), ad_str_len(a, i), ad_str_at(a, j), ad_str_len(a, j));
    if (c) return c;
    return i < j ? -1 : i > j; /* total order keeps qsort deterministic */
}

static int view_nat_cmp(const void *x, const void *y)
{
    const sview *a = x, *b = y;
    return san_natural_cmp(a->s, a->len, b->s, b->len);
}

ad_dtype san_codes_dtype(uint64_t n_categories)
{
    /* pandas coerce_indexer_dtype: strict "<" against each type's maximum. */
    if (n_categories < INT8_MAX) return AD_I8;
    if (n_categories < INT16_MAX) return AD_I16;
    if (n_categories < INT32_MAX) return AD_I32;
    return AD_I64;
}

static void set_code(ad_array *codes, uint64_t i, int64_t v)
{
    switch (codes->dtype) {
    case AD_I8:
        ((int8_t *)codes->data)[i] = (int8_t)v;
        break;
    case AD_I16:
        ((int16_t *)codes->data)[i] = (int16_t)v;
        break;
    case AD_I32:
        ((int32_t *)codes->data)[i] = (int32_t)v;
        break;
    default:
        ((int64_t *)codes->data)[i] = v;
        break;
    }
}

/* Returns 1 when converted, 0 when left as is, -1 on ENOMEM. */
static int column_to_categorical(ad_elem *col)
{
    const ad_array *a = &col->u.arr;
    uint64_t n = a->n;
    if (n < 2) return 0; /* one row cannot have fewer categories than rows */
    size_t nb;
    if (ad_bytes(AD_U64, n, &nb) < 0) return -1;
    uint64_t *order = malloc(nb);
    uint64_t *group = malloc(nb);
    sview *cats = NULL;
    uint64_t *rank = NULL;
    ad_array categories = {0}, codes = {0};
    int ret = -1;
    if (!order || !group) goto out;
    for (uint64_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, idx_bytes_cmp, (void *)a);
    uint64_t ncat = 0;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t i = order[k], p = k ? order[k - 1] : 0;
        if (k == 0 ||
            bytes_cmp(ad_str_at(a, i), ad_str_len(a, i), ad_str_at(a, p), ad_str_len(a, p)) != 0)
            ncat++;
        group[i] = ncat - 1;
    }
    if (ncat >= n) {
        ret = 0;
        goto out;
    }
    /* ncat < n, so these sizes cannot overflow where n * 8 did not. */
    cats = malloc((size_t)ncat * sizeof *cats);
    rank = malloc((size_t)ncat * sizeof *rank);
    if (!cats || !rank) goto out;
    for (uint64_t k = 0, g = 0; k < n; k++) {
        uint64_t i = order[k];
        if (group[i] == g) {
            cats[g] = (sview){ad_str_at(a, i), ad_str_len(a, i), g};
            g++;
        }
    }
    qsort(cats, (size_t)ncat, sizeof *cats, view_nat_cmp);
    ad_strbuild sb = {0};
    for (uint64_t r = 0; r < ncat; r++) {
        rank[cats[r].g] = r;
        if (ad_sb_push(&sb, cats[r].s, cats[r].len) < 0) {
            ad_sb_free(&sb);
            goto out;
        }
    }
    if (ad_sb_finish(&sb, &categories, 1, NULL) < 0) goto out;
    uint64_t shape[1] = {n};
    if (ad_array_init(&codes, san_codes_dtype(ncat), 1, shape) < 0) goto out;
    for (uint64_t i = 0; i < n; i++)
        set_code(&codes, i, (int64_t)rank[group[i]]);
    ad_array_free(&col->u.arr);
    col->kind = AD_K_CATEGORICAL;
    col->u.cat = (ad_categorical){.codes = codes, .categories = categories, .ordered = false};
    memset(&codes, 0, sizeof codes);
    memset(&categories, 0, sizeof categories);
    ret = 1;
out:
    ad_array_free(&categories);
    ad_array_free(&codes);
    free(order);
    free(group);
    free(cats);
    free(rank);
    return ret;
}

static int frame_to_categoricals(ad_frame *f, const char *where, adx_err *err)
{
    for (size_t i = 0; i < f->ncols; i++) {
        ad_elem *c = f->cols[i];
        /* infer_dtype(...) == "string" holds only for plain string columns. */
        if (!c || c->kind != AD_K_ARRAY || c->u.arr.dtype != AD_STR || c->u.arr.ndim != 1) continue;
        if (column_to_categorical(c) < 0) {
            char ptr[ADX_ERR_PTR_MAX];
            snprintf(ptr, sizeof ptr, "%s", where);
            adx_ptr_append_key(ptr, sizeof ptr, f->names[i]);
            return adx_err_set(err, ADX_E_NOMEM, ptr,
                               "out of memory converting a string column to a categorical");
        }
    }
    return 0;
}

int san_strings_to_categoricals(ad_anndata *a, adx_err *err)
{
    if (frame_to_categoricals(&a->obs, "/obs", err) < 0 ||
        frame_to_categoricals(&a->var, "/var", err) < 0)
        return -1;
    if (a->raw && frame_to_categoricals(&a->raw->var, "/raw/var", err) < 0) return -1;
    return 0;
}
