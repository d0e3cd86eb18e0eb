/* h5ad writer: walks the model and writes anndata 0.8's on-disk layout.
 *
 * HDF5 (thread-safe build) serializes every API call on one global lock, so
 * the expensive part of numeric datasets -- compression -- happens here,
 * outside HDF5, and finished chunks go in with H5Dwrite_chunk. Strings need
 * HDF5's vlen machinery and go through its filter pipeline instead.
 *
 * Every hid is closed on every path: each function owns what it opens and
 * releases it at one `out:` label. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT (meson passes it too) */
#endif
#include "adx_h5w.h"
#include "h5w_internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>
#include <libdeflate.h>

/* Chunks are handed to HDF5 as raw file bytes, and the file types are
 * little-endian, so the model's host order must be little-endian too. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "h5ad writer assumes little-endian");

/* Contiguous and string datasets are written in slabs of about this many
 * bytes so cancel is polled and the HDF5 lock is released in between. */
#define SLAB_BYTES (1u << 20)

/* Columns whose names fit a compact column-order attribute (16 bytes each,
 * well under the 64 KiB object header message limit). */
#define COLUMN_ORDER_COMPACT_MAX 2048

/* Compression threads per write: `threads` = 0 picks the online CPUs up to
 * H5W_AUTO_THREADS; explicit values are capped at H5W_MAX_THREADS. */
#define H5W_AUTO_THREADS 4
#define H5W_MAX_THREADS 16

/* Helper threads start once this much array data waits to be compressed:
 * starting them costs more than they save on a small export. */
#define PARALLEL_MIN_BYTES (256u << 10)

/* Writes of models under this many bytes run one at a time (h5w_write). */
#define SMALL_WRITE_BYTES (1u << 20)

/* HDF5's default type-conversion buffer size, kept as the cap of ours. */
#define XFER_MAX (1u << 20)

typedef struct cpool cpool;
typedef struct pre_set pre_set;

typedef struct w_ctx {
    const h5w_opts *o;
    const adx_ctl *ctl;
    adx_report *rep;
    adx_err *err;
    adx_ptr ptr;
    hid_t t_str;  /* variable-length UTF-8 string */
    hid_t t_bool; /* numpy bool as h5py stores it: enum int8 {FALSE, TRUE} */
    int nthreads; /* compression threads */
    struct libdeflate_compressor *gz[H5W_MAX_THREADS]; /* one per thread */
    cpool *pool;  /* compression helpers, started by the first chunked dataset */
    pre_set *pre; /* a small write's chunks compressed before its turn, or NULL */
    uint64_t total, done;
    hid_t file;
    bool v18;            /* file switched to the 1.8 object format */
    const char *path;    /* for the log-only cause */
    int io_err;          /* first errno of the file driver (vfd.c), 0 = none */
    hid_t dxpl;          /* transfer list carrying xbuf (xfer_list) */
    unsigned char *xbuf; /* conversion buffer, then background buffer */
    size_t xcap;         /* bytes of each of the two */
} w_ctx;

/* ------------------------------------------------------------ errors */

typedef struct h5_msg {
    char buf[256];
    int n;
} h5_msg;

static herr_t h5_walk(unsigned n, const H5E_error2_t *e, void *ud)
{
    h5_msg *m = ud;
    /* Innermost entry first (upward walk): it names the actual cause. */
    if (m->n++ == 0 && e->desc) snprintf(m->buf, sizeof m->buf, "%s", e->desc);
    return 0;
}

/* A write the file driver could not make: the cause of whatever libhdf5
 * reports after it, since the data it then reads back was never stored. */
static int fail_io(w_ctx *w)
{
    H5Eclear2(H5E_DEFAULT);
    int e = w->io_err;
    adx_err_set(w->err, e == ENOSPC || e == EDQUOT ? ADX_E_NO_SPACE : ADX_E_IO,
                adx_ptr_str(&w->ptr), "cannot write the h5ad file");
    return adx_err_cause(w->err, "%s: %s", w->path, strerror(e));
}

static int fail_h5(w_ctx *w, const char *what)
{
    if (w->io_err) return fail_io(w);
    h5_msg m = {.buf = "", .n = 0};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk, &m);
    H5Eclear2(H5E_DEFAULT);
    /* The file driver's message is the only place a full disk shows. */
    bool full = m.buf[0] && (strstr(m.buf, strerror(ENOSPC)) || strstr(m.buf, strerror(EDQUOT)));
    adx_err_set(w->err, full ? ADX_E_NO_SPACE : ADX_E_IO, adx_ptr_str(&w->ptr), "HDF5 failed %s",
                what);
    /* libhdf5's text names its internals (and file names): for the log. */
    if (m.buf[0]) adx_err_cause(w->err, "HDF5: %s", m.buf);
    return -1;
}

static int fail_model(w_ctx *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_model(w_ctx *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    adx_err_vset(w->err, ADX_E_INTERNAL, adx_ptr_str(&w->ptr), fmt, ap);
    va_end(ap);
    return -1;
}

/* What HDF5 allows one object header message (64 KiB), less a margin for
 * the few bytes H5Tencode adds and the message's own header. */
enum { H5W_TYPE_MSG_MAX = 65536 - 64 };

static int fail_wide_record(w_ctx *w, size_t nfields, size_t bytes, bool estimate)
{
    adx_err_set(w->err, ADX_E_LIMIT, adx_ptr_str(&w->ptr),
                "a record array of %zu fields needs a type of %s%zu bytes, over the 64 KiB "
                "that h5ad (HDF5) keeps for a dataset's type: fewer or shorter field names",
                nfields, estimate ? "at least " : "", bytes);
    return -1;
}

static int check_cancel(w_ctx *w)
{
    if (w->io_err) return fail_io(w);
    if (adx_ctl_canceled(w->ctl))
        return adx_err_set(w->err, ADX_E_CANCELED, adx_ptr_str(&w->ptr), "export canceled");
    return 0;
}

static void advance(w_ctx *w, uint64_t bytes)
{
    w->done += bytes;
    if (w->total) {
        double f = (double)w->done / (double)w->total;
        adx_ctl_progress(w->ctl, f > 1 ? 1 : f);
    }
}

static void close_id(hid_t *id, herr_t (*fn)(hid_t))
{
    if (*id >= 0) fn(*id);
    *id = H5I_INVALID_HID;
}

/* The transfer list for writing `nelem` elements of `msize` bytes each in
 * memory. With HDF5's default list every H5Dwrite that converts (strings,
 * records) callocs a 1 MiB conversion buffer and, for variable-length data,
 * a 1 MiB background buffer: zeroing and faulting in 2 MiB per string
 * column was most of a small export. One pair per file is reused instead,
 * sized to the selection (up to the same 1 MiB), so a short column touches
 * only what it needs. HDF5 fills both before reading them: the background
 * from the file, the conversion buffer from `buf`. */
static hid_t xfer_list(w_ctx *w, uint64_t nelem, size_t msize)
{
    /* An element's file form is at most this: a string's pointer (8 bytes)
     * becomes length + global heap id (16) in the file, in records too. */
    size_t esz = 2 * msize + 8;
    size_t want = nelem > XFER_MAX / esz ? XFER_MAX / esz * esz : (size_t)nelem * esz;
    if (want < esz) want = esz;       /* one element even when it exceeds the cap */
    want = (want + 63) & ~(size_t)63; /* the background buffer stays aligned */
    if (want > w->xcap) {
        size_t two;
        unsigned char *nb = NULL;
        if (!__builtin_mul_overflow(want, (size_t)2, &two)) nb = malloc(two);
        if (!nb) {
            adx_err_set(w->err, ADX_E_NOMEM, adx_ptr_str(&w->ptr), "out of memory");
            return H5I_INVALID_HID;
        }
        free(w->xbuf);
        w->xbuf = nb;
        w->xcap = want;
    }
    if (H5Pset_buffer(w->dxpl, want, w->xbuf, w->xbuf + want) < 0) {
        fail_h5(w, "setting the transfer buffers");
        return H5I_INVALID_HID;
    }
    return w->dxpl;
}

/* ------------------------------------------------------------ attributes */

static int attr_write(w_ctx *w, hid_t obj, const char *name, hid_t type, hid_t space,
                      const void *buf)
{
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return fail_h5(w, "creating an attribute");
    int rc = 0;
    if (H5Awrite(a, type, buf) < 0) rc = fail_h5(w, "writing an attribute");
    H5Aclose(a);
    return rc;
}

static int attr_scalar(w_ctx *w, hid_t obj, const char *name, hid_t type, const void *buf)
{
    hid_t s = H5Screate(H5S_SCALAR);
    if (s < 0) return fail_h5(w, "creating a dataspace");
    int rc = attr_write(w, obj, name, type, s, buf);
    H5Sclose(s);
    return rc;
}

static int attr_array(w_ctx *w, hid_t obj, const char *name, hid_t type, hsize_t n, const void *buf)
{
    hid_t s = H5Screate_simple(1, &n, NULL);
    if (s < 0) return fail_h5(w, "creating a dataspace");
    int rc = attr_write(w, obj, name, type, s, buf);
    H5Sclose(s);
    return rc;
}

static int attr_str(w_ctx *w, hid_t obj, const char *name, const char *val)
{
    return attr_scalar(w, obj, name, w->t_str, &val);
}

static int set_encoding(w_ctx *w, hid_t obj, const char *type, const char *version)
{
    if (attr_str(w, obj, "encoding-type", type) < 0) return -1;
    return attr_str(w, obj, "encoding-version", version);
}

/* ------------------------------------------------------------ names */

/* HDF5 link names cannot hold '/', nor be empty or "."; anndata refuses such
 * keys too, so they are errors rather than silently altered paths. */
static int check_name(w_ctx *w, const char *name)
{
    if (!name) return fail_model(w, "element without a name");
    if (!name[0] || strcmp(name, ".") == 0 || strchr(name, '/'))
        return adx_err_set(w->err, ADX_E_SCHEMA, adx_ptr_str(&w->ptr),
                           "key '%s' cannot be stored in h5ad (empty, '.' or contains '/')", name);
    return 0;
}

static hid_t group_create(w_ctx *w, hid_t loc, const char *name, bool track_order)
{
    /* No modification times in object headers (h5py leaves them out of
     * datasets too): the same model gives the same bytes, so a file's
     * sha256/ETag is reproducible. Dicts keep insertion order (adx_model.h);
     * h5py iterates tracked groups in creation order, so uns/obsm read back
     * in that order. */
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0 || H5Pset_obj_track_times(gcpl, 0) < 0 ||
        (track_order &&
         H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0)) {
        if (gcpl >= 0) H5Pclose(gcpl);
        fail_h5(w, "creating a group property list");
        return H5I_INVALID_HID;
    }
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (g < 0) fail_h5(w, "creating a group");
    return g;
}

