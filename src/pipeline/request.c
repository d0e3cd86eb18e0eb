/* placeholder: replaced by request option parsing */
#include "adx_request.h"
int req_parse(const json_t *root, adx_request *r, adx_err *err)
{
    return adx_err_set(err, ADX_E_INTERNAL, "", "request parsing not built yet");
}
void req_free(adx_request *r) {}
char *req_filename(const adx_request *r, const char *job_id) { return 0; }
