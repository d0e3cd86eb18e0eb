/* adx_model implementation: allocation with overflow checks, deep copies,
 * frees, and the few value helpers every codec needs. */
#include "adx_model.h"

#include "adx_common.h"
#include "adx_err.h"

#include <math.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[AD_DTYPE__COUNT] = {
    [AD_BOOL] = {"bool", 1},   [AD_I8] = {"int8", 1},     [AD_I16] = {"int16", 2},
    [AD_I32] = {"int32", 4},   [AD_I64] = {"int64", 8},   [AD_U8] = {"uint8", 1},
    [AD_U16] = {"uint16", 2},  [AD_U32] = {"uint32", 4},  [AD_U64] = {"uint64", 8},
    [AD_F32] = {"float32", 4}, [AD_F64] = {"float64", 8}, [AD_STR] = {"str", 0},
};

size_t ad_dtype_size(ad_dtype t)
{
    return t < AD_DTYPE__COUNT ? dtypes[t].size : 0;
}
const char *ad_dtype_name(ad_dtype t)
{
    return t < AD_DTYPE__COUNT ? dtypes[t].name : "?";
}

int ad_dtype_from_name(const char *name, ad_dtype *out)
{
    for (int t = 0; t < AD_STR; t++)
        if (strcmp(name, dtypes[t].name) == 0) {
            *out = (ad_dtype)t;
            return 0;
        }
    return -1;
}

bool ad_dtype_is_int(ad_dtype t)
{
    return t >= AD_I8 && t <= AD_U64;
}
bool ad_dtype_is_signed(ad_dtype t)
{
    return t >= AD_I8 && t <= AD_I64;
}
bool ad_dtype_is_float(ad_dtype t)
{
    return t == AD_F32 || t == AD_F64;
}

int ad_shape_product(int ndim, const uint64_t *shape, uint64_t *out)
{
    uint64_t n = 1;
    bool zero = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0)
            zero = true;
        else if (__builtin_mul_overflow(n, shape[i], &n))
            return -1;
    }
    *out = zero ? 0 : n;
    return 0;
}

int ad_bytes(ad_dtype t, uint64_t n, size_t *out)
{
    uint64_t b;
    if (__builtin_mul_overflow(n, (uint64_t)(t == AD_STR ? 1 : ad_dtype_size(t)), &b) ||
        b > SIZE_MAX / 2)
        return -1;
    *out = (size_t)b;
    return 0;
}

/* ---------------------------------------------------------------- arrays */

int ad_array_init(ad_array *a, ad_dtype t, int ndim, const uint64_t *shape)
{
    memset(a, 0, sizeof *a);
    if (ndim < 0 || ndim > AD_MAX_NDIM || t >= AD_DTYPE__COUNT) return -1;
    uint64_t n;
    if (ad_shape_product(ndim, shape, &n) < 0) return -1;
    a->dtype = t;
    a->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        a->shape[i] = shape[i];
    a->n = n;
    if (t == AD_STR) {
        size_t b;
        if (n >= UINT64_MAX / 8 || ad_bytes(AD_U64, n + 1, &b) < 0) goto fail;
        a->soff = malloc(b);
        size_t sb;
        /* Each element gets its own NUL so soff[i+1]-soff[i] is len+1. */
        if (!a->soff || ad_bytes(AD_U8, n ? n : 1, &sb) < 0) goto fail;
        a->str = calloc(1, sb);
        if (!a->str) goto fail;
        for (uint64_t i = 0; i <= n; i++)
            a->soff[i] = i;
        return 0;
    }
    size_t b;
    if (ad_bytes(t, n, &b) < 0) goto fail;
    a->data = adx_mem_calloc(b);
    if (!a->data) goto fail;
    return 0;
fail:
    ad_array_free(a);
    return -1;
}

void ad_array_free(ad_array *a)
{
    if (!a) return;
    if (a->map)
        munmap(a->map, a->map_len);
    else
        free(a->data);
    free(a->str);
    free(a->soff);
    memset(a, 0, sizeof *a);
}

