/* Decoder helpers: error reporting at the current pointer, limit checks,
 * leaf classification, and the object-array builder. */
#include "jdec_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int jd_fail(jd *d, adx_errtype t, const char *fmt, ...)
{
    /* a lazy reader that the budget refused read "absent": that is the
     * error, not what the decoder made of the absence */
    if (d->doc && jv_doc_failed(d->doc, adx_ptr_str(&d->p), d->err)) return -1;
    va_list ap;
    va_start(ap, fmt);
    adx_err_vset(d->err, t, adx_ptr_str(&d->p), fmt, ap);
    va_end(ap);
    return -1;
}

int jd_fail_at(jd *d, adx_errtype t, const char *ptr, const char *fmt, ...)
{
    if (d->doc && jv_doc_failed(d->doc, ptr, d->err)) return -1;
    va_list ap;
    va_start(ap, fmt);
    adx_err_vset(d->err, t, ptr, fmt, ap);
    va_end(ap);
    return -1;
}

int jd_nomem(jd *d)
{
    return jd_fail(d, ADX_E_NOMEM, "out of memory while decoding");
}

int jd_reserve_bytes(jd *d, uint64_t bytes)
{
    uint64_t t;
    if (__builtin_add_overflow(d->total, bytes, &t) || t > d->lim->max_total_bytes)
        return jd_fail(d, ADX_E_LIMIT,
                       "decoded data would exceed max_total_bytes = %" PRIu64 " bytes",
                       d->lim->max_total_bytes);
    /* The model's buffers count against the request's memory too (they
     * are never released before the request ends). */
    if (adx_budget_charge(d->budget, bytes, adx_ptr_str(&d->p), d->err)) return -1;
    d->total = t;
    return 0;
}

int jd_temp_charge(jd *d, uint64_t bytes)
{
    return adx_budget_charge(d->budget, bytes, adx_ptr_str(&d->p), d->err);
}

void jd_temp_release(jd *d, uint64_t bytes)
{
    adx_budget_release(d->budget, bytes);
}

int jd_reserve(jd *d, ad_dtype t, uint64_t n)
{
    size_t b;
    if (ad_bytes(t, n, &b) < 0)
        return jd_fail(d, ADX_E_LIMIT,
                       "%" PRIu64 " elements overflow the addressable size (max_total_bytes = "
                       "%" PRIu64 ")",
                       n, d->lim->max_total_bytes);
    return jd_reserve_bytes(d, b);
}

int jd_check_elements(jd *d, uint64_t n)
{
    if (n > d->lim->max_elements)
        return jd_fail(d, ADX_E_LIMIT, "%" PRIu64 " elements exceed max_elements = %" PRIu64, n,
                       d->lim->max_elements);
    return 0;
}

int jd_check_dim(jd *d, uint64_t n)
{
    if (n > d->lim->max_dim)
        return jd_fail(d, ADX_E_LIMIT, "dimension %" PRIu64 " exceeds max_dim = %" PRIu64, n,
                       d->lim->max_dim);
    return 0;
}

int jd_check_keys(jd *d, uint64_t n)
{
    if (n > d->lim->max_keys)
        return jd_fail(d, ADX_E_LIMIT, "%" PRIu64 " keys exceed max_keys = %" PRIu64, n,
                       d->lim->max_keys);
    return 0;
}

int jd_check_str(jd *d, size_t len)
{
    if (len > d->lim->max_string_bytes)
        return jd_fail(d, ADX_E_LIMIT, "string of %zu bytes exceeds max_string_bytes = %" PRIu64,
                       len, d->lim->max_string_bytes);
    return 0;
}

int jd_check_name(jd *d, const char *name, size_t len)
{
    if (jd_check_str(d, len)) return -1;
    if (d->h5ad_names && (len == 0 || (len == 1 && name[0] == '.') || memchr(name, '/', len)))
        return jd_fail(d, ADX_E_SCHEMA,
                       "the name \"%.60s\" cannot be stored in h5ad (empty, \".\" or holding "
                       "\"/\": HDF5 link names); npz and csv take it",
                       name);
    return 0;
}

