/* Arrays: plain nested JSON arrays with numpy-like inference, typed dense
 * arrays (data or base64) and csr/csc matrices.
 *
 * Nested arrays are decoded in two passes over the tree: the first fixes
 * the shape, checks it is rectangular and counts leaf kinds (no
 * allocation), the second writes into the typed buffer. A packed array
 * (jdec_tree.h) needs neither: its shape and kinds are known, and its words
 * are converted in place into the buffer the model keeps (jd_fill_packed). */
#include "jdec_internal.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- leaves */

enum { PL_OK = 0, PL_NULL_INT, PL_NULL_BOOL, PL_RANGE, PL_FRAC, PL_TYPE };

static int put_leaf_code(jv v, ad_dtype t, void *out, uint64_t i)
{
    int64_t iv = 0;
    double x = 0;
    enum { K_INT, K_REAL, K_BOOL, K_NULL } k;
    if (t == AD_F64 && jv_is_real(v)) {
        /* the bulk of every float matrix */
        ((double *)out)[i] = jv_real_value(v);
        return PL_OK;
    }
    if (jv_none(v)) v = JV_NULL; /* a key missing from a record */
    uint64_t big;
    switch (jv_typeof(v)) {
    case JV_INTEGER:
        if (jv_big_unsigned(v, &big)) {
            /* above INT64_MAX: only uint64 and the floats hold it */
            if (t == AD_U64)
                ((uint64_t *)out)[i] = big;
            else if (t == AD_F64)
                ((double *)out)[i] = (double)big;
            else if (t == AD_F32)
                ((float *)out)[i] = (float)big;
            else
                return PL_RANGE;
            return PL_OK;
        }
        k = K_INT;
        iv = (int64_t)jv_integer_value(v);
        break;
    case JV_REAL:
        k = K_REAL;
        x = jv_real_value(v);
        break;
    case JV_TRUE_T:
        k = K_BOOL;
        iv = 1;
        break;
    case JV_FALSE_T:
        k = K_BOOL;
        iv = 0;
        break;
    case JV_NULL_T:
        k = K_NULL;
        break;
    case JV_STRING:
        if (jv_string_length(v) > 9 || !jd_nanstr(jv_string_value(v), &x)) return PL_TYPE;
        k = K_REAL;
        break;
    default:
        return PL_TYPE;
    }
    if (t == AD_F64 || t == AD_F32) {
        double r = k == K_REAL ? x : k == K_NULL ? NAN : (double)iv;
        if (t == AD_F64)
            ((double *)out)[i] = r;
        else if (isfinite(r) && fabs(r) > FLT_MAX)
            ((float *)out)[i] = r > 0 ? INFINITY : -INFINITY; /* numpy: overflow → inf */
        else
            ((float *)out)[i] = (float)r;
        return PL_OK;
    }
    if (k == K_NULL) return t == AD_BOOL ? PL_NULL_BOOL : PL_NULL_INT;
    if (t == AD_BOOL) {
        if (k == K_REAL) {
            if (x != 0 && x != 1) return PL_TYPE;
            iv = (int64_t)x;
        }
        if (iv != 0 && iv != 1) return PL_RANGE;
        ((uint8_t *)out)[i] = (uint8_t)iv;
        return PL_OK;
    }
    if (k == K_REAL) {
        if (!isfinite(x) || x != floor(x)) return PL_FRAC;
        if (t == AD_U64 && x >= 9223372036854775808.0) {
            if (x >= 18446744073709551616.0) return PL_RANGE;
            ((uint64_t *)out)[i] = (uint64_t)x;
            return PL_OK;
        }
        if (x < -9223372036854775808.0 || x >= 9223372036854775808.0) return PL_RANGE;
        iv = (int64_t)x;
    }
    switch (t) {
    case AD_I8:
        if (iv < INT8_MIN || iv > INT8_MAX) return PL_RANGE;
        ((int8_t *)out)[i] = (int8_t)iv;
        break;
    case AD_I16:
        if (iv < INT16_MIN || iv > INT16_MAX) return PL_RANGE;
        ((int16_t *)out)[i] = (int16_t)iv;
        break;
    case AD_I32:
        if (iv < INT32_MIN || iv > INT32_MAX) return PL_RANGE;
        ((int32_t *)out)[i] = (int32_t)iv;
        break;
    case AD_I64:
        ((int64_t *)out)[i] = iv;
        break;
    case AD_U8:
        if (iv < 0 || iv > UINT8_MAX) return PL_RANGE;
        ((uint8_t *)out)[i] = (uint8_t)iv;
        break;
    case AD_U16:
        if (iv < 0 || iv > UINT16_MAX) return PL_RANGE;
        ((uint16_t *)out)[i] = (uint16_t)iv;
        break;
    case AD_U32:
        if (iv < 0 || iv > (int64_t)UINT32_MAX) return PL_RANGE;
        ((uint32_t *)out)[i] = (uint32_t)iv;
        break;
    case AD_U64:
        if (iv < 0) return PL_RANGE;
        ((uint64_t *)out)[i] = (uint64_t)iv;
        break;
    default:
        return PL_TYPE;
    }
    return PL_OK;
}

static int leaf_error(jd *d, int code, jv v, ad_dtype t)
{
    const char *tn = ad_dtype_name(t);
    char val[64] = "";
    uint64_t big;
    if (jv_big_unsigned(v, &big))
        snprintf(val, sizeof val, "%" PRIu64, big);
    else if (jv_is_integer(v))
        snprintf(val, sizeof val, "%" PRId64, (int64_t)jv_integer_value(v));
    else if (jv_is_real(v))
        ad_fmt_pyfloat(jv_real_value(v), val);
    switch (code) {
    case PL_NULL_INT:
        return jd_fail(d, ADX_E_SCHEMA,
                       "null in a %s array; integers cannot be missing, use "
                       "{\"encoding-type\": \"nullable-integer\"} or a float dtype",
                       tn);
    case PL_NULL_BOOL:
        return jd_fail(d, ADX_E_SCHEMA,
                       "null in a bool array; booleans cannot be missing, use "
                       "{\"encoding-type\": \"nullable-boolean\"}");
    case PL_RANGE:
        return jd_fail(d, ADX_E_SCHEMA, "value %s is out of range for %s", val, tn);
    case PL_FRAC:
        return jd_fail(d, ADX_E_SCHEMA, "value %s is not an integer, expected %s", val, tn);
    default:
        if (jv_is_string(v))
            return jd_fail(d, ADX_E_SCHEMA, "expected a number (%s), got string \"%.40s\"", tn,
                           jv_string_value(v));
        return jd_fail(d, ADX_E_SCHEMA, "expected a number (%s), got %s", tn, jd_type_name(v));
    }
}

int jd_put_leaf(jd *d, jv v, ad_dtype t, void *out, uint64_t i)
{
    int c = put_leaf_code(v, t, out, i);
    return c ? leaf_error(d, c, v, t) : 0;
}

