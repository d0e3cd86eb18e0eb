/* The job table: id index, FIFO, expiry lists, paging, cancel. No HTTP, no
 * loop, no disk (see jobs.h). */
#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_err.h"
#include "adx_pipeline.h"

void srv_jobs_init(srv_jobs *t, unsigned queue_max, uint64_t ttl_s, const srv_jobs_hooks *h)
{
    memset(t, 0, sizeof *t);
    t->queue_max = queue_max;
    t->max_memory = UINT64_MAX;
    t->ttl_ms = (int64_t)ttl_s * 1000;
    if (h) t->hooks = *h;
}

srv_job *srv_job_new(const char *id, srv_job_state st)
{
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    snprintf(j->id, sizeof j->id, "%s", id);
    j->state = st;
    return j;
}

void srv_job_free(srv_job *j)
{
    if (!j) return;
    pipe_free(j->pj);
    free(j->filename);
    free(j->dataset);
    json_decref(j->result);
    json_decref(j->error);
    free(j);
}

void srv_job_ref(srv_job *j)
{
    j->refs++;
}

void srv_job_unref(srv_job *j)
{
    if (j->refs) j->refs--;
    if (j->removed && j->refs == 0) srv_job_free(j);
}

/* ---- id index ------------------------------------------------------------
 * A table can hold a TTL's worth of jobs (hundreds of thousands), so
 * lookups must not walk the list. If the index cannot be allocated at all,
 * lookups fall back to the list for good. */

static size_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return (size_t)h;
}

static void hash_insert(srv_jobs *t, srv_job *j)
{
    if (t->hbroken) return;
    if (t->hcount + 1 > t->hcap) {
        size_t ncap = t->hcap ? t->hcap * 2 : 1024;
        srv_job **nb = calloc(ncap, sizeof *nb);
        if (!nb && !t->hcap) {
            t->hbroken = true;
            return;
        }
        if (nb) { /* else keep the old buckets: longer chains, still correct */
            for (size_t i = 0; i < t->hcap; i++) {
                srv_job *e = t->hb[i], *next;
                for (; e; e = next) {
                    next = e->hnext;
                    size_t b = hash_id(e->id) & (ncap - 1);
                    e->hnext = nb[b];
                    nb[b] = e;
                }
            }
            free(t->hb);
            t->hb = nb;
            t->hcap = ncap;
        }
    }
    size_t b = hash_id(j->id) & (t->hcap - 1);
    j->hnext = t->hb[b];
    t->hb[b] = j;
    t->hcount++;
}

static void hash_remove(srv_jobs *t, srv_job *j)
{
    if (t->hbroken || !t->hcap) return;
    for (srv_job **pp = &t->hb[hash_id(j->id) & (t->hcap - 1)]; *pp; pp = &(*pp)->hnext)
        if (*pp == j) {
            *pp = j->hnext;
            j->hnext = NULL;
            t->hcount--;
            return;
        }
}

srv_job *srv_jobs_find(const srv_jobs *t, const char *id)
{
    if (!t->hbroken) {
        if (!t->hcap) return NULL;
        for (srv_job *j = t->hb[hash_id(id) & (t->hcap - 1)]; j; j = j->hnext)
            if (strcmp(j->id, id) == 0) return j;
        return NULL;
    }
    for (srv_job *j = t->head; j; j = j->next)
        if (strcmp(j->id, id) == 0) return j;
    return NULL;
}

