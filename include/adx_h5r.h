/* adx_h5r (prefix h5r_) — h5ad file → model.
 *
 * Read (anndata 0.8+ on-disk format, every encoding-type it writes):
 *   array (any integer/float width, h5py's bool enum → AD_BOOL, float16 →
 *   float32, N-d, 0-d), string-array and string (variable- or fixed-length,
 *   UTF-8 or ASCII; fixed-length NULL-padding is cut at the first NUL,
 *   space-padding trimmed), numeric-scalar, csr_matrix, csc_matrix,
 *   dataframe (_index names the index dataset; when it is not "_index" it is
 *   the index name; column-order, also the empty float64 array anndata writes
 *   for no columns; a numeric index becomes decimal strings), categorical
 *   (codes of any signed width — unsigned codes are widened to signed —,
 *   numeric or string categories, ordered), nullable-integer,
 *   nullable-boolean (a uint8/int8 mask is accepted as bool), dict (nested,
 *   members in name order as h5py lists them), raw (X, var, varm), frames and
 *   sparse matrices inside uns, obsm and varm.
 * Read (pre-0.8 layouts):
 *   groups and datasets without encoding-type (a group with an _index
 *   attribute is a dataframe, other groups dicts, datasets arrays); frames
 *   without column-order (every member but the index and __categories, in
 *   name order); categorical columns stored as an integer code dataset whose
 *   `categories` attribute is an object reference to __categories/<col>
 *   (`ordered` read from the categories dataset, as 0.7 stored it); sparse
 *   groups marked with h5sparse_format / h5sparse_shape; anndata ≤ 0.6
 *   obs/var stored as one
 *   compound dataset (field "index" → the index, named "index" as pandas'
 *   set_index leaves it, numeric and string fields → columns); raw stored as
 *   root members raw.X / raw.var / raw.varm; categories kept in
 *   uns["<col>_categories"] are folded into the obs/var integer column <col>
 *   when every code fits (exactly what anndata.read_h5ad does for any file;
 *   the uns entry is removed and a "legacy_categories_folded" report entry
 *   added).
 * Read (after 0.8, anndata's current registry): rec-array (a 1-d compound
 *   dataset, a field per member: numbers, bools, variable- or fixed-length
 *   strings), null (AD_K_NULL: sanitize drops it from uns, reported
 *   dropped_null), bytes (a string scalar), nullable-string-array (an
 *   AD_K_OBJECT column, strings with nulls under the mask: sanitize stores
 *   "" and reports null_to_empty_string), dataframe 0.1.0 (the 0.7 layout
 *   above).
 * Read (pre-0.8 moves anndata.read_h5ad makes): untagged compound datasets
 *   are a DataFrame at obs/var/raw.var, a mapping of their fields at
 *   obsm/varm/raw.varm (array-typed fields → (n, k…) matrices), a record
 *   array anywhere else; a 1-element fixed-length string dataset without
 *   encoding is a string scalar; a 2-d uns["neighbors"]["distances"] /
 *   ["connectivities"] moves to obsp (reported "legacy_graph_moved").
 * Not read (error, naming the element): any other encoding-type
 *   (awkward-array, a nested anndata, …: "cannot be represented in an
 *   anndata 0.8 file"), other enums, opaque / reference / array datatypes
 *   outside compound fields, record fields holding arrays,
 *   soft and external links, datasets with external or virtual storage
 *   (they would make the reader open other files), data needing an HDF5
 *   filter this process lacks (the error names the filter; lzf comes from
 *   h5w_lzf_register).
 *
 * Known limit: HDF5 1.10.8 itself is not hardened against corrupted
 * metadata. Byte-flip fuzzing found crashes only inside libhdf5 (global-heap
 * reads of variable-length strings in H5Dread/H5Aread); such files can take
 * down the process, so untrusted uploads should pass h5r_check_isolated()
 * before the daemon reads them in-process.
 * Skipped with a report entry ("skipped_unknown_element"): root members
 *   that are not AnnData elements.
 *
 * Checks (input is untrusted): ranks, every dimension, element counts,
 * string lengths and the running model size against `lim` before each
 * allocation; sparse indptr starts at 0, never decreases, ends at nnz, has
 * major+1 entries, indices in [0, minor); codes in [-1, n_categories);
 * categories distinct and not NaN (pandas refuses both); _index and
 * column-order name plain members (no "/" paths out of the frame); bool
 * values 0/1; valid UTF-8; dict depth ≤ max_depth (hard-link cycles end
 * there); shapes as the JSON decoder demands: X is n_obs × n_vars (n_obs /
 * n_vars from the obs / var index, else from X), obsm/varm values have
 * n_obs/n_vars rows, layers X's shape, obsp/varp square, raw.var one row per
 * raw.X column, raw.varm rows = raw.var rows. Missing obs/var get the
 * default "0".."n-1" index.
 *
 * Errors: NULL with `err` set; the pointer is the element path
 * ("/obsm/X_umap", "/obs/grp/codes"); types: ADX_E_SCHEMA (structure,
 * unknown encodings, not an HDF5 file, truncated file, and any element
 * HDF5 cannot read — corrupt data, a missing filter: the file's fault, so
 * a 400 for an upload and exit 2 in the CLI), ADX_E_SHAPE, ADX_E_LIMIT,
 * ADX_E_NOT_FOUND (no such file), ADX_E_IO (the file cannot be stat'ed),
 * ADX_E_CANCELED, ADX_E_NOMEM. HDF5's
 * automatic error printing is off for the duration of the call (and the
 * caller's handler restored); no hid_t stays open on any path.
 *
 * `lim` NULL → adx_limits_default. `ctl` may be NULL: cancel is polled
 * before each element, progress reports 0.5 after X and 1.0 at the end.
 * Thread-safe (HDF5 is built thread-safe; calls serialize on its lock).
 */
