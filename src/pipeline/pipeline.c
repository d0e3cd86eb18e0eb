/* adx_pipeline implementation: load → prepare → write for one job. */
#include "adx_pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adx_afile.h"
#include "adx_csvb.h"
#include "adx_datasets.h"
#include "adx_filter.h"
#include "adx_h5r.h"
#include "adx_h5w.h"
#include "adx_jdec.h"
#include "adx_model.h"
#include "adx_npz.h"
#include "adx_parts.h"
#include "adx_polis.h"
#include "adx_report.h"
#include "adx_sanitize.h"
#include "adx_src.h"

enum { STAGE_LOADED = 1, STAGE_PREPARED, STAGE_WRITTEN };

struct pipe_job {
    adx_limits lim;
    adx_request req;
    ad_anndata *a;
    adx_report rep;
    adx_budget budget;      /* memory of this request while it is decoded */
    bool decoded_from_body; /* progress already went to DECODE_SHARE while reading */
    ds_store *store;        /* a deferred dataset is read from here by pipe_prepare */
    int stage;
    uint64_t size;
    char sha256[65];
    double writer_s, commit_s;
};

/* Decoding is the first half of a job's progress; the writer the second. */
static const double DECODE_SHARE = 0.5;

void pipe_free(pipe_job *j)
{
    if (!j) return;
    req_free(&j->req);
    ad_anndata_free(j->a);
    rep_free(&j->rep);
    free(j);
}

static pipe_job *job_new(const adx_limits *lim, adx_err *err)
{
    pipe_job *j = calloc(1, sizeof *j);
    if (!j) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        return NULL;
    }
    j->lim = *lim;
    adx_budget_init(&j->budget, lim->max_request_memory);
    return j;
}

/* The request's include, so the h5ad reader skips what pipe_prepare's
 * filter would drop (req_parse validated the paths). */
static h5r_opts include_opts(const adx_request *r)
{
    return (h5r_opts){.include = (const char *const *)r->include,
                      .n_include = r->n_include,
                      .has_include = r->has_include};
}

/* Globs cost their length for every key they are matched against: their
 * number and length are limits of their own (413 naming them). */
static int check_patterns(const adx_request *r, const adx_limits *lim, adx_err *err)
{
    const struct {
        const char *name;
        char **v;
        size_t n;
    } lists[] = {{"include", r->include, r->n_include},
                 {"categorical_columns", r->cat_globs, r->n_cat}};
    for (size_t l = 0; l < 2; l++) {
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/%s", lists[l].name);
        if (lists[l].n > lim->max_patterns)
            return adx_err_set(err, ADX_E_LIMIT, ptr, "%zu patterns exceed max_patterns = %" PRIu64,
                               lists[l].n, lim->max_patterns);
        for (size_t i = 0; i < lists[l].n; i++)
            if (strlen(lists[l].v[i]) > lim->max_pattern_bytes) {
                snprintf(ptr, sizeof ptr, "/%s/%zu", lists[l].name, i);
                return adx_err_set(err, ADX_E_LIMIT, ptr,
                                   "a pattern of %zu bytes exceeds max_pattern_bytes = %" PRIu64,
                                   strlen(lists[l].v[i]), lim->max_pattern_bytes);
            }
    }
    return 0;
}

/* A stored dataset as the model: the stored columns are typed already, so
 * categorical_columns acts on the model, as for a file given directly. */
static int load_dataset(pipe_job *j, const adx_ctl *ctl, adx_err *err)
{
    h5r_opts ro = include_opts(&j->req);
    j->a = ds_load_opts(j->store, j->req.dataset, &ro, ctl, &j->rep, err);
    if (!j->a) return -1;
    return san_categorize_columns(j->a, (const char *const *)j->req.cat_globs, j->req.n_cat,
                                  j->lim.max_include_tests, err);
}

/* The request document read from `s` (closed here) into job j (freed on
 * failure). `parts` (NULL = none) are the binary parts it may reference. */
