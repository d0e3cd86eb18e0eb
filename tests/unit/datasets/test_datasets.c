/* Unit tests for the data directory (ds_*): names, put/list/summary/load/
 * delete round trips, pins, Polis folders, leftovers and the summary cache,
 * each in a fresh temp directory. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adx_datasets.h"
#include "datasets_test.h"
#include "adx_h5w.h"
#include "adx_jdec.h"
#include "../unit_tmp.h"

static char dir[512];   /* the data directory */
static char spool[512]; /* where uploads wait, like the daemon's spool */
static adx_limits lim;
static adx_err err;

static const char small_json[] =
    "{\"X\": [[1, 2, 3], [4, 5, 6]],"
    " \"obs\": {\"index\": [\"c1\", \"c2\"], \"columns\": {\"grp\": [\"a\", null]}},"
    " \"var\": {\"index\": [\"g1\", \"g2\", \"g3\"]},"
    " \"obsm\": {\"X_pca\": [[0.5], [1.5]]},"
    " \"uns\": {\"title\": \"small\"}}";

static void setup(void)
{
    const char *t = getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir;
    snprintf(dir, sizeof dir, "%s/ds_unit_XXXXXX", t);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(spool, sizeof spool, "%s/spool_XXXXXX", t);
    ck_assert_ptr_nonnull(mkdtemp(spool));
    adx_limits_default(&lim);
    adx_err_init(&err);
}

static void teardown(void)
{
    rm_tree(dir);
    rm_tree(spool);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* An upload in the spool; returns its path (static buffer per call site). */
static const char *upload_json(const char *text)
{
    static char p[600];
    static int n;
    snprintf(p, sizeof p, "%s/up%d.json", spool, n++);
    write_text(p, text);
    return p;
}

/* An h5ad written by h5w from `json`, as a client would upload it. */
static const char *upload_h5ad(const char *json)
{
    static char p[600];
    static int n;
    snprintf(p, sizeof p, "%s/up%d.h5ad", spool, n++);
    jdec_opts o = {.limits = &lim};
    adx_err e;
    adx_err_init(&e);
    jdec_doc *doc = jdec_read_buffer(json, strlen(json), &o, &e);
    ck_assert_msg(doc != NULL, "%s", e.detail);
    ad_anndata *a = jdec_doc_anndata(doc, NULL, &o, NULL, &e);
    jdec_doc_free(doc);
    ck_assert_msg(a != NULL, "%s", e.detail);
    /* No nulls here: h5w wants a sanitized model. */
    h5w_opts wo;
    h5w_opts_default(&wo);
    adx_report rep = {0};
    ck_assert_msg(h5w_write(a, p, &wo, NULL, &rep, &e) == 0, "%s", e.detail);
    rep_free(&rep);
    ad_anndata_free(a);
    return p;
}

static const char h5_json[] =
    "{\"X\": [[1.5, 2.5], [3.5, 4.5], [5.5, 6.5]],"
    " \"obs\": {\"index\": [\"a\", \"b\", \"c\"], \"columns\": {\"n\": [1, 2, 3]}},"
    " \"var\": {\"index\": [\"x\", \"y\"]},"
    " \"layers\": {\"counts\": [[1, 2], [3, 4], [5, 6]]}}";

static bool exists_in(const char *d, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", d, name);
    struct stat st;
    return lstat(p, &st) == 0;
}

/* Entries of `in` whose name starts with `prefix`. */
static int count_in(const char *in, const char *prefix)
{
    DIR *d = opendir(in);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}

static int count_prefix(const char *prefix)
{
    return count_in(dir, prefix);
}

static bool str_in(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i,
                       v) if (json_is_string(v) && !strcmp(json_string_value(v), s)) return true;
    return false;
}

static void copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb");
    ck_assert_msg(in != NULL, "cannot open %s", src);
    FILE *out = fopen(dst, "wb");
    ck_assert_ptr_nonnull(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

/* data/polis-example copied into DIR/<name>/ */
static void add_polis(const char *name)
{
    const char *src = getenv("ADX_SRC");
    ck_assert_msg(src != NULL, "ADX_SRC not set");
    char d[1024], a[2048], b[2048];
    snprintf(d, sizeof d, "%s/%s", dir, name);
    ck_assert_int_eq(mkdir(d, 0750), 0);
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "comments.csv" : "votes.csv";
        snprintf(a, sizeof a, "%s/data/polis-example/%s", src, f);
        snprintf(b, sizeof b, "%s/%s", d, f);
        copy_file(a, b);
    }
}

