/* Timing of the sanitize stage on large columns, printed, never asserted:
 *   bench_sanitize [rows]
 * 1. an object column (1/3 null, 1/3 string, 1/3 int) → strings
 * 2. strings_to_categoricals on a column with 1000 distinct values
 * 3. strings_to_categoricals on a column with rows/2 distinct values */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adx_sanitize.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static ad_elem *object_column(uint64_t n)
{
    ad_elem *e = ad_elem_new(AD_K_OBJECT);
    ad_object *o = &e->u.obj;
    o->ndim = 1;
    o->shape[0] = o->n = n;
    o->kind = malloc(n);
    o->num = calloc(n, sizeof(ad_num));
    o->soff = malloc((n + 1) * sizeof(uint64_t));
    o->str = malloc(n * 12 + 1);
    if (!o->kind || !o->num || !o->soff || !o->str) exit(2);
    uint64_t off = 0;
    o->soff[0] = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (i % 3 == 1) {
            o->kind[i] = AD_CELL_STR;
            off += (uint64_t)sprintf(o->str + off, "p%" PRIu64, i % 100000);
        } else {
            o->kind[i] = i % 3 ? AD_CELL_INT : AD_CELL_NULL;
            o->num[i].i = (int64_t)i;
        }
        o->str[off++] = '\0';
        o->soff[i + 1] = off;
    }
    return e;
}

static ad_elem *string_column(uint64_t n, uint64_t distinct)
{
    ad_strbuild b = {0};
    char tmp[32];
    for (uint64_t i = 0; i < n; i++) {
        int len = snprintf(tmp, sizeof tmp, "group_%" PRIu64, (i * 7919) % distinct);
        if (ad_sb_push(&b, tmp, (size_t)len) < 0) exit(2);
    }
    ad_array a;
    if (ad_sb_finish(&b, &a, 1, NULL) < 0) exit(2);
    return ad_elem_from_array(&a);
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    adx_err err;
    adx_err_init(&err);
    adx_report rep = {0};

    ad_anndata *a = ad_anndata_new();
    ad_frame_default_index(&a->obs, n);
    ad_frame_add(&a->obs, "mixed", object_column(n));
    double t = now();
    if (san_anndata(a, NULL, &rep, &err) < 0) return 1;
    printf("san_anndata, %" PRIu64 " object cells: %.3f s\n", n, now() - t);
    ad_anndata_free(a);

    uint64_t distinct[2] = {1000, n / 2};
    for (int k = 0; k < 2; k++) {
        a = ad_anndata_new();
        ad_frame_default_index(&a->obs, n);
        ad_frame_add(&a->obs, "c", string_column(n, distinct[k]));
        t = now();
        if (san_strings_to_categoricals(a, &err) < 0) return 1;
        printf("strings_to_categoricals, %" PRIu64 " rows, %" PRIu64 " distinct: %.3f s\n", n,
               distinct[k], now() - t);
        ad_anndata_free(a);
    }
    rep_free(&rep);
    return 0;
}
