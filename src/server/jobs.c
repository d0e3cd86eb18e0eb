/* The job table, the FIFO and the worker side of every job. The loop thread
 * owns all of it: workers only see the fields a comment in srv_internal.h
 * marks as theirs (cancel, progress_ppm) plus the immutable ones (id,
 * created_ms, started_ms, format, filename) while the job is in_work. */
#include "srv_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- table ---------------------------------------------------------- */

/* Id index: a job table can hold a TTL's worth of jobs (hundreds of
 * thousands), so lookups must not walk the list. If the index cannot be
 * allocated at all, lookups fall back to the list for good. */
static srv_job **hbuckets;
static size_t hcap, hcount;
static bool hbroken;

static size_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return (size_t)h;
}

static void hash_insert(srv_job *j)
{
    if (hbroken) return;
    if (hcount + 1 > hcap) {
        size_t ncap = hcap ? hcap * 2 : 1024;
        srv_job **nb = calloc(ncap, sizeof *nb);
        if (!nb && !hcap) {
            hbroken = true;
            return;
        }
        if (nb) { /* else keep the old buckets: longer chains, still correct */
            for (size_t i = 0; i < hcap; i++) {
                srv_job *e = hbuckets[i], *next;
                for (; e; e = next) {
                    next = e->hnext;
                    size_t b = hash_id(e->id) & (ncap - 1);
                    e->hnext = nb[b];
                    nb[b] = e;
                }
            }
            free(hbuckets);
            hbuckets = nb;
            hcap = ncap;
        }
    }
    size_t b = hash_id(j->id) & (hcap - 1);
    j->hnext = hbuckets[b];
    hbuckets[b] = j;
    hcount++;
}

static void hash_remove(srv_job *j)
{
    if (hbroken || !hcap) return;
    for (srv_job **pp = &hbuckets[hash_id(j->id) & (hcap - 1)]; *pp; pp = &(*pp)->hnext)
        if (*pp == j) {
            *pp = j->hnext;
            j->hnext = NULL;
            hcount--;
            return;
        }
}

srv_job *srv_job_find(const char *id)
{
    if (!hbroken) {
        if (!hcap) return NULL;
        for (srv_job *j = hbuckets[hash_id(id) & (hcap - 1)]; j; j = j->hnext)
            if (strcmp(j->id, id) == 0) return j;
        return NULL;
    }
    for (srv_job *j = srv_g->jobs_head; j; j = j->next)
        if (strcmp(j->id, id) == 0) return j;
    return NULL;
}

void srv_job_link(srv_job *j)
{
    hash_insert(j);
    srv_job **pp = &srv_g->jobs_head, *prev = NULL;
    /* Ids sort by creation time, so a new job goes to the head at once. */
    while (*pp && strcmp((*pp)->id, j->id) > 0) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    j->next = *pp;
    j->prev = prev;
    if (*pp) (*pp)->prev = j;
    *pp = j;
}

/* Expiry lists: terminal jobs in finished_ms order, so the sweep only looks
 * at the jobs that are due. [1] succeeded/failed/canceled (due at +ttl),
 * [2] expired (forgotten at +2 ttl). */
static struct {
    srv_job *head, *tail;
} elists[3];

static void elist_remove(srv_job *j)
{
    if (!j->elist) return;
    int l = j->elist;
    if (j->eprev)
        j->eprev->enext = j->enext;
    else
        elists[l].head = j->enext;
    if (j->enext)
        j->enext->eprev = j->eprev;
    else
        elists[l].tail = j->eprev;
    j->eprev = j->enext = NULL;
    j->elist = 0;
}

static void elist_insert(srv_job *j, int l)
{
    elist_remove(j);
    /* Jobs finish roughly in order: the place is almost always the tail. */
    srv_job *after = elists[l].tail;
    while (after && after->finished_ms > j->finished_ms)
        after = after->eprev;
    j->eprev = after;
    j->enext = after ? after->enext : elists[l].head;
    if (j->enext)
        j->enext->eprev = j;
    else
        elists[l].tail = j;
    if (after)
        after->enext = j;
    else
        elists[l].head = j;
    j->elist = l;
}