int jd_dtype(jd *d, jv v, ad_dtype *t)
{
    if (!jv_is_string(v) || ad_dtype_from_name(jv_string_value(v), t) < 0) {
        char got[64];
        if (jv_is_string(v))
            snprintf(got, sizeof got, "\"%.40s\"", jv_string_value(v));
        else
            snprintf(got, sizeof got, "%s", jd_type_name(v));
        return jd_fail(d, ADX_E_SCHEMA,
                       "unknown dtype %s; expected one of bool, int8, int16, int32, int64, uint8, "
                       "uint16, uint32, uint64, float32, float64",
                       got);
    }
    return 0;
}

/* ------------------------------------------------------ nested arrays */

typedef struct nscan {
    int ndim;
    uint64_t shape[AD_MAX_NDIM];
    uint64_t n;
    uint64_t cnt[L__COUNT];
    uint64_t idx[AD_MAX_NDIM]; /* current position, for error pointers */
    bool ragged;
    bool have_bad;
    uint64_t bad[AD_MAX_NDIM]; /* first leaf a numeric array cannot hold */
} nscan;

static void ptr_push_idx(jd *d, const uint64_t *idx, int depth)
{
    for (int i = 0; i < depth; i++)
        adx_ptr_idx(&d->p, idx[i]);
}

static int ns_shape(jd *d, jv v, nscan *s)
{
    memset(s, 0, sizeof *s);
    uint32_t maxnd = d->lim->max_ndim < AD_MAX_NDIM ? d->lim->max_ndim : AD_MAX_NDIM;
    jv_packed pk;
    if (jv_packed_get(v, &pk)) {
        /* rectangular by construction: its shape without walking rows */
        for (int i = 0; i < pk.ndim; i++) {
            if ((uint32_t)s->ndim >= maxnd)
                return jd_fail(d, ADX_E_LIMIT, "arrays nested deeper than max_ndim = %u", maxnd);
            if (jd_check_dim(d, pk.shape[i])) return -1;
            s->shape[s->ndim++] = pk.shape[i];
        }
    }
    jv cur = s->ndim ? JV_NONE : v;
    while (jv_is_array(cur)) {
        if ((uint32_t)s->ndim >= maxnd)
            return jd_fail(d, ADX_E_LIMIT, "arrays nested deeper than max_ndim = %u", maxnd);
        size_t k = jv_array_size(cur);
        if (jd_check_dim(d, k)) return -1;
        s->shape[s->ndim++] = k;
        if (k == 0) break;
        cur = jv_array_get(cur, 0);
    }
    if (ad_shape_product(s->ndim, s->shape, &s->n) < 0)
        return jd_fail(d, ADX_E_LIMIT, "array size overflows; max_elements = %" PRIu64,
                       d->lim->max_elements);
    return jd_check_elements(d, s->n);
}

/* Check rectangularity and count leaf kinds. In `soft` mode a ragged array
 * only sets s->ragged (uns keeps it as JSON text). */
static int ns_walk(jd *d, jv v, int depth, nscan *s, bool soft)
{
    jv_packed pk;
    if (depth == 0 && jv_packed_get(v, &pk)) {
        /* numbers, nulls and booleans, rectangular: the kinds are the walk */
        s->cnt[L_REAL] += (pk.kinds & JV_K(0)) != 0;
        s->cnt[L_NULL] += (pk.kinds & JV_K(JVT_NULL)) != 0;
        s->cnt[L_INT] += (pk.kinds & (JV_K(JVT_INT) | JV_K(JVT_BIG))) != 0;
        s->cnt[L_BOOL] += (pk.kinds & (JV_K(JVT_TRUE) | JV_K(JVT_FALSE))) != 0;
        return 0;
    }
    size_t k = jv_array_size(v);
    if (k != s->shape[depth]) {
        if (soft) {
            s->ragged = true;
            return 0;
        }
        size_t m = d->p.len;
        ptr_push_idx(d, s->idx, depth);
        jd_fail(d, ADX_E_SHAPE,
                "row %" PRIu64 " has length %zu, expected %" PRIu64
                " (all rows must have the same length)",
                depth ? s->idx[depth - 1] : 0, k, s->shape[depth]);
        adx_ptr_pop(&d->p, m);
        return -1;
    }
    if (depth == s->ndim - 1) {
        uint32_t kinds = jv_array_kinds(v);
        if (!(kinds & ~(JV_K(0) | JV_K(JVT_NULL) | JV_K(JVT_INT)))) {
            /* numbers and nulls only: presence is all the inference needs */
            s->cnt[L_REAL] += (kinds & JV_K(0)) != 0;
            s->cnt[L_NULL] += (kinds & JV_K(JVT_NULL)) != 0;
            s->cnt[L_INT] += (kinds & JV_K(JVT_INT)) != 0;
            return 0;
        }
        for (size_t i = 0; i < k; i++) {
            int l = jd_leaf(jv_array_get(v, i));
            s->cnt[l]++;
            if (l >= L_STR && !s->have_bad) {
                s->have_bad = true;
                memcpy(s->bad, s->idx, sizeof s->bad);
                s->bad[depth] = i;
            }
            if (l == L_ARR && soft) {
                s->ragged = true;
                return 0;
            }
        }
        return 0;
    }
    for (size_t i = 0; i < k; i++) {
        jv c = jv_array_get(v, i);
        s->idx[depth] = i;
        if (!jv_is_array(c)) {
            if (soft) {
                s->ragged = true;
                return 0;
            }
            size_t m = d->p.len;
            ptr_push_idx(d, s->idx, depth + 1);
            jd_fail(d, ADX_E_SHAPE, "expected an array of length %" PRIu64 ", got %s",
                    s->shape[depth + 1], jd_type_name(c));
            adx_ptr_pop(&d->p, m);
            return -1;
        }
        if (ns_walk(d, c, depth + 1, s, soft) < 0) return -1;
        if (s->ragged) return 0;
    }
    return 0;
}

/* Where the second pass writes. */
typedef struct nsink {
    enum { SINK_NUM, SINK_STR, SINK_OBJ } kind;
    ad_dtype t;
    void *out;
    ad_strbuild *sb;
    jd_objb *ob;
    uint64_t pos;
} nsink;

