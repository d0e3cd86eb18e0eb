/* JSON AnnData → model: document loading, the AnnData object, and the shape
 * agreement between its elements (payload.md "The AnnData object"). */
#include "jdec_internal.h"

#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- reading */

struct jdec_doc {
    jv_doc *t;
};

static const adx_limits *limits_or_default(const jdec_opts *o, adx_limits *def)
{
    if (o && o->limits) return o->limits;
    adx_limits_default(def);
    return def;
}

jdec_doc *jdec_read(adx_src *src, const jdec_opts *o, adx_err *err)
{
    adx_limits def;
    jv_parse_opts po = {
        .lim = limits_or_default(o, &def),
        .budget = o ? o->budget : NULL,
        .ctl = o ? o->ctl : NULL,
        .progress_scale = o && o->progress_to > 0 ? o->progress_to : 1.0,
        .base_ptr = o ? o->base_ptr : NULL,
    };
    jdec_doc *d = malloc(sizeof *d);
    if (!d) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory reading the request");
        return NULL;
    }
    if (!(d->t = jv_parse(src, &po, err))) {
        free(d);
        return NULL;
    }
    return d;
}

jdec_doc *jdec_read_buffer(const char *buf, size_t len, const jdec_opts *o, adx_err *err)
{
    adx_limits def;
    const adx_limits *lim = limits_or_default(o, &def);
    adx_src *s = adx_src_open_mem(buf, len, lim->max_body_bytes, err);
    if (!s) return NULL;
    jdec_doc *d = jdec_read(s, o, err);
    adx_src_close(s);
    return d;
}

jdec_doc *jdec_read_file(const char *path, const jdec_opts *o, adx_err *err)
{
    adx_limits def;
    const adx_limits *lim = limits_or_default(o, &def);
    adx_src *s = adx_src_open_path(path, lim->max_body_bytes, err);
    if (s) s = adx_src_auto(s, lim->max_body_bytes, err);
    if (!s) return NULL;
    jdec_doc *d = jdec_read(s, o, err);
    adx_src_close(s);
    return d;
}

void jdec_doc_free(jdec_doc *d)
{
    if (!d) return;
    jv_doc_free(d->t);
    free(d);
}

bool jdec_doc_has(const jdec_doc *d, const char *member)
{
    return !jv_none(jv_object_get(jv_doc_root(d->t), member));
}

