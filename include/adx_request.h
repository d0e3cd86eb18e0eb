/* adx_request (prefix req_) — the export options of a request
 * (payload.md "The export request"): which input, include paths, format,
 * filename, compression, categorical_columns, strings_to_categoricals.
 *
 * req_parse() validates every option and their combinations (format vs
 * filename extension, compression_opts with lzf/null, lzf with npz/csv/txt,
 * exactly one of adata/dataset, unknown top-level members) and the include
 * paths (flt_validate), reporting ADX_E_BAD_OPTION / ADX_E_SCHEMA /
 * ADX_E_BAD_INCLUDE with the pointer of the offending member ("/format",
 * "/include/2", ...). It does not decode "adata".
 *
 * "dataset" names follow ds_name_valid (adx_datasets.h), the one rule.
 *
 * Decisions where payload.md is silent:
 * - A member whose value is JSON null counts as absent (its default applies),
 *   except "compression", where null means "no compression". "adata": null
 *   and "dataset": null therefore count as not given.
 * - "compression" also accepts the string "none" (what the job JSON prints).
 * - The filename extension is the text after the last "." (not a leading
 *   one), compared case-insensitively. .h5ad/.h5 → h5ad, .npz → npz,
 *   .csv → csv, .txt → txt, .zip → csv (and is compatible with an explicit
 *   txt, whose bundle is a zip too). An unknown extension never contradicts
 *   an explicit format.
 * - Filenames are 1–255 bytes, no "/", "\", control characters (U+0000 to
 *   U+001F, U+007F), and not "." or "..".
 * - An empty include array is kept as given: every namespace is emptied
 *   except X and raw (the reference semantics of "nothing mentioned").
 * - An empty categorical_columns array turns the default off.
 *
 * The struct owns its strings; req_free() releases them and leaves a zeroed
 * struct. After a failed req_parse the struct is already released.
 */
#ifndef ADX_REQUEST_H
#define ADX_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "adx_common.h"
#include "adx_err.h"

#define ADX_FILENAME_MAX 255
#define ADX_DATASET_NAME_MAX 128

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
/* REQ_OPTIONS: the options of a file export (pipe_load_input), where the
 * file is the input: "adata" or "dataset" present (even null) is
 * ADX_E_BAD_OPTION on that member, and neither is required. */
typedef enum req_mode { REQ_REQUEST = 0, REQ_OPTIONS } req_mode;
int req_parse_mode(const json_t *root, req_mode mode, adx_request *r, adx_err *err);
void req_free(adx_request *r);
/* The download name: r->filename, or job_id + the format's extension
 * ("export" when job_id is NULL). Returns a malloc'd string (NULL on ENOMEM). */
char *req_filename(const adx_request *r, const char *job_id);

/* Validation helpers shared with the CLI and the daemon. */
/* 0 if `name` (length len, may hold NUL bytes) is a safe download name. */
int req_check_filename(const char *name, size_t len, const char *pointer, adx_err *err);
/* The format an extension implies: 0 and *out set, or -1 when unknown. */
int req_format_from_filename(const char *name, adx_format *out);

#endif
