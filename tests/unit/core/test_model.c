/* Unit tests of the core model: allocation and overflow checks, the string
 * builder, deep clones, dict/frame editing, default indexes, Python float
 * text. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adx_common.h"
#include "adx_model.h"

START_TEST(array_init_numeric_is_zeroed)
{
    ad_array a;
    uint64_t shape[2] = {3, 4};
    ck_assert_int_eq(ad_array_init(&a, AD_F64, 2, shape), 0);
    ck_assert_int_eq(a.dtype, AD_F64);
    ck_assert_int_eq(a.ndim, 2);
    ck_assert_uint_eq(a.n, 12);
    ck_assert_uint_eq(a.shape[0], 3);
    ck_assert_uint_eq(a.shape[1], 4);
    for (uint64_t i = 0; i < a.n; i++)
        ck_assert(((double *)a.data)[i] == 0.0);
    ck_assert_ptr_null(a.soff);
    ad_array_free(&a);
    ck_assert_ptr_null(a.data); /* free leaves a zeroed struct */
    ad_array_free(&a);          /* and a second free is harmless */
}
END_TEST

START_TEST(array_init_strings_are_empty)
{
    ad_array a;
    uint64_t shape[1] = {5};
    ck_assert_int_eq(ad_array_init(&a, AD_STR, 1, shape), 0);
    ck_assert_uint_eq(a.n, 5);
    for (uint64_t i = 0; i < 5; i++) {
        ck_assert_str_eq(ad_str_at(&a, i), "");
        ck_assert_uint_eq(ad_str_len(&a, i), 0);
    }
    ad_array_free(&a);
}
END_TEST

START_TEST(array_init_scalar_and_empty)
{
    ad_array a;
    ck_assert_int_eq(ad_array_init(&a, AD_I32, 0, NULL), 0);
    ck_assert_uint_eq(a.n, 1);
    ck_assert_int_eq(((int32_t *)a.data)[0], 0);
    ad_array_free(&a);
    uint64_t zero[2] = {0, 7};
    ck_assert_int_eq(ad_array_init(&a, AD_U8, 2, zero), 0);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_uint_eq(a.shape[1], 7);
    ad_array_free(&a);
    ck_assert_int_eq(ad_array_init(&a, AD_STR, 1, zero), 0);
    ck_assert_uint_eq(a.n, 0);
    ad_array_free(&a);
}
END_TEST

START_TEST(array_init_rejects_overflow_and_bad_args)
{
    ad_array a;
    /* product overflows uint64 */
    uint64_t big[2] = {1ull << 32, 1ull << 32};
    ck_assert_int_eq(ad_array_init(&a, AD_U8, 2, big), -1);
    ck_assert_ptr_null(a.data);
    ck_assert_uint_eq(a.n, 0);
    /* product fits but the byte count does not */
    uint64_t bytes[1] = {1ull << 61};
    ck_assert_int_eq(ad_array_init(&a, AD_F64, 1, bytes), -1);
    ck_assert_ptr_null(a.data);
    uint64_t strs[1] = {UINT64_MAX / 4};
    ck_assert_int_eq(ad_array_init(&a, AD_STR, 1, strs), -1);
    ck_assert_ptr_null(a.soff);
    /* a zero dim makes an empty array whatever the other dims are */
    uint64_t z[3] = {1ull << 40, 0, 1ull << 20};
    ck_assert_int_eq(ad_array_init(&a, AD_F32, 3, z), 0);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_uint_eq(a.shape[0], 1ull << 40);
    ad_array_free(&a);
    uint64_t one[1] = {1};
    ck_assert_int_eq(ad_array_init(&a, AD_DTYPE__COUNT, 1, one), -1);
    ck_assert_int_eq(ad_array_init(&a, AD_F32, -1, one), -1);
    uint64_t many[AD_MAX_NDIM + 1];
    for (int i = 0; i <= AD_MAX_NDIM; i++)
        many[i] = 1;
    ck_assert_int_eq(ad_array_init(&a, AD_F32, AD_MAX_NDIM + 1, many), -1);
    ck_assert_int_eq(ad_array_init(&a, AD_F32, AD_MAX_NDIM, many), 0);
    ck_assert_uint_eq(a.n, 1);
    ad_array_free(&a);
}
END_TEST