/* A small value as jansson; *budget counts nodes down. */
static json_t *to_json(jv v, uint64_t *budget)
{
    if (*budget == 0) return NULL;
    (*budget)--;
    switch (jv_typeof(v)) {
    case JV_OBJECT: {
        json_t *o = json_object();
        const char *key;
        jv val;
        jv_object_foreach(v, key, val)
        {
            json_t *c = to_json(val, budget);
            if (!o || !c || json_object_set_new(o, key, c)) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    case JV_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < jv_array_size(v); i++) {
            json_t *c = to_json(jv_array_get(v, i), budget);
            if (!c || json_array_append_new(a, c)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case JV_STRING:
        return json_stringn(jv_string_value(v), jv_string_length(v));
    case JV_INTEGER:
        return json_integer((json_int_t)jv_integer_value(v));
    case JV_REAL:
        return json_real(jv_real_value(v));
    case JV_TRUE_T:
        return json_true();
    case JV_FALSE_T:
        return json_false();
    default:
        return json_null();
    }
}

json_t *jdec_doc_envelope(const jdec_doc *d, const char *skip, adx_err *err)
{
    jv root = jv_doc_root(d->t);
    if (!jv_is_object(root)) {
        /* The request's own check names the problem ("expected an object"). */
        if (jv_is_array(root)) return json_array();
        return json_null();
    }
    json_t *o = json_object();
    const char *key;
    jv val;
    jv_object_foreach(root, key, val)
    {
        /* Options are small; a big member is not an option anyone sends.
         * The skipped member keeps only its type. */
        uint64_t budget = 1u << 16;
        bool shallow = skip && !strcmp(key, skip);
        json_t *c = !shallow            ? to_json(val, &budget)
                    : jv_is_object(val) ? json_object()
                    : jv_is_array(val)  ? json_array()
                                        : to_json(val, &budget);
        if (!c || !o || json_object_set_new(o, key, c)) {
            json_decref(o);
            char ptr[ADX_ERR_PTR_MAX] = "";
            adx_ptr_append_key(ptr, sizeof ptr, key);
            if (budget == 0)
                adx_err_set(err, ADX_E_LIMIT, ptr,
                            "request member \"%.60s\" has more than 65536 values; options are "
                            "small",
                            key);
            else
                adx_err_set(err, ADX_E_NOMEM, "", "out of memory reading the request");
            return NULL;
        }
    }
    /* an array whose words the budget refused read as null */
    if (jv_doc_failed(d->t, NULL, err)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------- anndata */

typedef struct dims {
    uint64_t n_obs, n_vars;
    bool obs_known, vars_known;
} dims;

/* Fix a dimension from the first element that has it, else compare. */
static int agree(jd *d, const char *ptr, uint64_t got, uint64_t *n, bool *known, const char *name,
                 const char *what)
{
    if (!*known) {
        *n = got;
        *known = true;
        return 0;
    }
    if (got != *n)
        return jd_fail_at(d, ADX_E_SHAPE, ptr, "%s %" PRIu64 ", expected %s = %" PRIu64, what, got,
                          name, *n);
    return 0;
}

static ad_elem *matrix(jd *d, jv v)
{
    if (jv_is_array(v)) return jd_nested(d, v, JD_MATRIX);
    const char *enc = jv_is_object(v) ? jv_string_value(jv_object_get(v, "encoding-type")) : NULL;
    if (enc && !strcmp(enc, "array")) return jd_typed_dense(d, v);
    if (enc && !strcmp(enc, "csr_matrix")) return jd_sparse(d, v, false);
    if (enc && !strcmp(enc, "csc_matrix")) return jd_sparse(d, v, true);
    jd_fail(d, ADX_E_SCHEMA,
            "expected a matrix (nested arrays, or an object with encoding-type \"array\", "
            "\"csr_matrix\" or \"csc_matrix\"), got %s%s%s",
            jd_type_name(v), enc ? " with encoding-type " : "", enc ? enc : "");
    return NULL;
}

static int ndim_of(const ad_elem *e)
{
    if (e->kind == AD_K_RECARRAY) return 1;
    return e->kind == AD_K_SPARSE ? 2 : e->u.arr.ndim;
}
static uint64_t dim_of(const ad_elem *e, int k)
{
    if (e->kind == AD_K_RECARRAY) return e->u.rec.n;
    return e->kind == AD_K_SPARSE ? e->u.sp.shape[k] : e->u.arr.shape[k];
}

static ad_elem *matrix_2d(jd *d, jv v)
{
    ad_elem *e = matrix(d, v);
    if (e && ndim_of(e) != 2) {
        char sh[160];
        jd_fmt_shape(sh, sizeof sh, e->u.arr.ndim, e->u.arr.shape);
        jd_fail(d, ADX_E_SHAPE, "expected a 2-d matrix, got shape %s", sh);
        ad_elem_free(e);
        return NULL;
    }
    return e;
}

enum ns_kind { NS_OBSM, NS_VARM, NS_LAYERS, NS_OBSP, NS_VARP };

/* d->p points at the namespace object. Frames with unknown rows are
 * finished later (see finish_frames). */
static int decode_ns(jd *d, jv v, enum ns_kind k, ad_dict *out, dims *dm)
{
    if (jv_is_null(v)) return 0;
    if (!jv_is_object(v))
        return jd_fail(d, ADX_E_SCHEMA, "expected an object of named elements, got %s",
                       jd_type_name(v));
    if (jd_check_keys(d, jv_object_size(v))) return -1;
    const char *key;
    jv val;
    jv_object_foreach(v, key, val)
    {
        size_t mp = adx_ptr_key(&d->p, key), ms = adx_ptr_key(&d->s, key);
        char ptr[ADX_ERR_PTR_MAX];
        snprintf(ptr, sizeof ptr, "%s", adx_ptr_str(&d->p));
        ad_elem *e = NULL;
        int r = jd_check_name(d, key, strlen(key));
        bool m_frame =
            (k == NS_OBSM || k == NS_VARM) &&
            (jd_is_frame_object(val) || (jv_is_array(val) && !jv_packed_get(val, &(jv_packed){0}) &&
                                         jv_is_object(jv_array_get(val, 0))));
        jd_frame_info fi = {0};
        if (r) {
        } else if (m_frame) {
            e = ad_elem_new(AD_K_FRAME);
            if (!e)
                r = jd_nomem(d);
            else
                r = jd_frame(d, val, &e->u.df, false, &fi);
        } else if ((k == NS_OBSM || k == NS_VARM) && jv_is_object(val) &&
                   jv_is_string(jv_object_get(val, "encoding-type")) &&
                   !strcmp(jv_string_value(jv_object_get(val, "encoding-type")), "rec-array")) {
            e = jd_recarray(d, val);
            r = e ? 0 : -1;
        } else if (k == NS_OBSM || k == NS_VARM) {
            e = matrix(d, val);
            if (e && ndim_of(e) < 1)
                r = jd_fail(d, ADX_E_SHAPE, "expected at least 1 dimension, got a scalar");
            r = e ? r : -1;
        } else {
            e = matrix_2d(d, val);
            r = e ? 0 : -1;
        }
        if (!r) {
            switch (k) {
            case NS_OBSM:
            case NS_VARM: {
                bool obs = k == NS_OBSM;
                uint64_t *n = obs ? &dm->n_obs : &dm->n_vars;
                bool *kn = obs ? &dm->obs_known : &dm->vars_known;
                if (!m_frame || fi.rows_known)
                    r = agree(d, m_frame ? fi.rows_ptr : ptr,
                              m_frame ? e->u.df.n_rows : dim_of(e, 0), n, kn,
                              obs ? "n_obs" : "n_vars", m_frame ? "length" : "rows");
                if (!r && m_frame && !fi.rows_known) {
                    /* no index, no columns: rows follow the parent */
                    r = jd_frame_finish(d, &e->u.df, &fi, *kn ? *n : 0);
                }
                break;
            }
            case NS_LAYERS:
            case NS_OBSP:
            case NS_VARP: {
                bool rows_obs = k != NS_VARP, cols_obs = k == NS_OBSP;
                uint64_t r0 = dim_of(e, 0), c0 = dim_of(e, 1);
                /* compare both dims, then name the whole expected shape */
                uint64_t *n0 = rows_obs ? &dm->n_obs : &dm->n_vars;
                bool *k0 = rows_obs ? &dm->obs_known : &dm->vars_known;
                if (!*k0) {
                    *n0 = r0;
                    *k0 = true;
                }
                uint64_t *n1 = cols_obs ? &dm->n_obs : &dm->n_vars;
                bool *k1 = cols_obs ? &dm->obs_known : &dm->vars_known;
                if (!*k1) {
                    *n1 = c0;
                    *k1 = true;
                }
                if (r0 != *n0 || c0 != *n1)
                    r = jd_fail_at(d, ADX_E_SHAPE, ptr,
                                   "shape (%" PRIu64 ", %" PRIu64 "), expected (%s, %s) = (%" PRIu64
                                   ", %" PRIu64 ")",
                                   r0, c0, rows_obs ? "n_obs" : "n_vars",
                                   cols_obs ? "n_obs" : "n_vars", *n0, *n1);
                break;
            }
            }
        }
        if (!r && ad_dict_append(out, key, e) < 0) { /* JSON keys are unique */
            e = NULL;
            r = jd_nomem(d);
        } else if (r) {
            ad_elem_free(e);
        }
        adx_ptr_pop(&d->p, mp);
        adx_ptr_pop(&d->s, ms);
        if (r) return -1;
    }
    return 0;
}

/* d->p at a frame; decode and compare its rows to n. */
static int decode_df(jd *d, jv v, ad_frame *f, bool globs, uint64_t *n, bool *known,
                     const char *name, jd_frame_info *fi)
{
    memset(fi, 0, sizeof *fi);
    if (jv_is_null(v)) return 0;
    if (jd_frame(d, v, f, globs, fi)) return -1;
    if (fi->rows_known) return agree(d, fi->rows_ptr, f->n_rows, n, known, name, "length");
    return 0;
}

static int decode_raw(jd *d, jv v, ad_anndata *a, dims *dm)
{
    if (jv_is_null(v)) return 0;
    if (!jv_is_object(v))
        return jd_fail(d, ADX_E_SCHEMA,
                       "expected raw to be an object {\"X\", \"var\", \"varm\"}, got %s",
                       jd_type_name(v));
    const char *key;
    jv val;
    jv_object_foreach(v, key, val)
    {
        (void)val;
        if (strcmp(key, "X") && strcmp(key, "var") && strcmp(key, "varm")) {
            size_t m = adx_ptr_key(&d->p, key);
            jd_fail(d, ADX_E_SCHEMA,
                    "unknown key \"%.60s\" in raw; expected \"X\", \"var\", \"varm\"", key);
            adx_ptr_pop(&d->p, m);
            return -1;
        }
    }
    jv jx = jv_object_get(v, "X");
    /* anndata writes raw as X, var and varm, and a raw group without X
     * reads back as raw of the main X, losing raw.var (formats.md) */
    if (jv_none(jx) || jv_is_null(jx)) {
        size_t m = adx_ptr_key(&d->p, "X");
        jd_fail(d, ADX_E_SCHEMA,
                "raw needs X (the matrix raw.var describes); for no raw send "
                "\"raw\": null or leave it out");
        adx_ptr_pop(&d->p, m);
        return -1;
    }
    if (!(a->raw = calloc(1, sizeof *a->raw))) return jd_nomem(d);
    ad_raw *raw = a->raw;
    dims rd = {.n_obs = dm->n_obs, .obs_known = dm->obs_known};
    size_t mp = adx_ptr_key(&d->p, "X"), ms = adx_ptr_key(&d->s, "X");
    int r = 0;
    raw->X = matrix_2d(d, jx);
    if (!raw->X) r = -1;
    if (!r)
        r = agree(d, adx_ptr_str(&d->p), dim_of(raw->X, 0), &dm->n_obs, &dm->obs_known, "n_obs",
                  "rows");
    if (!r) {
        rd.n_vars = dim_of(raw->X, 1);
        rd.vars_known = true;
    }
    adx_ptr_pop(&d->p, mp);
    adx_ptr_pop(&d->s, ms);
    if (r) return -1;
    jd_frame_info fi = {0};
    jv jvar = jv_object_get(v, "var");
    if (!jv_none(jvar)) {
        mp = adx_ptr_key(&d->p, "var");
        ms = adx_ptr_key(&d->s, "var");
        r = decode_df(d, jvar, &raw->var, false, &rd.n_vars, &rd.vars_known,
                      "raw n_vars (raw.X columns)", &fi);
        adx_ptr_pop(&d->p, mp);
        adx_ptr_pop(&d->s, ms);
        if (r) return -1;
    }
    jv jm = jv_object_get(v, "varm");
    if (!jv_none(jm)) {
        mp = adx_ptr_key(&d->p, "varm");
        ms = adx_ptr_key(&d->s, "varm");
        rd.obs_known = true; /* only n_vars matters for varm */
        r = decode_ns(d, jm, NS_VARM, &raw->varm, &rd);
        adx_ptr_pop(&d->p, mp);
        adx_ptr_pop(&d->s, ms);
        if (r) return -1;
    }
    /* Without raw.X or raw.var the raw variables are the object's own. */
    if (!rd.vars_known) rd.n_vars = dm->vars_known ? dm->n_vars : 0;
    mp = adx_ptr_key(&d->s, "var");
    r = jd_frame_finish(d, &raw->var, &fi, rd.n_vars);
    adx_ptr_pop(&d->s, mp);
    return r;
}

static int decode_shape(jd *d, jv v, dims *dm)
{
    if (jv_is_null(v)) return 0;
    if (!jv_is_array(v) || jv_array_size(v) != 2)
        return jd_fail(d, ADX_E_SCHEMA, "expected \"shape\" to be [n_obs, n_vars]");
    uint64_t s[2];
    for (size_t i = 0; i < 2; i++) {
        size_t m = adx_ptr_idx(&d->p, i);
        int r = jd_get_size(d, jv_array_get(v, i), &s[i]);
        if (!r) r = jd_check_dim(d, s[i]);
        if (!r)
            r = agree(d, adx_ptr_str(&d->p), s[i], i ? &dm->n_vars : &dm->n_obs,
                      i ? &dm->vars_known : &dm->obs_known, i ? "n_vars" : "n_obs",
                      i ? "shape[1] =" : "shape[0] =");
        adx_ptr_pop(&d->p, m);
        if (r) return -1;
    }
    return 0;
}

static const char *const top_keys[] = {"X",    "obs",  "var", "obsm", "varm",  "layers",
                                       "obsp", "varp", "uns", "raw",  "shape", NULL};

ad_anndata *jdec_doc_anndata(jdec_doc *doc, const char *member, const jdec_opts *o, adx_report *rep,
                             adx_err *err)
{
    jv root = jv_doc_root(doc->t);
    jv *slot = member ? jv_object_slot(root, member) : &root;
    jv adata = slot ? *slot : JV_NONE;
    static const char *const default_globs[] = {"kmeans_*"};
    adx_limits def;
    jd d = {0};
    d.h5ad_names = o && o->h5ad_names;
    if (o && o->limits)
        d.lim = o->limits;
    else {
        adx_limits_default(&def);
        d.lim = &def;
    }
    d.globs = o && o->cat_globs ? o->cat_globs : default_globs;
    d.nglobs = o && o->cat_globs ? o->n_cat_globs : 1;
    d.rep = rep;
    d.err = err;
    d.part = o ? o->part : NULL;
    d.part_ud = o ? o->part_ud : NULL;
    d.doc = doc->t;
    d.budget = o ? o->budget : NULL;
    adx_ptr_init(&d.p, o ? o->base_ptr : NULL);
    adx_ptr_init(&d.s, NULL);

    if (!jv_is_object(adata)) {
        jd_fail(&d, ADX_E_SCHEMA, "expected the AnnData object to be a JSON object, got %s",
                jd_type_name(adata));
        return NULL;
    }
    const char *key;
    jv val;
    jv_object_foreach(adata, key, val)
    {
        (void)val;
        const char *const *k;
        for (k = top_keys; *k; k++)
            if (!strcmp(*k, key)) break;
        if (!*k) {
            size_t m = adx_ptr_key(&d.p, key);
            jd_fail(&d, ADX_E_SCHEMA,
                    "unknown key \"%.60s\" in the AnnData object; expected X, obs, var, obsm, "
                    "varm, layers, obsp, varp, uns, raw, shape",
                    key);
            adx_ptr_pop(&d.p, m);
            return NULL;
        }
    }
    /* categorical_columns: many patterns on many columns stay linear */
    d.cat = glob_set_new(d.globs, d.nglobs, d.lim->max_include_tests, NULL);
    ad_anndata *a = d.cat ? ad_anndata_new() : NULL;
    if (!a) {
        glob_set_free(d.cat);
        jd_nomem(&d);
        return NULL;
    }
    dims dm = {0};
    jd_frame_info fobs = {0}, fvar = {0};
    size_t mp, ms;
    int r = 0;
#define ENTER(name)                                                                                \
    do {                                                                                           \
        mp = adx_ptr_key(&d.p, name);                                                              \
        ms = adx_ptr_key(&d.s, name);                                                              \
    } while (0)
#define LEAVE()                                                                                    \
    do {                                                                                           \
        adx_ptr_pop(&d.p, mp);                                                                     \
        adx_ptr_pop(&d.s, ms);                                                                     \
    } while (0)

    jv v = jv_object_get(adata, "X");
    if (!jv_none(v) && !jv_is_null(v)) {
        ENTER("X");
        a->X = matrix_2d(&d, v);
        LEAVE();
        /* converted: its part of the document goes now */
        jv_release(d.doc, jv_object_slot(adata, "X"));
        if (!a->X) goto fail;
        dm.n_obs = dim_of(a->X, 0);
        dm.n_vars = dim_of(a->X, 1);
        dm.obs_known = dm.vars_known = true;
    }
    if (!jv_none(v = jv_object_get(adata, "obs"))) {
        ENTER("obs");
        r = decode_df(&d, v, &a->obs, true, &dm.n_obs, &dm.obs_known, "n_obs", &fobs);
        LEAVE();
        /* converted: its part of the document goes now */
        jv_release(d.doc, jv_object_slot(adata, "obs"));
        if (r) goto fail;
    }
    if (!jv_none(v = jv_object_get(adata, "var"))) {
        ENTER("var");
        r = decode_df(&d, v, &a->var, true, &dm.n_vars, &dm.vars_known, "n_vars", &fvar);
        LEAVE();
        /* converted: its part of the document goes now */
        jv_release(d.doc, jv_object_slot(adata, "var"));
        if (r) goto fail;
    }
    if (!jv_none(v = jv_object_get(adata, "shape"))) {
        ENTER("shape");
        r = decode_shape(&d, v, &dm);
        LEAVE();
        /* converted: its part of the document goes now */
        jv_release(d.doc, jv_object_slot(adata, "shape"));
        if (r) goto fail;
    }
    static const struct {
        const char *name;
        enum ns_kind k;
        size_t off;
    } nss[] = {
        {"layers", NS_LAYERS, offsetof(ad_anndata, layers)},
        {"obsm", NS_OBSM, offsetof(ad_anndata, obsm)},
        {"varm", NS_VARM, offsetof(ad_anndata, varm)},
        {"obsp", NS_OBSP, offsetof(ad_anndata, obsp)},
        {"varp", NS_VARP, offsetof(ad_anndata, varp)},
    };
    for (size_t i = 0; i < sizeof nss / sizeof *nss; i++) {
        if (jv_none(v = jv_object_get(adata, nss[i].name))) continue;
        ENTER(nss[i].name);
        r = decode_ns(&d, v, nss[i].k, (ad_dict *)((char *)a + nss[i].off), &dm);
        LEAVE();
        /* converted: its part of the document goes now */
        jv_release(d.doc, jv_object_slot(adata, nss[i].name));
        if (r) goto fail;
    }
    if (!jv_none(v = jv_object_get(adata, "raw"))) {
        ENTER("raw");
        r = decode_raw(&d, v, a, &dm);
        LEAVE();
        /* converted: its part of the document goes now */
        jv_release(d.doc, jv_object_slot(adata, "raw"));
        if (r) goto fail;
    }
    if (!jv_none(v = jv_object_get(adata, "uns")) && !jv_is_null(v)) {
        ENTER("uns");
        r = jd_uns_dict(&d, v, &a->uns, 1);
        LEAVE();
        /* converted: its part of the document goes now */
        jv_release(d.doc, jv_object_slot(adata, "uns"));
        if (r) goto fail;
    }
    a->n_obs = dm.n_obs;
    a->n_vars = dm.n_vars;
    ENTER("obs");
    r = jd_frame_finish(&d, &a->obs, &fobs, a->n_obs);
    LEAVE();
    ENTER("var");
    if (!r) r = jd_frame_finish(&d, &a->var, &fvar, a->n_vars);
    LEAVE();
    if (r) goto fail;
    /* a reader that found no words where the budget refused them */
    if (jv_doc_failed(d.doc, NULL, err)) goto fail;
    /* The decoder's own checks name the JSON form that disagrees; the
     * model's one check is what every reader ends with. */
    if (ad_anndata_frames_take_axis_names(a, d.budget, err) < 0 ||
        ad_anndata_check(a, o ? o->base_ptr : NULL, err) < 0)
        goto fail;
    glob_set_free(d.cat);
    return a;
#undef ENTER
#undef LEAVE
fail:
    glob_set_free(d.cat);
    ad_anndata_free(a);
    return NULL;
}
