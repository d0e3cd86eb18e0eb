/* adx_sanitize (prefix san_) — make a decoded model writable, exactly as the
 * table in payload.md "Sanitization": object columns and uns values become
 * typed arrays, uns nulls are dropped, and every change is added to the
 * report with its JSON pointer into the stored object and a count.
 *
 * Operates in place on the caller's model (the job's own copy: decoders
 * build a fresh model per job, so the client's input is never changed).
 * After success the model holds no AD_K_OBJECT and no AD_K_NULL anywhere.
 *
 * Returns 0, or -1 with `err` set (only ENOMEM or limit errors).
 */
#ifndef ADX_SANITIZE_H
#define ADX_SANITIZE_H

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

int san_anndata(ad_anndata *a, const adx_limits *lim, adx_report *rep, adx_err *err);

/* Convert one object array into an AD_STR array by the table's rules and
 * return the report action it implies (REP_* slug) and count. Exposed for
 * unit tests and for codecs that meet mixed data. */
int san_object_to_strings(const ad_object *o, ad_array *out, const char **action, uint64_t *count,
                          adx_err *err);

/* anndata's write-time conversion (AnnData.strings_to_categoricals): every
 * obs/var (and raw/var) AD_STR column with fewer distinct values than rows
 * becomes a categorical with sorted string categories. Applied by the
 * pipeline for h5ad only, as anndata's writer does. Returns 0 or -1 (ENOMEM). */
int san_strings_to_categoricals(ad_anndata *a, adx_err *err);

#endif
