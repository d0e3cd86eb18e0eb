/* Prometheus metrics, updated on the loop thread only (no atomics needed). */
#include "srv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                 0.5,   1,     2.5,  5,     10,   30,  60};
#define NB (sizeof buckets / sizeof buckets[0])

/* HTTP statuses are few; 600 slots per route keep lookups trivial. */
_Static_assert(sizeof((srv_metrics *)0)->hist[0] / sizeof(uint64_t) == NB + 1, "buckets");

void srv_metrics_request(srv_metrics *m, int route, int status, double seconds, uint64_t in,
                         uint64_t out)
{
    if (route < 0 || route >= SRV_RT__COUNT) route = SRV_RT_OTHER;
    if (status < 100 || status >= 600) status = 500;
    m->req_count[route][status]++;
    size_t b = 0;
    while (b < NB && seconds > buckets[b])
        b++;
    m->hist[route][b]++;
    m->hist_sum[route] += seconds;
    m->hist_n[route]++;
    m->bytes_in += in;
    m->bytes_out += out;
}

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

char *srv_metrics_render(const srv_state *s, size_t *len)
{
    const srv_metrics *m = &s->metrics;
    sbuf b = {malloc(8192), 0, 8192, false};
    if (!b.p) return NULL;
    put(&b, "# HELP adx_http_requests_total HTTP requests by route and status.\n"
            "# TYPE adx_http_requests_total counter\n");
    for (int r = 0; r < SRV_RT__COUNT; r++)
        for (int st = 100; st < 600; st++)
            if (m->req_count[r][st])
                put(&b, "adx_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                    srv_route_name(r), st, (unsigned long long)m->req_count[r][st]);
    put(&b, "# HELP adx_http_request_duration_seconds Time from first byte to response.\n"
            "# TYPE adx_http_request_duration_seconds histogram\n");
    for (int r = 0; r < SRV_RT__COUNT; r++) {
        if (!m->hist_n[r]) continue;
        uint64_t cum = 0;
        for (size_t i = 0; i < NB; i++) {
            cum += m->hist[r][i];
            put(&b, "adx_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                srv_route_name(r), buckets[i], (unsigned long long)cum);
        }
        cum += m->hist[r][NB];
        put(&b, "adx_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
            srv_route_name(r), (unsigned long long)cum);
        put(&b, "adx_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", srv_route_name(r),
            m->hist_sum[r]);
        put(&b, "adx_http_request_duration_seconds_count{route=\"%s\"} %llu\n", srv_route_name(r),
            (unsigned long long)m->hist_n[r]);
    }
    put(&b, "# HELP adx_jobs Jobs in the table by state.\n# TYPE adx_jobs gauge\n");
    for (int st = 0; st < SRV_JOB__COUNT; st++)
        put(&b, "adx_jobs{state=\"%s\"} %u\n", srv_job_state_name((srv_job_state)st),
            srv_jobs_count_state(&s->jobs, (srv_job_state)st));
    put(&b,
        "# HELP adx_queue_depth Jobs waiting for a worker (and bodies being validated).\n"
        "# TYPE adx_queue_depth gauge\nadx_queue_depth %u\n"
        "# HELP adx_queue_capacity Configured queue_max.\n"
        "# TYPE adx_queue_capacity gauge\nadx_queue_capacity %u\n"
        "# HELP adx_workers Configured export workers.\n"
        "# TYPE adx_workers gauge\nadx_workers %u\n"
        "# HELP adx_workers_busy Export workers running a job now.\n"
        "# TYPE adx_workers_busy gauge\nadx_workers_busy %u\n"
        "# HELP adx_worker_busy_seconds_total Time workers spent on jobs and validation.\n"
        "# TYPE adx_worker_busy_seconds_total counter\nadx_worker_busy_seconds_total %.6f\n"
        "# HELP adx_http_received_bytes_total Request body bytes received.\n"
        "# TYPE adx_http_received_bytes_total counter\nadx_http_received_bytes_total %llu\n"
        "# HELP adx_http_sent_bytes_total Response body bytes queued.\n"
        "# TYPE adx_http_sent_bytes_total counter\nadx_http_sent_bytes_total %llu\n"
        "# HELP adx_files_read_in_total Result downloads whose file a worker read from disk"
        " first (it was not all in the page cache).\n"
        "# TYPE adx_files_read_in_total counter\nadx_files_read_in_total %llu\n",
        s->jobs.n_queued + s->jobs.n_validating, s->cfg.queue_max, s->cfg.workers,
        s->jobs.n_running, m->worker_busy_s, (unsigned long long)m->bytes_in,
        (unsigned long long)m->bytes_out, (unsigned long long)m->files_read_in);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
