/* adx_pipeline (prefix pipe_) — one export job, staged so the daemon can run
 * each stage on a worker and the CLI can run them in a row:
 *
 *   load    read + parse the request document, req_parse, jdec (JSON tree
 *           freed as soon as the model is built)
 *   prepare sanitize, then the include filter (when "include" is given),
 *           then anndata's strings_to_categoricals (h5ad only, when the
 *           request asks for it, as anndata's writer does); report filled
 *   write   the chosen writer into a temp file (mkstemp) next to out_path,
 *           fsync, rename over out_path, fsync the directory; sha256 and
 *           size recorded. On any failure the temp file is removed and
 *           out_path is untouched.
 *
 * A request naming a stored "dataset" fails at load with ADX_E_BAD_OPTION
 * (pointer "/dataset") until stored datasets are wired in.
 *
 * A pipe_job is opaque and owned by the caller (pipe_free). Stages must be
 * called in order, from one thread at a time (any thread). Errors fill
 * `err` (pointers rooted at the request document: "/adata/obs/..."); I/O
 * errors never name a path of this machine, so they are safe to show a
 * client.
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
int pipe_prepare(pipe_job *j, adx_err *err);
/* `ctl` may be NULL. The written file gets mode 0644. */
int pipe_write(pipe_job *j, const char *out_path, const adx_ctl *ctl, adx_err *err);

const adx_request *pipe_request(const pipe_job *j);
/* {"format","filename","content_type","compression","size_bytes","sha256",
 *  "summary":{n_obs,n_vars,X,obs,var,obsm,varm,layers,obsp,varp,uns,raw},
 *  "report":[...]} — size/sha256 only after a successful write. `job_id`
 * names the default filename (NULL → "export"). "compression_opts" is
 * present when gzip applies. "X" in the summary is
 * {"encoding","dtype","shape"} or null. New reference (NULL on ENOMEM). */
json_t *pipe_result_json(const pipe_job *j, const char *job_id);
/* Size and lowercase hex sha256 of the written file; -1 before a write. */
int pipe_output(const pipe_job *j, uint64_t *size, const char **sha256_hex);
void pipe_free(pipe_job *j);

#endif
