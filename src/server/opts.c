/* The export options of an h5ad POST, from its query string. */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_request.h"

typedef struct qopts {
    json_t *o, *inc, *cat;
    adx_err *err;
} qopts;

static int qfail(qopts *q, const char *key, const char *fmt, const char *v)
{
    char ptr[80], k[64], shown[104];
    srv_printable(key, k, sizeof k);
    srv_printable(v, shown, sizeof shown);
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
char *srv_query_options(srv_req *r, adx_err *err)
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
