/* adx_request (prefix req_) — the export options of a request
 * (payload.md "The export request"): which input, include paths, format,
 * filename, compression, categorical_columns, strings_to_categoricals.
 *
 * req_parse() validates every option and their combinations (format vs
 * filename extension, compression_opts with lzf/null, lzf with npz, exactly
 * one of adata/dataset, unknown top-level members) and the include paths
 * (flt_validate), reporting ADX_E_BAD_OPTION / ADX_E_SCHEMA / ADX_E_BAD_INCLUDE
 * with pointers like "/format". It does not decode "adata".
 *
 * The struct owns its strings; req_free() releases them.
 */
#ifndef ADX_REQUEST_H
#define ADX_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "adx_common.h"
#include "adx_err.h"

typedef struct adx_request {
    char *dataset; /* stored dataset name, or NULL when "adata" is inline */
    bool has_adata;
    adx_format format;
    char *filename; /* NULL → "<job id><ext>" chosen by the caller */
    adx_compression compression;
    int level;        /* gzip level; -1 when not applicable */
    bool has_include; /* false → keep everything */
    char **include;
    size_t n_include;
    char **cat_globs; /* categorical_columns (default {"kmeans_*"}) */
    size_t n_cat;
    bool strings_to_categoricals;
} adx_request;

int req_parse(const json_t *root, adx_request *r, adx_err *err);
void req_free(adx_request *r);
/* The download name: r->filename, or job_id + the format's extension.
 * Returns a malloc'd string (NULL on ENOMEM). */
char *req_filename(const adx_request *r, const char *job_id);

#endif
