/* The spool: one directory per job under <spool>/jobs/<id>/ holding
 * request.json (the body as received; for an uploaded h5ad, the export
 * options, with the body beside it as input.h5ad), job.json (the job's
 * records, one a line, appended: srv_spool_append_record) and
 * result.<ext>; <spool>/tmp/ holds uploads in progress. A job exists once
 * its job.json holds a record and the directory is synced: that is what a
 * 202 promises. Records are written and directories removed on the pool, one
 * operation per job at a time (the io chain below). */
#include "spool.h"

#include "adx_afile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

void srv_spool_job_dir(const srv_spool *sp, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", sp->jobs_dir, id);
}

void srv_spool_job_file(const srv_spool *sp, const char *id, const char *name, char *out,
                        size_t cap)
{
    snprintf(out, cap, "%s/%s/%s", sp->jobs_dir, id, name);
}

void srv_spool_result_path(const srv_spool *sp, const srv_job *j, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/result%s", sp->jobs_dir, j->id, adx_format_ext(j->format));
}

int srv_write_durable(const char *dir, const char *name, const char *text, size_t len, adx_err *err)
{
    return srv_write_synced(dir, name, text, len, AFILE_SYNC_ALL, err);
}

int srv_write_synced(const char *dir, const char *name, const char *text, size_t len,
                     afile_sync sync, adx_err *err)
{
    char dst[PATH_MAX + 64];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    return afile_write_file_sync(dst, text, len, 0640, sync, err);
}

int srv_mkdir_p(const char *path, const char *setting, adx_err *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
            return adx_err_set(err, ADX_E_IO, setting, "cannot create %s: %s", tmp,
                               strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
        return adx_err_set(err, ADX_E_IO, setting, "cannot create %s: %s", tmp, strerror(errno));
    return 0;
}

int srv_remove_tree(const char *dir)
{
    return afile_remove_tree(dir);
}

char *srv_spool_record(const srv_job *j)
{
    json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:s, s:s?}", "v", 1, "id", j->id, "state",
                          srv_job_state_name(j->state), "created_ms", (json_int_t)j->created_ms,
                          "started_ms", (json_int_t)j->started_ms, "finished_ms",
                          (json_int_t)j->finished_ms, "format", adx_format_name(j->format),
                          "filename", j->filename);
    if (!o) return NULL;
    /* A restart re-runs queued and running jobs, so "running" is never
     * stored: an interrupted job simply stays queued on disk. */
    if (j->state == SRV_JOB_RUNNING)
        json_object_set_new(o, "state", json_string(srv_job_state_name(SRV_JOB_QUEUED)));
    if (j->dataset) json_object_set_new(o, "dataset", json_string(j->dataset));
    if (j->attempts && !srv_job_terminal(j->state))
        json_object_set_new(o, "attempts", json_integer(j->attempts));
    /* The memory estimate of its run (max_memory), kept for a restart. */
    if (j->mem_bytes && !srv_job_terminal(j->state))
        json_object_set_new(o, "mem_bytes", json_integer((json_int_t)j->mem_bytes));
    /* Absent means a request document, as in records of earlier versions. */
    if (j->input.kind != PIPE_SRC_REQUEST)
        json_object_set_new(o, "input", json_string(pipe_src_name(j->input.kind)));
    if (j->input.gzip) json_object_set_new(o, "content_encoding", json_string("gzip"));
    if (j->input.kind == PIPE_SRC_MULTIPART)
        json_object_set_new(o, "boundary", json_string(j->input.boundary));
    if (j->result) json_object_set(o, "result", j->result);
    if (j->error) json_object_set(o, "error", j->error);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    /* one line of the record log (srv_spool_append_record) */
    size_t n = s ? strlen(s) : 0;
    char *line = s ? realloc(s, n + 2) : NULL;
    if (!line) {
        free(s);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    return line;
}

int srv_spool_append_record(const char *dir, const char *rec, afile_sync sync, adx_err *err)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/job.json", dir);
    return afile_append(path, rec, strlen(rec), 0640, sync, err);
}

/* Records of earlier versions and legacy tools: one object, maybe without
 * the newline. Far above any record (a result's report is a few KB). */
#define RECORD_LOG_MAX (64u << 20)

/* The job's current record: the last line of its log that parses as a JSON
 * object. Whatever follows that line is a torn append (a crash or power
 * failure during one); the log is then rewritten as that line alone, so the
 * next append does not continue a torn line. NULL (with `je`) when no line
 * parses or the file cannot be read. */
