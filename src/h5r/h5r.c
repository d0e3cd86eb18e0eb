/* h5ad → model. The file is untrusted: every HDF5 call is checked, every
 * size is compared with adx_limits before a buffer is sized from it, and
 * every hid_t is closed on every path (each helper closes what it opens
 * before returning, so error paths stay local). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "adx_filter.h"
#include "adx_h5r.h"
#include "adx_h5w.h"
#include "adx_utf8.h"

#define REP_SKIPPED "skipped_unknown_element"
#define REP_GRAPH_MOVED "legacy_graph_moved"

/* An untagged compound dataset means what anndata.read_h5ad makes of it
 * where it stands: obs/var a DataFrame, obsm/varm a mapping of its fields,
 * anywhere else a record array. */
enum { CMP_REC = 0, CMP_FRAME, CMP_DICT };

typedef struct rd {
    const adx_limits *lim;
    const adx_ctl *ctl;
    adx_report *rep;
    adx_err *err;
    adx_ptr p;       /* element path of what is being read, "/obsm/X_umap" */
    int compound_as; /* CMP_*: what the next untagged compound dataset read becomes */
    const h5r_opts *o;
    /* Namespace whose keys (dict members, frame columns) the next dict or
     * frame read is filtering; taken (and cleared) by that read. */
    const char *keys_ns;
    flt_set *inc; /* the include paths of o, arranged for many keys; NULL = keep all */
    uint64_t total_bytes;
    hid_t file;
    hid_t root;
} rd;

static int fail(rd *r, adx_errtype t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Every failure here is about an element of a file HDF5 has opened: when
 * HDF5 cannot read it, the file is corrupt or needs what this build lacks
 * (a filter), so it is reported as the input's fault (ADX_E_SCHEMA, 400),
 * never as a storage error of the server. */
static int fail(rd *r, adx_errtype t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *ptr = r->p.len ? adx_ptr_str(&r->p) : "/";
    adx_err_vset(r->err, t, ptr, fmt, ap);
    va_end(ap);
    return -1;
}

static void hclose(hid_t id)
{
    if (id < 0) return;
    switch (H5Iget_type(id)) {
    case H5I_GROUP:
        H5Gclose(id);
        break;
    case H5I_DATASET:
        H5Dclose(id);
        break;
    case H5I_DATATYPE:
        H5Tclose(id);
        break;
    case H5I_DATASPACE:
        H5Sclose(id);
        break;
    case H5I_ATTR:
        H5Aclose(id);
        break;
    case H5I_FILE:
        H5Fclose(id);
        break;
    default:
        break;
    }
}

/* Account a buffer against max_total_bytes before allocating it. */
static int charge(rd *r, uint64_t bytes)
{
    if (bytes > r->lim->max_total_bytes || r->total_bytes > r->lim->max_total_bytes - bytes)
        return fail(r, ADX_E_LIMIT, "the model would exceed max_total_bytes (%llu)",
                    (unsigned long long)r->lim->max_total_bytes);
    r->total_bytes += bytes;
    return 0;
}

/* Give back what a transient buffer (a chunk being decompressed, strings
 * libhdf5 converts before they are copied into the model) was charged. */
static void uncharge(rd *r, uint64_t bytes)
{
    r->total_bytes = bytes < r->total_bytes ? r->total_bytes - bytes : 0;
}

/* What the model's string arrays cost per value: the bytes, a NUL and an
 * offset (ad_strbuild), as push_str charges them. */
#define STR_OVERHEAD 9

/* The "0".."n-1" index anndata gives a frame without one, charged before it
 * is built: n comes from a shape in the file (up to max_dim, 2^31 by
 * default), and the index costs ~20 bytes a row. */
static int default_index(rd *r, ad_frame *f, uint64_t n, const char *name)
{
    uint64_t bytes = 0, lo = 0, hi = 10;
    for (unsigned digits = 1; lo < n; digits++) {
        uint64_t k = (n < hi ? n : hi) - lo;
        bytes += k * (digits + STR_OVERHEAD);
        lo = hi;
        hi = hi > UINT64_MAX / 10 ? UINT64_MAX : hi * 10;
    }
    if (bytes > r->lim->max_total_bytes || r->total_bytes > r->lim->max_total_bytes - bytes) {
        if (name) adx_ptr_key(&r->p, name);
        return fail(r, ADX_E_LIMIT,
                    "a default index of %llu rows needs %llu bytes, more than max_total_bytes "
                    "(%llu) leaves",
                    (unsigned long long)n, (unsigned long long)bytes,
                    (unsigned long long)r->lim->max_total_bytes);
    }
    r->total_bytes += bytes;
    if (ad_frame_default_index(f, n) < 0) return fail(r, ADX_E_NOMEM, "out of memory");
    return 0;
}

static int check_canceled(rd *r)
{
    if (adx_ctl_canceled(r->ctl)) return fail(r, ADX_E_CANCELED, "read canceled");
    return 0;
}

/* ------------------------------------------------------------- strings */

/* Push one string value, checking length, NULs and encoding. */
static int push_str(rd *r, ad_strbuild *b, const char *s, size_t len)
{
    if (len > r->lim->max_string_bytes)
        return fail(r, ADX_E_LIMIT, "a string of %zu bytes exceeds max_string_bytes (%llu)", len,
                    (unsigned long long)r->lim->max_string_bytes);
    if (!utf8_valid(s, len, NULL)) return fail(r, ADX_E_SCHEMA, "string value is not valid UTF-8");
    if (charge(r, (uint64_t)len + STR_OVERHEAD) < 0) return -1;
    if (ad_sb_push(b, s, len) < 0) return fail(r, ADX_E_NOMEM, "out of memory reading strings");
    return 0;
}

static int read_failed(rd *r, hid_t ds);

/* libhdf5 sizes its conversion buffer, and then each string, from the
 * length in the element's on-disk descriptor (a 4-byte length, then the
 * global heap id) before it reads the heap: one corrupted length is a 4 GiB
 * allocation made before any check of ours. For contiguous storage (what
 * h5py writes without compression) the descriptors are read here first,
 * each length checked against max_string_bytes and their sum charged to the
 * model budget for the duration of the read (*charged; the caller
 * uncharges). Chunked, compact and attribute data have no such offset:
 * there the child check's address-space limit (h5r_check_isolated) bounds
 * what libhdf5 can allocate. */
static int vlen_precheck(rd *r, hid_t ds, uint64_t n, uint64_t *charged)
{
    *charged = 0;
    hid_t dcpl = H5Dget_create_plist(ds);
    H5D_layout_t lay = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    hclose(dcpl);
    haddr_t off = lay == H5D_CONTIGUOUS ? H5Dget_offset(ds) : HADDR_UNDEF;
    if (n == 0 || off == HADDR_UNDEF) return 0; /* not contiguous, or only fill values */
    hid_t fcpl = H5Fget_create_plist(r->file), fapl = H5Fget_access_plist(r->file);
    size_t sa = 0, ss = 0;
    bool sec2 = fapl >= 0 && H5Pget_driver(fapl) == H5FD_SEC2;
    bool ok = fcpl >= 0 && H5Pget_sizes(fcpl, &sa, &ss) >= 0;
    hclose(fcpl);
    hclose(fapl);
    int *fdp = NULL;
    if (!ok || !sec2 || sa == 0 || sa > 16 ||
        H5Fget_vfd_handle(r->file, H5P_DEFAULT, (void **)&fdp) < 0 || !fdp)
        return fail(r, ADX_E_SCHEMA, "cannot locate the dataset's strings");
    struct stat st;
    if (fstat(*fdp, &st) < 0) return fail(r, ADX_E_SCHEMA, "cannot locate the dataset's strings");
    uint64_t fsize = (uint64_t)st.st_size;
    size_t dsz = 4 + sa + 4;
    enum { SLICE = 4096 };
    unsigned char *buf = malloc(SLICE * dsz);
    if (!buf) return fail(r, ADX_E_NOMEM, "out of memory");
    uint64_t total = 0, left = r->lim->max_total_bytes - r->total_bytes;
    int rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i += SLICE) {
        size_t k = n - i < SLICE ? (size_t)(n - i) : SLICE, want = k * dsz;
        uint64_t at;
        /* H5Dget_offset is absolute (a user block before the superblock included) */
        if (__builtin_add_overflow((uint64_t)off, i * dsz, &at) || at > (uint64_t)INT64_MAX ||
            pread(*fdp, buf, want, (off_t)at) != (ssize_t)want) {
            rc = fail(r, ADX_E_SCHEMA,
                      "the dataset's strings lie past the end of the file (truncated or corrupt)");
            break;
        }
        for (size_t j = 0; j < k; j++) {
            const unsigned char *d = buf + j * dsz;
            uint64_t len =
                (uint64_t)d[0] | (uint64_t)d[1] << 8 | (uint64_t)d[2] << 16 | (uint64_t)d[3] << 24;
            if (len > fsize) {
                rc = fail(r, ADX_E_SCHEMA,
                          "string %llu claims %llu bytes, more than the whole file holds (the "
                          "file is corrupt)",
                          (unsigned long long)(i + j), (unsigned long long)len);
                break;
            }
            if (len > r->lim->max_string_bytes) {
                rc = fail(r, ADX_E_LIMIT,
                          "string %llu claims %llu bytes, more than max_string_bytes (%llu)",
                          (unsigned long long)(i + j), (unsigned long long)len,
                          (unsigned long long)r->lim->max_string_bytes);
                break;
            }
            total += len + 1; /* libhdf5 NUL-terminates each string it allocates */
            if (total > left) {
                rc = fail(r, ADX_E_LIMIT,
                          "the strings need more than what is left of max_total_bytes (%llu)",
                          (unsigned long long)r->lim->max_total_bytes);
                break;
            }
        }
    }
    free(buf);
    if (rc == 0 && charge(r, total) == 0) *charged = total;
    return rc < 0 || *charged != total ? -1 : 0;
}

/* Read `n` string elements of an attribute or dataset whose file type is
 * `ftype` (vlen or fixed, ASCII or UTF-8) into `b`. `is_attr` selects
 * H5Aread vs H5Dread on `obj`. */
static int read_strings(rd *r, hid_t obj, bool is_attr, hid_t ftype, uint64_t n, ad_strbuild *b)
{
    htri_t vl = H5Tis_variable_str(ftype);
    if (vl < 0) return fail(r, ADX_E_SCHEMA, "cannot inspect a string type");
    H5T_cset_t cset = H5Tget_cset(ftype);
    if (cset < 0) cset = H5T_CSET_ASCII;
    hid_t mt = H5Tcopy(H5T_C_S1);
    if (mt < 0) return fail(r, ADX_E_SCHEMA, "cannot create a string type");
    int rc = -1;
    size_t bytes;
    if (vl) {
        if (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, cset) < 0) {
            fail(r, ADX_E_SCHEMA, "cannot create a string type");
            goto out;
        }
        if (ad_bytes(AD_U64, n, &bytes) < 0 || charge(r, bytes) < 0) {
            if (!adx_err_failed(r->err))
                fail(r, ADX_E_LIMIT, "too many strings (%llu)", (unsigned long long)n);
            goto out;
        }
        uint64_t transient = 0;
        if (!is_attr && vlen_precheck(r, obj, n, &transient) < 0) goto out;
        char **v = calloc(n ? n : 1, sizeof *v);
        if (!v) {
            uncharge(r, transient);
            fail(r, ADX_E_NOMEM, "out of memory reading strings");
            goto out;
        }
        herr_t st =
            is_attr ? H5Aread(obj, mt, v) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        if (st < 0) {
            uncharge(r, transient);
            free(v);
            if (is_attr)
                fail(r, ADX_E_SCHEMA, "cannot read string values");
            else
                read_failed(r, obj);
            goto out;
        }
        rc = 0;
        for (uint64_t i = 0; i < n && rc == 0; i++)
            rc = push_str(r, b, v[i] ? v[i] : "", v[i] ? strlen(v[i]) : 0);
        /* The strings were allocated by HDF5; give them back the way it wants. */
        hid_t sp = H5Screate_simple(1, (hsize_t[]){n ? n : 1}, NULL);
        if (sp >= 0 && n) {
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
        }
        if (sp >= 0) H5Sclose(sp);
        free(v);
        uncharge(r, transient);
        goto out;
    }
    size_t w = H5Tget_size(ftype);
    if (w == 0) {
        fail(r, ADX_E_SCHEMA, "fixed-length string type of size 0");
        goto out;
    }
    if (w > r->lim->max_string_bytes) {
        fail(r, ADX_E_LIMIT, "fixed-length strings of %zu bytes exceed max_string_bytes (%llu)", w,
             (unsigned long long)r->lim->max_string_bytes);
        goto out;
    }
    H5T_str_t pad = H5Tget_strpad(ftype);
    if (H5Tset_size(mt, w) < 0 || H5Tset_cset(mt, cset) < 0 || H5Tset_strpad(mt, pad) < 0) {
        fail(r, ADX_E_SCHEMA, "cannot create a string type");
        goto out;
    }
    if (__builtin_mul_overflow((uint64_t)w, n, &(uint64_t){0}) ||
        ad_bytes(AD_U8, n * w, &bytes) < 0 || charge(r, bytes) < 0) {
        if (!adx_err_failed(r->err))
            fail(r, ADX_E_LIMIT, "fixed-length strings too large (%llu x %zu bytes)",
                 (unsigned long long)n, w);
        goto out;
    }
    char *buf = malloc(bytes ? bytes : 1);
    if (!buf) {
        fail(r, ADX_E_NOMEM, "out of memory reading strings");
        goto out;
    }
    herr_t st =
        is_attr ? H5Aread(obj, mt, buf) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (st < 0) {
        free(buf);
        if (is_attr)
            fail(r, ADX_E_SCHEMA, "cannot read string values");
        else
            read_failed(r, obj);
        goto out;
    }
    rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        const char *s = buf + i * w;
        size_t len = strnlen(s, w);
        if (pad == H5T_STR_SPACEPAD)
            while (len && s[len - 1] == ' ')
                len--;
        rc = push_str(r, b, s, len);
    }
    free(buf);