START_TEST(bytes_and_shape_product)
{
    size_t b;
    ck_assert_int_eq(ad_bytes(AD_F64, 10, &b), 0);
    ck_assert_uint_eq(b, 80);
    ck_assert_int_eq(ad_bytes(AD_STR, 10, &b), 0);
    ck_assert_uint_eq(b, 10);
    ck_assert_int_eq(ad_bytes(AD_I64, UINT64_MAX / 4, &b), -1);
    uint64_t n;
    uint64_t s[3] = {2, 3, 4};
    ck_assert_int_eq(ad_shape_product(3, s, &n), 0);
    ck_assert_uint_eq(n, 24);
    ck_assert_int_eq(ad_shape_product(0, NULL, &n), 0);
    ck_assert_uint_eq(n, 1);
    uint64_t o[2] = {UINT64_MAX, 2};
    ck_assert_int_eq(ad_shape_product(2, o, &n), -1);
}
END_TEST

START_TEST(dtype_names_and_classes)
{
    static const char *names[] = {"bool",   "int8",   "int16",  "int32",   "int64",  "uint8",
                                  "uint16", "uint32", "uint64", "float32", "float64"};
    static const size_t sizes[] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8};
    for (int t = 0; t < AD_STR; t++) {
        ck_assert_str_eq(ad_dtype_name((ad_dtype)t), names[t]);
        ck_assert_uint_eq(ad_dtype_size((ad_dtype)t), sizes[t]);
        ad_dtype back;
        ck_assert_int_eq(ad_dtype_from_name(names[t], &back), 0);
        ck_assert_int_eq(back, t);
    }
    ad_dtype d;
    ck_assert_int_eq(ad_dtype_from_name("str", &d), -1);
    ck_assert_int_eq(ad_dtype_from_name("float16", &d), -1);
    ck_assert_uint_eq(ad_dtype_size(AD_STR), 0);
    ck_assert(ad_dtype_is_int(AD_U64) && !ad_dtype_is_int(AD_BOOL) && !ad_dtype_is_int(AD_F32));
    ck_assert(ad_dtype_is_signed(AD_I8) && !ad_dtype_is_signed(AD_U8));
    ck_assert(ad_dtype_is_float(AD_F32) && !ad_dtype_is_float(AD_I64));
}
END_TEST

START_TEST(get_converts_every_dtype)
{
    ad_array a;
    uint64_t one[1] = {1};
    ck_assert_int_eq(ad_array_init(&a, AD_I16, 1, one), 0);
    ((int16_t *)a.data)[0] = -300;
    ck_assert(ad_array_get_f64(&a, 0) == -300.0);
    ck_assert_int_eq(ad_array_get_i64(&a, 0), -300);
    ad_array_free(&a);
    ck_assert_int_eq(ad_array_init(&a, AD_F32, 1, one), 0);
    ((float *)a.data)[0] = 2.75f;
    ck_assert(ad_array_get_f64(&a, 0) == 2.75);
    ck_assert_int_eq(ad_array_get_i64(&a, 0), 2);
    ad_array_free(&a);
    ck_assert_int_eq(ad_array_init(&a, AD_BOOL, 1, one), 0);
    ((uint8_t *)a.data)[0] = 1;
    ck_assert(ad_array_get_f64(&a, 0) == 1.0);
    ad_array_free(&a);
}
END_TEST

/* ------------------------------------------------------ string builder */

START_TEST(string_builder_shapes)
{
    ad_strbuild b = {0};
    const char *v[] = {"a", "", "ccc", "d\xc3\xa9"};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(ad_sb_push(&b, v[i], strlen(v[i])), 0);
    ad_array a;
    uint64_t shape[2] = {2, 2};
    ck_assert_int_eq(ad_sb_finish(&b, &a, 2, shape), 0);
    ck_assert_ptr_null(b.buf); /* moved out, builder reset */
    ck_assert_uint_eq(b.n, 0);
    ck_assert_int_eq(a.dtype, AD_STR);
    ck_assert_int_eq(a.ndim, 2);
    ck_assert_uint_eq(a.n, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(ad_str_at(&a, (uint64_t)i), v[i]);
        ck_assert_uint_eq(ad_str_len(&a, (uint64_t)i), strlen(v[i]));
    }
    ad_array_free(&a);
}
END_TEST

