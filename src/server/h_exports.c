/* /v1/exports: new jobs (POST, with ?wait), the listing, one job, DELETE,
 * and the file of a succeeded job with Range/ETag. */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

static srv_job *job_of(srv_req *r)
{
    return srv_id_valid(r->rm.id) ? srv_jobs_find(&r->s->jobs, r->rm.id) : NULL;
}

static enum MHD_Result no_job(srv_req *r)
{
    char shown[SRV_ID_LEN * 4 + 1];
    srv_log_text(r->rm.id, shown, sizeof shown); /* any bytes, valid UTF-8 out */
    return srv_problem(r, ADX_E_NOT_FOUND, NULL, NULL, "no job %s", shown);
}

enum MHD_Result srv_h_exports_list(srv_req *r)
{
    const char *st = srv_req_query(r, "state"), *lim = srv_req_query(r, "limit"),
               *cur = srv_req_query(r, "cursor");
    int state = -1;
    if (st && (state = srv_job_state_parse(st)) < 0)
        return srv_problem(r, ADX_E_BAD_OPTION, NULL, NULL,
                           "state must be one of receiving, validating, queued, running, "
                           "succeeded, failed, canceled, expired");
    const char *rid = srv_req_query(r, "request_id");
    long limit = 50;
    if (lim) {
        char *end;
        errno = 0;
        limit = strtol(lim, &end, 10);
        if (errno || *end || end == lim || limit < 1 || limit > 1000)
            return srv_problem(r, ADX_E_BAD_OPTION, NULL, NULL,
                               "limit must be an integer from 1 to 1000");
    }
    if (cur && !srv_id_valid(cur))
        return srv_problem(r, ADX_E_BAD_OPTION, NULL, NULL,
                           "cursor is not one this server handed out");
    srv_job *page[1000];
    bool more;
    size_t n = srv_jobs_page(&r->s->jobs, state, rid, cur, (size_t)limit, page, &more);
    json_t *items = json_array();
    for (size_t i = 0; i < n && items; i++)
        json_array_append_new(items, srv_job_json(page[i], r->base));
    json_t *o =
        json_pack("{s:o, s:s?}", "items", items, "next_cursor", more && n ? page[n - 1]->id : NULL);
    if (o && !more) json_object_set_new(o, "next_cursor", json_null());
    return srv_send_json(r, 200, o);
}

enum MHD_Result srv_h_export_get(srv_req *r)
{
    srv_job *j = job_of(r);
    if (!j) return no_job(r);
    return srv_send_json(r, 200, srv_job_json(j, r->base));
}

enum MHD_Result srv_h_export_delete(srv_req *r)
{
    srv_job *j = job_of(r);
    if (!j) return no_job(r);
    srv_job_state before = j->state;
    srv_jobs_delete(&r->s->jobs, j, srv_now_ms());
    srv_log("info", "job deleted",
            json_pack("{s:s, s:s, s:s}", "job_id", r->rm.id, "request_id", r->rid, "was",
                      srv_job_state_name(before)));
    return srv_send_empty(r, 204);
}

/* ---- reading a result in before it is sent ---------------------------- */

/* libmicrohttpd sends a result with sendfile(2) on the loop thread, which
 * waits for the disk where the file is not in the page cache (evicted
 * under memory pressure, or after a restart). Such a file is read in by a
 * pool thread first, the request suspended meanwhile; a page evicted again
 * between the two is read by sendfile, as before. At most READ_IN_MAX
 * files are read in at once, so that downloads of cold files cannot fill
 * the pool the exports run on; past that a file is sent as it is (the
 * loop then waits for the disk, as it did before). */
enum { READ_IN_MAX = 2 };
typedef struct read_in_work {
    uv_work_t w;
    srv_state *s;
    srv_req *r; /* NULL once the request let go of it (shutdown) */
    srv_job *j; /* a reference */
    int fd;
    uint64_t off, len;
    bool full_only;
} read_in_work;

