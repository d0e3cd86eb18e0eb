/* The job table of the daemon: every job by id, the FIFO of queued jobs,
 * expiry, paging and cancel. It knows no HTTP, no event loop and no disk:
 * whatever must reach the spool goes through the hooks the owner
 * registers, and whoever waits for a job (a suspended ?wait request)
 * registers a srv_job_watch on it and is called once the job reaches a
 * terminal state. Loop thread only, except the fields a comment marks as
 * the worker's. */
#ifndef SRV_JOBS_H
#define SRV_JOBS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "adx_common.h"
#include "adx_srv_job.h"
#include "adx_pipeline.h"
#include "adx_srv_util.h"

struct pipe_job;
typedef struct srv_job srv_job;

/* What a job's spooled body is, as one pipeline source: the request
 * document (request.json, with "adata" or "dataset"), a multipart body
 * (request.json holds it as received: the "request" part and binary
 * parts), or an uploaded h5ad (input.h5ad) with request.json holding only
 * the options; any of them as sent with Content-Encoding: gzip. */
typedef struct srv_body {
    pipe_src_kind kind; /* PIPE_SRC_REQUEST, PIPE_SRC_MULTIPART or PIPE_SRC_H5AD */
    bool gzip;          /* decompressed when read; the limits count decompressed bytes */
    char boundary[71];  /* PIPE_SRC_MULTIPART */
} srv_body;

/* A party waiting for a job: `fn` runs once, on the loop, when the job
 * reaches a terminal state (the watch is detached before the call). */
typedef struct srv_job_watch {
    void (*fn)(struct srv_job_watch *w, srv_job *j);
    srv_job *job; /* set while attached */
    struct srv_job_watch *next;
} srv_job_watch;

/* Why a running job was told to stop (its `cancel` flag). */
enum { SRV_CANCEL_CLIENT = 1, SRV_CANCEL_SHUTDOWN = 2, SRV_CANCEL_TIMEOUT = 3 };

struct srv_job {
    char id[SRV_ID_LEN + 1];
    char rid[136]; /* X-Request-ID of the POST that created it ("" after a restart) */
    srv_job_state state;
    int64_t created_ms, started_ms, finished_ms; /* 0 = not yet */
    adx_format format;
    char *filename;
    srv_body input;
    char *dataset;  /* stored dataset the request names, or NULL */
    bool pinned;    /* holds a ds_pin on `dataset` (queued or running) */
    json_t *result; /* pipe_result_json once succeeded (size, sha256, summary, report) */
    json_t *error;  /* problem object once failed/canceled */
    uint64_t size_bytes;
    uint64_t bytes_received; /* receiving: body bytes spooled so far */
    uint64_t bytes_expected; /* receiving: its Content-Length, 0 when chunked */
    uint64_t req_bytes;      /* spool bytes of its request body (0 once deleted) */
    uint64_t res_bytes;      /* spool bytes of its result (0 once deleted) */
    char sha256[65];
    atomic_int cancel;        /* worker reads: SRV_CANCEL_* */
    atomic_uint progress_ppm; /* worker writes: progress in millionths */
    struct pipe_job *pj;      /* model kept from validation while queued, or NULL */
    unsigned refs;            /* work and io in flight that point at the job */
    unsigned attempts;        /* runs started and not ended (a crash leaves them counted) */
    uint64_t mem_bytes;       /* estimated memory of its run (max_memory; srv_job_mem_estimate) */
    bool removed;             /* out of the table; freed once refs drops to 0 */
    /* the spool's io chain (spool.c) */
    unsigned io_busy; /* record/remove operations in flight */
    bool io_persist_again, io_remove_pending, io_drop_result;
    srv_job *prev, *next;   /* table, newest first */
    srv_job *qnext;         /* FIFO of queued jobs */
    srv_job *rprev, *rnext; /* running jobs */
    srv_job *hnext;         /* id hash chain */
    srv_job *eprev, *enext; /* expiry list, ordered by finished_ms */
    int elist;              /* which expiry list holds it: 0 none, 1 finished, 2 expired */
    srv_job_watch *watchers;
};

/* What the table asks of its owner; every hook may be NULL (unit tests). */
typedef struct srv_jobs_hooks {
    void *ud;
    /* The job's record changed: write it (asynchronously). */
    void (*persist)(void *ud, srv_job *j);
    /* A succeeded job expired: delete its result, then write the record. */
    void (*expire)(void *ud, srv_job *j);
    /* The job left the table: delete its files. The hook holds a reference
     * (srv_job_ref) for as long as it needs the job. */
    void (*remove)(void *ud, srv_job *j);
    /* The job no longer needs its stored dataset. */
    void (*unpin)(void *ud, srv_job *j);
} srv_jobs_hooks;

typedef struct srv_jobs {
    srv_job *head; /* newest first */
    srv_job *q_head, *q_tail;
    srv_job *r_head; /* running jobs */
    unsigned n_queued, n_running, n_validating;
    unsigned queue_max;
    uint64_t max_memory;  /* total of running jobs' mem_bytes (UINT64_MAX after init: none) */
    uint64_t mem_running; /* sum of mem_bytes of the running jobs */
    int64_t ttl_ms;
    srv_job **hb; /* id index */
    size_t hcap, hcount;
    bool hbroken;
    struct {
        srv_job *head, *tail;
    } el[3];
    srv_jobs_hooks hooks;
} srv_jobs;

