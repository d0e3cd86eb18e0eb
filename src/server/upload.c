/* Request bodies that are uploads (an export POST, a dataset PUT): the
 * Content-Type check helpers and the streaming of the body into a temp
 * file of the spool's tmp/. This is the one place a body is read; a
 * decoder of another body encoding (multipart, gzip) hooks in here. */
#include "http.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "adx_parts.h"

/* Body bytes swallowed after a refusal so that the answer can still be
 * read by a client that sends its whole body first. */
#define DISCARD_MAX (16u << 20)
/* Body bytes held in memory per upload while a write is in flight. */
#define UPLOAD_BUF_MAX (256u << 10)
#define UPLOAD_CHUNK_MAX (64u << 10)

bool srv_content_type_is(const char *ct, const char *type)
{
    if (!ct) return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    return n == strlen(type) && !strncasecmp(ct, type, n);
}

/* Content-Encoding: identity or gzip (RFC 9110 §8.4; one coding). */
static bool body_encoding(srv_req *r, bool *gzip, enum MHD_Result *rc)
{
    const char *ce = srv_req_header(r, "Content-Encoding");
    *gzip = ce && (srv_content_type_is(ce, "gzip") || srv_content_type_is(ce, "x-gzip"));
    if (!ce || *gzip || srv_content_type_is(ce, "identity")) return true;
    *rc = srv_problem(r, ADX_E_UNSUPPORTED, "Accept-Encoding", "gzip",
                      "Content-Encoding %.60s is not accepted (gzip or none)", ce);
    return false;
}

/* What an export POST's body is, from its Content-Type and
 * Content-Encoding. A multipart body's boundary is checked here, before
 * any of it is read. */
bool srv_upload_export_type(srv_req *r, enum MHD_Result *rc)
{
    const char *ct = srv_req_header(r, "Content-Type");
    memset(&r->input, 0, sizeof r->input);
    if (!body_encoding(r, &r->input.gzip, rc)) return false;
    /* curl --data-binary @- without -H still means JSON here */
    if (!ct || srv_content_type_is(ct, "application/json")) {
        r->input.kind = PIPE_SRC_REQUEST;
    } else if (srv_content_type_is(ct, "application/x-hdf5")) {
        r->input.kind = PIPE_SRC_H5AD;
    } else if (srv_content_type_is(ct, "multipart/form-data")) {
        r->input.kind = PIPE_SRC_MULTIPART;
        adx_err e;
        adx_err_init(&e);
        if (parts_boundary(ct, r->input.boundary, &e) < 0) {
            *rc = srv_send_err(r, &e, NULL, NULL);
            return false;
        }
    } else {
        *rc = srv_problem(r, ADX_E_UNSUPPORTED, "Accept-Post",
                          "application/json, multipart/form-data, application/x-hdf5",
                          "POST /v1/exports takes application/json (a request document), "
                          "multipart/form-data (a \"request\" part and binary parts) or "
                          "application/x-hdf5 (an h5ad file, options in the query string), not "
                          "%.100s",
                          ct);
        return false;
    }
    return true;
}

/* What a dataset PUT's body is, from its Content-Type. */
bool srv_upload_dataset_type(srv_req *r, enum MHD_Result *rc)
{
    const char *ct = srv_req_header(r, "Content-Type");
    memset(&r->input, 0, sizeof r->input);
    if (!body_encoding(r, &r->input.gzip, rc)) return false;
    if (srv_content_type_is(ct, "application/x-hdf5")) {
        r->ds_input = DS_INPUT_H5AD;
    } else if (srv_content_type_is(ct, "application/json")) {
        r->ds_input = DS_INPUT_JSON;
    } else {
        *rc =
            srv_problem(r, ADX_E_UNSUPPORTED, "Accept-Put", "application/x-hdf5, application/json",
                        "PUT /v1/datasets/{name} takes application/x-hdf5 (an h5ad file) or "
                        "application/json (an AnnData object), not %.100s",
                        ct ? ct : "a body without Content-Type");
        return false;
    }
    return true;
}

