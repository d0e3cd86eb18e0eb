/* The spool: one directory per job under <spool>/jobs/<id>/ holding
 * request.json (the body as received; for an uploaded h5ad, the export
 * options, with the body beside it as input.h5ad), job.json (the durable
 * record) and result.<ext>; <spool>/tmp/ holds uploads in progress. A job exists once
 * its job.json has been renamed into place: that is what a 202 promises. */
#include "srv_internal.h"

#include "adx_afile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void srv_job_dir(const srv_state *s, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", s->jobs_dir, id);
}

void srv_job_file(const srv_state *s, const char *id, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/%s", s->jobs_dir, id, name);
}

void srv_result_path(const srv_state *s, const srv_job *j, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/result%s", s->jobs_dir, j->id, adx_format_ext(j->format));
}

int srv_write_durable(const char *dir, const char *name, const char *text, size_t len, adx_err *err)
{
    char dst[PATH_MAX + 64];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    return afile_write_file(dst, text, len, 0640, err);
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

char *srv_job_record(const srv_job *j)
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
    /* Absent means a request document, as in records of earlier versions. */
    if (j->input == SRV_IN_H5AD) json_object_set_new(o, "input", json_string("h5ad"));
    if (j->result) json_object_set(o, "result", j->result);
    if (j->error) json_object_set(o, "error", j->error);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static int format_from_name(const char *n)
{
    for (int f = ADX_FMT_H5AD; f <= ADX_FMT_TXT; f++)
        if (n && strcmp(n, adx_format_name((adx_format)f)) == 0) return f;
    return -1;
}

static void clean_job_dir(const char *dir, const char *keep_result, bool keep_input)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[PATH_MAX + 300];
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "job.json") ||
            !strcmp(n, "request.json") || (keep_input && !strcmp(n, SRV_INPUT_H5AD_FILE)))
            continue;
        if (keep_result && !strcmp(n, keep_result)) continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, n) < (int)sizeof p) unlink(p);
    }
    closedir(d);
}

static srv_job *load_job(srv_state *s, const char *id, int64_t now, bool *changed)
{
    *changed = false;
    char dir[PATH_MAX + 64], path[PATH_MAX + 64];
    srv_job_dir(s, id, dir, sizeof dir);
    srv_job_file(s, id, "job.json", path, sizeof path);
    json_error_t je;
    json_t *rec = json_load_file(path, 0, &je);
    const char *st_name = NULL, *fmt_name = NULL, *fname = NULL, *rid = NULL, *dataset = NULL,
               *input = NULL;
    json_int_t cms = 0, sms = 0, fms = 0;
    json_t *result = NULL, *error = NULL;
    if (!rec ||
        json_unpack(rec, "{s:s, s:s, s:I, s?I, s?I, s:s, s?s, s?o, s?o, s?s, s?s}", "id", &rid,
                    "state", &st_name, "created_ms", &cms, "started_ms", &sms, "finished_ms", &fms,
                    "format", &fmt_name, "filename", &fname, "result", &result, "error", &error,
                    "dataset", &dataset, "input", &input) != 0 ||
        strcmp(rid, id) != 0) {
        /* No record means the 202 was never sent: the upload is garbage. */
        json_decref(rec);
        srv_remove_tree(dir);
        srv_log("warn", "spool: removed a job directory without a valid record",
                json_pack("{s:s}", "job_id", id));
        return NULL;
    }
    int st = srv_job_state_parse(st_name);
    int fmt = format_from_name(fmt_name);
    bool input_ok = !input || !strcmp(input, "h5ad");
    srv_job *j = calloc(1, sizeof *j);
    if (!j || st < 0 || fmt < 0 || !input_ok) {
        free(j);
        json_decref(rec);
        srv_log("error", "spool: unreadable job record left in place",
                json_pack("{s:s}", "job_id", id));
        return NULL;
    }
    memcpy(j->id, id, SRV_ID_LEN + 1);
    j->state = (srv_job_state)st;
    j->format = (adx_format)fmt;
    j->filename = fname ? strdup(fname) : NULL;
    j->dataset = dataset ? strdup(dataset) : NULL;
    j->input = input ? SRV_IN_H5AD : SRV_IN_REQUEST;
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
        srv_result_path(s, j, rp, sizeof rp);
        struct stat stt;
        if (stat(rp, &stt) != 0 || (uint64_t)stt.st_size != j->size_bytes) {
            /* The file is gone or damaged: the only honest state is expired. */
            j->state = SRV_JOB_EXPIRED;
            *changed = true;
        }
    }
    if (j->state == SRV_JOB_QUEUED) {
        srv_job_file(s, id, "request.json", path, sizeof path);
        char inpath[PATH_MAX + 64];
        srv_job_file(s, id, SRV_INPUT_H5AD_FILE, inpath, sizeof inpath);
        if (access(path, R_OK) != 0 || (j->input == SRV_IN_H5AD && access(inpath, R_OK) != 0)) {
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
    /* An uploaded input is needed only until the job has run. */
    clean_job_dir(dir, j->state == SRV_JOB_SUCCEEDED ? result_name : NULL,
                  j->state == SRV_JOB_QUEUED);
    return j;
}

int srv_store_scan(srv_state *s, adx_err *err)
{
    snprintf(s->jobs_dir, sizeof s->jobs_dir, "%s/jobs", s->cfg.spool_dir);
    snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s/tmp", s->cfg.spool_dir);
    if (srv_mkdir_p(s->jobs_dir, "/spool_dir", err) < 0 ||
        srv_mkdir_p(s->tmp_dir, "/spool_dir", err) < 0)
        return -1;
    /* Uploads that were in flight when the process died were never
     * acknowledged. */
    srv_remove_tree(s->tmp_dir);
    if (srv_mkdir_p(s->tmp_dir, "/spool_dir", err) < 0) return -1;
    DIR *d = opendir(s->jobs_dir);
    if (!d)
        return adx_err_set(err, ADX_E_IO, "/spool_dir", "cannot read %s: %s", s->jobs_dir,
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
        srv_job_link(j);
        /* Queued before the loop runs: the record catches up on a worker. */
        if (changed) srv_job_persist(j);
        n++;
        if (j->state == SRV_JOB_QUEUED) requeued++;
    }
    closedir(d);
    /* Enqueue in id (= creation) order so the FIFO survives a restart. */
    srv_job *last = s->jobs_head;
    while (last && last->next)
        last = last->next;
    for (srv_job *j = last; j; j = j->prev) {
        if (j->state == SRV_JOB_QUEUED) srv_job_enqueue(j);
        srv_job_track(j);
    }
    srv_log("info", "spool scanned",
            json_pack("{s:s, s:i, s:i}", "spool_dir", s->cfg.spool_dir, "jobs", n, "requeued",
                      requeued));
    return 0;
}
