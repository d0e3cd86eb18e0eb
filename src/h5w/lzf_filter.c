/* h5py's LZF filter (id 32000) for HDF5: same cd_values, same framing (a bare
 * liblzf stream per chunk, no header), so files written here open in h5py and
 * anndata without a plugin and h5py-written lzf files open here. Registered
 * with both encoder and decoder so the h5ad reader can read lzf datasets. */
#include "adx_h5w.h"
#include "h5w_internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#include <hdf5.h>
#include <liblzf/lzf.h>

/* HDF5 caps a chunk at 4 GiB, so no decompressed chunk can be larger. */
#define LZF_MAX_OUT ((size_t)UINT32_MAX)

size_t h5w_lzf_compress(const void *in, size_t n, void *out, size_t out_cap)
{
    if (n == 0 || n > UINT_MAX) return 0;
    if (out_cap > UINT_MAX) out_cap = UINT_MAX;
    return lzf_compress(in, (unsigned)n, out, (unsigned)out_cap);
}

size_t h5w_lzf_decompress(const void *in, size_t n, void *out, size_t out_cap)
{
    if (n == 0 || n > UINT_MAX) return 0;
    if (out_cap > UINT_MAX) out_cap = UINT_MAX;
    return lzf_decompress(in, (unsigned)n, out, (unsigned)out_cap);
}

/* Records the filter revision, the liblzf API version and the chunk size in
 * bytes, exactly as h5py does; the size is only a first guess for the
 * decompression buffer. */
static herr_t lzf_set_local(hid_t dcpl, hid_t type, hid_t space)
{
    unsigned flags = 0;
    size_t nelem = 8;
    unsigned values[8] = {0};
    if (H5Pget_filter_by_id2(dcpl, H5W_LZF_FILTER_ID, &flags, &nelem, values, 0, NULL, NULL) < 0)
        return -1;
    if (nelem < 3) nelem = 3;
    if (nelem > 8) nelem = 8;
    if (values[0] == 0) values[0] = H5W_LZF_FILTER_REV;
    if (values[1] == 0) values[1] = LZF_VERSION;

    hsize_t cdims[H5S_MAX_RANK];
    int nd = H5Pget_chunk(dcpl, H5S_MAX_RANK, cdims);
    if (nd < 0 || nd > H5S_MAX_RANK) return -1;
    size_t bytes = H5Tget_size(type);
    if (bytes == 0) return -1;
    for (int i = 0; i < nd; i++)
        if (__builtin_mul_overflow(bytes, (size_t)cdims[i], &bytes)) return -1;
    /* h5py stores the size as an unsigned int; larger chunks cannot exist. */
    values[2] = bytes > UINT_MAX ? 0 : (unsigned)bytes;
    return H5Pmodify_filter(dcpl, H5W_LZF_FILTER_ID, flags, nelem, values) < 0 ? -1 : 1;
}

static size_t lzf_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                         size_t nbytes, size_t *buf_size, void **buf)
{
    void *out = NULL;
    size_t out_cap, got = 0;

    if (!(flags & H5Z_FLAG_REVERSE)) {
        /* An output no larger than the input: when it does not fit the filter
         * fails, and because it is optional HDF5 stores the chunk raw. */
        out_cap = nbytes;
        out = malloc(out_cap ? out_cap : 1);
        if (!out) return 0;
        got = h5w_lzf_compress(*buf, nbytes, out, out_cap);
    } else {
        out_cap = (cd_nelmts >= 3 && cd_values[2] != 0) ? cd_values[2] : *buf_size;
        if (out_cap == 0) out_cap = nbytes;
        for (;;) {
            void *p = realloc(out, out_cap ? out_cap : 1);
            if (!p) break;
            out = p;
            errno = 0;
            got = h5w_lzf_decompress(*buf, nbytes, out, out_cap);
            if (got != 0 || errno != E2BIG || out_cap >= LZF_MAX_OUT) break;
            /* No usable size guess (vlen chunks get no cd_values): double,
             * so a highly compressed chunk costs a few retries, not many. */
            out_cap = out_cap > LZF_MAX_OUT / 2 ? LZF_MAX_OUT : out_cap * 2;
        }
    }
    if (got == 0) {
        free(out);
        return 0;
    }
    free(*buf);
    *buf = out;
    *buf_size = out_cap;
    return got;
}

static const H5Z_class2_t lzf_class = {
    H5Z_CLASS_T_VERS,
    (H5Z_filter_t)H5W_LZF_FILTER_ID,
    1,
    1,
    "lzf",
    NULL,
    (H5Z_set_local_func_t)lzf_set_local,
    (H5Z_func_t)lzf_filter,
};

static pthread_once_t lzf_once = PTHREAD_ONCE_INIT;
static int lzf_rc = -1;

static void lzf_register_once(void)
{
    lzf_rc = H5Zregister(&lzf_class) < 0 ? -1 : 0;
}

int h5w_lzf_register(void)
{
    pthread_once(&lzf_once, lzf_register_once);
    return lzf_rc;
}
