/* Unit tests for the daemon's pure helpers: Range parsing, Content-
 * Disposition, ETag matching, constant-time token compare, ids, time. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "adx_srv_util.h"

static srv_range_result rp(const char *h, uint64_t size, uint64_t *a, uint64_t *b)
{
    *a = *b = 12345;
    return srv_range_parse(h, size, a, b);
}

START_TEST(range_accepted_forms)
{
    uint64_t a, b;
    ck_assert_int_eq(rp("bytes=0-9", 100, &a, &b), SRV_RANGE_OK);
    ck_assert_uint_eq(a, 0);
    ck_assert_uint_eq(b, 9);
    ck_assert_int_eq(rp("bytes=10-", 100, &a, &b), SRV_RANGE_OK);
    ck_assert_uint_eq(a, 10);
    ck_assert_uint_eq(b, 99);
    ck_assert_int_eq(rp("bytes=-5", 100, &a, &b), SRV_RANGE_OK);
    ck_assert_uint_eq(a, 95);
    ck_assert_uint_eq(b, 99);
    /* suffix longer than the file: the whole file */
    ck_assert_int_eq(rp("bytes=-500", 100, &a, &b), SRV_RANGE_OK);
    ck_assert_uint_eq(a, 0);
    ck_assert_uint_eq(b, 99);
    /* last beyond the end is clamped */
    ck_assert_int_eq(rp("bytes=90-1000", 100, &a, &b), SRV_RANGE_OK);
    ck_assert_uint_eq(a, 90);
    ck_assert_uint_eq(b, 99);
    ck_assert_int_eq(rp("bytes=99-99", 100, &a, &b), SRV_RANGE_OK);
    ck_assert_uint_eq(a, 99);
    ck_assert_uint_eq(b, 99);
    /* optional whitespace and case-insensitive unit */
    ck_assert_int_eq(rp(" Bytes = 1 - 2 ", 100, &a, &b), SRV_RANGE_OK);
    ck_assert_uint_eq(a, 1);
    ck_assert_uint_eq(b, 2);
}
END_TEST

START_TEST(range_unsatisfiable)
{
    uint64_t a, b;
    ck_assert_int_eq(rp("bytes=100-", 100, &a, &b), SRV_RANGE_UNSAT);
    ck_assert_int_eq(rp("bytes=100-200", 100, &a, &b), SRV_RANGE_UNSAT);
    ck_assert_int_eq(rp("bytes=-0", 100, &a, &b), SRV_RANGE_UNSAT);
    ck_assert_int_eq(rp("bytes=0-", 0, &a, &b), SRV_RANGE_UNSAT);
    ck_assert_int_eq(rp("bytes=-1", 0, &a, &b), SRV_RANGE_UNSAT);
}
END_TEST

START_TEST(range_malformed_is_ignored)
{
    static const char *bad[] = {
        NULL,
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes=1",
        "bytes=5-2",
        "items=0-1",
        "bytes 0-1",
        "bytes=0-1,2-3",
        "bytes=0-1,",
        "bytes=+1-2",
        "bytes=1--2",
        "bytes=1-2x",
        "bytes=0x1-2",
        "bytes=--1",
        "bytes=99999999999999999999-",
        "bytes=-99999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t a, b;
        ck_assert_msg(rp(bad[i], 100, &a, &b) == SRV_RANGE_NONE, "accepted '%s'",
                      bad[i] ? bad[i] : "(null)");
    }
}
END_TEST

START_TEST(disposition_ascii_and_utf8)
{
    char out[512];
    ck_assert_int_eq(srv_content_disposition("conversation.h5ad", out, sizeof out), 0);
    ck_assert_str_eq(out, "attachment; filename=\"conversation.h5ad\"");
    ck_assert_int_eq(srv_content_disposition("a \"q\" \\b.zip", out, sizeof out), 0);
    /* quotes and backslashes cannot appear in the quoted-string fallback */
    ck_assert_str_eq(out, "attachment; filename=\"a _q_ _b.zip\"");
    ck_assert_int_eq(srv_content_disposition("résumé €.h5ad", out, sizeof out), 0);
    ck_assert_str_eq(out, "attachment; filename=\"r_sum_ _.h5ad\"; "
                          "filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%82%AC.h5ad");
    ck_assert_int_eq(srv_content_disposition("tab\there", out, sizeof out), 0);
    ck_assert_str_eq(out, "attachment; filename=\"tab_here\"; filename*=UTF-8''tab%09here");
    /* too small a buffer fails instead of truncating a header */
    ck_assert_int_eq(srv_content_disposition("conversation.h5ad", out, 20), -1);
}
END_TEST

