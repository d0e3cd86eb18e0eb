/* Mutation test: valid payloads with random parts replaced by other JSON
 * values must either decode or fail cleanly: a client error type (never
 * ADX_E_INTERNAL / ADX_E_NONE) with a pointer into the request. Run under
 * ASan this also proves the error paths free everything. Deterministic: a
 * fixed-seed LCG, so a failure reproduces. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_jdec.h"

static const char *const seeds[] = {
    "{\"X\": [[1, -1, null], [0, 1, 1]], \"obs\": {\"index\": [\"a\", \"b\"], \"columns\": "
    "{\"kmeans_x\": [1, null], \"s\": [\"a\", null]}}}",
    "{\"X\": {\"encoding-type\": \"csr_matrix\", \"shape\": [2, 3], \"data\": [1, 2, 3], "
    "\"indices\": [0, 2, 2], \"indptr\": [0, 2, 3]}, \"var\": [{\"a\": 1}, {\"a\": 2}, {\"b\": "
    "\"x\"}]}",
    "{\"X\": {\"encoding-type\": \"array\", \"dtype\": \"float32\", \"shape\": [1, 2], \"base64\": "
    "\"AACAPwAAAEA=\"}, \"uns\": {\"d\": {\"x\": [1, [2]], \"df\": {\"encoding-type\": "
    "\"dataframe\", \"columns\": [\"a\"], \"data\": [[1]]}}}}",
    "{\"obs\": {\"columns\": {\"c\": {\"encoding-type\": \"categorical\", \"categories\": [0, 1, "
    "-1], \"codes\": [0, 2, -1]}, \"n\": {\"encoding-type\": \"nullable-integer\", \"values\": [1, "
    "null, 3]}}}, \"obsm\": {\"e\": [[1, 2], [3, 4], [5, 6]]}, \"layers\": {}, \"shape\": [3, 0], "
    "\"raw\": {\"X\": [[1], [2], [3]], \"var\": {\"index\": [\"q\"]}}}",
    "{\"uns\": {\"a\": {\"encoding-type\": \"string-array\", \"values\": [\"a\"]}, \"b\": "
    "{\"encoding-type\": \"csc_matrix\", \"shape\": [2, 2], \"data\": {\"dtype\": \"int32\", "
    "\"data\": [1]}, \"indices\": {\"dtype\": \"int64\", \"base64\": \"AQAAAAAAAAA=\"}, "
    "\"indptr\": [0, 1, 1]}, \"c\": {\"encoding-type\": \"nullable-boolean\", \"values\": [true, "
    "null]}, \"v\": {\"encoding-type\": \"categorical\", \"values\": [\"b\", 1, null]}}}",
};

static uint64_t state = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(uint32_t n)
{
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(state >> 33) % n;
}

static json_t *randval(void)
{
    switch (rnd(16)) {
    case 0:
        return json_null();
    case 1:
        return json_integer(-1);
    case 2:
        return json_real(1.5);
    case 3:
        return json_string("x");
    case 4:
        return json_array();
    case 5:
        return json_object();
    case 6:
        return json_pack("[[i],[i,i]]", 1, 2, 3);
    case 7:
        return json_integer(1LL << 40);
    case 8:
        return json_string("NaN");
    case 9:
        return json_pack("{s:s}", "encoding-type", "array");
    case 10:
        return json_pack("{s:s,s:[i,i]}", "encoding-type", "csr_matrix", "shape", 1, 1);
    case 11:
        return json_true();
    case 12:
        return json_integer(0);
    case 13:
        return json_integer(300);
    case 14:
        return json_pack("[{s:i}]", "a", 1);
    default:
        return json_integer(2);
    }
}

static int collect(json_t *v, json_t **out, int n, int cap)
{
    if (n >= cap) return n;
    if (json_is_array(v) || json_is_object(v)) out[n++] = v;
    if (json_is_array(v))
        for (size_t i = 0; i < json_array_size(v); i++)
            n = collect(json_array_get(v, i), out, n, cap);
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) n = collect(x, out, n, cap);
    }
    return n;
}

static void mutate(json_t *doc)
{
    json_t *nodes[256];
    int n = collect(doc, nodes, 0, 256);
    json_t *p = nodes[rnd((uint32_t)n)];
    if (json_is_array(p) && json_array_size(p)) {
        json_array_set_new(p, rnd((uint32_t)json_array_size(p)), randval());
    } else if (json_is_object(p) && json_object_size(p)) {
        uint32_t k = rnd((uint32_t)json_object_size(p)), i = 0;
        const char *key;
        json_t *x;
        json_object_foreach(p, key, x)
        {
            if (i++ == k) {
                json_object_set_new(p, key, randval());
                break;
            }
        }
    } else if (json_is_array(p)) {
        json_array_append_new(p, randval());
    }
}

START_TEST(mutations_fail_cleanly)
{
    adx_limits lim;
    adx_limits_default(&lim);
    lim.max_elements = 1000;
    lim.max_dim = 1000;
    int ok = 0, failed = 0;
    for (int it = 0; it < 4000; it++) {
        json_t *doc = json_loads(seeds[rnd(sizeof seeds / sizeof *seeds)], 0, NULL);
        ck_assert_ptr_nonnull(doc);
        for (uint32_t m = 0, nm = 1 + rnd(3); m < nm; m++)
            mutate(doc);
        adx_err err;
        adx_err_init(&err);
        adx_report rep = {0};
        jdec_opts o = {.limits = &lim, .base_ptr = "/adata"};
        char *text = json_dumps(doc, JSON_COMPACT);
        ck_assert_ptr_nonnull(text);
        jdec_doc *jd = jdec_read_buffer(text, strlen(text), &o, &err);
        free(text);
        ad_anndata *a = jd ? jdec_doc_anndata(jd, NULL, &o, &rep, &err) : NULL;
        jdec_doc_free(jd);
        if (a) {
            ok++;
            ck_assert_int_eq(err.type, ADX_E_NONE);
            ck_assert_uint_eq(a->obs.n_rows, a->n_obs);
            ck_assert_uint_eq(a->var.n_rows, a->n_vars);
            ck_assert_uint_eq(a->obs.index.n, a->n_obs);
            ad_anndata_free(a);
        } else {
            failed++;
            char *t = json_dumps(doc, JSON_COMPACT);
            ck_assert_msg(err.type != ADX_E_NONE && err.type != ADX_E_INTERNAL &&
                              err.type != ADX_E_NOMEM,
                          "bad error type %d for %s", err.type, t);
            ck_assert_msg(err.n_items >= 1 && !strncmp(err.items[0].pointer, "/adata", 6),
                          "error without a request pointer for %s", t);
            ck_assert_msg(err.detail[0] != '\0', "empty message for %s", t);
            free(t);
        }
        rep_free(&rep);
        json_decref(doc);
    }
    /* both outcomes must actually be exercised */
    ck_assert_int_gt(ok, 100);
    ck_assert_int_gt(failed, 100);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jdec_mutate");
    TCase *t = tcase_create("mutate");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, mutations_fail_cleanly);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