bool srv_upload_too_big(srv_req *r, enum MHD_Result *rc)
{
    const char *cl = srv_req_header(r, "Content-Length");
    uint64_t max = r->s->cfg.limits.max_body_bytes;
    if (!cl) return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    if (errno || *end != '\0' || n <= max) return false;
    adx_err e;
    adx_err_init(&e);
    adx_err_set(&e, ADX_E_LIMIT, "", "the body is %llu bytes; max_body_bytes is %llu", n,
                (unsigned long long)max);
    *rc = srv_send_err(r, &e, NULL, NULL);
    return true;
}

/* Room for `need` more bytes: within max_spool_bytes and on the disk
 * (statvfs of tmp/). Reserves them on success. */
static bool reserve(srv_req *r, uint64_t need, char *why, size_t cap)
{
    srv_state *s = r->s;
    if (!srv_spool_reserve(s, need)) {
        snprintf(why, cap, "the spool holds %llu bytes and max_spool_bytes is %llu",
                 (unsigned long long)s->spool.used, (unsigned long long)s->cfg.max_spool_bytes);
        return false;
    }
    uint64_t avail;
    if (srv_spool_disk_free(s, &avail) == 0 && avail < need) {
        srv_spool_release(s, need);
        srv_spool_note_full(s);
        snprintf(why, cap, "the spool's disk has %llu bytes free", (unsigned long long)avail);
        return false;
    }
    r->reserved += need;
    return true;
}

static enum MHD_Result no_room(srv_req *r, const char *why)
{
    return srv_problem(r, ADX_E_NO_SPACE, "Retry-After", SRV_RETRY_AFTER,
                       "no room for the body: %s; retry once jobs expired or were deleted", why);
}

/* ---- the upload file: opened, closed and removed on libuv's pool ------- */

/* A file of the spool that is not wanted any more: closed (when `fd` is
 * open) and unlinked by fs requests that may outlive the request. While
 * its request still waits (`owner`), the request's answer waits for the
 * unlink, so a refusal never leaves its bytes behind it. */
typedef struct fs_drop {
    uv_fs_t req;
    uv_loop_t *loop;
    srv_req *owner;
    int fd;
    char path[PATH_MAX + 32];
} fs_drop;

static void drop_done(fs_drop *d)
{
    srv_req *r = d->owner;
    free(d);
    if (!r) return;
    r->drop = NULL;
    if (r->write_wait && !r->writing && !r->opening && !r->closing) {
        r->write_wait = false;
        srv_req_resume(r);
    }
}

static void drop_unlinked(uv_fs_t *req)
{
    uv_fs_req_cleanup(req);
    drop_done(req->data);
}

static void drop_closed(uv_fs_t *req)
{
    fs_drop *d = req->data;
    uv_fs_req_cleanup(req);
    if (!d->path[0] || uv_fs_unlink(d->loop, &d->req, d->path, drop_unlinked) < 0) drop_done(d);
}

static fs_drop *fs_drop_start(srv_state *s, int fd, const char *path)
{
    if (fd < 0 && (!path || !path[0])) return NULL;
    fs_drop *d = calloc(1, sizeof *d);
    if (!d) { /* no memory left: the scan at the next start removes tmp/ files */
        if (fd >= 0) uv_fs_close(s->loop, &(uv_fs_t){0}, fd, NULL);
        return NULL;
    }
    d->req.data = d;
    d->loop = s->loop;
    d->fd = fd;
    snprintf(d->path, sizeof d->path, "%s", path ? path : "");
    int rc = fd >= 0 ? uv_fs_close(s->loop, &d->req, fd, drop_closed)
                     : uv_fs_unlink(s->loop, &d->req, d->path, drop_unlinked);
    if (rc < 0) {
        free(d);
        return NULL;
    }
    return d;
}

void srv_upload_unlink(srv_state *s, const char *path)
{
    fs_drop_start(s, -1, path);
}

static bool fs_busy(const srv_req *r)
{
    return r->writing || r->opening || r->closing;
}

/* An answer waits for these too (see fs_drop). */
static bool fs_pending(const srv_req *r)
{
    return fs_busy(r) || r->drop;
}