void srv_jobs_init(srv_jobs *t, unsigned queue_max, uint64_t ttl_s, const srv_jobs_hooks *h);
/* Frees every job (shutdown): no work may be in flight. */
void srv_jobs_free_all(srv_jobs *t);

/* A new job in state `st` (NULL on ENOMEM); not in the table yet. */
srv_job *srv_job_new(const char *id, srv_job_state st);
/* Free a job that never entered the table. */
void srv_job_free(srv_job *j);
void srv_job_ref(srv_job *j);
/* Drop a reference; frees the job when it is out of the table and unused. */
void srv_job_unref(srv_job *j);

srv_job *srv_jobs_find(const srv_jobs *t, const char *id);
/* Insert into the table in id order (a new job goes to the head). */
void srv_jobs_link(srv_jobs *t, srv_job *j);
void srv_jobs_enqueue(srv_jobs *t, srv_job *j);
/* The oldest queued job, taken off the queue; NULL when none. */
srv_job *srv_jobs_dequeue(srv_jobs *t);
/* max_memory admission: the oldest queued job, taken off the queue, if
 * it may start now: its mem_bytes fits max_memory next to the running
 * jobs', or nothing runs (a job over budget runs alone, so none starves).
 * NULL when the queue is empty or its head must wait (FIFO: no job behind
 * it is tried). The estimate is charged when the job turns running and
 * released when it leaves that state (srv_jobs_event). */
srv_job *srv_jobs_dequeue_admitted(srv_jobs *t);
/* Queued plus being validated, against queue_max. */
bool srv_jobs_queue_full(const srv_jobs *t);
unsigned srv_jobs_count_state(const srv_jobs *t, srv_job_state st);

/* Apply `ev` (SRV_EV_*); false when the state machine refuses it. A
 * terminal state puts the job on its expiry list, drops its pin and calls
 * its watchers. */
bool srv_jobs_event(srv_jobs *t, srv_job *j, srv_job_event ev, int64_t now_ms);
/* Put a terminal job on its expiry list (the spool scan calls it for jobs
 * loaded finished). */
void srv_jobs_track(srv_jobs *t, srv_job *j);
/* DELETE: a queued or receiving job is canceled at once (the watchers of
 * a receiving one, its upload, stop reading), a running or validating one
 * is told to stop (its worker ends it), a finished one leaves the table. */
void srv_jobs_delete(srv_jobs *t, srv_job *j, int64_t now_ms);
/* A receiving or validating job whose body was refused (or whose client
 * left): out of the table without a terminal state and without the
 * remove hook (it has no files; the upload deletes its own). */
void srv_jobs_forget(srv_jobs *t, srv_job *j);
/* Validation built `src` (owned by the worker until now) for the table's
 * validating job `dst`: its request's fields move to `dst` and `src` is
 * freed. */
void srv_job_adopt(srv_job *dst, srv_job *src);
/* Expiry: succeeded jobs older than the TTL become expired; failed and
 * canceled ones, and expired ones after a second TTL, leave the table. */
void srv_jobs_tick(srv_jobs *t, int64_t now_ms);

/* job_timeout: running jobs started `limit_ms` or more before `now_ms`
 * are told to stop (SRV_CANCEL_TIMEOUT; their worker fails them); `fn` is
 * called for each. The running list is short (at most `workers`). */
void srv_jobs_deadline(srv_jobs *t, int64_t now_ms, int64_t limit_ms,
                       void (*fn)(void *ud, srv_job *j), void *ud);

void srv_job_watch_add(srv_job *j, srv_job_watch *w);
void srv_job_watch_remove(srv_job_watch *w);

/* One page of the listing, newest first: jobs strictly older than
 * `cursor` (NULL = from the newest) in `state` (-1 = any) created by a
 * request with X-Request-ID `rid` (NULL = any), at most `limit` of them
 * into `out`. *more tells whether another page follows. Returns the
 * number stored. */
size_t srv_jobs_page(const srv_jobs *t, int state, const char *rid, const char *cursor,
                     size_t limit, srv_job **out, bool *more);

/* The memory estimate of a job's run: the decoded model's bytes when
 * validation decoded it (`model_bytes` > 0), else SRV_MEM_BODY_FACTOR
 * times its spooled request body (`body_bytes`; a job reloaded after a
 * restart), at least SRV_MEM_MIN_BYTES. */
#define SRV_MEM_BODY_FACTOR 4u
#define SRV_MEM_MIN_BYTES (1ull << 20)
uint64_t srv_job_mem_estimate(uint64_t model_bytes, uint64_t body_bytes);

/* Job JSON for the API; `base` prefixes links ("" or scheme://host/prefix). */
json_t *srv_job_json(const srv_job *j, const char *base);
/* The problem object of a canceled job. */
json_t *srv_job_canceled_problem(void);

#endif
