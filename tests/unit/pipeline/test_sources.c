/* pipe_open over every source kind that carries binary parts or gzip: a
 * multipart body (plain and gzip), a gzip request, a gzip h5ad, a gzip bomb
 * (413 on the decompressed size), and the errors that name a part. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "adx_pipeline.h"
#include "../unit_tmp.h"

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/adx_sources_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    rm_tree(dir);
}

static void put(const char *name, const void *data, size_t len, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void put_gz(const char *name, const void *data, size_t len, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    gzFile g = gzopen(path, "wb");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gzwrite(g, data, (unsigned)len), (int)len);
    gzclose(g);
}

#define BND "bNd"
#define CT "multipart/form-data; boundary=" BND

/* request + a raw float64 part "X" of shape [2, 2] */
static size_t body(char *b, size_t cap, const char *req, const char *xname)
{
    double x[4] = {1.5, -2, 3, 4.25};
    int n = snprintf(b, cap,
                     "--" BND "\r\nContent-Disposition: form-data; name=\"request\"\r\n"
                     "Content-Type: application/json\r\n\r\n%s\r\n--" BND
                     "\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"x.bin\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n",
                     req, xname);
    memcpy(b + n, x, sizeof x);
    n += (int)sizeof x;
    n += snprintf(b + n, cap - (size_t)n, "\r\n--" BND "--\r\n");
    return (size_t)n;
}

static const char *REQ_X =
    "{\"adata\": {\"X\": {\"encoding-type\": \"array\", \"dtype\": \"float64\", "
    "\"shape\": [2, 2], \"part\": \"X\"}}, \"format\": \"npz\"}";

static void check_x(pipe_job *j, const adx_err *e)
{
    ck_assert_msg(j != NULL, "%s", e->detail);
    json_t *r = pipe_result_json(j, "t");
    json_t *x = json_object_get(json_object_get(r, "summary"), "X");
    ck_assert_str_eq(json_string_value(json_object_get(x, "dtype")), "float64");
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(x, "shape"), 1)), 2);
    json_decref(r);
    pipe_free(j);
}

START_TEST(multipart_plain_and_gzip)
{
    char b[2048], path[512];
    size_t n = body(b, sizeof b, REQ_X, "X");
    put("body", b, n, path, sizeof path);
    adx_err e;
    adx_err_init(&e);
    pipe_source src = {.kind = PIPE_SRC_MULTIPART, .path = path, .content_type = CT};
    check_x(pipe_open(&src, NULL, NULL, &e), &e);
    put_gz("body.gz", b, n, path, sizeof path);
    src.path = path;
    src.gzip = true;
    adx_err_init(&e);
    check_x(pipe_open(&src, NULL, NULL, &e), &e);
    /* The decompressed copy was unlinked at once: only the body is left. */
    char probe[600];
    snprintf(probe, sizeof probe, "ls %s | grep -c gunzip", dir);
    FILE *p = popen(probe, "r");
    char out[16] = "";
    ck_assert_ptr_nonnull(fgets(out, sizeof out, p));
    pclose(p);
    ck_assert_str_eq(out, "0\n");
}
END_TEST

/* A quota that the daemon's spool would be: the decompressed copy of a
 * gzip body is charged before each write and given back once it is gone. */
typedef struct quota {
    uint64_t max, used, peak;
    int reserves;
} quota;

static bool q_reserve(void *ud, uint64_t n)
{
    quota *q = ud;
    q->reserves++;
    if (n > q->max - q->used) return false;
    q->used += n;
    if (q->used > q->peak) q->peak = q->used;
    return true;
}

static void q_release(void *ud, uint64_t n)
{
    quota *q = ud;
    ck_assert_uint_le(n, q->used);
    q->used -= n;
}

