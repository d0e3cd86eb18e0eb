/* The HTTP core: libmicrohttpd driven by the libuv loop, the routing table
 * of handlers, authentication, CORS, request ids, problem responses and
 * the access log. Handlers live in h_*.c.
 *
 * MHD runs in external mode with its epoll fd watched by a uv_poll_t and its
 * timeout by a uv_timer_t; MHD_run is called after each event, on the loop
 * thread, so handlers may touch the job table directly. Anything slow
 * (parsing a body, writing a file) goes to the pool and the connection is
 * suspended until the completion comes back to the loop. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adx_config_build.h"

/* The libmicrohttpd table of mhd_dl.h (filled by srv_main's dynlib_load). */
#ifdef ADX_LAZY_MHD
DYNLIB_DEFINE(srv_mhd, SRV_MHD_SYMS, ADX_LAZY_MHD)
#else
DYNLIB_DEFINE(srv_mhd, SRV_MHD_SYMS, NULL)
#endif

#define PROBLEM_BASE "https://anndata-exportd.invalid/errors/"

/* Which handler answers a route and method. Uploads get their handler at
 * the end of the headers (to refuse a body early); others at the end of
 * the request, so that MHD can keep the connection alive. HEAD is GET. */
static const struct {
    srv_route rt;
    srv_method m;
    srv_handler fn;
} handlers[] = {
    {SRV_RT_HEALTHZ, SRV_M_GET, srv_h_healthz},
    {SRV_RT_READYZ, SRV_M_GET, srv_h_readyz},
    {SRV_RT_METRICS, SRV_M_GET, srv_h_metrics},
    {SRV_RT_OPENAPI, SRV_M_GET, srv_h_openapi},
    {SRV_RT_VERSION, SRV_M_GET, srv_h_version},
    {SRV_RT_EXPORTS, SRV_M_GET, srv_h_exports_list},
    {SRV_RT_EXPORTS, SRV_M_POST, srv_h_exports_post},
    {SRV_RT_EXPORT, SRV_M_GET, srv_h_export_get},
    {SRV_RT_EXPORT, SRV_M_DELETE, srv_h_export_delete},
    {SRV_RT_EXPORT_FILE, SRV_M_GET, srv_h_export_file},
    {SRV_RT_DATASETS, SRV_M_GET, srv_h_datasets_list},
    {SRV_RT_DATASET, SRV_M_GET, srv_h_dataset_get},
    {SRV_RT_DATASET, SRV_M_PUT, srv_h_dataset_put},
    {SRV_RT_DATASET, SRV_M_DELETE, srv_h_dataset_delete},
};

static srv_handler handler_of(srv_route rt, srv_method m)
{
    if (m == SRV_M_HEAD) m = SRV_M_GET;
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
        if (handlers[i].rt == rt && handlers[i].m == m) return handlers[i].fn;
    return NULL;
}

/* ---- loop glue ---------------------------------------------------------- */

static void on_mhd_timer(uv_timer_t *t);

static void mhd_step(srv_state *s)
{
    if (!s->http.mhd) return;
    MHD_run(s->http.mhd);
    MHD_UNSIGNED_LONG_LONG to;
    if (MHD_get_timeout(s->http.mhd, &to) == MHD_YES)
        uv_timer_start(&s->http.timer, on_mhd_timer, to, 0);
    else
        uv_timer_stop(&s->http.timer);
}

static void on_mhd_timer(uv_timer_t *t)
{
    mhd_step(t->data);
}

static void on_mhd_poll(uv_poll_t *p, int status, int events)
{
    mhd_step(p->data);
}

void srv_http_kick(srv_state *s)
{
    uv_timer_start(&s->http.timer, on_mhd_timer, 0, 0);
}

unsigned srv_http_suspended(const srv_state *s)
{
    unsigned n = 0;
    for (srv_req *r = s->http.suspended; r; r = r->snext)
        n++;
    return n;
}

/* ---- request context ------------------------------------------------------ */

