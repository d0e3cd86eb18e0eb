/* placeholder: replaced by the sanitize stage */
#include "adx_sanitize.h"
int san_anndata(ad_anndata *a, const adx_limits *lim, adx_report *rep, adx_err *err)
{
    return adx_err_set(err, ADX_E_INTERNAL, "", "sanitize not built yet");
}
int san_object_to_strings(const ad_object *o, ad_array *out, const char **action,
                          uint64_t *count, adx_err *err)
{
    return adx_err_set(err, ADX_E_INTERNAL, "", "sanitize not built yet");
}
int san_strings_to_categoricals(ad_anndata *a, adx_err *err)
{
    return adx_err_set(err, ADX_E_INTERNAL, "", "sanitize not built yet");
}