int ad_array_clone(ad_array *dst, const ad_array *src)
{
    *dst = *src;
    dst->data = NULL;
    dst->str = NULL;
    dst->soff = NULL;
    dst->map = NULL;
    dst->map_len = 0;
    if (src->dtype == AD_STR) {
        size_t ob, sb;
        if (ad_bytes(AD_U64, src->n + 1, &ob) < 0) return -1;
        sb = src->soff ? (size_t)src->soff[src->n] : 0;
        dst->soff = malloc(ob);
        dst->str = malloc(sb ? sb : 1);
        if (!dst->soff || !dst->str) {
            ad_array_free(dst);
            return -1;
        }
        if (src->soff)
            memcpy(dst->soff, src->soff, ob);
        else
            memset(dst->soff, 0, ob);
        if (sb) memcpy(dst->str, src->str, sb);
        return 0;
    }
    size_t b;
    if (ad_bytes(src->dtype, src->n, &b) < 0) return -1;
    dst->data = adx_mem_alloc(b);
    if (!dst->data) return -1;
    if (b) memcpy(dst->data, src->data, b);
    return 0;
}

double ad_array_get_f64(const ad_array *a, uint64_t i)
{
    switch (a->dtype) {
    case AD_BOOL:
    case AD_U8:
        return ((const uint8_t *)a->data)[i];
    case AD_I8:
        return ((const int8_t *)a->data)[i];
    case AD_I16:
        return ((const int16_t *)a->data)[i];
    case AD_I32:
        return ((const int32_t *)a->data)[i];
    case AD_I64:
        return (double)((const int64_t *)a->data)[i];
    case AD_U16:
        return ((const uint16_t *)a->data)[i];
    case AD_U32:
        return ((const uint32_t *)a->data)[i];
    case AD_U64:
        return (double)((const uint64_t *)a->data)[i];
    case AD_F32:
        return ((const float *)a->data)[i];
    case AD_F64:
        return ((const double *)a->data)[i];
    default:
        return NAN;
    }
}

void ad_codes_set(ad_array *codes, uint64_t i, int64_t v)
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

int64_t ad_array_get_i64(const ad_array *a, uint64_t i)
{
    switch (a->dtype) {
    case AD_BOOL:
    case AD_U8:
        return ((const uint8_t *)a->data)[i];
    case AD_I8:
        return ((const int8_t *)a->data)[i];
    case AD_I16:
        return ((const int16_t *)a->data)[i];
    case AD_I32:
        return ((const int32_t *)a->data)[i];
    case AD_I64:
        return ((const int64_t *)a->data)[i];
    case AD_U16:
        return ((const uint16_t *)a->data)[i];
    case AD_U32:
        return ((const uint32_t *)a->data)[i];
    case AD_U64:
        return (int64_t)((const uint64_t *)a->data)[i];
    case AD_F32:
        return (int64_t)((const float *)a->data)[i];
    case AD_F64:
        return (int64_t)((const double *)a->data)[i];
    default:
        return 0;
    }
}

/* ------------------------------------------------------- string builder */

int ad_sb_push(ad_strbuild *b, const char *s, size_t len)
{
    if (b->n + 2 > b->ncap) {
        uint64_t nc = b->ncap ? b->ncap * 2 : 64;
        if (nc > SIZE_MAX / sizeof(uint64_t)) return -1;
        uint64_t *o = realloc(b->off, (size_t)nc * sizeof *o);
        if (!o) return -1;
        b->off = o;
        b->ncap = nc;
        if (b->n == 0) b->off[0] = 0;
    }
    if (len > SIZE_MAX / 4 || b->len + len + 1 > SIZE_MAX / 2) return -1;
    if (b->len + len + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->len + len + 1)
            c *= 2;
        char *nb = realloc(b->buf, c);
        if (!nb) return -1;
        b->buf = nb;
        b->cap = c;
    }
    if (len) memcpy(b->buf + b->len, s, len);
    b->len += len;
    b->buf[b->len++] = '\0';
    b->n++;
    b->off[b->n] = b->len;
    return 0;
}

void ad_sb_free(ad_strbuild *b)
{
    free(b->buf);
    free(b->off);
    memset(b, 0, sizeof *b);
}

int ad_sb_finish(ad_strbuild *b, ad_array *out, int ndim, const uint64_t *shape)
{
    memset(out, 0, sizeof *out);
    uint64_t one[1] = {b->n};
    if (!shape && ndim == 1) shape = one;
    uint64_t n;
    if (ndim < 0 || ndim > AD_MAX_NDIM || ad_shape_product(ndim, shape, &n) < 0 || n != b->n) {
        ad_sb_free(b);
        return -1;
    }
    if (b->n == 0) {
        ad_sb_free(b);
        int r = ad_array_init(out, AD_STR, ndim, shape);
        return r;
    }
    out->dtype = AD_STR;
    out->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        out->shape[i] = shape[i];
    out->n = n;
    out->str = b->buf;
    out->soff = b->off;
    memset(b, 0, sizeof *b);
    return 0;
}

