/* Unit tests for h5r_read: files are made with the HDF5 C API in a temp
 * directory, so each test states exactly the layout it feeds the reader.
 * Every test also checks that no HDF5 object is left open afterwards. */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adx_h5r.h"

static char dir[256];
static char path[512];
static char bad[512]; /* a truncated copy of path, for failing reads */
static adx_limits lim;
static adx_err err;
static adx_report rep;

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/h5r_unit_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.h5ad", dir);
    snprintf(bad, sizeof bad, "%s/bad.h5ad", dir);
    adx_limits_default(&lim);
    adx_err_init(&err);
    memset(&rep, 0, sizeof rep);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void teardown(void)
{
    unlink(path);
    unlink(bad);
    rmdir(dir);
    rep_free(&rep);
}

static hid_t new_file(void)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    return f;
}

static void put_f64(hid_t loc, const char *name, int nd, const hsize_t *dims, const double *v)
{
    hid_t sp = nd ? H5Screate_simple(nd, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Sclose(sp);
}

static void put_fixed_str(hid_t loc, const char *name, size_t w, H5T_str_t pad, hsize_t n,
                          const char *bytes)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, w);
    H5Tset_strpad(t, pad);
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes), 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
}

static void put_vlen_str(hid_t loc, const char *name, hsize_t n, const char **v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
}

/* A dense 2 x 3 X and nothing else: the oldest possible layout. */
static void write_minimal(void)
{
    hid_t f = new_file();
    double x[6] = {1, 2, 3, 4, 5, NAN};
    put_f64(f, "X", 2, (hsize_t[]){2, 3}, x);
    H5Fclose(f);
}

