/* The pipeline's other inputs: a request naming a stored dataset (through
 * pipe_env) and a file given directly (pipe_load_input) with its options
 * document. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adx_datasets.h"
#include "adx_h5r.h"
#include "adx_h5w.h"
#include "adx_jdec.h"
#include "adx_pipeline.h"
#include "../unit_tmp.h"

static char dir[256];
static adx_limits lim;
static adx_err err;

static void setup(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/adx-inputs-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    adx_limits_default(&lim);
    adx_err_init(&err);
}

static void teardown(void)
{
    rm_tree(dir);
}

static const char model_json[] =
    "{\"X\": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],"
    " \"obs\": {\"index\": [\"a\", \"b\", \"c\"],"
    "           \"columns\": {\"kmeans_k\": [2, 0, 2], \"other\": [1, 2, 3]}},"
    " \"var\": {\"index\": [\"x\", \"y\"]},"
    " \"obsm\": {\"X_pca\": [[1], [2], [3]], \"X_umap\": [[1], [2], [3]]},"
    " \"uns\": {\"keep\": 1, \"drop\": 2}}";

/* An h5ad of model_json at dir/name; "kmeans_k" stays a plain int column
 * because no categorical_columns apply when the file is made. */
static void write_h5ad(const char *path)
{
    static const char *const none[] = {""};
    jdec_opts o = {.limits = &lim, .cat_globs = none, .n_cat_globs = 1};
    adx_err e;
    adx_err_init(&e);
    jdec_doc *doc = jdec_read_buffer(model_json, strlen(model_json), &o, &e);
    ck_assert_msg(doc != NULL, "%s", e.detail);
    ad_anndata *a = jdec_doc_anndata(doc, NULL, &o, NULL, &e);
    jdec_doc_free(doc);
    ck_assert_msg(a != NULL, "%s", e.detail);
    h5w_opts wo;
    h5w_opts_default(&wo);
    adx_report rep = {0};
    ck_assert_msg(h5w_write(a, path, &wo, NULL, &rep, &e) == 0, "%s", e.detail);
    rep_free(&rep);
    ad_anndata_free(a);
}

static pipe_job *load_req(const char *text, const pipe_env *env)
{
    adx_err_init(&err);
    return pipe_load_buffer_env(text, strlen(text), &lim, env, &err);
}

START_TEST(dataset_needs_a_store)
{
    ck_assert_ptr_null(load_req("{\"dataset\": \"x\"}", NULL));
    ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);
    ck_assert_str_eq(err.items[0].pointer, "/dataset");
    pipe_env env = {0};
    ck_assert_ptr_null(load_req("{\"dataset\": \"x\"}", &env));
    ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);
    /* Names are checked before anything else, with or without a store. */
    ck_assert_ptr_null(load_req("{\"dataset\": \"../x\"}", NULL));
    ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);
    ck_assert_ptr_null(load_req("{\"dataset\": \"a/b\"}", NULL));
    ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);
    ck_assert_str_eq(err.items[0].pointer, "/dataset");
}
END_TEST

START_TEST(dataset_from_store)
{
    char data[512], up[512], out[512];
    snprintf(data, sizeof data, "%s/data", dir);
    ds_store *s = ds_open(data, &lim, NULL, &err);
    ck_assert_ptr_nonnull(s);
    snprintf(up, sizeof up, "%s/up.h5ad", dir);
    write_h5ad(up);
    ck_assert_msg(ds_put(s, "cells", up, DS_INPUT_H5AD, NULL, NULL, NULL, &err) == 0, "%s",
                  err.detail);
    pipe_env env = {.store = s};

    ck_assert_ptr_null(load_req("{\"dataset\": \"nope\"}", &env));
    ck_assert_int_eq(err.type, ADX_E_NOT_FOUND);
    ck_assert_int_eq(err.status, 404);
    ck_assert_str_eq(err.items[0].pointer, "/dataset");
    ck_assert_ptr_nonnull(strstr(err.detail, "no dataset named"));

    pipe_job *j = load_req("{\"dataset\": \"cells\", \"include\": [\"obsm/X_pca\"], "
                           "\"format\": \"npz\"}",
                           &env);
    ck_assert_msg(j != NULL, "%s", err.detail);
    ck_assert(!ds_pinned(s, "cells"));
    ck_assert_int_eq(pipe_prepare(j, &err), 0);
    snprintf(out, sizeof out, "%s/out.npz", dir);
    ck_assert_int_eq(pipe_write(j, out, NULL, &err), 0);
    json_t *r = pipe_result_json(j, "job1");
    json_t *sum = json_object_get(r, "summary");
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "n_obs")), 3);
    ck_assert_uint_eq(json_array_size(json_object_get(sum, "obsm")), 1);
    ck_assert_uint_eq(json_array_size(json_object_get(sum, "uns")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(r, "filename")), "job1.npz");
    json_decref(r);
    pipe_free(j);

    /* categorical_columns acts on the stored columns too. */
    j = load_req("{\"dataset\": \"cells\", \"categorical_columns\": [\"oth*\"]}", &env);
    ck_assert_msg(j != NULL, "%s", err.detail);
    ck_assert_int_eq(pipe_prepare(j, &err), 0);
    snprintf(out, sizeof out, "%s/cat.h5ad", dir);
    ck_assert_int_eq(pipe_write(j, out, NULL, &err), 0);
    pipe_free(j);
    adx_report rep = {0};
    ad_anndata *a = h5r_read(out, &lim, NULL, &rep, &err);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_str_eq(a->obs.names[0], "kmeans_k");
    ck_assert_int_eq(a->obs.cols[0]->kind, AD_K_ARRAY);
    ck_assert_str_eq(a->obs.names[1], "other");
    ck_assert_int_eq(a->obs.cols[1]->kind, AD_K_CATEGORICAL);
    ck_assert_uint_eq(a->obs.cols[1]->u.cat.categories.n, 3);
    ad_anndata_free(a);
    rep_free(&rep);
    ds_close(s);
}
END_TEST