static void start_write(srv_req *r);

static void on_open(uv_fs_t *req)
{
    srv_req *r = req->data;
    ssize_t res = req->result;
    uv_fs_req_cleanup(req);
    r->opening = false;
    if (res >= 0)
        r->fd = (int)res;
    else
        r->upload[0] = '\0'; /* not ours to unlink */
    if (r->orphan) {
        fs_drop_start(r->s, r->fd, r->upload);
        r->fd = -1;
        r->upload[0] = '\0';
        srv_req_free(r);
        return;
    }
    if (res < 0) {
        int e = (int)-res;
        srv_log("error", "cannot create upload file",
                json_pack("{s:s, s:s}", "request_id", r->rid, "error", strerror(e)));
        /* the body is swallowed; its end answers */
        if (e == ENOSPC || e == EDQUOT) {
            r->no_space = true;
            srv_spool_note_full(r->s);
        } else {
            r->write_failed = true;
        }
        r->discard_after = false;
        srv_upload_discard(r);
    } else if (r->discard_after) {
        r->discard_after = false;
        srv_upload_discard(r);
    } else if (r->plen) {
        start_write(r);
    }
    if (r->write_wait && !fs_busy(r)) {
        r->write_wait = false;
        srv_req_resume(r);
    }
}

enum MHD_Result srv_upload_open(srv_req *r, srv_handler end)
{
    /* With a Content-Length the whole body is reserved now, so that no
     * room is a 507 before any byte of it is read. */
    const char *full = srv_spool_no_room(r->s);
    if (full) return no_room(r, full); /* as /readyz says */
    const char *cl = srv_req_header(r, "Content-Length");
    if (cl) {
        char why[160];
        uint64_t n = strtoull(cl, NULL, 10);
        if (n && !reserve(r, n, why, sizeof why)) return no_room(r, why);
    }
    /* A job's upload is named after the job; a dataset's gets a fresh id. */
    char name[SRV_ID_LEN + 1];
    if (r->rm.id[0])
        memcpy(name, r->rm.id, sizeof name);
    else
        srv_new_id(r->s, name);
    int rc = -ENAMETOOLONG;
    if (snprintf(r->upload, sizeof r->upload, "%s/%s.upload", r->s->spool.tmp_dir, name) <
        (int)sizeof r->upload) {
        /* Opened on the pool: chunks that arrive meanwhile are buffered
         * (bounded as while a write is in flight); a failure is answered
         * at the end of the body, as a failed write is. */
        r->oreq.data = r;
        rc = uv_fs_open(r->s->loop, &r->oreq, r->upload, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                        0640, on_open);
    }
    if (rc < 0) {
        r->upload[0] = '\0';
        srv_spool_release(r->s, r->reserved);
        r->reserved = 0;
        srv_log("error", "cannot create upload file",
                json_pack("{s:s, s:s}", "request_id", r->rid, "error", uv_strerror(rc)));
        return srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER,
                           "the spool is not writable; see the daemon log (request %s)", r->rid);
    }
    r->opening = true;
    r->upload_end = end;
    srv_conn_phase_set(r, SRV_CONN_BODY);
    return MHD_YES;
}

static void close_and_unlink(srv_req *r)
{
    fs_drop *d = fs_drop_start(r->s, r->fd, r->upload);
    if (d && !r->orphan && !r->drop) {
        d->owner = r;
        r->drop = d;
    }
    r->fd = -1;
    r->upload[0] = '\0';
    free(r->wbuf);
    free(r->pbuf);
    r->wbuf = r->pbuf = NULL;
    r->wlen = r->wdone = r->plen = r->pcap = r->wcap = 0;
}

void srv_upload_discard(srv_req *r)
{
    srv_spool_release(r->s, r->reserved);
    r->reserved = 0;
    if (fs_busy(r))
        r->discard_after = true;
    else
        close_and_unlink(r);
}

