/* ad_anndata_check: one consistent model passes, and each disagreement is
 * found at its own pointer with both numbers in the message. The namespace
 * table names what the check walks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_err.h"
#include "adx_model.h"

static ad_elem *dense(int ndim, uint64_t r, uint64_t c)
{
    ad_array a;
    uint64_t sh[2] = {r, c};
    ck_assert_int_eq(ad_array_init(&a, AD_F32, ndim, sh), 0);
    ad_elem *e = ad_elem_from_array(&a);
    ck_assert_ptr_nonnull(e);
    return e;
}

static ad_elem *sparse(uint64_t r, uint64_t c)
{
    ad_elem *e = ad_elem_new(AD_K_SPARSE);
    ck_assert_ptr_nonnull(e);
    e->u.sp.shape[0] = r;
    e->u.sp.shape[1] = c;
    return e;
}

static ad_elem *column(uint64_t n)
{
    return dense(1, n, 0);
}

/* 6 obs x 4 vars with something in every namespace and a raw of 5 vars. */
static ad_anndata *model(void)
{
    ad_anndata *a = ad_anndata_new();
    ck_assert_ptr_nonnull(a);
    a->n_obs = 6;
    a->n_vars = 4;
    a->X = sparse(6, 4);
    ck_assert_int_eq(ad_frame_default_index(&a->obs, 6), 0);
    ck_assert_int_eq(ad_frame_default_index(&a->var, 4), 0);
    ck_assert_int_eq(ad_frame_add(&a->obs, "n", column(6)), 0);
    ck_assert_int_eq(ad_dict_put(&a->obsm, "X_pca", dense(2, 6, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->varm, "loadings", dense(2, 4, 3)), 0);
    ck_assert_int_eq(ad_dict_put(&a->layers, "counts", dense(2, 6, 4)), 0);
    ck_assert_int_eq(ad_dict_put(&a->obsp, "distances", sparse(6, 6)), 0);
    ck_assert_int_eq(ad_dict_put(&a->varp, "corr", dense(2, 4, 4)), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "anything", dense(1, 17, 0)), 0);
    ad_elem *df = ad_elem_new(AD_K_FRAME);
    ck_assert_int_eq(ad_frame_default_index(&df->u.df, 6), 0);
    ck_assert_int_eq(ad_dict_put(&a->obsm, "frame", df), 0);
    a->raw = calloc(1, sizeof *a->raw);
    a->raw->X = dense(2, 6, 5);
    ck_assert_int_eq(ad_frame_default_index(&a->raw->var, 5), 0);
    ck_assert_int_eq(ad_dict_put(&a->raw->varm, "m", dense(2, 5, 1)), 0);
    return a;
}