static json_t *read_record(const char *path, const char *id, json_error_t *je)
{
    memset(je, 0, sizeof *je);
    size_t n;
    char *buf = afile_read_small(path, RECORD_LOG_MAX, &n);
    if (!buf) {
        snprintf(je->text, sizeof je->text, "%s", strerror(errno));
        return NULL;
    }
    json_t *rec = NULL;
    size_t end = n, b = 0, e = 0;
    while (end > 0 && !rec) {
        e = buf[end - 1] == '\n' ? end - 1 : end;
        b = e;
        while (b > 0 && buf[b - 1] != '\n')
            b--;
        if (e > b) {
            rec = json_loadb(buf + b, e - b, 0, je);
            if (rec && !json_is_object(rec)) {
                json_decref(rec);
                rec = NULL;
            }
        }
        end = b;
    }
    if (!rec && n == 0) snprintf(je->text, sizeof je->text, "empty record");
    const char *rid = json_string_value(json_object_get(rec, "id"));
    if (rec && rid && !strcmp(rid, id) && !(e + 1 == n && buf[e] == '\n')) {
        buf[e] = '\n'; /* e < n + 1: the buffer has room */
        adx_err err;
        adx_err_init(&err);
        if (afile_write_file_sync(path, buf + b, e - b + 1, 0640, AFILE_SYNC_ALL, &err) != 0)
            srv_log(
                "error", "spool: cannot cut a torn record off a job's log",
                srv_log_cause(json_pack("{s:s, s:s}", "job_id", id, "error", err.detail), &err));
    }
    free(buf);
    return rec;
}

/* ---- quota --------------------------------------------------------------- */

/* Below this much free disk the spool counts as full for /readyz. */
#define SPOOL_MIN_FREE (1u << 20)
/* A full disk seen this recently still counts (the Retry-After we send). */
#define SPOOL_FULL_MS 5000

bool srv_spool_reserve(srv_state *s, uint64_t n)
{
    uint64_t max = s->cfg.max_spool_bytes;
    uint64_t used = atomic_load(&s->spool.used);
    /* Workers charge too (decompressed copies): check and add as one. */
    do {
        if (max && (used > max || n > max - used)) return false;
    } while (!atomic_compare_exchange_weak(&s->spool.used, &used, used + n));
    return true;
}

void srv_spool_release(srv_state *s, uint64_t n)
{
    uint64_t used = atomic_load(&s->spool.used);
    while (!atomic_compare_exchange_weak(&s->spool.used, &used, n > used ? 0 : used - n))
        ;
}

bool srv_spool_quota_reserve(void *ud, uint64_t n)
{
    return srv_spool_reserve(ud, n);
}

void srv_spool_quota_release(void *ud, uint64_t n)
{
    srv_spool_release(ud, n);
}

int srv_spool_disk_free(const srv_state *s, uint64_t *avail)
{
    int64_t a = atomic_load((_Atomic int64_t *)&s->spool.avail);
    if (a < 0) return -1;
    *avail = (uint64_t)a;
    return 0;
}

static void on_statfs(uv_fs_t *req)
{
    srv_state *s = req->data;
    if (req->result == 0 && req->ptr) {
        const uv_statfs_t *v = req->ptr;
        uint64_t a = v->f_bavail * v->f_bsize;
        atomic_store(&s->spool.avail, a > INT64_MAX ? INT64_MAX : (int64_t)a);
    }
    uv_fs_req_cleanup(req);
    s->spool.statfs_busy = false;
}

void srv_spool_poll_free(srv_state *s, uv_loop_t *loop)
{
    if (s->spool.statfs_busy) return;
    s->spool.statfs_req.data = s;
    if (uv_fs_statfs(loop, &s->spool.statfs_req, s->spool.tmp_dir, on_statfs) == 0)
        s->spool.statfs_busy = true;
}

void srv_spool_note_full(srv_state *s)
{
    s->spool.full_ms = srv_now_ms();
}

const char *srv_spool_no_room(const srv_state *s)
{
    /* read once: workers charge it meanwhile, and max - used must not wrap */
    uint64_t max = s->cfg.max_spool_bytes, avail, used = atomic_load(&s->spool.used);
    /* room means room for a small request, not for one more byte */
    uint64_t slack = max / 16 < SPOOL_MIN_FREE ? max / 16 : SPOOL_MIN_FREE;
    if (max && (used >= max || max - used < slack)) return "spool full (max_spool_bytes)";
    if (srv_spool_disk_free(s, &avail) == 0 && avail < SPOOL_MIN_FREE) return "spool disk full";
    if (s->spool.full_ms && srv_now_ms() - s->spool.full_ms < SPOOL_FULL_MS)
        return "spool disk full";
    return NULL;
}