/* Whether [off, off + len) of fd is all in the page cache: mincore(2) of a
 * read-only mapping, which faults nothing in, 64 MiB at a time. A failure
 * answers no: the pool then reads the file, which is only slower. */
static bool file_resident(int fd, uint64_t off, uint64_t len)
{
    enum { WIN_PAGES = 16384 };
    static unsigned char vec[WIN_PAGES]; /* the loop thread's alone */
    uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE), end = off + len;
    for (uint64_t a = off & ~(pg - 1); a < end;) {
        size_t n = (size_t)(end - a < WIN_PAGES * pg ? end - a : WIN_PAGES * pg);
        void *m = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, (off_t)a);
        if (m == MAP_FAILED) return false;
        int rc = mincore(m, n, vec);
        munmap(m, n);
        if (rc != 0) return false;
        for (size_t i = 0; i < (n + pg - 1) / pg; i++)
            if (!(vec[i] & 1)) return false;
        a += n;
    }
    return true;
}

static void read_in_run(uv_work_t *w)
{
    read_in_work *rw = w->data;
    enum { CHUNK = 256 * 1024 };
    char *buf = malloc(CHUNK);
    if (!buf) return; /* sendfile reads what is missing */
    (void)posix_fadvise(rw->fd, (off_t)rw->off, (off_t)rw->len, POSIX_FADV_WILLNEED);
    for (uint64_t done = 0; done < rw->len;) {
        size_t n = rw->len - done < CHUNK ? (size_t)(rw->len - done) : CHUNK;
        ssize_t got = pread(rw->fd, buf, n, (off_t)(rw->off + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        done += (uint64_t)got;
    }
    free(buf);
}

static enum MHD_Result serve_file(srv_req *r, srv_job *j, bool full_only);

static void read_in_done(uv_work_t *w, int status)
{
    (void)status;
    read_in_work *rw = w->data;
    srv_req *r = rw->r;
    close(rw->fd);
    rw->s->http.n_read_in--;
    if (r) {
        r->detach = NULL;
        r->read_in = NULL;
        r->read_in_done = true;
        r->s->metrics.files_read_in++;
        serve_file(r, rw->j, rw->full_only);
    }
    srv_job_unref(rw->j);
    free(rw);
}

static void read_in_detach(srv_req *r)
{
    if (r->read_in) r->read_in->r = NULL;
    r->read_in = NULL;
}

/* Takes fd on success (the request then waits suspended); false leaves
 * everything to the caller, which sends the file as it is. */
static bool read_in_start(srv_req *r, srv_job *j, int fd, uint64_t off, uint64_t len,
                          bool full_only)
{
    if (r->s->http.n_read_in >= READ_IN_MAX) return false;
    read_in_work *rw = calloc(1, sizeof *rw);
    if (!rw) return false;
    *rw = (read_in_work){
        .s = r->s, .r = r, .j = j, .fd = fd, .off = off, .len = len, .full_only = full_only};
    rw->w.data = rw;
    if (uv_queue_work(r->s->loop, &rw->w, read_in_run, read_in_done) != 0) {
        free(rw);
        return false;
    }
    srv_job_ref(j);
    r->s->http.n_read_in++;
    r->read_in = rw;
    r->on_tick = NULL; /* a ?wait that ended: its deadline no longer applies */
    r->detach = read_in_detach;
    srv_req_suspend(r);
    return true;
}

/* The file of a succeeded job, honouring Range, If-Range and If-None-Match.
 * `full_only` is set for ?wait answers, which never see those headers. */
static enum MHD_Result serve_file(srv_req *r, srv_job *j, bool full_only)
{
    if (j->state == SRV_JOB_EXPIRED)
        return srv_problem(r, ADX_E_GONE, NULL, NULL,
                           "the result of job %s expired and was deleted", j->id);
    if (j->state != SRV_JOB_SUCCEEDED) {
        adx_err e;
        adx_err_init(&e);
        adx_err_set(&e, ADX_E_CONFLICT, "", "job %s is %s; the file exists once it succeeded",
                    j->id, srv_job_state_name(j->state));
        json_t *p = adx_err_problem(&e, r->path, NULL);
        if (p) json_object_set_new(p, "state", json_string(srv_job_state_name(j->state)));
        return srv_send_problem(r, p, 409, NULL, NULL);
    }
    char path[PATH_MAX + 64];
    srv_spool_result_path(&r->s->spool, j, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        srv_log("error", "result file missing",
                json_pack("{s:s, s:s}", "job_id", j->id, "request_id", r->rid));
        return srv_problem(r, ADX_E_GONE, NULL, NULL, "the result of job %s is no longer available",
                           j->id);
    }
    uint64_t size = (uint64_t)st.st_size;
    char etag[80], disp[2048], crange[96];
    snprintf(etag, sizeof etag, "\"%s\"", j->sha256);
    const char *fname = j->filename ? j->filename : "export";
    if (srv_content_disposition(fname, disp, sizeof disp) < 0)
        snprintf(disp, sizeof disp, "attachment; filename=\"export%s\"", adx_format_ext(j->format));
    const char *inm = full_only ? NULL : srv_req_header(r, "If-None-Match");
    if (inm && srv_etag_match(inm, etag)) {
        close(fd);
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (resp) MHD_add_response_header(resp, "ETag", etag);
        return srv_respond(r, 304, resp);
    }
    const char *rh = full_only ? NULL : srv_req_header(r, "Range");
    const char *ifr = full_only ? NULL : srv_req_header(r, "If-Range");
    if (rh && ifr && strcmp(ifr, etag) != 0) rh = NULL; /* stale validator: send it all */
    uint64_t first = 0, last = size ? size - 1 : 0;
    srv_range_result rr = srv_range_parse(rh, size, &first, &last);
    if (rr == SRV_RANGE_UNSAT) {
        close(fd);
        snprintf(crange, sizeof crange, "bytes */%llu", (unsigned long long)size);
        return srv_problem(r, ADX_E_RANGE, "Content-Range", crange,
                           "the range is outside the %llu-byte file", (unsigned long long)size);
    }
    uint64_t len = rr == SRV_RANGE_OK ? last - first + 1 : size;
    uint64_t off = rr == SRV_RANGE_OK ? first : 0;
    if (r->m != SRV_M_HEAD && len && !r->read_in_done && !file_resident(fd, off, len) &&
        read_in_start(r, j, fd, off, len, full_only))
        return MHD_YES;
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, off);
    if (!resp) {
        close(fd);
        adx_err e;
        adx_err_init(&e);
        adx_err_set(&e, ADX_E_NOMEM, "", "out of memory");
        adx_err_set_status(&e, 500);
        return srv_send_err(r, &e, NULL, NULL);
    }
    MHD_add_response_header(resp, "Content-Type", adx_format_content_type(j->format));
    MHD_add_response_header(resp, "Content-Disposition", disp);
    MHD_add_response_header(resp, "ETag", etag);
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    MHD_add_response_header(resp, "Cache-Control", "private, no-cache");
    char loc[700];
    snprintf(loc, sizeof loc, "%s/v1/exports/%s", r->base, j->id);
    MHD_add_response_header(resp, "Content-Location", loc);
    if (r->m != SRV_M_HEAD) r->bytes_out += len;
    if (rr == SRV_RANGE_OK) {
        snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)first,
                 (unsigned long long)last, (unsigned long long)size);
        MHD_add_response_header(resp, "Content-Range", crange);
        return srv_respond(r, 206, resp);
    }
    return srv_respond(r, 200, resp);
}

