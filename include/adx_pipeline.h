/* adx_pipeline (prefix pipe_) — one export job, staged so the daemon can run
 * each stage on a worker and the CLI can run them in a row:
 *
 *   load    pipe_open: read + parse the request document, req_parse, jdec
 *           (JSON tree freed as soon as the model is built; binary parts
 *           read into place), or read the h5ad / Polis input
 *   prepare the include filter first (when "include" is given: the report
 *           lists no fixes to excluded elements), then sanitize, then
 *           anndata's strings_to_categoricals (h5ad and npz, when the
 *           request asks for it, as anndata's writer does; csv and txt
 *           print the same values either way); report filled
 *   write   the chosen writer into an afile (adx_afile.h: one temp file
 *           next to out_path, fsync, rename over out_path, fsync the
 *           directory); sha256 and size recorded. On any failure the temp
 *           file is removed and out_path is untouched.
 *
 * Inputs (pipe_source, one pipe_open for all): a request document with
 * "adata", a multipart body whose "request" part references binary parts, a
 * request naming a stored "dataset" (resolved through env->store; without a
 * store it fails with ADX_E_BAD_OPTION on "/dataset"), or a file given
 * directly — an h5ad file or a Polis CSV folder — with the export options in
 * a separate options document. Any of them may be gzip-compressed.
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

#include "adx_afile.h"
#include "adx_common.h"
#include "adx_err.h"
#include "adx_request.h"

typedef struct pipe_job pipe_job;

/* `lim` is copied into the job. pipe_open of a request document. */
pipe_job *pipe_load_file(const char *request_path, const adx_limits *lim, adx_err *err);
pipe_job *pipe_load_buffer(const char *buf, size_t len, const adx_limits *lim, adx_err *err);

/* Where a request's "dataset" is looked up. */
typedef struct pipe_env {
    struct ds_store *store; /* NULL: requests naming a dataset are refused */
    const adx_ctl *ctl;     /* progress while the request is read (the first half of the
                             * job's progress; pipe_write then reports the second) and
                             * cancel; NULL = none */
    /* Disk the job writes beside its input (the decompressed copy of a
     * gzip multipart or h5ad body) is charged before it is written:
     * `reserve` false refuses it (ADX_E_NO_SPACE, 507) and `release` gives
     * it back once the copy is gone. Called on the worker thread, so they
     * must be thread-safe; NULL = not counted. */
    bool (*reserve)(void *ud, uint64_t n);
    void (*release)(void *ud, uint64_t n);
    void *quota_ud;
} pipe_env;
/* As pipe_load_file/_buffer, with `env` (NULL = no store). */
pipe_job *pipe_load_file_env(const char *request_path, const adx_limits *lim, const pipe_env *env,
                             adx_err *err);
pipe_job *pipe_load_buffer_env(const char *buf, size_t len, const adx_limits *lim,
                               const pipe_env *env, adx_err *err);

/* Every input a job can start from is one source (payload.md, api.md): a
 * request document, a multipart body, an h5ad file, a Polis folder. A
 * stored dataset is reached through a request naming it; pipe_open
 * resolves it the same way for every source kind. */
typedef enum pipe_src_kind {
    PIPE_SRC_REQUEST = 1, /* a request document (JSON) at `path` ("-" = stdin) or in buf/len */
    PIPE_SRC_MULTIPART, /* a multipart/form-data body at `path`: a "request" part + binary parts */
    PIPE_SRC_H5AD,      /* an h5ad file at `path`; export options in `options` */
    PIPE_SRC_POLIS,     /* a Polis CSV folder at `path`; export options in `options` */
} pipe_src_kind;

/* "request", "multipart", "h5ad", "polis" (job records, logs); the parse
 * gives 0 for an unknown name. */
const char *pipe_src_name(pipe_src_kind k);
pipe_src_kind pipe_src_parse(const char *name);

/* A binary part given as a file (the CLI's --part NAME=FILE). */
typedef struct pipe_part_file {
    const char *name, *path;
} pipe_part_file;