static void expect(ad_anndata *a, const char *ptr, const char *words)
{
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(ad_anndata_check(a, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_SHAPE);
    ck_assert_str_eq(err.items[0].pointer, ptr);
    if (!strstr(err.detail, words)) ck_abort_msg("detail \"%s\" lacks \"%s\"", err.detail, words);
    ad_anndata_free(a);
}

START_TEST(consistent_model_passes)
{
    ad_anndata *a = model();
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(ad_anndata_check(a, NULL, &err), 0);
    ck_assert(!adx_err_failed(&err));
    ad_anndata_free(a);
    /* An empty model is consistent too. */
    a = ad_anndata_new();
    ck_assert_int_eq(ad_anndata_check(a, NULL, &err), 0);
    ad_anndata_free(a);
}
END_TEST

START_TEST(x_against_n_obs_n_vars)
{
    ad_anndata *a = model();
    a->X->u.sp.shape[1] = 5;
    expect(a, "/X", "X is 6 x 5, expected n_obs x n_vars = 6 x 4");
    a = model();
    ad_elem_free(a->X);
    a->X = dense(1, 6, 0);
    expect(a, "/X", "X has 1 dimensions");
}
END_TEST

START_TEST(frames_against_axes)
{
    ad_anndata *a = model();
    a->n_obs = 7;
    a->X->u.sp.shape[0] = 7;
    expect(a, "/obs", "obs has 6 rows, expected n_obs = 7");
    a = model();
    ad_frame_free(&a->var);
    ck_assert_int_eq(ad_frame_default_index(&a->var, 3), 0);
    expect(a, "/var", "var has 3 rows, expected n_vars = 4");
    a = model();
    ck_assert_int_eq(ad_frame_add(&a->obs, "a/b", column(5)), 0);
    expect(a, "/obs/a~1b", "column has 5 rows, expected 6");
    a = model();
    a->obs.index.n = 2;
    expect(a, "/obs", "the index has 2 entries, expected 6");
}
END_TEST

START_TEST(aligned_mappings)
{
    ad_anndata *a = model();
    ck_assert_int_eq(ad_dict_put(&a->obsm, "X_umap", dense(2, 5, 2)), 0);
    expect(a, "/obsm/X_umap", "has 5 rows, expected 6 rows (n_obs)");
    a = model();
    ck_assert_int_eq(ad_dict_put(&a->varm, "v", sparse(6, 1)), 0);
    expect(a, "/varm/v", "has 6 rows, expected 4 rows (n_vars)");
    a = model();
    ck_assert_int_eq(ad_dict_put(&a->obsm, "s", dense(0, 0, 0)), 0);
    expect(a, "/obsm/s", "has no rows");
    a = model();
    ck_assert_int_eq(ad_dict_put(&a->obsm, "frame", ad_elem_new(AD_K_FRAME)), 0);
    expect(a, "/obsm/frame", "has 0 rows, expected 6 rows (n_obs)");
    a = model();
    ck_assert_int_eq(ad_frame_add(&ad_dict_get(&a->obsm, "frame")->u.df, "c", column(2)), 0);
    expect(a, "/obsm/frame/c", "column has 2 rows, expected 6");
}
END_TEST

START_TEST(pairwise_and_layers)
{
    ad_anndata *a = model();
    ck_assert_int_eq(ad_dict_put(&a->layers, "dense", dense(2, 6, 3)), 0);
    expect(a, "/layers/dense", "shape is 6 x 3, expected 6 x 4 (n_obs x n_vars)");
    a = model();
    ck_assert_int_eq(ad_dict_put(&a->obsp, "c", sparse(6, 4)), 0);
    expect(a, "/obsp/c", "shape is 6 x 4, expected 6 x 6 (n_obs x n_obs)");
    a = model();
    ck_assert_int_eq(ad_dict_put(&a->varp, "c", dense(2, 6, 4)), 0);
    expect(a, "/varp/c", "shape is 6 x 4, expected 4 x 4 (n_vars x n_vars)");
    a = model();
    ck_assert_int_eq(ad_dict_put(&a->layers, "flat", dense(1, 6, 0)), 0);
    expect(a, "/layers/flat", "has 1 dimensions, expected a 2-d matrix of 6 x 4");
}
END_TEST

START_TEST(raw_alignment)
{
    ad_anndata *a = model();
    a->raw->X->u.arr.shape[0] = 3;
    expect(a, "/raw/X", "raw.X has 3 rows, expected n_obs = 6");
    a = model();
    a->raw->X->u.arr.shape[1] = 7;
    expect(a, "/raw/var", "raw.var has 5 rows, expected 7 (raw.X columns)");
    a = model();
    ck_assert_int_eq(ad_dict_put(&a->raw->varm, "w", dense(2, 4, 1)), 0);
    expect(a, "/raw/varm/w", "has 4 rows, expected 5 rows (raw.var rows)");
}
END_TEST

START_TEST(base_prefixes_the_pointer)
{
    ad_anndata *a = model();
    ck_assert_int_eq(ad_dict_put(&a->obsm, "bad", dense(2, 1, 1)), 0);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(ad_anndata_check(a, "/adata", &err), -1);
    ck_assert_str_eq(err.items[0].pointer, "/adata/obsm/bad");
    ad_anndata_free(a);
}
END_TEST

START_TEST(namespace_table)
{
    static const char *const want[] = {"obs",    "var",  "obsm", "varm",
                                       "layers", "obsp", "varp", "uns"};
    for (int k = 0; k < AD_NS__COUNT; k++) {
        ck_assert_str_eq(ad_ns_table[k].name, want[k]);
        ck_assert_int_eq(ad_ns_find(want[k], strlen(want[k])), k);
    }
    ck_assert_int_eq(ad_ns_find("obsmX", 4), AD_NS_OBSM);
    ck_assert_int_eq(ad_ns_find("obs", 2), -1);
    ck_assert_int_eq(ad_ns_find("X", 1), -1);
    ck_assert_int_eq(ad_ns_find("raw", 3), -1);
    ad_anndata a = {0};
    ck_assert_ptr_eq(ad_ns_frame(&a, AD_NS_VAR), &a.var);
    ck_assert_ptr_null(ad_ns_dict(&a, AD_NS_VAR));
    ck_assert_ptr_eq(ad_ns_dict(&a, AD_NS_VARP), &a.varp);
    ck_assert_ptr_null(ad_ns_frame(&a, AD_NS_UNS));
    ck_assert(ad_ns_table[AD_NS_OBS].frame && !ad_ns_table[AD_NS_OBSM].frame);
    ck_assert_int_eq(ad_ns_table[AD_NS_LAYERS].cols, AD_AXIS_VAR);
    ck_assert_int_eq(ad_ns_table[AD_NS_UNS].rows, AD_AXIS_NONE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("check");
    TCase *t = tcase_create("shapes");
    tcase_add_test(t, consistent_model_passes);
    tcase_add_test(t, x_against_n_obs_n_vars);
    tcase_add_test(t, frames_against_axes);
    tcase_add_test(t, aligned_mappings);
    tcase_add_test(t, pairwise_and_layers);
    tcase_add_test(t, raw_alignment);
    tcase_add_test(t, base_prefixes_the_pointer);
    tcase_add_test(t, namespace_table);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