static int ns_fill(jd *d, jv v, int depth, nscan *s, nsink *k)
{
    size_t n = jv_array_size(v);
    if (depth < s->ndim - 1) {
        for (size_t i = 0; i < n; i++) {
            s->idx[depth] = i;
            if (ns_fill(d, jv_array_get(v, i), depth + 1, s, k) < 0) return -1;
        }
        return 0;
    }
    switch (k->kind) {
    case SINK_NUM: {
        uint32_t kinds = jv_array_kinds(v);
        if (k->t == AD_F64 && !(kinds & ~(JV_K(0) | JV_K(JVT_NULL)))) {
            /* A NaN-boxed double is the double: copy the row, nulls → NaN. */
            double *o = (double *)k->out + k->pos;
            const jv *it = jv_array_items(v);
            if (n && !(kinds & JV_K(JVT_NULL)))
                memcpy(o, it, n * sizeof *o);
            else
                for (size_t i = 0; i < n; i++)
                    o[i] = jv_is_null(it[i]) ? NAN : jv_real_value(it[i]);
            k->pos += n;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            jv e = jv_array_get(v, i);
            int c = put_leaf_code(e, k->t, k->out, k->pos);
            if (c) {
                size_t m = d->p.len;
                s->idx[depth] = i;
                ptr_push_idx(d, s->idx, depth + 1);
                leaf_error(d, c, e, k->t);
                adx_ptr_pop(&d->p, m);
                return -1;
            }
            k->pos++;
        }
        break;
    }
    case SINK_STR:
        for (size_t i = 0; i < n; i++) {
            jv e = jv_array_get(v, i);
            if (jd_sb_push(d, k->sb, jv_string_value(e), jv_string_length(e))) return -1;
        }
        break;
    case SINK_OBJ:
        for (size_t i = 0; i < n; i++)
            if (jd_objb_put(d, k->ob, jv_array_get(v, i))) return -1;
        break;
    }
    return 0;
}

/* The error of flat value i of a packed array, at its pointer. */
static int packed_error(jd *d, int code, jv w, ad_dtype t, uint64_t i, int ndim,
                        const uint64_t *shape)
{
    uint64_t idx[AD_MAX_NDIM], r = i;
    for (int j = ndim - 1; j >= 0; j--) {
        idx[j] = shape[j] ? r % shape[j] : 0;
        r = shape[j] ? r / shape[j] : 0;
    }
    size_t m = d->p.len;
    ptr_push_idx(d, idx, ndim);
    leaf_error(d, code, w, t);
    adx_ptr_pop(&d->p, m);
    return -1;
}

/* Whether every value of an encoded run fits dtype t (no check needed). */
static bool enc_fits(const jv_packed *pk, ad_dtype t)
{
    if (t == AD_F64 || pk->enc == JV_ENC_BOOL) return true;
    if (pk->enc == JV_ENC_F32 || pk->enc == JV_ENC_F32X) return t == AD_F32;
    if (t == AD_F32) return true;
    int64_t lo = pk->lo, hi = pk->hi;
    switch (t) {
    case AD_BOOL:
        return lo >= 0 && hi <= 1;
    case AD_I8:
        return lo >= INT8_MIN && hi <= INT8_MAX;
    case AD_I16:
        return lo >= INT16_MIN && hi <= INT16_MAX;
    case AD_I32:
        return lo >= INT32_MIN && hi <= INT32_MAX;
    case AD_I64:
        return true;
    case AD_U8:
        return lo >= 0 && hi <= UINT8_MAX;
    case AD_U16:
        return lo >= 0 && hi <= UINT16_MAX;
    case AD_U32:
        return lo >= 0 && hi <= (int64_t)UINT32_MAX;
    case AD_U64:
        return lo >= 0;
    default:
        return false;
    }
}

/* The encodings whose bytes already are dtype t's (values checked). */
static bool enc_same_bytes(unsigned e, ad_dtype t)
{
    switch (e) {
    case JV_ENC_U8:
        return t == AD_U8 || t == AD_BOOL || t == AD_I8; /* values fit: checked */
    case JV_ENC_I8:
        return t == AD_I8 || t == AD_U8 || t == AD_BOOL;
    case JV_ENC_U16:
    case JV_ENC_I16:
        return t == AD_U16 || t == AD_I16;
    case JV_ENC_U32:
    case JV_ENC_I32:
        return t == AD_U32 || t == AD_I32;
    case JV_ENC_F32:
    case JV_ENC_F32X:
        return t == AD_F32;
    case JV_ENC_BOOL:
        return t == AD_BOOL || t == AD_U8 || t == AD_I8;
    default:
        return false;
    }
}

/* Values [lo, hi) of encoding e at `in` into dtype t at `out`, each known
 * to fit t (a C conversion is then what put_leaf_code stores), front to
 * back or back to front as the caller's overlap allows. */
#define ENC_LOOP(ST, DT)                                                                           \
    for (uint64_t k = lo; k < hi; k++) {                                                           \
        uint64_t i = back ? hi - 1 - (k - lo) : k;                                                 \
        ST x;                                                                                      \
        memcpy(&x, in + i * sizeof(ST), sizeof(ST));                                               \
        DT y = (DT)x;                                                                              \
        memcpy(out + i * sizeof(DT), &y, sizeof(DT));                                              \
    }
#define ENC_TO_ANY(ST)                                                                             \
    switch (t) {                                                                                   \
    case AD_I8:                                                                                    \
        ENC_LOOP(ST, int8_t);                                                                      \
        break;                                                                                     \
    case AD_U8:                                                                                    \
    case AD_BOOL:                                                                                  \
        ENC_LOOP(ST, uint8_t);                                                                     \
        break;                                                                                     \
    case AD_I16:                                                                                   \
        ENC_LOOP(ST, int16_t);                                                                     \
        break;                                                                                     \
    case AD_U16:                                                                                   \
        ENC_LOOP(ST, uint16_t);                                                                    \
        break;                                                                                     \
    case AD_I32:                                                                                   \
        ENC_LOOP(ST, int32_t);                                                                     \
        break;                                                                                     \
    case AD_U32:                                                                                   \
        ENC_LOOP(ST, uint32_t);                                                                    \
        break;                                                                                     \
    case AD_I64:                                                                                   \
        ENC_LOOP(ST, int64_t);                                                                     \
        break;                                                                                     \
    case AD_U64:                                                                                   \
        ENC_LOOP(ST, uint64_t);                                                                    \
        break;                                                                                     \
    case AD_F32:                                                                                   \
        ENC_LOOP(ST, float);                                                                       \
        break;                                                                                     \
    default:                                                                                       \
        ENC_LOOP(ST, double);                                                                      \
        break;                                                                                     \
    }

static void enc_convert(unsigned e, ad_dtype t, const char *in, char *out, uint64_t lo, uint64_t hi,
                        bool back)
{
    switch (e) {
    case JV_ENC_U8:
    case JV_ENC_BOOL:
        ENC_TO_ANY(uint8_t);
        return;
    case JV_ENC_I8:
        ENC_TO_ANY(int8_t);
        return;
    case JV_ENC_U16:
        ENC_TO_ANY(uint16_t);
        return;
    case JV_ENC_I16:
        ENC_TO_ANY(int16_t);
        return;
    case JV_ENC_U32:
        ENC_TO_ANY(uint32_t);
        return;
    case JV_ENC_I32:
        ENC_TO_ANY(int32_t);
        return;
    default:
        break;
    }
    if (t == AD_F64 || t == AD_F32) {
        /* float32 values: numpy's float64 / float32 of them */
        if (t == AD_F64) {
            ENC_LOOP(float, double);
        } else {
            ENC_LOOP(float, float);
        }
        return;
    }
    for (uint64_t k = lo; k < hi; k++) {
        uint64_t i = back ? hi - 1 - (k - lo) : k, r = 0;
        size_t sz = ad_dtype_size(t);
        (void)put_leaf_code(jv_enc_get(in, e, i), t, &r, 0); /* checked */
        memcpy(out + i * sz, &r, sz);
    }
}

