/* adx_jdec (prefix jdec_) — JSON AnnData (shared/spec/payload.md) → model.
 *
 * Input is a jansson tree (the "adata" member of a request). Output is a new
 * ad_anndata that does not reference the tree, so the caller can json_decref
 * the document as soon as decoding returns.
 *
 * Every form of payload.md is accepted: nested arrays with numpy-like
 * inference, typed dense arrays with data or base64, csr/csc with full
 * structural checks, DataFrames in columnar / split / records form, typed
 * columns, categorical_columns globs, uns values, NaN/Infinity spellings,
 * index_name, default indexes, and shape agreement between all elements.
 *
 * Values that need sanitizing are kept as AD_K_OBJECT / AD_K_NULL (see
 * adx_model.h); jdec itself never loses information. Report entries that
 * only the decoder can see (duplicate index values) go into `rep`.
 *
 * Errors: returns NULL and fills `err` with the JSON pointer of the offending
 * input (rooted at `base_ptr`, normally "/adata") and what was expected.
 * Sizes are checked against `lim` before anything is allocated from them.
 */
#ifndef ADX_JDEC_H
#define ADX_JDEC_H

#include <stdbool.h>

#include <jansson.h>

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

typedef struct jdec_opts {
    const adx_limits *limits;     /* required */
    const char *const *cat_globs; /* categorical_columns; NULL → {"kmeans_*"} */
    size_t n_cat_globs;           /* ignored when cat_globs is NULL */
    const char *base_ptr;         /* pointer prefix for errors, e.g. "/adata" */
} jdec_opts;

ad_anndata *jdec_anndata(const json_t *adata, const jdec_opts *o, adx_report *rep, adx_err *err);

/* Parse a whole document from memory / a file, with limits on size and
 * depth; malformed JSON becomes ADX_E_INVALID_JSON with line and column. */
json_t *jdec_load_buffer(const char *buf, size_t len, const adx_limits *lim, adx_err *err);
json_t *jdec_load_file(const char *path, const adx_limits *lim, adx_err *err);

#endif
