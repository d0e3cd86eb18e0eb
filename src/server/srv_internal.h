/* Internal interfaces between the daemon's source files. Everything here
 * runs on the loop thread unless a comment says "worker". */
#ifndef SRV_INTERNAL_H
#define SRV_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>
#include <uv.h>

#include "adx_common.h"
#include "adx_datasets.h"
#include "adx_err.h"
#include "adx_pipeline.h"
#include "adx_srv_config.h"
#include "adx_srv_job.h"
#include "adx_srv_util.h"

typedef struct srv_req srv_req;
typedef struct srv_job srv_job;

/* What a job exports: the request document (request.json, with "adata" or
 * "dataset"), or an uploaded h5ad (input.h5ad) with request.json holding
 * only the options. */
typedef enum srv_input { SRV_IN_REQUEST = 0, SRV_IN_H5AD } srv_input;
#define SRV_INPUT_H5AD_FILE "input.h5ad"

struct srv_job {
    char id[SRV_ID_LEN + 1];
    char rid[72]; /* X-Request-ID of the POST that created it ("" after a restart) */
    srv_job_state state;
    int64_t created_ms, started_ms, finished_ms; /* 0 = not yet */
    adx_format format;
    char *filename;
    srv_input input;
    char *dataset;  /* stored dataset the request names, or NULL */
    bool pinned;    /* holds a ds_pin on `dataset` (queued or running) */
    json_t *result; /* pipe_result_json once succeeded (size, sha256, summary, report) */
    json_t *error;  /* problem object once failed/canceled */
    uint64_t size_bytes;
    char sha256[65];
    atomic_int cancel;        /* 1 = client canceled, 2 = daemon shutting down */
    atomic_uint progress_ppm; /* progress in millionths, written by the worker */
    pipe_job *pj;             /* model kept from validation while queued, or NULL */
    bool in_work;             /* an export is on the pool: never free */
    int io_busy;              /* record/remove operations in flight */
    bool io_persist_again;    /* state changed while a record write was in flight */
    bool io_remove_pending;   /* delete the job directory once io is idle */
    bool removed;             /* out of the table; freed when no work refers to it */
    srv_job *prev, *next;     /* table, newest first */
    srv_job *qnext;           /* FIFO of queued jobs */
    srv_job *hnext;           /* id hash chain */
    srv_job *eprev, *enext;   /* expiry list, ordered by finished_ms */
    int elist;                /* which expiry list holds it: 0 none, 1 finished, 2 expired */
    srv_req *waiters;         /* ?wait requests suspended on this job */
};

/* The process-wide daemon state (one instance). */
typedef struct srv_state {
    srv_config cfg;
    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t mhd_poll;
    uv_timer_t mhd_timer;
    uv_timer_t tick;     /* expiry, ?wait deadlines, shutdown progress */
    uv_timer_t watchdog; /* systemd WATCHDOG=1 pings, when asked for */
    uv_signal_t sig_term, sig_int, sig_hup;
    bool shutting_down;
    int64_t shutdown_deadline_ms;
    bool shutdown_canceled; /* running jobs were told to stop */
    srv_idgen idgen;
    /* jobs */
    srv_job *jobs_head; /* newest first */
    srv_job *q_head, *q_tail;
    unsigned n_queued, n_running, n_validating;
    unsigned n_ds_work; /* dataset route work on the pool */
    /* stored datasets (immutable after start, so workers may read them) */
    ds_store *ds;
    char data_dir[PATH_MAX];
    char h5check[PATH_MAX];
    /* auth */
    char **tokens;
    size_t n_tokens;
    /* metrics */
    double worker_busy_s;
    uint64_t bytes_in, bytes_out;
    char jobs_dir[PATH_MAX + 8];
    char tmp_dir[PATH_MAX + 8];
} srv_state;

extern srv_state *srv_g;

int64_t srv_now_ms(void);
uint64_t srv_mono_ns(void);
void srv_random(void *buf, size_t n);
/* New job id (loop thread). */
void srv_new_id(char out[SRV_ID_LEN + 1]);

/* log.c */
int srv_log_open(const srv_config *c, adx_err *err);
int srv_log_reopen(void);
void srv_log_close(void);
/* Steals `fields`; adds time, level and msg first. */
void srv_log(const char *level, const char *msg, json_t *fields);
/* Adds e's log-only cause to `fields` as "cause" (when there is one and it
 * is valid UTF-8; the line is kept either way). Returns `fields`. */
json_t *srv_log_cause(json_t *fields, const adx_err *e);