START_TEST(names)
{
    static const char *const bad[] = {"../x", "/abs", "",  ".hidden", "a/b", "a b", "a\\b",
                                      "é",    "a:b",  "*", "x\ny",    "..",  ".",   "a\tb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!ds_name_valid(bad[i]), "accepted \"%s\"", bad[i]);
    ck_assert(!ds_name_valid(NULL));
    char longname[130];
    memset(longname, 'a', 129);
    longname[129] = '\0';
    ck_assert(!ds_name_valid(longname));
    longname[128] = '\0';
    ck_assert(ds_name_valid(longname));
    static const char *const good[] = {"a", "A-b_c.9", "x.h5ad", "a..b", "-x", "_"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(ds_name_valid(good[i]), "refused \"%s\"", good[i]);
    ck_assert_str_eq(ds_kind_name(DS_KIND_H5AD), "h5ad");
    ck_assert_str_eq(ds_kind_name(DS_KIND_POLIS), "polis");
}
END_TEST

START_TEST(bad_names_refused_everywhere)
{
    ds_store *s = ds_open(dir, &lim, NULL, &err);
    ck_assert_ptr_nonnull(s);
    /* A file outside DIR that a traversal would reach. */
    char outside[600];
    snprintf(outside, sizeof outside, "%s/victim.h5ad", spool);
    write_text(outside, "keep me");
    char trav[700];
    snprintf(trav, sizeof trav, "../%s/victim", strrchr(spool, '/') + 1);
    static const char *const bad[] = {"../x", "/abs", "", ".hidden", "a/b", NULL};
    for (int i = 0; i < 6; i++) {
        const char *n = i == 5 ? trav : bad[i];
        adx_err_init(&err);
        ck_assert_ptr_null(ds_summary(s, n, &err));
        ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);
        ck_assert_str_eq(err.items[0].pointer, "/dataset");
        adx_err_init(&err);
        ck_assert_ptr_null(ds_load(s, n, NULL, NULL, &err));
        ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);
        adx_err_init(&err);
        ck_assert_int_eq(ds_delete(s, n, &err), -1);
        ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);
        adx_err_init(&err);
        bool created = true;
        ck_assert_int_eq(
            ds_put(s, n, upload_json(small_json), DS_INPUT_JSON, NULL, &created, NULL, &err), -1);
        ck_assert_int_eq(err.type, ADX_E_BAD_OPTION);
    }
    struct stat st;
    ck_assert_int_eq(stat(outside, &st), 0);
    ck_assert_int_eq(st.st_size, 7);
    /* Every refused upload was removed, and nothing landed in DIR. */
    ck_assert_int_eq(count_in(spool, "up"), 0);
    json_t *l = ds_list(s, &err);
    ck_assert_uint_eq(json_array_size(l), 0);
    json_decref(l);
    ds_close(s);
}
END_TEST

