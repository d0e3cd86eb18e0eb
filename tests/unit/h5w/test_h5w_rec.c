/* Unit tests for record arrays in the h5ad writer: the dataset must be what
 * anndata writes for a np.recarray (write_recarray / _to_hdf5_vlen_strings):
 * one 1-d compound dataset, members in field order at packed offsets,
 * strings variable-length UTF-8, bools h5py's enum, numbers little-endian,
 * encoding rec-array 0.2.0, compressed like other arrays. Read back with the
 * HDF5 C API. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "adx_h5w.h"

static char tmpdir[256];
static char path[512];

static void setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/h5wrec.XXXXXX", base && base[0] ? base : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(path, sizeof path, "%s/out.h5ad", tmpdir);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void teardown(void)
{
    unlink(path);
    rmdir(tmpdir);
}

/* uns["rank"] = {names: str, score: f32, n: i64, hit: bool}, 3 records */
static ad_anndata *model(void)
{
    ad_anndata *a = ad_anndata_new();
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(ad_frame_default_index(&a->obs, 0), 0);
    ck_assert_int_eq(ad_frame_default_index(&a->var, 0), 0);
    ad_elem *e = ad_elem_new(AD_K_RECARRAY);
    ad_array f;
    const char *names[] = {"CD3É", "", "MS4A1"};
    ck_assert_int_eq(ad_array_from_cstrs(&f, names, 3), 0);
    ck_assert_int_eq(ad_recarray_add(&e->u.rec, "names", &f), 0);
    uint64_t three = 3;
    ck_assert_int_eq(ad_array_init(&f, AD_F32, 1, &three), 0);
    ((float *)f.data)[1] = -2.5f;
    ck_assert_int_eq(ad_recarray_add(&e->u.rec, "score", &f), 0);
    ck_assert_int_eq(ad_array_init(&f, AD_I64, 1, &three), 0);
    ((int64_t *)f.data)[2] = -7;
    ck_assert_int_eq(ad_recarray_add(&e->u.rec, "n", &f), 0);
    ck_assert_int_eq(ad_array_init(&f, AD_BOOL, 1, &three), 0);
    ((uint8_t *)f.data)[0] = 1;
    ck_assert_int_eq(ad_recarray_add(&e->u.rec, "hit", &f), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "rank", e), 0);
    return a;
}

static char *str_attr(hid_t obj, const char *name)
{
    hid_t at = H5Aopen(obj, name, H5P_DEFAULT);
    ck_assert_int_ge(at, 0);
    hid_t t = H5Aget_type(at);
    char *v = NULL;
    ck_assert_int_ge(H5Aread(at, t, &v), 0);
    char *out = strdup(v);
    H5free_memory(v);
    H5Tclose(t);
    H5Aclose(at);
    return out;
}

