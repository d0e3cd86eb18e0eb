/* Linked only while the npz writer's library is not part of the build, so
 * the pipeline (and the CLI) still link; an npz request then fails cleanly. */
#include "adx_npz.h"

int npz_write(const ad_anndata *a, const char *path, adx_compression compression, int level,
              const adx_ctl *ctl, adx_report *rep, adx_err *err)
{
    return adx_err_set(err, ADX_E_INTERNAL, "", "the npz writer is not part of this build");
}