/* ------------------------------------------------------------ datasets */

static hid_t file_type(const w_ctx *w, ad_dtype t)
{
    switch (t) {
    case AD_BOOL:
        return w->t_bool;
    case AD_I8:
        return H5T_STD_I8LE;
    case AD_I16:
        return H5T_STD_I16LE;
    case AD_I32:
        return H5T_STD_I32LE;
    case AD_I64:
        return H5T_STD_I64LE;
    case AD_U8:
        return H5T_STD_U8LE;
    case AD_U16:
        return H5T_STD_U16LE;
    case AD_U32:
        return H5T_STD_U32LE;
    case AD_U64:
        return H5T_STD_U64LE;
    case AD_F32:
        return H5T_IEEE_F32LE;
    case AD_F64:
        return H5T_IEEE_F64LE;
    case AD_STR:
        return w->t_str;
    default:
        return H5I_INVALID_HID;
    }
}

static uint64_t arr_bytes(const ad_array *a)
{
    /* Same measure as ad_anndata_bytes(), which gives the progress total. */
    if (a->dtype == AD_STR) return (a->soff ? a->soff[a->n] : 0) + (a->n + 1) * 8;
    return a->n * ad_dtype_size(a->dtype);
}

/* The writer trusts sizes only after checking they describe the buffers. */
static int check_array(w_ctx *w, const ad_array *a)
{
    uint64_t n;
    size_t b;
    if (a->dtype >= AD_DTYPE__COUNT || a->ndim < 0 || a->ndim > AD_MAX_NDIM)
        return fail_model(w, "array with an invalid dtype or rank");
    if (ad_shape_product(a->ndim, a->shape, &n) < 0 || n != a->n)
        return fail_model(w, "array shape does not match its %llu elements",
                          (unsigned long long)a->n);
    if (a->dtype == AD_STR) {
        if (!a->soff || !a->str || a->n == UINT64_MAX)
            return fail_model(w, "string array without buffers");
    } else if (ad_bytes(a->dtype, a->n, &b) < 0 || (a->n && !a->data)) {
        return fail_model(w, "numeric array without a buffer of %llu elements",
                          (unsigned long long)a->n);
    }
    return 0;
}

/* Rows [r0, r0+nr) along axis 0 of dataset `d`, from `buf` (memory laid out
 * like the file for numbers, char* per element for strings). */
static int write_rows(w_ctx *w, hid_t d, hid_t type, const ad_array *a, uint64_t r0, uint64_t nr,
                      const void *buf)
{
    hsize_t start[AD_MAX_NDIM] = {0}, count[AD_MAX_NDIM];
    for (int i = 0; i < a->ndim; i++)
        count[i] = a->shape[i];
    start[0] = r0;
    count[0] = nr;
    hid_t fs = H5Dget_space(d), ms = H5I_INVALID_HID;
    int rc = -1;
    if (fs < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        (ms = H5Screate_simple(a->ndim, count, NULL)) < 0) {
        fail_h5(w, "selecting rows");
        goto out;
    }
    uint64_t nelem = 1;
    for (int i = 0; i < a->ndim; i++)
        nelem *= count[i]; /* a part of the checked a->n */
    hid_t dx = xfer_list(w, nelem, a->dtype == AD_STR ? sizeof(char *) : ad_dtype_size(a->dtype));
    if (dx < 0) goto out;
    if (H5Dwrite(d, type, ms, fs, dx, buf) < 0) {
        fail_h5(w, "writing a dataset");
        goto out;
    }
    rc = 0;
out:
    close_id(&ms, H5Sclose);
    close_id(&fs, H5Sclose);
    return rc;
}

/* Writes a whole array by slabs of rows; `rows_per` is a multiple of the
 * chunk's first dimension for chunked string datasets so no chunk is filtered
 * twice. */
static int write_slabs(w_ctx *w, hid_t d, hid_t type, const ad_array *a, uint64_t rows_per)
{
    uint64_t row_elems = a->shape[0] ? a->n / a->shape[0] : 0;
    if (a->n == 0) return 0;
    if (rows_per > a->shape[0]) rows_per = a->shape[0];
    const char **ptrs = NULL;
    if (a->dtype == AD_STR) {
        size_t b;
        if (__builtin_mul_overflow(rows_per, row_elems, &b) ||
            __builtin_mul_overflow(b, sizeof *ptrs, &b))
            return fail_model(w, "string slab size overflows");
        ptrs = malloc(b);
        if (!ptrs) return adx_err_set(w->err, ADX_E_NOMEM, adx_ptr_str(&w->ptr), "out of memory");
    }
    size_t esz = ad_dtype_size(a->dtype);
    int rc = 0;
    for (uint64_t r = 0; r < a->shape[0] && rc == 0; r += rows_per) {
        uint64_t nr = a->shape[0] - r < rows_per ? a->shape[0] - r : rows_per;
        uint64_t e0 = r * row_elems, ne = nr * row_elems;
        const void *buf;
        uint64_t bytes;
        if (ptrs) {
            for (uint64_t i = 0; i < ne; i++)
                ptrs[i] = ad_str_at(a, e0 + i);
            buf = ptrs;
            bytes = a->soff[e0 + ne] - a->soff[e0] + ne * 8;
        } else {
            buf = (const unsigned char *)a->data + e0 * esz;
            bytes = ne * esz;
        }
        if ((rc = check_cancel(w)) < 0) break;
        rc = write_rows(w, d, type, a, r, nr, buf);
        advance(w, bytes);
    }
    free(ptrs);
    return rc;
}