out:
    H5Tclose(mt);
    return rc;
}

/* -------------------------------------------------------------- dtypes */

/* h5py stores numpy bool as an enum over int8 with FALSE=0, TRUE=1. */
static bool is_bool_enum(hid_t t)
{
    if (H5Tget_class(t) != H5T_ENUM || H5Tget_size(t) != 1 || H5Tget_nmembers(t) != 2) return false;
    bool ok = true;
    for (unsigned i = 0; i < 2 && ok; i++) {
        char *nm = H5Tget_member_name(t, i);
        int8_t v = -1;
        hid_t super = H5Tget_super(t);
        if (!nm || super < 0 || H5Tget_member_value(t, i, &v) < 0) ok = false;
        /* member values are in the enum's base type, one byte here */
        if (ok && !((strcmp(nm, "FALSE") == 0 && v == 0) || (strcmp(nm, "TRUE") == 0 && v == 1)))
            ok = false;
        if (nm) H5free_memory(nm);
        if (super >= 0) H5Tclose(super);
    }
    return ok;
}

/* Map a file datatype to a model dtype and the native memory type to read
 * it with (*mt, caller closes when >= 0). AD_STR for strings. */
static int map_dtype(rd *r, hid_t ft, ad_dtype *dt, hid_t *mt)
{
    *mt = -1;
    H5T_class_t c = H5Tget_class(ft);
    size_t sz = H5Tget_size(ft);
    switch (c) {
    case H5T_INTEGER: {
        H5T_sign_t sg = H5Tget_sign(ft);
        bool s = sg == H5T_SGN_2;
        if (sz == 1) {
            *dt = s ? AD_I8 : AD_U8;
            *mt = H5Tcopy(s ? H5T_NATIVE_INT8 : H5T_NATIVE_UINT8);
        } else if (sz == 2) {
            *dt = s ? AD_I16 : AD_U16;
            *mt = H5Tcopy(s ? H5T_NATIVE_INT16 : H5T_NATIVE_UINT16);
        } else if (sz <= 4) {
            *dt = s ? AD_I32 : AD_U32;
            *mt = H5Tcopy(s ? H5T_NATIVE_INT32 : H5T_NATIVE_UINT32);
        } else if (sz <= 8) {
            *dt = s ? AD_I64 : AD_U64;
            *mt = H5Tcopy(s ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64);
        } else {
            return fail(r, ADX_E_SCHEMA, "unsupported integer type of %zu bytes", sz);
        }
        break;
    }
    case H5T_FLOAT:
        /* float16 widens to float32 (numpy would keep float16; the model has none) */
        if (sz <= 4) {
            *dt = AD_F32;
            *mt = H5Tcopy(H5T_NATIVE_FLOAT);
        } else {
            *dt = AD_F64;
            *mt = H5Tcopy(H5T_NATIVE_DOUBLE);
        }
        break;
    case H5T_ENUM:
        if (!is_bool_enum(ft))
            return fail(r, ADX_E_SCHEMA, "unsupported enum type (only h5py's bool enum is read)");
        *dt = AD_BOOL;
        *mt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
        break;
    case H5T_STRING:
        *dt = AD_STR;
        return 0;
    default:
        return fail(r, ADX_E_SCHEMA, "unsupported HDF5 datatype class %d", (int)c);
    }
    if (*mt < 0) return fail(r, ADX_E_SCHEMA, "cannot build a memory type");
    return 0;
}

/* ------------------------------------------------------------ datasets */

/* Rank and dims of a dataspace, checked against the limits. */
static int space_shape(rd *r, hid_t sp, int *ndim, uint64_t *shape, uint64_t *n)
{
    H5S_class_t cls = H5Sget_simple_extent_type(sp);
    if (cls == H5S_NULL) return fail(r, ADX_E_SCHEMA, "dataset has a null dataspace");
    if (cls != H5S_SCALAR && cls != H5S_SIMPLE)
        return fail(r, ADX_E_SCHEMA, "unsupported dataspace");
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd < 0) return fail(r, ADX_E_SCHEMA, "cannot read the dataspace");
    if (nd > AD_MAX_NDIM || (uint32_t)nd > r->lim->max_ndim)
        return fail(r, ADX_E_LIMIT, "rank %d exceeds max_ndim (%u)", nd, r->lim->max_ndim);
    hsize_t d[AD_MAX_NDIM];
    if (nd && H5Sget_simple_extent_dims(sp, d, NULL) < 0)
        return fail(r, ADX_E_SCHEMA, "cannot read the dataspace");
    for (int i = 0; i < nd; i++) {
        if (d[i] > r->lim->max_dim)
            return fail(r, ADX_E_LIMIT, "dimension %d is %llu, above max_dim (%llu)", i,
                        (unsigned long long)d[i], (unsigned long long)r->lim->max_dim);
        shape[i] = d[i];
    }
    *ndim = nd;
    if (ad_shape_product(nd, shape, n) < 0 || *n > r->lim->max_elements)
        return fail(r, ADX_E_LIMIT, "dataset has more than max_elements (%llu) elements",
                    (unsigned long long)r->lim->max_elements);
    return 0;
}

/* Every dataset is opened with this raw-data chunk cache (set on the file
 * access list), charged once per open file; libhdf5's default is the same
 * size, but stated here so the charge is what is allocated. */
#define CHUNK_CACHE_BYTES (1u << 20)
#define CHUNK_CACHE_SLOTS 521

/* Refuse storage that would make the reader open other files, layouts that
 * disagree with their dataspace (libhdf5 1.10 does not check them: a chunked
 * layout on a scalar dataspace sends H5Dread into a loop that allocates on
 * every turn, a chunk rank other than the dataspace's reads out of bounds),
 * and chunks larger than the remaining model budget: HDF5 allocates a whole
 * chunk to decompress it, whatever the dataset's (possibly tiny) extent.
 * Called before any read of `ds`. */
static int check_storage(rd *r, hid_t ds)
{
    hid_t dcpl = H5Dget_create_plist(ds);
    if (dcpl < 0) return fail(r, ADX_E_SCHEMA, "cannot read dataset properties");
    int next = H5Pget_external_count(dcpl);
    H5D_layout_t lay = H5Pget_layout(dcpl);
    hsize_t cd[H5S_MAX_RANK];
    int cnd = lay == H5D_CHUNKED ? H5Pget_chunk(dcpl, H5S_MAX_RANK, cd) : 0;
    H5Pclose(dcpl);
    if (next != 0) return fail(r, ADX_E_SCHEMA, "datasets with external storage are not read");
    if (lay == H5D_VIRTUAL) return fail(r, ADX_E_SCHEMA, "virtual datasets are not read");
    if (lay < 0 || cnd < 0) return fail(r, ADX_E_SCHEMA, "cannot read the dataset's layout");
    if (lay != H5D_CHUNKED) return 0;
    hid_t sp = H5Dget_space(ds);
    int snd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    H5S_class_t cls = sp >= 0 ? H5Sget_simple_extent_type(sp) : H5S_NO_CLASS;
    hclose(sp);
    if (snd < 0) return fail(r, ADX_E_SCHEMA, "cannot read the dataspace");
    if (cls != H5S_SIMPLE)
        return fail(r, ADX_E_SCHEMA, "a chunked layout on a %s dataspace (the file is corrupt)",
                    cls == H5S_SCALAR ? "scalar" : "null");
    if (cnd != snd)
        return fail(r, ADX_E_SCHEMA,
                    "chunks of rank %d for a dataspace of rank %d (the file is corrupt)", cnd, snd);
    hid_t t = H5Dget_type(ds);
    uint64_t bytes = t >= 0 ? H5Tget_size(t) : 0;
    if (t >= 0) H5Tclose(t);
    if (bytes == 0) return fail(r, ADX_E_SCHEMA, "cannot read the dataset's type");
    for (int i = 0; i < cnd; i++) {
        if (cd[i] == 0)
            return fail(r, ADX_E_SCHEMA, "chunk dimension %d is 0 (the file is corrupt)", i);
        if (__builtin_mul_overflow(bytes, (uint64_t)cd[i], &bytes)) bytes = UINT64_MAX;
    }
    if (bytes > r->lim->max_total_bytes - r->total_bytes)
        return fail(r, ADX_E_LIMIT,
                    "a chunk of %llu bytes exceeds what is left of max_total_bytes (%llu)",
                    (unsigned long long)bytes, (unsigned long long)r->lim->max_total_bytes);
    return 0;
}

/* A failed H5Dread is most often a filter this process lacks (lzf before
 * h5w_lzf_register works, blosc, bitshuffle …): name it when that is so. */
static int read_failed(rd *r, hid_t ds)
{
    hid_t dcpl = H5Dget_create_plist(ds);
    int nf = dcpl >= 0 ? H5Pget_nfilters(dcpl) : 0;
    for (int i = 0; i < nf; i++) {
        unsigned flags, cd[8];
        size_t ncd = 8;
        char nm[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof nm, nm, NULL);
        if (id >= 0 && H5Zfilter_avail(id) <= 0) {
            H5Pclose(dcpl);
            nm[sizeof nm - 1] = '\0';
            return fail(
                r, ADX_E_SCHEMA,
                "cannot read the dataset: it uses HDF5 filter %d (%s), which is not available",
                (int)id,
                id == 32000 ? "lzf"
                : nm[0]     ? nm
                            : "unknown");
        }
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    return fail(r, ADX_E_SCHEMA, "cannot read the dataset (corrupt data or a failing filter)");
}

/* Read a whole dataset (numeric, bool enum or strings) into `out`. */
static int read_dataset(rd *r, hid_t ds, ad_array *out)
{
    memset(out, 0, sizeof *out);
    if (check_storage(r, ds) < 0) return -1;
    hid_t ft = H5Dget_type(ds), sp = H5Dget_space(ds), mt = -1;
    int rc = -1;
    if (ft < 0 || sp < 0) {
        fail(r, ADX_E_SCHEMA, "cannot open the dataset's type or space");
        goto out;
    }
    int nd;
    uint64_t shape[AD_MAX_NDIM] = {0}, n;
    ad_dtype dt;
    if (space_shape(r, sp, &nd, shape, &n) < 0 || map_dtype(r, ft, &dt, &mt) < 0) goto out;
    if (dt == AD_STR) {
        ad_strbuild b = {0};
        if (read_strings(r, ds, false, ft, n, &b) < 0) {
            ad_sb_free(&b);
            goto out;
        }
        if (ad_sb_finish(&b, out, nd, shape) < 0) {
            fail(r, ADX_E_NOMEM, "out of memory reading strings");
            goto out;
        }
        rc = 0;
        goto out;
    }
    size_t bytes;
    if (ad_bytes(dt, n, &bytes) < 0 || charge(r, bytes) < 0) {
        if (!adx_err_failed(r->err)) fail(r, ADX_E_LIMIT, "dataset too large");
        goto out;
    }
    if (ad_array_init(out, dt, nd, shape) < 0) {
        fail(r, ADX_E_NOMEM, "out of memory for %llu elements", (unsigned long long)n);
        goto out;
    }
    if (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data) < 0) {
        ad_array_free(out);
        read_failed(r, ds);
        goto out;
    }
    if (dt == AD_BOOL) {
        uint8_t *u = out->data;
        for (uint64_t i = 0; i < n; i++)
            if (u[i] > 1) {
                unsigned v = u[i]; /* u is out's buffer, freed next */
                ad_array_free(out);
                fail(r, ADX_E_SCHEMA, "bool value %u at %llu is neither FALSE nor TRUE", v,
                     (unsigned long long)i);
                goto out;
            }
    }
    rc = 0;
out:
    hclose(mt);
    hclose(sp);
    hclose(ft);
    return rc;
}

