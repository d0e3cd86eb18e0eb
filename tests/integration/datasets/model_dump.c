/* Test driver: read a stored dataset (h5ad file or Polis export folder) into
 * the model and print the model as JSON, so the Python tests can compare it
 * value by value with what anndata / pandas read from the same input.
 *
 *   model_dump h5ad <file> [<rewrite.h5ad>]
 *   model_dump polis <dir>
 *
 * Output: {"ok": true, "adata": {...}, "report": [...]} or {"ok": false,
 * "error": {"type", "detail", "pointer"}}; exit status 0 / 1. Every element
 * is spelled out with its encoding so nothing is inferred on the Python side.
 * With a third argument the model is also written back with h5w_write
 * (Polis models are sanitized first, as the pipeline does: their text
 * columns with empty cells are object columns).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "adx_h5r.h"
#include "adx_h5w.h"
#include "adx_polis.h"
#include "adx_sanitize.h"

static json_t *num_json(const ad_array *a, uint64_t i)
{
    switch (a->dtype) {
    case AD_BOOL:
        return json_boolean(((const uint8_t *)a->data)[i]);
    case AD_F32:
    case AD_F64: {
        double v = ad_array_get_f64(a, i);
        if (isnan(v)) return json_string("NaN");
        if (isinf(v)) return json_string(v > 0 ? "Infinity" : "-Infinity");
        return json_real(v);
    }
    case AD_U64: {
        uint64_t u = ((const uint64_t *)a->data)[i];
        if (u > INT64_MAX) {
            char b[32];
            snprintf(b, sizeof b, "%llu", (unsigned long long)u);
            return json_string(b);
        }
        return json_integer((json_int_t)u);
    }
    default:
        return json_integer((json_int_t)ad_array_get_i64(a, i));
    }
}

static json_t *array_json(const ad_array *a)
{
    json_t *o = json_object(), *shape = json_array(), *data = json_array();
    json_object_set_new(o, "encoding-type",
                        json_string(a->dtype == AD_STR ? "string-array" : "array"));
    json_object_set_new(o, "dtype", json_string(ad_dtype_name(a->dtype)));
    for (int i = 0; i < a->ndim; i++)
        json_array_append_new(shape, json_integer((json_int_t)a->shape[i]));
    for (uint64_t i = 0; i < a->n; i++)
        json_array_append_new(data, a->dtype == AD_STR
                                        ? json_stringn(ad_str_at(a, i), ad_str_len(a, i))
                                        : num_json(a, i));
    json_object_set_new(o, "shape", shape);
    json_object_set_new(o, "data", data);
    return o;
}

static json_t *elem_json(const ad_elem *e);

static json_t *dict_json(const ad_dict *d)
{
    json_t *o = json_object();
    for (size_t i = 0; i < d->n; i++)
        json_object_set_new(o, d->keys[i], elem_json(d->vals[i]));
    return o;
}

static json_t *frame_json(const ad_frame *f)
{
    json_t *o = json_object(), *idx = json_array(), *cols = json_object();
    json_object_set_new(o, "encoding-type", json_string("dataframe"));
    for (uint64_t i = 0; i < f->index.n; i++)
        json_array_append_new(idx, json_stringn(ad_str_at(&f->index, i), ad_str_len(&f->index, i)));
    json_object_set_new(o, "index", idx);
    json_object_set_new(o, "index_name", f->index_name ? json_string(f->index_name) : json_null());
    json_t *order = json_array();
    for (size_t i = 0; i < f->ncols; i++) {
        json_object_set_new(cols, f->names[i], elem_json(f->cols[i]));
        json_array_append_new(order, json_string(f->names[i]));
    }
    json_object_set_new(o, "columns", cols);
    json_object_set_new(o, "column_order", order);
    return o;
}

static json_t *object_json(const ad_object *ob)
{
    json_t *o = json_object(), *cells = json_array(), *shape = json_array();
    json_object_set_new(o, "encoding-type", json_string("object"));
    for (int i = 0; i < ob->ndim; i++)
        json_array_append_new(shape, json_integer((json_int_t)ob->shape[i]));
    for (uint64_t i = 0; i < ob->n; i++) {
        json_t *c;
        switch (ob->kind[i]) {
        case AD_CELL_BOOL:
            c = json_boolean(ob->num[i].i);
            break;
        case AD_CELL_INT:
            c = json_integer(ob->num[i].i);
            break;
        case AD_CELL_REAL:
            c = isfinite(ob->num[i].r) ? json_real(ob->num[i].r) : json_string("NaN");
            break;
        case AD_CELL_STR:
        case AD_CELL_JSON:
            c = json_string(ad_object_text(ob, i));
            break;
        default:
            c = json_null();
        }
        json_array_append_new(cells, c);
    }
    json_object_set_new(o, "shape", shape);
    json_object_set_new(o, "cells", cells);
    return o;
}

static json_t *elem_json(const ad_elem *e)
{
    json_t *o;
    switch (e->kind) {
    case AD_K_ARRAY:
        return array_json(&e->u.arr);
    case AD_K_SPARSE: {
        o = json_object();
        json_object_set_new(o, "encoding-type",
                            json_string(e->u.sp.csc ? "csc_matrix" : "csr_matrix"));
        json_object_set_new(
            o, "shape",
            json_pack("[II]", (json_int_t)e->u.sp.shape[0], (json_int_t)e->u.sp.shape[1]));
        json_object_set_new(o, "data", array_json(&e->u.sp.data));
        json_object_set_new(o, "indices", array_json(&e->u.sp.indices));
        json_object_set_new(o, "indptr", array_json(&e->u.sp.indptr));
        return o;
    }
    case AD_K_FRAME:
        return frame_json(&e->u.df);
    case AD_K_CATEGORICAL:
        o = json_object();
        json_object_set_new(o, "encoding-type", json_string("categorical"));
        json_object_set_new(o, "codes", array_json(&e->u.cat.codes));
        json_object_set_new(o, "categories", array_json(&e->u.cat.categories));
        json_object_set_new(o, "ordered", json_boolean(e->u.cat.ordered));
        return o;
    case AD_K_NULLABLE_INT:
    case AD_K_NULLABLE_BOOL:
        o = json_object();
        json_object_set_new(o, "encoding-type", json_string(ad_elem_encoding(e)));
        json_object_set_new(o, "values", array_json(&e->u.nl.values));
        json_object_set_new(o, "mask", array_json(&e->u.nl.mask));
        return o;
    case AD_K_DICT:
        o = json_object();
        json_object_set_new(o, "encoding-type", json_string("dict"));
        json_object_set_new(o, "items", dict_json(&e->u.dict));
        return o;
    case AD_K_OBJECT:
        return object_json(&e->u.obj);
    default:
        o = json_object();
        json_object_set_new(o, "encoding-type", json_string("null"));
        return o;
    }
}

static json_t *anndata_json(const ad_anndata *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "n_obs", json_integer((json_int_t)a->n_obs));
    json_object_set_new(o, "n_vars", json_integer((json_int_t)a->n_vars));
    json_object_set_new(o, "X", a->X ? elem_json(a->X) : json_null());
    json_object_set_new(o, "obs", frame_json(&a->obs));
    json_object_set_new(o, "var", frame_json(&a->var));
    json_object_set_new(o, "obsm", dict_json(&a->obsm));
    json_object_set_new(o, "varm", dict_json(&a->varm));
    json_object_set_new(o, "layers", dict_json(&a->layers));
    json_object_set_new(o, "obsp", dict_json(&a->obsp));
    json_object_set_new(o, "varp", dict_json(&a->varp));
    json_object_set_new(o, "uns", dict_json(&a->uns));
    if (a->raw) {
        json_t *r = json_object();
        json_object_set_new(r, "X", a->raw->X ? elem_json(a->raw->X) : json_null());
        json_object_set_new(r, "var", frame_json(&a->raw->var));
        json_object_set_new(r, "varm", dict_json(&a->raw->varm));
        json_object_set_new(o, "raw", r);
    } else {
        json_object_set_new(o, "raw", json_null());
    }
    return o;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s h5ad|polis <path> [<rewrite.h5ad>]\n", argv[0]);
        return 2;
    }
    adx_limits lim;
    adx_limits_default(&lim);
    adx_err err;
    adx_err_init(&err);
    adx_report rep = {0};
    ad_anndata *a = strcmp(argv[1], "polis") == 0 ? polis_read_dir(argv[2], &lim, &rep, &err)
                                                  : h5r_read(argv[2], &lim, NULL, &rep, &err);
    json_t *out = json_object();
    int status = 0;
    if (a && argc > 3) {
        h5w_opts wo;
        h5w_opts_default(&wo);
        bool polis = strcmp(argv[1], "polis") == 0;
        if ((polis && san_anndata(a, &lim, &rep, &err) < 0) ||
            h5w_write(a, argv[3], &wo, NULL, &rep, &err) < 0) {
            ad_anndata_free(a);
            a = NULL;
        }
    }
    if (a) {
        json_object_set_new(out, "ok", json_true());
        json_object_set_new(out, "adata", anndata_json(a));
    } else {
        json_t *e = json_object();
        json_object_set_new(e, "type", json_string(adx_errtype_slug(err.type)));
        json_object_set_new(e, "detail", json_string(err.detail));
        json_object_set_new(e, "pointer", json_string(err.n_items ? err.items[0].pointer : ""));
        json_object_set_new(out, "ok", json_false());
        json_object_set_new(out, "error", e);
        status = 1;
    }
    json_object_set_new(out, "report", rep_to_json(&rep));
    json_dumpf(out, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    json_decref(out);
    rep_free(&rep);
    ad_anndata_free(a);
    return status;
}