enum MHD_Result srv_h_export_file(srv_req *r)
{
    srv_job *j = job_of(r);
    if (!j) return no_job(r);
    return serve_file(r, j, false);
}

static enum MHD_Result send_job_accepted(srv_req *r, srv_job *j)
{
    json_t *o = srv_job_json(j, r->base);
    struct MHD_Response *resp = srv_resp_json(r, o, "application/json");
    if (resp) {
        char loc[700];
        snprintf(loc, sizeof loc, "%s/v1/exports/%s", r->base, j->id);
        MHD_add_response_header(resp, "Location", loc);
    }
    return srv_respond(r, 202, resp);
}

/* ---- ?wait ----------------------------------------------------------------- */

/* The answer of a ?wait request whose job ended (or whose wait ran out). */
static void answer_wait(srv_req *r, srv_job *j)
{
    if (j->state == SRV_JOB_SUCCEEDED) {
        serve_file(r, j, true);
    } else if (j->state == SRV_JOB_FAILED || j->state == SRV_JOB_CANCELED) {
        json_t *p = j->error ? json_deep_copy(j->error) : NULL;
        json_t *st = p ? json_object_get(p, "status") : NULL;
        int status = json_is_integer(st) ? (int)json_integer_value(st) : 500;
        if (status < 400 || status > 599) status = 500;
        if (p) json_object_set_new(p, "job_id", json_string(j->id));
        srv_send_problem(r, p, status, NULL, NULL);
    } else {
        send_job_accepted(r, j);
    }
}

