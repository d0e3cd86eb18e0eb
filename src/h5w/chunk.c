/* Chunk layout helpers for the h5ad writer: h5py's chunk-shape heuristic (so
 * our files chunk like anndata's) and gathering one chunk out of a row-major
 * buffer for H5Dwrite_chunk. */
#include "h5w_internal.h"

#include <math.h>
#include <string.h>

#include "adx_model.h"

#define CHUNK_BASE (16.0 * 1024)
#define CHUNK_MIN (8.0 * 1024)
#define CHUNK_MAX (1024.0 * 1024)

static double prod(int ndim, const double *c)
{
    double p = 1;
    for (int i = 0; i < ndim; i++)
        p *= c[i];
    return p;
}

void h5w_guess_chunk(int ndim, const uint64_t *shape, size_t typesize, uint64_t *chunk)
{
    /* Doubles as in h5py (numpy float64), so the result matches it bit for
     * bit even for shapes whose byte size overflows 64 bits. */
    double c[AD_MAX_NDIM];
    for (int i = 0; i < ndim; i++)
        c[i] = shape[i] ? (double)shape[i] : 1024.0;

    double dset_size = prod(ndim, c) * (double)typesize;
    double target = CHUNK_BASE * pow(2.0, log10(dset_size / (1024.0 * 1024)));
    if (target > CHUNK_MAX)
        target = CHUNK_MAX;
    else if (target < CHUNK_MIN)
        target = CHUNK_MIN;

    for (int idx = 0;; idx++) {
        double bytes = prod(ndim, c) * (double)typesize;
        if ((bytes < target || fabs(bytes - target) / target < 0.5) && bytes < CHUNK_MAX) break;
        if (prod(ndim, c) == 1) break;
        c[idx % ndim] = ceil(c[idx % ndim] / 2.0);
    }
    for (int i = 0; i < ndim; i++)
        chunk[i] = (uint64_t)c[i];
}

void h5w_gather_chunk(const void *src, int ndim, const uint64_t *shape, size_t esz,
                      const uint64_t *chunk, const uint64_t *origin, void *dst)
{
    const unsigned char *s = src;
    unsigned char *d = dst;
    size_t ext[AD_MAX_NDIM], sstride[AD_MAX_NDIM], cstride[AD_MAX_NDIM];
    size_t chunk_elems = 1;
    int edge = 0;
    for (int i = 0; i < ndim; i++) {
        uint64_t left = shape[i] - origin[i];
        ext[i] = (size_t)(left < chunk[i] ? left : chunk[i]);
        if (ext[i] < chunk[i]) edge = 1;
        chunk_elems *= (size_t)chunk[i];
    }
    if (edge) memset(d, 0, chunk_elems * esz);

    sstride[ndim - 1] = cstride[ndim - 1] = 1;
    for (int i = ndim - 2; i >= 0; i--) {
        sstride[i] = sstride[i + 1] * (size_t)shape[i + 1];
        cstride[i] = cstride[i + 1] * (size_t)chunk[i + 1];
    }

    /* One memcpy per contiguous run along the last axis; an odometer walks
     * the other axes of the chunk's in-bounds part. */
    size_t idx[AD_MAX_NDIM] = {0};
    size_t run = ext[ndim - 1] * esz;
    for (;;) {
        size_t so = (size_t)origin[ndim - 1], co = 0;
        for (int i = 0; i < ndim - 1; i++) {
            so += ((size_t)origin[i] + idx[i]) * sstride[i];
            co += idx[i] * cstride[i];
        }
        memcpy(d + co * esz, s + so * esz, run);
        int k = ndim - 2;
        while (k >= 0) {
            if (++idx[k] < ext[k]) break;
            idx[k] = 0;
            k--;
        }
        if (k < 0) break;
    }
}
