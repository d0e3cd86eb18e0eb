/* Service documents: probes, metrics, the OpenAPI document, version. */
#include "http.h"
#include "spool.h"

#include <unistd.h>

enum MHD_Result srv_h_healthz(srv_req *r)
{
    return srv_send_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

enum MHD_Result srv_h_readyz(srv_req *r)
{
    srv_state *s = r->s;
    const char *why = NULL;
    if (s->shutting_down)
        why = "shutting down";
    else if (srv_jobs_queue_full(&s->jobs))
        why = "queue full";
    else if (access(s->spool.tmp_dir, W_OK) != 0 || access(s->spool.jobs_dir, W_OK) != 0)
        why = "spool not writable";
    else
        why = srv_spool_no_room(s);
    if (why) {
        json_t *o = json_pack("{s:s, s:s}", "status", "unavailable", "reason", why);
        struct MHD_Response *resp = srv_resp_json(r, o, "application/json");
        if (resp) MHD_add_response_header(resp, "Retry-After", SRV_RETRY_AFTER);
        return srv_respond(r, 503, resp);
    }
    return srv_send_json(r, 200,
                         json_pack("{s:s, s:i, s:i}", "status", "ready", "queued",
                                   s->jobs.n_queued + s->jobs.n_validating, "running",
                                   s->jobs.n_running));
}

enum MHD_Result srv_h_metrics(srv_req *r)
{
    size_t len = 0;
    char *text = srv_metrics_render(r->s, &len);
    if (!text) return srv_problem(r, ADX_E_UNAVAILABLE, NULL, NULL, "out of memory");
    return srv_respond(r, 200,
                       srv_resp_text(r, text, len, "text/plain; version=0.0.4; charset=utf-8"));
}

enum MHD_Result srv_h_openapi(srv_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        srv_openapi_json_len, (void *)srv_openapi_json, MHD_RESPMEM_PERSISTENT);
    if (resp) MHD_add_response_header(resp, "Content-Type", "application/json");
    r->bytes_out += srv_openapi_json_len;
    return srv_respond(r, 200, resp);
}

enum MHD_Result srv_h_version(srv_req *r)
{
    return srv_send_json(r, 200, srv_version_json());
}
