/* libmicrohttpd driven by the libuv loop, and the routes of api.md.
 *
 * MHD runs in external mode with its epoll fd watched by a uv_poll_t and its
 * timeout by a uv_timer_t; MHD_run is called after each event, on the loop
 * thread, so route handlers may touch the job table directly. Anything slow
 * (parsing a body, writing a file) goes to the pool and the connection is
 * suspended until the completion comes back to the loop. */
#include "srv_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adx_config_build.h"

#define PROBLEM_BASE "https://anndata-exportd.invalid/errors/"
#define RETRY_AFTER "5"
#define DISCARD_MAX (16u << 20)

struct srv_req {
    struct MHD_Connection *conn;
    int route;
    char method[12];
    char path[512];
    char rid[72];
    char base[600];
    char origin[256];
    bool cors; /* Origin present and allowed */
    char job_id[SRV_ID_LEN + 1];
    char ds_name[512]; /* /v1/datasets/{name} as sent (decoded), checked later */
    uint64_t t0;
    int status;
    uint64_t bytes_in, bytes_out;
    /* POST body spooling */
    int fd;
    char upload[PATH_MAX + 32];
    bool too_big;
    bool body_done;
    bool is_upload; /* POST /v1/exports or PUT /v1/datasets/{name} past its first checks */
    unsigned wait_s;
    srv_input input;   /* POST: what the body is */
    char *options;     /* POST of an h5ad: the options document built from the query */
    ds_input ds_input; /* PUT: what the body is */
    srv_validate *val;
    srv_ds_work *dw;
    /* a response prepared while suspended, queued on the next handler call */
    struct MHD_Response *pending;
    int pending_status;
    bool suspended;
    srv_req *sprev, *snext; /* suspended list */
    srv_job *wait_job;
    int64_t wait_deadline;
    srv_req *wnext; /* job->waiters */
};

static srv_req *suspended_head;

unsigned srv_http_suspended(void)
{
    unsigned n = 0;
    for (srv_req *r = suspended_head; r; r = r->snext)
        n++;
    return n;
}

/* ---- loop glue ---------------------------------------------------------- */

static void on_mhd_timer(uv_timer_t *t);

static void mhd_step(void)
{
    if (!srv_g->mhd) return;
    MHD_run(srv_g->mhd);
    MHD_UNSIGNED_LONG_LONG to;
    if (MHD_get_timeout(srv_g->mhd, &to) == MHD_YES)
        uv_timer_start(&srv_g->mhd_timer, on_mhd_timer, to, 0);
    else
        uv_timer_stop(&srv_g->mhd_timer);
}

static void on_mhd_timer(uv_timer_t *t)
{
    mhd_step();
}

static void on_mhd_poll(uv_poll_t *p, int status, int events)
{
    mhd_step();
}

void srv_http_kick(void)
{
    uv_timer_start(&srv_g->mhd_timer, on_mhd_timer, 0, 0);
}

/* ---- responses ------------------------------------------------------------ */

static void suspend(srv_req *r)
{
    if (r->suspended) return;
    MHD_suspend_connection(r->conn);
    r->suspended = true;
    r->sprev = NULL;
    r->snext = suspended_head;
    if (suspended_head) suspended_head->sprev = r;
    suspended_head = r;
}

static void unsuspend_list(srv_req *r)
{
    if (r->sprev)
        r->sprev->snext = r->snext;
    else
        suspended_head = r->snext;
    if (r->snext) r->snext->sprev = r->sprev;
    r->sprev = r->snext = NULL;
}

static void add_common(srv_req *r, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Request-ID", r->rid);
    if (r->cors) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "Content-Disposition, ETag, Location, X-Request-ID, "
                                "Content-Range, Retry-After");
    }
    if (srv_g->cfg.cors_origins[0]) MHD_add_response_header(resp, "Vary", "Origin");
}

/* Queue now, or keep it for the handler call that follows a resume. */
static enum MHD_Result respond(srv_req *r, int status, struct MHD_Response *resp)
{
    if (!resp) {
        /* Out of memory building the body: closing is all that is left. */
        r->status = 500;
        return MHD_NO;
    }
    add_common(r, resp);
    r->status = status;
    if (r->suspended) {
        r->pending = resp;
        r->pending_status = status;
        unsuspend_list(r);
        r->suspended = false;
        MHD_resume_connection(r->conn);
        srv_http_kick();
        return MHD_YES;
    }
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static struct MHD_Response *text_resp(char *s, size_t len, const char *ctype, uint64_t *bytes)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(s);
        return NULL;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    *bytes += len;
    return resp;
}

static struct MHD_Response *json_resp(srv_req *r, json_t *o, const char *ctype)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    if (!s) return NULL;
    struct MHD_Response *resp = text_resp(s, strlen(s), ctype, &r->bytes_out);
    if (resp) MHD_add_response_header(resp, "Cache-Control", "no-store");
    return resp;
}

static enum MHD_Result send_json(srv_req *r, int status, json_t *o)
{
    return respond(r, status, json_resp(r, o, "application/json"));
}

static enum MHD_Result send_problem_obj(srv_req *r, json_t *p, int status, const char *h1,
                                        const char *v1)
{
    if (p) {
        json_object_set_new(p, "instance", json_string(r->path));
        json_object_set_new(p, "request_id", json_string(r->rid));
        json_object_set_new(p, "status", json_integer(status));
    }
    struct MHD_Response *resp = json_resp(r, p, "application/problem+json");
    if (resp && h1) MHD_add_response_header(resp, h1, v1);
    return respond(r, status, resp);
}

static enum MHD_Result send_problem_err(srv_req *r, const adx_err *e)
{
    int status = e->status ? e->status : adx_errtype_status(e->type);
    return send_problem_obj(r, adx_err_problem(e, r->path, PROBLEM_BASE), status, NULL, NULL);
}

__attribute__((format(printf, 6, 7))) static enum MHD_Result
problem(srv_req *r, int status, adx_errtype t, const char *h1, const char *v1, const char *fmt, ...)
{
    adx_err e;
    adx_err_init(&e);
    va_list ap;
    va_start(ap, fmt);
    /* A bare status of this layer (401, 405, 503, ...) has its own kind. */
    adx_err_vset(&e, adx_errtype_for_status(status, t), "", fmt, ap);
    va_end(ap);
    adx_err_set_status(&e, status);
    json_t *p = adx_err_problem(&e, r->path, PROBLEM_BASE);
    return send_problem_obj(r, p, status, h1, v1);
}