START_TEST(json_round_trip)
{
    ds_store *s = ds_open(dir, &lim, NULL, &err);
    ck_assert_ptr_nonnull(s);
    bool created = false;
    json_t *sum = NULL;
    const char *up = upload_json(small_json);
    ck_assert_msg(ds_put(s, "small", up, DS_INPUT_JSON, NULL, &created, &sum, &err) == 0, "%s",
                  err.detail);
    ck_assert(created);
    ck_assert(access(up, F_OK) != 0);
    ck_assert(exists_in(dir, "small.h5ad"));
    ck_assert_int_eq(count_prefix(".put-"), 0);
    ck_assert_ptr_nonnull(sum);
    ck_assert_str_eq(json_string_value(json_object_get(sum, "name")), "small");
    ck_assert_str_eq(json_string_value(json_object_get(sum, "kind")), "h5ad");
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "n_obs")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "n_vars")), 3);
    ck_assert(str_in(json_object_get(sum, "obs"), "grp"));
    ck_assert(str_in(json_object_get(sum, "obsm"), "X_pca"));
    ck_assert(str_in(json_object_get(sum, "uns"), "title"));
    ck_assert(json_is_null(json_object_get(sum, "raw")));
    /* The null in grp was sanitized for storage, and the uploader is told. */
    ck_assert_uint_eq(json_array_size(json_object_get(sum, "report")), 1);
    struct stat st;
    char p[1024];
    snprintf(p, sizeof p, "%s/small.h5ad", dir);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "size_bytes")), st.st_size);
    const char *when = json_string_value(json_object_get(sum, "modified_at"));
    ck_assert_ptr_nonnull(when);
    ck_assert_uint_eq(strlen(when), 20);
    ck_assert_int_eq(when[19], 'Z');
    json_decref(sum);

    /* The same summary from ds_summary and ds_list (minus the put report). */
    json_t *one = ds_summary(s, "small", &err);
    ck_assert_msg(one != NULL, "%s", err.detail);
    ck_assert_ptr_null(json_object_get(one, "report"));
    json_t *x = json_object_get(one, "X");
    ck_assert_str_eq(json_string_value(json_object_get(x, "dtype")), "int64");
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(x, "shape"), 1)), 3);
    json_t *l = ds_list(s, &err);
    ck_assert_uint_eq(json_array_size(l), 1);
    ck_assert(json_equal(json_array_get(l, 0), one));
    json_decref(l);
    json_decref(one);

    /* Load gives the stored data back. */
    adx_report rep = {0};
    ad_anndata *a = ds_load(s, "small", NULL, &rep, &err);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_uint_eq(a->n_obs, 2);
    ck_assert_uint_eq(a->n_vars, 3);
    ck_assert_int_eq(a->X->kind, AD_K_ARRAY);
    ck_assert_int_eq(ad_array_get_i64(&a->X->u.arr, 5), 6);
    ck_assert_str_eq(ad_str_at(&a->obs.index, 1), "c2");
    ad_anndata_free(a);
    rep_free(&rep);
    ck_assert(!ds_pinned(s, "small"));

    /* A second put of the same name replaces it. */
    created = true;
    ck_assert_int_eq(ds_put(s, "small", upload_json("{\"adata\": {\"X\": [[7.0]]}}"), DS_INPUT_JSON,
                            NULL, &created, NULL, &err),
                     0);
    ck_assert(!created);
    one = ds_summary(s, "small", &err);
    ck_assert_int_eq(json_integer_value(json_object_get(one, "n_obs")), 1);
    ck_assert_uint_eq(json_array_size(json_object_get(one, "obs")), 0);
    json_decref(one);

    ck_assert_int_eq(ds_delete(s, "small", &err), 0);
    ck_assert(!exists_in(dir, "small.h5ad"));
    ck_assert_int_eq(count_prefix(".del-"), 0);
    adx_err_init(&err);
    ck_assert_ptr_null(ds_summary(s, "small", &err));
    ck_assert_int_eq(err.type, ADX_E_NOT_FOUND);
    ck_assert_str_eq(err.items[0].pointer, "/dataset");
    l = ds_list(s, &err);
    ck_assert_uint_eq(json_array_size(l), 0);
    json_decref(l);
    ds_close(s);
}
END_TEST

START_TEST(h5ad_round_trip)
{
    ds_store *s = ds_open(dir, &lim, NULL, &err);
    const char *up = upload_h5ad(h5_json);
    struct stat up_st;
    ck_assert_int_eq(stat(up, &up_st), 0);
    bool created = false;
    json_t *sum = NULL;
    ck_assert_msg(ds_put(s, "cells", up, DS_INPUT_H5AD, NULL, &created, &sum, &err) == 0, "%s",
                  err.detail);
    ck_assert(created);
    ck_assert(access(up, F_OK) != 0);
    /* The bytes as uploaded, not a rewrite. */
    char p[1024];
    snprintf(p, sizeof p, "%s/cells.h5ad", dir);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_size, up_st.st_size);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "n_obs")), 3);
    ck_assert(str_in(json_object_get(sum, "layers"), "counts"));
    ck_assert(str_in(json_object_get(sum, "obs"), "n"));
    json_decref(sum);
    ad_anndata *a = ds_load(s, "cells", NULL, NULL, &err);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_double_eq(ad_array_get_f64(&a->X->u.arr, 5), 6.5);
    ad_anndata_free(a);
    ck_assert_int_eq(ds_delete(s, "cells", &err), 0);
    adx_err_init(&err);
    ck_assert_int_eq(ds_delete(s, "cells", &err), -1);
    ck_assert_int_eq(err.type, ADX_E_NOT_FOUND);
    ds_close(s);
}
END_TEST

