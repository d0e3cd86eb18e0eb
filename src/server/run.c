/* Export jobs on libuv's pool: validating a new body into a job (before
 * the 202), and running queued jobs. Workers see only the job fields
 * jobs.h marks as theirs (cancel, progress_ppm) plus the immutable ones
 * (id, created_ms, started_ms, format, filename) while they hold a
 * reference. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adx_pipeline.h"
#include "spool.h"

#include "adx_afile.h"

/* A queued job keeps a decoded model up to this size (validate_run). */
#define SMALL_MODEL_BYTES (1u << 20)

/* afile and the h5ad writer report a full disk as ADX_E_NO_SPACE; other
 * writers only through their library's message, whose errno text is what
 * they have in common. */
static bool no_space(const adx_err *e)
{
    if (e->type == ADX_E_NO_SPACE) return true;
    if (e->type != ADX_E_IO) return false;
    const char *full = strerror(ENOSPC), *quota = strerror(EDQUOT);
    return strstr(e->cause, full) || strstr(e->cause, quota) || strstr(e->detail, full) ||
           strstr(e->detail, quota);
}

static json_t *problem_for_job(const adx_err *e, const char *id)
{
    if (no_space(e)) {
        adx_err pub;
        adx_err_init(&pub);
        adx_err_set(&pub, ADX_E_NO_SPACE, "",
                    "the result of job %s did not fit on the spool's disk; retry once jobs "
                    "expired or were deleted",
                    id);
        return adx_err_problem(&pub, NULL, NULL);
    }
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

/* ---- exports on the pool --------------------------------------------- */

typedef struct export_work {
    uv_work_t w;
    srv_state *s;
    srv_job *j;
    pipe_job *pj;
    adx_limits lim;
    srv_body input;
    char req_path[PATH_MAX + 64];
    char in_path[PATH_MAX + 64];
    char out_path[PATH_MAX + 64];
    char dir[PATH_MAX + 64];
    int event;            /* SRV_EV_SUCCEED / FAIL / CANCEL, or -1 when interrupted by shutdown */
    bool request_dropped; /* the terminal record is durable and the request deleted */
    bool no_space;        /* the result did not fit on the disk */
    uint64_t res_charged; /* the result's bytes, charged to max_spool_bytes once written */
    bool over_quota;      /* the result did not fit under max_spool_bytes */
    uint64_t job_timeout;
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

/* A job's spooled body as one pipeline source, the same for validation
 * (path = the upload) and the worker (path = request.json or input.h5ad).
 * `opts` is an h5ad body's options document. A stored dataset is only
 * looked up when `defer` (validation): the worker reads it. */
static pipe_job *open_body(srv_state *s, const srv_body *b, const char *path, const json_t *opts,
                           const adx_limits *lim, const adx_ctl *ctl, bool defer, adx_err *err)
{
    char ct[128];
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=\"%s\"", b->boundary);
    pipe_source src = {.kind = b->kind,
                       .path = path,
                       .gzip = b->gzip,
                       .content_type = b->kind == PIPE_SRC_MULTIPART ? ct : NULL,
                       .options = opts,
                       /* The input passed adx-h5check before the 202; checking it
                        * again costs one extra read of the file in a child (only
                        * when the model was not kept from validation) and keeps
                        * every in-process read of an uploaded h5ad behind a check. */
                       .h5check = s->h5check,
                       .defer_dataset = defer};
    /* The decompressed copy of a gzip body counts against max_spool_bytes
     * while it exists. */
    pipe_env env = {.store = s->ds,
                    .ctl = ctl,
                    .reserve = srv_spool_quota_reserve,
                    .release = srv_spool_quota_release,
                    .quota_ud = s};
    return pipe_open(&src, lim, &env, err);
}

/* Worker: the job's input as a pipeline job. request.json is the body as
 * received, or for an uploaded h5ad only its options. */
static pipe_job *load_input(srv_state *s, const srv_body *b, const char *req_path,
                            const char *in_path, const adx_limits *lim, const adx_ctl *ctl,
                            adx_err *err)
{
    if (b->kind != PIPE_SRC_H5AD) return open_body(s, b, req_path, NULL, lim, ctl, false, err);
    /* The spool's own file; jansson's message would name its path. */
    json_t *opts = json_load_file(req_path, 0, NULL);
    if (!opts) {
        adx_err_set(err, ADX_E_IO, "", "the stored export options do not read");
        return NULL;
    }
    pipe_job *pj = open_body(s, b, in_path, opts, lim, ctl, false, err);
    json_decref(opts);
    return pj;
}

/* Worker: the job's record as `st` with `attempts`, written through a
 * shallow copy (the loop may be reading the job); durably unless `sync`
 * says otherwise. */
static int write_record(export_work *ew, srv_job_state st, unsigned attempts, afile_sync sync,
                        adx_err *err)
{
    srv_job *j = ew->j;
    srv_job copy;
    memset(&copy, 0, sizeof copy);
    memcpy(copy.id, j->id, sizeof copy.id);
    copy.state = st;
    copy.attempts = attempts;
    copy.created_ms = j->created_ms;
    copy.started_ms = j->started_ms;
    copy.finished_ms = srv_job_terminal(st) ? ew->finished_ms : 0;
    copy.format = j->format;
    copy.filename = j->filename;
    copy.input = j->input;
    copy.dataset = j->dataset;
    copy.mem_bytes = j->mem_bytes;
    copy.result = ew->result;
    copy.error = ew->error;
    char *rec = srv_spool_record(&copy);
    int rc = rec ? srv_spool_append_record(ew->dir, rec, sync, err)
                 : adx_err_set(err, ADX_E_NOMEM, "", "record");
    free(rec);
    return rc;
}

/* A result counts against max_spool_bytes from when it is written; one
 * that does not fit fails the job with a 507 and is deleted before anyone
 * learns of it. The disk holds it meanwhile: a write is not charged chunk
 * by chunk, so the spool can go over by at most one result per worker. */
static int charge_result(export_work *ew)
{
    /* the writer's own count of the bytes it committed */
    uint64_t n = (uint64_t)json_integer_value(json_object_get(ew->result, "size_bytes"));
    if (srv_spool_reserve(ew->s, n)) {
        ew->res_charged = n;
        return 0;
    }
    unlink(ew->out_path);
    ew->over_quota = true;
    adx_err_set(&ew->err, ADX_E_NO_SPACE, "",
                "the result (%llu bytes) does not fit in the spool: it holds %llu bytes and "
                "max_spool_bytes is %llu",
                (unsigned long long)n, (unsigned long long)atomic_load(&ew->s->spool.used),
                (unsigned long long)ew->s->cfg.max_spool_bytes);
    return -1;
}

static void export_run(uv_work_t *w)
{
    export_work *ew = w->data;
    srv_job *j = ew->j;
    ew->t0 = srv_mono_ns();
    /* Counted before the run: a run that crashes the process stays
     * counted, so a job that keeps crashing it is failed at the next start
     * instead of being rerun forever (spool.c). An append to the record
     * log and its fdatasync: the file's name is durable since the 202. */
    adx_err aerr;
    adx_err_init(&aerr);
    write_record(ew, SRV_JOB_QUEUED, j->attempts, AFILE_SYNC_FILE, &aerr);
    adx_ctl ctl = {.cancel = &j->cancel, .progress = on_progress, .ud = j};
    pipe_job *pj = ew->pj;
    ew->pj = NULL;
    if (!pj && !adx_ctl_canceled(&ctl))
        pj = load_input(ew->s, &ew->input, ew->req_path, ew->in_path, &ew->lim, &ctl, &ew->err);
    int rc = -1;
    if (pj && !adx_ctl_canceled(&ctl)) {
        rc = pipe_prepare_ctl(pj, &ctl, &ew->err);
        /* The terminal record's directory fsync (below, same directory)
         * makes the result's name durable too: one fsync fewer per job.
         * Until then nothing told anyone the job ended; a crash in between
         * leaves the old record (the job runs again) or the new one without
         * its result (the scan marks it expired). */
        if (rc == 0) rc = pipe_write_sync(pj, ew->out_path, AFILE_SYNC_FILE, &ctl, &ew->err);
        if (rc == 0) ew->result = pipe_result_json(pj, j->id);
        if (rc == 0 && !ew->result) {
            adx_err_set(&ew->err, ADX_E_NOMEM, "", "out of memory building the result");
            unlink(ew->out_path);
            rc = -1;
        }
        if (rc == 0) rc = charge_result(ew);
    }
    pipe_free(pj);
    int c = atomic_load(&j->cancel);
    ew->finished_ms = srv_now_ms();
    if (c == SRV_CANCEL_SHUTDOWN) {
        /* Shutdown stopped it: leave the record queued so it runs again,
         * and this run was no crash. */
        ew->event = -1;
        unlink(ew->out_path);
        adx_err_init(&aerr);
        write_record(ew, SRV_JOB_QUEUED, j->attempts ? j->attempts - 1 : 0, AFILE_SYNC_FILE, &aerr);
    } else if (c == SRV_CANCEL_TIMEOUT) {
        ew->event = SRV_EV_FAIL;
        unlink(ew->out_path);
        adx_err te;
        adx_err_init(&te);
        adx_err_set(&te, ADX_E_JOB_FAILED, "",
                    "the job ran longer than job_timeout (%llu s) and was stopped",
                    (unsigned long long)ew->job_timeout);
        adx_err_set(&ew->err, ADX_E_JOB_FAILED, "", "%s", te.detail);
        ew->error = adx_err_problem(&te, NULL, NULL);
    } else if (c == SRV_CANCEL_CLIENT) {
        ew->event = SRV_EV_CANCEL;
        unlink(ew->out_path);
        ew->error = srv_job_canceled_problem();
    } else if (rc == 0) {
        ew->event = SRV_EV_SUCCEED;
    } else {
        ew->event = SRV_EV_FAIL;
        if (!adx_err_failed(&ew->err))
            adx_err_set(&ew->err, ADX_E_INTERNAL, "", "the pipeline failed without a reason");
        /* the quota's message names no path: it goes to the client */
        ew->error = ew->over_quota ? adx_err_problem(&ew->err, NULL, NULL)
                                   : problem_for_job(&ew->err, j->id);
        ew->no_space = !ew->over_quota && no_space(&ew->err); /* the disk's */
    }
    if (ew->event >= 0) {
        adx_err perr;
        adx_err_init(&perr);
        /* Not durable: the job reruns after a restart, which is safe. */
        write_record(ew, (srv_job_state)srv_job_next(SRV_JOB_RUNNING, (srv_job_event)ew->event), 0,
                     AFILE_SYNC_ALL, &perr);
        /* Once the terminal record is durable the request is never read
         * again; before that, a restart still needs it to rerun the job. */
        if (!adx_err_failed(&perr)) {
            srv_spool_drop_request(ew->dir, ew->input.kind);
            ew->request_dropped = true;
        }
    }
    ew->t1 = srv_mono_ns();
}

static void export_done(uv_work_t *w, int status)
{
    export_work *ew = w->data;
    srv_job *j = ew->j;
    srv_state *s = ew->s;
    s->metrics.worker_busy_s += (double)(ew->t1 - ew->t0) / 1e9;
    if (ew->event < 0) {
        srv_jobs_event(&s->jobs, j, SRV_EV_INTERRUPT, ew->finished_ms);
        j->attempts--;
        srv_log("info", "job interrupted by shutdown; it runs again after a restart",
                json_pack("{s:s}", "job_id", j->id));
    } else {
        /* Result first: the watchers called by the transition read it. */
        j->finished_ms = ew->finished_ms;
        json_decref(j->error);
        j->error = ew->error;
        ew->error = NULL;
        if (ew->event == SRV_EV_SUCCEED) {
            j->result = ew->result;
            ew->result = NULL;
            json_t *sz = json_object_get(j->result, "size_bytes");
            json_t *sh = json_object_get(j->result, "sha256");
            if (json_is_integer(sz)) j->size_bytes = (uint64_t)json_integer_value(sz);
            if (json_is_string(sh))
                snprintf(j->sha256, sizeof j->sha256, "%s", json_string_value(sh));
            atomic_store(&j->progress_ppm, 1000000u);
        }
        json_t *f = json_pack(
            "{s:s, s:s, s:s, s:f}", "job_id", j->id, "request_id", j->rid, "state",
            srv_job_state_name((srv_job_state)srv_job_next(j->state, (srv_job_event)ew->event)),
            "duration_s", (double)(ew->t1 - ew->t0) / 1e9);
        if (ew->event == SRV_EV_SUCCEED)
            json_object_set_new(f, "size_bytes", json_integer((json_int_t)j->size_bytes));
        if (ew->event == SRV_EV_FAIL) {
            json_object_set_new(f, "error", json_string(ew->err.detail));
            srv_log_cause(f, &ew->err);
            if (ew->err.n_items)
                json_object_set_new(f, "pointer", json_string(ew->err.items[0].pointer));
        }
        srv_log(ew->event == SRV_EV_FAIL ? "warn" : "info", "job finished", f);
        srv_jobs_event(&s->jobs, j, (srv_job_event)ew->event, ew->finished_ms);
        if (ew->request_dropped) srv_spool_request_done(s, j);
        if (j->state == SRV_JOB_SUCCEEDED) {
            j->res_bytes = ew->res_charged; /* charged by charge_result */
            ew->res_charged = 0;
        }
        if (ew->no_space) srv_spool_note_full(s);
    }
    /* written, then canceled, stopped or failed later: the file is gone */
    if (ew->res_charged) srv_spool_release(s, ew->res_charged);
    json_decref(ew->result);
    json_decref(ew->error);
    free(ew);
    srv_job_unref(j);
    srv_run_dispatch(s);
}

static int export_start(srv_state *s, srv_job *j)
{
    export_work *ew = calloc(1, sizeof *ew);
    if (!ew) return -1;
    ew->w.data = ew;
    ew->s = s;
    ew->j = j;
    ew->lim = s->cfg.limits;
    ew->job_timeout = s->cfg.job_timeout;
    ew->input = j->input;
    srv_spool_job_file(&s->spool, j->id, SRV_INPUT_H5AD_FILE, ew->in_path, sizeof ew->in_path);
    ew->pj = j->pj;
    j->pj = NULL;
    adx_err_init(&ew->err);
    srv_spool_job_file(&s->spool, j->id, "request.json", ew->req_path, sizeof ew->req_path);
    srv_spool_result_path(&s->spool, j, ew->out_path, sizeof ew->out_path);
    srv_spool_job_dir(&s->spool, j->id, ew->dir, sizeof ew->dir);
    srv_jobs_event(&s->jobs, j, SRV_EV_START, 0);
    j->started_ms = srv_now_ms();
    j->attempts++;
    srv_job_ref(j);
    if (uv_queue_work(s->loop, &ew->w, export_run, export_done) != 0) {
        srv_jobs_event(&s->jobs, j, SRV_EV_INTERRUPT, 0);
        j->attempts--;
        srv_job_unref(j);
        j->pj = ew->pj;
        free(ew);
        return -1;
    }
    return 0;
}

void srv_run_dispatch(srv_state *s)
{
    /* The queue's head starts when a worker is free and its memory
     * estimate fits max_memory (srv_jobs_dequeue_admitted); else it waits
     * for a running job to end, which dispatches again. */
    srv_job *j;
    while (!s->shutting_down && s->jobs.n_running < s->cfg.workers &&
           (j = srv_jobs_dequeue_admitted(&s->jobs))) {
        if (export_start(s, j) < 0) {
            srv_jobs_enqueue(&s->jobs, j);
            break;
        }
    }
}

/* ---- validation of new bodies ---------------------------------------- */

static void validate_progress(void *ud, double f)
{
    srv_validate *v = ud;
    if (f < 0) f = 0;
    if (f > 1) f = 1;
    if (v->progress_ppm)
        atomic_store_explicit(v->progress_ppm, (unsigned)(f * 1e6), memory_order_relaxed);
}

static void validate_run(uv_work_t *w)
{
    srv_validate *v = w->data;
    uint64_t t0 = srv_mono_ns();
    /* The body must be durable before the 202 promises it is. */
    if (afile_sync_path(v->upload) != 0) {
        adx_err_cause(&v->err, "%s: %s", v->upload, strerror(errno));
        adx_err_set(&v->err, ADX_E_IO, "", "cannot store the request");
        unlink(v->upload);
        return;
    }
    uint64_t t1 = srv_mono_ns();
    /* DELETE while validating: the decoder polls the job's flag. */
    adx_ctl ctl = {.cancel = v->cancel, .progress = validate_progress, .ud = v};
    json_t *opts = v->input.kind == PIPE_SRC_H5AD ? json_loads(v->options, 0, NULL) : NULL;
    pipe_job *pj = v->input.kind != PIPE_SRC_H5AD || opts
                       ? open_body(v->s, &v->input, v->upload, opts, &v->lim, &ctl, true, &v->err)
                       : NULL;
    json_decref(opts);
    if (pj && adx_ctl_canceled(&ctl)) {
        pipe_free(pj);
        pj = NULL;
        adx_err_set(&v->err, ADX_E_CANCELED, "", "the job was canceled while validating");
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
    srv_state *s = v->s;
    srv_job *j = srv_job_new(v->id, SRV_JOB_QUEUED);
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
            ds_pin(s->ds, j->dataset);
            j->pinned = true;
        }
    }
    /* max_memory: the decoded model when there is one; else the body and,
     * for a stored dataset (decoded only when the job runs), its file. */
    uint64_t est_bytes = v->spool_bytes;
    if (j->dataset && !pipe_model_bytes(pj)) {
        adx_err de;
        adx_err_init(&de);
        json_t *sum = ds_summary(s->ds, j->dataset, &de);
        json_int_t dsz = json_integer_value(json_object_get(sum, "size_bytes"));
        if (dsz > 0) est_bytes += (uint64_t)dsz;
        json_decref(sum);
    }
    j->mem_bytes = srv_job_mem_estimate(pipe_model_bytes(pj), est_bytes);
    char dir[PATH_MAX + 64], req[PATH_MAX + 64];
    srv_spool_job_dir(&s->spool, j->id, dir, sizeof dir);
    srv_spool_job_file(&s->spool, j->id,
                       v->input.kind == PIPE_SRC_H5AD ? SRV_INPUT_H5AD_FILE : "request.json", req,
                       sizeof req);
    char *rec = j->filename && dataset_ok ? srv_spool_record(j) : NULL;
    if (!rec) {
        adx_err_set(&v->err, ADX_E_NOMEM, "", "out of memory creating the job");
    } else if (mkdir(dir, 0750) < 0) {
        adx_err_cause(&v->err, "%s: %s", dir, strerror(errno));
        adx_err_set(&v->err, ADX_E_IO, "", "cannot create the job directory");
    } else if (rename(v->upload, req) != 0) { /* the directory fsyncs follow */
        adx_err_cause(&v->err, "%s: %s", req, strerror(errno));
        adx_err_set(&v->err, ADX_E_IO, "", "cannot move the request");
    } else if ((v->input.kind != PIPE_SRC_H5AD ||
                srv_write_synced(dir, "request.json", v->options, strlen(v->options),
                                 AFILE_SYNC_FILE, &v->err) == 0) &&
               srv_spool_append_record(dir, rec, AFILE_SYNC_FILE, &v->err) == 0) {
        /* Every file is synced; one fsync of the job's directory makes the
         * body's and the record's names durable, one of the jobs directory
         * the job's own. (The upload's old name in tmp/ need not be: a
         * leftover there is removed at start.) */
        const char *d = afile_sync_path(dir) != 0                 ? dir
                        : afile_sync_path(s->spool.jobs_dir) != 0 ? s->spool.jobs_dir
                                                                  : NULL;
        if (d) {
            adx_err_cause(&v->err, "%s: %s", d, strerror(errno));
            adx_err_set(&v->err, ADX_E_IO, "", "cannot sync the jobs directory");
        }
    }
    free(rec);
    if (adx_err_failed(&v->err)) {
        unlink(v->upload);
        srv_remove_tree(dir);
        if (j->pinned) ds_unpin(s->ds, j->dataset);
        srv_job_free(j);
        return;
    }
    uint64_t mb = pipe_model_bytes(j->pj);
    bool small = mb <= SMALL_MODEL_BYTES && v->input.kind != PIPE_SRC_H5AD;
    if ((!v->keep_model && !small) || mb > v->lim.max_request_memory) {
        /* Queued behind others, or more than one request may hold: reload
         * later rather than hold the model. A small decoded body is held
         * anyway: decoding it twice was a large part of a small job, and
         * queue_max of them are little next to one running export. (An
         * uploaded h5ad is read again behind its isolated check.) */
        pipe_free(j->pj);
        j->pj = NULL;
    }
    v->job = j;
    v->store_s += (double)(srv_mono_ns() - t2) / 1e9;
}

static void validate_done(uv_work_t *w, int status)
{
    srv_validate *v = w->data;
    v->s->jobs.n_validating--;
    v->s->metrics.worker_busy_s += v->load_s + v->store_s;
    v->done(v);
}

int srv_validate_start(srv_state *s, srv_validate *v)
{
    v->w.data = v;
    v->s = s;
    adx_err_init(&v->err);
    v->job = NULL;
    s->jobs.n_validating++;
    if (uv_queue_work(s->loop, &v->w, validate_run, validate_done) != 0) {
        s->jobs.n_validating--;
        return -1;
    }
    return 0;
}