static const char *header(srv_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static const char *query(srv_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- request context ------------------------------------------------------ */

static bool token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':';
}

static void set_request_id(srv_req *r)
{
    const char *h = header(r, "X-Request-ID");
    if (h) {
        size_t n = strlen(h);
        bool ok = n > 0 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = token_char(h[i]);
        /* An id we cannot log or echo safely is replaced, not trusted. */
        if (ok) {
            memcpy(r->rid, h, n + 1);
            return;
        }
    }
    uint8_t b[16];
    srv_random(b, sizeof b);
    for (int i = 0; i < 16; i++)
        snprintf(r->rid + 2 * i, 3, "%02x", b[i]);
}

static bool host_ok(const char *h)
{
    if (!*h) return false;
    for (; *h; h++)
        if (!((*h >= 'A' && *h <= 'Z') || (*h >= 'a' && *h <= 'z') || (*h >= '0' && *h <= '9') ||
              strchr(".-:[]_", *h)))
            return false;
    return true;
}

static void set_base(srv_req *r)
{
    r->base[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !srv_config_proxy_trusted(&srv_g->cfg, ci->client_addr)) return;
    const char *proto = header(r, "X-Forwarded-Proto");
    const char *host = header(r, "X-Forwarded-Host");
    const char *prefix = header(r, "X-Forwarded-Prefix");
    char hbuf[256] = "", pbuf[256] = "";
    if (host) {
        /* A chain of proxies appends; the first is the client-facing one. */
        size_t n = strcspn(host, ", ");
        if (n < sizeof hbuf) {
            memcpy(hbuf, host, n);
            hbuf[n] = '\0';
        }
        if (!host_ok(hbuf)) hbuf[0] = '\0';
    }
    if (prefix && prefix[0] == '/' && strlen(prefix) < sizeof pbuf) {
        bool ok = true;
        for (const char *c = prefix; *c && ok; c++)
            ok = token_char(*c) || *c == '/' || *c == '~';
        if (ok) {
            snprintf(pbuf, sizeof pbuf, "%s", prefix);
            size_t n = strlen(pbuf);
            while (n > 0 && pbuf[n - 1] == '/')
                pbuf[--n] = '\0';
        }
    }
    const char *scheme = proto && (!strcasecmp(proto, "https") || !strcasecmp(proto, "http"))
                             ? (!strcasecmp(proto, "https") ? "https" : "http")
                             : "http";
    if (hbuf[0])
        snprintf(r->base, sizeof r->base, "%s://%s%s", scheme, hbuf, pbuf);
    else
        snprintf(r->base, sizeof r->base, "%s", pbuf);
}

/* ---- routing ---------------------------------------------------------------- */

static int route_of(const char *url, char id[SRV_ID_LEN + 1], char *name, size_t name_cap)
{
    id[0] = '\0';
    name[0] = '\0';
    if (!strcmp(url, "/v1/datasets") || !strcmp(url, "/v1/datasets/")) return SRV_RT_DATASETS;
    if (!strncmp(url, "/v1/datasets/", 13)) {
        /* Everything after the prefix is the name, slashes (a decoded %2F)
         * included, so that a bad name is a 400 for the name. */
        snprintf(name, name_cap, "%s", url + 13);
        return SRV_RT_DATASET;
    }
    if (!strcmp(url, "/healthz")) return SRV_RT_HEALTHZ;
    if (!strcmp(url, "/readyz")) return SRV_RT_READYZ;
    if (!strcmp(url, "/metrics")) return SRV_RT_METRICS;
    if (!strcmp(url, "/openapi.json")) return SRV_RT_OPENAPI;
    if (!strcmp(url, "/v1/version")) return SRV_RT_VERSION;
    if (!strcmp(url, "/v1/exports") || !strcmp(url, "/v1/exports/")) return SRV_RT_EXPORTS;
    if (!strncmp(url, "/v1/exports/", 12)) {
        const char *rest = url + 12;
        size_t n = strcspn(rest, "/");
        if (n == 0 || n > SRV_ID_LEN) return SRV_RT_OTHER;
        /* Unknown-shaped ids still route here so they get a 404 for the id,
         * not for the route. */
        char tmp[SRV_ID_LEN + 1];
        memcpy(tmp, rest, n);
        tmp[n] = '\0';
        if (rest[n] == '\0') {
            memcpy(id, tmp, n + 1);
            return SRV_RT_EXPORT;
        }
        if (!strcmp(rest + n, "/file")) {
            memcpy(id, tmp, n + 1);
            return SRV_RT_EXPORT_FILE;
        }
    }
    return SRV_RT_OTHER;
}

static const char *allowed_methods(int rt)
{
    switch (rt) {
    case SRV_RT_EXPORTS:
        return "GET, HEAD, POST, OPTIONS";
    case SRV_RT_EXPORT:
        return "GET, HEAD, DELETE, OPTIONS";
    case SRV_RT_DATASET:
        return "GET, HEAD, PUT, DELETE, OPTIONS";
    default:
        return "GET, HEAD, OPTIONS";
    }
}

static bool method_allowed(int rt, const char *m)
{
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS")) return true;
    if (rt == SRV_RT_EXPORTS) return !strcmp(m, "POST");
    if (rt == SRV_RT_EXPORT) return !strcmp(m, "DELETE");
    if (rt == SRV_RT_DATASET) return !strcmp(m, "PUT") || !strcmp(m, "DELETE");
    return false;
}

static bool authorized(srv_req *r, bool *had_token)
{
    *had_token = false;
    if (!srv_g->n_tokens) return true;
    const char *h = header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    const char *t = h + 7;
    while (*t == ' ')
        t++;
    size_t tl = strlen(t);
    *had_token = tl > 0;
    bool ok = false;
    /* No early exit: every configured token is compared. */
    for (size_t i = 0; i < srv_g->n_tokens; i++)
        ok |= srv_token_eq(t, tl, srv_g->tokens[i], strlen(srv_g->tokens[i]));
    return ok;
}

/* ---- handlers ----------------------------------------------------------------- */

static enum MHD_Result h_preflight(srv_req *r)
{
    const char *origin = header(r, "Origin");
    const char *acrm = header(r, "Access-Control-Request-Method");
    if (!origin || !acrm) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (resp) MHD_add_response_header(resp, "Allow", allowed_methods(r->route));
        return respond(r, 204, resp);
    }
    if (!r->cors)
        return problem(r, 403, ADX_E_CONFLICT, NULL, NULL,
                       "origin %.200s is not allowed by cors_origins", origin);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    char age[24];
    snprintf(age, sizeof age, "%u", srv_g->cfg.cors_max_age);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", allowed_methods(r->route));
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type, X-Request-ID, Range, If-None-Match, "
                            "If-Range");
    MHD_add_response_header(resp, "Access-Control-Max-Age", age);
    return respond(r, 204, resp);
}

