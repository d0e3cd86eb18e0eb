/* Request options: req_parse in both modes on a JSON document (the
 * options of a POSTed request and of a file export), then the helpers the
 * daemon builds answers with. */
#include <jansson.h>

#include "adx_request.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (root) {
        for (int mode = REQ_REQUEST; mode <= REQ_OPTIONS; mode++) {
            adx_request r;
            adx_err err;
            adx_err_init(&err);
            if (req_parse_mode(root, (req_mode)mode, &r, &err) == 0) {
                char *name = req_filename(&r, mode ? NULL : "JOB");
                if (!name) abort();
                adx_format f;
                /* A name the parser accepted is a valid download name. */
                adx_err e2;
                adx_err_init(&e2);
                if (req_check_filename(name, strlen(name), "/filename", &e2) < 0) abort();
                (void)req_format_from_filename(name, &f);
                free(name);
                req_free(&r);
            } else if (!adx_err_failed(&err)) {
                abort();
            }
        }
        json_decref(root);
    }
    /* The raw bytes as a download name (they may hold NUL bytes). */
    adx_err err;
    adx_err_init(&err);
    (void)req_check_filename((const char *)data, size, "/filename", &err);
    return 0;
}
