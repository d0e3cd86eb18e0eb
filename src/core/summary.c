/* ad_summary_json: what a client needs to know about a model without its
 * data — shared by the job JSON (pipeline) and stored datasets (datasets). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "adx_err.h"
#include "adx_model.h"

static json_t *dict_keys(const ad_dict *d)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < d->n; i++)
        if (json_array_append_new(a, json_string(d->keys[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *frame_cols(const ad_frame *f)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < f->ncols; i++)
        if (json_array_append_new(a, json_string(f->names[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* Record arrays are one element to the namespaces' key lists; their shape
 * (records, field names and dtypes) is what a client needs to use them, so
 * each gets an entry {"path", "n", "fields": [{"name", "dtype"}]}. */
static int recarrays_in(json_t *out, const ad_dict *d, char *path, size_t len, size_t cap,
                        int depth)
{
    for (size_t i = 0; i < d->n; i++) {
        const ad_elem *e = d->vals[i];
        if (!e || (e->kind != AD_K_RECARRAY && e->kind != AD_K_DICT)) continue;
        path[len] = '\0';
        adx_ptr_append_key(path, cap, d->keys[i]);
        if (e->kind == AD_K_DICT) {
            /* the model's depth is bounded by max_depth; this is a backstop */
            if (depth < 64 && recarrays_in(out, &e->u.dict, path, strlen(path), cap, depth + 1))
                return -1;
            continue;
        }
        json_t *fields = json_array();
        for (size_t f = 0; fields && f < e->u.rec.nfields; f++)
            if (json_array_append_new(fields,
                                      json_pack("{s:s, s:s}", "name", e->u.rec.names[f], "dtype",
                                                ad_dtype_name(e->u.rec.fields[f].dtype)))) {
                json_decref(fields);
                fields = NULL;
            }
        if (json_array_append_new(out, json_pack("{s:s, s:I, s:o}", "path", path, "n",
                                                 (json_int_t)e->u.rec.n, "fields", fields)))
            return -1;
    }
    path[len] = '\0';
    return 0;
}

static json_t *recarrays(const ad_anndata *a)
{
    json_t *out = json_array();
    char path[ADX_ERR_PTR_MAX];
    /* Record arrays live in the mappings that are not 2-d matrices (obsm,
     * varm, uns) and in raw.varm. */
    for (int k = 0; out && k <= AD_NS__COUNT; k++) {
        const ad_dict *d;
        if (k == AD_NS__COUNT) {
            if (!a->raw) break;
            d = &a->raw->varm;
            snprintf(path, sizeof path, "/raw/varm");
        } else {
            if (ad_ns_table[k].frame || ad_ns_table[k].cols != AD_AXIS_NONE) continue;
            d = ad_ns_cdict(a, (ad_ns)k);
            snprintf(path, sizeof path, "/%s", ad_ns_table[k].name);
        }
        if (recarrays_in(out, d, path, strlen(path), sizeof path, 0)) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

static json_t *x_summary(const ad_elem *x)
{
    if (!x) return json_null();
    json_t *shape = json_array();
    const char *dtype = "?";
    if (x->kind == AD_K_ARRAY) {
        dtype = ad_dtype_name(x->u.arr.dtype);
        for (int k = 0; shape && k < x->u.arr.ndim; k++)
            json_array_append_new(shape, json_integer((json_int_t)x->u.arr.shape[k]));
    } else if (x->kind == AD_K_SPARSE) {
        dtype = ad_dtype_name(x->u.sp.data.dtype);
        for (int k = 0; shape && k < 2; k++)
            json_array_append_new(shape, json_integer((json_int_t)x->u.sp.shape[k]));
    }
    /* "o*" consumes `shape` even when packing fails, and a NULL shape makes
     * the whole pack fail: no half-built summary escapes. */
    return json_pack("{s:s, s:s, s:o}", "encoding", ad_elem_encoding(x), "dtype", dtype, "shape",
                     shape);
}

static json_t *raw_summary(const ad_raw *r)
{
    if (!r) return json_null();
    /* raw.X decides raw's width when present; raw.var alone otherwise. */
    uint64_t n_vars = r->var.n_rows;
    if (r->X && r->X->kind == AD_K_ARRAY && r->X->u.arr.ndim == 2)
        n_vars = r->X->u.arr.shape[1];
    else if (r->X && r->X->kind == AD_K_SPARSE)
        n_vars = r->X->u.sp.shape[1];
    return json_pack("{s:I, s:o, s:o}", "n_vars", (json_int_t)n_vars, "var", frame_cols(&r->var),
                     "varm", dict_keys(&r->varm));
}

struct json_t *ad_summary_json(const ad_anndata *a)
{
    if (!a) return NULL;
    json_t *o = json_pack("{s:I, s:I, s:o}", "n_obs", (json_int_t)a->n_obs, "n_vars",
                          (json_int_t)a->n_vars, "X", x_summary(a->X));
    for (int ns = 0; o && ns < AD_NS__COUNT; ns++) {
        json_t *keys = ad_ns_table[ns].frame ? frame_cols(ad_ns_cframe(a, (ad_ns)ns))
                                             : dict_keys(ad_ns_cdict(a, (ad_ns)ns));
        if (!keys || json_object_set_new(o, ad_ns_table[ns].name, keys) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    /* set_new takes the value even when it fails, and fails on NULL. */
    if (o && (json_object_set_new(o, "raw", raw_summary(a->raw)) < 0 ||
              json_object_set_new(o, "record_arrays", recarrays(a)) < 0)) {
        json_decref(o);
        return NULL;
    }
    json_t *rec = recarrays(a);
    if (o && (!rec || json_object_set_new(o, "record_arrays", rec) < 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}
