/* req_parse: every option, its default, and every bad combination. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "adx_request.h"

static json_t *parse_json(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    ck_assert_msg(j != NULL, "test JSON does not parse: %s", je.text);
    return j;
}

/* Parse `text`; expect success. */
static void ok(const char *text, adx_request *r)
{
    json_t *j = parse_json(text);
    adx_err e;
    adx_err_init(&e);
    int rc = req_parse(j, r, &e);
    ck_assert_msg(rc == 0, "%s: unexpected error at '%s': %s", text,
                  e.n_items ? e.items[0].pointer : "", e.detail);
    ck_assert_int_eq(e.type, ADX_E_NONE);
    json_decref(j);
}

/* Parse `text`; expect failure of `type` at `pointer`. */
static void bad(const char *text, adx_errtype type, const char *pointer)
{
    json_t *j = parse_json(text);
    adx_err e;
    adx_err_init(&e);
    adx_request r;
    int rc = req_parse(j, &r, &e);
    ck_assert_msg(rc == -1, "%s: accepted", text);
    ck_assert_msg(e.type == type, "%s: type %s, expected %s (%s)", text, adx_errtype_slug(e.type),
                  adx_errtype_slug(type), e.detail);
    ck_assert_int_ge(e.n_items, 1);
    ck_assert_msg(strcmp(e.items[0].pointer, pointer) == 0, "%s: pointer '%s', expected '%s'", text,
                  e.items[0].pointer, pointer);
    ck_assert_msg(e.detail[0] != '\0', "%s: empty message", text);
    /* A failed parse leaves nothing to free. */
    ck_assert_ptr_null(r.filename);
    ck_assert_ptr_null(r.cat_globs);
    ck_assert_ptr_null(r.include);
    ck_assert_ptr_null(r.dataset);
    json_decref(j);
}

START_TEST(defaults)
{
    adx_request r;
    ok("{\"adata\": {}}", &r);
    ck_assert(r.has_adata);
    ck_assert_ptr_null(r.dataset);
    ck_assert_int_eq(r.format, ADX_FMT_H5AD);
    ck_assert_ptr_null(r.filename);
    ck_assert_int_eq(r.compression, ADX_COMP_GZIP);
    ck_assert_int_eq(r.level, 4);
    ck_assert(!r.has_include);
    ck_assert_uint_eq(r.n_include, 0);
    ck_assert_uint_eq(r.n_cat, 1);
    ck_assert_str_eq(r.cat_globs[0], "kmeans_*");
    ck_assert(r.strings_to_categoricals);
    char *fn = req_filename(&r, "01JOB");
    ck_assert_str_eq(fn, "01JOB.h5ad");
    free(fn);
    fn = req_filename(&r, NULL);
    ck_assert_str_eq(fn, "export.h5ad");
    free(fn);
    req_free(&r);
    ck_assert_ptr_null(r.cat_globs);
    req_free(&r); /* idempotent on a freed struct */
}
END_TEST

START_TEST(nulls_are_defaults)
{
    adx_request r;
    ok("{\"adata\": {}, \"dataset\": null, \"include\": null, \"format\": null, \"filename\": "
       "null, "
       "\"compression_opts\": null, \"categorical_columns\": null, "
       "\"strings_to_categoricals\": null}",
       &r);
    ck_assert(!r.has_include);
    ck_assert_int_eq(r.format, ADX_FMT_H5AD);
    ck_assert_int_eq(r.compression, ADX_COMP_GZIP);
    ck_assert_int_eq(r.level, 4);
    ck_assert_str_eq(r.cat_globs[0], "kmeans_*");
    ck_assert(r.strings_to_categoricals);
    req_free(&r);
}
END_TEST

