/* Unit tests for the JSON decoder: every payload form, inference, errors
 * with their pointers, limits, and the real Polis fixture. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "adx_jdec.h"
#include "jdec_tree.h"

static adx_limits lim;
static adx_report rep;
static adx_err err;
static jdec_part_fn part_fn; /* the binary-part callback dec() passes, NULL = none */

static void setup(void)
{
    part_fn = NULL;
    adx_limits_default(&lim);
    memset(&rep, 0, sizeof rep);
    adx_err_init(&err);
}

static void teardown(void)
{
    rep_free(&rep);
}

/* Decode an AnnData given as JSON text (single quotes stand for double
 * quotes to keep the literals readable). */
static ad_anndata *dec_opts(const char *text, const char *const *globs, size_t nglobs)
{
    char *t = strdup(text);
    for (char *p = t; *p; p++)
        if (*p == '\'') *p = '"';
    jdec_opts o = {.limits = &lim,
                   .cat_globs = globs,
                   .n_cat_globs = nglobs,
                   .base_ptr = "/adata",
                   .part = part_fn};
    jdec_doc *doc = jdec_read_buffer(t, strlen(t), &o, &err);
    free(t);
    /* a parse-time limit (max_keys) fails here, with its pointer */
    if (!doc && err.type == ADX_E_LIMIT) return NULL;
    ck_assert_msg(doc != NULL, "test JSON did not parse: %s", err.detail);
    ad_anndata *a = jdec_doc_anndata(doc, NULL, &o, &rep, &err);
    jdec_doc_free(doc);
    return a;
}

static ad_anndata *dec(const char *text)
{
    return dec_opts(text, NULL, 0);
}

/* Expect failure with the given type and pointer; the message must contain
 * `needle`. */
static void fails(const char *text, adx_errtype t, const char *ptr, const char *needle)
{
    adx_err_init(&err);
    ad_anndata *a = dec(text);
    ck_assert_msg(a == NULL, "expected failure for %s", text);
    ck_assert_int_eq(err.type, t);
    ck_assert_int_ge(err.n_items, 1);
    ck_assert_str_eq(err.items[0].pointer, ptr);
    ck_assert_msg(strstr(err.detail, needle) != NULL, "message '%s' lacks '%s'", err.detail,
                  needle);
}

static ad_elem *uns(const ad_anndata *a, const char *k)
{
    ad_elem *e = ad_dict_get(&a->uns, k);
    ck_assert_msg(e != NULL, "uns/%s missing", k);
    return e;
}

static ad_elem *obscol(const ad_anndata *a, const char *name)
{
    for (size_t i = 0; i < a->obs.ncols; i++)
        if (!strcmp(a->obs.names[i], name)) return a->obs.cols[i];
    ck_abort_msg("obs column %s missing", name);
    return NULL;
}

static double f64(const ad_array *a, uint64_t i)
{
    return ((const double *)a->data)[i];
}
static int64_t i64(const ad_array *a, uint64_t i)
{
    return ad_array_get_i64(a, i);
}

static const rep_entry *find_rep(const char *path, const char *action)
{
    for (size_t i = 0; i < rep.n; i++)
        if (!strcmp(rep.e[i].path, path) && !strcmp(rep.e[i].action, action)) return &rep.e[i];
    return NULL;
}

/* ================================================================ matrix */

START_TEST(nested_float_with_null)
{
    ad_anndata *a = dec("{'X': [[1, -1, null], [0, 1, 1]]}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n_obs, 2);
    ck_assert_int_eq(a->n_vars, 3);
    ck_assert_int_eq(a->X->kind, AD_K_ARRAY);
    const ad_array *x = &a->X->u.arr;
    ck_assert_int_eq(x->dtype, AD_F64);
    ck_assert_int_eq(x->ndim, 2);
    ck_assert(f64(x, 0) == 1.0 && f64(x, 1) == -1.0);
    ck_assert(isnan(f64(x, 2)));
    ck_assert(f64(x, 5) == 1.0);
    /* default indexes */
    ck_assert_int_eq(a->obs.n_rows, 2);
    ck_assert_str_eq(ad_str_at(&a->obs.index, 1), "1");
    ck_assert_int_eq(a->var.index.n, 3);
    ck_assert_str_eq(ad_str_at(&a->var.index, 2), "2");
    ad_anndata_free(a);
}
END_TEST

START_TEST(nested_int_bool_real)
{
    ad_anndata *a = dec("{'X': [[1, 2], [3, -4]]}");
    ck_assert_int_eq(a->X->u.arr.dtype, AD_I64);
    ck_assert_int_eq(i64(&a->X->u.arr, 3), -4);
    ad_anndata_free(a);
    a = dec("{'X': [[true, false]]}");
    ck_assert_int_eq(a->X->u.arr.dtype, AD_BOOL);
    ck_assert_int_eq(((uint8_t *)a->X->u.arr.data)[0], 1);
    ck_assert_int_eq(((uint8_t *)a->X->u.arr.data)[1], 0);
    ad_anndata_free(a);
    a = dec("{'X': [[1, 2.5]]}");
    ck_assert_int_eq(a->X->u.arr.dtype, AD_F64);
    ck_assert(f64(&a->X->u.arr, 1) == 2.5);
    ad_anndata_free(a);
}
END_TEST

START_TEST(nan_spellings)
{
    ad_anndata *a =
        dec("{'X': [[1, 'NaN', 'Infinity', '-Infinity'], ['inf', '-inf', 'nan', 'INF']]}");
    ck_assert_ptr_nonnull(a);
    const ad_array *x = &a->X->u.arr;
    ck_assert_int_eq(x->dtype, AD_F64);
    ck_assert(f64(x, 0) == 1.0);
    ck_assert(isnan(f64(x, 1)));
    ck_assert(isinf(f64(x, 2)) && f64(x, 2) > 0);
    ck_assert(isinf(f64(x, 3)) && f64(x, 3) < 0);
    ck_assert(isinf(f64(x, 4)) && f64(x, 4) > 0);
    ck_assert(isinf(f64(x, 5)) && f64(x, 5) < 0);
    ck_assert(isnan(f64(x, 6)));
    ck_assert(isinf(f64(x, 7)));
    ad_anndata_free(a);
}
END_TEST

START_TEST(matrix_errors)
{
    fails("{'X': [[1, 2], [3]]}", ADX_E_SHAPE, "/adata/X/1", "row 1 has length 1, expected 2");
    fails("{'X': [[1, 2], 3]}", ADX_E_SHAPE, "/adata/X/1", "expected an array of length 2");
    fails("{'X': [[1, 'a']]}", ADX_E_SCHEMA, "/adata/X/0/1", "expected a number, got string");
    fails("{'X': [1, 2]}", ADX_E_SHAPE, "/adata/X", "2-d");
    fails("{'X': 'abc'}", ADX_E_SCHEMA, "/adata/X", "expected a matrix");
    fails("{'X': [[[1]]]}", ADX_E_SHAPE, "/adata/X", "2-d");
}
END_TEST

START_TEST(typed_dense_flat_and_nested)
{
    ad_anndata *a = dec("{'X': {'encoding-type': 'array', 'dtype': 'float32', 'shape': [2, 3], "
                        "'data': [1, 2, 3, 4, 5, null]}}");
    ck_assert_ptr_nonnull(a);
    const ad_array *x = &a->X->u.arr;
    ck_assert_int_eq(x->dtype, AD_F32);
    ck_assert_int_eq(x->shape[0], 2);
    ck_assert_int_eq(x->shape[1], 3);
    ck_assert(((float *)x->data)[4] == 5.0f);
    ck_assert(isnan(((float *)x->data)[5]));
    ad_anndata_free(a);
    a = dec("{'X': {'encoding-type': 'array', 'dtype': 'int16', 'shape': [2, 2], "
            "'data': [[1, -2], [300, 4]]}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->X->u.arr.dtype, AD_I16);
    ck_assert_int_eq(((int16_t *)a->X->u.arr.data)[2], 300);
    ad_anndata_free(a);
    /* uint8 and shape from data when absent */
    a = dec("{'X': {'encoding-type': 'array', 'dtype': 'uint8', 'data': [[255, 0]]}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->X->u.arr.dtype, AD_U8);
    ck_assert_int_eq(a->n_vars, 2);
    ad_anndata_free(a);
}
END_TEST

START_TEST(typed_dense_errors)
{
    fails("{'X': {'encoding-type': 'array', 'dtype': 'uint8', 'shape': [1, 2], 'data': [1, 300]}}",
          ADX_E_SCHEMA, "/adata/X/data/1", "300 is out of range for uint8");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'int32', 'shape': [1, 2], 'data': [1, 1.5]}}",
          ADX_E_SCHEMA, "/adata/X/data/1", "1.5 is not an integer");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'int64', 'shape': [1, 2], 'data': [1, "
          "null]}}",
          ADX_E_SCHEMA, "/adata/X/data/1", "nullable-integer");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'bool', 'shape': [1, 2], 'data': [true, "
          "null]}}",
          ADX_E_SCHEMA, "/adata/X/data/1", "nullable-boolean");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'float16', 'shape': [1, 1], 'data': [1]}}",
          ADX_E_SCHEMA, "/adata/X/dtype", "bool, int8, int16, int32, int64, uint8");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'float64', 'shape': [2, 3], 'data': [1, 2, "
          "3, 4, 5]}}",
          ADX_E_SHAPE, "/adata/X/data", "5 values, shape (2, 3) needs 6");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'float64', 'shape': [2, 2], 'data': [[1, 2, "
          "3], [4, 5, 6]]}}",
          ADX_E_SHAPE, "/adata/X/data", "data has shape (2, 3), expected (2, 2)");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'float64', 'shape': [1, 1], 'data': [1], "
          "'extra': 1}}",
          ADX_E_SCHEMA, "/adata/X/extra", "unknown key");
}
END_TEST

START_TEST(base64_forms)
{
    /* float32 [1, 2] little-endian: 0000803f 00000040 */
    ad_anndata *a = dec("{'X': {'encoding-type': 'array', 'dtype': 'float32', 'shape': [1, 2], "
                        "'base64': 'AACAPwAAAEA='}}");
    ck_assert_ptr_nonnull(a);
    ck_assert(((float *)a->X->u.arr.data)[0] == 1.0f);
    ck_assert(((float *)a->X->u.arr.data)[1] == 2.0f);
    ad_anndata_free(a);
    /* padding optional */
    a = dec("{'X': {'encoding-type': 'array', 'dtype': 'float32', 'shape': [1, 2], "
            "'base64': 'AACAPwAAAEA'}}");
    ck_assert_ptr_nonnull(a);
    ck_assert(((float *)a->X->u.arr.data)[1] == 2.0f);
    ad_anndata_free(a);
    /* int16 [1, -1, 258] */
    a = dec("{'X': {'encoding-type': 'array', 'dtype': 'int16', 'shape': [3, 1], "
            "'base64': 'AQD//wIB'}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(((int16_t *)a->X->u.arr.data)[1], -1);
    ck_assert_int_eq(((int16_t *)a->X->u.arr.data)[2], 258);
    ad_anndata_free(a);
}
END_TEST

START_TEST(base64_errors)
{
    fails("{'X': {'encoding-type': 'array', 'dtype': 'float32', 'shape': [1, 3], "
          "'base64': 'AACAPwAAAEA='}}",
          ADX_E_SHAPE, "/adata/X/base64", "decodes to 8 bytes, expected 12");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'float32', 'shape': [1, 2], "
          "'base64': 'AACA*wAAAEA='}}",
          ADX_E_SCHEMA, "/adata/X/base64", "invalid base64 character '*' at offset 4");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'float32', 'shape': [1, 2], "
          "'base64': 'AACA-wAAAEA='}}",
          ADX_E_SCHEMA, "/adata/X/base64", "invalid base64 character '-'");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'float32', 'shape': [1, 2], "
          "'base64': 'AAC=PwAAAEA='}}",
          ADX_E_SCHEMA, "/adata/X/base64", "invalid base64 character '='");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'uint8', 'shape': [1, 1], 'base64': 'AAAAA'}}",
          ADX_E_SCHEMA, "/adata/X/base64", "truncated");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'bool', 'shape': [1, 1], 'base64': 'Ag=='}}",
          ADX_E_SCHEMA, "/adata/X/base64/0", "not 0 or 1");
    fails("{'X': {'encoding-type': 'array', 'shape': [1, 1], 'base64': 'AA=='}}", ADX_E_SCHEMA,
          "/adata/X", "needs a \"dtype\"");
}
END_TEST

/* ================================================================ sparse */

