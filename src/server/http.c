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
    uint64_t t0;
    int status;
    uint64_t bytes_in, bytes_out;
    /* POST body spooling */
    int fd;
    char upload[PATH_MAX + 32];
    bool too_big;
    bool body_done;
    bool is_upload; /* POST /v1/exports past its first checks */
    unsigned wait_s;
    srv_validate *val;
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
    adx_err_vset(&e, t, "", fmt, ap);
    va_end(ap);
    adx_err_set_status(&e, status);
    json_t *p = adx_err_problem(&e, r->path, PROBLEM_BASE);
    /* Statuses without an adx_errtype of their own get their own slug. */
    const char *slug = NULL, *title = NULL;
    switch (status) {
    case 401:
        slug = "unauthorized", title = "Unauthorized";
        break;
    case 403:
        slug = "forbidden", title = "Forbidden";
        break;
    case 405:
        slug = "method-not-allowed", title = "Method not allowed";
        break;
    case 410:
        slug = "gone", title = "Result expired";
        break;
    case 416:
        slug = "range-not-satisfiable", title = "Range not satisfiable";
        break;
    case 429:
        slug = "queue-full", title = "Too many jobs";
        break;
    case 503:
        slug = "unavailable", title = "Service unavailable";
        break;
    }
    if (p && slug) {
        char type[128];
        snprintf(type, sizeof type, PROBLEM_BASE "%s", slug);
        json_object_set_new(p, "type", json_string(type));
        json_object_set_new(p, "title", json_string(title));
    }
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

static int route_of(const char *url, char id[SRV_ID_LEN + 1])
{
    id[0] = '\0';
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
    default:
        return "GET, HEAD, OPTIONS";
    }
}

static bool method_allowed(int rt, const char *m)
{
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS")) return true;
    if (rt == SRV_RT_EXPORTS) return !strcmp(m, "POST");
    if (rt == SRV_RT_EXPORT) return !strcmp(m, "DELETE");
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
            srv_log("error", "request could not be stored",
                    json_pack("{s:s, s:s}", "request_id", r->rid, "error", v->err.detail));
            int st = v->err.status >= 500 ? v->err.status : 500;
            problem(r, st, v->err.type, st == 503 ? "Retry-After" : NULL, RETRY_AFTER,
                    "the request could not be stored; see the daemon log (request %s)", r->rid);
        } else {
            send_problem_err(r, &v->err);
        }
        free(v);
        return;
    }
    srv_job *j = v->job;
    snprintf(j->rid, sizeof j->rid, "%s", r->rid);
    srv_job_link(j);
    srv_job_enqueue(j);
    srv_log("info", "job accepted",
            json_pack("{s:s, s:s, s:s, s:s?, s:f, s:f}", "job_id", j->id, "request_id", r->rid,
                      "format", adx_format_name(j->format), "filename", j->filename, "load_s",
                      v->load_s, "store_s", v->store_s));
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

static bool json_content_type(const char *ct)
{
    if (!ct) return true; /* curl --data-binary @- without -H still means JSON here */
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    return (n == 16 && !strncasecmp(ct, "application/json", 16));
}

static enum MHD_Result post_begin(srv_req *r)
{
    const char *ct = header(r, "Content-Type");
    if (!json_content_type(ct))
        return problem(r, 415, ADX_E_UNSUPPORTED, "Accept-Post", "application/json",
                       "POST /v1/exports takes application/json, not %.100s", ct);
    const char *cl = header(r, "Content-Length");
    uint64_t max = srv_g->cfg.limits.max_body_bytes;
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (!errno && *end == '\0' && n > max) {
            adx_err e;
            adx_err_init(&e);
            adx_err_set(&e, ADX_E_LIMIT, "", "the body is %llu bytes; max_body_bytes is %llu", n,
                        (unsigned long long)max);
            return send_problem_err(r, &e);
        }
    }
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
    srv_new_id(r->job_id);
    if (snprintf(r->upload, sizeof r->upload, "%s/%s.upload", srv_g->tmp_dir, r->job_id) >=
        (int)sizeof r->upload)
        r->fd = -1;
    else
        r->fd = open(r->upload, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (r->fd < 0) {
        srv_log("error", "cannot create upload file",
                json_pack("{s:s, s:s}", "request_id", r->rid, "error", strerror(errno)));
        return problem(r, 503, ADX_E_IO, "Retry-After", RETRY_AFTER,
                       "the spool is not writable; see the daemon log (request %s)", r->rid);
    }
    return MHD_YES;
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
    v->done = validated;
    v->ud = r;
    if (srv_validate_start(v) < 0) {
        unlink(v->upload);
        free(v);
        return problem(r, 503, ADX_E_NOMEM, "Retry-After", RETRY_AFTER,
                       "cannot schedule the request");
    }
    r->val = v;
    suspend(r);
    return MHD_YES;
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
        r->route = route_of(url, id);
        memcpy(r->job_id, id, sizeof id);
        /* Only an export POST is answered before its body (to refuse it
         * early); others wait for the end of the request so that MHD can
         * keep the connection alive. */
        if (!strcmp(method, "POST")) {
            r->is_upload = r->route == SRV_RT_EXPORTS;
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