START_TEST(formats)
{
    static const struct {
        const char *json;
        adx_format f;
        const char *default_name;
    } cases[] = {
        {"{\"adata\":{},\"format\":\"h5ad\"}", ADX_FMT_H5AD, "j.h5ad"},
        {"{\"adata\":{},\"format\":\"h5\"}", ADX_FMT_H5AD, "j.h5ad"},
        {"{\"adata\":{},\"format\":\"npz\"}", ADX_FMT_NPZ, "j.npz"},
        {"{\"adata\":{},\"format\":\"csv\"}", ADX_FMT_CSV, "j.zip"},
        {"{\"adata\":{},\"format\":\"txt\"}", ADX_FMT_TXT, "j.zip"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        adx_request r;
        ok(cases[i].json, &r);
        ck_assert_int_eq(r.format, cases[i].f);
        char *fn = req_filename(&r, "j");
        ck_assert_str_eq(fn, cases[i].default_name);
        free(fn);
        req_free(&r);
    }
}
END_TEST

START_TEST(filename_selects_format)
{
    static const struct {
        const char *name;
        adx_format f;
    } cases[] = {
        {"a.h5ad", ADX_FMT_H5AD},   {"a.H5AD", ADX_FMT_H5AD},
        {"a.h5", ADX_FMT_H5AD},     {"a.npz", ADX_FMT_NPZ},
        {"a.csv", ADX_FMT_CSV},     {"a.zip", ADX_FMT_CSV},
        {"a.txt", ADX_FMT_TXT},     {"a.bin", ADX_FMT_H5AD},
        {"noext", ADX_FMT_H5AD},    {".npz", ADX_FMT_H5AD}, /* a hidden name, not an extension */
        {"x.tar.npz", ADX_FMT_NPZ}, {"conv ünïcode.csv", ADX_FMT_CSV},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "{\"adata\":{},\"filename\":\"%s\"}", cases[i].name);
        adx_request r;
        ok(buf, &r);
        ck_assert_msg(r.format == cases[i].f, "%s → %d", cases[i].name, r.format);
        ck_assert_str_eq(r.filename, cases[i].name);
        char *fn = req_filename(&r, "job");
        ck_assert_str_eq(fn, cases[i].name);
        free(fn);
        req_free(&r);
    }
}
END_TEST

START_TEST(filename_agrees_with_format)
{
    static const char *const good[] = {
        "{\"adata\":{},\"format\":\"h5ad\",\"filename\":\"a.h5\"}",
        "{\"adata\":{},\"format\":\"h5\",\"filename\":\"a.h5ad\"}",
        "{\"adata\":{},\"format\":\"csv\",\"filename\":\"a.zip\"}",
        "{\"adata\":{},\"format\":\"txt\",\"filename\":\"a.zip\"}",
        "{\"adata\":{},\"format\":\"txt\",\"filename\":\"a.TXT\"}",
        "{\"adata\":{},\"format\":\"npz\",\"filename\":\"a.data\"}",
        "{\"adata\":{},\"format\":\"npz\",\"filename\":\"noext\"}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        adx_request r;
        ok(good[i], &r);
        req_free(&r);
    }
    bad("{\"adata\":{},\"format\":\"npz\",\"filename\":\"a.h5ad\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"format\":\"h5ad\",\"filename\":\"a.npz\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"format\":\"csv\",\"filename\":\"a.txt\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"format\":\"txt\",\"filename\":\"a.csv\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"format\":\"h5ad\",\"filename\":\"a.zip\"}", ADX_E_BAD_OPTION, "/filename");
}
END_TEST

START_TEST(bad_filenames)
{
    bad("{\"adata\":{},\"filename\":\"\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"filename\":\"a/b.h5ad\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"filename\":\"../x.h5ad\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"filename\":\"a\\\\b.h5ad\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"filename\":\"a\\nb.h5ad\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"filename\":\"a\\u0000b.h5ad\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"filename\":\"a\\u007fb\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"filename\":\".\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"filename\":\"..\"}", ADX_E_BAD_OPTION, "/filename");
    bad("{\"adata\":{},\"filename\":42}", ADX_E_BAD_OPTION, "/filename");

    char name[300], buf[400];
    memset(name, 'a', 255);
    name[255] = '\0';
    snprintf(buf, sizeof buf, "{\"adata\":{},\"filename\":\"%s\"}", name);
    adx_request r;
    ok(buf, &r); /* exactly the limit */
    req_free(&r);
    strcat(name, "a");
    snprintf(buf, sizeof buf, "{\"adata\":{},\"filename\":\"%s\"}", name);
    bad(buf, ADX_E_BAD_OPTION, "/filename");
}
END_TEST