int ad_array_from_cstrs(ad_array *a, const char *const *s, uint64_t n)
{
    ad_strbuild b = {0};
    for (uint64_t i = 0; i < n; i++)
        if (ad_sb_push(&b, s[i], strlen(s[i])) < 0) {
            ad_sb_free(&b);
            memset(a, 0, sizeof *a);
            return -1;
        }
    return ad_sb_finish(&b, a, 1, NULL);
}

/* -------------------------------------------------------------- objects */

void ad_object_free(ad_object *o)
{
    if (!o) return;
    free(o->kind);
    free(o->num);
    free(o->str);
    free(o->soff);
    memset(o, 0, sizeof *o);
}

int ad_object_clone(ad_object *dst, const ad_object *src)
{
    *dst = *src;
    dst->kind = NULL;
    dst->num = NULL;
    dst->str = NULL;
    dst->soff = NULL;
    size_t sb = src->soff ? (size_t)src->soff[src->n] : 0;
    dst->kind = malloc(src->n ? src->n : 1);
    dst->num = malloc((src->n ? src->n : 1) * sizeof(ad_num));
    dst->soff = malloc((src->n + 1) * sizeof(uint64_t));
    dst->str = malloc(sb ? sb : 1);
    if (!dst->kind || !dst->num || !dst->soff || !dst->str) {
        ad_object_free(dst);
        return -1;
    }
    if (src->n) {
        memcpy(dst->kind, src->kind, src->n);
        memcpy(dst->num, src->num, src->n * sizeof(ad_num));
    }
    if (src->soff)
        memcpy(dst->soff, src->soff, (src->n + 1) * sizeof(uint64_t));
    else
        memset(dst->soff, 0, (src->n + 1) * sizeof(uint64_t));
    if (sb) memcpy(dst->str, src->str, sb);
    return 0;
}

/* ------------------------------------------------------------- elements */

ad_elem *ad_elem_new(ad_kind k)
{
    ad_elem *e = calloc(1, sizeof *e);
    if (e) e->kind = k;
    return e;
}

static void elem_clear(ad_elem *e)
{
    switch (e->kind) {
    case AD_K_ARRAY:
        ad_array_free(&e->u.arr);
        break;
    case AD_K_SPARSE:
        ad_array_free(&e->u.sp.data);
        ad_array_free(&e->u.sp.indices);
        ad_array_free(&e->u.sp.indptr);
        break;
    case AD_K_FRAME:
        ad_frame_free(&e->u.df);
        break;
    case AD_K_CATEGORICAL:
        ad_array_free(&e->u.cat.codes);
        ad_array_free(&e->u.cat.categories);
        break;
    case AD_K_NULLABLE_INT:
    case AD_K_NULLABLE_BOOL:
        ad_array_free(&e->u.nl.values);
        ad_array_free(&e->u.nl.mask);
        break;
    case AD_K_DICT:
        ad_dict_free(&e->u.dict);
        break;
    case AD_K_OBJECT:
        ad_object_free(&e->u.obj);
        break;
    case AD_K_RECARRAY:
        ad_recarray_free(&e->u.rec);
        break;
    default:
        break;
    }
}

void ad_elem_free(ad_elem *e)
{
    if (!e) return;
    elem_clear(e);
    free(e);
}

ad_elem *ad_elem_from_array(ad_array *a)
{
    ad_elem *e = ad_elem_new(AD_K_ARRAY);
    if (!e) {
        ad_array_free(a);
        return NULL;
    }
    e->u.arr = *a;
    memset(a, 0, sizeof *a);
    return e;
}

ad_elem *ad_elem_clone(const ad_elem *s)
{
    if (!s) return NULL;
    ad_elem *d = ad_elem_new(s->kind);
    if (!d) return NULL;
    int r = 0;
    switch (s->kind) {
    case AD_K_ARRAY:
        r = ad_array_clone(&d->u.arr, &s->u.arr);
        break;
    case AD_K_SPARSE:
        d->u.sp.csc = s->u.sp.csc;
        d->u.sp.shape[0] = s->u.sp.shape[0];
        d->u.sp.shape[1] = s->u.sp.shape[1];
        r = ad_array_clone(&d->u.sp.data, &s->u.sp.data);
        if (!r) r = ad_array_clone(&d->u.sp.indices, &s->u.sp.indices);
        if (!r) r = ad_array_clone(&d->u.sp.indptr, &s->u.sp.indptr);
        break;
    case AD_K_FRAME:
        r = ad_frame_clone(&d->u.df, &s->u.df);
        break;
    case AD_K_CATEGORICAL:
        d->u.cat.ordered = s->u.cat.ordered;
        r = ad_array_clone(&d->u.cat.codes, &s->u.cat.codes);
        if (!r) r = ad_array_clone(&d->u.cat.categories, &s->u.cat.categories);
        break;
    case AD_K_NULLABLE_INT:
    case AD_K_NULLABLE_BOOL:
        r = ad_array_clone(&d->u.nl.values, &s->u.nl.values);
        if (!r) r = ad_array_clone(&d->u.nl.mask, &s->u.nl.mask);
        break;
    case AD_K_DICT:
        r = ad_dict_clone(&d->u.dict, &s->u.dict);
        break;
    case AD_K_OBJECT:
        r = ad_object_clone(&d->u.obj, &s->u.obj);
        break;
    case AD_K_RECARRAY:
        r = ad_recarray_clone(&d->u.rec, &s->u.rec);
        break;
    default:
        break;
    }
    if (r) {
        ad_elem_free(d);
        return NULL;
    }
    return d;
}