typedef struct pipe_source {
    pipe_src_kind kind;
    const char *path;
    const void *buf; /* PIPE_SRC_REQUEST from memory (path NULL) */
    size_t len;
    /* Content-Encoding: gzip — the bytes at `path` are decompressed as they
     * are read and max_body_bytes applies to the decompressed bytes (413).
     * A request document is also recognised by gzip's magic bytes. An h5ad
     * or multipart body is decompressed into a temporary file next to
     * `path` (they need random access), removed before pipe_open returns
     * (h5ad) or unlinked at once (multipart). */
    bool gzip;
    const char *content_type;    /* PIPE_SRC_MULTIPART: the body's Content-Type (boundary) */
    const pipe_part_file *parts; /* PIPE_SRC_REQUEST: parts from files; NULL = a request
                                    that references one is told to use multipart */
    size_t n_parts;
    const json_t *options; /* H5AD / POLIS: a request document without "adata" and
                              "dataset" (NULL → every default); error pointers into it
                              are as for a request */
    const char *h5check;   /* H5AD: adx-h5check reads the file in a child first (NULL: skip) */
    /* A request naming a stored dataset: only look it up now (a 404/400
     * before anything is queued) and read it in pipe_prepare, so that
     * validating a request never reads a whole dataset. */
    bool defer_dataset;
} pipe_source;

/* Open `src` as a job: read and check the options, decode the model (binary
 * parts read straight into its arrays; every part must be referenced), or
 * for a deferred dataset only check that it exists. Memory the decoders
 * allocate is charged to a budget of lim->max_request_memory. `env` NULL =
 * no store. Reader errors keep the reader's pointers ("/obsm/X_umap",
 * "/votes.csv/17/vote"), paths of this machine are only in err->cause.
 * "categorical_columns" (default kmeans_*) turns a file's (or a stored
 * dataset's) plain 1-d obs/var columns it matches into categoricals as
 * pandas' astype("category") would (sorted distinct values, NaN missing). */
pipe_job *pipe_open(const pipe_source *src, const adx_limits *lim, const pipe_env *env,
                    adx_err *err);

/* pipe_open of an h5ad file (PIPE_SRC_H5AD) or a Polis folder
 * (PIPE_SRC_POLIS) with `options`. */
pipe_job *pipe_load_input(const char *path, pipe_src_kind kind, const json_t *options,
                          const adx_limits *lim, const char *h5check, adx_err *err);

/* Reads a deferred dataset first. */
int pipe_prepare(pipe_job *j, adx_err *err);
/* pipe_prepare that polls `ctl`'s cancel flag (NULL = none) in the
 * dataset read, between stages, before every element sanitize walks and
 * every column strings_to_categoricals converts: a set flag fails it with
 * ADX_E_CANCELED. */
int pipe_prepare_ctl(pipe_job *j, const adx_ctl *ctl, adx_err *err);
/* `ctl` may be NULL. The written file gets mode 0644. */
int pipe_write(pipe_job *j, const char *out_path, const adx_ctl *ctl, adx_err *err);
/* pipe_write with a weaker commit of the file (adx_afile.h):
 * AFILE_SYNC_FILE when the caller fsyncs the directory itself, after other
 * files it renames there. */
int pipe_write_sync(pipe_job *j, const char *out_path, afile_sync sync, const adx_ctl *ctl,
                    adx_err *err);

const adx_request *pipe_request(const pipe_job *j);
/* Bytes the decoded model holds (0 before it is read, e.g. a deferred
 * dataset): what keeping a validated job for its worker costs. */
uint64_t pipe_model_bytes(const pipe_job *j);
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
/* Where a write's time went (seconds, monotonic): the writer (libhdf5 and
 * compression for h5ad) and the commit (sha256, fsync of the file and its
 * directory, rename). -1 before a write. For --timings and bench/. */
int pipe_write_times(const pipe_job *j, double *writer_s, double *commit_s);
void pipe_free(pipe_job *j);

/* The decompressed bytes of the gzip file `path` in a new file beside it
 * (*tmp, which the caller removes), for a body stored as it is (a dataset
 * PUT). max_body_bytes limits the decompressed size (413); the copy is
 * charged to env's quota hooks as it is written (*charged, which the caller
 * gives back once the copy is gone; 507 when it does not fit). */
int pipe_gunzip_copy(const char *path, const adx_limits *lim, const pipe_env *env, char *tmp,
                     size_t cap, uint64_t *charged, adx_err *err);

#endif