/* Chunks of numeric datasets are gathered and compressed outside HDF5 by a
 * pool of helper threads (started at the first chunked dataset, kept until
 * the file is closed) and by the calling thread, which alone calls HDF5.
 *
 * A chunked dataset is created in its place, but its chunks are stored
 * later ("drained"): the calling thread goes on with the next elements
 * (string datasets, groups, attributes: work only it can do) while the
 * helpers compress. Datasets are drained oldest first, at points that
 * depend on the model only, never on timing, so the file's bytes are the
 * same on any machine and with any number of threads: when the datasets
 * waiting would exceed H5W_DEFER_BYTES of array data or H5W_DEFER_MAX
 * datasets, a dataset larger than H5W_DEFER_BYTES at once, everything
 * before the file is closed. While draining, the calling thread compresses
 * too whenever its next chunk is not ready. Compressed chunks waiting to
 * be stored are bounded by H5W_AHEAD_BYTES (plus a chunk per thread). */
#define H5W_DEFER_BYTES ((uint64_t)64 << 20)
#define H5W_DEFER_MAX 64
#define H5W_AHEAD_BYTES ((uint64_t)32 << 20)

typedef struct cout {
    void *buf; /* the chunk as stored (malloc'd) */
    size_t n;
    uint32_t mask;
    int state; /* 0: not done yet, 1: ready, -1: out of memory */
} cout;

typedef struct cjob {
    hid_t d; /* owned until drained */
    const ad_array *a;
    uint64_t chunk[AD_MAX_NDIM], nch[AD_MAX_NDIM];
    size_t cb; /* bytes of one full chunk */
    uint64_t total, next, written, raw;
    uint64_t inflight; /* chunks being compressed */
    cout *out;         /* one per chunk */
    adx_ptr ptr;       /* the element, for errors found while draining */
    struct cjob *later;
} cjob;

typedef struct scratch {
    unsigned char *raw, *cmp;
    size_t cap;
} scratch;

/* j's chunk layout for array a cut in chunks of `chunk`: the chunk counts
 * per dimension, the bytes of one full chunk and the number of chunks;
 * -1 when a chunk's bytes overflow size_t. */
static int chunk_layout(cjob *j, const ad_array *a, const uint64_t *chunk)
{
    j->a = a;
    j->cb = ad_dtype_size(a->dtype);
    j->total = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (__builtin_mul_overflow(j->cb, (size_t)chunk[i], &j->cb)) return -1;
        j->chunk[i] = chunk[i];
        j->nch[i] = (a->shape[i] + chunk[i] - 1) / chunk[i];
        j->total *= j->nch[i]; /* <= n elements, which fits */
    }
    return 0;
}

struct cpool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* helpers: a chunk to take, or stop */
    pthread_cond_t done; /* the writer: a chunk became ready */
    bool stop, started;
    adx_compression comp;
    cjob *head, *tail; /* waiting datasets, oldest first */
    size_t njobs;
    uint64_t queued; /* array bytes of the waiting datasets (decides drains) */
    uint64_t ahead;  /* bytes taken or compressed and not yet stored */
    /* Threads asleep on `work` (helpers) and `done` (the writer): a wake-up
     * is a futex call, made only when someone sleeps (every chunk would
     * otherwise pay one or two). */
    int hwait, wwait;
    scratch mine; /* the calling thread's */
    int nhelpers;
    pthread_t tid[H5W_MAX_THREADS];
    struct helper {
        struct cpool *p;
        struct libdeflate_compressor *gz;
        scratch s;
    } h[H5W_MAX_THREADS];
};

static void wait_on(pthread_cond_t *c, pthread_mutex_t *mu, int *sleepers)
{
    (*sleepers)++;
    pthread_cond_wait(c, mu);
    (*sleepers)--;
}

/* filter_mask bit 0 marks a chunk kept raw because compression did not make
 * it smaller; both filters are optional (as h5py and H5Pset_deflate register
 * them), so readers skip them for that chunk. Returns 0 or -1 (ENOMEM). */
static int compress_chunk(adx_compression comp, const cjob *j, uint64_t k,
                          struct libdeflate_compressor *gz, scratch *sc, cout *o)
{
    const ad_array *a = j->a;
    size_t cb = j->cb;
    if (sc->cap < cb) {
        free(sc->raw);
        free(sc->cmp);
        sc->raw = malloc(cb);
        sc->cmp = malloc(cb);
        sc->cap = sc->raw && sc->cmp ? cb : 0;
        if (!sc->cap) return -1;
    }
    uint64_t origin[AD_MAX_NDIM];
    for (int i = a->ndim - 1; i >= 0; i--) {
        origin[i] = (k % j->nch[i]) * j->chunk[i];
        k /= j->nch[i];
    }
    h5w_gather_chunk(a->data, a->ndim, a->shape, ad_dtype_size(a->dtype), j->chunk, origin,
                     sc->raw);
    size_t got = 0;
    if (comp == ADX_COMP_GZIP)
        got = libdeflate_zlib_compress(gz, sc->raw, cb, sc->cmp, cb);
    else if (comp == ADX_COMP_LZF)
        got = h5w_lzf_compress(sc->raw, cb, sc->cmp, cb);
    /* NONE: chunked only to be resizable, no filter to skip. */
    bool raw = got == 0 || got >= cb;
    o->n = raw ? cb : got;
    o->mask = raw && comp != ADX_COMP_NONE ? 1 : 0;
    o->buf = malloc(o->n);
    if (!o->buf) return -1;
    memcpy(o->buf, raw ? sc->raw : sc->cmp, o->n);
    return 0;
}

/* A small write's numeric chunks, compressed before it takes its turn
 * (h5w_write), so that the turn is libhdf5's calls alone and another
 * worker's compression runs beside it instead of waiting. The chunks are
 * those write_chunks makes (same h5w_guess_chunk, same compressor and
 * level), handed over as if a helper had compressed them, so the file's
 * bytes are the same. Entries are sorted by array for lookup. */
typedef struct pre_chunks {
    cjob j;         /* layout and out[] (NULL once handed to write_chunks) */
    uint64_t bytes; /* sum of j.out[k].n */
} pre_chunks;

struct pre_set {
    pre_chunks *v;
    size_t n, cap;
    bool nomem;
    uint64_t charged; /* to the request's budget: every chunk at its full size */
};

/* Numeric arrays write_array stores chunk by chunk; record array fields
 * become one compound dataset instead. */
static void pre_collect(const ad_array *arr, ad_kind holder, void *ud)
{
    pre_set *ps = ud;
    if (ps->nomem || holder == AD_K_RECARRAY || arr->dtype == AD_STR || arr->ndim == 0 ||
        arr->n == 0)
        return;
    if (ps->n == ps->cap) {
        size_t nc = ps->cap ? ps->cap * 2 : 16;
        pre_chunks *nv = realloc(ps->v, nc * sizeof *nv);
        if (!nv) {
            ps->nomem = true;
            return;
        }
        ps->v = nv;
        ps->cap = nc;
    }
    ps->v[ps->n++] = (pre_chunks){.j.a = arr};
}

static int pre_cmp(const void *x, const void *y)
{
    uintptr_t a = (uintptr_t)((const pre_chunks *)x)->j.a;
    uintptr_t b = (uintptr_t)((const pre_chunks *)y)->j.a;
    return a < b ? -1 : a > b;
}

static void pre_free(pre_set *ps, const adx_ctl *ctl)
{
    if (!ps) return;
    for (size_t i = 0; i < ps->n; i++) {
        for (uint64_t k = 0; ps->v[i].j.out && k < ps->v[i].j.total; k++)
            free(ps->v[i].j.out[k].buf);
        free(ps->v[i].j.out);
    }
    adx_ctl_release(ctl, ps->charged);
    free(ps->v);
    free(ps);
}

/* NULL when there is nothing to compress, or the request's memory budget or
 * the machine's memory refuses it: the write then compresses during its
 * turn, as a large one does, with the pool's bounded buffers. The chunks
 * (each at most its full size; a small model's arrays are under
 * SMALL_WRITE_BYTES) are charged to the budget until the write ends. */
