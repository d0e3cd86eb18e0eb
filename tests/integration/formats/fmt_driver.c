/* Builds, by hand, a model that exercises every element kind and dtype the
 * npz and csv writers accept, and writes it:
 *
 *   fmt_driver <x-kind> <format> <out>   x-kind: csr | csc | dense | none | empty
 *                                        format: npz-gzip | npz-store | csv | txt
 *   fmt_driver big <out> <level|csv>     4000x1000 float64, 40% NaN, npz or csv
 *
 * The report is printed to stdout as JSON. test_formats.py builds the very
 * same object with anndata and compares. Keep both in step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adx_csvb.h"
#include "adx_npz.h"

#define N_OBS 4
#define N_VARS 3

static void die(const char *what)
{
    fprintf(stderr, "fmt_driver: %s\n", what);
    exit(2);
}

static ad_elem *arr(ad_dtype t, int ndim, const uint64_t *shape, const void *vals)
{
    ad_array a;
    if (ad_array_init(&a, t, ndim, shape) < 0) die("alloc");
    size_t nb;
    if (ad_bytes(t, a.n, &nb) < 0) die("size");
    memcpy(a.data, vals, nb);
    ad_elem *e = ad_elem_from_array(&a);
    if (!e) die("alloc");
    return e;
}

static ad_elem *arr1(ad_dtype t, uint64_t n, const void *vals)
{
    return arr(t, 1, &n, vals);
}

static void strs(ad_array *a, const char *const *s, uint64_t n)
{
    if (ad_array_from_cstrs(a, s, n) < 0) die("alloc");
}

static ad_elem *str_elem(const char *const *s, uint64_t n, int ndim)
{
    ad_array a;
    strs(&a, s, n);
    a.ndim = ndim;
    ad_elem *e = ad_elem_from_array(&a);
    if (!e) die("alloc");
    return e;
}

static void put(ad_dict *d, const char *k, ad_elem *v)
{
    if (ad_dict_put(d, k, v) < 0) die("dict");
}

static void col(ad_frame *f, const char *k, ad_elem *v)
{
    if (ad_frame_add(f, k, v) < 0) die("frame");
}

static ad_elem *sparse(bool csc, uint64_t r, uint64_t c, ad_dtype dt, uint64_t nnz,
                       const void *data, ad_dtype it, const void *idx, const void *ptr)
{
    ad_elem *e = ad_elem_new(AD_K_SPARSE);
    if (!e) die("alloc");
    ad_sparse *s = &e->u.sp;
    s->csc = csc;
    s->shape[0] = r;
    s->shape[1] = c;
    uint64_t np1 = (csc ? c : r) + 1;
    size_t nb;
    if (ad_array_init(&s->data, dt, 1, &nnz) < 0 || ad_array_init(&s->indices, it, 1, &nnz) < 0 ||
        ad_array_init(&s->indptr, it, 1, &np1) < 0)
        die("alloc");
    ad_bytes(dt, nnz, &nb);
    memcpy(s->data.data, data, nb);
    ad_bytes(it, nnz, &nb);
    memcpy(s->indices.data, idx, nb);
    ad_bytes(it, np1, &nb);
    memcpy(s->indptr.data, ptr, nb);
    return e;
}

static ad_elem *categorical(ad_dtype ct, const int8_t *codes, uint64_t n, ad_elem *cats,
                            bool ordered)
{
    ad_elem *e = ad_elem_new(AD_K_CATEGORICAL);
    if (!e) die("alloc");
    if (ad_array_init(&e->u.cat.codes, ct, 1, &n) < 0) die("alloc");
    for (uint64_t i = 0; i < n; i++) {
        if (ct == AD_I8)
            ((int8_t *)e->u.cat.codes.data)[i] = codes[i];
        else
            ((int32_t *)e->u.cat.codes.data)[i] = codes[i];
    }
    e->u.cat.categories = cats->u.arr;
    memset(&cats->u.arr, 0, sizeof cats->u.arr);
    ad_elem_free(cats);
    e->u.cat.ordered = ordered;
    return e;
}

static ad_elem *nullable(ad_kind k, ad_dtype vt, const void *vals, const uint8_t *mask, uint64_t n)
{
    ad_elem *e = ad_elem_new(k);
    if (!e) die("alloc");
    ad_elem *v = arr1(vt, n, vals), *m = arr1(AD_BOOL, n, mask);
    e->u.nl.values = v->u.arr;
    e->u.nl.mask = m->u.arr;
    memset(&v->u.arr, 0, sizeof v->u.arr);
    memset(&m->u.arr, 0, sizeof m->u.arr);
    ad_elem_free(v);
    ad_elem_free(m);
    return e;
}

static void frame_index(ad_frame *f, const char *const *names, uint64_t n, const char *iname)
{
    f->n_rows = n;
    strs(&f->index, names, n);
    if (iname && !(f->index_name = strdup(iname))) die("alloc");
}

static ad_anndata *build(const char *xkind)
{
    ad_anndata *a = ad_anndata_new();
    if (!a) die("alloc");
    if (!strcmp(xkind, "empty")) return a; /* AnnData() */
    a->n_obs = N_OBS;
    a->n_vars = N_VARS;
    uint64_t xs[2] = {N_OBS, N_VARS};
    /* X = [[1.5, 0, 0], [0, 0, -2], [0, 3.25, NaN], [0, 0, 0]] */
    if (!strcmp(xkind, "csr")) {
        double d[] = {1.5, -2, 3.25, NAN};
        int32_t ix[] = {0, 2, 1, 2}, ip[] = {0, 1, 2, 4, 4};
        a->X = sparse(false, N_OBS, N_VARS, AD_F64, 4, d, AD_I32, ix, ip);
    } else if (!strcmp(xkind, "csc")) {
        float d[] = {1.5f, 3.25f, -2, NAN};
        int64_t ix[] = {0, 2, 1, 2}, ip[] = {0, 1, 2, 4};
        a->X = sparse(true, N_OBS, N_VARS, AD_F32, 4, d, AD_I64, ix, ip);
    } else if (!strcmp(xkind, "dense")) {
        double d[] = {1.5, 0, 0, 0, 0, -2, 0, 3.25, NAN, 0, 0, 0};
        a->X = arr(AD_F64, 2, xs, d);
    } else if (strcmp(xkind, "none") != 0) {
        die("x-kind");
    }

    const char *obs_names[] = {"c1", "c2", "ç3", "c,4"};
    frame_index(&a->obs, obs_names, N_OBS, "cell-id");
    uint8_t b[] = {1, 0, 1, 1};
    int8_t i8[] = {-1, 2, 3, -128};
    int16_t i16[] = {-300, 0, 1, 32767};
    int32_t i32[] = {-70000, 1, 2, 3};
    int64_t i64[] = {-5000000000LL, 0, 1, 9007199254740993LL};
    uint8_t u8[] = {0, 1, 200, 255};
    uint16_t u16[] = {0, 1, 60000, 65535};
    uint32_t u32[] = {0, 1, 4000000000u, 7};
    uint64_t u64[] = {0, 1, 18446744073709551615ull, 42};
    float f32[] = {0.1f, NAN, 1e20f, -2.5f};
    double f64[] = {0.1, NAN, -INFINITY, 1e-5};
    col(&a->obs, "b", arr1(AD_BOOL, 4, b));
    col(&a->obs, "i8", arr1(AD_I8, 4, i8));
    col(&a->obs, "i16", arr1(AD_I16, 4, i16));
    col(&a->obs, "i32", arr1(AD_I32, 4, i32));
    col(&a->obs, "i64", arr1(AD_I64, 4, i64));
    col(&a->obs, "u8", arr1(AD_U8, 4, u8));
    col(&a->obs, "u16", arr1(AD_U16, 4, u16));
    col(&a->obs, "u32", arr1(AD_U32, 4, u32));
    col(&a->obs, "u64", arr1(AD_U64, 4, u64));
    col(&a->obs, "f32", arr1(AD_F32, 4, f32));
    col(&a->obs, "f64", arr1(AD_F64, 4, f64));
    const char *s[] = {"a", "b,c", "q\"r", "日本\nx"};
    col(&a->obs, "s", str_elem(s, 4, 1));
    int64_t kc[] = {0, 1, -1};
    int8_t kcodes[] = {0, 2, -1, 1};
    col(&a->obs, "kmeans", categorical(AD_I8, kcodes, 4, arr1(AD_I64, 3, kc), false));
    const char *sc[] = {"x", "yé"};
    int8_t scodes[] = {1, 0, -1, 1};
    col(&a->obs, "cat_s", categorical(AD_I32, scodes, 4, str_elem(sc, 2, 1), true));
    int64_t niv[] = {1, 0, 3, -4};
    uint8_t nim[] = {0, 1, 0, 0};
    col(&a->obs, "ni", nullable(AD_K_NULLABLE_INT, AD_I64, niv, nim, 4));
    uint8_t nbv[] = {1, 0, 0, 1}, nbm[] = {0, 0, 1, 0};
    col(&a->obs, "nb", nullable(AD_K_NULLABLE_BOOL, AD_BOOL, nbv, nbm, 4));
    double w[] = {1, 2, 3, 4};
    col(&a->obs, "a/b~c", arr1(AD_F64, 4, w));
    col(&a->obs, "_private", arr1(AD_F64, 4, w));

    const char *var_names[] = {"g1", "g2", "g3"};
    frame_index(&a->var, var_names, N_VARS, NULL);
    uint8_t hv[] = {1, 0, 1};
    double mean[] = {0.5, 1e16, -0.0};
    col(&a->var, "hv", arr1(AD_BOOL, 3, hv));
    col(&a->var, "mean", arr1(AD_F64, 3, mean));

    uint64_t s42[2] = {4, 2}, s32[2] = {3, 2};
    double pca[] = {1, 2, 3, 4, 5, 6, 7, 8.5};
    float umap[] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    put(&a->obsm, "X_pca", arr(AD_F64, 2, s42, pca));
    put(&a->obsm, "X_umap", arr(AD_F32, 2, s42, umap));
    ad_elem *meta = ad_elem_new(AD_K_FRAME);
    if (!meta) die("alloc");
    frame_index(&meta->u.df, obs_names, N_OBS, NULL);
    double score[] = {0.5, -1, NAN, 2};
    col(&meta->u.df, "score", arr1(AD_F64, 4, score));
    const char *grp[] = {"g/1", "g2"};
    int8_t gcodes[] = {0, 1, 1, -1};
    col(&meta->u.df, "grp", categorical(AD_I8, gcodes, 4, str_elem(grp, 2, 1), false));
    put(&a->obsm, "meta", meta);
    float emb[] = {0.25f, -1, 3};
    int64_t ei[] = {2, 0, 3}, ep[] = {0, 1, 3};
    put(&a->obsm, "sp_emb", sparse(true, 4, 2, AD_F32, 3, emb, AD_I64, ei, ep));
    double pcs[] = {-1, 1, 0.25, 0.5, 2, 3};
    put(&a->varm, "PCs", arr(AD_F64, 2, s32, pcs));

    int32_t counts[] = {1, 0, 0, 0, 0, 2, 0, 3, 4, 0, 0, 0};
    put(&a->layers, "counts", arr(AD_I32, 2, xs, counts));
    double dd[] = {0.5, 0.5, 1};
    int32_t di[] = {1, 0, 3}, dp[] = {0, 1, 2, 2, 3};
    put(&a->obsp, "dist", sparse(false, 4, 4, AD_F64, 3, dd, AD_I32, di, dp));

    const char *title = "héllo, world";
    put(&a->uns, "title", str_elem(&title, 1, 0));
    int64_t n42 = 42;
    put(&a->uns, "n", arr(AD_I64, 0, NULL, &n42));
    double pi = 3.14;
    put(&a->uns, "pi", arr(AD_F64, 0, NULL, &pi));
    uint8_t t1 = 1;
    put(&a->uns, "flag", arr(AD_BOOL, 0, NULL, &t1));
    int64_t vec[] = {1, 2, 3};
    put(&a->uns, "vec", arr1(AD_I64, 3, vec));
    uint64_t s22[2] = {2, 2};
    float mat[] = {0.1f, 2, NAN, -4};
    put(&a->uns, "mat", arr(AD_F32, 2, s22, mat));
    const char *nm[] = {"a", "", "ü"};
    put(&a->uns, "names", str_elem(nm, 3, 1));
    uint64_t s222[3] = {2, 2, 2};
    double cube[] = {1, 2, 3, 4, 5, 6, 7, 8};
    put(&a->uns, "cube", arr(AD_F64, 3, s222, cube));
    ad_elem *params = ad_elem_new(AD_K_DICT), *inner = ad_elem_new(AD_K_DICT),
            *emptyd = ad_elem_new(AD_K_DICT);
    if (!params || !inner || !emptyd) die("alloc");
    int64_t one = 1;
    put(&params->u.dict, "a/b", arr(AD_I64, 0, NULL, &one));
    const char *y = "y";
    put(&inner->u.dict, "x", str_elem(&y, 1, 0));
    put(&params->u.dict, "inner", inner);
    put(&params->u.dict, "empty", emptyd);
    put(&a->uns, "params", params);
    ad_elem *st = ad_elem_new(AD_K_FRAME);
    if (!st) die("alloc");
    const char *sidx[] = {"0", "1", "2"};
    frame_index(&st->u.df, sidx, 3, NULL);
    const char *txt[] = {"first, statement", "zweite Äußerung", ""};
    col(&st->u.df, "txt", str_elem(txt, 3, 1));
    uint8_t seed[] = {1, 0, 0};
    col(&st->u.df, "is-seed", arr1(AD_BOOL, 3, seed));
    int64_t mod[] = {1, -1, 0};
    col(&st->u.df, "moderated", arr1(AD_I64, 3, mod));
    put(&a->uns, "statements", st);
    double spd[] = {1, 2};
    int32_t spi[] = {1, 0}, spp[] = {0, 0, 1, 2};
    put(&a->uns, "sp", sparse(true, 2, 3, AD_F64, 2, spd, AD_I32, spi, spp));
    const char *uc[] = {"lo", "hi"};
    int8_t ucodes[] = {1, -1, 0};
    put(&a->uns, "ucat", categorical(AD_I8, ucodes, 3, str_elem(uc, 2, 1), false));
    int32_t unv[] = {7, 0};
    uint8_t unm[] = {0, 1};
    put(&a->uns, "unl", nullable(AD_K_NULLABLE_INT, AD_I32, unv, unm, 2));

    /* Random bit patterns: every magnitude, subnormals, NaN and inf, so the
     * csv text of float32 and float64 is compared with numpy's wide range. */
    enum { NMANY = 3000 };
    static uint32_t b32[NMANY];
    static uint64_t b64[NMANY];
    uint64_t lcg = 7;
    for (int i = 0; i < NMANY; i++) {
        lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
        b32[i] = (uint32_t)(lcg >> 32);
        b64[i] = lcg;
    }
    put(&a->uns, "f32many", arr1(AD_F32, NMANY, b32));
    put(&a->uns, "f64many", arr1(AD_F64, NMANY, b64));

    a->raw = calloc(1, sizeof *a->raw);
    if (!a->raw) die("alloc");
    uint64_t rs[2] = {N_OBS, 5};
    double rx[20];
    for (int i = 0; i < 20; i++)
        rx[i] = i * 0.5;
    a->raw->X = arr(AD_F64, 2, rs, rx);
    const char *rn[] = {"r1", "r2", "r3", "r4", "r5"};
    frame_index(&a->raw->var, rn, 5, NULL);
    int64_t rv[] = {5, 4, 3, 2, 1};
    col(&a->raw->var, "rank", arr1(AD_I64, 5, rv));
    double rvm[] = {1, 2, 3, 4, 5};
    uint64_t s51[2] = {5, 1};
    put(&a->raw->varm, "loadings", arr(AD_F64, 2, s51, rvm));
    return a;
}

