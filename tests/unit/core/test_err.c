/* Unit tests of adx_err (first error wins, items, problem+json), the JSON
 * pointer builder, and the report. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "adx_err.h"
#include "adx_report.h"

START_TEST(init_is_no_error)
{
    adx_err e;
    memset(&e, 0x5a, sizeof e);
    adx_err_init(&e);
    ck_assert(!adx_err_failed(&e));
    ck_assert_int_eq(e.type, ADX_E_NONE);
    ck_assert_int_eq(e.n_items, 0);
}
END_TEST

START_TEST(first_error_wins_and_items_append)
{
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(adx_err_set(&e, ADX_E_SHAPE, "/adata/obs", "obs has %d rows, X has %d", 3, 4),
                     -1);
    ck_assert(adx_err_failed(&e));
    ck_assert_int_eq(e.type, ADX_E_SHAPE);
    ck_assert_int_eq(e.status, 400);
    ck_assert_str_eq(e.detail, "obs has 3 rows, X has 4");
    ck_assert_int_eq(e.n_items, 1);
    ck_assert_str_eq(e.items[0].pointer, "/adata/obs");
    ck_assert_str_eq(e.items[0].message, "obs has 3 rows, X has 4");
    /* a later error does not replace the first, it becomes an item */
    ck_assert_int_eq(adx_err_set(&e, ADX_E_NOMEM, NULL, "later"), -1);
    ck_assert_int_eq(e.type, ADX_E_SHAPE);
    ck_assert_int_eq(e.status, 400);
    ck_assert_str_eq(e.detail, "obs has 3 rows, X has 4");
    ck_assert_int_eq(e.n_items, 2);
    ck_assert_str_eq(e.items[1].pointer, "");
    ck_assert_str_eq(e.items[1].message, "later");
    ck_assert_int_eq(adx_err_add(&e, "/adata/X", "X is here"), -1);
    ck_assert_int_eq(e.n_items, 3);
    ck_assert_str_eq(e.items[2].pointer, "/adata/X");
    /* items stop at the cap without overflowing */
    for (int i = 0; i < 20; i++)
        adx_err_add(&e, "/x", "more %d", i);
    ck_assert_int_eq(e.n_items, ADX_ERR_MAX_ITEMS);
    ck_assert_str_eq(e.items[ADX_ERR_MAX_ITEMS - 1].message, "more 4");
    adx_err_set_status(&e, 413);
    ck_assert_int_eq(e.status, 413);
}
END_TEST

START_TEST(long_messages_are_truncated)
{
    adx_err e;
    adx_err_init(&e);
    char big[4 * ADX_ERR_MSG_MAX];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    adx_err_set(&e, ADX_E_SCHEMA, big, "%s", big);
    ck_assert_uint_eq(strlen(e.detail), ADX_ERR_MSG_MAX - 1);
    ck_assert_uint_eq(strlen(e.items[0].message), ADX_ERR_MSG_MAX - 1);
    ck_assert_uint_eq(strlen(e.items[0].pointer), ADX_ERR_PTR_MAX - 1);
}
END_TEST

START_TEST(type_table)
{
    ck_assert_str_eq(adx_errtype_slug(ADX_E_BAD_INCLUDE), "bad-include");
    ck_assert_int_eq(adx_errtype_status(ADX_E_BAD_INCLUDE), 400);
    ck_assert_int_eq(adx_errtype_status(ADX_E_LIMIT), 413);
    ck_assert_int_eq(adx_errtype_status(ADX_E_UNSUPPORTED), 415);
    ck_assert_int_eq(adx_errtype_status(ADX_E_NOT_FOUND), 404);
    ck_assert_int_eq(adx_errtype_status(ADX_E_IO), 500);
    for (int t = 0; t < ADX_E__COUNT; t++) {
        ck_assert_ptr_nonnull(adx_errtype_slug((adx_errtype)t));
        ck_assert_ptr_nonnull(adx_errtype_title((adx_errtype)t));
        ck_assert_int_ge(adx_errtype_status((adx_errtype)t), 200);
    }
    ck_assert_str_eq(adx_errtype_slug((adx_errtype)999), "internal");
    ck_assert_int_eq(adx_errtype_status((adx_errtype)999), 500);
}
END_TEST

/* The cause is for the log: appended in order, bounded, and never part of
 * the problem document a client receives. */
