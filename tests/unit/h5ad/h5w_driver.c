/* Writes the sample model (sample_model.c) to an h5ad file so the Python
 * integration test can read it with anndata and h5py:
 *   h5w_driver OUT.h5ad gzip|lzf|none [LEVEL]
 * Prints the job report as JSON on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_h5w.h"
#include "sample_model.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUT.h5ad gzip|lzf|none [level]\n", argv[0]);
        return 2;
    }
    h5w_opts o;
    h5w_opts_default(&o);
    if (strcmp(argv[2], "gzip") == 0)
        o.compression = ADX_COMP_GZIP;
    else if (strcmp(argv[2], "lzf") == 0)
        o.compression = ADX_COMP_LZF;
    else if (strcmp(argv[2], "none") == 0)
        o.compression = ADX_COMP_NONE;
    else {
        fprintf(stderr, "unknown compression %s\n", argv[2]);
        return 2;
    }
    if (argc > 3) o.level = atoi(argv[3]);

    ad_anndata *a = sample_model();
    if (!a) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    int rc = h5w_write(a, argv[1], &o, NULL, &rep, &err);
    if (rc < 0) {
        fprintf(stderr, "h5w_write: %s (at '%s')\n", err.detail,
                err.n_items ? err.items[0].pointer : "");
    } else {
        json_t *j = rep_to_json(&rep);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        printf("%s\n", s ? s : "[]");
        free(s);
        json_decref(j);
    }
    rep_free(&rep);
    ad_anndata_free(a);
    return rc < 0 ? 1 : 0;
}
