/* zlib's compress2, as HDF5's deflate filter (id 1) calls it, done by
 * libdeflate. The filter sets up a new zlib stream for every chunk (about
 * 270 KB allocated with calloc and its hash table cleared): for the many
 * small string datasets of a small export that was the largest part of
 * writing them. HDF5 refuses to replace a predefined filter, so this
 * definition in the executable takes the place of libz's compress2 for
 * libhdf5 (the only caller in the process: libzip streams with deflate(),
 * numeric chunks are compressed by the writer itself). Same format, a zlib
 * stream, so every reader decodes it; libdeflate's output never exceeds
 * the filter's buffer (n * 1.001 + 12: stored blocks cost 5 bytes per
 * 64 KiB). The compressor is the h5ad writer's for its thread
 * (h5w_deflate_use), reused across chunks; without one a call gets its own.
 * Decoding stays zlib's inflate. */
#include "h5w_internal.h"

#include <stddef.h>

#include <libdeflate.h>
#include <zlib.h>

/* initial-exec: a plain %fs access in the executable, no __tls_get_addr
 * (which would make the dynamic loader a NEEDED library of its own). */
#define TLS_IE __attribute__((tls_model("initial-exec")))
static _Thread_local struct libdeflate_compressor *tl_gz TLS_IE;
static _Thread_local int tl_level TLS_IE = -1;

void h5w_deflate_use(struct libdeflate_compressor *gz, int level)
{
    tl_gz = gz;
    tl_level = gz ? level : -1;
}

int compress2(Bytef *dest, uLongf *destLen, const Bytef *source, uLong sourceLen, int level)
{
    if (level == Z_DEFAULT_COMPRESSION) level = 6;
    if (level < 0 || level > 9) return Z_STREAM_ERROR;
    struct libdeflate_compressor *own = NULL, *gz = tl_gz;
    if (!gz || tl_level != level) gz = own = libdeflate_alloc_compressor(level);
    if (!gz) return Z_MEM_ERROR;
    size_t got = libdeflate_zlib_compress(gz, source, sourceLen, dest, *destLen);
    if (own) libdeflate_free_compressor(own);
    if (got == 0) return Z_BUF_ERROR;
    *destLen = (uLongf)got;
    return Z_OK;
}