const char *srv_req_header(srv_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *srv_req_query(srv_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

void srv_printable(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++)
        out[n++] = *in >= 0x20 && *in < 0x7f && *in != '/' && *in != '~' ? *in : '?';
    out[n] = '\0';
}

void srv_req_suspend(srv_req *r)
{
    if (r->suspended) return;
    MHD_suspend_connection(r->conn);
    r->suspended = true;
    r->sprev = NULL;
    r->snext = r->s->http.suspended;
    if (r->snext) r->snext->sprev = r;
    r->s->http.suspended = r;
}

static void unsuspend_list(srv_req *r);

void srv_req_resume(srv_req *r)
{
    if (!r->suspended) return;
    unsuspend_list(r);
    r->suspended = false;
    MHD_resume_connection(r->conn);
    srv_http_kick(r->s);
}

static void unsuspend_list(srv_req *r)
{
    if (r->sprev)
        r->sprev->snext = r->snext;
    else
        r->s->http.suspended = r->snext;
    if (r->snext) r->snext->sprev = r->sprev;
    r->sprev = r->snext = NULL;
    r->on_tick = NULL;
    r->detach = NULL;
}

static void set_request_id(srv_req *r)
{
    const char *h = srv_req_header(r, "X-Request-ID");
    if (h) {
        size_t n = strlen(h);
        bool ok = n > 0 && n < sizeof r->rid && h[0] != ' ' && h[n - 1] != ' ';
        for (size_t i = 0; ok && i < n; i++)
            ok = h[i] >= 0x20 && h[i] < 0x7f;
        /* Printable ASCII is echoed and logged as it is (the log is JSON);
         * control bytes, other bytes or an over-long id are replaced. */
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

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* libmicrohttpd decodes %XX in place, so a "%00" would end the path there
 * ("/v1/datasets/a%00b" named dataset "a"). It stays the three bytes "%00",
 * which no route, id or dataset name accepts; everything else decodes as
 * libmicrohttpd's own unescaper does. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    for (const char *p = s; *p;) {
        int hi = p[0] == '%' ? hexval(p[1]) : -1, lo = hi >= 0 ? hexval(p[2]) : -1;
        if (lo >= 0 && (hi | lo)) {
            *w++ = (char)(hi * 16 + lo);
            p += 3;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* The bytes a forwarded path prefix may hold, echoed into links. */
static bool token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':';
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

/* Links in answers: absolute behind a trusted proxy that says where the
 * client sees us, else relative. */
static void set_base(srv_req *r)
{
    r->base[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !srv_config_proxy_trusted(&r->s->cfg, ci->client_addr)) return;
    const char *proto = srv_req_header(r, "X-Forwarded-Proto");
    const char *host = srv_req_header(r, "X-Forwarded-Host");
    const char *prefix = srv_req_header(r, "X-Forwarded-Prefix");
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

/* ---- responses ------------------------------------------------------------ */

static void add_common(srv_req *r, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Request-ID", r->rid);
    if (r->cors) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "Content-Disposition, ETag, Location, X-Request-ID, "
                                "Content-Range, Retry-After");
    }
    if (r->s->cfg.cors_origins[0]) MHD_add_response_header(resp, "Vary", "Origin");
}

enum MHD_Result srv_respond(srv_req *r, int status, struct MHD_Response *resp)
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
        srv_http_kick(r->s);
        return MHD_YES;
    }
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result srv_send_empty(srv_req *r, int status)
{
    return srv_respond(r, status, MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT));
}

struct MHD_Response *srv_resp_text(srv_req *r, char *s, size_t len, const char *ctype)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(s);
        return NULL;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    r->bytes_out += len;
    return resp;
}

struct MHD_Response *srv_resp_json(srv_req *r, json_t *o, const char *ctype)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    if (!s) return NULL;
    struct MHD_Response *resp = srv_resp_text(r, s, strlen(s), ctype);
    if (resp) MHD_add_response_header(resp, "Cache-Control", "no-store");
    return resp;
}

enum MHD_Result srv_send_json(srv_req *r, int status, json_t *o)
{
    return srv_respond(r, status, srv_resp_json(r, o, "application/json"));
}

enum MHD_Result srv_send_problem(srv_req *r, json_t *p, int status, const char *h1, const char *v1)
{
    if (p) {
        char path[sizeof r->path * 4 + 1];
        srv_log_text(r->path, path, sizeof path);
        json_object_set_new(p, "instance", json_string(path));
        json_object_set_new(p, "request_id", json_string(r->rid));
        json_object_set_new(p, "status", json_integer(status));
    }
    struct MHD_Response *resp = srv_resp_json(r, p, "application/problem+json");
    if (resp && h1) MHD_add_response_header(resp, h1, v1);
    return srv_respond(r, status, resp);
}

enum MHD_Result srv_send_err(srv_req *r, const adx_err *e, const char *h1, const char *v1)
{
    int status = e->status ? e->status : adx_errtype_status(e->type);
    return srv_send_problem(r, adx_err_problem(e, r->path, PROBLEM_BASE), status, h1, v1);
}

