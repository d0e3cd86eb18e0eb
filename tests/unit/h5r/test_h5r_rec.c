/* Unit tests for record arrays and the compound layouts in h5r_read, and
 * for h5r_read_opts' include: files made with the HDF5 C API, so each test
 * states exactly the layout it feeds the reader. */
#include <check.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adx_h5r.h"

static char dir[256];
static char path[512];
static adx_limits lim;
static adx_err err;
static adx_report rep;
static const char *helper; /* adx-h5check, from the command line */

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/h5r_rec_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.h5ad", dir);
    adx_limits_default(&lim);
    adx_err_init(&err);
    memset(&rep, 0, sizeof rep);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
    rep_free(&rep);
    ck_assert_int_eq(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

static void put_str_attr(hid_t obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Awrite(a, t, &v), 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void put_x(hid_t f, hsize_t rows)
{
    double x[8] = {0};
    hid_t sp = H5Screate_simple(2, (hsize_t[]){rows, 1}, NULL);
    hid_t d = H5Dcreate2(f, "X", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Dclose(d);
    H5Sclose(sp);
}

static hid_t bool_enum(void)
{
    hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t f = 0, tr = 1;
    H5Tenum_insert(t, "FALSE", &f);
    H5Tenum_insert(t, "TRUE", &tr);
    return t;
}

/* scanpy's rank_genes_groups["names"] as anndata writes it, plus the other
 * field kinds: {names: vlen UTF-8, code: S3, score: f32, rank: i64, hit: bool} */
struct rec {
    const char *names;
    char code[3];
    float score;
    int64_t rank;
    int8_t hit;
} __attribute__((packed));

static void put_rec(hid_t loc, const char *name, const char *enc)
{
    hid_t vs = H5Tcopy(H5T_C_S1), fs = H5Tcopy(H5T_C_S1), be = bool_enum();
    H5Tset_size(vs, H5T_VARIABLE);
    H5Tset_cset(vs, H5T_CSET_UTF8);
    H5Tset_size(fs, 3);
    H5Tset_strpad(fs, H5T_STR_NULLPAD);
    hid_t ct = H5Tcreate(H5T_COMPOUND, sizeof(struct rec));
    H5Tinsert(ct, "names", offsetof(struct rec, names), vs);
    H5Tinsert(ct, "code", offsetof(struct rec, code), fs);
    H5Tinsert(ct, "score", offsetof(struct rec, score), H5T_NATIVE_FLOAT);
    H5Tinsert(ct, "rank", offsetof(struct rec, rank), H5T_NATIVE_INT64);
    H5Tinsert(ct, "hit", offsetof(struct rec, hit), be);
    struct rec v[3] = {
        {"CD3É", "ab", 1.5f, 3, 1}, {"", "c", -2.0f, 1, 0}, {"MS4A1", "xyz", 0, 2, 1}};
    hid_t sp = H5Screate_simple(1, (hsize_t[]){3}, NULL);
    hid_t d = H5Dcreate2(loc, name, ct, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    ck_assert_int_ge(H5Dwrite(d, ct, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    if (enc) {
        put_str_attr(d, "encoding-type", enc);
        put_str_attr(d, "encoding-version", "0.2.0");
    }
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(ct);
    H5Tclose(vs);
    H5Tclose(fs);
    H5Tclose(be);
}

static void check_rec(const ad_elem *e)
{
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->kind, AD_K_RECARRAY);
    const ad_recarray *r = &e->u.rec;
    ck_assert_uint_eq(r->n, 3);
    ck_assert_uint_eq(r->nfields, 5);
    const char *names[] = {"names", "code", "score", "rank", "hit"};
    ad_dtype types[] = {AD_STR, AD_STR, AD_F32, AD_I64, AD_BOOL};
    for (int i = 0; i < 5; i++) {
        ck_assert_str_eq(r->names[i], names[i]);
        ck_assert_int_eq(r->fields[i].dtype, types[i]);
        ck_assert_uint_eq(r->fields[i].n, 3);
    }
    ck_assert_str_eq(ad_str_at(&r->fields[0], 0), "CD3É");
    ck_assert_str_eq(ad_str_at(&r->fields[0], 1), "");
    ck_assert_str_eq(ad_str_at(&r->fields[1], 2), "xyz");
    ck_assert_str_eq(ad_str_at(&r->fields[1], 1), "c");
    ck_assert_float_eq(((float *)r->fields[2].data)[1], -2.0f);
    ck_assert_int_eq(((int64_t *)r->fields[3].data)[0], 3);
    ck_assert_int_eq(((uint8_t *)r->fields[4].data)[1], 0);
    ck_assert_int_eq(((uint8_t *)r->fields[4].data)[2], 1);
}

START_TEST(rec_array_encoding)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put_x(f, 2);
    hid_t u = H5Gcreate2(f, "uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(u, "rank_genes_groups", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    put_rec(g, "names", "rec-array");
    put_rec(u, "old", NULL); /* anndata 0.7: untagged */
    H5Gclose(g);
    H5Gclose(u);
    H5Fclose(f);
    ad_anndata *a = h5r_read(path, &lim, NULL, &rep, &err);
    ck_assert_msg(a != NULL, "%s at %s", err.detail, err.items[0].pointer);
    const ad_elem *rg = ad_dict_get(&a->uns, "rank_genes_groups");
    ck_assert_ptr_nonnull(rg);
    check_rec(ad_dict_get(&rg->u.dict, "names"));
    check_rec(ad_dict_get(&a->uns, "old"));
    ad_anndata_free(a);
}
END_TEST

/* anndata ≤ 0.6: obsm as one compound dataset whose fields hold matrices. */
START_TEST(compound_obsm_is_a_mapping)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put_x(f, 2);
    hid_t at = H5Tarray_create2(H5T_NATIVE_FLOAT, 1, (hsize_t[]){3});
    hid_t ct = H5Tcreate(H5T_COMPOUND, 3 * sizeof(float) + sizeof(double));
    H5Tinsert(ct, "X_pca", 0, at);
    H5Tinsert(ct, "size", 3 * sizeof(float), H5T_NATIVE_DOUBLE);
    unsigned char buf[2][3 * sizeof(float) + sizeof(double)];
    for (int i = 0; i < 2; i++) {
        float v[3] = {(float)i, (float)i + 0.5f, -1.0f};
        double s = 10.0 + i;
        memcpy(buf[i], v, sizeof v);
        memcpy(buf[i] + sizeof v, &s, sizeof s);
    }
    hid_t sp = H5Screate_simple(1, (hsize_t[]){2}, NULL);
    hid_t d = H5Dcreate2(f, "obsm", ct, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, ct, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(ct);
    H5Tclose(at);
    H5Fclose(f);
    ad_anndata *a = h5r_read(path, &lim, NULL, &rep, &err);
    ck_assert_msg(a != NULL, "%s at %s", err.detail, err.items[0].pointer);
    ck_assert_uint_eq(a->obsm.n, 2);
    const ad_elem *pca = ad_dict_get(&a->obsm, "X_pca");
    ck_assert_int_eq(pca->kind, AD_K_ARRAY);
    ck_assert_int_eq(pca->u.arr.ndim, 2);
    ck_assert_uint_eq(pca->u.arr.shape[0], 2);
    ck_assert_uint_eq(pca->u.arr.shape[1], 3);
    ck_assert_int_eq(pca->u.arr.dtype, AD_F32);
    ck_assert_float_eq(((float *)pca->u.arr.data)[4], 1.5f);
    const ad_elem *size = ad_dict_get(&a->obsm, "size");
    ck_assert_int_eq(size->u.arr.ndim, 1);
    ck_assert_double_eq(((double *)size->u.arr.data)[1], 11.0);
    ad_anndata_free(a);

    /* the matrix field is counted against max_elements before reading */
    lim.max_elements = 5;
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_str_eq(err.items[0].pointer, "/obsm/X_pca");
}
END_TEST

START_TEST(record_field_holding_an_array_refused)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put_x(f, 2);
    hid_t at = H5Tarray_create2(H5T_NATIVE_INT32, 1, (hsize_t[]){2});
    hid_t ct = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(ct, "pair", 0, at);
    hid_t sp = H5Screate_simple(1, (hsize_t[]){2}, NULL);
    hid_t u = H5Gcreate2(f, "uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t d = H5Dcreate2(u, "r", ct, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    put_str_attr(d, "encoding-type", "rec-array");
    H5Dclose(d);
    H5Gclose(u);
    H5Sclose(sp);
    H5Tclose(ct);
    H5Tclose(at);
    H5Fclose(f);
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_str_eq(err.items[0].pointer, "/uns/r/pair");
}
END_TEST

/* An element nothing can hold (awkward-array) fails the read unless the
 * include filter leaves it out; then it is never opened. */
START_TEST(include_skips_what_it_drops)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put_x(f, 2);
    hid_t u = H5Gcreate2(f, "uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(u, "awk", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    put_str_attr(g, "encoding-type", "awkward-array");
    put_rec(u, "keep", "rec-array");
    H5Gclose(g);
    H5Gclose(u);
    H5Fclose(f);
    ck_assert_ptr_null(h5r_read(path, &lim, NULL, &rep, &err));
    ck_assert_str_eq(err.items[0].pointer, "/uns/awk");
    ck_assert_ptr_nonnull(strstr(err.detail, "awkward-array"));
    adx_err_init(&err);
    const char *inc[] = {"uns/k*"};
    h5r_opts o = {.include = inc, .n_include = 1, .has_include = true};
    ad_anndata *a = h5r_read_opts(path, &o, &lim, NULL, &rep, &err);
    ck_assert_msg(a != NULL, "%s at %s", err.detail, err.items[0].pointer);
    ck_assert_uint_eq(a->uns.n, 1);
    check_rec(ad_dict_get(&a->uns, "keep"));
    ad_anndata_free(a);
}
END_TEST

/* The isolated check reads in the helper what the caller will read. */
START_TEST(isolated_check_follows_include)
{
    ck_assert_msg(helper != NULL, "usage: test_h5r_rec ADX_H5CHECK");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put_x(f, 2);
    hid_t u = H5Gcreate2(f, "uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(u, "awk", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    put_str_attr(g, "encoding-type", "awkward-array");
    put_rec(u, "keep", "rec-array");
    H5Gclose(g);
    H5Gclose(u);
    H5Fclose(f);
    ck_assert_int_eq(h5r_check_isolated(helper, path, &lim, 0, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_str_eq(err.items[0].pointer, "/uns/awk");
    adx_err_init(&err);
    const char *inc[] = {"uns/keep", "obsm/*"};
    h5r_opts o = {.include = inc, .n_include = 2, .has_include = true};
    ck_assert_msg(h5r_check_isolated_opts(helper, path, &o, &lim, 0, &err) == 0, "%s", err.detail);
    /* an empty filter (include: []) reads X and the indexes only */
    h5r_opts none = {.include = NULL, .n_include = 0, .has_include = true};
    ck_assert_int_eq(h5r_check_isolated_opts(helper, path, &none, &lim, 0, &err), 0);
}
END_TEST

int main(int argc, char **argv)
{
    helper = argc > 1 ? argv[1] : NULL;
    Suite *s = suite_create("h5r_rec");
    TCase *tc = tcase_create("rec");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rec_array_encoding);
    tcase_add_test(tc, compound_obsm_is_a_mapping);
    tcase_add_test(tc, record_field_holding_an_array_refused);
    tcase_add_test(tc, include_skips_what_it_drops);
    tcase_add_test(tc, isolated_check_follows_include);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