START_TEST(etag_matching)
{
    const char *e = "\"abc\"";
    ck_assert(srv_etag_match("\"abc\"", e));
    ck_assert(srv_etag_match("*", e));
    ck_assert(srv_etag_match("\"x\", \"abc\"", e));
    ck_assert(srv_etag_match("W/\"abc\"", e));
    ck_assert(srv_etag_match(" \"x\" ,W/\"abc\" ", e));
    ck_assert(!srv_etag_match("\"abcd\"", e));
    ck_assert(!srv_etag_match("\"ab\"", e));
    ck_assert(!srv_etag_match("", e));
    ck_assert(!srv_etag_match("\"abc", e));
    ck_assert(!srv_etag_match(NULL, e));
}
END_TEST

START_TEST(token_compare)
{
    ck_assert(srv_token_eq("secret", 6, "secret", 6));
    ck_assert(!srv_token_eq("secreT", 6, "secret", 6));
    ck_assert(!srv_token_eq("secret", 6, "secret2", 7));
    ck_assert(!srv_token_eq("secret2", 7, "secret", 6));
    ck_assert(!srv_token_eq("", 0, "secret", 6));
    ck_assert(!srv_token_eq("x", 1, "", 0));
    /* a prefix must not pass, in either direction */
    ck_assert(!srv_token_eq("sec", 3, "secret", 6));
}
END_TEST

START_TEST(ids_sort_in_creation_order)
{
    srv_idgen g = {0};
    uint8_t r[10];
    char prev[SRV_ID_LEN + 1] = "", cur[SRV_ID_LEN + 1];
    srand(7);
    for (int i = 0; i < 5000; i++) {
        for (int k = 0; k < 10; k++)
            r[k] = (uint8_t)rand();
        /* several ids per millisecond, and a clock step back */
        uint64_t ms = 1700000000000ull + (uint64_t)(i / 7) - (i == 3000 ? 50 : 0);
        ck_assert_int_eq(srv_id_next(&g, ms, r, cur), 0);
        ck_assert_uint_eq(strlen(cur), SRV_ID_LEN);
        ck_assert(srv_id_valid(cur));
        ck_assert_msg(strcmp(prev, cur) < 0, "%s !< %s at %d", prev, cur, i);
        memcpy(prev, cur, sizeof cur);
    }
    /* the time part is the first 10 characters and encodes the milliseconds */
    srv_idgen g2 = {0};
    memset(r, 0, sizeof r);
    srv_id_next(&g2, 1, r, cur);
    ck_assert_str_eq(cur, "00000000010000000000000000");
    srv_id_next(&g2, 1, r, cur);
    ck_assert_str_eq(cur, "00000000010000000000000001");
    /* exhausting the random part within one millisecond is reported */
    srv_idgen g3 = {0};
    memset(r, 0xff, sizeof r);
    ck_assert_int_eq(srv_id_next(&g3, 5, r, cur), 0);
    ck_assert_int_eq(srv_id_next(&g3, 5, r, cur), -1);
}
END_TEST

START_TEST(id_validation)
{
    ck_assert(srv_id_valid("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
    ck_assert(!srv_id_valid("01ARZ3NDEKTSV4RRFFQ69G5FA"));
    ck_assert(!srv_id_valid("01ARZ3NDEKTSV4RRFFQ69G5FAVV"));
    ck_assert(!srv_id_valid("01ARZ3NDEKTSV4RRFFQ69G5FAI")); /* I is not Crockford */
    ck_assert(!srv_id_valid("01arz3ndektsv4rrffq69g5fav"));
    ck_assert(!srv_id_valid("../../../../etc/passwd/xxxx"));
    ck_assert(!srv_id_valid(""));
    ck_assert(!srv_id_valid(NULL));
}
END_TEST

START_TEST(iso_time)
{
    char out[32];
    srv_time_iso(0, out, sizeof out);
    ck_assert_str_eq(out, "1970-01-01T00:00:00Z");
    srv_time_iso(1795428000999, out, sizeof out);
    ck_assert_str_eq(out, "2026-11-23T10:00:00Z");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("srv_util");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, range_accepted_forms);
    tcase_add_test(tc, range_unsatisfiable);
    tcase_add_test(tc, range_malformed_is_ignored);
    tcase_add_test(tc, disposition_ascii_and_utf8);
    tcase_add_test(tc, etag_matching);
    tcase_add_test(tc, token_compare);
    tcase_add_test(tc, ids_sort_in_creation_order);
    tcase_add_test(tc, id_validation);
    tcase_add_test(tc, iso_time);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