START_TEST(pinned_conflicts)
{
    ds_store *s = ds_open(dir, &lim, NULL, &err);
    ck_assert_int_eq(ds_put(s, "p", upload_json(small_json), DS_INPUT_JSON, NULL, NULL, NULL, &err),
                     0);
    char p[1024];
    snprintf(p, sizeof p, "%s/p.h5ad", dir);
    struct stat before, after;
    ck_assert_int_eq(stat(p, &before), 0);
    ds_pin(s, "p");
    ds_pin(s, "p");
    ck_assert(ds_pinned(s, "p"));
    const char *up = upload_json(h5_json);
    ck_assert_int_eq(ds_put(s, "p", up, DS_INPUT_JSON, NULL, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_CONFLICT);
    ck_assert_int_eq(adx_errtype_status(err.type), 409);
    ck_assert(access(up, F_OK) != 0);
    adx_err_init(&err);
    ck_assert_int_eq(ds_delete(s, "p", &err), -1);
    ck_assert_int_eq(err.type, ADX_E_CONFLICT);
    ck_assert_int_eq(stat(p, &after), 0);
    ck_assert_int_eq(before.st_ino, after.st_ino);
    ck_assert_int_eq(before.st_size, after.st_size);
    ck_assert_int_eq(count_prefix(".put-") + count_prefix(".del-"), 0);
    /* Still pinned once: two pins need two unpins. */
    ds_unpin(s, "p");
    ck_assert(ds_pinned(s, "p"));
    adx_err_init(&err);
    ck_assert_int_eq(ds_delete(s, "p", &err), -1);
    ds_unpin(s, "p");
    ds_unpin(s, "p"); /* ignored */
    ck_assert(!ds_pinned(s, "p"));
    adx_err_init(&err);
    ck_assert_int_eq(ds_delete(s, "p", &err), 0);
    /* A pin on a name that does not exist yet blocks its creation too. */
    ds_pin(s, "q");
    adx_err_init(&err);
    ck_assert_int_eq(ds_put(s, "q", upload_json(small_json), DS_INPUT_JSON, NULL, NULL, NULL, &err),
                     -1);
    ck_assert_int_eq(err.type, ADX_E_CONFLICT);
    ck_assert(!exists_in(dir, "q.h5ad"));
    ds_unpin(s, "q");
    ds_close(s);
}
END_TEST

START_TEST(polis_folder)
{
    add_polis("conv");
    /* A folder without votes.csv and stray files are not datasets. */
    char p[1024];
    snprintf(p, sizeof p, "%s/empty", dir);
    ck_assert_int_eq(mkdir(p, 0750), 0);
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    write_text(p, "x");
    snprintf(p, sizeof p, "%s/.hidden.h5ad", dir);
    write_text(p, "x");
    ds_store *s = ds_open(dir, &lim, NULL, &err);
    ck_assert_int_eq(
        ds_put(s, "zz", upload_json(small_json), DS_INPUT_JSON, NULL, NULL, NULL, &err), 0);
    json_t *l = ds_list(s, &err);
    ck_assert_msg(l != NULL, "%s", err.detail);
    ck_assert_uint_eq(json_array_size(l), 2);
    json_t *c = json_array_get(l, 0);
    ck_assert_str_eq(json_string_value(json_object_get(c, "name")), "conv");
    ck_assert_str_eq(json_string_value(json_object_get(c, "kind")), "polis");
    ck_assert_ptr_null(json_object_get(c, "error"));
    ck_assert_int_eq(json_integer_value(json_object_get(c, "n_obs")), 138);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "n_vars")), 46);
    ck_assert(str_in(json_object_get(c, "uns"), "votes"));
    ck_assert(str_in(json_object_get(c, "var"), "content"));
    ck_assert_int_gt(json_integer_value(json_object_get(c, "size_bytes")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 1), "name")), "zz");
    json_decref(l);

    adx_report rep = {0};
    ad_anndata *a = ds_load(s, "conv", NULL, &rep, &err);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_uint_eq(a->n_obs, 138);
    ck_assert_uint_eq(a->n_vars, 46);
    ad_anndata_free(a);
    rep_free(&rep);

    /* Only the operator replaces a Polis folder. */
    const char *up = upload_json(small_json);
    ck_assert_int_eq(ds_put(s, "conv", up, DS_INPUT_JSON, NULL, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_CONFLICT);
    ck_assert(access(up, F_OK) != 0);
    ck_assert(!exists_in(dir, "conv.h5ad"));

    /* Deleting takes the whole folder. */
    adx_err_init(&err);
    ck_assert_int_eq(ds_delete(s, "conv", &err), 0);
    ck_assert(!exists_in(dir, "conv"));
    ck_assert_int_eq(count_prefix(".del-"), 0);
    ck_assert(exists_in(dir, "empty"));
    ds_close(s);
}
END_TEST