#ifndef ADX_H5R_H
#define ADX_H5R_H

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

ad_anndata *h5r_read(const char *path, const adx_limits *lim, const adx_ctl *ctl, adx_report *rep,
                     adx_err *err);

/* Read only what an include filter keeps (payload.md "The include filter"):
 * with has_include, the obs/var columns and obsm/varm/layers/obsp/varp/uns
 * keys the include filter (flt_set_keeps) would drop are never opened, so
 * a filtered export of a large file does not pay for them and an element that cannot be read
 * (awkward-array) does not fail it. X, raw and the obs/var indexes are
 * always read; so are the uns entries anndata's read-time moves need
 * ("<col>_categories", and "neighbors" when obsp/distances or
 * obsp/connectivities is kept). The result is a superset of what
 * flt_apply() keeps: callers still apply the filter (it reports patterns
 * that match nothing). `include` must have passed flt_validate(). */
typedef struct h5r_opts {
    const char *const *include;
    size_t n_include;
    bool has_include;
} h5r_opts;

/* h5r_read with options; `o` NULL reads everything. */
ad_anndata *h5r_read_opts(const char *path, const h5r_opts *o, const adx_limits *lim,
                          const adx_ctl *ctl, adx_report *rep, adx_err *err);

/* Read `path` with h5r_read in a child process (posix_spawn of `helper`, the
 * adx-h5check executable this module builds and installs in libexecdir) and
 * report whether it reads: 0, or -1 with `err` set to the child's error
 * (same type, pointer and detail as h5r_read would give; out of memory in
 * the child becomes ADX_E_SCHEMA, see h5r_check_budget), or ADX_E_SCHEMA
 * when the child was killed by a signal (the file crashes libhdf5 or ran
 * into a resource limit), ran longer than `timeout_ms` (<= 0 → 60 s; it is
 * then killed) or died otherwise. For untrusted uploads: check first, then h5r_read in-process.
 * Safe to call from any thread (no fork; the child's stderr goes to
 * /dev/null). Costs one extra read of the file. */
int h5r_check_isolated(const char *helper, const char *path, const adx_limits *lim, int timeout_ms,
                       adx_err *err);
/* The child runs under RLIMIT_AS = `*as_bytes` (max_total_bytes plus
 * H5R_CHECK_BASE_BYTES for the process and libhdf5; not applied in
 * AddressSanitizer builds, whose shadow memory needs terabytes of address
 * space) and RLIMIT_CPU = `*cpu_seconds` (2 s plus one second per 32 MiB of
 * the file and of what it may decompress into, bounded by max_total_bytes;
 * x4 under ASan; at most timeout_ms). A file that runs into either is
 * ADX_E_SCHEMA ("the file needs more than ... to read"): a 400, never a
 * 500, within seconds for a small hostile file. */
#define H5R_CHECK_BASE_BYTES (256ull << 20)
/* Where the adx-h5check helper is: next to the running binary's build tree
 * (src/h5r/), then in the configured libexecdir, then in ../libexec beside
 * the binary (an installed tree moved elsewhere). Fills `out` with the
 * first executable one and returns 0; -1 when none is, with the places
 * looked in listed in `looked` (", "-separated) for a message. */
int h5r_find_helper(char *out, size_t cap, char *looked, size_t looked_cap);
/* Whether `path` is a regular file this process may execute. */
bool h5r_helper_usable(const char *path);
void h5r_check_budget(const adx_limits *lim, uint64_t file_bytes, int timeout_ms,
                      uint64_t *as_bytes, unsigned *cpu_seconds);
/* The same check of what h5r_read_opts(path, o, …) reads (the helper gets
 * the include paths as arguments); `o` NULL checks everything. */
int h5r_check_isolated_opts(const char *helper, const char *path, const h5r_opts *o,
                            const adx_limits *lim, int timeout_ms, adx_err *err);

#endif
