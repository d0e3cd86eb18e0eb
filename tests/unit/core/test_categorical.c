/* The one categorical builder: both category orders, pandas' code widths,
 * missing values, first-of-equal values, and the checks of codes and
 * categories. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"

static ad_array strs(const char *const *s, uint64_t n)
{
    ad_array a;
    ck_assert_int_eq(ad_array_from_cstrs(&a, s, n), 0);
    return a;
}

static ad_array f64s(const double *v, uint64_t n)
{
    ad_array a;
    uint64_t sh[1] = {n};
    ck_assert_int_eq(ad_array_init(&a, AD_F64, 1, sh), 0);
    memcpy(a.data, v, n * sizeof *v);
    return a;
}

static void cat_free(ad_categorical *c)
{
    ad_array_free(&c->codes);
    ad_array_free(&c->categories);
}

static void assert_codes(const ad_categorical *c, const int64_t *want, uint64_t n)
{
    ck_assert_uint_eq(c->codes.n, n);
    for (uint64_t i = 0; i < n; i++)
        ck_assert_int_eq(ad_array_get_i64(&c->codes, i), want[i]);
}

static void assert_cats(const ad_categorical *c, const char *const *want, uint64_t n)
{
    ck_assert_int_eq(c->categories.dtype, AD_STR);
    ck_assert_uint_eq(c->categories.n, n);
    for (uint64_t i = 0; i < n; i++)
        ck_assert_str_eq(ad_str_at(&c->categories, i), want[i]);
}

/* The builder's scratch (a group per row, the hash of distinct values) is
 * charged while it runs: a column of many distinct values under a small
 * budget is a 413 at the column, not memory taken past the limit; under an
 * ample one it converts, and either way every byte charged is given back. */