static pre_set *pre_compress(const ad_anndata *a, const h5w_opts *o, const adx_ctl *ctl)
{
    if (o->compression != ADX_COMP_GZIP && o->compression != ADX_COMP_LZF) return NULL;
    pre_set *ps = calloc(1, sizeof *ps);
    if (!ps) return NULL;
    ad_anndata_walk(a, &(ad_walk){.on_array = pre_collect, .ud = ps});
    uint64_t need = 0;
    for (size_t i = 0; i < ps->n && !ps->nomem; i++) {
        cjob *j = &ps->v[i].j;
        uint64_t chunk[AD_MAX_NDIM];
        h5w_guess_chunk(j->a->ndim, j->a->shape, ad_dtype_size(j->a->dtype), chunk);
        if (chunk_layout(j, j->a, chunk) < 0) ps->nomem = true;
        need += j->total * (j->cb + sizeof *j->out);
    }
    adx_err refused; /* not an error of the export: it compresses in its turn */
    adx_err_init(&refused);
    if (ps->nomem || !ps->n || adx_ctl_charge(ctl, need, NULL, &refused) < 0) {
        pre_free(ps, ctl);
        return NULL;
    }
    ps->charged = need;
    struct libdeflate_compressor *gz = NULL;
    if (o->compression == ADX_COMP_GZIP && !(gz = libdeflate_alloc_compressor(o->level)))
        ps->nomem = true;
    scratch sc = {0};
    for (size_t i = 0; i < ps->n && !ps->nomem; i++) {
        cjob *j = &ps->v[i].j;
        if (!(j->out = calloc(j->total, sizeof *j->out))) ps->nomem = true;
        for (uint64_t k = 0; k < j->total && !ps->nomem; k++) {
            if (compress_chunk(o->compression, j, k, gz, &sc, &j->out[k]) < 0) {
                ps->nomem = true;
                break;
            }
            j->out[k].state = 1;
            ps->v[i].bytes += j->out[k].n;
        }
    }
    free(sc.raw);
    free(sc.cmp);
    if (gz) libdeflate_free_compressor(gz);
    if (ps->nomem) {
        pre_free(ps, ctl);
        return NULL;
    }
    qsort(ps->v, ps->n, sizeof *ps->v, pre_cmp);
    return ps;
}

/* The chunks compressed in advance for the dataset laid out as `l`, or
 * NULL (none, or another layout). */
static pre_chunks *pre_take(pre_set *ps, const cjob *l)
{
    if (!ps) return NULL;
    pre_chunks key = {.j.a = l->a};
    pre_chunks *pc = bsearch(&key, ps->v, ps->n, sizeof *ps->v, pre_cmp);
    if (!pc || !pc->j.out) return NULL;
    for (int d = 0; d < l->a->ndim; d++)
        if (pc->j.chunk[d] != l->chunk[d]) return NULL;
    return pc;
}

/* With p->mu held: the next chunk anyone may compress, oldest dataset
 * first, while the bytes ahead of the file stay bounded. */
static cjob *take_chunk(cpool *p, uint64_t *k)
{
    for (cjob *j = p->head; j; j = j->later) {
        if (j->next >= j->total) continue;
        if (p->ahead && p->ahead + j->cb > H5W_AHEAD_BYTES) return NULL;
        p->ahead += j->cb;
        j->inflight++;
        *k = j->next++;
        return j;
    }
    return NULL;
}

/* Compresses chunk k of j without p->mu held, then publishes it. */
static void run_chunk(cpool *p, cjob *j, uint64_t k, struct libdeflate_compressor *gz, scratch *sc)
{
    pthread_mutex_unlock(&p->mu);
    cout o = {0};
    int r = compress_chunk(p->comp, j, k, gz, sc, &o);
    pthread_mutex_lock(&p->mu);
    o.state = r == 0 ? 1 : -1;
    p->ahead -= j->cb - (r == 0 ? o.n : 0);
    j->out[k] = o;
    j->inflight--;
    if (p->wwait) pthread_cond_broadcast(&p->done);
}

static void *helper_run(void *arg)
{
    struct helper *h = arg;
    cpool *p = h->p;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        uint64_t k;
        cjob *j = take_chunk(p, &k);
        if (j)
            run_chunk(p, j, k, h->gz, &h->s);
        else
            wait_on(&p->work, &p->mu, &p->hwait);
    }
    pthread_mutex_unlock(&p->mu);
    free(h->s.raw);
    free(h->s.cmp);
    return NULL;
}

/* The pool of w, made on first use (NULL on ENOMEM); its helpers start
 * with start_helpers. */
static cpool *pool_get(w_ctx *w)
{
    if (w->pool) return w->pool;
    cpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->comp = w->o->compression;
    w->pool = p;
    return p;
}

/* Once, when enough work waits. A helper that cannot be started leaves more
 * work to the others (with none, the calling thread compresses everything
 * while draining); the file's bytes are the same either way. */
static void start_helpers(w_ctx *w, cpool *p)
{
    if (p->started || p->queued < PARALLEL_MIN_BYTES) return;
    p->started = true;
    for (int t = 1; t < w->nthreads; t++) {
        p->h[p->nhelpers] = (struct helper){.p = p, .gz = w->gz[t]};
        if (pthread_create(&p->tid[p->nhelpers], NULL, helper_run, &p->h[p->nhelpers]) != 0) break;
        p->nhelpers++;
    }
}

static void job_free(cjob *j)
{
    for (uint64_t k = 0; k < j->total; k++)
        free(j->out[k].buf);
    free(j->out);
    close_id(&j->d, H5Dclose);
    free(j);
}

/* With p->mu held: unlinks the oldest dataset once none of its chunks is
 * being compressed (so none of its buffers is being written). Waiting for
 * the other datasets' chunks too starved the writer: a helper always takes
 * its next chunk before the writer wakes. */
static cjob *pop_job(cpool *p)
{
    cjob *j = p->head;
    j->total = j->next; /* nothing more is handed out */
    while (j->inflight)
        wait_on(&p->done, &p->mu, &p->wwait);
    for (uint64_t k = j->written; k < j->total; k++)
        if (j->out[k].state == 1) p->ahead -= j->out[k].n;
    p->head = j->later;
    if (!p->head) p->tail = NULL;
    p->njobs--;
    p->queued -= j->raw;
    return j;
}

/* Stores every chunk of the oldest waiting dataset, in order. */
static int drain_one(w_ctx *w, cpool *p)
{
    cjob *j = p->head;
    adx_ptr here = w->ptr;
    w->ptr = j->ptr;
    size_t esz = ad_dtype_size(j->a->dtype);
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    for (uint64_t k = 0; k < j->total && rc == 0; k++) {
        cout *o = &j->out[k];
        while (o->state == 0) {
            uint64_t t;
            cjob *tj = take_chunk(p, &t);
            if (tj)
                run_chunk(p, tj, t, w->gz[0], &p->mine);
            else
                wait_on(&p->done, &p->mu, &p->wwait);
        }
        pthread_mutex_unlock(&p->mu);
        hsize_t off[AD_MAX_NDIM];
        uint64_t real = esz, rest = k;
        for (int i = j->a->ndim - 1; i >= 0; i--) {
            off[i] = (rest % j->nch[i]) * j->chunk[i];
            rest /= j->nch[i];
            uint64_t left = j->a->shape[i] - off[i];
            real *= left < j->chunk[i] ? left : j->chunk[i];
        }
        if (o->state < 0)
            rc = adx_err_set(w->err, ADX_E_NOMEM, adx_ptr_str(&w->ptr), "out of memory");
        else if ((rc = check_cancel(w)) == 0 &&
                 H5Dwrite_chunk(j->d, H5P_DEFAULT, o->mask, off, o->n, o->buf) < 0)
            rc = fail_h5(w, "writing a chunk");
        if (rc == 0) advance(w, real);
        free(o->buf);
        o->buf = NULL;
        pthread_mutex_lock(&p->mu);
        if (o->state == 1) p->ahead -= o->n;
        j->written = k + 1;
        if (p->hwait) pthread_cond_broadcast(&p->work);
    }
    /* H5Dclose (in job_free) may wait for libhdf5's lock: not with ours
     * held, which the helpers need to go on. */
    cjob *done = pop_job(p);
    pthread_mutex_unlock(&p->mu);
    job_free(done);
    w->ptr = here;
    return rc;
}

/* Before the file is closed: every waiting dataset stored (ok) or dropped. */
static int drain_all(w_ctx *w, bool ok)
{
    cpool *p = w->pool;
    int rc = 0;
    while (p && p->head) {
        if (ok && rc == 0) {
            rc = drain_one(w, p);
        } else {
            pthread_mutex_lock(&p->mu);
            cjob *j = pop_job(p);
            pthread_mutex_unlock(&p->mu);
            job_free(j);
        }
    }
    return rc;
}

