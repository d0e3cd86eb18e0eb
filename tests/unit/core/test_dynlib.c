/* Unit tests of adx_dynlib: a table is bound from a real library and its
 * calls reach it; a missing library or symbol is an error naming it in the
 * cause only, and stays one; a linked table (no soname) needs no loading. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "adx_dynlib.h"

#define Z_SYMS(X) X(zlibVersion) X(adler32)
DYNLIB_DECLARE(tz, Z_SYMS)
DYNLIB_DEFINE(tz, Z_SYMS, "libz.so.1")

START_TEST(binds_and_calls)
{
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(dynlib_load(&tz, &e), 0);
    ck_assert(!adx_err_failed(&e));
    /* The same answers as the linked zlib gives. */
    ck_assert_str_eq(DYNLIB_CALL(tz, zlibVersion)(), zlibVersion());
    const unsigned char abc[] = "abc";
    ck_assert_uint_eq(DYNLIB_CALL(tz, adler32)(1, abc, 3), adler32(1, abc, 3));
    ck_assert_int_eq(dynlib_load(&tz, NULL), 0);
}
END_TEST

/* (Each function is in one table only: its index is named after it.) */
#define MISSING_SYMS(X) X(crc32)
DYNLIB_DECLARE(tmiss, MISSING_SYMS)
DYNLIB_DEFINE(tmiss, MISSING_SYMS, "libadx-no-such-library.so.7")

START_TEST(missing_library_is_an_error_every_time)
{
    for (int i = 0; i < 2; i++) {
        adx_err e;
        adx_err_init(&e);
        ck_assert_int_eq(dynlib_load(&tmiss, &e), -1);
        ck_assert_int_eq(e.type, ADX_E_INTERNAL);
        ck_assert_ptr_null(strstr(e.detail, "libadx-no-such"));
        ck_assert_ptr_nonnull(strstr(e.cause, "libadx-no-such-library.so.7"));
    }
}
END_TEST

/* zlib has no such function: the table cannot be bound. */
int adx_test_not_in_zlib(void);
#define BAD_SYMS(X) X(inflateEnd) X(adx_test_not_in_zlib)
DYNLIB_DECLARE(tbad, BAD_SYMS)
DYNLIB_DEFINE(tbad, BAD_SYMS, "libz.so.1")

START_TEST(missing_symbol_is_an_error)
{
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(dynlib_load(&tbad, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.cause, "adx_test_not_in_zlib"));
}
END_TEST

#define LINKED_SYMS(X) X(deflateEnd)
DYNLIB_DECLARE(tlinked, LINKED_SYMS)
DYNLIB_DEFINE(tlinked, LINKED_SYMS, NULL)

START_TEST(linked_table_needs_no_loading)
{
    ck_assert_int_eq(dynlib_load(&tlinked, NULL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dynlib");
    TCase *t = tcase_create("dynlib");
    tcase_add_test(t, binds_and_calls);
    tcase_add_test(t, missing_library_is_an_error_every_time);
    tcase_add_test(t, missing_symbol_is_an_error);
    tcase_add_test(t, linked_table_needs_no_loading);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
