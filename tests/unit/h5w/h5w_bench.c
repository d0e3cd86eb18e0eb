/* Times writing a 4000 x 1000 float64 X (40% NaN, rest -1/0/1) with our
 * direct chunk path (h5w_write) against HDF5's own filter pipeline
 * (H5Dwrite with H5Pset_deflate / the lzf filter, same chunk shape), alone
 * and as two writers on two files at once -- the daemon's case, where the
 * pipeline serializes on HDF5's global lock:
 *   h5w_bench DIR [gzip|lzf] [level]
 * Not a test: timings depend on the machine and its load. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hdf5.h>

#include "adx_h5w.h"
#include "h5w_internal.h"

#define REPEATS 5

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct job {
    const ad_anndata *a;
    bool lzf, direct;
    int level, threads;
    char path[1024];
    int rc;
} job;

static void *run(void *arg)
{
    job *j = arg;
    if (j->direct) {
        h5w_opts o;
        h5w_opts_default(&o);
        o.compression = j->lzf ? ADX_COMP_LZF : ADX_COMP_GZIP;
        o.level = j->level;
        o.threads = j->threads;
        adx_report rep = {0};
        adx_err err;
        adx_err_init(&err);
        j->rc = h5w_write(j->a, j->path, &o, NULL, &rep, &err);
        rep_free(&rep);
        return NULL;
    }
    const ad_array *x = &j->a->X->u.arr;
    uint64_t ch[2];
    h5w_guess_chunk(2, x->shape, 8, ch);
    hsize_t dims[2] = {x->shape[0], x->shape[1]}, cd[2] = {ch[0], ch[1]};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(j->path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 2, cd);
    if (j->lzf)
        H5Pset_filter(pl, H5W_LZF_FILTER_ID, H5Z_FLAG_OPTIONAL, 0, NULL);
    else
        H5Pset_deflate(pl, (unsigned)j->level);
    hid_t d = H5Dcreate2(f, "X", H5T_IEEE_F64LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    j->rc = H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x->data) < 0 ? -1 : 0;
    H5Dclose(d);
    H5Pclose(pl);
    H5Sclose(sp);
    if (H5Fclose(f) < 0) j->rc = -1;
    return NULL;
}

/* Runs `n` writers at once; returns wall seconds, CPU seconds in *cpu. */
static double timed(job *jobs, int n, double *cpu)
{
    pthread_t t[2];
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, run, &jobs[i]);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    *cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    for (int i = 0; i < n; i++)
        if (jobs[i].rc < 0) {
            fprintf(stderr, "a writer failed\n");
            exit(1);
        }
    return clock_s(CLOCK_MONOTONIC) - w0;
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
    if (lzf) h5w_lzf_register();

    static const struct {
        const char *what;
        bool direct;
        int threads, writers;
    } runs[] = {
        {"direct chunk write, 1 thread     ", true, 1, 1},
        {"direct chunk write, auto threads ", true, 0, 1},
        {"HDF5 filter pipeline (H5Dwrite)  ", false, 1, 1},
        {"2 writers at once, direct 1 thr  ", true, 1, 2},
        {"2 writers at once, HDF5 pipeline ", false, 1, 2},
    };
    uint64_t ch[2];
    h5w_guess_chunk(2, shape, 8, ch);
    printf("%s %d, 4000x1000 float64, chunks %llux%llu: best of %d, wall s (cpu s)\n",
           lzf ? "lzf" : "gzip", lzf ? 0 : level, (unsigned long long)ch[0],
           (unsigned long long)ch[1], REPEATS);
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        job jobs[2];
        for (int i = 0; i < runs[r].writers; i++) {
            jobs[i] = (job){.a = a,
                            .lzf = lzf,
                            .direct = runs[r].direct,
                            .level = level,
                            .threads = runs[r].threads};
            snprintf(jobs[i].path, sizeof jobs[i].path, "%s/bench%d.h5", argv[1], i);
        }
        /* Best of several: the minimum is what the code costs, the rest is
         * other load on the machine. */
        double best = 1e30, best_cpu = 0;
        for (int rep = 0; rep < REPEATS; rep++) {
            double cpu, wall = timed(jobs, runs[r].writers, &cpu);
            if (wall < best) best = wall, best_cpu = cpu;
        }
        printf("  %s %.3f (%.3f)\n", runs[r].what, best, best_cpu);
    }
    ad_anndata_free(a);
    return 0;
}