START_TEST(string_builder_counts_and_lengths)
{
    ad_strbuild b = {0};
    /* lengths are taken as given: a prefix of a longer buffer */
    ck_assert_int_eq(ad_sb_push(&b, "abcdef", 3), 0);
    /* many pushes force both buffers to grow */
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(ad_sb_push(&b, "xyz", 3), 0);
    ad_array a;
    ck_assert_int_eq(ad_sb_finish(&b, &a, 1, NULL), 0);
    ck_assert_uint_eq(a.n, 1001);
    ck_assert_uint_eq(a.shape[0], 1001);
    ck_assert_str_eq(ad_str_at(&a, 0), "abc");
    ck_assert_str_eq(ad_str_at(&a, 1000), "xyz");
    ad_array_free(&a);
    /* a shape that disagrees with the count fails and frees */
    ck_assert_int_eq(ad_sb_push(&b, "q", 1), 0);
    uint64_t two[1] = {2};
    ck_assert_int_eq(ad_sb_finish(&b, &a, 1, two), -1);
    ck_assert_ptr_null(a.soff);
    ck_assert_ptr_null(b.buf);
    /* nothing pushed: an empty 1-d array */
    ck_assert_int_eq(ad_sb_finish(&b, &a, 1, NULL), 0);
    ck_assert_uint_eq(a.n, 0);
    ad_array_free(&a);
    ad_sb_free(&b);
}
END_TEST

START_TEST(from_cstrs)
{
    const char *v[] = {"x", "yy"};
    ad_array a;
    ck_assert_int_eq(ad_array_from_cstrs(&a, v, 2), 0);
    ck_assert_int_eq(a.ndim, 1);
    ck_assert_str_eq(ad_str_at(&a, 1), "yy");
    ad_array b;
    ck_assert_int_eq(ad_array_clone(&b, &a), 0);
    ck_assert_ptr_ne(b.str, a.str);
    ck_assert_str_eq(ad_str_at(&b, 0), "x");
    ad_array_free(&a);
    ck_assert_str_eq(ad_str_at(&b, 1), "yy");
    ad_array_free(&b);
}
END_TEST

/* ------------------------------------------------------- deep equality */

static int arr_eq(const ad_array *a, const ad_array *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim || a->n != b->n) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    if (a->dtype == AD_STR) {
        if (!a->soff || !b->soff) return a->soff == b->soff || a->n == 0;
        for (uint64_t i = 0; i < a->n; i++)
            if (ad_str_len(a, i) != ad_str_len(b, i) ||
                memcmp(ad_str_at(a, i), ad_str_at(b, i), ad_str_len(a, i)) != 0)
                return 0;
        return 1;
    }
    return a->n == 0 || memcmp(a->data, b->data, a->n * ad_dtype_size(a->dtype)) == 0;
}

static int elem_eq(const ad_elem *a, const ad_elem *b);

static int dict_eq(const ad_dict *a, const ad_dict *b)
{
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->keys[i], b->keys[i]) || !elem_eq(a->vals[i], b->vals[i])) return 0;
    return 1;
}

static int frame_eq(const ad_frame *a, const ad_frame *b)
{
    if (a->n_rows != b->n_rows || a->ncols != b->ncols || !arr_eq(&a->index, &b->index)) return 0;
    if ((a->index_name == NULL) != (b->index_name == NULL)) return 0;
    if (a->index_name && strcmp(a->index_name, b->index_name)) return 0;
    for (size_t i = 0; i < a->ncols; i++)
        if (strcmp(a->names[i], b->names[i]) || !elem_eq(a->cols[i], b->cols[i])) return 0;
    return 1;
}

static int obj_eq(const ad_object *a, const ad_object *b)
{
    if (a->ndim != b->ndim || a->n != b->n) return 0;
    if (a->n == 0) return 1;
    return memcmp(a->kind, b->kind, a->n) == 0 &&
           memcmp(a->num, b->num, a->n * sizeof(ad_num)) == 0 &&
           memcmp(a->soff, b->soff, (a->n + 1) * sizeof(uint64_t)) == 0 &&
           memcmp(a->str, b->str, a->soff[a->n]) == 0;
}

static int elem_eq(const ad_elem *a, const ad_elem *b)
{
    if (!a || !b) return a == b;
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case AD_K_ARRAY:
        return arr_eq(&a->u.arr, &b->u.arr);
    case AD_K_SPARSE:
        return a->u.sp.csc == b->u.sp.csc && a->u.sp.shape[0] == b->u.sp.shape[0] &&
               a->u.sp.shape[1] == b->u.sp.shape[1] && arr_eq(&a->u.sp.data, &b->u.sp.data) &&
               arr_eq(&a->u.sp.indices, &b->u.sp.indices) &&
               arr_eq(&a->u.sp.indptr, &b->u.sp.indptr);
    case AD_K_FRAME:
        return frame_eq(&a->u.df, &b->u.df);
    case AD_K_CATEGORICAL:
        return a->u.cat.ordered == b->u.cat.ordered && arr_eq(&a->u.cat.codes, &b->u.cat.codes) &&
               arr_eq(&a->u.cat.categories, &b->u.cat.categories);
    case AD_K_NULLABLE_INT:
    case AD_K_NULLABLE_BOOL:
        return arr_eq(&a->u.nl.values, &b->u.nl.values) && arr_eq(&a->u.nl.mask, &b->u.nl.mask);
    case AD_K_DICT:
        return dict_eq(&a->u.dict, &b->u.dict);
    case AD_K_OBJECT:
        return obj_eq(&a->u.obj, &b->u.obj);
    default:
        return 1;
    }
}

