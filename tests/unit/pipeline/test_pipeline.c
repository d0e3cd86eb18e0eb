/* The pipeline's own contract: stage order, the result JSON, atomic
 * replacement of out_path, clean-up after a failed write, and errors from
 * load rooted at the request document. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adx_pipeline.h"

static char dir[256];

static void make_dir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/adx-pipe-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Entries of dir, excluding . and .. */
static int count_entries(void)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(dir);
}

static pipe_job *load(const char *text, adx_err *e)
{
    adx_limits lim;
    adx_limits_default(&lim);
    adx_err_init(e);
    return pipe_load_buffer(text, strlen(text), &lim, e);
}

static const char small[] = "{\"adata\": {\"X\": [[1.0, 2.0], [3.0, null]], "
                            "\"obs\": {\"index\": [\"a\", \"b\"], \"columns\": "
                            "{\"label\": [\"x\", null]}}, \"uns\": {\"gone\": null}}, "
                            "\"filename\": \"small.h5ad\"}";

START_TEST(load_errors_are_rooted_at_the_request)
{
    adx_err e;
    ck_assert_ptr_null(load("{\"adata\": {\"X\": [[1, 2], [3]]}}", &e));
    ck_assert_int_eq(e.type, ADX_E_SHAPE);
    ck_assert_str_eq(e.items[0].pointer, "/adata/X/1");

    ck_assert_ptr_null(load("{\"adata\": ", &e));
    ck_assert_int_eq(e.type, ADX_E_INVALID_JSON);

    ck_assert_ptr_null(load("{\"adata\": {}, \"format\": \"xls\"}", &e));
    ck_assert_int_eq(e.type, ADX_E_BAD_OPTION);
    ck_assert_str_eq(e.items[0].pointer, "/format");

    ck_assert_ptr_null(load("{\"dataset\": \"polis\"}", &e));
    ck_assert_int_eq(e.type, ADX_E_BAD_OPTION);
    ck_assert_str_eq(e.items[0].pointer, "/dataset");
}
END_TEST

START_TEST(stages_in_order_only)
{
    adx_err e;
    pipe_job *j = load(small, &e);
    ck_assert_msg(j != NULL, "%s", e.detail);
    make_dir();
    char out[512];
    snprintf(out, sizeof out, "%s/x.h5ad", dir);
    ck_assert_int_eq(pipe_write(j, out, NULL, &e), -1); /* not prepared yet */
    ck_assert_int_eq(e.type, ADX_E_INTERNAL);
    ck_assert_int_eq(count_entries(), 0);
    adx_err_init(&e);
    ck_assert_int_eq(pipe_prepare(j, &e), 0);
    ck_assert_int_eq(pipe_prepare(j, &e), -1); /* twice */
    ck_assert(pipe_output(j, NULL, NULL) == -1);
    pipe_free(j);
    remove_dir();
    pipe_free(NULL);
}
END_TEST

