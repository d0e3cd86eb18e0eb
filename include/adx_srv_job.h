/* adx_srv_job (prefix srv_job_) — the export job state machine.
 *
 *   receiving ──received──▶ validating ──accept──▶ queued
 *       │                       │                    │
 *       └──cancel──▶ canceled ◀─┴─cancel─────────────┤
 *                       ▲                            start
 *                       └──cancel──┐                 ▼
 *   succeeded ◀──succeed────────── running ──fail──▶ failed
 *       └──expire──▶ expired
 *
 * A POST's job exists from the end of its headers: `receiving` while its
 * body is spooled, `validating` while a worker decodes it and makes it
 * durable; `accept` (the 202) makes it `queued`. A body that is refused
 * (4xx) never becomes a job: the table forgets it without a terminal state.
 * Cancel of a running or validating job is cooperative (the worker stops).
 * `interrupt` (a restart found the job running) puts a running job back to
 * queued so that it runs again. Every other pair is refused, so a late
 * worker completion can never resurrect a canceled or expired job.
 */
#ifndef ADX_SRV_JOB_H
#define ADX_SRV_JOB_H

#include <stdbool.h>

typedef enum srv_job_state {
    SRV_JOB_QUEUED = 0,
    SRV_JOB_RUNNING,
    SRV_JOB_SUCCEEDED,
    SRV_JOB_FAILED,
    SRV_JOB_CANCELED,
    SRV_JOB_EXPIRED,
    SRV_JOB_RECEIVING,
    SRV_JOB_VALIDATING,
    SRV_JOB__COUNT
} srv_job_state;

typedef enum srv_job_event {
    SRV_EV_START = 0,
    SRV_EV_SUCCEED,
    SRV_EV_FAIL,
    SRV_EV_CANCEL,
    SRV_EV_EXPIRE,
    SRV_EV_INTERRUPT,
    SRV_EV_RECEIVED, /* the whole body is spooled */
    SRV_EV_ACCEPT,   /* the body is valid and durable: the 202 */
} srv_job_event;

/* The next state, or -1 when the event is not allowed in `s`. */
int srv_job_next(srv_job_state s, srv_job_event ev);
const char *srv_job_state_name(srv_job_state s);
/* -1 when the name is unknown. */
int srv_job_state_parse(const char *name);
static inline bool srv_job_terminal(srv_job_state s)
{
    return s >= SRV_JOB_SUCCEEDED && s <= SRV_JOB_EXPIRED;
}

#endif