/* --------------------------------------------------------- attributes */

/* 1 present, 0 absent, -1 error. */
static int attr_exists(rd *r, hid_t obj, const char *name)
{
    htri_t e = H5Aexists(obj, name);
    if (e < 0) return fail(r, ADX_E_SCHEMA, "cannot look up attribute %s", name);
    return e > 0;
}

/* Attribute as an array (numeric or strings; scalars are 0-d). 0 absent. */
static int attr_array(rd *r, hid_t obj, const char *name, ad_array *out)
{
    memset(out, 0, sizeof *out);
    int e = attr_exists(r, obj, name);
    if (e <= 0) return e;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : -1, sp = a >= 0 ? H5Aget_space(a) : -1, mt = -1;
    int rc = -1;
    if (a < 0 || ft < 0 || sp < 0) {
        fail(r, ADX_E_SCHEMA, "cannot open attribute %s", name);
        goto out;
    }
    int nd;
    uint64_t shape[AD_MAX_NDIM] = {0}, n;
    ad_dtype dt;
    if (space_shape(r, sp, &nd, shape, &n) < 0) goto out;
    if (map_dtype(r, ft, &dt, &mt) < 0) {
        adx_err_add(r->err, adx_ptr_str(&r->p), "in attribute %s", name);
        goto out;
    }
    if (dt == AD_STR) {
        ad_strbuild b = {0};
        if (read_strings(r, a, true, ft, n, &b) < 0 || ad_sb_finish(&b, out, nd, shape) < 0) {
            ad_sb_free(&b);
            if (!adx_err_failed(r->err)) fail(r, ADX_E_NOMEM, "out of memory");
            goto out;
        }
        rc = 1;
        goto out;
    }
    size_t bytes;
    if (ad_bytes(dt, n, &bytes) < 0 || charge(r, bytes) < 0) {
        if (!adx_err_failed(r->err)) fail(r, ADX_E_LIMIT, "attribute %s too large", name);
        goto out;
    }
    if (ad_array_init(out, dt, nd, shape) < 0) {
        fail(r, ADX_E_NOMEM, "out of memory");
        goto out;
    }
    if (n && H5Aread(a, mt, out->data) < 0) {
        ad_array_free(out);
        fail(r, ADX_E_SCHEMA, "cannot read attribute %s", name);
        goto out;
    }
    rc = 1;
out:
    hclose(mt);
    hclose(sp);
    hclose(ft);
    hclose(a);
    return rc;
}

/* A scalar (or 1-element) string attribute, malloc'd into *out. 0 absent. */
static int attr_string(rd *r, hid_t obj, const char *name, char **out)
{
    *out = NULL;
    ad_array a;
    int e = attr_array(r, obj, name, &a);
    if (e <= 0) return e;
    if (a.dtype != AD_STR || a.n != 1) {
        ad_array_free(&a);
        return fail(r, ADX_E_SCHEMA, "attribute %s must be a string", name);
    }
    *out = strdup(ad_str_at(&a, 0));
    ad_array_free(&a);
    if (!*out) return fail(r, ADX_E_NOMEM, "out of memory");
    return 1;
}

/* A bool-like scalar attribute (h5py bool enum, integer). 0 absent. */
static int attr_bool(rd *r, hid_t obj, const char *name, bool *out)
{
    *out = false;
    ad_array a;
    int e = attr_array(r, obj, name, &a);
    if (e <= 0) return e;
    if (a.dtype == AD_STR || a.n != 1 || ad_dtype_is_float(a.dtype)) {
        ad_array_free(&a);
        return fail(r, ADX_E_SCHEMA, "attribute %s must be a boolean", name);
    }
    *out = ad_array_get_i64(&a, 0) != 0;
    ad_array_free(&a);
    return 1;
}

/* ------------------------------------------------------------ elements */

static ad_elem *read_elem(rd *r, hid_t loc, const char *name, int depth);
static int read_dict_into(rd *r, hid_t g, ad_dict *d, int depth);
static int read_frame_group(rd *r, hid_t g, ad_frame *f, int depth);

/* Only hard links: soft links can loop and external links open other files. */
static int check_link(rd *r, hid_t loc, const char *name)
{
    H5L_info_t li;
    if (H5Lget_info(loc, name, &li, H5P_DEFAULT) < 0)
        return fail(r, ADX_E_SCHEMA, "missing element");
    if (li.type != H5L_TYPE_HARD)
        return fail(r, ADX_E_SCHEMA, "soft or external links are not followed");
    return 0;
}

/* 1 if `name` exists in `loc`, 0 if not, -1 on error. */
static int has_member(rd *r, hid_t loc, const char *name)
{
    htri_t e = H5Lexists(loc, name, H5P_DEFAULT);
    if (e < 0) return fail(r, ADX_E_SCHEMA, "cannot look up %s", name);
    return e > 0;
}

/* Open a member dataset under its own path segment and read it. */
static int read_member_array(rd *r, hid_t g, const char *name, ad_array *out)
{
    size_t m = adx_ptr_key(&r->p, name);
    memset(out, 0, sizeof *out);
    int rc = -1;
    if (check_link(r, g, name) < 0) goto out;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0) {
        fail(r, ADX_E_SCHEMA, "missing element");
        goto out;
    }
    if (oi.type != H5O_TYPE_DATASET) {
        fail(r, ADX_E_SCHEMA, "expected a dataset, found a group");
        goto out;
    }
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0) {
        fail(r, ADX_E_SCHEMA, "cannot open the dataset");
        goto out;
    }
    rc = read_dataset(r, ds, out);
    H5Dclose(ds);
out:
    if (rc == 0) adx_ptr_pop(&r->p, m);
    return rc;
}

static int need_1d(rd *r, const ad_array *a, const char *what)
{
    if (a->ndim != 1) return fail(r, ADX_E_SCHEMA, "%s must be 1-d, got rank %d", what, a->ndim);
    return 0;
}

/* ad_array_get_i64 for any integer dtype, but unsigned values above INT64_MAX
 * are reported as -1 so range checks reject them. */
static int64_t get_idx(const ad_array *a, uint64_t i)
{
    if (a->dtype == AD_U64 && ((const uint64_t *)a->data)[i] > INT64_MAX) return -1;
    return ad_array_get_i64(a, i);
}

static ad_elem *read_sparse(rd *r, hid_t g, bool csc, bool legacy)
{
    ad_elem *e = ad_elem_new(AD_K_SPARSE);
    if (!e) {
        fail(r, ADX_E_NOMEM, "out of memory");
        return NULL;
    }
    ad_sparse *s = &e->u.sp;
    s->csc = csc;
    ad_array shp;
    int ok = attr_array(r, g, legacy ? "h5sparse_shape" : "shape", &shp);
    if (ok == 0) fail(r, ADX_E_SCHEMA, "sparse matrix has no shape attribute");
    if (ok <= 0) goto bad;
    if (shp.dtype == AD_STR || ad_dtype_is_float(shp.dtype) || shp.n != 2 || shp.ndim != 1) {
        ad_array_free(&shp);
        fail(r, ADX_E_SCHEMA, "sparse shape must be 2 integers");
        goto bad;
    }
    for (int i = 0; i < 2; i++) {
        int64_t v = get_idx(&shp, (uint64_t)i);
        if (v < 0) {
            ad_array_free(&shp);
            fail(r, ADX_E_SCHEMA, "sparse shape[%d] is negative", i);
            goto bad;
        }
        if ((uint64_t)v > r->lim->max_dim) {
            ad_array_free(&shp);
            fail(r, ADX_E_LIMIT, "sparse shape[%d] = %lld is above max_dim (%llu)", i, (long long)v,
                 (unsigned long long)r->lim->max_dim);
            goto bad;
        }
        s->shape[i] = (uint64_t)v;
    }
    ad_array_free(&shp);
    if (read_member_array(r, g, "data", &s->data) < 0 ||
        read_member_array(r, g, "indices", &s->indices) < 0 ||
        read_member_array(r, g, "indptr", &s->indptr) < 0)
        goto bad;
    if (need_1d(r, &s->data, "data") < 0 || need_1d(r, &s->indices, "indices") < 0 ||
        need_1d(r, &s->indptr, "indptr") < 0)
        goto bad;
    if (s->data.dtype == AD_STR) {
        fail(r, ADX_E_SCHEMA, "sparse data must be numeric");
        goto bad;
    }
    if (!ad_dtype_is_int(s->indices.dtype) || !ad_dtype_is_int(s->indptr.dtype)) {
        fail(r, ADX_E_SCHEMA, "sparse indices and indptr must be integers");
        goto bad;
    }
    uint64_t nnz = s->data.n, major = s->shape[csc ? 1 : 0], minor = s->shape[csc ? 0 : 1];
    if (s->indices.n != nnz) {
        fail(r, ADX_E_SHAPE, "indices has %llu entries but data has %llu",
             (unsigned long long)s->indices.n, (unsigned long long)nnz);
        goto bad;
    }
    if (s->indptr.n != major + 1) {
        fail(r, ADX_E_SHAPE, "indptr has %llu entries, expected %llu (%s + 1)",
             (unsigned long long)s->indptr.n, (unsigned long long)(major + 1),
             csc ? "columns" : "rows");
        goto bad;
    }
    if (get_idx(&s->indptr, 0) != 0) {
        fail(r, ADX_E_SCHEMA, "indptr[0] must be 0");
        goto bad;
    }
    int64_t prev = 0;
    for (uint64_t i = 1; i <= major; i++) {
        int64_t v = get_idx(&s->indptr, i);
        if (v < prev || (uint64_t)v > nnz) {
            fail(r, ADX_E_SCHEMA, "indptr[%llu] = %lld decreases or exceeds nnz (%llu)",
                 (unsigned long long)i, (long long)v, (unsigned long long)nnz);
            goto bad;
        }
        prev = v;
    }
    if ((uint64_t)prev != nnz) {
        fail(r, ADX_E_SCHEMA, "indptr ends at %lld but nnz is %llu", (long long)prev,
             (unsigned long long)nnz);
        goto bad;
    }
    for (uint64_t i = 0; i < nnz; i++) {
        int64_t v = get_idx(&s->indices, i);
        if (v < 0 || (uint64_t)v >= minor) {
            fail(r, ADX_E_SCHEMA, "indices[%llu] = %lld is outside [0, %llu)",
                 (unsigned long long)i, (long long)v, (unsigned long long)minor);
            goto bad;
        }
    }
    return e;
bad:
    ad_elem_free(e);
    return NULL;
}

static int check_codes(rd *r, const ad_array *codes, uint64_t ncat)
{
    if (codes->dtype == AD_STR || !ad_dtype_is_int(codes->dtype))
        return fail(r, ADX_E_SCHEMA, "categorical codes must be integers");
    for (uint64_t i = 0; i < codes->n; i++) {
        int64_t c = get_idx(codes, i);
        if (c < -1 || (c >= 0 && (uint64_t)c >= ncat) ||
            (codes->dtype == AD_U64 && ((const uint64_t *)codes->data)[i] > INT64_MAX))
            return fail(r, ADX_E_SCHEMA, "code %lld at %llu is outside [-1, %llu)", (long long)c,
                        (unsigned long long)i, (unsigned long long)ncat);
    }
    return 0;
}

