/* Linked only while the csv bundle writer's library is not part of the
 * build, so the pipeline (and the CLI) still link; a csv/txt request then
 * fails cleanly. */
#include "adx_csvb.h"

int csvb_write(const ad_anndata *a, const char *path, char sep, const adx_limits *lim,
               const adx_ctl *ctl, adx_report *rep, adx_err *err)
{
    return adx_err_set(err, ADX_E_INTERNAL, "", "the csv bundle writer is not part of this build");
}