static void pool_free(cpool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < p->nhelpers; t++)
        pthread_join(p->tid[t], NULL);
    free(p->mine.raw);
    free(p->mine.cmp);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Queues dataset *d (taken over: *d is reset) for its chunks to be stored
 * later; see the comment above cout. */
static int write_chunks(w_ctx *w, hid_t *d, const ad_array *a, const uint64_t *chunk)
{
    cjob layout = {0};
    if (chunk_layout(&layout, a, chunk) < 0) return fail_model(w, "chunk size overflows");
    cpool *p = pool_get(w);
    cjob *j = p ? calloc(1, sizeof *j) : NULL;
    pre_chunks *pc = j ? pre_take(w->pre, &layout) : NULL;
    if (j) {
        *j = layout;
        j->out = pc ? pc->j.out : calloc(j->total, sizeof *j->out);
    }
    if (!j || !j->out) {
        free(j);
        return adx_err_set(w->err, ADX_E_NOMEM, adx_ptr_str(&w->ptr), "out of memory");
    }
    uint64_t ready = 0;
    if (pc) {
        /* compressed before the turn: nothing left to hand out */
        pc->j.out = NULL;
        j->next = j->total;
        ready = pc->bytes;
    }
    j->d = *d;
    *d = H5I_INVALID_HID;
    j->raw = a->n * ad_dtype_size(a->dtype);
    j->ptr = w->ptr;
    int rc = 0;
    while (rc == 0 && p->head &&
           (p->njobs >= H5W_DEFER_MAX || p->queued + j->raw > H5W_DEFER_BYTES))
        rc = drain_one(w, p);
    if (rc) {
        job_free(j);
        return rc;
    }
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->later = j;
    else
        p->head = j;
    p->tail = j;
    p->njobs++;
    p->queued += j->raw;
    p->ahead += ready;
    if (p->hwait) pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    if (j->next < j->total) start_helpers(w, p);
    if (j->raw > H5W_DEFER_BYTES) return drain_one(w, p);
    return 0;
}

enum {
    WA_ENCODE = 1,   /* encoding attributes (the parts of a sparse matrix carry none) */
    WA_RESIZABLE = 2 /* unlimited max shape, hence always chunked, as anndata writes
                        sparse parts so they can be appended to */
};

/* One array element (dense, string, 0-d) as a dataset. */
static int write_array(w_ctx *w, hid_t loc, const char *name, const ad_array *a, int flags)
{
    if (check_cancel(w) < 0 || check_array(w, a) < 0) return -1;
    bool str = a->dtype == AD_STR;
    hid_t type = file_type(w, a->dtype);
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, d = H5I_INVALID_HID;
    int rc = -1;
    uint64_t chunk[AD_MAX_NDIM];
    bool filtered = a->ndim > 0 && a->n > 0 && w->o->compression != ADX_COMP_NONE;
    bool chunked = filtered || (a->ndim > 0 && (flags & WA_RESIZABLE));

    if (a->ndim == 0) {
        space = H5Screate(H5S_SCALAR);
    } else {
        hsize_t dims[AD_MAX_NDIM], maxdims[AD_MAX_NDIM];
        for (int i = 0; i < a->ndim; i++) {
            dims[i] = a->shape[i];
            maxdims[i] = (flags & WA_RESIZABLE) ? H5S_UNLIMITED : dims[i];
        }
        space = H5Screate_simple(a->ndim, dims, maxdims);
    }
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (space < 0 || dcpl < 0 || H5Pset_obj_track_times(dcpl, 0) < 0) {
        fail_h5(w, "creating a dataspace");
        goto out;
    }
    if (chunked) {
        hsize_t cd[AD_MAX_NDIM];
        h5w_guess_chunk(a->ndim, a->shape, str ? sizeof(char *) : ad_dtype_size(a->dtype), chunk);
        for (int i = 0; i < a->ndim; i++)
            cd[i] = chunk[i];
        herr_t e = H5Pset_chunk(dcpl, a->ndim, cd);
        if (e >= 0 && filtered && w->o->compression == ADX_COMP_GZIP)
            e = H5Pset_deflate(dcpl, (unsigned)w->o->level);
        else if (e >= 0 && filtered)
            e = H5Pset_filter(dcpl, H5W_LZF_FILTER_ID, H5Z_FLAG_OPTIONAL, 0, NULL);
        if (e < 0) {
            fail_h5(w, "setting up chunks and compression");
            goto out;
        }
    }
    d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) {
        fail_h5(w, "creating a dataset");
        goto out;
    }
    if (flags & WA_ENCODE) {
        const char *enc =
            a->ndim == 0 ? (str ? "string" : "numeric-scalar") : (str ? "string-array" : "array");
        if (set_encoding(w, d, enc, "0.2.0") < 0) goto out;
    }

    if (a->ndim == 0) {
        const char *s = str ? ad_str_at(a, 0) : NULL;
        hid_t dx = xfer_list(w, 1, str ? sizeof(char *) : ad_dtype_size(a->dtype));
        if (dx < 0) goto out;
        if (H5Dwrite(d, type, H5S_ALL, H5S_ALL, dx, str ? (const void *)&s : a->data) < 0) {
            fail_h5(w, "writing a scalar");
            goto out;
        }
        advance(w, arr_bytes(a));
    } else if (chunked && !str && a->n > 0) {
        if (write_chunks(w, &d, a, chunk) < 0) goto out;
    } else if (a->n > 0) {
        uint64_t row_bytes =
            (a->n / a->shape[0]) * (str ? sizeof(char *) : ad_dtype_size(a->dtype));
        uint64_t rows = row_bytes >= SLAB_BYTES ? 1 : SLAB_BYTES / row_bytes;
        if (chunked) rows = rows < chunk[0] ? chunk[0] : rows - rows % chunk[0];
        if (write_slabs(w, d, type, a, rows) < 0) goto out;
    }
    rc = 0;
out:
    close_id(&d, H5Dclose);
    close_id(&dcpl, H5Pclose);
    close_id(&space, H5Sclose);
    return rc;
}

/* ------------------------------------------------------------ elements */

static int write_elem(w_ctx *w, hid_t loc, const char *name, const ad_elem *e);
static int write_dict(w_ctx *w, hid_t loc, const char *name, const ad_dict *dict);
static int write_frame(w_ctx *w, hid_t loc, const char *name, const ad_frame *f);

static int write_sparse(w_ctx *w, hid_t loc, const char *name, const ad_sparse *sp)
{
    if (sp->data.ndim != 1 || sp->indices.ndim != 1 || sp->indptr.ndim != 1 ||
        sp->data.n != sp->indices.n || sp->data.dtype == AD_STR ||
        !ad_dtype_is_int(sp->indices.dtype) || !ad_dtype_is_int(sp->indptr.dtype) ||
        sp->indptr.n != sp->shape[sp->csc ? 1 : 0] + 1)
        return fail_model(w, "sparse matrix parts do not agree");
    hid_t g = group_create(w, loc, name, false);
    if (g < 0) return -1;
    int64_t shape[2] = {(int64_t)sp->shape[0], (int64_t)sp->shape[1]};
    int rc = -1;
    if (set_encoding(w, g, sp->csc ? "csc_matrix" : "csr_matrix", "0.1.0") < 0 ||
        attr_array(w, g, "shape", H5T_STD_I64LE, 2, shape) < 0)
        goto out;
    size_t m = adx_ptr_key(&w->ptr, "data");
    if (write_array(w, g, "data", &sp->data, WA_RESIZABLE) < 0) goto out;
    adx_ptr_pop(&w->ptr, m);
    adx_ptr_key(&w->ptr, "indices");
    if (write_array(w, g, "indices", &sp->indices, WA_RESIZABLE) < 0) goto out;
    adx_ptr_pop(&w->ptr, m);
    adx_ptr_key(&w->ptr, "indptr");
    if (write_array(w, g, "indptr", &sp->indptr, WA_RESIZABLE) < 0) goto out;
    adx_ptr_pop(&w->ptr, m);
    rc = 0;
out:
    H5Gclose(g);
    return rc;
}