static void wait_done(srv_job_watch *w, srv_job *j)
{
    answer_wait(srv_req_of_watch(w), j);
}

static void wait_tick(srv_req *r, int64_t now)
{
    srv_job *j = r->watch.job;
    if (!j) return;
    /* Shutdown ends waits on jobs that will not run before exit. */
    bool stop = r->s->shutting_down && j->state == SRV_JOB_QUEUED;
    if (now >= r->wait_deadline || stop) {
        srv_job_watch_remove(&r->watch);
        answer_wait(r, j);
    }
}

static void wait_detach(srv_req *r)
{
    srv_job_watch_remove(&r->watch);
}

/* ---- POST ------------------------------------------------------------------ */

/* The request's answer says which job it was. */
static enum MHD_Result send_canceled(srv_req *r, srv_job *j)
{
    json_t *p = srv_job_canceled_problem();
    if (p) json_object_set_new(p, "job_id", json_string(j->id));
    return srv_send_problem(r, p, 409, NULL, NULL);
}

/* The request is done with its job (answered, refused or gone): a job
 * that was never accepted is forgotten unless a DELETE canceled it. */
void srv_exports_req_end(srv_req *r)
{
    srv_job *j = r->job;
    if (!j) return;
    r->job = NULL;
    if (r->watch.job == j) srv_job_watch_remove(&r->watch);
    if (j->state == SRV_JOB_RECEIVING || j->state == SRV_JOB_VALIDATING)
        srv_jobs_forget(&r->s->jobs, j);
    srv_job_unref(j);
}

/* DELETE of a job whose body is still arriving: stop spooling, delete what
 * arrived; the answer goes out once the client has sent its body (or the
 * connection is closed when too much of it remains, upload.c). */
static void upload_canceled(srv_job_watch *w, srv_job *j)
{
    srv_req *r = srv_req_of_watch(w);
    if (r->canceled) return;
    r->canceled = true;
    r->canceled_at = r->bytes_in;
    srv_upload_discard(r);
    srv_log("info", "upload canceled",
            json_pack("{s:s, s:s, s:I}", "job_id", j->id, "request_id", r->rid, "bytes_received",
                      (json_int_t)r->bytes_in));
}