static ad_array many_distinct(uint64_t n)
{
    char **v = malloc(n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (uint64_t i = 0; i < n; i++)
        ck_assert_int_ge(asprintf(&v[i], "value %llu", (unsigned long long)(i % (n / 2))), 0);
    ad_array a = strs((const char *const *)v, n);
    for (uint64_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    return a;
}

START_TEST(scratch_is_charged_to_the_budget)
{
    uint64_t n = 20000; /* 10000 distinct values: tables of 32768 slots */
    ad_array a = many_distinct(n);
    adx_budget b;
    adx_budget_init(&b, n * 8 + 100000); /* the groups fit, the hash does not */
    adx_err err;
    adx_err_init(&err);
    ad_categorical c;
    ck_assert_int_eq(ad_cat_from_values(&c, &a, NULL, AD_CAT_SORTED, &b, "/obs/x", &err), -1);
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_str_eq(err.items[0].pointer, "/obs/x");
    ck_assert_ptr_nonnull(strstr(err.detail, "max_request_memory"));
    ck_assert_uint_eq(adx_budget_used(&b), 0);
    ck_assert_ptr_null(c.codes.data);

    adx_budget_init(&b, 64u << 20);
    adx_err_init(&err);
    ck_assert_int_eq(ad_cat_from_values(&c, &a, NULL, AD_CAT_SORTED, &b, "/obs/x", &err), 0);
    ck_assert_uint_eq(c.categories.n, n / 2);
    ck_assert_uint_eq(adx_budget_used(&b), 0);
    /* rows, then 20 bytes a slot at 32768 slots, then the sort's 16 a value */
    ck_assert_uint_ge(adx_budget_peak(&b), n * 8 + 32768 * 20);
    cat_free(&c);
    ad_array_free(&a);
}
END_TEST

START_TEST(sorted_order_is_code_point_order)
{
    /* pd.Series(v).astype("category"): categories sorted as Python sorts
     * str, so "B" < "a" < "a10" < "a2" < "é". */
    const char *v[] = {"a2", "é", "B", "a10", "a2", "a"};
    ad_array a = strs(v, 6);
    ad_categorical c;
    ck_assert_int_eq(ad_cat_from_values(&c, &a, NULL, AD_CAT_SORTED, NULL, NULL, NULL), 0);
    const char *cats[] = {"B", "a", "a10", "a2", "é"};
    assert_cats(&c, cats, 5);
    int64_t codes[] = {3, 4, 0, 2, 3, 1};
    assert_codes(&c, codes, 6);
    ck_assert_int_eq(c.codes.dtype, AD_I8);
    ck_assert(!c.ordered);
    cat_free(&c);
    ad_array_free(&a);
}
END_TEST

START_TEST(natural_order_is_natsorted)
{
    /* natsort.natsorted(["a2", "é", "B", "a10", "a"]) ==
     * ['B', 'a', 'a2', 'a10', 'é'] */
    const char *v[] = {"a2", "é", "B", "a10", "a2", "a"};
    ad_array a = strs(v, 6);
    ad_categorical c;
    ck_assert_int_eq(ad_cat_from_values(&c, &a, NULL, AD_CAT_NATURAL, NULL, NULL, NULL), 0);
    const char *cats[] = {"B", "a", "a2", "a10", "é"};
    assert_cats(&c, cats, 5);
    int64_t codes[] = {2, 4, 0, 3, 2, 1};
    assert_codes(&c, codes, 6);
    cat_free(&c);
    ad_array_free(&a);
}
END_TEST

START_TEST(numbers_by_value_nan_missing_first_zero_kept)
{
    double v[] = {2.5, NAN, -1.0, 2.5, -0.0, 0.0, 10.0};
    ad_array a = f64s(v, 7);
    ad_categorical c;
    ck_assert_int_eq(ad_cat_from_values(&c, &a, NULL, AD_CAT_SORTED, NULL, NULL, NULL), 0);
    ck_assert_int_eq(c.categories.dtype, AD_F64);
    ck_assert_uint_eq(c.categories.n, 4);
    const double *cat = c.categories.data;
    ck_assert(cat[0] == -1.0 && cat[1] == 0.0 && cat[2] == 2.5 && cat[3] == 10.0);
    ck_assert(signbit(cat[1])); /* the first of -0.0 and 0.0, as pandas keeps it */
    int64_t codes[] = {2, -1, 0, 2, 1, 1, 3};
    assert_codes(&c, codes, 7);
    cat_free(&c);
    ad_array_free(&a);
}
END_TEST

START_TEST(integers_keep_dtype_and_unsigned_order)
{
    ad_array a;
    uint64_t sh[1] = {4};
    ck_assert_int_eq(ad_array_init(&a, AD_U64, 1, sh), 0);
    uint64_t *d = a.data;
    d[0] = UINT64_MAX;
    d[1] = 1;
    d[2] = (uint64_t)INT64_MAX + 1;
    d[3] = 1;
    ad_categorical c;
    ck_assert_int_eq(ad_cat_from_values(&c, &a, NULL, AD_CAT_NATURAL, NULL, NULL, NULL), 0);
    ck_assert_int_eq(c.categories.dtype, AD_U64);
    const uint64_t *cat = c.categories.data;
    ck_assert_uint_eq(c.categories.n, 3);
    ck_assert(cat[0] == 1 && cat[1] == (uint64_t)INT64_MAX + 1 && cat[2] == UINT64_MAX);
    int64_t codes[] = {2, 0, 1, 0};
    assert_codes(&c, codes, 4);
    cat_free(&c);
    ad_array_free(&a);
}
END_TEST

START_TEST(missing_mask_and_all_missing)
{
    const char *v[] = {"x", "", "y", "x"};
    uint8_t miss[] = {0, 1, 0, 1};
    ad_array a = strs(v, 4);
    ad_categorical c;
    ck_assert_int_eq(ad_cat_from_values(&c, &a, miss, AD_CAT_SORTED, NULL, NULL, NULL), 0);
    const char *cats[] = {"x", "y"};
    assert_cats(&c, cats, 2);
    int64_t codes[] = {0, -1, 1, -1};
    assert_codes(&c, codes, 4);
    cat_free(&c);

    uint8_t all[] = {1, 1, 1, 1};
    ck_assert_int_eq(ad_cat_from_values(&c, &a, all, AD_CAT_SORTED, NULL, NULL, NULL), 0);
    ck_assert_uint_eq(c.categories.n, 0);
    ck_assert_int_eq(c.categories.dtype, AD_STR);
    int64_t none[] = {-1, -1, -1, -1};
    assert_codes(&c, none, 4);
    cat_free(&c);
    ad_array_free(&a);

    /* No rows at all: no categories, no codes. */
    ad_array e = strs(NULL, 0);
    ck_assert_int_eq(ad_cat_from_values(&c, &e, NULL, AD_CAT_SORTED, NULL, NULL, NULL), 0);
    ck_assert_uint_eq(c.categories.n, 0);
    ck_assert_uint_eq(c.codes.n, 0);
    cat_free(&c);
    ad_array_free(&e);
}
END_TEST

START_TEST(code_width_follows_category_count)
{
    /* 126 categories fit int8, 127 need int16 (pandas' strict "<"). */
    for (uint64_t k = 125; k <= 128; k++) {
        ad_array a;
        uint64_t sh[1] = {k};
        ck_assert_int_eq(ad_array_init(&a, AD_I32, 1, sh), 0);
        for (uint64_t i = 0; i < k; i++)
            ((int32_t *)a.data)[i] = (int32_t)(k - i);
        ad_categorical c;
        ck_assert_int_eq(ad_cat_from_values(&c, &a, NULL, AD_CAT_SORTED, NULL, NULL, NULL), 0);
        ck_assert_int_eq(c.codes.dtype, k < 127 ? AD_I8 : AD_I16);
        ck_assert_int_eq(ad_array_get_i64(&c.codes, 0), (int64_t)k - 1);
        ck_assert_int_eq(ad_array_get_i64(&c.codes, k - 1), 0);
        cat_free(&c);
        ad_array_free(&a);
    }
    /* 40000 distinct values (past one hash table growth): int32 codes. */
    uint64_t n = 40000, sh[1] = {n};
    ad_array a;
    ck_assert_int_eq(ad_array_init(&a, AD_I64, 1, sh), 0);
    for (uint64_t i = 0; i < n; i++)
        ((int64_t *)a.data)[i] = (int64_t)((i * 7919) % n);
    ad_categorical c;
    ck_assert_int_eq(ad_cat_from_values(&c, &a, NULL, AD_CAT_SORTED, NULL, NULL, NULL), 0);
    ck_assert_int_eq(c.codes.dtype, AD_I32);
    ck_assert_uint_eq(c.categories.n, n);
    for (uint64_t i = 0; i < n; i++)
        ck_assert_int_eq(ad_array_get_i64(&c.codes, i), (int64_t)((i * 7919) % n));
    cat_free(&c);
    ad_array_free(&a);

    ck_assert_int_eq(ad_codes_dtype(0), AD_I8);
    ck_assert_int_eq(ad_codes_dtype(32766), AD_I16);
    ck_assert_int_eq(ad_codes_dtype(32767), AD_I32);
    ck_assert_int_eq(ad_codes_dtype(2147483646), AD_I32);
    ck_assert_int_eq(ad_codes_dtype(2147483647), AD_I64);
}
END_TEST

START_TEST(values_must_be_1d)
{
    ad_array a;
    uint64_t sh[2] = {2, 2};
    ck_assert_int_eq(ad_array_init(&a, AD_F64, 2, sh), 0);
    ad_categorical c;
    ck_assert_int_eq(ad_cat_from_values(&c, &a, NULL, AD_CAT_SORTED, NULL, NULL, NULL), -1);
    ck_assert_ptr_null(c.codes.data);
    ad_array_free(&a);
}
END_TEST

START_TEST(from_codes_checks_and_narrows)
{
    const char *v[] = {"lo", "hi"};
    ad_array cats = strs(v, 2);
    int64_t codes[] = {1, -1, 0, 1};
    ad_categorical c;
    ad_cat_problem p;
    ck_assert_int_eq(ad_cat_from_codes(&c, &cats, codes, 4, true, &p), 0);
    ck_assert_ptr_null(cats.str); /* moved */
    ck_assert_int_eq(c.codes.dtype, AD_I8);
    assert_codes(&c, codes, 4);
    ck_assert_str_eq(ad_str_at(&c.categories, 1), "hi");
    ck_assert(c.ordered);
    cat_free(&c);

    cats = strs(v, 2);
    int64_t bad[] = {0, 2};
    ck_assert_int_eq(ad_cat_from_codes(&c, &cats, bad, 2, false, &p), 1);
    ck_assert_int_eq(p.kind, AD_CAT_CODE_RANGE);
    ck_assert_uint_eq(p.at, 1);
    ck_assert_int_eq(p.code, 2);
    ck_assert_ptr_null(cats.str); /* freed on failure too */
    cats = strs(v, 2);
    int64_t neg[] = {-2};
    ck_assert_int_eq(ad_cat_from_codes(&c, &cats, neg, 1, false, &p), 1);
    ck_assert_int_eq(p.kind, AD_CAT_CODE_RANGE);
    ck_assert_int_eq(p.code, -2);

    const char *dup[] = {"a", "b", "c", "b"};
    cats = strs(dup, 4);
    ck_assert_int_eq(ad_cat_from_codes(&c, &cats, codes, 1, false, &p), 1);
    ck_assert_int_eq(p.kind, AD_CAT_DUPLICATE);
    ck_assert_uint_eq(p.at, 3);
    ck_assert_uint_eq(p.first, 1);

    double nanv[] = {1.0, NAN};
    cats = f64s(nanv, 2);
    ck_assert_int_eq(ad_cat_from_codes(&c, &cats, codes, 1, false, &p), 1);
    ck_assert_int_eq(p.kind, AD_CAT_NAN);
    ck_assert_uint_eq(p.at, 1);

    double zeros[] = {0.0, -0.0};
    cats = f64s(zeros, 2);
    ck_assert_int_eq(ad_cat_check_categories(&cats, &p), 1);
    ck_assert_int_eq(p.kind, AD_CAT_DUPLICATE);
    ad_array_free(&cats);

    uint64_t sh[2] = {1, 2};
    ck_assert_int_eq(ad_array_init(&cats, AD_I64, 2, sh), 0);
    ck_assert_int_eq(ad_cat_check_categories(&cats, &p), 1);
    ck_assert_int_eq(p.kind, AD_CAT_NOT_1D);
    ad_array_free(&cats);
}
END_TEST

START_TEST(built_categories_pass_the_check)
{
    const char *v[] = {"b", "a", "b", "c"};
    ad_array a = strs(v, 4);
    ad_categorical c;
    ad_cat_problem p;
    ck_assert_int_eq(ad_cat_from_values(&c, &a, NULL, AD_CAT_NATURAL, NULL, NULL, NULL), 0);
    ck_assert_int_eq(ad_cat_check_categories(&c.categories, &p), 0);
    ck_assert_int_eq(p.kind, AD_CAT_OK);
    cat_free(&c);
    ad_array_free(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("categorical");
    TCase *t = tcase_create("builder");
    tcase_add_test(t, sorted_order_is_code_point_order);
    tcase_add_test(t, natural_order_is_natsorted);
    tcase_add_test(t, numbers_by_value_nan_missing_first_zero_kept);
    tcase_add_test(t, integers_keep_dtype_and_unsigned_order);
    tcase_add_test(t, missing_mask_and_all_missing);
    tcase_add_test(t, code_width_follows_category_count);
    tcase_add_test(t, values_must_be_1d);
    tcase_add_test(t, from_codes_checks_and_narrows);
    tcase_add_test(t, built_categories_pass_the_check);
    tcase_add_test(t, scratch_is_charged_to_the_budget);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