START_TEST(broken_dataset_listed_with_error)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/junk.h5ad", dir);
    write_text(p, "this is not hdf5");
    ds_store *s = ds_open(dir, &lim, NULL, &err);
    json_t *l = ds_list(s, &err);
    ck_assert_uint_eq(json_array_size(l), 1);
    json_t *e = json_object_get(json_array_get(l, 0), "error");
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "status")), 400);
    /* No path of this machine in what a client sees. */
    char *txt = json_dumps(l, 0);
    ck_assert_ptr_null(strstr(txt, dir));
    free(txt);
    json_decref(l);
    /* The cached failure re-raises the same error. */
    for (int i = 0; i < 2; i++) {
        adx_err_init(&err);
        ck_assert_ptr_null(ds_summary(s, "junk", &err));
        ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    }
    ds_close(s);
}
END_TEST

START_TEST(corrupt_upload_rejected)
{
    ds_store *s = ds_open(dir, &lim, NULL, &err);
    ck_assert_int_eq(ds_put(s, "keep", upload_h5ad(h5_json), DS_INPUT_H5AD, NULL, NULL, NULL, &err),
                     0);
    /* An HDF5 file cut in half: the signature is there, the rest is not. */
    const char *good = upload_h5ad(h5_json);
    struct stat st;
    ck_assert_int_eq(stat(good, &st), 0);
    ck_assert_int_eq(truncate(good, st.st_size / 2), 0);
    bool created = true;
    ck_assert_int_eq(ds_put(s, "keep", good, DS_INPUT_H5AD, NULL, &created, NULL, &err), -1);
    ck_assert(err.status >= 400 && err.status < 500);
    ck_assert(access(good, F_OK) != 0);
    ck_assert_int_eq(count_prefix(".put-"), 0);
    ck_assert_ptr_null(strstr(err.detail, spool));
    /* The stored version is untouched. */
    json_t *sum = ds_summary(s, "keep", &err);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "n_obs")), 3);
    json_decref(sum);

    /* Malformed and wrong-shaped JSON is refused the same way. */
    static const char *const bad[] = {"{\"X\": [[1, 2], [3]]}", "{\"X\": ", "[1, 2]",
                                      "{\"adata\": {\"X\": [[1]], \"bogus\": 1}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        adx_err_init(&err);
        const char *up = upload_json(bad[i]);
        ck_assert_int_eq(ds_put(s, "bad", up, DS_INPUT_JSON, NULL, NULL, NULL, &err), -1);
        ck_assert_msg(err.status == 400, "%s: %d", bad[i], err.status);
        ck_assert(access(up, F_OK) != 0);
    }
    ck_assert(!exists_in(dir, "bad.h5ad"));
    ck_assert_int_eq(count_prefix(".put-"), 0);
    ds_close(s);
}
END_TEST

START_TEST(leftovers_cleaned_on_open)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/.put-abc123", dir);
    write_text(p, "half an upload");
    snprintf(p, sizeof p, "%s/.del-xyz789", dir);
    ck_assert_int_eq(mkdir(p, 0750), 0);
    snprintf(p, sizeof p, "%s/.del-xyz789/votes.csv", dir);
    write_text(p, "a,b\n");
    snprintf(p, sizeof p, "%s/.del-file00", dir);
    write_text(p, "x");
    snprintf(p, sizeof p, "%s/.keep", dir);
    write_text(p, "not ours");
    ds_store *s = ds_open(dir, &lim, NULL, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(count_prefix(".put-") + count_prefix(".del-"), 0);
    ck_assert(exists_in(dir, ".keep"));
    /* While a store has the directory open, its temp entries may be a put
     * in flight: a second store (another process, say) leaves them. */
    snprintf(p, sizeof p, "%s/.put-inflight", dir);
    write_text(p, "being written");
    ds_store *s2 = ds_open(dir, &lim, NULL, &err);
    ck_assert_ptr_nonnull(s2);
    ck_assert(exists_in(dir, ".put-inflight"));
    ds_close(s2);
    ds_close(s);
    s = ds_open(dir, &lim, NULL, &err);
    ck_assert(!exists_in(dir, ".put-inflight"));
    ds_close(s);
}
END_TEST