/* metrics.c */
enum {
    SRV_RT_EXPORTS = 0,
    SRV_RT_EXPORT,
    SRV_RT_EXPORT_FILE,
    SRV_RT_HEALTHZ,
    SRV_RT_READYZ,
    SRV_RT_METRICS,
    SRV_RT_OPENAPI,
    SRV_RT_VERSION,
    SRV_RT_DATASETS,
    SRV_RT_DATASET,
    SRV_RT_OTHER,
    SRV_RT__COUNT
};
const char *srv_route_name(int rt);
void srv_metrics_request(int route, int status, double seconds, uint64_t in, uint64_t out);
/* Prometheus text exposition; malloc'd, *len set. */
char *srv_metrics_render(size_t *len);

/* store.c — file layout of the spool; safe to call from workers. */
void srv_job_dir(const srv_state *s, const char *id, char *out, size_t cap);
void srv_job_file(const srv_state *s, const char *id, const char *name, char *out, size_t cap);
/* "result" + the format's extension */
void srv_result_path(const srv_state *s, const srv_job *j, char *out, size_t cap);
/* Write `text` to dir/name atomically and durably (temp, fsync, rename,
 * fsync dir). Worker or startup. */
int srv_write_durable(const char *dir, const char *name, const char *text, size_t len,
                      adx_err *err);
/* Remove a directory and the plain files in it. */
int srv_remove_tree(const char *dir);
/* mkdir -p with mode 0750; errors point at the config `setting` that named
 * the directory ("/spool_dir"). */
int srv_mkdir_p(const char *path, const char *setting, adx_err *err);
/* The persisted record of a job (compact JSON text, malloc'd). */
char *srv_job_record(const srv_job *j);
/* Load every job of the spool, clean temp files; called before the loop. */
int srv_store_scan(srv_state *s, adx_err *err);

/* jobs.c */
srv_job *srv_job_find(const char *id);
void srv_job_link(srv_job *j); /* insert into the table by id order */
void srv_job_enqueue(srv_job *j);
void srv_jobs_dispatch(void);
/* Cancel or delete (DELETE route): 0 ok, -1 with err (404/409). */
int srv_job_delete(srv_job *j);
void srv_jobs_tick(int64_t now_ms);
/* Put a terminal job on its expiry list (done for every terminal
 * transition; the spool scan calls it for jobs loaded finished). */
void srv_job_track(srv_job *j);
/* Job JSON for the API; `base` prefixes links ("" or scheme://host/prefix). */
json_t *srv_job_json(const srv_job *j, const char *base);
/* Persist the current record through the per-job io chain. */
void srv_job_persist(srv_job *j);
void srv_jobs_free_all(void);
unsigned srv_jobs_count_state(srv_job_state st);
bool srv_queue_full(void);

/* Validation of a new POST body on a worker; `done` runs on the loop. */
typedef struct srv_validate {
    uv_work_t w;
    char upload[PATH_MAX + 32];
    char id[SRV_ID_LEN + 1];
    int64_t created_ms;
    adx_limits lim;
    bool keep_model; /* hold the decoded model for a worker about to be free */
    srv_input input;
    char *options; /* SRV_IN_H5AD: the options document (owned, freed by the caller) */
    adx_err err;
    srv_job *job;           /* built by the worker on success */
    double load_s, store_s; /* time spent decoding and making it durable */
    void (*done)(struct srv_validate *v);
    void *ud;
} srv_validate;
int srv_validate_start(srv_validate *v);

/* datasets.c */
/* Resolve h5check and the data directory (seeding the default one), open
 * the store, pin the datasets of re-queued jobs. Before the loop runs. */
int srv_datasets_open(srv_state *s, adx_err *err);
void srv_datasets_close(void);
typedef enum srv_ds_op { SRV_DS_LIST = 0, SRV_DS_SUMMARY, SRV_DS_PUT, SRV_DS_DELETE } srv_ds_op;
typedef struct srv_ds_work {
    uv_work_t w;
    srv_ds_op op;
    char name[ADX_DATASET_NAME_MAX + 1];
    char upload[PATH_MAX + 32]; /* PUT: the body, removed by the worker */
    ds_input input;
    bool created;
    json_t *result; /* list object, summary, or json_true() for a delete */
    adx_err err;
    double seconds;
    void (*done)(struct srv_ds_work *dw); /* on the loop */
    void *ud;
} srv_ds_work;
int srv_ds_start(srv_ds_work *dw);
/* Drop a job's pin (terminal state reached or job forgotten). */
void srv_job_unpin(srv_job *j);

/* http.c */
int srv_http_start(adx_err *err);
void srv_http_kick(void); /* run MHD soon (after a resume) */
void srv_http_quiesce(void);
void srv_http_stop(void);
/* A job reached a terminal state: answer its ?wait requests. */
void srv_http_job_done(srv_job *j);
void srv_http_tick(int64_t now_ms);
/* Suspended requests still waiting: used to decide when shutdown is done. */
unsigned srv_http_suspended(void);

/* server.c */
int srv_tokens_load(adx_err *err);
json_t *srv_version_json(void);
extern const char srv_openapi_json[];
extern const unsigned long srv_openapi_json_len;

#endif
