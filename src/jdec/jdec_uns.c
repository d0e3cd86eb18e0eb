/* uns values: dicts (depth-limited), typed elements, scalars, and lists
 * decoded by the Matrix rules or kept for sanitize. */
#include "jdec_internal.h"

#include <string.h>

static ad_elem *scalar(jd *d, jv v)
{
    ad_array a;
    ad_dtype t = jv_is_integer(v) ? AD_I64 : jv_is_real(v) ? AD_F64 : AD_BOOL;
    if (jv_is_string(v)) {
        ad_strbuild sb = {0};
        if (jd_sb_push(d, &sb, jv_string_value(v), jv_string_length(v))) {
            ad_sb_free(&sb);
            return NULL;
        }
        if (ad_sb_finish(&sb, &a, 0, NULL) < 0) {
            jd_nomem(d);
            return NULL;
        }
    } else {
        if (jd_reserve(d, t, 1)) return NULL;
        if (ad_array_init(&a, t, 0, NULL) < 0) {
            jd_nomem(d);
            return NULL;
        }
        if (jd_put_leaf(d, v, t, a.data, 0)) {
            ad_array_free(&a);
            return NULL;
        }
    }
    ad_elem *e = ad_elem_from_array(&a);
    if (!e) jd_nomem(d);
    return e;
}

static ad_elem *typed(jd *d, jv v, jv jenc)
{
    const char *enc = jv_string_value(jenc);
    if (enc) {
        if (!strcmp(enc, "array")) return jd_typed_dense(d, v);
        if (!strcmp(enc, "csr_matrix")) return jd_sparse(d, v, false);
        if (!strcmp(enc, "csc_matrix")) return jd_sparse(d, v, true);
        if (!strcmp(enc, "categorical") || !strcmp(enc, "nullable-integer") ||
            !strcmp(enc, "nullable-boolean") || !strcmp(enc, "string-array"))
            return jd_typed_1d(d, v, enc);
        if (!strcmp(enc, "rec-array")) return jd_recarray(d, v);
        if (!strcmp(enc, "dataframe")) {
            ad_elem *e = ad_elem_new(AD_K_FRAME);
            jd_frame_info fi;
            if (!e) {
                jd_nomem(d);
                return NULL;
            }
            /* categorical_columns applies to obs/var only */
            if (jd_frame(d, v, &e->u.df, false, &fi) || jd_frame_finish(d, &e->u.df, &fi, 0)) {
                ad_elem_free(e);
                return NULL;
            }
            return e;
        }
    }
    size_t m = adx_ptr_key(&d->p, "encoding-type");
    jd_fail(d, ADX_E_SCHEMA,
            "unknown encoding-type %s%.60s%s; expected one of \"array\", \"csr_matrix\", "
            "\"csc_matrix\", \"dataframe\", \"categorical\", \"nullable-integer\", "
            "\"nullable-boolean\", \"string-array\", \"rec-array\" (or an object without "
            "encoding-type for a "
            "dict)",
            enc ? "\"" : "", enc ? enc : jd_type_name(jenc), enc ? "\"" : "");
    adx_ptr_pop(&d->p, m);
    return NULL;
}

ad_elem *jd_uns_value(jd *d, jv v, uint32_t depth)
{
    switch (jv_typeof(v)) {
    case JV_OBJECT: {
        jv jenc = jv_object_get(v, "encoding-type");
        if (!jv_none(jenc)) return typed(d, v, jenc);
        ad_elem *e = ad_elem_new(AD_K_DICT);
        if (!e) {
            jd_nomem(d);
            return NULL;
        }
        if (jd_uns_dict(d, v, &e->u.dict, depth + 1)) {
            ad_elem_free(e);
            return NULL;
        }
        return e;
    }
    case JV_ARRAY:
        return jd_nested(d, v, JD_UNS);
    case JV_NULL_T: {
        ad_elem *e = ad_elem_new(AD_K_NULL);
        if (!e) jd_nomem(d);
        return e;
    }
    default:
        return scalar(d, v);
    }
}

int jd_uns_dict(jd *d, jv v, ad_dict *out, uint32_t depth)
{
    if (depth > d->lim->max_depth)
        return jd_fail(d, ADX_E_LIMIT, "uns dicts nested deeper than max_depth = %u",
                       d->lim->max_depth);
    if (!jv_is_object(v))
        return jd_fail(d, ADX_E_SCHEMA, "expected an object (a dict), got %s", jd_type_name(v));
    if (jd_check_keys(d, jv_object_size(v))) return -1;
    const char *key;
    jv val;
    jv_object_foreach(v, key, val)
    {
        size_t mp = adx_ptr_key(&d->p, key), ms = adx_ptr_key(&d->s, key);
        ad_elem *e = jd_check_name(d, key, strlen(key)) ? NULL : jd_uns_value(d, val, depth);
        int r = e ? 0 : -1;
        if (e && ad_dict_append(out, key, e) < 0) r = jd_nomem(d); /* keys are unique */
        adx_ptr_pop(&d->p, mp);
        adx_ptr_pop(&d->s, ms);
        if (r) return -1;
    }
    return 0;
}