static enum MHD_Result h_healthz(srv_req *r)
{
    return send_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result h_readyz(srv_req *r)
{
    const char *why = NULL;
    if (srv_g->shutting_down)
        why = "shutting down";
    else if (srv_queue_full())
        why = "queue full";
    else if (access(srv_g->tmp_dir, W_OK) != 0 || access(srv_g->jobs_dir, W_OK) != 0)
        why = "spool not writable";
    if (why) {
        json_t *o = json_pack("{s:s, s:s}", "status", "unavailable", "reason", why);
        struct MHD_Response *resp = json_resp(r, o, "application/json");
        if (resp) MHD_add_response_header(resp, "Retry-After", RETRY_AFTER);
        return respond(r, 503, resp);
    }
    return send_json(r, 200,
                     json_pack("{s:s, s:i, s:i}", "status", "ready", "queued",
                               srv_g->n_queued + srv_g->n_validating, "running", srv_g->n_running));
}

static enum MHD_Result h_metrics(srv_req *r)
{
    size_t len = 0;
    char *s = srv_metrics_render(&len);
    if (!s) return problem(r, 503, ADX_E_NOMEM, NULL, NULL, "out of memory");
    return respond(r, 200,
                   text_resp(s, len, "text/plain; version=0.0.4; charset=utf-8", &r->bytes_out));
}

static enum MHD_Result h_openapi(srv_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        srv_openapi_json_len, (void *)srv_openapi_json, MHD_RESPMEM_PERSISTENT);
    if (resp) MHD_add_response_header(resp, "Content-Type", "application/json");
    r->bytes_out += srv_openapi_json_len;
    return respond(r, 200, resp);
}

static enum MHD_Result h_version(srv_req *r)
{
    return send_json(r, 200, srv_version_json());
}

static enum MHD_Result h_list(srv_req *r)
{
    const char *st = query(r, "state"), *lim = query(r, "limit"), *cur = query(r, "cursor");
    int state = -1;
    if (st && (state = srv_job_state_parse(st)) < 0)
        return problem(r, 400, ADX_E_BAD_OPTION, NULL, NULL,
                       "state must be one of queued, running, succeeded, failed, canceled, "
                       "expired");
    long limit = 50;
    if (lim) {
        char *end;
        errno = 0;
        limit = strtol(lim, &end, 10);
        if (errno || *end || end == lim || limit < 1 || limit > 1000)
            return problem(r, 400, ADX_E_BAD_OPTION, NULL, NULL,
                           "limit must be an integer from 1 to 1000");
    }
    if (cur && !srv_id_valid(cur))
        return problem(r, 400, ADX_E_BAD_OPTION, NULL, NULL,
                       "cursor is not one this server handed out");
    json_t *items = json_array();
    long n = 0;
    const char *last = NULL;
    bool more = false;
    /* Pages start right after the cursor's job when it still exists, so
     * paging a large table does not rescan it from the top each time. */
    srv_job *start = cur ? srv_job_find(cur) : NULL;
    start = start ? start->next : srv_g->jobs_head;
    for (srv_job *j = start; j && items; j = j->next) {
        if (cur && strcmp(j->id, cur) >= 0) continue;
        if (state >= 0 && (int)j->state != state) continue;
        if (n == limit) {
            more = true;
            break;
        }
        json_array_append_new(items, srv_job_json(j, r->base));
        last = j->id;
        n++;
    }
    json_t *o = json_pack("{s:o, s:s?}", "items", items, "next_cursor", more ? last : NULL);
    if (o && !more) json_object_set_new(o, "next_cursor", json_null());
    return send_json(r, 200, o);
}

static enum MHD_Result h_get_job(srv_req *r, srv_job *j)
{
    return send_json(r, 200, srv_job_json(j, r->base));
}

static enum MHD_Result h_delete(srv_req *r, srv_job *j)
{
    srv_job_state before = j->state;
    srv_job_delete(j);
    srv_log("info", "job deleted",
            json_pack("{s:s, s:s, s:s}", "job_id", r->job_id, "request_id", r->rid, "was",
                      srv_job_state_name(before)));
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    return respond(r, 204, resp);
}

/* The file of a succeeded job, honouring Range, If-Range and If-None-Match.
 * `full_only` is set for ?wait answers, which never see those headers. */
