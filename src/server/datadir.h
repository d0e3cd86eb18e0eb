/* The daemon's data directory of stored datasets (datadir.c): where
 * adx-h5check is, which directory holds the datasets (seeding the default
 * one), and the dataset routes' work on the pool. Not to be confused with
 * the spool of export jobs (spool.h). */
#ifndef SRV_DATADIR_H
#define SRV_DATADIR_H

#include "srv.h"

/* Resolve h5check and the data directory (seeding the default one), open
 * the store, pin the datasets of re-queued jobs. Before the loop runs. */
int srv_datadir_open(srv_state *s, adx_err *err);
void srv_datadir_close(srv_state *s);
/* The job table's unpin hook (`ud` is the srv_state). */
void srv_datadir_unpin(void *ud, srv_job *j);

typedef enum srv_ds_op { SRV_DS_LIST = 0, SRV_DS_SUMMARY, SRV_DS_PUT, SRV_DS_DELETE } srv_ds_op;
typedef struct srv_ds_work {
    uv_work_t w;
    srv_state *s;
    srv_ds_op op;
    char name[ADX_DATASET_NAME_MAX + 1];
    char upload[PATH_MAX + 32]; /* PUT: the body, removed by the worker */
    uint64_t spool_bytes;       /* PUT: reserved for the body in the spool */
    ds_input input;
    bool gzip; /* PUT: the body is gzip-compressed (Content-Encoding) */
    bool created;
    json_t *result; /* list object, summary, or json_true() for a delete */
    adx_err err;
    double seconds;
    void (*done)(struct srv_ds_work *dw); /* on the loop */
    void *ud;
} srv_ds_work;
int srv_ds_start(srv_state *s, srv_ds_work *dw);

#endif
