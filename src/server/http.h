/* The HTTP core (http.c) and what handler files use of it: the request
 * context, responses and problem+json, suspension. Handlers run on the
 * loop thread; anything slow goes to the pool with the request suspended
 * until its completion answers it. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <microhttpd.h>

#include "mhd_dl.h"

#include "datadir.h"
#include "run.h"
#include "srv.h"

#define SRV_RETRY_AFTER "5"

typedef struct srv_req srv_req;
typedef enum MHD_Result (*srv_handler)(srv_req *r);

/* An open connection and the deadline it is under: its next request's
 * headers (header_timeout, counted from the accept or the end of the
 * previous request) or an upload body (body_timeout). */
typedef enum srv_conn_phase { SRV_CONN_HEADERS = 0, SRV_CONN_BODY, SRV_CONN_BUSY } srv_conn_phase;
typedef struct srv_conn {
    struct MHD_Connection *conn;
    srv_conn_phase phase;
    int64_t since_ms;
    bool closing;
    struct srv_conn *prev, *next;
} srv_conn;

struct srv_req {
    srv_state *s;
    struct MHD_Connection *conn;
    srv_conn *c;  /* NULL only when libmicrohttpd gave no socket context */
    bool waiting; /* counted in n_waiting */
    srv_route route;
    srv_method m;
    char method[12];
    char path[512];
    char rid[136];
    char base[600];
    char origin[256];
    bool cors;          /* Origin present and allowed */
    srv_route_match rm; /* {id} and {name} of the path */
    uint64_t t0;
    int status;
    uint64_t bytes_in, bytes_out;
    /* upload bodies (upload.c): written by uv_fs_write, one write in
     * flight, what arrives meanwhile buffered up to a cap (then the
     * connection is suspended until the write is done) */
    int fd;
    char upload[PATH_MAX + 32];
    uint64_t reserved; /* spool bytes reserved for the body (max_spool_bytes) */
    uint64_t woff;     /* file offset of the next write */
    uv_fs_t wreq;
    char *wbuf, *pbuf; /* being written; arrived meanwhile */
    size_t wlen, wdone, wcap, plen, pcap;
    uv_fs_t oreq;         /* the upload file's open, then its close */
    bool opening;         /* oreq's open in flight: chunks wait in pbuf */
    bool closing;         /* oreq's close in flight at the end of the body */
    struct fs_drop *drop; /* the discarded upload's unlink, awaited by the answer */
    bool writing;         /* wreq in flight */
    bool write_wait;      /* suspended until the write is done */
    bool discard_after;   /* close and unlink once the write in flight is done */
    bool orphan;          /* the request is over: free it once the write is done */
    bool too_big;
    bool no_space; /* max_spool_bytes, ENOSPC or EDQUOT: 507 */
    bool write_failed;
    bool canceled;        /* its job was deleted while the body arrived */
    uint64_t canceled_at; /* bytes_in then: the tail swallowed is bounded */
    bool body_done;
    srv_handler upload_end; /* called once the whole body is spooled */
    unsigned wait_s;
    srv_body input;    /* POST: what the body is */
    char *options;     /* POST of an h5ad: the options document built from the query */
    ds_input ds_input; /* PUT: what the body is */
    srv_validate *val;
    srv_job *job; /* an export POST's job until its answer (a reference) */
    srv_ds_work *dw;
    /* a response prepared while suspended, queued on the next handler call */
    struct MHD_Response *pending;
    int pending_status;
    bool suspended;
    srv_req *sprev, *snext; /* suspended list */
    /* a suspended request with a deadline: `on_tick` runs every tick;
     * `detach` lets go of whatever it waits for before a shutdown answer */
    void (*on_tick)(srv_req *r, int64_t now_ms);
    void (*detach)(srv_req *r);
    srv_job_watch watch; /* ?wait on a job */
    int64_t wait_deadline;
    /* a result file being read into the page cache before it is sent
     * (h_exports.c); read_in_done once it was, so it is sent as it is */
    struct read_in_work *read_in;
    bool read_in_done;
};

static inline srv_req *srv_req_of_watch(srv_job_watch *w)
{
    return (srv_req *)((char *)w - offsetof(srv_req, watch));
}

/* The loop side (server.c). */
int srv_http_start(srv_state *s, adx_err *err);
void srv_http_kick(srv_state *s); /* run MHD soon (after a resume) */
void srv_http_quiesce(srv_state *s);
void srv_http_stop(srv_state *s);
void srv_http_tick(srv_state *s, int64_t now_ms);
/* Suspended requests still waiting: used to decide when shutdown is done. */
unsigned srv_http_suspended(const srv_state *s);