bool srv_upload_release(srv_req *r)
{
    srv_upload_discard(r);
    if (r->drop) { /* no one waits for it any more */
        r->drop->owner = NULL;
        r->drop = NULL;
    }
    if (!fs_busy(r)) return true;
    r->orphan = true;
    return false;
}

/* The end of one fs request of the upload: its flag cleared, and the
 * request freed (NULL returned) when its connection went away meanwhile. */
static srv_req *fs_end(uv_fs_t *req, bool *busy_flag, ssize_t *res)
{
    srv_req *r = req->data;
    *res = req->result;
    uv_fs_req_cleanup(req);
    *busy_flag = false;
    if (!r->orphan) return r;
    close_and_unlink(r);
    srv_req_free(r);
    return NULL;
}

static void on_write(uv_fs_t *req)
{
    srv_req *rq = req->data;
    ssize_t res;
    srv_req *r = fs_end(req, &rq->writing, &res);
    if (!r) return;
    if (r->discard_after) {
        r->discard_after = false;
        close_and_unlink(r);
    } else if (res < 0) {
        int e = (int)-res;
        srv_log("error", "spool write failed",
                json_pack("{s:s, s:s}", "request_id", r->rid, "error", strerror(e)));
        /* swallow the rest of the body; its end answers */
        if (e == ENOSPC || e == EDQUOT) {
            r->no_space = true;
            srv_spool_note_full(r->s);
        } else {
            r->write_failed = true;
        }
        srv_upload_discard(r);
    } else {
        r->wdone += (size_t)res;
        r->woff += (uint64_t)res;
        if (r->wdone >= r->wlen) r->wlen = r->wdone = 0;
        /* the rest of a short write, or what arrived meanwhile */
        if (r->wlen || r->plen) start_write(r);
    }
    if (r->write_wait && !fs_busy(r)) {
        r->write_wait = false;
        srv_req_resume(r);
    }
}

static void start_write(srv_req *r)
{
    if (r->wlen == 0) {
        /* what arrived meanwhile becomes the next write */
        char *t = r->wbuf;
        size_t tc = r->wcap;
        r->wbuf = r->pbuf;
        r->wcap = r->pcap;
        r->wlen = r->plen;
        r->wdone = 0;
        r->pbuf = t;
        r->pcap = tc;
        r->plen = 0;
    }
    uv_buf_t b = uv_buf_init(r->wbuf + r->wdone, (unsigned)(r->wlen - r->wdone));
    r->wreq.data = r;
    if (uv_fs_write(r->s->loop, &r->wreq, r->fd, &b, 1, (int64_t)r->woff, on_write) < 0) {
        r->write_failed = true;
        srv_upload_discard(r);
        return;
    }
    r->writing = true;
}

