/* Unit tests for the Polis CSV reader (src/polis/polis_csv.c) and typing. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "polis_csv.h"

static adx_limits lim;
static adx_err err;

static void setup(void)
{
    adx_limits_default(&lim);
    adx_err_init(&err);
}

static int parse(const char *s, pcsv_table *t)
{
    adx_err_init(&err);
    return pcsv_parse(s, strlen(s), "t.csv", &lim, t, &err);
}

START_TEST(plain_and_quoted)
{
    pcsv_table t;
    ck_assert_int_eq(parse("a,b,c\n1,\"x, y\",\"say \"\"hi\"\"\"\n", &t), 0);
    ck_assert_uint_eq(t.ncols, 3);
    ck_assert_uint_eq(t.nrows, 1);
    ck_assert_str_eq(t.header[1], "b");
    ck_assert_str_eq(pcsv_cell(&t, 0, 0), "1");
    ck_assert_str_eq(pcsv_cell(&t, 0, 1), "x, y");
    ck_assert_str_eq(pcsv_cell(&t, 0, 2), "say \"hi\"");
    pcsv_free(&t);
}
END_TEST

START_TEST(embedded_newlines_and_record_numbers)
{
    pcsv_table t;
    ck_assert_int_eq(parse("a,b\n\"line1\nline2\r\nline3\",2\n3,4\n", &t), 0);
    ck_assert_uint_eq(t.nrows, 2);
    ck_assert_str_eq(pcsv_cell(&t, 0, 0), "line1\nline2\r\nline3");
    ck_assert_uint_eq(t.recno[0], 2);
    ck_assert_uint_eq(t.recno[1], 5); /* the line it starts on, after a 3-line field */
    ck_assert_str_eq(pcsv_cell(&t, 1, 1), "4");
    pcsv_free(&t);
}
END_TEST

START_TEST(crlf_bom_no_final_newline)
{
    pcsv_table t;
    ck_assert_int_eq(parse("\xEF\xBB\xBFid,v\r\n1,a\r\n2,b", &t), 0);
    ck_assert_str_eq(t.header[0], "id"); /* BOM is not part of the first name */
    ck_assert_uint_eq(t.nrows, 2);
    ck_assert_str_eq(pcsv_cell(&t, 0, 1), "a"); /* no stray \r */
    ck_assert_str_eq(pcsv_cell(&t, 1, 1), "b");
    pcsv_free(&t);
    ck_assert_int_eq(parse("id,v\r1,a\r", &t), 0); /* old Mac line ends */
    ck_assert_uint_eq(t.nrows, 1);
    ck_assert_str_eq(pcsv_cell(&t, 0, 1), "a");
    pcsv_free(&t);
}
END_TEST

START_TEST(empty_fields_and_blank_lines)
{
    pcsv_table t;
    ck_assert_int_eq(parse("a,b,c\n,,\n\n1,,\"\"\n\r\n", &t), 0);
    ck_assert_uint_eq(t.nrows, 2);
    ck_assert_str_eq(pcsv_cell(&t, 0, 0), "");
    ck_assert_str_eq(pcsv_cell(&t, 0, 2), "");
    ck_assert_str_eq(pcsv_cell(&t, 1, 0), "1");
    ck_assert_str_eq(pcsv_cell(&t, 1, 2), "");
    ck_assert_uint_eq(t.recno[1], 4); /* the blank line still counts as a line */
    pcsv_free(&t);
    ck_assert_int_eq(parse("a,b\n1,\n", &t), 0); /* trailing comma = empty last field */
    ck_assert_uint_eq(t.nrows, 1);
    ck_assert_str_eq(pcsv_cell(&t, 0, 1), "");
    pcsv_free(&t);
    ck_assert_int_eq(parse("a,b\n", &t), 0); /* header only */
    ck_assert_uint_eq(t.nrows, 0);
    ck_assert_int_eq(pcsv_col(&t, "b"), 1);
    ck_assert_int_eq(pcsv_col(&t, "z"), -1);
    pcsv_free(&t);
}
END_TEST

