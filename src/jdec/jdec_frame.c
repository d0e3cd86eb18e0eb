/* DataFrames (columnar, pandas "split", records), index values, column
 * inference, categorical columns and the typed 1-d elements. */
#include "jdec_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_glob.h"

/* A column seen through whichever form the frame came in, so inference and
 * filling need no temporary JSON arrays. */
typedef struct colsrc {
    enum { CS_PLAIN, CS_SPLIT, CS_RECORDS } form;
    jv arr; /* the column (plain) or the rows (split) */
    /* plain: its values where they lie (packed ones stay encoded); split:
     * the packed table's values, row-major, when it is one (n = its row
     * length), else data NULL */
    jd_seq seq;
    const jv *cells; /* records: this column's value per row (JV_NONE = missing) */
    size_t col;
    const char *key;
    uint64_t n;
    const char *base; /* input pointer of the column (plain) or of the rows */
} colsrc;

static jv cs_get(const colsrc *c, uint64_t i)
{
    switch (c->form) {
    case CS_PLAIN:
        return jd_seq_get(&c->seq, i);
    case CS_SPLIT:
        if (c->seq.data) return jv_enc_get(c->seq.data, c->seq.enc, i * c->seq.n + c->col);
        return jv_array_get(jv_array_get(c->arr, i), c->col);
    default:
        return c->cells[i];
    }
}

static void cs_ptr(const colsrc *c, uint64_t i, char *buf)
{
    char tmp[24];
    snprintf(buf, ADX_ERR_PTR_MAX, "%s", c->base);
    snprintf(tmp, sizeof tmp, "%" PRIu64, i);
    adx_ptr_append_key(buf, ADX_ERR_PTR_MAX, tmp);
    if (c->form == CS_SPLIT) {
        snprintf(tmp, sizeof tmp, "%zu", c->col);
        adx_ptr_append_key(buf, ADX_ERR_PTR_MAX, tmp);
    } else if (c->form == CS_RECORDS) {
        adx_ptr_append_key(buf, ADX_ERR_PTR_MAX, c->key);
    }
}

static int cs_fail(jd *d, const colsrc *c, uint64_t i, adx_errtype t, const char *msg)
{
    char p[ADX_ERR_PTR_MAX];
    cs_ptr(c, i, p);
    return jd_fail_at(d, t, p, "%s", msg);
}

static void cs_count(const colsrc *c, uint64_t *cnt)
{
    memset(cnt, 0, L__COUNT * sizeof *cnt);
    if (c->form == CS_PLAIN && c->seq.n == c->n) {
        /* a packed column of one kind: no need to look at each value */
        const uint32_t k = c->seq.kinds;
        int one = k == JV_K(JVT_INT)                                ? L_INT
                  : k == JV_K(0)                                    ? L_REAL
                  : k && !(k & ~(JV_K(JVT_TRUE) | JV_K(JVT_FALSE))) ? L_BOOL
                                                                    : -1;
        if (one >= 0) {
            cnt[one] = c->n;
            return;
        }
    }
    for (uint64_t i = 0; i < c->n; i++)
        cnt[jd_leaf(cs_get(c, i))]++;
}

/* --------------------------------------------------------------- index */

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Number of entries that repeat an earlier value. */
static int count_dups(jd *d, const ad_array *a, uint64_t *dups)
{
    *dups = 0;
    if (a->n < 2) return 0;
    if (jd_temp_charge(d, a->n * sizeof(char *))) return -1;
    const char **p = malloc(a->n * sizeof *p);
    if (!p) {
        jd_temp_release(d, a->n * sizeof(char *));
        return jd_nomem(d);
    }
    for (uint64_t i = 0; i < a->n; i++)
        p[i] = ad_str_at(a, i);
    qsort(p, a->n, sizeof *p, cmp_cstr);
    for (uint64_t i = 1; i < a->n; i++)
        if (!strcmp(p[i], p[i - 1])) (*dups)++;
    free(p);
    jd_temp_release(d, a->n * sizeof(char *));
    return 0;
}

static int index_from(jd *d, const colsrc *c, ad_array *out)
{
    ad_strbuild sb = {0};
    char num[32];
    for (uint64_t i = 0; i < c->n; i++) {
        jv v = cs_get(c, i);
        const char *s;
        size_t len;
        if (jv_is_string(v)) {
            s = jv_string_value(v);
            len = jv_string_length(v);
        } else if (jv_is_integer(v)) {
            jd_fmt_jint(v, num);
            s = num;
            len = strlen(num);
        } else if (jv_is_real(v)) {
            ad_fmt_pyfloat(jv_real_value(v), num);
            s = num;
            len = strlen(num);
        } else {
            char m[160];
            snprintf(m, sizeof m,
                     jv_is_null(v) || jv_none(v)
                         ? "null in an index; every row needs a name (string or number)"
                         : "index values must be strings or numbers, got %s",
                     jd_type_name(v));
            ad_sb_free(&sb);
            return cs_fail(d, c, i, ADX_E_SCHEMA, m);
        }
        if (jd_sb_push(d, &sb, s, len)) {
            ad_sb_free(&sb);
            return -1;
        }
    }
    uint64_t sh[1] = {c->n};
    if (ad_sb_finish(&sb, out, 1, sh) < 0) return jd_nomem(d);
    return 0;
}

/* Decode an index into f and report duplicates under d->s + "/index". */
static int frame_index(jd *d, const colsrc *c, ad_frame *f)
{
    if (jd_check_elements(d, c->n) || jd_check_dim(d, c->n)) return -1;
    ad_array idx = {0};
    if (index_from(d, c, &idx)) return -1;
    uint64_t dups;
    if (count_dups(d, &idx, &dups)) {
        ad_array_free(&idx);
        return -1;
    }
    ad_array_free(&f->index);
    f->index = idx;
    f->n_rows = c->n;
    if (dups) {
        size_t m = adx_ptr_key(&d->s, "index");
        jd_report(d, adx_ptr_str(&d->s), REP_DUPLICATE_INDEX, dups, NULL);
        adx_ptr_pop(&d->s, m);
    }
    return 0;
}