/* The model keeps codes signed; unsigned codes (old writers) are widened. */
static int signed_codes(rd *r, ad_array *codes)
{
    if (ad_dtype_is_signed(codes->dtype)) return 0;
    ad_dtype to = codes->dtype == AD_U8 ? AD_I16 : codes->dtype == AD_U16 ? AD_I32 : AD_I64;
    ad_array w;
    if (ad_array_init(&w, to, 1, codes->shape) < 0) return fail(r, ADX_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < codes->n; i++) {
        int64_t v = ad_array_get_i64(codes, i);
        if (to == AD_I16)
            ((int16_t *)w.data)[i] = (int16_t)v;
        else if (to == AD_I32)
            ((int32_t *)w.data)[i] = (int32_t)v;
        else
            ((int64_t *)w.data)[i] = v;
    }
    ad_array_free(codes);
    *codes = w;
    return 0;
}

/* pandas refuses duplicate or NaN categories, so a file holding them could
 * not be exported back into anything anndata reads. */
static int check_categories(rd *r, const ad_array *cats)
{
    if (cats->ndim != 1) return fail(r, ADX_E_SCHEMA, "categories must be 1-d");
    ad_cat_problem p;
    int rc = ad_cat_check_categories(cats, &p);
    if (rc < 0) return fail(r, ADX_E_NOMEM, "out of memory");
    if (rc == 0) return 0;
    if (p.kind == AD_CAT_NAN)
        return fail(r, ADX_E_SCHEMA, "categories hold NaN (at %llu)", (unsigned long long)p.at);
    return fail(r, ADX_E_SCHEMA, "categories are not distinct (entry %llu repeats entry %llu)",
                (unsigned long long)p.at, (unsigned long long)p.first);
}

static ad_elem *read_categorical(rd *r, hid_t g)
{
    ad_elem *e = ad_elem_new(AD_K_CATEGORICAL);
    if (!e) {
        fail(r, ADX_E_NOMEM, "out of memory");
        return NULL;
    }
    ad_categorical *c = &e->u.cat;
    if (read_member_array(r, g, "codes", &c->codes) < 0 ||
        read_member_array(r, g, "categories", &c->categories) < 0)
        goto bad;
    if (need_1d(r, &c->codes, "codes") < 0 || check_categories(r, &c->categories) < 0 ||
        check_codes(r, &c->codes, c->categories.n) < 0 || signed_codes(r, &c->codes) < 0)
        goto bad;
    if (attr_bool(r, g, "ordered", &c->ordered) < 0) goto bad;
    return e;
bad:
    ad_elem_free(e);
    return NULL;
}

static ad_elem *read_nullable(rd *r, hid_t g, bool boolean)
{
    ad_elem *e = ad_elem_new(boolean ? AD_K_NULLABLE_BOOL : AD_K_NULLABLE_INT);
    if (!e) {
        fail(r, ADX_E_NOMEM, "out of memory");
        return NULL;
    }
    ad_nullable *nl = &e->u.nl;
    if (read_member_array(r, g, "values", &nl->values) < 0 ||
        read_member_array(r, g, "mask", &nl->mask) < 0)
        goto bad;
    if (need_1d(r, &nl->values, "values") < 0 || need_1d(r, &nl->mask, "mask") < 0) goto bad;
    if (boolean ? nl->values.dtype != AD_BOOL : !ad_dtype_is_int(nl->values.dtype)) {
        fail(r, ADX_E_SCHEMA, "%s values must be %s, got %s",
             boolean ? "nullable-boolean" : "nullable-integer", boolean ? "bool" : "integers",
             ad_dtype_name(nl->values.dtype));
        goto bad;
    }
    if (nl->mask.dtype != AD_BOOL) {
        /* Some writers store the mask as uint8 0/1. */
        if (nl->mask.dtype != AD_U8 && nl->mask.dtype != AD_I8) {
            fail(r, ADX_E_SCHEMA, "mask must be bool, got %s", ad_dtype_name(nl->mask.dtype));
            goto bad;
        }
        uint8_t *u = nl->mask.data;
        for (uint64_t i = 0; i < nl->mask.n; i++)
            u[i] = u[i] != 0;
        nl->mask.dtype = AD_BOOL;
    }
    if (nl->mask.n != nl->values.n) {
        fail(r, ADX_E_SHAPE, "mask has %llu entries but values has %llu",
             (unsigned long long)nl->mask.n, (unsigned long long)nl->values.n);
        goto bad;
    }
    return e;
bad:
    ad_elem_free(e);
    return NULL;
}

/* nullable-string-array (anndata ≥ 0.11, pandas' StringDtype): anndata 0.8
 * has no element for it, so it becomes the model's unsanitized object
 * column, strings with nulls where the mask is set; sanitize stores it as
 * strings with missing as "" and reports null_to_empty_string. */
static ad_elem *read_nullable_strings(rd *r, hid_t g)
{
    ad_array values = {0}, mask = {0};
    ad_elem *e = NULL;
    if (read_member_array(r, g, "values", &values) < 0 ||
        read_member_array(r, g, "mask", &mask) < 0)
        goto out;
    if (need_1d(r, &values, "values") < 0 || need_1d(r, &mask, "mask") < 0) goto out;
    if (values.dtype != AD_STR) {
        fail(r, ADX_E_SCHEMA, "nullable-string-array values must be strings, got %s",
             ad_dtype_name(values.dtype));
        goto out;
    }
    if (mask.dtype != AD_BOOL && mask.dtype != AD_U8 && mask.dtype != AD_I8) {
        fail(r, ADX_E_SCHEMA, "mask must be bool, got %s", ad_dtype_name(mask.dtype));
        goto out;
    }
    if (mask.n != values.n) {
        fail(r, ADX_E_SHAPE, "mask has %llu entries but values has %llu",
             (unsigned long long)mask.n, (unsigned long long)values.n);
        goto out;
    }
    uint64_t n = values.n;
    size_t nb;
    if (ad_bytes(AD_F64, n, &nb) < 0 || charge(r, nb + n) < 0) goto out;
    e = ad_elem_new(AD_K_OBJECT);
    if (!e) {
        fail(r, ADX_E_NOMEM, "out of memory");
        goto out;
    }
    ad_object *o = &e->u.obj;
    o->ndim = 1;
    o->shape[0] = n;
    o->n = n;
    o->kind = malloc(n ? n : 1);
    o->num = calloc(n ? n : 1, sizeof *o->num);
    if (!o->kind || !o->num) {
        ad_elem_free(e);
        e = NULL;
        fail(r, ADX_E_NOMEM, "out of memory");
        goto out;
    }
    const uint8_t *m = mask.data;
    for (uint64_t i = 0; i < n; i++)
        o->kind[i] = m[i] ? AD_CELL_NULL : AD_CELL_STR;
    /* The text blob and offsets move over; a masked cell keeps the "" that
     * anndata writes under the mask. */
    o->str = values.str;
    o->soff = values.soff;
    values.str = NULL;
    values.soff = NULL;
out:
    ad_array_free(&values);
    ad_array_free(&mask);
    return e;
}

/* Collect the member names of a group in name order (what h5py lists). */
typedef struct names {
    char **v;
    size_t n, cap;
    uint64_t max;
    int overflow;
} names;

static herr_t collect_cb(hid_t g, const char *name, const H5L_info_t *info, void *ud)
{
    names *ns = ud;
    if (ns->n >= ns->max) {
        ns->overflow = 1;
        return 1;
    }
    if (ns->n == ns->cap) {
        size_t nc = ns->cap ? ns->cap * 2 : 16;
        char **nv = realloc(ns->v, nc * sizeof *nv);
        if (!nv) return -1;
        ns->v = nv;
        ns->cap = nc;
    }
    ns->v[ns->n] = strdup(name);
    if (!ns->v[ns->n]) return -1;
    ns->n++;
    return 0;
}

static void names_free(names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
    memset(ns, 0, sizeof *ns);
}

static int list_members(rd *r, hid_t g, names *ns)
{
    memset(ns, 0, sizeof *ns);
    ns->max = r->lim->max_keys;
    hsize_t idx = 0;
    herr_t st = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_cb, ns);
    if (ns->overflow) {
        names_free(ns);
        return fail(r, ADX_E_LIMIT, "group has more than max_keys (%llu) members",
                    (unsigned long long)r->lim->max_keys);
    }
    if (st < 0) {
        names_free(ns);
        return fail(r, ADX_E_SCHEMA, "cannot list the group's members");
    }
    return 0;
}

/* Whether the include filter (if any) keeps `key` of namespace `ns`, plus
 * what anndata's read-time moves need (see h5r_opts): 1 keep, 0 skip, -1
 * failed (the filter's glob steps passed max_include_tests). */
static int keep_key(rd *r, const char *ns, const char *key)
{
    if (!ns || !r->inc) return 1;
    int k = flt_set_keeps(r->inc, ns, key);
    if (k == 0 && strcmp(ns, "uns") == 0) {
        static const char suffix[] = "_categories";
        size_t kl = strlen(key), sl = sizeof suffix - 1;
        if (kl > sl && strcmp(key + kl - sl, suffix) == 0) return 1;
        if (strcmp(key, "neighbors") == 0) {
            k = flt_set_keeps(r->inc, "obsp", "distances");
            if (k == 0) k = flt_set_keeps(r->inc, "obsp", "connectivities");
        }
    }
    if (k < 0)
        adx_err_set(r->err, ADX_E_LIMIT, "/include",
                    "matching the include patterns against the file's keys takes more than "
                    "max_include_tests (%" PRIu64 ") glob steps",
                    r->lim->max_include_tests);
    return k;
}

static int read_dict_into(rd *r, hid_t g, ad_dict *d, int depth)
{
    const char *keys_ns = r->keys_ns;
    r->keys_ns = NULL;
    names ns;
    if (list_members(r, g, &ns) < 0) return -1;
    int rc = 0;
    for (size_t i = 0; i < ns.n && rc == 0; i++) {
        int kk = keep_key(r, keys_ns, ns.v[i]);
        if (kk < 0) {
            rc = -1;
            break;
        }
        if (!kk) continue;
        size_t m = adx_ptr_key(&r->p, ns.v[i]);
        ad_elem *v = read_elem(r, g, ns.v[i], depth + 1);
        if (!v) {
            rc = -1;
            break;
        }
        /* a group's member names are distinct: no scan for a repeat */
        if (ad_dict_append(d, ns.v[i], v) < 0) rc = fail(r, ADX_E_NOMEM, "out of memory");
        adx_ptr_pop(&r->p, m);
    }
    names_free(&ns);
    return rc;
}

/* Convert a numeric index (old files, hand-made files) to its decimal strings. */
static int index_to_strings(rd *r, ad_array *idx)
{
    if (idx->dtype == AD_STR) return 0;
    ad_strbuild b = {0};
    char tmp[40];
    for (uint64_t i = 0; i < idx->n; i++) {
        int len;
        if (ad_dtype_is_float(idx->dtype)) {
            ad_fmt_pyfloat(ad_array_get_f64(idx, i), tmp);
            len = (int)strlen(tmp);
        } else if (idx->dtype == AD_U64) {
            len = snprintf(tmp, sizeof tmp, "%llu",
                           (unsigned long long)((const uint64_t *)idx->data)[i]);
        } else if (idx->dtype == AD_BOOL) {
            len = snprintf(tmp, sizeof tmp, "%s", ad_fmt_pybool(((const uint8_t *)idx->data)[i]));
        } else {
            len = snprintf(tmp, sizeof tmp, "%lld", (long long)ad_array_get_i64(idx, i));
        }
        if (ad_sb_push(&b, tmp, (size_t)len) < 0) {
            ad_sb_free(&b);
            return fail(r, ADX_E_NOMEM, "out of memory");
        }
    }
    ad_array s;
    if (ad_sb_finish(&b, &s, 1, NULL) < 0) return fail(r, ADX_E_NOMEM, "out of memory");
    ad_array_free(idx);
    *idx = s;
    return 0;
}

/* Pre-0.8 categorical column: an integer code dataset whose `categories`
 * attribute is an object reference to the categories dataset. Returns the
 * column element, or NULL with *is_legacy = false if it is not one. */
