/* adx_src (prefix adx_src_) — a pull source of request bytes: a file or
 * descriptor, a memory buffer, or a gzip stream wrapped around another
 * source. Decoders read requests through it in chunks, so a request is never
 * held whole in memory, and every reader sees the same limits:
 *
 * - the bytes a source delivers are counted; once they pass
 *   `max_body_bytes` (given at construction, 0 = unlimited) the read fails
 *   with ADX_E_LIMIT (413) naming max_body_bytes. On a gzip source that is
 *   the decompressed count, so a gzip bomb is a 413, never a big allocation;
 * - adx_src_consumed() is the number of bytes taken from the underlying
 *   input (the compressed bytes for gzip) and adx_src_total() its size when
 *   known (a regular file or a buffer; 0 = unknown), for progress.
 *
 * Ownership: a source owns what it opened (an fd it opened, the inner source
 * of a gzip wrapper) and never the memory of a buffer source, which must
 * outlive it. adx_src_close(NULL) is a no-op. A source is used by one thread.
 *
 * Errors: every call that can fail fills the caller's adx_err (pointer "")
 * and returns -1 / NULL: ADX_E_IO (the input cannot be read; the message
 * never names a path), ADX_E_LIMIT, ADX_E_INVALID_JSON for a corrupt gzip
 * stream ("the request is not valid gzip data"), ADX_E_NOMEM.
 */
#ifndef ADX_SRC_H
#define ADX_SRC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "adx_err.h"

typedef struct adx_src adx_src;

/* The interface a source implements (adx_src_new is for other modules'
 * sources, e.g. an upload being received). read: up to n bytes into buf;
 * bytes read, 0 at the end, -1 with err set. close may be NULL. */
typedef struct adx_src_ops {
    ssize_t (*read)(void *ud, void *buf, size_t n, adx_err *err);
    void (*close)(void *ud);
} adx_src_ops;

/* total = input size when known (0 = unknown). NULL on ENOMEM (err set;
 * ops->close(ud) has then been called). */
adx_src *adx_src_new(const adx_src_ops *ops, void *ud, uint64_t total, uint64_t max_bytes,
                     adx_err *err);
/* Read the file at `path` (regular files and pipes). */
adx_src *adx_src_open_path(const char *path, uint64_t max_bytes, adx_err *err);
/* Read from fd; own = close it on adx_src_close. total from fstat when it is
 * a regular file. */
adx_src *adx_src_open_fd(int fd, int own, uint64_t max_bytes, adx_err *err);
/* Read from memory (not copied, not owned). */
adx_src *adx_src_open_mem(const void *buf, size_t len, uint64_t max_bytes, adx_err *err);
/* Decompress `inner` (taken: closed with the wrapper, also on failure).
 * max_bytes applies to the decompressed bytes. gzip members may follow each
 * other (as gzip(1) writes them); trailing non-gzip bytes are an error. */
adx_src *adx_src_gzip(adx_src *inner, uint64_t max_bytes, adx_err *err);
/* adx_src_gzip when the next bytes of `s` are the gzip magic 1f 8b, else `s`
 * itself (with max_bytes applied to it). The peeked bytes are not lost. */
adx_src *adx_src_auto(adx_src *s, uint64_t max_bytes, adx_err *err);

/* Up to n bytes; 0 at the end; -1 with err set. */
ssize_t adx_src_read(adx_src *s, void *buf, size_t n, adx_err *err);
/* Read until n bytes or the end: the count, or -1. */
ssize_t adx_src_read_full(adx_src *s, void *buf, size_t n, adx_err *err);
uint64_t adx_src_delivered(const adx_src *s); /* bytes handed to readers so far */
uint64_t adx_src_consumed(const adx_src *s);  /* bytes taken from the input (compressed) */
uint64_t adx_src_total(const adx_src *s);     /* input size, 0 = unknown */
void adx_src_close(adx_src *s);

#endif
