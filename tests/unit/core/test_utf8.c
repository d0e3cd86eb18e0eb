/* adx_utf8: well-formed sequences of every length decode; overlongs,
 * surrogates, code points past U+10FFFF, stray and missing continuation
 * bytes and sequences cut short are refused at their first byte; the
 * lenient decoder turns each refused byte into a code point of its own. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "adx_utf8.h"

static size_t dec(const char *s, size_t len, uint32_t *cp)
{
    return utf8_decode((const unsigned char *)s, len, cp);
}

START_TEST(decodes_every_length)
{
    uint32_t cp = 0;
    ck_assert_uint_eq(dec("A", 1, &cp), 1);
    ck_assert_uint_eq(cp, 'A');
    ck_assert_uint_eq(dec("\xc2\x80", 2, &cp), 2);
    ck_assert_uint_eq(cp, 0x80);
    ck_assert_uint_eq(dec("\xdf\xbf", 2, &cp), 2);
    ck_assert_uint_eq(cp, 0x7ff);
    ck_assert_uint_eq(dec("\xe0\xa0\x80", 3, &cp), 3);
    ck_assert_uint_eq(cp, 0x800);
    ck_assert_uint_eq(dec("\xe2\x82\xac", 3, &cp), 3); /* € */
    ck_assert_uint_eq(cp, 0x20ac);
    ck_assert_uint_eq(dec("\xed\x9f\xbf", 3, &cp), 3); /* U+D7FF, just below the surrogates */
    ck_assert_uint_eq(cp, 0xd7ff);
    ck_assert_uint_eq(dec("\xee\x80\x80", 3, &cp), 3); /* U+E000, just above */
    ck_assert_uint_eq(cp, 0xe000);
    ck_assert_uint_eq(dec("\xf0\x90\x80\x80", 4, &cp), 4);
    ck_assert_uint_eq(cp, 0x10000);
    ck_assert_uint_eq(dec("\xf4\x8f\xbf\xbf", 4, &cp), 4);
    ck_assert_uint_eq(cp, 0x10ffff);
    ck_assert_uint_eq(dec("\0", 1, &cp), 1); /* NUL is a code point, not an end */
    ck_assert_uint_eq(cp, 0);
}
END_TEST

START_TEST(refuses_overlongs)
{
    uint32_t cp = 12345;
    ck_assert_uint_eq(dec("\xc0\x80", 2, &cp), 0);         /* NUL in two bytes */
    ck_assert_uint_eq(dec("\xc1\xbf", 2, &cp), 0);         /* U+007F in two */
    ck_assert_uint_eq(dec("\xe0\x9f\xbf", 3, &cp), 0);     /* U+07FF in three */
    ck_assert_uint_eq(dec("\xe0\x80\xaf", 3, &cp), 0);     /* "/" in three */
    ck_assert_uint_eq(dec("\xf0\x8f\xbf\xbf", 4, &cp), 0); /* U+FFFF in four */
    ck_assert_uint_eq(cp, 12345);                          /* untouched on failure */
}
END_TEST

START_TEST(refuses_surrogates_and_past_max)
{
    uint32_t cp;
    ck_assert_uint_eq(dec("\xed\xa0\x80", 3, &cp), 0);     /* U+D800 */
    ck_assert_uint_eq(dec("\xed\xbf\xbf", 3, &cp), 0);     /* U+DFFF */
    ck_assert_uint_eq(dec("\xf4\x90\x80\x80", 4, &cp), 0); /* U+110000 */
    ck_assert_uint_eq(dec("\xf5\x80\x80\x80", 4, &cp), 0);
    ck_assert_uint_eq(dec("\xff", 1, &cp), 0);
    ck_assert_uint_eq(dec("\xfe", 1, &cp), 0);
}
END_TEST

START_TEST(refuses_truncated_and_stray)
{
    uint32_t cp;
    ck_assert_uint_eq(dec("\xe2\x82\xac", 2, &cp), 0); /* cut by the length */
    ck_assert_uint_eq(dec("\xe2\x82", 2, &cp), 0);
    ck_assert_uint_eq(dec("\xf0\x90\x80", 3, &cp), 0);
    ck_assert_uint_eq(dec("\xc3", 1, &cp), 0);
    ck_assert_uint_eq(dec("\xc3\x41", 2, &cp), 0); /* continuation missing */
    ck_assert_uint_eq(dec("\xe2\x28\xa1", 3, &cp), 0);
    ck_assert_uint_eq(dec("\x80", 1, &cp), 0); /* continuation without a lead */
    ck_assert_uint_eq(dec("\xbf\x80", 2, &cp), 0);
}
END_TEST

START_TEST(valid_reports_the_first_bad_byte)
{
    size_t bad = 99;
    ck_assert(utf8_valid("", 0, &bad));
    ck_assert(utf8_valid("plain ascii", 11, &bad));
    ck_assert(utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, NULL));
    ck_assert(!utf8_valid("ab\xc3", 3, &bad));
    ck_assert_uint_eq(bad, 2);
    ck_assert(!utf8_valid("\xe2\x82\xac\xed\xa0\x80z", 7, &bad));
    ck_assert_uint_eq(bad, 3);
    ck_assert(!utf8_valid("abc\xc0\xafxyz", 8, &bad));
    ck_assert_uint_eq(bad, 3);
    ck_assert(!utf8_valid("x\x80", 2, NULL));
    /* The length, not a NUL, ends the text. */
    ck_assert(utf8_valid("a\0b", 3, NULL));
    ck_assert(!utf8_valid("a\0\xff", 3, &bad));
    ck_assert_uint_eq(bad, 2);
}
END_TEST

START_TEST(lenient_takes_bad_bytes_one_by_one)
{
    const unsigned char s[] = "\xc3\xa9\xc0\x80\xed\xa0\x80\xe2\x82";
    size_t n = sizeof s - 1, i = 0, k = 0;
    uint32_t want[] = {0xe9, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0xe2, 0x82}, cp;
    while (i < n) {
        i += utf8_next_lenient(s + i, n - i, &cp);
        ck_assert_uint_lt(k, sizeof want / sizeof *want);
        ck_assert_uint_eq(cp, want[k]);
        k++;
    }
    ck_assert_uint_eq(k, sizeof want / sizeof *want);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("utf8");
    TCase *t = tcase_create("utf8");
    tcase_add_test(t, decodes_every_length);
    tcase_add_test(t, refuses_overlongs);
    tcase_add_test(t, refuses_surrogates_and_past_max);
    tcase_add_test(t, refuses_truncated_and_stray);
    tcase_add_test(t, valid_reports_the_first_bad_byte);
    tcase_add_test(t, lenient_takes_bad_bytes_one_by_one);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