uint64_t ad_elem_rows(const ad_elem *e)
{
    switch (e->kind) {
    case AD_K_ARRAY:
        return e->u.arr.ndim ? e->u.arr.shape[0] : 0;
    case AD_K_SPARSE:
        return e->u.sp.shape[0];
    case AD_K_FRAME:
        return e->u.df.n_rows;
    case AD_K_CATEGORICAL:
        return e->u.cat.codes.n;
    case AD_K_NULLABLE_INT:
    case AD_K_NULLABLE_BOOL:
        return e->u.nl.values.n;
    case AD_K_OBJECT:
        return e->u.obj.ndim ? e->u.obj.shape[0] : 0;
    case AD_K_RECARRAY:
        return e->u.rec.n;
    default:
        return 0;
    }
}

const char *ad_elem_encoding(const ad_elem *e)
{
    switch (e->kind) {
    case AD_K_ARRAY:
        if (e->u.arr.ndim == 0) return e->u.arr.dtype == AD_STR ? "string" : "numeric-scalar";
        return e->u.arr.dtype == AD_STR ? "string-array" : "array";
    case AD_K_SPARSE:
        return e->u.sp.csc ? "csc_matrix" : "csr_matrix";
    case AD_K_FRAME:
        return "dataframe";
    case AD_K_CATEGORICAL:
        return "categorical";
    case AD_K_NULLABLE_INT:
        return "nullable-integer";
    case AD_K_NULLABLE_BOOL:
        return "nullable-boolean";
    case AD_K_DICT:
        return "dict";
    case AD_K_OBJECT:
        return "object";
    case AD_K_NULL:
        return "null";
    case AD_K_RECARRAY:
        return "rec-array";
    default:
        return "?";
    }
}

/* ---------------------------------------------------------------- dicts */

static int grow(void **a, void **b, size_t *cap, size_t need, size_t sa, size_t sbsz)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 8;
    while (c < need)
        c *= 2;
    void *na = realloc(*a, c * sa);
    if (!na) return -1;
    *a = na;
    void *nb = realloc(*b, c * sbsz);
    if (!nb) return -1;
    *b = nb;
    *cap = c;
    return 0;
}

/* A dict's (keys, vals) and a frame's (names, cols) are the same parallel
 * arrays of owned names and elements; these work on either. */
typedef struct pairs {
    char ***names;
    ad_elem ***vals;
    size_t *n, *cap;
} pairs;

static pairs dict_pairs(ad_dict *d)
{
    return (pairs){&d->keys, &d->vals, &d->n, &d->cap};
}

static pairs frame_pairs(ad_frame *f)
{
    return (pairs){&f->names, &f->cols, &f->ncols, &f->cap};
}

static int pairs_append(pairs p, const char *name, ad_elem *v)
{
    char *k = strdup(name);
    if (!k || grow((void **)p.names, (void **)p.vals, p.cap, *p.n + 1, sizeof(char *),
                   sizeof(ad_elem *)) < 0) {
        free(k);
        ad_elem_free(v);
        return -1;
    }
    (*p.names)[*p.n] = k;
    (*p.vals)[*p.n] = v;
    (*p.n)++;
    return 0;
}

static int pairs_put(pairs p, const char *name, ad_elem *v)
{
    for (size_t i = 0; i < *p.n; i++)
        if (strcmp((*p.names)[i], name) == 0) {
            ad_elem_free((*p.vals)[i]);
            (*p.vals)[i] = v;
            return 0;
        }
    return pairs_append(p, name, v);
}