START_TEST(malformed)
{
    pcsv_table t;
    ck_assert_int_eq(parse("a,b\n1,2\n3\n", &t), -1);
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_str_eq(err.items[0].pointer, "/t.csv/3");
    ck_assert_ptr_nonnull(strstr(err.detail, "1 fields"));
    ck_assert_int_eq(parse("a,b\n1,2,3\n", &t), -1);
    ck_assert_str_eq(err.items[0].pointer, "/t.csv/2");
    ck_assert_int_eq(parse("a,b\n1,\"open\n", &t), -1);
    ck_assert_ptr_nonnull(strstr(err.detail, "unterminated"));
    ck_assert_int_eq(parse("a,b\n\"x\"y,2\n", &t), -1);
    ck_assert_ptr_nonnull(strstr(err.detail, "closing quote"));
    ck_assert_int_eq(parse("", &t), -1);
    ck_assert_int_eq(parse("a,,c\n", &t), -1);
    ck_assert_ptr_nonnull(strstr(err.detail, "empty column name"));
    ck_assert_int_eq(parse("a,a\n", &t), -1);
    ck_assert_ptr_nonnull(strstr(err.detail, "duplicate"));
    ck_assert_int_eq(parse("a\n\xC3\x28\n", &t), -1);
    ck_assert_ptr_nonnull(strstr(err.detail, "UTF-8"));
    /* the table is zeroed on failure, so freeing it again is harmless */
    pcsv_free(&t);
}
END_TEST

START_TEST(limits)
{
    pcsv_table t;
    lim.max_string_bytes = 4;
    ck_assert_int_eq(parse("a\n12345\n", &t), -1);
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    lim.max_string_bytes = 1024;
    lim.max_elements = 5;
    ck_assert_int_eq(parse("a,b\n1,2\n3,4\n", &t), -1);
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    lim.max_elements = 6;
    ck_assert_int_eq(parse("a,b\n1,2\n3,4\n", &t), 0);
    pcsv_free(&t);
}
END_TEST