/* An encoded block (jdec_tree.h) into dtype t at the block's start, in
 * place: front to back when t is no wider than the encoding (value i is
 * written at or before where it was read); else the block grows to hold
 * the array and the values at and after K = ceil(B / (sz - ss)) (B: where
 * they start) go back to front (value i's output begins at or after the
 * end of every value before it), then those before K front to back (their
 * outputs end before the next unread value, and the tail is done). */
static int fill_encoded(jd *d, jv v, jv_packed *pk, int ndim, const uint64_t *shape, ad_dtype t)
{
    const uint64_t n = pk->n;
    const unsigned e = pk->enc;
    const size_t ss = jv_enc_size(e), sz = ad_dtype_size(t);
    if (!enc_fits(pk, t))
        for (uint64_t i = 0; i < n; i++) {
            uint64_t scratch;
            jv w = jv_enc_get(pk->data, e, i);
            int c = put_leaf_code(w, t, &scratch, 0);
            if (c) return packed_error(d, c, w, t, i, ndim, shape);
        }
    if (sz > ss && jv_packed_grow(v, n * sz, pk, adx_ptr_str(&d->p), d->err)) return -1;
    const char *in = pk->data;
    char *out = pk->base;
    if (enc_same_bytes(e, t)) {
        memmove(out, in, n * sz);
    } else if (sz > ss) {
        uint64_t b = (uint64_t)(in - out), k = (b + (sz - ss) - 1) / (sz - ss);
        if (k > n) k = n;
        enc_convert(e, t, in, out, k, n, true);
        enc_convert(e, t, in, out, 0, k, false);
    } else {
        enc_convert(e, t, in, out, 0, n, false);
    }
    return 0;
}

int jd_fill_packed(jd *d, jv v, int ndim, const uint64_t *shape, ad_dtype t, ad_array *a)
{
    jv_packed pk;
    uint64_t n;
    if (t == AD_STR || !d->doc || !jv_packed_get(v, &pk) || ad_shape_product(ndim, shape, &n) < 0 ||
        pk.n != n)
        return 0;
    const size_t sz = ad_dtype_size(t);
    if (pk.enc != JV_ENC_WORDS) {
        if (fill_encoded(d, v, &pk, ndim, shape, t)) return -1;
        goto take;
    }
    const uint32_t k = pk.kinds, ints = JV_K(JVT_INT) | JV_K(JVT_TRUE) | JV_K(JVT_FALSE);
    /* float64 takes every leaf a packed array holds; otherwise find the
     * first value the dtype refuses before a single word is overwritten */
    bool sure = t == AD_F64 || (t == AD_I64 && !(k & ~ints)) ||
                (t == AD_BOOL && !(k & ~(JV_K(JVT_TRUE) | JV_K(JVT_FALSE))));
    for (uint64_t i = 0; !sure && i < n; i++) {
        uint64_t scratch;
        int c = put_leaf_code(pk.words[i], t, &scratch, 0);
        if (c) return packed_error(d, c, pk.words[i], t, i, ndim, shape);
    }
    /* In place, front to back: element i is written at or before word i of
     * the block (the words start `off` words in), after word i was read.
     * memcpy for every access, so no type-based reordering can move a
     * read after a write to the same bytes. */
    char *out = pk.base;
    const char *in = (const char *)pk.words;
    if (t == AD_F64 && !(k & ~JV_K(0))) {
        memmove(out, in, n * 8);
    } else if (t == AD_F64 && !(k & ~(JV_K(0) | JV_K(JVT_INT) | JV_K(JVT_NULL)))) {
        for (uint64_t i = 0; i < n; i++) {
            jv x;
            memcpy(&x, in + i * 8, 8);
            double r = jv_tag(x) == 0         ? jv_real_value(x)
                       : jv_tag(x) == JVT_INT ? (double)((int64_t)(x.b << 16) >> 16)
                                              : NAN;
            memcpy(out + i * 8, &r, 8);
        }
    } else if (t == AD_I64 && !(k & ~JV_K(JVT_INT))) {
        for (uint64_t i = 0; i < n; i++) {
            jv x;
            memcpy(&x, in + i * 8, 8);
            int64_t r = (int64_t)(x.b << 16) >> 16;
            memcpy(out + i * 8, &r, 8);
        }
    } else {
        for (uint64_t i = 0; i < n; i++) {
            jv x;
            uint64_t r = 0;
            memcpy(&x, in + i * 8, 8);
            (void)put_leaf_code(x, t, &r, 0); /* checked above */
            memcpy(out + i * sz, &r, sz);     /* the sz bytes it wrote */
        }
    }
take:;
    void *data = jv_packed_take(d->doc, v, n * sz);
    /* the block's charge went with it: the typed array is charged now */
    if (jd_reserve(d, t, n)) {
        free(data);
        return -1;
    }
    memset(a, 0, sizeof *a);
    a->dtype = t;
    a->ndim = ndim;
    memcpy(a->shape, shape, (size_t)ndim * sizeof *shape);
    a->n = n;
    a->data = data;
    return 1;
}

/* Numeric array of a known dtype from a nested array whose shape was scanned. */
static int fill_num(jd *d, jv v, nscan *s, ad_dtype t, ad_array *a)
{
    int r = jd_fill_packed(d, v, s->ndim, s->shape, t, a);
    if (r) return r < 0 ? -1 : 0;
    if (jd_reserve(d, t, s->n)) return -1;
    if (ad_array_init(a, t, s->ndim, s->shape) < 0) return jd_nomem(d);
    if (s->n == 0) return 0;
    nsink k = {.kind = SINK_NUM, .t = t, .out = a->data};
    if (ns_fill(d, v, 0, s, &k) < 0) {
        ad_array_free(a);
        return -1;
    }
    return 0;
}

static ad_elem *json_cell(jd *d, jv v)
{
    jd_objb b;
    if (jd_objb_init(d, &b, 0, NULL)) return NULL;
    if (jd_objb_put(d, &b, v)) {
        jd_objb_free(&b);
        return NULL;
    }
    return jd_objb_finish(d, &b);
}

