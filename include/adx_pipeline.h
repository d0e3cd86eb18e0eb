/* adx_pipeline (prefix pipe_) — one export job, staged so the daemon can run
 * each stage on a worker and the CLI can run them in a row:
 *
 *   load    read + parse the request document, req_parse, jdec (JSON tree
 *           freed as soon as the model is built)
 *   prepare the include filter first (when "include" is given: the report
 *           lists no fixes to excluded elements), then sanitize, then
 *           anndata's strings_to_categoricals (h5ad only, when the request
 *           asks for it, as anndata's writer does); report filled
 *   write   the chosen writer into an afile (adx_afile.h: one temp file
 *           next to out_path, fsync, rename over out_path, fsync the
 *           directory); sha256 and size recorded. On any failure the temp
 *           file is removed and out_path is untouched.
 *
 * Inputs: a request document with "adata" (pipe_load_file/_buffer), a
 * request naming a stored "dataset" (resolved through env->store; without a
 * store it fails with ADX_E_BAD_OPTION on "/dataset"), or a file given
 * directly — an h5ad file or a Polis CSV folder — with the export options in
 * a separate options document (pipe_load_input).
 *
 * A pipe_job is opaque and owned by the caller (pipe_free). Stages must be
 * called in order, from one thread at a time (any thread). Errors fill
 * `err` (pointers rooted at the request document: "/adata/obs/..."); I/O
 * errors never name a path of this machine in the client detail (paths and
 * errno text are in err->cause), so they are safe to show a client.
 */
#ifndef ADX_PIPELINE_H
#define ADX_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "adx_common.h"
#include "adx_err.h"
#include "adx_request.h"

typedef struct pipe_job pipe_job;

/* `lim` is copied into the job. */
pipe_job *pipe_load_file(const char *request_path, const adx_limits *lim, adx_err *err);
pipe_job *pipe_load_buffer(const char *buf, size_t len, const adx_limits *lim, adx_err *err);

/* Where a request's "dataset" is looked up. */
typedef struct pipe_env {
    struct ds_store *store; /* NULL: requests naming a dataset are refused */
    const adx_ctl *ctl;     /* progress while the request is read (the first half of the
                             * job's progress; pipe_write then reports the second) and
                             * cancel; NULL = none */
} pipe_env;
/* As pipe_load_file/_buffer, with `env` (NULL = no store). */
pipe_job *pipe_load_file_env(const char *request_path, const adx_limits *lim, const pipe_env *env,
                             adx_err *err);
pipe_job *pipe_load_buffer_env(const char *buf, size_t len, const adx_limits *lim,
                               const pipe_env *env, adx_err *err);

typedef enum pipe_input { PIPE_IN_H5AD = 1, PIPE_IN_POLIS } pipe_input;
/* Export a file: `path` is an h5ad file or a Polis folder. `options` is a
 * request document without "adata" and "dataset" (NULL → every default);
 * error pointers into it are as for a request. `h5check` (the adx-h5check
 * helper, NULL to skip) reads an untrusted h5ad in a child process first.
 * Reader errors keep the reader's pointers ("/obsm/X_umap",
 * "/votes.csv/17/vote"); paths of this machine are only in err->cause.
 * "categorical_columns" (default kmeans_*) turns the file's plain 1-d
 * obs/var columns it matches into categoricals as pandas'
 * astype("category") would (sorted distinct values, NaN missing); the same
 * applies to a stored dataset named by a request. */
pipe_job *pipe_load_input(const char *path, pipe_input kind, const json_t *options,
                          const adx_limits *lim, const char *h5check, adx_err *err);

int pipe_prepare(pipe_job *j, adx_err *err);
/* `ctl` may be NULL. The written file gets mode 0644. */
int pipe_write(pipe_job *j, const char *out_path, const adx_ctl *ctl, adx_err *err);

const adx_request *pipe_request(const pipe_job *j);
/* {"format","filename","content_type","compression","size_bytes","sha256",
 *  "summary":{n_obs,n_vars,X,obs,var,obsm,varm,layers,obsp,varp,uns,raw},
 *  "report":[...]} — size/sha256 only after a successful write. `job_id`
 * names the default filename (NULL → "export"). "compression_opts" is
 * present when gzip applies. The summary is ad_summary_json's, the same a
 * stored dataset shows: "X" is {"encoding","dtype","shape"} or null, "raw"
 * {"n_vars","var","varm"} or null. New reference (NULL on ENOMEM). */
json_t *pipe_result_json(const pipe_job *j, const char *job_id);
/* Size and lowercase hex sha256 of the written file; -1 before a write. */
int pipe_output(const pipe_job *j, uint64_t *size, const char **sha256_hex);
void pipe_free(pipe_job *j);

#endif