static enum MHD_Result serve_file(srv_req *r, srv_job *j, bool full_only)
{
    if (j->state == SRV_JOB_EXPIRED)
        return problem(r, 410, ADX_E_NOT_FOUND, NULL, NULL,
                       "the result of job %s expired and was deleted", j->id);
    if (j->state != SRV_JOB_SUCCEEDED) {
        json_t *p = NULL;
        adx_err e;
        adx_err_init(&e);
        adx_err_set(&e, ADX_E_CONFLICT, "", "job %s is %s; the file exists once it succeeded",
                    j->id, srv_job_state_name(j->state));
        p = adx_err_problem(&e, r->path, PROBLEM_BASE);
        if (p) json_object_set_new(p, "state", json_string(srv_job_state_name(j->state)));
        return send_problem_obj(r, p, 409, NULL, NULL);
    }
    char path[PATH_MAX + 64];
    srv_result_path(srv_g, j, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        srv_log("error", "result file missing",
                json_pack("{s:s, s:s}", "job_id", j->id, "request_id", r->rid));
        return problem(r, 410, ADX_E_NOT_FOUND, NULL, NULL,
                       "the result of job %s is no longer available", j->id);
    }
    uint64_t size = (uint64_t)st.st_size;
    char etag[80], disp[2048], crange[96];
    snprintf(etag, sizeof etag, "\"%s\"", j->sha256);
    const char *fname = j->filename ? j->filename : "export";
    if (srv_content_disposition(fname, disp, sizeof disp) < 0)
        snprintf(disp, sizeof disp, "attachment; filename=\"export%s\"", adx_format_ext(j->format));
    const char *inm = full_only ? NULL : header(r, "If-None-Match");
    if (inm && srv_etag_match(inm, etag)) {
        close(fd);
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (resp) MHD_add_response_header(resp, "ETag", etag);
        return respond(r, 304, resp);
    }
    const char *rh = full_only ? NULL : header(r, "Range");
    const char *ifr = full_only ? NULL : header(r, "If-Range");
    if (rh && ifr && strcmp(ifr, etag) != 0) rh = NULL; /* stale validator: send it all */
    uint64_t first = 0, last = size ? size - 1 : 0;
    srv_range_result rr = srv_range_parse(rh, size, &first, &last);
    if (rr == SRV_RANGE_UNSAT) {
        close(fd);
        snprintf(crange, sizeof crange, "bytes */%llu", (unsigned long long)size);
        return problem(r, 416, ADX_E_BAD_OPTION, "Content-Range", crange,
                       "the range is outside the %llu-byte file", (unsigned long long)size);
    }
    uint64_t len = rr == SRV_RANGE_OK ? last - first + 1 : size;
    struct MHD_Response *resp =
        MHD_create_response_from_fd_at_offset64(len, fd, rr == SRV_RANGE_OK ? first : 0);
    if (!resp) {
        close(fd);
        return problem(r, 500, ADX_E_NOMEM, NULL, NULL, "out of memory");
    }
    MHD_add_response_header(resp, "Content-Type", adx_format_content_type(j->format));
    MHD_add_response_header(resp, "Content-Disposition", disp);
    MHD_add_response_header(resp, "ETag", etag);
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    MHD_add_response_header(resp, "Cache-Control", "private, no-cache");
    char loc[700];
    snprintf(loc, sizeof loc, "%s/v1/exports/%s", r->base, j->id);
    MHD_add_response_header(resp, "Content-Location", loc);
    if (strcmp(r->method, "HEAD") != 0) r->bytes_out += len;
    if (rr == SRV_RANGE_OK) {
        snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)first,
                 (unsigned long long)last, (unsigned long long)size);
        MHD_add_response_header(resp, "Content-Range", crange);
        return respond(r, 206, resp);
    }
    return respond(r, 200, resp);
}

static enum MHD_Result send_job_accepted(srv_req *r, srv_job *j)
{
    json_t *o = srv_job_json(j, r->base);
    struct MHD_Response *resp = json_resp(r, o, "application/json");
    if (resp) {
        char loc[700];
        snprintf(loc, sizeof loc, "%s/v1/exports/%s", r->base, j->id);
        MHD_add_response_header(resp, "Location", loc);
    }
    return respond(r, 202, resp);
}

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
        send_problem_obj(r, p, status, NULL, NULL);
    } else {
        send_job_accepted(r, j);
    }
}

static void waiter_detach(srv_req *r)
{
    srv_job *j = r->wait_job;
    if (!j) return;
    for (srv_req **pp = &j->waiters; *pp; pp = &(*pp)->wnext)
        if (*pp == r) {
            *pp = r->wnext;
            break;
        }
    r->wnext = NULL;
    r->wait_job = NULL;
}

void srv_http_job_done(srv_job *j)
{
    while (j->waiters) {
        srv_req *r = j->waiters;
        waiter_detach(r);
        answer_wait(r, j);
    }
}

void srv_http_tick(int64_t now)
{
    srv_req *next;
    for (srv_req *r = suspended_head; r; r = next) {
        next = r->snext;
        srv_job *j = r->wait_job;
        if (!j) continue;
        /* Shutdown ends waits on jobs that will not run before exit. */
        bool stop = srv_g->shutting_down && j->state == SRV_JOB_QUEUED;
        if (now >= r->wait_deadline || stop) {
            waiter_detach(r);
            answer_wait(r, j);
        }
    }
}

static void validated(srv_validate *v)
{
    srv_req *r = v->ud;
    r->val = NULL;
    if (!v->job) {
        if (v->err.status >= 500 || v->err.type == ADX_E_IO || v->err.type == ADX_E_INTERNAL) {
            srv_log(
                "error", "request could not be stored",
                srv_log_cause(json_pack("{s:s, s:s}", "request_id", r->rid, "error", v->err.detail),
                              &v->err));
            int st = v->err.status >= 500 ? v->err.status : 500;
            problem(r, st, v->err.type, st == 503 ? "Retry-After" : NULL, RETRY_AFTER,
                    "the request could not be stored; see the daemon log (request %s)", r->rid);
        } else {
            send_problem_err(r, &v->err);
        }
        free(v->options);
        free(v);
        return;
    }
    srv_job *j = v->job;
    snprintf(j->rid, sizeof j->rid, "%s", r->rid);
    srv_job_link(j);
    srv_job_enqueue(j);
    srv_log("info", "job accepted",
            json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s, s:f, s:f}", "job_id", j->id, "request_id",
                      r->rid, "format", adx_format_name(j->format), "filename", j->filename,
                      "dataset", j->dataset, "input", j->input == SRV_IN_H5AD ? "h5ad" : "request",
                      "load_s", v->load_s, "store_s", v->store_s));
    free(v->options);
    free(v);
    srv_jobs_dispatch();
    if (r->wait_s > 0 && !srv_job_terminal(j->state)) {
        r->wait_job = j;
        r->wait_deadline = srv_now_ms() + (int64_t)r->wait_s * 1000;
        r->wnext = j->waiters;
        j->waiters = r;
        return; /* stays suspended */
    }
    if (r->wait_s > 0)
        answer_wait(r, j);
    else
        send_job_accepted(r, j);
}

/* The media type of a Content-Type value, parameters ignored. */
static bool content_type_is(const char *ct, const char *type)
{
    if (!ct) return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    return n == strlen(type) && !strncasecmp(ct, type, n);
}

static bool json_content_type(const char *ct)
{
    /* curl --data-binary @- without -H still means JSON here */
    return !ct || content_type_is(ct, "application/json");
}

/* A Content-Length over max_body_bytes: the 413 goes out before any byte
 * of the body is read. */
static bool body_too_big(srv_req *r, enum MHD_Result *rc)
{
    const char *cl = header(r, "Content-Length");
    uint64_t max = srv_g->cfg.limits.max_body_bytes;
    if (!cl) return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    if (errno || *end != '\0' || n <= max) return false;
    adx_err e;
    adx_err_init(&e);
    adx_err_set(&e, ADX_E_LIMIT, "", "the body is %llu bytes; max_body_bytes is %llu", n,
                (unsigned long long)max);
    *rc = send_problem_err(r, &e);
    return true;
}