static int write_child(w_ctx *w, hid_t g, const char *name, const ad_array *a)
{
    size_t m = adx_ptr_key(&w->ptr, name);
    int rc = write_array(w, g, name, a, WA_ENCODE);
    if (rc == 0) adx_ptr_pop(&w->ptr, m);
    return rc;
}

static int write_categorical(w_ctx *w, hid_t loc, const char *name, const ad_categorical *c)
{
    if (c->codes.ndim != 1 || !ad_dtype_is_signed(c->codes.dtype) || c->categories.ndim != 1)
        return fail_model(w, "categorical needs 1-d signed codes and 1-d categories");
    hid_t g = group_create(w, loc, name, false);
    if (g < 0) return -1;
    int8_t ordered = c->ordered ? 1 : 0;
    int rc = -1;
    if (set_encoding(w, g, "categorical", "0.2.0") < 0 ||
        attr_scalar(w, g, "ordered", w->t_bool, &ordered) < 0 ||
        write_child(w, g, "codes", &c->codes) < 0 ||
        write_child(w, g, "categories", &c->categories) < 0)
        goto out;
    rc = 0;
out:
    H5Gclose(g);
    return rc;
}

static int write_nullable(w_ctx *w, hid_t loc, const char *name, const ad_nullable *nl,
                          bool boolean)
{
    if (nl->values.ndim != 1 || nl->mask.ndim != 1 || nl->mask.dtype != AD_BOOL ||
        nl->values.n != nl->mask.n ||
        (boolean ? nl->values.dtype != AD_BOOL : !ad_dtype_is_int(nl->values.dtype)))
        return fail_model(w, "nullable column needs 1-d values and a bool mask of equal length");
    hid_t g = group_create(w, loc, name, false);
    if (g < 0) return -1;
    int rc = -1;
    if (set_encoding(w, g, boolean ? "nullable-boolean" : "nullable-integer", "0.1.0") < 0 ||
        write_child(w, g, "values", &nl->values) < 0 || write_child(w, g, "mask", &nl->mask) < 0)
        goto out;
    rc = 0;
out:
    H5Gclose(g);
    return rc;
}

/* A record array as anndata writes a np.recarray (write_recarray and
 * _to_hdf5_vlen_strings): one 1-d dataset of a compound type, members in
 * field order at packed offsets as numpy lays them out, string fields as
 * variable-length UTF-8, compressed like any other array dataset. */
static int write_recarray(w_ctx *w, hid_t loc, const char *name, const ad_recarray *rec)
{
    if (check_cancel(w) < 0) return -1;
    if (rec->nfields == 0) return fail_model(w, "record array without fields");
    size_t recsize = 0;
    for (size_t f = 0; f < rec->nfields; f++) {
        const ad_array *a = &rec->fields[f];
        size_t m = adx_ptr_key(&w->ptr, rec->names[f] ? rec->names[f] : "");
        if (check_array(w, a) < 0) return -1;
        if (a->ndim != 1 || a->n != rec->n || !rec->names[f] || !*rec->names[f])
            return fail_model(w, "record field must be named and hold %llu values",
                              (unsigned long long)rec->n);
        adx_ptr_pop(&w->ptr, m);
        recsize += a->dtype == AD_STR ? sizeof(char *) : ad_dtype_size(a->dtype);
    }
    size_t bytes;
    if (__builtin_mul_overflow(recsize, (size_t)rec->n, &bytes))
        return fail_model(w, "record array too large");
    /* HDF5 keeps a dataset's type in one object header message of at most
     * 64 KiB (h5py and anndata fail on a wider np.recarray alike). Each
     * member takes its name, a NUL, an offset and a member type of at least
     * 12 bytes: too many are refused before libhdf5, whose compound insert
     * scans the members it has (quadratic), sees them. */
    size_t least = 0;
    for (size_t f = 0; f < rec->nfields; f++)
        least += strlen(rec->names[f]) + 14;
    if (least > H5W_TYPE_MSG_MAX) return fail_wide_record(w, rec->nfields, least, true);
    hid_t ct = H5Tcreate(H5T_COMPOUND, recsize);
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, d = H5I_INVALID_HID;
    char *buf = NULL;
    int rc = -1;
    bool charged = false;
    if (ct < 0) {
        fail_h5(w, "creating a compound type");
        goto out;
    }
    size_t off = 0;
    for (size_t f = 0; f < rec->nfields; f++) {
        const ad_array *a = &rec->fields[f];
        if (H5Tinsert(ct, rec->names[f], off, file_type(w, a->dtype)) < 0) {
            fail_h5(w, "adding a record field");
            goto out;
        }
        off += a->dtype == AD_STR ? sizeof(char *) : ad_dtype_size(a->dtype);
    }
    size_t enc = 0;
    if (H5Tencode(ct, NULL, &enc) < 0) {
        fail_h5(w, "measuring a compound type");
        goto out;
    }
    if (enc > H5W_TYPE_MSG_MAX) {
        fail_wide_record(w, rec->nfields, enc, false);
        goto out;
    }
    /* The interleaved records are a second copy of the fields. */
    if (adx_ctl_charge(w->ctl, bytes, adx_ptr_str(&w->ptr), w->err) < 0) goto out;
    charged = true;
    buf = malloc(bytes ? bytes : 1);
    if (!buf) {
        adx_err_set(w->err, ADX_E_NOMEM, adx_ptr_str(&w->ptr), "out of memory");
        goto out;
    }
    off = 0;
    for (size_t f = 0; f < rec->nfields; f++) {
        const ad_array *a = &rec->fields[f];
        size_t es = a->dtype == AD_STR ? sizeof(char *) : ad_dtype_size(a->dtype);
        for (uint64_t i = 0; i < rec->n; i++) {
            char *dst = buf + i * recsize + off;
            if (a->dtype == AD_STR) {
                const char *s = ad_str_at(a, i);
                memcpy(dst, &s, sizeof s);
            } else {
                memcpy(dst, (const char *)a->data + i * es, es);
            }
        }
        off += es;
    }
    hsize_t dims[1] = {rec->n};
    space = H5Screate_simple(1, dims, NULL);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (space < 0 || dcpl < 0 || H5Pset_obj_track_times(dcpl, 0) < 0) {
        fail_h5(w, "creating a dataspace");
        goto out;
    }
    if (rec->n > 0 && w->o->compression != ADX_COMP_NONE) {
        uint64_t chunk[1];
        h5w_guess_chunk(1, (const uint64_t[]){rec->n}, recsize, chunk);
        herr_t e = H5Pset_chunk(dcpl, 1, (hsize_t[]){chunk[0]});
        if (e >= 0 && w->o->compression == ADX_COMP_GZIP)
            e = H5Pset_deflate(dcpl, (unsigned)w->o->level);
        else if (e >= 0)
            e = H5Pset_filter(dcpl, H5W_LZF_FILTER_ID, H5Z_FLAG_OPTIONAL, 0, NULL);
        if (e < 0) {
            fail_h5(w, "setting up chunks and compression");
            goto out;
        }
    }
    d = H5Dcreate2(loc, name, ct, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) {
        fail_h5(w, "creating a dataset");
        goto out;
    }
    if (set_encoding(w, d, "rec-array", "0.2.0") < 0) goto out;
    if (rec->n) {
        hid_t dx = xfer_list(w, rec->n, recsize);
        if (dx < 0) goto out;
        if (H5Dwrite(d, ct, H5S_ALL, H5S_ALL, dx, buf) < 0) {
            fail_h5(w, "writing a record array");
            goto out;
        }
    }
    for (size_t f = 0; f < rec->nfields; f++)
        advance(w, arr_bytes(&rec->fields[f]));
    rc = 0;
out:
    free(buf);
    if (charged) adx_ctl_release(w->ctl, bytes);
    close_id(&d, H5Dclose);
    close_id(&dcpl, H5Pclose);
    close_id(&space, H5Sclose);
    close_id(&ct, H5Tclose);
    return rc;
}