static ad_elem *legacy_categorical(rd *r, hid_t ds, ad_array *codes, bool *is_legacy)
{
    *is_legacy = false;
    int e = attr_exists(r, ds, "categories");
    if (e <= 0) return NULL;
    hid_t a = H5Aopen(ds, "categories", H5P_DEFAULT);
    if (a < 0) {
        fail(r, ADX_E_SCHEMA, "cannot open the categories attribute");
        return NULL;
    }
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    bool isref = t >= 0 && H5Tequal(t, H5T_STD_REF_OBJ) > 0 && sp >= 0 &&
                 H5Sget_simple_extent_npoints(sp) == 1;
    hclose(t);
    hclose(sp);
    if (!isref) {
        H5Aclose(a);
        return NULL; /* an ordinary attribute that happens to be called categories */
    }
    *is_legacy = true;
    hobj_ref_t ref;
    if (H5Aread(a, H5T_STD_REF_OBJ, &ref) < 0) {
        H5Aclose(a);
        fail(r, ADX_E_SCHEMA, "cannot read the categories reference");
        return NULL;
    }
    H5Aclose(a);
    hid_t cd = H5Rdereference2(ds, H5P_DEFAULT, H5R_OBJECT, &ref);
    if (cd < 0) {
        fail(r, ADX_E_SCHEMA, "the categories reference points nowhere");
        return NULL;
    }
    if (H5Iget_type(cd) != H5I_DATASET) {
        hclose(cd);
        fail(r, ADX_E_SCHEMA, "the categories reference is not a dataset");
        return NULL;
    }
    ad_elem *el = ad_elem_new(AD_K_CATEGORICAL);
    if (!el) {
        H5Dclose(cd);
        fail(r, ADX_E_NOMEM, "out of memory");
        return NULL;
    }
    int rc = read_dataset(r, cd, &el->u.cat.categories);
    /* anndata 0.7 put `ordered` on the categories dataset */
    if (rc == 0) rc = attr_bool(r, cd, "ordered", &el->u.cat.ordered) < 0 ? -1 : 0;
    H5Dclose(cd);
    el->u.cat.codes = *codes;
    memset(codes, 0, sizeof *codes);
    if (rc < 0 || need_1d(r, &el->u.cat.codes, "codes") < 0 ||
        check_categories(r, &el->u.cat.categories) < 0 ||
        check_codes(r, &el->u.cat.codes, el->u.cat.categories.n) < 0 ||
        signed_codes(r, &el->u.cat.codes) < 0) {
        ad_elem_free(el);
        return NULL;
    }
    return el;
}

/* A frame column: any element, plus the legacy code-dataset form. */
static ad_elem *read_column(rd *r, hid_t g, const char *name, int depth)
{
    if (check_link(r, g, name) < 0) return NULL;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0) {
        fail(r, ADX_E_SCHEMA, "missing column");
        return NULL;
    }
    if (oi.type == H5O_TYPE_DATASET) {
        hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
        if (ds < 0) {
            fail(r, ADX_E_SCHEMA, "cannot open the column");
            return NULL;
        }
        int enc = attr_exists(r, ds, "encoding-type");
        if (enc == 0) {
            ad_array codes;
            if (read_dataset(r, ds, &codes) < 0) {
                H5Dclose(ds);
                return NULL;
            }
            bool legacy;
            ad_elem *el = legacy_categorical(r, ds, &codes, &legacy);
            H5Dclose(ds);
            if (legacy || adx_err_failed(r->err)) {
                ad_array_free(&codes);
                return el;
            }
            el = ad_elem_from_array(&codes);
            if (!el) fail(r, ADX_E_NOMEM, "out of memory");
            return el;
        }
        H5Dclose(ds);
        if (enc < 0) return NULL;
    }
    return read_elem(r, g, name, depth);
}

/* Names taken from attributes are used as HDF5 paths: "/X" or "a/b" would
 * reach elements outside the frame, so only plain member names pass. */
static int bad_member_name(rd *r, const char *name, const char *attr)
{
    if (!*name || strchr(name, '/') || strcmp(name, ".") == 0)
        return fail(r, ADX_E_SCHEMA, "%s names \"%s\", which is not a member name", attr, name);
    return 0;
}

static int read_frame_group(rd *r, hid_t g, ad_frame *f, int depth)
{
    memset(f, 0, sizeof *f);
    const char *keys_ns = r->keys_ns;
    r->keys_ns = NULL;
    char *idx_name = NULL;
    int e = attr_string(r, g, "_index", &idx_name);
    if (e < 0) return -1;
    if (e == 0) {
        /* Hand-made frames without _index: fall back to a member "_index". */
        int h = has_member(r, g, "_index");
        if (h < 0) return -1;
        if (!h) return fail(r, ADX_E_SCHEMA, "dataframe has no _index attribute");
        idx_name = strdup("_index");
        if (!idx_name) return fail(r, ADX_E_NOMEM, "out of memory");
    }
    int rc = -1;
    ad_array order = {0};
    names ns = {0};
    adx_strmap seen = {0}; /* the columns read so far */
    if (bad_member_name(r, idx_name, "_index") < 0) goto out;
    if (read_member_array(r, g, idx_name, &f->index) < 0) goto out;
    if (need_1d(r, &f->index, "the index") < 0 || index_to_strings(r, &f->index) < 0) goto out;
    f->n_rows = f->index.n;
    if (strcmp(idx_name, "_index") != 0) {
        f->index_name = idx_name;
        idx_name = NULL;
    }
    int oe = attr_array(r, g, "column-order", &order);
    if (oe < 0) goto out;
    uint64_t ncols = 0;
    if (oe > 0) {
        if (order.dtype != AD_STR) {
            /* anndata writes an empty float64 array when there are no columns */
            if (order.n != 0) {
                fail(r, ADX_E_SCHEMA, "column-order must be an array of strings");
                goto out;
            }
        } else {
            ncols = order.n;
        }
    } else {
        if (list_members(r, g, &ns) < 0) goto out;
        ncols = ns.n;
    }
    if (ncols > r->lim->max_keys) {
        fail(r, ADX_E_LIMIT, "dataframe has more than max_keys (%llu) columns",
             (unsigned long long)r->lim->max_keys);
        goto out;
    }
    for (uint64_t i = 0; i < ncols; i++) {
        const char *cn = oe > 0 ? ad_str_at(&order, i) : ns.v[i];
        if (oe == 0) {
            const char *skip_idx = f->index_name ? f->index_name : "_index";
            if (strcmp(cn, skip_idx) == 0 || strcmp(cn, "__categories") == 0) continue;
        }
        if (bad_member_name(r, cn, "column-order") < 0) goto out;
        int kk = keep_key(r, keys_ns, cn);
        if (kk < 0) goto out;
        if (!kk) continue;
        size_t at;
        bool added;
        if (adx_strmap_add(&seen, cn, &at, &added) < 0) {
            fail(r, ADX_E_NOMEM, "out of memory");
            goto out;
        }
        if (!added) {
            fail(r, ADX_E_SCHEMA, "column-order names %s twice", cn);
            goto out;
        }
        size_t m = adx_ptr_key(&r->p, cn);
        ad_elem *col = read_column(r, g, cn, depth + 1);
        if (!col) goto out;
        bool ok1d = col->kind == AD_K_CATEGORICAL || col->kind == AD_K_NULLABLE_INT ||
                    col->kind == AD_K_NULLABLE_BOOL ||
                    (col->kind == AD_K_OBJECT && col->u.obj.ndim == 1) ||
                    (col->kind == AD_K_ARRAY && col->u.arr.ndim == 1);
        if (!ok1d) {
            ad_elem_free(col);
            fail(r, ADX_E_SCHEMA,
                 "a dataframe column must be a 1-d array, categorical or nullable");
            goto out;
        }
        if (ad_elem_rows(col) != f->n_rows) {
            uint64_t got = ad_elem_rows(col);
            ad_elem_free(col);
            fail(r, ADX_E_SHAPE, "column has %llu rows but the index has %llu",
                 (unsigned long long)got, (unsigned long long)f->n_rows);
            goto out;
        }
        if (ad_frame_append(f, cn, col) < 0) {
            fail(r, ADX_E_NOMEM, "out of memory");
            goto out;
        }
        adx_ptr_pop(&r->p, m);
    }
    rc = 0;
out:
    adx_strmap_free(&seen);
    names_free(&ns);
    ad_array_free(&order);
    free(idx_name);
    if (rc < 0) ad_frame_free(f);
    return rc;
}

/* A compound dataset is read in one H5Dread into a memory compound of every
 * member (reading member by member would decompress the whole dataset once
 * per field: quadratic in the number of fields). Members: strings (variable
 * or fixed length) become AD_STR, numbers and bools their dtype, and an HDF5
 * array member (anndata ≤ 0.6 kept obsm matrices as fields of shape (k,) or
 * (k, l)) an (n, k[, l]) array when `subarrays` allows it. */
typedef struct cfield {
    char *name;
    ad_dtype dt;
    int ndim;
    uint64_t shape[AD_MAX_NDIM], total;
    hid_t mt; /* memory type of the member */
    size_t off, size;
    bool vl; /* variable-length string: a char * at off */
    H5T_str_t pad;
} cfield;

/* Classify member i of file type ft into f (name, dtype, shape, memory type). */
static int cfield_plan(rd *r, hid_t ft, unsigned i, uint64_t n, bool subarrays, cfield *f)
{
    hid_t mft = H5Tget_member_type(ft, i), base = -1, mt0 = -1;
    if (mft < 0) return fail(r, ADX_E_SCHEMA, "cannot read compound field %u", i);
    int rc = -1;
    f->ndim = 1;
    f->shape[0] = n;
    if (H5Tget_class(mft) == H5T_ARRAY) {
        if (!subarrays) {
            fail(r, ADX_E_SCHEMA, "a record field must hold one value per record");
            goto out;
        }
        int rk = H5Tget_array_ndims(mft);
        hsize_t ad[H5S_MAX_RANK];
        if (rk < 1 || rk >= AD_MAX_NDIM || (uint32_t)rk + 1 > r->lim->max_ndim ||
            H5Tget_array_dims2(mft, ad) < 0) {
            fail(r, ADX_E_SCHEMA, "unsupported array field of rank %d", rk);
            goto out;
        }
        for (int k = 0; k < rk; k++) {
            if (ad[k] > r->lim->max_dim) {
                fail(r, ADX_E_LIMIT, "array field dimension %llu is above max_dim (%llu)",
                     (unsigned long long)ad[k], (unsigned long long)r->lim->max_dim);
                goto out;
            }
            f->shape[1 + k] = ad[k];
        }
        f->ndim = 1 + rk;
        base = H5Tget_super(mft);
        if (base < 0) {
            fail(r, ADX_E_SCHEMA, "cannot read an array field's type");
            goto out;
        }
    }
    hid_t ftype = base >= 0 ? base : mft;
    if (map_dtype(r, ftype, &f->dt, &mt0) < 0) goto out;
    if (ad_shape_product(f->ndim, f->shape, &f->total) < 0 || f->total > r->lim->max_elements) {
        fail(r, ADX_E_LIMIT, "field has more than max_elements (%llu) elements",
             (unsigned long long)r->lim->max_elements);
        goto out;
    }
    if (f->dt == AD_STR) {
        if (f->ndim != 1) {
            fail(r, ADX_E_SCHEMA, "array fields of strings are not read");
            goto out;
        }
        f->vl = H5Tis_variable_str(ftype) > 0;
        f->mt = H5Tcopy(f->vl ? H5T_C_S1 : ftype);
        if (f->mt >= 0 && f->vl &&
            (H5Tset_size(f->mt, H5T_VARIABLE) < 0 || H5Tset_cset(f->mt, H5Tget_cset(ftype)) < 0))
            hclose(f->mt), f->mt = -1;
        f->pad = f->vl ? H5T_STR_NULLTERM : H5Tget_strpad(ftype);
    } else if (f->ndim > 1) {
        hsize_t ad[AD_MAX_NDIM];
        for (int k = 1; k < f->ndim; k++)
            ad[k - 1] = f->shape[k];
        f->mt = H5Tarray_create2(mt0, (unsigned)(f->ndim - 1), ad);
    } else {
        f->mt = mt0;
        mt0 = -1;
    }
    f->size = f->mt >= 0 ? H5Tget_size(f->mt) : 0;
    if (f->mt < 0 || f->size == 0) {
        fail(r, ADX_E_SCHEMA, "cannot build a memory type for the field");
        goto out;
    }
    if (!f->vl && f->dt == AD_STR && f->size > r->lim->max_string_bytes) {
        fail(r, ADX_E_LIMIT, "fixed-length strings of %zu bytes exceed max_string_bytes (%llu)",
             f->size, (unsigned long long)r->lim->max_string_bytes);
        goto out;
    }
    rc = 0;
out:
    hclose(mt0);
    hclose(base);
    hclose(mft);
    return rc;
}

