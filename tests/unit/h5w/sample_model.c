/* The comprehensive sample model: the values are small and fixed so both the
 * C tests and the Python reader test can assert them exactly. */
#include "sample_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void set_num(ad_array *a, uint64_t i, double v)
{
    unsigned char *p = (unsigned char *)a->data + i * ad_dtype_size(a->dtype);
    switch (a->dtype) {
    case AD_BOOL:
    case AD_U8:
        *(uint8_t *)p = (uint8_t)v;
        break;
    case AD_I8:
        *(int8_t *)p = (int8_t)v;
        break;
    case AD_I16:
        *(int16_t *)p = (int16_t)v;
        break;
    case AD_I32:
        *(int32_t *)p = (int32_t)v;
        break;
    case AD_I64:
        *(int64_t *)p = (int64_t)v;
        break;
    case AD_U16:
        *(uint16_t *)p = (uint16_t)v;
        break;
    case AD_U32:
        *(uint32_t *)p = (uint32_t)v;
        break;
    case AD_U64:
        *(uint64_t *)p = (uint64_t)v;
        break;
    case AD_F32:
        *(float *)p = (float)v;
        break;
    case AD_F64:
        *(double *)p = v;
        break;
    default:
        break;
    }
}

ad_elem *sample_num(ad_dtype t, int ndim, const uint64_t *shape, const double *vals, int nv)
{
    ad_array a;
    if (ad_array_init(&a, t, ndim, shape) < 0) return NULL;
    for (uint64_t i = 0; nv > 0 && i < a.n; i++)
        set_num(&a, i, vals[i % (uint64_t)nv]);
    return ad_elem_from_array(&a);
}

ad_elem *sample_strs(const char *const *s, uint64_t n, int ndim, const uint64_t *shape)
{
    ad_strbuild b = {0};
    ad_array a;
    for (uint64_t i = 0; i < n; i++)
        if (ad_sb_push(&b, s[i], strlen(s[i])) < 0) {
            ad_sb_free(&b);
            return NULL;
        }
    if (ad_sb_finish(&b, &a, ndim, shape) < 0) return NULL;
    return ad_elem_from_array(&a);
}

static int put(ad_dict *d, const char *k, ad_elem *e)
{
    return e ? ad_dict_put(d, k, e) : -1;
}

static int add(ad_frame *f, const char *k, ad_elem *e)
{
    return e ? ad_frame_add(f, k, e) : -1;
}

/* Moves the array out of a wrapping element (frees the element). */
static int fill_array(ad_array *dst, ad_elem *src)
{
    if (!src) return -1;
    *dst = src->u.arr;
    memset(&src->u.arr, 0, sizeof src->u.arr);
    ad_elem_free(src);
    return 0;
}

static ad_elem *categorical(ad_dtype code_t, const double *codes, int n, ad_elem *cats,
                            bool ordered)
{
    ad_elem *e = ad_elem_new(AD_K_CATEGORICAL);
    uint64_t shp[1] = {(uint64_t)n};
    if (!e || !cats) goto fail;
    if (fill_array(&e->u.cat.codes, sample_num(code_t, 1, shp, codes, n)) < 0) goto fail;
    e->u.cat.categories = cats->u.arr;
    memset(&cats->u.arr, 0, sizeof cats->u.arr);
    ad_elem_free(cats);
    cats = NULL;
    e->u.cat.ordered = ordered;
    return e;
fail:
    ad_elem_free(cats);
    ad_elem_free(e);
    return NULL;
}

static ad_elem *nullable(bool boolean, const double *vals, const double *mask, int n)
{
    ad_elem *e = ad_elem_new(boolean ? AD_K_NULLABLE_BOOL : AD_K_NULLABLE_INT);
    uint64_t shp[1] = {(uint64_t)n};
    if (!e) return NULL;
    if (fill_array(&e->u.nl.values, sample_num(boolean ? AD_BOOL : AD_I64, 1, shp, vals, n)) < 0 ||
        fill_array(&e->u.nl.mask, sample_num(AD_BOOL, 1, shp, mask, n)) < 0) {
        ad_elem_free(e);
        return NULL;
    }
    return e;
}

static ad_elem *sparse(bool csc, uint64_t r, uint64_t c, const double *data, const double *indices,
                       int nnz, const double *indptr, int nptr)
{
    ad_elem *e = ad_elem_new(AD_K_SPARSE);
    uint64_t s1[1] = {(uint64_t)nnz}, s2[1] = {(uint64_t)nptr};
    if (!e) return NULL;
    e->u.sp.csc = csc;
    e->u.sp.shape[0] = r;
    e->u.sp.shape[1] = c;
    if (fill_array(&e->u.sp.data, sample_num(AD_F32, 1, s1, data, nnz)) < 0 ||
        fill_array(&e->u.sp.indices, sample_num(AD_I32, 1, s1, indices, nnz)) < 0 ||
        fill_array(&e->u.sp.indptr, sample_num(AD_I32, 1, s2, indptr, nptr)) < 0) {
        ad_elem_free(e);
        return NULL;
    }
    return e;
}