enum MHD_Result srv_problem(srv_req *r, adx_errtype t, const char *h1, const char *v1,
                            const char *fmt, ...)
{
    adx_err e;
    adx_err_init(&e);
    va_list ap;
    va_start(ap, fmt);
    adx_err_vset(&e, t, "", fmt, ap);
    va_end(ap);
    return srv_send_err(r, &e, h1, v1);
}

/* ---- dispatch ------------------------------------------------------------- */

static enum MHD_Result preflight(srv_req *r)
{
    const char *origin = srv_req_header(r, "Origin");
    const char *acrm = srv_req_header(r, "Access-Control-Request-Method");
    if (!origin || !acrm) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (resp) MHD_add_response_header(resp, "Allow", srv_route_allow(r->route));
        return srv_respond(r, 204, resp);
    }
    if (!r->cors)
        return srv_problem(r, ADX_E_FORBIDDEN, NULL, NULL,
                           "origin %.200s is not allowed by cors_origins", origin);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    char age[24];
    snprintf(age, sizeof age, "%u", r->s->cfg.cors_max_age);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", srv_route_allow(r->route));
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type, Content-Encoding, X-Request-ID, Range, "
                            "If-None-Match, If-Range");
    MHD_add_response_header(resp, "Access-Control-Max-Age", age);
    return srv_respond(r, 204, resp);
}

static bool authorized(srv_req *r, bool *had_token)
{
    const srv_state *s = r->s;
    *had_token = false;
    if (!s->n_tokens) return true;
    const char *h = srv_req_header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    const char *t = h + 7;
    while (*t == ' ')
        t++;
    size_t tl = strlen(t);
    *had_token = tl > 0;
    bool ok = false;
    /* No early exit: every configured token is compared. */
    for (size_t i = 0; i < s->n_tokens; i++)
        ok |= srv_token_eq(t, tl, s->tokens[i], strlen(s->tokens[i]));
    return ok;
}

static enum MHD_Result dispatch(srv_req *r)
{
    srv_route rt = r->route;
    char shown[sizeof r->path * 4 + 1];
    if (rt == SRV_RT_OTHER) {
        srv_log_text(r->path, shown, sizeof shown);
        return srv_problem(r, ADX_E_NOT_FOUND, NULL, NULL, "no route %.200s", shown);
    }
    if (!srv_route_allows(rt, r->m)) {
        srv_log_text(r->method, shown, sizeof shown);
        return srv_problem(r, ADX_E_METHOD, "Allow", srv_route_allow(rt), "%s is not allowed on %s",
                           shown, srv_route_name(rt));
    }
    if (r->m == SRV_M_OPTIONS) return preflight(r);
    /* Probes answer without a token, and even while shutting down. */
    if (rt != SRV_RT_HEALTHZ && rt != SRV_RT_READYZ) {
        bool had_token;
        if (!authorized(r, &had_token))
            return srv_problem(
                r, ADX_E_UNAUTHORIZED, "WWW-Authenticate",
                had_token ? "Bearer realm=\"anndata-exportd\", error=\"invalid_token\""
                          : "Bearer realm=\"anndata-exportd\"",
                had_token ? "the bearer token is not valid" : "a bearer token is required");
        if (r->s->shutting_down)
            return srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER,
                               "the server is shutting down");
    }
    srv_handler h = handler_of(rt, r->m);
    if (!h) return srv_problem(r, ADX_E_INTERNAL, NULL, NULL, "no handler");
    return h(r);
}

/* ---- connections and their deadlines ---------------------------------------- */

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    srv_state *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        srv_conn *c = calloc(1, sizeof *c);
        *socket_context = c;
        if (!c) return; /* untracked: only MHD's inactivity timeout applies */
        c->conn = conn;
        c->since_ms = srv_now_ms();
        c->next = s->http.conns;
        if (c->next) c->next->prev = c;
        s->http.conns = c;
        return;
    }
    srv_conn *c = *socket_context;
    *socket_context = NULL;
    if (!c) return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->http.conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
}

void srv_conn_phase_set(srv_req *r, srv_conn_phase p)
{
    if (!r->c) return;
    r->c->phase = p;
    r->c->since_ms = srv_now_ms();
}

/* Connections past their deadline are shut down: libmicrohttpd then sees
 * the end of the stream and closes them on its next run. Before a request
 * line is complete no HTTP answer is possible, so closing is the refusal. */