/* Request context. */
void srv_conn_phase_set(srv_req *r, srv_conn_phase p);
const char *srv_req_header(srv_req *r, const char *name);
const char *srv_req_query(srv_req *r, const char *name);
void srv_req_suspend(srv_req *r);
/* Resume a suspended request that has no answer yet (its handler is
 * called again). */
void srv_req_resume(srv_req *r);
/* Free a request whose connection is gone (http.c). */
void srv_req_free(srv_req *r);
/* Request bytes (query values, a dataset name) echoed in a problem:
 * printable ASCII only, so the body stays valid UTF-8 (and a pointer stays
 * one segment) whatever was sent. */
void srv_printable(const char *in, char *out, size_t cap);

/* Responses: queued now, or kept for the handler call after a resume. */
enum MHD_Result srv_respond(srv_req *r, int status, struct MHD_Response *resp);
enum MHD_Result srv_send_empty(srv_req *r, int status);
struct MHD_Response *srv_resp_text(srv_req *r, char *s, size_t len, const char *ctype);
/* Steals `o`. */
struct MHD_Response *srv_resp_json(srv_req *r, json_t *o, const char *ctype);
enum MHD_Result srv_send_json(srv_req *r, int status, json_t *o);
/* problem+json from an error: type, title and status come from the error
 * (adx_err_problem). `h1`/`v1` one optional extra header. */
enum MHD_Result srv_send_err(srv_req *r, const adx_err *e, const char *h1, const char *v1);
/* A problem object (stolen) completed with instance, request_id, status. */
enum MHD_Result srv_send_problem(srv_req *r, json_t *p, int status, const char *h1, const char *v1);
/* srv_send_err of a fresh error of kind `t` (its status). */
__attribute__((format(printf, 5, 6))) enum MHD_Result
srv_problem(srv_req *r, adx_errtype t, const char *h1, const char *v1, const char *fmt, ...);

/* Upload bodies into the spool's tmp/ (upload.c). The one place that reads
 * a body's Content-Type and spools it. */
bool srv_content_type_is(const char *ct, const char *type);
/* What the body of an export POST (r->input) or a dataset PUT
 * (r->ds_input) is, from its Content-Type; false after answering 415. */
bool srv_upload_export_type(srv_req *r, enum MHD_Result *rc);
bool srv_upload_dataset_type(srv_req *r, enum MHD_Result *rc);
/* A Content-Length over max_body_bytes: answers 413 and returns true. */
bool srv_upload_too_big(srv_req *r, enum MHD_Result *rc);
/* Open the temp file the body streams into; `end` runs once it is all in
 * (the fd closed). On failure answers the problem itself. */
enum MHD_Result srv_upload_open(srv_req *r, srv_handler end);
/* The request is over (its connection closed): false when a write still
 * holds it, and the write's completion frees it. */
bool srv_upload_release(srv_req *r);
enum MHD_Result srv_upload_chunk(srv_req *r, const char *data, size_t *size);
enum MHD_Result srv_upload_end(srv_req *r);
void srv_upload_discard(srv_req *r);
/* Unlink a spool file on the pool (the loop never waits on the disk). */
void srv_upload_unlink(srv_state *s, const char *path);

/* The end of an export POST's hold on its job (answered, refused, or its
 * client gone): a job never accepted leaves the table (h_exports.c). */
void srv_exports_req_end(srv_req *r);

/* The options document of an h5ad POST from its query string, checked as
 * the job will check it (opts.c); compact text (malloc'd) or NULL. */
char *srv_query_options(srv_req *r, adx_err *err);

/* Handlers, one file per area. */
enum MHD_Result srv_h_healthz(srv_req *r);
enum MHD_Result srv_h_readyz(srv_req *r);
enum MHD_Result srv_h_metrics(srv_req *r);
enum MHD_Result srv_h_openapi(srv_req *r);
enum MHD_Result srv_h_version(srv_req *r);
enum MHD_Result srv_h_exports_list(srv_req *r);
enum MHD_Result srv_h_exports_post(srv_req *r);
enum MHD_Result srv_h_export_get(srv_req *r);
enum MHD_Result srv_h_export_delete(srv_req *r);
enum MHD_Result srv_h_export_file(srv_req *r);
enum MHD_Result srv_h_datasets_list(srv_req *r);
enum MHD_Result srv_h_dataset_get(srv_req *r);
enum MHD_Result srv_h_dataset_put(srv_req *r);
enum MHD_Result srv_h_dataset_delete(srv_req *r);

#endif