START_TEST(write_replaces_atomically_and_reports)
{
    adx_err e;
    pipe_job *j = load(small, &e);
    ck_assert_msg(j != NULL, "%s", e.detail);
    ck_assert_int_eq(pipe_prepare(j, &e), 0);
    make_dir();
    char out[512];
    snprintf(out, sizeof out, "%s/x.h5ad", dir);
    FILE *f = fopen(out, "w");
    fputs("old", f);
    fclose(f);

    /* Before the write: no size or checksum in the result. */
    json_t *r = pipe_result_json(j, "JOB");
    ck_assert_ptr_null(json_object_get(r, "sha256"));
    json_decref(r);

    ck_assert_msg(pipe_write(j, out, NULL, &e) == 0, "%s", e.detail);
    ck_assert_int_eq(count_entries(), 1); /* no temp file left */
    struct stat st;
    ck_assert_int_eq(stat(out, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    uint64_t size;
    const char *sha;
    ck_assert_int_eq(pipe_output(j, &size, &sha), 0);
    ck_assert_uint_eq(size, (uint64_t)st.st_size);
    ck_assert_uint_eq(strlen(sha), 64);

    r = pipe_result_json(j, "JOB");
    ck_assert_str_eq(json_string_value(json_object_get(r, "format")), "h5ad");
    ck_assert_str_eq(json_string_value(json_object_get(r, "filename")), "small.h5ad");
    ck_assert_str_eq(json_string_value(json_object_get(r, "content_type")), "application/x-hdf5");
    ck_assert_str_eq(json_string_value(json_object_get(r, "compression")), "gzip");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "compression_opts")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "size_bytes")), st.st_size);
    ck_assert_str_eq(json_string_value(json_object_get(r, "sha256")), sha);
    json_t *s = json_object_get(r, "summary");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "n_obs")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "n_vars")), 2);
    json_t *x = json_object_get(s, "X");
    ck_assert_str_eq(json_string_value(json_object_get(x, "encoding")), "array");
    ck_assert_str_eq(json_string_value(json_object_get(x, "dtype")), "float64");
    ck_assert_int_eq(json_array_size(json_object_get(x, "shape")), 2);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(s, "obs"), 0)), "label");
    ck_assert_int_eq(json_array_size(json_object_get(s, "uns")), 0); /* the null was dropped */
    ck_assert(json_is_null(json_object_get(s, "raw")));
    json_t *rep = json_object_get(r, "report");
    int saw_null = 0, saw_drop = 0;
    for (size_t i = 0; i < json_array_size(rep); i++) {
        json_t *en = json_array_get(rep, i);
        const char *p = json_string_value(json_object_get(en, "path"));
        const char *a = json_string_value(json_object_get(en, "action"));
        if (!strcmp(p, "/obs/label") && !strcmp(a, "null_to_empty_string")) saw_null = 1;
        if (!strcmp(p, "/uns/gone") && !strcmp(a, "dropped_null")) saw_drop = 1;
    }
    ck_assert(saw_null && saw_drop);
    json_decref(r);
    pipe_free(j);
    remove_dir();
}
END_TEST

START_TEST(failed_write_leaves_nothing)
{
    adx_err e;
    pipe_job *j = load(small, &e);
    ck_assert_msg(j != NULL, "%s", e.detail);
    ck_assert_int_eq(pipe_prepare(j, &e), 0);
    make_dir();
    /* out_path is a directory: the writer succeeds, the rename fails. */
    char out[512];
    snprintf(out, sizeof out, "%s/taken", dir);
    ck_assert_int_eq(mkdir(out, 0755), 0);
    ck_assert_int_eq(pipe_write(j, out, NULL, &e), -1);
    ck_assert_int_eq(e.type, ADX_E_IO);
    ck_assert_ptr_null(strstr(e.detail, dir)); /* no machine path */
    ck_assert_int_eq(count_entries(), 1);
    json_t *r = pipe_result_json(j, NULL);
    ck_assert_ptr_null(json_object_get(r, "sha256"));
    json_decref(r);
    pipe_free(j);
    remove_dir();
}
END_TEST

START_TEST(canceled_before_write)
{
    adx_err e;
    pipe_job *j = load(small, &e);
    ck_assert_msg(j != NULL, "%s", e.detail);
    ck_assert_int_eq(pipe_prepare(j, &e), 0);
    make_dir();
    char out[512];
    snprintf(out, sizeof out, "%s/x.h5ad", dir);
    atomic_int cancel = 1;
    adx_ctl ctl = {.cancel = &cancel};
    ck_assert_int_eq(pipe_write(j, out, &ctl, &e), -1);
    ck_assert_int_eq(e.type, ADX_E_CANCELED);
    ck_assert_int_eq(count_entries(), 0);
    pipe_free(j);
    remove_dir();
}
END_TEST

static int b64(const unsigned char *in, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = al[w >> 18 & 63];
        out[o++] = al[w >> 12 & 63];
        out[o++] = i + 1 < n ? al[w >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? al[w & 63] : '=';
    }
    return o;
}

/* A request whose decoded form is small but whose writer must build a large
 * buffer: a rec-array whose one long string makes every npz record wide
 * ('<U20000' × 400 records = 32 MB), and a csc matrix whose by-row index a
 * csv bundle needs. The writer charges those to the request's budget. */
