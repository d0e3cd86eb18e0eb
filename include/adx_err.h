/* adx_err — errors that carry a JSON pointer, a client-facing message and,
 * apart from it, a log-only cause.
 *
 * Every module reports failure by filling an adx_err the caller owns (usually
 * on the stack) and returning -1 (or NULL). The first adx_err_set() wins: a
 * later set on an already failed adx_err only appends an item, so the most
 * precise (innermost) error is the one a client sees. At the HTTP edge and in
 * the CLI an adx_err becomes RFC 9457 problem+json (adx_err_problem()).
 *
 * Two audiences: `detail` and the items are the client's and never hold a
 * path of this machine, errno text or a library's message; those go into
 * `cause` (adx_err_cause), which the daemon logs and the CLI prints, and
 * which adx_err_problem() never includes. Nothing is scrubbed afterwards.
 *
 * No allocation: messages are truncated to the fixed buffers, so an error can
 * always be reported, even when the failure was running out of memory.
 *
 * adx_ptr is the JSON-pointer builder decoders keep while walking input:
 * push a key or index, remember the returned mark, pop back to it.
 */
#ifndef ADX_ERR_H
#define ADX_ERR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define ADX_ERR_MAX_ITEMS 8
#define ADX_ERR_PTR_MAX 512
#define ADX_ERR_MSG_MAX 512

/* Problem types. The slug becomes the last segment of the problem "type" URI;
 * the title is fixed per type (RFC 9457 §3.1.3). */
typedef enum adx_errtype {
    ADX_E_NONE = 0,
    ADX_E_INVALID_JSON, /* 400 malformed JSON, with line and column */
    ADX_E_SCHEMA,       /* 400 wrong type / missing field / bad value */
    ADX_E_SHAPE,        /* 400 shapes disagree */
    ADX_E_BAD_OPTION,   /* 400 format/compression/include options */
    ADX_E_BAD_INCLUDE,  /* 400 include path malformed */
    ADX_E_LIMIT,        /* 413 a configured limit was exceeded */
    ADX_E_UNSUPPORTED,  /* 415 content type */
    ADX_E_NOT_FOUND,    /* 404 */
    ADX_E_CONFLICT,     /* 409 */
    ADX_E_CANCELED,     /* job canceled by the client (not an HTTP status of its own) */
    ADX_E_IO,           /* 500 file system or library failure */
    ADX_E_NOMEM,        /* 500/503 allocation failed */
    ADX_E_INTERNAL,     /* 500 a bug */
    /* Statuses of the HTTP layer that carry no request error of their own. */
    ADX_E_UNAUTHORIZED, /* 401 */
    ADX_E_FORBIDDEN,    /* 403 */
    ADX_E_METHOD,       /* 405 */
    ADX_E_GONE,         /* 410 a result that expired */
    ADX_E_RANGE,        /* 416 */
    ADX_E_QUEUE_FULL,   /* 429 */
    ADX_E_UNAVAILABLE,  /* 503 */
    ADX_E_NO_SPACE,     /* 507 the spool has no room (quota or disk full) */
    ADX_E_JOB_FAILED,   /* 422 a job past job_timeout, or interrupted on every attempt */
    ADX_E__COUNT
} adx_errtype;

typedef struct adx_err_item {
    char pointer[ADX_ERR_PTR_MAX]; /* RFC 6901 pointer into the request */
    char message[ADX_ERR_MSG_MAX];
} adx_err_item;

typedef struct adx_err {
    adx_errtype type; /* ADX_E_NONE while no error */
    int status;       /* HTTP status for this error */
    char detail[ADX_ERR_MSG_MAX];
    char cause[ADX_ERR_MSG_MAX]; /* log-only: paths, errno and library text; "" if none */
    int n_items;
    adx_err_item items[ADX_ERR_MAX_ITEMS];
} adx_err;

void adx_err_init(adx_err *e);
static inline int adx_err_failed(const adx_err *e)
{
    return e->type != ADX_E_NONE;
}

/* Record an error. `pointer` may be NULL or "" (the whole document). The
 * message is printf-formatted; it becomes both `detail` and the first item's
 * message. Returns -1 so callers can `return adx_err_set(...)`. If `e` already
 * holds an error, the new one is appended as an extra item instead. */
int adx_err_set(adx_err *e, adx_errtype type, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int adx_err_vset(adx_err *e, adx_errtype type, const char *pointer, const char *fmt, va_list ap);
/* Add another item to an existing error (ignored when full). Returns -1. */
int adx_err_add(adx_err *e, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Override the HTTP status chosen from the type (e.g. 413 vs 400 for limits). */
void adx_err_set_status(adx_err *e, int status);

/* Append to the log-only cause (joined with "; " when one is there, so an
 * outer layer can add what it was doing). Returns -1. */
int adx_err_cause(adx_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The one table of error kinds: problem type slug, title, HTTP status. */
const char *adx_errtype_slug(adx_errtype t);
const char *adx_errtype_title(adx_errtype t);
int adx_errtype_status(adx_errtype t);
/* The kind that stands for a bare HTTP status (401, 403, 405, 410, 416,
 * 429, 503), or `fallback` for any other status. */
adx_errtype adx_errtype_for_status(int status, adx_errtype fallback);

/* RFC 9457 body: {"type","title","status","detail","instance","errors":[...]}
 * (never the cause).
 * `type_base` is a URI prefix such as "https://anndata-exportd.invalid/errors/"
 * (NULL → that default). Returns a new reference; NULL only on OOM. */
json_t *adx_err_problem(const adx_err *e, const char *instance, const char *type_base);

/* JSON pointer builder. Truncation is sticky and visible ("…" suffix) rather
 * than silent: a pointer deeper than the buffer still names the prefix. */
typedef struct adx_ptr {
    char buf[ADX_ERR_PTR_MAX];
    size_t len;
} adx_ptr;

void adx_ptr_init(adx_ptr *p, const char *base); /* base may be NULL or "/adata" */
size_t adx_ptr_key(adx_ptr *p, const char *key); /* push "/key" (escaped); returns the mark */
size_t adx_ptr_idx(adx_ptr *p, uint64_t idx);    /* push "/idx"; returns the mark */
static inline void adx_ptr_pop(adx_ptr *p, size_t mark)
{
    p->len = mark;
    p->buf[mark] = '\0';
}
static inline const char *adx_ptr_str(const adx_ptr *p)
{
    return p->buf;
}

/* Append the RFC 6901 escape of `key` ("~" → "~0", "/" → "~1") after a "/"
 * to `dst` (size `cap`, NUL-terminated, truncated). */
void adx_ptr_append_key(char *dst, size_t cap, const char *key);

#endif