static int write_elem(w_ctx *w, hid_t loc, const char *name, const ad_elem *e)
{
    if (!e) return fail_model(w, "missing element");
    switch (e->kind) {
    case AD_K_ARRAY:
        return write_array(w, loc, name, &e->u.arr, WA_ENCODE);
    case AD_K_SPARSE:
        return write_sparse(w, loc, name, &e->u.sp);
    case AD_K_FRAME:
        return write_frame(w, loc, name, &e->u.df);
    case AD_K_CATEGORICAL:
        return write_categorical(w, loc, name, &e->u.cat);
    case AD_K_NULLABLE_INT:
        return write_nullable(w, loc, name, &e->u.nl, false);
    case AD_K_NULLABLE_BOOL:
        return write_nullable(w, loc, name, &e->u.nl, true);
    case AD_K_DICT:
        return write_dict(w, loc, name, &e->u.dict);
    case AD_K_RECARRAY:
        return write_recarray(w, loc, name, &e->u.rec);
    case AD_K_OBJECT:
    case AD_K_NULL:
        return fail_model(w, "unsanitized %s element reached the h5ad writer",
                          e->kind == AD_K_NULL ? "null" : "object");
    default:
        return fail_model(w, "unknown element kind %d", (int)e->kind);
    }
}

static int write_dict(w_ctx *w, hid_t loc, const char *name, const ad_dict *dict)
{
    hid_t g = group_create(w, loc, name, true);
    if (g < 0) return -1;
    int rc = set_encoding(w, g, "dict", "0.1.0");
    for (size_t i = 0; rc == 0 && i < dict->n; i++) {
        size_t m = adx_ptr_key(&w->ptr, dict->keys[i] ? dict->keys[i] : "");
        rc = check_name(w, dict->keys[i]);
        if (rc == 0) rc = write_elem(w, g, dict->keys[i], dict->vals[i]);
        if (rc == 0) adx_ptr_pop(&w->ptr, m);
    }
    H5Gclose(g);
    return rc;
}

static bool is_column(const ad_frame *f, const char *name)
{
    for (size_t i = 0; i < f->ncols; i++)
        if (f->names[i] && strcmp(f->names[i], name) == 0) return true;
    return false;
}

/* The index dataset's name: the index name when it is a usable, free HDF5
 * name; otherwise "_index" (then "_index_1", …) and a report entry, because
 * a column of the same name would overwrite it. Returns NULL on ENOMEM. */
static const char *index_name(w_ctx *w, const ad_frame *f, char buf[32])
{
    const char *want = f->index_name;
    bool usable = want && want[0] && strcmp(want, ".") != 0 && !strchr(want, '/');
    if (usable && !is_column(f, want)) return want;
    snprintf(buf, 32, "_index");
    if (is_column(f, buf)) {
        /* "_index_1", "_index_2", ... may be columns too: look them up in a
         * map of the names instead of scanning every column for each */
        adx_strmap cols = {0};
        size_t at;
        bool added;
        for (size_t i = 0; i < f->ncols; i++)
            if (f->names[i] && adx_strmap_add(&cols, f->names[i], &at, &added) < 0) {
                adx_strmap_free(&cols);
                adx_err_set(w->err, ADX_E_NOMEM, adx_ptr_str(&w->ptr), "out of memory");
                return NULL;
            }
        for (unsigned k = 1; adx_strmap_get(&cols, buf) != SIZE_MAX; k++)
            snprintf(buf, 32, "_index_%u", k);
        adx_strmap_free(&cols);
    }
    if (!want && strcmp(buf, "_index") == 0) return buf;
    char detail[ADX_ERR_MSG_MAX];
    snprintf(detail, sizeof detail, "index name '%.300s' %s; the index is stored as '%s'",
             want ? want : "_index",
             usable || !want ? "is also a column name" : "cannot be an HDF5 name", buf);
    if (rep_add(w->rep, adx_ptr_str(&w->ptr), REP_INDEX_RENAMED, 1, detail) < 0) {
        adx_err_set(w->err, ADX_E_NOMEM, adx_ptr_str(&w->ptr), "out of memory");
        return NULL;
    }
    return buf;
}

