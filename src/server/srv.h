/* The daemon's state and the helpers every part of it uses. One srv_state
 * per process, made by srv_main and passed explicitly; everything in it is
 * the loop thread's unless a comment says "worker". */
#ifndef SRV_H
#define SRV_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "adx_common.h"
#include "adx_datasets.h"
#include "adx_err.h"
#include "adx_pipeline.h"
#include "adx_srv_config.h"
#include "adx_srv_util.h"
#include "jobs.h"
#include "route.h"

struct MHD_Daemon;
struct srv_req;

#define SRV_INPUT_H5AD_FILE "input.h5ad"

/* Prometheus counters (metrics.c). */
typedef struct srv_metrics {
    uint64_t req_count[SRV_RT__COUNT][600];
    uint64_t hist[SRV_RT__COUNT][15];
    double hist_sum[SRV_RT__COUNT];
    uint64_t hist_n[SRV_RT__COUNT];
    double worker_busy_s;
    uint64_t bytes_in, bytes_out;
    uint64_t files_read_in; /* downloads whose file was read in by the pool first */
} srv_metrics;

/* The spool (spool.c): <spool>/jobs/<id>/ and <spool>/tmp/. */
typedef struct srv_spool {
    int lock_fd; /* <spool>/lock, flock(LOCK_EX) while we run; -1 none */
    /* bytes of uploads, kept requests, results and the decompressed copies
     * of gzip bodies (max_spool_bytes); atomic: workers charge the copies */
    _Atomic uint64_t used;
    int64_t full_ms; /* when a write last found the disk full */
    /* Free bytes of the spool's file system, -1 unknown: read at start,
     * then refreshed on the pool (uv_fs_statfs) every tick, so the loop
     * never waits on statvfs. */
    _Atomic int64_t avail;
    uv_fs_t statfs_req;
    bool statfs_busy;
    char jobs_dir[PATH_MAX + 8];
    char tmp_dir[PATH_MAX + 8];
} srv_spool;

/* libmicrohttpd driven by the loop (http.c). */
typedef struct srv_http {
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    struct srv_req *suspended; /* requests waiting for the pool or a job */
    struct srv_conn *conns;    /* every open connection, for the deadlines */
    unsigned n_waiting;        /* ?wait POSTs in progress (max_waiting) */
    unsigned n_read_in;        /* result files being read in by the pool (h_exports.c) */
} srv_http;

typedef struct srv_state {
    srv_config cfg;
    uv_loop_t *loop;
    srv_http http;
    uv_timer_t tick;     /* expiry, ?wait deadlines, shutdown progress */
    uv_timer_t watchdog; /* systemd WATCHDOG=1 pings, when asked for */
    uv_signal_t sig_term, sig_int, sig_hup;
    bool shutting_down;
    bool shutdown_canceled; /* running jobs were told to stop */
    int64_t shutdown_deadline_ms, drain_started_ms, last_sweep_ms;
    srv_idgen idgen;
    srv_jobs jobs;
    srv_spool spool;
    unsigned n_ds_work; /* dataset route work on the pool */
    /* stored datasets (immutable after start, so workers may read them) */
    ds_store *ds;
    char data_dir[PATH_MAX];
    char h5check[PATH_MAX];
    char **tokens;
    size_t n_tokens;
    srv_metrics metrics;
} srv_state;

int64_t srv_now_ms(void);
uint64_t srv_mono_ns(void);
void srv_random(void *buf, size_t n);
/* New job id (loop thread). */
void srv_new_id(srv_state *s, char out[SRV_ID_LEN + 1]);

/* log.c — the process-wide log (loop thread only). */
int srv_log_open(const srv_config *c, adx_err *err);
int srv_log_reopen(void);
void srv_log_close(void);
/* `in` as valid UTF-8 for a log line or a JSON string: bytes that start
 * no valid sequence become the text \xNN. Truncates to `cap`. */
void srv_log_text(const char *in, char *out, size_t cap);
/* Adds e's log-only cause to `fields` as "cause" (when there is one and it
 * is valid UTF-8; the line is kept either way). Returns `fields`. */
json_t *srv_log_cause(json_t *fields, const adx_err *e);
/* Steals `fields`; adds time, level and msg first. */
void srv_log(const char *level, const char *msg, json_t *fields);

/* metrics.c */
void srv_metrics_request(srv_metrics *m, int route, int status, double seconds, uint64_t in,
                         uint64_t out);
/* Prometheus text exposition; malloc'd, *len set. */
char *srv_metrics_render(const srv_state *s, size_t *len);

/* server.c */
int srv_tokens_load(srv_state *s, adx_err *err);
json_t *srv_version_json(void);
extern const char srv_openapi_json[];
extern const unsigned long srv_openapi_json_len;

#endif
