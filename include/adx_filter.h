/* adx_filter (prefix flt_) — the include filter of payload.md.
 *
 * Paths are "namespace/glob" with namespaces obs, var, obsm, varm, layers,
 * uns, obsp, varp. The path splits at its FIRST "/": "uns/a/b" is the glob
 * "a/b" matched (adx_glob, Python fnmatchcase) against the top-level keys of
 * uns. Semantics of the reference implementation: for obs/var, unmatched
 * columns are dropped (the index never is); for the mappings, unmatched keys
 * are dropped; a namespace no path mentions is emptied (obs/var: every
 * column, index kept), so an empty list keeps only X, raw and the indexes;
 * X and raw are always kept. Not calling flt_apply (include absent or null)
 * keeps everything.
 *
 * Beyond the reference (which silently ignores them): an unknown namespace,
 * an "X/..." or "raw/..." entry (always kept, so filtering them is a
 * mistake), an empty pattern, a path without "/", or a NULL entry is
 * ADX_E_BAD_INCLUDE naming the entry by pointer ("<ptr_base>/<i>"); every
 * bad entry becomes one error item. A pattern that matches nothing is
 * reported (REP_INCLUDE_NO_MATCH at "<ptr_base>/<i>", count 0, detail = the
 * path) but is not an error. Dropping what the client excluded is not
 * reported: it is what the request asked for.
 *
 * flt_validate() checks paths without a model (to reject a request early);
 * flt_apply() validates again and then filters in place. Both return 0 or
 * -1 with `err` set (ADX_E_BAD_INCLUDE, or ADX_E_NOMEM from flt_apply).
 */
#ifndef ADX_FILTER_H
#define ADX_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

/* `ptr_base` is the pointer of the include array in the request
 * (e.g. "/include"); entry i is reported as ptr_base/i. */
int flt_validate(const char *const *paths, size_t n, const char *ptr_base, adx_err *err);
/* `max_tests` bounds the glob steps (adx_glob.h: each pattern tried on a
 * key, and the work of the glob matches) made in all (0 = no bound); going
 * over it is ADX_E_LIMIT at ptr_base naming max_include_tests. Linear in
 * the keys otherwise: literal patterns are looked up, other patterns tried
 * after their literal prefix and suffix, dropped entries leave in one pass. */
int flt_apply(ad_anndata *a, const char *const *paths, size_t n, uint64_t max_tests,
              const char *ptr_base, adx_report *rep, adx_err *err);

/* The (validated) paths arranged once, as flt_apply arranges them, for
 * readers that skip what the filter would drop (h5r): each key costs about
 * one pass over its bytes. flt_set_keeps: whether flt_apply keeps `key` of
 * namespace `ns` ("obs", "obsm", "uns", ...): 1 keep, 0 drop, -1 when the
 * glob steps made through the set passed max_tests (0 = no bound).
 * Invalid entries match nothing. The set keeps pointers into `paths`. NULL
 * when out of memory. */
typedef struct flt_set flt_set;
flt_set *flt_set_new(const char *const *paths, size_t n, uint64_t max_tests);
int flt_set_keeps(flt_set *s, const char *ns, const char *key);
void flt_set_free(flt_set *s);

#endif
