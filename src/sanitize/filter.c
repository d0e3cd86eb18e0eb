/* placeholder: replaced by the include filter */
#include "adx_filter.h"
int flt_validate(const char *const *paths, size_t n, const char *ptr_base, adx_err *err)
{
    return adx_err_set(err, ADX_E_INTERNAL, "", "filter not built yet");
}
int flt_apply(ad_anndata *a, const char *const *paths, size_t n, const char *ptr_base,
              adx_report *rep, adx_err *err)
{
    return adx_err_set(err, ADX_E_INTERNAL, "", "filter not built yet");
}