enum MHD_Result srv_upload_chunk(srv_req *r, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    r->bytes_in += n;
    if (r->job) r->job->bytes_received = r->bytes_in;
    if (r->canceled) {
        /* As for a 413: a bounded tail is swallowed so the client can
         * read the answer; past it the connection is closed. */
        return r->bytes_in - r->canceled_at > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    uint64_t max = r->s->cfg.limits.max_body_bytes;
    if (r->too_big) {
        /* Swallow a bounded tail so the 413 can still be sent at the end;
         * a client that keeps streaming past that is cut off. */
        return r->bytes_in - max > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (r->bytes_in > max) {
        /* Without a Content-Length (chunked) the limit shows up mid-body,
         * where libmicrohttpd 0.9.75 cannot queue a response yet: stop
         * writing, and answer 413 when the body ends. */
        r->too_big = true;
        srv_upload_discard(r);
        return MHD_YES;
    }
    if (r->write_failed || r->no_space) return MHD_YES; /* swallowed; the end answers */
    if (r->bytes_in > r->reserved) {
        char why[160];
        if (!reserve(r, r->bytes_in - r->reserved, why, sizeof why)) {
            r->no_space = true;
            srv_upload_discard(r);
            return MHD_YES;
        }
    }
    if (r->plen + n > r->pcap) {
        size_t ncap =
            r->plen + n < UPLOAD_BUF_MAX ? UPLOAD_BUF_MAX + UPLOAD_CHUNK_MAX : r->plen + n;
        char *nb = realloc(r->pbuf, ncap);
        if (!nb) {
            r->write_failed = true;
            srv_upload_discard(r);
            return MHD_YES;
        }
        r->pbuf = nb;
        r->pcap = ncap;
    }
    memcpy(r->pbuf + r->plen, data, n);
    r->plen += n;
    if (!fs_busy(r)) start_write(r);
    /* The disk is slower than the network: hold the connection until the
     * write (or the open) in flight is done, so a body never piles up in
     * memory. */
    if (fs_busy(r) && r->plen >= UPLOAD_BUF_MAX) {
        r->write_wait = true;
        srv_req_suspend(r);
    }
    return MHD_YES;
}

static void on_closed(uv_fs_t *req)
{
    srv_req *rq = req->data;
    ssize_t res;
    srv_req *r = fs_end(req, &rq->closing, &res);
    if (!r) return;
    srv_handler end = r->upload_end;
    r->upload_end = NULL;
    if (res < 0) {
        srv_log("error", "spool close failed",
                json_pack("{s:s, s:s}", "request_id", r->rid, "error", strerror((int)-res)));
        srv_upload_discard(r);
        srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER,
                    "the spool is not writable; see the daemon log (request %s)", r->rid);
        return;
    }
    if (r->discard_after || r->canceled) {
        r->discard_after = false;
        close_and_unlink(r);
        if (r->canceled)
            srv_problem(r, ADX_E_CANCELED, NULL, NULL,
                        "job %s was canceled while its body arrived; nothing of it was kept",
                        r->rm.id);
        return;
    }
    end(r);
}

enum MHD_Result srv_upload_end(srv_req *r)
{
    bool failed = r->no_space || r->write_failed || r->too_big || r->canceled;
    if (fs_pending(r) || (r->plen && !failed)) {
        if (!fs_pending(r)) start_write(r);
        if (fs_pending(r)) {
            r->write_wait = true;
            srv_req_suspend(r);
            return MHD_YES;
        }
    }
    r->body_done = true;
    srv_conn_phase_set(r, SRV_CONN_BUSY);
    if (r->canceled) {
        r->upload_end = NULL;
        return srv_problem(r, ADX_E_CANCELED, NULL, NULL,
                           "job %s was canceled while its body arrived; nothing of it was kept",
                           r->rm.id);
    }
    if (r->no_space) {
        r->upload_end = NULL;
        char why[200];
        snprintf(why, sizeof why,
                 "the spool filled up while the body arrived (max_spool_bytes "
                 "%llu, or the disk)",
                 (unsigned long long)r->s->cfg.max_spool_bytes);
        return no_room(r, why);
    }
    if (r->write_failed) {
        r->upload_end = NULL;
        return srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER,
                           "the spool is not writable; see the daemon log (request %s)", r->rid);
    }
    if (r->too_big) {
        r->upload_end = NULL;
        adx_err e;
        adx_err_init(&e);
        adx_err_set(&e, ADX_E_LIMIT, "", "the body exceeds max_body_bytes (%llu)",
                    (unsigned long long)r->s->cfg.limits.max_body_bytes);
        return srv_send_err(r, &e, NULL, NULL);
    }
    free(r->wbuf);
    free(r->pbuf);
    r->wbuf = r->pbuf = NULL;
    r->pcap = r->wcap = 0;
    /* Closed on the pool; the handler of the complete body runs then
     * (the fsync that makes it durable happens on a worker too). */
    int fd = r->fd;
    r->fd = -1;
    r->oreq.data = r;
    if (uv_fs_close(r->s->loop, &r->oreq, fd, on_closed) < 0) {
        r->upload_end = NULL;
        fs_drop_start(r->s, fd, r->upload);
        r->upload[0] = '\0';
        srv_spool_release(r->s, r->reserved);
        r->reserved = 0;
        return srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER,
                           "the spool is not writable; see the daemon log (request %s)", r->rid);
    }
    r->closing = true;
    srv_req_suspend(r);
    return MHD_YES;
}