void srv_job_track(srv_job *j)
{
    if (!srv_job_terminal(j->state)) return;
    elist_insert(j, j->state == SRV_JOB_EXPIRED ? 2 : 1);
}

static void job_unlink(srv_job *j)
{
    hash_remove(j);
    elist_remove(j);
    if (j->prev)
        j->prev->next = j->next;
    else
        srv_g->jobs_head = j->next;
    if (j->next) j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

static void job_free(srv_job *j)
{
    if (!j) return;
    pipe_free(j->pj);
    free(j->filename);
    free(j->dataset);
    json_decref(j->result);
    json_decref(j->error);
    free(j);
}

void srv_job_unpin(srv_job *j)
{
    if (!j->pinned) return;
    j->pinned = false;
    if (srv_g->ds) ds_unpin(srv_g->ds, j->dataset);
}

unsigned srv_jobs_count_state(srv_job_state st)
{
    unsigned n = 0;
    for (srv_job *j = srv_g->jobs_head; j; j = j->next)
        n += j->state == st;
    return n;
}

bool srv_queue_full(void)
{
    return srv_g->n_queued + srv_g->n_validating >= srv_g->cfg.queue_max;
}

void srv_job_enqueue(srv_job *j)
{
    j->qnext = NULL;
    if (srv_g->q_tail)
        srv_g->q_tail->qnext = j;
    else
        srv_g->q_head = j;
    srv_g->q_tail = j;
    srv_g->n_queued++;
}

static void queue_remove(srv_job *j)
{
    srv_job **pp = &srv_g->q_head, *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (!*pp) return;
    *pp = j->qnext;
    if (srv_g->q_tail == j) srv_g->q_tail = prev;
    j->qnext = NULL;
    srv_g->n_queued--;
}

static json_t *problem_for_job(const adx_err *e, const char *id)
{
    if (e->status >= 500 || e->type == ADX_E_IO || e->type == ADX_E_INTERNAL) {
        /* Library messages may name files of this machine: the client gets
         * a pointer to the log, the log gets the details. */
        adx_err pub;
        adx_err_init(&pub);
        adx_err_set(&pub, e->type, "",
                    "the export failed on the server; see the daemon log for job %s", id);
        adx_err_set_status(&pub, e->status ? e->status : 500);
        return adx_err_problem(&pub, NULL, NULL);
    }
    return adx_err_problem(e, NULL, NULL);
}

/* ---- per-job io chain (records, removal) ----------------------------- */

typedef struct io_work {
    uv_work_t w;
    srv_job *j;
    char *record;     /* write job.json when set */
    bool drop_result; /* unlink result.<ext> */
    bool remove_dir;
    char dir[PATH_MAX + 64];
    char result[PATH_MAX + 64];
    adx_err err;
} io_work;

static void io_run(uv_work_t *w)
{
    io_work *iw = w->data;
    if (iw->drop_result) unlink(iw->result);
    if (iw->record)
        srv_write_durable(iw->dir, "job.json", iw->record, strlen(iw->record), &iw->err);
    if (iw->remove_dir) srv_remove_tree(iw->dir);
}

static void io_start(srv_job *j, bool remove, bool drop_result);

static void maybe_free(srv_job *j)
{
    if (j->removed && !j->in_work && j->io_busy == 0) job_free(j);
}

static void io_done(uv_work_t *w, int status)
{
    io_work *iw = w->data;
    srv_job *j = iw->j;
    if (adx_err_failed(&iw->err))
        srv_log("error", "spool write failed",
                json_pack("{s:s, s:s}", "job_id", j->id, "error", iw->err.detail));
    free(iw->record);
    free(iw);
    j->io_busy--;
    if (j->io_busy == 0) {
        if (j->io_remove_pending) {
            j->io_remove_pending = false;
            io_start(j, true, false);
        } else if (j->io_persist_again && !j->removed) {
            j->io_persist_again = false;
            io_start(j, false, false);
        }
    }
    maybe_free(j);
}

static void io_start(srv_job *j, bool remove, bool drop_result)
{
    io_work *iw = calloc(1, sizeof *iw);
    if (!iw) {
        srv_log("error", "out of memory persisting a job", json_pack("{s:s}", "job_id", j->id));
        return;
    }
    iw->w.data = iw;
    iw->j = j;
    adx_err_init(&iw->err);
    srv_job_dir(srv_g, j->id, iw->dir, sizeof iw->dir);
    srv_result_path(srv_g, j, iw->result, sizeof iw->result);
    iw->remove_dir = remove;
    iw->drop_result = drop_result;
    if (!remove) iw->record = srv_job_record(j);
    j->io_busy++;
    if (uv_queue_work(srv_g->loop, &iw->w, io_run, io_done) != 0) {
        j->io_busy--;
        free(iw->record);
        free(iw);
    }
}

void srv_job_persist(srv_job *j)
{
    if (j->io_busy) {
        j->io_persist_again = true;
        return;
    }
    io_start(j, false, false);
}

static void job_remove(srv_job *j)
{
    job_unlink(j);
    j->removed = true;
    if (j->io_busy)
        j->io_remove_pending = true;
    else
        io_start(j, true, false);
    maybe_free(j);
}

/* ---- exports on the pool --------------------------------------------- */

typedef struct export_work {
    uv_work_t w;
    srv_job *j;
    pipe_job *pj;
    adx_limits lim;
    srv_input input;
    char req_path[PATH_MAX + 64];
    char in_path[PATH_MAX + 64];
    char out_path[PATH_MAX + 64];
    char dir[PATH_MAX + 64];
    int event; /* SRV_EV_SUCCEED / FAIL / CANCEL, or -1 when interrupted by shutdown */
    adx_err err;
    json_t *result, *error;
    int64_t finished_ms;
    uint64_t t0, t1;
} export_work;

static void on_progress(void *ud, double f)
{
    srv_job *j = ud;
    if (f < 0) f = 0;
    if (f > 1) f = 1;
    atomic_store_explicit(&j->progress_ppm, (unsigned)(f * 1e6), memory_order_relaxed);
}

/* Worker: the job's input as a pipeline job. request.json is the whole
 * request, or for an uploaded h5ad only its options. */
static pipe_job *load_input(srv_input input, const char *req_path, const char *in_path,
                            const adx_limits *lim, const adx_ctl *ctl, adx_err *err)
{
    if (input == SRV_IN_H5AD) {
        /* The spool's own file; jansson's message would name its path. */
        json_t *opts = json_load_file(req_path, 0, NULL);
        if (!opts) {
            adx_err_set(err, ADX_E_IO, "", "the stored export options do not read");
            return NULL;
        }
        /* The input passed adx-h5check before the 202; checking it again
         * costs one extra read of the file in a child (only when the model
         * was not kept from validation) and keeps every in-process read of
         * an uploaded h5ad behind a check. */
        pipe_job *pj = pipe_load_input(in_path, PIPE_SRC_H5AD, opts, lim, srv_g->h5check, err);
        json_decref(opts);
        return pj;
    }
    pipe_env env = {.store = srv_g->ds, .ctl = ctl};
    return pipe_load_file_env(req_path, lim, &env, err);
}

static void export_run(uv_work_t *w)
{
    export_work *ew = w->data;
    srv_job *j = ew->j;
    ew->t0 = srv_mono_ns();
    adx_ctl ctl = {.cancel = &j->cancel, .progress = on_progress, .ud = j};
    pipe_job *pj = ew->pj;
    ew->pj = NULL;
    if (!pj && !adx_ctl_canceled(&ctl))
        pj = load_input(ew->input, ew->req_path, ew->in_path, &ew->lim, &ctl, &ew->err);
    int rc = -1;
    if (pj && !adx_ctl_canceled(&ctl)) {
        rc = pipe_prepare(pj, &ew->err);
        if (rc == 0) rc = pipe_write(pj, ew->out_path, &ctl, &ew->err);
        if (rc == 0) ew->result = pipe_result_json(pj, j->id);
        if (rc == 0 && !ew->result) {
            adx_err_set(&ew->err, ADX_E_NOMEM, "", "out of memory building the result");
            rc = -1;
        }
    }
    pipe_free(pj);
    int c = atomic_load(&j->cancel);
    ew->finished_ms = srv_now_ms();
    if (c == 2) {
        /* Shutdown stopped it: leave the record queued so it runs again. */
        ew->event = -1;
        unlink(ew->out_path);
    } else if (c == 1) {
        ew->event = SRV_EV_CANCEL;
        unlink(ew->out_path);
        adx_err ce;
        adx_err_init(&ce);
        adx_err_set(&ce, ADX_E_CANCELED, "", "the job was canceled by a client");
        ew->error = adx_err_problem(&ce, NULL, NULL);
    } else if (rc == 0) {
        ew->event = SRV_EV_SUCCEED;
    } else {
        ew->event = SRV_EV_FAIL;
        if (!adx_err_failed(&ew->err))
            adx_err_set(&ew->err, ADX_E_INTERNAL, "", "the pipeline failed without a reason");
        ew->error = problem_for_job(&ew->err, j->id);
    }
    if (ew->event >= 0) {
        /* A shallow copy carries the terminal state into the record without
         * touching the job the loop may be reading. */
        srv_job copy = {0};
        memcpy(copy.id, j->id, sizeof copy.id);
        copy.state = (srv_job_state)srv_job_next(SRV_JOB_RUNNING, (srv_job_event)ew->event);
        copy.created_ms = j->created_ms;
        copy.started_ms = j->started_ms;
        copy.finished_ms = ew->finished_ms;
        copy.format = j->format;
        copy.filename = j->filename;
        copy.input = j->input;
        copy.dataset = j->dataset;
        copy.result = ew->result;
        copy.error = ew->error;
        char *rec = srv_job_record(&copy);
        adx_err perr;
        adx_err_init(&perr);
        if (!rec || srv_write_durable(ew->dir, "job.json", rec, strlen(rec), &perr) < 0) {
            /* Not durable: the job reruns after a restart, which is safe. */
            if (!adx_err_failed(&perr)) adx_err_set(&perr, ADX_E_NOMEM, "", "record");
        }
        free(rec);
        /* Once the terminal record is durable the input is never read
         * again; before that, a restart still needs it to rerun the job. */
        if (ew->input == SRV_IN_H5AD && !adx_err_failed(&perr)) unlink(ew->in_path);
    }
    ew->t1 = srv_mono_ns();
}

static void export_done(uv_work_t *w, int status)
{
    export_work *ew = w->data;
    srv_job *j = ew->j;
    j->in_work = false;
    srv_g->n_running--;
    srv_g->worker_busy_s += (double)(ew->t1 - ew->t0) / 1e9;
    if (ew->event < 0) {
        j->state = (srv_job_state)srv_job_next(j->state, SRV_EV_INTERRUPT);
        srv_log("info", "job interrupted by shutdown; it runs again after a restart",
                json_pack("{s:s}", "job_id", j->id));
    } else {
        int next = srv_job_next(j->state, (srv_job_event)ew->event);
        if (next >= 0) j->state = (srv_job_state)next;
        j->finished_ms = ew->finished_ms;
        json_decref(j->error);
        j->error = ew->error;
        ew->error = NULL;
        if (j->state == SRV_JOB_SUCCEEDED) {
            j->result = ew->result;
            ew->result = NULL;
            json_t *sz = json_object_get(j->result, "size_bytes");
            json_t *sh = json_object_get(j->result, "sha256");
            if (json_is_integer(sz)) j->size_bytes = (uint64_t)json_integer_value(sz);
            if (json_is_string(sh))
                snprintf(j->sha256, sizeof j->sha256, "%s", json_string_value(sh));
            atomic_store(&j->progress_ppm, 1000000u);
        }
        json_t *f =
            json_pack("{s:s, s:s, s:s, s:f}", "job_id", j->id, "request_id", j->rid, "state",
                      srv_job_state_name(j->state), "duration_s", (double)(ew->t1 - ew->t0) / 1e9);
        if (j->state == SRV_JOB_SUCCEEDED)
            json_object_set_new(f, "size_bytes", json_integer((json_int_t)j->size_bytes));
        if (j->state == SRV_JOB_FAILED) {
            json_object_set_new(f, "error", json_string(ew->err.detail));
            if (ew->err.n_items)
                json_object_set_new(f, "pointer", json_string(ew->err.items[0].pointer));
        }
        srv_log(j->state == SRV_JOB_FAILED ? "warn" : "info", "job finished", f);
        srv_job_track(j);
        srv_job_unpin(j);
    }
    json_decref(ew->result);
    json_decref(ew->error);
    free(ew);
    srv_http_job_done(j);
    maybe_free(j);
    srv_jobs_dispatch();
}

static int export_start(srv_job *j)
{
    export_work *ew = calloc(1, sizeof *ew);
    if (!ew) return -1;
    ew->w.data = ew;
    ew->j = j;
    ew->lim = srv_g->cfg.limits;
    ew->input = j->input;
    srv_job_file(srv_g, j->id, SRV_INPUT_H5AD_FILE, ew->in_path, sizeof ew->in_path);
    ew->pj = j->pj;
    j->pj = NULL;
    adx_err_init(&ew->err);
    srv_job_file(srv_g, j->id, "request.json", ew->req_path, sizeof ew->req_path);
    srv_result_path(srv_g, j, ew->out_path, sizeof ew->out_path);
    srv_job_dir(srv_g, j->id, ew->dir, sizeof ew->dir);
    j->state = (srv_job_state)srv_job_next(j->state, SRV_EV_START);
    j->started_ms = srv_now_ms();
    j->in_work = true;
    srv_g->n_running++;
    if (uv_queue_work(srv_g->loop, &ew->w, export_run, export_done) != 0) {
        j->in_work = false;
        srv_g->n_running--;
        j->state = SRV_JOB_QUEUED;
        j->pj = ew->pj;
        free(ew);
        return -1;
    }
    return 0;
}

void srv_jobs_dispatch(void)
{
    while (!srv_g->shutting_down && srv_g->n_running < srv_g->cfg.workers && srv_g->q_head) {
        srv_job *j = srv_g->q_head;
        queue_remove(j);
        if (export_start(j) < 0) {
            srv_job_enqueue(j);
            break;
        }
    }
}

int srv_job_delete(srv_job *j)
{
    switch (j->state) {
    case SRV_JOB_QUEUED: {
        queue_remove(j);
        j->state = (srv_job_state)srv_job_next(j->state, SRV_EV_CANCEL);
        j->finished_ms = srv_now_ms();
        pipe_free(j->pj);
        j->pj = NULL;
        adx_err ce;
        adx_err_init(&ce);
        adx_err_set(&ce, ADX_E_CANCELED, "", "the job was canceled by a client");
        json_decref(j->error);
        j->error = adx_err_problem(&ce, NULL, NULL);
        srv_job_persist(j);
        srv_job_track(j);
        srv_job_unpin(j);
        srv_http_job_done(j);
        return 0;
    }
    case SRV_JOB_RUNNING:
        atomic_store(&j->cancel, 1);
        return 0;
    default:
        job_remove(j);
        return 0;
    }
}

void srv_jobs_tick(int64_t now)
{
    int64_t ttl = (int64_t)srv_g->cfg.result_ttl * 1000;
    srv_job *j;
    while ((j = elists[1].head) && now - j->finished_ms >= ttl) {
        elist_remove(j);
        if (j->state == SRV_JOB_SUCCEEDED) {
            j->state = (srv_job_state)srv_job_next(j->state, SRV_EV_EXPIRE);
            srv_log("info", "job expired",
                    json_pack("{s:s, s:s}", "job_id", j->id, "request_id", j->rid));
            if (j->io_busy) {
                j->io_persist_again = true;
                /* a record write is in flight: drop the file now, the record after it */
                char rp[PATH_MAX + 64];
                srv_result_path(srv_g, j, rp, sizeof rp);
                unlink(rp);
            } else {
                io_start(j, false, true);
            }
            elist_insert(j, 2);
        } else {
            job_remove(j); /* failed or canceled */
        }
    }
    /* Keep the "expired" answer for one more TTL, then forget. */
    while ((j = elists[2].head) && now - j->finished_ms >= 2 * ttl)
        job_remove(j);
}

void srv_jobs_free_all(void)
{
    srv_job *next;
    for (srv_job *j = srv_g->jobs_head; j; j = next) {
        next = j->next;
        job_free(j);
    }
    srv_g->jobs_head = NULL;
    srv_g->q_head = srv_g->q_tail = NULL;
    memset(elists, 0, sizeof elists);
    free(hbuckets);
    hbuckets = NULL;
    hcap = hcount = 0;
}

json_t *srv_job_json(const srv_job *j, const char *base)
{
    char ts[40];
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "state", json_string(srv_job_state_name(j->state)));
    double prog = atomic_load_explicit(&j->progress_ppm, memory_order_relaxed) / 1e6;
    if (j->state == SRV_JOB_SUCCEEDED || j->state == SRV_JOB_EXPIRED) prog = 1.0;
    json_object_set_new(o, "progress", json_real(prog));
    const int64_t *times[] = {&j->created_ms, &j->started_ms, &j->finished_ms};
    const char *tnames[] = {"created_at", "started_at", "finished_at"};
    for (int i = 0; i < 3; i++) {
        if (*times[i]) {
            srv_time_iso(*times[i], ts, sizeof ts);
            json_object_set_new(o, tnames[i], json_string(ts));
        } else {
            json_object_set_new(o, tnames[i], json_null());
        }
    }
    json_object_set_new(o, "format", json_string(adx_format_name(j->format)));
    json_object_set_new(o, "filename", j->filename ? json_string(j->filename) : json_null());
    if (j->dataset) json_object_set_new(o, "dataset", json_string(j->dataset));
    bool have = j->state == SRV_JOB_SUCCEEDED;
    json_object_set_new(o, "size_bytes",
                        have ? json_integer((json_int_t)j->size_bytes) : json_null());
    json_object_set_new(o, "sha256", have ? json_string(j->sha256) : json_null());
    json_t *summary = json_object_get(j->result, "summary");
    json_t *report = json_object_get(j->result, "report");
    json_object_set_new(o, "summary", summary ? json_incref(summary) : json_null());
    json_object_set_new(o, "report", report ? json_incref(report) : json_array());
    json_object_set_new(o, "error", j->error ? json_incref(j->error) : json_null());
    if (j->state == SRV_JOB_RUNNING && atomic_load(&j->cancel))
        json_object_set_new(o, "cancel_requested", json_true());
    char self[1024], file[1024];
    snprintf(self, sizeof self, "%s/v1/exports/%s", base, j->id);
    snprintf(file, sizeof file, "%s/v1/exports/%s/file", base, j->id);
    json_object_set_new(o, "links", json_pack("{s:s, s:s}", "self", self, "file", file));
    return o;
}

