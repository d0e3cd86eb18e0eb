/* Unit tests for adx_src (memory, fd, gzip, limits) and adx_budget. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "adx_common.h"
#include "adx_src.h"

/* gzip-compress `in` (one member) into a new buffer. */
static unsigned char *gz(const void *in, size_t n, size_t *out_n)
{
    z_stream z = {0};
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, n) + 64;
    unsigned char *o = malloc(cap);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    z.next_out = o;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_n = cap - z.avail_out;
    deflateEnd(&z);
    return o;
}

static char *drain(adx_src *s, size_t *n, adx_err *e)
{
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) b = realloc(b, cap *= 2);
        ssize_t r = adx_src_read(s, b + len, 4096, e);
        if (r < 0) {
            free(b);
            return NULL;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    *n = len;
    return b;
}

START_TEST(mem_counts_and_limits)
{
    adx_err e;
    adx_err_init(&e);
    const char *t = "{\"a\": [1, 2, 3]}";
    adx_src *s = adx_src_open_mem(t, strlen(t), 0, &e);
    ck_assert_ptr_nonnull(s);
    size_t n;
    char *b = drain(s, &n, &e);
    ck_assert_uint_eq(n, strlen(t));
    ck_assert(!memcmp(b, t, n));
    ck_assert_uint_eq(adx_src_consumed(s), n);
    ck_assert_uint_eq(adx_src_total(s), n);
    free(b);
    adx_src_close(s);
    ck_assert_ptr_null(adx_src_open_mem(t, strlen(t), 4, &e));
    ck_assert_int_eq(e.status, 413);
    ck_assert_ptr_nonnull(strstr(e.detail, "max_body_bytes = 4"));
}
END_TEST

START_TEST(gzip_roundtrip_auto_and_bomb)
{
    size_t big = 4u << 20, zn;
    char *plain = malloc(big);
    for (size_t i = 0; i < big; i++)
        plain[i] = (char)('a' + (i * 7 + i / 13) % 26);
    unsigned char *z = gz(plain, big, &zn);
    adx_err e;
    adx_err_init(&e);
    /* detected by its magic bytes */
    adx_src *s = adx_src_auto(adx_src_open_mem(z, zn, 0, &e), big, &e);
    ck_assert_ptr_nonnull(s);
    size_t n;
    char *b = drain(s, &n, &e);
    ck_assert_msg(b != NULL, "%s", e.detail);
    ck_assert_uint_eq(n, big);
    ck_assert(!memcmp(b, plain, big));
    ck_assert_uint_eq(adx_src_consumed(s), zn);
    free(b);
    adx_src_close(s);
    /* one byte under the decompressed size: a 413 while streaming */
    adx_err_init(&e);
    s = adx_src_auto(adx_src_open_mem(z, zn, 0, &e), big - 1, &e);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(drain(s, &n, &e));
    ck_assert_int_eq(e.type, ADX_E_LIMIT);
    ck_assert_int_eq(e.status, 413);
    ck_assert_ptr_nonnull(strstr(e.detail, "max_body_bytes"));
    adx_src_close(s);
    /* plain text passes through auto untouched, peeked bytes included */
    adx_err_init(&e);
    s = adx_src_auto(adx_src_open_mem(plain, 100, 0, &e), 0, &e);
    b = drain(s, &n, &e);
    ck_assert_uint_eq(n, 100);
    ck_assert(!memcmp(b, plain, 100));
    free(b);
    adx_src_close(s);
    /* truncated and corrupt streams */
    adx_err_init(&e);
    s = adx_src_gzip(adx_src_open_mem(z, zn / 2, 0, &e), 0, &e);
    ck_assert_ptr_null(drain(s, &n, &e));
    ck_assert_int_eq(e.status, 400);
    adx_src_close(s);
    z[zn / 2] ^= 0x55;
    z[zn / 2 + 1] ^= 0x55;
    adx_err_init(&e);
    s = adx_src_gzip(adx_src_open_mem(z, zn, 0, &e), 0, &e);
    ck_assert_ptr_null(drain(s, &n, &e));
    ck_assert_int_eq(e.status, 400);
    adx_src_close(s);
    free(z);
    free(plain);
}
END_TEST

START_TEST(fd_and_path)
{
    char path[] = "src_test_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "hello", 5), 5);
    close(fd);
    adx_err e;
    adx_err_init(&e);
    adx_src *s = adx_src_open_path(path, 0, &e);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(adx_src_total(s), 5);
    char b[16];
    ck_assert_int_eq(adx_src_read_full(s, b, sizeof b, &e), 5);
    adx_src_close(s);
    ck_assert_ptr_null(adx_src_open_path(path, 4, &e));
    ck_assert_int_eq(e.status, 413);
    unlink(path);
    adx_err_init(&e);
    ck_assert_ptr_null(adx_src_open_path("/nonexistent/x", 0, &e));
    ck_assert_int_eq(e.type, ADX_E_IO);
    ck_assert_ptr_null(strstr(e.detail, "/nonexistent"));
}
END_TEST

START_TEST(budget_limits_and_peak)
{
    adx_budget b;
    adx_budget_init(&b, 1000);
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(adx_budget_charge(&b, 600, "/x", &e), 0);
    ck_assert_int_eq(adx_budget_charge(&b, 300, "/x", &e), 0);
    ck_assert_int_eq(adx_budget_charge(&b, 200, "/adata/X", &e), -1);
    ck_assert_int_eq(e.status, 413);
    ck_assert_str_eq(e.items[0].pointer, "/adata/X");
    ck_assert_ptr_nonnull(strstr(e.detail, "max_request_memory = 1000"));
    ck_assert_uint_eq(adx_budget_used(&b), 900); /* the failed charge counted nothing */
    adx_budget_release(&b, 900);
    ck_assert_uint_eq(adx_budget_used(&b), 0);
    ck_assert_uint_eq(adx_budget_peak(&b), 900);
    ck_assert_int_eq(adx_budget_charge(NULL, UINT64_MAX, "", &e), 0); /* NULL = unlimited */
}
END_TEST

int main(void)
{
    Suite *su = suite_create("src");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mem_counts_and_limits);
    tcase_add_test(tc, gzip_roundtrip_auto_and_bomb);
    tcase_add_test(tc, fd_and_path);
    tcase_add_test(tc, budget_limits_and_peak);
    suite_add_tcase(su, tc);
    SRunner *r = srunner_create(su);
    srunner_run_all(r, CK_NORMAL);
    int f = srunner_ntests_failed(r);
    srunner_free(r);
    return f ? 1 : 0;
}
