/* A request document through the stable pipeline API: JSON decoding
 * (pipe_load_buffer), then sanitize and the include filter (pipe_prepare),
 * then the result JSON, all in memory. Whatever the decoder is rewritten
 * into, this stays the path a POSTed body takes before anything is written. */
#include <jansson.h>

#include "adx_pipeline.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    adx_limits lim;
    fuzz_limits(&lim);
    adx_err err;
    adx_err_init(&err);
    pipe_job *j = pipe_load_buffer((const char *)data, size, &lim, &err);
    if (!j) {
        if (!adx_err_failed(&err)) abort(); /* a failure must say why */
        return 0;
    }
    adx_err_init(&err);
    if (pipe_prepare(j, &err) < 0 && !adx_err_failed(&err)) abort();
    json_t *r = pipe_result_json(j, "fuzz");
    if (r) {
        char *s = json_dumps(r, JSON_COMPACT);
        free(s);
        json_decref(r);
    }
    pipe_free(j);
    return 0;
}
