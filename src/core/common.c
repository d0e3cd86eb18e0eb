/* adx_common implementation: defaults and names. */
#include "adx_common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

void adx_limits_default(adx_limits *l)
{
    l->max_body_bytes = 4ull << 30;   /* 4 GiB of JSON */
    l->max_elements = 1ull << 30;     /* 1 Gi elements in one array */
    l->max_dim = 1ull << 31;          /* n_obs, n_vars, any dimension */
    l->max_total_bytes = 12ull << 30; /* half the machine for one model */
    l->max_ndim = 32;
    l->max_depth = 64;
    l->max_string_bytes = 64ull << 20; /* one string value */
    l->max_keys = 1u << 20;
    l->csv_max_cells = 100000000ull;     /* 1e8 cells (~1-2 GB of text) */
    l->max_request_memory = 16ull << 30; /* above max_total_bytes: decoding needs some slack */
    l->max_key_bytes = 64u << 10;
    l->max_patterns = 4096;
    l->max_pattern_bytes = 4096;
    l->max_include_tests = 1u << 29; /* glob steps: 0.3-1 s of CPU (adx_glob.h) */
    l->max_parts = 1024;
    l->max_part_header_bytes = 16u << 10;
}

const char *adx_format_name(adx_format f)
{
    static const char *n[] = {"h5ad", "npz", "csv", "txt"};
    return f <= ADX_FMT_TXT ? n[f] : "h5ad";
}

const char *adx_format_ext(adx_format f)
{
    static const char *n[] = {".h5ad", ".npz", ".zip", ".zip"};
    return f <= ADX_FMT_TXT ? n[f] : ".h5ad";
}

const char *adx_format_content_type(adx_format f)
{
    return f == ADX_FMT_H5AD ? "application/x-hdf5" : "application/zip";
}

const char *adx_compression_name(adx_compression c)
{
    static const char *n[] = {"none", "gzip", "lzf"};
    return c <= ADX_COMP_LZF ? n[c] : "none";
}

enum { MEM_BIG = 1u << 20, MEM_PAGE = 4096 };

void adx_mem_fault_in(void *p, size_t n)
{
    if (!p || n < MEM_BIG) return;
    uintptr_t lo = (uintptr_t)p, hi = lo + n;
#ifdef MADV_HUGEPAGE
    /* Every page the block touches: a block of its own mapping (glibc maps
     * the large ones page-aligned) gets the advice whole, so its mapping is
     * not split and realloc can still grow it with mremap (which refuses a
     * range over two mappings). In the heap it only spills onto
     * neighbours' pages, which is harmless. */
    uintptr_t pa = lo & ~(uintptr_t)(MEM_PAGE - 1);
    uintptr_t pb = (hi + MEM_PAGE - 1) & ~(uintptr_t)(MEM_PAGE - 1);
    (void)madvise((void *)pa, pb - pa, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
    /* Whole pages only: the ends may share a page with another block. */
    uintptr_t a = (lo + MEM_PAGE - 1) & ~(uintptr_t)(MEM_PAGE - 1);
    uintptr_t b = hi & ~(uintptr_t)(MEM_PAGE - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_POPULATE_WRITE);
#endif
}

void *adx_mem_alloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    adx_mem_fault_in(p, n);
    return p;
}

void *adx_mem_calloc(size_t n)
{
    /* a large block is a fresh mapping (the processes' mmap thresholds are
     * at most 4 MiB, src/main.c): calloc leaves its zeroing to the kernel,
     * done here for all its pages at once */
    void *p = calloc(1, n ? n : 1);
    adx_mem_fault_in(p, n);
    return p;
}

void *adx_mem_grow(void *p, size_t used, size_t n)
{
    if (!p) return adx_mem_alloc(n);
    if (n >= MEM_BIG && n - used >= used / 2) {
        /* Growth by half or more: a new block faulted in whole, then the
         * copy (realloc would copy into fresh pages a fault at a time when
         * the block sits in the heap). The copies of a buffer that grows
         * this way add up to less than twice its final size. */
        void *q = adx_mem_alloc(n);
        if (!q) return NULL;
        memcpy(q, p, used);
        free(p);
        return q;
    }
    /* Smaller steps (the decoder's value stack past 8 MiB): realloc, which
     * grows a mapped block with mremap, without a copy; a copy in each
     * step would make the growth quadratic. The new tail is faulted in. */
    void *q = realloc(p, n ? n : 1);
    if (q && n > used) adx_mem_fault_in((char *)q + used, n - used);
    return q;
}

double adx_mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