START_TEST(gzip_copy_is_charged_to_the_quota)
{
    char b[2048], path[512];
    size_t n = body(b, sizeof b, REQ_X, "X");
    put_gz("body.gz", b, n, path, sizeof path);
    pipe_source src = {.kind = PIPE_SRC_MULTIPART, .path = path, .content_type = CT, .gzip = true};
    quota q = {.max = 1 << 20};
    pipe_env env = {.reserve = q_reserve, .release = q_release, .quota_ud = &q};
    adx_err e;
    adx_err_init(&e);
    check_x(pipe_open(&src, NULL, &env, &e), &e);
    ck_assert_uint_eq(q.peak, n); /* the whole decompressed body, once */
    ck_assert_uint_eq(q.used, 0);
    /* no room for it: a 507 before the copy is written, and nothing left */
    q = (quota){.max = n - 1};
    adx_err_init(&e);
    ck_assert_ptr_null(pipe_open(&src, NULL, &env, &e));
    ck_assert_int_eq(e.type, ADX_E_NO_SPACE);
    ck_assert_int_eq(e.status, 507);
    ck_assert_msg(strstr(e.detail, "max_spool_bytes"), "%s", e.detail);
    ck_assert_uint_eq(q.used, 0);
    ck_assert_int_ge(q.reserves, 1);
    char probe[600];
    snprintf(probe, sizeof probe, "ls %s | grep -c gunzip", dir);
    FILE *p = popen(probe, "r");
    char out[16] = "";
    ck_assert_ptr_nonnull(fgets(out, sizeof out, p));
    pclose(p);
    ck_assert_str_eq(out, "0\n");
}
END_TEST

START_TEST(multipart_errors_name_parts)
{
    char b[2048], path[512];
    adx_err e;
    /* the request references X, the body calls it Y */
    size_t n = body(b, sizeof b, REQ_X, "Y");
    put("body", b, n, path, sizeof path);
    pipe_source src = {.kind = PIPE_SRC_MULTIPART, .path = path, .content_type = CT};
    adx_err_init(&e);
    ck_assert_ptr_null(pipe_open(&src, NULL, NULL, &e));
    ck_assert_int_eq(e.status, 400);
    ck_assert_msg(strstr(e.detail, "part \"X\""), "%s", e.detail);
    ck_assert_str_eq(e.items[0].pointer, "/adata/X");
    /* an unreferenced part */
    n = body(b, sizeof b, "{\"adata\": {\"X\": [[1]]}}", "X");
    put("body2", b, n, path, sizeof path);
    src.path = path;
    adx_err_init(&e);
    ck_assert_ptr_null(pipe_open(&src, NULL, NULL, &e));
    ck_assert_msg(strstr(e.detail, "part \"X\" is not referenced"), "%s", e.detail);
    /* truncated */
    n = body(b, sizeof b, REQ_X, "X");
    put("body3", b, n - 12, path, sizeof path);
    src.path = path;
    adx_err_init(&e);
    ck_assert_ptr_null(pipe_open(&src, NULL, NULL, &e));
    ck_assert_int_eq(e.status, 400);
    ck_assert_msg(strstr(e.detail, "part \"X\" has no closing boundary"), "%s", e.detail);
    /* no request part */
    static const char only[] = "--" BND "\r\nContent-Disposition: form-data; name=\"X\"\r\n\r\n"
                               "1\r\n--" BND "--";
    put("body4", only, sizeof only - 1, path, sizeof path);
    src.path = path;
    adx_err_init(&e);
    ck_assert_ptr_null(pipe_open(&src, NULL, NULL, &e));
    ck_assert_msg(strstr(e.detail, "no part named \"request\""), "%s", e.detail);
    /* malformed JSON in the request part */
    n = body(b, sizeof b, "{\"adata\": ", "X");
    put("body5", b, n, path, sizeof path);
    src.path = path;
    adx_err_init(&e);
    ck_assert_ptr_null(pipe_open(&src, NULL, NULL, &e));
    ck_assert_int_eq(e.status, 400);
    /* a JSON request with a part and no multipart body */
    src = (pipe_source){.kind = PIPE_SRC_REQUEST, .buf = REQ_X, .len = strlen(REQ_X)};
    adx_err_init(&e);
    ck_assert_ptr_null(pipe_open(&src, NULL, NULL, &e));
    ck_assert_msg(strstr(e.detail, "multipart"), "%s", e.detail);
}
END_TEST

