/* A record array is one element to sanitize and to the include filter:
 * nothing inside it is converted, reported or filtered field by field. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "adx_filter.h"
#include "adx_sanitize.h"

static ad_anndata *model(void)
{
    ad_anndata *a = ad_anndata_new();
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(ad_frame_default_index(&a->obs, 2), 0);
    ck_assert_int_eq(ad_frame_default_index(&a->var, 0), 0);
    a->n_obs = 2;
    ad_elem *e = ad_elem_new(AD_K_RECARRAY);
    ad_array f;
    /* few distinct values, empty strings: what sanitize would otherwise
     * turn into categoricals or report */
    const char *v[] = {"", ""};
    ck_assert_int_eq(ad_array_from_cstrs(&f, v, 2), 0);
    ck_assert_int_eq(ad_recarray_add(&e->u.rec, "names", &f), 0);
    ck_assert_int_eq(ad_dict_put(&a->uns, "rank_genes_groups", ad_elem_clone(e)), 0);
    ck_assert_int_eq(ad_dict_put(&a->obsm, "rec", e), 0);
    return a;
}

START_TEST(sanitize_leaves_record_arrays_alone)
{
    ad_anndata *a = model();
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    ck_assert_int_eq(san_anndata(a, NULL, &rep, &err), 0);
    ck_assert_int_eq(san_strings_to_categoricals(a, &err), 0);
    ck_assert_uint_eq(rep.n, 0);
    const ad_elem *r = ad_dict_get(&a->uns, "rank_genes_groups");
    ck_assert_int_eq(r->kind, AD_K_RECARRAY);
    ck_assert_int_eq(r->u.rec.fields[0].dtype, AD_STR);
    ck_assert_int_eq(ad_dict_get(&a->obsm, "rec")->kind, AD_K_RECARRAY);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

START_TEST(include_keeps_or_drops_the_whole_array)
{
    ad_anndata *a = model();
    adx_report rep = {0};
    adx_err err;
    adx_err_init(&err);
    /* a pattern naming a field inside the array matches no uns key */
    const char *inc[] = {"uns/rank_genes_groups/names", "obsm/re?"};
    ck_assert_int_eq(flt_apply(a, inc, 2, 0, "/include", &rep, &err), 0);
    ck_assert_uint_eq(a->uns.n, 0);
    ck_assert_uint_eq(a->obsm.n, 1);
    ck_assert_uint_eq(ad_dict_get(&a->obsm, "rec")->u.rec.nfields, 1);
    ck_assert_uint_eq(rep.n, 1); /* the unmatched pattern is reported */
    flt_set *s = flt_set_new(inc, 2, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(flt_set_keeps(s, "obsm", "rec"), 1);
    ck_assert_int_eq(flt_set_keeps(s, "uns", "rank_genes_groups"), 0);
    ck_assert_int_eq(flt_set_keeps(s, "obs", "rec"), 0);
    ck_assert_int_eq(flt_set_keeps(s, "uns", "rank_genes_groups/names"), 1);
    flt_set_free(s);
    rep_free(&rep);
    ad_anndata_free(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("san_recarray");
    TCase *tc = tcase_create("rec");
    tcase_add_test(tc, sanitize_leaves_record_arrays_alone);
    tcase_add_test(tc, include_keeps_or_drops_the_whole_array);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