START_TEST(cause_is_log_only)
{
    adx_err e;
    adx_err_init(&e);
    ck_assert_str_eq(e.cause, "");
    ck_assert_int_eq(adx_err_set(&e, ADX_E_IO, "", "cannot open the file"), -1);
    ck_assert_int_eq(adx_err_cause(&e, "%s: %s", "/srv/data/x.h5ad", "Permission denied"), -1);
    adx_err_cause(&e, "while loading dataset %s", "x");
    ck_assert_str_eq(e.cause, "/srv/data/x.h5ad: Permission denied; while loading dataset x");
    ck_assert_str_eq(e.detail, "cannot open the file");
    json_t *p = adx_err_problem(&e, "/v1/datasets/x", NULL);
    char *text = json_dumps(p, JSON_COMPACT);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_null(strstr(text, "/srv/data"));
    ck_assert_ptr_null(strstr(text, "Permission"));
    ck_assert_ptr_null(json_object_get(p, "cause"));
    free(text);
    json_decref(p);
    /* Bounded like every other field, and stays a C string. */
    char big[2 * ADX_ERR_MSG_MAX];
    memset(big, 'c', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 4; i++)
        adx_err_cause(&e, "%s", big);
    ck_assert_uint_eq(strlen(e.cause), ADX_ERR_MSG_MAX - 1);
    /* Control characters become spaces: a cause is one log line. */
    adx_err_init(&e);
    adx_err_cause(&e, "time = Wed\n, errno = 28\r\t.");
    ck_assert_str_eq(e.cause, "time = Wed , errno = 28  .");
    /* A cause alone does not make an error. */
    adx_err_init(&e);
    adx_err_cause(&e, "early");
    ck_assert(!adx_err_failed(&e));
}
END_TEST

/* One table: each kind has its slug, title and status; a bare HTTP status
 * of the server maps to the kind made for it, any other keeps the caller's. */
START_TEST(kinds_for_statuses)
{
    static const struct {
        int status;
        adx_errtype kind;
        const char *slug;
    } want[] = {
        {401, ADX_E_UNAUTHORIZED, "unauthorized"},   {403, ADX_E_FORBIDDEN, "forbidden"},
        {405, ADX_E_METHOD, "method-not-allowed"},   {410, ADX_E_GONE, "gone"},
        {416, ADX_E_RANGE, "range-not-satisfiable"}, {429, ADX_E_QUEUE_FULL, "queue-full"},
        {503, ADX_E_UNAVAILABLE, "unavailable"},     {507, ADX_E_NO_SPACE, "insufficient-storage"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ck_assert_int_eq(adx_errtype_for_status(want[i].status, ADX_E_INTERNAL), want[i].kind);
        ck_assert_int_eq(adx_errtype_status(want[i].kind), want[i].status);
        ck_assert_str_eq(adx_errtype_slug(want[i].kind), want[i].slug);
    }
    ck_assert_int_eq(adx_errtype_for_status(400, ADX_E_SCHEMA), ADX_E_SCHEMA);
    ck_assert_int_eq(adx_errtype_for_status(500, ADX_E_NOMEM), ADX_E_NOMEM);
    ck_assert_int_eq(adx_errtype_for_status(404, ADX_E_NOT_FOUND), ADX_E_NOT_FOUND);
    /* Slugs are unique: a problem type names exactly one kind. */
    for (int a = 0; a < ADX_E__COUNT; a++)
        for (int b = a + 1; b < ADX_E__COUNT; b++)
            ck_assert_str_ne(adx_errtype_slug((adx_errtype)a), adx_errtype_slug((adx_errtype)b));
    adx_err e;
    adx_err_init(&e);
    adx_err_set(&e, ADX_E_GONE, "", "expired");
    json_t *p = adx_err_problem(&e, NULL, "https://x.invalid/e/");
    ck_assert_str_eq(json_string_value(json_object_get(p, "type")), "https://x.invalid/e/gone");
    ck_assert_str_eq(json_string_value(json_object_get(p, "title")), "Result expired");
    ck_assert_int_eq(json_integer_value(json_object_get(p, "status")), 410);
    json_decref(p);
}
END_TEST

START_TEST(problem_json_fields)
{
    adx_err e;
    adx_err_init(&e);
    adx_err_set(&e, ADX_E_BAD_INCLUDE, "/include/2", "\"X/a\": X is always kept");
    adx_err_add(&e, "/include/3", "second");
    json_t *p = adx_err_problem(&e, "/v1/exports", NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(json_string_value(json_object_get(p, "type")),
                     "https://anndata-exportd.invalid/errors/bad-include");
    ck_assert_str_eq(json_string_value(json_object_get(p, "title")), "Invalid include path");
    ck_assert_int_eq(json_integer_value(json_object_get(p, "status")), 400);
    ck_assert_str_eq(json_string_value(json_object_get(p, "detail")), "\"X/a\": X is always kept");
    ck_assert_str_eq(json_string_value(json_object_get(p, "instance")), "/v1/exports");
    json_t *items = json_object_get(p, "errors");
    ck_assert(json_is_array(items));
    ck_assert_uint_eq(json_array_size(items), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "pointer")),
                     "/include/3");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "message")),
                     "second");
    json_decref(p);
    /* custom base, no instance */
    p = adx_err_problem(&e, NULL, "urn:x:");
    ck_assert_str_eq(json_string_value(json_object_get(p, "type")), "urn:x:bad-include");
    ck_assert_ptr_null(json_object_get(p, "instance"));
    json_decref(p);
    /* an error-less struct still yields a valid 500 problem */
    adx_err none;
    adx_err_init(&none);
    p = adx_err_problem(&none, NULL, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "status")), 500);
    ck_assert_uint_eq(json_array_size(json_object_get(p, "errors")), 0);
    json_decref(p);
}
END_TEST

