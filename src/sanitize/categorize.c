/* san_strings_to_categoricals: what anndata 0.8 does before writing h5ad
 * (anndata/_io/h5ad.py calls AnnData.strings_to_categoricals() on obs and
 * var, then on raw.var). Per string column: pd.Categorical(values) — sorted
 * distinct values — kept only when there are fewer categories than rows, then
 * reordered by natsort.natsorted: ad_cat_from_values with AD_CAT_NATURAL. */
#include "adx_sanitize.h"

#include <stdio.h>

/* Returns 1 when converted, 0 when left as is, -1 on ENOMEM or a budget
 * refusal (err set). The builder's scratch is charged to ctl's budget while
 * it runs (core/categorical.c), the kept categorical for as long as the
 * request lasts. */
static int column_to_categorical(ad_elem *col, const char *ptr, const adx_ctl *ctl, adx_err *err)
{
    uint64_t n = col->u.arr.n;
    if (n < 2) return 0; /* one row cannot have fewer categories than rows */
    ad_categorical cat;
    if (ad_cat_from_values(&cat, &col->u.arr, NULL, AD_CAT_NATURAL, ctl ? ctl->budget : NULL, ptr,
                           err) < 0)
        return -1;
    /* Kept only with fewer categories than rows: a column of distinct names
     * stays strings, as anndata leaves it. */
    if (cat.categories.n >= n) {
        ad_array_free(&cat.codes);
        ad_array_free(&cat.categories);
        return 0;
    }
    if (adx_ctl_charge(ctl, ad_array_bytes(&cat.codes) + ad_array_bytes(&cat.categories), ptr,
                       err) < 0) {
        ad_array_free(&cat.codes);
        ad_array_free(&cat.categories);
        return -1;
    }
    ad_array_free(&col->u.arr);
    col->kind = AD_K_CATEGORICAL;
    col->u.cat = cat;
    return 1;
}

static int frame_to_categoricals(ad_frame *f, const char *where, const adx_ctl *ctl, adx_err *err)
{
    for (size_t i = 0; i < f->ncols; i++) {
        ad_elem *c = f->cols[i];
        /* A column's sort of many distinct strings can take a while. */
        if (adx_ctl_canceled(ctl))
            return adx_err_set(err, ADX_E_CANCELED, where, "the job was canceled");
        /* infer_dtype(...) == "string" holds only for plain string columns. */
        if (!c || c->kind != AD_K_ARRAY || c->u.arr.dtype != AD_STR || c->u.arr.ndim != 1) continue;
        char ptr[ADX_ERR_PTR_MAX];
        snprintf(ptr, sizeof ptr, "%s", where);
        adx_ptr_append_key(ptr, sizeof ptr, f->names[i]);
        if (column_to_categorical(c, ptr, ctl, err) < 0) return -1;
    }
    return 0;
}

int san_strings_to_categoricals_ctl(ad_anndata *a, const adx_ctl *ctl, adx_err *err)
{
    if (frame_to_categoricals(&a->obs, "/obs", ctl, err) < 0 ||
        frame_to_categoricals(&a->var, "/var", ctl, err) < 0)
        return -1;
    if (a->raw && frame_to_categoricals(&a->raw->var, "/raw/var", ctl, err) < 0) return -1;
    return 0;
}

int san_strings_to_categoricals(ad_anndata *a, adx_err *err)
{
    return san_strings_to_categoricals_ctl(a, NULL, err);
}
