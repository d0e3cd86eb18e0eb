/* parts: the multipart parser (every chunk split, CRLF edge cases, each
 * malformed body), .npy headers (every allowed dtype, versions 1-3,
 * Fortran order, byte order, strings, records, headers that lie) and
 * reading parts into the model. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "adx_parts.h"

/* ---- helpers ---- */

static int mem_fd(const void *data, size_t len)
{
    int fd = memfd_create("part", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    return fd;
}

/* A .npy file as numpy writes it: header padded with spaces to a multiple of
 * 64 and ended by '\n'. */
static uint8_t *npy(int major, const char *dict, const void *data, size_t dlen, size_t *len)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hl = dl + 1;
    hl += (64 - (pre + hl) % 64) % 64;
    uint8_t *b = malloc(pre + hl + dlen + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    b[8] = (uint8_t)(hl & 0xff);
    b[9] = (uint8_t)(hl >> 8);
    if (major != 1) b[10] = b[11] = 0;
    memset(b + pre, ' ', hl);
    memcpy(b + pre, dict, dl);
    b[pre + hl - 1] = '\n';
    if (dlen) memcpy(b + pre + hl, data, dlen);
    *len = pre + hl + dlen;
    return b;
}

/* A set holding one part "p" with these bytes. */
static void one_part(parts_set *s, const void *data, size_t len)
{
    memset(s, 0, sizeof *s);
    int fd = mem_fd(data, len);
    s->v = calloc(1, sizeof *s->v);
    s->cap = s->n = 1;
    s->v[0].name = strdup("p");
    s->v[0].fd = fd;
    s->v[0].len = len;
    s->own_fds = malloc(sizeof(int));
    s->own_fds[0] = fd;
    s->n_own = 1;
}

static jdec_part_req req_any(void)
{
    jdec_part_req r = {.name = "p", .ndim = -1};
    return r;
}

/* Read `file` as part "p" with request r; returns the element or NULL. */
static ad_elem *read_part(const void *file, size_t len, const jdec_part_req *r, adx_err *e)
{
    parts_set s;
    one_part(&s, file, len);
    adx_err_init(e);
    ad_elem *out = NULL;
    int rc = parts_read(&s, r, &out, "/adata/X/part", e);
    ck_assert_int_eq(rc == 0, out != NULL);
    parts_set_free(&s);
    return out;
}

static ad_elem *read_npy(const char *dict, const void *data, size_t dlen, adx_err *e)
{
    size_t len;
    uint8_t *f = npy(1, dict, data, dlen, &len);
    jdec_part_req r = req_any();
    ad_elem *out = read_part(f, len, &r, e);
    free(f);
    return out;
}

static void assert_err(const adx_err *e, int status, const char *needle)
{
    ck_assert_int_eq(e->status, status);
    if (!strstr(e->detail, needle)) ck_abort_msg("'%s' not in '%s'", needle, e->detail);
}

/* ---- multipart ---- */

#define B "xYz-b0undary"
static const char body1[] = "preamble text\r\n"
                            "--" B "\r\n"
                            "Content-Disposition: form-data; name=\"request\"\r\n"
                            "Content-Type: application/json\r\n"
                            "\r\n"
                            "{\"adata\": {}}\r\n"
                            "--" B "  \t\r\n"
                            "content-disposition: form-data; name=\"X\"; filename=\"x.npy\"\r\n"
                            "\r\n"
                            "ab\r\n--xYz-b0und\r\r\n-\r\n--x\r"
                            "\r\n"
                            "--" B "\r\n"
                            "Content-Disposition: form-data; name=\"empty\"\r\n"
                            "\r\n"
                            "\r\n"
                            "--" B "--\r\n"
                            "epilogue --" B "-- junk";

static void check_body1(parts_set *s)
{
    ck_assert_uint_eq(s->n, 3);
    ck_assert_str_eq(s->v[0].name, "request");
    ck_assert_str_eq(s->v[0].content_type, "application/json");
    ck_assert_uint_eq(s->v[0].len, 13);
    ck_assert(!memcmp(body1 + s->v[0].off, "{\"adata\": {}}", 13));
    ck_assert_str_eq(s->v[1].name, "X");
    ck_assert_ptr_null(s->v[1].content_type);
    static const char x[] = "ab\r\n--xYz-b0und\r\r\n-\r\n--x\r";
    ck_assert_uint_eq(s->v[1].len, sizeof x - 1);
    ck_assert(!memcmp(body1 + s->v[1].off, x, sizeof x - 1));
    ck_assert_str_eq(s->v[2].name, "empty");
    ck_assert_uint_eq(s->v[2].len, 0);
}

START_TEST(mp_every_split)
{
    size_t len = sizeof body1 - 1;
    for (size_t cut = 0; cut <= len; cut++) {
        adx_err e;
        adx_err_init(&e);
        parts_mp *p = parts_mp_new(B, NULL, &e);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(parts_mp_feed(p, body1, cut, &e), 0);
        ck_assert_int_eq(parts_mp_feed(p, body1 + cut, len - cut, &e), 0);
        parts_set s = {0};
        ck_assert_int_eq(parts_mp_finish(p, &s, 7, &e), 0);
        parts_mp_free(p);
        check_body1(&s);
        ck_assert_int_eq(s.v[0].fd, 7);
        parts_set_free(&s);
    }
}
END_TEST

START_TEST(mp_byte_by_byte_and_three_cuts)
{
    size_t len = sizeof body1 - 1;
    adx_err e;
    adx_err_init(&e);
    parts_mp *p = parts_mp_new(B, NULL, &e);
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(parts_mp_feed(p, body1 + i, 1, &e), 0);
    parts_set s = {0};
    ck_assert_int_eq(parts_mp_finish(p, &s, 3, &e), 0);
    parts_mp_free(p);
    check_body1(&s);
    parts_set_free(&s);
    /* Two cuts near every delimiter position. */
    for (size_t a = 0; a < len; a += 3)
        for (size_t b = a; b <= len && b < a + 90; b++) {
            p = parts_mp_new(B, NULL, &e);
            ck_assert_int_eq(parts_mp_feed(p, body1, a, &e), 0);
            ck_assert_int_eq(parts_mp_feed(p, body1 + a, b - a, &e), 0);
            ck_assert_int_eq(parts_mp_feed(p, body1 + b, len - b, &e), 0);
            parts_set t = {0};
            ck_assert_int_eq(parts_mp_finish(p, &t, 3, &e), 0);
            parts_mp_free(p);
            check_body1(&t);
            parts_set_free(&t);
        }
}
END_TEST

START_TEST(mp_first_delimiter_at_start)
{
    static const char b[] = "--" B "\r\nContent-Disposition: form-data; name=request\r\n\r\n{}"
                            "\r\n--" B "--";
    adx_err e;
    adx_err_init(&e);
    parts_mp *p = parts_mp_new(B, NULL, &e);
    ck_assert_int_eq(parts_mp_feed(p, b, sizeof b - 1, &e), 0);
    parts_set s = {0};
    ck_assert_int_eq(parts_mp_finish(p, &s, 0, &e), 0);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_str_eq(s.v[0].name, "request");
    ck_assert_uint_eq(s.v[0].len, 2);
    parts_mp_free(p);
    parts_set_free(&s);
}
END_TEST

static void mp_fails(const char *body, const parts_limits *pl, int status, const char *needle)
{
    adx_err e;
    adx_err_init(&e);
    parts_mp *p = parts_mp_new(B, pl, &e);
    parts_set s = {0};
    int rc = parts_mp_feed(p, body, strlen(body), &e);
    if (!rc) rc = parts_mp_finish(p, &s, 0, &e);
    ck_assert_int_eq(rc, -1);
    assert_err(&e, status, needle);
    parts_mp_free(p);
    parts_set_free(&s);
}

#define CD(n) "Content-Disposition: form-data; name=\"" n "\"\r\n"
START_TEST(mp_errors)
{
    mp_fails("no boundary here at all", NULL, 400, "never appears");
    mp_fails("--" B "\r\n" CD("X") "\r\n123", NULL, 400, "part \"X\" has no closing boundary");
    mp_fails("--" B "\r\n" CD("X") "Content-Ty", NULL, 400, "ends in the headers");
    mp_fails("--" B "\r\n" CD("X") "\r\n1\r\n--" B "\r\n" CD("X") "\r\n2\r\n--" B "--", NULL, 400,
             "part \"X\": a second part of the same name");
    mp_fails("--" B "\r\nContent-Type: a/b\r\n\r\n1\r\n--" B "--", NULL, 400,
             "part 1: no Content-Disposition");
    mp_fails("--" B "\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\n1\r\n--" B "--", NULL,
             400, "must be form-data");
    mp_fails("--" B "\r\n" CD("") "\r\n1\r\n--" B "--", NULL, 400, "name is empty");
    mp_fails("--" B "\r\n" CD("X") " folded\r\n\r\n1\r\n--" B "--", NULL, 400, "folded");
    mp_fails("--" B "\r\n" CD("X") "Content-Transfer-Encoding: base64\r\n\r\n1\r\n--" B "--", NULL,
             400, "Content-Transfer-Encoding");
    mp_fails("--" B "\r\n" CD("X") "Bad\nLine: x\r\n\r\n1\r\n--" B "--", NULL, 400, "CRLF");
    mp_fails("--" B "x\r\n" CD("X") "\r\n1\r\n--" B "--", NULL, 400, "followed by other text");
    mp_fails("--" B "\r\n" CD("X") "\r\n1\r\n--" B "-x", NULL, 400, "followed by other text");
    mp_fails("--" B "\n" CD("X") "\r\n1\r\n--" B "--", NULL, 400, "not ended by CRLF");
    parts_limits pl;
    parts_limits_default(&pl);
    pl.max_parts = 2;
    mp_fails("--" B "\r\n" CD("a") "\r\n\r\n--" B "\r\n" CD("b") "\r\n\r\n--" B
                                                                 "\r\n" CD("c") "\r\n\r\n--" B "--",
             &pl, 413, "max_parts");
    parts_limits_default(&pl);
    pl.max_header_bytes = 64;
    mp_fails("--" B "\r\n" CD("a") "X-Long: 0123456789012345678901234567890123456789\r\n\r\n--" B
                                   "--",
             &pl, 413, "max_part_header_bytes");
    /* A huge header with the default limit. */
    size_t n = 20000;
    char *big = malloc(n + 200);
    int k = snprintf(big, 200, "--" B "\r\n" CD("big") "X-Pad: ");
    memset(big + k, 'a', n);
    strcpy(big + k + n, "\r\n\r\n1\r\n--" B "--");
    mp_fails(big, NULL, 413, "part \"big\": its headers are longer than 16384");
    free(big);
}
END_TEST

START_TEST(mp_boundary_param)
{
    char b[71];
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(parts_boundary("multipart/form-data; boundary=abc", b, &e), 0);
    ck_assert_str_eq(b, "abc");
    ck_assert_int_eq(parts_boundary("Multipart/Form-Data;charset=x; boundary=\"a b:c\"", b, &e), 0);
    ck_assert_str_eq(b, "a b:c");
    ck_assert_int_eq(parts_boundary("multipart/form-data", b, &e), -1);
    assert_err(&e, 400, "without a boundary");
    adx_err_init(&e);
    ck_assert_int_eq(parts_boundary("application/json; boundary=x", b, &e), -1);
    ck_assert_int_eq(e.status, 415);
    adx_err_init(&e);
    char longb[120] = "multipart/form-data; boundary=";
    memset(longb + strlen(longb), 'a', 71);
    ck_assert_int_eq(parts_boundary(longb, b, &e), -1);
    assert_err(&e, 400, "1 to 70");
    adx_err_init(&e);
    ck_assert_int_eq(parts_boundary("multipart/form-data; boundary=a{b", b, &e), -1);
    assert_err(&e, 400, "RFC 2046");
}
END_TEST

START_TEST(mp_scan_fd_needs_request)
{
    static const char body[] = "--" B "\r\n" CD("X") "\r\nabc\r\n--" B "--\r\n";
    int fd = mem_fd(body, sizeof body - 1);
    parts_set s = {0};
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(parts_set_scan_fd(&s, fd, "multipart/form-data; boundary=" B, NULL, &e), -1);
    assert_err(&e, 400, "no part named \"request\"");
    parts_set_free(&s);
    int fd2 = mem_fd(body1, sizeof body1 - 1);
    adx_err_init(&e);
    ck_assert_int_eq(parts_set_scan_fd(&s, fd2, "multipart/form-data; boundary=" B, NULL, &e), 0);
    check_body1(&s);
    /* Nothing referenced X or empty yet. */
    ck_assert_int_eq(parts_check_unreferenced(&s, &e), -1);
    assert_err(&e, 400, "part \"X\" is not referenced");
    parts_set_free(&s);
    close(fd);
    close(fd2);
}
END_TEST

/* ---- .npy ---- */

START_TEST(npy_every_dtype)
{
    static const struct {
        const char *descr;
        ad_dtype t;
    } cases[] = {
        {"|b1", AD_BOOL}, {"|i1", AD_I8},  {"<i2", AD_I16}, {"<i4", AD_I32}, {"<i8", AD_I64},
        {"|u1", AD_U8},   {"<u2", AD_U16}, {"<u4", AD_U32}, {"<u8", AD_U64}, {"<f4", AD_F32},
        {"<f8", AD_F64},  {"=f8", AD_F64}, {"=i4", AD_I32}, {">i1", AD_I8},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t sz = ad_dtype_size(cases[c].t);
        uint8_t data[3 * 8];
        bool isb = cases[c].t == AD_BOOL;
        for (size_t i = 0; i < 3; i++) {
            double want = isb ? (double)(i > 0) : (double)i;
            uint8_t *d = data + i * sz;
            switch (cases[c].t) {
            case AD_F32:
                memcpy(d, &(float){(float)want}, 4);
                break;
            case AD_F64:
                memcpy(d, &want, 8);
                break;
            default:
                memset(d, 0, sz);
                d[0] = (uint8_t)want; /* little-endian integers */
            }
        }
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (3,), }",
                 cases[c].descr);
        adx_err e;
        ad_elem *el = read_npy(dict, data, 3 * sz, &e);
        ck_assert_msg(el, "%s: %s", cases[c].descr, e.detail);
        ck_assert_int_eq(el->kind, AD_K_ARRAY);
        ck_assert_int_eq(el->u.arr.dtype, cases[c].t);
        ck_assert_int_eq(el->u.arr.ndim, 1);
        ck_assert_uint_eq(el->u.arr.n, 3);
        for (uint64_t i = 0; i < 3; i++)
            ck_assert_double_eq(ad_array_get_f64(&el->u.arr, i),
                                (isb ? (double)(i > 0) : (double)i));
        ad_elem_free(el);
    }
}
END_TEST