START_TEST(open_creates_dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/new/", dir);
    ds_store *s = ds_open(p, &lim, NULL, &err);
    ck_assert_ptr_nonnull(s);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777 & ~0022, 0750 & ~0022);
    /* Trailing slash dropped. */
    ck_assert_int_ne(ds_dir(s)[strlen(ds_dir(s)) - 1], '/');
    ds_close(s);
    /* A file where the directory should be. */
    snprintf(p, sizeof p, "%s/file", dir);
    write_text(p, "x");
    adx_err_init(&err);
    ck_assert_ptr_null(ds_open(p, &lim, NULL, &err));
    ck_assert_int_eq(err.type, ADX_E_IO);
    ck_assert_ptr_null(strstr(err.detail, dir));
}
END_TEST

START_TEST(cache_follows_file)
{
    ds_store *s = ds_open(dir, &lim, NULL, &err);
    ck_assert_int_eq(ds_put(s, "c", upload_json(small_json), DS_INPUT_JSON, NULL, NULL, NULL, &err),
                     0);
    json_t *a = ds_summary(s, "c", &err);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "n_obs")), 2);
    /* The operator swaps the file behind the store's back. */
    const char *other = upload_h5ad(h5_json);
    char p[1024];
    snprintf(p, sizeof p, "%s/c.h5ad", dir);
    ck_assert_int_eq(rename(other, p), 0);
    json_t *b = ds_summary(s, "c", &err);
    ck_assert_msg(b != NULL, "%s", err.detail);
    ck_assert_int_eq(json_integer_value(json_object_get(b, "n_obs")), 3);
    ck_assert(str_in(json_object_get(b, "layers"), "counts"));
    json_decref(a);
    json_decref(b);
    /* A copy: changing what ds_summary returned leaves the cache alone. */
    json_t *c1 = ds_summary(s, "c", &err);
    json_object_set_new(c1, "n_obs", json_integer(99));
    json_decref(c1);
    json_t *c2 = ds_summary(s, "c", &err);
    ck_assert_int_eq(json_integer_value(json_object_get(c2, "n_obs")), 3);
    json_decref(c2);
    /* Editing a Polis CSV in place changes the summary too. */
    add_polis("pol");
    json_t *p1 = ds_summary(s, "pol", &err);
    ck_assert_int_eq(json_integer_value(json_object_get(p1, "n_obs")), 138);
    json_decref(p1);
    snprintf(p, sizeof p, "%s/pol/votes.csv", dir);
    write_text(p, "timestamp,comment-id,voter-id,vote\n1,0,5,1\n2,2,6,-1\n");
    json_t *p2 = ds_summary(s, "pol", &err);
    ck_assert_msg(p2 != NULL, "%s", err.detail);
    ck_assert_int_eq(json_integer_value(json_object_get(p2, "n_obs")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(p2, "n_vars")), 2);
    json_decref(p2);
    /* A file removed from outside is gone from the list and a 404. */
    snprintf(p, sizeof p, "%s/c.h5ad", dir);
    ck_assert_int_eq(unlink(p), 0);
    adx_err_init(&err);
    ck_assert_ptr_null(ds_summary(s, "c", &err));
    ck_assert_int_eq(err.type, ADX_E_NOT_FOUND);
    json_t *l = ds_list(s, &err);
    ck_assert_uint_eq(json_array_size(l), 1);
    json_decref(l);
    ds_close(s);
}
END_TEST

START_TEST(h5ad_wins_over_folder)
{
    add_polis("both");
    ds_store *s = ds_open(dir, &lim, NULL, &err);
    char p[1024];
    snprintf(p, sizeof p, "%s/both.h5ad", dir);
    ck_assert_int_eq(rename(upload_h5ad(h5_json), p), 0);
    json_t *l = ds_list(s, &err);
    ck_assert_uint_eq(json_array_size(l), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 0), "kind")), "h5ad");
    json_decref(l);
    /* A PUT replaces the file, which is the dataset; the folder stays. */
    bool created = true;
    ck_assert_int_eq(
        ds_put(s, "both", upload_json(small_json), DS_INPUT_JSON, NULL, &created, NULL, &err), 0);
    ck_assert(!created);
    ck_assert(exists_in(dir, "both/votes.csv"));
    ds_close(s);
}
END_TEST

