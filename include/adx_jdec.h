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
 * Report paths are pointers into the stored object ("/obs/index",
 * "/uns/t/index", "/obs/kmeans_x"), not into the request.
 *
 * Decisions where payload.md is silent (what numpy/pandas/anndata do):
 * - Matrices and uns lists follow numpy: booleans mixed with numbers count
 *   as 0/1 (int64, or float64 with any real/null). Plain columns follow
 *   pandas: booleans mixed with numbers are an object column (sanitize).
 * - Numbers mixed with "NaN"/"inf" spellings (and nulls) are float64 in
 *   matrices, uns lists and plain columns; strings alone stay strings.
 * - Typed integer arrays accept integral reals (2.0) and booleans; a
 *   fractional value, an out-of-range value or null is an error. The bool
 *   dtype accepts true/false and 0/1. base64 bool bytes must be 0 or 1.
 * - Typed dense: "shape" is optional (from nested data; 1-d for base64),
 *   "dtype" is optional with "data" (inferred like nested arrays), required
 *   with "base64". shape [] with a scalar "data" is a 0-d array.
 * - Typed columns accept "data" as an alias of "values"; nullable-* accept an
 *   optional "mask" (true = missing); categorical codes accept null (= -1);
 *   "ordered" defaults to false.
 * - Categorical from values: all-null gives empty string categories; ints
 *   and reals together give float64 categories; other mixes become Python
 *   str() values sorted by code point and are reported (count = non-null
 *   cells). Codes use pandas' width rule (int8 while n_categories < 127 ...).
 * - Sparse: plain index arrays become int32 when max(shape, nnz) fits, as
 *   scipy does; typed blocks keep their dtype.
 * - Records: columns are the union of keys in first-seen order, a missing key
 *   is null; "_index" is the index only when every record has it, otherwise
 *   it is an ordinary column.
 * - Index values: strings, integers ("7"), reals (Python repr, "2.5");
 *   booleans, nested values and null are errors.
 * - n_obs / n_vars come from X, else obs / var, else "shape", else the first
 *   of layers, obsm, varm, obsp, varp that has them, else 0. A "shape" that
 *   disagrees is reported at /shape/<i>. raw.var without raw.X fixes raw's
 *   n_vars; with neither, raw has the object's n_vars.
 * - obsm / varm values that are DataFrames (columns/index/encoding-type
 *   "dataframe", or an array of records) must have n_obs / n_vars rows.
 * - uns: lists of booleans with nulls, strings with nulls, mixed scalars and
 *   all-null lists are N-d AD_K_OBJECT (nullable-boolean is for columns).
 *   The uns mapping is depth 1; a dict nested deeper than max_depth fails.
 * - Parsing: duplicate keys are rejected; jansson refuses integers outside
 *   int64 and reals outside double, so uint64 values above 2^63-1 must be
 *   sent as base64.
 */
#ifndef ADX_JDEC_H
#define ADX_JDEC_H

#include <stdbool.h>

#include <jansson.h>

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

/* A binary part a typed block names (payload.md "Binary parts"): {"part":
 * "NAME"} in place of "data"/"base64", with the block's "dtype" and "shape"
 * when given; `recarray` for {"encoding-type": "rec-array", "part": ...}. */
typedef struct jdec_part_req {
    const char *name;
    bool has_dtype;
    ad_dtype dtype;
    int ndim; /* -1 = no shape given */
    uint64_t shape[AD_MAX_NDIM];
    bool recarray;
} jdec_part_req;

/* Resolves a part: *out = a new AD_K_ARRAY (or AD_K_RECARRAY when
 * req->recarray) element that agrees with the dtype/shape given. 0, or -1
 * with err set (at `pointer`, the block's pointer). The decoder checks the
 * returned element's kind. */
typedef int (*jdec_part_fn)(void *ud, const jdec_part_req *req, ad_elem **out, const char *pointer,
                            adx_err *err);

typedef struct jdec_opts {
    const adx_limits *limits; /* NULL → adx_limits_default() */
    jdec_part_fn part;        /* NULL: a "part" is a 400 "binary parts need a multipart request" */
    void *part_ud;
    adx_budget *budget;           /* per-request memory; NULL = not counted */
    const adx_ctl *ctl;           /* progress (bytes read) and cancel while reading; may be NULL */
    const char *const *cat_globs; /* categorical_columns (obs/var only); NULL → {"kmeans_*"} */
    size_t n_cat_globs;           /* ignored when cat_globs is NULL; 0 = no column matches */
    const char *base_ptr;         /* pointer prefix for errors, e.g. "/adata"; NULL = "" */
} jdec_opts;

/* Errors: ADX_E_SCHEMA (wrong type, unknown key or dtype, bad value),
 * ADX_E_SHAPE (dimensions disagree, ragged rows), ADX_E_LIMIT (adx_limits),
 * ADX_E_NOMEM. `rep` may be NULL. `adata` is only read. */
ad_anndata *jdec_anndata(const json_t *adata, const jdec_opts *o, adx_report *rep, adx_err *err);

/* Parse a whole document from memory / a file. The size is checked against
 * lim->max_body_bytes (ADX_E_LIMIT) before parsing; nesting is capped by
 * jansson (2048 levels); duplicate object keys are refused. Malformed JSON
 * becomes ADX_E_INVALID_JSON "malformed JSON at line L, column C: <jansson's
 * text>" with the pointer "". A file that cannot be read is ADX_E_IO.
 * `lim` NULL → defaults. Returns a new reference. */
json_t *jdec_load_buffer(const char *buf, size_t len, const adx_limits *lim, adx_err *err);
json_t *jdec_load_file(const char *path, const adx_limits *lim, adx_err *err);

#endif