static ad_elem *f64_elem(int ndim, const uint64_t *shape, double start)
{
    ad_array a;
    ck_assert_int_eq(ad_array_init(&a, AD_F64, ndim, shape), 0);
    for (uint64_t i = 0; i < a.n; i++)
        ((double *)a.data)[i] = start + (double)i;
    return ad_elem_from_array(&a);
}

static ad_elem *strs_elem(const char *const *v, uint64_t n)
{
    ad_array a;
    ck_assert_int_eq(ad_array_from_cstrs(&a, v, n), 0);
    return ad_elem_from_array(&a);
}

static ad_anndata *full_model(void)
{
    ad_anndata *a = ad_anndata_new();
    ck_assert_ptr_nonnull(a);
    a->n_obs = 3;
    a->n_vars = 2;
    uint64_t xs[2] = {3, 2};
    a->X = f64_elem(2, xs, 0.5);
    ck_assert_int_eq(ad_frame_default_index(&a->obs, 3), 0);
    a->obs.index_name = strdup("voter-id");
    const char *g[] = {"a", "b", "a"};
    ck_assert_int_eq(ad_frame_add(&a->obs, "group", strs_elem(g, 3)), 0);
    ad_elem *cat = ad_elem_new(AD_K_CATEGORICAL);
    uint64_t three[1] = {3};
    ck_assert_int_eq(ad_array_init(&cat->u.cat.codes, AD_I8, 1, three), 0);
    ((int8_t *)cat->u.cat.codes.data)[2] = -1;
    const char *cs[] = {"x"};
    ck_assert_int_eq(ad_array_from_cstrs(&cat->u.cat.categories, cs, 1), 0);
    cat->u.cat.ordered = true;
    ck_assert_int_eq(ad_frame_add(&a->obs, "kmeans", cat), 0);
    ad_elem *nl = ad_elem_new(AD_K_NULLABLE_INT);
    ck_assert_int_eq(ad_array_init(&nl->u.nl.values, AD_I64, 1, three), 0);
    ck_assert_int_eq(ad_array_init(&nl->u.nl.mask, AD_BOOL, 1, three), 0);
    ((uint8_t *)nl->u.nl.mask.data)[1] = 1;
    ck_assert_int_eq(ad_frame_add(&a->obs, "n", nl), 0);
    ck_assert_int_eq(ad_frame_default_index(&a->var, 2), 0);
    ad_elem *sp = ad_elem_new(AD_K_SPARSE);
    sp->u.sp.shape[0] = 3;
    sp->u.sp.shape[1] = 3;
    uint64_t nnz[1] = {2}, ip[1] = {4};
    ck_assert_int_eq(ad_array_init(&sp->u.sp.data, AD_F32, 1, nnz), 0);
    ck_assert_int_eq(ad_array_init(&sp->u.sp.indices, AD_I32, 1, nnz), 0);
    ck_assert_int_eq(ad_array_init(&sp->u.sp.indptr, AD_I64, 1, ip), 0);
    ((float *)sp->u.sp.data.data)[1] = 7.0f;
    ck_assert_int_eq(ad_dict_put(&a->obsp, "conn", sp), 0);
    uint64_t ms[2] = {3, 2};
    ck_assert_int_eq(ad_dict_put(&a->obsm, "X_pca", f64_elem(2, ms, 1)), 0);
    ad_elem *inner = ad_elem_new(AD_K_DICT);
    ck_assert_int_eq(ad_dict_put(&inner->u.dict, "k", f64_elem(0, NULL, 42)), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "nested", inner), 0);
    ad_elem *df = ad_elem_new(AD_K_FRAME);
    ck_assert_int_eq(ad_frame_default_index(&df->u.df, 2), 0);
    ck_assert_int_eq(ad_frame_add(&df->u.df, "c", strs_elem(cs, 1)), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "df", df), 0);
    ad_elem *ob = ad_elem_new(AD_K_OBJECT);
    ob->u.obj.ndim = 1;
    ob->u.obj.shape[0] = ob->u.obj.n = 2;
    ob->u.obj.kind = calloc(2, 1);
    ob->u.obj.num = calloc(2, sizeof(ad_num));
    ob->u.obj.soff = calloc(3, sizeof(uint64_t));
    ob->u.obj.str = calloc(8, 1);
    ob->u.obj.kind[0] = AD_CELL_STR;
    memcpy(ob->u.obj.str, "hi", 3);
    ob->u.obj.soff[1] = 3;
    ob->u.obj.kind[1] = AD_CELL_INT;
    ob->u.obj.num[1].i = 9;
    ob->u.obj.soff[2] = 4;
    ck_assert_int_eq(ad_dict_put(&a->uns, "obj", ob), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "null", ad_elem_new(AD_K_NULL)), 0);
    a->raw = calloc(1, sizeof *a->raw);
    a->raw->X = f64_elem(2, xs, 9);
    ck_assert_int_eq(ad_frame_default_index(&a->raw->var, 2), 0);
    ck_assert_int_eq(ad_dict_put(&a->raw->varm, "m", f64_elem(2, ms, 3)), 0);
    return a;
}