START_TEST(recarray_as_anndata_writes_it)
{
    static const adx_compression comps[] = {ADX_COMP_GZIP, ADX_COMP_LZF, ADX_COMP_NONE};
    adx_compression comp = comps[_i];
    ad_anndata *a = model();
    h5w_opts o;
    h5w_opts_default(&o);
    o.compression = comp;
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    ck_assert_msg(h5w_write(a, path, &o, NULL, &rep, &err) == 0, "%s", err.detail);
    ad_anndata_free(a);
    rep_free(&rep);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/uns/rank", H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    char *enc = str_attr(d, "encoding-type"), *ver = str_attr(d, "encoding-version");
    ck_assert_str_eq(enc, "rec-array");
    ck_assert_str_eq(ver, "0.2.0");
    free(enc);
    free(ver);
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    ck_assert_int_eq(H5Tget_class(t), H5T_COMPOUND);
    ck_assert_int_eq(H5Sget_simple_extent_ndims(sp), 1);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(sp), 3);
    ck_assert_int_eq(H5Tget_nmembers(t), 4);
    const char *names[] = {"names", "score", "n", "hit"};
    size_t offs[] = {0, 8, 12, 20};
    for (unsigned i = 0; i < 4; i++) {
        char *nm = H5Tget_member_name(t, i);
        ck_assert_str_eq(nm, names[i]);
        H5free_memory(nm);
        ck_assert_uint_eq(H5Tget_member_offset(t, i), offs[i]); /* numpy's packed layout */
    }
    ck_assert_uint_eq(H5Tget_size(t), 21);
    hid_t m0 = H5Tget_member_type(t, 0), m1 = H5Tget_member_type(t, 1),
          m2 = H5Tget_member_type(t, 2), m3 = H5Tget_member_type(t, 3);
    ck_assert_int_gt(H5Tis_variable_str(m0), 0);
    ck_assert_int_eq(H5Tget_cset(m0), H5T_CSET_UTF8);
    ck_assert_int_gt(H5Tequal(m1, H5T_IEEE_F32LE), 0);
    ck_assert_int_gt(H5Tequal(m2, H5T_STD_I64LE), 0);
    ck_assert_int_eq(H5Tget_class(m3), H5T_ENUM);
    char *tn = H5Tget_member_name(m3, 1);
    ck_assert_str_eq(tn, "TRUE");
    H5free_memory(tn);
    H5Tclose(m0);
    H5Tclose(m1);
    H5Tclose(m2);
    H5Tclose(m3);

    /* values, read field by field through native memory types */
    hid_t vs = H5Tcopy(H5T_C_S1);
    H5Tset_size(vs, H5T_VARIABLE);
    H5Tset_cset(vs, H5T_CSET_UTF8);
    hid_t rs = H5Tcreate(H5T_COMPOUND, sizeof(char *));
    H5Tinsert(rs, "names", 0, vs);
    char *sv[3];
    ck_assert_int_ge(H5Dread(d, rs, H5S_ALL, H5S_ALL, H5P_DEFAULT, sv), 0);
    ck_assert_str_eq(sv[0], "CD3É");
    ck_assert_str_eq(sv[1], "");
    ck_assert_str_eq(sv[2], "MS4A1");
    H5Dvlen_reclaim(rs, sp, H5P_DEFAULT, sv);
    hid_t rn = H5Tcreate(H5T_COMPOUND, sizeof(int64_t));
    H5Tinsert(rn, "n", 0, H5T_NATIVE_INT64);
    int64_t nv[3];
    ck_assert_int_ge(H5Dread(d, rn, H5S_ALL, H5S_ALL, H5P_DEFAULT, nv), 0);
    ck_assert_int_eq(nv[2], -7);
    hid_t rf = H5Tcreate(H5T_COMPOUND, sizeof(float));
    H5Tinsert(rf, "score", 0, H5T_NATIVE_FLOAT);
    float fv[3];
    ck_assert_int_ge(H5Dread(d, rf, H5S_ALL, H5S_ALL, H5P_DEFAULT, fv), 0);
    ck_assert_float_eq(fv[1], -2.5f);

    hid_t dcpl = H5Dget_create_plist(d);
    int nf = H5Pget_nfilters(dcpl);
    ck_assert_int_eq(nf, comp == ADX_COMP_NONE ? 0 : 1);
    if (nf) {
        unsigned flags, cd[4];
        size_t ncd = 4;
        H5Z_filter_t id = H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL);
        ck_assert_int_eq(id, comp == ADX_COMP_GZIP ? H5Z_FILTER_DEFLATE : 32000);
    }
    H5Pclose(dcpl);
    H5Tclose(rs);
    H5Tclose(rn);
    H5Tclose(rf);
    H5Tclose(vs);
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
}
END_TEST

START_TEST(bad_recarrays_are_internal_errors)
{
    for (int k = 0; k < 2; k++) {
        ad_anndata *a = model();
        ad_elem *e = ad_dict_get(&a->uns, "rank");
        if (k == 0) {
            e->u.rec.fields[1].n = 2; /* a field that disagrees with n */
            e->u.rec.fields[1].shape[0] = 2;
        } else {
            ad_recarray_free(&e->u.rec); /* no fields at all */
        }
        h5w_opts o;
        h5w_opts_default(&o);
        adx_report rep = {0};
        adx_err err;
        adx_err_init(&err);
        ck_assert_int_eq(h5w_write(a, path, &o, NULL, &rep, &err), -1);
        ck_assert_int_eq(err.type, ADX_E_INTERNAL);
        ck_assert_ptr_nonnull(strstr(err.items[0].pointer, "/uns/rank"));
        if (k == 0) e->u.rec.fields[1].n = 3; /* so it frees what it allocated */
        ad_anndata_free(a);
        rep_free(&rep);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h5w_rec");
    TCase *tc = tcase_create("rec");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, recarray_as_anndata_writes_it, 0, 3);
    tcase_add_test(tc, bad_recarrays_are_internal_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
