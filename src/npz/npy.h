/* npy (prefix npz_npy_) — internal: .npy headers and the fixed-width
 * unicode encoding numpy uses for '<U n' arrays. Exposed for unit tests. */
#ifndef ADX_NPY_H
#define ADX_NPY_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "adx_err.h"
#include "adx_model.h"

/* numpy descr of a numeric dtype ("|b1", "<i4", "<f8", …); NULL for AD_STR. */
const char *npz_npy_descr(ad_dtype t);

/* Complete header (magic … '\n') byte-identical to what numpy 1.24's
 * np.save writes for an array with this descr and shape (C order): the dict
 * text, 21-digit growth room after it, padding to 64 bytes, version 1.0, or
 * 2.0 when the header does not fit a 16-bit length. Returns a malloc'd buffer
 * (NULL on ENOMEM) and its length. */
uint8_t *npz_npy_header(const char *descr, int ndim, const uint64_t *shape, size_t *len);
/* Same with `descr` already as Python source (a structured dtype's
 * "[('a', '<U4'), ('b', '<f8')]"), placed in the dict as it is. */
uint8_t *npz_npy_header_repr(const char *descr, int ndim, const uint64_t *shape, size_t *len);
/* Wrap an arbitrary dict text (the part between magic and padding); the
 * version choice is made here, so tests can reach format 2.0: 1.0, 2.0
 * when the header passes 64 KiB, 3.0 when the text is not ASCII (UTF-8
 * field names). */
uint8_t *npz_npy_wrap(const char *dict, size_t dict_len, size_t *len);

/* Decode one code point from s[0..len) (len >= 1). Invalid or truncated
 * sequences yield U+FFFD for one byte, so widths and encodings agree on any
 * input. Returns bytes consumed (>= 1). */
size_t npz_utf8_next(const unsigned char *s, size_t len, uint32_t *cp);
/* Code points of a string (by the decoder above). */
uint64_t npz_utf8_count(const char *s, size_t len);
/* numpy's '<U n' width of a string array: the max code-point count, at least
 * 1 (numpy's minimum). */
uint64_t npz_str_width(const ad_array *a);
/* Fixed width pads every value to the longest: n values of which one is
 * long take n x longest, quadratic in the request (20,000 values and one of
 * 12,500 characters, 281 KB of JSON, made a 1 GB member). All string
 * arrays of one archive together may pad to NPZ_PAD_FLOOR code points (64
 * MiB) whatever their size, and beyond that to at most NPZ_PAD_RATIO times
 * their own UTF-8 bytes (one more a value): the strings of an export stay
 * linear in its input, and the allowance is the archive's, not each
 * member's (many small members could otherwise take 64 MiB each). Real
 * columns (names, barcodes, comments) pad by a few times; h5ad and csv
 * store strings unpadded. */
#define NPZ_PAD_FLOOR (16ull << 20)
#define NPZ_PAD_RATIO 64u
typedef struct npz_pad {
    uint64_t padded; /* code points of the string arrays written so far */
    uint64_t own;    /* their UTF-8 bytes, one more a value */
} npz_pad;
/* Count `a` padded to `width` into *acc when the totals stay within those
 * bounds (true); false leaves *acc as it was. *padded gets n x width
 * (UINT64_MAX on overflow). */
bool npz_str_pad(npz_pad *acc, const ad_array *a, uint64_t width, uint64_t *padded);

/* One .npy member served on demand: the header, then either `dlen` bytes of
 * `data` (borrowed) or, when `sa` is set, its strings as UTF-32 padded to
 * `width` code points. Reads of any size work, a code point may straddle two
 * reads. Takes ownership of `hdr` (freed on failure too). */
typedef struct npy_src npy_src;
npy_src *npz_src_new(uint8_t *hdr, size_t hlen, const void *data, uint64_t dlen, const ad_array *sa,
                     uint64_t width);
/* zw_read_fn: bytes produced, 0 at the end. */
int64_t npz_src_read(void *src, uint8_t *buf, uint64_t cap, adx_err *err);
void npz_src_free(void *src);

#endif