void srv_jobs_link(srv_jobs *t, srv_job *j)
{
    hash_insert(t, j);
    srv_job **pp = &t->head, *prev = NULL;
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

/* ---- expiry lists --------------------------------------------------------
 * Terminal jobs in finished_ms order, so the sweep only looks at the jobs
 * that are due. [1] succeeded/failed/canceled (due at +ttl), [2] expired
 * (forgotten at +2 ttl). */

static void elist_remove(srv_jobs *t, srv_job *j)
{
    if (!j->elist) return;
    int l = j->elist;
    if (j->eprev)
        j->eprev->enext = j->enext;
    else
        t->el[l].head = j->enext;
    if (j->enext)
        j->enext->eprev = j->eprev;
    else
        t->el[l].tail = j->eprev;
    j->eprev = j->enext = NULL;
    j->elist = 0;
}

static void elist_insert(srv_jobs *t, srv_job *j, int l)
{
    elist_remove(t, j);
    /* Jobs finish roughly in order: the place is almost always the tail. */
    srv_job *after = t->el[l].tail;
    while (after && after->finished_ms > j->finished_ms)
        after = after->eprev;
    j->eprev = after;
    j->enext = after ? after->enext : t->el[l].head;
    if (j->enext)
        j->enext->eprev = j;
    else
        t->el[l].tail = j;
    if (after)
        after->enext = j;
    else
        t->el[l].head = j;
    j->elist = l;
}

void srv_jobs_track(srv_jobs *t, srv_job *j)
{
    if (!srv_job_terminal(j->state)) return;
    elist_insert(t, j, j->state == SRV_JOB_EXPIRED ? 2 : 1);
}

/* Out of the hash and the list; the job lives on while others hold it. */
static void unlink_job(srv_jobs *t, srv_job *j)
{
    hash_remove(t, j);
    if (j->prev)
        j->prev->next = j->next;
    else
        t->head = j->next;
    if (j->next) j->next->prev = j->prev;
    j->prev = j->next = NULL;
    j->removed = true;
}

static void job_remove(srv_jobs *t, srv_job *j)
{
    elist_remove(t, j);
    unlink_job(t, j);
    srv_job_ref(j);
    if (t->hooks.remove) t->hooks.remove(t->hooks.ud, j);
    srv_job_unref(j);
}

/* ---- queue ---------------------------------------------------------------- */

bool srv_jobs_queue_full(const srv_jobs *t)
{
    return t->n_queued + t->n_validating >= t->queue_max;
}

unsigned srv_jobs_count_state(const srv_jobs *t, srv_job_state st)
{
    unsigned n = 0;
    for (srv_job *j = t->head; j; j = j->next)
        n += j->state == st;
    return n;
}

void srv_jobs_enqueue(srv_jobs *t, srv_job *j)
{
    j->qnext = NULL;
    if (t->q_tail)
        t->q_tail->qnext = j;
    else
        t->q_head = j;
    t->q_tail = j;
    t->n_queued++;
}

static void queue_remove(srv_jobs *t, srv_job *j)
{
    srv_job **pp = &t->q_head, *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (!*pp) return;
    *pp = j->qnext;
    if (t->q_tail == j) t->q_tail = prev;
    j->qnext = NULL;
    t->n_queued--;
}

srv_job *srv_jobs_dequeue(srv_jobs *t)
{
    srv_job *j = t->q_head;
    if (j) queue_remove(t, j);
    return j;
}

srv_job *srv_jobs_dequeue_admitted(srv_jobs *t)
{
    srv_job *j = t->q_head;
    if (!j) return NULL;
    /* mem_running <= max_memory whenever something runs alone within
     * budget; an over-budget job runs only with n_running == 0. */
    bool fits = t->mem_running <= t->max_memory && j->mem_bytes <= t->max_memory - t->mem_running;
    if (t->n_running > 0 && !fits) return NULL;
    queue_remove(t, j);
    return j;
}

uint64_t srv_job_mem_estimate(uint64_t model_bytes, uint64_t body_bytes)
{
    uint64_t e = model_bytes;
    if (!e)
        e = body_bytes > UINT64_MAX / SRV_MEM_BODY_FACTOR ? UINT64_MAX
                                                          : body_bytes * SRV_MEM_BODY_FACTOR;
    return e < SRV_MEM_MIN_BYTES ? SRV_MEM_MIN_BYTES : e;
}

/* ---- transitions ----------------------------------------------------------- */

void srv_job_watch_add(srv_job *j, srv_job_watch *w)
{
    w->job = j;
    w->next = j->watchers;
    j->watchers = w;
}

void srv_job_watch_remove(srv_job_watch *w)
{
    srv_job *j = w->job;
    if (!j) return;
    for (srv_job_watch **pp = &j->watchers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    w->next = NULL;
    w->job = NULL;
}

bool srv_jobs_event(srv_jobs *t, srv_job *j, srv_job_event ev, int64_t now_ms)
{
    int next = srv_job_next(j->state, ev);
    if (next < 0) return false;
    if (j->state == SRV_JOB_RUNNING) {
        t->n_running--;
        t->mem_running -= j->mem_bytes < t->mem_running ? j->mem_bytes : t->mem_running;
        if (j->rprev)
            j->rprev->rnext = j->rnext;
        else
            t->r_head = j->rnext;
        if (j->rnext) j->rnext->rprev = j->rprev;
        j->rprev = j->rnext = NULL;
    }
    if (next == SRV_JOB_RUNNING) {
        t->n_running++;
        t->mem_running =
            j->mem_bytes > UINT64_MAX - t->mem_running ? UINT64_MAX : t->mem_running + j->mem_bytes;
        j->rprev = NULL;
        j->rnext = t->r_head;
        if (j->rnext) j->rnext->rprev = j;
        t->r_head = j;
    }
    j->state = (srv_job_state)next;
    if (!srv_job_terminal(j->state)) return true;
    if (!j->finished_ms) j->finished_ms = now_ms;
    srv_jobs_track(t, j);
    if (j->pinned) {
        j->pinned = false;
        if (t->hooks.unpin) t->hooks.unpin(t->hooks.ud, j);
    }
    while (j->watchers) {
        srv_job_watch *w = j->watchers;
        srv_job_watch_remove(w);
        w->fn(w, j);
    }
    return true;
}

json_t *srv_job_canceled_problem(void)
{
    adx_err ce;
    adx_err_init(&ce);
    adx_err_set(&ce, ADX_E_CANCELED, "", "the job was canceled by a client");
    return adx_err_problem(&ce, NULL, NULL);
}

void srv_jobs_delete(srv_jobs *t, srv_job *j, int64_t now_ms)
{
    switch (j->state) {
    case SRV_JOB_QUEUED:
        queue_remove(t, j);
        pipe_free(j->pj);
        j->pj = NULL;
        json_decref(j->error);
        j->error = srv_job_canceled_problem();
        j->finished_ms = now_ms;
        srv_jobs_event(t, j, SRV_EV_CANCEL, now_ms);
        if (t->hooks.persist) t->hooks.persist(t->hooks.ud, j);
        break;
    case SRV_JOB_RECEIVING:
        json_decref(j->error);
        j->error = srv_job_canceled_problem();
        j->finished_ms = now_ms;
        /* Nothing is on disk yet but the upload, which its watcher drops;
         * the canceled job is kept in memory only, like a refusal. */
        srv_jobs_event(t, j, SRV_EV_CANCEL, now_ms);
        break;
    case SRV_JOB_RUNNING:
    case SRV_JOB_VALIDATING:
        atomic_store(&j->cancel, SRV_CANCEL_CLIENT);
        break;
    default:
        job_remove(t, j);
        break;
    }
}

void srv_jobs_forget(srv_jobs *t, srv_job *j)
{
    if (j->state != SRV_JOB_RECEIVING && j->state != SRV_JOB_VALIDATING) return;
    while (j->watchers)
        srv_job_watch_remove(j->watchers);
    unlink_job(t, j);
    srv_job_ref(j);
    srv_job_unref(j);
}

void srv_job_adopt(srv_job *dst, srv_job *src)
{
    dst->format = src->format;
    free(dst->filename);
    dst->filename = src->filename;
    src->filename = NULL;
    dst->input = src->input;
    free(dst->dataset);
    dst->dataset = src->dataset;
    src->dataset = NULL;
    dst->pinned = src->pinned;
    src->pinned = false;
    pipe_free(dst->pj);
    dst->pj = src->pj;
    src->pj = NULL;
    dst->mem_bytes = src->mem_bytes;
    srv_job_free(src);
}

void srv_jobs_tick(srv_jobs *t, int64_t now)
{
    srv_job *j;
    while ((j = t->el[1].head) && now - j->finished_ms >= t->ttl_ms) {
        elist_remove(t, j);
        if (j->state == SRV_JOB_SUCCEEDED) {
            j->state = (srv_job_state)srv_job_next(j->state, SRV_EV_EXPIRE);
            if (t->hooks.expire) t->hooks.expire(t->hooks.ud, j);
            elist_insert(t, j, 2);
        } else {
            job_remove(t, j); /* failed or canceled */
        }
    }
    /* Keep the "expired" answer for one more TTL, then forget. */
    while ((j = t->el[2].head) && now - j->finished_ms >= 2 * t->ttl_ms)
        job_remove(t, j);
}

void srv_jobs_deadline(srv_jobs *t, int64_t now_ms, int64_t limit_ms,
                       void (*fn)(void *ud, srv_job *j), void *ud)
{
    for (srv_job *j = t->r_head; j; j = j->rnext)
        if (limit_ms > 0 && now_ms - j->started_ms >= limit_ms && !atomic_load(&j->cancel)) {
            atomic_store(&j->cancel, SRV_CANCEL_TIMEOUT);
            if (fn) fn(ud, j);
        }
}

void srv_jobs_free_all(srv_jobs *t)
{
    srv_job *next;
    for (srv_job *j = t->head; j; j = next) {
        next = j->next;
        srv_job_free(j);
    }
    free(t->hb);
    srv_jobs_hooks h = t->hooks;
    uint64_t max_memory = t->max_memory;
    srv_jobs_init(t, t->queue_max, (uint64_t)(t->ttl_ms / 1000), &h);
    t->max_memory = max_memory;
}

size_t srv_jobs_page(const srv_jobs *t, int state, const char *rid, const char *cursor,
                     size_t limit, srv_job **out, bool *more)
{
    *more = false;
    size_t n = 0;
    /* Pages start right after the cursor's job when it still exists, so
     * paging a large table does not rescan it from the top each time. */
    srv_job *start = cursor ? srv_jobs_find(t, cursor) : NULL;
    start = start ? start->next : t->head;
    for (srv_job *j = start; j; j = j->next) {
        if (cursor && strcmp(j->id, cursor) >= 0) continue;
        if (state >= 0 && (int)j->state != state) continue;
        if (rid && strcmp(j->rid, rid) != 0) continue;
        if (n == limit) {
            *more = true;
            break;
        }
        out[n++] = j;
    }
    return n;
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
    if ((j->state == SRV_JOB_RUNNING || j->state == SRV_JOB_VALIDATING) &&
        atomic_load(&j->cancel) == SRV_CANCEL_CLIENT)
        json_object_set_new(o, "cancel_requested", json_true());
    /* How a client that sent X-Request-ID finds its job before the 202. */
    json_object_set_new(o, "request_id", j->rid[0] ? json_string(j->rid) : json_null());
    if (j->state == SRV_JOB_RECEIVING || j->state == SRV_JOB_VALIDATING) {
        json_object_set_new(o, "bytes_received", json_integer((json_int_t)j->bytes_received));
        json_object_set_new(o, "bytes_expected",
                            j->bytes_expected ? json_integer((json_int_t)j->bytes_expected)
                                              : json_null());
    }
    char self[1024], file[1024];
    snprintf(self, sizeof self, "%s/v1/exports/%s", base, j->id);
    snprintf(file, sizeof file, "%s/v1/exports/%s/file", base, j->id);
    json_object_set_new(o, "links", json_pack("{s:s, s:s}", "self", self, "file", file));
    return o;
}
