/* zipw (prefix zw_) — internal to the npz and csv writers: a zip archive
 * whose members are produced on demand while libzip writes the file.
 *
 * libzip writes every member at zip_close(), so a member is a generator
 * (read callback + state) rather than a buffer: large arrays are served
 * straight from the model and text is formatted chunk by chunk, and no member
 * is ever held twice in memory. Cancel is polled when each member opens and
 * on every chunk; a failure inside a generator is carried out through the
 * writer's own adx_err so the caller sees the precise cause, not "read error".
 *
 * Key escaping (npz member names; csv uns file names minus the '_' rule), chosen so every
 * key maps to exactly one path segment that no unzip tool treats as a
 * directory step: '~' → "~0", '/' → "~1", '\' → "~2", a leading '.' → "~3",
 * a leading '_' → "~4" (names beginning with '_' are reserved for the
 * format's own records such as _index and _attrs), and the empty key → "~".
 */
#ifndef ADX_ZIPW_H
#define ADX_ZIPW_H

#include <stdbool.h>
#include <stdint.h>
#include <zip.h>

#include "adx_afile.h"
#include "adx_common.h"
#include "adx_err.h"

/* Fill up to `cap` bytes; return the count, 0 at the end, -1 on error (after
 * setting `err`). */
typedef int64_t (*zw_read_fn)(void *st, uint8_t *buf, uint64_t cap, adx_err *err);
typedef void (*zw_free_fn)(void *st);

typedef struct zw {
    zip_t *za;
    afile *out;       /* the archive's bytes go here, not to a file of libzip's */
    uint64_t pos;     /* libzip's write position in `out` */
    bool emptied;     /* libzip asked to remove the archive: it has no members */
    zip_error_t oerr; /* the output source's error, for libzip */
    const adx_ctl *ctl;
    bool deflate;
    int level;
    bool canceled;
    adx_err inner; /* first error raised inside a generator */
    time_t mtime;
} zw;

/* Write a new archive into `out` (which the caller commits or aborts after
 * zw_close; libzip makes no temp file of its own). deflate=false stores
 * members. level 1-9. */
int zw_open(zw *w, afile *out, bool deflate, int level, const adx_ctl *ctl, adx_err *err);
/* Add a member. `size` is the exact byte count or -1 when unknown. Takes
 * ownership of `st` (freed with freefn, also on failure). */
int zw_add(zw *w, const char *name, zw_read_fn rd, zw_free_fn freefn, void *st, int64_t size,
           adx_err *err);
/* Write the archive into `out`. On failure `out` holds garbage: abort it. */
int zw_close(zw *w, adx_err *err);
/* Abandon without writing (safe after a failed zw_close or with w->za NULL). */
void zw_discard(zw *w);

/* Growable path for member names. */
typedef struct zw_path {
    char *s;
    size_t len, cap;
} zw_path;
/* Append "/" (unless empty) and the escaped key; returns the previous length
 * (the mark to pop back to) or SIZE_MAX on ENOMEM. */
size_t zw_path_push(zw_path *p, const char *key);
/* Append literal text (already safe). SIZE_MAX on ENOMEM. */
size_t zw_path_lit(zw_path *p, const char *text);
static inline void zw_path_pop(zw_path *p, size_t mark)
{
    p->len = mark;
    if (p->s) p->s[mark] = '\0';
}
void zw_path_free(zw_path *p);
/* Escaped form of `key` appended to p without a separator. */
size_t zw_path_esc(zw_path *p, const char *key);
/* The same without the leading-'_' rule: for csv bundles, which reserve no
 * names, so uns/_x.csv stays what write_csvs calls it. */
size_t zw_path_esc_file(zw_path *p, const char *key);

#endif