START_TEST(gzip_request_and_bomb)
{
    static const char req[] = "{\"adata\": {\"X\": [[1, 2], [3, 4]]}}";
    char path[512];
    put_gz("req.json.gz", req, sizeof req - 1, path, sizeof path);
    adx_err e;
    adx_err_init(&e);
    /* By its magic bytes, and by the flag a Content-Encoding sets. */
    pipe_source src = {.kind = PIPE_SRC_REQUEST, .path = path};
    pipe_job *j = pipe_open(&src, NULL, NULL, &e);
    ck_assert_msg(j != NULL, "%s", e.detail);
    pipe_free(j);
    src.gzip = true;
    j = pipe_open(&src, NULL, NULL, &e);
    ck_assert_msg(j != NULL, "%s", e.detail);
    pipe_free(j);
    /* 64 MiB of spaces after the document, 1 MiB allowed: 413, whichever
     * way the body is read. */
    size_t big = 64u << 20;
    char *bomb = malloc(big);
    memset(bomb, ' ', big);
    memcpy(bomb, req, sizeof req - 1);
    put_gz("bomb.gz", bomb, big, path, sizeof path);
    adx_limits lim;
    adx_limits_default(&lim);
    lim.max_body_bytes = 1u << 20;
    src = (pipe_source){.kind = PIPE_SRC_REQUEST, .path = path, .gzip = true};
    adx_err_init(&e);
    ck_assert_ptr_null(pipe_open(&src, &lim, NULL, &e));
    ck_assert_int_eq(e.status, 413);
    ck_assert_msg(strstr(e.detail, "max_body_bytes"), "%s", e.detail);
    /* the same bomb as a multipart body and as an h5ad body */
    src.kind = PIPE_SRC_MULTIPART;
    src.content_type = CT;
    adx_err_init(&e);
    ck_assert_ptr_null(pipe_open(&src, &lim, NULL, &e));
    ck_assert_int_eq(e.status, 413);
    src.kind = PIPE_SRC_H5AD;
    adx_err_init(&e);
    ck_assert_ptr_null(pipe_open(&src, &lim, NULL, &e));
    ck_assert_int_eq(e.status, 413);
    ck_assert_msg(!strstr(e.detail, dir), "%s", e.detail);
    free(bomb);
    /* nothing decompressed is left behind */
    char probe[600];
    snprintf(probe, sizeof probe, "ls %s | grep -c gunzip", dir);
    FILE *p = popen(probe, "r");
    char out[16] = "";
    ck_assert_ptr_nonnull(fgets(out, sizeof out, p));
    pclose(p);
    ck_assert_str_eq(out, "0\n");
}
END_TEST

START_TEST(gzip_h5ad)
{
    const char *shared = getenv("ADX_SHARED");
    ck_assert_ptr_nonnull(shared);
    char src_path[512], path[512];
    snprintf(src_path, sizeof src_path, "%s/fixtures/polis_real.expected.h5ad", shared);
    FILE *f = fopen(src_path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len);
    ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    put_gz("in.h5ad.gz", buf, (size_t)len, path, sizeof path);
    free(buf);
    adx_err e;
    adx_err_init(&e);
    pipe_source src = {.kind = PIPE_SRC_H5AD, .path = path, .gzip = true};
    pipe_job *j = pipe_open(&src, NULL, NULL, &e);
    ck_assert_msg(j != NULL, "%s", e.detail);
    json_t *r = pipe_result_json(j, "t");
    ck_assert_int_gt(json_integer_value(json_object_get(json_object_get(r, "summary"), "n_obs")),
                     0);
    json_decref(r);
    pipe_free(j);
    /* not gzip at all */
    src.path = src_path;
    adx_err_init(&e);
    ck_assert_ptr_null(pipe_open(&src, NULL, NULL, &e));
    ck_assert_int_eq(e.status, 400);
    ck_assert_msg(!strstr(e.detail, shared), "%s", e.detail);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline sources");
    TCase *t = tcase_create("all");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, multipart_plain_and_gzip);
    tcase_add_test(t, multipart_errors_name_parts);
    tcase_add_test(t, gzip_request_and_bomb);
    tcase_add_test(t, gzip_h5ad);
    tcase_add_test(t, gzip_copy_is_charged_to_the_quota);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
