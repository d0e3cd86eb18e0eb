/* Writes the sample model (sample_model.c) to an h5ad file so the Python
 * integration test can read it with anndata and h5py:
 *   h5w_driver OUT.h5ad gzip|lzf|none [LEVEL [--empty]]
 * Prints the job report as JSON on stdout.
 *   h5w_driver --read-sum FILE DATASET
 * prints the sum of an integer dataset read with our lzf filter. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "adx_h5w.h"
#include "sample_model.h"

/* Reads an int64 dataset through HDF5 with our lzf filter registered and
 * prints the sum of its values: lets the Python test check that chunks
 * compressed by h5py's lzf decode here. */
static int read_sum(const char *path, const char *dset)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (h5w_lzf_register() < 0) return 1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, dset, H5P_DEFAULT) : H5I_INVALID_HID;
    hid_t s = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    int64_t *v = n > 0 ? malloc((size_t)n * sizeof *v) : NULL;
    int rc = 1;
    if (v && H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) {
        long long sum = 0;
        for (hssize_t i = 0; i < n; i++)
            sum += v[i];
        printf("%lld\n", sum);
        rc = 0;
    }
    free(v);
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    if (f >= 0) H5Fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--read-sum") == 0) return read_sum(argv[2], argv[3]);
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

    /* "--empty" after the level: no X, 3 observations, no variables */
    bool empty = argc > 4 && strcmp(argv[4], "--empty") == 0;
    ad_anndata *a = empty ? ad_anndata_new() : sample_model();
    if (a && empty) {
        a->n_obs = 3;
        a->obs.n_rows = 3;
        if (ad_frame_default_index(&a->obs, 3) < 0) {
            ad_anndata_free(a);
            a = NULL;
        }
    }
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
