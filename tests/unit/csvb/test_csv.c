/* csv/txt bundle writer: pandas' cell text and quoting, sparse
 * densification, the cell limit report, cancel. */
#include <check.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "adx_csvb.h"
#include "csvfmt.h"

START_TEST(float32_like_numpy)
{
    struct {
        float x;
        const char *want;
    } cases[] = {
        {0.1f, "0.1"},
        {1e20f, "1e+20"},
        {16777216.0f, "16777216.0"},
        {1e-5f, "1e-05"},
        {0.0001f, "1e-04"},
        {-0.0f, "-0.0"},
        {1.5e15f, "1500000000000000.0"},
        {1e16f, "1e+16"},
        {3.4028235e38f, "3.4028235e+38"},
        {1.4e-45f, "1e-45"},
        {-2.5f, "-2.5"},
        {0.00011f, "0.00011"},
        {0.3f, "0.3"},
        {123456.79f, "123456.79"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ad_fmt_npfloat32(cases[i].x, buf);
        ck_assert_str_eq(buf, cases[i].want);
    }
    ad_fmt_npfloat32(NAN, buf);
    ck_assert_str_eq(buf, "nan");
    ad_fmt_npfloat32(-INFINITY, buf);
    ck_assert_str_eq(buf, "-inf");
}
END_TEST

static ad_array arr1(ad_dtype t, uint64_t n, const void *v)
{
    ad_array a;
    ck_assert_int_eq(ad_array_init(&a, t, 1, &n), 0);
    size_t nb;
    ad_bytes(t, n, &nb);
    memcpy(a.data, v, nb);
    return a;
}

START_TEST(numbers_like_pandas)
{
    char buf[32];
    double d[] = {NAN, INFINITY, 0.1, 1e16, 1.0, -0.0};
    ad_array a = arr1(AD_F64, 6, d);
    const char *want_d[] = {"", "inf", "0.1", "1e+16", "1.0", "-0.0"};
    for (uint64_t i = 0; i < 6; i++) {
        size_t n = csvb_fmt_num(&a, i, buf);
        ck_assert_str_eq(buf, want_d[i]);
        ck_assert_uint_eq(n, strlen(want_d[i]));
    }
    ad_array_free(&a);
    float f[] = {NAN, 0.1f};
    a = arr1(AD_F32, 2, f);
    csvb_fmt_num(&a, 0, buf);
    ck_assert_str_eq(buf, "");
    csvb_fmt_num(&a, 1, buf);
    ck_assert_str_eq(buf, "0.1");
    ad_array_free(&a);
    uint8_t b[] = {1, 0};
    a = arr1(AD_BOOL, 2, b);
    csvb_fmt_num(&a, 0, buf);
    ck_assert_str_eq(buf, "True");
    csvb_fmt_num(&a, 1, buf);
    ck_assert_str_eq(buf, "False");
    ad_array_free(&a);
    uint64_t u[] = {18446744073709551615ull};
    a = arr1(AD_U64, 1, u);
    csvb_fmt_num(&a, 0, buf);
    ck_assert_str_eq(buf, "18446744073709551615");
    ad_array_free(&a);
    int8_t i8[] = {-128};
    a = arr1(AD_I8, 1, i8);
    csvb_fmt_num(&a, 0, buf);
    ck_assert_str_eq(buf, "-128");
    ad_array_free(&a);
}
END_TEST

START_TEST(quoting_rfc4180)
{
    ck_assert(!csvb_needs_quote("plain text", 10, ','));
    ck_assert(csvb_needs_quote("a,b", 3, ','));
    ck_assert(!csvb_needs_quote("a,b", 3, '\t'));
    ck_assert(csvb_needs_quote("a\tb", 3, '\t'));
    ck_assert(csvb_needs_quote("q\"", 2, ','));
    ck_assert(csvb_needs_quote("a\nb", 3, ','));
    ck_assert(csvb_needs_quote("a\rb", 3, ','));
    csvb_buf b = {0};
    ck_assert_int_eq(csvb_put_field(&b, "say \"hi\", ok", 12, ','), 0);
    ck_assert_str_eq(b.s, "\"say \"\"hi\"\", ok\"");
    b.len = 0;
    /* one empty field is written "" so the record is not a blank line */
    const char *one[] = {""};
    size_t l1[] = {0};
    ck_assert_int_eq(csvb_put_record(&b, one, l1, 1, ','), 0);
    ck_assert_str_eq(b.s, "\"\"\n");
    b.len = 0;
    const char *two[] = {"", ""};
    size_t l2[] = {0, 0};
    ck_assert_int_eq(csvb_put_record(&b, two, l2, 2, ','), 0);
    ck_assert_str_eq(b.s, ",\n");
    b.len = 0;
    ck_assert_int_eq(csvb_put_record(&b, NULL, NULL, 0, ','), 0);
    ck_assert_str_eq(b.s, "\n");
    b.len = 0;
    const char *three[] = {"x", "a\tb", "c,d"};
    size_t l3[] = {1, 3, 3};
    ck_assert_int_eq(csvb_put_record(&b, three, l3, 3, '\t'), 0);
    ck_assert_str_eq(b.s, "x\t\"a\tb\"\tc,d\n");
    csvb_buf_free(&b);
}
END_TEST

/* ---- whole bundles ---- */

static char tmpdir[256], path[300];

static void mk_tmp(void)
{
    /* In the test's working directory (the build tree) unless TMPDIR is set. */
    snprintf(tmpdir, sizeof tmpdir, "%s/csvXXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : ".");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(path, sizeof path, "%s/b.zip", tmpdir);
}

static void rm_tmp(void)
{
    unlink(path);
    rmdir(tmpdir);
}

static int last_method; /* compression of the member read last */

/* Member text, NULL when absent. */
static char *member(const char *name)
{
    int ze;
    zip_t *z = zip_open(path, ZIP_RDONLY, &ze);
    ck_assert_ptr_nonnull(z);
    zip_stat_t st;
    if (zip_stat(z, name, 0, &st) < 0) {
        zip_close(z);
        return NULL;
    }
    last_method = st.comp_method;
    char *b = malloc(st.size + 1);
    zip_file_t *f = zip_fopen(z, name, 0);
    ck_assert_int_eq(zip_fread(f, b, st.size), (zip_int64_t)st.size);
    b[st.size] = '\0';
    zip_fclose(f);
    zip_close(z);
    return b;
}

/* 3 x 4 sparse: [[0, 1, 0, 2], [0, 0, 0, 0], [3, 0, 4, 0]] with a duplicate
 * entry (1 + 1 at (0, 1)), csr or csc. */
static ad_elem *sparse_3x4(bool csc)
{
    ad_elem *e = ad_elem_new(AD_K_SPARSE);
    ad_sparse *s = &e->u.sp;
    s->csc = csc;
    s->shape[0] = 3;
    s->shape[1] = 4;
    int64_t nnz = 5;
    double csr_d[] = {1, 1, 2, 3, 4};
    int32_t csr_i[] = {1, 1, 3, 0, 2}, csr_p[] = {0, 3, 3, 5};
    double csc_d[] = {3, 1, 1, 4, 2};
    int32_t csc_i[] = {2, 0, 0, 2, 0}, csc_p[] = {0, 1, 3, 4, 5};
    s->data = arr1(AD_F64, (uint64_t)nnz, csc ? csc_d : csr_d);
    s->indices = arr1(AD_I32, (uint64_t)nnz, csc ? csc_i : csr_i);
    s->indptr = arr1(AD_I32, csc ? 5 : 4, csc ? csc_p : csr_p);
    return e;
}

static ad_anndata *model(bool csc)
{
    ad_anndata *a = ad_anndata_new();
    a->n_obs = 3;
    a->n_vars = 4;
    a->X = sparse_3x4(csc);
    ck_assert_int_eq(ad_frame_default_index(&a->obs, 3), 0);
    ck_assert_int_eq(ad_frame_default_index(&a->var, 4), 0);
    return a;
}

START_TEST(sparse_densified)
{
    for (int csc = 0; csc < 2; csc++) {
        mk_tmp();
        ad_anndata *a = model(csc);
        adx_limits lim;
        adx_limits_default(&lim);
        adx_report rep = {0};
        adx_err err;
        adx_err_init(&err);
        ck_assert_int_eq(csvb_write(a, path, ',', &lim, NULL, &rep, &err), 0);
        ck_assert_uint_eq(rep.n, 0);
        char *x = member("X.csv");
        ck_assert_str_eq(x, "0.0,2.0,0.0,2.0\n0.0,0.0,0.0,0.0\n3.0,0.0,4.0,0.0\n");
        ck_assert_int_eq(last_method, ZIP_CM_DEFLATE);
        free(x);
        char *obs = member("obs.csv");
        ck_assert_str_eq(obs, "\"\"\n0\n1\n2\n");
        free(obs);
        char *obsm = member("obsm.csv");
        ck_assert_str_eq(obsm, "\n\n\n\n");
        free(obsm);
        rep_free(&rep);
        ad_anndata_free(a);
        rm_tmp();
    }
}
END_TEST

/* One record far longer than any read: 1 x 200000 sparse row. */
START_TEST(wide_row_streams)
{
    mk_tmp();
    ad_anndata *a = ad_anndata_new();
    enum { W = 200000 };
    a->n_obs = 1;
    a->n_vars = W;
    ad_elem *e = ad_elem_new(AD_K_SPARSE);
    e->u.sp.shape[0] = 1;
    e->u.sp.shape[1] = W;
    double d[] = {1.5, -2};
    int64_t ix[] = {0, W - 1}, ip[] = {0, 2};
    e->u.sp.data = arr1(AD_F64, 2, d);
    e->u.sp.indices = arr1(AD_I64, 2, ix);
    e->u.sp.indptr = arr1(AD_I64, 2, ip);
    a->X = e;
    ck_assert_int_eq(ad_frame_default_index(&a->obs, 1), 0);
    ck_assert_int_eq(ad_frame_default_index(&a->var, W), 0);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(csvb_write(a, path, ',', NULL, NULL, NULL, &err), 0);
    char *x = member("X.csv");
    size_t len = strlen(x);
    ck_assert_uint_eq(len, 4 + (W - 2) * 4 + 4 + 1); /* "1.5," "0.0," … "-2.0\n" */
    ck_assert(strncmp(x, "1.5,0.0,0.0,", 12) == 0);
    ck_assert_str_eq(x + len - 10, ",0.0,-2.0\n");
    free(x);
    char *var = member("var.csv");
    ck_assert(strncmp(var, "\"\"\n0\n1\n", 7) == 0);
    free(var);
    ad_anndata_free(a);
    rm_tmp();
}
END_TEST

START_TEST(cell_limit_reported)
{
    mk_tmp();
    ad_anndata *a = model(false);
    ad_elem *obsm_sp = sparse_3x4(true);
    ck_assert_int_eq(ad_dict_put(&a->obsm, "big", obsm_sp), 0);
    adx_limits lim;
    adx_limits_default(&lim);
    lim.csv_max_cells = 11; /* 3 x 4 = 12 cells: over */
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(csvb_write(a, path, '\t', &lim, NULL, &rep, &err), 0);
    ck_assert_uint_eq(rep.n, 2);
    ck_assert_str_eq(rep.e[0].path, "/obsm/big");
    ck_assert_str_eq(rep.e[1].path, "/X");
    ck_assert_str_eq(rep.e[1].action, REP_NOT_WRITTEN);
    ck_assert_ptr_nonnull(strstr(rep.e[1].detail, "csv_max_cells"));
    char *x = member("X.csv");
    ck_assert_ptr_null(x);
    char *obsm = member("obsm.csv");
    ck_assert_str_eq(obsm, "\n\n\n\n");
    free(obsm);
    rep_free(&rep);

    /* at the limit it is written */
    lim.csv_max_cells = 12;
    adx_report rep2 = {0};
    ck_assert_int_eq(csvb_write(a, path, '\t', &lim, NULL, &rep2, &err), 0);
    ck_assert_uint_eq(rep2.n, 0);
    obsm = member("obsm.csv");
    ck_assert_str_eq(obsm, "big1\tbig2\tbig3\tbig4\n0.0\t2.0\t0.0\t2.0\n0.0\t0.0\t0.0\t0.0\n"
                           "3.0\t0.0\t4.0\t0.0\n");
    free(obsm);
    rep_free(&rep2);
    ad_anndata_free(a);
    rm_tmp();
}
END_TEST

START_TEST(uns_names_escaped)
{
    mk_tmp();
    ad_anndata *a = model(false);
    const char *keys[] = {"a/b", "_x", "..", "t~"};
    for (size_t i = 0; i < 4; i++) {
        int64_t v = (int64_t)i;
        ad_array s;
        ck_assert_int_eq(ad_array_init(&s, AD_I64, 0, NULL), 0);
        memcpy(s.data, &v, 8);
        ck_assert_int_eq(ad_dict_put(&a->uns, keys[i], ad_elem_from_array(&s)), 0);
    }
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(csvb_write(a, path, ',', NULL, NULL, NULL, &err), 0);
    const char *names[] = {"uns/a~1b.csv", "uns/_x.csv", "uns/~3..csv", "uns/t~0.csv"};
    const char *want[] = {"0\n", "1\n", "2\n", "3\n"};
    for (size_t i = 0; i < 4; i++) {
        char *m = member(names[i]);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m, want[i]);
        free(m);
    }
    ad_anndata_free(a);
    rm_tmp();
}
END_TEST

START_TEST(compression_follows_request)
{
    mk_tmp();
    ad_anndata *a = model(false);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(csvb_write(a, path, ',', NULL, NULL, NULL, &err), 0);
    free(member("X.csv"));
    ck_assert_int_eq(last_method, ZIP_CM_DEFLATE);
    ck_assert_int_eq(csvb_write_ex(a, path, ',', ADX_COMP_NONE, 0, NULL, NULL, NULL, &err), 0);
    free(member("X.csv"));
    ck_assert_int_eq(last_method, ZIP_CM_STORE);
    ck_assert_int_eq(csvb_write_ex(a, path, ',', ADX_COMP_GZIP, 0, NULL, NULL, NULL, &err), 0);
    free(member("obs.csv"));
    ck_assert_int_eq(last_method, ZIP_CM_STORE);
    ck_assert_int_eq(csvb_write_ex(a, path, '\t', ADX_COMP_GZIP, 9, NULL, NULL, NULL, &err), 0);
    char *x = member("X.csv");
    ck_assert_int_eq(last_method, ZIP_CM_DEFLATE);
    ck_assert_str_eq(x, "0.0\t2.0\t0.0\t2.0\n0.0\t0.0\t0.0\t0.0\n3.0\t0.0\t4.0\t0.0\n");
    free(x);
    ck_assert_int_eq(csvb_write_ex(a, path, ',', ADX_COMP_LZF, 4, NULL, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);
    ad_anndata_free(a);
    rm_tmp();
}
END_TEST

static void cancel_on_progress(void *ud, double f)
{
    (void)f;
    atomic_store((atomic_int *)ud, 1);
}

/* Cancel raised while members are being generated stops the bundle. */
START_TEST(cancel_mid_write)
{
    mk_tmp();
    ad_anndata *a = model(false);
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "u%d", i);
        uint64_t n = 20000;
        ad_array v;
        ck_assert_int_eq(ad_array_init(&v, AD_F64, 1, &n), 0);
        ck_assert_int_eq(ad_dict_put(&a->uns, k, ad_elem_from_array(&v)), 0);
    }
    atomic_int cancel = 0;
    adx_ctl ctl = {.cancel = &cancel, .progress = cancel_on_progress, .ud = &cancel};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(csvb_write(a, path, ',', NULL, &ctl, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_CANCELED);
    ck_assert_int_eq(atomic_load(&cancel), 1);
    ck_assert_int_eq(access(path, F_OK), -1);
    ad_anndata_free(a);
    rm_tmp();
}
END_TEST

START_TEST(cancel_and_errors)
{
    mk_tmp();
    ad_anndata *a = model(false);
    atomic_int cancel = 1;
    adx_ctl ctl = {.cancel = &cancel};
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(csvb_write(a, path, ',', NULL, &ctl, &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_CANCELED);
    ck_assert_int_eq(access(path, F_OK), -1);

    adx_err_init(&err);
    ck_assert_int_eq(csvb_write(a, path, ';', NULL, NULL, &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);

    /* a broken sparse structure is refused, not read out of bounds */
    ((int32_t *)a->X->u.sp.indptr.data)[3] = 99;
    adx_err_init(&err);
    ck_assert_int_eq(csvb_write(a, path, ',', NULL, NULL, &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_INTERNAL);
    ck_assert_int_eq(access(path, F_OK), -1);
    rep_free(&rep);
    ad_anndata_free(a);
    rm_tmp();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("csv");
    TCase *tc = tcase_create("csv");
    tcase_set_timeout(tc, 60); /* sanitizer builds on a busy machine */
    tcase_add_test(tc, float32_like_numpy);
    tcase_add_test(tc, numbers_like_pandas);
    tcase_add_test(tc, quoting_rfc4180);
    tcase_add_test(tc, sparse_densified);
    tcase_add_test(tc, wide_row_streams);
    tcase_add_test(tc, cell_limit_reported);
    tcase_add_test(tc, uns_names_escaped);
    tcase_add_test(tc, compression_follows_request);
    tcase_add_test(tc, cancel_mid_write);
    tcase_add_test(tc, cancel_and_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