START_TEST(pointer_escaping)
{
    adx_ptr p;
    adx_ptr_init(&p, "/adata");
    size_t m1 = adx_ptr_key(&p, "uns");
    size_t m2 = adx_ptr_key(&p, "a/b~c");
    ck_assert_str_eq(adx_ptr_str(&p), "/adata/uns/a~1b~0c");
    size_t m3 = adx_ptr_idx(&p, 42);
    ck_assert_str_eq(adx_ptr_str(&p), "/adata/uns/a~1b~0c/42");
    adx_ptr_pop(&p, m3);
    ck_assert_str_eq(adx_ptr_str(&p), "/adata/uns/a~1b~0c");
    adx_ptr_pop(&p, m2);
    adx_ptr_key(&p, "~01");
    ck_assert_str_eq(adx_ptr_str(&p), "/adata/uns/~001");
    adx_ptr_pop(&p, m1);
    ck_assert_str_eq(adx_ptr_str(&p), "/adata");
    adx_ptr_key(&p, "");
    ck_assert_str_eq(adx_ptr_str(&p), "/adata/"); /* "" is a valid key */
    adx_ptr_init(&p, NULL);
    ck_assert_str_eq(adx_ptr_str(&p), "");
    adx_ptr_key(&p, "\xc3\xa9");
    ck_assert_str_eq(adx_ptr_str(&p), "/\xc3\xa9");

    char buf[32] = "/obs";
    adx_ptr_append_key(buf, sizeof buf, "x/y");
    ck_assert_str_eq(buf, "/obs/x~1y");
}
END_TEST

START_TEST(pointer_truncation_is_bounded)
{
    adx_ptr p;
    adx_ptr_init(&p, NULL);
    char key[300];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    adx_ptr_key(&p, key);
    adx_ptr_key(&p, key); /* 600 bytes do not fit in ADX_ERR_PTR_MAX */
    size_t len = strlen(adx_ptr_str(&p));
    ck_assert_uint_lt(len, ADX_ERR_PTR_MAX);
    ck_assert_uint_eq(p.len, len);
    /* (the "…" marker itself is checked in test_err_ptr_marker.c) */
    /* deeper pushes keep it terminated and bounded */
    for (int i = 0; i < 10; i++)
        adx_ptr_idx(&p, 123456789);
    ck_assert_uint_lt(strlen(adx_ptr_str(&p)), ADX_ERR_PTR_MAX);
    /* an escape that would not fit is not split in half */
    char small[8] = "/ab";
    adx_ptr_append_key(small, sizeof small, "c~~~");
    ck_assert_uint_lt(strlen(small), sizeof small);
    ck_assert_ptr_null(strstr(small, "~0~"));
}
END_TEST

START_TEST(report_entries_and_json)
{
    adx_report r = {0};
    ck_assert_int_eq(rep_add(&r, "/obs/k", REP_NULL_TO_EMPTY, 3, NULL), 0);
    ck_assert_int_eq(rep_add(&r, "/include/0", REP_INCLUDE_NO_MATCH, 0, "obsm/nope"), 0);
    for (int i = 0; i < 30; i++)
        ck_assert_int_eq(rep_add(&r, "/uns/x", REP_DROPPED_NULL, 1, NULL), 0);
    ck_assert_uint_eq(r.n, 32);
    json_t *j = rep_to_json(&r);
    ck_assert_uint_eq(json_array_size(j), 32);
    json_t *e0 = json_array_get(j, 0);
    ck_assert_str_eq(json_string_value(json_object_get(e0, "path")), "/obs/k");
    ck_assert_str_eq(json_string_value(json_object_get(e0, "action")), "null_to_empty_string");
    ck_assert_int_eq(json_integer_value(json_object_get(e0, "count")), 3);
    ck_assert_ptr_null(json_object_get(e0, "detail"));
    json_t *e1 = json_array_get(j, 1);
    ck_assert_str_eq(json_string_value(json_object_get(e1, "detail")), "obsm/nope");
    ck_assert_str_eq(json_string_value(json_object_get(e1, "action")), "include_matched_nothing");
    json_decref(j);
    rep_free(&r);
    ck_assert_uint_eq(r.n, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("err");
    TCase *t = tcase_create("err");
    tcase_add_test(t, init_is_no_error);
    tcase_add_test(t, first_error_wins_and_items_append);
    tcase_add_test(t, long_messages_are_truncated);
    tcase_add_test(t, type_table);
    tcase_add_test(t, problem_json_fields);
    tcase_add_test(t, cause_is_log_only);
    tcase_add_test(t, kinds_for_statuses);
    tcase_add_test(t, pointer_escaping);
    tcase_add_test(t, pointer_truncation_is_bounded);
    tcase_add_test(t, report_entries_and_json);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
