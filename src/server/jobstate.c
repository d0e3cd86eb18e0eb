/* Job state machine (see adx_srv_job.h). */
#include "adx_srv_job.h"

#include <string.h>

static const char *names[SRV_JOB__COUNT] = {"queued",   "running", "succeeded", "failed",
                                            "canceled", "expired", "receiving", "validating"};

int srv_job_next(srv_job_state s, srv_job_event ev)
{
    switch (s) {
    case SRV_JOB_QUEUED:
        if (ev == SRV_EV_START) return SRV_JOB_RUNNING;
        if (ev == SRV_EV_CANCEL) return SRV_JOB_CANCELED;
        return -1;
    case SRV_JOB_RUNNING:
        if (ev == SRV_EV_SUCCEED) return SRV_JOB_SUCCEEDED;
        if (ev == SRV_EV_FAIL) return SRV_JOB_FAILED;
        if (ev == SRV_EV_CANCEL) return SRV_JOB_CANCELED;
        if (ev == SRV_EV_INTERRUPT) return SRV_JOB_QUEUED;
        return -1;
    case SRV_JOB_RECEIVING:
        if (ev == SRV_EV_RECEIVED) return SRV_JOB_VALIDATING;
        if (ev == SRV_EV_CANCEL) return SRV_JOB_CANCELED;
        return -1;
    case SRV_JOB_VALIDATING:
        if (ev == SRV_EV_ACCEPT) return SRV_JOB_QUEUED;
        if (ev == SRV_EV_CANCEL) return SRV_JOB_CANCELED;
        return -1;
    case SRV_JOB_SUCCEEDED:
        return ev == SRV_EV_EXPIRE ? SRV_JOB_EXPIRED : -1;
    default:
        return -1;
    }
}

const char *srv_job_state_name(srv_job_state s)
{
    return (unsigned)s < SRV_JOB__COUNT ? names[s] : "unknown";
}

int srv_job_state_parse(const char *name)
{
    for (int i = 0; name && i < SRV_JOB__COUNT; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}
