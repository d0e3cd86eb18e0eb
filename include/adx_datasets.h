/* adx_datasets (prefix ds_) — the data directory of stored datasets
 * (api.md "Stored datasets").
 *
 * Layout of the directory DIR:
 *   DIR/<name>.h5ad   kind "h5ad": an h5ad file (uploads are stored so)
 *   DIR/<name>/       kind "polis": a folder holding a Polis CSV export
 *                     (votes.csv and comments.csv; read with polis_read_dir)
 * Anything else in DIR is not a dataset and is never listed: dot-files
 * (the store's own temp files ".put-*" and ".del-*"), other extensions,
 * folders without votes.csv. When both <name>.h5ad and <name>/ exist the
 * h5ad file is the dataset.
 *
 * Names: [A-Za-z0-9._-]{1,128}, not starting with '.' (ds_name_valid; the
 * same rule req_parse applies to "dataset"), so no name can leave DIR or
 * reach a temp file.
 *
 * Consistency: a PUT writes a temp file inside DIR, fsyncs it and renames
 * it over DIR/<name>.h5ad, then fsyncs DIR: readers see the old file or the
 * new one, never half of either. A DELETE renames the entry to a ".del-*"
 * name first (atomic), then removes it.
 *
 * In use: ds_pin/ds_unpin count users of a name (the daemon pins the
 * dataset of every queued or running export; ds_load pins for the duration
 * of its read). ds_put and ds_delete on a pinned name fail with
 * ADX_E_CONFLICT (409) and change nothing: a dataset is never replaced or
 * removed under a job that names it. The pin check and the rename are two
 * steps (no file system call runs under the store's mutex): a pin taken in
 * between by a job that has not read yet sees the new file whole, or, for
 * a delete, a 404 when it loads.
 *
 * Summaries: {"name","kind","size_bytes" (a Polis folder: votes.csv +
 * comments.csv),"modified_at" (RFC 3339 UTC, seconds; a folder: the newest
 * of the folder and those two files),
 * "n_obs","n_vars","X":{"encoding","dtype","shape"}|null,"obs":[columns],
 * "var":[...],"obsm","varm","layers","obsp","varp","uns":[keys],
 * "raw":{"n_vars","var":[...],"varm":[...]}|null} — the keys of every
 * namespace, what a frontend needs to build an "include" list. They are
 * cached per name and (device, inode, size, mtime), so a list after the
 * first costs stat() calls only.
 *
 * Threads: a ds_store is safe to use from any thread (one mutex guards the
 * pin table and the summary cache; no file I/O happens under it). Calls
 * that read data (ds_list, ds_summary, ds_load, ds_put) belong on a worker.
 *
 * Errors: -1/NULL with `err` set; pointer "/dataset" for a bad or unknown
 * name (callers may rewrite it); ADX_E_BAD_OPTION (invalid name),
 * ADX_E_NOT_FOUND, ADX_E_CONFLICT (pinned, or a PUT over a Polis folder,
 * which only an operator manages), readers' errors as they give
 * them (h5r_read, polis_read_dir, jdec), ADX_E_IO for the file system.
 * Messages never contain a path of the machine.
 */
#ifndef ADX_DATASETS_H
#define ADX_DATASETS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

typedef struct ds_store ds_store;

typedef enum ds_kind { DS_KIND_H5AD = 1, DS_KIND_POLIS } ds_kind;
/* What ds_put receives: an h5ad file, or a JSON document that is an AnnData
 * object as in payload.md ("adata"'s value), or a whole request with an
 * "adata" member. */
typedef enum ds_input { DS_INPUT_H5AD = 1, DS_INPUT_JSON } ds_input;

bool ds_name_valid(const char *name);

/* Opens (and creates, mode 0750, when missing) the data directory.
 * `lim` is copied (NULL → defaults). `h5check` is the adx-h5check helper
 * (h5r_check_isolated): uploaded h5ad files are read in a child process
 * before the store reads them in-process; NULL skips that (CLI, tests).
 * Leftover ".put-*" / ".del-*" entries from a crash are removed — only
 * when no other ds_store, in this process or another, has DIR open (each
 * store holds a shared flock on DIR; cleaning needs it exclusively), so a
 * CLI export never removes an upload the daemon is storing. */
ds_store *ds_open(const char *dir, const adx_limits *lim, const char *h5check, adx_err *err);
void ds_close(ds_store *s);

/* Every dataset's summary, sorted by name (JSON array, new reference). A
 * dataset that cannot be read is listed with "error": problem+json instead
 * of the counts, never failing the whole list. */
json_t *ds_list(ds_store *s, adx_err *err);
/* No dataset in the directory (stat calls only, nothing is read): the
 * daemon seeds its default directory then. Safe on the loop at startup. */
bool ds_empty(ds_store *s);
json_t *ds_summary(ds_store *s, const char *name, adx_err *err);

/* The dataset as a model the caller owns (pinned while reading). Report
 * entries from the readers go to `rep`. */
ad_anndata *ds_load(ds_store *s, const char *name, const adx_ctl *ctl, adx_report *rep,
                    adx_err *err);
/* ds_load reading an h5ad dataset with h5r_read_opts(`o`): an export's
 * include filter then reads only the elements it keeps. `o` is ignored for
 * Polis folders; NULL reads everything. */
struct h5r_opts;
ad_anndata *ds_load_opts(ds_store *s, const char *name, const struct h5r_opts *o,
                         const adx_ctl *ctl, adx_report *rep, adx_err *err);

/* Validate `src_path` (the caller's temp file, e.g. an upload in the
 * spool) and store it as <name>. h5ad: isolated check (when configured),
 * then read in-process, then the bytes as uploaded are moved in (rename
 * when on the same file system, else copied). JSON: decoded with jdec,
 * written with h5w (gzip 4). `src_path` is removed whatever happens. On
 * success *created says whether the name was new and *summary (when not
 * NULL) is the new summary (new reference); for a JSON upload whose values
 * had to be sanitized it also holds "report": [...], the changes made, since
 * later exports of the stored file cannot report them. */
int ds_put(ds_store *s, const char *name, const char *src_path, ds_input input, const adx_ctl *ctl,
           bool *created, json_t **summary, adx_err *err);
int ds_delete(ds_store *s, const char *name, adx_err *err);

/* Pins count per name; ds_unpin of an unpinned name is ignored. */
void ds_pin(ds_store *s, const char *name);
void ds_unpin(ds_store *s, const char *name);
bool ds_pinned(ds_store *s, const char *name);

#endif
