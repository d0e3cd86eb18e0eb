/* Unit tests for polis_read_dir on small exports written to a temp folder. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adx_polis.h"

static char dir[256];
static adx_limits lim;
static adx_err err;
static adx_report rep;

static void put(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/polis_unit_XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    adx_limits_default(&lim);
    adx_err_init(&err);
    memset(&rep, 0, sizeof rep);
}

static void teardown(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/votes.csv", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/comments.csv", dir);
    unlink(p);
    rmdir(dir);
    rep_free(&rep);
}

static double x_at(const ad_anndata *a, uint64_t i, uint64_t j)
{
    return ((const double *)a->X->u.arr.data)[i * a->n_vars + j];
}

START_TEST(equal_timestamps_keep_file_order)
{
    /* Same voter, comment and second: the later line is the last vote. */
    put("votes.csv", "timestamp,comment-id,voter-id,vote\n"
                     "7,0,1,1\n"
                     "7,0,1,-1\n"
                     "3,1,1,0\n");
    put("comments.csv", "comment-id,comment-body\n0,a\n1,b\n");
    ad_anndata *a = polis_read_dir(dir, &lim, &rep, &err);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_uint_eq(a->n_obs, 1);
    ck_assert_uint_eq(a->n_vars, 2);
    ck_assert(x_at(a, 0, 0) == -1.0);
    ck_assert(x_at(a, 0, 1) == 0.0);
    ad_elem *votes = ad_dict_get(&a->uns, "votes");
    ck_assert_uint_eq(votes->u.df.n_rows, 2);
    /* time order: the ts=3 vote first */
    ck_assert_int_eq(((int64_t *)votes->u.df.cols[0]->u.arr.data)[0], 3);
    ad_anndata_free(a);
}
END_TEST

START_TEST(numeric_ids_sort_as_numbers)
{
    put("votes.csv", "timestamp,comment-id,voter-id,vote\n"
                     "1,10,100,1\n"
                     "2,9,20,1\n"
                     "3,10,3,-1\n");
    put("comments.csv", "comment-id,comment-body,author-id\n9,nine,3\n10,ten,\n11,never,3\n");
    ad_anndata *a = polis_read_dir(dir, &lim, &rep, &err);
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(ad_str_at(&a->obs.index, 0), "3");
    ck_assert_str_eq(ad_str_at(&a->obs.index, 2), "100");
    ck_assert_uint_eq(a->var.index.n, 2); /* comment 11 got no vote */
    ck_assert_str_eq(ad_str_at(&a->var.index, 0), "9");
    ck_assert_str_eq(a->var.index_name, "comment-id");
    ck_assert_str_eq(a->obs.index_name, "voter-id");
    ck_assert(isnan(x_at(a, 0, 0)));
    ck_assert(x_at(a, 0, 1) == -1.0);
    /* author-id has an empty cell: float64 with NaN, like pandas */
    ad_elem *auth = a->var.cols[1];
    ck_assert_str_eq(a->var.names[1], "participant_id_authored");
    ck_assert_int_eq(auth->u.arr.dtype, AD_F64);
    ck_assert(isnan(((double *)auth->u.arr.data)[1]));
    ad_anndata_free(a);
}
END_TEST

START_TEST(limits_and_missing_files)
{
    put("votes.csv", "timestamp,comment-id,voter-id,vote\n1,1,1,1\n2,2,2,1\n3,3,3,1\n");
    put("comments.csv", "comment-id\n1\n2\n3\n");
    lim.max_dim = 2;
    ck_assert_ptr_null(polis_read_dir(dir, &lim, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    adx_err_init(&err);
    adx_limits_default(&lim);
    lim.max_body_bytes = 10;
    ck_assert_ptr_null(polis_read_dir(dir, &lim, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_str_eq(err.items[0].pointer, "/votes.csv");
    adx_err_init(&err);
    ck_assert_ptr_null(polis_read_dir("/nonexistent-polis-dir", NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_NOT_FOUND);
}
END_TEST

START_TEST(pointer_names_line_and_column)
{
    put("votes.csv", "timestamp,comment-id,voter-id,vote\n"
                     "1,1,1,1\n"
                     "2,\"multi\nline\",2,1\n"
                     "3,1,2,maybe\n");
    put("comments.csv", "comment-id\n1\n");
    ck_assert_ptr_null(polis_read_dir(dir, &lim, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_str_eq(err.items[0].pointer, "/votes.csv/5/vote");
    ck_assert_ptr_nonnull(strstr(err.detail, "maybe"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("polis");
    TCase *tc = tcase_create("read_dir");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, equal_timestamps_keep_file_order);
    tcase_add_test(tc, numeric_ids_sort_as_numbers);
    tcase_add_test(tc, limits_and_missing_files);
    tcase_add_test(tc, pointer_names_line_and_column);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
