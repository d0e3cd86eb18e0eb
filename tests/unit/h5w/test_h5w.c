/* Unit tests for the h5ad writer: write hand-built models and read them back
 * with the HDF5 C API, checking encodings, HDF5 types (bool enum), shapes,
 * values, chunking and filters for every compression setting. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "adx_h5w.h"
#include "h5w_internal.h"
#include "sample_model.h"

static char tmpdir[256];
static char path[512];

static void setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/h5wtest.XXXXXX", base && base[0] ? base : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(path, sizeof path, "%s/out.h5ad", tmpdir);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void teardown(void)
{
    unlink(path);
    rmdir(tmpdir);
}

typedef struct comp_case {
    adx_compression c;
    int level;
    int threads; /* explicit counts so the parallel path runs on any machine */
} comp_case;

static const comp_case cases[] = {
    {ADX_COMP_GZIP, 0, 1}, {ADX_COMP_GZIP, 4, 3}, {ADX_COMP_GZIP, 9, 0},
    {ADX_COMP_LZF, 0, 3},  {ADX_COMP_NONE, 0, 1},
};

static int write_model_turn(const ad_anndata *a, comp_case cc, bool in_turn, adx_report *rep,
                            adx_err *err)
{
    h5w_opts o;
    h5w_opts_default(&o);
    o.compression = cc.c;
    o.level = cc.level;
    o.threads = cc.threads;
    o.compress_in_turn = in_turn;
    adx_err_init(err);
    return h5w_write(a, path, &o, NULL, rep, err);
}

static int write_model(const ad_anndata *a, comp_case cc, adx_report *rep, adx_err *err)
{
    return write_model_turn(a, cc, false, rep, err);
}

/* ------------------------------------------------------------ read helpers */

static char *attr_string(hid_t obj, const char *name)
{
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "attribute %s missing", name);
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    ck_assert_int_eq(H5Tget_class(t), H5T_STRING);
    ck_assert(H5Tis_variable_str(t) > 0);
    ck_assert_int_eq(H5Tget_cset(t), H5T_CSET_UTF8);
    ck_assert_int_eq(H5Sget_simple_extent_type(s), H5S_SCALAR);
    char *v = NULL;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    ck_assert(H5Aread(a, mt, &v) >= 0);
    char *out = strdup(v);
    H5free_memory(v);
    H5Tclose(mt);
    H5Tclose(t);
    H5Sclose(s);
    H5Aclose(a);
    return out;
}

static void check_attr_str(hid_t f, const char *obj, const char *name, const char *want)
{
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    ck_assert_msg(o >= 0, "object %s missing", obj);
    char *v = attr_string(o, name);
    ck_assert_msg(strcmp(v, want) == 0, "%s@%s = '%s', want '%s'", obj, name, v, want);
    free(v);
    H5Oclose(o);
}

static void check_enc(hid_t f, const char *obj, const char *type, const char *version)
{
    check_attr_str(f, obj, "encoding-type", type);
    check_attr_str(f, obj, "encoding-version", version);
}

static bool is_bool_enum(hid_t t)
{
    if (H5Tget_class(t) != H5T_ENUM || H5Tget_size(t) != 1 || H5Tget_nmembers(t) != 2) return false;
    hid_t super = H5Tget_super(t);
    bool ok = H5Tequal(super, H5T_STD_I8LE) > 0;
    H5Tclose(super);
    for (unsigned i = 0; i < 2 && ok; i++) {
        char *n = H5Tget_member_name(t, i);
        int8_t v = -1;
        H5Tget_member_value(t, i, &v);
        ok = strcmp(n, i ? "TRUE" : "FALSE") == 0 && v == (int8_t)i;
        H5free_memory(n);
    }
    return ok;
}

/* Opens a dataset and checks rank, dims and the file type class/size. */
static hid_t open_ds(hid_t f, const char *p, int ndim, const hsize_t *dims)
{
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "dataset %s missing", p);
    hid_t s = H5Dget_space(d);
    if (ndim == 0) {
        ck_assert_int_eq(H5Sget_simple_extent_type(s), H5S_SCALAR);
    } else {
        hsize_t got[AD_MAX_NDIM];
        ck_assert_int_eq(H5Sget_simple_extent_ndims(s), ndim);
        H5Sget_simple_extent_dims(s, got, NULL);
        for (int i = 0; i < ndim; i++)
            ck_assert_msg(got[i] == dims[i], "%s dim %d = %llu", p, i, (unsigned long long)got[i]);
    }
    H5Sclose(s);
    return d;
}

static void check_type(hid_t d, hid_t want)
{
    hid_t t = H5Dget_type(d);
    ck_assert(H5Tequal(t, want) > 0);
    H5Tclose(t);
}

static void check_bool_type(hid_t d)
{
    hid_t t = H5Dget_type(d);
    ck_assert(is_bool_enum(t));
    H5Tclose(t);
}