/* 4000 x 1000 float64 with 40% NaN, the benchmark from the task. */
static ad_anndata *build_big(void)
{
    ad_anndata *a = ad_anndata_new();
    if (!a) die("alloc");
    a->n_obs = 4000;
    a->n_vars = 1000;
    uint64_t sh[2] = {4000, 1000};
    ad_array x;
    if (ad_array_init(&x, AD_F64, 2, sh) < 0) die("alloc");
    double *d = x.data;
    uint64_t state = 12345;
    for (uint64_t i = 0; i < x.n; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(state >> 33);
        d[i] = (r % 100) < 40 ? NAN : (double)(r % 100000) / 997.0;
    }
    if (!(a->X = ad_elem_from_array(&x))) die("alloc");
    if (ad_frame_default_index(&a->obs, 4000) < 0 || ad_frame_default_index(&a->var, 1000) < 0)
        die("alloc");
    return a;
}

static int finish(int rc, adx_report *rep, adx_err *err)
{
    if (rc < 0) {
        fprintf(stderr, "error: %s (%s)\n", err->detail, err->n_items ? err->items[0].pointer : "");
        rep_free(rep);
        return 1;
    }
    json_t *j = rep_to_json(rep);
    char *t = json_dumps(j, JSON_COMPACT);
    printf("%s\n", t ? t : "[]");
    free(t);
    json_decref(j);
    rep_free(rep);
    return 0;
}

