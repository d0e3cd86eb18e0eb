/* Decodes a request (jdec), runs san_anndata and san_strings_to_categoricals
 * as the h5ad pipeline does, and prints the report and every obs / var /
 * uns DataFrame column as JSON on stdout, for san_vs_anndata.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "adx_jdec.h"
#include "adx_sanitize.h"

static json_t *array_json(const ad_array *a)
{
    json_t *v = json_array();
    for (uint64_t i = 0; i < a->n; i++) {
        if (a->dtype == AD_STR) {
            json_array_append_new(v, json_stringn(ad_str_at(a, i), ad_str_len(a, i)));
        } else if (ad_dtype_is_float(a->dtype)) {
            double d = ad_array_get_f64(a, i);
            json_array_append_new(v, isfinite(d) ? json_real(d) : json_null());
        } else {
            json_array_append_new(v, json_integer(ad_array_get_i64(a, i)));
        }
    }
    return json_pack("{s:s, s:o}", "dtype", ad_dtype_name(a->dtype), "values", v);
}

static json_t *frame_json(const ad_frame *f)
{
    json_t *cols = json_object();
    for (size_t i = 0; i < f->ncols; i++) {
        const ad_elem *c = f->cols[i];
        json_t *o = NULL;
        if (c->kind == AD_K_ARRAY) {
            o = array_json(&c->u.arr);
        } else if (c->kind == AD_K_CATEGORICAL) {
            o = json_pack("{s:o, s:o, s:b}", "codes", array_json(&c->u.cat.codes), "categories",
                          array_json(&c->u.cat.categories), "ordered", c->u.cat.ordered);
        } else {
            o = json_object();
        }
        json_object_set_new(o, "kind", json_string(ad_elem_encoding(c)));
        json_object_set_new(cols, f->names[i], o);
    }
    return cols;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: san_dump request.json\n");
        return 2;
    }
    adx_limits lim;
    adx_limits_default(&lim);
    adx_err err;
    adx_err_init(&err);
    adx_report rep = {0};
    jdec_opts o = {.limits = &lim, .base_ptr = "/adata"};
    jdec_doc *doc = jdec_read_file(argv[1], &(jdec_opts){.limits = &lim}, &err);
    ad_anndata *a = doc ? jdec_doc_anndata(doc, "adata", &o, &rep, &err) : NULL;
    jdec_doc_free(doc);
    if (!a || san_anndata(a, &lim, &rep, &err) < 0 || san_strings_to_categoricals(a, &err) < 0) {
        fprintf(stderr, "failed: %s at %s\n", err.detail, err.n_items ? err.items[0].pointer : "");
        ad_anndata_free(a);
        rep_free(&rep);
        return 1;
    }
    json_t *frames =
        json_pack("{s:o, s:o}", "obs", frame_json(&a->obs), "var", frame_json(&a->var));
    for (size_t i = 0; i < a->uns.n; i++)
        if (a->uns.vals[i]->kind == AD_K_FRAME) {
            char key[256];
            snprintf(key, sizeof key, "uns/%s", a->uns.keys[i]);
            json_object_set_new(frames, key, frame_json(&a->uns.vals[i]->u.df));
        }
    json_t *uns_keys = json_array();
    for (size_t i = 0; i < a->uns.n; i++)
        json_array_append_new(uns_keys, json_string(a->uns.keys[i]));
    json_t *out = json_pack("{s:o, s:o, s:o}", "report", rep_to_json(&rep), "frames", frames,
                            "uns_keys", uns_keys);
    json_dumpf(out, stdout, JSON_COMPACT);
    json_decref(out);
    ad_anndata_free(a);
    rep_free(&rep);
    return 0;
}