static int write_frame(w_ctx *w, hid_t loc, const char *name, const ad_frame *f)
{
    /* A zeroed frame (no rows, no index built) is still a valid empty frame. */
    static const uint64_t zero_off[1] = {0};
    ad_array empty = {.dtype = AD_STR, .ndim = 1, .str = "", .soff = (uint64_t *)zero_off};
    const ad_array *index = &f->index;
    if (f->n_rows == 0 && f->index.n == 0) index = &empty;
    if (index->dtype != AD_STR || index->ndim != 1 || index->n != f->n_rows)
        return fail_model(w, "frame index must be %llu strings", (unsigned long long)f->n_rows);

    char ibuf[32];
    const char *iname = index_name(w, f, ibuf);
    if (!iname) return -1;

    /* column-order is one attribute of 16-byte vlen references; beyond 64 KiB
     * it does not fit the original object header (anndata fails there). The
     * 1.8 format stores large attributes densely, so wide frames switch the
     * file to it before their group is created. Every HDF5 >= 1.8 reads it. */
    if (f->ncols > COLUMN_ORDER_COMPACT_MAX && !w->v18) {
        if (H5Fset_libver_bounds(w->file, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0)
            return fail_h5(w, "switching to the HDF5 1.8 format for a wide frame");
        w->v18 = true;
    }

    hid_t g = group_create(w, loc, name, false);
    if (g < 0) return -1;
    int rc = -1;
    if (set_encoding(w, g, "dataframe", "0.2.0") < 0 || attr_str(w, g, "_index", iname) < 0)
        goto out;
    if (f->ncols == 0) {
        /* anndata writes an empty float64 array when there are no columns. */
        static const double none[1] = {0};
        if (attr_array(w, g, "column-order", H5T_IEEE_F64LE, 0, none) < 0) goto out;
    } else if (attr_array(w, g, "column-order", w->t_str, f->ncols, f->names) < 0) {
        goto out;
    }
    if (write_child(w, g, iname, index) < 0) goto out;
    for (size_t i = 0; i < f->ncols; i++) {
        size_t m = adx_ptr_key(&w->ptr, f->names[i] ? f->names[i] : "");
        if (check_name(w, f->names[i]) < 0) goto out;
        const ad_elem *c = f->cols[i];
        if (!c || ad_elem_rows(c) != f->n_rows) {
            fail_model(w, "column length differs from the frame's %llu rows",
                       (unsigned long long)f->n_rows);
            goto out;
        }
        /* pandas columns are 1-d; anndata cannot read other kinds back. */
        if (!(c->kind == AD_K_ARRAY && c->u.arr.ndim == 1) && c->kind != AD_K_CATEGORICAL &&
            c->kind != AD_K_NULLABLE_INT && c->kind != AD_K_NULLABLE_BOOL &&
            c->kind != AD_K_OBJECT && c->kind != AD_K_NULL) {
            fail_model(w, "a frame column must be a 1-d array, categorical or nullable");
            goto out;
        }
        if (write_elem(w, g, f->names[i], f->cols[i]) < 0) goto out;
        adx_ptr_pop(&w->ptr, m);
    }
    rc = 0;
out:
    H5Gclose(g);
    return rc;
}

/* ------------------------------------------------------------ top level */

/* anndata reads X only as a dense 2-d array or a sparse matrix. */
static int check_x(w_ctx *w, const ad_elem *x)
{
    if (!x) return 0;
    if ((x->kind == AD_K_ARRAY && x->u.arr.ndim == 2 && x->u.arr.dtype != AD_STR) ||
        x->kind == AD_K_SPARSE)
        return 0;
    return fail_model(w, "X must be a 2-d numeric array or a sparse matrix");
}

static int write_top(w_ctx *w, hid_t file, const ad_anndata *a)
{
    if (set_encoding(w, file, "anndata", "0.1.0") < 0) return -1;
    size_t m0 = w->ptr.len;
#define STEP(key, call)                                                                            \
    do {                                                                                           \
        adx_ptr_key(&w->ptr, key);                                                                 \
        if ((call) < 0) return -1;                                                                 \
        adx_ptr_pop(&w->ptr, m0);                                                                  \
    } while (0)
    if (a->X) STEP("X", check_x(w, a->X) < 0 ? -1 : write_elem(w, file, "X", a->X));
    for (int ns = 0; ns < AD_NS__COUNT; ns++) {
        const char *name = ad_ns_table[ns].name;
        STEP(name, ad_ns_table[ns].frame ? write_frame(w, file, name, ad_ns_cframe(a, (ad_ns)ns))
                                         : write_dict(w, file, name, ad_ns_cdict(a, (ad_ns)ns)));
    }
    if (a->raw) {
        adx_ptr_key(&w->ptr, "raw");
        hid_t g = group_create(w, file, "raw", false);
        if (g < 0) return -1;
        size_t m1 = w->ptr.len;
        int rc = set_encoding(w, g, "raw", "0.1.0");
#define RSTEP(key, call)                                                                           \
    do {                                                                                           \
        if (rc == 0) {                                                                             \
            adx_ptr_key(&w->ptr, key);                                                             \
            rc = (call);                                                                           \
            if (rc == 0) adx_ptr_pop(&w->ptr, m1);                                                 \
        }                                                                                          \
    } while (0)
        if (a->raw->X)
            RSTEP("X", check_x(w, a->raw->X) < 0 ? -1 : write_elem(w, g, "X", a->raw->X));
        RSTEP("var", write_frame(w, g, "var", &a->raw->var));
        RSTEP("varm", write_dict(w, g, "varm", &a->raw->varm));
        H5Gclose(g);
        if (rc < 0) return -1;
        adx_ptr_pop(&w->ptr, m0);
    }
#undef STEP
#undef RSTEP
    return 0;
}

void h5w_opts_default(h5w_opts *o)
{
    *o = (h5w_opts){.compression = ADX_COMP_GZIP, .level = 4};
}

static hid_t make_bool_type(void)
{
    hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
    if (t < 0) return t;
    int8_t f = 0, tr = 1;
    if (H5Tenum_insert(t, "FALSE", &f) < 0 || H5Tenum_insert(t, "TRUE", &tr) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

static hid_t make_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

static int write_file(const ad_anndata *a, uint64_t bytes, pre_set *pre, const char *path,
                      const h5w_opts *o, const adx_ctl *ctl, adx_report *rep, adx_err *err);

/* The small writes' turn: waits in 50 ms steps so that a DELETE or the job
 * timeout stops a job still waiting for it. */
static int take_turn(pthread_mutex_t *mu, const adx_ctl *ctl, adx_err *err)
{
    for (;;) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 50 * 1000000L;
        if (t.tv_nsec >= 1000000000L) t.tv_sec++, t.tv_nsec -= 1000000000L;
        if (pthread_mutex_timedlock(mu, &t) == 0) return 0;
        if (adx_ctl_canceled(ctl)) return adx_err_set(err, ADX_E_CANCELED, "", "export canceled");
    }
}

int h5w_write(const ad_anndata *a, const char *path, const h5w_opts *o, const adx_ctl *ctl,
              adx_report *rep, adx_err *err)
{
    h5w_opts def;
    if (!o) {
        h5w_opts_default(&def);
        o = &def;
    }
    if (!a || !path || !rep)
        return adx_err_set(err, ADX_E_INTERNAL, "", "h5w_write: NULL argument");
    if (ad_anndata_assert(a, err) < 0) return -1;
    if (o->compression != ADX_COMP_GZIP && o->compression != ADX_COMP_LZF &&
        o->compression != ADX_COMP_NONE)
        return adx_err_set(err, ADX_E_BAD_OPTION, "/compression", "unknown compression %d",
                           (int)o->compression);
    if (o->compression == ADX_COMP_GZIP && (o->level < 0 || o->level > 9))
        return adx_err_set(err, ADX_E_BAD_OPTION, "/compression_opts",
                           "gzip level must be 0-9, got %d", o->level);

    /* libhdf5 runs one call at a time (its global lock); two workers
     * writing small files at once only hand that lock back and forth at
     * every call (futex wake-ups, context switches, cold caches). Small
     * writes, which are nearly all HDF5 calls, take turns whole instead
     * (2 workers, 32 clients exporting the fixture conversation: ~146 ->
     * ~156 exports/s, interleaved runs). Large ones still interleave:
     * their compression runs outside libhdf5. Small is by bytes: a model
     * of many tiny elements holds the turn longer, for the HDF5 time it
     * would have taken anyway. */
    static pthread_mutex_t small_mu = PTHREAD_MUTEX_INITIALIZER;
    uint64_t bytes = ad_anndata_bytes(a);
    bool small = bytes < SMALL_WRITE_BYTES;
    pre_set *pre = small && !o->compress_in_turn ? pre_compress(a, o, ctl) : NULL;
    if (small && take_turn(&small_mu, ctl, err) < 0) {
        pre_free(pre, ctl);
        return -1;
    }
    int rc = write_file(a, bytes, pre, path, o, ctl, rep, err);
    if (small) pthread_mutex_unlock(&small_mu);
    pre_free(pre, ctl);
    return rc;
}

static int write_file(const ad_anndata *a, uint64_t bytes, pre_set *pre, const char *path,
                      const h5w_opts *o, const adx_ctl *ctl, adx_report *rep, adx_err *err)
{
    /* Error stacks are per thread in the thread-safe build, so automatic
     * printing is switched off for this thread on every call. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    w_ctx w = {.o = o,
               .ctl = ctl,
               .rep = rep,
               .err = err,
               .pre = pre,
               .t_str = H5I_INVALID_HID,
               .t_bool = H5I_INVALID_HID,
               .dxpl = H5I_INVALID_HID};
    adx_ptr_init(&w.ptr, NULL);
    hid_t file = H5I_INVALID_HID;
    int rc = -1;

    if (o->compression == ADX_COMP_LZF && h5w_lzf_register() < 0) {
        fail_h5(&w, "registering the lzf filter");
        goto out;
    }

    w.nthreads = o->threads;
    if (w.nthreads <= 0) {
        /* CPUs this process may run on (cpusets, taskset), not all online. */
        cpu_set_t set;
        long ncpu = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                                : sysconf(_SC_NPROCESSORS_ONLN);
        w.nthreads = ncpu < 1 ? 1 : ncpu > H5W_AUTO_THREADS ? H5W_AUTO_THREADS : (int)ncpu;
    }
    if (w.nthreads > H5W_MAX_THREADS) w.nthreads = H5W_MAX_THREADS;
    for (int t = 0; o->compression == ADX_COMP_GZIP && t < w.nthreads; t++)
        if (!(w.gz[t] = libdeflate_alloc_compressor(o->level))) {
            adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
            goto out;
        }
    /* String chunks go through HDF5's filter: with this write's compressor. */
    h5w_deflate_use(w.gz[0], o->level);
    w.t_str = make_str_type();
    w.t_bool = make_bool_type();
    w.dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (w.t_str < 0 || w.t_bool < 0 || w.dxpl < 0) {
        fail_h5(&w, "creating datatypes");
        goto out;
    }
    w.total = bytes;
    adx_ctl_progress(ctl, 0.0);

    w.path = path;
    hid_t fapl =
        h5w_vfd_fapl(&(h5w_vfd_info){.err = &w.io_err, .budget = ctl ? ctl->budget : NULL});
    if (fapl < 0) {
        fail_h5(&w, "setting up the file driver");
        goto out;
    }
    errno = 0;
    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (file < 0) {
        int e = errno;
        H5Eclear2(H5E_DEFAULT);
        adx_err_set(err, e == ENOSPC || e == EDQUOT ? ADX_E_NO_SPACE : ADX_E_IO, "",
                    "cannot create the h5ad file");
        adx_err_cause(err, "%s: %s", path, e ? strerror(e) : "HDF5 refused to create it");
        goto out;
    }
    w.file = file;
    if (write_top(&w, file, a) < 0) goto out;
    rc = 0;
out:
    if (drain_all(&w, rc == 0) < 0) rc = -1;
    if (file >= 0 && H5Fclose(file) < 0 && rc == 0) {
        adx_ptr_init(&w.ptr, NULL);
        rc = fail_h5(&w, "closing the file");
    }
    if (w.io_err && rc == 0) {
        /* The last writes (the metadata H5Fclose flushes) failed. */
        adx_ptr_init(&w.ptr, NULL);
        rc = fail_io(&w);
    }
    pool_free(w.pool);
    close_id(&w.t_str, H5Tclose);
    close_id(&w.t_bool, H5Tclose);
    close_id(&w.dxpl, H5Pclose);
    free(w.xbuf);
    h5w_deflate_use(NULL, 0);
    for (int t = 0; t < H5W_MAX_THREADS; t++)
        if (w.gz[t]) libdeflate_free_compressor(w.gz[t]);
    if (rc == 0) adx_ctl_progress(ctl, 1.0);
    return rc;
}