void srv_spool_request_done(srv_state *s, srv_job *j)
{
    srv_spool_release(s, j->req_bytes);
    j->req_bytes = 0;
}

/* ---- per-job io chain (records, removal) ------------------------------- */

typedef struct io_work {
    uv_work_t w;
    srv_state *s;
    srv_job *j;
    char *record;      /* write job.json when set */
    bool drop_result;  /* unlink result.<ext> */
    bool drop_request; /* unlink the request body once the record is durable */
    srv_body input;
    bool remove_dir;
    char dir[PATH_MAX + 64];
    char result[PATH_MAX + 64];
    adx_err err;
} io_work;

void srv_spool_drop_request(const char *dir, pipe_src_kind kind)
{
    char p[PATH_MAX + 96];
    snprintf(p, sizeof p, "%s/request.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/%s", dir, SRV_INPUT_H5AD_FILE);
    if (kind == PIPE_SRC_H5AD) unlink(p);
}

static void io_run(uv_work_t *w)
{
    io_work *iw = w->data;
    if (iw->drop_result) unlink(iw->result);
    if (iw->record &&
        srv_spool_append_record(iw->dir, iw->record, AFILE_SYNC_FILE, &iw->err) == 0 &&
        iw->drop_request)
        srv_spool_drop_request(iw->dir, iw->input.kind);
    if (iw->remove_dir) srv_remove_tree(iw->dir);
}

static void io_start(srv_state *s, srv_job *j, bool remove, bool drop_result);

static void io_done(uv_work_t *w, int status)
{
    io_work *iw = w->data;
    srv_job *j = iw->j;
    srv_state *s = iw->s;
    if (adx_err_failed(&iw->err))
        srv_log("error", "spool write failed",
                srv_log_cause(json_pack("{s:s, s:s}", "job_id", j->id, "error", iw->err.detail),
                              &iw->err));
    free(iw->record);
    free(iw);
    j->io_busy--;
    if (j->io_busy == 0) {
        if (j->io_remove_pending) {
            j->io_remove_pending = false;
            io_start(s, j, true, false);
        } else if ((j->io_persist_again || j->io_drop_result) && !j->removed) {
            bool drop = j->io_drop_result;
            j->io_persist_again = j->io_drop_result = false;
            io_start(s, j, false, drop);
        }
    }
    srv_job_unref(j);
}

static void io_start(srv_state *s, srv_job *j, bool remove, bool drop_result)
{
    io_work *iw = calloc(1, sizeof *iw);
    if (!iw) {
        srv_log("error", "out of memory persisting a job", json_pack("{s:s}", "job_id", j->id));
        return;
    }
    iw->w.data = iw;
    iw->s = s;
    iw->j = j;
    adx_err_init(&iw->err);
    srv_spool_job_dir(&s->spool, j->id, iw->dir, sizeof iw->dir);
    srv_spool_result_path(&s->spool, j, iw->result, sizeof iw->result);
    iw->remove_dir = remove;
    iw->drop_result = drop_result;
    if (!remove) iw->record = srv_spool_record(j);
    /* A finished job keeps its record and its result only. */
    iw->drop_request = !remove && srv_job_terminal(j->state);
    iw->input = j->input;
    if (iw->drop_request) srv_spool_request_done(s, j);
    srv_job_ref(j);
    j->io_busy++;
    if (uv_queue_work(s->loop, &iw->w, io_run, io_done) != 0) {
        j->io_busy--;
        free(iw->record);
        free(iw);
        srv_job_unref(j);
    }
}

static void spool_persist(void *ud, srv_job *j)
{
    if (j->io_busy) {
        j->io_persist_again = true;
        return;
    }
    io_start(ud, j, false, false);
}

static void spool_expire(void *ud, srv_job *j)
{
    srv_log("info", "job expired", json_pack("{s:s, s:s}", "job_id", j->id, "request_id", j->rid));
    srv_spool_release(ud, j->res_bytes);
    j->res_bytes = 0;
    if (j->io_busy) {
        j->io_drop_result = true;
        return;
    }
    io_start(ud, j, false, true);
}

