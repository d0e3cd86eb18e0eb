/* adx_common — settings every stage shares: input limits, output format
 * enums, and the job control block (progress + cooperative cancel).
 *
 * Limits exist so that no size read from a request is allocated before it is
 * checked; each stage that takes a size from input compares it here first
 * and reports ADX_E_LIMIT (413) naming the limit and its value.
 */
#ifndef ADX_COMMON_H
#define ADX_COMMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct adx_limits {
    uint64_t max_body_bytes;        /* whole request body */
    uint64_t max_elements;          /* elements of any one array (dense, sparse part, column) */
    uint64_t max_dim;               /* any one dimension (n_obs, n_vars, shape[k]) */
    uint64_t max_total_bytes;       /* decoded model size, all buffers together */
    uint32_t max_ndim;              /* rank of an N-d array (numpy allows 32) */
    uint32_t max_depth;             /* nesting depth of uns dicts */
    uint64_t max_string_bytes;      /* one string value */
    uint64_t max_keys;              /* entries in one mapping / columns in one frame */
    uint64_t csv_max_cells;         /* densify sparse matrices for csv bundles up to this */
    uint64_t max_request_memory;    /* memory one request's decoding may hold at once */
    uint64_t max_key_bytes;         /* one mapping key / column name */
    uint64_t max_patterns;          /* entries of include / categorical_columns */
    uint64_t max_pattern_bytes;     /* one of those patterns */
    uint64_t max_include_tests;     /* glob steps (adx_glob.h) of patterns on keys, in all */
    uint64_t max_parts;             /* parts of one multipart body */
    uint64_t max_part_header_bytes; /* header block of one part */
} adx_limits;

/* Defaults sized for a 24 GiB machine with a few concurrent jobs. */
void adx_limits_default(adx_limits *l);
/* Seconds on CLOCK_MONOTONIC, for measuring stages. */
double adx_mono_s(void);

/* Large buffers about to be written whole (arrays being decoded, their
 * growing parse buffers). Where a page fault is dear (~20 us on a
 * paravirtualized VM) writing a 32 MB array page by page cost ~8,000 of
 * them; these fault a block in with one madvise instead (MADV_POPULATE_WRITE),
 * advised to transparent huge pages (every page of the block, so a block of
 * its own mapping is not split and realloc can still mremap it). Below
 * 1 MiB they are plain malloc/calloc/realloc and fault_in does nothing.
 * Blocks are ordinary malloc blocks: free() them. NULL when out of memory
 * (grow leaves `p` as it was). */
void adx_mem_fault_in(void *p, size_t n);
void *adx_mem_alloc(size_t n);
void *adx_mem_calloc(size_t n);
/* realloc to `n` bytes of which the first `used` are kept (used <= the
 * block's size); the rest is faulted in. */
void *adx_mem_grow(void *p, size_t used, size_t n);

/* A per-request memory budget: decoders charge what they allocate before
 * allocating it and release it when they free it, so one request can never
 * hold more than `limit` bytes whatever the shape of its input. Charging is
 * thread-safe (atomics), so the stages of one request may share a budget.
 * Every function accepts NULL (= unlimited, nothing counted). */
typedef struct adx_budget {
    uint64_t limit; /* 0 = unlimited (only counted) */
    _Atomic uint64_t used, peak;
} adx_budget;

void adx_budget_init(adx_budget *b, uint64_t limit);
/* Count `bytes` more. Over the limit: nothing is counted and -1 is returned
 * with ADX_E_LIMIT (413) at `pointer` naming max_request_memory. */
struct adx_err;
int adx_budget_charge(adx_budget *b, uint64_t bytes, const char *pointer, struct adx_err *err);
void adx_budget_release(adx_budget *b, uint64_t bytes);
uint64_t adx_budget_used(const adx_budget *b);
uint64_t adx_budget_peak(const adx_budget *b);

/* Strings the caller keeps alive -> their order of first insertion (open
 * addressing, FNV-1a): duplicate names among n keys in O(n), where a scan
 * per key would be O(n^2) (frame columns, a column-order attribute, the
 * records' column union). Zero-initialise; free with adx_strmap_free. */
typedef struct adx_strmap {
    const char **keys;
    size_t *vals;
    size_t n, cap;
} adx_strmap;
/* *val = k's number (a new key gets n); *added tells whether k was new.
 * -1 only when out of memory (the map is unchanged). */
int adx_strmap_add(adx_strmap *m, const char *k, size_t *val, bool *added);
size_t adx_strmap_get(const adx_strmap *m, const char *k); /* SIZE_MAX when absent */
void adx_strmap_free(adx_strmap *m);

typedef enum adx_format { ADX_FMT_H5AD = 0, ADX_FMT_NPZ, ADX_FMT_CSV, ADX_FMT_TXT } adx_format;
typedef enum adx_compression { ADX_COMP_NONE = 0, ADX_COMP_GZIP, ADX_COMP_LZF } adx_compression;

const char *adx_format_name(adx_format f);           /* "h5ad", "npz", "csv", "txt" */
const char *adx_format_ext(adx_format f);            /* ".h5ad", ".npz", ".zip", ".zip" */
const char *adx_format_content_type(adx_format f);   /* application/x-hdf5 or application/zip */
const char *adx_compression_name(adx_compression c); /* "gzip", "lzf", "none" */

/* Handed to long-running stages (writers, readers). All fields may be
 * zero/NULL. `cancel` is polled between chunks: when it reads non-zero the
 * stage stops and fails with ADX_E_CANCELED. `progress` is called with a
 * fraction in [0,1] from the worker thread; it must be cheap and thread-safe
 * (the daemon stores it in an atomic and reads it from the loop).
 * `budget` is the request's memory budget: a stage charges the buffers it
 * builds whose size follows the data (not its fixed-size scratch) before
 * allocating them, so a request's writer is bounded by max_request_memory
 * as its decoder is. */
typedef struct adx_ctl {
    const atomic_int *cancel;
    void (*progress)(void *ud, double fraction);
    void *ud;
    adx_budget *budget;
} adx_ctl;

static inline bool adx_ctl_canceled(const adx_ctl *c)
{
    return c && c->cancel && atomic_load_explicit(c->cancel, memory_order_relaxed) != 0;
}
static inline void adx_ctl_progress(const adx_ctl *c, double f)
{
    if (c && c->progress) c->progress(c->ud, f);
}
static inline int adx_ctl_charge(const adx_ctl *c, uint64_t bytes, const char *pointer,
                                 struct adx_err *err)
{
    return adx_budget_charge(c ? c->budget : NULL, bytes, pointer, err);
}
static inline void adx_ctl_release(const adx_ctl *c, uint64_t bytes)
{
    adx_budget_release(c ? c->budget : NULL, bytes);
}

#endif