START_TEST(npy_values_and_versions)
{
    double v[4] = {1.5, -0.0, 1e308, -2.25};
    for (int major = 1; major <= 3; major++) {
        size_t len;
        uint8_t *f = npy(major, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", v,
                         sizeof v, &len);
        jdec_part_req r = req_any();
        adx_err e;
        ad_elem *el = read_part(f, len, &r, &e);
        ck_assert_msg(el, "v%d: %s", major, e.detail);
        ck_assert_int_eq(el->u.arr.ndim, 2);
        ck_assert_uint_eq(el->u.arr.shape[0], 2);
        ck_assert(!memcmp(el->u.arr.data, v, sizeof v));
        ad_elem_free(el);
        free(f);
    }
    /* 0-d */
    adx_err e;
    ad_elem *el =
        read_npy("{'descr': '<i8', 'fortran_order': False, 'shape': (), }", &(int64_t){-7}, 8, &e);
    ck_assert_ptr_nonnull(el);
    ck_assert_int_eq(el->u.arr.ndim, 0);
    ck_assert_int_eq(ad_array_get_i64(&el->u.arr, 0), -7);
    ad_elem_free(el);
    /* Empty arrays and odd spacing/quotes. */
    el = read_npy("{\"shape\": (0, 5),\"fortran_order\":True,  \"descr\":\"<f4\"}", NULL, 0, &e);
    ck_assert_msg(el, "%s", e.detail);
    ck_assert_uint_eq(el->u.arr.n, 0);
    ck_assert_uint_eq(el->u.arr.shape[1], 5);
    ad_elem_free(el);
}
END_TEST

