/* The work of export jobs on libuv's pool (run.c): validating a new body
 * into a job, and running queued jobs while workers are free. */
#ifndef SRV_RUN_H
#define SRV_RUN_H

#include "srv.h"

/* Start queued jobs while fewer than `workers` run (loop thread). */
void srv_run_dispatch(srv_state *s);

/* Validation of a new POST body on a worker; `done` runs on the loop. */
typedef struct srv_validate {
    uv_work_t w;
    srv_state *s;
    char upload[PATH_MAX + 32];
    uint64_t spool_bytes; /* reserved for the upload, the job's once created */
    char id[SRV_ID_LEN + 1];
    int64_t created_ms;
    const atomic_int *cancel;  /* the validating job's flag (DELETE) */
    atomic_uint *progress_ppm; /* and its progress, while the body decodes */
    adx_limits lim;
    bool keep_model; /* hold the decoded model for a worker about to be free */
    srv_body input;
    char *options; /* PIPE_SRC_H5AD: the options document (owned, freed by the caller) */
    adx_err err;
    srv_job *job;           /* built by the worker on success */
    double load_s, store_s; /* time spent decoding and making it durable */
    void (*done)(struct srv_validate *v);
    void *ud;
} srv_validate;
int srv_validate_start(srv_state *s, srv_validate *v);

#endif
