/* adx_h5w (prefix h5w_) — model → h5ad (shared/spec/formats.md, anndata 0.8
 * on-disk format) with gzip (levels 0–9), lzf (filter 32000, byte-compatible
 * with h5py's, so h5py/anndata read it without a plugin) or no compression.
 *
 * Layout: what anndata 0.8 writes, attribute by attribute: encoding-type /
 * encoding-version on every element, bools as h5py's enum(int8){FALSE, TRUE},
 * obsm/varm/layers/obsp/varp/uns always present, sparse parts resizable
 * (unlimited max shape, hence chunked even without compression). Dict groups
 * track link creation order, so h5py/anndata list keys in insertion order.
 * Chunk shapes follow h5py's guess_chunk; scalars and zero-size datasets are
 * never chunked or compressed (except zero-size sparse parts, chunked but
 * unfiltered).
 *
 * Numeric chunks are compressed by this module outside HDF5 (libdeflate /
 * liblzf, on up to `threads` threads) and stored with H5Dwrite_chunk, so the
 * HDF5 global lock is held only for the I/O; a chunk that does not shrink is
 * stored raw with filter_mask bit 0 (both filters are optional). String
 * datasets go through HDF5's filter pipeline. A chunked dataset's chunks are
 * stored after later elements are written (at points the model alone fixes),
 * so compression overlaps the string datasets; at most 32 MiB of compressed
 * chunks wait in memory.
 *
 * Full disk: files are written through the module's own POSIX file driver,
 * which keeps a failed write from libhdf5 (1.10 crashes later after an
 * H5Fclose whose flush failed); the write fails with ADX_E_NO_SPACE (ENOSPC,
 * EDQUOT) or ADX_E_IO, "cannot write the h5ad file", the path and errno in
 * the log-only cause.
 *
 * h5w_write() writes exactly `path` (the caller chooses a temp name and
 * renames; see pipeline). On failure the file may be partial and the caller
 * unlinks it. The model must be sanitized: OBJECT/NULL elements, buffers that
 * disagree with their shapes, or an X that is not a 2-d matrix are
 * ADX_E_INTERNAL naming the element. Keys HDF5 cannot hold ("", ".", or
 * containing '/') are ADX_E_SCHEMA; HDF5 failures ADX_E_IO ("HDF5 failed
 * creating a dataset: name already exists" at "/var/dup"); a canceled ctl
 * ADX_E_CANCELED; bad options ADX_E_BAD_OPTION. Progress is the fraction of
 * ad_anndata_bytes() written, reported per chunk / slab of about 1 MiB.
 *
 * Report: a frame whose index name is also a column name (or not a usable
 * HDF5 name) gets its index stored as "_index" ("_index_1", … if that is a
 * column too) and an entry {path: frame, action: "index_renamed"}.
 *
 * Reproducible: object headers carry no timestamps and compression does not
 * depend on the thread count, so the same model and options give the same
 * bytes (and sha256).
 *
 * Thread-safe: several workers may write different files at once. HDF5's
 * automatic error printing is switched off for each calling thread.
 */
#ifndef ADX_H5W_H
#define ADX_H5W_H

#include <stdbool.h>
#include <stddef.h>

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

typedef struct h5w_opts {
    adx_compression compression; /* default gzip */
    int level;                   /* gzip 0–9 (default 4) */
    int threads; /* threads compressing chunks of one dataset: 0 = CPUs we may run on (at most 4),
                  * 1 = only the calling thread; zero-initialised opts mean auto */
    /* A small write (a model under 1 MiB) compresses its numeric chunks
     * before it waits for its turn at libhdf5 (one write at a time), so
     * that its turn is libhdf5's work only; true compresses them during the
     * turn instead, as a large write does. The file's bytes are the same
     * either way (tests compare them). */
    bool compress_in_turn;
} h5w_opts;

void h5w_opts_default(h5w_opts *o);
int h5w_write(const ad_anndata *a, const char *path, const h5w_opts *o, const adx_ctl *ctl,
              adx_report *rep, adx_err *err);

/* Register h5py's LZF filter (id 32000) with HDF5, encoder and decoder;
 * idempotent and thread-safe (pthread_once). h5w_write() calls it when lzf is
 * requested; the h5ad reader calls it once before opening a file so HDF5 can
 * decompress lzf datasets. Returns 0, or -1 when HDF5 refused it. */
int h5w_lzf_register(void);

/* Decompress one raw LZF chunk (h5py framing: a bare liblzf stream) into
 * `out` of `out_cap` bytes, for readers that fetch chunks with H5Dread_chunk.
 * Returns the decompressed size, or 0 when the input is corrupt or does not
 * fit (errno E2BIG: retry with a larger buffer). */
size_t h5w_lzf_decompress(const void *in, size_t n, void *out, size_t out_cap);

#endif