static pipe_job *load_doc(pipe_job *j, adx_src *s, const pipe_env *env, parts_set *parts,
                          bool defer, adx_err *err)
{
    jdec_opts ro = {.limits = &j->lim,
                    .budget = &j->budget,
                    .ctl = env ? env->ctl : NULL,
                    .progress_to = DECODE_SHARE};
    jdec_doc *doc = s ? jdec_read(s, &ro, err) : NULL;
    adx_src_close(s);
    if (!doc) goto fail;
    j->decoded_from_body = env && env->ctl;
    json_t *root = jdec_doc_envelope(doc, "adata", err);
    if (!root) goto fail;
    int rc = req_parse(root, &j->req, err);
    json_decref(root);
    if (rc || check_patterns(&j->req, &j->lim, err)) goto fail;
    if (j->req.dataset) {
        /* Nothing in the document is needed any more: drop it before the
         * (possibly large) dataset is read. */
        jdec_doc_free(doc);
        doc = NULL;
        if (!env || !env->store) {
            adx_err_set(err, ADX_E_BAD_OPTION, "/dataset",
                        "stored datasets are not available here (no data directory is "
                        "configured)");
            goto fail;
        }
        j->store = env->store;
        if (parts && parts_check_unreferenced(parts, err)) goto fail;
        if (defer) {
            /* The summary is cached by file identity: after the first
             * request it costs a stat(), and it is a 404 when missing. */
            json_t *sum = ds_summary(j->store, j->req.dataset, err);
            if (!sum) goto fail;
            json_decref(sum);
        } else if (load_dataset(j, env ? env->ctl : NULL, err)) {
            goto fail;
        }
        j->stage = STAGE_LOADED;
        return j;
    }
    if (parts) parts->budget = &j->budget, parts->lim = &j->lim;
    jdec_opts o = {
        .limits = &j->lim,
        .part = parts ? parts_jdec_part : NULL,
        .part_ud = parts,
        .budget = &j->budget,
        .cat_globs = (const char *const *)j->req.cat_globs,
        .n_cat_globs = j->req.n_cat,
        .base_ptr = "/adata",
        /* refused here, at the request's pointer, rather than by the writer */
        .h5ad_names = j->req.format == ADX_FMT_H5AD,
    };
    /* An explicit empty categorical_columns must not fall back to jdec's
     * default, which it would do for a NULL list. */
    static const char *const none[] = {""};
    if (!o.cat_globs) o.cat_globs = none;
    if (!jdec_doc_has(doc, "adata")) {
        /* req_parse has already refused a request with neither. */
        adx_err_set(err, ADX_E_SCHEMA, "/adata", "the request needs \"adata\" or \"dataset\"");
        goto fail;
    }
    j->a = jdec_doc_anndata(doc, "adata", &o, &j->rep, err);
    if (!j->a) goto fail;
    if (parts && parts_check_unreferenced(parts, err)) goto fail;
    /* The model does not reference the document; it goes before the
     * heavier stages run. */
    jdec_doc_free(doc);
    j->stage = STAGE_LOADED;
    return j;
fail:
    if (!adx_err_failed(err)) adx_err_set(err, ADX_E_INTERNAL, "", "loading the request failed");
    jdec_doc_free(doc);
    pipe_free(j);
    return NULL;
}

static void quota_release(const pipe_env *env, uint64_t n)
{
    if (n && env && env->release) env->release(env->quota_ud, n);
}

/* The decompressed bytes of a gzip file at `path` in a new temporary file
 * next to it (random access for HDF5 and multipart parts); the limit is
 * on the decompressed size. Returns its fd; *tmp is its path, or "" when
 * `unlinked` asked for it to be gone at once. */