START_TEST(csr_valid)
{
    /* [[1, 0, 2], [0, 0, 3]] */
    ad_anndata *a = dec("{'X': {'encoding-type': 'csr_matrix', 'shape': [2, 3], 'data': [1, 2, "
                        "3], 'indices': [0, 2, 2], 'indptr': [0, 2, 3]}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->X->kind, AD_K_SPARSE);
    const ad_sparse *s = &a->X->u.sp;
    ck_assert(!s->csc);
    ck_assert_int_eq(a->n_obs, 2);
    ck_assert_int_eq(a->n_vars, 3);
    ck_assert_int_eq(s->data.dtype, AD_I64);
    ck_assert_int_eq(s->indices.dtype, AD_I32);
    ck_assert_int_eq(s->indptr.dtype, AD_I32);
    ck_assert_int_eq(i64(&s->indices, 1), 2);
    ck_assert_int_eq(i64(&s->indptr, 2), 3);
    ad_anndata_free(a);
}
END_TEST

START_TEST(csc_typed_blocks)
{
    /* csc of [[1, 0], [0, 2], [3, 0]]: indptr [0,2,3], indices [0,2,1] */
    ad_anndata *a = dec("{'X': {'encoding-type': 'csc_matrix', 'shape': [3, 2], "
                        "'data': {'dtype': 'float32', 'data': [1, 3, 2]}, "
                        "'indices': {'dtype': 'int64', 'data': [0, 2, 1]}, "
                        "'indptr': {'dtype': 'int32', 'base64': 'AAAAAAIAAAADAAAA'}}}");
    ck_assert_ptr_nonnull(a);
    const ad_sparse *s = &a->X->u.sp;
    ck_assert(s->csc);
    ck_assert_int_eq(a->n_obs, 3);
    ck_assert_int_eq(a->n_vars, 2);
    ck_assert_int_eq(s->data.dtype, AD_F32);
    ck_assert_int_eq(s->indices.dtype, AD_I64); /* typed blocks keep their dtype */
    ck_assert_int_eq(s->indptr.dtype, AD_I32);
    ck_assert_int_eq(i64(&s->indptr, 2), 3);
    ad_anndata_free(a);
}
END_TEST

START_TEST(sparse_errors)
{
    const char *pre = "{'X': {'encoding-type': 'csr_matrix', 'shape': [2, 3], ";
    char buf[512];
#define SP(rest) (snprintf(buf, sizeof buf, "%s%s}}", pre, rest), buf)
    fails(SP("'data': [1, 2], 'indices': [0, 1], 'indptr': [0, 2]"), ADX_E_SHAPE, "/adata/X/indptr",
          "indptr has 2 entries, expected 3");
    fails(SP("'data': [1, 2], 'indices': [0], 'indptr': [0, 1, 2]"), ADX_E_SHAPE,
          "/adata/X/indices", "indices has 1 entries, data has 2");
    fails(SP("'data': [1, 2], 'indices': [0, 1], 'indptr': [1, 1, 2]"), ADX_E_SCHEMA,
          "/adata/X/indptr/0", "indptr[0] = 1, expected 0");
    fails(SP("'data': [1, 2], 'indices': [0, 1], 'indptr': [0, 3, 2]"), ADX_E_SCHEMA,
          "/adata/X/indptr/2", "indptr[2] = 2 < indptr[1] = 3");
    fails(SP("'data': [1, 2], 'indices': [0, 1], 'indptr': [0, 1, 1]"), ADX_E_SCHEMA,
          "/adata/X/indptr/2", "indptr[2] = 1, expected nnz = 2");
    fails(SP("'data': [1, 2], 'indices': [0, 3], 'indptr': [0, 1, 2]"), ADX_E_SCHEMA,
          "/adata/X/indices/1", "indices[1] = 3 is out of range [0, 3)");
    fails(SP("'data': [1, 2], 'indices': [-1, 0], 'indptr': [0, 1, 2]"), ADX_E_SCHEMA,
          "/adata/X/indices/0", "out of range");
    fails(SP("'data': [1, 2], 'indices': [0, 1.5], 'indptr': [0, 1, 2]"), ADX_E_SCHEMA,
          "/adata/X/indices/1", "expected an integer index");
    fails(SP("'data': [1, 2], 'indices': {'dtype': 'float32', 'data': [0, 1]}, "
             "'indptr': [0, 1, 2]"),
          ADX_E_SCHEMA, "/adata/X/indices/dtype", "integer dtype");
    fails(SP("'data': [1, 'x'], 'indices': [0, 1], 'indptr': [0, 1, 2]"), ADX_E_SCHEMA,
          "/adata/X/data/1", "expected a number");
    fails("{'X': {'encoding-type': 'csr_matrix', 'shape': [2, 3], 'data': [], 'indices': []}}",
          ADX_E_SCHEMA, "/adata/X", "needs \"indptr\"");
#undef SP
}
END_TEST

/* ============================================================== frames */

START_TEST(frame_columnar)
{
    ad_anndata *a = dec("{'obs': {'index': ['p1', 'p2', 'p3'], 'index_name': 'voter-id', "
                        "'columns': {'n': [1, 2, 3], 'f': [1, null, 2], 'b': [true, false, true], "
                        "'nb': [true, null, false], 's': ['a', 'b', 'c'], 'sn': ['a', null, 'c'], "
                        "'allnull': [null, null, null], 'mix': ['x', 1, 2.5], "
                        "'nest': [[1], {'a': 1}, 'z']}}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n_obs, 3);
    ck_assert_str_eq(a->obs.index_name, "voter-id");
    ck_assert_str_eq(ad_str_at(&a->obs.index, 2), "p3");
    ck_assert_int_eq(a->obs.ncols, 9);
    /* key order is column order */
    ck_assert_str_eq(a->obs.names[0], "n");
    ck_assert_str_eq(a->obs.names[8], "nest");
    ck_assert_int_eq(obscol(a, "n")->u.arr.dtype, AD_I64);
    const ad_array *f = &obscol(a, "f")->u.arr;
    ck_assert_int_eq(f->dtype, AD_F64);
    ck_assert(isnan(f64(f, 1)) && f64(f, 2) == 2.0);
    ck_assert_int_eq(obscol(a, "b")->u.arr.dtype, AD_BOOL);
    ad_elem *nb = obscol(a, "nb");
    ck_assert_int_eq(nb->kind, AD_K_NULLABLE_BOOL);
    ck_assert_int_eq(((uint8_t *)nb->u.nl.mask.data)[1], 1);
    ck_assert_int_eq(((uint8_t *)nb->u.nl.mask.data)[0], 0);
    ck_assert_int_eq(((uint8_t *)nb->u.nl.values.data)[0], 1);
    ck_assert_int_eq(obscol(a, "s")->u.arr.dtype, AD_STR);
    ck_assert_str_eq(ad_str_at(&obscol(a, "s")->u.arr, 1), "b");
    ad_elem *sn = obscol(a, "sn");
    ck_assert_int_eq(sn->kind, AD_K_OBJECT);
    ck_assert_int_eq(sn->u.obj.kind[0], AD_CELL_STR);
    ck_assert_str_eq(ad_object_text(&sn->u.obj, 0), "a");
    ck_assert_int_eq(sn->u.obj.kind[1], AD_CELL_NULL);
    ad_elem *an = obscol(a, "allnull");
    ck_assert_int_eq(an->kind, AD_K_OBJECT);
    ck_assert_int_eq(an->u.obj.n, 3);
    ad_elem *mix = obscol(a, "mix");
    ck_assert_int_eq(mix->kind, AD_K_OBJECT);
    ck_assert_int_eq(mix->u.obj.kind[1], AD_CELL_INT);
    ck_assert_int_eq(mix->u.obj.num[1].i, 1);
    ck_assert_int_eq(mix->u.obj.kind[2], AD_CELL_REAL);
    ck_assert(mix->u.obj.num[2].r == 2.5);
    ad_elem *nest = obscol(a, "nest");
    ck_assert_int_eq(nest->u.obj.kind[0], AD_CELL_JSON);
    ck_assert_str_eq(ad_object_text(&nest->u.obj, 0), "[1]");
    ck_assert_str_eq(ad_object_text(&nest->u.obj, 1), "{\"a\":1}");
    ck_assert_str_eq(ad_object_text(&nest->u.obj, 2), "z");
    ck_assert_int_eq(rep.n, 0);
    ad_anndata_free(a);
}
END_TEST

/* Integer tokens above INT64_MAX (uint64) wherever they become text: index
 * values, object cells (kept exact for sanitize), str() categories, JSON
 * text. Their int64 view is clamped, which once leaked into all of them. */
START_TEST(big_unsigned_integers_as_text)
{
    static const char *const km[] = {"kmeans_*"};
    ad_anndata *a = dec_opts("{'obs': {'index': [12345678901234567890, 'a'], "
                             "'columns': {'c': [18446744073709551615, 'x'], "
                             "'kmeans_k': [9223372036854775808, 'y'], "
                             "'n': [[18446744073709551615, -9223372036854775808], 'z']}}}",
                             km, 1);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_str_eq(ad_str_at(&a->obs.index, 0), "12345678901234567890");
    const ad_object *c = &obscol(a, "c")->u.obj;
    ck_assert_int_eq(c->kind[0], AD_CELL_UINT);
    ck_assert(c->num[0].u == UINT64_MAX);
    const ad_array *cats = &obscol(a, "kmeans_k")->u.cat.categories;
    ck_assert_str_eq(ad_str_at(cats, 0), "9223372036854775808");
    ck_assert_str_eq(ad_object_text(&obscol(a, "n")->u.obj, 0),
                     "[18446744073709551615,-9223372036854775808]");
    ad_anndata_free(a);
    /* int64 categories cannot hold it: refused like a plain int64 column */
    fails("{'obs': {'columns': {'kmeans_j': [1, 9223372036854775808]}}}", ADX_E_SCHEMA,
          "/adata/obs/columns/kmeans_j/1", "9223372036854775808 is out of range for int64");
}
END_TEST

/* JSON text of nested values is what Python's json.dumps writes: 1e400 is
 * inf, which JSON cannot spell, so Infinity as json.loads reads it; reals
 * by repr() (shortest round trip), not jansson's 17 digits. */
START_TEST(json_text_reals_as_python_dumps)
{
    ad_anndata *a = dec("{'uns': {'l': [{'b': 1e400, 'c': -1e400}, [0.1, 1e16, 1e-05, 100.0, "
                        "-0.0, 0.0001, 9999999999999998.0, 1e22, 5e-324, 1.7976931348623157e308, "
                        "0.30000000000000004, 2.5e-7, 123456.789]]}}");
    ck_assert_msg(a != NULL, "%s", err.detail);
    const ad_object *l = &uns(a, "l")->u.obj;
    ck_assert_int_eq(l->kind[0], AD_CELL_JSON);
    ck_assert_str_eq(ad_object_text(l, 0), "[{\"b\":Infinity,\"c\":-Infinity},[0.1,1e+16,1e-05,"
                                           "100.0,-0.0,0.0001,9999999999999998.0,1e+22,5e-324,"
                                           "1.7976931348623157e+308,0.30000000000000004,2.5e-07,"
                                           "123456.789]]");
    ad_anndata_free(a);
}
END_TEST

START_TEST(frame_split)
{
    ad_anndata *a = dec("{'var': {'index': ['g1', 'g2'], 'columns': ['a', 'b'], "
                        "'data': [[1, 'x'], [2, 'y']]}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n_vars, 2);
    ck_assert_int_eq(a->var.ncols, 2);
    ck_assert_str_eq(a->var.names[1], "b");
    ck_assert_int_eq(a->var.cols[0]->u.arr.dtype, AD_I64);
    ck_assert_int_eq(i64(&a->var.cols[0]->u.arr, 1), 2);
    ck_assert_str_eq(ad_str_at(&a->var.cols[1]->u.arr, 1), "y");
    ck_assert_str_eq(ad_str_at(&a->var.index, 0), "g1");
    ad_anndata_free(a);
    fails("{'var': {'columns': ['a', 'b'], 'data': [[1, 'x'], [2]]}}", ADX_E_SHAPE,
          "/adata/var/data/1", "row 1 has 1 values, expected 2");
    fails("{'var': {'index': ['g1'], 'columns': ['a'], 'data': [[1], [2]]}}", ADX_E_SHAPE,
          "/adata/var/data", "length 2, expected 1");
    fails("{'var': {'columns': ['a', 'a'], 'data': []}}", ADX_E_SCHEMA, "/adata/var/columns/1",
          "duplicate column");
}
END_TEST

START_TEST(frame_records)
{
    ad_anndata *a = dec("{'obs': [{'a': 1, 'b': 'x'}, {'a': 2, 'c': true}, {'b': 'z', 'a': 3}]}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n_obs, 3);
    ck_assert_int_eq(a->obs.ncols, 3);
    ck_assert_str_eq(a->obs.names[0], "a");
    ck_assert_str_eq(a->obs.names[1], "b");
    ck_assert_str_eq(a->obs.names[2], "c");
    ck_assert_int_eq(a->obs.cols[0]->u.arr.dtype, AD_I64);
    ck_assert_int_eq(i64(&a->obs.cols[0]->u.arr, 2), 3);
    ck_assert_int_eq(a->obs.cols[1]->kind, AD_K_OBJECT); /* missing b → null */
    ck_assert_int_eq(a->obs.cols[1]->u.obj.kind[1], AD_CELL_NULL);
    ck_assert_int_eq(a->obs.cols[2]->kind, AD_K_NULLABLE_BOOL);
    ck_assert_str_eq(ad_str_at(&a->obs.index, 2), "2");
    ad_anndata_free(a);
    /* _index on every record becomes the index */
    a = dec("{'obs': [{'_index': 'u', 'v': 1.5}, {'_index': 7, 'v': 2}]}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->obs.ncols, 1);
    ck_assert_str_eq(a->obs.names[0], "v");
    ck_assert_str_eq(ad_str_at(&a->obs.index, 0), "u");
    ck_assert_str_eq(ad_str_at(&a->obs.index, 1), "7");
    ck_assert_int_eq(a->obs.cols[0]->u.arr.dtype, AD_F64);
    ad_anndata_free(a);
    fails("{'obs': [{'a': 1}, 5]}", ADX_E_SCHEMA, "/adata/obs/1", "expected a record object");
    /* a number missing from a record is NaN, as in pandas */
    a = dec("{'obs': [{'a': 1}, {'b': 2}]}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->obs.cols[0]->u.arr.dtype, AD_F64);
    ck_assert(isnan(f64(&a->obs.cols[0]->u.arr, 1)));
    ck_assert(f64(&a->obs.cols[1]->u.arr, 1) == 2.0);
    ad_anndata_free(a);
}
END_TEST

START_TEST(index_rules)
{
    ad_anndata *a = dec("{'obs': {'index': [1, 2.5, 'x', 1, 'x', 'x', 1e20], 'columns': {}}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(ad_str_at(&a->obs.index, 0), "1");
    ck_assert_str_eq(ad_str_at(&a->obs.index, 1), "2.5");
    ck_assert_str_eq(ad_str_at(&a->obs.index, 6), "1e+20");
    const rep_entry *r = find_rep("/obs/index", REP_DUPLICATE_INDEX);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->count, 3); /* one more "1", two more "x" */
    ad_anndata_free(a);
    fails("{'obs': {'index': ['a', null]}}", ADX_E_SCHEMA, "/adata/obs/index/1",
          "null in an index");
    fails("{'obs': {'index': ['a', [1]]}}", ADX_E_SCHEMA, "/adata/obs/index/1",
          "strings or numbers");
}
END_TEST

START_TEST(frame_column_lengths)
{
    fails("{'obs': {'index': ['a', 'b'], 'columns': {'x': [1, 2, 3]}}}", ADX_E_SHAPE,
          "/adata/obs/columns/x", "length 3, expected 2");
    fails("{'obs': {'columns': {'x': [1, 2], 'y': [1, 2, 3]}}}", ADX_E_SHAPE,
          "/adata/obs/columns/y", "length 3, expected 2");
    fails("{'obs': {'columns': {'x': 5}}}", ADX_E_SCHEMA, "/adata/obs/columns/x",
          "expected a column");
    fails("{'obs': {'columns': {'x': {'encoding-type': 'blob'}}}}", ADX_E_SCHEMA,
          "/adata/obs/columns/x/encoding-type", "unknown column encoding-type");
    fails("{'obs': {'colums': {}}}", ADX_E_SCHEMA, "/adata/obs/colums", "unknown key");
}
END_TEST

/* ========================================================= categoricals */

START_TEST(categorical_glob_ints)
{
    ad_anndata *a = dec("{'obs': {'columns': {'kmeans_polis': [2, -1, null, 0, 2, null]}}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *c = obscol(a, "kmeans_polis");
    ck_assert_int_eq(c->kind, AD_K_CATEGORICAL);
    const ad_array *cats = &c->u.cat.categories;
    ck_assert_int_eq(cats->dtype, AD_I64);
    ck_assert_int_eq(cats->n, 3);
    ck_assert_int_eq(i64(cats, 0), -1);
    ck_assert_int_eq(i64(cats, 1), 0);
    ck_assert_int_eq(i64(cats, 2), 2);
    const ad_array *codes = &c->u.cat.codes;
    ck_assert_int_eq(codes->dtype, AD_I8);
    int64_t want[] = {2, 0, -1, 1, 2, -1};
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(i64(codes, i), want[i]);
    ck_assert(!c->u.cat.ordered);
    ad_anndata_free(a);
}
END_TEST

START_TEST(categorical_glob_types)
{
    const char *const g[] = {"grp*", "k?"};
    ad_anndata *a = dec_opts("{'obs': {'columns': {'grp_s': ['b', 'a', null, 'b'], "
                             "'k1': [1.5, 0.5, 1.5, 2], 'grp_b': [true, false, true, null], "
                             "'other': ['b', 'a', 'b', 'a'], 'kmeans_x': [1, 2, 3, 4]}}}",
                             g, 2);
    ck_assert_ptr_nonnull(a);
    ad_elem *s = obscol(a, "grp_s");
    ck_assert_int_eq(s->kind, AD_K_CATEGORICAL);
    ck_assert_int_eq(s->u.cat.categories.dtype, AD_STR);
    ck_assert_str_eq(ad_str_at(&s->u.cat.categories, 0), "a");
    ck_assert_str_eq(ad_str_at(&s->u.cat.categories, 1), "b");
    ck_assert_int_eq(i64(&s->u.cat.codes, 0), 1);
    ck_assert_int_eq(i64(&s->u.cat.codes, 2), -1);
    ad_elem *k = obscol(a, "k1");
    ck_assert_int_eq(k->u.cat.categories.dtype, AD_F64);
    ck_assert_int_eq(k->u.cat.categories.n, 3);
    ck_assert(f64(&k->u.cat.categories, 2) == 2.0);
    ck_assert_int_eq(i64(&k->u.cat.codes, 3), 2);
    ad_elem *b = obscol(a, "grp_b");
    ck_assert_int_eq(b->u.cat.categories.dtype, AD_BOOL);
    ck_assert_int_eq(b->u.cat.categories.n, 2);
    ck_assert_int_eq(i64(&b->u.cat.codes, 0), 1);
    ck_assert_int_eq(i64(&b->u.cat.codes, 3), -1);
    /* not matching the given globs (default no longer applies) */
    ck_assert_int_eq(obscol(a, "other")->kind, AD_K_ARRAY);
    ck_assert_int_eq(obscol(a, "kmeans_x")->kind, AD_K_ARRAY);
    ad_anndata_free(a);
}
END_TEST

START_TEST(categorical_mixed)
{
    ad_anndata *a = dec("{'obs': {'columns': {'kmeans_m': [1, 'a', true, 2.5, null, 1]}}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *c = obscol(a, "kmeans_m");
    const ad_array *cats = &c->u.cat.categories;
    ck_assert_int_eq(cats->dtype, AD_STR);
    ck_assert_int_eq(cats->n, 4);
    ck_assert_str_eq(ad_str_at(cats, 0), "1");
    ck_assert_str_eq(ad_str_at(cats, 1), "2.5");
    ck_assert_str_eq(ad_str_at(cats, 2), "True");
    ck_assert_str_eq(ad_str_at(cats, 3), "a");
    ck_assert_int_eq(i64(&c->u.cat.codes, 5), 0);
    ck_assert_int_eq(i64(&c->u.cat.codes, 4), -1);
    const rep_entry *r = find_rep("/obs/kmeans_m", REP_MIXED_TO_STRING);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->count, 5);
    ad_anndata_free(a);
}
END_TEST

START_TEST(categorical_typed)
{
    ad_anndata *a = dec("{'obs': {'columns': {'c': {'encoding-type': 'categorical', "
                        "'categories': [0, 1, -1], 'codes': [0, 2, -1, null], 'ordered': true}, "
                        "'v': {'encoding-type': 'categorical', 'values': [0, -1, null, 1]}}}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *c = obscol(a, "c");
    ck_assert_int_eq(c->kind, AD_K_CATEGORICAL);
    ck_assert(c->u.cat.ordered);
    ck_assert_int_eq(c->u.cat.categories.dtype, AD_I64);
    ck_assert_int_eq(i64(&c->u.cat.categories, 2), -1);
    ck_assert_int_eq(c->u.cat.codes.dtype, AD_I8);
    ck_assert_int_eq(i64(&c->u.cat.codes, 1), 2);
    ck_assert_int_eq(i64(&c->u.cat.codes, 2), -1);
    ck_assert_int_eq(i64(&c->u.cat.codes, 3), -1);
    ad_elem *v = obscol(a, "v");
    ck_assert_int_eq(v->u.cat.categories.n, 3);
    ck_assert_int_eq(i64(&v->u.cat.categories, 0), -1);
    ck_assert_int_eq(i64(&v->u.cat.codes, 0), 1);
    ck_assert_int_eq(i64(&v->u.cat.codes, 1), 0);
    ck_assert_int_eq(i64(&v->u.cat.codes, 2), -1);
    ck_assert_int_eq(i64(&v->u.cat.codes, 3), 2);
    ad_anndata_free(a);
    fails("{'obs': {'columns': {'c': {'encoding-type': 'categorical', 'categories': ['a', 'b'], "
          "'codes': [0, 2]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/c/codes/1", "code 2 is out of range [-1, 2)");
    fails("{'obs': {'columns': {'c': {'encoding-type': 'categorical', 'categories': ['a', 'a'], "
          "'codes': [0]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/c/categories", "distinct");
    fails("{'obs': {'columns': {'c': {'encoding-type': 'categorical', 'categories': [1, 2, 1], "
          "'codes': [0]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/c/categories", "1 appears twice");
    fails("{'obs': {'columns': {'c': {'encoding-type': 'categorical', 'categories': ['a', null], "
          "'codes': [0]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/c/categories", "all strings");
    fails("{'obs': {'columns': {'c': {'encoding-type': 'categorical', 'categories': ['a'], "
          "'codes': [-2]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/c/codes/0", "out of range");
}
END_TEST

START_TEST(codes_dtype_widths)
{
    /* 127 categories need int16 codes in pandas; 126 fit int8 */
    char *buf = malloc(8192);
    ck_assert_ptr_nonnull(buf);
    for (int ncat = 126; ncat <= 127; ncat++) {
        size_t o = (size_t)sprintf(buf, "{\"obs\": {\"columns\": {\"kmeans_w\": [");
        for (int i = 0; i < ncat; i++)
            o += (size_t)sprintf(buf + o, "%s%d", i ? "," : "", i);
        sprintf(buf + o, "]}}}");
        ad_anndata *a = dec(buf);
        ck_assert_ptr_nonnull(a);
        ck_assert_int_eq(obscol(a, "kmeans_w")->u.cat.codes.dtype, ncat == 126 ? AD_I8 : AD_I16);
        ck_assert_int_eq(i64(&obscol(a, "kmeans_w")->u.cat.codes, ncat - 1), ncat - 1);
        ad_anndata_free(a);
    }
    free(buf);
}
END_TEST

START_TEST(nullable_columns)
{
    ad_anndata *a = dec("{'obs': {'columns': {'ni': {'encoding-type': 'nullable-integer', "
                        "'dtype': 'int32', 'values': [1, null, -3]}, "
                        "'nb': {'encoding-type': 'nullable-boolean', 'values': [true, null, "
                        "false]}, 'sa': {'encoding-type': 'string-array', 'values': ['a', 'b', "
                        "'c']}, 'ta': {'encoding-type': 'array', 'dtype': 'uint16', 'data': [1, 2, "
                        "3]}}}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *ni = obscol(a, "ni");
    ck_assert_int_eq(ni->kind, AD_K_NULLABLE_INT);
    ck_assert_int_eq(ni->u.nl.values.dtype, AD_I32);
    ck_assert_int_eq(i64(&ni->u.nl.values, 2), -3);
    ck_assert_int_eq(i64(&ni->u.nl.values, 1), 0);
    ck_assert_int_eq(((uint8_t *)ni->u.nl.mask.data)[1], 1);
    ck_assert_int_eq(((uint8_t *)ni->u.nl.mask.data)[2], 0);
    ad_elem *nb = obscol(a, "nb");
    ck_assert_int_eq(nb->kind, AD_K_NULLABLE_BOOL);
    ck_assert_int_eq(((uint8_t *)nb->u.nl.mask.data)[1], 1);
    ck_assert_int_eq(((uint8_t *)nb->u.nl.values.data)[0], 1);
    ck_assert_int_eq(obscol(a, "sa")->u.arr.dtype, AD_STR);
    ck_assert_int_eq(obscol(a, "ta")->u.arr.dtype, AD_U16);
    ad_anndata_free(a);
    fails("{'obs': {'columns': {'ni': {'encoding-type': 'nullable-integer', 'dtype': 'int8', "
          "'values': [1, 200]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/ni/values/1", "out of range for int8");
    fails("{'obs': {'columns': {'ni': {'encoding-type': 'nullable-integer', 'dtype': 'float32', "
          "'values': [1]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/ni/dtype", "integer dtype");
    fails("{'obs': {'columns': {'s': {'encoding-type': 'string-array', 'values': ['a', null]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/s/values/1", "plain array");
    fails("{'obs': {'columns': {'s': {'encoding-type': 'string-array', 'values': ['a', 1]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/s/values/1", "only strings");
}
END_TEST

/* ================================================================== uns */

START_TEST(uns_values)
{
    ad_anndata *a = dec("{'uns': {'d': {'x': 1, 'y': {'z': 'deep'}}, 'i': 3, 'r': 0.5, 'b': "
                        "true, 's': 'txt', 'n': null, 'l': [1, 2], 'lf': [1, null], "
                        "'ls': ['a', 'b'], 'm2': [[1, 2], [3, 4]], 'e': [], 'lb': [true], "
                        "'lsn': ['a', null], 'lmix': [[1, 'a'], [true, null]], "
                        "'lobj': [{'a': 1}, 2], 'rag': [[1, 2], [3]], 'ss': [['a'], ['b']]}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *d = uns(a, "d");
    ck_assert_int_eq(d->kind, AD_K_DICT);
    ad_elem *y = ad_dict_get(&d->u.dict, "y");
    ck_assert_int_eq(y->kind, AD_K_DICT);
    ck_assert_str_eq(ad_str_at(&ad_dict_get(&y->u.dict, "z")->u.arr, 0), "deep");
    ck_assert_int_eq(uns(a, "i")->u.arr.ndim, 0);
    ck_assert_int_eq(uns(a, "i")->u.arr.dtype, AD_I64);
    ck_assert_int_eq(i64(&uns(a, "i")->u.arr, 0), 3);
    ck_assert_int_eq(uns(a, "r")->u.arr.dtype, AD_F64);
    ck_assert_int_eq(uns(a, "b")->u.arr.dtype, AD_BOOL);
    ck_assert_int_eq(uns(a, "s")->u.arr.dtype, AD_STR);
    ck_assert_int_eq(uns(a, "s")->u.arr.ndim, 0);
    ck_assert_str_eq(ad_str_at(&uns(a, "s")->u.arr, 0), "txt");
    ck_assert_int_eq(uns(a, "n")->kind, AD_K_NULL);
    ck_assert_int_eq(uns(a, "l")->u.arr.dtype, AD_I64);
    ck_assert_int_eq(uns(a, "l")->u.arr.ndim, 1);
    ck_assert_int_eq(uns(a, "lf")->u.arr.dtype, AD_F64);
    ck_assert(isnan(f64(&uns(a, "lf")->u.arr, 1)));
    ck_assert_int_eq(uns(a, "ls")->u.arr.dtype, AD_STR);
    ck_assert_int_eq(uns(a, "ls")->u.arr.n, 2);
    ck_assert_int_eq(uns(a, "m2")->u.arr.ndim, 2);
    ck_assert_int_eq(uns(a, "e")->u.arr.dtype, AD_F64);
    ck_assert_int_eq(uns(a, "e")->u.arr.ndim, 1);
    ck_assert_int_eq(uns(a, "e")->u.arr.shape[0], 0);
    ck_assert_int_eq(uns(a, "lb")->u.arr.dtype, AD_BOOL);
    ad_elem *lsn = uns(a, "lsn");
    ck_assert_int_eq(lsn->kind, AD_K_OBJECT);
    ck_assert_int_eq(lsn->u.obj.ndim, 1);
    ck_assert_int_eq(lsn->u.obj.kind[1], AD_CELL_NULL);
    ad_elem *lmix = uns(a, "lmix");
    ck_assert_int_eq(lmix->kind, AD_K_OBJECT);
    ck_assert_int_eq(lmix->u.obj.ndim, 2);
    ck_assert_int_eq(lmix->u.obj.kind[2], AD_CELL_BOOL);
    ck_assert_int_eq(lmix->u.obj.kind[1], AD_CELL_STR);
    ad_elem *lobj = uns(a, "lobj");
    ck_assert_int_eq(lobj->kind, AD_K_OBJECT);
    ck_assert_int_eq(lobj->u.obj.ndim, 0);
    ck_assert_int_eq(lobj->u.obj.n, 1);
    ck_assert_int_eq(lobj->u.obj.kind[0], AD_CELL_JSON);
    ck_assert_str_eq(ad_object_text(&lobj->u.obj, 0), "[{\"a\":1},2]");
    ad_elem *rag = uns(a, "rag");
    ck_assert_int_eq(rag->kind, AD_K_OBJECT);
    ck_assert_str_eq(ad_object_text(&rag->u.obj, 0), "[[1,2],[3]]");
    ck_assert_int_eq(uns(a, "ss")->u.arr.dtype, AD_STR);
    ck_assert_int_eq(uns(a, "ss")->u.arr.ndim, 2);
    ad_anndata_free(a);
}
END_TEST

START_TEST(uns_typed_elements)
{
    ad_anndata *a = dec(
        "{'uns': {'df': {'encoding-type': 'dataframe', 'index': ['a', 'b'], 'columns': {'x': [1, "
        "2], 'kmeans_no': [1, 1]}}, 'rec': {'encoding-type': 'dataframe', 'data': [{'q': 1}, "
        "{'q': 2}, {'q': 3}]}, 'sp': {'encoding-type': 'csr_matrix', 'shape': [1, 2], 'data': "
        "[5], 'indices': [1], 'indptr': [0, 1]}, 'arr': {'encoding-type': 'array', 'dtype': "
        "'int8', 'shape': [3], 'data': [1, 2, 3]}, 'cat': {'encoding-type': 'categorical', "
        "'values': ['b', 'a']}, 'ni': {'encoding-type': 'nullable-integer', 'values': [null]}}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *df = uns(a, "df");
    ck_assert_int_eq(df->kind, AD_K_FRAME);
    ck_assert_int_eq(df->u.df.n_rows, 2);
    /* categorical_columns is for obs/var only */
    ck_assert_int_eq(df->u.df.cols[1]->kind, AD_K_ARRAY);
    ad_elem *rec = uns(a, "rec");
    ck_assert_int_eq(rec->kind, AD_K_FRAME);
    ck_assert_int_eq(rec->u.df.n_rows, 3);
    ck_assert_str_eq(ad_str_at(&rec->u.df.index, 2), "2");
    ck_assert_int_eq(uns(a, "sp")->kind, AD_K_SPARSE);
    ck_assert_int_eq(uns(a, "arr")->u.arr.dtype, AD_I8);
    ck_assert_int_eq(uns(a, "cat")->kind, AD_K_CATEGORICAL);
    ck_assert_int_eq(uns(a, "ni")->kind, AD_K_NULLABLE_INT);
    ad_anndata_free(a);
    fails("{'uns': {'x': {'encoding-type': 'zarr'}}}", ADX_E_SCHEMA, "/adata/uns/x/encoding-type",
          "unknown encoding-type \"zarr\"");
}
END_TEST

START_TEST(uns_frame_duplicates_reported)
{
    ad_anndata *a = dec("{'uns': {'t': {'encoding-type': 'dataframe', 'index': ['a', 'a'], "
                        "'columns': {'x': [1, 2]}}}}");
    ck_assert_ptr_nonnull(a);
    const rep_entry *r = find_rep("/uns/t/index", REP_DUPLICATE_INDEX);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->count, 1);
    ad_anndata_free(a);
}
END_TEST

/* ============================================================== shapes */

START_TEST(shape_mismatches)
{
    fails("{'X': [[1, 2], [3, 4]], 'obs': {'index': ['a', 'b', 'c']}}", ADX_E_SHAPE,
          "/adata/obs/index", "length 3, expected n_obs = 2");
    /* the exact wording of api.md's example */
    ck_assert_str_eq(err.items[0].message, "length 3, expected n_obs = 2");
    ck_assert_int_eq(err.status, 400);
    fails("{'X': [[1, 2]], 'var': {'index': ['a']}}", ADX_E_SHAPE, "/adata/var/index",
          "length 1, expected n_vars = 2");
    fails("{'X': [[1, 2]], 'obs': {'columns': {'c': [1, 2]}}}", ADX_E_SHAPE, "/adata/obs/columns/c",
          "length 2, expected n_obs = 1");
    fails("{'X': [[1, 2]], 'obsm': {'pca': [[1], [2]]}}", ADX_E_SHAPE, "/adata/obsm/pca",
          "rows 2, expected n_obs = 1");
    fails("{'X': [[1, 2]], 'varm': {'pcs': [[1]]}}", ADX_E_SHAPE, "/adata/varm/pcs",
          "rows 1, expected n_vars = 2");
    fails("{'X': [[1, 2]], 'layers': {'l': [[1, 2, 3]]}}", ADX_E_SHAPE, "/adata/layers/l",
          "shape (1, 3), expected (n_obs, n_vars) = (1, 2)");
    fails("{'X': [[1, 2]], 'obsp': {'d': [[1, 2]]}}", ADX_E_SHAPE, "/adata/obsp/d",
          "shape (1, 2), expected (n_obs, n_obs) = (1, 1)");
    fails("{'X': [[1, 2]], 'varp': {'d': [[1, 2]]}}", ADX_E_SHAPE, "/adata/varp/d",
          "shape (1, 2), expected (n_vars, n_vars) = (2, 2)");
    fails("{'X': [[1, 2]], 'shape': [1, 3]}", ADX_E_SHAPE, "/adata/shape/1",
          "shape[1] = 3, expected n_vars = 2");
    fails("{'X': [[1, 2]], 'raw': {'X': [[1], [2]]}}", ADX_E_SHAPE, "/adata/raw/X",
          "rows 2, expected n_obs = 1");
    fails("{'X': [[1, 2]], 'raw': {'X': [[1, 2, 3]], 'var': {'index': ['a', 'b']}}}", ADX_E_SHAPE,
          "/adata/raw/var/index", "length 2, expected raw n_vars");
    fails("{'X': [[1, 2]], 'raw': {'X': [[1, 2, 3]], 'varm': {'m': [[1]]}}}", ADX_E_SHAPE,
          "/adata/raw/varm/m", "rows 1, expected n_vars = 3");
    fails("{'X': [[1, 2]], 'obsm': {'df': {'index': ['a', 'b'], 'columns': {}}}}", ADX_E_SHAPE,
          "/adata/obsm/df/index", "length 2, expected n_obs = 1");
    fails("{'X': [[1, 2]], 'foo': 1}", ADX_E_SCHEMA, "/adata/foo", "unknown key \"foo\"");
    fails("{'raw': {'Y': 1}}", ADX_E_SCHEMA, "/adata/raw/Y", "unknown key");
}
END_TEST

START_TEST(shapes_without_x)
{
    ad_anndata *a =
        dec("{'obs': {'index': ['a', 'b']}, 'shape': [2, 4], "
            "'layers': {'l': [[1, 2, 3, 4], [5, 6, 7, 8]]}, "
            "'obsm': {'df': [{'x': 1}, {'x': 2}], 'e': {'encoding-type': 'dataframe'}}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_null(a->X);
    ck_assert_int_eq(a->n_obs, 2);
    ck_assert_int_eq(a->n_vars, 4);
    ck_assert_int_eq(a->var.n_rows, 4);
    ck_assert_str_eq(ad_str_at(&a->var.index, 3), "3");
    ck_assert_int_eq(ad_dict_get(&a->obsm, "df")->kind, AD_K_FRAME);
    ck_assert_int_eq(ad_dict_get(&a->obsm, "e")->u.df.n_rows, 2);
    ad_anndata_free(a);
    /* shape alone */
    a = dec("{'shape': [3, 1], 'X': null, 'raw': null}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n_obs, 3);
    ck_assert_int_eq(a->obs.index.n, 3);
    ck_assert_ptr_null(a->raw);
    ad_anndata_free(a);
    /* nothing at all */
    a = dec("{}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n_obs, 0);
    ck_assert_int_eq(a->obs.index.n, 0);
    ck_assert_ptr_nonnull(a->obs.index.soff);
    ad_anndata_free(a);
}
END_TEST

START_TEST(raw_decoded)
{
    ad_anndata *a = dec("{'X': [[1, 2]], 'raw': {'X': [[1, 2, 3]], 'var': {'columns': "
                        "{'g': ['a', 'b', 'c']}}, 'varm': {'m': [[1], [2], [3]]}}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(a->raw);
    ck_assert_int_eq(a->raw->var.n_rows, 3);
    ck_assert_str_eq(ad_str_at(&a->raw->var.index, 2), "2");
    ck_assert_ptr_nonnull(ad_dict_get(&a->raw->varm, "m"));
    ad_anndata_free(a);
}
END_TEST

/* ============================================================== limits */

START_TEST(limit_huge_declared_shape)
{
    fails("{'X': {'encoding-type': 'array', 'dtype': 'float64', 'shape': [1e12, 1e12], "
          "'data': []}}",
          ADX_E_LIMIT, "/adata/X/shape/0", "max_dim");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'float64', 'shape': [1000000000000, "
          "1000000000000], 'base64': ''}}",
          ADX_E_LIMIT, "/adata/X/shape/0", "max_dim");
    lim.max_dim = UINT64_MAX;
    fails("{'X': {'encoding-type': 'array', 'dtype': 'float64', 'shape': [4294967296, "
          "4294967296], 'base64': ''}}",
          ADX_E_LIMIT, "/adata/X/shape", "max_elements");
    lim.max_elements = 100;
    fails("{'X': [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "
          "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "
          "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "
          "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "
          "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]}",
          ADX_E_LIMIT, "/adata/X", "110 elements exceed max_elements = 100");
    fails("{'X': {'encoding-type': 'csr_matrix', 'shape': [-1, 2], 'data': [], 'indices': [], "
          "'indptr': [0]}}",
          ADX_E_SCHEMA, "/adata/X/shape/0", "size >= 0");
}
END_TEST

START_TEST(limit_depth_ndim_string_total)
{
    lim.max_depth = 3;
    ad_anndata *a = dec("{'uns': {'a': {'b': {'c': 1}}}}");
    ck_assert_ptr_nonnull(a);
    ad_anndata_free(a);
    fails("{'uns': {'a': {'b': {'c': {'d': 1}}}}}", ADX_E_LIMIT, "/adata/uns/a/b/c",
          "max_depth = 3");
    lim.max_ndim = 2;
    fails("{'uns': {'t': [[[1]]]}}", ADX_E_LIMIT, "/adata/uns/t", "max_ndim = 2");
    lim.max_string_bytes = 4;
    /* refused by the lexer: the pointer names the string itself */
    fails("{'obs': {'index': ['abcd', 'abcde']}}", ADX_E_LIMIT, "/adata/obs/index/1",
          "max_string_bytes = 4");
    fails("{'uns': {'s': 'toolong'}}", ADX_E_LIMIT, "/adata/uns/s", "max_string_bytes");
    lim.max_string_bytes = 1 << 20;
    lim.max_keys = 2;
    fails("{'uns': {'a': 1, 'b': 2, 'c': 3}}", ADX_E_LIMIT, "/adata/uns", "max_keys = 2");
    lim.max_keys = 100;
    lim.max_total_bytes = 64;
    fails("{'X': [[1, 2, 3, 4], [5, 6, 7, 8], [1, 2, 3, 4]]}", ADX_E_LIMIT, "/adata/X",
          "max_total_bytes = 64");
}
END_TEST

static jdec_doc *read_text(const char *t)
{
    jdec_opts o = {.limits = &lim};
    return jdec_read_buffer(t, strlen(t), &o, &err);
}

START_TEST(load_errors)
{
    const char *bad = "{\"a\": 1,\n \"b\": [1, 2,, 3]}";
    ck_assert_ptr_null(read_text(bad));
    ck_assert_int_eq(err.type, ADX_E_INVALID_JSON);
    ck_assert_msg(strstr(err.detail, "line 2, column 13") != NULL, "%s", err.detail);
    ck_assert_str_eq(err.items[0].pointer, "/b/2");
    adx_err_init(&err);
    const char *dup = "{\"a\": 1, \"a\": 2}";
    ck_assert_ptr_null(read_text(dup));
    ck_assert_int_eq(err.type, ADX_E_INVALID_JSON);
    ck_assert_msg(strstr(err.detail, "duplicate") != NULL, "%s", err.detail);
    adx_err_init(&err);
    lim.max_body_bytes = 5;
    const char *big = "[1, 2, 3]";
    ck_assert_ptr_null(read_text(big));
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_int_eq(err.status, 413);
    ck_assert_msg(strstr(err.detail, "max_body_bytes = 5") != NULL, "%s", err.detail);
    adx_err_init(&err);
    jdec_opts o = {.limits = &lim};
    ck_assert_ptr_null(jdec_read_file("/nonexistent/file.json", &o, &err));
    ck_assert_int_eq(err.type, ADX_E_IO);
}
END_TEST

/* ========================================================= the fixture */

static const ad_elem *fcol(const ad_frame *f, const char *name)
{
    for (size_t i = 0; i < f->ncols; i++)
        if (!strcmp(f->names[i], name)) return f->cols[i];
    ck_abort_msg("column %s missing", name);
    return NULL;
}

START_TEST(polis_fixture)
{
    const char *sh = getenv("ADX_SHARED");
    ck_assert_msg(sh != NULL, "ADX_SHARED not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/fixtures/polis_real.json", sh);
    jdec_opts o = {.limits = &lim, .base_ptr = "/adata"};
    jdec_doc *doc = jdec_read_file(path, &(jdec_opts){.limits = &lim}, &err);
    ck_assert_msg(doc != NULL, "%s", err.detail);
    ad_anndata *a = jdec_doc_anndata(doc, "adata", &o, &rep, &err);
    jdec_doc_free(doc);
    ck_assert_msg(a != NULL, "%s at %s", err.detail, err.items[0].pointer);
    ck_assert_int_eq(a->n_obs, 138);
    ck_assert_int_eq(a->n_vars, 46);
    ck_assert_int_eq(a->X->u.arr.dtype, AD_F64);
    ck_assert_str_eq(a->obs.index_name, "voter-id");
    ck_assert_str_eq(a->var.index_name, "comment-id");
    ck_assert_int_eq(fcol(&a->obs, "n_votes")->u.arr.dtype, AD_I64);
    ck_assert_int_eq(fcol(&a->obs, "pct_agree")->u.arr.dtype, AD_F64);
    ck_assert_int_eq(fcol(&a->obs, "cluster_mask")->u.arr.dtype, AD_BOOL);
    const ad_elem *km = fcol(&a->obs, "kmeans_polis");
    ck_assert_int_eq(km->kind, AD_K_CATEGORICAL);
    ck_assert_int_eq(km->u.cat.categories.dtype, AD_I64);
    ck_assert_int_eq(km->u.cat.categories.n, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(i64(&km->u.cat.categories, i), i - 1);
    /* first rows: -1, null, 3, null → codes 0, -1, 4, -1 */
    ck_assert_int_eq(i64(&km->u.cat.codes, 0), 0);
    ck_assert_int_eq(i64(&km->u.cat.codes, 1), -1);
    ck_assert_int_eq(i64(&km->u.cat.codes, 2), 4);
    ck_assert_int_eq(km->u.cat.codes.dtype, AD_I8);
    /* as anndata reads the expected file: 51 never clustered (NaN), 6 noise (-1) */
    int never = 0, noise = 0;
    for (uint64_t i = 0; i < km->u.cat.codes.n; i++) {
        never += i64(&km->u.cat.codes, i) == -1;
        noise += i64(&km->u.cat.codes, i) == 0;
    }
    ck_assert_int_eq(never, 51);
    ck_assert_int_eq(noise, 6);
    ck_assert_int_eq(fcol(&a->var, "content")->u.arr.dtype, AD_STR);
    ck_assert_int_eq(fcol(&a->var, "created_date")->u.arr.dtype, AD_I64);
    ck_assert_int_eq(fcol(&a->var, "is_translated")->u.arr.dtype, AD_BOOL);
    const ad_elem *seed = fcol(&a->var, "is_seed");
    ck_assert_int_eq(seed->kind, AD_K_OBJECT);
    for (uint64_t i = 0; i < seed->u.obj.n; i++)
        ck_assert_int_eq(seed->u.obj.kind[i], AD_CELL_NULL);
    ad_elem *st = uns(a, "statements");
    ck_assert_int_eq(st->kind, AD_K_FRAME);
    ck_assert_int_eq(st->u.df.n_rows, 46);
    const ad_elem *mixed = fcol(&st->u.df, "mixed");
    ck_assert_int_eq(mixed->kind, AD_K_OBJECT);
    ck_assert_int_eq(mixed->u.obj.kind[0], AD_CELL_STR);
    ck_assert_int_eq(mixed->u.obj.kind[1], AD_CELL_INT);
    ck_assert_int_eq(fcol(&st->u.df, "lang")->kind, AD_K_OBJECT);
    ck_assert_int_eq(uns(a, "votes")->u.df.n_rows, 1917);
    ad_elem *src = uns(a, "source");
    ck_assert_int_eq(ad_dict_get(&src->u.dict, "base_url")->kind, AD_K_NULL);
    ck_assert_int_eq(
        ad_dict_get(&ad_dict_get(&a->uns, "kmeans_polis")->u.dict, "k_bounds")->u.arr.n, 2);
    ck_assert_int_eq(ad_dict_get(&a->obsm, "X_pca_polis")->u.arr.shape[1], 2);
    ck_assert_int_eq(ad_dict_get(&a->varm, "X_pca_masked_unscaled")->u.arr.shape[0], 46);
    ck_assert_ptr_nonnull(a->raw);
    ck_assert_int_eq(a->raw->var.n_rows, 46);
    ad_anndata_free(a);
}
END_TEST

/* ============================================================ batch 2 */

START_TEST(column_nan_strings_and_empty)
{
    ad_anndata *a = dec("{'obs': {'columns': {'f': [1, 'NaN', null, '-inf'], "
                        "'only_nan': ['NaN', 'nan', 'inf', 'x']}}, 'var': {'columns': {'e': []}}}");
    ck_assert_ptr_nonnull(a);
    /* numbers with strings, spellings of NaN among them, are an object
     * column as in pandas (sanitize makes it strings): payload.md's Column
     * table reads the spellings in typed float arrays only */
    ck_assert_int_eq(obscol(a, "f")->kind, AD_K_OBJECT);
    ck_assert_int_eq(obscol(a, "f")->u.obj.shape[0], 4);
    const ad_array *e = &a->var.cols[0]->u.arr;
    ck_assert_int_eq(e->dtype, AD_F64);
    ck_assert_int_eq(e->n, 0);
    ck_assert_int_eq(e->ndim, 1);
    /* strings only stay strings even when they spell NaN */
    ck_assert_int_eq(obscol(a, "only_nan")->u.arr.dtype, AD_STR);
    ck_assert_int_eq(a->n_obs, 4);
    ck_assert_int_eq(a->n_vars, 0);
    ad_anndata_free(a);
}
END_TEST

START_TEST(column_bool_number_mix_is_object)
{
    ad_anndata *a = dec("{'obs': {'columns': {'m': [true, 1], 'bn': [false, null]}}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *m = obscol(a, "m");
    ck_assert_int_eq(m->kind, AD_K_OBJECT);
    ck_assert_int_eq(m->u.obj.kind[0], AD_CELL_BOOL);
    ck_assert_int_eq(m->u.obj.num[0].i, 1);
    ck_assert_int_eq(m->u.obj.kind[1], AD_CELL_INT);
    ck_assert_int_eq(obscol(a, "bn")->kind, AD_K_NULLABLE_BOOL);
    ad_anndata_free(a);
}
END_TEST

START_TEST(index_float_repr)
{
    ad_anndata *a = dec("{'var': {'index': [0.1, 1.0, -2, 1e-05, 123456789012]}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(ad_str_at(&a->var.index, 0), "0.1");
    ck_assert_str_eq(ad_str_at(&a->var.index, 1), "1.0");
    ck_assert_str_eq(ad_str_at(&a->var.index, 2), "-2");
    ck_assert_str_eq(ad_str_at(&a->var.index, 3), "1e-05");
    ck_assert_str_eq(ad_str_at(&a->var.index, 4), "123456789012");
    ck_assert_int_eq(a->n_vars, 5);
    ck_assert_int_eq(rep.n, 0);
    ad_anndata_free(a);
}
END_TEST

START_TEST(typed_dense_inferred_and_scalar)
{
    ad_anndata *a =
        dec("{'X': {'encoding-type': 'array', 'shape': [2, 2], 'data': [1, 2, 3, "
            "4]}, 'uns': {'z': {'encoding-type': 'array', 'dtype': 'int32', "
            "'shape': [], 'data': 7}, 'f': {'encoding-type': 'array', 'dtype': "
            "'float32', 'data': ['NaN', 2.0, 1e300, -1e300]}, 'w': {'encoding-type': 'array', "
            "'dtype': 'int64', 'data': [2.0, -3e3]}, 'u': {'encoding-type': 'array', "
            "'dtype': 'uint64', 'data': [9223372036854775807]}}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->X->u.arr.dtype, AD_I64);
    ck_assert_int_eq(a->X->u.arr.ndim, 2);
    ck_assert_int_eq(i64(&a->X->u.arr, 3), 4);
    ad_elem *z = uns(a, "z");
    ck_assert_int_eq(z->u.arr.ndim, 0);
    ck_assert_int_eq(z->u.arr.dtype, AD_I32);
    ck_assert_int_eq(i64(&z->u.arr, 0), 7);
    ck_assert(isnan(((float *)uns(a, "f")->u.arr.data)[0]));
    ck_assert(((float *)uns(a, "f")->u.arr.data)[1] == 2.0f);
    ck_assert(isinf(((float *)uns(a, "f")->u.arr.data)[2]));
    ck_assert(((float *)uns(a, "f")->u.arr.data)[3] < 0);
    ck_assert_int_eq(i64(&uns(a, "w")->u.arr, 1), -3000);
    ck_assert(((uint64_t *)uns(a, "u")->u.arr.data)[0] == 9223372036854775807ull);
    ad_anndata_free(a);
    fails("{'uns': {'u': {'encoding-type': 'array', 'dtype': 'uint32', 'data': [-1]}}}",
          ADX_E_SCHEMA, "/adata/uns/u/data/0", "-1 is out of range for uint32");
    fails("{'uns': {'u': {'encoding-type': 'array', 'dtype': 'int8', 'data': ['x']}}}",
          ADX_E_SCHEMA, "/adata/uns/u/data/0", "expected a number (int8), got string \"x\"");
    fails("{'uns': {'u': {'encoding-type': 'array', 'dtype': 'int8', 'data': [1], 'base64': "
          "'AQ=='}}}",
          ADX_E_SCHEMA, "/adata/uns/u", "exactly one of");
}
END_TEST

START_TEST(base64_bool_and_no_shape)
{
    ad_anndata *a = dec("{'uns': {'b': {'encoding-type': 'array', 'dtype': 'bool', 'base64': "
                        "'AAEB'}, 'd': {'encoding-type': 'array', 'dtype': 'float64', 'shape': "
                        "[0], 'base64': ''}}}");
    ck_assert_ptr_nonnull(a);
    const ad_array *b = &uns(a, "b")->u.arr;
    ck_assert_int_eq(b->dtype, AD_BOOL);
    ck_assert_int_eq(b->n, 3);
    ck_assert_int_eq(((uint8_t *)b->data)[0], 0);
    ck_assert_int_eq(((uint8_t *)b->data)[2], 1);
    ck_assert_int_eq(uns(a, "d")->u.arr.n, 0);
    ad_anndata_free(a);
    fails("{'uns': {'b': {'encoding-type': 'array', 'dtype': 'int32', 'base64': 'AAEB'}}}",
          ADX_E_SHAPE, "/adata/uns/b/base64", "3 bytes, not a multiple of 4");
    fails("{'uns': {'b': {'encoding-type': 'array', 'dtype': 'int32', 'base64': 5}}}", ADX_E_SCHEMA,
          "/adata/uns/b/base64", "to be a string");
}
END_TEST

START_TEST(sparse_in_namespaces)
{
    ad_anndata *a = dec("{'X': [[1, 0], [0, 1]], 'layers': {'s': {'encoding-type': "
                        "'csr_matrix', 'shape': [2, 2], 'data': [1.5], 'indices': [1], "
                        "'indptr': [0, 1, 1]}}, 'obsp': {'c': {'encoding-type': 'csc_matrix', "
                        "'shape': [2, 2], 'data': [], 'indices': [], 'indptr': [0, 0, 0]}}, "
                        "'obsm': {'v': [1, 2]}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *s = ad_dict_get(&a->layers, "s");
    ck_assert_int_eq(s->kind, AD_K_SPARSE);
    ck_assert_int_eq(s->u.sp.data.dtype, AD_F64);
    ck_assert(f64(&s->u.sp.data, 0) == 1.5);
    ad_elem *c = ad_dict_get(&a->obsp, "c");
    ck_assert(c->u.sp.csc);
    ck_assert_int_eq(c->u.sp.data.n, 0);
    ck_assert_int_eq(ad_dict_get(&a->obsm, "v")->u.arr.ndim, 1);
    ad_anndata_free(a);
    fails("{'X': [[1, 0], [0, 1]], 'layers': {'s': {'encoding-type': 'csr_matrix', 'shape': [2, "
          "3], 'data': [], 'indices': [], 'indptr': [0, 0, 0]}}}",
          ADX_E_SHAPE, "/adata/layers/s", "shape (2, 3), expected (n_obs, n_vars) = (2, 2)");
    fails("{'X': [[1]], 'obsm': {'s': 5}}", ADX_E_SCHEMA, "/adata/obsm/s", "expected a matrix");
    fails("{'X': {'encoding-type': 'csr_matrix', 'shape': [2], 'data': [], 'indices': [], "
          "'indptr': [0]}}",
          ADX_E_SHAPE, "/adata/X/shape", "2-d");
}
END_TEST

START_TEST(sparse_unsigned_and_typed_errors)
{
    /* uint64 index 2^63 can only come from base64: 0000000000000080 */
    fails("{'X': {'encoding-type': 'csr_matrix', 'shape': [1, 2], 'data': [1], "
          "'indices': {'dtype': 'uint64', 'base64': 'AAAAAAAAAIA='}, 'indptr': [0, 1]}}",
          ADX_E_SCHEMA, "/adata/X/indices/0", "out of range");
    fails("{'X': {'encoding-type': 'csr_matrix', 'shape': [1, 2], 'data': [1], "
          "'indices': {'dtype': 'int32'}, 'indptr': [0, 1]}}",
          ADX_E_SCHEMA, "/adata/X/indices", "exactly one of");
    fails("{'X': {'encoding-type': 'csr_matrix', 'shape': [1, 2], 'data': 'x', "
          "'indices': [0], 'indptr': [0, 1]}}",
          ADX_E_SCHEMA, "/adata/X/data", "typed block");
    ad_anndata *a = dec("{'X': {'encoding-type': 'csr_matrix', 'shape': [1, 2], "
                        "'data': {'dtype': 'uint8', 'base64': 'Bw=='}, "
                        "'indices': {'dtype': 'uint16', 'data': [1]}, 'indptr': [0, 1]}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->X->u.sp.data.dtype, AD_U8);
    ck_assert_int_eq(i64(&a->X->u.sp.data, 0), 7);
    ck_assert_int_eq(a->X->u.sp.indices.dtype, AD_U16);
    ad_anndata_free(a);
}
END_TEST

START_TEST(uns_frame_forms)
{
    ad_anndata *a =
        dec("{'uns': {'sp': {'encoding-type': 'dataframe', 'index': ['r1', 'r2'], 'index_name': "
            "'rid', 'columns': ['a'], 'data': [[1], [null]]}, 'rec': {'encoding-type': "
            "'dataframe', 'data': [{'_index': 'x', 'v': 'p'}, {'_index': 'x', 'v': null}]}, "
            "'empty': {'encoding-type': 'dataframe', 'columns': {}}}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *sp = uns(a, "sp");
    ck_assert_str_eq(sp->u.df.index_name, "rid");
    ck_assert_int_eq(sp->u.df.cols[0]->u.arr.dtype, AD_F64);
    ad_elem *rec = uns(a, "rec");
    ck_assert_str_eq(ad_str_at(&rec->u.df.index, 1), "x");
    ck_assert_int_eq(rec->u.df.ncols, 1);
    ck_assert_int_eq(rec->u.df.cols[0]->kind, AD_K_OBJECT);
    const rep_entry *r = find_rep("/uns/rec/index", REP_DUPLICATE_INDEX);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->count, 1);
    ad_elem *e = uns(a, "empty");
    ck_assert_int_eq(e->u.df.n_rows, 0);
    ck_assert_ptr_nonnull(e->u.df.index.soff);
    ad_anndata_free(a);
    fails("{'uns': {'d': {'encoding-type': 'dataframe', 'columns': {'a': [1]}, 'data': []}}}",
          ADX_E_SCHEMA, "/adata/uns/d/data", "split");
    fails("{'uns': {'d': {'encoding-type': 'dataframe', 'index_name': 3}}}", ADX_E_SCHEMA,
          "/adata/uns/d/index_name", "string or null");
}
END_TEST

START_TEST(categorical_edge_cases)
{
    ad_anndata *a = dec("{'obs': {'columns': {'kmeans_a': [null, null], 'kmeans_b': ['x', "
                        "'NaN'], 'kmeans_n': [[1], 2]}}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *ca = obscol(a, "kmeans_a");
    ck_assert_int_eq(ca->kind, AD_K_CATEGORICAL);
    ck_assert_int_eq(ca->u.cat.categories.n, 0);
    ck_assert_int_eq(i64(&ca->u.cat.codes, 0), -1);
    ck_assert_int_eq(i64(&ca->u.cat.codes, 1), -1);
    ad_elem *cb = obscol(a, "kmeans_b");
    ck_assert_str_eq(ad_str_at(&cb->u.cat.categories, 0), "NaN");
    ck_assert_str_eq(ad_str_at(&cb->u.cat.categories, 1), "x");
    /* nested values are not plain: left for sanitize */
    ck_assert_int_eq(obscol(a, "kmeans_n")->kind, AD_K_OBJECT);
    ck_assert_ptr_null(find_rep("/obs/kmeans_a", REP_MIXED_TO_STRING));
    ad_anndata_free(a);
    fails("{'obs': {'columns': {'c': {'encoding-type': 'categorical', 'values': [[1]]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/c/values/0", "strings, numbers or booleans");
    fails("{'obs': {'columns': {'c': {'encoding-type': 'categorical', 'categories': [1]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/c", "needs \"categories\" and \"codes\"");
    fails("{'obs': {'columns': {'c': {'encoding-type': 'categorical', 'values': [1], "
          "'ordered': 'no'}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/c/ordered", "expected a boolean");
}
END_TEST

START_TEST(categorical_in_var_and_split)
{
    ad_anndata *a = dec("{'var': {'columns': ['kmeans_v', 'x'], 'data': [[3, 1], [1, 2], [3, "
                        "3]]}, 'obs': [{'kmeans_r': 'b'}, {'kmeans_r': 'a'}]}");
    ck_assert_ptr_nonnull(a);
    ad_elem *v = a->var.cols[0];
    ck_assert_int_eq(v->kind, AD_K_CATEGORICAL);
    ck_assert_int_eq(v->u.cat.categories.n, 2);
    ck_assert_int_eq(i64(&v->u.cat.codes, 0), 1);
    ck_assert_int_eq(i64(&v->u.cat.codes, 1), 0);
    ck_assert_int_eq(a->var.cols[1]->kind, AD_K_ARRAY);
    ad_elem *r = a->obs.cols[0];
    ck_assert_int_eq(r->kind, AD_K_CATEGORICAL);
    ck_assert_int_eq(i64(&r->u.cat.codes, 0), 1);
    ad_anndata_free(a);
}
END_TEST

START_TEST(nullable_mask_and_errors)
{
    ad_anndata *a = dec("{'obs': {'columns': {'ni': {'encoding-type': 'nullable-integer', "
                        "'values': [5, 6], 'mask': [false, true]}, 'u': {'encoding-type': "
                        "'nullable-integer', 'dtype': 'uint8', 'data': [255, null]}}}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *ni = obscol(a, "ni");
    ck_assert_int_eq(ni->u.nl.values.dtype, AD_I64);
    ck_assert_int_eq(((uint8_t *)ni->u.nl.mask.data)[1], 1);
    ck_assert_int_eq(((uint8_t *)ni->u.nl.mask.data)[0], 0);
    ad_elem *u = obscol(a, "u");
    ck_assert_int_eq(u->u.nl.values.dtype, AD_U8);
    ck_assert_int_eq(i64(&u->u.nl.values, 0), 255);
    ad_anndata_free(a);
    fails("{'obs': {'columns': {'n': {'encoding-type': 'nullable-boolean', 'values': [true, 2]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/n/values/1", "out of range for bool");
    fails("{'obs': {'columns': {'n': {'encoding-type': 'nullable-integer', 'values': [1.5]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/n/values/0", "not an integer");
    fails("{'obs': {'columns': {'n': {'encoding-type': 'nullable-integer', 'values': [1], "
          "'mask': [1]}}}}",
          ADX_E_SCHEMA, "/adata/obs/columns/n/mask/0", "expected a boolean");
    fails("{'obs': {'columns': {'n': {'encoding-type': 'nullable-integer'}}}}", ADX_E_SCHEMA,
          "/adata/obs/columns/n", "missing \"values\"");
    fails("{'obs': {'columns': {'n': {'encoding-type': 'array', 'dtype': 'int8', 'shape': [1, 1], "
          "'data': [[1]]}}}}",
          ADX_E_SHAPE, "/adata/obs/columns/n", "1-d");
}
END_TEST

START_TEST(string_array_shapes)
{
    ad_anndata *a = dec("{'uns': {'e': {'encoding-type': 'string-array', 'values': []}, "
                        "'m': {'encoding-type': 'string-array', 'values': [['a', 'b']]}}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(uns(a, "e")->u.arr.dtype, AD_STR);
    ck_assert_int_eq(uns(a, "e")->u.arr.n, 0);
    ck_assert_int_eq(uns(a, "m")->u.arr.ndim, 2);
    ck_assert_str_eq(ad_str_at(&uns(a, "m")->u.arr, 1), "b");
    ad_anndata_free(a);
}
END_TEST

START_TEST(dims_from_other_elements)
{
    /* nothing but obsm and varp: they fix n_obs and n_vars */
    ad_anndata *a = dec("{'obsm': {'e': [[1, 2], [3, 4], [5, 6]]}, 'varp': {'p': [[1]]}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n_obs, 3);
    ck_assert_int_eq(a->n_vars, 1);
    ck_assert_int_eq(a->obs.index.n, 3);
    ck_assert_int_eq(a->var.index.n, 1);
    ad_anndata_free(a);
    /* obs from columns, var from index, shape agrees */
    a = dec("{'obs': {'columns': {'c': [1, 2]}}, 'var': {'index': ['a']}, 'shape': [2, 1]}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n_obs, 2);
    ck_assert_str_eq(ad_str_at(&a->obs.index, 1), "1");
    ad_anndata_free(a);
    fails("{'obs': {'columns': {'c': [1, 2]}}, 'shape': [3, 1]}", ADX_E_SHAPE, "/adata/shape/0",
          "shape[0] = 3, expected n_obs = 2");
    fails("{'shape': [1]}", ADX_E_SCHEMA, "/adata/shape", "[n_obs, n_vars]");
    fails("{'shape': [1, 'a']}", ADX_E_SCHEMA, "/adata/shape/1", "integer size");
}
END_TEST

START_TEST(raw_without_x)
{
    /* anndata reads a raw group without X as raw of the main X, and drops
     * its var: refused, as payload.md's raw form has X */
    fails("{'X': [[1, 2, 3]], 'raw': {'var': {'index': ['a', 'b']}, 'varm': {'m': [[1], [2]]}}}",
          ADX_E_SCHEMA, "/adata/raw/X", "raw needs X");
    fails("{'X': [[1, 2, 3]], 'raw': {}}", ADX_E_SCHEMA, "/adata/raw/X", "raw needs X");
    fails("{'X': [[1, 2, 3]], 'raw': {'X': null}}", ADX_E_SCHEMA, "/adata/raw/X", "raw needs X");
    ad_anndata *a = dec("{'X': [[1, 2, 3]], 'raw': null}");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_null(a->raw);
    ad_anndata_free(a);
    fails("{'raw': 5}", ADX_E_SCHEMA, "/adata/raw", "expected raw");
    fails("{'X': [[1, 2, 3]], 'raw': {'X': [1, 2]}}", ADX_E_SHAPE, "/adata/raw/X", "2-d");
}
END_TEST

START_TEST(pointer_escaping_and_base)
{
    fails("{'uns': {'a/b': {'c~d': {'encoding-type': 'nope'}}}}", ADX_E_SCHEMA,
          "/adata/uns/a~1b/c~0d/encoding-type", "unknown encoding-type");
    /* no base pointer: rooted at the document */
    jdec_opts o = {.limits = &lim};
    adx_err_init(&err);
    jdec_doc *doc = read_text("{\"X\": [[1], [2, 3]]}");
    ck_assert_ptr_null(jdec_doc_anndata(doc, NULL, &o, &rep, &err));
    ck_assert_str_eq(err.items[0].pointer, "/X/1");
    jdec_doc_free(doc);
    /* not an object at all */
    doc = read_text("[1]");
    adx_err_init(&err);
    ck_assert_ptr_null(jdec_doc_anndata(doc, NULL, &o, &rep, &err));
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_msg(strstr(err.detail, "got array") != NULL, "%s", err.detail);
    jdec_doc_free(doc);
}
END_TEST

START_TEST(obs_frame_wrong_forms)
{
    fails("{'obs': 5}", ADX_E_SCHEMA, "/adata/obs", "expected a DataFrame");
    fails("{'obs': {'encoding-type': 'array'}}", ADX_E_SCHEMA, "/adata/obs/encoding-type",
          "dataframe");
    fails("{'obs': {'columns': 5}}", ADX_E_SCHEMA, "/adata/obs/columns", "object of columns");
    fails("{'obs': {'columns': [1], 'data': [[1]]}}", ADX_E_SCHEMA, "/adata/obs/columns/0",
          "column names must be strings");
    fails("{'obs': {'columns': ['a']}}", ADX_E_SCHEMA, "/adata/obs/data", "needs \"data\"");
    fails("{'obs': {'index': 'abc'}}", ADX_E_SCHEMA, "/adata/obs/index", "to be an array");
    ad_anndata *a = dec("{'obs': {'encoding-type': 'dataframe', 'index': ['a']}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n_obs, 1);
    ad_anndata_free(a);
}
END_TEST

START_TEST(total_bytes_counts_strings)
{
    lim.max_total_bytes = 200;
    ad_anndata *a = dec("{'obs': {'index': ['a', 'b']}}");
    ck_assert_ptr_nonnull(a);
    ad_anndata_free(a);
    fails("{'uns': {'s': ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', "
          "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', "
          "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']}}",
          ADX_E_LIMIT, "/adata/uns/s", "max_total_bytes = 200");
}
END_TEST

START_TEST(load_file_roundtrip_and_limit)
{
    char path[] = "jdec_test_XXXXXX"; /* in the test's working directory */
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *body = "{\"adata\": {\"X\": [[1.5]]}}";
    ck_assert_int_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    close(fd);
    jdec_opts o = {.limits = &lim};
    jdec_doc *doc = jdec_read_file(path, &o, &err);
    ck_assert_ptr_nonnull(doc);
    ck_assert(jdec_doc_has(doc, "adata"));
    jdec_doc_free(doc);
    lim.max_body_bytes = 10;
    ck_assert_ptr_null(jdec_read_file(path, &o, &err));
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    unlink(path);
}
END_TEST

START_TEST(nested_duplicate_key_rejected)
{
    const char *t = "{\"adata\": {\"uns\": {\"a\": {\"k\": 1, \"k\": 2}}}}";
    ck_assert_ptr_null(read_text(t));
    ck_assert_int_eq(err.type, ADX_E_INVALID_JSON);
    ck_assert_msg(strstr(err.detail, "line 1") != NULL, "%s", err.detail);
    ck_assert_str_eq(err.items[0].pointer, "/adata/uns/a");
}
END_TEST

START_TEST(uns_deep_lists_and_keys)
{
    ad_anndata *a = dec("{'uns': {'t3': [[[1, 2]], [[3, 4]]], 'deepobj': [[{'a': [1]}]], "
                        "'nulls': [null, null], 'x': {}}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(uns(a, "t3")->u.arr.ndim, 3);
    ck_assert_int_eq(uns(a, "t3")->u.arr.shape[2], 2);
    ad_elem *d = uns(a, "deepobj");
    ck_assert_int_eq(d->kind, AD_K_OBJECT);
    ck_assert_int_eq(d->u.obj.ndim, 0);
    ck_assert_str_eq(ad_object_text(&d->u.obj, 0), "[[{\"a\":[1]}]]");
    ad_elem *n = uns(a, "nulls");
    ck_assert_int_eq(n->kind, AD_K_OBJECT);
    ck_assert_int_eq(n->u.obj.n, 2);
    ck_assert_int_eq(uns(a, "x")->kind, AD_K_DICT);
    ck_assert_int_eq(uns(a, "x")->u.dict.n, 0);
    ad_anndata_free(a);
    fails("{'uns': 3}", ADX_E_SCHEMA, "/adata/uns", "expected an object");
}
END_TEST

/* ============================================================ batch 3 */

START_TEST(matrix_bools_with_numbers_numpy_rule)
{
    ad_anndata *a = dec("{'X': [[true, 2], [false, 3]], 'layers': {'l': [[true, null], [1.5, "
                        "false]]}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->X->u.arr.dtype, AD_I64);
    ck_assert_int_eq(i64(&a->X->u.arr, 0), 1);
    ck_assert_int_eq(i64(&a->X->u.arr, 2), 0);
    const ad_array *l = &ad_dict_get(&a->layers, "l")->u.arr;
    ck_assert_int_eq(l->dtype, AD_F64);
    ck_assert(f64(l, 0) == 1.0 && isnan(f64(l, 1)) && f64(l, 3) == 0.0);
    ad_anndata_free(a);
}
END_TEST

START_TEST(uns_numbers_with_nan_strings)
{
    ad_anndata *a = dec("{'uns': {'v': [1, 'NaN', null], 'm': [[1, 'Infinity'], [2, 3]], 'w': "
                        "[1, 'x'], 'bi': [true, 2], 'br': [[false, 2.5]], 'bn': [true, null]}}");
    ck_assert_ptr_nonnull(a);
    /* numpy: np.array([True, 2]) is int64 */
    ck_assert_int_eq(uns(a, "bi")->u.arr.dtype, AD_I64);
    ck_assert_int_eq(i64(&uns(a, "bi")->u.arr, 0), 1);
    ck_assert_int_eq(uns(a, "br")->u.arr.dtype, AD_F64);
    ck_assert(f64(&uns(a, "br")->u.arr, 0) == 0.0);
    /* no number: a nullable boolean list is left to sanitize */
    ck_assert_int_eq(uns(a, "bn")->kind, AD_K_OBJECT);
    ck_assert_int_eq(uns(a, "v")->u.arr.dtype, AD_F64);
    ck_assert(isnan(f64(&uns(a, "v")->u.arr, 1)));
    ck_assert(isinf(f64(&uns(a, "m")->u.arr, 1)));
    ck_assert_int_eq(uns(a, "m")->u.arr.ndim, 2);
    ad_elem *w = uns(a, "w");
    ck_assert_int_eq(w->kind, AD_K_OBJECT);
    ck_assert_int_eq(w->u.obj.kind[0], AD_CELL_INT);
    ck_assert_int_eq(w->u.obj.kind[1], AD_CELL_STR);
    ad_anndata_free(a);
}
END_TEST

START_TEST(records_index_and_duplicates)
{
    ad_anndata *a = dec("{'obs': [{'_index': 'a', 'x': 1}, {'_index': 'a', 'x': 2}, "
                        "{'_index': 'b', 'x': 3}]}");
    ck_assert_ptr_nonnull(a);
    const rep_entry *r = find_rep("/obs/index", REP_DUPLICATE_INDEX);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->count, 1);
    ck_assert_int_eq(a->obs.ncols, 1);
    ad_anndata_free(a);
    /* not every record has _index: it is an ordinary column */
    a = dec("{'obs': [{'_index': 'a', 'x': 1}, {'x': 2}]}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->obs.ncols, 2);
    ck_assert_str_eq(a->obs.names[0], "_index");
    ck_assert_str_eq(ad_str_at(&a->obs.index, 0), "0");
    ad_anndata_free(a);
    /* an explicit index next to records wins */
    a = dec("{'uns': {'t': {'encoding-type': 'dataframe', 'index': ['p', 'q'], 'data': "
            "[{'v': 1}, {'v': 2}]}}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(ad_str_at(&uns(a, "t")->u.df.index, 1), "q");
    ad_anndata_free(a);
    fails("{'uns': {'t': {'encoding-type': 'dataframe', 'index': ['p'], 'data': [{'v': 1}, "
          "{'v': 2}]}}}",
          ADX_E_SHAPE, "/adata/uns/t/data", "length 2, expected 1");
}
END_TEST

START_TEST(varm_frame_and_typed_x_rank)
{
    ad_anndata *a = dec("{'X': [[1, 2]], 'varm': {'f': {'columns': {'c': ['a', 'b']}}}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *f = ad_dict_get(&a->varm, "f");
    ck_assert_int_eq(f->kind, AD_K_FRAME);
    ck_assert_int_eq(f->u.df.n_rows, 2);
    ck_assert_str_eq(ad_str_at(&f->u.df.index, 1), "1");
    ad_anndata_free(a);
    fails("{'X': [[1, 2]], 'varm': {'f': {'columns': {'c': ['a']}}}}", ADX_E_SHAPE,
          "/adata/varm/f/columns/c", "length 1, expected n_vars = 2");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'int8', 'shape': [3], 'data': [1, 2, 3]}}",
          ADX_E_SHAPE, "/adata/X", "expected a 2-d matrix, got shape (3,)");
    lim.max_ndim = 3;
    fails("{'uns': {'a': {'encoding-type': 'array', 'dtype': 'int8', 'shape': [1, 1, 1, 1], "
          "'data': [1]}}}",
          ADX_E_LIMIT, "/adata/uns/a/shape", "4 dimensions exceed max_ndim = 3");
}
END_TEST

START_TEST(string_limits_on_keys_and_cells)
{
    lim.max_string_bytes = 8;
    fails("{'uns': {'averyveryverylongkey': 1}}", ADX_E_LIMIT, "/adata/uns/averyveryverylongkey",
          "max_string_bytes = 8");
    fails("{'obs': {'columns': {'averyverylongname': [1]}}}", ADX_E_LIMIT,
          "/adata/obs/columns/averyverylongname", "max_string_bytes");
    /* a nested cell becomes JSON text, which is a string too */
    fails("{'obs': {'columns': {'c': [[1, 2, 3, 4, 5], 'a']}}}", ADX_E_LIMIT,
          "/adata/obs/columns/c", "max_string_bytes");
    fails("{'obs': {'index_name': 'waytoolongname'}}", ADX_E_LIMIT, "/adata/obs/index_name",
          "max_string_bytes");
}
END_TEST

START_TEST(depth_counts_dicts_not_frames)
{
    lim.max_depth = 2;
    ad_anndata *a = dec("{'uns': {'a': {'df': {'encoding-type': 'dataframe', 'columns': {'x': "
                        "[{'deep': {'deeper': 1}}]}}}}}");
    ck_assert_ptr_nonnull(a);
    ad_elem *df = ad_dict_get(&uns(a, "a")->u.dict, "df");
    ck_assert_int_eq(df->kind, AD_K_FRAME);
    ck_assert_str_eq(ad_object_text(&df->u.df.cols[0]->u.obj, 0), "{\"deep\":{\"deeper\":1}}");
    ad_anndata_free(a);
    fails("{'uns': {'a': {'b': {}}}}", ADX_E_LIMIT, "/adata/uns/a/b", "max_depth = 2");
}
END_TEST

START_TEST(sparse_large_shape_keeps_int64)
{
    /* a dimension beyond int32 keeps plain index arrays as int64 (scipy) */
    lim.max_dim = UINT64_MAX;
    ad_anndata *a = dec("{'uns': {'s': {'encoding-type': 'csr_matrix', 'shape': [1, "
                        "3000000000], 'data': [1], 'indices': [2999999999], 'indptr': [0, 1]}}}");
    ck_assert_msg(a != NULL, "%s at %s", err.detail, err.items[0].pointer);
    ad_elem *s = uns(a, "s");
    ck_assert_int_eq(s->u.sp.indices.dtype, AD_I64);
    ck_assert_int_eq(s->u.sp.indptr.dtype, AD_I64);
    ck_assert_int_eq(i64(&s->u.sp.indices, 0), 2999999999LL);
    ad_anndata_free(a);
}
END_TEST

START_TEST(empty_rows_sparse_and_frames)
{
    ad_anndata *a = dec("{'X': {'encoding-type': 'csr_matrix', 'shape': [3, 2], 'data': [7], "
                        "'indices': [1], 'indptr': [0, 0, 1, 1]}, 'obs': {'columns': ['a'], "
                        "'data': [[1], [2], [3]]}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n_obs, 3);
    ck_assert_int_eq(i64(&a->X->u.sp.indptr, 3), 1);
    ck_assert_str_eq(ad_str_at(&a->obs.index, 2), "2");
    ad_anndata_free(a);
    a = dec("{'X': [[], []]}");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n_obs, 2);
    ck_assert_int_eq(a->n_vars, 0);
    ck_assert_int_eq(a->X->u.arr.dtype, AD_F64);
    ad_anndata_free(a);
    fails("{'X': [[], [1]]}", ADX_E_SHAPE, "/adata/X/1", "row 1 has length 1, expected 0");
}
END_TEST

/* ====================================================== binary parts */

static jdec_part_req seen[8];
static char seen_ptr[8][ADX_ERR_PTR_MAX], seen_name[8][16];
static int nseen;

/* A stand-in for the multipart module: part "X" is 2 x 3 float32 counting
 * up, "idx" int32 [0, 1], "rec" a rec-array of one int field, "bad" fails. */
static int fake_part(void *ud, const jdec_part_req *req, ad_elem **out, const char *ptr, adx_err *e)
{
    (void)ud;
    if (nseen < 8) {
        seen[nseen] = *req;
        snprintf(seen_ptr[nseen], ADX_ERR_PTR_MAX, "%s", ptr);
        snprintf(seen_name[nseen], sizeof seen_name[0], "%s", req->name);
        nseen++;
    }
    ad_array a;
    if (!strcmp(req->name, "X")) {
        uint64_t sh[2] = {2, 3};
        ad_array_init(&a, AD_F32, 2, sh);
        for (int i = 0; i < 6; i++)
            ((float *)a.data)[i] = (float)i;
    } else if (!strcmp(req->name, "idx") || !strcmp(req->name, "rec")) {
        uint64_t sh[1] = {2};
        ad_array_init(&a, AD_I32, 1, sh);
        ((int32_t *)a.data)[1] = 1;
        if (!strcmp(req->name, "rec")) {
            *out = ad_elem_new(AD_K_RECARRAY);
            ad_recarray_add(&(*out)->u.rec, "k", &a);
            return 0;
        }
    } else {
        return adx_err_set(e, ADX_E_SCHEMA, ptr, "no part named %s", req->name);
    }
    *out = ad_elem_from_array(&a);
    return 0;
}

START_TEST(binary_parts_call_the_callback)
{
    /* without a callback: a 400 at the block */
    fails("{'X': {'encoding-type': 'array', 'part': 'X'}}", ADX_E_SCHEMA, "/adata/X",
          "binary parts need a multipart request");
    part_fn = fake_part;
    nseen = 0;
    ad_anndata *a = dec("{'X': {'encoding-type': 'array', 'part': 'X'}, "
                        "'layers': {'l': {'encoding-type': 'array', 'dtype': 'float32', "
                        "'shape': [2, 3], 'part': 'X'}}, "
                        "'obsp': {'g': {'encoding-type': 'csr_matrix', 'shape': [2, 2], "
                        "'data': [1.0, 2.0], 'indices': {'dtype': 'int32', 'part': 'idx'}, "
                        "'indptr': [0, 1, 2]}}, "
                        "'uns': {'r': {'encoding-type': 'rec-array', 'part': 'rec'}}}");
    ck_assert_msg(a != NULL, "%s at %s", err.detail, err.items[0].pointer);
    ck_assert_int_eq(nseen, 4);
    ck_assert_str_eq(seen_name[0], "X");
    ck_assert(!seen[0].has_dtype);
    ck_assert_int_eq(seen[0].ndim, -1);
    ck_assert_str_eq(seen_ptr[0], "/adata/X");
    ck_assert(seen[1].has_dtype);
    ck_assert_int_eq(seen[1].dtype, AD_F32);
    ck_assert_int_eq(seen[1].ndim, 2);
    ck_assert_uint_eq(seen[1].shape[1], 3);
    ck_assert_str_eq(seen_ptr[2], "/adata/obsp/g/indices");
    ck_assert(seen[3].recarray);
    ck_assert_int_eq(a->X->u.arr.dtype, AD_F32);
    ck_assert_float_eq(((float *)a->X->u.arr.data)[5], 5.0f);
    ck_assert_int_eq(uns(a, "r")->kind, AD_K_RECARRAY);
    ad_anndata_free(a);
    /* the callback's own error and pointer come through */
    fails("{'uns': {'m': {'encoding-type': 'array', 'part': 'bad'}}}", ADX_E_SCHEMA, "/adata/uns/m",
          "no part named bad");
    /* a rec-array part where an array belongs */
    fails("{'uns': {'m': {'encoding-type': 'array', 'part': 'rec'}}}", ADX_E_SCHEMA, "/adata/uns/m",
          "structured");
    fails("{'uns': {'m': {'encoding-type': 'array', 'part': 'X', 'data': [1]}}}", ADX_E_SCHEMA,
          "/adata/uns/m", "exactly one");
    fails("{'uns': {'m': {'encoding-type': 'array', 'part': 3}}}", ADX_E_SCHEMA,
          "/adata/uns/m/part", "name of a part");
}
END_TEST

/* ======================================================= record arrays */

START_TEST(rec_arrays_from_json)
{
    ad_anndata *a = dec("{'X': [[1], [2]], 'uns': {'r': {'encoding-type': 'rec-array', 'fields': "
                        "{'names': ['a', 'b'], 'score': [1.5, null], 'n': {'dtype': 'int16', "
                        "'data': [3, 4]}}}}, "
                        "'obsm': {'o': {'encoding-type': 'rec-array', 'fields': {'x': [1, 2]}}}}");
    ck_assert_msg(a != NULL, "%s at %s", err.detail, err.items[0].pointer);
    const ad_recarray *r = &uns(a, "r")->u.rec;
    ck_assert_int_eq(uns(a, "r")->kind, AD_K_RECARRAY);
    ck_assert_uint_eq(r->n, 2);
    ck_assert_uint_eq(r->nfields, 3);
    ck_assert_str_eq(r->names[0], "names");
    ck_assert_int_eq(r->fields[0].dtype, AD_STR);
    ck_assert_str_eq(ad_str_at(&r->fields[0], 1), "b");
    ck_assert_int_eq(r->fields[1].dtype, AD_F64);
    ck_assert(isnan(((double *)r->fields[1].data)[1]));
    ck_assert_int_eq(r->fields[2].dtype, AD_I16);
    ck_assert_int_eq(ad_dict_get(&a->obsm, "o")->kind, AD_K_RECARRAY);
    ad_anndata_free(a);
    fails("{'uns': {'r': {'encoding-type': 'rec-array', 'fields': {'a': [1, 2], 'b': [1]}}}}",
          ADX_E_SHAPE, "/adata/uns/r/fields/b", "first field 2");
    /* the Column rules without categoricals: strings with null, mixed
     * scalars become strings, reported as sanitize reports a column */
    a = dec("{'uns': {'r': {'encoding-type': 'rec-array', 'fields': {'a': ['x', null], "
            "'m': [true, 1.5], 'z': [null, null]}}}}");
    ck_assert_msg(a != NULL, "%s at %s", err.detail, err.items[0].pointer);
    r = &uns(a, "r")->u.rec;
    ck_assert_int_eq(r->fields[0].dtype, AD_STR);
    ck_assert_str_eq(ad_str_at(&r->fields[0], 1), "");
    ck_assert_str_eq(ad_str_at(&r->fields[1], 0), "True");
    ck_assert_str_eq(ad_str_at(&r->fields[1], 1), "1.5");
    ck_assert_str_eq(ad_str_at(&r->fields[2], 0), "");
    ck_assert_ptr_nonnull(find_rep("/uns/r/a", REP_NULL_TO_EMPTY));
    ck_assert_uint_eq(find_rep("/uns/r/m", REP_MIXED_TO_STRING)->count, 2);
    ck_assert_uint_eq(find_rep("/uns/r/z", REP_NULL_TO_EMPTY)->count, 2);
    ad_anndata_free(a);
    fails("{'uns': {'r': {'encoding-type': 'rec-array', 'fields': {'a': [true, null]}}}}",
          ADX_E_SCHEMA, "/adata/uns/r/fields/a", "no field type");
    fails("{'uns': {'r': {'encoding-type': 'rec-array', 'fields': {'a': [[1], 'x']}}}}",
          ADX_E_SCHEMA, "/adata/uns/r/fields/a", "no field type");
    fails("{'uns': {'r': {'encoding-type': 'rec-array', 'fields': [1]}}}", ADX_E_SCHEMA,
          "/adata/uns/r/fields", "named arrays");
    /* HDF5 has no compound type without members */
    fails("{'uns': {'r': {'encoding-type': 'rec-array', 'fields': {}}}}", ADX_E_SCHEMA,
          "/adata/uns/r/fields", "at least one field");
    fails("{'uns': {'r': {'encoding-type': 'rec-array', 'fields': {'': [1, 2]}}}}", ADX_E_SCHEMA,
          "/adata/uns/r/fields/", "needs a name");
    fails("{'X': [[1], [2]], 'obsm': {'o': {'encoding-type': 'rec-array', 'fields': {'x': [1]}}}}",
          ADX_E_SHAPE, "/adata/obsm/o", "n_obs");
}
END_TEST

/* ====================================================== hostile input */

/* Parse-level failures: type, pointer, message, and the budget back at 0. */
static void read_fails(const char *text, size_t len, adx_errtype t, const char *ptr,
                       const char *needle)
{
    adx_budget b;
    adx_budget_init(&b, 0);
    jdec_opts o = {.limits = &lim, .budget = &b, .base_ptr = "/adata"};
    adx_err_init(&err);
    jdec_doc *doc = jdec_read_buffer(text, len, &o, &err);
    ck_assert_msg(doc == NULL, "expected failure for %.80s", text);
    ck_assert_int_eq(err.type, t);
    ck_assert_str_eq(err.items[0].pointer, ptr);
    ck_assert_msg(strstr(err.detail, needle) != NULL, "message '%s' lacks '%s'", err.detail,
                  needle);
    ck_assert_uint_eq(adx_budget_used(&b), 0);
}

static void rf(const char *text, adx_errtype t, const char *ptr, const char *needle)
{
    read_fails(text, strlen(text), t, ptr, needle);
}

START_TEST(strict_json_text)
{
    /* UTF-8: overlong, an encoded surrogate, above U+10FFFF, cut short */
    rf("{\"uns\": {\"s\": \"\xc0\xaf\"}}", ADX_E_INVALID_JSON, "/adata/uns/s", "UTF-8");
    rf("{\"uns\": {\"s\": \"\xed\xa0\x80\"}}", ADX_E_INVALID_JSON, "/adata/uns/s", "UTF-8");
    rf("{\"uns\": {\"s\": \"\xf4\x90\x80\x80\"}}", ADX_E_INVALID_JSON, "/adata/uns/s", "UTF-8");
    rf("{\"uns\": {\"s\": \"a\xe2\x82\"}}", ADX_E_INVALID_JSON, "/adata/uns/s", "UTF-8");
    rf("{\"uns\": {\"s\xff\": 1}}", ADX_E_INVALID_JSON, "/adata/uns", "UTF-8");
    /* escapes: lone surrogates, NUL, unknown ones, raw control characters */
    rf("{\"uns\": {\"s\": \"\\ud800\"}}", ADX_E_INVALID_JSON, "/adata/uns/s", "surrogate");
    rf("{\"uns\": {\"s\": \"\\udc00x\"}}", ADX_E_INVALID_JSON, "/adata/uns/s", "surrogate");
    rf("{\"uns\": {\"s\": \"\\ud800\\u0041\"}}", ADX_E_INVALID_JSON, "/adata/uns/s", "surrogate");
    rf("{\"uns\": {\"s\": \"\\u0000\"}}", ADX_E_SCHEMA, "/adata/uns/s", "\\u0000 (U+0000)");
    rf("{\"uns\": {\"s\": \"\\x41\"}}", ADX_E_INVALID_JSON, "/adata/uns/s", "escape");
    rf("{\"uns\": {\"s\": \"a\tb\"}}", ADX_E_INVALID_JSON, "/adata/uns/s", "control");
    /* numbers JSON does not have, and integers beyond uint64 */
    rf("{\"X\": [[01]]}", ADX_E_INVALID_JSON, "/adata/X/0/0", "invalid number");
    rf("{\"X\": [[1, .5]]}", ADX_E_INVALID_JSON, "/adata/X/0/1", "expected a value");
    rf("{\"X\": [[1, 2.]]}", ADX_E_INVALID_JSON, "/adata/X/0/1", "invalid number");
    rf("{\"X\": [[18446744073709551616]]}", ADX_E_SCHEMA, "/adata/X/0/0", "out of range");
    /* structure */
    rf("{\"X\": [[1, 2]] ", ADX_E_INVALID_JSON, "/adata", "ends too early");
    rf("{\"X\": [[1, 2]]} x", ADX_E_INVALID_JSON, "/adata", "after the end");
    rf("{\"X\" [1]}", ADX_E_INVALID_JSON, "/adata/X", "expected ':'");
    rf("{\"a\": tru}", ADX_E_INVALID_JSON, "/adata/a", "literal");
    rf("", ADX_E_INVALID_JSON, "/adata", "empty");
    /* a NUL byte in the text is not JSON either */
    read_fails("{\"s\": \"a\0b\"}", 12, ADX_E_INVALID_JSON, "/adata/s", "control");
    /* accepted: escapes, pairs, every plane */
    ad_anndata *a =
        dec("{'uns': {'s': '\\u00e9\\ud83d\\ude00\\/\\n\xe2\x82\xac\xf0\x9f\x98\x80'}}");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(ad_str_at(&uns(a, "s")->u.arr, 0),
                     "\xc3\xa9\xf0\x9f\x98\x80/\n\xe2\x82\xac\xf0\x9f\x98\x80");
    ad_anndata_free(a);
}
END_TEST

START_TEST(parse_limits_name_themselves)
{
    /* nesting: max_depth + max_ndim + 16 levels */
    lim.max_depth = 4;
    lim.max_ndim = 4;
    char deep[256] = "{\"uns\": {\"a\": ";
    for (int i = 0; i < 30; i++)
        strcat(deep, "[");
    rf(deep, ADX_E_LIMIT, "/adata/uns/a/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0",
       "nested deeper than 24 levels");
    ck_assert_int_eq(err.status, 413);
    adx_limits_default(&lim);
    lim.max_key_bytes = 8;
    rf("{\"uns\": {\"averyverylongkey\": 1}}", ADX_E_LIMIT, "/adata/uns", "max_key_bytes = 8");
    adx_limits_default(&lim);
    lim.max_keys = 3;
    rf("{\"uns\": {\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4}}", ADX_E_LIMIT, "/adata/uns",
       "max_keys = 3");
    /* duplicates in a large object (the hash set, not the scan) */
    adx_limits_default(&lim);
    char *big = malloc(100 * 16 + 64);
    size_t o = (size_t)sprintf(big, "{\"uns\": {");
    for (int i = 0; i < 100; i++)
        o += (size_t)sprintf(big + o, "\"k%d\": %d, ", i, i);
    sprintf(big + o, "\"k57\": 0}}");
    rf(big, ADX_E_INVALID_JSON, "/adata/uns", "duplicate object key \"k57\"");
    free(big);
}
END_TEST

/* A string is refused when it passes max_string_bytes, not once read
 * whole: 48 MiB of text under a 1 MiB limit never holds more than the limit
 * plus one read chunk. */
START_TEST(huge_string_refused_while_lexing)
{
    lim.max_string_bytes = 1 << 20;
    size_t n = (size_t)48 << 20;
    const char *head = "{\"uns\": {\"ok\": \"short\", \"s\": \"";
    char *text = malloc(n + 64);
    size_t h = strlen(head);
    memcpy(text, head, h);
    memset(text + h, 'x', n);
    memcpy(text + h + n, "\"}}", 4);
    adx_budget b;
    adx_budget_init(&b, 0);
    jdec_opts o = {.limits = &lim, .budget = &b, .base_ptr = "/adata"};
    adx_err_init(&err);
    jdec_doc *doc = jdec_read_buffer(text, h + n + 3, &o, &err);
    ck_assert_ptr_null(doc);
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_int_eq(err.status, 413);
    ck_assert_str_eq(err.items[0].pointer, "/adata/uns/s");
    ck_assert_msg(strstr(err.detail, "max_string_bytes = 1048576"), "%s", err.detail);
    ck_assert_msg(adx_budget_peak(&b) < (4u << 20), "peak %llu",
                  (unsigned long long)adx_budget_peak(&b));
    ck_assert_uint_eq(adx_budget_used(&b), 0);
    /* at the limit exactly it is a string like any other */
    lim.max_string_bytes = 5;
    ad_anndata *a = dec("{'uns': {'s': 'abcde'}}");
    ck_assert_msg(a != NULL, "%s", err.detail);
    ad_anndata_free(a);
    free(text);
}
END_TEST

START_TEST(numbers_in_typed_arrays)
{
    ad_anndata *a = dec("{'X': [[1e99999, -1e99999, 1e-400]], 'uns': {'u': {'encoding-type': "
                        "'array', 'dtype': 'uint64', 'data': [18446744073709551615, 1]}}}");
    ck_assert_msg(a != NULL, "%s", err.detail);
    double *x = a->X->u.arr.data;
    ck_assert(isinf(x[0]) && x[0] > 0);
    ck_assert(isinf(x[1]) && x[1] < 0);
    ck_assert(x[2] == 0.0);
    ck_assert_uint_eq(((uint64_t *)uns(a, "u")->u.arr.data)[0], UINT64_MAX);
    ad_anndata_free(a);
    fails("{'X': {'encoding-type': 'array', 'dtype': 'int64', 'data': [[1, 1e99999]]}}",
          ADX_E_SCHEMA, "/adata/X/data/0/1", "not an integer");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'int32', 'data': [[1.5]]}}", ADX_E_SCHEMA,
          "/adata/X/data/0/0", "not an integer");
    fails("{'X': {'encoding-type': 'array', 'dtype': 'int64', 'data': [[9223372036854775808]]}}",
          ADX_E_SCHEMA, "/adata/X/data/0/0", "9223372036854775808 is out of range for int64");
}
END_TEST

START_TEST(base64_read_while_streaming)
{
    /* an escaped "/" and unpadded text take the slower path, same bytes */
    ad_anndata *a =
        dec("{'X': {'encoding-type': 'array', 'dtype': 'uint8', 'shape': [1, 3], 'base64': "
            "'\\/\\/\\/\\/'}, 'uns': {'d': {'base64': 'aGVsbG8'}, 'p': {'base64': 'aGVsbG8='}}}");
    ck_assert_msg(a != NULL, "%s", err.detail);
    const uint8_t *b = a->X->u.arr.data;
    ck_assert(b[0] == 0xff && b[1] == 0xff && b[2] == 0xff);
    /* "base64" as a plain dict key keeps its text exactly */
    const ad_dict *dd = &uns(a, "d")->u.dict, *dp = &uns(a, "p")->u.dict;
    ck_assert_str_eq(ad_str_at(&ad_dict_get(dd, "base64")->u.arr, 0), "aGVsbG8");
    ck_assert_str_eq(ad_str_at(&ad_dict_get(dp, "base64")->u.arr, 0), "aGVsbG8=");
    ad_anndata_free(a);
    /* whitespace is not base64 */
    fails("{'X': {'encoding-type': 'array', 'dtype': 'uint8', 'shape': [1, 3], 'base64': '////"
          "\\n'}}",
          ADX_E_SCHEMA, "/adata/X/base64", "invalid base64 byte 0x0a at offset 4");
    /* a large block through the streaming decoder, across chunk borders */
    size_t n = 3u << 20;
    char *t = malloc(n / 3 * 4 + 200);
    /* in uns: an X this wide would get a default index of 3M names */
    size_t o = (size_t)sprintf(t,
                               "{\"uns\": {\"b\": {\"encoding-type\": \"array\", \"dtype\": "
                               "\"uint8\", \"shape\": [%zu], \"base64\": \"",
                               n);
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)((i * 2654435761u) & 0xffffff);
        t[o++] = al[v >> 18];
        t[o++] = al[(v >> 12) & 63];
        t[o++] = al[(v >> 6) & 63];
        t[o++] = al[v & 63];
    }
    o += (size_t)sprintf(t + o, "\"}}}");
    adx_budget bud;
    adx_budget_init(&bud, 0);
    jdec_opts opt = {.limits = &lim, .budget = &bud, .base_ptr = "/adata"};
    jdec_doc *doc = jdec_read_buffer(t, o, &opt, &err);
    ck_assert_msg(doc != NULL, "%s", err.detail);
    a = jdec_doc_anndata(doc, NULL, &opt, &rep, &err);
    jdec_doc_free(doc);
    ck_assert_msg(a != NULL, "%s", err.detail);
    b = uns(a, "b")->u.arr.data;
    size_t wrong = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)((i * 2654435761u) & 0xffffff);
        wrong += b[i] != v >> 16 || b[i + 1] != ((v >> 8) & 0xff) || b[i + 2] != (v & 0xff);
    }
    ck_assert_uint_eq(wrong, 0);
    /* the text never existed: the peak is about the bytes, not the text */
    ck_assert_uint_lt(adx_budget_peak(&bud), n + n / 2 + (2u << 20));
    ad_anndata_free(a);
    free(t);
}
END_TEST

START_TEST(memory_bounded_whatever_the_nesting)
{
    /* the issue's shape: {"X": [[1]], "uns": {"a": [{}, {}, ...]}} */
    size_t k = 300000;
    char *t = malloc(k * 3 + 64);
    size_t o = (size_t)sprintf(t, "{\"X\": [[1]], \"uns\": {\"a\": [");
    for (size_t i = 0; i < k; i++)
        o += (size_t)sprintf(t + o, i ? ",{}" : "{}");
    o += (size_t)sprintf(t + o, "]}}");
    adx_budget bud;
    adx_budget_init(&bud, 0);
    jdec_opts opt = {.limits = &lim, .budget = &bud, .base_ptr = "/adata"};
    jdec_doc *doc = jdec_read_buffer(t, o, &opt, &err);
    ck_assert_msg(doc != NULL, "%s", err.detail);
    ad_anndata *a = jdec_doc_anndata(doc, NULL, &opt, &rep, &err);
    jdec_doc_free(doc);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_int_eq(uns(a, "a")->kind, AD_K_OBJECT);
    /* 8 bytes per {} in the tree and the value stack, the JSON text itself,
     * and the fixed buffers: far from the 79x of a tree of nodes */
    ck_assert_msg(adx_budget_peak(&bud) < 8 * o + (1u << 20), "peak %llu for %zu bytes",
                  (unsigned long long)adx_budget_peak(&bud), o);
    ad_anndata_free(a);
    /* and a budget below that is a 413 naming it, at the element */
    adx_budget_init(&bud, 1u << 20);
    adx_err_init(&err);
    ck_assert_ptr_null(jdec_read_buffer(t, o, &opt, &err));
    ck_assert_int_eq(err.status, 413);
    ck_assert_msg(strstr(err.detail, "max_request_memory = 1048576") != NULL, "%s", err.detail);
    ck_assert_msg(!strncmp(err.items[0].pointer, "/adata/uns/a/", 13), "%s", err.items[0].pointer);
    ck_assert_uint_eq(adx_budget_used(&bud), 0);
    free(t);
}
END_TEST

/* Issue 11 point 5: a request's peak is its decoded arrays plus a small
 * constant. Two 1000 x 2000 matrices (an int one with nulls -> float64, a
 * real one), 16 MB each decoded, go through under a max_request_memory of
 * their decoded size plus 2 MiB; the tree and a typed copy of each (the
 * path before packed arrays) needed their size twice. */
static char *matrix_text(size_t rows, size_t cols, bool reals, size_t *len)
{
    char *t = malloc(rows * cols * 6 + 16), *o = t;
    *o++ = '[';
    for (size_t i = 0; i < rows; i++) {
        *o++ = i ? ',' : ' ';
        *o++ = '[';
        for (size_t j = 0; j < cols; j++) {
            if (j) *o++ = ',';
            size_t k = (i * 7 + j * 3) % 10;
            if (reals)
                o += sprintf(o, "%zu.5", k);
            else if (k < 4)
                o += sprintf(o, "null");
            else
                o += sprintf(o, "%d", (int)k - 6);
        }
        *o++ = ']';
    }
    *o++ = ']';
    *o = '\0';
    *len = (size_t)(o - t);
    return t;
}

START_TEST(peak_is_decoded_arrays_plus_a_constant)
{
    size_t rows = 1000, cols = 2000, lx, ll;
    char *x = matrix_text(rows, cols, false, &lx), *l = matrix_text(rows, cols, true, &ll);
    char *t = malloc(lx + ll + 64);
    size_t o = (size_t)sprintf(t, "{\"X\": %s, \"layers\": {\"l\": %s}}", x, l);
    free(x);
    free(l);
    uint64_t decoded = 2 * rows * cols * sizeof(double);
    adx_budget bud;
    adx_budget_init(&bud, decoded + (2u << 20));
    jdec_opts opt = {.limits = &lim, .budget = &bud, .base_ptr = "/adata"};
    jdec_doc *doc = jdec_read_buffer(t, o, &opt, &err);
    ck_assert_msg(doc != NULL, "%s", err.detail);
    ad_anndata *a = jdec_doc_anndata(doc, NULL, &opt, &rep, &err);
    jdec_doc_free(doc);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_msg(adx_budget_peak(&bud) <= decoded + (2u << 20), "peak %llu",
                  (unsigned long long)adx_budget_peak(&bud));
    /* the model holds its arrays (and the default indexes' text) once the
     * document is gone */
    ck_assert_uint_ge(adx_budget_used(&bud), decoded);
    ck_assert_uint_lt(adx_budget_used(&bud), decoded + (64u << 10));
    const ad_array *X = &a->X->u.arr, *L = &ad_dict_get(&a->layers, "l")->u.arr;
    ck_assert_int_eq(X->dtype, AD_F64);
    ck_assert_int_eq(L->dtype, AD_F64);
    ck_assert_uint_eq(X->shape[0], rows);
    ck_assert_uint_eq(X->shape[1], cols);
    for (size_t i = 0; i < rows; i += 97)
        for (size_t j = 0; j < cols; j += 13) {
            size_t k = (i * 7 + j * 3) % 10;
            double xv = ((double *)X->data)[i * cols + j], lv = ((double *)L->data)[i * cols + j];
            if (k < 4)
                ck_assert(isnan(xv));
            else
                ck_assert_double_eq(xv, (double)k - 6);
            ck_assert_double_eq(lv, (double)k + 0.5);
        }
    ad_anndata_free(a);
    /* the same request as plain nodes plus a typed copy (packing off, as
     * before): the same budget is a 413 */
    jv_pack_min_set(SIZE_MAX);
    adx_budget_init(&bud, decoded + (2u << 20));
    adx_err_init(&err);
    doc = jdec_read_buffer(t, o, &opt, &err);
    a = doc ? jdec_doc_anndata(doc, NULL, &opt, &rep, &err) : NULL;
    jdec_doc_free(doc);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(err.status, 413);
    ck_assert_msg(strstr(err.detail, "max_request_memory") != NULL, "%s", err.detail);
    jv_pack_min_set(JV_PACK_MIN);
    free(t);
}
END_TEST

/* Narrow typed matrices as nested JSON: (i * 7 + j * 3) mapped into the
 * dtype's range, `bad` (if not NULL) in place of the value at (bi, bj). */
static double narrow_value(const char *dtype, size_t i, size_t j)
{
    size_t k = i * 7 + j * 3;
    if (!strcmp(dtype, "int8")) return (double)(k % 256) - 128;
    if (!strcmp(dtype, "uint8")) return (double)(k % 256);
    if (!strcmp(dtype, "int16")) return (double)(k % 65536) - 32768;
    if (!strcmp(dtype, "float32")) return (double)(k % 97) / 4.0;
    return k % 5 == 0; /* bool */
}

static char *narrow_text(const char *dtype, size_t rows, size_t cols, bool dtype_last,
                         const char *bad, size_t bi, size_t bj, size_t *len)
{
    char *t = malloc(rows * cols * 8 + 256), *o = t;
    ck_assert_ptr_nonnull(t);
    char head[160];
    snprintf(head, sizeof head,
             "\"encoding-type\": \"array\", \"dtype\": \"%s\", \"shape\": [%zu, %zu]", dtype, rows,
             cols);
    o += sprintf(o, "{%s%s\"data\": [", dtype_last ? "" : head, dtype_last ? "" : ", ");
    bool boolean = !strcmp(dtype, "bool"), real = !strcmp(dtype, "float32");
    for (size_t i = 0; i < rows; i++) {
        *o++ = i ? ',' : ' ';
        *o++ = '[';
        for (size_t j = 0; j < cols; j++) {
            if (j) *o++ = ',';
            double v = narrow_value(dtype, i, j);
            if (bad && i == bi && j == bj)
                o += sprintf(o, "%s", bad);
            else if (boolean)
                o += sprintf(o, "%s", v != 0 ? "true" : "false");
            else if (real)
                o += sprintf(o, "%.2f", v);
            else
                o += sprintf(o, "%d", (int)v);
        }
        *o++ = ']';
    }
    o += sprintf(o, "]%s%s}", dtype_last ? ", " : "", dtype_last ? head : "");
    *len = (size_t)(o - t);
    return t;
}

/* Decode `text` under a budget of `limit` bytes (0 = none); *peak and
 * *used (after the document is gone) from the budget. */
static ad_anndata *dec_budget(const char *text, size_t len, uint64_t limit, uint64_t *peak,
                              uint64_t *used)
{
    adx_budget bud;
    adx_budget_init(&bud, limit);
    jdec_opts opt = {.limits = &lim, .budget = &bud, .base_ptr = "/adata"};
    adx_err_init(&err);
    jdec_doc *doc = jdec_read_buffer(text, len, &opt, &err);
    bool parsed = doc != NULL;
    ad_anndata *a = doc ? jdec_doc_anndata(doc, NULL, &opt, &rep, &err) : NULL;
    jdec_doc_free(doc);
    *peak = adx_budget_peak(&bud);
    *used = adx_budget_used(&bud);
    /* a refused parse gives back all it took (the model's charges last
     * as long as the request) */
    if (!parsed) ck_assert_uint_eq(adx_budget_used(&bud), 0);
    return a;
}

/* Under `limit` the request is refused: a 413 naming max_request_memory. */
static void assert_refused(const char *text, size_t len, uint64_t limit)
{
    uint64_t peak, used;
    ck_assert_ptr_null(dec_budget(text, len, limit, &peak, &used));
    ck_assert_int_eq(err.status, 413);
    ck_assert_msg(strstr(err.detail, "max_request_memory = ") != NULL, "%s", err.detail);
}

static void check_narrow(const ad_array *x, const char *dtype, ad_dtype t, size_t rows, size_t cols)
{
    ck_assert_int_eq(x->dtype, t);
    ck_assert_int_eq(x->ndim, 2);
    ck_assert_uint_eq(x->shape[0], rows);
    ck_assert_uint_eq(x->shape[1], cols);
    size_t wrong = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            wrong += ad_array_get_f64(x, i * cols + j) != narrow_value(dtype, i, j);
    ck_assert_uint_eq(wrong, 0);
}

/* Issue point: a narrow dtype's nested data used to hold 8 bytes per
 * value until it was converted (8x an int8 matrix). Values are now kept
 * in their narrowest exact form while they are parsed, "dtype" before or
 * after "data": the peak is the decoded arrays plus a small constant. */
START_TEST(narrow_nested_data_peak)
{
    size_t rows = 1000, cols = 2000, n = rows * cols;
    static const struct {
        const char *dtype, *where;
        ad_dtype t;
        bool last;
    } m[] = {
        {"int8", "X", AD_I8, false},     {"uint8", "u8", AD_U8, true},
        {"int16", "i16", AD_I16, false}, {"float32", "f32", AD_F32, true},
        {"bool", "b", AD_BOOL, false},
    };
    size_t nm = sizeof m / sizeof *m, cap = 64, o = 0;
    uint64_t decoded = 0;
    char *parts[5];
    size_t lens[5];
    for (size_t k = 0; k < nm; k++) {
        parts[k] = narrow_text(m[k].dtype, rows, cols, m[k].last, NULL, 0, 0, &lens[k]);
        cap += lens[k] + 32;
        decoded += n * ad_dtype_size(m[k].t);
    }
    char *t = malloc(cap);
    o += (size_t)sprintf(t + o, "{\"X\": %s, \"layers\": {", parts[0]);
    for (size_t k = 1; k < nm; k++)
        o += (size_t)sprintf(t + o, "%s\"%s\": %s", k > 1 ? ", " : "", m[k].where, parts[k]);
    o += (size_t)sprintf(t + o, "}}");
    for (size_t k = 0; k < nm; k++)
        free(parts[k]);
    uint64_t peak, used;
    ad_anndata *a = dec_budget(t, o, decoded + (2u << 20), &peak, &used);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_msg(peak <= decoded + (2u << 20), "peak %llu for %llu decoded",
                  (unsigned long long)peak, (unsigned long long)decoded);
    ck_assert_uint_ge(used, decoded);
    check_narrow(&a->X->u.arr, "int8", AD_I8, rows, cols);
    for (size_t k = 1; k < nm; k++)
        check_narrow(&ad_dict_get(&a->layers, m[k].where)->u.arr, m[k].dtype, m[k].t, rows, cols);
    ad_anndata_free(a);
    /* below the decoded size it is a 413 naming the limit */
    assert_refused(t, o, decoded / 2);
    /* 8-byte words until conversion (packing off, as before): the same
     * budget as above is a 413 too */
    jv_pack_min_set(SIZE_MAX);
    assert_refused(t, o, decoded + (2u << 20));
    jv_pack_min_set(JV_PACK_MIN);
    free(t);
}
END_TEST

/* The values a narrow dtype refuses are found as before, with the same
 * message and pointer, in encoded matrices and whatever the key order. */
START_TEST(narrow_nested_data_errors)
{
    static const struct {
        const char *dtype, *bad;
        size_t i, j;
        bool last;
        const char *ptr, *msg;
    } c[] = {
        {"int8", "200", 700, 1500, false, "/adata/X/data/700/1500",
         "value 200 is out of range for int8"},
        {"uint8", "-1", 999, 1999, true, "/adata/X/data/999/1999",
         "value -1 is out of range for uint8"},
        {"int16", "1.5", 0, 0, false, "/adata/X/data/0/0", "value 1.5 is not an integer"},
        {"int8", "1.5", 500, 3, true, "/adata/X/data/500/3", "value 1.5 is not an integer"},
        {"bool", "2", 3, 4, true, "/adata/X/data/3/4", "value 2 is out of range for bool"},
        {"int8", "null", 10, 10, false, "/adata/X/data/10/10", "null in a int8 array"},
        {"uint8", "300", 1, 1999, false, "/adata/X/data/1/1999",
         "value 300 is out of range for uint8"},
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        size_t len;
        char *x = narrow_text(c[k].dtype, 1000, 2000, c[k].last, c[k].bad, c[k].i, c[k].j, &len);
        char *t = malloc(len + 16);
        size_t o = (size_t)sprintf(t, "{\"X\": %s}", x);
        free(x);
        uint64_t peak, used;
        ad_anndata *a = dec_budget(t, o, 0, &peak, &used);
        free(t);
        ck_assert_msg(a == NULL, "%s with %s decoded", c[k].dtype, c[k].bad);
        ck_assert_int_eq(err.type, ADX_E_SCHEMA);
        ck_assert_str_eq(err.items[0].pointer, c[k].ptr);
        ck_assert_msg(strstr(err.detail, c[k].msg) != NULL, "'%s' lacks '%s'", err.detail,
                      c[k].msg);
    }
}
END_TEST

/* A 1-d typed array (uns), a sparse matrix's typed data and a column of
 * small integers are encoded as they are read too. */
START_TEST(narrow_flat_data_peak)
{
    size_t n = 4u << 20, o = 0;
    char *t = malloc(n * 16 + 512);
    o += (size_t)sprintf(t + o, "{\"obs\": {\"columns\": {\"c\": [");
    size_t rows = 100000;
    for (size_t i = 0; i < rows; i++)
        o += (size_t)sprintf(t + o, "%s%zu", i ? "," : "", i % 100);
    o += (size_t)sprintf(t + o, "]}}, \"uns\": {\"v\": {\"encoding-type\": \"array\", \"data\": [");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(t + o, "%s%d", i ? "," : "", (int)(i % 60000) - 30000);
    o += (size_t)sprintf(t + o, "], \"dtype\": \"int16\"}}}");
    /* the column is int64 as pandas makes it: its words are what it costs */
    uint64_t decoded = (uint64_t)n * 2 + rows * 8, peak, used;
    ad_anndata *a = dec_budget(t, o, decoded + (10u << 20), &peak, &used);
    ck_assert_msg(a != NULL, "%s at %s", err.detail, err.items[0].pointer);
    ck_assert_msg(peak <= decoded + (10u << 20), "peak %llu", (unsigned long long)peak);
    const ad_array *v = &uns(a, "v")->u.arr;
    ck_assert_int_eq(v->dtype, AD_I16);
    ck_assert_uint_eq(v->n, n);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += ((int16_t *)v->data)[i] != (int)(i % 60000) - 30000;
    ck_assert_uint_eq(wrong, 0);
    const ad_array *c = &obscol(a, "c")->u.arr;
    ck_assert_int_eq(c->dtype, AD_I64);
    ck_assert_int_eq(((int64_t *)c->data)[rows - 1], (int)((rows - 1) % 100));
    ad_anndata_free(a);
    assert_refused(t, o, decoded / 2);
    free(t);
}
END_TEST

/* float32 data written with fewer digits than its float32 values (0.1):
 * with "encoding-type" and "dtype" before "data" it is kept as float32
 * while it is read (numpy's float32 of each value, null = NaN); after
 * "data" it keeps 8-byte words until converted, the same values. Inside a
 * list (an uns JSON cell) the text of the numbers is kept exactly. */
static char *f32_text(size_t rows, size_t cols, bool dtype_last, size_t *len)
{
    char *t = malloc(rows * cols * 12 + 256), *o = t;
    ck_assert_ptr_nonnull(t);
    const char *head = "\"encoding-type\": \"array\", \"dtype\": \"float32\"";
    o += sprintf(o, "{%s%s\"data\": [", dtype_last ? "" : head, dtype_last ? "" : ", ");
    for (size_t i = 0; i < rows; i++) {
        *o++ = i ? ',' : ' ';
        *o++ = '[';
        for (size_t j = 0; j < cols; j++) {
            size_t k = i * 7 + j * 3;
            if (j) *o++ = ',';
            if (k % 101 == 0)
                o += sprintf(o, "null");
            else if (k % 103 == 0)
                o += sprintf(o, "%zu", k);
            else
                o += sprintf(o, "%zu.%zu", k % 50, k % 9 + 1);
        }
        *o++ = ']';
    }
    o += sprintf(o, "]%s%s}", dtype_last ? ", " : "", dtype_last ? head : "");
    *len = (size_t)(o - t);
    return t;
}

static void check_f32(const ad_array *x, size_t rows, size_t cols)
{
    ck_assert_int_eq(x->dtype, AD_F32);
    size_t wrong = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            size_t k = i * 7 + j * 3;
            float v = ((const float *)x->data)[i * cols + j], want;
            if (k % 101 == 0) {
                wrong += !isnan(v);
                continue;
            }
            if (k % 103 == 0)
                want = (float)(double)k;
            else
                want = (float)((double)(k % 50) + (double)(k % 9 + 1) / 10.0);
            wrong += v != want;
        }
    ck_assert_uint_eq(wrong, 0);
}

START_TEST(float32_data_peak)
{
    size_t rows = 1000, cols = 2000, n = rows * cols, lf, ll;
    char *f = f32_text(rows, cols, false, &lf), *l = f32_text(rows, cols, true, &ll);
    char *t = malloc(lf + ll + 64);
    size_t o = (size_t)sprintf(t, "{\"X\": %s}", f);
    uint64_t decoded = n * 4, peak, used;
    ad_anndata *a = dec_budget(t, o, decoded + (2u << 20), &peak, &used);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_msg(peak <= decoded + (2u << 20), "peak %llu", (unsigned long long)peak);
    check_f32(&a->X->u.arr, rows, cols);
    ad_anndata_free(a);
    assert_refused(t, o, decoded / 2);
    /* "dtype" after "data": words until converted, the same floats */
    o = (size_t)sprintf(t, "{\"X\": %s}", l);
    a = dec_budget(t, o, 0, &peak, &used);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_uint_ge(peak, n * 8);
    check_f32(&a->X->u.arr, rows, cols);
    ad_anndata_free(a);
    /* in a list it is JSON text, its numbers as they were written */
    o = (size_t)sprintf(t, "{\"uns\": {\"l\": [%s, 1]}}", f);
    a = dec_budget(t, o, 0, &peak, &used);
    ck_assert_msg(a != NULL, "%s", err.detail);
    const ad_object *c = &uns(a, "l")->u.obj;
    ck_assert_int_eq(c->kind[0], AD_CELL_JSON);
    /* Python's repr of the double 3.4, not of the float32 3.4f */
    ck_assert_msg(strstr(ad_object_text(c, 0), "[[null,3.4,") != NULL, "%.80s",
                  ad_object_text(c, 0));
    ad_anndata_free(a);
    free(f);
    free(l);
    free(t);
}
END_TEST

/* A large matrix followed by a ragged row: its rows become nodes over the
 * words where they lie (they were copied once, twice the matrix). The
 * decoder then names the ragged row, within the budget of the words. */
START_TEST(ragged_row_after_a_large_matrix)
{
    size_t rows = 1000, cols = 2000, lx;
    char *x = matrix_text(rows, cols, true, &lx);
    char *t = malloc(lx + 64);
    /* drop the closing bracket, add a short row */
    size_t o = (size_t)sprintf(t, "{\"X\": %.*s, [1, 2]]}", (int)(lx - 1), x);
    free(x);
    uint64_t words = rows * cols * sizeof(double), peak, used;
    ad_anndata *a = dec_budget(t, o, words + (2u << 20), &peak, &used);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(err.type, ADX_E_SHAPE);
    ck_assert_str_eq(err.items[0].pointer, "/adata/X/1000");
    ck_assert_msg(strstr(err.detail, "row 1000 has length 2, expected 2000"), "%s", err.detail);
    ck_assert_msg(peak <= words + (2u << 20), "peak %llu", (unsigned long long)peak);
    /* less than the words: a 413 naming the limit */
    assert_refused(t, o, words / 2);
    /* in uns the same rows are one JSON cell, every number in it */
    o = (size_t)sprintf(t, "{\"uns\": {\"r\": [[0.5, 1.5], [2.5, 3.5], [4]]}}");
    jv_pack_min_set(0);
    a = dec_budget(t, o, 0, &peak, &used);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_str_eq(ad_object_text(&uns(a, "r")->u.obj, 0), "[[0.5,1.5],[2.5,3.5],[4]]");
    ad_anndata_free(a);
    jv_pack_min_set(JV_PACK_MIN);
    free(t);
}
END_TEST

/* Nullable-integer values and categorical codes are converted in place
 * (they were copied out of the document: twice the column); split-orient
 * frames still copy each column out of the rows, and both are charged. */
START_TEST(typed_columns_in_place_and_charged)
{
    size_t n = 2u << 20, o = 0;
    char *t = malloc(n * 24 + 256);
    o += (size_t)sprintf(t + o, "{\"uns\": {\"n\": {\"encoding-type\": \"nullable-integer\", "
                                "\"values\": [");
    for (size_t i = 0; i < n; i++)
        o += i % 3 ? (size_t)sprintf(t + o, "%s%zu", i ? "," : "", i % 1000)
                   : (size_t)sprintf(t + o, "%snull", i ? "," : "");
    o += (size_t)sprintf(t + o, "]}, \"c\": {\"encoding-type\": \"categorical\", \"categories\": "
                                "[\"a\", \"b\", \"c\"], \"codes\": [");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(t + o, "%s%d", i ? "," : "", (int)(i % 4) - 1);
    o += (size_t)sprintf(t + o, "]}}}");
    /* int64 values + mask, int8 codes */
    uint64_t decoded = n * 9 + n, peak, used;
    /* plus the value stack's room (it grows 8 MiB at a time) */
    ad_anndata *a = dec_budget(t, o, decoded + (10u << 20), &peak, &used);
    ck_assert_msg(a != NULL, "%s", err.detail);
    ck_assert_msg(peak <= decoded + (10u << 20), "peak %llu", (unsigned long long)peak);
    const ad_nullable *nl = &uns(a, "n")->u.nl;
    ck_assert_int_eq(nl->values.dtype, AD_I64);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        bool miss = ((uint8_t *)nl->mask.data)[i];
        int64_t v = ((int64_t *)nl->values.data)[i];
        wrong += i % 3 ? miss || v != (int64_t)(i % 1000) : !miss || v != 0;
    }
    ck_assert_uint_eq(wrong, 0);
    const ad_categorical *cat = &uns(a, "c")->u.cat;
    ck_assert_int_eq(cat->codes.dtype, AD_I8);
    for (size_t i = 0; i < n; i++)
        wrong += ((int8_t *)cat->codes.data)[i] != (int)(i % 4) - 1;
    ck_assert_uint_eq(wrong, 0);
    ad_anndata_free(a);
    assert_refused(t, o, decoded / 2);
    /* the check of the copying path, before the codes are converted */
    char *bad = strstr(t, "\"codes\": [") + 10;
    for (int k = 0; k < 1003; k++)
        bad = strchr(bad, ',') + 1;
    ck_assert_int_eq(*bad, '2');
    *bad = '3';
    a = dec_budget(t, o, 0, &peak, &used);
    ck_assert_ptr_null(a);
    ck_assert_str_eq(err.items[0].pointer, "/adata/uns/c/codes/1003");
    ck_assert_msg(strstr(err.detail, "code 3 is out of range [-1, 3)"), "%s", err.detail);
    free(t);
    /* split-orient rows stay until the frame is done: the columns are
     * copies, charged (a budget under both is a 413) */
    size_t rows = 200000, cols = 10;
    t = malloc(rows * cols * 8 + 256);
    o = (size_t)sprintf(t, "{\"uns\": {\"f\": {\"encoding-type\": \"dataframe\", \"columns\": [");
    for (size_t j = 0; j < cols; j++)
        o += (size_t)sprintf(t + o, "%s\"c%zu\"", j ? ", " : "", j);
    o += (size_t)sprintf(t + o, "], \"data\": [");
    for (size_t i = 0; i < rows; i++) {
        o += (size_t)sprintf(t + o, "%s[", i ? "," : "");
        for (size_t j = 0; j < cols; j++)
            o += (size_t)sprintf(t + o, "%s%zu.5", j ? "," : "", (i + j) % 100);
        t[o++] = ']';
    }
    o += (size_t)sprintf(t + o, "]}}}");
    uint64_t cells = rows * cols * 8;
    a = dec_budget(t, o, 0, &peak, &used);
    ck_assert_msg(a != NULL, "%s", err.detail);
    /* the columns (float64) and the rows, float32-exact values kept in 4
     * bytes each and read where they lie (no row nodes), and the index */
    ck_assert_msg(peak >= cells, "peak %llu", (unsigned long long)peak);
    ck_assert_msg(peak <= cells + cells / 2 + (6u << 20), "peak %llu", (unsigned long long)peak);
    const ad_frame *f = &uns(a, "f")->u.df;
    ck_assert_uint_eq(f->n_rows, rows);
    ck_assert_double_eq(((double *)f->cols[3]->u.arr.data)[rows - 1],
                        (double)((rows - 1 + 3) % 100) + 0.5);
    ad_anndata_free(a);
    assert_refused(t, o, cells);
    free(t);
}
END_TEST

/* Rows of millions of values and the 2-d slabs of a 3-d array go into
 * the array's narrow run before they end: the peak does not grow with the
 * length of a row. A long row that turns out ragged, or holds a string,
 * gets its words back and is reported as before. */
static char *long_rows_text(size_t d0, size_t d1, size_t d2, size_t *len)
{
    char *t = malloc(d0 * d1 * (d2 ? d2 : 1) * 5 + 256), *o = t;
    ck_assert_ptr_nonnull(t);
    o += sprintf(o, "{\"uns\": {\"a\": {\"encoding-type\": \"array\", \"dtype\": \"int8\", "
                    "\"data\": [");
    for (size_t i = 0; i < d0; i++) {
        if (i) *o++ = ',';
        *o++ = '[';
        for (size_t j = 0; j < d1; j++) {
            if (!d2) {
                o += sprintf(o, "%s%d", j ? "," : "", (int)((i + j) % 256) - 128);
                continue;
            }
            o += sprintf(o, "%s[", j ? "," : "");
            for (size_t k = 0; k < d2; k++)
                o += sprintf(o, "%s%d", k ? "," : "", (int)((i + j + k) % 256) - 128);
            *o++ = ']';
        }
        *o++ = ']';
    }
    o += sprintf(o, "]}}}");
    *len = (size_t)(o - t);
    return t;
}

START_TEST(long_rows_and_slabs_stay_small)
{
    size_t len;
    uint64_t peak, used;
    /* 2 rows of 4M values, then 3 slabs of 1000 x 2000, under their size
     * plus the value stack's room (8 MiB steps) */
    char *t = long_rows_text(2, 4u << 20, 0, &len);
    uint64_t decoded = 2 * (4u << 20);
    ad_anndata *a = dec_budget(t, len, decoded + (10u << 20), &peak, &used);
    ck_assert_msg(a != NULL, "%s at %s", err.detail, err.items[0].pointer);
    const ad_array *x = &uns(a, "a")->u.arr;
    ck_assert_int_eq(x->ndim, 2);
    ck_assert_uint_eq(x->shape[1], 4u << 20);
    size_t wrong = 0;
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < (4u << 20); j++)
            wrong += ((int8_t *)x->data)[i * (4u << 20) + j] != (int)((i + j) % 256) - 128;
    ck_assert_uint_eq(wrong, 0);
    ad_anndata_free(a);
    free(t);
    t = long_rows_text(3, 1000, 2000, &len);
    decoded = 3 * 1000 * 2000;
    a = dec_budget(t, len, decoded + (10u << 20), &peak, &used);
    ck_assert_msg(a != NULL, "%s", err.detail);
    x = &uns(a, "a")->u.arr;
    ck_assert_int_eq(x->ndim, 3);
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 1000; j++)
            for (size_t k = 0; k < 2000; k++)
                wrong += ((int8_t *)x->data)[(i * 1000 + j) * 2000 + k] !=
                         (int)((i + j + k) % 256) - 128;
    ck_assert_uint_eq(wrong, 0);
    ad_anndata_free(a);
    /* below the decoded size: a 413 */
    a = dec_budget(t, len, decoded / 2, &peak, &used);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(err.status, 413);
    free(t);
    /* a long first row one value short: the second is ragged, named as before */
    t = long_rows_text(2, 1u << 20, 0, &len);
    char *end0 = strstr(t, "],["), *cut = end0;
    while (*cut != ',')
        cut--;
    memset(cut, ' ', (size_t)(end0 - cut));
    a = dec_budget(t, len, 0, &peak, &used);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(err.type, ADX_E_SHAPE);
    ck_assert_str_eq(err.items[0].pointer, "/adata/uns/a/data/1");
    ck_assert_msg(strstr(err.detail, "row 1 has length 1048576, expected 1048575"), "%s",
                  err.detail);
    free(t);
    /* a string deep in a long row (value -128 there: four characters) */
    t = long_rows_text(2, 1u << 20, 0, &len);
    cut = strstr(t, "],[") + 3;
    for (int k = 0; k < 900095; k++)
        cut = strchr(cut, ',') + 1;
    ck_assert(!strncmp(cut, "-128,", 5));
    memcpy(cut, "\"x\" ", 4);
    a = dec_budget(t, len, 0, &peak, &used);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(err.type, ADX_E_SCHEMA);
    ck_assert_str_eq(err.items[0].pointer, "/adata/uns/a/data/1/900095");
    free(t);
}
END_TEST

START_TEST(gzip_files_and_bombs)
{
    char path[] = "jdec_gz_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    gzFile g = gzopen(path, "wb");
    gzputs(g, "{\"adata\": {\"X\": [[1.5, 2]], \"uns\": {\"pad\": \"");
    for (int i = 0; i < 100000; i++)
        gzputs(g, "aaaaaaaaaa");
    gzputs(g, "\"}}}");
    gzclose(g);
    jdec_opts o = {.limits = &lim};
    jdec_doc *doc = jdec_read_file(path, &o, &err);
    ck_assert_msg(doc != NULL, "%s", err.detail);
    jdec_opts o2 = {.limits = &lim, .base_ptr = "/adata"};
    ad_anndata *a = jdec_doc_anndata(doc, "adata", &o2, &rep, &err);
    jdec_doc_free(doc);
    ck_assert_ptr_nonnull(a);
    ck_assert_double_eq(((double *)a->X->u.arr.data)[0], 1.5);
    ad_anndata_free(a);
    /* 1 MB of text from a few KB: the limit counts what it inflates to */
    lim.max_body_bytes = 500000;
    adx_err_init(&err);
    ck_assert_ptr_null(jdec_read_file(path, &o, &err));
    ck_assert_int_eq(err.status, 413);
    ck_assert_msg(strstr(err.detail, "max_body_bytes = 500000") != NULL, "%s", err.detail);
    unlink(path);
}
END_TEST

/* The same tests once more with every nonempty rectangular numeric array
 * packed (jdec_tree.h), however small: the converters' in-place path and
 * the parser's packing see every form and every error. */
static void setup_packed(void)
{
    setup();
    jv_pack_min_set(0);
}

static void teardown_packed(void)
{
    teardown();
    jv_pack_min_set(JV_PACK_MIN);
}

static void add_tests(TCase *t)
{
    tcase_add_test(t, nested_float_with_null);
    tcase_add_test(t, nested_int_bool_real);
    tcase_add_test(t, nan_spellings);
    tcase_add_test(t, matrix_errors);
    tcase_add_test(t, typed_dense_flat_and_nested);
    tcase_add_test(t, typed_dense_errors);
    tcase_add_test(t, base64_forms);
    tcase_add_test(t, base64_errors);
    tcase_add_test(t, csr_valid);
    tcase_add_test(t, csc_typed_blocks);
    tcase_add_test(t, sparse_errors);
    tcase_add_test(t, frame_columnar);
    tcase_add_test(t, big_unsigned_integers_as_text);
    tcase_add_test(t, json_text_reals_as_python_dumps);
    tcase_add_test(t, frame_split);
    tcase_add_test(t, frame_records);
    tcase_add_test(t, index_rules);
    tcase_add_test(t, frame_column_lengths);
    tcase_add_test(t, categorical_glob_ints);
    tcase_add_test(t, categorical_glob_types);
    tcase_add_test(t, categorical_mixed);
    tcase_add_test(t, categorical_typed);
    tcase_add_test(t, codes_dtype_widths);
    tcase_add_test(t, nullable_columns);
    tcase_add_test(t, uns_values);
    tcase_add_test(t, uns_typed_elements);
    tcase_add_test(t, uns_frame_duplicates_reported);
    tcase_add_test(t, shape_mismatches);
    tcase_add_test(t, shapes_without_x);
    tcase_add_test(t, raw_decoded);
    tcase_add_test(t, limit_huge_declared_shape);
    tcase_add_test(t, limit_depth_ndim_string_total);
    tcase_add_test(t, load_errors);
    tcase_add_test(t, polis_fixture);
    tcase_add_test(t, column_nan_strings_and_empty);
    tcase_add_test(t, column_bool_number_mix_is_object);
    tcase_add_test(t, index_float_repr);
    tcase_add_test(t, typed_dense_inferred_and_scalar);
    tcase_add_test(t, base64_bool_and_no_shape);
    tcase_add_test(t, sparse_in_namespaces);
    tcase_add_test(t, sparse_unsigned_and_typed_errors);
    tcase_add_test(t, uns_frame_forms);
    tcase_add_test(t, categorical_edge_cases);
    tcase_add_test(t, categorical_in_var_and_split);
    tcase_add_test(t, nullable_mask_and_errors);
    tcase_add_test(t, string_array_shapes);
    tcase_add_test(t, dims_from_other_elements);
    tcase_add_test(t, raw_without_x);
    tcase_add_test(t, pointer_escaping_and_base);
    tcase_add_test(t, obs_frame_wrong_forms);
    tcase_add_test(t, total_bytes_counts_strings);
    tcase_add_test(t, load_file_roundtrip_and_limit);
    tcase_add_test(t, nested_duplicate_key_rejected);
    tcase_add_test(t, uns_deep_lists_and_keys);
    tcase_add_test(t, matrix_bools_with_numbers_numpy_rule);
    tcase_add_test(t, uns_numbers_with_nan_strings);
    tcase_add_test(t, records_index_and_duplicates);
    tcase_add_test(t, varm_frame_and_typed_x_rank);
    tcase_add_test(t, string_limits_on_keys_and_cells);
    tcase_add_test(t, depth_counts_dicts_not_frames);
    tcase_add_test(t, sparse_large_shape_keeps_int64);
    tcase_add_test(t, empty_rows_sparse_and_frames);
    tcase_add_test(t, binary_parts_call_the_callback);
    tcase_add_test(t, rec_arrays_from_json);
    tcase_add_test(t, strict_json_text);
    tcase_add_test(t, parse_limits_name_themselves);
    tcase_add_test(t, huge_string_refused_while_lexing);
    tcase_add_test(t, numbers_in_typed_arrays);
    tcase_add_test(t, base64_read_while_streaming);
    tcase_add_test(t, memory_bounded_whatever_the_nesting);
    tcase_add_test(t, peak_is_decoded_arrays_plus_a_constant);
    tcase_add_test(t, narrow_nested_data_peak);
    tcase_add_test(t, narrow_nested_data_errors);
    tcase_add_test(t, narrow_flat_data_peak);
    tcase_add_test(t, float32_data_peak);
    tcase_add_test(t, ragged_row_after_a_large_matrix);
    tcase_add_test(t, typed_columns_in_place_and_charged);
    tcase_add_test(t, long_rows_and_slabs_stay_small);
    tcase_add_test(t, gzip_files_and_bombs);
}

static Suite *suite(void)
{
    Suite *s = suite_create("jdec");
    TCase *t = tcase_create("all");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    add_tests(t);
    suite_add_tcase(s, t);
    TCase *p = tcase_create("packed");
    tcase_add_checked_fixture(p, setup_packed, teardown_packed);
    tcase_set_timeout(p, 60);
    add_tests(p);
    suite_add_tcase(s, p);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
