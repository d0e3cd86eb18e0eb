/* Prometheus metrics, updated on the loop thread only (no atomics needed). */
#include "srv_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *route_names[SRV_RT__COUNT] = {"/v1/exports",
                                                 "/v1/exports/{id}",
                                                 "/v1/exports/{id}/file",
                                                 "/healthz",
                                                 "/readyz",
                                                 "/metrics",
                                                 "/openapi.json",
                                                 "/v1/version",
                                                 "/v1/datasets",
                                                 "/v1/datasets/{name}",
                                                 "other"};

const char *srv_route_name(int rt)
{
    return rt >= 0 && rt < SRV_RT__COUNT ? route_names[rt] : "other";
}

static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                 0.5,   1,     2.5,  5,     10,   30,  60};
#define NB (sizeof buckets / sizeof buckets[0])

/* HTTP statuses are few; 600 slots per route keep lookups trivial. */
static uint64_t req_count[SRV_RT__COUNT][600];
static uint64_t hist[SRV_RT__COUNT][NB + 1];
static double hist_sum[SRV_RT__COUNT];
static uint64_t hist_n[SRV_RT__COUNT];

void srv_metrics_request(int route, int status, double seconds, uint64_t in, uint64_t out)
{
    if (route < 0 || route >= SRV_RT__COUNT) route = SRV_RT_OTHER;
    if (status < 100 || status >= 600) status = 500;
    req_count[route][status]++;
    size_t b = 0;
    while (b < NB && seconds > buckets[b])
        b++;
    hist[route][b]++;
    hist_sum[route] += seconds;
    hist_n[route]++;
    srv_g->bytes_in += in;
    srv_g->bytes_out += out;
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

char *srv_metrics_render(size_t *len)
{
    sbuf b = {malloc(8192), 0, 8192, false};
    if (!b.p) return NULL;
    put(&b, "# HELP adx_http_requests_total HTTP requests by route and status.\n"
            "# TYPE adx_http_requests_total counter\n");
    for (int r = 0; r < SRV_RT__COUNT; r++)
        for (int s = 100; s < 600; s++)
            if (req_count[r][s])
                put(&b, "adx_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                    route_names[r], s, (unsigned long long)req_count[r][s]);
    put(&b, "# HELP adx_http_request_duration_seconds Time from first byte to response.\n"
            "# TYPE adx_http_request_duration_seconds histogram\n");
    for (int r = 0; r < SRV_RT__COUNT; r++) {
        if (!hist_n[r]) continue;
        uint64_t cum = 0;
        for (size_t i = 0; i < NB; i++) {
            cum += hist[r][i];
            put(&b, "adx_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                route_names[r], buckets[i], (unsigned long long)cum);
        }
        cum += hist[r][NB];
        put(&b, "adx_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
            route_names[r], (unsigned long long)cum);
        put(&b, "adx_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_names[r],
            hist_sum[r]);
        put(&b, "adx_http_request_duration_seconds_count{route=\"%s\"} %llu\n", route_names[r],
            (unsigned long long)hist_n[r]);
    }
    put(&b, "# HELP adx_jobs Jobs in the table by state.\n# TYPE adx_jobs gauge\n");
    for (int st = 0; st < SRV_JOB__COUNT; st++)
        put(&b, "adx_jobs{state=\"%s\"} %u\n", srv_job_state_name((srv_job_state)st),
            srv_jobs_count_state((srv_job_state)st));
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
        "# TYPE adx_http_sent_bytes_total counter\nadx_http_sent_bytes_total %llu\n",
        srv_g->n_queued + srv_g->n_validating, srv_g->cfg.queue_max, srv_g->cfg.workers,
        srv_g->n_running, srv_g->worker_busy_s, (unsigned long long)srv_g->bytes_in,
        (unsigned long long)srv_g->bytes_out);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
