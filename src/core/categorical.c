/* The one categorical builder (adx_model.h, "categoricals"): every decoder
 * and every sanitize step that makes a categorical goes through here, so the
 * category order, the code width and what counts as missing are decided in
 * one place.
 *
 * From values: distinct values by open addressing over row numbers (one pass,
 * memory proportional to the number of distinct values), then only the
 * distinct values are sorted, so a long column with few categories costs
 * O(n + k log k) comparisons rather than O(n log n). */
#include "adx_model.h"

#include "adx_common.h"
#include "adx_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ad_dtype ad_codes_dtype(uint64_t n_categories)
{
    /* pandas coerce_indexer_dtype: strict "<" against each type's maximum. */
    if (n_categories < INT8_MAX) return AD_I8;
    if (n_categories < INT16_MAX) return AD_I16;
    if (n_categories < INT32_MAX) return AD_I32;
    return AD_I64;
}

/* ------------------------------------------------------ value semantics */

static bool is_missing(const ad_array *a, const uint8_t *missing, uint64_t i)
{
    if (missing && missing[i]) return true;
    return ad_dtype_is_float(a->dtype) && isnan(ad_array_get_f64(a, i));
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_row(const ad_array *a, uint64_t i)
{
    if (a->dtype == AD_STR) {
        const char *s = ad_str_at(a, i);
        size_t len = ad_str_len(a, i);
        uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
        for (size_t k = 0; k < len; k++)
            h = (h ^ (unsigned char)s[k]) * 0x100000001b3ull;
        return mix(h);
    }
    if (ad_dtype_is_float(a->dtype)) {
        double x = ad_array_get_f64(a, i);
        if (x == 0) x = 0; /* -0.0 and 0.0 are one category, as in pandas */
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        return mix(bits);
    }
    if (a->dtype == AD_U64) return mix(((const uint64_t *)a->data)[i]);
    return mix((uint64_t)ad_array_get_i64(a, i));
}

static bool same_value(const ad_array *a, uint64_t i, uint64_t j)
{
    if (a->dtype == AD_STR)
        return ad_str_len(a, i) == ad_str_len(a, j) &&
               memcmp(ad_str_at(a, i), ad_str_at(a, j), ad_str_len(a, i)) == 0;
    if (ad_dtype_is_float(a->dtype)) return ad_array_get_f64(a, i) == ad_array_get_f64(a, j);
    if (a->dtype == AD_U64) return ((const uint64_t *)a->data)[i] == ((const uint64_t *)a->data)[j];
    return ad_array_get_i64(a, i) == ad_array_get_i64(a, j);
}

typedef struct order_ctx {
    const ad_array *a;
    ad_cat_order order;
    const uint64_t *first; /* group → its first row */
} order_ctx;

/* Order of two distinct values (rows i and j). */
static int value_cmp(const ad_array *a, ad_cat_order order, uint64_t i, uint64_t j)
{
    if (a->dtype == AD_STR) {
        size_t li = ad_str_len(a, i), lj = ad_str_len(a, j);
        if (order == AD_CAT_NATURAL)
            return ad_natural_cmp(ad_str_at(a, i), li, ad_str_at(a, j), lj);
        /* Bytes of UTF-8 compare as code points do: Python's str order. */
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

static int groups_cmp(const void *x, const void *y, void *ctx)
{
    const order_ctx *o = ctx;
    return value_cmp(o->a, o->order, o->first[*(const uint64_t *)x],
                     o->first[*(const uint64_t *)y]);
}

/* ------------------------------------------------------- distinct values */

typedef struct distinct {
    const ad_array *a;
    uint64_t *slot;  /* first row of the group + 1; 0 = empty */
    uint64_t *gid;   /* group of that slot */
    uint64_t *first; /* per group: its first row */
    size_t cap, n;
    adx_budget *budget;
    const char *ptr;
    adx_err *err;
    uint64_t charged; /* for slot, gid and first */
} distinct;

static int distinct_grow(distinct *d)
{
    size_t cap = d->cap ? d->cap * 2 : 1024;
    if (cap > SIZE_MAX / (2 * sizeof(uint64_t))) return -1;
    /* slot and gid at cap, first at cap / 2; the old tables are freed
     * only once the new ones are filled, so both are held for a moment. */
    uint64_t want = (uint64_t)cap * 20;
    if (adx_budget_charge(d->budget, want, d->ptr, d->err) < 0) return -2;
    uint64_t *slot = calloc(cap, sizeof *slot), *gid = malloc(cap * sizeof *gid);
    if (!slot || !gid) {
        free(slot);
        free(gid);
        adx_budget_release(d->budget, want);
        return -1;
    }
    for (size_t k = 0; k < d->cap; k++) {
        if (!d->slot[k]) continue;
        size_t j = (size_t)hash_row(d->a, d->slot[k] - 1) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = d->slot[k];
        gid[j] = d->gid[k];
    }
    free(d->slot);
    free(d->gid);
    adx_budget_release(d->budget, d->charged);
    d->charged = want;
    d->slot = slot;
    d->gid = gid;
    d->cap = cap;
    /* Groups never outnumber half the slots, so `first` grows with them. */
    uint64_t *first = realloc(d->first, (cap / 2) * sizeof *first);
    if (!first) return -1;
    d->first = first;
    return 0;
}

/* Group of row i, a new one when its value is new; -1 on ENOMEM, -2 when
 * the budget refused (err set). */
static int64_t distinct_add(distinct *d, uint64_t i)
{
    int g;
    if ((d->n + 1) * 2 > d->cap && (g = distinct_grow(d)) < 0) return g;
    size_t j = (size_t)hash_row(d->a, i) & (d->cap - 1);
    while (d->slot[j]) {
        if (same_value(d->a, d->slot[j] - 1, i)) return (int64_t)d->gid[j];
        j = (j + 1) & (d->cap - 1);
    }
    d->slot[j] = i + 1;
    d->gid[j] = d->n;
    d->first[d->n] = i;
    return (int64_t)d->n++;
}

static int gather(ad_array *out, const ad_array *a, const uint64_t *rows, uint64_t k)
{
    uint64_t sh[1] = {k};
    if (a->dtype == AD_STR) {
        ad_strbuild sb = {0};
        for (uint64_t c = 0; c < k; c++)
            if (ad_sb_push(&sb, ad_str_at(a, rows[c]), ad_str_len(a, rows[c])) < 0) {
                ad_sb_free(&sb);
                return -1;
            }
        return ad_sb_finish(&sb, out, 1, sh);
    }
    if (ad_array_init(out, a->dtype, 1, sh) < 0) return -1;
    size_t es = ad_dtype_size(a->dtype);
    for (uint64_t c = 0; c < k; c++)
        memcpy((char *)out->data + c * es, (const char *)a->data + rows[c] * es, es);
    return 0;
}

int ad_cat_from_values(ad_categorical *out, const ad_array *values, const uint8_t *missing,
                       ad_cat_order order, adx_budget *budget, const char *ptr, adx_err *err)
{
    memset(out, 0, sizeof *out);
    uint64_t n = values->n;
    size_t nb;
    distinct d = {.a = values, .budget = budget, .ptr = ptr ? ptr : "", .err = err};
    int64_t *group = NULL;
    uint64_t *sorted = NULL, *rank = NULL, charged = 0;
    int ret = -1;
    bool said = false; /* err holds the reason already (not ENOMEM) */
    if (values->ndim != 1) {
        said = true;
        if (err) adx_err_set(err, ADX_E_INTERNAL, d.ptr, "a categorical's values must be 1-d");
        goto out;
    }
    if (ad_bytes(AD_I64, n ? n : 1, &nb) < 0) goto out;
    if (adx_budget_charge(budget, nb, d.ptr, err) < 0) {
        said = true;
        goto out;
    }
    charged = nb;
    if (!(group = malloc(nb))) goto out;
    for (uint64_t i = 0; i < n; i++) {
        if (is_missing(values, missing, i)) {
            group[i] = -1;
        } else if ((group[i] = distinct_add(&d, i)) < 0) {
            said = group[i] == -2;
            goto out;
        }
    }
    uint64_t k = d.n;
    /* Groups in category order; rank[g] is group g's code. Distinct values
     * never compare equal, so the unstable qsort gives the one order. */
    uint64_t sb = (k ? k : 1) * 2 * sizeof *sorted;
    if (adx_budget_charge(budget, sb, d.ptr, err) < 0) {
        said = true;
        goto out;
    }
    charged += sb;
    sorted = malloc((k ? k : 1) * sizeof *sorted);
    rank = malloc((k ? k : 1) * sizeof *rank);
    if (!sorted || !rank) goto out;
    for (uint64_t g = 0; g < k; g++)
        sorted[g] = g;
    order_ctx oc = {values, order, d.first};
    if (k) qsort_r(sorted, (size_t)k, sizeof *sorted, groups_cmp, &oc);
    for (uint64_t c = 0; c < k; c++) {
        rank[sorted[c]] = c;
        sorted[c] = d.first[sorted[c]]; /* now: the category's row */
    }
    if (gather(&out->categories, values, sorted, k) < 0) goto out;
    uint64_t sh[1] = {n};
    if (ad_array_init(&out->codes, ad_codes_dtype(k), 1, sh) < 0) goto out;
    for (uint64_t i = 0; i < n; i++)
        ad_codes_set(&out->codes, i, group[i] < 0 ? -1 : (int64_t)rank[group[i]]);
    ret = 0;
out:
    if (ret < 0) {
        ad_array_free(&out->categories);
        ad_array_free(&out->codes);
        memset(out, 0, sizeof *out);
        if (!said && err)
            adx_err_set(err, ADX_E_NOMEM, d.ptr, "out of memory building a categorical");
    }
    free(group);
    free(sorted);
    free(rank);
    free(d.slot);
    free(d.gid);
    free(d.first);
    adx_budget_release(budget, charged + d.charged);
    return ret;
}

/* ------------------------------------------------- codes and categories */

int ad_cat_check_categories(const ad_array *cats, ad_cat_problem *p)
{
    memset(p, 0, sizeof *p);
    if (cats->ndim != 1) {
        p->kind = AD_CAT_NOT_1D;
        return 1;
    }
    if (ad_dtype_is_float(cats->dtype))
        for (uint64_t i = 0; i < cats->n; i++)
            if (isnan(ad_array_get_f64(cats, i))) {
                p->kind = AD_CAT_NAN;
                p->at = i;
                return 1;
            }
    distinct d = {.a = cats};
    int ret = 0;
    for (uint64_t i = 0; i < cats->n; i++) {
        size_t groups = d.n;
        int64_t g = distinct_add(&d, i);
        if (g < 0) {
            ret = -1;
            break;
        }
        if (d.n == groups) {
            p->kind = AD_CAT_DUPLICATE;
            p->at = i;
            p->first = d.first[g];
            ret = 1;
            break;
        }
    }
    free(d.slot);
    free(d.gid);
    free(d.first);
    return ret;
}

int ad_cat_from_codes(ad_categorical *out, ad_array *categories, const int64_t *codes, uint64_t n,
                      bool ordered, ad_cat_problem *p)
{
    memset(out, 0, sizeof *out);
    int rc = ad_cat_check_categories(categories, p);
    if (rc == 0) {
        uint64_t ncat = categories->n;
        for (uint64_t i = 0; i < n; i++)
            if (codes[i] < -1 || (codes[i] >= 0 && (uint64_t)codes[i] >= ncat)) {
                *p = (ad_cat_problem){.kind = AD_CAT_CODE_RANGE, .at = i, .code = codes[i]};
                rc = 1;
                break;
            }
    }
    if (rc == 0) {
        uint64_t sh[1] = {n};
        if (ad_array_init(&out->codes, ad_codes_dtype(categories->n), 1, sh) < 0) rc = -1;
    }
    if (rc != 0) {
        ad_array_free(categories);
        return rc;
    }
    for (uint64_t i = 0; i < n; i++)
        ad_codes_set(&out->codes, i, codes[i]);
    out->categories = *categories;
    memset(categories, 0, sizeof *categories);
    out->ordered = ordered;
    return 0;
}