static void spool_remove(void *ud, srv_job *j)
{
    srv_spool_release(ud, j->req_bytes + j->res_bytes);
    j->req_bytes = j->res_bytes = 0;
    if (j->io_busy)
        j->io_remove_pending = true;
    else
        io_start(ud, j, true, false);
}

srv_jobs_hooks srv_spool_hooks(srv_state *s)
{
    return (srv_jobs_hooks){
        .ud = s, .persist = spool_persist, .expire = spool_expire, .remove = spool_remove};
}

static int format_from_name(const char *n)
{
    for (int f = ADX_FMT_H5AD; f <= ADX_FMT_TXT; f++)
        if (n && strcmp(n, adx_format_name((adx_format)f)) == 0) return f;
    return -1;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* A queued job keeps its request (and input); a finished one its result
 * (and an h5ad's options). */
static void clean_job_dir(const char *dir, const char *keep_result, bool keep_request,
                          bool keep_input)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[PATH_MAX + 300];
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "job.json") ||
            (keep_request && !strcmp(n, "request.json")) ||
            (keep_input && !strcmp(n, SRV_INPUT_H5AD_FILE)))
            continue;
        if (keep_result && !strcmp(n, keep_result)) continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, n) < (int)sizeof p) unlink(p);
    }
    closedir(d);
}

/* A job whose record exists but cannot be read (EACCES, EIO, EMFILE, a
 * damaged file) is moved aside to <spool>/quarantine/<id>, never deleted:
 * an operator decides. */
static void quarantine(srv_state *s, const char *id, const char *why)
{
    char qdir[PATH_MAX + 16], from[PATH_MAX + 64], to[PATH_MAX + 64];
    snprintf(qdir, sizeof qdir, "%s/quarantine", s->cfg.spool_dir);
    srv_spool_job_dir(&s->spool, id, from, sizeof from);
    snprintf(to, sizeof to, "%s/%s", qdir, id);
    adx_err e;
    adx_err_init(&e);
    int rc = srv_mkdir_p(qdir, "/spool_dir", &e);
    if (rc == 0 && afile_rename(from, to) < 0)
        rc = adx_err_set(&e, ADX_E_IO, "", "rename: %s", strerror(errno));
    srv_log("error",
            rc == 0 ? "spool: unreadable job record moved to quarantine"
                    : "spool: unreadable job record left in place (cannot quarantine it)",
            json_pack("{s:s, s:s, s:s, s:s?}", "job_id", id, "reason", why ? why : "", "moved_to",
                      rc == 0 ? to : "", "error", rc == 0 ? NULL : e.detail));
}