static int anndata_eq(const ad_anndata *a, const ad_anndata *b)
{
    return a->n_obs == b->n_obs && a->n_vars == b->n_vars && elem_eq(a->X, b->X) &&
           frame_eq(&a->obs, &b->obs) && frame_eq(&a->var, &b->var) &&
           dict_eq(&a->obsm, &b->obsm) && dict_eq(&a->varm, &b->varm) &&
           dict_eq(&a->layers, &b->layers) && dict_eq(&a->obsp, &b->obsp) &&
           dict_eq(&a->varp, &b->varp) && dict_eq(&a->uns, &b->uns) &&
           (a->raw == NULL) == (b->raw == NULL) &&
           (!a->raw || (elem_eq(a->raw->X, b->raw->X) && frame_eq(&a->raw->var, &b->raw->var) &&
                        dict_eq(&a->raw->varm, &b->raw->varm)));
}

START_TEST(clone_is_deep_and_equal)
{
    ad_anndata *a = full_model();
    ad_anndata *c = ad_anndata_clone(a);
    ck_assert_ptr_nonnull(c);
    ck_assert(anndata_eq(a, c));
    ck_assert_uint_eq(ad_anndata_bytes(a), ad_anndata_bytes(c));
    ck_assert_uint_gt(ad_anndata_bytes(a), 0);
    /* no buffer is shared: editing the original leaves the clone as it was */
    ((double *)a->X->u.arr.data)[0] = -1;
    ck_assert(!anndata_eq(a, c));
    ck_assert(((double *)c->X->u.arr.data)[0] == 0.5);
    ad_elem *k = ad_dict_get(&ad_dict_get(&a->uns, "nested")->u.dict, "k");
    ((double *)k->u.arr.data)[0] = 0;
    ad_elem *ck = ad_dict_get(&ad_dict_get(&c->uns, "nested")->u.dict, "k");
    ck_assert(((double *)ck->u.arr.data)[0] == 42);
    ck_assert_ptr_ne(a->obs.index_name, c->obs.index_name);
    ck_assert_str_eq(c->obs.index_name, "voter-id");
    ad_anndata_free(a);
    /* the clone stands on its own after the original is gone */
    ck_assert_str_eq(ad_str_at(&c->obs.index, 2), "2");
    ck_assert_int_eq(ad_elem_clone(NULL) == NULL, 1);
    ad_anndata_free(c);
    ad_anndata_free(NULL);
}
END_TEST

START_TEST(elem_rows_and_encoding)
{
    ad_anndata *a = full_model();
    ck_assert_str_eq(ad_elem_encoding(a->X), "array");
    ck_assert_uint_eq(ad_elem_rows(a->X), 3);
    ck_assert_str_eq(ad_elem_encoding(ad_dict_get(&a->obsp, "conn")), "csr_matrix");
    ck_assert_str_eq(ad_elem_encoding(a->obs.cols[0]), "string-array");
    ck_assert_str_eq(ad_elem_encoding(a->obs.cols[1]), "categorical");
    ck_assert_uint_eq(ad_elem_rows(a->obs.cols[1]), 3);
    ck_assert_str_eq(ad_elem_encoding(a->obs.cols[2]), "nullable-integer");
    ad_elem *nested = ad_dict_get(&a->uns, "nested");
    ck_assert_str_eq(ad_elem_encoding(nested), "dict");
    ck_assert_str_eq(ad_elem_encoding(ad_dict_get(&nested->u.dict, "k")), "numeric-scalar");
    ck_assert_uint_eq(ad_elem_rows(ad_dict_get(&nested->u.dict, "k")), 0);
    ck_assert_str_eq(ad_elem_encoding(ad_dict_get(&a->uns, "df")), "dataframe");
    ck_assert_uint_eq(ad_elem_rows(ad_dict_get(&a->uns, "df")), 2);
    ck_assert_str_eq(ad_elem_encoding(ad_dict_get(&a->uns, "obj")), "object");
    ck_assert_uint_eq(ad_elem_rows(ad_dict_get(&a->uns, "obj")), 2);
    ck_assert_str_eq(ad_elem_encoding(ad_dict_get(&a->uns, "null")), "null");
    ad_anndata_free(a);
}
END_TEST

