/* /v1/datasets: the routes of stored datasets. Every one reads or writes
 * files, so each runs on the pool (datadir.c) with the connection
 * suspended until the answer comes back. */
#include "http.h"
#include "spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A dataset error as a problem: name errors point at the path segment
 * ("/name"), a pinned dataset is a 409 to retry (a Polis folder under a PUT
 * is a 409 without Retry-After), and file-system failures keep their
 * details in the log. */
static enum MHD_Result ds_problem(srv_req *r, adx_err *e)
{
    for (int i = 0; i < e->n_items; i++)
        if (!strcmp(e->items[i].pointer, "/dataset"))
            snprintf(e->items[i].pointer, sizeof e->items[i].pointer, "/name");
    if (e->type == ADX_E_CONFLICT) {
        /* Only a pin goes away by itself; a Polis folder stays in the way. */
        bool retry = ds_pinned(r->s->ds, r->rm.name);
        adx_err_set_status(e, 409);
        return srv_send_err(r, e, retry ? "Retry-After" : NULL, retry ? SRV_RETRY_AFTER : NULL);
    }
    /* A full spool (the decompressed copy of a gzip body did not fit) is
     * the client's to retry, as for an export POST. */
    if (e->type == ADX_E_NO_SPACE) return srv_send_err(r, e, "Retry-After", SRV_RETRY_AFTER);
    if (e->status >= 500 || e->type == ADX_E_IO || e->type == ADX_E_INTERNAL ||
        e->type == ADX_E_NOMEM) {
        char path[sizeof r->path * 4 + 1];
        srv_log_text(r->path, path, sizeof path);
        srv_log("error", "dataset operation failed",
                srv_log_cause(json_pack("{s:s, s:s, s:s}", "request_id", r->rid, "path", path,
                                        "error", e->detail),
                              e));
        bool retry = e->type == ADX_E_NOMEM;
        adx_err pub;
        adx_err_init(&pub);
        adx_err_set(&pub, retry ? ADX_E_UNAVAILABLE : e->type, "",
                    "the dataset operation failed on the server; see the daemon log "
                    "(request %s)",
                    r->rid);
        adx_err_set_status(&pub, retry ? 503 : 500);
        return srv_send_err(r, &pub, retry ? "Retry-After" : NULL, SRV_RETRY_AFTER);
    }
    return srv_send_err(r, e, NULL, NULL);
}

static void ds_done(srv_ds_work *dw)
{
    srv_req *r = dw->ud;
    r->dw = NULL;
    /* the upload left the spool (into the data directory, or deleted) */
    srv_spool_release(r->s, dw->spool_bytes);
    double secs = dw->seconds;
    if (!dw->result) {
        ds_problem(r, &dw->err);
    } else if (dw->op == SRV_DS_DELETE) {
        json_decref(dw->result);
        srv_log("info", "dataset deleted",
                json_pack("{s:s, s:s}", "dataset", dw->name, "request_id", r->rid));
        srv_send_empty(r, 204);
    } else if (dw->op == SRV_DS_PUT) {
        srv_log("info", dw->created ? "dataset created" : "dataset replaced",
                json_pack("{s:s, s:s, s:f}", "dataset", dw->name, "request_id", r->rid,
                          "duration_s", secs));
        struct MHD_Response *resp = srv_resp_json(r, dw->result, "application/json");
        if (resp && dw->created) {
            char loc[800];
            snprintf(loc, sizeof loc, "%s/v1/datasets/%s", r->base, dw->name);
            MHD_add_response_header(resp, "Location", loc);
        }
        srv_respond(r, dw->created ? 201 : 200, resp);
    } else {
        srv_send_json(r, 200, dw->result);
    }
    free(dw);
}

static enum MHD_Result ds_begin(srv_req *r, srv_ds_op op)
{
    srv_ds_work *dw = calloc(1, sizeof *dw);
    if (!dw) {
        if (op == SRV_DS_PUT) srv_upload_discard(r);
        return srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER, "out of memory");
    }
    dw->op = op;
    /* only valid names (at most ADX_DATASET_NAME_MAX) get here */
    snprintf(dw->name, sizeof dw->name, "%.*s", ADX_DATASET_NAME_MAX, r->rm.name);
    if (op == SRV_DS_PUT) {
        snprintf(dw->upload, sizeof dw->upload, "%s", r->upload);
        r->upload[0] = '\0'; /* the worker owns the file now */
        dw->spool_bytes = r->reserved;
        r->reserved = 0;
        dw->input = r->ds_input;
        dw->gzip = r->input.gzip;
    }
    dw->done = ds_done;
    dw->ud = r;
    if (srv_ds_start(r->s, dw) < 0) {
        if (op == SRV_DS_PUT) srv_upload_unlink(r->s, dw->upload);
        srv_spool_release(r->s, dw->spool_bytes);
        free(dw);
        return srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER,
                           "cannot schedule the request");
    }
    r->dw = dw;
    srv_req_suspend(r);
    return MHD_YES;
}

static enum MHD_Result pinned_problem(srv_req *r)
{
    return srv_problem(r, ADX_E_CONFLICT, "Retry-After", SRV_RETRY_AFTER,
                       "dataset %s is in use by a queued or running export; retry once it "
                       "finished",
                       r->rm.name);
}

/* Names are checked before anything else, for every method. */
static bool name_ok(srv_req *r, enum MHD_Result *rc)
{
    if (ds_name_valid(r->rm.name)) return true;
    char shown[61];
    srv_printable(r->rm.name, shown, sizeof shown);
    adx_err e;
    adx_err_init(&e);
    adx_err_set(&e, ADX_E_BAD_OPTION, "/name",
                "dataset names are 1 to %d characters of A-Z a-z 0-9 . _ - and do not start "
                "with '.'; '%s%s' is not one",
                ADX_DATASET_NAME_MAX, shown, strlen(r->rm.name) > 60 ? "..." : "");
    *rc = srv_send_err(r, &e, NULL, NULL);
    return false;
}

enum MHD_Result srv_h_datasets_list(srv_req *r)
{
    return ds_begin(r, SRV_DS_LIST);
}

enum MHD_Result srv_h_dataset_get(srv_req *r)
{
    enum MHD_Result rc;
    if (!name_ok(r, &rc)) return rc;
    return ds_begin(r, SRV_DS_SUMMARY);
}

enum MHD_Result srv_h_dataset_delete(srv_req *r)
{
    enum MHD_Result rc;
    if (!name_ok(r, &rc)) return rc;
    if (ds_pinned(r->s->ds, r->rm.name)) return pinned_problem(r);
    return ds_begin(r, SRV_DS_DELETE);
}

static enum MHD_Result put_end(srv_req *r)
{
    return ds_begin(r, SRV_DS_PUT);
}

enum MHD_Result srv_h_dataset_put(srv_req *r)
{
    enum MHD_Result rc;
    if (!name_ok(r, &rc)) return rc;
    if (!srv_upload_dataset_type(r, &rc) || srv_upload_too_big(r, &rc)) return rc;
    /* Refused before the body is read; ds_put checks again at the end. */
    if (ds_pinned(r->s->ds, r->rm.name)) return pinned_problem(r);
    return srv_upload_open(r, put_end);
}