static srv_job *load_job(srv_state *s, const char *id, int64_t now, bool *changed)
{
    *changed = false;
    char dir[PATH_MAX + 64], path[PATH_MAX + 64];
    srv_spool_job_dir(&s->spool, id, dir, sizeof dir);
    srv_spool_job_file(&s->spool, id, "job.json", path, sizeof path);
    json_error_t je;
    /* Only a record that is not there at all means "never acknowledged". */
    struct stat rst;
    bool have_record = stat(path, &rst) == 0 || errno != ENOENT;
    json_t *rec = read_record(path, id, &je);
    const char *st_name = NULL, *fmt_name = NULL, *fname = NULL, *rid = NULL, *dataset = NULL,
               *input = NULL, *encoding = NULL, *boundary = NULL;
    json_int_t cms = 0, sms = 0, fms = 0, attempts = 0, mem_bytes = 0;
    json_t *result = NULL, *error = NULL;
    if (!rec ||
        json_unpack(
            rec, "{s:s, s:s, s:I, s?I, s?I, s:s, s?s, s?o, s?o, s?s, s?s, s?I, s?s, s?s, s?I}",
            "id", &rid, "state", &st_name, "created_ms", &cms, "started_ms", &sms, "finished_ms",
            &fms, "format", &fmt_name, "filename", &fname, "result", &result, "error", &error,
            "dataset", &dataset, "input", &input, "attempts", &attempts, "content_encoding",
            &encoding, "boundary", &boundary, "mem_bytes", &mem_bytes) != 0 ||
        strcmp(rid, id) != 0) {
        json_decref(rec);
        if (have_record) {
            quarantine(s, id, je.text);
            return NULL;
        }
        /* No record means the 202 was never sent: the upload is garbage. */
        srv_remove_tree(dir);
        srv_log("warn", "spool: removed a job directory without a record",
                json_pack("{s:s}", "job_id", id));
        return NULL;
    }
    int st = srv_job_state_parse(st_name);
    int fmt = format_from_name(fmt_name);
    pipe_src_kind kind = input ? pipe_src_parse(input) : PIPE_SRC_REQUEST;
    bool input_ok = (kind == PIPE_SRC_REQUEST || kind == PIPE_SRC_H5AD ||
                     (kind == PIPE_SRC_MULTIPART && boundary && strlen(boundary) <= 70)) &&
                    (!encoding || !strcmp(encoding, "gzip"));
    srv_job *j = st >= 0 && fmt >= 0 && input_ok ? srv_job_new(id, (srv_job_state)st) : NULL;
    if (!j) {
        json_decref(rec);
        quarantine(s, id, "unknown state, format or input");
        return NULL;
    }
    j->format = (adx_format)fmt;
    j->filename = fname ? strdup(fname) : NULL;
    j->dataset = dataset ? strdup(dataset) : NULL;
    j->input.kind = kind;
    j->input.gzip = encoding != NULL;
    if (boundary) snprintf(j->input.boundary, sizeof j->input.boundary, "%s", boundary);
    j->created_ms = cms;
    j->started_ms = sms;
    j->finished_ms = fms;
    if (result) j->result = json_incref(result);
    if (error) j->error = json_incref(error);
    json_decref(rec);
    if (j->state == SRV_JOB_RUNNING) j->state = SRV_JOB_QUEUED;
    char result_name[32];
    snprintf(result_name, sizeof result_name, "result%s", adx_format_ext(j->format));
    if (j->state == SRV_JOB_SUCCEEDED) {
        json_t *sz = json_object_get(j->result, "size_bytes");
        json_t *sh = json_object_get(j->result, "sha256");
        if (json_is_integer(sz)) j->size_bytes = (uint64_t)json_integer_value(sz);
        if (json_is_string(sh)) snprintf(j->sha256, sizeof j->sha256, "%s", json_string_value(sh));
        char rp[PATH_MAX + 64];
        srv_spool_result_path(&s->spool, j, rp, sizeof rp);
        struct stat stt;
        if (stat(rp, &stt) != 0 || (uint64_t)stt.st_size != j->size_bytes) {
            /* The file is gone or damaged: the only honest state is expired. */
            j->state = SRV_JOB_EXPIRED;
            *changed = true;
        }
    }
    j->attempts = attempts > 0 && attempts < 1000 ? (unsigned)attempts : 0;
    if (j->state == SRV_JOB_QUEUED && j->attempts >= SRV_MAX_ATTEMPTS) {
        srv_log("error", "spool: job interrupted by crashes too often; marked failed",
                json_pack("{s:s, s:i}", "job_id", id, "attempts", (int)j->attempts));
        adx_err e;
        adx_err_init(&e);
        adx_err_set(&e, ADX_E_JOB_FAILED, "",
                    "the job was interrupted %u times by crashes of the daemon while it ran; it "
                    "is not run again",
                    j->attempts);
        j->state = SRV_JOB_FAILED;
        j->finished_ms = now;
        j->error = adx_err_problem(&e, NULL, NULL);
        *changed = true;
    }
    if (j->state == SRV_JOB_QUEUED) {
        srv_spool_job_file(&s->spool, id, "request.json", path, sizeof path);
        char inpath[PATH_MAX + 64];
        srv_spool_job_file(&s->spool, id, SRV_INPUT_H5AD_FILE, inpath, sizeof inpath);
        if (access(path, R_OK) != 0 ||
            (j->input.kind == PIPE_SRC_H5AD && access(inpath, R_OK) != 0)) {
            srv_log("error", "spool: queued job lost its request body; marked failed",
                    json_pack("{s:s}", "job_id", id));
            adx_err e;
            adx_err_init(&e);
            adx_err_set(&e, ADX_E_IO, "", "the stored request was lost");
            j->state = SRV_JOB_FAILED;
            j->finished_ms = now;
            j->error = adx_err_problem(&e, NULL, NULL);
            *changed = true;
        }
    }
    /* A request is needed only until the job has run. */
    clean_job_dir(dir, j->state == SRV_JOB_SUCCEEDED ? result_name : NULL,
                  j->state == SRV_JOB_QUEUED, j->state == SRV_JOB_QUEUED);
    if (j->state == SRV_JOB_QUEUED) {
        char p[PATH_MAX + 64];
        srv_spool_job_file(&s->spool, id, "request.json", p, sizeof p);
        j->req_bytes = file_size(p);
        srv_spool_job_file(&s->spool, id, SRV_INPUT_H5AD_FILE, p, sizeof p);
        j->req_bytes += file_size(p);
    }
    if (j->state == SRV_JOB_QUEUED)
        /* Records from before max_memory have no estimate: the body's. */
        j->mem_bytes = srv_job_mem_estimate(0, j->req_bytes);
    if (j->state == SRV_JOB_QUEUED && mem_bytes > 0) j->mem_bytes = (uint64_t)mem_bytes;
    if (j->state == SRV_JOB_SUCCEEDED) j->res_bytes = j->size_bytes;
    s->spool.used += j->req_bytes + j->res_bytes;
    return j;
}