static void pairs_remove_at(pairs p, size_t i)
{
    if (i >= *p.n) return;
    size_t after = *p.n - i - 1;
    free((*p.names)[i]);
    ad_elem_free((*p.vals)[i]);
    memmove(*p.names + i, *p.names + i + 1, after * sizeof **p.names);
    memmove(*p.vals + i, *p.vals + i + 1, after * sizeof **p.vals);
    (*p.n)--;
}

/* Entries that keep() passes move down over the freed ones: one pass. */
static void pairs_retain(pairs p, ad_keep_fn keep, void *ud)
{
    size_t kept = 0;
    for (size_t i = 0; i < *p.n; i++) {
        if (keep((*p.names)[i], (*p.vals)[i], ud)) {
            (*p.names)[kept] = (*p.names)[i];
            (*p.vals)[kept++] = (*p.vals)[i];
        } else {
            free((*p.names)[i]);
            ad_elem_free((*p.vals)[i]);
        }
    }
    *p.n = kept;
}

static void pairs_free(pairs p)
{
    for (size_t i = 0; i < *p.n; i++) {
        free((*p.names)[i]);
        ad_elem_free((*p.vals)[i]);
    }
    free(*p.names);
    free(*p.vals);
}

int ad_dict_put(ad_dict *d, const char *key, ad_elem *v)
{
    return pairs_put(dict_pairs(d), key, v);
}

int ad_dict_append(ad_dict *d, const char *key, ad_elem *v)
{
    return pairs_append(dict_pairs(d), key, v);
}

ad_elem *ad_dict_get(const ad_dict *d, const char *key)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->keys[i], key) == 0) return d->vals[i];
    return NULL;
}

void ad_dict_remove_at(ad_dict *d, size_t i)
{
    pairs_remove_at(dict_pairs(d), i);
}

void ad_dict_retain(ad_dict *d, ad_keep_fn keep, void *ud)
{
    pairs_retain(dict_pairs(d), keep, ud);
}

void ad_dict_free(ad_dict *d)
{
    if (!d) return;
    pairs_free(dict_pairs(d));
    memset(d, 0, sizeof *d);
}

int ad_dict_clone(ad_dict *dst, const ad_dict *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->n; i++) {
        ad_elem *v = ad_elem_clone(src->vals[i]);
        if (!v || ad_dict_append(dst, src->keys[i], v) < 0) {
            ad_dict_free(dst);
            return -1;
        }
    }
    return 0;
}

/* --------------------------------------------------------------- frames */

int ad_frame_add(ad_frame *f, const char *name, ad_elem *col)
{
    return pairs_put(frame_pairs(f), name, col);
}

int ad_frame_append(ad_frame *f, const char *name, ad_elem *col)
{
    return pairs_append(frame_pairs(f), name, col);
}

void ad_frame_retain(ad_frame *f, ad_keep_fn keep, void *ud)
{
    pairs_retain(frame_pairs(f), keep, ud);
}

void ad_frame_remove_at(ad_frame *f, size_t i)
{
    pairs_remove_at(frame_pairs(f), i);
}

int ad_frame_default_index(ad_frame *f, uint64_t n_rows)
{
    /* pandas' RangeIndex as strings. The sizes are known up front, so the
     * buffers are allocated once and the digits written directly: a frame
     * of 10^6 rows otherwise spends most of its decode in snprintf and in
     * reallocations that touch fresh pages again. */
    uint64_t chars = 0;
    for (uint64_t lo = 0, hi = 10, w = 1; lo < n_rows; w++) {
        uint64_t end = hi < n_rows ? hi : n_rows; /* [lo, end) have w digits */
        chars += (end - lo) * (w + 1);
        lo = end;
        hi = hi > UINT64_MAX / 10 ? UINT64_MAX : hi * 10;
    }
    ad_array idx;
    uint64_t shape[1] = {n_rows};
    if (n_rows == 0) {
        if (ad_array_init(&idx, AD_STR, 1, shape) < 0) return -1;
    } else {
        size_t ob, sb;
        if (ad_bytes(AD_U64, n_rows + 1, &ob) < 0 || ad_bytes(AD_U8, chars, &sb) < 0) return -1;
        memset(&idx, 0, sizeof idx);
        idx.dtype = AD_STR;
        idx.ndim = 1;
        idx.shape[0] = idx.n = n_rows;
        idx.soff = malloc(ob);
        idx.str = malloc(sb);
        if (!idx.soff || !idx.str) {
            ad_array_free(&idx);
            return -1;
        }
        char digits[24] = "0";
        int nd = 1; /* digits[0..nd) is the decimal text of i, kept incrementally */
        uint64_t o = 0;
        for (uint64_t i = 0; i < n_rows; i++) {
            idx.soff[i] = o;
            memcpy(idx.str + o, digits, (size_t)nd);
            o += (uint64_t)nd;
            idx.str[o++] = '\0';
            int k = nd - 1;
            while (k >= 0 && digits[k] == '9')
                digits[k--] = '0';
            if (k >= 0) {
                digits[k]++;
            } else {
                memmove(digits + 1, digits, (size_t)nd++);
                digits[0] = '1';
            }
        }
        idx.soff[n_rows] = o;
    }
    ad_array_free(&f->index);
    f->index = idx;
    f->index_default = true;
    f->n_rows = n_rows;
    return 0;
}

