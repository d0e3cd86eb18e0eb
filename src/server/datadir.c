/* The data directory of the daemon (not the spool): where adx-h5check is, which directory
 * holds the datasets (and seeding the default one with the bundled example),
 * and the dataset routes' work on the pool. The loop thread only starts work
 * and reads its results; every ds_* call that touches files runs in
 * ds_run on a worker. */
#include "datadir.h"
#include "spool.h"

#include "adx_afile.h"
#include "adx_h5r.h"
#include "adx_pipeline.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adx_config_build.h"

extern const char srv_seed_votes_csv[];
extern const unsigned long srv_seed_votes_csv_len;
extern const char srv_seed_comments_csv[];
extern const unsigned long srv_seed_comments_csv_len;

#define SEED_NAME "polis-example"

static int resolve_h5check(srv_state *s, adx_err *err)
{
    if (s->cfg.h5check[0]) {
        if (!h5r_helper_usable(s->cfg.h5check))
            return adx_err_set(err, ADX_E_BAD_OPTION, "/h5check",
                               "h5check %s is not an executable file", s->cfg.h5check);
        snprintf(s->h5check, sizeof s->h5check, "%s", s->cfg.h5check);
        return 0;
    }
    char looked[3 * PATH_MAX + 200];
    if (h5r_find_helper(s->h5check, sizeof s->h5check, looked, sizeof looked) == 0) return 0;
    return adx_err_set(err, ADX_E_IO, "/h5check",
                       "the adx-h5check helper was not found (looked in %s); install it "
                       "(meson install puts it in %s) or set h5check / ANNDATA_EXPORTD_H5CHECK",
                       looked, ADX_LIBEXECDIR);
}

static int seed(const char *dir, adx_err *err)
{
    char tmp[PATH_MAX + 64], dst[PATH_MAX + 64];
    /* ".put-" so that ds_open removes it if this process dies half-way. */
    snprintf(tmp, sizeof tmp, "%s/.put-seed-" SEED_NAME, dir);
    snprintf(dst, sizeof dst, "%s/" SEED_NAME, dir);
    srv_remove_tree(tmp);
    if (mkdir(tmp, 0750) < 0)
        return adx_err_set(err, ADX_E_IO, "/data_dir", "cannot create %s: %s", tmp,
                           strerror(errno));
    if (srv_write_durable(tmp, "votes.csv", srv_seed_votes_csv, srv_seed_votes_csv_len, err) < 0 ||
        srv_write_durable(tmp, "comments.csv", srv_seed_comments_csv, srv_seed_comments_csv_len,
                          err) < 0) {
        srv_remove_tree(tmp);
        return -1;
    }
    if (afile_rename(tmp, dst) != 0) {
        int e = errno;
        srv_remove_tree(tmp);
        return adx_err_set(err, ADX_E_IO, "/data_dir", "cannot seed %s: %s", dst, strerror(e));
    }
    return 0;
}

int srv_datadir_open(srv_state *s, adx_err *err)
{
    if (resolve_h5check(s, err) < 0) return -1;
    bool dflt = !s->cfg.data_dir[0];
    if (dflt) {
        if (snprintf(s->data_dir, sizeof s->data_dir, "%s/datasets", s->cfg.spool_dir) >=
            (int)sizeof s->data_dir)
            return adx_err_set(err, ADX_E_BAD_OPTION, "/spool_dir", "spool_dir is too long");
    } else {
        snprintf(s->data_dir, sizeof s->data_dir, "%s", s->cfg.data_dir);
    }
    s->ds = ds_open(s->data_dir, &s->cfg.limits, s->h5check, err);
    if (!s->ds) return -1;
    bool seeded = false;
    if (dflt && ds_empty(s->ds)) {
        if (seed(s->data_dir, err) < 0) return -1;
        seeded = true;
    }
    /* Jobs re-queued from the spool hold their dataset as before the restart. */
    unsigned pinned = 0;
    for (srv_job *j = s->jobs.head; j; j = j->next)
        if (j->state == SRV_JOB_QUEUED && j->dataset && !j->pinned) {
            ds_pin(s->ds, j->dataset);
            j->pinned = true;
            pinned++;
        }
    srv_log("info", "data directory open",
            json_pack("{s:s, s:b, s:b, s:s, s:i}", "data_dir", s->data_dir, "default", dflt,
                      "seeded", seeded, "h5check", s->h5check, "pinned", pinned));
    return 0;
}

void srv_datadir_close(srv_state *s)
{
    if (s->ds) ds_close(s->ds);
    s->ds = NULL;
}

void srv_datadir_unpin(void *ud, srv_job *j)
{
    srv_state *s = ud;
    if (s->ds) ds_unpin(s->ds, j->dataset);
}

/* ---- route work on the pool ------------------------------------------- */

/* ds_put fsyncs what it stores and removes the file it is given whatever
 * happens; a gzip body is first decompressed beside the upload (charged to
 * the spool quota while it exists) and the upload removed. */
static void put_upload(srv_ds_work *dw, ds_store *st)
{
    char plain[PATH_MAX + 64];
    const char *path = dw->upload;
    uint64_t charged = 0;
    if (dw->gzip) {
        pipe_env env = {.reserve = srv_spool_quota_reserve,
                        .release = srv_spool_quota_release,
                        .quota_ud = dw->s};
        int rc = pipe_gunzip_copy(dw->upload, &dw->s->cfg.limits, &env, plain, sizeof plain,
                                  &charged, &dw->err);
        unlink(dw->upload);
        if (rc < 0) {
            srv_spool_release(dw->s, charged);
            return;
        }
        path = plain;
    }
    if (ds_put(st, dw->name, path, dw->input, NULL, &dw->created, &dw->result, &dw->err) < 0) {
        json_decref(dw->result);
        dw->result = NULL;
    }
    srv_spool_release(dw->s, charged);
}

static void ds_run(uv_work_t *w)
{
    srv_ds_work *dw = w->data;
    uint64_t t0 = srv_mono_ns();
    ds_store *st = dw->s->ds;
    switch (dw->op) {
    case SRV_DS_LIST: {
        json_t *a = ds_list(st, &dw->err);
        if (a) dw->result = json_pack("{s:o}", "datasets", a);
        break;
    }
    case SRV_DS_SUMMARY:
        dw->result = ds_summary(st, dw->name, &dw->err);
        break;
    case SRV_DS_PUT:
        put_upload(dw, st);
        break;
    case SRV_DS_DELETE:
        if (ds_delete(st, dw->name, &dw->err) == 0) dw->result = json_true();
        break;
    }
    if (!dw->result && !adx_err_failed(&dw->err))
        adx_err_set(&dw->err, ADX_E_NOMEM, "", "out of memory");
    dw->seconds = (double)(srv_mono_ns() - t0) / 1e9;
}

static void ds_after(uv_work_t *w, int status)
{
    srv_ds_work *dw = w->data;
    dw->s->n_ds_work--;
    dw->s->metrics.worker_busy_s += dw->seconds;
    dw->done(dw);
}

int srv_ds_start(srv_state *s, srv_ds_work *dw)
{
    dw->w.data = dw;
    dw->s = s;
    adx_err_init(&dw->err);
    dw->result = NULL;
    s->n_ds_work++;
    if (uv_queue_work(s->loop, &dw->w, ds_run, ds_after) != 0) {
        s->n_ds_work--;
        return -1;
    }
    return 0;
}