/* ---------------------------------------------------------- dict/frame */

static double scalar(const ad_elem *e)
{
    return ((double *)e->u.arr.data)[0];
}

START_TEST(dict_put_replace_remove)
{
    ad_dict d = {0};
    ck_assert_int_eq(ad_dict_put(&d, "a", f64_elem(0, NULL, 1)), 0);
    ck_assert_int_eq(ad_dict_put(&d, "b", f64_elem(0, NULL, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&d, "c", f64_elem(0, NULL, 3)), 0);
    /* replacing keeps the position and frees the old value (ASan checks) */
    ck_assert_int_eq(ad_dict_put(&d, "b", f64_elem(0, NULL, 20)), 0);
    ck_assert_uint_eq(d.n, 3);
    ck_assert_str_eq(d.keys[1], "b");
    ck_assert(scalar(ad_dict_get(&d, "b")) == 20);
    ck_assert_ptr_null(ad_dict_get(&d, "B"));
    ad_dict_remove_at(&d, 0);
    ck_assert_uint_eq(d.n, 2);
    ck_assert_str_eq(d.keys[0], "b");
    ck_assert_str_eq(d.keys[1], "c");
    ck_assert_ptr_null(ad_dict_get(&d, "a"));
    ad_dict_remove_at(&d, 5); /* out of range: ignored */
    ck_assert_uint_eq(d.n, 2);
    /* many keys grow the arrays */
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        ck_assert_int_eq(ad_dict_put(&d, k, f64_elem(0, NULL, i)), 0);
    }
    ck_assert_uint_eq(d.n, 102);
    ck_assert(scalar(ad_dict_get(&d, "k99")) == 99);
    ad_dict_free(&d);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_ptr_null(d.keys);
}
END_TEST

START_TEST(frame_add_replace_remove)
{
    ad_frame f = {0};
    ck_assert_int_eq(ad_frame_default_index(&f, 2), 0);
    uint64_t two[1] = {2};
    ck_assert_int_eq(ad_frame_add(&f, "x", f64_elem(1, two, 0)), 0);
    ck_assert_int_eq(ad_frame_add(&f, "y", f64_elem(1, two, 10)), 0);
    ck_assert_int_eq(ad_frame_add(&f, "x", f64_elem(1, two, 100)), 0);
    ck_assert_uint_eq(f.ncols, 2);
    ck_assert_str_eq(f.names[0], "x");
    ck_assert(scalar(f.cols[0]) == 100);
    ad_frame_remove_at(&f, 0);
    ck_assert_uint_eq(f.ncols, 1);
    ck_assert_str_eq(f.names[0], "y");
    ck_assert_uint_eq(f.n_rows, 2); /* rows and index stay */
    ck_assert_str_eq(ad_str_at(&f.index, 1), "1");
    ad_frame_free(&f);
}
END_TEST

START_TEST(default_index)
{
    ad_frame f = {0};
    ck_assert_int_eq(ad_frame_default_index(&f, 12), 0);
    ck_assert_uint_eq(f.n_rows, 12);
    ck_assert_int_eq(f.index.dtype, AD_STR);
    ck_assert_int_eq(f.index.ndim, 1);
    ck_assert_uint_eq(f.index.n, 12);
    ck_assert_str_eq(ad_str_at(&f.index, 0), "0");
    ck_assert_str_eq(ad_str_at(&f.index, 11), "11");
    ck_assert_uint_eq(ad_str_len(&f.index, 11), 2);
    /* every row across the digit-count boundaries is str(i), packed with
     * one NUL each (what ad_sb_finish would have built) */
    ck_assert_int_eq(ad_frame_default_index(&f, 100001), 0);
    char want[24];
    uint64_t off = 0;
    for (uint64_t i = 0; i < 100001; i++) {
        snprintf(want, sizeof want, "%llu", (unsigned long long)i);
        ck_assert_uint_eq(f.index.soff[i], off);
        ck_assert_str_eq(ad_str_at(&f.index, i), want);
        off += strlen(want) + 1;
    }
    ck_assert_uint_eq(f.index.soff[100001], off);
    /* called again it replaces the old index */
    ck_assert_int_eq(ad_frame_default_index(&f, 0), 0);
    ck_assert_uint_eq(f.n_rows, 0);
    ck_assert_uint_eq(f.index.n, 0);
    ck_assert_int_eq(f.index.dtype, AD_STR);
    ad_frame_free(&f);
}
END_TEST