static void validated(srv_validate *v)
{
    srv_req *r = v->ud;
    srv_state *s = r->s;
    srv_job *j = r->job; /* validating */
    r->val = NULL;
    bool canceled = atomic_load(&j->cancel) == SRV_CANCEL_CLIENT;
    if (!v->job) srv_spool_release(s, v->spool_bytes); /* the worker deleted the upload */
    if (!v->job && canceled) {
        json_decref(j->error);
        j->error = srv_job_canceled_problem();
        srv_jobs_event(&s->jobs, j, SRV_EV_CANCEL, srv_now_ms());
        srv_log("info", "job canceled while validating",
                json_pack("{s:s, s:s}", "job_id", j->id, "request_id", r->rid));
        send_canceled(r, j);
    } else if (!v->job && v->err.type == ADX_E_NO_SPACE) {
        /* the decompressed copy of a gzip body did not fit */
        srv_send_err(r, &v->err, "Retry-After", SRV_RETRY_AFTER);
    } else if (!v->job) {
        if (v->err.status >= 500 || v->err.type == ADX_E_IO || v->err.type == ADX_E_INTERNAL) {
            srv_log(
                "error", "request could not be stored",
                srv_log_cause(json_pack("{s:s, s:s}", "request_id", r->rid, "error", v->err.detail),
                              &v->err));
            /* A spool that cannot take files (permissions, a read-only
             * disk) is the condition /readyz reports, not a bug: 503. */
            int st = v->err.type == ADX_E_IO ? 503 : v->err.status >= 500 ? v->err.status : 500;
            adx_err e;
            adx_err_init(&e);
            adx_err_set(&e, st == 503 ? ADX_E_UNAVAILABLE : v->err.type, "",
                        "the request could not be stored; see the daemon log (request %s)", r->rid);
            adx_err_set_status(&e, st);
            srv_send_err(r, &e, st == 503 ? "Retry-After" : NULL, SRV_RETRY_AFTER);
        } else {
            srv_send_err(r, &v->err, NULL, NULL);
        }
    }
    if (!v->job) {
        srv_exports_req_end(r);
        free(v->options);
        free(v);
        return;
    }
    srv_job_adopt(j, v->job);
    j->req_bytes = v->spool_bytes;
    /* A model kept from validation carries its decode progress over. */
    if (!j->pj) atomic_store(&j->progress_ppm, 0u);
    srv_jobs_event(&s->jobs, j, SRV_EV_ACCEPT, 0);
    srv_jobs_enqueue(&s->jobs, j);
    srv_log("info", "job accepted",
            json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s, s:f, s:f}", "job_id", j->id, "request_id",
                      r->rid, "format", adx_format_name(j->format), "filename", j->filename,
                      "dataset", j->dataset, "input", pipe_src_name(j->input.kind), "load_s",
                      v->load_s, "store_s", v->store_s));
    free(v->options);
    free(v);
    if (canceled) {
        /* DELETE came after the worker's last look: the job is on disk,
         * canceled as a queued one is (its record says so, its body goes). */
        srv_jobs_delete(&s->jobs, j, srv_now_ms());
        send_canceled(r, j);
        srv_exports_req_end(r);
        return;
    }
    srv_exports_req_end(r);
    srv_run_dispatch(s);
    if (r->wait_s > 0 && !srv_job_terminal(j->state)) {
        r->wait_deadline = srv_now_ms() + (int64_t)r->wait_s * 1000;
        r->watch.fn = wait_done;
        srv_job_watch_add(j, &r->watch);
        r->on_tick = wait_tick;
        r->detach = wait_detach;
        return; /* stays suspended */
    }
    if (r->wait_s > 0)
        answer_wait(r, j);
    else
        send_job_accepted(r, j);
}

