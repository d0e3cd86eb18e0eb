/* adx_afile (prefix afile_) — files that appear whole or not at all, and the
 * other file-system steps every store shares (durable rename, tree removal,
 * fd copy). The only module that calls rename(2) and fsync(2).
 *
 *   afile_begin   creates a hidden temp file in the target's directory
 *                 (<dir>/<prefix><base>.XXXXXX, O_CLOEXEC, `mode` set with
 *                 fchmod so the umask does not decide)
 *   afile_write   appends; afile_pwrite writes at an offset (libzip seeks
 *                 back to patch headers); afile_fd / afile_temp_path hand
 *                 the file to a writer that does its own I/O (HDF5 needs a
 *                 name: it must have closed the file before the commit)
 *   afile_commit  fsync the file, rename it over the target, fsync the
 *                 directory; afile_abort unlinks the temp file.
 *
 * opts.sync weakens the commit where the caller answers for the rest:
 * AFILE_SYNC_FILE leaves the directory fsync to the caller, so several
 * files renamed into one directory need one (afile_sync_path afterwards;
 * until then a power failure may lose the new names). AFILE_SYNC_NONE
 * does no fsync at all: a process crash keeps the file whole or not at
 * all, but after a power failure the new name may survive while its data
 * does not (ext4 without a journal or with noauto_da_alloc, XFS), leaving
 * an empty file; only for files whose loss or emptiness is harmless.
 *
 * Ownership: an afile is owned by its caller until afile_commit or
 * afile_abort, which both free it (commit also on failure, after removing
 * the temp file). One thread at a time per afile; no global state.
 *
 * sha256 (opts.sha256): hashed while the bytes arrive as long as they arrive
 * in order. Once a writer seeks back (libzip patches each local header) or
 * has the fd or the name, the hash is taken at commit by reading the file
 * once, in the same pass as the fsync.
 *
 * Errors: every failing open, write, fsync, close and rename is an error
 * (ADX_E_IO; ADX_E_NO_SPACE for ENOSPC and EDQUOT); its client detail names
 * no path (the path and errno text are the log-only cause). After a failed commit the temp file is
 * gone and the target holds its previous content or, when only the directory fsync failed, nothing
 * (the new file is unlinked again: the caller was told it failed, so it must not find it).
 */
#ifndef ADX_AFILE_H
#define ADX_AFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "adx_err.h"

typedef struct afile afile;

typedef enum afile_sync {
    AFILE_SYNC_ALL = 0, /* file, rename, directory */
    AFILE_SYNC_FILE,    /* file, rename; the caller fsyncs the directory */
    AFILE_SYNC_NONE     /* rename only: atomic, not durable */
} afile_sync;

typedef struct afile_opts {
    mode_t mode;            /* 0 → 0644 */
    afile_sync sync;        /* 0 → AFILE_SYNC_ALL */
    bool sha256;            /* compute afile_result.sha256 */
    const char *tmp_prefix; /* NULL → "." (a store may clean its own prefix at start) */
} afile_opts;

typedef struct afile_result {
    uint64_t size;
    char sha256[65]; /* lowercase hex; "" unless opts.sha256 */
} afile_result;

/* `o` may be NULL (defaults). NULL on failure, with `err` set. */
afile *afile_begin(const char *target, const afile_opts *o, adx_err *err);
int afile_write(afile *f, const void *buf, size_t n, adx_err *err);
int afile_pwrite(afile *f, const void *buf, size_t n, uint64_t off, adx_err *err);
/* Append everything readable from `in` (from its current offset). */
int afile_copy_in(afile *f, int in, adx_err *err);
/* Replace the temp file by the file `src` (same file system: a rename,
 * otherwise a copy, hashing either way); `src` is gone after success. */
int afile_take(afile *f, const char *src, adx_err *err);
int afile_fd(afile *f);
const char *afile_temp_path(afile *f);
/* `out` may be NULL. Frees f. */
int afile_commit(afile *f, afile_result *out, adx_err *err);
void afile_abort(afile *f); /* NULL is fine */

/* `len` bytes of `text` as `path`: begin, write, commit. */
int afile_write_file(const char *path, const void *text, size_t len, mode_t mode, adx_err *err);
/* The same with a weaker commit (opts.sync above). */
int afile_write_file_sync(const char *path, const void *text, size_t len, mode_t mode,
                          afile_sync sync, adx_err *err);

/* Append `len` bytes to `path` (created with `mode` if missing) in place:
 * no temp file, no rename, so no inode is created or freed after the
 * first append (on ext4 without a journal each freed inode makes the next
 * file creations skip it for a minute or more). Whole or not at all as far
 * as the writer can tell: a failed or short write is truncated away again.
 * A crash or power failure can still leave a torn tail, which the reader
 * of such a log must recognise (one record a line: the last whole line
 * wins). sync: AFILE_SYNC_NONE no fsync, AFILE_SYNC_FILE fdatasync of the
 * file, AFILE_SYNC_ALL also of its directory (needed when the append
 * created the file, or to make other names in it durable). */
int afile_append(const char *path, const void *buf, size_t len, mode_t mode, afile_sync sync,
                 adx_err *err);

/* The whole of a small file, NUL-terminated (malloc'd, sized by the file),
 * its length in *len; NULL with errno (EFBIG: over `max` bytes). For the
 * files a program reads back whole (config, job records). */
char *afile_read_small(const char *path, size_t max, size_t *len);

/* rename(2) a file or folder, then fsync the directory of `to` (and of
 * `from` when it differs). 0; -1 with errno when nothing moved; 1 with
 * errno when it moved but a directory fsync failed. The caller words the
 * error (a missing `from` is often a 404, not an I/O error). */
int afile_rename(const char *from, const char *to);
/* fsync a file or a directory by name. 0, or -1 with errno. */
int afile_sync_path(const char *path);
/* Remove `name` under `dirfd` (or `path`), a folder with everything in it;
 * symlinks are removed, never followed; folders deeper than 16 levels are
 * refused. A missing entry is success. 0, or -1 with errno. */
int afile_remove_at(int dirfd, const char *name);
int afile_remove_tree(const char *path);
/* Copy from `in` (its current offset) to `out` until EOF, retrying EINTR
 * and short writes. 0, or -1 with errno. `copied` may be NULL. */
int afile_copy_fd(int in, int out, uint64_t *copied);

#endif
