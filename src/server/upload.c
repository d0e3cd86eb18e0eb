/* Request bodies that are uploads (an export POST, a dataset PUT): the
 * Content-Type check helpers and the streaming of the body into a temp
 * file of the spool's tmp/. This is the one place a body is read; a
 * decoder of another body encoding (multipart, gzip) hooks in here. */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "adx_parts.h"

/* Body bytes swallowed after a refusal so that the answer can still be
 * read by a client that sends its whole body first. */
#define DISCARD_MAX (16u << 20)

bool srv_content_type_is(const char *ct, const char *type)
{
    if (!ct) return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    return n == strlen(type) && !strncasecmp(ct, type, n);
}

/* Content-Encoding: identity or gzip (RFC 9110 §8.4; one coding). */
static bool body_encoding(srv_req *r, bool *gzip, enum MHD_Result *rc)
{
    const char *ce = srv_req_header(r, "Content-Encoding");
    *gzip = ce && (srv_content_type_is(ce, "gzip") || srv_content_type_is(ce, "x-gzip"));
    if (!ce || *gzip || srv_content_type_is(ce, "identity")) return true;
    *rc = srv_problem(r, ADX_E_UNSUPPORTED, "Accept-Encoding", "gzip",
                      "Content-Encoding %.60s is not accepted (gzip or none)", ce);
    return false;
}

/* What an export POST's body is, from its Content-Type and
 * Content-Encoding. A multipart body's boundary is checked here, before
 * any of it is read. */
bool srv_upload_export_type(srv_req *r, enum MHD_Result *rc)
{
    const char *ct = srv_req_header(r, "Content-Type");
    memset(&r->input, 0, sizeof r->input);
    if (!body_encoding(r, &r->input.gzip, rc)) return false;
    /* curl --data-binary @- without -H still means JSON here */
    if (!ct || srv_content_type_is(ct, "application/json")) {
        r->input.kind = PIPE_SRC_REQUEST;
    } else if (srv_content_type_is(ct, "application/x-hdf5")) {
        r->input.kind = PIPE_SRC_H5AD;
    } else if (srv_content_type_is(ct, "multipart/form-data")) {
        r->input.kind = PIPE_SRC_MULTIPART;
        adx_err e;
        adx_err_init(&e);
        if (parts_boundary(ct, r->input.boundary, &e) < 0) {
            *rc = srv_send_err(r, &e, NULL, NULL);
            return false;
        }
    } else {
        *rc = srv_problem(r, ADX_E_UNSUPPORTED, "Accept-Post",
                          "application/json, multipart/form-data, application/x-hdf5",
                          "POST /v1/exports takes application/json (a request document), "
                          "multipart/form-data (a \"request\" part and binary parts) or "
                          "application/x-hdf5 (an h5ad file, options in the query string), not "
                          "%.100s",
                          ct);
        return false;
    }
    return true;
}

/* What a dataset PUT's body is, from its Content-Type. */
bool srv_upload_dataset_type(srv_req *r, enum MHD_Result *rc)
{
    const char *ct = srv_req_header(r, "Content-Type");
    if (srv_req_header(r, "Content-Encoding") &&
        !srv_content_type_is(srv_req_header(r, "Content-Encoding"), "identity")) {
        *rc = srv_problem(r, ADX_E_UNSUPPORTED, NULL, NULL,
                          "PUT /v1/datasets/{name} takes its body without Content-Encoding");
        return false;
    }
    if (srv_content_type_is(ct, "application/x-hdf5")) {
        r->ds_input = DS_INPUT_H5AD;
    } else if (srv_content_type_is(ct, "application/json")) {
        r->ds_input = DS_INPUT_JSON;
    } else {
        *rc =
            srv_problem(r, ADX_E_UNSUPPORTED, "Accept-Put", "application/x-hdf5, application/json",
                        "PUT /v1/datasets/{name} takes application/x-hdf5 (an h5ad file) or "
                        "application/json (an AnnData object), not %.100s",
                        ct ? ct : "a body without Content-Type");
        return false;
    }
    return true;
}

