/* adx_report (prefix rep_) — the job report: every change the pipeline made
 * to the data, and every request detail worth telling the client about
 * (sanitizations, include patterns that matched nothing, duplicate index
 * values, elements a format could not hold).
 *
 * Entries are {"path": JSON pointer into the *stored* object (e.g.
 * "/uns/statements/is-seed"), "action": slug, "count": N, "detail": optional
 * text}. Nothing is dropped silently: any stage that changes or omits data
 * adds an entry.
 *
 * Ownership: the report owns copies of every string. rep_add() returns -1 on
 * ENOMEM (the entry is lost, the report stays valid).
 */
#ifndef ADX_REPORT_H
#define ADX_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct rep_entry {
    char *path;
    char *action;
    uint64_t count;
    char *detail; /* may be NULL */
} rep_entry;

typedef struct adx_report {
    size_t n, cap;
    rep_entry *e;
} adx_report;

/* Action slugs used across stages. */
#define REP_NULL_TO_EMPTY "null_to_empty_string"
#define REP_MIXED_TO_STRING "mixed_to_string"
#define REP_NESTED_TO_JSON "nested_to_json_string"
#define REP_DROPPED_NULL "dropped_null"
#define REP_DUPLICATE_INDEX "duplicate_index"
#define REP_INCLUDE_NO_MATCH "include_matched_nothing"
#define REP_NOT_WRITTEN "not_written"
#define REP_INDEX_RENAMED "index_renamed"

int rep_add(adx_report *r, const char *path, const char *action, uint64_t count,
            const char *detail);
void rep_free(adx_report *r);
/* Array of entry objects; "detail" omitted when NULL. New reference. */
json_t *rep_to_json(const adx_report *r);

#endif
