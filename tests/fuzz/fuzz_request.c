/* A request document through the stable pipeline API: JSON decoding
 * (pipe_load_buffer), then sanitize and the include filter (pipe_prepare),
 * then the result JSON, all in memory. Whatever the decoder is rewritten
 * into, this stays the path a POSTed body takes before anything is written. */
#include <jansson.h>

#include <stdlib.h>
#include <string.h>

#include "adx_pipeline.h"
#include "fuzz_common.h"
#include "jdec_tree.h"

/* One pass of the input through the pipeline: 0, or -1 with err set; the
 * result JSON (malloc'd) when it succeeded. */
static int run(const uint8_t *data, size_t size, adx_err *err, char **out)
{
    adx_limits lim;
    fuzz_limits(&lim);
    adx_err_init(err);
    *out = NULL;
    pipe_job *j = pipe_load_buffer((const char *)data, size, &lim, err);
    if (!j) {
        if (!adx_err_failed(err)) abort(); /* a failure must say why */
        return -1;
    }
    adx_err_init(err);
    if (pipe_prepare(j, err) < 0) {
        if (!adx_err_failed(err)) abort();
        pipe_free(j);
        return -1;
    }
    json_t *r = pipe_result_json(j, "fuzz");
    if (r) {
        *out = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(r);
    }
    pipe_free(j);
    return 0;
}

/* Twice: as the decoder runs, and with every numeric array packed however
 * small (jdec_tree.h). Packing must change nothing a client sees: the same
 * result, or the same error at the same pointer (memory limits aside, whose
 * accounting differs by design). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    adx_err e1, e2;
    char *o1, *o2;
    jv_pack_min_set(JV_PACK_MIN);
    int r1 = run(data, size, &e1, &o1);
    jv_pack_min_set(0);
    int r2 = run(data, size, &e2, &o2);
    jv_pack_min_set(JV_PACK_MIN);
    bool limits = (r1 && (e1.type == ADX_E_LIMIT || e1.type == ADX_E_NOMEM)) ||
                  (r2 && (e2.type == ADX_E_LIMIT || e2.type == ADX_E_NOMEM));
    if (!limits) {
        if (r1 != r2) abort();
        if (r1 && (e1.type != e2.type || strcmp(e1.detail, e2.detail) ||
                   (e1.n_items && strcmp(e1.items[0].pointer, e2.items[0].pointer))))
            abort();
        if (!r1 && (!o1 != !o2 || (o1 && strcmp(o1, o2)))) abort();
    }
    free(o1);
    free(o2);
    return 0;
}