/* The temp file in the spool the body streams into. */
static enum MHD_Result upload_open(srv_req *r)
{
    /* A job's upload is named after the job; a dataset's gets a fresh id. */
    char name[SRV_ID_LEN + 1];
    if (r->job_id[0])
        memcpy(name, r->job_id, sizeof name);
    else
        srv_new_id(name);
    if (snprintf(r->upload, sizeof r->upload, "%s/%s.upload", srv_g->tmp_dir, name) >=
        (int)sizeof r->upload)
        r->fd = -1;
    else
        r->fd = open(r->upload, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (r->fd < 0) {
        r->upload[0] = '\0';
        srv_log("error", "cannot create upload file",
                json_pack("{s:s, s:s}", "request_id", r->rid, "error", strerror(errno)));
        return problem(r, 503, ADX_E_IO, "Retry-After", RETRY_AFTER,
                       "the spool is not writable; see the daemon log (request %s)", r->rid);
    }
    return MHD_YES;
}

/* ---- query options of an h5ad POST ---------------------------------------- */

typedef struct qopts {
    json_t *o, *inc, *cat;
    adx_err *err;
} qopts;

/* Request bytes (query values, a dataset name) echoed in a problem:
 * printable ASCII only, so the body stays valid UTF-8 (and a pointer stays
 * one segment) whatever was sent. */
static void printable(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++)
        out[n++] = *in >= 0x20 && *in < 0x7f && *in != '/' && *in != '~' ? *in : '?';
    out[n] = '\0';
}

static int qfail(qopts *q, const char *key, const char *fmt, const char *v)
{
    char ptr[80], k[64], shown[104];
    printable(key, k, sizeof k);
    printable(v, shown, sizeof shown);
    snprintf(ptr, sizeof ptr, "/%s", k);
    adx_err_set(q->err, ADX_E_BAD_OPTION, ptr, fmt, k, shown);
    return -1;
}

/* include=a,b: commas inside [...] belong to the glob. */
static int split_include(qopts *q, const char *v)
{
    const char *p = v;
    for (;;) {
        const char *s = p;
        int depth = 0;
        while (*p && (*p != ',' || depth)) {
            if (*p == '[') depth = 1;
            if (*p == ']') depth = 0;
            p++;
        }
        json_t *str = json_stringn(s, (size_t)(p - s));
        if (!str) return qfail(q, "include", "query parameter %s is not valid UTF-8 (%s)", v);
        if (json_array_append_new(q->inc, str) < 0)
            return adx_err_set(q->err, ADX_E_NOMEM, "", "out of memory");
        if (!*p) return 0;
        p++;
    }
}

static enum MHD_Result q_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
    qopts *q = cls;
    if (adx_err_failed(q->err)) return MHD_NO;
    const char *v = value ? value : "";
    int rc = 0;
    if (!strcmp(key, "wait")) {
        return MHD_YES;
    } else if (!strcmp(key, "include")) {
        rc = split_include(q, v);
    } else if (!strcmp(key, "categorical_columns")) {
        json_t *str = json_string(v);
        if (!str)
            rc = qfail(q, key, "query parameter %s is not valid UTF-8 (%s)", v);
        else if (json_array_append_new(q->cat, str) < 0)
            rc = adx_err_set(q->err, ADX_E_NOMEM, "", "out of memory");
    } else if (json_object_get(q->o, key)) {
        rc = qfail(q, key, "query parameter %s is given more than once (%.100s)", v);
    } else if (!strcmp(key, "format") || !strcmp(key, "filename") || !strcmp(key, "compression")) {
        /* compression=null reads as JSON null: no compression */
        json_t *x =
            !strcmp(key, "compression") && !strcmp(v, "null") ? json_null() : json_string(v);
        if (!x) rc = qfail(q, key, "query parameter %s is not valid UTF-8 (%.100s)", v);
        if (x) json_object_set_new(q->o, key, x);
    } else if (!strcmp(key, "compression_opts")) {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || errno)
            rc = qfail(q, key, "query parameter %s must be an integer, not '%.100s'", v);
        else
            json_object_set_new(q->o, key, json_integer(n));
    } else if (!strcmp(key, "strings_to_categoricals")) {
        if (!strcmp(v, "true") || !strcmp(v, "1"))
            json_object_set_new(q->o, key, json_true());
        else if (!strcmp(v, "false") || !strcmp(v, "0"))
            json_object_set_new(q->o, key, json_false());
        else
            rc = qfail(q, key, "query parameter %s must be true or false, not '%.100s'", v);
    } else {
        rc = qfail(q, key,
                   "unknown query parameter '%s' (the options of an h5ad body are format, "
                   "filename, compression, compression_opts, include, categorical_columns, "
                   "strings_to_categoricals; plus wait)%s",
                   "");
    }
    return rc < 0 ? MHD_NO : MHD_YES;
}

/* The options document of an h5ad POST, from its query string, checked by
 * req_parse now so that a bad option is a 400 before the body is read.
 * Pointers are those of the document ("/include/1"); messages name the
 * query parameter. Returns the compact text (malloc'd) or NULL with `err`. */
static char *query_options(srv_req *r, adx_err *err)
{
    qopts q = {json_object(), json_array(), json_array(), err};
    char *text = NULL;
    if (!q.o || !q.inc || !q.cat) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        goto out;
    }
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, q_iter, &q);
    if (adx_err_failed(err)) goto out;
    if (json_array_size(q.inc)) json_object_set(q.o, "include", q.inc);
    if (json_array_size(q.cat)) json_object_set(q.o, "categorical_columns", q.cat);
    /* The same check the job makes on them (pipe_load_input), so that a bad
     * option is a 400 before the body is read. */
    adx_request rq;
    if (req_parse_mode(q.o, REQ_OPTIONS, &rq, err) < 0) {
        char param[64] = "";
        const char *ptr = err->n_items ? err->items[0].pointer : "";
        snprintf(param, sizeof param, "%.*s", (int)strcspn(ptr + (*ptr == '/'), "/"),
                 ptr + (*ptr == '/'));
        if (param[0]) {
            char d[ADX_ERR_MSG_MAX + 96];
            snprintf(d, sizeof d, "query parameter %s: %s", param, err->detail);
            snprintf(err->detail, sizeof err->detail, "%.*s", (int)sizeof err->detail - 1, d);
        }
        goto out;
    }
    req_free(&rq);
    text = json_dumps(q.o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
out:
    json_decref(q.o);
    json_decref(q.inc);
    json_decref(q.cat);
    return text;
}