START_TEST(npy_fortran)
{
    /* a = arange(24).reshape(2, 3, 4); its Fortran-order bytes list a[i,j,k]
     * with i fastest. */
    int32_t f[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                f[i + 2 * j + 6 * k] = i * 12 + j * 4 + k;
    adx_err e;
    ad_elem *el =
        read_npy("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 4), }", f, sizeof f, &e);
    ck_assert_msg(el, "%s", e.detail);
    for (int i = 0; i < 24; i++)
        ck_assert_int_eq(((int32_t *)el->u.arr.data)[i], i);
    ad_elem_free(el);
    /* 2-d big-endian Fortran */
    uint16_t g[6];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            g[i + 2 * j] = __builtin_bswap16((uint16_t)(1000 + i * 3 + j));
    el = read_npy("{'descr': '>u2', 'fortran_order': True, 'shape': (2, 3), }", g, sizeof g, &e);
    ck_assert_msg(el, "%s", e.detail);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(((uint16_t *)el->u.arr.data)[i], 1000 + i);
    ad_elem_free(el);
}
END_TEST

START_TEST(npy_big_endian)
{
    uint64_t be[2] = {__builtin_bswap64(0x0102030405060708ull), __builtin_bswap64(42)};
    adx_err e;
    ad_elem *el =
        read_npy("{'descr': '>i8', 'fortran_order': False, 'shape': (2,), }", be, sizeof be, &e);
    ck_assert_ptr_nonnull(el);
    ck_assert_int_eq(ad_array_get_i64(&el->u.arr, 0), 0x0102030405060708ll);
    ck_assert_int_eq(ad_array_get_i64(&el->u.arr, 1), 42);
    ad_elem_free(el);
    float x = 3.5f;
    uint32_t xb;
    memcpy(&xb, &x, 4);
    xb = __builtin_bswap32(xb);
    el = read_npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", &xb, 4, &e);
    ck_assert_ptr_nonnull(el);
    ck_assert_double_eq(ad_array_get_f64(&el->u.arr, 0), 3.5);
    ad_elem_free(el);
}
END_TEST

START_TEST(npy_strings)
{
    /* np.array(["a", "héé", "", "😀x"]) is <U3: code points, NUL padded. */
    uint32_t u[4][3] = {{'a', 0, 0}, {'h', 0xE9, 0xE9}, {0, 0, 0}, {0x1F600, 'x', 0}};
    adx_err e;
    ad_elem *el =
        read_npy("{'descr': '<U3', 'fortran_order': False, 'shape': (2, 2), }", u, sizeof u, &e);
    ck_assert_msg(el, "%s", e.detail);
    ck_assert_int_eq(el->u.arr.dtype, AD_STR);
    ck_assert_int_eq(el->u.arr.ndim, 2);
    ck_assert_str_eq(ad_str_at(&el->u.arr, 0), "a");
    ck_assert_str_eq(ad_str_at(&el->u.arr, 1), "h\xc3\xa9\xc3\xa9");
    ck_assert_str_eq(ad_str_at(&el->u.arr, 2), "");
    ck_assert_str_eq(ad_str_at(&el->u.arr, 3), "\xf0\x9f\x98\x80x");
    ad_elem_free(el);
    uint32_t bad[1][2] = {{0xD800, 0}};
    el = read_npy("{'descr': '<U2', 'fortran_order': False, 'shape': (1,), }", bad, sizeof bad, &e);
    ck_assert_ptr_null(el);
    assert_err(&e, 400, "U+D800");
    uint32_t nul[1][2] = {{0, 'a'}};
    el = read_npy("{'descr': '<U2', 'fortran_order': False, 'shape': (1,), }", nul, sizeof nul, &e);
    ck_assert_ptr_null(el);
    assert_err(&e, 400, "NUL");
}
END_TEST

START_TEST(npy_records)
{
    /* dtype([('name', '<U2'), ('', '|V4'), ('score', '<f8'), ('ok', '|b1')]) */
    struct __attribute__((packed)) rec {
        uint32_t name[2];
        uint8_t pad[4];
        double score;
        uint8_t ok;
    } r[3] = {{{'a', 'b'}, {0}, 1.5, 1}, {{'c', 0}, {0}, -2, 0}, {{0, 0}, {0}, 0.25, 1}};
    size_t len;
    uint8_t *f = npy(1,
                     "{'descr': [('name', '<U2'), ('', '|V4'), ('score', '<f8'), ('ok', '|b1')], "
                     "'fortran_order': False, 'shape': (3,), }",
                     r, sizeof r, &len);
    jdec_part_req q = req_any();
    adx_err e;
    ad_elem *el = read_part(f, len, &q, &e);
    ck_assert_ptr_null(el);
    assert_err(&e, 400, "rec-array");
    q.recarray = true;
    el = read_part(f, len, &q, &e);
    ck_assert_msg(el, "%s", e.detail);
    ck_assert_int_eq(el->kind, AD_K_RECARRAY);
    ck_assert_uint_eq(el->u.rec.n, 3);
    ck_assert_uint_eq(el->u.rec.nfields, 3);
    ck_assert_str_eq(el->u.rec.names[0], "name");
    ck_assert_str_eq(el->u.rec.names[1], "score");
    ck_assert_str_eq(ad_str_at(&el->u.rec.fields[0], 0), "ab");
    ck_assert_str_eq(ad_str_at(&el->u.rec.fields[0], 1), "c");
    ck_assert_str_eq(ad_str_at(&el->u.rec.fields[0], 2), "");
    ck_assert_double_eq(ad_array_get_f64(&el->u.rec.fields[1], 1), -2);
    ck_assert_int_eq(el->u.rec.fields[2].dtype, AD_BOOL);
    ck_assert_int_eq(ad_array_get_i64(&el->u.rec.fields[2], 2), 1);
    ad_elem_free(el);
    free(f);
    /* A plain array where a rec-array is expected. */
    el = read_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", &(double){1}, 8, &e);
    ad_elem_free(el);
    f = npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", &(double){1}, 8, &len);
    el = read_part(f, len, &q, &e);
    ck_assert_ptr_null(el);
    assert_err(&e, 400, "structured dtype");
    free(f);
}
END_TEST

static void npy_refused(const char *dict, size_t dlen, int status, const char *needle)
{
    uint8_t *data = calloc(1, dlen + 1);
    adx_err e;
    ad_elem *el = read_npy(dict, data, dlen, &e);
    free(data);
    ck_assert_msg(!el, "accepted %s", dict);
    assert_err(&e, status, needle);
    ck_assert_str_eq(e.items[0].pointer, "/adata/X/part");
    ck_assert(strstr(e.detail, "part \"p\"") != NULL);
}

START_TEST(npy_refusals)
{
    npy_refused("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16, 400, "object");
    npy_refused("{'descr': [('a', '|O')], 'fortran_order': False, 'shape': (2,), }", 16, 400,
                "object");
    npy_refused("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 4, 400, "'<f2'");
    npy_refused("{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", 32, 400, "'<c16'");
    npy_refused("{'descr': '|S3', 'fortran_order': False, 'shape': (2,), }", 6, 400, "'|S3'");
    npy_refused("{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (2,), }", 16, 400, "M8[ns]");
    /* Lies: the header's shape needs more (or fewer) bytes than follow. */
    npy_refused("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 16, 400,
                "16 bytes of data, but shape [3] of 8-byte elements needs 24");
    npy_refused("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 17, 400, "needs 16");
    npy_refused("{'descr': '|u1', 'fortran_order': False, 'shape': (2000000000, 2000000000), }", 16,
                413, "max_elements");
    npy_refused("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
                16, 400, "too large");
    npy_refused("{'descr': '<f8', 'fortran_order': False}", 8, 400, "must have");
    npy_refused("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", 8, 400,
                "unexpected");
    npy_refused("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (1,), }", 8, 400,
                "True or False");
    npy_refused("{'descr': '<f8', 'fortran_order': False, 'shape': [1], }", 8, 400, "tuple");
    npy_refused("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), } x", 8, 400,
                "after the header");
    npy_refused("{'descr': [('a', '<f8', (2,))], 'fortran_order': False, 'shape': (1,), }", 16, 400,
                "sub-array");
    npy_refused("{'descr': [('a', [('b', '<f8')])], 'fortran_order': False, 'shape': (1,), }", 8,
                400, "");
    npy_refused("{'descr': [('a', '<f8'), ('a', '<i8')], 'fortran_order': False, 'shape': (1,), }",
                16, 400, "twice");
    npy_refused("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", 0, 400, "needs 2");
    /* bool bytes other than 0/1 */
    adx_err e;
    ad_elem *el =
        read_npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", "\x01\x02", 2, &e);
    ck_assert_ptr_null(el);
    assert_err(&e, 400, "bool element 1 is byte 2");
    /* Bad versions and truncated headers. */
    size_t len;
    uint8_t *f =
        npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", "12345678", 8, &len);
    jdec_part_req r = req_any();
    f[6] = 4;
    ck_assert_ptr_null(read_part(f, len, &r, &e));
    assert_err(&e, 400, "format version 4.0");
    f[6] = 1;
    ck_assert_ptr_null(read_part(f, 40, &r, &e));
    assert_err(&e, 400, "ends inside it");
    ck_assert_ptr_null(read_part(f, 8, &r, &e));
    assert_err(&e, 400, "ends inside it");
    free(f);
}
END_TEST

START_TEST(npy_parse_incremental)
{
    size_t len;
    uint8_t *f =
        npy(2, "{'descr': '<i2', 'fortran_order': False, 'shape': (5, 7), }", NULL, 0, &len);
    parts_npy h;
    size_t need = 0;
    adx_err e;
    adx_err_init(&e);
    for (size_t have = 0; have < len; have++) {
        int r = parts_npy_parse(f, have, NULL, "p", "", &h, &need, &e);
        ck_assert_int_eq(r, 1);
        ck_assert_uint_gt(need, have);
    }
    ck_assert_int_eq(parts_npy_parse(f, len, NULL, "p", "", &h, &need, &e), 0);
    ck_assert_int_eq(h.major, 2);
    ck_assert_uint_eq(h.data_off, len);
    ck_assert_int_eq(h.ndim, 2);
    ck_assert_uint_eq(h.n, 35);
    ck_assert_int_eq(h.elem.dtype, AD_I16);
    parts_npy_free(&h);
    free(f);
}
END_TEST

/* ---- raw parts and the request's dtype/shape ---- */

START_TEST(raw_parts)
{
    float v[6] = {1, 2, 3, 4, 5, 6};
    jdec_part_req r = {.name = "p", .has_dtype = true, .dtype = AD_F32, .ndim = 2, .shape = {2, 3}};
    adx_err e;
    ad_elem *el = read_part(v, sizeof v, &r, &e);
    ck_assert_msg(el, "%s", e.detail);
    ck_assert_int_eq(el->u.arr.dtype, AD_F32);
    ck_assert_uint_eq(el->u.arr.shape[1], 3);
    ck_assert(!memcmp(el->u.arr.data, v, sizeof v));
    ad_elem_free(el);
    ck_assert_ptr_null(read_part(v, sizeof v - 1, &r, &e));
    assert_err(&e, 400, "23 bytes of data, but shape [2, 3] of 4-byte elements needs 24");
    r.shape[0] = 3;
    ck_assert_ptr_null(read_part(v, sizeof v, &r, &e));
    assert_err(&e, 400, "needs 36");
    r.ndim = -1;
    ck_assert_ptr_null(read_part(v, sizeof v, &r, &e));
    assert_err(&e, 400, "needs \"dtype\" and \"shape\"");
    r.ndim = 1;
    r.shape[0] = 6;
    r.has_dtype = false;
    ck_assert_ptr_null(read_part(v, sizeof v, &r, &e));
    assert_err(&e, 400, "needs \"dtype\" and \"shape\"");
    r.has_dtype = true;
    r.recarray = true;
    ck_assert_ptr_null(read_part(v, sizeof v, &r, &e));
    assert_err(&e, 400, "rec-array");
}
END_TEST

START_TEST(json_must_agree_with_npy)
{
    size_t len;
    double v[6] = {0};
    uint8_t *f =
        npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", v, sizeof v, &len);
    adx_err e;
    jdec_part_req r = {.name = "p", .has_dtype = true, .dtype = AD_F32, .ndim = -1};
    ck_assert_ptr_null(read_part(f, len, &r, &e));
    assert_err(&e, 400, "\"dtype\" is float32 but the .npy header says float64");
    ck_assert_int_eq(e.type, ADX_E_SHAPE);
    r = (jdec_part_req){
        .name = "p", .has_dtype = true, .dtype = AD_F64, .ndim = 2, .shape = {3, 2}};
    ck_assert_ptr_null(read_part(f, len, &r, &e));
    assert_err(&e, 400, "\"shape\" is [3, 2] but the .npy header says [2, 3]");
    r.shape[0] = 2;
    r.shape[1] = 3;
    ad_elem *el = read_part(f, len, &r, &e);
    ck_assert_ptr_nonnull(el);
    ad_elem_free(el);
    free(f);
}
END_TEST

START_TEST(missing_twice_unreferenced)
{
    int32_t v[2] = {1, 2};
    parts_set s;
    one_part(&s, v, sizeof v);
    jdec_part_req r = {.name = "p", .has_dtype = true, .dtype = AD_I32, .ndim = 1, .shape = {2}};
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(parts_check_unreferenced(&s, &e), -1);
    assert_err(&e, 400, "part \"p\" is not referenced");
    adx_err_init(&e);
    ad_elem *a = NULL, *b = NULL;
    ck_assert_int_eq(parts_read(&s, &r, &a, "/adata/X/part", &e), 0);
    ck_assert_int_eq(parts_read(&s, &r, &b, "/adata/layers/l/part", &e), 0);
    ck_assert(!memcmp(a->u.arr.data, b->u.arr.data, 8));
    ck_assert_ptr_ne(a->u.arr.data, b->u.arr.data);
    ck_assert_int_eq(parts_check_unreferenced(&s, &e), 0);
    r.name = "nope";
    ad_elem *c = a;
    ck_assert_int_eq(parts_read(&s, &r, &c, "/adata/obsm/u/part", &e), -1);
    ck_assert_ptr_null(c);
    assert_err(&e, 400, "part \"nope\": referenced here but the request has no such part");
    ck_assert_str_eq(e.items[0].pointer, "/adata/obsm/u/part");
    ad_elem_free(a);
    ad_elem_free(b);
    parts_set_free(&s);
}
END_TEST

START_TEST(add_file)
{
    char path[] = "/tmp/adx_parts_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "\x01\x00\x02\x00", 4), 4);
    close(fd);
    parts_set s = {0};
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(parts_set_add_file(&s, "X", path, &e), 0);
    ck_assert_int_eq(parts_set_add_file(&s, "X", path, &e), -1);
    assert_err(&e, 400, "given twice");
    adx_err_init(&e);
    ck_assert_int_eq(parts_set_add_file(&s, "Y", "/nonexistent/x", &e), -1);
    assert_err(&e, 500, "part \"Y\"");
    adx_err_init(&e);
    jdec_part_req r = {.name = "X", .has_dtype = true, .dtype = AD_U16, .ndim = 1, .shape = {2}};
    ad_elem *el = NULL;
    ck_assert_int_eq(parts_read(&s, &r, &el, "", &e), 0);
    ck_assert_int_eq(ad_array_get_i64(&el->u.arr, 1), 2);
    ad_elem_free(el);
    parts_set_free(&s);
    unlink(path);
}
END_TEST

START_TEST(budget_charged)
{
    double v[100] = {0};
    parts_set s;
    one_part(&s, v, sizeof v);
    adx_budget b;
    adx_budget_init(&b, 700);
    s.budget = &b;
    jdec_part_req r = {.name = "p", .has_dtype = true, .dtype = AD_F64, .ndim = 1, .shape = {100}};
    adx_err e;
    adx_err_init(&e);
    ad_elem *el = NULL;
    ck_assert_int_eq(parts_read(&s, &r, &el, "/adata/X/part", &e), -1);
    assert_err(&e, 413, "max_request_memory");
    ck_assert_uint_eq(adx_budget_used(&b), 0);
    adx_budget_init(&b, 800);
    adx_err_init(&e);
    ck_assert_int_eq(parts_read(&s, &r, &el, "/adata/X/part", &e), 0);
    ck_assert_uint_eq(adx_budget_used(&b), 800);
    ad_elem_free(el);
    /* Strings: charged at the worst case, kept at their real size. */
    uint32_t u[2][4] = {{'a', 'b', 0, 0}, {0x20AC, 0, 0, 0}};
    size_t len;
    uint8_t *f =
        npy(3, "{'descr': '<U4', 'fortran_order': False, 'shape': (2,), }", u, sizeof u, &len);
    parts_set t;
    one_part(&t, f, len);
    adx_budget_init(&b, 0);
    t.budget = &b;
    jdec_part_req q = {.name = "p", .ndim = -1};
    ck_assert_int_eq(parts_read(&t, &q, &el, "", &e), 0);
    ck_assert_uint_eq(adx_budget_used(&b), 3 * 8 + 3 + 4); /* "ab\0" "€\0" */
    ad_elem_free(el);
    free(f);
    parts_set_free(&t);
    parts_set_free(&s);
}
END_TEST

/* Large C-order parts become mappings of the file (the array owns them:
 * the set and its descriptors may go first); unaligned ones, and files
 * that turned out shorter than the part, are read, never faulted past
 * their end. */
START_TEST(big_parts_mapped)
{
    enum { N = 3 * 65536 }; /* 1.5 MiB of f8 */
    double *v = malloc(N * sizeof *v);
    for (size_t i = 0; i < N; i++)
        v[i] = (double)i * 0.5;
    size_t len;
    uint8_t *f = npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (196608,), }", v,
                     N * sizeof *v, &len);
    adx_err e;
    jdec_part_req r = req_any();
    ad_elem *el = read_part(f, len, &r, &e); /* the set is freed inside */
    ck_assert_ptr_nonnull(el);
    ck_assert_ptr_nonnull(el->u.arr.map);
    ck_assert_uint_eq(el->u.arr.n, N);
    ck_assert_int_eq(memcmp(el->u.arr.data, v, N * sizeof *v), 0);
    ad_elem *copy = ad_elem_clone(el);
    ck_assert_ptr_nonnull(copy);
    ck_assert_ptr_null(copy->u.arr.map);
    ad_elem_free(el);
    ck_assert_double_eq(ad_array_get_f64(&copy->u.arr, N - 1), (N - 1) * 0.5);
    ad_elem_free(copy);

    /* The same part 3 bytes into the body: its data is not 16-byte aligned. */
    uint8_t *body = malloc(len + 3);
    memcpy(body + 3, f, len);
    parts_set s;
    one_part(&s, body, len + 3);
    s.v[0].off = 3;
    s.v[0].len = len;
    adx_err_init(&e);
    ck_assert_int_eq(parts_read(&s, &r, &el, "/adata/X/part", &e), 0);
    ck_assert_ptr_null(el->u.arr.map);
    ck_assert_int_eq(memcmp(el->u.arr.data, v, N * sizeof *v), 0);
    ad_elem_free(el);

    /* The file is cut short after the body was scanned: an I/O error. */
    ck_assert_int_eq(ftruncate(s.v[0].fd, (off_t)(len / 2)), 0);
    adx_err_init(&e);
    el = NULL;
    ck_assert_int_eq(parts_read(&s, &r, &el, "/adata/X/part", &e), -1);
    assert_err(&e, 500, "ended early");
    parts_set_free(&s);

    /* Big-endian: swapped in the private mapping, the file keeps its bytes. */
    for (size_t i = 0; i < N; i++) {
        uint64_t u;
        memcpy(&u, &v[i], 8);
        u = __builtin_bswap64(u);
        memcpy(f + (len - N * 8) + i * 8, &u, 8);
    }
    memcpy(f + 10, "{'descr': '>f8'", 15);
    one_part(&s, f, len);
    adx_err_init(&e);
    ck_assert_int_eq(parts_read(&s, &r, &el, "/adata/X/part", &e), 0);
    ck_assert_ptr_nonnull(el->u.arr.map);
    ck_assert_int_eq(memcmp(el->u.arr.data, v, N * sizeof *v), 0);
    uint8_t back[8];
    ck_assert_int_eq(pread(s.v[0].fd, back, 8, (off_t)(len - 8)), 8);
    ck_assert_int_eq(memcmp(back, f + len - 8, 8), 0);
    ad_elem_free(el);
    parts_set_free(&s);
    free(body);
    free(f);
    free(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("parts");
    TCase *t = tcase_create("all");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, mp_every_split);
    tcase_add_test(t, big_parts_mapped);
    tcase_add_test(t, mp_byte_by_byte_and_three_cuts);
    tcase_add_test(t, mp_first_delimiter_at_start);
    tcase_add_test(t, mp_errors);
    tcase_add_test(t, mp_boundary_param);
    tcase_add_test(t, mp_scan_fd_needs_request);
    tcase_add_test(t, npy_every_dtype);
    tcase_add_test(t, npy_values_and_versions);
    tcase_add_test(t, npy_fortran);
    tcase_add_test(t, npy_big_endian);
    tcase_add_test(t, npy_strings);
    tcase_add_test(t, npy_records);
    tcase_add_test(t, npy_refusals);
    tcase_add_test(t, npy_parse_incremental);
    tcase_add_test(t, raw_parts);
    tcase_add_test(t, json_must_agree_with_npy);
    tcase_add_test(t, missing_twice_unreferenced);
    tcase_add_test(t, add_file);
    tcase_add_test(t, budget_charged);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
