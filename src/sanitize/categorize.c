/* san_strings_to_categoricals: what anndata 0.8 does before writing h5ad
 * (anndata/_io/h5ad.py calls AnnData.strings_to_categoricals() on obs and
 * var, then on raw.var). Per string column: pd.Categorical(values) — sorted
 * distinct values — kept only when there are fewer categories than rows, then
 * reordered by natsort.natsorted (san_natural_cmp, natsort.c). */
#include "adx_sanitize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A distinct value and its group number (order of first appearance). */
typedef struct sview {
    const char *s;
    size_t len;
    uint64_t g;
} sview;

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

/* Distinct values by open addressing over row numbers: one pass over the
 * column, memory proportional to the number of distinct values. */
typedef struct distinct {
    const ad_array *a;
    uint64_t *slot; /* row + 1 of the group's first row; 0 = empty */
    uint64_t *gid;  /* group of the row in the same slot */
    size_t cap, n;
} distinct;

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static int distinct_grow(distinct *d)
{
    size_t cap = d->cap ? d->cap * 2 : 1024;
    if (cap > SIZE_MAX / (2 * sizeof(uint64_t))) return -1;
    uint64_t *slot = calloc(cap, sizeof *slot), *gid = malloc(cap * sizeof *gid);
    if (!slot || !gid) {
        free(slot);
        free(gid);
        return -1;
    }
    for (size_t k = 0; k < d->cap; k++) {
        if (!d->slot[k]) continue;
        uint64_t r = d->slot[k] - 1;
        size_t j = (size_t)hash_bytes(ad_str_at(d->a, r), ad_str_len(d->a, r)) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = d->slot[k];
        gid[j] = d->gid[k];
    }
    free(d->slot);
    free(d->gid);
    d->slot = slot;
    d->gid = gid;
    d->cap = cap;
    return 0;
}

/* Group of row i, adding a new group when its value is new; -1 on ENOMEM. */
static int64_t distinct_add(distinct *d, uint64_t i)
{
    if ((d->n + 1) * 2 > d->cap && distinct_grow(d) < 0) return -1;
    const char *s = ad_str_at(d->a, i);
    size_t len = ad_str_len(d->a, i);
    size_t j = (size_t)hash_bytes(s, len) & (d->cap - 1);
    while (d->slot[j]) {
        uint64_t r = d->slot[j] - 1;
        if (ad_str_len(d->a, r) == len && memcmp(ad_str_at(d->a, r), s, len) == 0)
            return (int64_t)d->gid[j];
        j = (j + 1) & (d->cap - 1);
    }
    d->slot[j] = i + 1;
    d->gid[j] = d->n;
    return (int64_t)d->n++;
}

/* Returns 1 when converted, 0 when left as is, -1 on ENOMEM. */
static int column_to_categorical(ad_elem *col)
{
    const ad_array *a = &col->u.arr;
    uint64_t n = a->n;
    if (n < 2) return 0; /* one row cannot have fewer categories than rows */
    size_t nb;
    if (ad_bytes(AD_U64, n, &nb) < 0) return -1;
    uint64_t *group = malloc(nb);
    distinct d = {.a = a};
    sview *cats = NULL;
    uint64_t *rank = NULL;
    ad_array categories = {0}, codes = {0};
    int ret = -1;
    if (!group) goto out;
    for (uint64_t i = 0; i < n; i++) {
        int64_t g = distinct_add(&d, i);
        if (g < 0) goto out;
        group[i] = (uint64_t)g;
    }
    uint64_t ncat = d.n;
    if (ncat >= n) {
        ret = 0;
        goto out;
    }
    size_t cb, rb;
    if (__builtin_mul_overflow((size_t)ncat, sizeof *cats, &cb) ||
        __builtin_mul_overflow((size_t)ncat, sizeof *rank, &rb))
        goto out;
    cats = malloc(cb);
    rank = malloc(rb);
    if (!cats || !rank) goto out;
    for (size_t k = 0; k < d.cap; k++)
        if (d.slot[k]) {
            uint64_t r = d.slot[k] - 1;
            cats[d.gid[k]] = (sview){ad_str_at(a, r), ad_str_len(a, r), d.gid[k]};
        }
    /* Values are distinct, so san_natural_cmp is a total order and the
     * unstable qsort gives natsorted's result. */
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
        ad_codes_set(&codes, i, (int64_t)rank[group[i]]);
    ad_array_free(&col->u.arr);
    col->kind = AD_K_CATEGORICAL;
    col->u.cat = (ad_categorical){.codes = codes, .categories = categories, .ordered = false};
    memset(&codes, 0, sizeof codes);
    memset(&categories, 0, sizeof categories);
    ret = 1;
out:
    ad_array_free(&categories);
    ad_array_free(&codes);
    free(group);
    free(d.slot);
    free(d.gid);
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