static enum MHD_Result post_begin(srv_req *r)
{
    const char *ct = header(r, "Content-Type");
    if (json_content_type(ct)) {
        r->input = SRV_IN_REQUEST;
    } else if (content_type_is(ct, "application/x-hdf5")) {
        r->input = SRV_IN_H5AD;
    } else {
        return problem(r, 415, ADX_E_UNSUPPORTED, "Accept-Post",
                       "application/json, application/x-hdf5",
                       "POST /v1/exports takes application/json (a request document) or "
                       "application/x-hdf5 (an h5ad file, options in the query string), not "
                       "%.100s",
                       ct);
    }
    enum MHD_Result rc;
    if (body_too_big(r, &rc)) return rc;
    if (srv_queue_full())
        return problem(r, 429, ADX_E_LIMIT, "Retry-After", RETRY_AFTER,
                       "the queue holds %u jobs (queue_max); retry later", srv_g->cfg.queue_max);
    const char *w = query(r, "wait");
    if (w) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(w, &end, 10);
        if (errno || *end || end == w || *w == '-')
            return problem(r, 400, ADX_E_BAD_OPTION, NULL, NULL,
                           "wait must be a whole number of seconds");
        r->wait_s = (unsigned)(s > srv_g->cfg.wait_max ? srv_g->cfg.wait_max : s);
    }
    if (r->input == SRV_IN_H5AD) {
        adx_err e;
        adx_err_init(&e);
        r->options = query_options(r, &e);
        if (!r->options) return send_problem_err(r, &e);
    }
    srv_new_id(r->job_id);
    return upload_open(r);
}

static void upload_discard(srv_req *r)
{
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    if (r->upload[0]) unlink(r->upload);
    r->upload[0] = '\0';
}

static enum MHD_Result post_chunk(srv_req *r, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    r->bytes_in += n;
    if (r->too_big) {
        /* Swallow a bounded tail so the 413 can still be sent at the end;
         * a client that keeps streaming past that is cut off. */
        return r->bytes_in - srv_g->cfg.limits.max_body_bytes > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (r->bytes_in > srv_g->cfg.limits.max_body_bytes) {
        /* Without a Content-Length (chunked) the limit shows up mid-body,
         * where libmicrohttpd 0.9.75 cannot queue a response yet: stop
         * writing, and answer 413 when the body ends (post_end). */
        r->too_big = true;
        upload_discard(r);
        return MHD_YES;
    }
    while (n) {
        ssize_t wr = write(r->fd, data, n);
        if (wr < 0 && errno == EINTR) continue;
        if (wr < 0) {
            srv_log("error", "spool write failed",
                    json_pack("{s:s, s:s}", "request_id", r->rid, "error", strerror(errno)));
            upload_discard(r);
            r->too_big = true; /* swallow the rest; the final call answers 503 */
            r->status = -1;
            return MHD_YES;
        }
        data += wr;
        n -= (size_t)wr;
    }
    return MHD_YES;
}

static enum MHD_Result put_end(srv_req *r);

static enum MHD_Result post_end(srv_req *r)
{
    if (r->too_big) {
        if (r->status == -1)
            return problem(r, 503, ADX_E_IO, "Retry-After", RETRY_AFTER,
                           "the spool is not writable; see the daemon log (request %s)", r->rid);
        adx_err e;
        adx_err_init(&e);
        adx_err_set(&e, ADX_E_LIMIT, "", "the body exceeds max_body_bytes (%llu)",
                    (unsigned long long)srv_g->cfg.limits.max_body_bytes);
        return send_problem_err(r, &e);
    }
    close(r->fd);
    r->fd = -1;
    if (r->route == SRV_RT_DATASET) return put_end(r);
    srv_validate *v = calloc(1, sizeof *v);
    if (!v) {
        upload_discard(r);
        return problem(r, 503, ADX_E_NOMEM, "Retry-After", RETRY_AFTER, "out of memory");
    }
    snprintf(v->upload, sizeof v->upload, "%s", r->upload);
    r->upload[0] = '\0'; /* the worker owns the file now */
    memcpy(v->id, r->job_id, sizeof v->id);
    v->created_ms = srv_now_ms();
    v->lim = srv_g->cfg.limits;
    v->keep_model = srv_g->n_running + srv_g->n_queued + srv_g->n_validating < srv_g->cfg.workers;
    v->input = r->input;
    v->options = r->options; /* the loop does not touch it while the worker runs */
    r->options = NULL;
    v->done = validated;
    v->ud = r;
    if (srv_validate_start(v) < 0) {
        unlink(v->upload);
        free(v->options);
        free(v);
        return problem(r, 503, ADX_E_NOMEM, "Retry-After", RETRY_AFTER,
                       "cannot schedule the request");
    }
    r->val = v;
    suspend(r);
    return MHD_YES;
}

/* ---- stored datasets ---------------------------------------------------------- */

/* A dataset error as a problem: name errors point at the path segment
 * ("/name"), a pinned dataset is a 409 to retry (a Polis folder under a PUT
 * is a 409 without Retry-After), and file-system failures
 * keep their details in the log. */
static enum MHD_Result ds_problem(srv_req *r, adx_err *e)
{
    for (int i = 0; i < e->n_items; i++)
        if (!strcmp(e->items[i].pointer, "/dataset"))
            snprintf(e->items[i].pointer, sizeof e->items[i].pointer, "/name");
    if (e->type == ADX_E_CONFLICT) {
        /* Only a pin goes away by itself; a Polis folder stays in the way. */
        bool retry = ds_pinned(srv_g->ds, r->ds_name);
        return send_problem_obj(r, adx_err_problem(e, r->path, PROBLEM_BASE), 409,
                                retry ? "Retry-After" : NULL, retry ? RETRY_AFTER : NULL);
    }
    if (e->status >= 500 || e->type == ADX_E_IO || e->type == ADX_E_INTERNAL ||
        e->type == ADX_E_NOMEM) {
        srv_log("error", "dataset operation failed",
                srv_log_cause(json_pack("{s:s, s:s, s:s}", "request_id", r->rid, "path", r->path,
                                        "error", e->detail),
                              e));
        int st = e->type == ADX_E_NOMEM ? 503 : 500;
        return problem(r, st, e->type, st == 503 ? "Retry-After" : NULL, RETRY_AFTER,
                       "the dataset operation failed on the server; see the daemon log "
                       "(request %s)",
                       r->rid);
    }
    return send_problem_err(r, e);
}

static void ds_done(srv_ds_work *dw)
{
    srv_req *r = dw->ud;
    r->dw = NULL;
    double secs = dw->seconds;
    if (!dw->result) {
        ds_problem(r, &dw->err);
    } else if (dw->op == SRV_DS_DELETE) {
        json_decref(dw->result);
        srv_log("info", "dataset deleted",
                json_pack("{s:s, s:s}", "dataset", dw->name, "request_id", r->rid));
        respond(r, 204, MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT));
    } else if (dw->op == SRV_DS_PUT) {
        srv_log("info", dw->created ? "dataset created" : "dataset replaced",
                json_pack("{s:s, s:s, s:f}", "dataset", dw->name, "request_id", r->rid,
                          "duration_s", secs));
        struct MHD_Response *resp = json_resp(r, dw->result, "application/json");
        if (resp && dw->created) {
            char loc[800];
            snprintf(loc, sizeof loc, "%s/v1/datasets/%s", r->base, dw->name);
            MHD_add_response_header(resp, "Location", loc);
        }
        respond(r, dw->created ? 201 : 200, resp);
    } else {
        send_json(r, 200, dw->result);
    }
    free(dw);
}