ad_anndata *sample_model(void)
{
    ad_anndata *a = ad_anndata_new();
    if (!a) return NULL;
    a->n_obs = SAMPLE_N_OBS;
    a->n_vars = SAMPLE_N_VARS;

    /* X: float64 with NaN, 5 x 4. */
    static const double xv[] = {-1, 0, 1, NAN, 0.5, 2,  -3, 4,  5,  6,
                                7,  8, 9, 10,  11,  12, 13, 14, 15, 16};
    uint64_t xs[2] = {SAMPLE_N_OBS, SAMPLE_N_VARS};
    if (!(a->X = sample_num(AD_F64, 2, xs, xv, 20))) goto fail;

    /* obs: every column kind, unnamed index with non-ASCII labels. */
    static const char *const obs_ix[] = {"p0", "p1", "p2", "p\xc3\xa9", "\xe6\x97\xa5"};
    ad_elem *ix = sample_strs(obs_ix, 5, 1, NULL);
    if (!ix) goto fail;
    a->obs.n_rows = 5;
    fill_array(&a->obs.index, ix);
    uint64_t s5[1] = {5};
    static const double iv[] = {1, -2, 3, 4, 5}, fv[] = {0.5, -1.5, NAN, 2, 3},
                        bv[] = {1, 0, 1, 1, 0}, codes[] = {1, 2, -1, 0, 2},
                        scodes[] = {1, 0, 0, -1, 1}, intcats[] = {-1, 10, 20},
                        nmask[] = {0, 1, 0, 0, 1}, nbv[] = {1, 0, 0, 1, 0};
    static const char *const s_obs[] = {"a", "b\xc3\xbc", "", "d", "\xf0\x9f\x98\x80"};
    static const char *const cat_s[] = {"x", "y\xc3\xa9"};
    uint64_t s2[1] = {2}, s3c[1] = {3};
    if (add(&a->obs, "n_i8", sample_num(AD_I8, 1, s5, iv, 5)) < 0 ||
        add(&a->obs, "n_i16", sample_num(AD_I16, 1, s5, iv, 5)) < 0 ||
        add(&a->obs, "n_i32", sample_num(AD_I32, 1, s5, iv, 5)) < 0 ||
        add(&a->obs, "n_i64", sample_num(AD_I64, 1, s5, iv, 5)) < 0 ||
        add(&a->obs, "n_u8", sample_num(AD_U8, 1, s5, bv, 5)) < 0 ||
        add(&a->obs, "n_u16", sample_num(AD_U16, 1, s5, bv, 5)) < 0 ||
        add(&a->obs, "n_u32", sample_num(AD_U32, 1, s5, bv, 5)) < 0 ||
        add(&a->obs, "n_u64", sample_num(AD_U64, 1, s5, bv, 5)) < 0 ||
        add(&a->obs, "n_f32", sample_num(AD_F32, 1, s5, fv, 5)) < 0 ||
        add(&a->obs, "n_f64", sample_num(AD_F64, 1, s5, fv, 5)) < 0 ||
        add(&a->obs, "flag", sample_num(AD_BOOL, 1, s5, bv, 5)) < 0 ||
        add(&a->obs, "label", sample_strs(s_obs, 5, 1, NULL)) < 0 ||
        add(&a->obs, "kmeans",
            categorical(AD_I8, codes, 5, sample_num(AD_I64, 1, s3c, intcats, 3), false)) < 0 ||
        add(&a->obs, "group",
            categorical(AD_I16, scodes, 5, sample_strs(cat_s, 2, 1, NULL), true)) < 0 ||
        add(&a->obs, "nint", nullable(false, iv, nmask, 5)) < 0 ||
        add(&a->obs, "nbool", nullable(true, nbv, nmask, 5)) < 0)
        goto fail;

    /* var: no columns, named index. */
    static const char *const var_ix[] = {"g0", "g1", "g2", "g3"};
    if (!(ix = sample_strs(var_ix, 4, 1, NULL))) goto fail;
    a->var.n_rows = 4;
    fill_array(&a->var.index, ix);
    if (!(a->var.index_name = strdup("gene"))) goto fail;

    /* obsm: dense float32, csr; obsp: csc; layers: int32; varm stays empty. */
    static const double pca[] = {0.25, -0.5, 1.5, 2.5, -3, 4, 5, 6.125, 7, 8};
    uint64_t ps[2] = {5, 2};
    static const double sd[] = {1, 2, 3}, si[] = {0, 1, 3}, sp_ptr[] = {0, 1, 1, 2, 3, 3},
                        zeros6[] = {0, 0, 0, 0, 0, 0};
    if (put(&a->obsm, "X_pca", sample_num(AD_F32, 2, ps, pca, 10)) < 0 ||
        put(&a->obsm, "sp", sparse(false, 5, 4, sd, si, 3, sp_ptr, 6)) < 0 ||
        put(&a->obsp, "conn", sparse(true, 5, 5, sd, si, 3, sp_ptr, 6)) < 0 ||
        put(&a->obsm, "sp_empty", sparse(false, 5, 4, sd, si, 0, zeros6, 6)) < 0 ||
        put(&a->layers, "counts", sample_num(AD_I32, 2, xs, xv, 3)) < 0)
        goto fail;

    /* uns: scalars of every kind, N-d arrays, nested dicts, a frame. */
    static const double one[] = {1}, f15[] = {1.5}, i42[] = {42}, cube[] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint64_t c3[3] = {2, 2, 2}, sm[2] = {2, 2}, s0[1] = {0};
    static const char *const hello[] = {"h\xc3\xa9llo"}, *const grid[] = {"a", "b", "c", "d"};
    ad_elem *nested = ad_elem_new(AD_K_DICT), *inner = ad_elem_new(AD_K_DICT);
    ad_elem *fr = ad_elem_new(AD_K_FRAME);
    if (!nested || !inner || !fr) {
        ad_elem_free(nested);
        ad_elem_free(inner);
        ad_elem_free(fr);
        goto fail;
    }
    static const char *const fr_ix[] = {"r0", "r1"};
    fr->u.df.n_rows = 2;
    if (!(ix = sample_strs(fr_ix, 2, 1, NULL))) {
        ad_elem_free(nested);
        ad_elem_free(inner);
        ad_elem_free(fr);
        goto fail;
    }
    fill_array(&fr->u.df.index, ix);
    int rc = add(&fr->u.df, "v", sample_num(AD_F64, 1, s2, f15, 1));
    rc |= put(&inner->u.dict, "deep", sample_num(AD_I64, 0, NULL, i42, 1));
    rc |= put(&nested->u.dict, "inner", inner);
    rc |= put(&nested->u.dict, "b_bool", sample_num(AD_BOOL, 0, NULL, one, 1));
    rc |= put(&a->uns, "s_str", sample_strs(hello, 1, 0, NULL));
    rc |= put(&a->uns, "s_f64", sample_num(AD_F64, 0, NULL, f15, 1));
    rc |= put(&a->uns, "s_i64", sample_num(AD_I64, 0, NULL, i42, 1));
    rc |= put(&a->uns, "s_bool", sample_num(AD_BOOL, 0, NULL, one, 1));
    rc |= put(&a->uns, "cube", sample_num(AD_I16, 3, c3, cube, 8));
    rc |= put(&a->uns, "grid", sample_strs(grid, 4, 2, sm));
    rc |= put(&a->uns, "empty", sample_num(AD_F64, 1, s0, one, 1));
    rc |= put(&a->uns, "nested", nested);
    rc |= put(&a->uns, "frame", fr);
    /* several compressible chunks (value = i % 7), so readers must really
     * decompress what this writer compressed */
    static const double sev[] = {0, 1, 2, 3, 4, 5, 6};
    uint64_t bs[2] = {SAMPLE_BIG_ROWS, SAMPLE_BIG_COLS};
    rc |= put(&a->uns, "big", sample_num(AD_I32, 2, bs, sev, 7));
    /* a frame in obsm, sharing the obs index */
    ad_elem *ofr = ad_elem_new(AD_K_FRAME);
    if (!ofr || ad_frame_clone(&ofr->u.df, &a->obs) < 0) {
        ad_elem_free(ofr);
        goto fail;
    }
    while (ofr->u.df.ncols > 1)
        ad_frame_remove_at(&ofr->u.df, ofr->u.df.ncols - 1);
    rc |= put(&a->obsm, "df", ofr);
    if (rc) goto fail;

    /* raw: X float32 with the var frame cloned. */
    a->raw = calloc(1, sizeof *a->raw);
    if (!a->raw || !(a->raw->X = sample_num(AD_F32, 2, xs, xv, 20)) ||
        ad_frame_clone(&a->raw->var, &a->var) < 0)
        goto fail;
    return a;
fail:
    ad_anndata_free(a);
    return NULL;
}

static void fit_frame(ad_frame *f, uint64_t n)
{
    if (f->ncols == 0 && f->n_rows != n && ad_frame_default_index(f, n) < 0) abort();
}

void sample_fit_axes(ad_anndata *a)
{
    uint64_t r = a->obs.n_rows, c = a->var.n_rows;
    if (a->X && a->X->kind == AD_K_SPARSE) {
        r = a->X->u.sp.shape[0];
        c = a->X->u.sp.shape[1];
    } else if (a->X && a->X->u.arr.ndim == 2) {
        r = a->X->u.arr.shape[0];
        c = a->X->u.arr.shape[1];
    }
    a->n_obs = r;
    a->n_vars = c;
    fit_frame(&a->obs, r);
    fit_frame(&a->var, c);
    if (a->raw && a->raw->X && a->raw->X->kind == AD_K_ARRAY && a->raw->X->u.arr.ndim == 2)
        fit_frame(&a->raw->var, a->raw->X->u.arr.shape[1]);
}
