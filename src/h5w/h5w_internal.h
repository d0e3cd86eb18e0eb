/* Internals of the h5ad writer shared between its source files and its unit
 * tests: chunk-shape heuristic, chunk gathering and the raw LZF codec. Not a
 * public interface; other modules use adx_h5w.h. */
#ifndef ADX_H5W_INTERNAL_H
#define ADX_H5W_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

/* Filter id h5py registered with the HDF Group for LZF, and the revision and
 * liblzf API version it records in cd_values[0..1] (h5py writes {4, 261, n}). */
#define H5W_LZF_FILTER_ID 32000
#define H5W_LZF_FILTER_REV 4

/* h5py's guess_chunk (h5py/_hl/filters.py): halve axes round-robin until a
 * chunk is near a size target that grows with the dataset (8 KiB … 1 MiB).
 * ndim >= 1 and every dim > 0 (zero-size datasets are never chunked). */
void h5w_guess_chunk(int ndim, const uint64_t *shape, size_t typesize, uint64_t *chunk);

/* Copy the chunk at element coordinates `origin` of a row-major array into
 * `dst` laid out as a full chunk; parts beyond the array edge are zeroed,
 * since HDF5 stores every chunk at full size. */
void h5w_gather_chunk(const void *src, int ndim, const uint64_t *shape, size_t esz,
                      const uint64_t *chunk, const uint64_t *origin, void *dst);

/* LZF with h5py's conventions: compression into a buffer no larger than the
 * input (0 = did not fit: store raw), decompression into `out_cap` bytes
 * (0 = corrupt input or buffer too small). */
size_t h5w_lzf_compress(const void *in, size_t n, void *out, size_t out_cap);

/* HDF5's deflate filter compresses with libdeflate (deflate_filter.c):
 * chunks this thread compresses at `level` use `gz` until
 * h5w_deflate_use(NULL, 0). */
struct libdeflate_compressor;
void h5w_deflate_use(struct libdeflate_compressor *gz, int level);

/* The file driver of vfd.c: sec2's I/O, but a failed write, truncate or
 * close sets *err (the first errno; NULL = not recorded) and is reported to
 * libhdf5 as a success, so H5Fclose always completes (libhdf5 1.10 leaves a
 * dangling file id behind a failed one and crashes on it later). A new file
 * access property list using it (close degree strong: the driver has closed
 * the file when H5Fclose returns), or H5I_INVALID_HID. A new file is kept
 * in memory up to 1 MiB and written when libhdf5 closes it, so a write
 * error of a small file shows only then (vfd.c). */
typedef struct h5w_vfd_info {
    int *err;
    /* The request's memory budget (NULL: none): the in-memory image of a
     * small file is charged to it; a refusal only sends the file to disk
     * sooner. */
    struct adx_budget *budget;
} h5w_vfd_info;
hid_t h5w_vfd_fapl(const h5w_vfd_info *info);

#endif