/* Every dataset route reads or writes files: on the pool, the connection
 * suspended until the answer comes back. */
static enum MHD_Result ds_begin(srv_req *r, srv_ds_op op)
{
    srv_ds_work *dw = calloc(1, sizeof *dw);
    if (!dw) {
        if (op == SRV_DS_PUT) upload_discard(r);
        return problem(r, 503, ADX_E_NOMEM, "Retry-After", RETRY_AFTER, "out of memory");
    }
    dw->op = op;
    /* only valid names (at most ADX_DATASET_NAME_MAX) get here */
    snprintf(dw->name, sizeof dw->name, "%.*s", ADX_DATASET_NAME_MAX, r->ds_name);
    if (op == SRV_DS_PUT) {
        snprintf(dw->upload, sizeof dw->upload, "%s", r->upload);
        r->upload[0] = '\0'; /* the worker owns the file now */
        dw->input = r->ds_input;
    }
    dw->done = ds_done;
    dw->ud = r;
    if (srv_ds_start(dw) < 0) {
        if (op == SRV_DS_PUT) unlink(dw->upload);
        free(dw);
        return problem(r, 503, ADX_E_NOMEM, "Retry-After", RETRY_AFTER,
                       "cannot schedule the request");
    }
    r->dw = dw;
    suspend(r);
    return MHD_YES;
}

static enum MHD_Result ds_pinned_problem(srv_req *r)
{
    return problem(r, 409, ADX_E_CONFLICT, "Retry-After", RETRY_AFTER,
                   "dataset %s is in use by a queued or running export; retry once it finished",
                   r->ds_name);
}

static enum MHD_Result put_begin(srv_req *r)
{
    const char *ct = header(r, "Content-Type");
    if (content_type_is(ct, "application/x-hdf5")) {
        r->ds_input = DS_INPUT_H5AD;
    } else if (content_type_is(ct, "application/json")) {
        r->ds_input = DS_INPUT_JSON;
    } else {
        return problem(r, 415, ADX_E_UNSUPPORTED, "Accept-Put",
                       "application/x-hdf5, application/json",
                       "PUT /v1/datasets/{name} takes application/x-hdf5 (an h5ad file) or "
                       "application/json (an AnnData object), not %.100s",
                       ct ? ct : "a body without Content-Type");
    }
    enum MHD_Result rc;
    if (body_too_big(r, &rc)) return rc;
    /* Refused before the body is read; ds_put checks again at the end. */
    if (ds_pinned(srv_g->ds, r->ds_name)) return ds_pinned_problem(r);
    return upload_open(r);
}

static enum MHD_Result put_end(srv_req *r)
{
    return ds_begin(r, SRV_DS_PUT);
}

static enum MHD_Result h_dataset(srv_req *r, const char *method)
{
    if (!ds_name_valid(r->ds_name)) {
        char shown[61];
        printable(r->ds_name, shown, sizeof shown);
        adx_err e;
        adx_err_init(&e);
        adx_err_set(&e, ADX_E_BAD_OPTION, "/name",
                    "dataset names are 1 to %d characters of A-Z a-z 0-9 . _ - and do not start "
                    "with '.'; '%s%s' is not one",
                    ADX_DATASET_NAME_MAX, shown, strlen(r->ds_name) > 60 ? "..." : "");
        return send_problem_err(r, &e);
    }
    if (!strcmp(method, "PUT")) return put_begin(r);
    if (!strcmp(method, "DELETE")) {
        if (ds_pinned(srv_g->ds, r->ds_name)) return ds_pinned_problem(r);
        return ds_begin(r, SRV_DS_DELETE);
    }
    return ds_begin(r, SRV_DS_SUMMARY);
}