/* ---- validation of new bodies ---------------------------------------- */

static void validate_run(uv_work_t *w)
{
    srv_validate *v = w->data;
    uint64_t t0 = srv_mono_ns();
    /* The body must be durable before the 202 promises it is. */
    int ufd = open(v->upload, O_RDONLY | O_CLOEXEC);
    if (ufd >= 0) {
        fsync(ufd);
        close(ufd);
    }
    uint64_t t1 = srv_mono_ns();
    pipe_job *pj;
    if (v->input == SRV_IN_H5AD) {
        json_t *opts = json_loads(v->options, 0, NULL);
        pj = opts
                 ? pipe_load_input(v->upload, PIPE_SRC_H5AD, opts, &v->lim, srv_g->h5check, &v->err)
                 : NULL;
        json_decref(opts);
    } else {
        pipe_env env = {.store = srv_g->ds};
        pj = pipe_load_file_env(v->upload, &v->lim, &env, &v->err);
    }
    uint64_t t2 = srv_mono_ns();
    v->load_s = (double)(t2 - t1) / 1e9;
    v->store_s = (double)(t1 - t0) / 1e9;
    if (!pj) {
        if (!adx_err_failed(&v->err))
            adx_err_set(&v->err, ADX_E_INTERNAL, "", "the request could not be loaded");
        unlink(v->upload);
        return;
    }
    srv_job *j = calloc(1, sizeof *j);
    const adx_request *rq = pipe_request(pj);
    if (!j || !rq) {
        free(j);
        pipe_free(pj);
        unlink(v->upload);
        if (!rq)
            adx_err_set(&v->err, ADX_E_INTERNAL, "", "the pipeline returned no request options");
        else
            adx_err_set(&v->err, ADX_E_NOMEM, "", "out of memory creating the job");
        return;
    }
    memcpy(j->id, v->id, sizeof j->id);
    j->state = SRV_JOB_QUEUED;
    j->created_ms = v->created_ms;
    j->format = rq->format;
    j->filename = req_filename(rq, j->id);
    j->input = v->input;
    j->pj = pj;
    bool dataset_ok = true;
    if (rq->dataset) {
        /* Pinned from acceptance on, so no PUT or DELETE can change the
         * dataset under the queued job (released at its terminal state). */
        j->dataset = strdup(rq->dataset);
        dataset_ok = j->dataset != NULL;
        if (j->dataset) {
            ds_pin(srv_g->ds, j->dataset);
            j->pinned = true;
        }
    }
    char dir[PATH_MAX + 64], req[PATH_MAX + 64];
    srv_job_dir(srv_g, j->id, dir, sizeof dir);
    srv_job_file(srv_g, j->id, v->input == SRV_IN_H5AD ? SRV_INPUT_H5AD_FILE : "request.json", req,
                 sizeof req);
    char *rec = j->filename && dataset_ok ? srv_job_record(j) : NULL;
    if (!rec) {
        adx_err_set(&v->err, ADX_E_NOMEM, "", "out of memory creating the job");
    } else if (mkdir(dir, 0750) < 0) {
        adx_err_set(&v->err, ADX_E_IO, "", "cannot create the job directory: %s", strerror(errno));
    } else if (rename(v->upload, req) < 0) {
        adx_err_set(&v->err, ADX_E_IO, "", "cannot move the request: %s", strerror(errno));
    } else if ((v->input != SRV_IN_H5AD || srv_write_durable(dir, "request.json", v->options,
                                                             strlen(v->options), &v->err) == 0) &&
               srv_write_durable(dir, "job.json", rec, strlen(rec), &v->err) == 0) {
        /* The new directory entry must be durable too. */
        adx_fsync_dir(srv_g->jobs_dir);
    }
    free(rec);
    if (adx_err_failed(&v->err)) {
        unlink(v->upload);
        srv_remove_tree(dir);
        if (j->pinned) ds_unpin(srv_g->ds, j->dataset);
        job_free(j);
        return;
    }
    if (!v->keep_model) {
        /* Queued behind others: reload later rather than hold the model. */
        pipe_free(j->pj);
        j->pj = NULL;
    }
    v->job = j;
    v->store_s += (double)(srv_mono_ns() - t2) / 1e9;
}

static void validate_done(uv_work_t *w, int status)
{
    srv_validate *v = w->data;
    srv_g->n_validating--;
    srv_g->worker_busy_s += v->load_s + v->store_s;
    v->done(v);
}

int srv_validate_start(srv_validate *v)
{
    v->w.data = v;
    adx_err_init(&v->err);
    v->job = NULL;
    srv_g->n_validating++;
    if (uv_queue_work(srv_g->loop, &v->w, validate_run, validate_done) != 0) {
        srv_g->n_validating--;
        return -1;
    }
    return 0;
}
