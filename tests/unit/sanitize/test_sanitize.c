/* Unit tests of the sanitize stage: every rule of payload.md "Sanitization",
 * the report paths and counts, and strings_to_categoricals. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_sanitize.h"
#include "sanitize_test.h"
#include "helpers.h"

/* Walks the model and fails on any AD_K_OBJECT / AD_K_NULL. */
static void assert_clean_elem(const ad_elem *e);
static void assert_clean_dict(const ad_dict *d)
{
    for (size_t i = 0; i < d->n; i++)
        assert_clean_elem(d->vals[i]);
}
static void assert_clean_frame(const ad_frame *f)
{
    for (size_t i = 0; i < f->ncols; i++)
        assert_clean_elem(f->cols[i]);
}
static void assert_clean_elem(const ad_elem *e)
{
    ck_assert_ptr_nonnull(e);
    ck_assert_int_ne(e->kind, AD_K_OBJECT);
    ck_assert_int_ne(e->kind, AD_K_NULL);
    if (e->kind == AD_K_DICT) assert_clean_dict(&e->u.dict);
    if (e->kind == AD_K_FRAME) assert_clean_frame(&e->u.df);
}
static void assert_clean(const ad_anndata *a)
{
    if (a->X) assert_clean_elem(a->X);
    assert_clean_frame(&a->obs);
    assert_clean_frame(&a->var);
    assert_clean_dict(&a->obsm);
    assert_clean_dict(&a->varm);
    assert_clean_dict(&a->layers);
    assert_clean_dict(&a->obsp);
    assert_clean_dict(&a->varp);
    assert_clean_dict(&a->uns);
    if (a->raw) {
        if (a->raw->X) assert_clean_elem(a->raw->X);
        assert_clean_frame(&a->raw->var);
        assert_clean_dict(&a->raw->varm);
    }
}

/* Sanitize a model with one obs column and return the report. */
static ad_anndata *one_obs_column(const char *name, const tcell *cells, uint64_t n, adx_report *rep)
{
    ad_anndata *a = ad_anndata_new();
    ck_assert_ptr_nonnull(a);
    a->n_obs = n;
    mk_frame(&a->obs, n);
    ck_assert_int_eq(ad_frame_add(&a->obs, name, mk_col(cells, n)), 0);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_anndata(a, NULL, rep, &err), 0);
    ck_assert(!adx_err_failed(&err));
    assert_clean(a);
    return a;
}