static enum MHD_Result dispatch(srv_req *r, const char *method)
{
    int rt = r->route;
    if (rt == SRV_RT_OTHER)
        return problem(r, 404, ADX_E_NOT_FOUND, NULL, NULL, "no route %.200s", r->path);
    if (!method_allowed(rt, method))
        return problem(r, 405, ADX_E_CONFLICT, "Allow", allowed_methods(rt),
                       "%s is not allowed on %s", method, srv_route_name(rt));
    if (!strcmp(method, "OPTIONS")) return h_preflight(r);
    if (rt == SRV_RT_HEALTHZ) return h_healthz(r);
    if (rt == SRV_RT_READYZ) return h_readyz(r);
    bool had_token;
    if (!authorized(r, &had_token))
        return problem(r, 401, ADX_E_CONFLICT, "WWW-Authenticate",
                       had_token ? "Bearer realm=\"anndata-exportd\", error=\"invalid_token\""
                                 : "Bearer realm=\"anndata-exportd\"",
                       had_token ? "the bearer token is not valid" : "a bearer token is required");
    if (srv_g->shutting_down)
        return problem(r, 503, ADX_E_CONFLICT, "Retry-After", RETRY_AFTER,
                       "the server is shutting down");
    switch (rt) {
    case SRV_RT_METRICS:
        return h_metrics(r);
    case SRV_RT_OPENAPI:
        return h_openapi(r);
    case SRV_RT_VERSION:
        return h_version(r);
    case SRV_RT_EXPORTS:
        return !strcmp(method, "POST") ? post_begin(r) : h_list(r);
    case SRV_RT_DATASETS:
        return ds_begin(r, SRV_DS_LIST);
    case SRV_RT_DATASET:
        return h_dataset(r, method);
    default:
        break;
    }
    srv_job *j = srv_id_valid(r->job_id) ? srv_job_find(r->job_id) : NULL;
    if (!j) return problem(r, 404, ADX_E_NOT_FOUND, NULL, NULL, "no job %.40s", r->job_id);
    if (rt == SRV_RT_EXPORT) return !strcmp(method, "DELETE") ? h_delete(r, j) : h_get_job(r, j);
    return serve_file(r, j, false);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    srv_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        r->conn = conn;
        r->fd = -1;
        r->t0 = srv_mono_ns();
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        set_request_id(r);
        set_base(r);
        const char *origin = header(r, "Origin");
        if (origin && strlen(origin) < sizeof r->origin &&
            srv_config_origin_allowed(&srv_g->cfg, origin)) {
            snprintf(r->origin, sizeof r->origin, "%s", origin);
            r->cors = true;
        }
        char id[SRV_ID_LEN + 1];
        r->route = route_of(url, id, r->ds_name, sizeof r->ds_name);
        memcpy(r->job_id, id, sizeof id);
        /* Only uploads (an export POST, a dataset PUT) are answered before
         * their body (to refuse them early); others wait for the end of the
         * request so that MHD can keep the connection alive. */
        if (!strcmp(method, "POST") || (!strcmp(method, "PUT") && r->route == SRV_RT_DATASET)) {
            r->is_upload = r->route == SRV_RT_EXPORTS || r->route == SRV_RT_DATASET;
            return dispatch(r, method);
        }
        return MHD_YES;
    }
    if (r->pending) {
        struct MHD_Response *resp = r->pending;
        r->pending = NULL;
        enum MHD_Result rc = MHD_queue_response(conn, (unsigned)r->pending_status, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    if (r->status) {
        /* Answered on the first call; drain whatever body still arrives. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (r->is_upload) return post_chunk(r, upload_data, upload_data_size);
        *upload_data_size = 0; /* bodies of other requests mean nothing here */
        return MHD_YES;
    }
    if (r->body_done) return MHD_YES;
    r->body_done = true;
    return r->is_upload ? post_end(r) : dispatch(r, r->method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    upload_discard(r);
    free(r->options);
    if (r->pending) MHD_destroy_response(r->pending);
    double dur = (double)(srv_mono_ns() - r->t0) / 1e9;
    int status = r->status > 0 ? r->status : 499; /* client went away before an answer */
    srv_metrics_request(r->route, status, dur, r->bytes_in, r->bytes_out);
    bool quiet =
        r->route == SRV_RT_HEALTHZ || r->route == SRV_RT_READYZ || r->route == SRV_RT_METRICS;
    if (!quiet || status >= 400) {
        json_t *f =
            json_pack("{s:s, s:s, s:s, s:i, s:f, s:I, s:I}", "request_id", r->rid, "method",
                      r->method, "path", r->path, "status", status, "duration_ms", dur * 1000.0,
                      "bytes_in", (json_int_t)r->bytes_in, "bytes_out", (json_int_t)r->bytes_out);
        if (f && r->job_id[0] && srv_id_valid(r->job_id))
            json_object_set_new(f, "job_id", json_string(r->job_id));
        if (f && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            json_object_set_new(f, "terminated", json_integer((json_int_t)toe));
        srv_log(status >= 500 ? "error" : "info", "request", f);
    }
    free(r);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    srv_log("warn", "libmicrohttpd", json_pack("{s:s}", "detail", msg));
}

int srv_http_start(adx_err *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", srv_g->cfg.listen_port);
    int gai = getaddrinfo(srv_g->cfg.listen_host, port, &hints, &ai);
    if (gai != 0 || !ai)
        return adx_err_set(err, ADX_E_BAD_OPTION, "/listen", "cannot resolve %s: %s",
                           srv_g->cfg.listen_host, gai_strerror(gai));
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    int fam = ai->ai_family;
    freeaddrinfo(ai);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (fam == AF_INET6) flags |= MHD_USE_IPv6;
    srv_g->mhd = MHD_start_daemon(
        flags, srv_g->cfg.listen_port, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_logger, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)srv_g->cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv_g->cfg.connection_timeout,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!srv_g->mhd)
        return adx_err_set(err, ADX_E_IO, "/listen", "cannot listen on %s:%u (in use?)",
                           srv_g->cfg.listen_host, srv_g->cfg.listen_port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv_g->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(srv_g->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (!di || uv_poll_init(srv_g->loop, &srv_g->mhd_poll, di->epoll_fd) != 0 ||
        uv_poll_start(&srv_g->mhd_poll, UV_READABLE, on_mhd_poll) != 0) {
        MHD_stop_daemon(srv_g->mhd);
        srv_g->mhd = NULL;
        return adx_err_set(err, ADX_E_INTERNAL, "", "cannot watch the libmicrohttpd epoll fd");
    }
    uv_timer_init(srv_g->loop, &srv_g->mhd_timer);
    srv_log("info", "listening",
            json_pack("{s:s, s:i, s:i, s:s}", "host", srv_g->cfg.listen_host, "port",
                      pi ? (int)pi->port : (int)srv_g->cfg.listen_port, "workers",
                      (int)srv_g->cfg.workers, "version", ADX_VERSION));
    srv_http_kick();
    return 0;
}

void srv_http_quiesce(void)
{
    if (!srv_g->mhd) return;
    MHD_socket fd = MHD_quiesce_daemon(srv_g->mhd);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void srv_http_stop(void)
{
    /* Suspended connections would keep MHD_stop_daemon from closing them. */
    while (suspended_head) {
        srv_req *r = suspended_head;
        waiter_detach(r);
        problem(r, 503, ADX_E_CONFLICT, "Retry-After", RETRY_AFTER, "the server is shutting down");
    }
    /* Stop watching the epoll fd before MHD closes it. */
    uv_poll_stop(&srv_g->mhd_poll);
    uv_close((uv_handle_t *)&srv_g->mhd_poll, NULL);
    if (srv_g->mhd) {
        MHD_run(srv_g->mhd);
        MHD_stop_daemon(srv_g->mhd);
        srv_g->mhd = NULL;
    }
    uv_timer_stop(&srv_g->mhd_timer);
    uv_close((uv_handle_t *)&srv_g->mhd_timer, NULL);
}
