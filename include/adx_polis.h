/* adx_polis (prefix polis_) — a Polis CSV export folder → the participant ×
 * statement model of valency-anndata's loader (load() on a local folder,
 * then rebuild_vote_matrix and _populate_var_statements).
 *
 * Input: `dir`/votes.csv (columns timestamp, voter-id, comment-id, vote;
 * others are kept in uns) and `dir`/comments.csv (comment-id; the var
 * columns below when present). participant-votes.csv, comment-groups.csv and
 * summary.csv are not read. CSV: RFC 4180 (quoted fields with "", commas and
 * newlines; LF/CRLF/CR; UTF-8 BOM; blank lines skipped).
 *
 * Output, as pandas builds it:
 *   - votes sorted by timestamp (stable: equal timestamps keep file order;
 *     the reference loader uses pandas' default unstable sort, which can
 *     order such ties differently in uns["votes"] but never changes X), the
 *     last vote per (voter-id, comment-id) kept;
 *   - X: float64 n_participants × n_statements, the vote (-1/0/1 as in the
 *     file; an empty vote cell is NaN) or NaN where unseen;
 *   - obs index: distinct voter ids, index name "voter-id"; var index:
 *     distinct comment ids that received a vote (as pivot makes them:
 *     comments nobody voted on are not statements of X), index name
 *     "comment-id". Ids that are all integers sort numerically and print in
 *     decimal; otherwise they are text sorted bytewise;
 *   - var columns from comments.csv, matched by comment id: content
 *     (comment-body), participant_id_authored (author-id), created_date
 *     (timestamp), moderation_state (moderated), is_seed (is-seed), is_meta
 *     (is-meta) — each only when its source column exists (nothing is
 *     invented). A voted-on id missing from comments.csv gives missing cells
 *     and a report entry "missing_statement" on "/var";
 *   - uns["votes"]: the sorted, deduplicated votes table (every votes.csv
 *     column, index "0".."n-1"); uns["statements"]: comments.csv as read
 *     (index "0".."n-1"); uns["votes_meta"]: {via: "local_csv", n_votes:
 *     kept votes, n_votes_raw: rows in votes.csv}.
 * Column typing (pandas read_csv inference, but only an empty cell is
 * missing: "NA", "null", "nan" in text columns stay text): all integers →
 * int64 (float64 with NaN when a cell is empty or a row is missing); numbers
 * → float64; True/False/true/false/TRUE/FALSE → bool (nullable-boolean with
 * missing cells); text → AD_STR; text with empty cells and all-empty columns
 * → AD_K_OBJECT with null cells, so sanitize turns them into "" and reports
 * it.
 *
 * Errors: NULL with `err` set. Pointers name the file, the 1-based line the
 * record starts on, and the column: "/votes.csv/17/vote" (ADX_E_SCHEMA:
 * ragged record, bad quoting, non-numeric vote or timestamp, empty id,
 * duplicate comment-id, missing required column → "/votes.csv/1"; invalid
 * UTF-8). ADX_E_NOT_FOUND "/comments.csv" when a file is missing;
 * ADX_E_LIMIT when a file exceeds max_body_bytes, a field max_string_bytes,
 * a table max_elements cells, or the matrix max_dim / max_elements.
 * `lim` NULL → adx_limits_default. Thread-safe (no global state).
 */
#ifndef ADX_POLIS_H
#define ADX_POLIS_H

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

ad_anndata *polis_read_dir(const char *dir, const adx_limits *lim, adx_report *rep, adx_err *err);

#endif