static int gunzip_beside(const char *path, const adx_limits *lim, const pipe_env *env,
                         bool unlinked, char *tmp, size_t cap, uint64_t *charged, adx_err *err)
{
    tmp[0] = '\0';
    *charged = 0;
    adx_src *s = adx_src_open_path(path, 0, err);
    if (s) s = adx_src_gzip(s, lim->max_body_bytes, err);
    if (!s) return -1;
    snprintf(tmp, cap, "%s.gunzip-XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        adx_src_close(s);
        tmp[0] = '\0';
        return (adx_err_cause(err, "%s", strerror(errno)),
                adx_err_set(err, ADX_E_IO, "", "cannot create a file to decompress into"));
    }
    if (unlinked) {
        unlink(tmp);
        tmp[0] = '\0';
    }
    enum { BUF = 1 << 20 };
    char *buf = malloc(BUF);
    int rc = buf ? 0 : adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
    while (!rc) {
        ssize_t r = adx_src_read(s, buf, BUF, err);
        if (r <= 0) {
            rc = r < 0 ? -1 : 0;
            break;
        }
        /* Charged before it is written, so the quota is never overdrawn. */
        if (env && env->reserve) {
            if (!env->reserve(env->quota_ud, (uint64_t)r)) {
                rc = adx_err_set(err, ADX_E_NO_SPACE, "",
                                 "the decompressed body does not fit in the spool "
                                 "(max_spool_bytes); retry once jobs expired or were deleted");
                break;
            }
            *charged += (uint64_t)r;
        }
        for (ssize_t o = 0; o < r && !rc;) {
            ssize_t w = write(fd, buf + o, (size_t)(r - o));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                int e = errno;
                adx_err_cause(err, "%s", strerror(e));
                rc = e == ENOSPC || e == EDQUOT
                         ? adx_err_set(err, ADX_E_NO_SPACE, "", "no room for the decompressed body")
                         : adx_err_set(err, ADX_E_IO, "", "cannot write the decompressed body");
            } else
                o += w;
        }
    }
    free(buf);
    adx_src_close(s);
    if (rc) {
        close(fd);
        if (tmp[0]) unlink(tmp);
        tmp[0] = '\0';
        quota_release(env, *charged);
        *charged = 0;
        return -1;
    }
    return fd;
}

int pipe_gunzip_copy(const char *path, const adx_limits *lim, const pipe_env *env, char *tmp,
                     size_t cap, uint64_t *charged, adx_err *err)
{
    int fd = gunzip_beside(path, lim, env, false, tmp, cap, charged, err);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

static pipe_job *open_request(const pipe_source *src, const adx_limits *lim, const pipe_env *env,
                              adx_err *err)
{
    pipe_job *j = job_new(lim, err);
    if (!j) return NULL;
    adx_src *s;
    if (src->path && !strcmp(src->path, "-"))
        s = adx_src_open_fd(0, 0, lim->max_body_bytes, err);
    else if (src->path)
        s = adx_src_open_path(src->path, lim->max_body_bytes, err);
    else
        s = adx_src_open_mem(src->buf, src->len, lim->max_body_bytes, err);
    if (s)
        s = src->gzip ? adx_src_gzip(s, lim->max_body_bytes, err)
                      : adx_src_auto(s, lim->max_body_bytes, err);
    /* No parts array: "part" in the request is a 400 that asks for a
     * multipart body; an empty one (the CLI) names the missing part. */
    if (!src->parts) return load_doc(j, s, env, NULL, src->defer_dataset, err);
    parts_set ps = {0};
    for (size_t i = 0; i < src->n_parts; i++) {
        if (parts_set_add_file(&ps, src->parts[i].name, src->parts[i].path, err)) {
            adx_src_close(s);
            parts_set_free(&ps);
            pipe_free(j);
            return NULL;
        }
    }
    j = load_doc(j, s, env, &ps, src->defer_dataset, err);
    parts_set_free(&ps);
    return j;
}

static pipe_job *open_multipart(const pipe_source *src, const adx_limits *lim, const pipe_env *env,
                                adx_err *err)
{
    char tmp[4096];
    uint64_t charged = 0; /* the unlinked copy's bytes, free once fd is closed */
    int fd = src->gzip ? gunzip_beside(src->path, lim, env, true, tmp, sizeof tmp, &charged, err)
                       : open(src->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (!adx_err_failed(err))
            (adx_err_cause(err, "%s", strerror(errno)),
             adx_err_set(err, ADX_E_IO, "", "cannot read the body"));
        return NULL;
    }
    struct stat st;
    pipe_job *j = NULL;
    parts_set ps = {0};
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_size > lim->max_body_bytes) {
        adx_err_set(err, ADX_E_LIMIT, "", "the body is larger than max_body_bytes = %llu",
                    (unsigned long long)lim->max_body_bytes);
        goto done;
    }
    parts_limits pl;
    parts_limits_default(&pl);
    pl.max_parts = lim->max_parts;
    pl.max_header_bytes = lim->max_part_header_bytes;
    if (parts_set_scan_fd(&ps, fd, src->content_type, &pl, err)) goto done;
    j = job_new(lim, err);
    if (!j) goto done;
    j = load_doc(j, parts_open_src(&ps, PARTS_REQUEST, lim->max_body_bytes, err), env, &ps,
                 src->defer_dataset, err);
done:
    parts_set_free(&ps);
    close(fd);
    quota_release(env, charged);
    return j;
}