static void assert_no_open_objects(void)
{
    ck_assert_int_eq(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

START_TEST(directory_is_not_a_file)
{
    ck_assert_ptr_null(h5r_read(dir, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_ptr_nonnull(strstr(err.detail, "regular file"));
}
END_TEST

START_TEST(missing_file)
{
    snprintf(path, sizeof path, "%s/nope.h5ad", dir);
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_NOT_FOUND);
}
END_TEST

START_TEST(not_hdf5)
{
    FILE *fp = fopen(path, "wb");
    fputs("{\"X\": [[1]]}", fp);
    fclose(fp);
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_ptr_nonnull(strstr(err.detail, "HDF5"));
}
END_TEST

START_TEST(minimal_defaults)
{
    write_minimal();
    ad_anndata *a = h5r_read(path, &lim, NULL, &rep, &err);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(a->n_obs, 2);
    ck_assert_uint_eq(a->n_vars, 3);
    ck_assert_int_eq(a->X->kind, AD_K_ARRAY);
    ck_assert_int_eq(a->X->u.arr.dtype, AD_F64);
    ck_assert(isnan(((double *)a->X->u.arr.data)[5]));
    ck_assert_uint_eq(a->obs.index.n, 2);
    ck_assert_str_eq(ad_str_at(&a->obs.index, 1), "1");
    ck_assert_str_eq(ad_str_at(&a->var.index, 2), "2");
    ck_assert_ptr_null(a->raw);
    ad_anndata_free(a);
    assert_no_open_objects();
}
END_TEST

START_TEST(limits_checked_before_reading)
{
    write_minimal();
    lim.max_elements = 5;
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_str_eq(err.items[0].pointer, "/X");
    adx_err_init(&err);
    adx_limits_default(&lim);
    lim.max_dim = 2;
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.detail, "max_dim"));
    adx_err_init(&err);
    adx_limits_default(&lim);
    lim.max_total_bytes = 40; /* X needs 48 */
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    adx_err_init(&err);
    adx_limits_default(&lim);
    lim.max_ndim = 1;
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    assert_no_open_objects();
}
END_TEST

static double last_progress = -1;
static void on_progress(void *ud, double f)
{
    (void)ud;
    last_progress = f;
}

START_TEST(cancel_and_progress)
{
    write_minimal();
    atomic_int cancel = 1;
    adx_ctl ctl = {.cancel = &cancel, .progress = on_progress};
    ck_assert_ptr_null(h5r_read(path, &lim, &ctl, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_CANCELED);
    atomic_store(&cancel, 0);
    adx_err_init(&err);
    ad_anndata *a = h5r_read(path, &lim, &ctl, &rep, &err);
    ck_assert_ptr_nonnull(a);
    ck_assert(last_progress == 1.0);
    ad_anndata_free(a);
    assert_no_open_objects();
}
END_TEST

START_TEST(fixed_strings_padding)
{
    hid_t f = new_file();
    hid_t obs = H5Gcreate2(f, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    /* _index attribute as a fixed-length ASCII string */
    hid_t at = H5Tcopy(H5T_C_S1);
    H5Tset_size(at, 6);
    hid_t as = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obs, "_index", at, as, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, at, "_index");
    H5Aclose(a);
    H5Sclose(as);
    H5Tclose(at);
    put_fixed_str(obs, "_index", 4, H5T_STR_NULLPAD, 2, "ab\0\0cdef");
    put_fixed_str(obs, "sp", 4, H5T_STR_SPACEPAD, 2, "x   yy  ");
    H5Gclose(obs);
    H5Fclose(f);
    ad_anndata *ad = h5r_read(path, &lim, NULL, &rep, &err);
    ck_assert_msg(ad != NULL, "%s at %s", err.detail, err.items[0].pointer);
    ck_assert_uint_eq(ad->n_obs, 2);
    ck_assert_str_eq(ad_str_at(&ad->obs.index, 0), "ab");
    ck_assert_str_eq(ad_str_at(&ad->obs.index, 1), "cdef");
    ck_assert_ptr_null(ad->obs.index_name);
    /* no column-order: members other than the index become columns */
    ck_assert_uint_eq(ad->obs.ncols, 1);
    ck_assert_str_eq(ad->obs.names[0], "sp");
    ck_assert_str_eq(ad_str_at(&ad->obs.cols[0]->u.arr, 0), "x");
    ck_assert_str_eq(ad_str_at(&ad->obs.cols[0]->u.arr, 1), "yy");
    ad_anndata_free(ad);
    assert_no_open_objects();
}
END_TEST

START_TEST(invalid_utf8_and_long_strings)
{
    hid_t f = new_file();
    hid_t uns = H5Gcreate2(f, "uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *v[2] = {"fine", "bad \xff byte"};
    put_vlen_str(uns, "s", 2, v);
    H5Gclose(uns);
    H5Fclose(f);
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_str_eq(err.items[0].pointer, "/uns/s");
    ck_assert_ptr_nonnull(strstr(err.detail, "UTF-8"));
    assert_no_open_objects();

    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "/uns/s", H5P_DEFAULT);
    const char *w[1] = {"0123456789"};
    put_vlen_str(f, "/uns/long", 1, w);
    H5Fclose(f);
    adx_err_init(&err);
    lim.max_string_bytes = 9;
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_str_eq(err.items[0].pointer, "/uns/long");
    lim.max_string_bytes = 10;
    adx_err_init(&err);
    ad_anndata *a = h5r_read(path, &lim, NULL, &rep, &err);
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(ad_str_at(&ad_dict_get(&a->uns, "long")->u.arr, 0), "0123456789");
    ad_anndata_free(a);
    assert_no_open_objects();
}
END_TEST

START_TEST(unknown_top_level_reported)
{
    hid_t f = new_file();
    double x[6] = {0};
    put_f64(f, "X", 2, (hsize_t[]){2, 3}, x);
    put_f64(f, "extra", 1, (hsize_t[]){1}, x);
    H5Fclose(f);
    ad_anndata *a = h5r_read(path, &lim, NULL, &rep, &err);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(rep.n, 1);
    ck_assert_str_eq(rep.e[0].path, "/extra");
    ad_anndata_free(a);
}
END_TEST

START_TEST(scalars_and_nd)
{
    hid_t f = new_file();
    hid_t uns = H5Gcreate2(f, "uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double one = 2.5, cube[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    put_f64(uns, "scalar", 0, NULL, &one);
    put_f64(uns, "cube", 3, (hsize_t[]){2, 2, 2}, cube);
    H5Gclose(uns);
    H5Fclose(f);
    ad_anndata *a = h5r_read(path, &lim, NULL, &rep, &err);
    ck_assert_ptr_nonnull(a);
    ad_elem *s = ad_dict_get(&a->uns, "scalar");
    ck_assert_int_eq(s->u.arr.ndim, 0);
    ck_assert(((double *)s->u.arr.data)[0] == 2.5);
    ad_elem *c = ad_dict_get(&a->uns, "cube");
    ck_assert_int_eq(c->u.arr.ndim, 3);
    ck_assert(((double *)c->u.arr.data)[7] == 7.0);
    ck_assert_uint_eq(a->n_obs, 0); /* no X, obs or var: an empty object */
    ad_anndata_free(a);
    assert_no_open_objects();
}
END_TEST

START_TEST(huge_chunk_refused)
{
    /* 4 elements of data in one 8 MiB chunk: decompressing it would allocate
     * the whole chunk, so the chunk counts against max_total_bytes. */
    hid_t f = new_file();
    hsize_t n = 4, maxn = H5S_UNLIMITED, chunk = 1 << 20;
    hid_t sp = H5Screate_simple(1, &n, &maxn);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_deflate(dcpl, 4);
    hid_t uns = H5Gcreate2(f, "uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t d = H5Dcreate2(uns, "v", H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    double v[4] = {1, 2, 3, 4};
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Gclose(uns);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
    lim.max_total_bytes = 1 << 20;
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_str_eq(err.items[0].pointer, "/uns/v");
    ck_assert_ptr_nonnull(strstr(err.detail, "chunk"));
    adx_err_init(&err);
    lim.max_total_bytes = 16 << 20;
    ad_anndata *a = h5r_read(path, &lim, NULL, &rep, &err);
    ck_assert_ptr_nonnull(a);
    ck_assert(((double *)ad_dict_get(&a->uns, "v")->u.arr.data)[3] == 4.0);
    ad_anndata_free(a);
    assert_no_open_objects();
}
END_TEST

static void *reader(void *arg)
{
    atomic_int *failures = arg;
    adx_limits l;
    adx_limits_default(&l);
    for (int i = 0; i < 25; i++) {
        adx_err e;
        adx_err_init(&e);
        ad_anndata *a = h5r_read(path, &l, NULL, NULL, &e);
        if (!a || a->n_obs != 2 || a->n_vars != 3 || ((double *)a->X->u.arr.data)[4] != 5.0)
            atomic_fetch_add(failures, 1);
        ad_anndata_free(a);
        /* a failing read in between must not disturb the others (and must
         * not leave HDF5 error-stack entries behind when the thread ends) */
        adx_err_init(&e);
        if (h5r_read(bad, &l, NULL, NULL, &e) != NULL || e.type != ADX_E_SCHEMA)
            atomic_fetch_add(failures, 1);
    }
    return NULL;
}

START_TEST(concurrent_reads)
{
    write_minimal();
    FILE *in = fopen(path, "rb"), *out = fopen(bad, "wb");
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n / 2, out);
    fclose(in);
    fclose(out);
    atomic_int failures = 0;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, reader, &failures), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&failures), 0);
    assert_no_open_objects();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h5r");
    TCase *tc = tcase_create("read");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, directory_is_not_a_file);
    tcase_add_test(tc, not_hdf5);
    tcase_add_test(tc, minimal_defaults);
    tcase_add_test(tc, limits_checked_before_reading);
    tcase_add_test(tc, cancel_and_progress);
    tcase_add_test(tc, fixed_strings_padding);
    tcase_add_test(tc, invalid_utf8_and_long_strings);
    tcase_add_test(tc, unknown_top_level_reported);
    tcase_add_test(tc, scalars_and_nd);
    tcase_add_test(tc, huge_chunk_refused);
    tcase_add_test(tc, concurrent_reads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