/* ------------------------------------------------------------ pyfloat */

/* Each row: a double (hex, exact) and Python 3.11's repr() of it. */
static const struct {
    double x;
    const char *repr;
} pyfloats[] = {
    {0x0.0p+0, "0.0"},
    {-0x0.0p+0, "-0.0"},
    {0x1.0000000000000p+0, "1.0"},
    {-0x1.8000000000000p+0, "-1.5"},
    {0x1.999999999999ap-4, "0.1"},
    {0x1.5555555555555p-2, "0.3333333333333333"},
    {0x1.5555555555555p-1, "0.6666666666666666"},
    {0x1.1c37937e08000p+53, "1e+16"},
    {0x1.c6bf526340000p+49, "1000000000000000.0"},
    {0x1.1c37937e07fffp+53, "9999999999999998.0"},
    {0x1.b69b4ba630f35p+56, "1.2345678901234568e+17"},
    {0x1.a36e2eb1c432dp-14, "0.0001"},
    {0x1.4f8b588e368f1p-17, "1e-05"},
    {0x1.02e4b6ce5dc68p-13, "0.00012345"},
    {0x1.421f5f40d8376p-23, "1.5e-07"},
    {0x0.0000000000001p-1022, "5e-324"},
    {0x1.fffffffffffffp+1023, "1.7976931348623157e+308"},
    {0x1.4000000000000p+1, "2.5"},
    {0x1.9000000000000p+6, "100.0"},
    {0x1.0f0cf064dd592p+73, "1e+22"},
    {0x1.b1ae4d6e2ef50p+69, "1e+21"},
    {0x1.3333333333334p-2, "0.30000000000000004"},
    {0x1.0000000000000p+53, "9007199254740992.0"},
    {0x1.edd2f1a9fbe77p+6, "123.456"},
    {0x1.249ad2594c37dp+332, "1e+100"},
    {0x1.0000000000000p-1022, "2.2250738585072014e-308"},
    {0x1.2d68700000000p+20, "1234567.0"},
    {0x1.0000000000000p-1, "0.5"},
    {0x0.012688b70e62bp-1022, "1e-310"},
    {0x1.921f9f01b866ep+1, "3.14159"},
    {-0x1.12e0be826d695p-32, "-2.5e-10"},
    {0x1.1666666666666p+2, "4.35"},
    {0x1.aa535d3d0c000p+53, "1.5e+16"},
    {0x1.5ee2a2eb5a5c4p+53, "1.2345678901234568e+16"},
    {0x1.0624dd2f1a9fcp-10, "0.001"},
    {0x1.86a0000000000p+16, "100000.0"},
    {0x1.ad7f29abcaf48p-24, "1e-07"},
};

START_TEST(pyfloat_matches_python_repr)
{
    for (size_t i = 0; i < sizeof pyfloats / sizeof *pyfloats; i++) {
        char buf[32];
        memset(buf, 'Z', sizeof buf);
        ad_fmt_pyfloat(pyfloats[i].x, buf);
        ck_assert_msg(memchr(buf, '\0', sizeof buf) != NULL, "row %zu not terminated", i);
        ck_assert_msg(strcmp(buf, pyfloats[i].repr) == 0, "%a: got %s, Python says %s",
                      pyfloats[i].x, buf, pyfloats[i].repr);
    }
    char buf[32];
    ad_fmt_pyfloat(NAN, buf);
    ck_assert_str_eq(buf, "nan");
    ad_fmt_pyfloat(-NAN, buf);
    ck_assert_str_eq(buf, "nan"); /* Python prints no sign on NaN */
    ad_fmt_pyfloat(INFINITY, buf);
    ck_assert_str_eq(buf, "inf");
    ad_fmt_pyfloat(-INFINITY, buf);
    ck_assert_str_eq(buf, "-inf");
    ck_assert_str_eq(ad_fmt_pybool(true), "True");
    ck_assert_str_eq(ad_fmt_pybool(false), "False");
}
END_TEST