static pipe_job *open_file(const pipe_source *src, const adx_limits *lim, const pipe_env *env,
                           adx_err *err)
{
    uint64_t charged = 0; /* the decompressed copy's bytes until it is unlinked */
    pipe_job *j = job_new(lim, err);
    if (!j) return NULL;
    char tmp[4096] = "";
    const char *path = src->path;
    json_t *none = src->options ? NULL : json_object();
    if (!src->options && !none) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        goto fail;
    }
    int rc = req_parse_mode(src->options ? src->options : none, REQ_OPTIONS, &j->req, err);
    json_decref(none);
    if (rc || check_patterns(&j->req, &j->lim, err)) goto fail;
    if (src->gzip && src->kind == PIPE_SRC_H5AD) {
        int fd = gunzip_beside(src->path, lim, env, false, tmp, sizeof tmp, &charged, err);
        if (fd < 0) goto fail;
        close(fd);
        path = tmp;
    }
    if (src->kind == PIPE_SRC_H5AD) {
        /* A crash of libhdf5 on a corrupt file then ends the helper, not
         * the caller. */
        h5r_opts ro = include_opts(&j->req);
        if (src->h5check && h5r_check_isolated_opts(src->h5check, path, &ro, &j->lim, 0, err))
            goto fail;
        j->a = h5r_read_opts(path, &ro, &j->lim, NULL, &j->rep, err);
    } else {
        j->a = polis_read_dir(path, &j->lim, &j->rep, err);
    }
    if (!j->a) goto fail;
    if (san_categorize_columns(j->a, (const char *const *)j->req.cat_globs, j->req.n_cat,
                               j->lim.max_include_tests, err))
        goto fail;
    if (tmp[0]) unlink(tmp);
    quota_release(env, charged);
    j->stage = STAGE_LOADED;
    return j;
fail:
    if (!adx_err_failed(err)) adx_err_set(err, ADX_E_INTERNAL, "", "loading the input failed");
    if (tmp[0]) unlink(tmp);
    quota_release(env, charged);
    pipe_free(j);
    return NULL;
}

static const char *const src_names[] = {NULL, "request", "multipart", "h5ad", "polis"};

const char *pipe_src_name(pipe_src_kind k)
{
    return k >= PIPE_SRC_REQUEST && k <= PIPE_SRC_POLIS ? src_names[k] : "unknown";
}

pipe_src_kind pipe_src_parse(const char *name)
{
    for (int k = PIPE_SRC_REQUEST; name && k <= PIPE_SRC_POLIS; k++)
        if (!strcmp(name, src_names[k])) return (pipe_src_kind)k;
    return (pipe_src_kind)0;
}

pipe_job *pipe_open(const pipe_source *src, const adx_limits *lim, const pipe_env *env,
                    adx_err *err)
{
    adx_limits dl;
    if (!lim) {
        adx_limits_default(&dl);
        lim = &dl;
    }
    pipe_job *j = NULL;
    switch (src ? src->kind : 0) {
    case PIPE_SRC_REQUEST:
        if (!src->path && !src->buf && src->len) break;
        j = open_request(src, lim, env, err);
        break;
    case PIPE_SRC_MULTIPART:
        if (!src->path || src->n_parts) break;
        j = open_multipart(src, lim, env, err);
        break;
    case PIPE_SRC_H5AD:
    case PIPE_SRC_POLIS:
        if (!src->path) break;
        return open_file(src, lim, env, err);
    default:
        break;
    }
    if (!j && !adx_err_failed(err))
        adx_err_set(err, ADX_E_INTERNAL, "", "pipe_open: an incomplete source");
    return j;
}

pipe_job *pipe_load_file_env(const char *request_path, const adx_limits *lim, const pipe_env *env,
                             adx_err *err)
{
    pipe_source src = {.kind = PIPE_SRC_REQUEST, .path = request_path};
    return pipe_open(&src, lim, env, err);
}

pipe_job *pipe_load_buffer_env(const char *buf, size_t len, const adx_limits *lim,
                               const pipe_env *env, adx_err *err)
{
    pipe_source src = {.kind = PIPE_SRC_REQUEST, .buf = buf ? buf : "", .len = len};
    return pipe_open(&src, lim, env, err);
}