static int frames_take_names(ad_dict *d, const ad_array *names, adx_budget *budget, adx_err *err)
{
    for (size_t i = 0; i < d->n; i++) {
        ad_frame *f = d->vals[i]->kind == AD_K_FRAME ? &d->vals[i]->u.df : NULL;
        /* a row count that disagrees is ad_anndata_check's 400 */
        if (!f || !f->index_default || f->n_rows != names->n) continue;
        uint64_t bytes =
            (names->n + 1) * sizeof(uint64_t) + (names->soff ? names->soff[names->n] : 0);
        if (adx_budget_charge(budget, bytes, NULL, err) < 0) return -1;
        ad_array copy;
        if (ad_array_clone(&copy, names) < 0)
            return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        ad_array_free(&f->index);
        f->index = copy;
        f->index_default = false;
    }
    return 0;
}

int ad_anndata_frames_take_axis_names(ad_anndata *a, adx_budget *budget, adx_err *err)
{
    if (frames_take_names(&a->obsm, &a->obs.index, budget, err) < 0 ||
        frames_take_names(&a->varm, &a->var.index, budget, err) < 0)
        return -1;
    return a->raw ? frames_take_names(&a->raw->varm, &a->raw->var.index, budget, err) : 0;
}

void ad_frame_free(ad_frame *f)
{
    if (!f) return;
    ad_array_free(&f->index);
    free(f->index_name);
    pairs_free(frame_pairs(f));
    memset(f, 0, sizeof *f);
}

int ad_frame_clone(ad_frame *dst, const ad_frame *src)
{
    memset(dst, 0, sizeof *dst);
    dst->n_rows = src->n_rows;
    dst->index_default = src->index_default;
    if (src->index.soff || src->index.data) {
        if (ad_array_clone(&dst->index, &src->index) < 0) goto fail;
    }
    if (src->index_name && !(dst->index_name = strdup(src->index_name))) goto fail;
    for (size_t i = 0; i < src->ncols; i++) {
        ad_elem *c = ad_elem_clone(src->cols[i]);
        if (!c || ad_frame_append(dst, src->names[i], c) < 0) goto fail;
    }
    return 0;
fail:
    ad_frame_free(dst);
    return -1;
}

/* -------------------------------------------------------------- anndata */

ad_anndata *ad_anndata_new(void)
{
    return calloc(1, sizeof(ad_anndata));
}

void ad_raw_free(ad_raw *r)
{
    if (!r) return;
    ad_elem_free(r->X);
    ad_frame_free(&r->var);
    ad_dict_free(&r->varm);
    free(r);
}

void ad_anndata_free(ad_anndata *a)
{
    if (!a) return;
    ad_elem_free(a->X);
    ad_frame_free(&a->obs);
    ad_frame_free(&a->var);
    ad_dict_free(&a->obsm);
    ad_dict_free(&a->varm);
    ad_dict_free(&a->layers);
    ad_dict_free(&a->obsp);
    ad_dict_free(&a->varp);
    ad_dict_free(&a->uns);
    ad_raw_free(a->raw);
    free(a);
}

ad_anndata *ad_anndata_clone(const ad_anndata *s)
{
    ad_anndata *d = ad_anndata_new();
    if (!d) return NULL;
    d->n_obs = s->n_obs;
    d->n_vars = s->n_vars;
    if (s->X && !(d->X = ad_elem_clone(s->X))) goto fail;
    if (ad_frame_clone(&d->obs, &s->obs) || ad_frame_clone(&d->var, &s->var) ||
        ad_dict_clone(&d->obsm, &s->obsm) || ad_dict_clone(&d->varm, &s->varm) ||
        ad_dict_clone(&d->layers, &s->layers) || ad_dict_clone(&d->obsp, &s->obsp) ||
        ad_dict_clone(&d->varp, &s->varp) || ad_dict_clone(&d->uns, &s->uns))
        goto fail;
    if (s->raw) {
        d->raw = calloc(1, sizeof *d->raw);
        if (!d->raw) goto fail;
        if ((s->raw->X && !(d->raw->X = ad_elem_clone(s->raw->X))) ||
            ad_frame_clone(&d->raw->var, &s->raw->var) ||
            ad_dict_clone(&d->raw->varm, &s->raw->varm))
            goto fail;
    }
    return d;
fail:
    ad_anndata_free(d);
    return NULL;
}