int main(int argc, char **argv)
{
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    if (argc == 4 && !strcmp(argv[1], "big")) {
        ad_anndata *a = build_big();
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        bool csv = !strcmp(argv[3], "csv");
        int level = atoi(argv[3]), rc;
        if (csv)
            rc = csvb_write(a, argv[2], ',', NULL, NULL, &rep, &err);
        else
            rc = npz_write(a, argv[2], level ? ADX_COMP_GZIP : ADX_COMP_NONE, level, NULL, &rep,
                           &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        fprintf(stderr, "%s seconds %.3f\n", csv ? "csvb_write" : "npz_write",
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        ad_anndata_free(a);
        return finish(rc, &rep, &err);
    }
    if (argc != 4) {
        fprintf(stderr, "usage: fmt_driver csr|csc|dense|none npz-gzip|npz-store|csv|txt OUT\n");
        return 2;
    }
    ad_anndata *a = build(argv[1]);
    int rc;
    if (!strcmp(argv[2], "npz-gzip"))
        rc = npz_write(a, argv[3], ADX_COMP_GZIP, 4, NULL, &rep, &err);
    else if (!strcmp(argv[2], "npz-store"))
        rc = npz_write(a, argv[3], ADX_COMP_NONE, 0, NULL, &rep, &err);
    else if (!strcmp(argv[2], "csv") || !strcmp(argv[2], "txt"))
        rc = csvb_write(a, argv[3], argv[2][0] == 'c' ? ',' : '\t', NULL, NULL, &rep, &err);
    else
        die("format");
    ad_anndata_free(a);
    return finish(rc, &rep, &err);
}