pipe_job *pipe_load_file(const char *request_path, const adx_limits *lim, adx_err *err)
{
    return pipe_load_file_env(request_path, lim, NULL, err);
}

pipe_job *pipe_load_buffer(const char *buf, size_t len, const adx_limits *lim, adx_err *err)
{
    return pipe_load_buffer_env(buf, len, lim, NULL, err);
}

pipe_job *pipe_load_input(const char *path, pipe_src_kind kind, const json_t *options,
                          const adx_limits *lim, const char *h5check, adx_err *err)
{
    if (kind != PIPE_SRC_H5AD && kind != PIPE_SRC_POLIS) {
        adx_err_set(err, ADX_E_INTERNAL, "", "pipe_load_input needs an h5ad file or a folder");
        return NULL;
    }
    pipe_source src = {.kind = kind, .path = path, .options = options, .h5check = h5check};
    return pipe_open(&src, lim, NULL, err);
}

int pipe_prepare(pipe_job *j, adx_err *err)
{
    return pipe_prepare_ctl(j, NULL, err);
}

static int canceled(const adx_ctl *ctl, adx_err *err)
{
    return adx_ctl_canceled(ctl) ? adx_err_set(err, ADX_E_CANCELED, "", "the job was canceled") : 0;
}

int pipe_prepare_ctl(pipe_job *j, const adx_ctl *ctl, adx_err *err)
{
    if (!j || j->stage != STAGE_LOADED)
        return adx_err_set(err, ADX_E_INTERNAL, "", "pipe_prepare called out of order");
    /* What sanitize builds (strings for object columns, categoricals) counts
     * against the request's budget, as the decode did. */
    adx_ctl sc = ctl ? *ctl : (adx_ctl){0};
    sc.budget = &j->budget;
    ctl = &sc;
    if (canceled(ctl, err)) goto fail;
    if (!j->a && j->req.dataset && load_dataset(j, ctl, err)) goto fail;
    /* Filter first: the report must not list fixes to elements the client
     * excluded, and dropped elements need no sanitizing. */
    if (canceled(ctl, err)) goto fail;
    if (j->req.has_include && flt_apply(j->a, (const char *const *)j->req.include, j->req.n_include,
                                        j->lim.max_include_tests, "/include", &j->rep, err))
        goto fail;
    if (san_anndata_ctl(j->a, &j->lim, ctl, &j->rep, err)) goto fail;
    /* payload.md states the option for every format; csv and txt would
     * print a categorical's values as they are, so there it is skipped. */
    if ((j->req.format == ADX_FMT_H5AD || j->req.format == ADX_FMT_NPZ) &&
        j->req.strings_to_categoricals && san_strings_to_categoricals_ctl(j->a, ctl, err))
        goto fail;
    j->stage = STAGE_PREPARED;
    return 0;
fail:
    if (!adx_err_failed(err)) adx_err_set(err, ADX_E_INTERNAL, "", "preparing the data failed");
    return -1;
}

static int run_writer(pipe_job *j, afile *out, const adx_ctl *ctl, adx_err *err)
{
    int level = j->req.level < 0 ? 0 : j->req.level;
    switch (j->req.format) {
    case ADX_FMT_H5AD: {
        h5w_opts o;
        h5w_opts_default(&o);
        o.compression = j->req.compression;
        if (j->req.compression == ADX_COMP_GZIP) o.level = j->req.level;
        /* libhdf5 opens files by name; it has closed it when this returns. */
        return h5w_write(j->a, afile_temp_path(out), &o, ctl, &j->rep, err);
    }
    case ADX_FMT_NPZ:
        return npz_write_to(j->a, out, j->req.compression, level, ctl, &j->rep, err);
    case ADX_FMT_CSV:
    case ADX_FMT_TXT:
        return csvb_write_to(j->a, out, j->req.format == ADX_FMT_TXT ? '\t' : ',',
                             j->req.compression, level, &j->lim, ctl, &j->rep, err);
    }
    return adx_err_set(err, ADX_E_INTERNAL, "", "unknown output format");
}

typedef struct scaled_ctl {
    const adx_ctl *in;
    double lo;
} scaled_ctl;

