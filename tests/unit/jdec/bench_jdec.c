/* Manual benchmark (not a test): parse and decode a request file, print the
 * time of each stage. Usage: bench_jdec request.json [repeats]
 * "bench_jdec --base64" times the base64 loop alone on 16 MiB of text into
 * a buffer already in memory (the decoder's own speed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adx_jdec.h"
#include "jdec_tree.h"

/* CPU time of this process: the machine may be busy, wall time is noisy. */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int bench_base64(void)
{
    size_t n = 16u << 20, w = 0;
    char *t = malloc(n);
    uint8_t *o = malloc(n / 4 * 3 + 16);
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i++)
        t[i] = al[(i * 2654435761u >> 7) & 63];
    jv_b64_decode(t, n, o, &w); /* warm up: pages and caches */
    double best = 1e9;
    for (int r = 0; r < 20; r++) {
        double t0 = now();
        size_t used = jv_b64_decode(t, n, o, &w);
        double dt = now() - t0;
        if (used != n) return 1;
        if (dt < best) best = dt;
    }
    printf("base64 loop: %.0f MB of text in %.4f s = %.2f GB/s (best of 20)\n", n / 1e6, best,
           n / best / 1e9);
    free(t);
    free(o);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s request.json [repeats]\n", argv[0]);
        return 2;
    }
    if (!strcmp(argv[1], "--base64")) return bench_base64();
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    adx_limits lim;
    adx_limits_default(&lim);
    for (int r = 0; r < reps; r++) {
        adx_err err;
        adx_err_init(&err);
        adx_report rep = {0};
        double t0 = now();
        jdec_doc *doc = jdec_read_file(argv[1], &(jdec_opts){.limits = &lim}, &err);
        double t1 = now();
        if (!doc) {
            fprintf(stderr, "load: %s\n", err.detail);
            return 1;
        }
        bool req = jdec_doc_has(doc, "adata");
        jdec_opts o = {.limits = &lim, .base_ptr = req ? "/adata" : ""};
        ad_anndata *a = jdec_doc_anndata(doc, req ? "adata" : NULL, &o, &rep, &err);
        double t2 = now();
        if (!a) {
            fprintf(stderr, "decode: %s at %s\n", err.detail, err.items[0].pointer);
            return 1;
        }
        printf("cpu: parse %.3f s, decode %.3f s, model %llu bytes, n_obs %llu n_vars %llu\n",
               t1 - t0, t2 - t1, (unsigned long long)ad_anndata_bytes(a),
               (unsigned long long)a->n_obs, (unsigned long long)a->n_vars);
        ad_anndata_free(a);
        rep_free(&rep);
        jdec_doc_free(doc);
    }
    return 0;
}