START_TEST(options_take_no_input)
{
    char h5[512];
    snprintf(h5, sizeof h5, "%s/in.h5ad", dir);
    write_h5ad(h5);
    static const char *const docs[] = {"{\"adata\": {}}", "{\"dataset\": \"x\"}",
                                       "{\"adata\": null}"};
    static const char *const ptrs[] = {"/adata", "/dataset", "/adata"};
    for (int i = 0; i < 3; i++) {
        json_t *o = json_loads(docs[i], 0, NULL);
        adx_err_init(&err);
        ck_assert_ptr_null(pipe_load_input(h5, PIPE_IN_H5AD, o, &lim, NULL, &err));
        ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);
        ck_assert_str_eq(err.items[0].pointer, ptrs[i]);
        json_decref(o);
    }
    /* Other option errors keep their request pointers. */
    json_t *o = json_loads("{\"format\": \"xls\"}", 0, NULL);
    adx_err_init(&err);
    ck_assert_ptr_null(pipe_load_input(h5, PIPE_IN_H5AD, o, &lim, NULL, &err));
    ck_assert_str_eq(err.items[0].pointer, "/format");
    json_decref(o);
    o = json_loads("{\"include\": [\"nonsense\"]}", 0, NULL);
    adx_err_init(&err);
    ck_assert_ptr_null(pipe_load_input(h5, PIPE_IN_H5AD, o, &lim, NULL, &err));
    ck_assert_int_eq(err.type, ADX_E_BAD_INCLUDE);
    json_decref(o);
}
END_TEST

START_TEST(h5ad_input)
{
    char h5[512], out[512];
    snprintf(h5, sizeof h5, "%s/in.h5ad", dir);
    write_h5ad(h5);
    json_t *o = json_loads("{\"include\": [\"obsm/X_umap\", \"uns/keep\", \"obs/kmeans_*\"], "
                           "\"filename\": \"f.h5ad\"}",
                           0, NULL);
    pipe_job *j = pipe_load_input(h5, PIPE_IN_H5AD, o, &lim, NULL, &err);
    json_decref(o);
    ck_assert_msg(j != NULL, "%s", err.detail);
    ck_assert_int_eq(pipe_prepare(j, &err), 0);
    snprintf(out, sizeof out, "%s/out.h5ad", dir);
    ck_assert_msg(pipe_write(j, out, NULL, &err) == 0, "%s", err.detail);
    json_t *r = pipe_result_json(j, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(r, "filename")), "f.h5ad");
    ck_assert_str_eq(json_string_value(json_object_get(r, "format")), "h5ad");
    json_t *sum = json_object_get(r, "summary");
    ck_assert_uint_eq(json_array_size(json_object_get(sum, "obsm")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(sum, "obsm"), 0)), "X_umap");
    ck_assert_uint_eq(json_array_size(json_object_get(sum, "obs")), 1);
    json_decref(r);
    pipe_free(j);

    /* The default categorical_columns turns kmeans_k into a categorical,
     * as it would for JSON; an empty list leaves it plain. */
    for (int k = 0; k < 2; k++) {
        o = k ? json_loads("{\"categorical_columns\": []}", 0, NULL) : NULL;
        adx_err_init(&err);
        j = pipe_load_input(h5, PIPE_IN_H5AD, o, &lim, NULL, &err);
        json_decref(o);
        ck_assert_msg(j != NULL, "%s", err.detail);
        ck_assert_int_eq(pipe_prepare(j, &err), 0);
        snprintf(out, sizeof out, "%s/cat%d.h5ad", dir, k);
        ck_assert_int_eq(pipe_write(j, out, NULL, &err), 0);
        pipe_free(j);
        adx_report rep = {0};
        ad_anndata *a = NULL;
        {
            /* Read back through the store's reader path. */
            ds_store *s = ds_open(dir, &lim, NULL, &err);
            char nm[16];
            snprintf(nm, sizeof nm, "cat%d", k);
            a = ds_load(s, nm, NULL, &rep, &err);
            ds_close(s);
        }
        ck_assert_msg(a != NULL, "%s", err.detail);
        ad_elem *col = a->obs.cols[0];
        ck_assert_str_eq(a->obs.names[0], "kmeans_k");
        if (k == 0) {
            ck_assert_int_eq(col->kind, AD_K_CATEGORICAL);
            ck_assert_uint_eq(col->u.cat.categories.n, 2);
            ck_assert_int_eq(ad_array_get_i64(&col->u.cat.categories, 0), 0);
            ck_assert_int_eq(ad_array_get_i64(&col->u.cat.categories, 1), 2);
            ck_assert_int_eq(ad_array_get_i64(&col->u.cat.codes, 0), 1);
            ck_assert_int_eq(ad_array_get_i64(&col->u.cat.codes, 1), 0);
            ck_assert_int_eq(a->obs.cols[1]->kind, AD_K_ARRAY);
        } else {
            ck_assert_int_eq(col->kind, AD_K_ARRAY);
        }
        ad_anndata_free(a);
        rep_free(&rep);
    }
}
END_TEST

