/* adx_common implementation: defaults and names. */
#include "adx_common.h"

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