ad_elem *jd_nested(jd *d, jv v, enum jd_mode mode)
{
    nscan s;
    if (!jv_is_array(v)) {
        jd_fail(d, ADX_E_SCHEMA, "expected an array, got %s", jd_type_name(v));
        return NULL;
    }
    if (ns_shape(d, v, &s)) return NULL;
    if (ns_walk(d, v, 0, &s, mode == JD_UNS) < 0) return NULL;
    if (mode == JD_UNS && (s.ragged || s.cnt[L_ARR] || s.cnt[L_OBJ])) return json_cell(d, v);

    /* s.cnt holds presence (rows of plain numbers are not counted one by
     * one), so every rule below asks which kinds occur. */
    const uint64_t *c = s.cnt;
    bool nums = c[L_INT] || c[L_REAL], other = c[L_STR] || c[L_ARR] || c[L_OBJ];
    ad_array a;
    if (mode == JD_MATRIX) {
        if (s.have_bad) {
            size_t m = d->p.len;
            ptr_push_idx(d, s.bad, s.ndim);
            jv e = v;
            for (int i = 0; i < s.ndim; i++)
                e = jv_array_get(e, s.bad[i]);
            if (jv_is_string(e))
                jd_fail(d, ADX_E_SCHEMA, "expected a number, got string \"%.40s\"",
                        jv_string_value(e));
            else
                jd_fail(d, ADX_E_SCHEMA, "expected a number, got %s", jd_type_name(e));
            adx_ptr_pop(&d->p, m);
            return NULL;
        }
        /* numpy: any float or None makes float64; bools with ints make int64 */
        ad_dtype t = (c[L_REAL] || c[L_NULL] || c[L_NANSTR] || s.n == 0) ? AD_F64
                     : c[L_INT]                                          ? AD_I64
                                                                         : AD_BOOL;
        if (fill_num(d, v, &s, t, &a)) return NULL;
        ad_elem *e = ad_elem_from_array(&a);
        if (!e) jd_nomem(d);
        return e;
    }

    /* uns: typed when numpy would give a numeric array (booleans among
     * numbers are 0/1, as np.array does), otherwise an object array for
     * sanitize. */
    ad_dtype t = AD_DTYPE__COUNT;
    if (s.n == 0)
        t = AD_F64;
    else if (nums && !other)
        t = (c[L_REAL] || c[L_NULL] || c[L_NANSTR]) ? AD_F64 : AD_I64;
    else if (c[L_BOOL] && !nums && !other && !c[L_NULL] && !c[L_NANSTR])
        t = AD_BOOL;
    else if ((c[L_STR] || c[L_NANSTR]) && !nums && !c[L_BOOL] && !c[L_NULL] && !c[L_ARR] &&
             !c[L_OBJ])
        t = AD_STR;
    if (t == AD_STR) {
        ad_strbuild sb = {0};
        nsink k = {.kind = SINK_STR, .sb = &sb};
        if (ns_fill(d, v, 0, &s, &k) < 0) {
            ad_sb_free(&sb);
            return NULL;
        }
        if (ad_sb_finish(&sb, &a, s.ndim, s.shape) < 0) {
            jd_nomem(d);
            return NULL;
        }
    } else if (t != AD_DTYPE__COUNT) {
        if (fill_num(d, v, &s, t, &a)) return NULL;
    } else {
        jd_objb b;
        if (jd_objb_init(d, &b, s.ndim, s.shape)) return NULL;
        nsink k = {.kind = SINK_OBJ, .ob = &b};
        if (ns_fill(d, v, 0, &s, &k) < 0) {
            jd_objb_free(&b);
            return NULL;
        }
        return jd_objb_finish(d, &b);
    }
    ad_elem *e = ad_elem_from_array(&a);
    if (!e) jd_nomem(d);
    return e;
}

/* ------------------------------------------------------- typed dense */

