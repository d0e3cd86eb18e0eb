/* placeholder: replaced by the pipeline */
#include "adx_pipeline.h"
pipe_job *pipe_load_file(const char *request_path, const adx_limits *lim, adx_err *err)
{
    adx_err_set(err, ADX_E_INTERNAL, "", "pipeline not built yet");
    return 0;
}
pipe_job *pipe_load_buffer(const char *buf, size_t len, const adx_limits *lim, adx_err *err)
{
    adx_err_set(err, ADX_E_INTERNAL, "", "pipeline not built yet");
    return 0;
}
int pipe_prepare(pipe_job *j, adx_err *err) { return -1; }
int pipe_write(pipe_job *j, const char *out_path, const adx_ctl *ctl, adx_err *err) { return -1; }
const adx_request *pipe_request(const pipe_job *j) { return 0; }
json_t *pipe_result_json(const pipe_job *j, const char *job_id) { return 0; }
void pipe_free(pipe_job *j) {}