static enum MHD_Result post_end(srv_req *r)
{
    srv_state *s = r->s;
    srv_validate *v = calloc(1, sizeof *v);
    if (!v) {
        srv_upload_discard(r);
        return srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER, "out of memory");
    }
    snprintf(v->upload, sizeof v->upload, "%s", r->upload);
    r->upload[0] = '\0'; /* the worker owns the file now, and its bytes */
    v->spool_bytes = r->reserved;
    r->reserved = 0;
    memcpy(v->id, r->rm.id, sizeof v->id);
    v->created_ms = r->job->created_ms;
    v->cancel = &r->job->cancel;
    v->progress_ppm = &r->job->progress_ppm;
    v->lim = s->cfg.limits;
    v->keep_model = s->jobs.n_running + s->jobs.n_queued + s->jobs.n_validating < s->cfg.workers;
    v->input = r->input;
    v->options = r->options; /* the loop does not touch it while the worker runs */
    r->options = NULL;
    v->done = validated;
    v->ud = r;
    /* From here a DELETE only raises the flag the worker polls. */
    srv_job_watch_remove(&r->watch);
    srv_jobs_event(&s->jobs, r->job, SRV_EV_RECEIVED, 0);
    if (srv_validate_start(s, v) < 0) {
        srv_upload_unlink(s, v->upload);
        srv_spool_release(s, v->spool_bytes);
        free(v->options);
        free(v);
        srv_exports_req_end(r);
        return srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER,
                           "cannot schedule the request");
    }
    r->val = v;
    srv_req_suspend(r);
    return MHD_YES;
}

enum MHD_Result srv_h_exports_post(srv_req *r)
{
    srv_state *s = r->s;
    enum MHD_Result rc;
    if (!srv_upload_export_type(r, &rc) || srv_upload_too_big(r, &rc)) return rc;
    if (srv_jobs_queue_full(&s->jobs))
        return srv_problem(r, ADX_E_QUEUE_FULL, "Retry-After", SRV_RETRY_AFTER,
                           "the queue holds %u jobs (queue_max); retry later", s->cfg.queue_max);
    const char *w = srv_req_query(r, "wait");
    if (w) {
        char *end;
        errno = 0;
        unsigned long long sec = strtoull(w, &end, 10);
        if (errno || *end || end == w || *w == '-')
            return srv_problem(r, ADX_E_BAD_OPTION, NULL, NULL,
                               "wait must be a whole number of seconds");
        r->wait_s = (unsigned)(sec > s->cfg.wait_max ? s->cfg.wait_max : sec);
        if (r->wait_s > 0 && s->http.n_waiting >= s->cfg.max_waiting)
            return srv_problem(r, ADX_E_QUEUE_FULL, "Retry-After", SRV_RETRY_AFTER,
                               "%u requests with ?wait are in progress (max_waiting); retry "
                               "later or POST without wait",
                               s->cfg.max_waiting);
        if (r->wait_s > 0) {
            r->waiting = true;
            s->http.n_waiting++;
        }
    }
    if (r->input.kind == PIPE_SRC_H5AD) {
        adx_err e;
        adx_err_init(&e);
        r->options = srv_query_options(r, &e);
        if (!r->options) return srv_send_err(r, &e, NULL, NULL);
    }
    srv_new_id(s, r->rm.id);
    enum MHD_Result orc = srv_upload_open(r, post_end);
    if (r->status) return orc; /* refused before the body: never a job */
    /* The job exists from here on, before any byte of the body: listed,
     * found by the client's X-Request-ID, and cancelable. */
    srv_job *j = srv_job_new(r->rm.id, SRV_JOB_RECEIVING);
    if (!j) {
        srv_upload_discard(r);
        r->upload_end = NULL;
        return srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER, "out of memory");
    }
    j->created_ms = srv_now_ms();
    snprintf(j->rid, sizeof j->rid, "%s", r->rid);
    j->input = r->input;
    const char *cl = srv_req_header(r, "Content-Length");
    j->bytes_expected = cl ? strtoull(cl, NULL, 10) : 0;
    srv_jobs_link(&s->jobs, j);
    srv_job_ref(j);
    r->job = j;
    r->watch.fn = upload_canceled;
    srv_job_watch_add(j, &r->watch);
    return orc;
}