/* Field f of the n records in buf (record size rs) as an array. */
static int cfield_take(rd *r, const cfield *f, const char *buf, size_t rs, uint64_t n,
                       ad_array *col)
{
    memset(col, 0, sizeof *col);
    if (f->dt == AD_STR) {
        ad_strbuild b = {0};
        int rc = 0;
        for (uint64_t k = 0; k < n && rc == 0; k++) {
            const char *p = buf + k * rs + f->off;
            const char *s;
            size_t len;
            if (f->vl) {
                memcpy(&s, p, sizeof s);
                if (!s) s = "";
                len = strlen(s);
            } else {
                s = p;
                len = strnlen(s, f->size);
                if (f->pad == H5T_STR_SPACEPAD)
                    while (len && s[len - 1] == ' ')
                        len--;
            }
            rc = push_str(r, &b, s, len);
        }
        if (rc == 0 && ad_sb_finish(&b, col, 1, NULL) < 0)
            rc = fail(r, ADX_E_NOMEM, "out of memory");
        ad_sb_free(&b);
        return rc;
    }
    size_t bytes;
    if (ad_bytes(f->dt, f->total, &bytes) < 0 || charge(r, bytes) < 0 ||
        ad_array_init(col, f->dt, f->ndim, f->shape) < 0) {
        if (!adx_err_failed(r->err)) fail(r, ADX_E_NOMEM, "out of memory");
        return -1;
    }
    for (uint64_t k = 0; k < n; k++)
        memcpy((char *)col->data + k * f->size, buf + k * rs + f->off, f->size);
    if (f->dt == AD_BOOL)
        for (uint64_t k = 0; k < f->total; k++)
            if (((const uint8_t *)col->data)[k] > 1) {
                ad_array_free(col);
                return fail(r, ADX_E_SCHEMA, "bool value at %llu is neither FALSE nor TRUE",
                            (unsigned long long)k);
            }
    return 0;
}

/* Calls `each` with every field of a 1-d compound dataset, in member order,
 * under the field's path segment; `each` moves what it keeps out of col. */
typedef int (*field_fn)(rd *r, const char *name, ad_array *col, void *ud);