uint64_t ad_array_bytes(const ad_array *a)
{
    if (a->dtype == AD_STR) return (a->soff ? a->soff[a->n] : 0) + (a->n + 1) * 8;
    return a->n * ad_dtype_size(a->dtype);
}

static void walk_dict(const ad_dict *d, const ad_walk *w);
static void walk_frame(const ad_frame *f, const ad_walk *w);

static void walk_elem(const ad_elem *e, const ad_walk *w)
{
    if (!e) return;
    switch (e->kind) {
    case AD_K_ARRAY:
        w->on_array(&e->u.arr, e->kind, w->ud);
        break;
    case AD_K_SPARSE:
        w->on_array(&e->u.sp.data, e->kind, w->ud);
        w->on_array(&e->u.sp.indices, e->kind, w->ud);
        w->on_array(&e->u.sp.indptr, e->kind, w->ud);
        break;
    case AD_K_FRAME:
        walk_frame(&e->u.df, w);
        break;
    case AD_K_CATEGORICAL:
        w->on_array(&e->u.cat.codes, e->kind, w->ud);
        w->on_array(&e->u.cat.categories, e->kind, w->ud);
        break;
    case AD_K_NULLABLE_INT:
    case AD_K_NULLABLE_BOOL:
        w->on_array(&e->u.nl.values, e->kind, w->ud);
        w->on_array(&e->u.nl.mask, e->kind, w->ud);
        break;
    case AD_K_DICT:
        walk_dict(&e->u.dict, w);
        break;
    case AD_K_OBJECT:
        if (w->on_object) w->on_object(&e->u.obj, w->ud);
        break;
    case AD_K_RECARRAY:
        for (size_t i = 0; i < e->u.rec.nfields; i++)
            w->on_array(&e->u.rec.fields[i], e->kind, w->ud);
        break;
    default:
        break;
    }
}

static void walk_dict(const ad_dict *d, const ad_walk *w)
{
    for (size_t i = 0; i < d->n; i++)
        walk_elem(d->vals[i], w);
}

static void walk_frame(const ad_frame *f, const ad_walk *w)
{
    w->on_array(&f->index, AD_K_ARRAY, w->ud);
    for (size_t i = 0; i < f->ncols; i++)
        walk_elem(f->cols[i], w);
}

void ad_anndata_walk(const ad_anndata *a, const ad_walk *w)
{
    walk_elem(a->X, w);
    walk_frame(&a->obs, w);
    walk_frame(&a->var, w);
    const ad_dict *dicts[] = {&a->obsm, &a->varm, &a->layers, &a->obsp, &a->varp, &a->uns};
    for (size_t i = 0; i < sizeof dicts / sizeof *dicts; i++)
        walk_dict(dicts[i], w);
    if (a->raw) {
        walk_elem(a->raw->X, w);
        walk_frame(&a->raw->var, w);
        walk_dict(&a->raw->varm, w);
    }
}

static void add_array_bytes(const ad_array *arr, ad_kind holder, void *ud)
{
    (void)holder;
    *(uint64_t *)ud += ad_array_bytes(arr);
}

static void add_object_bytes(const ad_object *obj, void *ud)
{
    *(uint64_t *)ud += obj->n * 17 + (obj->soff ? obj->soff[obj->n] : 0);
}

uint64_t ad_anndata_bytes(const ad_anndata *a)
{
    uint64_t s = 0;
    ad_anndata_walk(
        a, &(ad_walk){.on_array = add_array_bytes, .on_object = add_object_bytes, .ud = &s});
    return s;
}

/* -------------------------------------------------------- record arrays */

int ad_recarray_add(ad_recarray *r, const char *name, ad_array *a)
{
    for (size_t i = 0; i < r->nfields; i++)
        if (!strcmp(r->names[i], name)) {
            ad_array_free(a);
            return -1;
        }
    return ad_recarray_append(r, name, a);
}

