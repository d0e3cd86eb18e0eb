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
#include "adx_polis.h"
#include "adx_report.h"
#include "adx_sanitize.h"

enum { STAGE_LOADED = 1, STAGE_PREPARED, STAGE_WRITTEN };

struct pipe_job {
    adx_limits lim;
    adx_request req;
    ad_anndata *a;
    adx_report rep;
    adx_budget budget;      /* memory of this request while it is decoded */
    bool decoded_from_body; /* progress already went to DECODE_SHARE while reading */
    int stage;
    uint64_t size;
    char sha256[65];
};

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

/* Takes ownership of doc (freed before returning, whatever happens). */
static pipe_job *load_doc(pipe_job *j, jdec_doc *doc, const pipe_env *env, adx_err *err)
{
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
        h5r_opts ro = include_opts(&j->req);
        j->a = ds_load_opts(env->store, j->req.dataset, &ro, NULL, &j->rep, err);
        if (!j->a) goto fail;
        /* As for a file given directly: the stored columns are typed
         * already, so the option acts on the model. */
        if (san_categorize_columns(j->a, (const char *const *)j->req.cat_globs, j->req.n_cat, err))
            goto fail;
        j->stage = STAGE_LOADED;
        return j;
    }
    jdec_opts o = {
        .limits = &j->lim,
        .budget = &j->budget,
        .cat_globs = (const char *const *)j->req.cat_globs,
        .n_cat_globs = j->req.n_cat,
        .base_ptr = "/adata",
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

/* Decoding is the first half of a job's progress; the writer the second. */
static const double DECODE_SHARE = 0.5;

pipe_job *pipe_load_file_env(const char *request_path, const adx_limits *lim, const pipe_env *env,
                             adx_err *err)
{
    pipe_job *j = job_new(lim, err);
    if (!j) return NULL;
    jdec_opts o = {.limits = &j->lim,
                   .budget = &j->budget,
                   .ctl = env ? env->ctl : NULL,
                   .progress_to = DECODE_SHARE};
    jdec_doc *doc = jdec_read_file(request_path, &o, err);
    if (!doc) {
        if (!adx_err_failed(err)) adx_err_set(err, ADX_E_IO, "", "cannot read the request");
        pipe_free(j);
        return NULL;
    }
    j->decoded_from_body = env && env->ctl;
    return load_doc(j, doc, env, err);
}

pipe_job *pipe_load_buffer_env(const char *buf, size_t len, const adx_limits *lim,
                               const pipe_env *env, adx_err *err)
{
    pipe_job *j = job_new(lim, err);
    if (!j) return NULL;
    jdec_opts o = {.limits = &j->lim,
                   .budget = &j->budget,
                   .ctl = env ? env->ctl : NULL,
                   .progress_to = DECODE_SHARE};
    jdec_doc *doc = jdec_read_buffer(buf, len, &o, err);
    if (!doc) {
        if (!adx_err_failed(err)) adx_err_set(err, ADX_E_INVALID_JSON, "", "cannot parse request");
        pipe_free(j);
        return NULL;
    }
    j->decoded_from_body = env && env->ctl;
    return load_doc(j, doc, env, err);
}

pipe_job *pipe_load_file(const char *request_path, const adx_limits *lim, adx_err *err)
{
    return pipe_load_file_env(request_path, lim, NULL, err);
}

pipe_job *pipe_load_buffer(const char *buf, size_t len, const adx_limits *lim, adx_err *err)
{
    return pipe_load_buffer_env(buf, len, lim, NULL, err);
}

pipe_job *pipe_load_input(const char *path, pipe_input kind, const json_t *options,
                          const adx_limits *lim, const char *h5check, adx_err *err)
{
    if (!path || (kind != PIPE_IN_H5AD && kind != PIPE_IN_POLIS)) {
        adx_err_set(err, ADX_E_INTERNAL, "", "pipe_load_input needs a path and a known kind");
        return NULL;
    }
    pipe_job *j = job_new(lim, err);
    if (!j) return NULL;
    json_t *none = options ? NULL : json_object();
    if (!options && !none) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        goto fail;
    }
    int rc = req_parse_mode(options ? options : none, REQ_OPTIONS, &j->req, err);
    json_decref(none);
    if (rc || check_patterns(&j->req, &j->lim, err)) goto fail;
    if (kind == PIPE_IN_H5AD) {
        /* A crash of libhdf5 on a corrupt file then ends the helper, not
         * the caller. */
        h5r_opts ro = include_opts(&j->req);
        if (h5check && h5r_check_isolated_opts(h5check, path, &ro, &j->lim, 0, err)) goto fail;
        j->a = h5r_read_opts(path, &ro, &j->lim, NULL, &j->rep, err);
    } else {
        j->a = polis_read_dir(path, &j->lim, &j->rep, err);
    }
    if (!j->a) goto fail;
    if (san_categorize_columns(j->a, (const char *const *)j->req.cat_globs, j->req.n_cat, err))
        goto fail;
    j->stage = STAGE_LOADED;
    return j;
fail:
    if (!adx_err_failed(err)) adx_err_set(err, ADX_E_INTERNAL, "", "loading the input failed");
    pipe_free(j);
    return NULL;
}

int pipe_prepare(pipe_job *j, adx_err *err)
{
    if (!j || j->stage != STAGE_LOADED)
        return adx_err_set(err, ADX_E_INTERNAL, "", "pipe_prepare called out of order");
    /* Filter first: the report must not list fixes to elements the client
     * excluded, and dropped elements need no sanitizing. */
    if (j->req.has_include && flt_apply(j->a, (const char *const *)j->req.include, j->req.n_include,
                                        "/include", &j->rep, err))
        goto fail;
    if (san_anndata(j->a, &j->lim, &j->rep, err)) goto fail;
    if (j->req.format == ADX_FMT_H5AD && j->req.strings_to_categoricals &&
        san_strings_to_categoricals(j->a, err))
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
    if (!j || j->stage != STAGE_PREPARED)
        return adx_err_set(err, ADX_E_INTERNAL, "", "pipe_write called out of order");
    /* After a decode that reported its half, the writer's 0..1 is the rest. */
    scaled_ctl sd = {ctl, DECODE_SHARE};
    adx_ctl sc;
    if (ctl && j->decoded_from_body) {
        sc = (adx_ctl){
            .cancel = ctl->cancel, .progress = ctl->progress ? scaled_progress : NULL, .ud = &sd};
        ctl = &sc;
    }
    if (adx_ctl_canceled(ctl)) return adx_err_set(err, ADX_E_CANCELED, "", "the job was canceled");
    /* A result is meant to be read by others. */
    afile_opts o = {.mode = 0644, .sha256 = true};
    afile *f = afile_begin(out_path, &o, err);
    if (!f) return -1;
    int rc = run_writer(j, f, ctl, err);
    if (rc == 0 && adx_ctl_canceled(ctl))
        rc = adx_err_set(err, ADX_E_CANCELED, "", "the job was canceled");
    if (rc != 0) {
        if (!adx_err_failed(err)) adx_err_set(err, ADX_E_INTERNAL, "", "writing the file failed");
        afile_abort(f);
        return -1;
    }
    afile_result res;
    if (afile_commit(f, &res, err) != 0) return -1;
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
