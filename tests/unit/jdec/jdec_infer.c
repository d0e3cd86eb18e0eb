/* Test driver: decode a request file and print, for each uns entry, how the
 * decoder typed it ("key kind dtype d0,d1,..."; a DataFrame entry reports its
 * first column; one named "df_*" reports its rows, index and every column),
 * so a Python test can compare the inference with numpy's and pandas'. Exit 2 with the error on
 * stderr on failure. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adx_jdec.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s request.json\n", argv[0]);
        return 1;
    }
    adx_limits lim;
    adx_limits_default(&lim);
    adx_err err;
    adx_err_init(&err);
    adx_report rep = {0};
    jdec_opts o = {.limits = &lim, .base_ptr = "/adata"};
    jdec_doc *doc = jdec_read_file(argv[1], &(jdec_opts){.limits = &lim}, &err);
    ad_anndata *a = doc ? jdec_doc_anndata(doc, "adata", &o, &rep, &err) : NULL;
    jdec_doc_free(doc);
    if (!a) {
        fprintf(stderr, "%s: %s\n", err.n_items ? err.items[0].pointer : "", err.detail);
        rep_free(&rep);
        return 2;
    }
    for (size_t i = 0; i < a->uns.n; i++) {
        const ad_elem *e = a->uns.vals[i];
        if (e->kind == AD_K_FRAME && !strncmp(a->uns.keys[i], "df_", 3)) {
            /* whole frames: rows, index, then "key/column kind dtype" lines */
            const ad_frame *f = &e->u.df;
            printf("%s rows %" PRIu64 " index", a->uns.keys[i], f->n_rows);
            for (uint64_t r = 0; r < f->n_rows; r++)
                printf(" %s", ad_str_at(&f->index, r));
            printf("\n");
            for (size_t c = 0; c < f->ncols; c++)
                printf("%s/%s %s %s\n", a->uns.keys[i], f->names[c], ad_elem_encoding(f->cols[c]),
                       f->cols[c]->kind == AD_K_ARRAY ? ad_dtype_name(f->cols[c]->u.arr.dtype)
                                                      : "-");
            continue;
        }
        /* other DataFrames stand for their first column (column inference) */
        if (e->kind == AD_K_FRAME && e->u.df.ncols) e = e->u.df.cols[0];
        const char *dt = "-";
        int nd = 0;
        const uint64_t *sh = NULL;
        if (e->kind == AD_K_ARRAY) {
            dt = ad_dtype_name(e->u.arr.dtype);
            nd = e->u.arr.ndim;
            sh = e->u.arr.shape;
        } else if (e->kind == AD_K_OBJECT) {
            nd = e->u.obj.ndim;
            sh = e->u.obj.shape;
        }
        printf("%s %s %s ", a->uns.keys[i], ad_elem_encoding(e), dt);
        for (int k = 0; k < nd; k++)
            printf("%s%" PRIu64, k ? "," : "", sh[k]);
        printf("\n");
    }
    ad_anndata_free(a);
    rep_free(&rep);
    return 0;
}