static void scaled_progress(void *ud, double f)
{
    const scaled_ctl *s = ud;
    adx_ctl_progress(s->in, s->lo + (1 - s->lo) * f);
}

int pipe_write(pipe_job *j, const char *out_path, const adx_ctl *ctl, adx_err *err)
{
    return pipe_write_sync(j, out_path, AFILE_SYNC_ALL, ctl, err);
}

int pipe_write_sync(pipe_job *j, const char *out_path, afile_sync sync, const adx_ctl *ctl,
                    adx_err *err)
{
    if (!j || j->stage != STAGE_PREPARED)
        return adx_err_set(err, ADX_E_INTERNAL, "", "pipe_write called out of order");
    /* After a decode that reported its half, the writer's 0..1 is the rest.
     * The writer's own buffers count against the request's budget. */
    scaled_ctl sd = {ctl, DECODE_SHARE};
    adx_ctl sc = {.budget = &j->budget};
    if (ctl) {
        sc.cancel = ctl->cancel;
        sc.progress = ctl->progress;
        sc.ud = ctl->ud;
        if (j->decoded_from_body && ctl->progress) {
            sc.progress = scaled_progress;
            sc.ud = &sd;
        }
    }
    ctl = &sc;
    if (adx_ctl_canceled(ctl)) return adx_err_set(err, ADX_E_CANCELED, "", "the job was canceled");
    /* A result is meant to be read by others. */
    afile_opts o = {.mode = 0644, .sha256 = true, .sync = sync};
    afile *f = afile_begin(out_path, &o, err);
    if (!f) return -1;
    double t0 = adx_mono_s();
    int rc = run_writer(j, f, ctl, err);
    double t1 = adx_mono_s();
    if (rc == 0 && adx_ctl_canceled(ctl))
        rc = adx_err_set(err, ADX_E_CANCELED, "", "the job was canceled");
    if (rc != 0) {
        if (!adx_err_failed(err)) adx_err_set(err, ADX_E_INTERNAL, "", "writing the file failed");
        afile_abort(f);
        return -1;
    }
    afile_result res;
    if (afile_commit(f, &res, err) != 0) return -1;
    j->writer_s = t1 - t0;
    j->commit_s = adx_mono_s() - t1;
    j->size = res.size;
    memcpy(j->sha256, res.sha256, sizeof j->sha256);
    j->stage = STAGE_WRITTEN;
    adx_ctl_progress(ctl, 1.0);
    return 0;
}

const adx_request *pipe_request(const pipe_job *j)
{
    return j ? &j->req : NULL;
}

uint64_t pipe_model_bytes(const pipe_job *j)
{
    return j && j->a ? ad_anndata_bytes(j->a) : 0;
}

int pipe_write_times(const pipe_job *j, double *writer_s, double *commit_s)
{
    if (!j || j->stage != STAGE_WRITTEN) return -1;
    *writer_s = j->writer_s;
    *commit_s = j->commit_s;
    return 0;
}

int pipe_output(const pipe_job *j, uint64_t *size, const char **sha256_hex)
{
    if (!j || j->stage != STAGE_WRITTEN) return -1;
    if (size) *size = j->size;
    if (sha256_hex) *sha256_hex = j->sha256;
    return 0;
}

json_t *pipe_result_json(const pipe_job *j, const char *job_id)
{
    if (!j) return NULL;
    char *fname = req_filename(&j->req, job_id);
    if (!fname) return NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "format", adx_format_name(j->req.format),
                          "filename", fname, "content_type", adx_format_content_type(j->req.format),
                          "compression", adx_compression_name(j->req.compression));
    free(fname);
    if (!o) return NULL;
    if (j->req.compression == ADX_COMP_GZIP)
        json_object_set_new(o, "compression_opts", json_integer(j->req.level));
    if (j->stage == STAGE_WRITTEN) {
        json_object_set_new(o, "size_bytes", json_integer((json_int_t)j->size));
        json_object_set_new(o, "sha256", json_string(j->sha256));
    }
    json_t *s = j->a ? ad_summary_json(j->a) : json_null();
    json_t *r = rep_to_json(&j->rep);
    /* set_new consumes its value even when it fails, so no leak either way. */
    int bad = json_object_set_new(o, "summary", s);
    bad |= json_object_set_new(o, "report", r);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