START_TEST(empty_things_clone_and_free)
{
    /* zeroed structs are valid empty values: clone and free them */
    ad_anndata *a = ad_anndata_new();
    ck_assert_ptr_nonnull(a);
    ad_anndata *c = ad_anndata_clone(a);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(c->X);
    ck_assert_ptr_null(c->raw);
    ck_assert_uint_eq(ad_anndata_bytes(c), 0);
    ad_anndata_free(c);
    ad_anndata_free(a);
    ad_elem *n = ad_elem_new(AD_K_NULL);
    ad_elem *nc = ad_elem_clone(n);
    ck_assert_ptr_nonnull(nc);
    ck_assert_int_eq(nc->kind, AD_K_NULL);
    ad_elem_free(n);
    ad_elem_free(nc);
    ad_elem *o = ad_elem_new(AD_K_OBJECT); /* 0 cells, no buffers */
    ad_elem *oc = ad_elem_clone(o);
    ck_assert_ptr_nonnull(oc);
    ck_assert_uint_eq(oc->u.obj.n, 0);
    ad_elem_free(o);
    ad_elem_free(oc);
    ad_frame f = {0}, fc;
    ck_assert_int_eq(ad_frame_clone(&fc, &f), 0);
    ck_assert_uint_eq(fc.ncols, 0);
    ad_frame_free(&fc);
    ad_frame_free(&f);
    ad_strbuild b = {0};
    ck_assert_int_eq(ad_sb_push(&b, "x", SIZE_MAX / 2), -1); /* absurd length refused */
    ad_sb_free(&b);
}
END_TEST

/* Numbers in order of first insertion through several growths; repeats
 * found, absent keys absent, empty and long keys alike. */
START_TEST(strmap_numbers_keys_in_first_order)
{
    enum { N = 5000 };
    static char keys[N][16];
    adx_strmap m = {0};
    ck_assert_uint_eq(adx_strmap_get(&m, "x"), SIZE_MAX); /* empty map */
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], i ? "k%d" : "", i);
        size_t v;
        bool added;
        ck_assert_int_eq(adx_strmap_add(&m, keys[i], &v, &added), 0);
        ck_assert(added);
        ck_assert_uint_eq(v, (size_t)i);
    }
    ck_assert_uint_eq(m.n, N);
    for (int i = N - 1; i >= 0; i -= 7) {
        char again[16]; /* another pointer, the same text */
        memcpy(again, keys[i], sizeof again);
        size_t v;
        bool added = true;
        ck_assert_int_eq(adx_strmap_add(&m, again, &v, &added), 0);
        ck_assert(!added);
        ck_assert_uint_eq(v, (size_t)i);
        ck_assert_uint_eq(adx_strmap_get(&m, again), (size_t)i);
    }
    ck_assert_uint_eq(m.n, N);
    ck_assert_uint_eq(adx_strmap_get(&m, "k5000"), SIZE_MAX);
    ck_assert_uint_eq(adx_strmap_get(&m, "k"), SIZE_MAX);
    adx_strmap_free(&m);
    ck_assert_uint_eq(m.n, 0);
    ck_assert_uint_eq(adx_strmap_get(&m, "k1"), SIZE_MAX);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model");
    TCase *t = tcase_create("arrays");
    tcase_add_test(t, array_init_numeric_is_zeroed);
    tcase_add_test(t, array_init_strings_are_empty);
    tcase_add_test(t, array_init_scalar_and_empty);
    tcase_add_test(t, array_init_rejects_overflow_and_bad_args);
    tcase_add_test(t, bytes_and_shape_product);
    tcase_add_test(t, dtype_names_and_classes);
    tcase_add_test(t, get_converts_every_dtype);
    tcase_add_test(t, string_builder_shapes);
    tcase_add_test(t, string_builder_counts_and_lengths);
    tcase_add_test(t, from_cstrs);
    suite_add_tcase(s, t);
    TCase *e = tcase_create("elements");
    tcase_add_test(e, clone_is_deep_and_equal);
    tcase_add_test(e, elem_rows_and_encoding);
    tcase_add_test(e, dict_put_replace_remove);
    tcase_add_test(e, frame_add_replace_remove);
    tcase_add_test(e, default_index);
    tcase_add_test(e, pyfloat_matches_python_repr);
    tcase_add_test(e, empty_things_clone_and_free);
    tcase_add_test(e, strmap_numbers_keys_in_first_order);
    suite_add_tcase(s, e);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