int jd_fill_typed(jd *d, jv data, ad_dtype t, int ndim, const uint64_t *shape, ad_array *a)
{
    char want[160], got[160];
    memset(a, 0, sizeof *a);
    if (!jv_is_array(data)) {
        if (ndim == 0) {
            /* A 0-d array may be given as the bare scalar. */
            if (jd_reserve(d, t, 1)) return -1;
            if (ad_array_init(a, t, 0, NULL) < 0) return jd_nomem(d);
            if (jd_put_leaf(d, data, t, a->data, 0)) {
                ad_array_free(a);
                return -1;
            }
            return 0;
        }
        return jd_fail(d, ADX_E_SCHEMA, "expected \"data\" to be an array, got %s",
                       jd_type_name(data));
    }
    nscan s;
    if (ns_shape(d, data, &s)) return -1;
    if (ns_walk(d, data, 0, &s, false) < 0) return -1;
    if (ndim >= 0) {
        uint64_t n;
        if (ad_shape_product(ndim, shape, &n) < 0)
            return jd_fail(d, ADX_E_LIMIT, "shape overflows");
        bool same = s.ndim == ndim && !memcmp(s.shape, shape, (size_t)ndim * sizeof *shape);
        if (!same && s.ndim == 1 && s.n == n) {
            /* flat row-major data for an N-d shape: fill flat, then reshape */
            if (fill_num(d, data, &s, t, a)) return -1;
            a->ndim = ndim;
            memcpy(a->shape, shape, (size_t)ndim * sizeof *shape);
            return 0;
        }
        if (!same) {
            jd_fmt_shape(want, sizeof want, ndim, shape);
            jd_fmt_shape(got, sizeof got, s.ndim, s.shape);
            if (s.ndim == 1)
                return jd_fail(d, ADX_E_SHAPE,
                               "data has %" PRIu64 " values, shape %s needs %" PRIu64, s.n, want,
                               n);
            return jd_fail(d, ADX_E_SHAPE, "data has shape %s, expected %s", got, want);
        }
    }
    if (t == AD_STR) return jd_fail(d, ADX_E_INTERNAL, "string dtype in a numeric array");
    return fill_num(d, data, &s, t, a);
}

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int jd_base64(jd *d, jv js, ad_dtype t, int ndim, const uint64_t *shape, ad_array *a)
{
    memset(a, 0, sizeof *a);
    if (!jv_is_string(js))
        return jd_fail(d, ADX_E_SCHEMA, "expected \"base64\" to be a string, got %s",
                       jd_type_name(js));
    /* The parser decoded canonical base64 as it read it; only other text
     * (an error to report, or unused bits set) is decoded here. */
    bool pre = jv_tag(js) == JVT_B64;
    const char *s = NULL;
    size_t body = 0;
    uint64_t nbytes;
    if (pre) {
        nbytes = ((const jv_b64 *)jv_ptr(js))->n;
    } else {
        s = jv_string_value(js);
        size_t len = jv_string_length(js);
        size_t pad = 0;
        if (len && s[len - 1] == '=') pad = (len > 1 && s[len - 2] == '=') ? 2 : 1;
        body = len - pad;
        for (size_t i = 0; i < body; i++)
            if (b64v((unsigned char)s[i]) < 0) {
                unsigned char c = (unsigned char)s[i];
                if (c >= 0x20 && c < 0x7f)
                    return jd_fail(d, ADX_E_SCHEMA,
                                   "invalid base64 character '%c' at offset %zu (standard alphabet "
                                   "A-Z a-z 0-9 + / expected)",
                                   c, i);
                return jd_fail(d, ADX_E_SCHEMA,
                               "invalid base64 byte 0x%02x at offset %zu (standard alphabet "
                               "A-Z a-z 0-9 + / expected)",
                               c, i);
            }
        if (body % 4 == 1 || (pad && (len % 4 != 0)))
            return jd_fail(d, ADX_E_SCHEMA, "base64 text of %zu characters is truncated", len);
        nbytes = (uint64_t)(body / 4) * 3 + (body % 4 == 2 ? 1 : body % 4 == 3 ? 2 : 0);
    }
    size_t isz = ad_dtype_size(t);
    uint64_t n;
    char sh[160];
    if (ndim >= 0) {
        if (ad_shape_product(ndim, shape, &n) < 0)
            return jd_fail(d, ADX_E_LIMIT, "shape overflows");
        uint64_t want;
        if (__builtin_mul_overflow(n, (uint64_t)isz, &want))
            return jd_fail(d, ADX_E_LIMIT, "array byte size overflows");
        if (want != nbytes) {
            jd_fmt_shape(sh, sizeof sh, ndim, shape);
            return jd_fail(d, ADX_E_SHAPE,
                           "base64 decodes to %" PRIu64 " bytes, expected %" PRIu64
                           " (shape %s x %zu bytes of %s)",
                           nbytes, want, sh, isz, ad_dtype_name(t));
        }
    } else {
        if (nbytes % isz)
            return jd_fail(d, ADX_E_SHAPE,
                           "base64 decodes to %" PRIu64 " bytes, not a multiple of %zu (%s)",
                           nbytes, isz, ad_dtype_name(t));
        n = nbytes / isz;
        if (jd_check_elements(d, n) || jd_check_dim(d, n)) return -1;
    }
    uint64_t one[1] = {n};
    uint64_t got = 0;
    uint8_t *bytes = pre && n ? jv_b64_take(d->doc, js, &got) : NULL;
    /* Adopted bytes change hands from the document's charge to the model's
     * (released first, so the budget never counts them twice). */
    if (bytes) adx_budget_release(d->budget, got);
    if (jd_reserve(d, t, n)) {
        free(bytes);
        return -1;
    }
    if (bytes) {
        /* Adopted as the array's buffer: no copy. */
        a->dtype = t;
        a->ndim = ndim >= 0 ? ndim : 1;
        memcpy(a->shape, ndim >= 0 ? shape : one, (size_t)a->ndim * sizeof *shape);
        a->n = n;
        a->data = bytes;
    } else if (ad_array_init(a, t, ndim >= 0 ? ndim : 1, ndim >= 0 ? shape : one) < 0) {
        return jd_nomem(d);
    } else if (pre && n) {
        /* a block whose bytes were taken already (referenced twice) */
        ad_array_free(a);
        return jd_fail(d, ADX_E_INTERNAL, "base64 bytes used twice");
    }
    uint8_t *o = a->data;
    size_t w = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; !pre && i < body; i++) {
        acc = (acc << 6) | (uint32_t)b64v((unsigned char)s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[w++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (t == AD_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (o[i] > 1) {
                size_t m = adx_ptr_idx(&d->p, i);
                /* numpy would reinterpret other bytes silently; refuse instead */
                jd_fail(d, ADX_E_SCHEMA, "bool byte %u at element %" PRIu64 " is not 0 or 1", o[i],
                        i);
                adx_ptr_pop(&d->p, m);
                ad_array_free(a);
                return -1;
            }
    return 0;
}

static int check_keys(jd *d, jv v, const char *const *allowed, const char *what)
{
    const char *key;
    jv val;
    jv_object_foreach(v, key, val)
    {
        (void)val;
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(*a, key)) ok = true;
        if (!ok) {
            char list[256] = "";
            size_t o = 0;
            for (const char *const *a = allowed; *a && o < sizeof list; a++)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s\"%s\"", o ? ", " : "", *a);
            size_t m = adx_ptr_key(&d->p, key);
            jd_fail(d, ADX_E_SCHEMA, "unknown key \"%s\" in %s; expected %s", key, what, list);
            adx_ptr_pop(&d->p, m);
            return -1;
        }
    }
    return 0;
}

ad_elem *jd_typed_dense(jd *d, jv v)
{
    static const char *const keys[] = {"encoding-type", "encoding-version", "dtype", "shape",
                                       "data",          "base64",           "part",  NULL};
    if (check_keys(d, v, keys, "an array")) return NULL;
    jv jdt = jv_object_get(v, "dtype"), jsh = jv_object_get(v, "shape");
    jv jdata = jv_object_get(v, "data"), jb = jv_object_get(v, "base64");
    int ndim = -1;
    uint64_t shape[AD_MAX_NDIM], n;
    size_t m;
    if (!jv_none(jsh)) {
        m = adx_ptr_key(&d->p, "shape");
        int r = jd_get_shape(d, jsh, &ndim, shape, &n, true);
        adx_ptr_pop(&d->p, m);
        if (r) return NULL;
    }
    if (jv_has(v, "part")) {
        if (!jv_none(jdata) || !jv_none(jb)) {
            jd_fail(d, ADX_E_SCHEMA,
                    "an array needs exactly one of \"data\", \"base64\" and \"part\"");
            return NULL;
        }
        return jd_part(d, v, false);
    }
    if ((!jv_none(jdata)) == (!jv_none(jb))) {
        jd_fail(d, ADX_E_SCHEMA, "an array needs exactly one of \"data\" and \"base64\"");
        return NULL;
    }
    ad_dtype t = AD_F64;
    if (!jv_none(jdt)) {
        m = adx_ptr_key(&d->p, "dtype");
        int r = jd_dtype(d, jdt, &t);
        adx_ptr_pop(&d->p, m);
        if (r) return NULL;
    } else if (!jv_none(jb)) {
        jd_fail(d, ADX_E_SCHEMA, "\"base64\" needs a \"dtype\"");
        return NULL;
    }
    ad_array a;
    int r;
    if (!jv_none(jb)) {
        m = adx_ptr_key(&d->p, "base64");
        r = jd_base64(d, jb, t, ndim, shape, &a);
    } else if (jv_none(jdt)) {
        /* No dtype: infer like a plain nested array, then check the shape. */
        m = adx_ptr_key(&d->p, "data");
        ad_elem *e = jv_is_array(jdata) ? jd_nested(d, jdata, JD_MATRIX) : NULL;
        if (!e) {
            if (!adx_err_failed(d->err))
                jd_fail(d, ADX_E_SCHEMA, "expected an array, got %s", jd_type_name(jdata));
            adx_ptr_pop(&d->p, m);
            return NULL;
        }
        r = 0;
        if (ndim >= 0) {
            const ad_array *x = &e->u.arr;
            if (x->ndim != ndim || memcmp(x->shape, shape, (size_t)ndim * sizeof *shape)) {
                if (x->ndim == 1 && x->n == n) {
                    /* flat data: reshape in place, the buffer is row-major already */
                    e->u.arr.ndim = ndim;
                    memcpy(e->u.arr.shape, shape, (size_t)ndim * sizeof *shape);
                } else {
                    char want[160], got[160];
                    jd_fmt_shape(want, sizeof want, ndim, shape);
                    jd_fmt_shape(got, sizeof got, x->ndim, x->shape);
                    r = jd_fail(d, ADX_E_SHAPE, "data has shape %s, expected %s", got, want);
                }
            }
        }
        adx_ptr_pop(&d->p, m);
        if (r) {
            ad_elem_free(e);
            return NULL;
        }
        return e;
    } else {
        m = adx_ptr_key(&d->p, "data");
        r = jd_fill_typed(d, jdata, t, ndim, shape, &a);
    }
    adx_ptr_pop(&d->p, m);
    if (r) return NULL;
    ad_elem *e = ad_elem_from_array(&a);
    if (!e) jd_nomem(d);
    return e;
}

/* ------------------------------------------------------------- sparse */

/* One sparse part: plain array or typed block. *plain tells whether the
 * dtype was chosen by us (then index arrays may be narrowed to int32). */
int jd_block_1d(jd *d, jv v, enum jd_part_role role, ad_array *a, bool *plain)
{
    memset(a, 0, sizeof *a);
    *plain = false;
    if (jv_is_array(v)) {
        *plain = true;
        if (role == PART_INDEX) {
            size_t n = jv_array_size(v);
            if (jd_check_elements(d, n)) return -1;
            uint64_t sh[1] = {n};
            jv_packed pk;
            /* a packed array of integers needs no walk (nor its words back) */
            bool all_int = jv_packed_get(v, &pk) && !(pk.kinds & ~JV_K(JVT_INT));
            for (size_t i = 0; !all_int && i < n; i++)
                if (!jv_is_integer(jv_array_get(v, i))) {
                    size_t m = adx_ptr_idx(&d->p, i);
                    jd_fail(d, ADX_E_SCHEMA, "expected an integer index, got %s",
                            jd_type_name(jv_array_get(v, i)));
                    adx_ptr_pop(&d->p, m);
                    return -1;
                }
            if (all_int) {
                int r = jd_fill_packed(d, v, 1, sh, AD_I64, a);
                if (r) return r < 0 ? -1 : 0;
            }
            if (jd_reserve(d, AD_I64, n)) return -1;
            if (ad_array_init(a, AD_I64, 1, sh) < 0) return jd_nomem(d);
            int64_t *o = a->data;
            for (size_t i = 0; i < n; i++)
                o[i] = (int64_t)jv_integer_value(jv_array_get(v, i));
            return 0;
        }
        ad_elem *e = jd_nested(d, v, JD_MATRIX);
        if (!e) return -1;
        if (e->u.arr.ndim != 1) {
            ad_elem_free(e);
            return jd_fail(d, ADX_E_SHAPE, "expected a flat array of values");
        }
        *a = e->u.arr;
        memset(&e->u.arr, 0, sizeof e->u.arr);
        ad_elem_free(e);
        return 0;
    }
    if (!jv_is_object(v))
        return jd_fail(d, ADX_E_SCHEMA,
                       "expected an array or a typed block {\"dtype\", \"base64\"|\"data\"}, got "
                       "%s",
                       jd_type_name(v));
    static const char *const keys[] = {"encoding-type", "dtype", "data", "base64",
                                       "shape",         "part",  NULL};
    if (check_keys(d, v, keys, "a typed block")) return -1;
    if (jv_has(v, "part") && !jv_has(v, "data") && !jv_has(v, "base64")) {
        ad_elem *e = jd_part(d, v, false);
        if (!e) return -1;
        *a = e->u.arr;
        memset(&e->u.arr, 0, sizeof e->u.arr);
        ad_elem_free(e);
        if (a->ndim != 1 || a->dtype == AD_STR ||
            (role == PART_INDEX && !ad_dtype_is_int(a->dtype))) {
            ad_array_free(a);
            return jd_fail(d, ADX_E_SHAPE,
                           role == PART_INDEX ? "expected a flat array of integers"
                                              : "expected a flat array of numbers");
        }
        return 0;
    }
    jv jdt = jv_object_get(v, "dtype"), jdata = jv_object_get(v, "data"),
       jb = jv_object_get(v, "base64");
    if (jv_none(jdt)) return jd_fail(d, ADX_E_SCHEMA, "a typed block needs \"dtype\"");
    if ((!jv_none(jdata)) == (!jv_none(jb)))
        return jd_fail(d, ADX_E_SCHEMA,
                       "a typed block needs exactly one of \"data\" and \"base64\"");
    ad_dtype t;
    size_t m = adx_ptr_key(&d->p, "dtype");
    int r = jd_dtype(d, jdt, &t);
    if (!r && role == PART_INDEX && !ad_dtype_is_int(t))
        r = jd_fail(d, ADX_E_SCHEMA, "index arrays need an integer dtype, got %s",
                    ad_dtype_name(t));
    adx_ptr_pop(&d->p, m);
    if (r) return -1;
    m = adx_ptr_key(&d->p, !jv_none(jb) ? "base64" : "data");
    r = !jv_none(jb) ? jd_base64(d, jb, t, -1, NULL, a) : jd_fill_typed(d, jdata, t, -1, NULL, a);
    if (!r && a->ndim != 1) {
        ad_array_free(a);
        r = jd_fail(d, ADX_E_SHAPE, "expected a flat array of values");
    }
    adx_ptr_pop(&d->p, m);
    return r;
}

static void narrow_i32(ad_array *a)
{
    char *p = a->data;
    /* In place: each int32 write lands at or before the int64 it came from. */
    for (uint64_t i = 0; i < a->n; i++) {
        int64_t v;
        memcpy(&v, p + i * 8, 8);
        int32_t w = (int32_t)v;
        memcpy(p + i * 4, &w, 4);
    }
    a->dtype = AD_I32;
}

ad_elem *jd_sparse(jd *d, jv v, bool csc)
{
    static const char *const keys[] = {"encoding-type", "encoding-version", "shape", "data",
                                       "indices",       "indptr",           NULL};
    if (check_keys(d, v, keys, csc ? "a csc_matrix" : "a csr_matrix")) return NULL;
    const char *names[3] = {"data", "indices", "indptr"};
    jv jsh = jv_object_get(v, "shape");
    if (jv_none(jsh)) {
        jd_fail(d, ADX_E_SCHEMA, "a sparse matrix needs \"shape\": [n_rows, n_cols]");
        return NULL;
    }
    for (int i = 0; i < 3; i++)
        if (!jv_has(v, names[i])) {
            jd_fail(d, ADX_E_SCHEMA, "a sparse matrix needs \"%s\"", names[i]);
            return NULL;
        }
    int ndim;
    uint64_t shape[AD_MAX_NDIM], n;
    size_t m = adx_ptr_key(&d->p, "shape");
    int r = jd_get_shape(d, jsh, &ndim, shape, &n, false);
    if (!r && ndim != 2) r = jd_fail(d, ADX_E_SHAPE, "a sparse matrix is 2-d, got %d sizes", ndim);
    adx_ptr_pop(&d->p, m);
    if (r) return NULL;

    ad_elem *e = ad_elem_new(AD_K_SPARSE);
    if (!e) {
        jd_nomem(d);
        return NULL;
    }
    ad_sparse *sp = &e->u.sp;
    sp->csc = csc;
    sp->shape[0] = shape[0];
    sp->shape[1] = shape[1];
    ad_array *parts[3] = {&sp->data, &sp->indices, &sp->indptr};
    bool plain[3];
    for (int i = 0; i < 3; i++) {
        m = adx_ptr_key(&d->p, names[i]);
        r = jd_block_1d(d, jv_object_get(v, names[i]), i ? PART_INDEX : PART_DATA, parts[i],
                        &plain[i]);
        adx_ptr_pop(&d->p, m);
        if (r) goto fail;
    }
    if (sp->data.dtype == AD_STR) {
        jd_fail(d, ADX_E_SCHEMA, "sparse data must be numeric");
        goto fail;
    }
    uint64_t major = shape[csc ? 1 : 0], minor = shape[csc ? 0 : 1];
    uint64_t nnz = sp->data.n;
    char pbuf[ADX_ERR_PTR_MAX];
    if (sp->indptr.n == 0 || sp->indptr.n - 1 != major) {
        m = adx_ptr_key(&d->p, "indptr");
        jd_fail(
            d, ADX_E_SHAPE, "indptr has %" PRIu64 " entries, expected %" PRIu64 " (%s + 1 for %s)",
            sp->indptr.n, major + 1, csc ? "n_cols" : "n_rows", csc ? "csc_matrix" : "csr_matrix");
        adx_ptr_pop(&d->p, m);
        goto fail;
    }
    if (sp->indices.n != nnz) {
        m = adx_ptr_key(&d->p, "indices");
        jd_fail(d, ADX_E_SHAPE, "indices has %" PRIu64 " entries, data has %" PRIu64, sp->indices.n,
                nnz);
        adx_ptr_pop(&d->p, m);
        goto fail;
    }
    int64_t prev = 0;
    for (uint64_t i = 0; i <= major; i++) {
        int64_t x = ad_array_get_i64(&sp->indptr, i);
        const char *why = NULL;
        char msg[200];
        if (sp->indptr.dtype == AD_U64 && ((uint64_t *)sp->indptr.data)[i] > INT64_MAX) {
            why = msg;
            snprintf(msg, sizeof msg, "indptr[%" PRIu64 "] is larger than nnz = %" PRIu64, i, nnz);
        } else if (i == 0 && x != 0) {
            why = msg;
            snprintf(msg, sizeof msg, "indptr[0] = %" PRId64 ", expected 0", x);
        } else if (i > 0 && x < prev) {
            why = msg;
            snprintf(msg, sizeof msg,
                     "indptr[%" PRIu64 "] = %" PRId64 " < indptr[%" PRIu64 "] = %" PRId64
                     " (indptr must not decrease)",
                     i, x, i - 1, prev);
        } else if (i == major && (uint64_t)x != nnz) {
            why = msg;
            snprintf(msg, sizeof msg,
                     "indptr[%" PRIu64 "] = %" PRId64 ", expected nnz = %" PRIu64
                     " (the length of data)",
                     i, x, nnz);
        }
        if (why) {
            snprintf(pbuf, sizeof pbuf, "%s/indptr/%" PRIu64, adx_ptr_str(&d->p), i);
            jd_fail_at(d, ADX_E_SCHEMA, pbuf, "%s", why);
            goto fail;
        }
        prev = x;
    }
    for (uint64_t i = 0; i < nnz; i++) {
        int64_t x = ad_array_get_i64(&sp->indices, i);
        bool big = sp->indices.dtype == AD_U64 && ((uint64_t *)sp->indices.data)[i] > INT64_MAX;
        if (big || x < 0 || (uint64_t)x >= minor) {
            snprintf(pbuf, sizeof pbuf, "%s/indices/%" PRIu64, adx_ptr_str(&d->p), i);
            jd_fail_at(d, ADX_E_SCHEMA, pbuf,
                       "indices[%" PRIu64 "] = %s%" PRId64 " is out of range [0, %" PRIu64
                       ") (the %s)",
                       i, big ? ">" : "", big ? INT64_MAX : x, minor,
                       csc ? "number of rows" : "number of columns");
            goto fail;
        }
    }
    /* scipy's sparse routines take signed indices only (a matrix read back
     * with uint64 ones fails in toarray and sum); every value was checked
     * to be at most INT64_MAX above, so the bits stay as they are */
    if (sp->indices.dtype == AD_U64) sp->indices.dtype = AD_I64;
    if (sp->indptr.dtype == AD_U64) sp->indptr.dtype = AD_I64;
    /* scipy picks int32 indices whenever the shape and nnz fit */
    uint64_t biggest = shape[0] > shape[1] ? shape[0] : shape[1];
    if (nnz > biggest) biggest = nnz;
    if (biggest <= INT32_MAX) {
        if (plain[1]) narrow_i32(&sp->indices);
        if (plain[2]) narrow_i32(&sp->indptr);
    }
    return e;
fail:
    ad_elem_free(e);
    return NULL;
}

ad_elem *jd_part(jd *d, jv v, bool recarray)
{
    jv jp = jv_object_get(v, "part");
    size_t m = adx_ptr_key(&d->p, "part");
    if (!jv_is_string(jp)) {
        jd_fail(d, ADX_E_SCHEMA, "expected \"part\" to be the name of a part, got %s",
                jd_type_name(jp));
        adx_ptr_pop(&d->p, m);
        return NULL;
    }
    adx_ptr_pop(&d->p, m);
    if (!d->part) {
        jd_fail(d, ADX_E_SCHEMA, "binary parts need a multipart request (part \"%.60s\")",
                jv_string_value(jp));
        return NULL;
    }
    jdec_part_req req = {.name = jv_string_value(jp), .ndim = -1, .recarray = recarray};
    jv jdt = jv_object_get(v, "dtype"), jsh = jv_object_get(v, "shape");
    if (!jv_none(jdt) && !recarray) {
        m = adx_ptr_key(&d->p, "dtype");
        int r = jd_dtype(d, jdt, &req.dtype);
        adx_ptr_pop(&d->p, m);
        if (r) return NULL;
        req.has_dtype = true;
    }
    if (!jv_none(jsh)) {
        uint64_t n;
        m = adx_ptr_key(&d->p, "shape");
        int r = jd_get_shape(d, jsh, &req.ndim, req.shape, &n, true);
        adx_ptr_pop(&d->p, m);
        if (r) return NULL;
    }
    ad_elem *e = NULL;
    if (d->part(d->part_ud, &req, &e, adx_ptr_str(&d->p), d->err) < 0 || !e) {
        ad_elem_free(e);
        if (!adx_err_failed(d->err))
            jd_fail(d, ADX_E_SCHEMA, "part \"%.60s\" cannot be used here", req.name);
        return NULL;
    }
    ad_kind want = recarray ? AD_K_RECARRAY : AD_K_ARRAY;
    if (e->kind != want) {
        ad_elem_free(e);
        jd_fail(d, ADX_E_SCHEMA, "part \"%.60s\" is %s, expected %s", req.name,
                recarray ? "not a structured array" : "a structured array",
                recarray ? "a rec-array" : "an array");
        return NULL;
    }
    return e;
}
