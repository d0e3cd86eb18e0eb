/* The spool (spool.c): one directory per job under <spool>/jobs/<id>/
 * holding request.json, job.json (the job's records, one a line) and
 * result.<ext>;
 * <spool>/tmp/ holds uploads in progress. Not to be confused with the data
 * directory of stored datasets (ds_store, datadir.c). Path helpers and
 * srv_write_durable are safe on workers; the rest runs on the loop. */
#ifndef SRV_SPOOL_H
#define SRV_SPOOL_H

#include "srv.h"

#include "adx_afile.h"

/* Runs a job may start and not end (crashes) before it is failed. */
#define SRV_MAX_ATTEMPTS 3

void srv_spool_job_dir(const srv_spool *sp, const char *id, char *out, size_t cap);
void srv_spool_job_file(const srv_spool *sp, const char *id, const char *name, char *out,
                        size_t cap);
/* "result" + the format's extension */
void srv_spool_result_path(const srv_spool *sp, const srv_job *j, char *out, size_t cap);
/* Delete a finished job's body from its directory: request.json, and for
 * an h5ad body input.h5ad beside its options. */
void srv_spool_drop_request(const char *dir, pipe_src_kind kind);
/* The persisted record of a job: compact JSON and a newline, malloc'd. */
char *srv_spool_record(const srv_job *j);
/* Append a record to dir/job.json, the job's log of records (one a line;
 * the last whole line that parses is current, see read_record in spool.c).
 * Appending in place instead of renaming a new file over the old one
 * creates and frees no inode a write: on ext4 without a journal every
 * freed inode is skipped by file creations for a minute or more, which at
 * a few hundred jobs a second cost the daemon 5-14% of its CPU
 * (README, stop 21). `sync`
 * as afile_append (AFILE_SYNC_ALL when the directory must be synced too).
 * Worker or startup. */
int srv_spool_append_record(const char *dir, const char *rec, afile_sync sync, adx_err *err);

/* Write `text` to dir/name atomically and durably (temp, fsync, rename,
 * fsync dir). Worker or startup. */
int srv_write_durable(const char *dir, const char *name, const char *text, size_t len,
                      adx_err *err);
/* The same with a weaker commit (adx_afile.h): AFILE_SYNC_FILE when the
 * caller fsyncs `dir` once for several files (or a record whose previous
 * version coming back after a power failure is harmless). */
int srv_write_synced(const char *dir, const char *name, const char *text, size_t len,
                     afile_sync sync, adx_err *err);
/* Remove a directory and the plain files in it. */
int srv_remove_tree(const char *dir);
/* mkdir -p with mode 0750; errors point at the config `setting` that named
 * the directory ("/spool_dir"). */
int srv_mkdir_p(const char *path, const char *setting, adx_err *err);

/* Take the spool's lock (<spool>/lock, flock, holding our pid), creating
 * the directory if needed. Another live instance holding it is an error
 * naming its pid: nothing of the spool is touched. Before anything else. */
int srv_spool_lock(srv_state *s, adx_err *err);
void srv_spool_unlock(srv_state *s);

/* The quota (max_spool_bytes, 0 = none): reserve `n` bytes (false, and
 * nothing reserved, when they do not fit), give bytes back. Atomic: safe
 * on workers too. */
bool srv_spool_reserve(srv_state *s, uint64_t n);
void srv_spool_release(srv_state *s, uint64_t n);
/* The same as pipe_env's quota callbacks (ud = the srv_state). */
bool srv_spool_quota_reserve(void *ud, uint64_t n);
void srv_spool_quota_release(void *ud, uint64_t n);
/* Bytes free for us on the spool's file system as last read (at most a tick
 * old); -1 when unknown. */
int srv_spool_disk_free(const srv_state *s, uint64_t *avail);
/* Refresh that figure on libuv's pool (one request at a time). */
void srv_spool_poll_free(srv_state *s, uv_loop_t *loop);
/* A write found the disk full (ENOSPC, EDQUOT). */
void srv_spool_note_full(srv_state *s);
/* NULL while there is room for new work, else why not (for /readyz). */
const char *srv_spool_no_room(const srv_state *s);
/* A terminal job no longer needs its request body: give its bytes back
 * (the files go with its terminal record). */
void srv_spool_request_done(srv_state *s, srv_job *j);

/* The job table's hooks that write records and delete files on the pool. */
srv_jobs_hooks srv_spool_hooks(srv_state *s);
/* Load every job of the spool, clean temp files; called before the loop. */
int srv_spool_scan(srv_state *s, adx_err *err);

#endif
