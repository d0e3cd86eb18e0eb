/* sanitize's object conversion, one array at a time: private to
 * src/sanitize and its unit tests (san_anndata is the public door). */
#ifndef SANITIZE_TEST_H
#define SANITIZE_TEST_H

#include "adx_sanitize.h"

/* Cells of one object array, by the rules in adx_sanitize.h. */
typedef struct san_counts {
    uint64_t nulls, mixed, nested;
} san_counts;

/* Convert one object array into an AD_STR array of the same shape; `out` is
 * initialised here (zeroed on failure). Default limits apply. */
int san_object_convert(const ad_object *o, ad_array *out, san_counts *counts, adx_err *err);

/* Same conversion, reporting only the dominant action: REP_NESTED_TO_JSON if
 * any cell was nested, else REP_MIXED_TO_STRING if any non-string scalar,
 * else REP_NULL_TO_EMPTY if any null, else NULL (plain strings); `count` is
 * that action's count. san_anndata reports all three counts. */
int san_object_to_strings(const ad_object *o, ad_array *out, const char **action, uint64_t *count,
                          adx_err *err);

#endif