START_TEST(uploads_checked_in_a_child)
{
    const char *helper = getenv("ADX_H5CHECK");
    ck_assert_msg(helper != NULL, "ADX_H5CHECK not set");
    ds_store *s = ds_open(dir, &lim, helper, &err);
    ck_assert_msg(ds_put(s, "ok", upload_h5ad(h5_json), DS_INPUT_H5AD, NULL, NULL, NULL, &err) == 0,
                  "%s", err.detail);
    const char *bad = upload_h5ad(h5_json);
    struct stat st;
    ck_assert_int_eq(stat(bad, &st), 0);
    ck_assert_int_eq(truncate(bad, st.st_size / 2), 0);
    adx_err_init(&err);
    ck_assert_int_eq(ds_put(s, "bad", bad, DS_INPUT_H5AD, NULL, NULL, NULL, &err), -1);
    ck_assert_int_eq(err.status, 400);
    ck_assert_ptr_null(strstr(err.detail, spool));
    ck_assert(access(bad, F_OK) != 0);
    ck_assert(!exists_in(dir, "bad.h5ad"));
    ck_assert_int_eq(count_prefix(".put-"), 0);
    /* A helper that cannot run refuses the upload instead of skipping the
     * check. */
    ds_close(s);
    s = ds_open(dir, &lim, "/nonexistent/adx-h5check", &err);
    adx_err_init(&err);
    ck_assert_int_eq(ds_put(s, "ok2", upload_h5ad(h5_json), DS_INPUT_H5AD, NULL, NULL, NULL, &err),
                     -1);
    ck_assert(!exists_in(dir, "ok2.h5ad"));
    ds_close(s);
}
END_TEST

typedef struct worker {
    ds_store *s;
    int failures;
} worker;

static void *reader(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 40; i++) {
        adx_err e;
        adx_err_init(&e);
        ds_pin(w->s, "shared");
        json_t *sum = ds_summary(w->s, "shared", &e);
        if (!sum || json_integer_value(json_object_get(sum, "n_obs")) != 2) w->failures++;
        /* Changing the copy must not reach the cache other threads read. */
        json_array_append_new(json_object_get(sum, "obs"), json_string("mine"));
        json_decref(sum);
        ds_unpin(w->s, "shared");
        json_t *l = ds_list(w->s, &e);
        if (!l) w->failures++;
        json_decref(l);
    }
    return NULL;
}

START_TEST(threads_share_a_store)
{
    ds_store *s = ds_open(dir, &lim, NULL, &err);
    ck_assert_int_eq(
        ds_put(s, "shared", upload_json(small_json), DS_INPUT_JSON, NULL, NULL, NULL, &err), 0);
    worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){s, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, reader, &w[i]), 0);
    }
    /* Meanwhile other names come and go. */
    for (int i = 0; i < 10; i++) {
        adx_err e;
        adx_err_init(&e);
        ck_assert_int_eq(
            ds_put(s, "other", upload_json(small_json), DS_INPUT_JSON, NULL, NULL, NULL, &e), 0);
        ck_assert_int_eq(ds_delete(s, "other", &e), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(w[i].failures, 0);
    }
    ck_assert(!ds_pinned(s, "shared"));
    json_t *sum = ds_summary(s, "shared", &err);
    ck_assert_uint_eq(json_array_size(json_object_get(sum, "obs")), 1);
    json_decref(sum);
    ds_close(s);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("datasets");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, names);
    tcase_add_test(tc, bad_names_refused_everywhere);
    tcase_add_test(tc, json_round_trip);
    tcase_add_test(tc, h5ad_round_trip);
    tcase_add_test(tc, pinned_conflicts);
    tcase_add_test(tc, polis_folder);
    tcase_add_test(tc, broken_dataset_listed_with_error);
    tcase_add_test(tc, corrupt_upload_rejected);
    tcase_add_test(tc, leftovers_cleaned_on_open);
    tcase_add_test(tc, open_creates_dir);
    tcase_add_test(tc, cache_follows_file);
    tcase_add_test(tc, h5ad_wins_over_folder);
    tcase_add_test(tc, threads_share_a_store);
    tcase_add_test(tc, uploads_checked_in_a_child);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