START_TEST(strings_with_some_null)
{
    tcell cells[] = {C_STR("a"), C_NULL, C_STR("b"), C_NULL, C_STR("")};
    adx_report rep = {0};
    ad_anndata *a = one_obs_column("group", cells, 5, &rep);
    const ad_elem *c = frame_col(&a->obs, "group");
    ck_assert_int_eq(c->kind, AD_K_ARRAY);
    ck_assert_int_eq(c->u.arr.ndim, 1);
    const char *want[] = {"a", "", "b", "", ""};
    assert_strs(&c->u.arr, want, 5);
    ck_assert_uint_eq(rep.n, 1);
    ck_assert_str_eq(rep.e[0].path, "/obs/group");
    ck_assert_str_eq(rep.e[0].action, REP_NULL_TO_EMPTY);
    ck_assert_uint_eq(rep.e[0].count, 2);
    ck_assert_ptr_null(rep.e[0].detail);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

/* A set cancel flag stops the walk before the element it would convert;
 * a clear one sanitizes as san_anndata does. */
START_TEST(cancel_flag_stops_the_walk)
{
    tcell cells[] = {C_STR("a"), C_NULL};
    ad_anndata *a = ad_anndata_new();
    ck_assert_ptr_nonnull(a);
    a->n_obs = 2;
    mk_frame(&a->obs, 2);
    ck_assert_int_eq(ad_frame_add(&a->obs, "group", mk_col(cells, 2)), 0);
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    atomic_int cancel = 1;
    adx_ctl ctl = {.cancel = &cancel};
    ck_assert_int_eq(san_anndata_ctl(a, NULL, &ctl, &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_CANCELED);
    ck_assert_int_eq(frame_col(&a->obs, "group")->kind, AD_K_OBJECT);
    ck_assert_uint_eq(rep.n, 0);
    atomic_store(&cancel, 0);
    adx_err_init(&err);
    ck_assert_int_eq(san_anndata_ctl(a, NULL, &ctl, &rep, &err), 0);
    assert_clean(a);
    ck_assert_uint_eq(rep.n, 1);
    /* strings_to_categoricals polls it per column */
    atomic_store(&cancel, 1);
    adx_err_init(&err);
    ck_assert_int_eq(san_strings_to_categoricals_ctl(a, &ctl, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_CANCELED);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

/* The strings an object column becomes are charged to the request's
 * budget as they are built (text, NUL and offset per cell): a budget of
 * their size goes through and keeps them counted, one below is a 413
 * naming max_request_memory at the column, its charge given back. */
START_TEST(conversions_are_charged_to_the_budget)
{
    enum { N = 200000 };
    tcell *cells = calloc(N, sizeof *cells);
    uint64_t bytes = 8;
    for (uint64_t i = 0; i < N; i++) {
        switch (i % 4) {
        case 0:
            cells[i] = (tcell)C_STR("some text");
            bytes += 9;
            break;
        case 1:
            cells[i] = (tcell)C_NULL;
            break;
        case 2:
            cells[i] = (tcell)C_INT(123456);
            bytes += 6;
            break;
        default:
            cells[i] = (tcell)C_REAL(0.5);
            bytes += 3;
        }
        bytes += 1 + 8;
    }
    for (int pass = 0; pass < 2; pass++) {
        ad_anndata *a = ad_anndata_new();
        ck_assert_ptr_nonnull(a);
        a->n_obs = N;
        mk_frame(&a->obs, N);
        ck_assert_int_eq(ad_frame_add(&a->obs, "mixed", mk_col(cells, N)), 0);
        adx_budget bud;
        adx_budget_init(&bud, pass ? bytes - 1 : bytes);
        adx_ctl ctl = {.budget = &bud};
        adx_report rep = {0};
        adx_err err;
        adx_err_init(&err);
        int r = san_anndata_ctl(a, NULL, &ctl, &rep, &err);
        if (!pass) {
            ck_assert_msg(r == 0, "%s", err.detail);
            ck_assert_uint_eq(adx_budget_used(&bud), bytes);
            const ad_array *s = &frame_col(&a->obs, "mixed")->u.arr;
            ck_assert_str_eq(ad_str_at(s, 2), "123456");
            ck_assert_str_eq(ad_str_at(s, N - 1), "0.5");
        } else {
            ck_assert_int_eq(r, -1);
            ck_assert_int_eq(err.status, 413);
            ck_assert_str_eq(err.items[0].pointer, "/obs/mixed");
            ck_assert_msg(strstr(err.detail, "max_request_memory = ") != NULL, "%s", err.detail);
            ck_assert_uint_eq(adx_budget_used(&bud), 0);
            ck_assert_int_eq(frame_col(&a->obs, "mixed")->kind, AD_K_OBJECT);
        }
        rep_free(&rep);
        ad_anndata_free(a);
    }
    free(cells);
}
END_TEST

/* strings_to_categoricals charges the builder's rows and what it keeps. */
START_TEST(categoricals_are_charged_to_the_budget)
{
    enum { N = 100000 };
    tcell *cells = calloc(N, sizeof *cells);
    static const char *const v[] = {"b", "a", "c"};
    for (uint64_t i = 0; i < N; i++)
        cells[i] = (tcell)C_STR(v[i % 3]);
    for (int pass = 0; pass < 2; pass++) {
        ad_anndata *a = ad_anndata_new();
        ck_assert_ptr_nonnull(a);
        a->n_obs = N;
        mk_frame(&a->obs, N);
        ck_assert_int_eq(ad_frame_add(&a->obs, "g", mk_col(cells, N)), 0);
        adx_report rep = {0};
        adx_err err;
        adx_err_init(&err);
        ck_assert_int_eq(san_anndata(a, NULL, &rep, &err), 0);
        adx_budget bud;
        /* the builder's scratch while it runs: an int64 per row, its first
         * hash table (1024 slots of 20 bytes) and the sort of the three
         * categories (2 words each, at least) */
        uint64_t scratch = N * 8 + 1024 * 20 + 3 * 16;
        adx_budget_init(&bud, pass ? scratch - 1 : scratch);
        adx_ctl ctl = {.budget = &bud};
        int r = san_strings_to_categoricals_ctl(a, &ctl, &err);
        if (!pass) {
            ck_assert_msg(r == 0, "%s", err.detail);
            ck_assert_int_eq(frame_col(&a->obs, "g")->kind, AD_K_CATEGORICAL);
            /* int8 codes and three one-letter categories stay counted */
            ck_assert_uint_eq(adx_budget_used(&bud), N + 3 * 2 + 4 * 8);
        } else {
            ck_assert_int_eq(r, -1);
            ck_assert_int_eq(err.status, 413);
            ck_assert_str_eq(err.items[0].pointer, "/obs/g");
            ck_assert_uint_eq(adx_budget_used(&bud), 0);
            ck_assert_int_eq(frame_col(&a->obs, "g")->kind, AD_K_ARRAY);
        }
        rep_free(&rep);
        ad_anndata_free(a);
    }
    free(cells);
}
END_TEST

START_TEST(all_null)
{
    tcell cells[] = {C_NULL, C_NULL, C_NULL};
    adx_report rep = {0};
    ad_anndata *a = one_obs_column("empty", cells, 3, &rep);
    const char *want[] = {"", "", ""};
    assert_strs(&frame_col(&a->obs, "empty")->u.arr, want, 3);
    ck_assert_uint_eq(rep.n, 1);
    ck_assert_str_eq(rep.e[0].action, REP_NULL_TO_EMPTY);
    ck_assert_uint_eq(rep.e[0].count, 3);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(mixed_scalars_print_like_python_str)
{
    tcell cells[] = {C_INT(1),    C_STR("a"),        C_REAL(2.5), C_BOOL(1),       C_BOOL(0),
                     C_NULL,      C_REAL(1e20),      C_REAL(1.0), C_INT(-7),       C_REAL(1e-05),
                     C_REAL(NAN), C_REAL(-INFINITY), C_REAL(0.1), C_INT(INT64_MIN)};
    uint64_t n = sizeof cells / sizeof *cells;
    adx_report rep = {0};
    ad_anndata *a = one_obs_column("mixed", cells, n, &rep);
    const char *want[] = {"1",   "a",  "2.5",   "True", "False", "",    "1e+20",
                          "1.0", "-7", "1e-05", "nan",  "-inf",  "0.1", "-9223372036854775808"};
    assert_strs(&frame_col(&a->obs, "mixed")->u.arr, want, n);
    /* nulls are reported on their own entry, before the conversion entry */
    ck_assert_uint_eq(rep.n, 2);
    ck_assert_str_eq(rep.e[0].action, REP_NULL_TO_EMPTY);
    ck_assert_uint_eq(rep.e[0].count, 1);
    ck_assert_str_eq(rep.e[1].action, REP_MIXED_TO_STRING);
    ck_assert_str_eq(rep.e[1].path, "/obs/mixed");
    ck_assert_uint_eq(rep.e[1].count, 12);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

/* The decoder keeps integers above INT64_MAX as AD_CELL_UINT: their text is
 * Python's str() of the int, every digit, not a clamped INT64_MAX. */
START_TEST(big_unsigned_cells_keep_their_digits)
{
    tcell cells[] = {C_UINT(9223372036854775808u), C_UINT(UINT64_MAX), C_INT(INT64_MAX),
                     C_STR("x")};
    adx_report rep = {0};
    ad_anndata *a = one_obs_column("big", cells, 4, &rep);
    const char *want[] = {"9223372036854775808", "18446744073709551615", "9223372036854775807",
                          "x"};
    assert_strs(&frame_col(&a->obs, "big")->u.arr, want, 4);
    ck_assert_uint_eq(rep.n, 1);
    ck_assert_str_eq(rep.e[0].action, REP_MIXED_TO_STRING);
    ck_assert_uint_eq(rep.e[0].count, 3);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(mixed_without_null_has_one_entry)
{
    tcell cells[] = {C_BOOL(1), C_STR("x"), C_STR("y")};
    adx_report rep = {0};
    ad_anndata *a = one_obs_column("m", cells, 3, &rep);
    const char *want[] = {"True", "x", "y"};
    assert_strs(&frame_col(&a->obs, "m")->u.arr, want, 3);
    ck_assert_uint_eq(rep.n, 1);
    ck_assert_str_eq(rep.e[0].action, REP_MIXED_TO_STRING);
    ck_assert_uint_eq(rep.e[0].count, 1);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(nested_cells_become_json_text)
{
    tcell cells[] = {C_JSON("[1,2]"), C_STR("x"), C_NULL, C_INT(3), C_JSON("{\"a\":null}")};
    adx_report rep = {0};
    ad_anndata *a = one_obs_column("n", cells, 5, &rep);
    const char *want[] = {"[1,2]", "x", "", "3", "{\"a\":null}"};
    assert_strs(&frame_col(&a->obs, "n")->u.arr, want, 5);
    ck_assert_uint_eq(rep.n, 3);
    ck_assert_str_eq(rep.e[0].action, REP_NULL_TO_EMPTY);
    ck_assert_uint_eq(rep.e[0].count, 1);
    ck_assert_str_eq(rep.e[1].action, REP_MIXED_TO_STRING);
    ck_assert_uint_eq(rep.e[1].count, 1);
    ck_assert_str_eq(rep.e[2].action, REP_NESTED_TO_JSON);
    ck_assert_uint_eq(rep.e[2].count, 2);
    for (size_t i = 0; i < rep.n; i++)
        ck_assert_str_eq(rep.e[i].path, "/obs/n");
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(plain_string_object_has_no_entry)
{
    tcell cells[] = {C_STR("a"), C_STR("b")};
    adx_report rep = {0};
    ad_anndata *a = one_obs_column("s", cells, 2, &rep);
    const char *want[] = {"a", "b"};
    assert_strs(&frame_col(&a->obs, "s")->u.arr, want, 2);
    ck_assert_uint_eq(rep.n, 0);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(strings_keep_their_bytes)
{
    /* Non-ASCII, embedded quotes: copied byte for byte, lengths exact. */
    tcell cells[] = {C_STR("caf\xc3\xa9 \"q\""), C_NULL, C_STR("\xe2\x9c\x93")};
    adx_report rep = {0};
    ad_anndata *a = one_obs_column("u", cells, 3, &rep);
    const char *want[] = {"caf\xc3\xa9 \"q\"", "", "\xe2\x9c\x93"};
    assert_strs(&frame_col(&a->obs, "u")->u.arr, want, 3);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(empty_object_column)
{
    adx_report rep = {0};
    ad_anndata *a = one_obs_column("e", NULL, 0, &rep);
    const ad_elem *c = frame_col(&a->obs, "e");
    ck_assert_int_eq(c->kind, AD_K_ARRAY);
    ck_assert_int_eq(c->u.arr.dtype, AD_STR);
    ck_assert_uint_eq(c->u.arr.n, 0);
    ck_assert_int_eq(c->u.arr.ndim, 1);
    ck_assert_uint_eq(rep.n, 0);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

/* A model shaped like the Polis fixture: objects in every place sanitize
 * must reach, with keys that need pointer escaping. */
static ad_anndata *polis_like(void)
{
    ad_anndata *a = ad_anndata_new();
    ck_assert_ptr_nonnull(a);
    a->n_obs = 3;
    a->n_vars = 2;
    mk_frame(&a->obs, 3);
    tcell km[] = {C_INT(0), C_STR("noise"), C_NULL};
    ck_assert_int_eq(ad_frame_add(&a->obs, "kmeans", mk_col(km, 3)), 0);
    double votes[] = {1, 2, 3};
    ck_assert_int_eq(ad_frame_add(&a->obs, "n_votes", mk_f64(votes, 3)), 0);
    tcell esc[] = {C_NULL, C_STR("a"), C_STR("b")};
    ck_assert_int_eq(ad_frame_add(&a->obs, "a/b~c", mk_col(esc, 3)), 0);

    mk_frame(&a->var, 2);
    tcell seed[] = {C_NULL, C_NULL};
    ck_assert_int_eq(ad_frame_add(&a->var, "is_seed", mk_col(seed, 2)), 0);

    /* uns: a DataFrame, a nested dict with a null, a top-level null,
     * a list of objects (0-d) and a ragged 2-d object */
    ad_elem *st = mk_frame_elem(2);
    tcell is_seed[] = {C_BOOL(1), C_NULL};
    ck_assert_int_eq(ad_frame_add(&st->u.df, "is-seed", mk_col(is_seed, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "statements", st), 0);
    ad_elem *src = mk_dict();
    ck_assert_int_eq(ad_dict_put(&src->u.dict, "base_url", ad_elem_new(AD_K_NULL)), 0);
    const char *name[] = {"polis"};
    ck_assert_int_eq(ad_dict_put(&src->u.dict, "name", mk_strs(name, 1)), 0);
    ad_elem *deep = mk_dict();
    ck_assert_int_eq(ad_dict_put(&deep->u.dict, "gone", ad_elem_new(AD_K_NULL)), 0);
    ck_assert_int_eq(ad_dict_put(&src->u.dict, "deep", deep), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "source", src), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "nothing", ad_elem_new(AD_K_NULL)), 0);
    tcell lst[] = {C_JSON("[{\"a\":1},[1,2]]")};
    ck_assert_int_eq(ad_dict_put(&a->uns, "list", mk_object(0, NULL, lst, 1)), 0);
    uint64_t sh[2] = {2, 2};
    tcell grid[] = {C_STR("a"), C_INT(2), C_NULL, C_JSON("[3]")};
    ck_assert_int_eq(ad_dict_put(&a->uns, "grid", mk_object(2, sh, grid, 4)), 0);

    /* obsm DataFrame, raw.var, raw.varm DataFrame */
    ad_elem *df = mk_frame_elem(3);
    tcell c3[] = {C_STR("x"), C_NULL, C_REAL(0.5)};
    ck_assert_int_eq(ad_frame_add(&df->u.df, "col", mk_col(c3, 3)), 0);
    ck_assert_int_eq(ad_dict_put(&a->obsm, "df", df), 0);
    a->raw = calloc(1, sizeof *a->raw);
    ck_assert_ptr_nonnull(a->raw);
    mk_frame(&a->raw->var, 2);
    tcell rx[] = {C_STR("p"), C_NULL};
    ck_assert_int_eq(ad_frame_add(&a->raw->var, "x", mk_col(rx, 2)), 0);
    ad_elem *rdf = mk_frame_elem(2);
    tcell ry[] = {C_NULL, C_INT(5)};
    ck_assert_int_eq(ad_frame_add(&rdf->u.df, "y", mk_col(ry, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->raw->varm, "m", rdf), 0);
    return a;
}

static void expect_entry(const adx_report *r, const char *path, const char *action, uint64_t count)
{
    long i = rep_find(r, path, action);
    ck_assert_msg(i >= 0, "no %s entry at %s", action, path);
    ck_assert_uint_eq(r->e[i].count, count);
}

START_TEST(report_paths_point_into_the_stored_object)
{
    ad_anndata *a = polis_like();
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_anndata(a, NULL, &rep, &err), 0);
    assert_clean(a);
    expect_entry(&rep, "/obs/kmeans", REP_NULL_TO_EMPTY, 1);
    expect_entry(&rep, "/obs/kmeans", REP_MIXED_TO_STRING, 1);
    expect_entry(&rep, "/obs/a~1b~0c", REP_NULL_TO_EMPTY, 1);
    expect_entry(&rep, "/var/is_seed", REP_NULL_TO_EMPTY, 2);
    expect_entry(&rep, "/uns/statements/is-seed", REP_NULL_TO_EMPTY, 1);
    expect_entry(&rep, "/uns/statements/is-seed", REP_MIXED_TO_STRING, 1);
    expect_entry(&rep, "/uns/source/base_url", REP_DROPPED_NULL, 1);
    expect_entry(&rep, "/uns/source/deep/gone", REP_DROPPED_NULL, 1);
    expect_entry(&rep, "/uns/nothing", REP_DROPPED_NULL, 1);
    expect_entry(&rep, "/uns/list", REP_NESTED_TO_JSON, 1);
    expect_entry(&rep, "/uns/grid", REP_NULL_TO_EMPTY, 1);
    expect_entry(&rep, "/uns/grid", REP_MIXED_TO_STRING, 1);
    expect_entry(&rep, "/uns/grid", REP_NESTED_TO_JSON, 1);
    expect_entry(&rep, "/obsm/df/col", REP_NULL_TO_EMPTY, 1);
    expect_entry(&rep, "/obsm/df/col", REP_MIXED_TO_STRING, 1);
    expect_entry(&rep, "/raw/var/x", REP_NULL_TO_EMPTY, 1);
    expect_entry(&rep, "/raw/varm/m/y", REP_NULL_TO_EMPTY, 1);
    expect_entry(&rep, "/raw/varm/m/y", REP_MIXED_TO_STRING, 1);
    ck_assert_uint_eq(rep.n, 18); /* nothing else was reported */

    /* values */
    const char *km[] = {"0", "noise", ""};
    assert_strs(&frame_col(&a->obs, "kmeans")->u.arr, km, 3);
    const ad_elem *nv = frame_col(&a->obs, "n_votes");
    ck_assert_int_eq(nv->kind, AD_K_ARRAY);
    ck_assert_int_eq(nv->u.arr.dtype, AD_F64);
    ck_assert(((double *)nv->u.arr.data)[2] == 3.0);
    const char *seed[] = {"True", ""};
    assert_strs(&frame_col(&ad_dict_get(&a->uns, "statements")->u.df, "is-seed")->u.arr, seed, 2);
    ad_elem *src = ad_dict_get(&a->uns, "source");
    ck_assert_ptr_null(ad_dict_get(&src->u.dict, "base_url"));
    ck_assert_ptr_nonnull(ad_dict_get(&src->u.dict, "name"));
    ad_elem *deep = ad_dict_get(&src->u.dict, "deep");
    ck_assert_int_eq(deep->kind, AD_K_DICT);
    ck_assert_uint_eq(deep->u.dict.n, 0);
    ck_assert_ptr_null(ad_dict_get(&a->uns, "nothing"));
    /* key order of what remains is kept */
    ck_assert_str_eq(a->uns.keys[0], "statements");
    ck_assert_str_eq(a->uns.keys[1], "source");
    ck_assert_str_eq(a->uns.keys[2], "list");
    ck_assert_str_eq(a->uns.keys[3], "grid");
    ad_elem *lst = ad_dict_get(&a->uns, "list");
    ck_assert_int_eq(lst->kind, AD_K_ARRAY);
    ck_assert_int_eq(lst->u.arr.ndim, 0);
    const char *lw[] = {"[{\"a\":1},[1,2]]"};
    assert_strs(&lst->u.arr, lw, 1);
    ck_assert_str_eq(ad_elem_encoding(lst), "string");
    ad_elem *grid = ad_dict_get(&a->uns, "grid");
    ck_assert_int_eq(grid->u.arr.ndim, 2);
    ck_assert_uint_eq(grid->u.arr.shape[0], 2);
    ck_assert_uint_eq(grid->u.arr.shape[1], 2);
    const char *gw[] = {"a", "2", "", "[3]"};
    assert_strs(&grid->u.arr, gw, 4);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(typed_elements_are_untouched)
{
    ad_anndata *a = polis_like();
    /* a categorical, a nullable and a matrix must come out identical */
    ad_elem *cat = ad_elem_new(AD_K_CATEGORICAL);
    uint64_t sh[1] = {3};
    ck_assert_int_eq(ad_array_init(&cat->u.cat.codes, AD_I8, 1, sh), 0);
    ((int8_t *)cat->u.cat.codes.data)[1] = -1;
    const char *cs[] = {"g"};
    ck_assert_int_eq(ad_array_from_cstrs(&cat->u.cat.categories, cs, 1), 0);
    ck_assert_int_eq(ad_frame_add(&a->obs, "cat", cat), 0);
    uint64_t xs[2] = {3, 2};
    ad_array x;
    ck_assert_int_eq(ad_array_init(&x, AD_F32, 2, xs), 0);
    ((float *)x.data)[5] = 4.5f;
    a->X = ad_elem_from_array(&x);
    ad_anndata *before = ad_anndata_clone(a);
    ck_assert_ptr_nonnull(before);
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_anndata(a, NULL, &rep, &err), 0);
    ck_assert_int_eq(a->X->kind, AD_K_ARRAY);
    ck_assert_int_eq(a->X->u.arr.dtype, AD_F32);
    ck_assert_mem_eq(a->X->u.arr.data, before->X->u.arr.data, 6 * sizeof(float));
    const ad_elem *c = frame_col(&a->obs, "cat");
    ck_assert_int_eq(c->kind, AD_K_CATEGORICAL);
    ck_assert_int_eq(((int8_t *)c->u.cat.codes.data)[1], -1);
    ck_assert_str_eq(ad_str_at(&c->u.cat.categories, 0), "g");
    /* column order is unchanged */
    ck_assert_uint_eq(a->obs.ncols, before->obs.ncols);
    for (size_t i = 0; i < a->obs.ncols; i++)
        ck_assert_str_eq(a->obs.names[i], before->obs.names[i]);
    /* indexes untouched */
    ck_assert_str_eq(ad_str_at(&a->obs.index, 2), "2");
    ad_anndata_free(before);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(null_matrix_is_dropped)
{
    ad_anndata *a = ad_anndata_new();
    a->X = ad_elem_new(AD_K_NULL);
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_anndata(a, NULL, &rep, &err), 0);
    ck_assert_ptr_null(a->X);
    expect_entry(&rep, "/X", REP_DROPPED_NULL, 1);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(dominant_action_of_object_to_strings)
{
    struct {
        tcell cells[3];
        const char *action;
        uint64_t count;
    } t[] = {
        {{C_STR("a"), C_NULL, C_NULL}, REP_NULL_TO_EMPTY, 2},
        {{C_STR("a"), C_INT(1), C_NULL}, REP_MIXED_TO_STRING, 1},
        {{C_JSON("[]"), C_INT(1), C_NULL}, REP_NESTED_TO_JSON, 1},
        {{C_STR("a"), C_STR("b"), C_STR("c")}, NULL, 0},
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        ad_elem *e = mk_col(t[k].cells, 3);
        ad_array out;
        const char *action = "unset";
        uint64_t count = 99;
        adx_err err;
        adx_err_init(&err);
        ck_assert_int_eq(san_object_to_strings(&e->u.obj, &out, &action, &count, &err), 0);
        if (t[k].action)
            ck_assert_str_eq(action, t[k].action);
        else
            ck_assert_ptr_null(action);
        ck_assert_uint_eq(count, t[k].count);
        ck_assert_uint_eq(out.n, 3);
        ad_array_free(&out);
        ad_elem_free(e);
    }
}
END_TEST

START_TEST(malformed_object_is_an_internal_error)
{
    tcell cells[] = {C_STR("a"), C_STR("b")};
    ad_elem *e = mk_col(cells, 2);
    e->u.obj.shape[0] = 3; /* shape disagrees with n */
    ad_array out;
    san_counts c;
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_object_convert(&e->u.obj, &out, &c, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_INTERNAL);
    ck_assert_ptr_null(out.soff);
    e->u.obj.shape[0] = 2;
    e->u.obj.kind[1] = 42; /* unknown cell kind */
    adx_err_init(&err);
    ck_assert_int_eq(san_object_convert(&e->u.obj, &out, &c, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_INTERNAL);
    ad_elem_free(e);
}
END_TEST

START_TEST(limits_are_enforced_with_pointer)
{
    adx_limits lim;
    adx_limits_default(&lim);
    lim.max_string_bytes = 4;
    ad_anndata *a = ad_anndata_new();
    mk_frame(&a->obs, 2);
    tcell cells[] = {C_STR("abcd"), C_JSON("[1,2,3]")};
    ck_assert_int_eq(ad_frame_add(&a->obs, "c", mk_col(cells, 2)), 0);
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_anndata(a, &lim, &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_str_eq(err.items[0].pointer, "/obs/c");
    ck_assert_ptr_nonnull(strstr(err.detail, "value 1"));
    /* the model is still safe to free after a failure */
    adx_limits_default(&lim);
    lim.max_total_bytes = 16;
    adx_err_init(&err);
    ck_assert_int_eq(san_anndata(a, &lim, &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.detail, "16"));
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

/* ------------------------------------------------ strings_to_categoricals */

static ad_anndata *with_var_column(const char *const *v, uint64_t n)
{
    ad_anndata *a = ad_anndata_new();
    a->n_vars = n;
    mk_frame(&a->var, n);
    ck_assert_int_eq(ad_frame_add(&a->var, "c", mk_strs(v, n)), 0);
    return a;
}

START_TEST(all_empty_var_column_becomes_one_category)
{
    /* pandas: pd.Categorical([""] * 46) → categories [""], int8 codes 0 */
    const char *v[46];
    for (int i = 0; i < 46; i++)
        v[i] = "";
    ad_anndata *a = with_var_column(v, 46);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_strings_to_categoricals(a, &err), 0);
    const ad_elem *c = frame_col(&a->var, "c");
    ck_assert_int_eq(c->kind, AD_K_CATEGORICAL);
    ck_assert(!c->u.cat.ordered);
    ck_assert_int_eq(c->u.cat.codes.dtype, AD_I8);
    ck_assert_uint_eq(c->u.cat.codes.n, 46);
    const char *cats[] = {""};
    assert_strs(&c->u.cat.categories, cats, 1);
    for (int i = 0; i < 46; i++)
        ck_assert_int_eq(((int8_t *)c->u.cat.codes.data)[i], 0);
    /* the index is never converted */
    ck_assert_int_eq(a->var.index.dtype, AD_STR);
    ad_anndata_free(a);
}
END_TEST

START_TEST(categories_follow_natsorted)
{
    /* Expected order computed with natsort 8.0.2 over pd.Categorical(v + v)
     * (Debian's anndata 0.8 stack); "\xc3\xa9" is NFD "e" + U+0301, so it
     * sorts before "f", not after "z" as its code point would. */
    const char *v[] = {"a10", "a2", "a1",   "a01",   "b",     "",  "10",  "9",    "009",     "A",
                       "a.",  "a",  "x1y2", "x1y10", "x01y3", "f", "z 2", "z 10", "\xc3\xa9"};
    const char *want[] = {"",     "009",   "9",     "10",  "A",   "a",        "a01",
                          "a1",   "a2",    "a10",   "a.",  "b",   "\xc3\xa9", "f",
                          "x1y2", "x01y3", "x1y10", "z 2", "z 10"};
    uint64_t n = sizeof v / sizeof *v;
    const char *vv[2 * sizeof v / sizeof *v];
    for (uint64_t i = 0; i < n; i++)
        vv[i] = vv[i + n] = v[i];
    ad_anndata *a = with_var_column(vv, 2 * n);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_strings_to_categoricals(a, &err), 0);
    const ad_elem *c = frame_col(&a->var, "c");
    ck_assert_int_eq(c->kind, AD_K_CATEGORICAL);
    assert_strs(&c->u.cat.categories, want, n);
    /* every code points back at its original value */
    for (uint64_t i = 0; i < 2 * n; i++) {
        int8_t code = ((int8_t *)c->u.cat.codes.data)[i];
        ck_assert_int_ge(code, 0);
        ck_assert_str_eq(ad_str_at(&c->u.cat.categories, (uint64_t)code), vv[i]);
    }
    ad_anndata_free(a);
}
END_TEST

START_TEST(natural_cmp_table)
{
    struct {
        const char *a, *b;
        int sign;
    } t[] = {
        {"a2", "a10", -1},
        {"", "0", -1},
        {"a01", "a1", -1},
        {"a1", "a.", -1},
        {"10", "9", 1},
        {"9", "A", -1},
        {"x", "x", 0},
        {"a", "a1", -1},
        {"1a", "01a", 1},
        {"00", "0", 1},
        {"99999999999999999999", "100000000000000000000", -1},
        {"b", "a10", 1},
        {"1.5", "1.10", -1},
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        int c = ad_natural_cmp(t[k].a, strlen(t[k].a), t[k].b, strlen(t[k].b));
        int s = (c > 0) - (c < 0);
        ck_assert_msg(s == t[k].sign, "cmp(%s, %s) = %d, want %d", t[k].a, t[k].b, s, t[k].sign);
        int r = ad_natural_cmp(t[k].b, strlen(t[k].b), t[k].a, strlen(t[k].a));
        ck_assert_int_eq((r > 0) - (r < 0), -t[k].sign);
    }
}
END_TEST

START_TEST(unique_and_non_string_columns_stay)
{
    const char *v[] = {"a", "b", "c"};
    ad_anndata *a = with_var_column(v, 3);
    double d[] = {1, 1, 1};
    ck_assert_int_eq(ad_frame_add(&a->var, "num", mk_f64(d, 3)), 0);
    const char *one[] = {"x"};
    mk_frame(&a->obs, 1);
    ck_assert_int_eq(ad_frame_add(&a->obs, "single", mk_strs(one, 1)), 0);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_strings_to_categoricals(a, &err), 0);
    ck_assert_int_eq(frame_col(&a->var, "c")->kind, AD_K_ARRAY);
    ck_assert_int_eq(frame_col(&a->var, "num")->kind, AD_K_ARRAY);
    ck_assert_int_eq(frame_col(&a->obs, "single")->kind, AD_K_ARRAY);
    ad_anndata_free(a);
}
END_TEST

START_TEST(frames_converted_are_obs_var_and_raw_var_only)
{
    const char *v[] = {"a", "a"};
    ad_anndata *a = ad_anndata_new();
    mk_frame(&a->obs, 2);
    ck_assert_int_eq(ad_frame_add(&a->obs, "o", mk_strs(v, 2)), 0);
    mk_frame(&a->var, 2);
    ck_assert_int_eq(ad_frame_add(&a->var, "v", mk_strs(v, 2)), 0);
    a->raw = calloc(1, sizeof *a->raw);
    mk_frame(&a->raw->var, 2);
    ck_assert_int_eq(ad_frame_add(&a->raw->var, "r", mk_strs(v, 2)), 0);
    ad_elem *udf = mk_frame_elem(2);
    ck_assert_int_eq(ad_frame_add(&udf->u.df, "u", mk_strs(v, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "df", udf), 0);
    ad_elem *mdf = mk_frame_elem(2);
    ck_assert_int_eq(ad_frame_add(&mdf->u.df, "m", mk_strs(v, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->obsm, "df", mdf), 0);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_strings_to_categoricals(a, &err), 0);
    ck_assert_int_eq(frame_col(&a->obs, "o")->kind, AD_K_CATEGORICAL);
    ck_assert_int_eq(frame_col(&a->var, "v")->kind, AD_K_CATEGORICAL);
    ck_assert_int_eq(frame_col(&a->raw->var, "r")->kind, AD_K_CATEGORICAL);
    ck_assert_int_eq(frame_col(&ad_dict_get(&a->uns, "df")->u.df, "u")->kind, AD_K_ARRAY);
    ck_assert_int_eq(frame_col(&ad_dict_get(&a->obsm, "df")->u.df, "m")->kind, AD_K_ARRAY);
    ad_anndata_free(a);
}
END_TEST

START_TEST(codes_dtype_thresholds_match_pandas)
{
    /* pd.Categorical(...).codes.dtype for 126/127/32766/32767 categories */
    ck_assert_int_eq(ad_codes_dtype(1), AD_I8);
    ck_assert_int_eq(ad_codes_dtype(126), AD_I8);
    ck_assert_int_eq(ad_codes_dtype(127), AD_I16);
    ck_assert_int_eq(ad_codes_dtype(32766), AD_I16);
    ck_assert_int_eq(ad_codes_dtype(32767), AD_I32);
    ck_assert_int_eq(ad_codes_dtype(2147483646), AD_I32);
    ck_assert_int_eq(ad_codes_dtype(2147483647), AD_I64);
}
END_TEST

START_TEST(many_categories_use_int16_codes)
{
    /* 200 distinct values, 201 rows: int16 codes, natural order "0".."199" */
    enum { N = 201 };
    char buf[N][8];
    const char *v[N];
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "%d", i == 200 ? 7 : 199 - i);
        v[i] = buf[i];
    }
    ad_anndata *a = with_var_column(v, N);
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_strings_to_categoricals(a, &err), 0);
    const ad_elem *c = frame_col(&a->var, "c");
    ck_assert_int_eq(c->kind, AD_K_CATEGORICAL);
    ck_assert_int_eq(c->u.cat.codes.dtype, AD_I16);
    ck_assert_uint_eq(c->u.cat.categories.n, 200);
    for (int k = 0; k < 200; k++) {
        char want[8];
        snprintf(want, sizeof want, "%d", k);
        ck_assert_str_eq(ad_str_at(&c->u.cat.categories, (uint64_t)k), want);
    }
    ck_assert_int_eq(((int16_t *)c->u.cat.codes.data)[0], 199);
    ck_assert_int_eq(((int16_t *)c->u.cat.codes.data)[200], 7);
    ad_anndata_free(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sanitize");
    TCase *t = tcase_create("rules");
    tcase_add_test(t, strings_with_some_null);
    tcase_add_test(t, all_null);
    tcase_add_test(t, mixed_scalars_print_like_python_str);
    tcase_add_test(t, big_unsigned_cells_keep_their_digits);
    tcase_add_test(t, mixed_without_null_has_one_entry);
    tcase_add_test(t, nested_cells_become_json_text);
    tcase_add_test(t, plain_string_object_has_no_entry);
    tcase_add_test(t, strings_keep_their_bytes);
    tcase_add_test(t, empty_object_column);
    tcase_add_test(t, report_paths_point_into_the_stored_object);
    tcase_add_test(t, typed_elements_are_untouched);
    tcase_add_test(t, null_matrix_is_dropped);
    tcase_add_test(t, dominant_action_of_object_to_strings);
    tcase_add_test(t, malformed_object_is_an_internal_error);
    tcase_add_test(t, limits_are_enforced_with_pointer);
    tcase_add_test(t, conversions_are_charged_to_the_budget);
    suite_add_tcase(s, t);
    TCase *c = tcase_create("strings_to_categoricals");
    tcase_add_test(c, all_empty_var_column_becomes_one_category);
    tcase_add_test(c, categories_follow_natsorted);
    tcase_add_test(c, natural_cmp_table);
    tcase_add_test(c, unique_and_non_string_columns_stay);
    tcase_add_test(c, frames_converted_are_obs_var_and_raw_var_only);
    tcase_add_test(c, codes_dtype_thresholds_match_pandas);
    tcase_add_test(c, cancel_flag_stops_the_walk);
    tcase_add_test(c, many_categories_use_int16_codes);
    tcase_add_test(c, categoricals_are_charged_to_the_budget);
    suite_add_tcase(s, c);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