static void deadlines(srv_state *s, int64_t now)
{
    int64_t hdr = (int64_t)s->cfg.header_timeout * 1000, body = (int64_t)s->cfg.body_timeout * 1000;
    bool any = false;
    for (srv_conn *c = s->http.conns; c; c = c->next) {
        if (c->closing || c->phase == SRV_CONN_BUSY) continue;
        int64_t limit = c->phase == SRV_CONN_HEADERS ? hdr : body;
        if (now - c->since_ms < limit) continue;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci) continue;
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        char addr[INET6_ADDRSTRLEN] = "";
        if (ai && ai->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ai->client_addr)->sin_addr, addr,
                      sizeof addr);
        else if (ai && ai->client_addr->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ai->client_addr)->sin6_addr, addr,
                      sizeof addr);
        srv_log("warn", "connection closed at its deadline",
                json_pack("{s:s, s:s}", "limit",
                          c->phase == SRV_CONN_HEADERS ? "header_timeout" : "body_timeout",
                          "client", addr));
        /* logged first, so the line is there when the client sees the close */
        c->closing = true;
        shutdown(ci->connect_fd, SHUT_RDWR);
        any = true;
    }
    if (any) srv_http_kick(s);
}

static srv_req *req_new(srv_state *s, struct MHD_Connection *conn, const char *url,
                        const char *method)
{
    srv_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->s = s;
    r->conn = conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->c = ci ? ci->socket_context : NULL;
    srv_conn_phase_set(r, SRV_CONN_BUSY);
    r->fd = -1;
    r->t0 = srv_mono_ns();
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    r->m = srv_method_of(method);
    set_request_id(r);
    set_base(r);
    const char *origin = srv_req_header(r, "Origin");
    if (origin && strlen(origin) < sizeof r->origin && srv_config_origin_allowed(&s->cfg, origin)) {
        snprintf(r->origin, sizeof r->origin, "%s", origin);
        r->cors = true;
    }
    r->route = srv_route_of(url, &r->rm);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    srv_req *r = *con_cls;
    if (!r) {
        r = req_new(cls, conn, url, method);
        if (!r) return MHD_NO;
        *con_cls = r;
        /* A POST anywhere, and uploads, are answered at the end of the
         * headers (an upload is refused before its body is read). */
        if (r->m == SRV_M_POST || (r->m == SRV_M_PUT && r->route == SRV_RT_DATASET)) {
            r->body_done = !srv_route_is_upload(r->route, r->m);
            return dispatch(r);
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
        if (r->upload_end) return srv_upload_chunk(r, upload_data, upload_data_size);
        *upload_data_size = 0; /* bodies of other requests mean nothing here */
        return MHD_YES;
    }
    if (r->upload_end) return srv_upload_end(r);
    if (r->body_done) return MHD_YES;
    r->body_done = true;
    return dispatch(r);
}

static void access_log(srv_req *r, int status, double dur, enum MHD_RequestTerminationCode toe)
{
    bool quiet =
        r->route == SRV_RT_HEALTHZ || r->route == SRV_RT_READYZ || r->route == SRV_RT_METRICS;
    if (quiet && status < 400) return;
    /* Whatever bytes the client sent, the line is written. */
    char path[sizeof r->path * 4 + 1], method[sizeof r->method * 4 + 1];
    srv_log_text(r->path, path, sizeof path);
    srv_log_text(r->method, method, sizeof method);
    json_t *f =
        json_pack("{s:s, s:s, s:s, s:i, s:f, s:I, s:I}", "request_id", r->rid, "method", method,
                  "path", path, "status", status, "duration_ms", dur * 1000.0, "bytes_in",
                  (json_int_t)r->bytes_in, "bytes_out", (json_int_t)r->bytes_out);
    if (f && r->rm.id[0] && srv_id_valid(r->rm.id))
        json_object_set_new(f, "job_id", json_string(r->rm.id));
    if (f && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        json_object_set_new(f, "terminated", json_integer((json_int_t)toe));
    srv_log(status >= 500 ? "error" : "info", "request", f);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv_state *s = cls;
    srv_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    /* keep-alive: the next request's headers are under header_timeout */
    srv_conn_phase_set(r, SRV_CONN_HEADERS);
    if (r->waiting) s->http.n_waiting--;
    free(r->options);
    r->options = NULL;
    if (r->pending) MHD_destroy_response(r->pending);
    double dur = (double)(srv_mono_ns() - r->t0) / 1e9;
    int status = r->status > 0 ? r->status : 499; /* client went away before an answer */
    srv_metrics_request(&s->metrics, r->route, status, dur, r->bytes_in, r->bytes_out);
    access_log(r, status, dur, toe);
    srv_exports_req_end(r);
    if (srv_upload_release(r)) srv_req_free(r);
}

void srv_req_free(srv_req *r)
{
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

/* ---- start and stop --------------------------------------------------------- */

#if MHD_VERSION >= 0x00097300
/* The libmicrohttpd loaded at run time (it may be older than the headers). */
static bool mhd_version_at_least(unsigned major, unsigned minor, unsigned patch)
{
    unsigned a = 0, b = 0, c = 0;
    const char *v = MHD_get_version();
    if (!v || sscanf(v, "%u.%u.%u", &a, &b, &c) < 2) return false;
    if (a != major) return a > major;
    if (b != minor) return b > minor;
    return c >= patch;
}
#endif

int srv_http_start(srv_state *s, adx_err *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", s->cfg.listen_port);
    int gai = getaddrinfo(s->cfg.listen_host, port, &hints, &ai);
    if (gai != 0 || !ai)
        return adx_err_set(err, ADX_E_BAD_OPTION, "/listen", "cannot resolve %s: %s",
                           s->cfg.listen_host, gai_strerror(gai));
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    int fam = ai->ai_family;
    freeaddrinfo(ai);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (fam == AF_INET6) flags |= MHD_USE_IPv6;
#if MHD_VERSION >= 0x00097300
    /* SIGPIPE is ignored (srv_main). Told so, libmicrohttpd sends result
     * files with sendfile(2); otherwise it copies them through 4 KiB
     * pread/send pairs on the loop thread (about 200 calls for the
     * fixture's 393 KB h5ad). Older versions refuse the option, so it goes
     * last, replaced by the end marker there. */
    enum MHD_OPTION sigpipe =
        mhd_version_at_least(0, 9, 73) ? MHD_OPTION_SIGPIPE_HANDLED_BY_APP : MHD_OPTION_END;
#else
    enum MHD_OPTION sigpipe = MHD_OPTION_END;
#endif
    s->http.mhd = MHD_start_daemon(
        flags, s->cfg.listen_port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_logger, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)s->cfg.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)s->cfg.max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->cfg.connection_timeout, sigpipe, 1, MHD_OPTION_END);
    if (!s->http.mhd)
        return adx_err_set(err, ADX_E_IO, "/listen", "cannot listen on %s:%u (in use?)",
                           s->cfg.listen_host, s->cfg.listen_port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->http.mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(s->http.mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->http.poll.data = s;
    if (!di || uv_poll_init(s->loop, &s->http.poll, di->epoll_fd) != 0 ||
        uv_poll_start(&s->http.poll, UV_READABLE, on_mhd_poll) != 0) {
        MHD_stop_daemon(s->http.mhd);
        s->http.mhd = NULL;
        return adx_err_set(err, ADX_E_INTERNAL, "", "cannot watch the libmicrohttpd epoll fd");
    }
    s->http.poll.data = s;
    uv_timer_init(s->loop, &s->http.timer);
    s->http.timer.data = s;
    srv_log("info", "listening",
            json_pack("{s:s, s:i, s:i, s:s}", "host", s->cfg.listen_host, "port",
                      pi ? (int)pi->port : (int)s->cfg.listen_port, "workers", (int)s->cfg.workers,
                      "version", ADX_VERSION));
    srv_http_kick(s);
    return 0;
}

void srv_http_tick(srv_state *s, int64_t now)
{
    deadlines(s, now);
    srv_req *next;
    for (srv_req *r = s->http.suspended; r; r = next) {
        next = r->snext;
        if (r->on_tick) r->on_tick(r, now);
    }
}

void srv_http_quiesce(srv_state *s)
{
    if (!s->http.mhd) return;
    MHD_socket fd = MHD_quiesce_daemon(s->http.mhd);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void srv_http_stop(srv_state *s)
{
    /* Suspended connections would keep MHD_stop_daemon from closing them. */
    while (s->http.suspended) {
        srv_req *r = s->http.suspended;
        if (r->detach) r->detach(r);
        srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER,
                    "the server is shutting down");
    }
    /* Stop watching the epoll fd before MHD closes it. */
    uv_poll_stop(&s->http.poll);
    uv_close((uv_handle_t *)&s->http.poll, NULL);
    if (s->http.mhd) {
        MHD_run(s->http.mhd);
        MHD_stop_daemon(s->http.mhd);
        s->http.mhd = NULL;
    }
    uv_timer_stop(&s->http.timer);
    uv_close((uv_handle_t *)&s->http.timer, NULL);
}