const char *jd_type_name(jv v)
{
    if (jv_none(v)) return "nothing";
    switch (jv_typeof(v)) {
    case JV_OBJECT:
        return "object";
    case JV_ARRAY:
        return "array";
    case JV_STRING:
        return "string";
    case JV_INTEGER:
        return "integer";
    case JV_REAL:
        return "real number";
    case JV_TRUE_T:
    case JV_FALSE_T:
        return "boolean";
    case JV_NULL_T:
        return "null";
    case JV_MISSING:
        return "nothing";
    }
    return "?";
}

bool jd_nanstr(const char *s, double *out)
{
    /* JavaScript's and Python's spellings of the IEEE specials. */
    if (!strcasecmp(s, "nan")) {
        *out = NAN;
    } else if (!strcasecmp(s, "infinity") || !strcasecmp(s, "inf")) {
        *out = INFINITY;
    } else if (!strcasecmp(s, "-infinity") || !strcasecmp(s, "-inf")) {
        *out = -INFINITY;
    } else {
        return false;
    }
    return true;
}

int jd_leaf_str(jv v)
{
    double x;
    /* Longest spelling is "-infinity"; skip the compare for long text. */
    if (jv_string_length(v) <= 9 && jd_nanstr(jv_string_value(v), &x)) return L_NANSTR;
    return L_STR;
}

int jd_get_size(jd *d, jv v, uint64_t *out)
{
    if (jv_is_integer(v)) {
        uint64_t u;
        if (jv_big_unsigned(v, &u)) {
            *out = u;
            return 0;
        }
        int64_t i = jv_integer_value(v);
        if (i < 0) return jd_fail(d, ADX_E_SCHEMA, "expected a size >= 0, got %" PRId64, i);
        *out = (uint64_t)i;
        return 0;
    }
    if (jv_is_real(v)) {
        double x = jv_real_value(v);
        if (!(x >= 0) || x != floor(x))
            return jd_fail(d, ADX_E_SCHEMA, "expected a non-negative integer size, got %g", x);
        /* Anything this large is over every limit; saturate instead of UB. */
        *out = x >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)x;
        return 0;
    }
    return jd_fail(d, ADX_E_SCHEMA, "expected a non-negative integer size, got %s",
                   jd_type_name(v));
}

int jd_get_shape(jd *d, jv v, int *ndim, uint64_t *shape, uint64_t *n, bool dense)
{
    if (!jv_is_array(v))
        return jd_fail(d, ADX_E_SCHEMA, "expected \"shape\" to be an array of sizes, got %s",
                       jd_type_name(v));
    size_t k = jv_array_size(v);
    if (k > d->lim->max_ndim || k > AD_MAX_NDIM)
        return jd_fail(d, ADX_E_LIMIT, "%zu dimensions exceed max_ndim = %u", k,
                       d->lim->max_ndim < AD_MAX_NDIM ? d->lim->max_ndim : AD_MAX_NDIM);
    for (size_t i = 0; i < k; i++) {
        size_t m = adx_ptr_idx(&d->p, i);
        int r = jd_get_size(d, jv_array_get(v, i), &shape[i]);
        if (!r) r = jd_check_dim(d, shape[i]);
        adx_ptr_pop(&d->p, m);
        if (r) return -1;
    }
    uint64_t prod = 0;
    /* A sparse shape allocates nothing; only its parts count as elements. */
    if (dense && ad_shape_product((int)k, shape, &prod) < 0)
        return jd_fail(d, ADX_E_LIMIT, "shape product overflows; max_elements = %" PRIu64,
                       d->lim->max_elements);
    if (dense && jd_check_elements(d, prod)) return -1;
    *ndim = (int)k;
    *n = prod;
    return 0;
}

int jd_sb_push(jd *d, ad_strbuild *b, const char *s, size_t len)
{
    if (jd_check_str(d, len) || jd_reserve_bytes(d, (uint64_t)len + 1 + 8)) return -1;
    if (ad_sb_push(b, s, len) < 0) return jd_nomem(d);
    return 0;
}

void jd_fmt_shape(char *buf, size_t cap, int ndim, const uint64_t *shape)
{
    size_t o = 0;
    o += (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%" PRIu64, i ? ", " : "", shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, ndim == 1 ? ",)" : ")");
}

void jd_fmt_pyint(int64_t v, char buf[32])
{
    snprintf(buf, 32, "%" PRId64, v);
}

