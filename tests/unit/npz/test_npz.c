/* npz writer: .npy headers byte for byte as numpy writes them, '<U' width
 * and UTF-32 encoding, member layout, compression, cancel and errors. */
#include <check.h>
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "adx_npz.h"
#include "npy.h"
#include "zipw.h"

/* Parsed back from header bytes, independently of the writer. */
typedef struct parsed {
    int major;
    size_t total;
    char dict[2048];
} parsed;

static void parse(const uint8_t *b, size_t len, parsed *p)
{
    ck_assert_uint_ge(len, 12);
    ck_assert(memcmp(b, "\x93NUMPY", 6) == 0);
    p->major = b[6];
    ck_assert_int_eq(b[7], 0);
    size_t pre, hl;
    if (p->major == 1) {
        pre = 10;
        hl = (size_t)b[8] | (size_t)b[9] << 8;
    } else {
        ck_assert(p->major == 2 || p->major == 3);
        pre = 12;
        hl = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    }
    p->total = pre + hl;
    ck_assert_uint_eq(p->total, len);
    ck_assert_uint_eq(p->total % 64, 0);
    ck_assert_int_eq(b[len - 1], '\n');
    size_t n = hl - 1;
    while (n && b[pre + n - 1] == ' ')
        n--;
    if (n < sizeof p->dict) {
        memcpy(p->dict, b + pre, n);
        p->dict[n] = '\0';
    } else {
        p->dict[0] = '\0';
    }
}

START_TEST(header_matches_numpy)
{
    /* The exact bytes np.save (numpy 1.24) writes for zeros((3, 4)). */
    static const char want_prefix[] = "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': "
                                      "False, 'shape': (3, 4), }";
    uint64_t sh[2] = {3, 4};
    size_t len;
    uint8_t *h = npz_npy_header("<f8", 2, sh, &len);
    ck_assert_ptr_nonnull(h);
    ck_assert_uint_eq(len, 128);
    ck_assert(memcmp(h, want_prefix, sizeof want_prefix - 1) == 0);
    for (size_t i = sizeof want_prefix - 1; i < len - 1; i++)
        ck_assert_int_eq(h[i], ' ');
    free(h);
}
END_TEST