START_TEST(types)
{
    pcsv_table t;
    ck_assert_int_eq(parse("i,f,b,s,e,gi,gs,nan\n"
                           "1,1.5,True,x,,1,x,nan\n"
                           "-2,3,false,7,,,,1e3\n",
                           &t),
                     0);
    bool empty;
    ck_assert_int_eq(pcsv_column_type(&t, 0, &empty), PCSV_INT);
    ck_assert(!empty);
    ck_assert_int_eq(pcsv_column_type(&t, 1, &empty), PCSV_FLOAT);
    ck_assert_int_eq(pcsv_column_type(&t, 2, &empty), PCSV_BOOL);
    ck_assert_int_eq(pcsv_column_type(&t, 3, &empty), PCSV_TEXT);
    ck_assert_int_eq(pcsv_column_type(&t, 4, &empty), PCSV_EMPTY);
    ck_assert_int_eq(pcsv_column_type(&t, 5, &empty), PCSV_INT);
    ck_assert(empty);
    ck_assert_int_eq(pcsv_column_type(&t, 7, &empty), PCSV_FLOAT);

    uint64_t rows[3] = {1, 0, UINT64_MAX};
    ad_elem *e = pcsv_column(&t, 0, rows, 2); /* int, complete */
    ck_assert_int_eq(e->kind, AD_K_ARRAY);
    ck_assert_int_eq(e->u.arr.dtype, AD_I64);
    ck_assert_int_eq(((int64_t *)e->u.arr.data)[0], -2);
    ad_elem_free(e);
    e = pcsv_column(&t, 0, rows, 3); /* a missing row makes it float64 with NaN */
    ck_assert_int_eq(e->u.arr.dtype, AD_F64);
    ck_assert(isnan(((double *)e->u.arr.data)[2]));
    ck_assert(((double *)e->u.arr.data)[1] == 1.0);
    ad_elem_free(e);
    e = pcsv_column(&t, 5, rows, 2); /* int with an empty cell: float64 */
    ck_assert_int_eq(e->u.arr.dtype, AD_F64);
    ck_assert(isnan(((double *)e->u.arr.data)[0]));
    ad_elem_free(e);
    e = pcsv_column(&t, 2, rows, 3); /* bool with a missing row: nullable-boolean */
    ck_assert_int_eq(e->kind, AD_K_NULLABLE_BOOL);
    ck_assert_uint_eq(((uint8_t *)e->u.nl.values.data)[0], 0);
    ck_assert_uint_eq(((uint8_t *)e->u.nl.values.data)[1], 1);
    ck_assert_uint_eq(((uint8_t *)e->u.nl.mask.data)[2], 1);
    ck_assert_uint_eq(((uint8_t *)e->u.nl.mask.data)[0], 0);
    ad_elem_free(e);
    e = pcsv_column(&t, 3, rows, 2); /* text, complete */
    ck_assert_int_eq(e->kind, AD_K_ARRAY);
    ck_assert_int_eq(e->u.arr.dtype, AD_STR);
    ck_assert_str_eq(ad_str_at(&e->u.arr, 0), "7");
    ad_elem_free(e);
    e = pcsv_column(&t, 6, rows, 2); /* text with an empty cell: object with a null */
    ck_assert_int_eq(e->kind, AD_K_OBJECT);
    ck_assert_int_eq(e->u.obj.kind[0], AD_CELL_NULL);
    ck_assert_int_eq(e->u.obj.kind[1], AD_CELL_STR);
    ck_assert_str_eq(ad_object_text(&e->u.obj, 1), "x");
    ad_elem_free(e);
    e = pcsv_column(&t, 4, rows, 2); /* all empty: object of nulls */
    ck_assert_int_eq(e->kind, AD_K_OBJECT);
    ck_assert_int_eq(e->u.obj.kind[1], AD_CELL_NULL);
    ad_elem_free(e);
    pcsv_free(&t);
}
END_TEST

START_TEST(number_parsing)
{
    int64_t i;
    double d;
    ck_assert(pcsv_parse_i64("-17", &i) && i == -17);
    ck_assert(pcsv_parse_i64("+3", &i) && i == 3);
    ck_assert(!pcsv_parse_i64("1.0", &i));
    ck_assert(!pcsv_parse_i64(" 1", &i));
    ck_assert(!pcsv_parse_i64("99999999999999999999", &i)); /* overflow is not an int */
    ck_assert(!pcsv_parse_i64("", &i));
    ck_assert(!pcsv_parse_i64("-", &i));
    ck_assert(!pcsv_parse_i64("12a", &i));
    ck_assert(pcsv_parse_i64("9223372036854775807", &i) && i == INT64_MAX);
    ck_assert(pcsv_parse_i64("-9223372036854775808", &i) && i == INT64_MIN);
    ck_assert(!pcsv_parse_i64("9223372036854775808", &i));
    ck_assert(!pcsv_parse_i64("-9223372036854775809", &i));
    ck_assert(pcsv_parse_i64("007", &i) && i == 7);
    ck_assert(pcsv_parse_f64("2.5e-3", &d) && d == 2.5e-3);
    ck_assert(pcsv_parse_f64("-inf", &d) && isinf(d));
    ck_assert(!pcsv_parse_f64("0x10", &d));
    ck_assert(!pcsv_parse_f64("1,5", &d));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("polis_csv");
    TCase *tc = tcase_create("csv");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, plain_and_quoted);
    tcase_add_test(tc, embedded_newlines_and_record_numbers);
    tcase_add_test(tc, crlf_bom_no_final_newline);
    tcase_add_test(tc, empty_fields_and_blank_lines);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, types);
    tcase_add_test(tc, number_parsing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
