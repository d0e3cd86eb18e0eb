/* The daemon's query-string options of an h5ad POST (srv_query_options).
 * It reads the parameters through libmicrohttpd's connection API; this
 * target defines MHD_get_connection_values itself (the executable's
 * definition wins over the library's) and feeds it the input, split and
 * percent-decoded as libmicrohttpd does: "&" between parameters, the first
 * "=" between key and value (none: a NULL value), %XX decoded. */
#include <microhttpd.h>

#include "fuzz_common.h"
#include "http.h"

/* With libmicrohttpd loaded lazily (mhd_dl.h) the daemon calls it through
 * its table: the definition below goes into that slot instead. */
#ifdef ADX_LAZY_MHD
#undef MHD_get_connection_values
#endif

#define MAXQ 256
static char *keys[MAXQ], *vals[MAXQ];
static size_t nq;

static size_t unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '%' && p[1] && p[2] && strchr("0123456789abcdefABCDEF", p[1]) &&
            strchr("0123456789abcdefABCDEF", p[2])) {
            char hex[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return (size_t)(o - s);
}

int MHD_get_connection_values(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                              MHD_KeyValueIterator iterator, void *iterator_cls)
{
    (void)connection;
    int n = 0;
    if (kind != MHD_GET_ARGUMENT_KIND) return 0;
    for (size_t i = 0; i < nq; i++) {
        n++;
        if (iterator && iterator(iterator_cls, kind, keys[i], vals[i]) != MHD_YES) break;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size + 1);
    if (!q) abort();
    memcpy(q, data, size);
    q[size] = '\0';
    nq = 0;
    for (char *save = NULL, *tok = strtok_r(q, "&", &save); tok && nq < MAXQ;
         tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        if (eq) *eq = '\0';
        unescape(tok);
        if (eq) unescape(eq + 1);
        keys[nq] = tok;
        vals[nq++] = eq ? eq + 1 : NULL;
    }
#ifdef ADX_LAZY_MHD
    srv_mhd_slots[DYNLIB_I_MHD_get_connection_values] = (void *)MHD_get_connection_values;
#endif
    srv_req r;
    memset(&r, 0, sizeof r);
    adx_err err;
    adx_err_init(&err);
    char *text = srv_query_options(&r, &err);
    if (text) {
        /* What it accepted is an options document the job accepts too. */
        json_t *o = json_loads(text, 0, NULL);
        adx_request rq;
        adx_err e2;
        adx_err_init(&e2);
        if (!o || req_parse_mode(o, REQ_OPTIONS, &rq, &e2) < 0) abort();
        req_free(&rq);
        json_decref(o);
        free(text);
    } else if (!adx_err_failed(&err)) {
        abort();
    }
    free(q);
    return 0;
}