bool srv_upload_too_big(srv_req *r, enum MHD_Result *rc)
{
    const char *cl = srv_req_header(r, "Content-Length");
    uint64_t max = r->s->cfg.limits.max_body_bytes;
    if (!cl) return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    if (errno || *end != '\0' || n <= max) return false;
    adx_err e;
    adx_err_init(&e);
    adx_err_set(&e, ADX_E_LIMIT, "", "the body is %llu bytes; max_body_bytes is %llu", n,
                (unsigned long long)max);
    *rc = srv_send_err(r, &e, NULL, NULL);
    return true;
}

enum MHD_Result srv_upload_open(srv_req *r, srv_handler end)
{
    /* A job's upload is named after the job; a dataset's gets a fresh id. */
    char name[SRV_ID_LEN + 1];
    if (r->rm.id[0])
        memcpy(name, r->rm.id, sizeof name);
    else
        srv_new_id(r->s, name);
    if (snprintf(r->upload, sizeof r->upload, "%s/%s.upload", r->s->spool.tmp_dir, name) >=
        (int)sizeof r->upload)
        r->fd = -1;
    else
        r->fd = open(r->upload, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (r->fd < 0) {
        r->upload[0] = '\0';
        srv_log("error", "cannot create upload file",
                json_pack("{s:s, s:s}", "request_id", r->rid, "error", strerror(errno)));
        return srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER,
                           "the spool is not writable; see the daemon log (request %s)", r->rid);
    }
    r->upload_end = end;
    return MHD_YES;
}

void srv_upload_discard(srv_req *r)
{
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    if (r->upload[0]) unlink(r->upload);
    r->upload[0] = '\0';
}

enum MHD_Result srv_upload_chunk(srv_req *r, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    r->bytes_in += n;
    uint64_t max = r->s->cfg.limits.max_body_bytes;
    if (r->too_big) {
        /* Swallow a bounded tail so the 413 can still be sent at the end;
         * a client that keeps streaming past that is cut off. */
        return r->bytes_in - max > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (r->bytes_in > max) {
        /* Without a Content-Length (chunked) the limit shows up mid-body,
         * where libmicrohttpd 0.9.75 cannot queue a response yet: stop
         * writing, and answer 413 when the body ends. */
        r->too_big = true;
        srv_upload_discard(r);
        return MHD_YES;
    }
    if (r->write_failed) return MHD_YES;
    while (n) {
        ssize_t wr = write(r->fd, data, n);
        if (wr < 0 && errno == EINTR) continue;
        if (wr < 0) {
            srv_log("error", "spool write failed",
                    json_pack("{s:s, s:s}", "request_id", r->rid, "error", strerror(errno)));
            srv_upload_discard(r);
            r->write_failed = true; /* swallow the rest; the end answers 503 */
            return MHD_YES;
        }
        data += wr;
        n -= (size_t)wr;
    }
    return MHD_YES;
}

enum MHD_Result srv_upload_end(srv_req *r)
{
    srv_handler end = r->upload_end;
    r->upload_end = NULL;
    r->body_done = true;
    if (r->write_failed)
        return srv_problem(r, ADX_E_UNAVAILABLE, "Retry-After", SRV_RETRY_AFTER,
                           "the spool is not writable; see the daemon log (request %s)", r->rid);
    if (r->too_big) {
        adx_err e;
        adx_err_init(&e);
        adx_err_set(&e, ADX_E_LIMIT, "", "the body exceeds max_body_bytes (%llu)",
                    (unsigned long long)r->s->cfg.limits.max_body_bytes);
        return srv_send_err(r, &e, NULL, NULL);
    }
    close(r->fd);
    r->fd = -1;
    return end(r);
}
