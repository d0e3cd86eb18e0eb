/* adx_jdec (prefix jdec_) — JSON AnnData (shared/spec/payload.md) → model.
 *
 * Two steps. jdec_read parses a request document from an adx_src in chunks
 * (strict RFC 8259: UTF-8 validated, surrogate pairs, nesting bounded) into
 * a compact tree private to this module: numbers are stored as 8-byte words
 * (an array of n numbers costs what a float64 array of n costs, never a node
 * per value), "base64" strings are decoded to bytes while they stream, and
 * every allocation is charged to the request's adx_budget. jansson is only
 * used for the small envelope (jdec_doc_envelope, for req_parse).
 * jdec_doc_anndata then fills the model from that tree, releasing each
 * converted element's part of the tree as it goes. Bulk data is never
 * copied: decoded base64 bytes are adopted as array buffers, and a large
 * rectangular array of JSON numbers (a matrix of any depth, a column, a
 * sparse part, typed "data", nullable-integer values, categorical codes) is
 * one block from the moment it is parsed, rewritten in place into
 * float64/int64/bool/... and adopted. While a top-level array is parsed its
 * values are kept in the narrowest form that gives each back exactly (1, 2
 * or 4 bytes for integers by their range, 4 for reals that are float32
 * values, 1 for booleans; 8-byte words once a null, another real or a mix
 * of kinds appears), so an int8 or bool matrix costs a byte per value and a
 * float32 one 4 bytes, whatever the order of "dtype" and "data".
 * So a request's peak memory is its decoded arrays (a JSON array counted at
 * the larger of its dtype and that form until converted) plus a constant:
 * the 256 KiB read chunk, the value stack's unused room (under 8 MiB), at
 * most 1 MiB of 8-byte words of the row (or 2-d slab) being read (a longer
 * one goes into the array's run before it ends; in arrays of 4 or more
 * dimensions one 2-d slab), and the small nodes of everything else. Copies that
 * remain, all charged to the budget: split-orient frames (each column is
 * copied out of the rows, which stay until the frame is done), columns
 * that become strings or objects, and the JSON text of nested uns cells.
 * The model does not reference the document; free it with jdec_doc_free.
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
 * - Parsing: duplicate keys are rejected (a hash set per large object).
 *   Integers are int64, or uint64 above 2^63-1 (accepted by uint64 and
 *   float dtypes only); beyond uint64 an integer is a 400 at its pointer.
 *   Reals are correctly rounded (Python's float()); 1e400 is inf and
 *   1e-400 is 0.0 as in Python. "\u0000" and lone surrogates are refused.
 * - base64: the standard alphabet (A-Z a-z 0-9 + /), no whitespace, no
 *   line breaks; padding "=" optional, but when present it must complete
 *   the last group of four; the unused bits of the last character must be
 *   zero (canonical encoding).
 */
#ifndef ADX_JDEC_H
#define ADX_JDEC_H

#include <stdbool.h>

#include <jansson.h>

#include "adx_common.h"
#include "adx_src.h"
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
    double progress_to;           /* progress reported when the input is read; 0 = 1.0 */
    const char *const *cat_globs; /* categorical_columns (obs/var only); NULL → {"kmeans_*"} */
    size_t n_cat_globs;           /* ignored when cat_globs is NULL; 0 = no column matches */
    const char *base_ptr;         /* pointer prefix for errors, e.g. "/adata"; NULL = "" */
    /* Names that become HDF5 links (mapping and uns keys, column and index
     * names) must be ones h5ad holds: not empty, not ".", no "/" — a 400
     * at the key. Set for h5ad output; npz and csv escape such names. */
    bool h5ad_names;
} jdec_opts;

typedef struct jdec_doc jdec_doc;

/* Parse one document from `src` (read to its end; not closed). Uses
 * o->limits, o->budget, o->ctl (progress = bytes consumed / input size x
 * o->progress_to, cancel polled per chunk) and o->base_ptr as the prefix of
 * error pointers. Errors: ADX_E_INVALID_JSON "malformed JSON at line L,
 * column C: ..." with the pointer of the element being read; ADX_E_LIMIT
 * (max_body_bytes through the source, max_keys, max_key_bytes and
 * max_string_bytes — a string is refused while it is read, once it passes
 * the limit, at its own pointer; "base64" text is bulk data and exempt —, nesting
 * deeper than max_depth + max_ndim + 16, max_request_memory);
 * ADX_E_SCHEMA for an integer beyond uint64; ADX_E_CANCELED; ADX_E_IO;
 * ADX_E_NOMEM. */
jdec_doc *jdec_read(adx_src *src, const jdec_opts *o, adx_err *err);
/* The same from memory (not copied), or from a file (gzip when it starts
 * with the gzip magic bytes; the limit then counts decompressed bytes). */
jdec_doc *jdec_read_buffer(const char *buf, size_t len, const jdec_opts *o, adx_err *err);
jdec_doc *jdec_read_file(const char *path, const jdec_opts *o, adx_err *err);
void jdec_doc_free(jdec_doc *doc);
/* The root is an object with this member. */
bool jdec_doc_has(const jdec_doc *doc, const char *member);
/* The root's members as a jansson object, `skip` only as its type (an
 * empty object or array, a scalar as itself) (a root that is not
 * an object comes back as an empty array or null, so req_parse names the
 * problem). A member of more than 65536 values is ADX_E_LIMIT at its
 * pointer. New reference. */
json_t *jdec_doc_envelope(const jdec_doc *doc, const char *skip, adx_err *err);

/* Decode root[member] (member NULL: the root) as an AnnData object. Errors:
 * ADX_E_SCHEMA (wrong type, unknown key or dtype, bad value), ADX_E_SHAPE
 * (dimensions disagree, ragged rows), ADX_E_LIMIT (adx_limits,
 * max_request_memory), ADX_E_NOMEM. `rep` may be NULL. The parts of the
 * document that were converted are released (a document is decoded once). */
ad_anndata *jdec_doc_anndata(jdec_doc *doc, const char *member, const jdec_opts *o, adx_report *rep,
                             adx_err *err);

#endif