static char *wide_request(const char *format)
{
    size_t cap = 64 * 1024;
    char *t = malloc(cap);
    ck_assert_ptr_nonnull(t);
    int o = snprintf(t, cap,
                     "{\"format\": \"%s\", \"adata\": {\"shape\": [400, 2], \"uns\": "
                     "{\"r\": {\"encoding-type\": \"rec-array\", \"fields\": {\"s\": [",
                     format);
    for (int i = 0; i < 400; i++) {
        if (i == 0) {
            t[o++] = '"';
            memset(t + o, 'x', 20000);
            o += 20000;
            o += snprintf(t + o, cap - o, "\"");
        } else {
            o += snprintf(t + o, cap - o, ", \"y\"");
        }
    }
    snprintf(t + o, cap - o, "]}}}}}");
    return t;
}

/* Exports `req` under a budget of `budget` bytes: with a pointer, the write
 * must fail there with a 413 naming max_request_memory and leave no file;
 * without one, it must succeed. */
static void export_under(const char *req, size_t len, uint64_t budget, const char *name,
                         const char *fail_at)
{
    adx_limits lim;
    adx_limits_default(&lim);
    lim.max_request_memory = budget;
    adx_err e;
    adx_err_init(&e);
    char out[512];
    snprintf(out, sizeof out, "%s/%s", dir, name);
    pipe_job *j = pipe_load_buffer(req, len, &lim, &e);
    ck_assert_msg(j != NULL, "%s", e.detail);
    ck_assert_int_eq(pipe_prepare(j, &e), 0);
    int rc = pipe_write(j, out, NULL, &e);
    pipe_free(j);
    if (!fail_at) {
        ck_assert_msg(rc == 0, "%s", e.detail);
        ck_assert_int_eq(unlink(out), 0);
        return;
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(e.type, ADX_E_LIMIT);
    ck_assert_msg(strstr(e.detail, "max_request_memory") != NULL, "%s", e.detail);
    ck_assert_str_eq(e.items[0].pointer, fail_at);
    ck_assert_int_eq(count_entries(), 0); /* no partial file */
}

START_TEST(writer_buffers_count_against_the_request_budget)
{
    make_dir();
    char *req = wide_request("npz");
    export_under(req, strlen(req), 16ull << 30, "wide.npz", NULL);
    /* 8 MiB decodes the request but cannot hold its 32 MB of records. */
    export_under(req, strlen(req), 8u << 20, "wide.npz", "/uns/r");
    free(req);

    /* A csc matrix in a csv bundle: its by-row index takes 16 bytes per stored
     * value and per row, 6.4 MB for 200 000 of each, over a 6 MiB budget that
     * still decodes the request. */
    size_t cap = 8u << 20;
    char *t = malloc(cap);
    ck_assert_ptr_nonnull(t);
    const int n = 200000;
    int o = snprintf(t, cap,
                     "{\"format\": \"csv\", \"adata\": {\"X\": {\"encoding-type\": "
                     "\"csc_matrix\", \"shape\": [%d, 1], \"data\": {\"dtype\": \"float32\", "
                     "\"base64\": \"",
                     n);
    unsigned char *raw = calloc((size_t)n, 4);
    ck_assert_ptr_nonnull(raw);
    o += b64(raw, (size_t)n * 4, t + o); /* n float32 zeros */
    o += snprintf(t + o, cap - o, "\"}, \"indices\": {\"dtype\": \"int32\", \"base64\": \"");
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)i;
        memcpy(raw + 4 * (size_t)i, &v, 4);
    }
    o += b64(raw, (size_t)n * 4, t + o);
    free(raw);
    o += snprintf(t + o, cap - o, "\"}, \"indptr\": [0, %d]}}}", n);
    export_under(t, (size_t)o, 64u << 20, "csc.zip", NULL);
    export_under(t, (size_t)o, 6u << 20, "csc.zip", "/X");
    free(t);
    remove_dir();
}
END_TEST

/* Sanitize's conversions count against the request's budget in the
 * pipeline (the CLI and the daemon prepare through it): a mixed column of
 * 600 000 numbers and one string becomes 600 000 strings (text, NUL and an
 * offset each, about 17 MB) beside the decoded cells. Under the smallest
 * budget the request still decodes in, prepare is a 413 naming
 * max_request_memory at the column (the report's pointer into the stored object); with room, it
 * succeeds. */
