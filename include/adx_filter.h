/* adx_filter (prefix flt_) — the include filter of payload.md.
 *
 * Paths are "namespace/glob" with namespaces obs, var, obsm, varm, layers,
 * uns, obsp, varp. Semantics of the reference implementation: for obs/var,
 * unmatched columns are dropped (the index never is); for the mappings,
 * unmatched keys are dropped; a namespace no path mentions is emptied; X and
 * raw are always kept. Beyond the reference: an unknown namespace, an empty
 * pattern, or a path without "/" is ADX_E_BAD_INCLUDE naming the entry by
 * pointer ("/include/<i>"); a pattern that matches nothing is reported
 * (REP_INCLUDE_NO_MATCH) but is not an error.
 *
 * flt_validate() checks paths without a model (to reject a request early);
 * flt_apply() validates again and then filters in place.
 */
#ifndef ADX_FILTER_H
#define ADX_FILTER_H

#include <stddef.h>

#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

/* `ptr_base` is the pointer of the include array in the request
 * (e.g. "/include"); entry i is reported as ptr_base/i. */
int flt_validate(const char *const *paths, size_t n, const char *ptr_base, adx_err *err);
int flt_apply(ad_anndata *a, const char *const *paths, size_t n, const char *ptr_base,
              adx_report *rep, adx_err *err);

#endif
