/* Unit tests of the include filter: the reference implementation's cases
 * (valency-anndata's write with include) and every error of payload.md. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_filter.h"
#include "adx_glob.h"
#include "helpers.h"

/* obs: kmeans_polis, kmeans_k3, n_votes; var: is_seed, moderated;
 * obsm: X_pca, X_umap, pca_raw; varm: PCs; layers: raw_votes;
 * obsp: distances; varp: corr; uns: statements, source, a/b; X and raw set. */
static ad_anndata *model(void)
{
    ad_anndata *a = ad_anndata_new();
    ck_assert_ptr_nonnull(a);
    a->n_obs = 2;
    a->n_vars = 2;
    double v[] = {1, 2};
    mk_frame(&a->obs, 2);
    const char *on[] = {"kmeans_polis", "kmeans_k3", "n_votes"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ad_frame_add(&a->obs, on[i], mk_f64(v, 2)), 0);
    mk_frame(&a->var, 2);
    ck_assert_int_eq(ad_frame_add(&a->var, "is_seed", mk_f64(v, 2)), 0);
    ck_assert_int_eq(ad_frame_add(&a->var, "moderated", mk_f64(v, 2)), 0);
    const char *mk[] = {"X_pca", "X_umap", "pca_raw"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ad_dict_put(&a->obsm, mk[i], mk_f64(v, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->varm, "PCs", mk_f64(v, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->layers, "raw_votes", mk_f64(v, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->obsp, "distances", mk_f64(v, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->varp, "corr", mk_f64(v, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "statements", mk_frame_elem(2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "source", mk_dict()), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "a/b", mk_f64(v, 1)), 0);
    a->X = mk_f64(v, 2);
    a->raw = calloc(1, sizeof *a->raw);
    ck_assert_ptr_nonnull(a->raw);
    a->raw->X = mk_f64(v, 2);
    mk_frame(&a->raw->var, 2);
    ck_assert_int_eq(ad_frame_add(&a->raw->var, "r", mk_f64(v, 2)), 0);
    ck_assert_int_eq(ad_dict_put(&a->raw->varm, "rm", mk_f64(v, 2)), 0);
    return a;
}

/* Keys of a namespace joined with ",", for compact assertions. */
static void keys_of(char *out, size_t cap, char *const *keys, size_t n)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i) strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, keys[i], cap - strlen(out) - 1);
    }
}

#define ASSERT_FRAME(f, want)                                                                      \
    do {                                                                                           \
        char got_[256];                                                                            \
        keys_of(got_, sizeof got_, (f).names, (f).ncols);                                          \
        ck_assert_str_eq(got_, want);                                                              \
    } while (0)
#define ASSERT_DICT(d, want)                                                                       \
    do {                                                                                           \
        char got_[256];                                                                            \
        keys_of(got_, sizeof got_, (d).keys, (d).n);                                               \
        ck_assert_str_eq(got_, want);                                                              \
    } while (0)

static void apply_ok(ad_anndata *a, const char *const *paths, size_t n, adx_report *rep)
{
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(flt_validate(paths, n, "/include", &err), 0);
    ck_assert_int_eq(flt_apply(a, paths, n, 0, "/include", rep, &err), 0);
    ck_assert(!adx_err_failed(&err));
}

static void assert_always_kept(const ad_anndata *a)
{
    ck_assert_ptr_nonnull(a->X);
    ck_assert_ptr_nonnull(a->raw);
    ck_assert_ptr_nonnull(a->raw->X);
    ck_assert_uint_eq(a->raw->var.ncols, 1);
    ck_assert_uint_eq(a->raw->varm.n, 1);
    /* indexes survive even when every column goes */
    ck_assert_uint_eq(a->obs.index.n, 2);
    ck_assert_uint_eq(a->var.index.n, 2);
    ck_assert_uint_eq(a->obs.n_rows, 2);
    ck_assert_str_eq(ad_str_at(&a->obs.index, 1), "1");
}

START_TEST(exact_key_keeps_only_that_key)
{
    ad_anndata *a = model();
    const char *p[] = {"obsm/X_pca"};
    adx_report rep = {0};
    apply_ok(a, p, 1, &rep);
    ASSERT_DICT(a->obsm, "X_pca");
    /* every namespace not mentioned is emptied */
    ASSERT_FRAME(a->obs, "");
    ASSERT_FRAME(a->var, "");
    ASSERT_DICT(a->varm, "");
    ASSERT_DICT(a->layers, "");
    ASSERT_DICT(a->obsp, "");
    ASSERT_DICT(a->varp, "");
    ASSERT_DICT(a->uns, "");
    assert_always_kept(a);
    ck_assert_uint_eq(rep.n, 0);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(glob_keeps_matching_keys)
{
    ad_anndata *a = model();
    const char *p[] = {"obsm/X_*"};
    adx_report rep = {0};
    apply_ok(a, p, 1, &rep);
    ASSERT_DICT(a->obsm, "X_pca,X_umap");
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(several_namespaces_at_once)
{
    ad_anndata *a = model();
    const char *p[] = {"obsm/X_*", "obs/kmeans_*", "uns/*", "var/is_seed", "layers/raw_votes"};
    adx_report rep = {0};
    apply_ok(a, p, 5, &rep);
    ASSERT_DICT(a->obsm, "X_pca,X_umap");
    ASSERT_FRAME(a->obs, "kmeans_polis,kmeans_k3");
    ASSERT_FRAME(a->var, "is_seed");
    ASSERT_DICT(a->uns, "statements,source,a/b");
    ASSERT_DICT(a->layers, "raw_votes");
    ASSERT_DICT(a->varm, "");
    ASSERT_DICT(a->obsp, "");
    ASSERT_DICT(a->varp, "");
    assert_always_kept(a);
    ck_assert_uint_eq(rep.n, 0);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(unmatched_keys_are_filtered_and_order_kept)
{
    ad_anndata *a = model();
    const char *p[] = {"obs/n_votes", "obs/kmeans_polis", "obsp/d*", "varp/corr", "varm/PC?"};
    adx_report rep = {0};
    apply_ok(a, p, 5, &rep);
    /* kept columns stay in the model's order, not the include order */
    ASSERT_FRAME(a->obs, "kmeans_polis,n_votes");
    ASSERT_DICT(a->obsp, "distances");
    ASSERT_DICT(a->varp, "corr");
    ASSERT_DICT(a->varm, "PCs");
    ASSERT_DICT(a->obsm, "");
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(pattern_is_everything_after_the_first_slash)
{
    ad_anndata *a = model();
    const char *p[] = {"uns/a/b"};
    adx_report rep = {0};
    apply_ok(a, p, 1, &rep);
    ASSERT_DICT(a->uns, "a/b");
    ad_anndata_free(a);
    a = model();
    const char *q[] = {"uns/*b"}; /* "*" crosses "/" as in fnmatch */
    apply_ok(a, q, 1, &rep);
    ASSERT_DICT(a->uns, "a/b");
    ck_assert_uint_eq(rep.n, 0);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(empty_include_keeps_only_x_raw_and_indexes)
{
    ad_anndata *a = model();
    adx_report rep = {0};
    apply_ok(a, NULL, 0, &rep);
    ASSERT_FRAME(a->obs, "");
    ASSERT_FRAME(a->var, "");
    ASSERT_DICT(a->obsm, "");
    ASSERT_DICT(a->varm, "");
    ASSERT_DICT(a->layers, "");
    ASSERT_DICT(a->obsp, "");
    ASSERT_DICT(a->varp, "");
    ASSERT_DICT(a->uns, "");
    assert_always_kept(a);
    ck_assert_uint_eq(rep.n, 0);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(include_absent_writes_everything)
{
    /* The pipeline does not call flt_apply without include; the model as
     * built is what is written, so nothing here may have been touched. */
    ad_anndata *a = model();
    ASSERT_FRAME(a->obs, "kmeans_polis,kmeans_k3,n_votes");
    ASSERT_DICT(a->obsm, "X_pca,X_umap,pca_raw");
    ASSERT_DICT(a->uns, "statements,source,a/b");
    /* and "everything" spelled out keeps everything too */
    const char *p[] = {"obs/*",    "var/*", "obsm/*", "varm/*",
                       "layers/*", "uns/*", "obsp/*", "varp/*"};
    adx_report rep = {0};
    apply_ok(a, p, 8, &rep);
    ASSERT_FRAME(a->obs, "kmeans_polis,kmeans_k3,n_votes");
    ASSERT_FRAME(a->var, "is_seed,moderated");
    ASSERT_DICT(a->obsm, "X_pca,X_umap,pca_raw");
    ASSERT_DICT(a->varm, "PCs");
    ASSERT_DICT(a->layers, "raw_votes");
    ASSERT_DICT(a->obsp, "distances");
    ASSERT_DICT(a->varp, "corr");
    ASSERT_DICT(a->uns, "statements,source,a/b");
    ck_assert_uint_eq(rep.n, 0);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(pattern_matching_nothing_is_reported)
{
    ad_anndata *a = model();
    const char *p[] = {"obsm/X_*", "obsm/nope*", "uns/Statements", "obs/kmeans_polis"};
    adx_report rep = {0};
    apply_ok(a, p, 4, &rep);
    ASSERT_DICT(a->obsm, "X_pca,X_umap");
    ASSERT_DICT(a->uns, ""); /* matching is case-sensitive */
    ck_assert_uint_eq(rep.n, 2);
    ck_assert_str_eq(rep.e[0].path, "/include/1");
    ck_assert_str_eq(rep.e[0].action, REP_INCLUDE_NO_MATCH);
    ck_assert_uint_eq(rep.e[0].count, 0);
    ck_assert_str_eq(rep.e[0].detail, "obsm/nope*");
    ck_assert_str_eq(rep.e[1].path, "/include/2");
    ck_assert_str_eq(rep.e[1].detail, "uns/Statements");
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(two_patterns_matching_the_same_key)
{
    ad_anndata *a = model();
    const char *p[] = {"obsm/X_pca", "obsm/X_p*"};
    adx_report rep = {0};
    apply_ok(a, p, 2, &rep);
    ASSERT_DICT(a->obsm, "X_pca");
    ck_assert_uint_eq(rep.n, 0); /* both matched something */
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

/* ------------------------------------------------------------- errors */

static void expect_error(const char *path, const char *want_in_message)
{
    const char *p[] = {"obsm/X_pca", "obs/*", path};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(flt_validate(p, 3, "/include", &err), -1);
    ck_assert_int_eq(err.type, ADX_E_BAD_INCLUDE);
    ck_assert_int_eq(err.status, 400);
    ck_assert_int_eq(err.n_items, 1);
    ck_assert_str_eq(err.items[0].pointer, "/include/2");
    ck_assert_msg(strstr(err.detail, want_in_message), "\"%s\" not in \"%s\"", want_in_message,
                  err.detail);
    /* flt_apply refuses the same list and leaves the model alone */
    ad_anndata *a = model();
    adx_report rep = {0};
    adx_err_init(&err);
    ck_assert_int_eq(flt_apply(a, p, 3, 0, "/include", &rep, &err), -1);
    ck_assert_int_eq(err.type, ADX_E_BAD_INCLUDE);
    ASSERT_DICT(a->uns, "statements,source,a/b");
    ck_assert_uint_eq(rep.n, 0);
    ad_anndata_free(a);
}

START_TEST(path_without_slash)
{
    expect_error("obsm", "namespace/pattern");
}
END_TEST

START_TEST(unknown_namespace_lists_valid_ones)
{
    expect_error("obsn/X_pca", "obs, var, obsm, varm, layers, obsp, varp, uns");
    expect_error("OBS/x", "\"OBS\" is not a namespace");
    expect_error("/x", "\"\" is not a namespace");
}
END_TEST

START_TEST(empty_pattern)
{
    expect_error("uns/", "empty pattern");
}
END_TEST

START_TEST(x_and_raw_are_always_kept)
{
    expect_error("X/anything", "always kept");
    expect_error("raw/var", "always kept");
    expect_error("X", "always kept");
}
END_TEST

START_TEST(every_bad_entry_is_an_item)
{
    const char *p[] = {"bad", "obs/ok", "uns/", "X/x"};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(flt_validate(p, 4, "/include", &err), -1);
    ck_assert_int_eq(err.n_items, 3);
    ck_assert_str_eq(err.items[0].pointer, "/include/0");
    ck_assert_str_eq(err.items[1].pointer, "/include/2");
    ck_assert_str_eq(err.items[2].pointer, "/include/3");
    ck_assert_ptr_nonnull(strstr(err.detail, "\"bad\""));
}
END_TEST

START_TEST(null_entry_and_other_base)
{
    const char *p[] = {"obs/a", NULL};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(flt_validate(p, 2, "/job/include", &err), -1);
    ck_assert_str_eq(err.items[0].pointer, "/job/include/1");
    ck_assert_ptr_nonnull(strstr(err.detail, "strings"));
    adx_err_init(&err);
    ck_assert_int_eq(flt_validate(NULL, 0, "/include", &err), 0);
    ck_assert(!adx_err_failed(&err));
}
END_TEST

/* The filter against the definition it speeds up (a key stays when any of
 * its namespace's patterns glob-matches it; a pattern matching no key is
 * reported): random uns keys and patterns, literal ones repeated, prefixes,
 * suffixes, brackets holding "*", a key that is not valid UTF-8. */
START_TEST(fast_paths_agree_with_matching_every_pattern)
{
    static const char *const atoms[] = {"a", "b", "c", "\xc3\xa9", "*", "?", "[", "]", "!"};
    enum { NA = sizeof atoms / sizeof *atoms, NK = 60, NP = 12 };
    unsigned seed = 99;
    for (int round = 0; round < 300; round++) {
        ad_anndata *a = ad_anndata_new();
        ck_assert_ptr_nonnull(a);
        char keys[NK][24], pats[NP][32], paths[NP][40];
        size_t nk = 0;
        for (int k = 0; k < NK; k++) {
            keys[nk][0] = '\0';
            int l = 1 + (int)(rand_r(&seed) % 4);
            for (int c = 0; c < l; c++)
                strcat(keys[nk], atoms[rand_r(&seed) % 4]);
            if (k == 0) strcat(keys[nk], "\xe9"); /* not valid UTF-8 */
            if (ad_dict_get(&a->uns, keys[nk])) continue;
            double v = k;
            ck_assert_int_eq(ad_dict_append(&a->uns, keys[nk], mk_f64(&v, 1)), 0);
            nk++;
        }
        const char *pp[NP];
        for (int q = 0; q < NP; q++) {
            pats[q][0] = '\0';
            if (q > 0 && rand_r(&seed) % 5 == 0) {
                strcpy(pats[q], pats[q - 1]); /* the same pattern twice */
            } else if (rand_r(&seed) % 3 == 0) {
                strcpy(pats[q], keys[rand_r(&seed) % nk]); /* a literal key */
            } else {
                int l = 1 + (int)(rand_r(&seed) % 4);
                for (int c = 0; c < l; c++)
                    strcat(pats[q], atoms[rand_r(&seed) % NA]);
            }
            snprintf(paths[q], sizeof paths[q], "uns/%.31s", pats[q]);
            pp[q] = paths[q];
        }
        bool want_key[NK] = {0}, want_pat[NP] = {0};
        for (size_t k = 0; k < nk; k++)
            for (int q = 0; q < NP; q++)
                if (glob_match(pats[q], keys[k])) want_key[k] = want_pat[q] = true;
        adx_report rep = {0};
        apply_ok(a, pp, NP, &rep);
        size_t at = 0;
        for (size_t k = 0; k < nk; k++) {
            if (!want_key[k]) continue;
            ck_assert_msg(at < a->uns.n, "round %d: key \"%s\" dropped", round, keys[k]);
            ck_assert_str_eq(a->uns.keys[at++], keys[k]);
        }
        ck_assert_uint_eq(a->uns.n, at);
        size_t unmatched = 0;
        for (int q = 0; q < NP; q++)
            unmatched += !want_pat[q];
        ck_assert_uint_eq(rep.n, unmatched);
        for (size_t r = 0; r < rep.n; r++) {
            int q = atoi(rep.e[r].path + strlen("/include/"));
            ck_assert_msg(!want_pat[q], "round %d: %s reported unmatched", round, paths[q]);
        }
        rep_free(&rep);
        ad_anndata_free(a);
    }
}
END_TEST

/* Patterns no literal text decides cost a glob match per key, counted in
 * steps: past max_include_tests the filter is a 413 naming it; literal,
 * prefix and suffix patterns on the same keys cost 4 steps a try, the
 * literal one none (a lookup). */
START_TEST(glob_matches_are_bounded)
{
    ad_anndata *a = ad_anndata_new();
    ck_assert_ptr_nonnull(a);
    for (int k = 0; k < 1000; k++) {
        char key[16];
        double v = k;
        snprintf(key, sizeof key, "k%d", k);
        ck_assert_int_eq(ad_dict_append(&a->uns, key, mk_f64(&v, 1)), 0);
    }
    const char *cheap[] = {"uns/k1", "uns/k99*", "uns/*77", "uns/*"};
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(flt_apply(a, cheap, 4, 6000, "/include", &rep, &err), 0);
    ck_assert_uint_eq(a->uns.n, 1000); /* "*" keeps all */
    const char *dear[] = {"uns/*1*", "uns/?9?"};
    ck_assert_int_eq(flt_apply(a, dear, 2, 0, "/include", &rep, &err), 0); /* no bound */
    ck_assert_int_eq(flt_apply(a, dear, 2, 6000, "/include", &rep, &err), -1);
    ck_assert_int_eq(err.status, 413);
    ck_assert_str_eq(err.items[0].pointer, "/include");
    ck_assert_ptr_nonnull(strstr(err.detail, "max_include_tests (6000)"));
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("filter");
    TCase *t = tcase_create("reference");
    tcase_add_test(t, exact_key_keeps_only_that_key);
    tcase_add_test(t, glob_keeps_matching_keys);
    tcase_add_test(t, several_namespaces_at_once);
    tcase_add_test(t, unmatched_keys_are_filtered_and_order_kept);
    tcase_add_test(t, pattern_is_everything_after_the_first_slash);
    tcase_add_test(t, empty_include_keeps_only_x_raw_and_indexes);
    tcase_add_test(t, include_absent_writes_everything);
    tcase_add_test(t, pattern_matching_nothing_is_reported);
    tcase_add_test(t, two_patterns_matching_the_same_key);
    tcase_add_test(t, fast_paths_agree_with_matching_every_pattern);
    tcase_add_test(t, glob_matches_are_bounded);
    suite_add_tcase(s, t);
    TCase *e = tcase_create("errors");
    tcase_add_test(e, path_without_slash);
    tcase_add_test(e, unknown_namespace_lists_valid_ones);
    tcase_add_test(e, empty_pattern);
    tcase_add_test(e, x_and_raw_are_always_kept);
    tcase_add_test(e, every_bad_entry_is_an_item);
    tcase_add_test(e, null_entry_and_other_base);
    suite_add_tcase(s, e);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