int ad_recarray_append(ad_recarray *r, const char *name, ad_array *a)
{
    if (a->ndim != 1 || (r->nfields && a->shape[0] != r->n)) goto fail;
    if (r->nfields == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 4;
        char **nn = realloc(r->names, nc * sizeof *nn);
        if (!nn) goto fail;
        r->names = nn;
        ad_array *nf = realloc(r->fields, nc * sizeof *nf);
        if (!nf) goto fail;
        r->fields = nf;
        r->cap = nc;
    }
    char *k = strdup(name);
    if (!k) goto fail;
    r->names[r->nfields] = k;
    r->fields[r->nfields] = *a;
    memset(a, 0, sizeof *a);
    if (r->nfields++ == 0) r->n = r->fields[0].shape[0];
    return 0;
fail:
    ad_array_free(a);
    return -1;
}

void ad_recarray_free(ad_recarray *r)
{
    for (size_t i = 0; i < r->nfields; i++) {
        free(r->names[i]);
        ad_array_free(&r->fields[i]);
    }
    free(r->names);
    free(r->fields);
    memset(r, 0, sizeof *r);
}

int ad_recarray_clone(ad_recarray *dst, const ad_recarray *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->nfields; i++) {
        ad_array c;
        if (ad_array_clone(&c, &src->fields[i]) || ad_recarray_append(dst, src->names[i], &c)) {
            ad_recarray_free(dst);
            return -1;
        }
    }
    dst->n = src->n;
    return 0;
}

/* ------------------------------------------------------------ pyfloat */

/* numpy's str() of a float: the shortest digits that round-trip in the
 * value's own precision (dragon4 "unique" mode), positional when
 * 1e-4 <= |x| < 1e16 (compared in long double, as numpy does: 0.0001f is
 * 9.99999997e-05 and prints "1e-04"), else scientific with two or more
 * exponent digits. */
static void fmt_shortest(double x, bool f32, char buf[32])
{
    if (isnan(x)) {
        strcpy(buf, "nan");
        return;
    }
    if (isinf(x)) {
        strcpy(buf, x < 0 ? "-inf" : "inf");
        return;
    }
    /* The correctly rounded %.*e at the shortest round-tripping precision
     * is that digit string; round-tripping is monotonic in the precision,
     * so a binary search needs ~4 conversions instead of up to 17. */
    char e[40], best[40];
    int lo = 0, hi = f32 ? 8 : 16;
    snprintf(best, sizeof best, "%.*e", hi, x);
    /* Measured data mostly needs all digits: probe one below the maximum
     * first, so those values cost two conversions, not five. */
    snprintf(e, sizeof e, "%.*e", hi - 1, x);
    if (f32 ? strtof(e, NULL) == (float)x : strtod(e, NULL) == x) {
        memcpy(best, e, sizeof e);
        hi--;
    } else {
        lo = hi;
    }
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(e, sizeof e, "%.*e", mid, x);
        bool ok = f32 ? strtof(e, NULL) == (float)x : strtod(e, NULL) == x;
        if (ok) {
            memcpy(best, e, sizeof e);
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    char digits[24];
    int nd = 0;
    const char *p = best;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 23) digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char *o = buf;
    if (neg) *o++ = '-';
    long double ax = fabsl((long double)x);
    if (ax == 0 || (ax >= 1e-4L && ax < 1e16L)) {
        if (exp < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -exp - 1; i++)
                *o++ = '0';
            memcpy(o, digits, (size_t)nd);
            o += nd;
        } else {
            for (int i = 0; i <= exp; i++)
                *o++ = i < nd ? digits[i] : '0';
            *o++ = '.';
            if (nd > exp + 1) {
                memcpy(o, digits + exp + 1, (size_t)(nd - exp - 1));
                o += nd - exp - 1;
            } else {
                *o++ = '0';
            }
        }
        *o = '\0';
        return;
    }
    *o++ = digits[0];
    if (nd > 1) {
        *o++ = '.';
        memcpy(o, digits + 1, (size_t)(nd - 1));
        o += nd - 1;
    }
    /* double exponents reach 3 digits (1e-308); %02u pads to numpy's 2. */
    unsigned ae = (unsigned)(exp < 0 ? -exp : exp) % 1000u;
    snprintf(o, (size_t)(buf + 32 - o), "e%c%02u", exp < 0 ? '-' : '+', ae);
}

void ad_fmt_pyfloat(double x, char buf[32])
{
    /* For a double, numpy's value test picks the same notation as Python's
     * repr, which decides on the shortest digits' exponent (< -4 or >= 16):
     * a double below 1e-4 never has "0.0001" as its shortest form. */
    fmt_shortest(x, false, buf);
}

void ad_fmt_npfloat32(float x, char buf[32])
{
    fmt_shortest((double)x, true, buf);
}