static void read_all(hid_t d, hid_t mt, void *buf)
{
    ck_assert(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
}

static void check_f64(hid_t f, const char *p, int ndim, const hsize_t *dims, const double *want,
                      size_t n)
{
    hid_t d = open_ds(f, p, ndim, dims);
    double *got = calloc(n ? n : 1, sizeof *got);
    read_all(d, H5T_NATIVE_DOUBLE, got);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg((isnan(want[i]) && isnan(got[i])) || got[i] == want[i],
                      "%s[%zu] = %g want %g", p, i, got[i], want[i]);
    free(got);
    H5Dclose(d);
}

static void check_strs(hid_t f, const char *p, const char *const *want, size_t n)
{
    hsize_t dims[1] = {n};
    hid_t d = open_ds(f, p, 1, dims);
    hid_t ft = H5Dget_type(d);
    ck_assert(H5Tis_variable_str(ft) > 0);
    ck_assert_int_eq(H5Tget_cset(ft), H5T_CSET_UTF8);
    H5Tclose(ft);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    char **got = calloc(n ? n : 1, sizeof *got);
    read_all(d, mt, got);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(got[i], want[i]);
    hid_t s = H5Dget_space(d);
    H5Dvlen_reclaim(mt, s, H5P_DEFAULT, got);
    H5Sclose(s);
    free(got);
    H5Tclose(mt);
    H5Dclose(d);
}

/* Layout and filter pipeline as the compression setting requires. */
static void check_storage(hid_t f, const char *p, comp_case cc, bool expect_chunked)
{
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    ck_assert(d >= 0);
    hid_t pl = H5Dget_create_plist(d);
    H5D_layout_t lay = H5Pget_layout(pl);
    int nf = H5Pget_nfilters(pl);
    if (!expect_chunked || cc.c == ADX_COMP_NONE) {
        ck_assert_msg(lay == H5D_CONTIGUOUS, "%s should be contiguous", p);
        ck_assert_int_eq(nf, 0);
    } else {
        ck_assert_msg(lay == H5D_CHUNKED, "%s should be chunked", p);
        ck_assert_int_eq(nf, 1);
        unsigned flags, cd[8];
        size_t ncd = 8;
        char name[32];
        H5Z_filter_t id = H5Pget_filter2(pl, 0, &flags, &ncd, cd, sizeof name, name, NULL);
        if (cc.c == ADX_COMP_GZIP) {
            ck_assert_int_eq(id, H5Z_FILTER_DEFLATE);
            ck_assert_uint_eq(ncd, 1);
            ck_assert_uint_eq(cd[0], (unsigned)cc.level);
        } else {
            ck_assert_int_eq(id, H5W_LZF_FILTER_ID);
            /* HDF5 skips set_local for vlen strings (h5py's files show the
             * same: no cd_values there); numeric datasets get h5py's three. */
            hid_t t = H5Dget_type(d);
            if (H5Tis_variable_str(t) <= 0) {
                ck_assert_uint_ge(ncd, 3);
                ck_assert_uint_eq(cd[0], 4);
                ck_assert_uint_eq(cd[1], 0x0105);
                ck_assert_uint_gt(cd[2], 0);
            }
            H5Tclose(t);
        }
        ck_assert(flags & H5Z_FLAG_OPTIONAL);
    }
    H5Pclose(pl);
    H5Dclose(d);
}

/* ------------------------------------------------------------ pure helpers */

START_TEST(guess_chunk_matches_h5py)
{
    /* Expected values computed with h5py._hl.filters.guess_chunk. */
    static const struct {
        int nd;
        uint64_t shape[3];
        size_t ts;
        uint64_t want[3];
    } t[] = {
        {2, {4000, 1000}, 8, {125, 63}},
        {2, {138, 46}, 4, {69, 23}},
        {1, {100}, 8, {100}},
        {1, {3}, 1, {3}},
        {1, {1000000}, 8, {3907}},
        {3, {10, 20, 30}, 4, {5, 20, 30}},
        {2, {5000, 3}, 8, {1250, 1}},
        {2, {1, 1}, 8, {1, 1}},
        {2, {200000, 50}, 4, {6250, 2}},
        {1, {3000}, 1, {3000}},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint64_t c[3];
        h5w_guess_chunk(t[i].nd, t[i].shape, t[i].ts, c);
        for (int k = 0; k < t[i].nd; k++)
            ck_assert_msg(c[k] == t[i].want[k], "case %zu dim %d: %llu != %llu", i, k,
                          (unsigned long long)c[k], (unsigned long long)t[i].want[k]);
    }
}
END_TEST

START_TEST(gather_pads_edge_chunks)
{
    /* 3x5 int32 array, chunk 2x3: chunk (1,1) holds [13,14] and zeros. */
    int32_t src[15], dst[6];
    for (int i = 0; i < 15; i++)
        src[i] = i;
    uint64_t shape[2] = {3, 5}, chunk[2] = {2, 3}, o00[2] = {0, 0}, o11[2] = {2, 3};
    h5w_gather_chunk(src, 2, shape, 4, chunk, o00, dst);
    int32_t w0[6] = {0, 1, 2, 5, 6, 7};
    ck_assert_mem_eq(dst, w0, sizeof w0);
    memset(dst, 0x7f, sizeof dst);
    h5w_gather_chunk(src, 2, shape, 4, chunk, o11, dst);
    int32_t w1[6] = {13, 14, 0, 0, 0, 0};
    ck_assert_mem_eq(dst, w1, sizeof w1);
}
END_TEST

START_TEST(lzf_roundtrip_and_incompressible)
{
    unsigned char in[4096], out[4096], back[4096];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i % 7);
    size_t n = h5w_lzf_compress(in, sizeof in, out, sizeof in);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_lt(n, sizeof in / 4);
    ck_assert_uint_eq(h5w_lzf_decompress(out, n, back, sizeof back), sizeof in);
    ck_assert_mem_eq(in, back, sizeof in);
    /* Too small an output buffer is reported, not overrun. */
    ck_assert_uint_eq(h5w_lzf_decompress(out, n, back, 100), 0);
    /* Random bytes do not fit in a buffer the size of the input. */
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof in; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        in[i] = (unsigned char)x;
    }
    ck_assert_uint_eq(h5w_lzf_compress(in, sizeof in, out, sizeof in), 0);
    ck_assert_int_eq(h5w_lzf_register(), 0);
    ck_assert_int_eq(h5w_lzf_register(), 0);
    ck_assert_int_gt(H5Zfilter_avail(H5W_LZF_FILTER_ID), 0);
}
END_TEST

/* ------------------------------------------------------------ full model */

