/* Unit tests for h5r_check_isolated: the helper path is argv[1], the data
 * folder argv[2]. The crashing file is a real one: a variable-length string
 * whose global-heap object claims 512 GiB, which makes libhdf5 1.10 read far
 * out of bounds. data/hg_spin.h5ad is a fuzzer finding (tests/fuzz): a
 * 27 KB file on which libhdf5 1.10 spins in H5HG_read for ever. */
#include <check.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adx_h5r.h"

#if defined(__SANITIZE_ADDRESS__)
#define ADX_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ADX_TEST_SANITIZED 1
#endif
#endif
#ifndef ADX_TEST_SANITIZED
#define ADX_TEST_SANITIZED 0
#endif

static const char *helper, *datadir;
static char dir[256], path[512];
static adx_err err;

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/h5check_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.h5ad", dir);
    adx_err_init(&err);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

static void write_file(void)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t uns = H5Gcreate2(f, "uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t n = 2;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(uns, "s", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *v[2] = {"hello", "world"};
    ck_assert_int_ge(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
    H5Gclose(uns);
    H5Fclose(f);
}

/* Global heap collection: "GCOL", version, 3 reserved, 8-byte size, then
 * objects of 2-byte index, 2-byte refcount, 4 reserved, 8-byte size. */
static void corrupt_heap_object(void)
{
    FILE *fp = fopen(path, "r+b");
    ck_assert_ptr_nonnull(fp);
    static unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, fp);
    size_t at = 0;
    for (size_t i = 0; i + 4 <= n && !at; i++)
        if (memcmp(buf + i, "GCOL", 4) == 0) at = i;
    ck_assert_uint_gt(at, 0);
    uint64_t huge = 1ull << 39;
    fseek(fp, (long)(at + 16 + 8), SEEK_SET);
    fwrite(&huge, 8, 1, fp); /* little-endian host, as the file */
    fclose(fp);
}

START_TEST(good_file)
{
    write_file();
    ck_assert_msg(h5r_check_isolated(helper, path, NULL, 0, &err) == 0, "%s", err.detail);
    ck_assert_int_eq(err.type, ADX_E_NONE);
}
END_TEST

START_TEST(error_travels_back)
{
    write_file();
    adx_limits lim;
    adx_limits_default(&lim);
    lim.max_string_bytes = 3;
    ck_assert_int_eq(h5r_check_isolated(helper, path, &lim, 0, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_str_eq(err.items[0].pointer, "/uns/s");
    ck_assert_ptr_nonnull(strstr(err.detail, "max_string_bytes"));
    adx_err_init(&err);
    unlink(path);
    ck_assert_int_eq(h5r_check_isolated(helper, path, NULL, 0, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_NOT_FOUND);
}
END_TEST

START_TEST(crash_is_contained)
{
    write_file();
    corrupt_heap_object();
    ck_assert_int_eq(h5r_check_isolated(helper, path, NULL, 0, &err), -1);
    /* signal in a normal build; a sanitizer's exit status in an ASan build */
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_msg(strstr(err.detail, "crashed") || strstr(err.detail, "safely"), "%s", err.detail);
}
END_TEST

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

START_TEST(cpu_limit)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/hg_spin.h5ad", datadir);
    double t0 = now_s();
    ck_assert_int_eq(h5r_check_isolated(helper, p, NULL, 0, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    /* RLIMIT_CPU ended it (a few CPU seconds for 27 KB), not the 60 s timeout */
    ck_assert_msg(strstr(err.detail, "CPU time"), "%s", err.detail);
    ck_assert_msg(now_s() - t0 < 55, "took %.1f s", now_s() - t0);
}
END_TEST

START_TEST(budget)
{
    adx_limits lim;
    adx_limits_default(&lim);
    lim.max_total_bytes = 64ull << 20;
    uint64_t as;
    unsigned cpu;
    h5r_check_budget(&lim, 1u << 20, 0, &as, &cpu);
    ck_assert_uint_eq(as, (64ull << 20) + H5R_CHECK_BASE_BYTES);
    /* 2 s + (64 MiB it may inflate to + 1 MiB of file) / 32 MiB per second;
     * four times that under ASan */
    ck_assert_uint_eq(cpu, ADX_TEST_SANITIZED ? 16 : 4);
    adx_limits_default(&lim);
    h5r_check_budget(&lim, 10ull << 30, 0, &as, &cpu);
    ck_assert_uint_eq(cpu, 61); /* capped by the 60 s timeout */
    h5r_check_budget(&lim, 10ull << 30, 5000, &as, &cpu);
    ck_assert_uint_eq(cpu, 6);
}
END_TEST

#if !ADX_TEST_SANITIZED
/* A chunked variable-length string dataset (no contiguous storage, so the
 * reader cannot check the lengths first) whose first element claims 2 GiB:
 * libhdf5 allocates that before it reads the heap. Under RLIMIT_AS the
 * allocation fails and the file is refused at once. ASan builds run the
 * child without RLIMIT_AS; there libhdf5 would really allocate and copy the
 * 2 GiB. */
START_TEST(memory_limit)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t uns = H5Gcreate2(f, "uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hsize_t n = 2;
    hid_t sp = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &n);
    hid_t d = H5Dcreate2(uns, "s", t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    const char *v[2] = {"hello", "world"};
    ck_assert_int_ge(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    haddr_t addr;
    hsize_t size, off[1] = {0};
    unsigned mask;
    hid_t fsp = H5Dget_space(d);
    ck_assert_int_ge(H5Dget_chunk_info(d, fsp, 0, off, &mask, &addr, &size), 0);
    H5Sclose(fsp);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(t);
    H5Gclose(uns);
    H5Fclose(f);
    FILE *fp = fopen(path, "r+b");
    ck_assert_ptr_nonnull(fp);
    uint32_t len;
    fseek(fp, (long)addr, SEEK_SET);
    ck_assert_int_eq(fread(&len, 4, 1, fp), 1);
    ck_assert_uint_eq(len, 5); /* the descriptor of "hello" */
    len = 0x7ffffff0;
    fseek(fp, (long)addr, SEEK_SET);
    fwrite(&len, 4, 1, fp);
    fclose(fp);
    adx_limits lim;
    adx_limits_default(&lim);
    lim.max_total_bytes = 64ull << 20;
    double t0 = now_s();
    ck_assert_int_eq(h5r_check_isolated(helper, path, &lim, 0, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_str_eq(err.items[0].pointer, "/uns/s");
    ck_assert_msg(now_s() - t0 < 30, "took %.1f s", now_s() - t0);
}
END_TEST
#endif

START_TEST(missing_helper)
{
    write_file();
    ck_assert_int_eq(h5r_check_isolated("/nonexistent/adx-h5check", path, NULL, 0, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_INTERNAL);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s <adx-h5check> <data folder>\n", argv[0]);
        return 2;
    }
    helper = argv[1];
    datadir = argv[2];
    Suite *s = suite_create("h5check");
    TCase *tc = tcase_create("isolated");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, good_file);
    tcase_add_test(tc, error_travels_back);
    tcase_add_test(tc, crash_is_contained);
    tcase_add_test(tc, missing_helper);
    tcase_add_test(tc, cpu_limit);
    tcase_add_test(tc, budget);
#if !ADX_TEST_SANITIZED
    tcase_add_test(tc, memory_limit);
#endif
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