/* --------------------------------------------------------- categorical */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}
static int cmp_f64(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int alloc_codes(jd *d, ad_array *codes, uint64_t n, uint64_t ncat)
{
    ad_dtype t = ad_codes_dtype(ncat);
    uint64_t sh[1] = {n};
    if (jd_reserve(d, t, n)) return -1;
    if (ad_array_init(codes, t, 1, sh) < 0) return jd_nomem(d);
    return 0;
}

/* Python's str() of a JSON scalar, for categories of mixed type. */
static const char *py_str(jv v, char buf[32], size_t *len)
{
    const char *s;
    if (jv_is_string(v)) {
        *len = jv_string_length(v);
        return jv_string_value(v);
    }
    if (jv_is_integer(v)) {
        jd_fmt_jint(v, buf);
        s = buf;
    } else if (jv_is_real(v)) {
        ad_fmt_pyfloat(jv_real_value(v), buf);
        s = buf;
    } else {
        s = ad_fmt_pybool(jv_is_true(v));
    }
    *len = strlen(s);
    return s;
}

/* Categorical from plain values: categories are the sorted distinct non-null
 * values, null becomes code -1. */
static ad_elem *cat_from_values(jd *d, const colsrc *c, const uint64_t *cnt)
{
    uint64_t n = c->n, nonnull = n - cnt[L_NULL];
    if (cnt[L_ARR] || cnt[L_OBJ]) {
        for (uint64_t i = 0; i < n; i++) {
            int l = jd_leaf(cs_get(c, i));
            if (l == L_ARR || l == L_OBJ) {
                cs_fail(d, c, i, ADX_E_SCHEMA,
                        "categorical values must be strings, numbers or booleans");
                return NULL;
            }
        }
    }
    enum { CT_INT, CT_REAL, CT_STR, CT_BOOL, CT_MIXED } ct;
    if (cnt[L_INT] == nonnull)
        ct = CT_INT;
    else if (cnt[L_INT] + cnt[L_REAL] == nonnull)
        ct = CT_REAL;
    else if (cnt[L_STR] + cnt[L_NANSTR] == nonnull)
        ct = CT_STR;
    else if (cnt[L_BOOL] == nonnull)
        ct = CT_BOOL;
    else
        ct = CT_MIXED;
    if (nonnull == 0) ct = CT_STR; /* pandas: empty object categories */

    /* The values as one typed array (Python's str() of each for a mixed
     * column) and a missing mask; the core builder picks and orders the
     * categories as pandas does. */
    ad_dtype t = ct == CT_INT ? AD_I64 : ct == CT_REAL ? AD_F64 : ct == CT_BOOL ? AD_BOOL : AD_STR;
    ad_array vals = {0};
    ad_strbuild sb = {0};
    ad_elem *e = NULL;
    /* the missing mask, held until the categories are made (the builder
     * charges its own scratch) */
    uint64_t temp = n;
    if (jd_temp_charge(d, temp)) return NULL;
    uint8_t *miss = calloc(n ? n : 1, 1);
    if (!miss) goto nomem;
    if (t == AD_STR) {
        for (uint64_t i = 0; i < n; i++) {
            jv v = cs_get(c, i);
            char buf[32];
            size_t len = 0;
            const char *s = "";
            if (jv_none(v) || jv_is_null(v))
                miss[i] = 1;
            else
                s = py_str(v, buf, &len);
            if (jd_sb_push(d, &sb, s, len)) goto fail;
        }
        if (ad_sb_finish(&sb, &vals, 1, NULL) < 0) goto nomem;
    } else {
        uint64_t sh[1] = {n};
        if (jd_reserve(d, t, n)) goto fail;
        if (ad_array_init(&vals, t, 1, sh) < 0) goto nomem;
        for (uint64_t i = 0; i < n; i++) {
            jv v = cs_get(c, i);
            uint64_t big;
            if (t == AD_I64 && jv_big_unsigned(v, &big)) {
                /* as a plain int64 column refuses it: clamped it would be
                 * another category */
                char m[80];
                snprintf(m, sizeof m, "value %" PRIu64 " is out of range for int64", big);
                cs_fail(d, c, i, ADX_E_SCHEMA, m);
                goto fail;
            }
            if (jv_none(v) || jv_is_null(v))
                miss[i] = 1;
            else if (t == AD_F64)
                ((double *)vals.data)[i] = jv_number_value(v);
            else if (t == AD_BOOL)
                ((uint8_t *)vals.data)[i] = jv_is_true(v);
            else
                ((int64_t *)vals.data)[i] = (int64_t)jv_integer_value(v);
        }
    }
    /* The codes take at most n int64s, the categories at most the values. */
    if (jd_reserve(d, AD_I64, n)) goto fail;
    e = ad_elem_new(AD_K_CATEGORICAL);
    if (!e) goto nomem;
    if (ad_cat_from_values(&e->u.cat, &vals, miss, AD_CAT_SORTED, d->budget, adx_ptr_str(&d->p),
                           d->err) < 0)
        goto fail;
    if (ct == CT_MIXED) jd_report(d, adx_ptr_str(&d->s), REP_MIXED_TO_STRING, nonnull, NULL);
    ad_array_free(&vals);
    free(miss);
    jd_temp_release(d, temp);
    return e;
nomem:
    jd_nomem(d);
fail:
    ad_array_free(&vals);
    ad_sb_free(&sb);
    free(miss);
    jd_temp_release(d, temp);
    ad_elem_free(e);
    return NULL;
}

/* -------------------------------------------------------- plain column */

/* The Column table's numeric rows: integers only (int64), numbers with
 * null (float64), booleans only (bool); an empty column is float64. */
static bool plain_numeric(const uint64_t *cnt, uint64_t n)
{
    uint64_t nums = cnt[L_INT] + cnt[L_REAL];
    return n == 0 || cnt[L_INT] == n || (nums && nums + cnt[L_NULL] == n) || cnt[L_BOOL] == n;
}

static ad_elem *col_plain(jd *d, const colsrc *c, bool cat)
{
    uint64_t n = c->n;
    if (jd_check_elements(d, n) || jd_check_dim(d, n)) return NULL;
    uint64_t cnt[L__COUNT];
    cs_count(c, cnt);
    if (cat && !cnt[L_ARR] && !cnt[L_OBJ]) return cat_from_values(d, c, cnt);

    uint64_t sh[1] = {n};
    ad_array a;
    /* pandas: numbers and strings, "NaN" among them, are an object column,
     * which sanitize turns into strings (mixed_to_string, payload.md's
     * Column table); only a typed float array reads the spellings. */
    if (plain_numeric(cnt, n)) {
        ad_dtype t = n == 0 || cnt[L_INT] != n ? AD_F64 : AD_I64;
        if (n && cnt[L_BOOL] == n) t = AD_BOOL;
        int r = c->form == CS_PLAIN ? jd_fill_packed(d, c->arr, 1, sh, t, &a) : 0;
        if (r < 0) return NULL;
        if (r > 0) goto done;
        if (jd_reserve(d, t, n)) return NULL;
        if (ad_array_init(&a, t, 1, sh) < 0) {
            jd_nomem(d);
            return NULL;
        }
        for (uint64_t i = 0; i < n; i++)
            if (jd_put_leaf(d, cs_get(c, i), t, a.data, i)) {
                ad_array_free(&a);
                return NULL; /* unreachable: the kinds were counted */
            }
    } else if (cnt[L_BOOL] + cnt[L_NULL] == n && cnt[L_BOOL]) {
        ad_elem *e = ad_elem_new(AD_K_NULLABLE_BOOL);
        if (!e || jd_reserve(d, AD_BOOL, n) || jd_reserve(d, AD_BOOL, n)) {
            if (!e) jd_nomem(d);
            ad_elem_free(e);
            return NULL;
        }
        if (ad_array_init(&e->u.nl.values, AD_BOOL, 1, sh) < 0 ||
            ad_array_init(&e->u.nl.mask, AD_BOOL, 1, sh) < 0) {
            ad_elem_free(e);
            jd_nomem(d);
            return NULL;
        }
        uint8_t *val = e->u.nl.values.data, *mask = e->u.nl.mask.data;
        for (uint64_t i = 0; i < n; i++) {
            jv v = cs_get(c, i);
            mask[i] = jv_none(v) || jv_is_null(v);
            val[i] = jv_is_true(v);
        }
        return e;
    } else if (cnt[L_STR] + cnt[L_NANSTR] == n) {
        ad_strbuild sb = {0};
        for (uint64_t i = 0; i < n; i++) {
            jv v = cs_get(c, i);
            if (jd_sb_push(d, &sb, jv_string_value(v), jv_string_length(v))) {
                ad_sb_free(&sb);
                return NULL;
            }
        }
        if (ad_sb_finish(&sb, &a, 1, sh) < 0) {
            jd_nomem(d);
            return NULL;
        }
    } else {
        /* strings with nulls, all nulls, mixed, nested: sanitize decides */
        jd_objb b;
        if (jd_objb_init(d, &b, 1, sh)) return NULL;
        for (uint64_t i = 0; i < n; i++)
            if (jd_objb_put(d, &b, cs_get(c, i))) {
                jd_objb_free(&b);
                return NULL;
            }
        return jd_objb_finish(d, &b);
    }
done:;
    ad_elem *e = ad_elem_from_array(&a);
    if (!e) jd_nomem(d);
    return e;
}

/* ------------------------------------------------------ typed 1-d elems */

static int only_keys(jd *d, jv v, const char *const *allowed, const char *what)
{
    const char *key;
    jv val;
    jv_object_foreach(v, key, val)
    {
        (void)val;
        const char *const *a;
        for (a = allowed; *a; a++)
            if (!strcmp(*a, key)) break;
        if (!*a) {
            size_t m = adx_ptr_key(&d->p, key);
            jd_fail(d, ADX_E_SCHEMA, "unknown key \"%s\" in %s", key, what);
            adx_ptr_pop(&d->p, m);
            return -1;
        }
    }
    return 0;
}

/* "values" (or its alias "data") of a typed column; must be an array. */
static jv values_of(jd *d, jv v, const char **which)
{
    jv a = jv_object_get(v, "values"), b = jv_object_get(v, "data");
    if (!jv_none(a) && !jv_none(b)) {
        jd_fail(d, ADX_E_SCHEMA, "give either \"values\" or \"data\", not both");
        return JV_NONE;
    }
    *which = !jv_none(a) ? "values" : "data";
    if (jv_none(a)) a = b;
    if (jv_none(a)) {
        jd_fail(d, ADX_E_SCHEMA, "missing \"values\"");
        return JV_NONE;
    }
    if (!jv_is_array(a)) {
        size_t m = adx_ptr_key(&d->p, *which);
        jd_fail(d, ADX_E_SCHEMA, "expected an array, got %s", jd_type_name(a));
        adx_ptr_pop(&d->p, m);
        return JV_NONE;
    }
    return a;
}

static ad_elem *typed_nullable(jd *d, jv v, bool boolean)
{
    static const char *const keys[] = {
        "encoding-type", "encoding-version", "dtype", "values", "data", "mask", NULL};
    if (only_keys(d, v, keys, boolean ? "a nullable-boolean" : "a nullable-integer")) return NULL;
    ad_dtype t = boolean ? AD_BOOL : AD_I64;
    jv jdt = jv_object_get(v, "dtype");
    if (!jv_none(jdt)) {
        size_t m = adx_ptr_key(&d->p, "dtype");
        int r = jd_dtype(d, jdt, &t);
        if (!r && boolean && t != AD_BOOL)
            r = jd_fail(d, ADX_E_SCHEMA, "a nullable-boolean has dtype bool, got %s",
                        ad_dtype_name(t));
        if (!r && !boolean && !ad_dtype_is_int(t))
            r = jd_fail(d, ADX_E_SCHEMA, "a nullable-integer needs an integer dtype, got %s",
                        ad_dtype_name(t));
        adx_ptr_pop(&d->p, m);
        if (r) return NULL;
    }
    const char *which;
    jv vals = values_of(d, v, &which);
    if (jv_none(vals)) return NULL;
    jv jmask = jv_object_get(v, "mask");
    uint64_t n = jv_array_size(vals), sh[1] = {n};
    if (jd_check_elements(d, n) || jd_check_dim(d, n)) return NULL;
    if (!jv_none(jmask) && (!jv_is_array(jmask) || jv_array_size(jmask) != n)) {
        size_t m = adx_ptr_key(&d->p, "mask");
        jd_fail(d, ADX_E_SHAPE, "expected \"mask\" to be an array of %" PRIu64 " booleans", n);
        adx_ptr_pop(&d->p, m);
        return NULL;
    }
    ad_elem *e = ad_elem_new(boolean ? AD_K_NULLABLE_BOOL : AD_K_NULLABLE_INT);
    if (!e) {
        jd_nomem(d);
        return NULL;
    }
    /* Packed values are checked here, then converted in place (nulls made
     * 0 first) like any packed array: no second copy of the column. */
    jv_packed pk;
    bool inplace = jv_packed_get(vals, &pk) && pk.ndim == 1 && pk.n == n && n > 0;
    if (jd_reserve(d, AD_BOOL, n) || (!inplace && jd_reserve(d, t, n))) goto fail;
    if ((!inplace && ad_array_init(&e->u.nl.values, t, 1, sh) < 0) ||
        ad_array_init(&e->u.nl.mask, AD_BOOL, 1, sh) < 0) {
        jd_nomem(d);
        goto fail;
    }
    uint8_t *mask = e->u.nl.mask.data;
    size_t m = adx_ptr_key(&d->p, which);
    jd_seq sv = jd_seq_of(vals), sm = jd_seq_of(jmask);
    for (uint64_t i = 0; i < n; i++) {
        jv x = jd_seq_get(&sv, i);
        bool missing = jv_is_null(x);
        if (!jv_none(jmask)) {
            jv mk = jd_seq_get(&sm, i);
            if (!jv_is_boolean(mk)) {
                adx_ptr_pop(&d->p, m);
                m = adx_ptr_key(&d->p, "mask");
                adx_ptr_idx(&d->p, i);
                jd_fail(d, ADX_E_SCHEMA, "expected a boolean, got %s", jd_type_name(mk));
                adx_ptr_pop(&d->p, m);
                goto fail;
            }
            missing = missing || jv_is_true(mk);
        }
        mask[i] = missing;
        if (missing && jv_is_null(x)) continue; /* value stays 0 */
        size_t mi = adx_ptr_idx(&d->p, i);
        uint64_t scratch;
        int r = inplace ? jd_put_leaf(d, x, t, &scratch, 0)
                        : jd_put_leaf(d, x, t, e->u.nl.values.data, i);
        adx_ptr_pop(&d->p, mi);
        if (r) {
            adx_ptr_pop(&d->p, m);
            goto fail;
        }
    }
    if (inplace) {
        if (pk.words)
            for (uint64_t i = 0; i < n; i++)
                if (jv_is_null(pk.words[i])) pk.words[i] = boolean ? JV_FALSE : jv_int_word(0);
        int r = jd_fill_packed(d, vals, 1, sh, t, &e->u.nl.values);
        if (r <= 0) {
            if (!r) jd_fail(d, ADX_E_INTERNAL, "packed values not converted");
            adx_ptr_pop(&d->p, m);
            goto fail;
        }
    }
    adx_ptr_pop(&d->p, m);
    return e;
fail:
    ad_elem_free(e);
    return NULL;
}

static ad_elem *typed_string_array(jd *d, jv v)
{
    static const char *const keys[] = {"encoding-type", "encoding-version", "values", "data", NULL};
    if (only_keys(d, v, keys, "a string-array")) return NULL;
    const char *which;
    jv vals = values_of(d, v, &which);
    if (jv_none(vals)) return NULL;
    /* Strings of any rank; nested arrays give the shape. */
    size_t m = adx_ptr_key(&d->p, which);
    ad_elem *e = jd_nested(d, vals, JD_UNS);
    if (e && !(e->kind == AD_K_ARRAY && (e->u.arr.dtype == AD_STR || e->u.arr.n == 0))) {
        /* find the first offending element for the pointer */
        jv bad = JV_NONE;
        uint64_t at = 0;
        for (size_t i = 0; i < jv_array_size(vals) && jv_none(bad); i++)
            if (!jv_is_string(jv_array_get(vals, i))) {
                bad = jv_array_get(vals, i);
                at = i;
            }
        if (!jv_none(bad)) adx_ptr_idx(&d->p, at);
        if (!jv_none(bad) && jv_is_null(bad))
            jd_fail(d, ADX_E_SCHEMA,
                    "null in a string-array; send a plain array instead (nulls become \"\" "
                    "and are reported)");
        else
            jd_fail(d, ADX_E_SCHEMA, "a string-array holds only strings, got %s",
                    !jv_none(bad) ? jd_type_name(bad) : "nested values");
        ad_elem_free(e);
        e = NULL;
    } else if (e && e->u.arr.dtype != AD_STR) {
        /* [] decodes as float64; an empty string-array stays a string array */
        uint64_t sh[AD_MAX_NDIM];
        memcpy(sh, e->u.arr.shape, sizeof sh);
        int nd = e->u.arr.ndim;
        ad_array_free(&e->u.arr);
        if (ad_array_init(&e->u.arr, AD_STR, nd, sh) < 0) {
            ad_elem_free(e);
            e = NULL;
            jd_nomem(d);
        }
    }
    adx_ptr_pop(&d->p, m);
    return e;
}

static int check_distinct(jd *d, const ad_array *a)
{
    uint64_t n = a->n;
    if (n < 2) return 0;
    if (a->dtype == AD_STR) {
        uint64_t dups;
        if (count_dups(d, a, &dups)) return -1;
        if (dups) return jd_fail(d, ADX_E_SCHEMA, "categories must be distinct");
        return 0;
    }
    bool f = ad_dtype_is_float(a->dtype);
    if (jd_temp_charge(d, n * 8)) return -1;
    void *c = malloc(n * (f ? sizeof(double) : sizeof(int64_t)));
    if (!c) {
        jd_temp_release(d, n * 8);
        return jd_nomem(d);
    }
    for (uint64_t i = 0; i < n; i++) {
        if (f)
            ((double *)c)[i] = ad_array_get_f64(a, i);
        else
            ((int64_t *)c)[i] = ad_array_get_i64(a, i);
    }
    qsort(c, n, f ? sizeof(double) : sizeof(int64_t), f ? cmp_f64 : cmp_i64);
    int r = 0;
    for (uint64_t i = 1; i < n && !r; i++)
        if (f ? ((double *)c)[i] == ((double *)c)[i - 1]
              : ((int64_t *)c)[i] == ((int64_t *)c)[i - 1]) {
            char buf[32];
            if (f)
                ad_fmt_pyfloat(((double *)c)[i], buf);
            else
                jd_fmt_pyint(((int64_t *)c)[i], buf);
            r = jd_fail(d, ADX_E_SCHEMA, "categories must be distinct: %s appears twice", buf);
        }
    free(c);
    jd_temp_release(d, n * 8);
    return r;
}

static ad_elem *typed_categorical(jd *d, jv v)
{
    static const char *const keys[] = {"encoding-type", "encoding-version", "categories", "codes",
                                       "values",        "ordered",          NULL};
    if (only_keys(d, v, keys, "a categorical")) return NULL;
    jv jo = jv_object_get(v, "ordered"), jc = jv_object_get(v, "categories"),
       jk = jv_object_get(v, "codes"), jvals = jv_object_get(v, "values");
    bool ordered = false;
    if (!jv_none(jo)) {
        if (!jv_is_boolean(jo)) {
            size_t m = adx_ptr_key(&d->p, "ordered");
            jd_fail(d, ADX_E_SCHEMA, "expected a boolean, got %s", jd_type_name(jo));
            adx_ptr_pop(&d->p, m);
            return NULL;
        }
        ordered = jv_is_true(jo);
    }
    char base[ADX_ERR_PTR_MAX];
    ad_elem *e = NULL;
    if (!jv_none(jvals)) {
        if (!jv_none(jc) || !jv_none(jk)) {
            jd_fail(d, ADX_E_SCHEMA,
                    "a categorical has either \"values\" or \"categories\" with \"codes\"");
            return NULL;
        }
        size_t m = adx_ptr_key(&d->p, "values");
        if (!jv_is_array(jvals)) {
            jd_fail(d, ADX_E_SCHEMA, "expected an array, got %s", jd_type_name(jvals));
            adx_ptr_pop(&d->p, m);
            return NULL;
        }
        snprintf(base, sizeof base, "%s", adx_ptr_str(&d->p));
        colsrc c = {.form = CS_PLAIN,
                    .arr = jvals,
                    .seq = jd_seq_of(jvals),
                    .n = jv_array_size(jvals),
                    .base = base};
        adx_ptr_pop(&d->p, m);
        if (jd_check_elements(d, c.n) || jd_check_dim(d, c.n)) return NULL;
        uint64_t cnt[L__COUNT];
        cs_count(&c, cnt);
        e = cat_from_values(d, &c, cnt);
        if (e) e->u.cat.ordered = ordered;
        return e;
    }
    if (jv_none(jc) || jv_none(jk)) {
        jd_fail(d, ADX_E_SCHEMA,
                "a categorical needs \"categories\" and \"codes\" (or \"values\")");
        return NULL;
    }
    size_t m = adx_ptr_key(&d->p, "categories");
    if (!jv_is_array(jc)) {
        jd_fail(d, ADX_E_SCHEMA, "expected an array, got %s", jd_type_name(jc));
        adx_ptr_pop(&d->p, m);
        return NULL;
    }
    snprintf(base, sizeof base, "%s", adx_ptr_str(&d->p));
    colsrc c = {
        .form = CS_PLAIN, .arr = jc, .seq = jd_seq_of(jc), .n = jv_array_size(jc), .base = base};
    ad_elem *ce = col_plain(d, &c, false);
    if (ce && ce->kind != AD_K_ARRAY) {
        jd_fail(d, ADX_E_SCHEMA,
                "categories must be all numbers, all strings or all booleans, without null");
        ad_elem_free(ce);
        ce = NULL;
    }
    if (ce && ce->u.arr.dtype == AD_F64)
        for (uint64_t i = 0; i < ce->u.arr.n; i++)
            if (isnan(((double *)ce->u.arr.data)[i])) {
                jd_fail(d, ADX_E_SCHEMA,
                        "categories must not contain null or NaN (missing values are code -1)");
                ad_elem_free(ce);
                ce = NULL;
                break;
            }
    if (ce && check_distinct(d, &ce->u.arr)) {
        ad_elem_free(ce);
        ce = NULL;
    }
    adx_ptr_pop(&d->p, m);
    if (!ce) return NULL;
    uint64_t ncat = ce->u.arr.n;

    e = ad_elem_new(AD_K_CATEGORICAL);
    if (!e) {
        ad_elem_free(ce);
        jd_nomem(d);
        return NULL;
    }
    e->u.cat.categories = ce->u.arr;
    memset(&ce->u.arr, 0, sizeof ce->u.arr);
    ad_elem_free(ce);
    e->u.cat.ordered = ordered;

    m = adx_ptr_key(&d->p, "codes");
    uint64_t n = jv_is_array(jk) ? jv_array_size(jk) : 0;
    if (!jv_is_array(jk)) {
        jd_fail(d, ADX_E_SCHEMA, "expected an array of integer codes, got %s", jd_type_name(jk));
        goto fail;
    }
    if (jd_check_elements(d, n) || jd_check_dim(d, n)) goto fail;
    /* Packed integer codes (no null) are checked, then converted in place
     * into the codes' dtype: no second copy. */
    jv_packed pk;
    bool inplace = jv_packed_get(jk, &pk) && pk.ndim == 1 && pk.n == n && n > 0 &&
                   !(pk.kinds & ~JV_K(JVT_INT));
    if (!inplace && alloc_codes(d, &e->u.cat.codes, n, ncat)) goto fail;
    jd_seq sk = jd_seq_of(jk);
    for (uint64_t i = 0; i < n; i++) {
        jv x = jd_seq_get(&sk, i);
        int64_t code = -1;
        if (jv_is_integer(x)) {
            code = (int64_t)jv_integer_value(x);
        } else if (!jv_is_null(x)) {
            adx_ptr_idx(&d->p, i);
            jd_fail(d, ADX_E_SCHEMA, "expected an integer code (or null), got %s", jd_type_name(x));
            goto fail;
        }
        if (code < -1 || (code >= 0 && (uint64_t)code >= ncat)) {
            adx_ptr_idx(&d->p, i);
            jd_fail(d, ADX_E_SCHEMA,
                    "code %" PRId64 " is out of range [-1, %" PRIu64 ") for %" PRIu64 " categories",
                    code, ncat, ncat);
            goto fail;
        }
        if (!inplace) ad_codes_set(&e->u.cat.codes, i, code);
    }
    if (inplace) {
        uint64_t sh[1] = {n};
        int r = jd_fill_packed(d, jk, 1, sh, ad_codes_dtype(ncat), &e->u.cat.codes);
        if (r <= 0) {
            if (!r) jd_fail(d, ADX_E_INTERNAL, "packed codes not converted");
            goto fail;
        }
    }
    adx_ptr_pop(&d->p, m);
    return e;
fail:
    adx_ptr_pop(&d->p, m);
    ad_elem_free(e);
    return NULL;
}

ad_elem *jd_typed_1d(jd *d, jv v, const char *enc)
{
    if (!strcmp(enc, "categorical")) return typed_categorical(d, v);
    if (!strcmp(enc, "nullable-integer")) return typed_nullable(d, v, false);
    if (!strcmp(enc, "nullable-boolean")) return typed_nullable(d, v, true);
    if (!strcmp(enc, "string-array")) return typed_string_array(d, v);
    jd_fail(d, ADX_E_INTERNAL, "no 1-d element \"%s\"", enc);
    return NULL;
}

/* A column given as an object: one of the typed forms. */
static ad_elem *col_typed(jd *d, jv v)
{
    jv je = jv_object_get(v, "encoding-type");
    const char *enc = jv_string_value(je);
    static const char *allowed = "\"categorical\", \"nullable-integer\", \"nullable-boolean\", "
                                 "\"string-array\", \"array\"";
    if (!enc) {
        jd_fail(d, ADX_E_SCHEMA,
                "a column object needs \"encoding-type\" (one of %s); plain columns are arrays",
                allowed);
        return NULL;
    }
    if (!strcmp(enc, "array")) {
        ad_elem *e = jd_typed_dense(d, v);
        if (e && e->u.arr.ndim != 1) {
            char sh[160];
            jd_fmt_shape(sh, sizeof sh, e->u.arr.ndim, e->u.arr.shape);
            jd_fail(d, ADX_E_SHAPE, "a column is 1-d, got shape %s", sh);
            ad_elem_free(e);
            e = NULL;
        }
        return e;
    }
    if (!strcmp(enc, "categorical") || !strcmp(enc, "nullable-integer") ||
        !strcmp(enc, "nullable-boolean") || !strcmp(enc, "string-array")) {
        ad_elem *e = jd_typed_1d(d, v, enc);
        if (e && e->kind == AD_K_ARRAY && e->u.arr.ndim != 1) {
            jd_fail(d, ADX_E_SHAPE, "a column is 1-d");
            ad_elem_free(e);
            e = NULL;
        }
        return e;
    }
    size_t m = adx_ptr_key(&d->p, "encoding-type");
    jd_fail(d, ADX_E_SCHEMA, "unknown column encoding-type \"%.60s\"; expected one of %s", enc,
            allowed);
    adx_ptr_pop(&d->p, m);
    return NULL;
}

/* -------------------------------------------------------------- frames */

/* 1 when a categorical_columns glob matches the column, 0 when none, -1
 * (failed) when the glob steps passed max_include_tests. */
static int want_cat(jd *d, bool globs, const char *name)
{
    int r = globs ? glob_set_any(d->cat, name) : 0;
    if (r < 0) /* the request's option is what to change, not this column */
        adx_err_set(d->err, ADX_E_LIMIT, "/categorical_columns",
                    "matching categorical_columns against the column names takes more than "
                    "max_include_tests (%" PRIu64 ") glob steps",
                    d->lim->max_include_tests);
    return r;
}

/* Record a column's row count, or fail naming both numbers. */
static int frame_rows(jd *d, ad_frame *f, jd_frame_info *fi, uint64_t rows, const char *ptr,
                      const char *what)
{
    if (!fi->rows_known) {
        fi->rows_known = true;
        f->n_rows = rows;
        snprintf(fi->rows_ptr, sizeof fi->rows_ptr, "%s", ptr);
        return 0;
    }
    if (rows != f->n_rows)
        return jd_fail_at(d, ADX_E_SHAPE, ptr,
                          "%s has length %" PRIu64 ", expected %" PRIu64 " (the length of %s)",
                          what, rows, f->n_rows, fi->rows_ptr);
    return 0;
}

/* Column names are unique by construction (JSON keys, checked split names,
 * the records' union), so no scan for an existing one. */
static int add_col(jd *d, ad_frame *f, const char *name, ad_elem *col)
{
    if (ad_frame_append(f, name, col) < 0) return jd_nomem(d);
    return 0;
}

static int frame_columnar(jd *d, jv cols, ad_frame *f, bool globs, jd_frame_info *fi)
{
    size_t mc = adx_ptr_key(&d->p, "columns");
    if (jd_check_keys(d, jv_object_size(cols))) goto fail;
    const char *name;
    jv v;
    jv_object_foreach(cols, name, v)
    {
        size_t mp = adx_ptr_key(&d->p, name), ms = adx_ptr_key(&d->s, name);
        ad_elem *e = NULL;
        if (jd_check_name(d, name, strlen(name)))
            ;
        else if (jv_is_array(v)) {
            colsrc c = {.form = CS_PLAIN,
                        .arr = v,
                        .seq = jd_seq_of(v),
                        .n = jv_array_size(v),
                        .base = adx_ptr_str(&d->p)};
            int cat = want_cat(d, globs, name);
            e = cat < 0 ? NULL : col_plain(d, &c, cat);
        } else if (jv_is_object(v)) {
            e = col_typed(d, v);
        } else {
            jd_fail(d, ADX_E_SCHEMA,
                    "expected a column (an array or a typed column object), got %s",
                    jd_type_name(v));
        }
        int r = e ? 0 : -1;
        if (e) r = frame_rows(d, f, fi, ad_elem_rows(e), adx_ptr_str(&d->p), "column");
        if (!r)
            r = add_col(d, f, name, e);
        else
            ad_elem_free(e);
        adx_ptr_pop(&d->p, mp);
        adx_ptr_pop(&d->s, ms);
        if (r) goto fail;
    }
    adx_ptr_pop(&d->p, mc);
    return 0;
fail:
    adx_ptr_pop(&d->p, mc);
    return -1;
}

static int frame_split(jd *d, jv names, jv data, ad_frame *f, bool globs, jd_frame_info *fi)
{
    size_t ncols = jv_array_size(names), m;
    if (jd_check_keys(d, ncols)) return -1;
    adx_strmap seen = {0};
    for (size_t j = 0; j < ncols; j++) {
        jv nm = jv_array_get(names, j);
        bool added = true;
        size_t at;
        int r = 0;
        if (!jv_is_string(nm))
            r = 1;
        else if (jd_strmap_add(d, &seen, jv_string_value(nm), &at, &added))
            r = -1;
        if (r || !added) {
            adx_strmap_free(&seen);
            if (r < 0) return -1;
            m = adx_ptr_key(&d->p, "columns");
            adx_ptr_idx(&d->p, j);
            if (r)
                jd_fail(d, ADX_E_SCHEMA, "column names must be strings, got %s", jd_type_name(nm));
            else
                jd_fail(d, ADX_E_SCHEMA, "duplicate column name \"%.60s\"", jv_string_value(nm));
            adx_ptr_pop(&d->p, m);
            return -1;
        }
    }
    adx_strmap_free(&seen);
    m = adx_ptr_key(&d->p, "data");
    if (!jv_is_array(data)) {
        jd_fail(d, ADX_E_SCHEMA, "expected \"data\" to be an array of rows, got %s",
                jd_type_name(data));
        adx_ptr_pop(&d->p, m);
        return -1;
    }
    /* A numeric table is one packed matrix: its columns are read out of
     * its values where they lie (no row nodes, encoded values stay so).
     * The columns are copies; the table stays in the document until the
     * frame is released. */
    jv_packed pk;
    jd_seq table = {0};
    if (jv_packed_get(data, &pk) && pk.ndim == 2 && pk.shape[1] == ncols)
        table = (jd_seq){pk.data, pk.enc, ncols, 0};
    else if (jv_unpack(d->doc, data, adx_ptr_str(&d->p), d->err)) {
        adx_ptr_pop(&d->p, m);
        return -1;
    }
    size_t nrows = jv_array_size(data);
    for (size_t i = 0; i < nrows && !table.data; i++) {
        jv row = jv_array_get(data, i);
        if (!jv_is_array(row) || jv_array_size(row) != ncols) {
            adx_ptr_idx(&d->p, i);
            if (!jv_is_array(row))
                jd_fail(d, ADX_E_SCHEMA, "expected a row array of %zu values, got %s", ncols,
                        jd_type_name(row));
            else
                jd_fail(d, ADX_E_SHAPE, "row %zu has %zu values, expected %zu (one per column)", i,
                        jv_array_size(row), ncols);
            adx_ptr_pop(&d->p, m);
            return -1;
        }
    }
    int r = frame_rows(d, f, fi, nrows, adx_ptr_str(&d->p), "data");
    for (size_t j = 0; j < ncols && !r; j++) {
        const char *name = jv_string_value(jv_array_get(names, j));
        size_t ms = adx_ptr_key(&d->s, name);
        colsrc c = {.form = CS_SPLIT,
                    .arr = data,
                    .seq = table,
                    .col = j,
                    .n = nrows,
                    .base = adx_ptr_str(&d->p)};
        int cat = jd_check_name(d, name, strlen(name)) ? -1 : want_cat(d, globs, name);
        ad_elem *e = cat < 0 ? NULL : col_plain(d, &c, cat);
        r = e ? add_col(d, f, name, e) : -1;
        adx_ptr_pop(&d->s, ms);
    }
    adx_ptr_pop(&d->p, m);
    return r;
}

/* Records: d->p points at the array of records. */
static int frame_records(jd *d, jv recs, ad_frame *f, bool globs, jd_frame_info *fi)
{
    size_t n = jv_array_size(recs);
    if (jd_check_elements(d, n) || jd_check_dim(d, n)) return -1;
    adx_strmap cols = {0};
    const char **names = NULL;
    size_t nn = 0, cap = 0, idx_col = SIZE_MAX;
    bool all_index = n > 0;
    jv *cells = NULL;
    uint64_t ncells = 0;
    int r = 0;
    /* The union of keys in first-seen order, then one pass that places
     * every value in a column-major table: each cell is looked up once. */
    for (size_t i = 0; i < n && !r; i++) {
        jv rec = jv_array_get(recs, i);
        if (!jv_is_object(rec)) {
            size_t m = adx_ptr_idx(&d->p, i);
            r = jd_fail(d, ADX_E_SCHEMA, "expected a record object, got %s", jd_type_name(rec));
            adx_ptr_pop(&d->p, m);
            break;
        }
        if (!jv_has(rec, "_index")) all_index = false;
        const char *key;
        jv val;
        jv_object_foreach(rec, key, val)
        {
            (void)val;
            size_t at;
            bool added;
            if (jd_strmap_add(d, &cols, key, &at, &added)) {
                r = -1;
                break;
            }
            if (!added) continue;
            if (jd_check_keys(d, nn + 1)) {
                r = -1;
                break;
            }
            if (nn == cap) {
                size_t nc = cap ? cap * 2 : 16;
                const char **nb = realloc(names, nc * sizeof *names);
                if (!nb) {
                    r = jd_nomem(d);
                    break;
                }
                names = nb;
                cap = nc;
            }
            names[nn++] = key;
        }
    }
    if (!r && (__builtin_mul_overflow((uint64_t)n, (uint64_t)nn, &ncells) ||
               adx_budget_charge(d->budget, ncells * sizeof(jv), adx_ptr_str(&d->p), d->err)))
        r = adx_err_failed(d->err) ? -1 : jd_fail(d, ADX_E_LIMIT, "records table overflows");
    if (!r && !(cells = malloc((ncells ? ncells : 1) * sizeof *cells))) {
        adx_budget_release(d->budget, ncells * sizeof(jv));
        r = jd_nomem(d);
    }
    if (!r) {
        for (uint64_t k = 0; k < ncells; k++)
            cells[k] = JV_NONE;
        for (size_t i = 0; i < n; i++) {
            jv rec = jv_array_get(recs, i), val;
            const char *key;
            jv_object_foreach(rec, key, val)
            {
                cells[adx_strmap_get(&cols, key) * n + i] = val;
            }
        }
        idx_col = adx_strmap_get(&cols, "_index");
    }
    if (!r) r = frame_rows(d, f, fi, n, adx_ptr_str(&d->p), "records");
    if (!r && all_index) {
        colsrc c = {.form = CS_RECORDS,
                    .cells = cells + idx_col * n,
                    .key = "_index",
                    .n = n,
                    .base = adx_ptr_str(&d->p)};
        r = frame_index(d, &c, f);
    }
    for (size_t j = 0; j < nn && !r; j++) {
        if (all_index && j == idx_col) continue;
        size_t ms = adx_ptr_key(&d->s, names[j]);
        colsrc c = {.form = CS_RECORDS,
                    .cells = cells + j * n,
                    .key = names[j],
                    .n = n,
                    .base = adx_ptr_str(&d->p)};
        int cat = jd_check_name(d, names[j], strlen(names[j])) ? -1 : want_cat(d, globs, names[j]);
        ad_elem *e = cat < 0 ? NULL : col_plain(d, &c, cat);
        r = e ? add_col(d, f, names[j], e) : -1;
        adx_ptr_pop(&d->s, ms);
    }
    if (cells) {
        free(cells);
        adx_budget_release(d->budget, ncells * sizeof(jv));
    }
    adx_strmap_free(&cols);
    free(names);
    return r;
}

/* "0".."n-1", accounted like any other decoded strings. */
static int default_index(jd *d, ad_frame *f, uint64_t n_rows)
{
    uint64_t digits = 1;
    for (uint64_t x = n_rows; x >= 10; x /= 10)
        digits++;
    uint64_t bytes;
    if (jd_check_elements(d, n_rows) || jd_check_dim(d, n_rows)) return -1;
    if (__builtin_mul_overflow(n_rows, digits + 1 + 8, &bytes) || jd_reserve_bytes(d, bytes + 8))
        return adx_err_failed(d->err) ? -1 : jd_fail(d, ADX_E_LIMIT, "index size overflows");
    if (ad_frame_default_index(f, n_rows) < 0) return jd_nomem(d);
    f->n_rows = n_rows;
    return 0;
}

bool jd_is_frame_object(jv v)
{
    if (!jv_is_object(v)) return false;
    const char *enc = jv_string_value(jv_object_get(v, "encoding-type"));
    if (enc) return !strcmp(enc, "dataframe");
    return jv_has(v, "columns") || jv_has(v, "index");
}

int jd_frame(jd *d, jv v, ad_frame *f, bool globs, jd_frame_info *fi)
{
    memset(fi, 0, sizeof *fi);
    if (jv_is_array(v)) {
        if (frame_records(d, v, f, globs, fi)) return -1;
        return f->index.soff || !fi->rows_known ? 0 : default_index(d, f, f->n_rows);
    }
    if (!jv_is_object(v))
        return jd_fail(d, ADX_E_SCHEMA,
                       "expected a DataFrame ({\"index\", \"columns\"}, pandas split, or an "
                       "array of records), got %s",
                       jd_type_name(v));
    static const char *const keys[] = {
        "encoding-type", "encoding-version", "index", "index_name", "columns", "data", NULL};
    if (only_keys(d, v, keys, "a DataFrame")) return -1;
    jv jenc = jv_object_get(v, "encoding-type");
    if (!jv_none(jenc) && (!jv_is_string(jenc) || strcmp(jv_string_value(jenc), "dataframe"))) {
        size_t m = adx_ptr_key(&d->p, "encoding-type");
        jd_fail(d, ADX_E_SCHEMA, "expected encoding-type \"dataframe\"");
        adx_ptr_pop(&d->p, m);
        return -1;
    }
    jv jidx = jv_object_get(v, "index"), jname = jv_object_get(v, "index_name"),
       jcols = jv_object_get(v, "columns"), jdata = jv_object_get(v, "data");
    size_t m;
    if (!jv_none(jname) && !jv_is_null(jname)) {
        m = adx_ptr_key(&d->p, "index_name");
        int r = jv_is_string(jname)
                    ? jd_check_name(d, jv_string_value(jname), jv_string_length(jname))
                    : jd_fail(d, ADX_E_SCHEMA, "expected a string or null, got %s",
                              jd_type_name(jname));
        adx_ptr_pop(&d->p, m);
        if (r) return -1;
        if (!(f->index_name = strdup(jv_string_value(jname)))) return jd_nomem(d);
    }
    if (!jv_none(jidx) && !jv_is_null(jidx)) {
        m = adx_ptr_key(&d->p, "index");
        int r = 0;
        if (!jv_is_array(jidx)) {
            r = jd_fail(d, ADX_E_SCHEMA, "expected the index to be an array, got %s",
                        jd_type_name(jidx));
        } else {
            colsrc c = {.form = CS_PLAIN,
                        .arr = jidx,
                        .seq = jd_seq_of(jidx),
                        .n = jv_array_size(jidx),
                        .base = adx_ptr_str(&d->p)};
            r = frame_index(d, &c, f);
            if (!r) {
                fi->rows_known = true;
                snprintf(fi->rows_ptr, sizeof fi->rows_ptr, "%s", adx_ptr_str(&d->p));
            }
        }
        adx_ptr_pop(&d->p, m);
        if (r) return -1;
    }
    int r = 0;
    if (jv_is_array(jcols)) {
        if (jv_none(jdata)) {
            m = adx_ptr_key(&d->p, "data");
            r = jd_fail(d, ADX_E_SCHEMA, "pandas split form needs \"data\" (rows)");
            adx_ptr_pop(&d->p, m);
            return r;
        }
        r = frame_split(d, jcols, jdata, f, globs, fi);
    } else if (jv_is_object(jcols)) {
        if (!jv_none(jdata)) {
            m = adx_ptr_key(&d->p, "data");
            jd_fail(d, ADX_E_SCHEMA,
                    "\"data\" goes with \"columns\" as a list of names (split) or without "
                    "\"columns\" (records)");
            adx_ptr_pop(&d->p, m);
            return -1;
        }
        r = frame_columnar(d, jcols, f, globs, fi);
    } else if (!jv_none(jcols) && !jv_is_null(jcols)) {
        m = adx_ptr_key(&d->p, "columns");
        r = jd_fail(d, ADX_E_SCHEMA,
                    "expected \"columns\" to be an object of columns or a list of names, got %s",
                    jd_type_name(jcols));
        adx_ptr_pop(&d->p, m);
    } else if (!jv_none(jdata)) {
        m = adx_ptr_key(&d->p, "data");
        if (!jv_is_array(jdata))
            r = jd_fail(d, ADX_E_SCHEMA, "expected \"data\" to be an array of records, got %s",
                        jd_type_name(jdata));
        else {
            /* an explicit index wins over records' own _index */
            ad_array keep = f->index;
            uint64_t keep_rows = f->n_rows;
            memset(&f->index, 0, sizeof f->index);
            r = frame_records(d, jdata, f, globs, fi);
            if (!jv_none(jidx) && !jv_is_null(jidx)) {
                ad_array_free(&f->index);
                f->index = keep;
                f->n_rows = keep_rows;
            } else {
                ad_array_free(&keep);
            }
        }
        adx_ptr_pop(&d->p, m);
    }
    if (r) return -1;
    return f->index.soff || !fi->rows_known ? 0 : default_index(d, f, f->n_rows);
}

int jd_frame_finish(jd *d, ad_frame *f, jd_frame_info *fi, uint64_t n_rows)
{
    if (fi->rows_known) return 0;
    if (default_index(d, f, n_rows)) return -1;
    fi->rows_known = true;
    return 0;
}

/* A rec-array field follows the Column rules without categoricals: what a
 * column would hold as an object (strings with nulls, mixed scalars) is
 * sanitized here, as sanitize does for a column, since a field of the
 * model is a typed array. 1: not such a field (col_plain decides); 0: *out
 * holds the strings; -1: failed. */
static int rec_field_strings(jd *d, const colsrc *c, const char *name, ad_array *out)
{
    uint64_t n = c->n, cnt[L__COUNT];
    cs_count(c, cnt);
    uint64_t strs = cnt[L_STR] + cnt[L_NANSTR];
    bool nullable_bool = cnt[L_BOOL] && cnt[L_BOOL] + cnt[L_NULL] == n;
    if (plain_numeric(cnt, n) || strs == n || nullable_bool || cnt[L_ARR] || cnt[L_OBJ]) return 1;
    ad_strbuild sb = {0};
    for (uint64_t i = 0; i < n; i++) {
        jv v = cs_get(c, i);
        char buf[32];
        size_t len = 0;
        const char *t = jv_none(v) || jv_is_null(v) ? "" : py_str(v, buf, &len);
        if (jd_sb_push(d, &sb, t, len)) {
            ad_sb_free(&sb);
            return -1;
        }
    }
    if (ad_sb_finish(&sb, out, 1, NULL) < 0) return jd_nomem(d);
    size_t m = adx_ptr_key(&d->s, name);
    int r = 0;
    if (cnt[L_NULL]) r = jd_report(d, adx_ptr_str(&d->s), REP_NULL_TO_EMPTY, cnt[L_NULL], NULL);
    if (!r && n - cnt[L_NULL] - strs)
        r = jd_report(d, adx_ptr_str(&d->s), REP_MIXED_TO_STRING, n - cnt[L_NULL] - strs, NULL);
    adx_ptr_pop(&d->s, m);
    if (r) ad_array_free(out);
    return r;
}

ad_elem *jd_recarray(jd *d, jv v)
{
    static const char *const keys[] = {"encoding-type", "encoding-version", "fields", "part", NULL};
    if (only_keys(d, v, keys, "a rec-array")) return NULL;
    jv jf = jv_object_get(v, "fields");
    if (jv_has(v, "part")) {
        if (!jv_none(jf)) {
            jd_fail(d, ADX_E_SCHEMA, "a rec-array needs exactly one of \"fields\" and \"part\"");
            return NULL;
        }
        return jd_part(d, v, true);
    }
    size_t m = adx_ptr_key(&d->p, "fields");
    if (!jv_is_object(jf)) {
        jd_fail(d, ADX_E_SCHEMA, "expected \"fields\" to be an object of named arrays, got %s",
                jd_type_name(jf));
        adx_ptr_pop(&d->p, m);
        return NULL;
    }
    /* numpy has structured dtypes without fields, HDF5 no compound type
     * without members: refused for every format alike */
    if (jv_object_size(jf) == 0) {
        jd_fail(d, ADX_E_SCHEMA, "a rec-array needs at least one field");
        adx_ptr_pop(&d->p, m);
        return NULL;
    }
    ad_elem *e = NULL;
    if (jd_check_keys(d, jv_object_size(jf)) || !(e = ad_elem_new(AD_K_RECARRAY))) {
        if (!adx_err_failed(d->err)) jd_nomem(d);
        adx_ptr_pop(&d->p, m);
        return NULL;
    }
    const char *key;
    jv val;
    jv_object_foreach(jf, key, val)
    {
        size_t mk = adx_ptr_key(&d->p, key);
        ad_array a = {0};
        int r = jd_check_str(d, strlen(key));
        if (!r && !*key) r = jd_fail(d, ADX_E_SCHEMA, "a rec-array field needs a name");
        if (!r && jv_is_array(val)) {
            /* The Column rules, without categoricals; a field must end up
             * a plain typed array. */
            colsrc c = {.form = CS_PLAIN,
                        .arr = val,
                        .seq = jd_seq_of(val),
                        .n = jv_array_size(val),
                        .base = adx_ptr_str(&d->p)};
            int sr = rec_field_strings(d, &c, key, &a);
            ad_elem *col = sr == 1 ? col_plain(d, &c, false) : NULL;
            if (sr < 0 || (sr == 1 && !col))
                r = -1;
            else if (col && col->kind != AD_K_ARRAY)
                r = jd_fail(d, ADX_E_SCHEMA,
                            "a rec-array field holds numbers, booleans or strings (with null "
                            "or mixed: strings); booleans with null or nested values have no "
                            "field type");
            else if (col) {
                a = col->u.arr;
                memset(&col->u.arr, 0, sizeof col->u.arr);
            }
            ad_elem_free(col);
        } else if (!r) {
            bool plain;
            r = jd_block_1d(d, val, PART_DATA, &a, &plain);
        }
        if (!r && e->u.rec.nfields && a.n != e->u.rec.n)
            r = jd_fail(d, ADX_E_SHAPE, "field has %" PRIu64 " values, the first field %" PRIu64,
                        a.n, e->u.rec.n);
        /* the parser refused a repeated key: no scan for one */
        if (!r && ad_recarray_append(&e->u.rec, key, &a) < 0) r = jd_nomem(d);
        ad_array_free(&a);
        adx_ptr_pop(&d->p, mk);
        if (r) {
            adx_ptr_pop(&d->p, m);
            ad_elem_free(e);
            return NULL;
        }
    }
    adx_ptr_pop(&d->p, m);
    return e;
}