START_TEST(sample_model_every_compression)
{
    comp_case cc = cases[_i];
    ad_anndata *a = sample_model();
    ck_assert_ptr_nonnull(a);
    adx_report rep = {0};
    adx_err err;
    ck_assert_msg(write_model(a, cc, &rep, &err) == 0, "write failed: %s", err.detail);
    ck_assert_uint_eq(rep.n, 0);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    check_enc(f, "/", "anndata", "0.1.0");

    /* X */
    hsize_t xd[2] = {5, 4};
    double xv[20];
    static const double xs[] = {-1, 0, 1, NAN, 0.5, 2,  -3, 4,  5,  6,
                                7,  8, 9, 10,  11,  12, 13, 14, 15, 16};
    memcpy(xv, xs, sizeof xv);
    check_enc(f, "X", "array", "0.2.0");
    check_f64(f, "X", 2, xd, xv, 20);
    hid_t d = open_ds(f, "X", 2, xd);
    check_type(d, H5T_IEEE_F64LE);
    H5Dclose(d);
    check_storage(f, "X", cc, true);

    /* obs frame */
    check_enc(f, "obs", "dataframe", "0.2.0");
    check_attr_str(f, "obs", "_index", "_index");
    check_enc(f, "obs/_index", "string-array", "0.2.0");
    static const char *const ix[] = {"p0", "p1", "p2", "p\xc3\xa9", "\xe6\x97\xa5"};
    check_strs(f, "obs/_index", ix, 5);
    check_storage(f, "obs/_index", cc, true);
    {
        hid_t g = H5Gopen2(f, "obs", H5P_DEFAULT);
        hid_t at = H5Aopen(g, "column-order", H5P_DEFAULT);
        hid_t s = H5Aget_space(at), t = H5Aget_type(at);
        hsize_t n;
        H5Sget_simple_extent_dims(s, &n, NULL);
        ck_assert_uint_eq(n, 16);
        ck_assert(H5Tis_variable_str(t) > 0);
        char *names[16];
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5T_CSET_UTF8);
        ck_assert(H5Aread(at, mt, names) >= 0);
        ck_assert_str_eq(names[0], "n_i8");
        ck_assert_str_eq(names[11], "label");
        ck_assert_str_eq(names[15], "nbool");
        H5Dvlen_reclaim(mt, s, H5P_DEFAULT, names);
        H5Tclose(mt);
        H5Tclose(t);
        H5Sclose(s);
        H5Aclose(at);
        H5Gclose(g);
    }
    const struct {
        const char *p;
        hid_t t;
    } cols[] = {
        {"obs/n_i8", H5T_STD_I8LE},    {"obs/n_i16", H5T_STD_I16LE}, {"obs/n_i32", H5T_STD_I32LE},
        {"obs/n_i64", H5T_STD_I64LE},  {"obs/n_u8", H5T_STD_U8LE},   {"obs/n_u16", H5T_STD_U16LE},
        {"obs/n_u32", H5T_STD_U32LE},  {"obs/n_u64", H5T_STD_U64LE}, {"obs/n_f32", H5T_IEEE_F32LE},
        {"obs/n_f64", H5T_IEEE_F64LE},
    };
    hsize_t d5[1] = {5};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        d = open_ds(f, cols[i].p, 1, d5);
        check_type(d, cols[i].t);
        H5Dclose(d);
        check_enc(f, cols[i].p, "array", "0.2.0");
    }
    static const double iv[] = {1, -2, 3, 4, 5}, fv[] = {0.5, -1.5, NAN, 2, 3};
    check_f64(f, "obs/n_i8", 1, d5, iv, 5);
    check_f64(f, "obs/n_f32", 1, d5, fv, 5);

    /* bool column: enum int8 FALSE/TRUE, values 1 0 1 1 0 */
    d = open_ds(f, "obs/flag", 1, d5);
    check_bool_type(d);
    int8_t b[5];
    read_all(d, H5T_NATIVE_INT8, b);
    int8_t bw[5] = {1, 0, 1, 1, 0};
    ck_assert_mem_eq(b, bw, 5);
    H5Dclose(d);
    check_storage(f, "obs/flag", cc, true);

    static const char *const lab[] = {"a", "b\xc3\xbc", "", "d", "\xf0\x9f\x98\x80"};
    check_strs(f, "obs/label", lab, 5);
    check_enc(f, "obs/label", "string-array", "0.2.0");

    /* categoricals */
    check_enc(f, "obs/kmeans", "categorical", "0.2.0");
    {
        hid_t g = H5Gopen2(f, "obs/group", H5P_DEFAULT);
        hid_t at = H5Aopen(g, "ordered", H5P_DEFAULT);
        hid_t t = H5Aget_type(at);
        ck_assert(is_bool_enum(t));
        int8_t o = 0;
        H5Aread(at, t, &o);
        ck_assert_int_eq(o, 1);
        H5Tclose(t);
        H5Aclose(at);
        H5Gclose(g);
    }
    static const double codes[] = {1, 2, -1, 0, 2}, cats[] = {-1, 10, 20};
    check_f64(f, "obs/kmeans/codes", 1, d5, codes, 5);
    hsize_t d3c[1] = {3};
    check_f64(f, "obs/kmeans/categories", 1, d3c, cats, 3);
    d = open_ds(f, "obs/kmeans/categories", 1, d3c);
    check_type(d, H5T_STD_I64LE);
    H5Dclose(d);
    static const char *const cs[] = {"x", "y\xc3\xa9"};
    check_strs(f, "obs/group/categories", cs, 2);
    check_enc(f, "obs/group/categories", "string-array", "0.2.0");
    check_enc(f, "obs/kmeans/codes", "array", "0.2.0");

    /* nullable */
    check_enc(f, "obs/nint", "nullable-integer", "0.1.0");
    check_enc(f, "obs/nbool", "nullable-boolean", "0.1.0");
    check_enc(f, "obs/nint/mask", "array", "0.2.0");
    d = open_ds(f, "obs/nint/mask", 1, d5);
    check_bool_type(d);
    H5Dclose(d);
    d = open_ds(f, "obs/nbool/values", 1, d5);
    check_bool_type(d);
    H5Dclose(d);
    static const double nmask[] = {0, 1, 0, 0, 1};
    check_f64(f, "obs/nint/mask", 1, d5, nmask, 5);
    check_f64(f, "obs/nint/values", 1, d5, iv, 5);

    /* var: named index, no columns -> empty float64 column-order */
    check_attr_str(f, "var", "_index", "gene");
    static const char *const vix[] = {"g0", "g1", "g2", "g3"};
    check_strs(f, "var/gene", vix, 4);
    {
        hid_t g = H5Gopen2(f, "var", H5P_DEFAULT);
        hid_t at = H5Aopen(g, "column-order", H5P_DEFAULT);
        hid_t s = H5Aget_space(at), t = H5Aget_type(at);
        ck_assert(H5Tequal(t, H5T_IEEE_F64LE) > 0);
        ck_assert_int_eq(H5Sget_simple_extent_ndims(s), 1);
        ck_assert_int_eq(H5Sget_simple_extent_npoints(s), 0);
        H5Tclose(t);
        H5Sclose(s);
        H5Aclose(at);
        H5Gclose(g);
    }

    /* mappings, including the empty ones */
    static const char *const dicts[] = {"obsm", "varm",       "layers",           "obsp",    "varp",
                                        "uns",  "uns/nested", "uns/nested/inner", "raw/varm"};
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++)
        check_enc(f, dicts[i], "dict", "0.1.0");
    {
        hid_t g = H5Gopen2(f, "varm", H5P_DEFAULT);
        H5G_info_t gi;
        H5Gget_info(g, &gi);
        ck_assert_uint_eq(gi.nlinks, 0);
        H5Gclose(g);
    }
    hsize_t pd[2] = {5, 2};
    static const double pca[] = {0.25, -0.5, 1.5, 2.5, -3, 4, 5, 6.125, 7, 8};
    check_f64(f, "obsm/X_pca", 2, pd, pca, 10);

    /* sparse */
    check_enc(f, "obsm/sp", "csr_matrix", "0.1.0");
    check_enc(f, "obsp/conn", "csc_matrix", "0.1.0");
    {
        hid_t g = H5Gopen2(f, "obsp/conn", H5P_DEFAULT);
        hid_t at = H5Aopen(g, "shape", H5P_DEFAULT);
        hid_t t = H5Aget_type(at);
        ck_assert(H5Tequal(t, H5T_STD_I64LE) > 0);
        int64_t shp[2];
        H5Aread(at, H5T_NATIVE_INT64, shp);
        ck_assert_int_eq(shp[0], 5);
        ck_assert_int_eq(shp[1], 5);
        ck_assert_int_eq(H5Aexists(g, "encoding-type"), 1);
        H5Tclose(t);
        H5Aclose(at);
        hid_t dd = H5Dopen2(g, "data", H5P_DEFAULT);
        ck_assert_int_eq(H5Aexists(dd, "encoding-type"), 0);
        /* resizable like anndata's sparse parts, so always chunked */
        hid_t ds = H5Dget_space(dd), dp = H5Dget_create_plist(dd);
        hsize_t cur, max;
        H5Sget_simple_extent_dims(ds, &cur, &max);
        ck_assert(max == H5S_UNLIMITED);
        ck_assert_int_eq(H5Pget_layout(dp), H5D_CHUNKED);
        ck_assert_int_eq(H5Pget_nfilters(dp), cc.c == ADX_COMP_NONE ? 0 : 1);
        H5Pclose(dp);
        H5Sclose(ds);
        H5Dclose(dd);
        H5Gclose(g);
    }
    static const double spd[] = {1, 2, 3}, spi[] = {0, 1, 3}, spp[] = {0, 1, 1, 2, 3, 3};
    hsize_t d3[1] = {3}, d6[1] = {6};
    check_f64(f, "obsm/sp/data", 1, d3, spd, 3);
    check_f64(f, "obsm/sp/indices", 1, d3, spi, 3);
    check_f64(f, "obsm/sp/indptr", 1, d6, spp, 6);

    /* an empty sparse matrix: zero-size parts, chunked (resizable), no filter */
    hsize_t d0[1] = {0};
    d = open_ds(f, "obsm/sp_empty/data", 1, d0);
    {
        hid_t dp = H5Dget_create_plist(d);
        ck_assert_int_eq(H5Pget_layout(dp), H5D_CHUNKED);
        ck_assert_int_eq(H5Pget_nfilters(dp), 0);
        H5Pclose(dp);
    }
    H5Dclose(d);
    static const double zeros[6] = {0};
    check_f64(f, "obsm/sp_empty/indptr", 1, d6, zeros, 6);

    /* uns scalars: scalar space, contiguous, never filtered */
    check_enc(f, "uns/s_str", "string", "0.2.0");
    check_enc(f, "uns/s_f64", "numeric-scalar", "0.2.0");
    check_enc(f, "uns/s_bool", "numeric-scalar", "0.2.0");
    check_enc(f, "uns/nested/inner/deep", "numeric-scalar", "0.2.0");
    static const char *const scal[] = {"uns/s_str", "uns/s_f64", "uns/s_i64", "uns/s_bool"};
    for (size_t i = 0; i < 4; i++)
        check_storage(f, scal[i], cc, false);
    static const double f15[] = {1.5}, i42[] = {42};
    check_f64(f, "uns/s_f64", 0, NULL, f15, 1);
    check_f64(f, "uns/s_i64", 0, NULL, i42, 1);
    check_f64(f, "uns/nested/inner/deep", 0, NULL, i42, 1);
    d = open_ds(f, "uns/s_bool", 0, NULL);
    check_bool_type(d);
    H5Dclose(d);
    {
        d = open_ds(f, "uns/s_str", 0, NULL);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5T_CSET_UTF8);
        char *s = NULL;
        read_all(d, mt, &s);
        ck_assert_str_eq(s, "h\xc3\xa9llo");
        H5free_memory(s);
        H5Tclose(mt);
        H5Dclose(d);
    }
    /* N-d and zero-size arrays */
    hsize_t c3[3] = {2, 2, 2}, z[1] = {0};
    static const double cube[] = {1, 2, 3, 4, 5, 6, 7, 8};
    check_f64(f, "uns/cube", 3, c3, cube, 8);
    d = open_ds(f, "uns/cube", 3, c3);
    check_type(d, H5T_STD_I16LE);
    H5Dclose(d);
    d = open_ds(f, "uns/empty", 1, z);
    H5Dclose(d);
    check_storage(f, "uns/empty", cc, false);
    check_enc(f, "uns/grid", "string-array", "0.2.0");
    check_enc(f, "uns/frame", "dataframe", "0.2.0");
    check_enc(f, "obsm/df", "dataframe", "0.2.0");
    check_strs(f, "obsm/df/_index", ix, 5);
    check_attr_str(f, "uns/frame", "_index", "_index");

    /* raw */
    check_enc(f, "raw", "raw", "0.1.0");
    d = open_ds(f, "raw/X", 2, xd);
    check_type(d, H5T_IEEE_F32LE);
    H5Dclose(d);
    check_f64(f, "raw/X", 2, xd, xv, 20);
    check_attr_str(f, "raw/var", "_index", "gene");

    H5Fclose(f);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