START_TEST(input_errors_name_no_path)
{
    char p[512];
    snprintf(p, sizeof p, "%s/missing.h5ad", dir);
    ck_assert_ptr_null(pipe_load_input(p, PIPE_IN_H5AD, NULL, &lim, NULL, &err));
    ck_assert_int_eq(err.type, ADX_E_NOT_FOUND);
    ck_assert_ptr_null(strstr(err.detail, dir));
    snprintf(p, sizeof p, "%s/junk.h5ad", dir);
    FILE *f = fopen(p, "w");
    fputs("junk", f);
    fclose(f);
    adx_err_init(&err);
    ck_assert_ptr_null(pipe_load_input(p, PIPE_IN_H5AD, NULL, &lim, NULL, &err));
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    /* A path longer than the message buffer is cut there; its start must
     * go all the same. */
    char longp[1024];
    int n = snprintf(longp, sizeof longp, "%s", dir);
    for (int k = 0; k < 6; k++)
        n += snprintf(longp + n, sizeof longp - (size_t)n, "/%0100d", k);
    snprintf(longp + n, sizeof longp - (size_t)n, "/x.h5ad");
    adx_err_init(&err);
    ck_assert_ptr_null(pipe_load_input(longp, PIPE_IN_H5AD, NULL, &lim, NULL, &err));
    ck_assert_ptr_null(strstr(err.detail, dir));
    ck_assert_ptr_null(strstr(err.items[0].message, dir));
    adx_err_init(&err);
    ck_assert_ptr_null(pipe_load_input(dir, PIPE_IN_POLIS, NULL, &lim, NULL, &err));
    ck_assert_int_eq(err.type, ADX_E_NOT_FOUND);
    ck_assert_ptr_null(strstr(err.detail, dir));
}
END_TEST

START_TEST(polis_input)
{
    const char *src = getenv("ADX_SRC");
    ck_assert_ptr_nonnull(src);
    char p[1024], out[512];
    snprintf(p, sizeof p, "%s/data/polis-example", src);
    pipe_job *j = pipe_load_input(p, PIPE_IN_POLIS, NULL, &lim, NULL, &err);
    ck_assert_msg(j != NULL, "%s", err.detail);
    ck_assert_int_eq(pipe_prepare(j, &err), 0);
    snprintf(out, sizeof out, "%s/p.h5ad", dir);
    ck_assert_int_eq(pipe_write(j, out, NULL, &err), 0);
    json_t *r = pipe_result_json(j, "polis");
    json_t *sum = json_object_get(r, "summary");
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "n_obs")), 138);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "n_vars")), 46);
    ck_assert_str_eq(json_string_value(json_object_get(r, "filename")), "polis.h5ad");
    json_decref(r);
    pipe_free(j);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("pipeline inputs");
    TCase *tc = tcase_create("inputs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, dataset_needs_a_store);
    tcase_add_test(tc, dataset_from_store);
    tcase_add_test(tc, options_take_no_input);
    tcase_add_test(tc, h5ad_input);
    tcase_add_test(tc, input_errors_name_no_path);
    tcase_add_test(tc, polis_input);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
