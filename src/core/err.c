/* adx_err implementation: fixed buffers so reporting never allocates. */
#include "adx_err.h"

#include <stdbool.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *slug, *title;
    int status;
    bool of_status; /* the kind a bare status of the HTTP layer maps to */
} kinds[ADX_E__COUNT] = {
    [ADX_E_NONE] = {"none", "No error", 200},
    [ADX_E_INVALID_JSON] = {"invalid-json", "Malformed JSON", 400},
    [ADX_E_SCHEMA] = {"schema", "Invalid request", 400},
    [ADX_E_SHAPE] = {"shape-mismatch", "Shape mismatch", 400},
    [ADX_E_BAD_OPTION] = {"bad-option", "Invalid export option", 400},
    [ADX_E_BAD_INCLUDE] = {"bad-include", "Invalid include path", 400},
    [ADX_E_LIMIT] = {"limit-exceeded", "Limit exceeded", 413},
    [ADX_E_UNSUPPORTED] = {"unsupported-media-type", "Unsupported media type", 415},
    [ADX_E_NOT_FOUND] = {"not-found", "Not found", 404},
    [ADX_E_CONFLICT] = {"conflict", "Conflict", 409},
    [ADX_E_CANCELED] = {"canceled", "Job canceled", 409},
    [ADX_E_IO] = {"io-error", "Storage error", 500},
    [ADX_E_NOMEM] = {"out-of-memory", "Out of memory", 503},
    [ADX_E_INTERNAL] = {"internal", "Internal error", 500},
    [ADX_E_UNAUTHORIZED] = {"unauthorized", "Unauthorized", 401, true},
    [ADX_E_FORBIDDEN] = {"forbidden", "Forbidden", 403, true},
    [ADX_E_METHOD] = {"method-not-allowed", "Method not allowed", 405, true},
    [ADX_E_GONE] = {"gone", "Result expired", 410, true},
    [ADX_E_RANGE] = {"range-not-satisfiable", "Range not satisfiable", 416, true},
    [ADX_E_QUEUE_FULL] = {"queue-full", "Too many jobs", 429, true},
    [ADX_E_UNAVAILABLE] = {"unavailable", "Service unavailable", 503, true},
    [ADX_E_NO_SPACE] = {"insufficient-storage", "Insufficient storage", 507, true},
    [ADX_E_JOB_FAILED] = {"job-failed", "Job could not be completed", 422},
};

adx_errtype adx_errtype_for_status(int status, adx_errtype fallback)
{
    for (int t = 0; t < ADX_E__COUNT; t++)
        if (kinds[t].of_status && kinds[t].status == status) return (adx_errtype)t;
    return fallback;
}

const char *adx_errtype_slug(adx_errtype t)
{
    return t < ADX_E__COUNT ? kinds[t].slug : "internal";
}
const char *adx_errtype_title(adx_errtype t)
{
    return t < ADX_E__COUNT ? kinds[t].title : "Internal error";
}
int adx_errtype_status(adx_errtype t)
{
    return t < ADX_E__COUNT ? kinds[t].status : 500;
}

void adx_err_init(adx_err *e)
{
    memset(e, 0, sizeof *e);
}

static void add_item(adx_err *e, const char *pointer, const char *msg)
{
    if (e->n_items >= ADX_ERR_MAX_ITEMS) return;
    adx_err_item *it = &e->items[e->n_items++];
    snprintf(it->pointer, sizeof it->pointer, "%s", pointer ? pointer : "");
    snprintf(it->message, sizeof it->message, "%s", msg);
}

int adx_err_vset(adx_err *e, adx_errtype type, const char *pointer, const char *fmt, va_list ap)
{
    char msg[ADX_ERR_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (e->type == ADX_E_NONE) {
        e->type = type;
        e->status = adx_errtype_status(type);
        snprintf(e->detail, sizeof e->detail, "%s", msg);
    }
    add_item(e, pointer, msg);
    return -1;
}

int adx_err_set(adx_err *e, adx_errtype type, const char *pointer, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    adx_err_vset(e, type, pointer, fmt, ap);
    va_end(ap);
    return -1;
}

int adx_err_add(adx_err *e, const char *pointer, const char *fmt, ...)
{
    char msg[ADX_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    add_item(e, pointer, msg);
    return -1;
}

int adx_err_cause(adx_err *e, const char *fmt, ...)
{
    size_t len = strnlen(e->cause, sizeof e->cause);
    if (len && len + 2 < sizeof e->cause) {
        memcpy(e->cause + len, "; ", 3);
        len += 2;
    }
    if (len + 1 >= sizeof e->cause) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->cause + len, sizeof e->cause - len, fmt, ap);
    va_end(ap);
    /* One line in any log: libhdf5's messages carry ctime()'s newline. */
    for (char *c = e->cause + len; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    return -1;
}

void adx_err_set_status(adx_err *e, int status)
{
    e->status = status;
}

json_t *adx_err_problem(const adx_err *e, const char *instance, const char *type_base)
{
    char type[256];
    adx_errtype t = e->type == ADX_E_NONE ? ADX_E_INTERNAL : e->type;
    snprintf(type, sizeof type, "%s%s",
             type_base ? type_base : "https://anndata-exportd.invalid/errors/",
             adx_errtype_slug(t));
    json_t *items = json_array();
    for (int i = 0; items && i < e->n_items; i++)
        json_array_append_new(items, json_pack("{s:s, s:s}", "pointer", e->items[i].pointer,
                                               "message", e->items[i].message));
    json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:o*}", "type", type, "title", adx_errtype_title(t),
                          "status", e->status ? e->status : 500, "detail",
                          e->detail[0] ? e->detail : adx_errtype_title(t), "errors", items);
    if (p && instance) json_object_set_new(p, "instance", json_string(instance));
    return p;
}

void adx_ptr_append_key(char *dst, size_t cap, const char *key)
{
    size_t len = strnlen(dst, cap);
    if (len + 1 >= cap) return;
    dst[len++] = '/';
    for (const char *k = key; *k; k++) {
        const char *rep = *k == '~' ? "~0" : *k == '/' ? "~1" : NULL;
        size_t need = rep ? 2 : 1;
        if (len + need >= cap) {
            /* Leave a visible marker instead of silently cutting the key. */
            if (cap >= 4) {
                size_t at = len < cap - 4 ? len : cap - 4;
                memcpy(dst + at, "\xe2\x80\xa6", 3); /* U+2026 */
                len = at + 3;
            }
            break;
        }
        if (rep) {
            memcpy(dst + len, rep, 2);
            len += 2;
        } else {
            dst[len++] = *k;
        }
    }
    dst[len] = '\0';
}

void adx_ptr_init(adx_ptr *p, const char *base)
{
    snprintf(p->buf, sizeof p->buf, "%s", base ? base : "");
    p->len = strlen(p->buf);
}

size_t adx_ptr_key(adx_ptr *p, const char *key)
{
    size_t mark = p->len;
    adx_ptr_append_key(p->buf, sizeof p->buf, key);
    p->len = strlen(p->buf);
    return mark;
}

size_t adx_ptr_idx(adx_ptr *p, uint64_t idx)
{
    size_t mark = p->len;
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%" PRIu64, idx);
    adx_ptr_append_key(p->buf, sizeof p->buf, tmp);
    p->len = strlen(p->buf);
    return mark;
}
