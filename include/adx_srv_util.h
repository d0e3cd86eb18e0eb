/* adx_srv_util (prefix srv_) — small pure helpers of the daemon, kept apart
 * from the event loop so they can be unit tested without sockets: Range
 * header parsing (RFC 9110 §14), Content-Disposition (RFC 6266 + RFC 5987),
 * ETag matching, constant-time token comparison, sortable job ids and
 * timestamps. None of them allocates or prints.
 */
#ifndef ADX_SRV_UTIL_H
#define ADX_SRV_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum srv_range_result {
    SRV_RANGE_NONE = 0, /* no usable Range: serve the whole file with 200 */
    SRV_RANGE_OK,       /* one satisfiable range: 206 */
    SRV_RANGE_UNSAT,    /* syntactically valid but outside the file: 416 */
} srv_range_result;

/* Parse a Range header for a representation of `size` bytes. Accepts exactly
 * one range of unit "bytes" ("bytes=a-b", "bytes=a-", "bytes=-n", optional
 * whitespace around '=' and ','-less lists only). Anything malformed, another
 * unit, or several ranges yields SRV_RANGE_NONE: RFC 9110 lets a server
 * ignore a Range it does not want to honour. On SRV_RANGE_OK [*first, *last]
 * is the inclusive byte interval (last clamped to size-1). */
srv_range_result srv_range_parse(const char *hdr, uint64_t size, uint64_t *first, uint64_t *last);

/* Content-Disposition for an attachment: `attachment; filename="…"` with an
 * ASCII fallback (non-ASCII bytes, quotes, backslashes and controls become
 * '_') and, when the name is not plain ASCII, `filename*=UTF-8''…` with
 * RFC 5987 percent-encoding. Returns 0, or -1 when `cap` is too small. */
int srv_content_disposition(const char *filename, char *out, size_t cap);

/* true when an If-None-Match header value matches the (quoted) etag: "*", or
 * a comma-separated list holding it, weak "W/" prefixes compared weakly. */
bool srv_etag_match(const char *if_none_match, const char *etag);

/* Compare two secrets in time that depends only on `blen` (the configured
 * token), never on where they first differ. */
bool srv_token_eq(const char *a, size_t alen, const char *b, size_t blen);

/* ULID-like ids: 26 Crockford base32 characters, 48-bit millisecond time
 * then 80 random bits. Within one millisecond the random part is
 * incremented, so ids from one generator sort in creation order. */
#define SRV_ID_LEN 26
typedef struct srv_idgen {
    uint64_t last_ms;
    uint8_t rnd[10];
} srv_idgen;
/* `rnd10` are 10 fresh random bytes (used only when the millisecond moved
 * on). Returns 0, or -1 when the random part overflowed within one ms. */
int srv_id_next(srv_idgen *g, uint64_t ms, const uint8_t rnd10[10], char out[SRV_ID_LEN + 1]);
/* true when `s` has the shape of an id (length and alphabet). */
bool srv_id_valid(const char *s);

/* RFC 3339 UTC with seconds ("2026-11-23T10:00:00Z"); cap >= 21. */
void srv_time_iso(int64_t unix_ms, char *out, size_t cap);

#endif
