/* placeholder: replaced by the JSON decoder */
#include "adx_jdec.h"
ad_anndata *jdec_anndata(const json_t *adata, const jdec_opts *o, adx_report *rep, adx_err *err)
{
    adx_err_set(err, ADX_E_INTERNAL, "", "JSON decoder not built yet");
    return NULL;
}
json_t *jdec_load_buffer(const char *buf, size_t len, const adx_limits *lim, adx_err *err)
{
    adx_err_set(err, ADX_E_INTERNAL, "", "JSON decoder not built yet");
    return NULL;
}
json_t *jdec_load_file(const char *path, const adx_limits *lim, adx_err *err)
{
    adx_err_set(err, ADX_E_INTERNAL, "", "JSON decoder not built yet");
    return NULL;
}
