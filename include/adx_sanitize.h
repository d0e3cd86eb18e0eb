/* adx_sanitize (prefix san_) — make a decoded model writable, exactly as the
 * table in payload.md "Sanitization": object columns and uns values become
 * typed arrays, uns nulls are dropped, and every change is added to the
 * report with its JSON pointer into the stored object and a count.
 *
 * Operates in place on the caller's model (the job's own copy: decoders
 * build a fresh model per job, so the client's input is never changed).
 * After success the model holds no AD_K_OBJECT and no AD_K_NULL anywhere.
 *
 * Where: every AD_K_OBJECT anywhere in the model (columns of obs, var,
 * raw/var, DataFrames in obsm/varm/raw/varm and, at any depth, in uns; N-d
 * object values in uns and the other mappings) becomes an AD_STR array of
 * the same shape, and every AD_K_NULL value of a mapping (uns at any depth;
 * X / raw/X) is removed. Typed elements are never touched.
 *
 * Cell rules (one output string per cell):
 *   null            → ""                              counted in nulls
 *   bool            → "True" / "False"                counted in mixed
 *   int, uint64     → decimal, as Python's str(int)   counted in mixed
 *   real            → ad_fmt_pyfloat (Python str())   counted in mixed
 *   string          → unchanged                       not counted
 *   array / object  → its compact JSON text           counted in nested
 *
 * Report entries, per converted element, at its pointer into the STORED
 * object ("/obs/kmeans", "/raw/var/x", "/obsm/df/col",
 * "/uns/statements/is-seed"; keys escaped as RFC 6901), in this order and
 * only when the count is non-zero:
 *   REP_NULL_TO_EMPTY    count = cells that were null
 *   REP_MIXED_TO_STRING  count = non-string scalar cells turned into text
 *   REP_NESTED_TO_JSON   count = cells holding an array/object (a 0-d uns
 *                        value holding one list of objects reports count 1)
 * A dropped null: REP_DROPPED_NULL, count 1, at the pointer of the removed
 * key. An object column of plain strings only is converted without a report
 * entry (nothing about its values changed).
 *
 * Returns 0, or -1 with `err` set: ADX_E_NOMEM, ADX_E_LIMIT (output size or
 * nesting over `lim`; lim NULL = adx_limits_default) or ADX_E_INTERNAL
 * (a malformed object from a decoder). On failure the model is still valid
 * to free but only partly sanitized.
 */
#ifndef ADX_SANITIZE_H
#define ADX_SANITIZE_H

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

int san_anndata(ad_anndata *a, const adx_limits *lim, adx_report *rep, adx_err *err);
/* san_anndata that polls `ctl`'s cancel flag before every element it
 * walks: a set flag fails it with ADX_E_CANCELED (the model is left valid
 * but only partly sanitized). `ctl` NULL = san_anndata. The strings an
 * object becomes are charged to ctl->budget as they are built (text, NUL
 * and offset of each cell, in 64 KiB steps): going over is ADX_E_LIMIT
 * "the request needs more than max_request_memory = N bytes" at the
 * element's pointer. The object they replace is freed, but whatever its
 * decoder charged stays counted until the request ends. */
int san_anndata_ctl(ad_anndata *a, const adx_limits *lim, const adx_ctl *ctl, adx_report *rep,
                    adx_err *err);

/* anndata's write-time conversion (AnnData.strings_to_categoricals, called
 * by anndata 0.8's write_h5ad for obs, var and raw.var only): every AD_STR
 * column (never the index) with fewer distinct values than rows becomes an
 * unordered categorical. Categories are ordered by natsort.natsorted's
 * default key, as anndata does (AD_CAT_NATURAL of ad_cat_from_values). Applied by the pipeline for
 * h5ad only, as anndata's writer does. Returns 0 or -1 (ADX_E_NOMEM). */
int san_strings_to_categoricals(ad_anndata *a, adx_err *err);
/* The same, polling `ctl`'s cancel flag before each column (ADX_E_CANCELED)
 * and charging ctl->budget with each column's scratch while it is built and
 * the categoricals kept (ADX_E_LIMIT at the column's pointer). */
int san_strings_to_categoricals_ctl(ad_anndata *a, const adx_ctl *ctl, adx_err *err);

/* categorical_columns for a model that did not come from JSON (an h5ad
 * file, a Polis folder, a stored dataset): plain 1-d obs/var columns whose
 * name matches one of `globs` become categoricals as pandas'
 * astype("category") makes them (ad_cat_from_values with AD_CAT_SORTED:
 * sorted distinct values, NaN → code -1).
 * The JSON decoder applies the same option while typing values. The globs
 * are arranged once (glob_set): at most max_tests glob steps (0 = no
 * bound), past them ADX_E_LIMIT at /categorical_columns. Returns 0, or -1
 * with the error (also ADX_E_NOMEM). */
int san_categorize_columns(ad_anndata *a, const char *const *globs, size_t n, uint64_t max_tests,
                           adx_err *err);

#endif