int srv_spool_lock(srv_state *s, adx_err *err)
{
    char path[PATH_MAX + 8];
    s->spool.lock_fd = -1;
    if (srv_mkdir_p(s->cfg.spool_dir, "/spool_dir", err) < 0) return -1;
    snprintf(path, sizeof path, "%s/lock", s->cfg.spool_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return adx_err_set(err, ADX_E_IO, "/spool_dir", "cannot open %s: %s", path,
                           strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return adx_err_set(err, ADX_E_CONFLICT, "/spool_dir",
                               "spool_dir %s is in use by another anndata-exportd (pid %s, "
                               "holding %s); one instance per spool",
                               s->cfg.spool_dir, pid[0] ? pid : "unknown", path);
        return adx_err_set(err, ADX_E_IO, "/spool_dir", "cannot lock %s: %s", path, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* the lock holds without the pid; only the message loses it */
    }
    s->spool.lock_fd = fd;
    return 0;
}

void srv_spool_unlock(srv_state *s)
{
    /* The file stays: removing it would race with an instance starting. */
    if (s->spool.lock_fd >= 0) close(s->spool.lock_fd);
    s->spool.lock_fd = -1;
}

int srv_spool_scan(srv_state *s, adx_err *err)
{
    snprintf(s->spool.jobs_dir, sizeof s->spool.jobs_dir, "%s/jobs", s->cfg.spool_dir);
    snprintf(s->spool.tmp_dir, sizeof s->spool.tmp_dir, "%s/tmp", s->cfg.spool_dir);
    if (srv_mkdir_p(s->spool.jobs_dir, "/spool_dir", err) < 0 ||
        srv_mkdir_p(s->spool.tmp_dir, "/spool_dir", err) < 0)
        return -1;
    /* Uploads that were in flight when the process died were never
     * acknowledged. */
    srv_remove_tree(s->spool.tmp_dir);
    if (srv_mkdir_p(s->spool.tmp_dir, "/spool_dir", err) < 0) return -1;
    struct statvfs v; /* before serving: later reads come from the pool */
    atomic_store(&s->spool.avail, statvfs(s->spool.tmp_dir, &v) == 0
                                      ? (int64_t)((uint64_t)v.f_bavail * v.f_frsize)
                                      : -1);
    DIR *d = opendir(s->spool.jobs_dir);
    if (!d)
        return adx_err_set(err, ADX_E_IO, "/spool_dir", "cannot read %s: %s", s->spool.jobs_dir,
                           strerror(errno));
    int64_t now = srv_now_ms();
    unsigned n = 0, requeued = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (!srv_id_valid(e->d_name)) continue; /* not ours: leave it alone */
        bool changed;
        srv_job *j = load_job(s, e->d_name, now, &changed);
        if (!j) continue;
        srv_jobs_link(&s->jobs, j);
        /* Queued before the loop runs: the record catches up on a worker. */
        if (changed) spool_persist(s, j);
        n++;
        if (j->state == SRV_JOB_QUEUED) requeued++;
    }
    closedir(d);
    /* Enqueue in id (= creation) order so the FIFO survives a restart. */
    srv_job *last = s->jobs.head;
    while (last && last->next)
        last = last->next;
    for (srv_job *j = last; j; j = j->prev) {
        if (j->state == SRV_JOB_QUEUED) srv_jobs_enqueue(&s->jobs, j);
        srv_jobs_track(&s->jobs, j);
    }
    srv_log("info", "spool scanned",
            json_pack("{s:s, s:i, s:i, s:I}", "spool_dir", s->cfg.spool_dir, "jobs", n, "requeued",
                      requeued, "spool_bytes", (json_int_t)s->spool.used));
    return 0;
}
