/* Times writing a 4000 x 1000 float64 X (40% NaN, rest -1/0/1) with our
 * direct chunk path (h5w_write) against HDF5's own filter pipeline
 * (H5Dwrite with H5Pset_deflate / the lzf filter, same chunk shape):
 *   h5w_bench DIR [gzip|lzf] [level]
 * Not a test: timings depend on the machine. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hdf5.h>

#include "adx_h5w.h"
#include "h5w_internal.h"

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* CPU time of all threads: comparable even on a loaded machine. */
static double cpu(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [gzip|lzf] [level]\n", argv[0]);
        return 2;
    }
    bool lzf = argc > 2 && strcmp(argv[2], "lzf") == 0;
    int level = argc > 3 ? atoi(argv[3]) : 4;
    uint64_t shape[2] = {4000, 1000};
    ad_anndata *a = ad_anndata_new();
    ad_array x;
    if (!a || ad_array_init(&x, AD_F64, 2, shape) < 0) return 1;
    double *v = x.data;
    uint64_t s = 88172645463325252ull;
    for (uint64_t i = 0; i < x.n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        v[i] = s % 10 < 4 ? NAN : (double)((int)(s % 3) - 1);
    }
    a->X = ad_elem_from_array(&x);

    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s/bench_direct.h5ad", argv[1]);
    snprintf(p2, sizeof p2, "%s/bench_pipeline.h5", argv[1]);

    h5w_opts o;
    h5w_opts_default(&o);
    o.compression = lzf ? ADX_COMP_LZF : ADX_COMP_GZIP;
    o.level = level;
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    double t_direct[2], c_direct[2];
    for (int k = 0; k < 2; k++) {
        o.threads = k == 0 ? 1 : 0;
        double t0 = now(), c0 = cpu();
        if (h5w_write(a, p1, &o, NULL, &rep, &err) < 0) {
            fprintf(stderr, "h5w_write: %s\n", err.detail);
            return 1;
        }
        t_direct[k] = now() - t0;
        c_direct[k] = cpu() - c0;
    }

    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    h5lzf_register();
    uint64_t ch[2];
    h5w_guess_chunk(2, shape, 8, ch);
    hsize_t dims[2] = {4000, 1000}, cd[2] = {ch[0], ch[1]};
    double t0 = now(), c0 = cpu();
    hid_t f = H5Fcreate(p2, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 2, cd);
    if (lzf)
        H5Pset_filter(pl, H5W_LZF_FILTER_ID, H5Z_FLAG_OPTIONAL, 0, NULL);
    else
        H5Pset_deflate(pl, (unsigned)level);
    hid_t d = H5Dcreate2(f, "X", H5T_IEEE_F64LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    herr_t rc = H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->X->u.arr.data);
    H5Dclose(d);
    H5Pclose(pl);
    H5Sclose(sp);
    H5Fclose(f);
    double t_pipe = now() - t0, c_pipe = cpu() - c0;
    if (rc < 0) {
        fprintf(stderr, "H5Dwrite failed\n");
        return 1;
    }
    printf("%s%s, chunks %llux%llu, wall (cpu) seconds:\n"
           "  direct chunk write, 1 thread:     %.3f (%.3f)\n"
           "  direct chunk write, auto threads: %.3f (%.3f)\n"
           "  HDF5 filter pipeline (H5Dwrite):  %.3f (%.3f)\n",
           lzf ? "lzf" : "gzip ",
           lzf        ? ""
           : argc > 3 ? argv[3]
                      : "4",
           (unsigned long long)ch[0], (unsigned long long)ch[1], t_direct[0], c_direct[0],
           t_direct[1], c_direct[1], t_pipe, c_pipe);
    rep_free(&rep);
    ad_anndata_free(a);
    return 0;
}