START_TEST(sanitize_counts_against_the_request_budget)
{
    const int n = 600000;
    size_t cap = (size_t)n * 16 + 256;
    char *t = malloc(cap);
    ck_assert_ptr_nonnull(t);
    int o = snprintf(t, cap, "{\"adata\": {\"obs\": {\"columns\": {\"mixed\": [\"x\"");
    for (int i = 1; i < n; i++)
        o += snprintf(t + o, cap - o, ",%d.%03d", 100000 + i, i % 1000);
    o += snprintf(t + o, cap - o, "]}}}}");
    adx_limits lim;
    adx_limits_default(&lim);
    uint64_t lo = 1u << 20, hi = 1ull << 30; /* lo fails to load, hi loads */
    while (hi - lo > 4096) {
        uint64_t mid = lo + (hi - lo) / 2;
        lim.max_request_memory = mid;
        adx_err e;
        adx_err_init(&e);
        pipe_job *j = pipe_load_buffer(t, (size_t)o, &lim, &e);
        if (j)
            hi = mid;
        else
            lo = mid;
        pipe_free(j);
    }
    adx_err e;
    adx_err_init(&e);
    lim.max_request_memory = hi;
    pipe_job *j = pipe_load_buffer(t, (size_t)o, &lim, &e);
    ck_assert_msg(j != NULL, "%s", e.detail);
    ck_assert_int_eq(pipe_prepare(j, &e), -1);
    ck_assert_int_eq(e.type, ADX_E_LIMIT);
    ck_assert_msg(strstr(e.detail, "max_request_memory") != NULL, "%s", e.detail);
    ck_assert_str_eq(e.items[0].pointer, "/obs/mixed");
    pipe_free(j);

    /* the strings, then strings_to_categoricals' hash of 600 000 distinct
     * values (two tables of 20 bytes a slot while it grows: ~63 MB) */
    lim.max_request_memory = hi + (128u << 20);
    adx_err_init(&e);
    j = pipe_load_buffer(t, (size_t)o, &lim, &e);
    ck_assert_msg(j != NULL, "%s", e.detail);
    ck_assert_msg(pipe_prepare(j, &e) == 0, "%s", e.detail);
    pipe_free(j);
    free(t);
}
END_TEST

/* DELETE of a job in its prepare step: the flag is read there too, and a
 * canceled prepare leaves the job unprepared (no write may follow). */
START_TEST(canceled_in_prepare)
{
    adx_err e;
    pipe_job *j = load(small, &e);
    ck_assert_msg(j != NULL, "%s", e.detail);
    atomic_int cancel = 1;
    adx_ctl ctl = {.cancel = &cancel};
    ck_assert_int_eq(pipe_prepare_ctl(j, &ctl, &e), -1);
    ck_assert_int_eq(e.type, ADX_E_CANCELED);
    make_dir();
    char out[512];
    snprintf(out, sizeof out, "%s/x.h5ad", dir);
    adx_err_init(&e);
    ck_assert_int_eq(pipe_write(j, out, NULL, &e), -1);
    ck_assert_int_eq(e.type, ADX_E_INTERNAL);
    ck_assert_int_eq(count_entries(), 0);
    /* a flag that stays clear changes nothing */
    atomic_store(&cancel, 0);
    adx_err_init(&e);
    ck_assert_int_eq(pipe_prepare_ctl(j, &ctl, &e), 0);
    ck_assert_int_eq(pipe_write(j, out, &ctl, &e), 0);
    ck_assert_int_eq(count_entries(), 1);
    pipe_free(j);
    remove_dir();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("stages");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, load_errors_are_rooted_at_the_request);
    tcase_add_test(tc, stages_in_order_only);
    tcase_add_test(tc, write_replaces_atomically_and_reports);
    tcase_add_test(tc, failed_write_leaves_nothing);
    tcase_add_test(tc, canceled_before_write);
    tcase_add_test(tc, writer_buffers_count_against_the_request_budget);
    tcase_add_test(tc, canceled_in_prepare);
    tcase_add_test(tc, sanitize_counts_against_the_request_budget);
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