/* Larger than one chunk in both axes, with edge chunks and a mix of
 * compressible and incompressible chunks (stored raw via filter_mask). */
START_TEST(multi_chunk_roundtrip)
{
    comp_case cc = cases[_i];
    ad_anndata *a = ad_anndata_new();
    uint64_t shape[2] = {1003, 301};
    ad_array x;
    ck_assert_int_eq(ad_array_init(&x, AD_F64, 2, shape), 0);
    double *v = x.data;
    uint64_t s = 88172645463325252ull;
    for (uint64_t i = 0; i < x.n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        /* first half random (incompressible), second half -1/0/1/NaN */
        if (i < x.n / 2)
            memcpy(&v[i], &s, sizeof s);
        else
            v[i] = (double)((int)(s % 3) - 1);
        if (i >= x.n / 2 && s % 5 < 2) v[i] = NAN;
    }
    a->X = ad_elem_from_array(&x);
    sample_fit_axes(a);
    adx_report rep = {0};
    adx_err err;
    ck_assert_msg(write_model(a, cc, &rep, &err) == 0, "%s", err.detail);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hsize_t dims[2] = {1003, 301};
    hid_t d = open_ds(f, "X", 2, dims);
    double *back = malloc(1003 * 301 * sizeof *back);
    read_all(d, H5T_NATIVE_DOUBLE, back);
    ck_assert(memcmp(back, a->X->u.arr.data, 1003 * 301 * sizeof(double)) == 0);
    free(back);
    if (cc.c != ADX_COMP_NONE) {
        hid_t pl = H5Dget_create_plist(d);
        hsize_t ch[2];
        ck_assert_int_eq(H5Pget_chunk(pl, 2, ch), 2);
        uint64_t want[2];
        h5w_guess_chunk(2, shape, 8, want);
        ck_assert_uint_eq(ch[0], want[0]);
        ck_assert_uint_eq(ch[1], want[1]);
        H5Pclose(pl);
        /* The random first chunk cannot shrink, so it is stored raw with
         * filter_mask bit 0; the -1/0/1/NaN last chunk compresses (except at
         * gzip level 0, which never shrinks anything). */
        uint32_t mask = 0;
        hsize_t off0[2] = {0, 0},
                offlast[2] = {(1003 / want[0]) * want[0], (301 / want[1]) * want[1]};
        hsize_t sz = 0;
        H5Dget_chunk_storage_size(d, offlast, &sz);
        size_t cb = want[0] * want[1] * 8;
        void *buf = malloc(cb);
        ck_assert(H5Dread_chunk(d, H5P_DEFAULT, off0, &mask, buf) >= 0);
        ck_assert_uint_eq(mask & 1, 1); /* random doubles never shrink */
        if (cc.level > 0 || cc.c == ADX_COMP_LZF) {
            ck_assert(H5Dread_chunk(d, H5P_DEFAULT, offlast, &mask, buf) >= 0);
            ck_assert_uint_eq(mask & 1, 0);
            ck_assert_uint_lt(sz, cb);
        }
        free(buf);
    }
    H5Dclose(d);
    H5Fclose(f);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

/* ------------------------------------------------------------ behaviour */

START_TEST(index_name_collision_is_reported)
{
    ad_anndata *a = ad_anndata_new();
    ck_assert_int_eq(ad_frame_default_index(&a->obs, 3), 0);
    a->obs.n_rows = 3;
    a->obs.index_name = strdup("cell");
    static const double v[] = {1, 2, 3};
    uint64_t s3[1] = {3};
    ck_assert_int_eq(ad_frame_add(&a->obs, "cell", sample_num(AD_I64, 1, s3, v, 3)), 0);
    ck_assert_int_eq(ad_frame_add(&a->obs, "_index", sample_num(AD_I64, 1, s3, v, 3)), 0);
    /* the fallback names are taken too, in no order: the first free one */
    ck_assert_int_eq(ad_frame_add(&a->obs, "_index_2", sample_num(AD_I64, 1, s3, v, 3)), 0);
    ck_assert_int_eq(ad_frame_add(&a->obs, "_index_1", sample_num(AD_I64, 1, s3, v, 3)), 0);
    sample_fit_axes(a);
    adx_report rep = {0};
    adx_err err;
    ck_assert_int_eq(write_model(a, cases[1], &rep, &err), 0);
    ck_assert_uint_eq(rep.n, 1);
    ck_assert_str_eq(rep.e[0].path, "/obs");
    ck_assert_str_eq(rep.e[0].action, "index_renamed");
    ck_assert_ptr_nonnull(strstr(rep.e[0].detail, "cell"));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    check_attr_str(f, "obs", "_index", "_index_3");
    /* no X in the model: no X in the file, but every mapping is there */
    ck_assert_int_eq(H5Lexists(f, "X", H5P_DEFAULT), 0);
    ck_assert_int_eq(H5Lexists(f, "raw", H5P_DEFAULT), 0);
    static const char *const maps[] = {"obsm", "varm", "layers", "obsp", "varp", "uns"};
    for (int i = 0; i < 6; i++)
        check_enc(f, maps[i], "dict", "0.1.0");
    check_enc(f, "var", "dataframe", "0.2.0");
    hsize_t d0[1] = {0};
    hid_t vi = open_ds(f, "var/_index", 1, d0);
    H5Dclose(vi);
    static const char *const ix[] = {"0", "1", "2"};
    check_strs(f, "obs/_index_3", ix, 3);
    hsize_t d3[1] = {3};
    check_f64(f, "obs/cell", 1, d3, v, 3);
    check_f64(f, "obs/_index", 1, d3, v, 3);
    H5Fclose(f);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

static void count_ids(long out[6])
{
    static const H5I_type_t t[6] = {H5I_FILE,      H5I_GROUP,   H5I_DATATYPE,
                                    H5I_DATASPACE, H5I_DATASET, H5I_ATTR};
    for (int i = 0; i < 6; i++) {
        hsize_t n = 0;
        H5Inmembers(t[i], &n);
        out[i] = (long)n;
    }
}

START_TEST(object_element_is_internal_error_without_leaks)
{
    long before[6], after[6];
    ad_anndata *a = sample_model();
    ad_elem *inner = ad_dict_get(&a->uns, "nested");
    ck_assert_int_eq(ad_dict_put(&inner->u.dict, "bad", ad_elem_new(AD_K_OBJECT)), 0);
    adx_report rep = {0};
    adx_err err;
    h5w_lzf_register();
    count_ids(before);
    ck_assert_int_eq(write_model(a, cases[3], &rep, &err), -1);
    count_ids(after);
    ck_assert_int_eq(err.type, ADX_E_INTERNAL);
    ck_assert_str_eq(err.items[0].pointer, "/uns/nested/bad");
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(before[i], after[i]);

    /* and the success path closes everything as well */
    ad_dict_remove_at(&inner->u.dict, inner->u.dict.n - 1);
    count_ids(before);
    ck_assert_int_eq(write_model(a, cases[1], &rep, &err), 0);
    count_ids(after);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(before[i], after[i]);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(bad_key_names_the_element)
{
    ad_anndata *a = ad_anndata_new();
    static const double v[] = {1};
    uint64_t s1[1] = {0};
    ck_assert_int_eq(ad_dict_put(&a->obsm, "a/b", sample_num(AD_F64, 1, s1, v, 1)), 0);
    adx_report rep = {0};
    adx_err err;
    ck_assert_int_eq(write_model(a, cases[4], &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_str_eq(err.items[0].pointer, "/obsm/a~1b");
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

/* A frame built by hand with a repeated column name: HDF5 refuses the second
 * dataset, which must surface as ADX_E_IO naming that column, with HDF5's
 * reason in the log-only cause (not in the client's detail) and no error
 * stack printed (stderr is not checked here, but the cause must come from
 * the HDF5 stack). */
START_TEST(hdf5_failure_names_the_element)
{
    ad_anndata *a = ad_anndata_new();
    ck_assert_int_eq(ad_frame_default_index(&a->var, 2), 0);
    a->var.n_rows = 2;
    static const double v[] = {1, 2};
    uint64_t s2[1] = {2};
    ck_assert_int_eq(ad_frame_add(&a->var, "dup", sample_num(AD_F64, 1, s2, v, 2)), 0);
    ck_assert_int_eq(ad_frame_add(&a->var, "other", sample_num(AD_F64, 1, s2, v, 2)), 0);
    free(a->var.names[1]);
    a->var.names[1] = strdup("dup");
    sample_fit_axes(a);
    adx_report rep = {0};
    adx_err err;
    long before[6], after[6];
    count_ids(before);
    ck_assert_int_eq(write_model(a, cases[0], &rep, &err), -1);
    count_ids(after);
    ck_assert_int_eq(err.type, ADX_E_IO);
    ck_assert_str_eq(err.items[0].pointer, "/var/dup");
    ck_assert_ptr_nonnull(strstr(err.detail, "creating a dataset"));
    ck_assert_ptr_null(strstr(err.detail, "exist"));
    ck_assert_ptr_nonnull(strstr(err.cause, "exist"));
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(before[i], after[i]);
    ad_anndata_free(a);
}
END_TEST

/* More columns than fit a compact column-order attribute (anndata itself
 * fails there): the file switches to the 1.8 format and stays readable. */
START_TEST(wide_frame_column_order)
{
    enum { NC = 4100 };
    ad_anndata *a = ad_anndata_new();
    ck_assert_int_eq(ad_frame_default_index(&a->obs, 1), 0);
    a->obs.n_rows = 1;
    static const double v[] = {7};
    uint64_t s1[1] = {1};
    char name[64];
    for (int i = 0; i < NC; i++) {
        snprintf(name, sizeof name, "a_rather_long_column_name_%05d", i);
        ck_assert_int_eq(ad_frame_add(&a->obs, name, sample_num(AD_I8, 1, s1, v, 1)), 0);
    }
    sample_fit_axes(a);
    adx_report rep = {0};
    adx_err err;
    ck_assert_msg(write_model(a, cases[4], &rep, &err) == 0, "%s", err.detail);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t g = H5Gopen2(f, "obs", H5P_DEFAULT);
    hid_t at = H5Aopen(g, "column-order", H5P_DEFAULT);
    hid_t sp = H5Aget_space(at);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(sp), NC);
    char **names = calloc(NC, sizeof *names);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    ck_assert(H5Aread(at, mt, names) >= 0);
    ck_assert_str_eq(names[NC - 1], "a_rather_long_column_name_04099");
    H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, names);
    free(names);
    H5Tclose(mt);
    H5Sclose(sp);
    H5Aclose(at);
    H5Gclose(g);
    hsize_t d1[1] = {1};
    check_f64(f, "obs/a_rather_long_column_name_04099", 1, d1, v, 1);
    H5Fclose(f);
    ad_anndata_free(a);
}
END_TEST

static unsigned char *slurp(const char *p, long *n)
{
    FILE *f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)*n);
    ck_assert_uint_eq(fread(b, 1, (size_t)*n, f), (size_t)*n);
    fclose(f);
    return b;
}

/* The file at `path` holds exactly the n bytes of `want`. */
static void assert_file_is(const unsigned char *want, long n)
{
    long got_n;
    unsigned char *got = slurp(path, &got_n);
    ck_assert_int_eq(got_n, n);
    ck_assert(memcmp(got, want, (size_t)n) == 0);
    free(got);
}

/* Same model, same bytes: no timestamps in object headers, and the parallel
 * compressor's output does not depend on the thread count. */
START_TEST(output_is_reproducible)
{
    ad_anndata *a = sample_model();
    adx_report rep = {0};
    adx_err err;
    comp_case one = {ADX_COMP_GZIP, 6, 1}, three = {ADX_COMP_GZIP, 6, 3};
    ck_assert_int_eq(write_model(a, one, &rep, &err), 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    static const char *const objs[] = {"/", "X", "obs", "uns/big", "obsm/sp"};
    for (int i = 0; i < 5; i++) {
        H5O_info_t info;
        hid_t o = H5Oopen(f, objs[i], H5P_DEFAULT);
        ck_assert(H5Oget_info2(o, &info, H5O_INFO_TIME) >= 0);
        ck_assert_msg(info.mtime == 0 && info.ctime == 0, "%s carries a timestamp", objs[i]);
        H5Oclose(o);
    }
    H5Fclose(f);
    long n1;
    unsigned char *b1 = slurp(path, &n1);
    ck_assert_int_eq(write_model(a, three, &rep, &err), 0);
    assert_file_is(b1, n1);
    /* More helpers than chunks in flight: chunks still land in order. */
    comp_case sixteen = {ADX_COMP_GZIP, 6, 16};
    ck_assert_int_eq(write_model(a, sixteen, &rep, &err), 0);
    assert_file_is(b1, n1);
    free(b1);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

static bool not_big(const char *key, ad_elem *value, void *ud)
{
    (void)value;
    (void)ud;
    return strcmp(key, "big") != 0;
}

/* A small write compresses its chunks before its turn at libhdf5: the same
 * chunks as compressing them during the turn, so the same bytes, for every
 * element kind of sample_model (record arrays, which are not chunked,
 * among them). */
START_TEST(small_write_compressed_before_its_turn)
{
    ad_anndata *a = sample_model();
    ad_dict_retain(&a->uns, not_big, NULL);
    ck_assert_uint_lt(ad_anndata_bytes(a), 1u << 20);
    static const comp_case cc[] = {
        {ADX_COMP_GZIP, 4, 1}, {ADX_COMP_GZIP, 9, 3}, {ADX_COMP_LZF, 0, 1}};
    adx_report rep = {0};
    adx_err err;
    for (size_t i = 0; i < sizeof cc / sizeof *cc; i++) {
        ck_assert_msg(write_model_turn(a, cc[i], true, &rep, &err) == 0, "%s", err.detail);
        long n;
        unsigned char *want = slurp(path, &n);
        ck_assert_msg(write_model(a, cc[i], &rep, &err) == 0, "%s", err.detail);
        assert_file_is(want, n);
        free(want);
    }
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

/* More chunked datasets than the writer keeps waiting (H5W_DEFER_MAX):
 * the early ones are stored while later ones are created, at points that
 * depend on the model only, so any thread count gives the same bytes, and
 * every value reads back. */
START_TEST(many_chunked_datasets_drain_in_order)
{
    ad_anndata *a = ad_anndata_new();
    uint64_t shape[1] = {20000}, xs[2] = {300, 200};
    static const double xv[] = {1, 2, 3};
    a->X = sample_num(AD_F64, 2, xs, xv, 3);
    sample_fit_axes(a);
    char key[32];
    for (int i = 0; i < 150; i++) {
        double v[] = {i, i + 0.5, -i};
        snprintf(key, sizeof key, "a%03d", i);
        ck_assert_int_eq(ad_dict_put(&a->uns, key, sample_num(AD_F64, 1, shape, v, 3)), 0);
    }
    adx_report rep = {0};
    adx_err err;
    long n1;
    comp_case one = {ADX_COMP_LZF, 0, 1}, four = {ADX_COMP_LZF, 0, 4};
    ck_assert_msg(write_model(a, one, &rep, &err) == 0, "%s", err.detail);
    unsigned char *b1 = slurp(path, &n1);
    ck_assert_msg(write_model(a, four, &rep, &err) == 0, "%s", err.detail);
    assert_file_is(b1, n1);
    free(b1);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    double *back = malloc(20000 * sizeof *back);
    for (int i = 0; i < 150; i++) {
        char ds[40];
        snprintf(ds, sizeof ds, "uns/a%03d", i);
        hsize_t dims[1] = {20000};
        hid_t d = open_ds(f, ds, 1, dims);
        read_all(d, H5T_NATIVE_DOUBLE, back);
        ck_assert_double_eq(back[0], i);
        ck_assert_double_eq(back[19999], (19999 % 3 == 1) ? i + 0.5 : (19999 % 3 ? -i : i));
        H5Dclose(d);
    }
    free(back);
    H5Fclose(f);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(frame_columns_must_be_1d)
{
    ad_anndata *a = ad_anndata_new();
    ck_assert_int_eq(ad_frame_default_index(&a->obs, 2), 0);
    a->obs.n_rows = 2;
    static const double v[] = {1, 2, 3, 4};
    uint64_t s22[2] = {2, 2};
    ck_assert_int_eq(ad_frame_add(&a->obs, "m", sample_num(AD_F64, 2, s22, v, 4)), 0);
    sample_fit_axes(a);
    adx_report rep = {0};
    adx_err err;
    ck_assert_int_eq(write_model(a, cases[1], &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_INTERNAL);
    ck_assert_str_eq(err.items[0].pointer, "/obs/m");
    ad_anndata_free(a);
}
END_TEST

START_TEST(x_must_be_a_matrix)
{
    ad_anndata *a = ad_anndata_new();
    a->raw = calloc(1, sizeof *a->raw);
    static const char *const s[] = {"a"};
    a->raw->X = sample_strs(s, 1, 1, NULL);
    sample_fit_axes(a);
    adx_report rep = {0};
    adx_err err;
    ck_assert_int_eq(write_model(a, cases[1], &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_INTERNAL);
    ck_assert_str_eq(err.items[0].pointer, "/raw/X");
    ad_anndata_free(a);
}
END_TEST

START_TEST(io_error_and_bad_options)
{
    ad_anndata *a = ad_anndata_new();
    adx_report rep = {0};
    adx_err err;
    char bad[600];
    snprintf(bad, sizeof bad, "%s/missing-dir/x.h5ad", tmpdir);
    h5w_opts o;
    h5w_opts_default(&o);
    adx_err_init(&err);
    ck_assert_int_eq(h5w_write(a, bad, &o, NULL, &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_IO);
    o.level = 10;
    adx_err_init(&err);
    ck_assert_int_eq(h5w_write(a, path, &o, NULL, &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);
    ck_assert_int_ne(access(path, F_OK), 0);
    ad_anndata_free(a);
}
END_TEST

typedef struct prog {
    double last;
    int calls;
    bool monotonic;
    atomic_int *cancel_at_half;
} prog;

static void on_progress(void *ud, double f)
{
    prog *p = ud;
    if (f < p->last) p->monotonic = false;
    p->last = f;
    p->calls++;
    if (p->cancel_at_half && f >= 0.5) atomic_store(p->cancel_at_half, 1);
}

static ad_anndata *big_model(void)
{
    ad_anndata *a = ad_anndata_new();
    uint64_t shape[2] = {2000, 500};
    static const double v[] = {-1, 0, 1, 0.5};
    a->X = sample_num(AD_F64, 2, shape, v, 4);
    ck_assert_ptr_nonnull(a->X);
    sample_fit_axes(a);
    return a;
}

START_TEST(progress_reaches_one_and_cancel_stops)
{
    ad_anndata *a = big_model();
    adx_report rep = {0};
    adx_err err;
    h5w_opts o;
    h5w_opts_default(&o);
    prog p = {.last = 0, .monotonic = true};
    adx_ctl ctl = {.progress = on_progress, .ud = &p};
    adx_err_init(&err);
    ck_assert_int_eq(h5w_write(a, path, &o, &ctl, &rep, &err), 0);
    ck_assert(p.monotonic);
    ck_assert(p.last == 1.0);
    ck_assert_int_gt(p.calls, 10); /* per chunk, not once per file */

    atomic_int cancel = 0;
    prog q = {.last = 0, .monotonic = true, .cancel_at_half = &cancel};
    adx_ctl ctl2 = {.cancel = &cancel, .progress = on_progress, .ud = &q};
    adx_err_init(&err);
    ck_assert_int_eq(h5w_write(a, path, &o, &ctl2, &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_CANCELED);
    ck_assert_str_eq(err.items[0].pointer, "/X");
    ck_assert(q.last < 1.0);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

/* The in-memory image of a small file is charged to the request's budget
 * while it exists and given back at close; a budget that refuses it sends
 * the file to disk sooner, with the same bytes. */
START_TEST(small_file_image_is_charged)
{
    ad_anndata *a = ad_anndata_new();
    uint64_t shape[2] = {50, 20};
    static const double v[] = {-1, 0, 1, 0.5};
    a->X = sample_num(AD_F64, 2, shape, v, 4);
    ck_assert_ptr_nonnull(a->X);
    sample_fit_axes(a);
    adx_report rep = {0};
    adx_err err;
    h5w_opts o;
    h5w_opts_default(&o);
    adx_budget b;
    adx_budget_init(&b, 0);
    adx_ctl ctl = {.budget = &b};
    adx_err_init(&err);
    ck_assert_int_eq(h5w_write(a, path, &o, &ctl, &rep, &err), 0);
    ck_assert_uint_eq(adx_budget_used(&b), 0);
    /* the image (at least 64 KiB) and, while it was built, X's chunks
     * compressed before the turn (8,000 bytes) were counted */
    ck_assert_uint_ge(adx_budget_peak(&b), (64u << 10) + 8000);
    long n1;
    unsigned char *b1 = slurp(path, &n1);

    adx_budget tight;
    adx_budget_init(&tight, 1); /* refuses every image and the early compression */
    adx_ctl ctl2 = {.budget = &tight};
    adx_err_init(&err);
    ck_assert_int_eq(h5w_write(a, path, &o, &ctl2, &rep, &err), 0);
    ck_assert_uint_eq(adx_budget_used(&tight), 0);
    assert_file_is(b1, n1);
    free(b1);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(lzf_strings_go_through_pipeline)
{
    /* Enough strings for several chunks, so HDF5 runs our lzf filter on vlen
     * chunks both ways. */
    enum { N = 20000 };
    ad_strbuild b = {0};
    char tmp[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(tmp, sizeof tmp, "cell-%d-\xc3\xa9", i % 977);
        ck_assert_int_eq(ad_sb_push(&b, tmp, (size_t)n), 0);
    }
    ad_anndata *a = ad_anndata_new();
    ck_assert_int_eq(ad_sb_finish(&b, &a->obs.index, 1, NULL), 0);
    a->obs.n_rows = N;
    sample_fit_axes(a);
    adx_report rep = {0};
    adx_err err;
    ck_assert_int_eq(write_model(a, cases[3], &rep, &err), 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hsize_t dn[1] = {N};
    hid_t d = open_ds(f, "obs/_index", 1, dn);
    hid_t pl = H5Dget_create_plist(d);
    hsize_t ch;
    H5Pget_chunk(pl, 1, &ch);
    ck_assert_uint_lt(ch, N);
    H5Pclose(pl);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    char **s = calloc(N, sizeof *s);
    read_all(d, mt, s);
    for (int i = 0; i < N; i += 997) {
        snprintf(tmp, sizeof tmp, "cell-%d-\xc3\xa9", i % 977);
        ck_assert_str_eq(s[i], tmp);
    }
    hid_t sp = H5Dget_space(d);
    H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, s);
    free(s);
    H5Sclose(sp);
    H5Tclose(mt);
    H5Dclose(d);
    H5Fclose(f);
    ad_anndata_free(a);
}
END_TEST

typedef struct mt_job {
    const ad_anndata *a;
    comp_case cc;
    char path[600];
    int rc;
    adx_err err;
} mt_job;

static void *mt_run(void *arg)
{
    mt_job *j = arg;
    h5w_opts o;
    h5w_opts_default(&o);
    o.compression = j->cc.c;
    o.level = j->cc.level;
    adx_report rep = {0};
    adx_err_init(&j->err);
    j->rc = h5w_write(j->a, j->path, &o, NULL, &rep, &j->err);
    rep_free(&rep);
    return NULL;
}

/* Several workers write different files at once (the daemon's case); lzf is
 * first registered by one of them, racing the others. */
START_TEST(concurrent_writers)
{
    enum { NJ = 6 };
    ad_anndata *a = sample_model();
    ad_anndata *big = big_model();
    mt_job jobs[NJ];
    pthread_t tid[NJ];
    for (int i = 0; i < NJ; i++) {
        jobs[i] = (mt_job){.a = i % 2 ? big : a, .cc = cases[i % 5]};
        snprintf(jobs[i].path, sizeof jobs[i].path, "%s/mt%d.h5ad", tmpdir, i);
        ck_assert_int_eq(pthread_create(&tid[i], NULL, mt_run, &jobs[i]), 0);
    }
    for (int i = 0; i < NJ; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < NJ; i++) {
        ck_assert_msg(jobs[i].rc == 0, "job %d: %s", i, jobs[i].err.detail);
        hid_t f = H5Fopen(jobs[i].path, H5F_ACC_RDONLY, H5P_DEFAULT);
        ck_assert(f >= 0);
        const ad_array *x = &jobs[i].a->X->u.arr;
        hsize_t dims[2] = {x->shape[0], x->shape[1]};
        hid_t d = open_ds(f, "X", 2, dims);
        double *back = malloc(x->n * sizeof *back);
        read_all(d, H5T_NATIVE_DOUBLE, back);
        for (uint64_t k = 0; k < x->n; k++) {
            double want = ((const double *)x->data)[k];
            ck_assert((isnan(want) && isnan(back[k])) || want == back[k]);
        }
        free(back);
        H5Dclose(d);
        if (i % 2 == 0) {
            static const char *const lab[] = {"a", "b\xc3\xbc", "", "d", "\xf0\x9f\x98\x80"};
            check_strs(f, "obs/label", lab, 5);
        }
        H5Fclose(f);
        unlink(jobs[i].path);
    }
    ad_anndata_free(a);
    ad_anndata_free(big);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h5ad");
    TCase *tc = tcase_create("h5w");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, guess_chunk_matches_h5py);
    tcase_add_test(tc, gather_pads_edge_chunks);
    tcase_add_test(tc, lzf_roundtrip_and_incompressible);
    int nc = (int)(sizeof cases / sizeof cases[0]);
    tcase_add_loop_test(tc, sample_model_every_compression, 0, nc);
    tcase_add_loop_test(tc, multi_chunk_roundtrip, 0, nc);
    tcase_add_test(tc, index_name_collision_is_reported);
    tcase_add_test(tc, object_element_is_internal_error_without_leaks);
    tcase_add_test(tc, bad_key_names_the_element);
    tcase_add_test(tc, io_error_and_bad_options);
    tcase_add_test(tc, x_must_be_a_matrix);
    tcase_add_test(tc, frame_columns_must_be_1d);
    tcase_add_test(tc, output_is_reproducible);
    tcase_add_test(tc, small_write_compressed_before_its_turn);
    tcase_add_test(tc, wide_frame_column_order);
    tcase_add_test(tc, hdf5_failure_names_the_element);
    tcase_add_test(tc, progress_reaches_one_and_cancel_stops);
    tcase_add_test(tc, many_chunked_datasets_drain_in_order);
    tcase_add_test(tc, lzf_strings_go_through_pipeline);
    tcase_add_test(tc, small_file_image_is_charged);
    tcase_add_test(tc, concurrent_writers);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