START_TEST(compression)
{
    adx_request r;
    ok("{\"adata\":{},\"compression\":\"gzip\",\"compression_opts\":0}", &r);
    ck_assert_int_eq(r.compression, ADX_COMP_GZIP);
    ck_assert_int_eq(r.level, 0);
    req_free(&r);
    ok("{\"adata\":{},\"compression_opts\":9}", &r);
    ck_assert_int_eq(r.compression, ADX_COMP_GZIP);
    ck_assert_int_eq(r.level, 9);
    req_free(&r);
    ok("{\"adata\":{},\"compression\":\"lzf\"}", &r);
    ck_assert_int_eq(r.compression, ADX_COMP_LZF);
    ck_assert_int_eq(r.level, -1);
    req_free(&r);
    ok("{\"adata\":{},\"compression\":null}", &r);
    ck_assert_int_eq(r.compression, ADX_COMP_NONE);
    ck_assert_int_eq(r.level, -1);
    req_free(&r);
    ok("{\"adata\":{},\"compression\":\"none\"}", &r);
    ck_assert_int_eq(r.compression, ADX_COMP_NONE);
    req_free(&r);
    ok("{\"adata\":{},\"format\":\"npz\",\"compression\":\"gzip\",\"compression_opts\":1}", &r);
    ck_assert_int_eq(r.level, 1);
    req_free(&r);
    ok("{\"adata\":{},\"format\":\"csv\",\"compression\":null}", &r);
    ck_assert_int_eq(r.compression, ADX_COMP_NONE);
    req_free(&r);

    bad("{\"adata\":{},\"compression\":\"zstd\"}", ADX_E_BAD_OPTION, "/compression");
    bad("{\"adata\":{},\"compression\":\"GZIP\"}", ADX_E_BAD_OPTION, "/compression");
    bad("{\"adata\":{},\"compression\":4}", ADX_E_BAD_OPTION, "/compression");
    bad("{\"adata\":{},\"compression\":\"lzf\",\"format\":\"npz\"}", ADX_E_BAD_OPTION,
        "/compression");
    bad("{\"adata\":{},\"compression\":\"lzf\",\"format\":\"csv\"}", ADX_E_BAD_OPTION,
        "/compression");
    bad("{\"adata\":{},\"compression\":\"lzf\",\"filename\":\"a.txt\"}", ADX_E_BAD_OPTION,
        "/compression");
    bad("{\"adata\":{},\"compression\":\"lzf\",\"compression_opts\":4}", ADX_E_BAD_OPTION,
        "/compression_opts");
    bad("{\"adata\":{},\"compression\":null,\"compression_opts\":4}", ADX_E_BAD_OPTION,
        "/compression_opts");
    bad("{\"adata\":{},\"compression_opts\":10}", ADX_E_BAD_OPTION, "/compression_opts");
    bad("{\"adata\":{},\"compression_opts\":-1}", ADX_E_BAD_OPTION, "/compression_opts");
    bad("{\"adata\":{},\"compression_opts\":4.0}", ADX_E_BAD_OPTION, "/compression_opts");
    bad("{\"adata\":{},\"compression_opts\":\"4\"}", ADX_E_BAD_OPTION, "/compression_opts");
    bad("{\"adata\":{},\"compression_opts\":99999999999999999}", ADX_E_BAD_OPTION,
        "/compression_opts");
}
END_TEST

START_TEST(bad_format)
{
    bad("{\"adata\":{},\"format\":\"hdf5\"}", ADX_E_BAD_OPTION, "/format");
    bad("{\"adata\":{},\"format\":\"H5AD\"}", ADX_E_BAD_OPTION, "/format");
    bad("{\"adata\":{},\"format\":\"\"}", ADX_E_BAD_OPTION, "/format");
    bad("{\"adata\":{},\"format\":[\"h5ad\"]}", ADX_E_BAD_OPTION, "/format");
}
END_TEST

START_TEST(input_member)
{
    adx_request r;
    ok("{\"dataset\":\"polis_real\"}", &r);
    ck_assert(!r.has_adata);
    ck_assert_str_eq(r.dataset, "polis_real");
    req_free(&r);
    ok("{\"dataset\":\"a.b-c_9\"}", &r);
    req_free(&r);

    bad("{}", ADX_E_SCHEMA, "");
    bad("{\"format\":\"h5ad\"}", ADX_E_SCHEMA, "");
    bad("{\"adata\":null}", ADX_E_SCHEMA, "");
    bad("{\"adata\":{},\"dataset\":\"x\"}", ADX_E_SCHEMA, "/dataset");
    bad("{\"adata\":[]}", ADX_E_SCHEMA, "/adata");
    bad("{\"adata\":\"x\"}", ADX_E_SCHEMA, "/adata");
    bad("{\"adata\":1}", ADX_E_SCHEMA, "/adata");
    bad("{\"dataset\":5}", ADX_E_SCHEMA, "/dataset");
    bad("{\"dataset\":\"\"}", ADX_E_BAD_OPTION, "/dataset");
    bad("{\"dataset\":\".hidden\"}", ADX_E_BAD_OPTION, "/dataset");
    bad("{\"dataset\":\"../etc\"}", ADX_E_BAD_OPTION, "/dataset");
    bad("{\"dataset\":\"a b\"}", ADX_E_BAD_OPTION, "/dataset");
    bad("[]", ADX_E_SCHEMA, "");
    bad("\"adata\"", ADX_E_SCHEMA, "");
}
END_TEST

START_TEST(unknown_members)
{
    bad("{\"adata\":{},\"formats\":\"h5ad\"}", ADX_E_SCHEMA, "/formats");
    bad("{\"adata\":{},\"a/b~c\":1}", ADX_E_SCHEMA, "/a~1b~0c");
    /* Reported before anything else is looked at. */
    bad("{\"typo\":1}", ADX_E_SCHEMA, "/typo");
}
END_TEST