static int compound_fields(rd *r, hid_t ds, bool subarrays, uint64_t *nrec, field_fn each, void *ud)
{
    if (check_storage(r, ds) < 0) return -1;
    hid_t ft = H5Dget_type(ds), sp = H5Dget_space(ds), mct = -1;
    cfield *fs = NULL;
    char *buf = NULL;
    int nm = 0, rc = -1;
    bool any_vl = false;
    if (ft < 0 || sp < 0) {
        fail(r, ADX_E_SCHEMA, "cannot open the compound dataset");
        goto out;
    }
    int nd;
    uint64_t shape[AD_MAX_NDIM], n;
    if (space_shape(r, sp, &nd, shape, &n) < 0) goto out;
    if (nd != 1) {
        fail(r, ADX_E_SCHEMA, "a compound dataset must be 1-d, got rank %d", nd);
        goto out;
    }
    *nrec = n;
    nm = H5Tget_nmembers(ft);
    if (nm < 0 || (uint64_t)nm > r->lim->max_keys) {
        fail(r, ADX_E_LIMIT, "compound type with more than max_keys (%llu) fields",
             (unsigned long long)r->lim->max_keys);
        nm = 0;
        goto out;
    }
    if (charge(r, (uint64_t)nm * sizeof *fs) < 0) {
        nm = 0;
        goto out;
    }
    fs = calloc(nm ? (size_t)nm : 1, sizeof *fs);
    if (!fs) {
        nm = 0;
        fail(r, ADX_E_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nm; i++)
        fs[i].mt = -1;
    size_t rs = 0;
    for (int i = 0; i < nm; i++) {
        fs[i].name = H5Tget_member_name(ft, (unsigned)i);
        if (!fs[i].name) {
            fail(r, ADX_E_SCHEMA, "cannot read compound field %d", i);
            goto out;
        }
        size_t m = adx_ptr_key(&r->p, fs[i].name);
        if (cfield_plan(r, ft, (unsigned)i, n, subarrays, &fs[i]) < 0) goto out;
        adx_ptr_pop(&r->p, m);
        fs[i].off = rs;
        if (__builtin_add_overflow(rs, fs[i].size, &rs)) {
            fail(r, ADX_E_LIMIT, "compound record too large");
            goto out;
        }
        any_vl |= fs[i].vl;
    }
    if (nm == 0) {
        rc = 0;
        goto out;
    }
    /* H5Tinsert refuses a name twice, so the callbacks get distinct names. */
    mct = H5Tcreate(H5T_COMPOUND, rs);
    for (int i = 0; mct >= 0 && i < nm; i++)
        if (H5Tinsert(mct, fs[i].name, fs[i].off, fs[i].mt) < 0) hclose(mct), mct = -1;
    if (mct < 0) {
        fail(r, ADX_E_SCHEMA, "cannot build a compound read type");
        goto out;
    }
    uint64_t bytes;
    if (__builtin_mul_overflow((uint64_t)rs, n, &bytes) || bytes > SIZE_MAX ||
        charge(r, bytes) < 0 || !(buf = malloc(bytes ? (size_t)bytes : 1))) {
        if (!adx_err_failed(r->err)) fail(r, ADX_E_LIMIT, "compound dataset too large");
        goto out;
    }
    if (n && H5Dread(ds, mct, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        free(buf);
        buf = NULL;
        read_failed(r, ds);
        goto out;
    }
    for (int i = 0; i < nm; i++) {
        size_t m = adx_ptr_key(&r->p, fs[i].name);
        ad_array col;
        int frc = cfield_take(r, &fs[i], buf, rs, n, &col);
        if (frc == 0) frc = each(r, fs[i].name, &col, ud);
        ad_array_free(&col);
        if (frc < 0) goto out;
        adx_ptr_pop(&r->p, m);
    }
    rc = 0;
out:
    if (buf && any_vl && n) {
        /* The strings were allocated by HDF5; give them back the way it wants. */
        H5Dvlen_reclaim(mct, sp, H5P_DEFAULT, buf);
    }
    free(buf);
    for (int i = 0; fs && i < nm; i++) {
        if (fs[i].name) H5free_memory(fs[i].name);
        hclose(fs[i].mt);
    }
    free(fs);
    hclose(mct);
    hclose(sp);
    hclose(ft);
    return rc;
}

typedef struct cframe {
    ad_frame *f;
    bool have_index;
} cframe;

static int frame_field(rd *r, const char *fname, ad_array *col, void *ud)
{
    cframe *c = ud;
    if (strcmp(fname, "index") == 0 && !c->have_index) {
        /* pandas' set_index names the index after the field, as
         * anndata.read_h5ad shows it */
        if (index_to_strings(r, col) < 0) return -1;
        if (!(c->f->index_name = strdup("index"))) return fail(r, ADX_E_NOMEM, "out of memory");
        ad_array_free(&c->f->index);
        c->f->index = *col;
        memset(col, 0, sizeof *col);
        c->have_index = true;
        return 0;
    }
    ad_elem *el = ad_elem_from_array(col);
    if (!el || ad_frame_append(c->f, fname, el) < 0) return fail(r, ADX_E_NOMEM, "out of memory");
    return 0;
}

/* anndata ≤ 0.6 stored obs/var as one compound dataset: a field "index"
 * plus one field per column (numeric or fixed-length strings). */
static int read_compound_frame(rd *r, hid_t ds, ad_frame *f)
{
    memset(f, 0, sizeof *f);
    cframe c = {.f = f};
    uint64_t n = 0;
    int rc = compound_fields(r, ds, false, &n, frame_field, &c);
    if (rc == 0) f->n_rows = n;
    if (rc == 0 && !c.have_index && default_index(r, f, n, NULL) < 0) rc = -1;
    if (rc < 0) ad_frame_free(f);
    return rc;
}

/* A new element of `kind` whose fields compound_fields hands to `each`
 * (ud: the element); NULL after fail(). */
static ad_elem *compound_elem(rd *r, hid_t ds, ad_kind kind, bool subarrays, field_fn each,
                              uint64_t *n)
{
    ad_elem *e = ad_elem_new(kind);
    if (!e) {
        fail(r, ADX_E_NOMEM, "out of memory");
        return NULL;
    }
    *n = 0;
    if (compound_fields(r, ds, subarrays, n, each, e) < 0) {
        ad_elem_free(e);
        return NULL;
    }
    return e;
}

static int rec_field(rd *r, const char *fname, ad_array *col, void *ud)
{
    if (ad_recarray_append(&((ad_elem *)ud)->u.rec, fname, col) < 0)
        return fail(r, ADX_E_SCHEMA, "record field repeats a name or has the wrong length");
    return 0;
}

/* A record array (encoding rec-array, or an untagged compound dataset in uns
 * as anndata < 0.8 wrote np.recarray): one 1-d field per member. */
static ad_elem *read_recarray(rd *r, hid_t ds)
{
    uint64_t n;
    ad_elem *e = compound_elem(r, ds, AD_K_RECARRAY, false, rec_field, &n);
    if (e && e->u.rec.nfields == 0) {
        ad_elem_free(e);
        fail(r, ADX_E_SCHEMA, "a record array needs at least one field");
        return NULL;
    }
    if (e) e->u.rec.n = n;
    return e;
}

static int dict_field(rd *r, const char *fname, ad_array *col, void *ud)
{
    ad_elem *el = ad_elem_from_array(col);
    if (!el || ad_dict_append(&((ad_elem *)ud)->u.dict, fname, el) < 0)
        return fail(r, ADX_E_NOMEM, "out of memory");
    return 0;
}

/* anndata ≤ 0.6 stored obsm / varm as one compound dataset, a field per key
 * (matrices as array-typed fields); anndata.read_h5ad turns it into a
 * mapping of the fields (utils.convert_to_dict). */
static ad_elem *read_compound_dict(rd *r, hid_t ds)
{
    uint64_t n;
    return compound_elem(r, ds, AD_K_DICT, true, dict_field, &n);
}

static ad_elem *frame_elem(rd *r, hid_t g, int depth)
{
    ad_elem *e = ad_elem_new(AD_K_FRAME);
    if (!e) {
        fail(r, ADX_E_NOMEM, "out of memory");
        return NULL;
    }
    if (read_frame_group(r, g, &e->u.df, depth) < 0) {
        ad_elem_free(e);
        return NULL;
    }
    return e;
}

static ad_elem *read_group_elem(rd *r, hid_t g, const char *enc, int depth)
{
    if (enc) {
        if (strcmp(enc, "dict") == 0) {
            ad_elem *e = ad_elem_new(AD_K_DICT);
            if (!e) {
                fail(r, ADX_E_NOMEM, "out of memory");
                return NULL;
            }
            if (read_dict_into(r, g, &e->u.dict, depth) < 0) {
                ad_elem_free(e);
                return NULL;
            }
            return e;
        }
        if (strcmp(enc, "dataframe") == 0) return frame_elem(r, g, depth);
        if (strcmp(enc, "csr_matrix") == 0) return read_sparse(r, g, false, false);
        if (strcmp(enc, "csc_matrix") == 0) return read_sparse(r, g, true, false);
        if (strcmp(enc, "categorical") == 0) return read_categorical(r, g);
        if (strcmp(enc, "nullable-integer") == 0) return read_nullable(r, g, false);
        if (strcmp(enc, "nullable-boolean") == 0) return read_nullable(r, g, true);
        if (strcmp(enc, "nullable-string-array") == 0) return read_nullable_strings(r, g);
        fail(r, ADX_E_SCHEMA,
             "encoding-type \"%s\" cannot be represented in an anndata 0.8 file; leave this "
             "element out with include",
             enc);
        return NULL;
    }
    /* No encoding-type: the pre-0.8 layouts. */
    char *fmt = NULL;
    int h = attr_string(r, g, "h5sparse_format", &fmt);
    if (h < 0) return NULL;
    if (h > 0) {
        bool csc = strcmp(fmt, "csc") == 0;
        bool csr = strcmp(fmt, "csr") == 0;
        free(fmt);
        if (!csc && !csr) {
            fail(r, ADX_E_SCHEMA, "unknown h5sparse_format");
            return NULL;
        }
        return read_sparse(r, g, csc, true);
    }
    int ix = attr_exists(r, g, "_index");
    if (ix < 0) return NULL;
    if (ix > 0) return frame_elem(r, g, depth);
    return read_group_elem(r, g, "dict", depth);
}

/* encoding-type "null" (anndata ≥ 0.11 writes None as an empty dataset):
 * the model's null, which sanitize drops from uns and reports. */
static ad_elem *read_null(rd *r, hid_t ds)
{
    hid_t sp = H5Dget_space(ds);
    H5S_class_t cls = sp >= 0 ? H5Sget_simple_extent_type(sp) : H5S_NO_CLASS;
    hclose(sp);
    if (cls != H5S_NULL) {
        fail(r, ADX_E_SCHEMA, "encoding-type \"null\" needs an empty (null dataspace) dataset");
        return NULL;
    }
    ad_elem *e = ad_elem_new(AD_K_NULL);
    if (!e) fail(r, ADX_E_NOMEM, "out of memory");
    return e;
}

/* anndata < 0.7 stored a string scalar as a 1-element fixed-length string
 * dataset; anndata.read_h5ad (h5ad.read_dataset) returns the string. */
static bool legacy_string_scalar(hid_t ds, const ad_array *a)
{
    if (a->dtype != AD_STR || a->ndim != 1 || a->n != 1) return false;
    hid_t ft = H5Dget_type(ds);
    bool fixed = ft >= 0 && H5Tis_variable_str(ft) == 0;
    hclose(ft);
    return fixed;
}

static ad_elem *read_dataset_elem(rd *r, hid_t ds, const char *enc, int compound_as)
{
    if (enc && strcmp(enc, "null") == 0) return read_null(r, ds);
    if (enc && strcmp(enc, "array") != 0 && strcmp(enc, "string-array") != 0 &&
        strcmp(enc, "numeric-scalar") != 0 && strcmp(enc, "string") != 0 &&
        strcmp(enc, "bytes") != 0 && strcmp(enc, "rec-array") != 0) {
        fail(r, ADX_E_SCHEMA,
             "encoding-type \"%s\" cannot be represented in an anndata 0.8 file; leave this "
             "element out with include",
             enc);
        return NULL;
    }
    hid_t ft = H5Dget_type(ds);
    if (ft < 0) {
        fail(r, ADX_E_SCHEMA, "cannot read the dataset type");
        return NULL;
    }
    H5T_class_t cls = H5Tget_class(ft);
    H5Tclose(ft);
    if (enc && strcmp(enc, "rec-array") == 0) {
        if (cls != H5T_COMPOUND) {
            fail(r, ADX_E_SCHEMA, "encoding-type \"rec-array\" needs a compound dataset");
            return NULL;
        }
        return read_recarray(r, ds);
    }
    if (cls == H5T_COMPOUND && !enc) {
        if (compound_as == CMP_DICT) return read_compound_dict(r, ds);
        if (compound_as == CMP_REC) return read_recarray(r, ds);
        ad_elem *e = ad_elem_new(AD_K_FRAME);
        if (!e) {
            fail(r, ADX_E_NOMEM, "out of memory");
            return NULL;
        }
        if (read_compound_frame(r, ds, &e->u.df) < 0) {
            ad_elem_free(e);
            return NULL;
        }
        return e;
    }
    ad_array a;
    if (read_dataset(r, ds, &a) < 0) return NULL;
    if (enc) {
        bool want_str = strcmp(enc, "string-array") == 0 || strcmp(enc, "string") == 0 ||
                        strcmp(enc, "bytes") == 0;
        bool want_scalar = strcmp(enc, "numeric-scalar") == 0 || strcmp(enc, "string") == 0 ||
                           strcmp(enc, "bytes") == 0;
        if (want_str != (a.dtype == AD_STR) || (want_scalar && a.ndim != 0)) {
            fail(r, ADX_E_SCHEMA, "encoding-type \"%s\" does not match a %d-d %s dataset", enc,
                 a.ndim, ad_dtype_name(a.dtype));
            ad_array_free(&a);
            return NULL;
        }
    } else if (legacy_string_scalar(ds, &a)) {
        a.ndim = 0;
    }
    ad_elem *e = ad_elem_from_array(&a);
    if (!e) fail(r, ADX_E_NOMEM, "out of memory");
    return e;
}

static ad_elem *read_elem(rd *r, hid_t loc, const char *name, int depth)
{
    int compound_as = r->compound_as;
    r->compound_as = CMP_REC; /* the hint is for this element, not its members */
    if (check_canceled(r) < 0) return NULL;
    if (depth > (int)r->lim->max_depth) {
        fail(r, ADX_E_LIMIT, "nesting deeper than max_depth (%u)", r->lim->max_depth);
        return NULL;
    }
    if (check_link(r, loc, name) < 0) return NULL;
    H5O_info_t oi;
    if (H5Oget_info_by_name(loc, name, &oi, H5P_DEFAULT) < 0) {
        fail(r, ADX_E_SCHEMA, "cannot inspect the element");
        return NULL;
    }
    if (oi.type != H5O_TYPE_GROUP && oi.type != H5O_TYPE_DATASET) {
        fail(r, ADX_E_SCHEMA, "element is neither a group nor a dataset");
        return NULL;
    }
    hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
    if (o < 0) {
        fail(r, ADX_E_SCHEMA, "cannot open the element");
        return NULL;
    }
    char *enc = NULL;
    ad_elem *e = NULL;
    if (attr_string(r, o, "encoding-type", &enc) >= 0)
        e = oi.type == H5O_TYPE_GROUP ? read_group_elem(r, o, enc, depth)
                                      : read_dataset_elem(r, o, enc, compound_as);
    free(enc);
    H5Oclose(o);
    return e;
}

/* ---------------------------------------------------------------- root */

static int read_frame_at(rd *r, hid_t root, const char *name, ad_frame *f, bool *present)
{
    /* obs / var columns are filtered; raw.var is raw, always kept whole */
    const char *root_ns = strcmp(name, "obs") == 0 || strcmp(name, "var") == 0 ? name : NULL;
    *present = false;
    size_t m = adx_ptr_key(&r->p, name);
    int h = has_member(r, root, name);
    int rc = -1;
    if (h < 0) goto out;
    if (h == 0) {
        rc = 0;
        goto out;
    }
    r->compound_as = CMP_FRAME;
    r->keys_ns = root_ns;
    ad_elem *e = read_elem(r, root, name, 1);
    r->keys_ns = NULL;
    if (!e) goto out;
    if (e->kind != AD_K_FRAME) {
        ad_elem_free(e);
        fail(r, ADX_E_SCHEMA, "expected a dataframe");
        goto out;
    }
    *f = e->u.df;
    memset(&e->u.df, 0, sizeof e->u.df);
    ad_elem_free(e);
    *present = true;
    rc = 0;
out:
    adx_ptr_pop(&r->p, m);
    return rc;
}

/* The kinds anndata reads in a mapping; shapes are ad_anndata_check's. */
static int check_kind(rd *r, const ad_elem *e, bool rows_only)
{
    if (e->kind == AD_K_SPARSE ||
        ((e->kind == AD_K_FRAME || e->kind == AD_K_RECARRAY) && rows_only) ||
        (e->kind == AD_K_ARRAY && e->u.arr.ndim >= 1 &&
         (rows_only || (e->u.arr.ndim == 2 && e->u.arr.dtype != AD_STR))))
        return 0;
    return fail(r, ADX_E_SCHEMA, "expected %s",
                rows_only ? "an array, a sparse matrix or a dataframe"
                          : "a 2-d numeric array or a sparse matrix");
}

/* Read a mapping (obsm, layers, …) and check each value's kind: rows_only
 * for obsm/varm, 2-d matrices for layers, obsp, varp. */
static int read_mapping(rd *r, hid_t loc, const char *name, ad_dict *d, bool rows_only)
{
    /* Root mappings are filtered by their own name; raw's varm is raw. */
    const char *loc_ns = loc == r->root && strncmp(name, "raw", 3) != 0 ? name : NULL;
    size_t m = adx_ptr_key(&r->p, name);
    int rc = -1;
    int h = has_member(r, loc, name);
    if (h <= 0) {
        rc = h;
        goto out;
    }
    r->compound_as = rows_only ? CMP_DICT : CMP_REC;
    r->keys_ns = loc_ns;
    ad_elem *e = read_elem(r, loc, name, 1);
    r->keys_ns = NULL;
    if (!e) goto out;
    if (e->kind != AD_K_DICT) {
        ad_elem_free(e);
        fail(r, ADX_E_SCHEMA, "expected a mapping (dict)");
        goto out;
    }
    *d = e->u.dict;
    memset(&e->u.dict, 0, sizeof e->u.dict);
    ad_elem_free(e);
    for (size_t i = 0; i < d->n; i++) {
        size_t k = adx_ptr_key(&r->p, d->keys[i]);
        if (check_kind(r, d->vals[i], rows_only) < 0) goto out;
        adx_ptr_pop(&r->p, k);
    }
    rc = 0;
out:
    if (rc == 0) adx_ptr_pop(&r->p, m);
    return rc;
}

static int read_x(rd *r, hid_t loc, const char *name, ad_elem **out)
{
    *out = NULL;
    size_t m = adx_ptr_key(&r->p, name);
    int h = has_member(r, loc, name);
    if (h <= 0) {
        adx_ptr_pop(&r->p, m);
        return h;
    }
    ad_elem *e = read_elem(r, loc, name, 1);
    if (!e) return -1;
    if (!(e->kind == AD_K_SPARSE ||
          (e->kind == AD_K_ARRAY && e->u.arr.ndim == 2 && e->u.arr.dtype != AD_STR))) {
        ad_elem_free(e);
        return fail(r, ADX_E_SCHEMA, "X must be a 2-d numeric array or a sparse matrix");
    }
    *out = e;
    adx_ptr_pop(&r->p, m);
    return 0;
}

static void x_shape(const ad_elem *x, uint64_t *rows, uint64_t *cols)
{
    if (x->kind == AD_K_SPARSE) {
        *rows = x->u.sp.shape[0];
        *cols = x->u.sp.shape[1];
    } else {
        *rows = x->u.arr.shape[0];
        *cols = x->u.arr.shape[1];
    }
}

/* raw's X, var and varm under `loc` with the given member names: "X", "var",
 * "varm" inside a raw group, or "raw.X", "raw.var", "raw.varm" at the root
 * of files older than the raw group. */
static int raw_parts(rd *r, hid_t loc, const char *const nm[3], ad_anndata *a)
{
    ad_raw *raw = calloc(1, sizeof *raw);
    if (!raw) return fail(r, ADX_E_NOMEM, "out of memory");
    a->raw = raw;
    if (read_x(r, loc, nm[0], &raw->X) < 0) return -1;
    bool have_var;
    if (read_frame_at(r, loc, nm[1], &raw->var, &have_var) < 0) return -1;
    uint64_t rr = a->n_obs, rcols = 0;
    if (raw->X) x_shape(raw->X, &rr, &rcols);
    if (!have_var && default_index(r, &raw->var, rcols, "var") < 0) return -1;
    return read_mapping(r, loc, nm[2], &raw->varm, true);
}

static int read_raw(rd *r, hid_t root, ad_anndata *a)
{
    static const char *const group_names[3] = {"X", "var", "varm"};
    static const char *const legacy_names[3] = {"raw.X", "raw.var", "raw.varm"};
    int h = has_member(r, root, "raw");
    if (h < 0) return -1;
    if (h == 0) {
        int l = has_member(r, root, "raw.X");
        if (l <= 0) return l;
        return raw_parts(r, root, legacy_names, a);
    }
    size_t m = adx_ptr_key(&r->p, "raw");
    if (check_link(r, root, "raw") < 0) return -1;
    H5O_info_t oi;
    if (H5Oget_info_by_name(root, "raw", &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_GROUP)
        return fail(r, ADX_E_SCHEMA, "raw must be a group");
    hid_t g = H5Gopen2(root, "raw", H5P_DEFAULT);
    if (g < 0) return fail(r, ADX_E_SCHEMA, "cannot open raw");
    int rc = -1;
    char *enc = NULL;
    if (attr_string(r, g, "encoding-type", &enc) < 0) goto out;
    if (enc && strcmp(enc, "raw") != 0) {
        fail(r, ADX_E_SCHEMA, "unsupported encoding-type \"%s\" for raw", enc);
        goto out;
    }
    rc = raw_parts(r, g, group_names, a);
out:
    free(enc);
    H5Gclose(g);
    if (rc == 0) adx_ptr_pop(&r->p, m);
    return rc;
}

typedef struct fold {
    rd *r;
    ad_frame *fr[2];    /* obs, var */
    adx_strmap cols[2]; /* column name -> index, made at the first candidate */
    bool have_cols;
    int rc;
} fold;

/* One uns entry: folded into its obs/var column (and then dropped from uns)
 * or kept; after a failure the rest are kept as they are. */
static bool fold_one(const char *key, ad_elem *cats, void *ud)
{
    static const char suffix[] = "_categories";
    const size_t sl = sizeof suffix - 1;
    fold *c = ud;
    rd *r = c->r;
    size_t kl = strlen(key);
    if (c->rc < 0 || kl <= sl || strcmp(key + kl - sl, suffix) != 0 || cats->kind != AD_K_ARRAY ||
        cats->u.arr.ndim > 1)
        return true;
    ad_cat_problem p;
    ad_array view = cats->u.arr; /* a single category may be a scalar: check it as 1-d */
    view.ndim = 1;
    view.shape[0] = view.n;
    if (ad_cat_check_categories(&view, &p) != 0) return true;
    for (int k = 0; k < 2 && !c->have_cols && c->rc == 0; k++)
        for (size_t i = 0; i < c->fr[k]->ncols && c->rc == 0; i++) {
            size_t at;
            bool added;
            if (adx_strmap_add(&c->cols[k], c->fr[k]->names[i], &at, &added) < 0)
                c->rc = fail(r, ADX_E_NOMEM, "out of memory");
        }
    c->have_cols = true;
    char name[ADX_ERR_PTR_MAX];
    snprintf(name, sizeof name, "%.*s", (int)(kl - sl), key);
    bool folded = false;
    for (int k = 0; k < 2 && c->rc == 0; k++) {
        ad_frame *f = c->fr[k];
        size_t i = adx_strmap_get(&c->cols[k], name);
        if (i == SIZE_MAX) continue;
        ad_elem *col = f->cols[i];
        if (col->kind != AD_K_ARRAY || !ad_dtype_is_int(col->u.arr.dtype)) continue;
        bool fits = true;
        uint64_t ncat = cats->u.arr.n;
        for (uint64_t j = 0; j < col->u.arr.n && fits; j++) {
            int64_t v = get_idx(&col->u.arr, j);
            fits = v >= -1 && (v < 0 || (uint64_t)v < ncat);
        }
        if (!fits) continue;
        ad_elem *ce = ad_elem_new(AD_K_CATEGORICAL);
        if (!ce || ad_array_clone(&ce->u.cat.categories, &cats->u.arr) < 0) {
            ad_elem_free(ce);
            c->rc = fail(r, ADX_E_NOMEM, "out of memory");
            break;
        }
        ce->u.cat.categories.ndim = 1; /* a single category may be a scalar */
        ce->u.cat.categories.shape[0] = ncat;
        ce->u.cat.codes = col->u.arr;
        memset(&col->u.arr, 0, sizeof col->u.arr);
        ad_elem_free(col);
        f->cols[i] = ce;
        if (signed_codes(r, &ce->u.cat.codes) < 0) {
            c->rc = -1;
            break;
        }
        folded = true;
        char ptr[ADX_ERR_PTR_MAX];
        snprintf(ptr, sizeof ptr, "/%s", k ? "var" : "obs");
        adx_ptr_append_key(ptr, sizeof ptr, name);
        if (r->rep)
            rep_add(r->rep, ptr, "legacy_categories_folded", 1,
                    "codes joined with their categories from uns (pre-0.7 layout)");
    }
    return !folded;
}

/* anndata < 0.7 kept a categorical column's categories in uns as
 * "<col>_categories" next to an integer code column. anndata.read_h5ad still
 * folds them back (compat._clean_uns) for obs and var, when every code is
 * below the number of categories; do the same so both readers agree. The
 * columns are found through a map of their names and the folded entries
 * leave uns in one pass. */
static int fold_uns_categories(rd *r, ad_anndata *a)
{
    fold c = {.r = r, .fr = {&a->obs, &a->var}};
    ad_dict_retain(&a->uns, fold_one, &c);
    adx_strmap_free(&c.cols[0]);
    adx_strmap_free(&c.cols[1]);
    return c.rc;
}

/* anndata < 0.7 (scanpy's neighbors) kept the graphs in uns["neighbors"];
 * anndata.read_h5ad moves a 2-d "distances" / "connectivities" there to obsp
 * (compat._move_adj_mtx), replacing an obsp entry of the same name. */
static int move_neighbor_graphs(rd *r, ad_anndata *a)
{
    static const char *const keys[2] = {"distances", "connectivities"};
    ad_elem *nb = ad_dict_get(&a->uns, "neighbors");
    if (!nb || nb->kind != AD_K_DICT) return 0;
    for (int k = 0; k < 2; k++) {
        ad_dict *d = &nb->u.dict;
        for (size_t i = 0; i < d->n; i++) {
            ad_elem *g = d->vals[i];
            if (strcmp(d->keys[i], keys[k]) != 0 ||
                !(g->kind == AD_K_SPARSE || (g->kind == AD_K_ARRAY && g->u.arr.ndim == 2)))
                continue;
            adx_ptr_init(&r->p, NULL);
            adx_ptr_key(&r->p, "obsp");
            adx_ptr_key(&r->p, keys[k]);
            if (check_kind(r, g, false) < 0) return -1;
            d->vals[i] = NULL;
            ad_dict_remove_at(d, i);
            if (ad_dict_put(&a->obsp, keys[k], g) < 0) return fail(r, ADX_E_NOMEM, "out of memory");
            char ptr[ADX_ERR_PTR_MAX];
            snprintf(ptr, sizeof ptr, "/uns/neighbors/%s", keys[k]);
            if (r->rep && rep_add(r->rep, ptr, REP_GRAPH_MOVED, 1,
                                  "moved to obsp, as anndata.read_h5ad does (pre-0.7 layout)") < 0)
                return fail(r, ADX_E_NOMEM, "out of memory");
            break;
        }
    }
    adx_ptr_init(&r->p, NULL);
    return 0;
}

static int report_unknown(rd *r, hid_t root)
{
    /* Besides the namespaces: X, raw and the pre-0.7 raw members. */
    static const char *known[] = {"X", "raw", "raw.X", "raw.var", "raw.varm"};
    names ns;
    if (list_members(r, root, &ns) < 0) return -1;
    for (size_t i = 0; i < ns.n; i++) {
        bool k = ad_ns_find(ns.v[i], strlen(ns.v[i])) >= 0;
        for (size_t j = 0; j < sizeof known / sizeof *known; j++)
            k |= strcmp(ns.v[i], known[j]) == 0;
        if (k) continue;
        char ptr[ADX_ERR_PTR_MAX] = "";
        adx_ptr_append_key(ptr, sizeof ptr, ns.v[i]);
        if (r->rep) rep_add(r->rep, ptr, REP_SKIPPED, 1, "not an AnnData element; not read");
    }
    names_free(&ns);
    return 0;
}

static ad_anndata *read_root(rd *r)
{
    ad_anndata *a = ad_anndata_new();
    if (!a) {
        fail(r, ADX_E_NOMEM, "out of memory");
        return NULL;
    }
    hid_t root = H5Gopen2(r->file, "/", H5P_DEFAULT);
    r->root = root;
    if (root < 0) {
        fail(r, ADX_E_SCHEMA, "cannot open the root group");
        ad_anndata_free(a);
        return NULL;
    }
    char *enc = NULL;
    bool have_obs, have_var;
    int rc = -1;
    if (attr_string(r, root, "encoding-type", &enc) < 0) goto out;
    if (enc && strcmp(enc, "anndata") != 0) {
        fail(r, ADX_E_SCHEMA, "root encoding-type is \"%s\", not anndata", enc);
        goto out;
    }
    if (read_x(r, root, "X", &a->X) < 0) goto out;
    adx_ctl_progress(r->ctl, 0.5);
    if (read_frame_at(r, root, "obs", &a->obs, &have_obs) < 0) goto out;
    if (read_frame_at(r, root, "var", &a->var, &have_var) < 0) goto out;
    uint64_t xr = 0, xc = 0;
    if (a->X) x_shape(a->X, &xr, &xc);
    a->n_obs = have_obs ? a->obs.n_rows : xr;
    a->n_vars = have_var ? a->var.n_rows : xc;
    if ((!have_obs && default_index(r, &a->obs, a->n_obs, "obs") < 0) ||
        (!have_var && default_index(r, &a->var, a->n_vars, "var") < 0))
        goto out;
    /* The aligned mappings (uns is read below, as a plain dict). */
    for (int ns = 0; ns < AD_NS__COUNT; ns++) {
        const ad_ns_info *in = &ad_ns_table[ns];
        if (in->frame || in->rows == AD_AXIS_NONE) continue;
        if (read_mapping(r, root, in->name, ad_ns_dict(a, (ad_ns)ns), in->cols == AD_AXIS_NONE) < 0)
            goto out;
    }
    {
        size_t m = adx_ptr_key(&r->p, "uns");
        int h = has_member(r, root, "uns");
        if (h < 0) goto out;
        if (h) {
            if (check_link(r, root, "uns") < 0) goto out;
            hid_t g = H5Gopen2(root, "uns", H5P_DEFAULT);
            if (g < 0) {
                fail(r, ADX_E_SCHEMA, "uns must be a group");
                goto out;
            }
            r->keys_ns = "uns";
            int u = read_dict_into(r, g, &a->uns, 1);
            H5Gclose(g);
            if (u < 0) goto out;
        }
        adx_ptr_pop(&r->p, m);
    }
    if (read_raw(r, root, a) < 0 || fold_uns_categories(r, a) < 0 || move_neighbor_graphs(r, a) < 0)
        goto out;
    if (ad_anndata_frames_take_axis_names(a, r->ctl ? r->ctl->budget : NULL, r->err) < 0 ||
        ad_anndata_check(a, NULL, r->err) < 0)
        goto out;
    if (report_unknown(r, root) < 0) goto out;
    rc = 0;
out:
    free(enc);
    H5Gclose(root);
    if (rc < 0) {
        ad_anndata_free(a);
        return NULL;
    }
    return a;
}

ad_anndata *h5r_read(const char *path, const adx_limits *lim, const adx_ctl *ctl, adx_report *rep,
                     adx_err *err)
{
    return h5r_read_opts(path, NULL, lim, ctl, rep, err);
}

ad_anndata *h5r_read_opts(const char *path, const h5r_opts *o, const adx_limits *lim,
                          const adx_ctl *ctl, adx_report *rep, adx_err *err)
{
    adx_limits deflim;
    if (!lim) {
        adx_limits_default(&deflim);
        lim = &deflim;
    }
    rd r = {.lim = lim, .ctl = ctl, .rep = rep, .err = err, .file = -1, .root = -1, .o = o};
    adx_ptr_init(&r.p, NULL);
    /* HDF5 error printing is per thread in the thread-safe build: silence it
     * for this call and put the caller's handler back afterwards. */
    H5E_auto2_t old_fn = NULL;
    void *old_data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    (void)h5w_lzf_register(); /* while it fails, lzf files fail at read time (missing filter) */
    ad_anndata *a = NULL;
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        adx_err_set(err, e == ENOENT ? ADX_E_NOT_FOUND : ADX_E_IO, "", "cannot open the file");
        adx_err_cause(err, "%s: %s", path, strerror(e));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        adx_err_set(err, ADX_E_SCHEMA, "", "not a regular file");
        adx_err_cause(err, "%s", path);
        goto out;
    }
    if (H5Fis_hdf5(path) <= 0) {
        adx_err_set(err, ADX_E_SCHEMA, "", "not an HDF5 file");
        goto out;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* Close every object with the file even if a path forgot one. */
    if (fapl >= 0) H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    if (fapl >= 0) H5Pset_cache(fapl, 0, CHUNK_CACHE_SLOTS, CHUNK_CACHE_BYTES, 0.75);
    if (charge(&r, CHUNK_CACHE_BYTES) < 0) {
        if (fapl >= 0) H5Pclose(fapl);
        goto out;
    }
    r.file = H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT);
    if (fapl >= 0) H5Pclose(fapl);
    if (r.file < 0) {
        adx_err_set(err, ADX_E_SCHEMA, "", "cannot open the HDF5 file (truncated or corrupt)");
        goto out;
    }
    if (o && o->has_include &&
        !(r.inc = flt_set_new(o->include, o->n_include, lim->max_include_tests))) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        H5Fclose(r.file);
        goto out;
    }
    a = read_root(&r);
    flt_set_free(r.inc);
    H5Fclose(r.file);
    if (a) adx_ctl_progress(ctl, 1.0);
out:
    /* Leave no entries on this thread's error stack: HDF5 does not free them
     * when a thread exits, so worker threads would leak them. */
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return a;
}