START_TEST(header_shapes_and_dtypes)
{
    struct {
        ad_dtype t;
        const char *descr;
    } cases[] = {{AD_BOOL, "|b1"}, {AD_I8, "|i1"},  {AD_I16, "<i2"}, {AD_I32, "<i4"},
                 {AD_I64, "<i8"},  {AD_U8, "|u1"},  {AD_U16, "<u2"}, {AD_U32, "<u4"},
                 {AD_U64, "<u8"},  {AD_F32, "<f4"}, {AD_F64, "<f8"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_str_eq(npz_npy_descr(cases[i].t), cases[i].descr);
    ck_assert_ptr_null(npz_npy_descr(AD_STR));

    size_t len;
    parsed p;
    uint8_t *h = npz_npy_header("<U3", 0, NULL, &len);
    parse(h, len, &p);
    ck_assert_int_eq(p.major, 1);
    ck_assert_str_eq(p.dict, "{'descr': '<U3', 'fortran_order': False, 'shape': (), }");
    free(h);

    uint64_t one[1] = {7};
    h = npz_npy_header("|b1", 1, one, &len);
    parse(h, len, &p);
    ck_assert_str_eq(p.dict, "{'descr': '|b1', 'fortran_order': False, 'shape': (7,), }");
    free(h);

    uint64_t three[3] = {18446744073709551615ull, 0, 2};
    h = npz_npy_header("<i8", 3, three, &len);
    parse(h, len, &p);
    ck_assert_str_eq(p.dict, "{'descr': '<i8', 'fortran_order': False, 'shape': "
                             "(18446744073709551615, 0, 2), }");
    free(h);

    uint64_t many[AD_MAX_NDIM];
    for (int i = 0; i < AD_MAX_NDIM; i++)
        many[i] = 1;
    h = npz_npy_header("<f4", AD_MAX_NDIM, many, &len);
    ck_assert_ptr_nonnull(h);
    parse(h, len, &p);
    ck_assert_int_eq(p.major, 1);
    free(h);
    ck_assert_ptr_null(npz_npy_header("<f4", AD_MAX_NDIM + 1, many, &len));
}
END_TEST

START_TEST(header_version_2_when_long)
{
    size_t n = 70000, len;
    char *d = malloc(n);
    memset(d, 'x', n);
    uint8_t *h = npz_npy_wrap(d, n, &len);
    ck_assert_ptr_nonnull(h);
    parsed p;
    parse(h, len, &p);
    ck_assert_int_eq(p.major, 2);
    ck_assert(memcmp(h + 12, d, n) == 0);
    free(h);
    /* Just below the limit stays 1.0. */
    h = npz_npy_wrap(d, 65000, &len);
    parse(h, len, &p);
    ck_assert_int_eq(p.major, 1);
    free(h);
    free(d);
    /* Non-ASCII text (a UTF-8 field name) makes it 3.0, whatever its size. */
    const char *u = "{'descr': [('na\xc3\xafve', '<f8')], }";
    h = npz_npy_wrap(u, strlen(u), &len);
    parse(h, len, &p);
    ck_assert_int_eq(p.major, 3);
    ck_assert_str_eq(p.dict, u);
    free(h);
}
END_TEST

START_TEST(utf8_width)
{
    ck_assert_uint_eq(npz_utf8_count("h\xc3\xa9llo", 6), 5);
    ck_assert_uint_eq(npz_utf8_count("\xe6\x97\xa5\xe6\x9c\xac", 6), 2);
    ck_assert_uint_eq(npz_utf8_count("\xf0\x9f\x98\x80", 4), 1); /* outside the BMP */
    /* invalid: lone continuation, truncated lead, overlong, surrogate: one
     * replacement per offending byte */
    ck_assert_uint_eq(npz_utf8_count("\x80", 1), 1);
    ck_assert_uint_eq(npz_utf8_count("\xe6\x97", 2), 2);
    ck_assert_uint_eq(npz_utf8_count("\xc0\xaf", 2), 2);
    ck_assert_uint_eq(npz_utf8_count("\xed\xa0\x80", 3), 3);
    uint32_t cp;
    ck_assert_uint_eq(npz_utf8_next((const unsigned char *)"\xf0\x9f\x98\x80", 4, &cp), 4);
    ck_assert_uint_eq(cp, 0x1f600);
    ck_assert_uint_eq(npz_utf8_next((const unsigned char *)"\xed\xa0\x80", 3, &cp), 1);
    ck_assert_uint_eq(cp, 0xfffd);

    const char *s[] = {"", "ab", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"};
    ad_array a;
    ck_assert_int_eq(ad_array_from_cstrs(&a, s, 3), 0);
    ck_assert_uint_eq(npz_str_width(&a), 3);
    ad_array_free(&a);
    ck_assert_int_eq(ad_array_from_cstrs(&a, s, 1), 0);
    ck_assert_uint_eq(npz_str_width(&a), 1); /* numpy's minimum */
    ad_array_free(&a);
}
END_TEST

/* Everything a source yields when read `cap` bytes at a time. */
static uint8_t *drain(const ad_array *a, uint64_t width, uint64_t cap, size_t *len)
{
    size_t hlen;
    uint8_t *hdr = npz_npy_header("<U9", a->ndim, a->shape, &hlen);
    npy_src *s = npz_src_new(hdr, hlen, NULL, 0, a, width);
    ck_assert_ptr_nonnull(s);
    size_t total = hlen + a->n * width * 4, o = 0;
    uint8_t *out = malloc(total + 16), *tmp = malloc(cap);
    adx_err err;
    adx_err_init(&err);
    for (;;) {
        int64_t n = npz_src_read(s, tmp, cap, &err);
        ck_assert_int_ge(n, 0);
        if (n == 0) break;
        ck_assert_uint_le(o + (size_t)n, total);
        memcpy(out + o, tmp, (size_t)n);
        o += (size_t)n;
    }
    ck_assert_uint_eq(o, total);
    npz_src_free(s);
    free(tmp);
    *len = o;
    return out;
}

/* Reads of any size give the same bytes, including a code point split
 * between two reads. */
START_TEST(string_source_any_read_size)
{
    const char *vals[] = {"", "h\xc3\xa9", "\xf0\x9f\x98\x80x\xe6\x97\xa5", "abcdefghi", "\xff"};
    ad_array a;
    ck_assert_int_eq(ad_array_from_cstrs(&a, vals, 5), 0);
    uint64_t w = npz_str_width(&a);
    ck_assert_uint_eq(w, 9);
    size_t ref_len;
    uint8_t *ref = drain(&a, w, 1 << 20, &ref_len);
    /* spot checks against hand-encoded UTF-32LE */
    const uint8_t *body = ref + ref_len - 5 * 9 * 4;
    ck_assert(memcmp(body, "\0\0\0\0", 4) == 0);
    ck_assert(memcmp(body + 36, "h\0\0\0\xe9\0\0\0\0\0\0\0", 12) == 0);
    ck_assert(memcmp(body + 72, "\x00\xf6\x01\x00x\0\0\0\xe5\x65\0\0", 12) == 0);
    ck_assert(memcmp(body + 144, "\xfd\xff\0\0", 4) == 0);
    uint64_t caps[] = {1, 2, 3, 5, 7, 13, 64, 129};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        size_t len;
        uint8_t *got = drain(&a, w, caps[i], &len);
        ck_assert_uint_eq(len, ref_len);
        ck_assert(memcmp(got, ref, len) == 0);
        free(got);
    }
    free(ref);
    ad_array_free(&a);
}
END_TEST

/* ---- whole archives ---- */

static char tmpdir[256];

static void mk_tmp(void)
{
    /* In the test's working directory (the build tree) unless TMPDIR is set. */
    snprintf(tmpdir, sizeof tmpdir, "%s/npzXXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : ".");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmp(const char *file)
{
    unlink(file);
    rmdir(tmpdir);
}

static uint8_t *read_member(const char *path, const char *name, size_t *len, int *method)
{
    int ze;
    zip_t *z = zip_open(path, ZIP_RDONLY, &ze);
    ck_assert_ptr_nonnull(z);
    zip_stat_t st;
    ck_assert_int_eq(zip_stat(z, name, 0, &st), 0);
    if (method) *method = st.comp_method;
    uint8_t *b = malloc(st.size + 1);
    zip_file_t *f = zip_fopen(z, name, 0);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(zip_fread(f, b, st.size), (zip_int64_t)st.size);
    zip_fclose(f);
    zip_close(z);
    *len = st.size;
    return b;
}

static ad_anndata *small_model(void)
{
    ad_anndata *a = ad_anndata_new();
    a->n_obs = 2;
    a->n_vars = 1;
    uint64_t sh[2] = {2, 1};
    ad_array x;
    ck_assert_int_eq(ad_array_init(&x, AD_F64, 2, sh), 0);
    ((double *)x.data)[0] = 1.5;
    ((double *)x.data)[1] = -2;
    a->X = ad_elem_from_array(&x);
    const char *obs[] = {"\xc3\xa9t\xc3\xa9", "b"};
    ck_assert_int_eq(ad_array_from_cstrs(&a->obs.index, obs, 2), 0);
    a->obs.n_rows = 2;
    ck_assert_int_eq(ad_frame_default_index(&a->var, 1), 0);
    return a;
}

START_TEST(strings_are_utf32_fixed_width)
{
    mk_tmp();
    char path[300];
    snprintf(path, sizeof path, "%s/a.npz", tmpdir);
    ad_anndata *a = small_model();
    /* A long value crosses libzip's read chunks: 5000 two-byte code points. */
    size_t n = 5000;
    char *big = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(big + 2 * i, "\xc3\xa9", 2);
    big[2 * n] = '\0';
    const char *vals[] = {"x", big};
    ad_array s;
    ck_assert_int_eq(ad_array_from_cstrs(&s, vals, 2), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "long", ad_elem_from_array(&s)), 0);
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(npz_write(a, path, ADX_COMP_GZIP, 4, NULL, &rep, &err), 0);
    ck_assert_uint_eq(rep.n, 0);

    size_t len;
    int method;
    uint8_t *m = read_member(path, "obs/_index.npy", &len, &method);
    ck_assert_int_eq(method, ZIP_CM_DEFLATE);
    parsed p;
    ck_assert_uint_eq(len, 128 + 2 * 3 * 4);
    parse(m, 128, &p);
    ck_assert_str_eq(p.dict, "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }");
    static const uint8_t want[] = {0xe9, 0, 0, 0, 't', 0, 0, 0, 0xe9, 0, 0, 0,
                                   'b',  0, 0, 0, 0,   0, 0, 0, 0,    0, 0, 0};
    ck_assert(memcmp(m + 128, want, sizeof want) == 0);
    free(m);

    m = read_member(path, "uns/long.npy", &len, NULL);
    ck_assert_uint_eq(len, 128 + 2 * n * 4);
    ck_assert(memcmp(m + 128, "x\0\0\0\0\0\0\0", 8) == 0);
    for (size_t i = 0; i < n; i++)
        ck_assert(memcmp(m + 128 + 4 * n + 4 * i, "\xe9\0\0\0", 4) == 0);
    free(m);

    m = read_member(path, "X.npy", &len, NULL);
    ck_assert_uint_eq(len, 128 + 16);
    double xv[2];
    memcpy(xv, m + 128, 16);
    ck_assert(xv[0] == 1.5 && xv[1] == -2);
    free(m);

    m = read_member(path, "_attrs.npy", &len, NULL);
    parse(m, 128, &p); /* the JSON fits a 1.0 header */
    free(m);
    free(big);
    ad_anndata_free(a);
    rm_tmp(path);
}
END_TEST

START_TEST(stored_and_escaped)
{
    mk_tmp();
    char path[300];
    snprintf(path, sizeof path, "%s/b.npz", tmpdir);
    ad_anndata *a = small_model();
    ad_elem *d = ad_elem_new(AD_K_DICT);
    int64_t one = 1;
    ad_array v;
    ck_assert_int_eq(ad_array_init(&v, AD_I64, 0, NULL), 0);
    memcpy(v.data, &one, 8);
    ck_assert_int_eq(ad_dict_put(&d->u.dict, "../x", ad_elem_from_array(&v)), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "", d), 0);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(npz_write(a, path, ADX_COMP_NONE, 0, NULL, NULL, &err), 0);
    size_t len;
    int method;
    uint8_t *m = read_member(path, "uns/~/~3.~1x.npy", &len, &method);
    ck_assert_int_eq(method, ZIP_CM_STORE);
    ck_assert_uint_eq(len, 128 + 8);
    free(m);
    ad_anndata_free(a);
    rm_tmp(path);
}
END_TEST

/* libzip writes into the afile's temp file: no file of its own appears, and
 * until the commit the temp file is the only entry, holding the archive. */
START_TEST(one_temp_file_only)
{
    mk_tmp();
    char path[300];
    snprintf(path, sizeof path, "%s/t.npz", tmpdir);
    ad_anndata *a = small_model();
    adx_err err;
    adx_err_init(&err);
    afile_opts o = {.sha256 = true};
    afile *f = afile_begin(path, &o, &err);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(npz_write_to(a, f, ADX_COMP_GZIP, 4, NULL, NULL, &err), 0);
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    int n = 0;
    char tmpname[600] = "";
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            n++;
            snprintf(tmpname, sizeof tmpname, "%s/%s", tmpdir, de->d_name);
        }
    closedir(d);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(tmpname, afile_temp_path(f));
    struct stat st;
    ck_assert_int_eq(stat(tmpname, &st), 0);
    ck_assert_int_gt(st.st_size, 22);
    afile_result r;
    ck_assert_int_eq(afile_commit(f, &r, &err), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(r.size, (uint64_t)st.st_size);
    ck_assert_uint_eq(strlen(r.sha256), 64);
    size_t len;
    uint8_t *m = read_member(path, "X.npy", &len, NULL);
    ck_assert_uint_gt(len, 0);
    free(m);
    ad_anndata_free(a);
    rm_tmp(path);
}
END_TEST

/* An AnnData with nothing to write is still an archive a reader opens. */
START_TEST(empty_archive_is_valid)
{
    mk_tmp();
    char path[300];
    snprintf(path, sizeof path, "%s/e.zip", tmpdir);
    adx_err err;
    adx_err_init(&err);
    afile *f = afile_begin(path, NULL, &err);
    zw z;
    ck_assert_int_eq(zw_open(&z, f, true, 4, NULL, &err), 0);
    ck_assert_int_eq(zw_close(&z, &err), 0);
    ck_assert_int_eq(afile_commit(f, NULL, &err), 0);
    int ze;
    zip_t *zz = zip_open(path, ZIP_RDONLY, &ze);
    ck_assert_ptr_nonnull(zz);
    ck_assert_int_eq(zip_get_num_entries(zz, 0), 0);
    zip_close(zz);
    rm_tmp(path);
}
END_TEST

START_TEST(cancel_and_errors)
{
    mk_tmp();
    char path[300];
    snprintf(path, sizeof path, "%s/c.npz", tmpdir);
    ad_anndata *a = small_model();
    atomic_int cancel = 1;
    adx_ctl ctl = {.cancel = &cancel};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(npz_write(a, path, ADX_COMP_GZIP, 4, &ctl, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_CANCELED);
    ck_assert_int_eq(access(path, F_OK), -1);

    adx_err_init(&err);
    ck_assert_int_eq(npz_write(a, path, ADX_COMP_LZF, 4, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);

    adx_err_init(&err);
    char bad[320];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.npz", tmpdir);
    ck_assert_int_eq(npz_write(a, bad, ADX_COMP_GZIP, 4, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_IO);

    /* An unsanitized element is a bug upstream: named by its path. */
    ad_elem *o = ad_elem_new(AD_K_NULL);
    ck_assert_int_eq(ad_dict_put(&a->uns, "gone", o), 0);
    adx_err_init(&err);
    ck_assert_int_eq(npz_write(a, path, ADX_COMP_GZIP, 4, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_INTERNAL);
    ck_assert_str_eq(err.items[0].pointer, "/uns/gone");
    ck_assert_int_eq(access(path, F_OK), -1);
    ad_anndata_free(a);
    rm_tmp(path);
}
END_TEST

/* A short column next to one long value expands to n x width x 4 bytes as
 * '<U': refused before anything is written, not streamed for hours. */
START_TEST(string_expansion_limited)
{
    mk_tmp();
    char path[300];
    snprintf(path, sizeof path, "%s/l.npz", tmpdir);
    ad_anndata *a = small_model();
    size_t len = 1u << 20;
    char *big = malloc(len + 1);
    memset(big, 'a', len);
    big[len] = '\0';
    enum { N = 4000 };
    const char **vals = malloc(N * sizeof *vals);
    for (int i = 0; i < N; i++)
        vals[i] = i ? "b" : big;
    ad_array s;
    ck_assert_int_eq(ad_array_from_cstrs(&s, vals, N), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "wide", ad_elem_from_array(&s)), 0);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(npz_write(a, path, ADX_COMP_GZIP, 1, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_str_eq(err.items[0].pointer, "/uns/wide");
    ck_assert_int_eq(access(path, F_OK), -1);
    free(vals);
    free(big);
    ad_anndata_free(a);
    rm_tmp(path);
}
END_TEST

/* One long value among many short ones: padded, the member would be
 * quadratic in the request; a column whose values differ by a few times
 * is written whatever its size. */
START_TEST(string_padding_stays_linear)
{
    mk_tmp();
    char path[300];
    snprintf(path, sizeof path, "%s/p.npz", tmpdir);
    enum { N = 20000, LONG = 12500 };
    char *big = malloc(LONG + 1);
    memset(big, 'a', LONG);
    big[LONG] = '\0';
    const char **vals = malloc(N * sizeof *vals);
    for (int i = 0; i < N; i++)
        vals[i] = i == N / 2 ? big : "b";
    for (int rec = 0; rec < 2; rec++) {
        ad_anndata *a = small_model();
        ad_array s;
        ck_assert_int_eq(ad_array_from_cstrs(&s, vals, N), 0);
        if (rec) {
            ad_elem *e = ad_elem_new(AD_K_RECARRAY);
            ck_assert_ptr_nonnull(e);
            ck_assert_int_eq(ad_recarray_add(&e->u.rec, "t", &s), 0);
            ck_assert_int_eq(ad_dict_put(&a->uns, "wide", e), 0);
        } else {
            ck_assert_int_eq(ad_dict_put(&a->uns, "wide", ad_elem_from_array(&s)), 0);
        }
        adx_err err;
        adx_err_init(&err);
        ck_assert_int_eq(npz_write(a, path, ADX_COMP_NONE, 0, NULL, NULL, &err), -1);
        ck_assert_int_eq(err.type, ADX_E_LIMIT);
        ck_assert_int_eq(err.status, 413);
        ck_assert_str_eq(err.items[0].pointer, "/uns/wide");
        ck_assert_ptr_nonnull(strstr(err.detail, "h5ad or csv"));
        ck_assert_int_eq(access(path, F_OK), -1);
        ad_anndata_free(a);
    }
    /* 2,000,000 values of 10 code points and one of 200: 20x padding of
     * 88 MB of UTF-32, past the 64 MiB floor, is written */
    enum { M = 2000000 };
    char long200[201];
    memset(long200, 'x', 200);
    long200[200] = '\0';
    const char **many = malloc(M * sizeof *many);
    for (int i = 0; i < M; i++)
        many[i] = i == 7 ? long200 : "0123456789";
    ad_array s;
    ck_assert_int_eq(ad_array_from_cstrs(&s, many, M), 0);
    uint64_t padded;
    npz_pad acc = {0};
    ck_assert(npz_str_pad(&acc, &s, npz_str_width(&s), &padded));
    ck_assert_uint_eq(padded, 200ull * M);
    ck_assert_uint_eq(acc.padded, 200ull * M);
    ad_array_free(&s);
    free(many);
    /* The 64 MiB allowance is the archive's: 4,000 values and one of 1,000
     * characters pad to 4 Mi code points, fine alone and three times, a
     * fifth time over it (each member alone was within it). */
    enum { K = 4000 };
    char *mid = malloc(1001);
    memset(mid, 'm', 1000);
    mid[1000] = '\0';
    for (int i = 0; i < K; i++)
        vals[i] = i ? "b" : mid;
    for (int members = 3; members <= 5; members += 2) {
        ad_anndata *a = small_model();
        for (int m = 0; m < members; m++) {
            ad_array arr;
            ck_assert_int_eq(ad_array_from_cstrs(&arr, vals, K), 0);
            char key[8];
            snprintf(key, sizeof key, "s%d", m);
            ck_assert_int_eq(ad_dict_put(&a->uns, key, ad_elem_from_array(&arr)), 0);
        }
        adx_err err;
        adx_err_init(&err);
        int rc = npz_write(a, path, ADX_COMP_NONE, 0, NULL, NULL, &err);
        if (members == 3) {
            ck_assert_int_eq(rc, 0);
            unlink(path);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_int_eq(err.type, ADX_E_LIMIT);
            ck_assert_str_eq(err.items[0].pointer, "/uns/s4");
            ck_assert_int_eq(access(path, F_OK), -1);
        }
        ad_anndata_free(a);
    }
    free(mid);
    free(vals);
    free(big);
    rm_tmp(path);
}
END_TEST

typedef struct prog {
    double last;
    int calls;
    bool monotonic;
    atomic_int *cancel_at_first; /* set on the first report, NULL = never */
} prog;

static void on_progress(void *ud, double f)
{
    prog *p = ud;
    if (f < p->last) p->monotonic = false;
    p->last = f;
    p->calls++;
    if (p->cancel_at_first) atomic_store(p->cancel_at_first, 1);
}

static ad_anndata *many_members(void)
{
    ad_anndata *a = small_model();
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        uint64_t n = 4096;
        ad_array v;
        ck_assert_int_eq(ad_array_init(&v, AD_F64, 1, &n), 0);
        ck_assert_int_eq(ad_dict_put(&a->uns, k, ad_elem_from_array(&v)), 0);
    }
    return a;
}

START_TEST(progress_reaches_one)
{
    mk_tmp();
    char path[300];
    snprintf(path, sizeof path, "%s/p.npz", tmpdir);
    ad_anndata *a = many_members();
    prog p = {.monotonic = true};
    adx_ctl ctl = {.progress = on_progress, .ud = &p};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(npz_write(a, path, ADX_COMP_GZIP, 1, &ctl, NULL, &err), 0);
    ck_assert_int_gt(p.calls, 2);
    ck_assert(p.monotonic);
    ck_assert(p.last == 1.0);
    ad_anndata_free(a);
    rm_tmp(path);
}
END_TEST

/* Cancel raised while the archive is being written (from the progress
 * callback) stops it between members. */
START_TEST(cancel_mid_write)
{
    mk_tmp();
    char path[300];
    snprintf(path, sizeof path, "%s/m.npz", tmpdir);
    ad_anndata *a = many_members();
    atomic_int cancel = 0;
    prog p = {.monotonic = true, .cancel_at_first = &cancel};
    adx_ctl ctl = {.cancel = &cancel, .progress = on_progress, .ud = &p};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(npz_write(a, path, ADX_COMP_NONE, 0, &ctl, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_CANCELED);
    ck_assert_int_ge(p.calls, 1);
    ck_assert(p.last < 1.0);
    ck_assert_int_eq(access(path, F_OK), -1);
    ad_anndata_free(a);
    rm_tmp(path);
}
END_TEST

START_TEST(error_pointer_is_json_pointer)
{
    mk_tmp();
    char path[300];
    snprintf(path, sizeof path, "%s/e.npz", tmpdir);
    ad_anndata *a = small_model();
    ad_elem *d = ad_elem_new(AD_K_DICT);
    ck_assert_int_eq(ad_dict_put(&d->u.dict, "_x/y", ad_elem_new(AD_K_OBJECT)), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "a~b", d), 0);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(npz_write(a, path, ADX_COMP_GZIP, 4, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_INTERNAL);
    ck_assert_str_eq(err.items[0].pointer, "/uns/a~0b/_x~1y");

    /* a column name that is not UTF-8 cannot name a member: refused by path */
    ad_dict_remove_at(&a->uns, a->uns.n - 1);
    ad_array v;
    uint64_t two = 2;
    ck_assert_int_eq(ad_array_init(&v, AD_F64, 1, &two), 0);
    ck_assert_int_eq(ad_frame_add(&a->obs, "bad\xff", ad_elem_from_array(&v)), 0);
    adx_err_init(&err);
    ck_assert_int_eq(npz_write(a, path, ADX_COMP_GZIP, 4, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_str_eq(err.items[0].pointer, "/obs");
    ck_assert_ptr_nonnull(strstr(err.detail, "UTF-8"));
    ck_assert_int_eq(access(path, F_OK), -1);
    ad_anndata_free(a);
    rm_tmp(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("npz");
    TCase *tc = tcase_create("npz");
    tcase_set_timeout(tc, 60); /* sanitizer builds on a busy machine */
    tcase_add_test(tc, header_matches_numpy);
    tcase_add_test(tc, header_shapes_and_dtypes);
    tcase_add_test(tc, header_version_2_when_long);
    tcase_add_test(tc, utf8_width);
    tcase_add_test(tc, string_source_any_read_size);
    tcase_add_test(tc, strings_are_utf32_fixed_width);
    tcase_add_test(tc, stored_and_escaped);
    tcase_add_test(tc, cancel_and_errors);
    tcase_add_test(tc, one_temp_file_only);
    tcase_add_test(tc, empty_archive_is_valid);
    tcase_add_test(tc, string_expansion_limited);
    tcase_add_test(tc, string_padding_stays_linear);
    tcase_add_test(tc, progress_reaches_one);
    tcase_add_test(tc, cancel_mid_write);
    tcase_add_test(tc, error_pointer_is_json_pointer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