void jd_fmt_jint(jv v, char buf[32])
{
    uint64_t u;
    if (jv_big_unsigned(v, &u))
        snprintf(buf, 32, "%" PRIu64, u);
    else
        jd_fmt_pyint(jv_integer_value(v), buf);
}

int jd_report(jd *d, const char *path, const char *action, uint64_t count, const char *detail)
{
    /* A lost report entry must not fail the decode: the data is intact. */
    if (d->rep) (void)rep_add(d->rep, path, action, count, detail);
    return 0;
}

/* ------------------------------------------------------------ objects */

int jd_objb_init(jd *d, jd_objb *b, int ndim, const uint64_t *shape)
{
    memset(b, 0, sizeof *b);
    uint64_t n;
    if (ad_shape_product(ndim, shape, &n) < 0 || jd_check_elements(d, n)) return -1;
    /* kind + num + offset per cell */
    uint64_t per = 1 + sizeof(ad_num) + sizeof(uint64_t), bytes;
    if (__builtin_mul_overflow(n, per, &bytes) || jd_reserve_bytes(d, bytes)) return -1;
    b->o.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        b->o.shape[i] = shape[i];
    b->o.n = n;
    b->o.kind = calloc(n ? n : 1, 1);
    b->o.num = calloc(n ? n : 1, sizeof(ad_num));
    if (!b->o.kind || !b->o.num) {
        jd_objb_free(b);
        return jd_nomem(d);
    }
    return 0;
}

int jd_objb_put(jd *d, jd_objb *b, jv v)
{
    uint64_t i = b->i;
    const char *txt = "";
    size_t len = 0;
    char *dump = NULL;
    switch (jd_leaf(v)) {
    case L_NULL:
        b->o.kind[i] = AD_CELL_NULL;
        break;
    case L_BOOL:
        b->o.kind[i] = AD_CELL_BOOL;
        b->o.num[i].i = jv_is_true(v);
        break;
    case L_INT:
        if (jv_big_unsigned(v, &b->o.num[i].u)) {
            b->o.kind[i] = AD_CELL_UINT;
        } else {
            b->o.kind[i] = AD_CELL_INT;
            b->o.num[i].i = jv_integer_value(v);
        }
        break;
    case L_REAL:
        b->o.kind[i] = AD_CELL_REAL;
        b->o.num[i].r = jv_real_value(v);
        break;
    case L_STR:
    case L_NANSTR:
        b->o.kind[i] = AD_CELL_STR;
        txt = jv_string_value(v);
        len = jv_string_length(v);
        break;
    default:
        b->o.kind[i] = AD_CELL_JSON;
        dump = jv_dumps(v);
        if (!dump) return jd_nomem(d);
        txt = dump;
        len = strlen(dump);
        /* the text exists twice until it is pushed: counted once made */
        if (jd_temp_charge(d, len + 1)) {
            free(dump);
            return -1;
        }
        break;
    }
    int r = jd_sb_push(d, &b->sb, txt, len);
    if (dump) jd_temp_release(d, len + 1);
    free(dump);
    if (r) return -1;
    b->i++;
    return 0;
}

ad_elem *jd_objb_finish(jd *d, jd_objb *b)
{
    ad_elem *e = ad_elem_new(AD_K_OBJECT);
    if (!e) {
        jd_objb_free(b);
        jd_nomem(d);
        return NULL;
    }
    if (b->sb.n == 0) {
        /* No cells: still give the object a valid offsets array and blob. */
        b->o.soff = calloc(1, sizeof(uint64_t));
        b->o.str = calloc(1, 1);
        if (!b->o.soff || !b->o.str) {
            ad_elem_free(e);
            jd_objb_free(b);
            jd_nomem(d);
            return NULL;
        }
    } else {
        b->o.str = b->sb.buf;
        b->o.soff = b->sb.off;
        memset(&b->sb, 0, sizeof b->sb);
    }
    e->u.obj = b->o;
    memset(&b->o, 0, sizeof b->o);
    return e;
}

void jd_objb_free(jd_objb *b)
{
    ad_object_free(&b->o);
    ad_sb_free(&b->sb);
}

/* ------------------------------------------------------------ string map */

int jd_strmap_add(jd *d, adx_strmap *m, const char *k, size_t *val, bool *added)
{
    return adx_strmap_add(m, k, val, added) ? jd_nomem(d) : 0;
}
