/* placeholder: replaced by the h5ad writer */
#include "adx_h5w.h"
void h5w_opts_default(h5w_opts *o)
{
    o->compression = ADX_COMP_GZIP;
    o->level = 4;
}
int h5w_write(const ad_anndata *a, const char *path, const h5w_opts *o, const adx_ctl *ctl,
              adx_report *rep, adx_err *err)
{
    return adx_err_set(err, ADX_E_INTERNAL, "", "h5ad writer not built yet");
}