START_TEST(categorical_columns)
{
    adx_request r;
    ok("{\"adata\":{},\"categorical_columns\":[\"leiden\",\"kmeans_*\",\"\"]}", &r);
    ck_assert_uint_eq(r.n_cat, 3);
    ck_assert_str_eq(r.cat_globs[0], "leiden");
    ck_assert_str_eq(r.cat_globs[1], "kmeans_*");
    ck_assert_str_eq(r.cat_globs[2], "");
    req_free(&r);
    ok("{\"adata\":{},\"categorical_columns\":[]}", &r);
    ck_assert_uint_eq(r.n_cat, 0);
    ck_assert_ptr_nonnull(r.cat_globs);
    req_free(&r);

    bad("{\"adata\":{},\"categorical_columns\":\"kmeans_*\"}", ADX_E_BAD_OPTION,
        "/categorical_columns");
    bad("{\"adata\":{},\"categorical_columns\":[\"a\",3]}", ADX_E_BAD_OPTION,
        "/categorical_columns/1");
    bad("{\"adata\":{},\"categorical_columns\":[\"a\\u0000b\"]}", ADX_E_BAD_OPTION,
        "/categorical_columns/0");
}
END_TEST

START_TEST(strings_to_categoricals)
{
    adx_request r;
    ok("{\"adata\":{},\"strings_to_categoricals\":false}", &r);
    ck_assert(!r.strings_to_categoricals);
    req_free(&r);
    ok("{\"adata\":{},\"strings_to_categoricals\":true}", &r);
    ck_assert(r.strings_to_categoricals);
    req_free(&r);
    bad("{\"adata\":{},\"strings_to_categoricals\":0}", ADX_E_BAD_OPTION,
        "/strings_to_categoricals");
    bad("{\"adata\":{},\"strings_to_categoricals\":\"true\"}", ADX_E_BAD_OPTION,
        "/strings_to_categoricals");
}
END_TEST

/* Type errors of include are caught here; path syntax is flt_validate's. */
START_TEST(include_shape)
{
    bad("{\"adata\":{},\"include\":\"obs/*\"}", ADX_E_BAD_INCLUDE, "/include");
    bad("{\"adata\":{},\"include\":{}}", ADX_E_BAD_INCLUDE, "/include");
    bad("{\"adata\":{},\"include\":[\"obs/*\", 1]}", ADX_E_BAD_INCLUDE, "/include/1");
    bad("{\"adata\":{},\"include\":[null]}", ADX_E_BAD_INCLUDE, "/include/0");
}
END_TEST

START_TEST(include_paths)
{
    adx_request r;
    ok("{\"adata\":{},\"include\":[\"obsm/X_*\",\"obs/kmeans_*\",\"uns/*\"]}", &r);
    ck_assert(r.has_include);
    ck_assert_uint_eq(r.n_include, 3);
    ck_assert_str_eq(r.include[0], "obsm/X_*");
    ck_assert_str_eq(r.include[2], "uns/*");
    req_free(&r);
    ok("{\"adata\":{},\"include\":[]}", &r);
    ck_assert(r.has_include);
    ck_assert_uint_eq(r.n_include, 0);
    req_free(&r);

    bad("{\"adata\":{},\"include\":[\"obs/*\",\"foo/bar\"]}", ADX_E_BAD_INCLUDE, "/include/1");
    bad("{\"adata\":{},\"include\":[\"obs\"]}", ADX_E_BAD_INCLUDE, "/include/0");
    bad("{\"adata\":{},\"include\":[\"obs/\"]}", ADX_E_BAD_INCLUDE, "/include/0");
    bad("{\"adata\":{},\"include\":[\"X/*\"]}", ADX_E_BAD_INCLUDE, "/include/0");
}
END_TEST

START_TEST(first_error_order)
{
    /* Options are checked in a fixed order so the same request always
     * reports the same member first. */
    bad("{\"adata\":{},\"format\":\"bad\",\"compression\":\"bad\"}", ADX_E_BAD_OPTION, "/format");
    bad("{\"adata\":{},\"compression\":\"bad\",\"include\":[1]}", ADX_E_BAD_OPTION, "/compression");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("request");
    TCase *tc = tcase_create("req_parse");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, nulls_are_defaults);
    tcase_add_test(tc, formats);
    tcase_add_test(tc, filename_selects_format);
    tcase_add_test(tc, filename_agrees_with_format);
    tcase_add_test(tc, bad_filenames);
    tcase_add_test(tc, compression);
    tcase_add_test(tc, bad_format);
    tcase_add_test(tc, input_member);
    tcase_add_test(tc, unknown_members);
    tcase_add_test(tc, categorical_columns);
    tcase_add_test(tc, strings_to_categoricals);
    tcase_add_test(tc, include_shape);
    tcase_add_test(tc, include_paths);
    tcase_add_test(tc, first_error_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
