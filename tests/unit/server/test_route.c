/* Unit tests for the routing table (src/server/route.c) without sockets. */
#include <check.h>
#include <stdlib.h>

#include "route.h"

START_TEST(routes)
{
    srv_route_match m;
    ck_assert_int_eq(srv_route_of("/v1/exports", &m), SRV_RT_EXPORTS);
    ck_assert_int_eq(srv_route_of("/v1/exports/", &m), SRV_RT_EXPORTS);
    ck_assert_int_eq(srv_route_of("/v1/exports/01ARZ3NDEKTSV4RRFFQ69G5FAV", &m), SRV_RT_EXPORT);
    ck_assert_str_eq(m.id, "01ARZ3NDEKTSV4RRFFQ69G5FAV");
    ck_assert_int_eq(srv_route_of("/v1/exports/abc/file", &m), SRV_RT_EXPORT_FILE);
    ck_assert_str_eq(m.id, "abc"); /* any short id routes, so it gets a 404 for the id */
    ck_assert_int_eq(srv_route_of("/v1/exports/abc/", &m), SRV_RT_OTHER);
    ck_assert_int_eq(srv_route_of("/v1/exports//file", &m), SRV_RT_OTHER);
    ck_assert_int_eq(srv_route_of("/v1/exports/01ARZ3NDEKTSV4RRFFQ69G5FAVX", &m), SRV_RT_OTHER);
    ck_assert_int_eq(srv_route_of("/v1/exports/a/filex", &m), SRV_RT_OTHER);
    ck_assert_int_eq(srv_route_of("/v1/datasets", &m), SRV_RT_DATASETS);
    ck_assert_int_eq(srv_route_of("/v1/datasets/", &m), SRV_RT_DATASETS);
    ck_assert_int_eq(srv_route_of("/v1/datasets/a/b", &m), SRV_RT_DATASET);
    ck_assert_str_eq(m.name, "a/b"); /* a decoded %2F stays in the name */
    ck_assert_int_eq(srv_route_of("/healthz", &m), SRV_RT_HEALTHZ);
    ck_assert_int_eq(srv_route_of("/healthz/", &m), SRV_RT_OTHER);
    ck_assert_int_eq(srv_route_of("/readyz", &m), SRV_RT_READYZ);
    ck_assert_int_eq(srv_route_of("/metrics", &m), SRV_RT_METRICS);
    ck_assert_int_eq(srv_route_of("/openapi.json", &m), SRV_RT_OPENAPI);
    ck_assert_int_eq(srv_route_of("/v1/version", &m), SRV_RT_VERSION);
    ck_assert_int_eq(srv_route_of("/", &m), SRV_RT_OTHER);
    ck_assert_int_eq(srv_route_of("/v1/exportsX", &m), SRV_RT_OTHER);
}
END_TEST

START_TEST(methods)
{
    ck_assert(srv_route_allows(SRV_RT_EXPORTS, SRV_M_POST));
    ck_assert(!srv_route_allows(SRV_RT_EXPORTS, SRV_M_DELETE));
    ck_assert(srv_route_allows(SRV_RT_EXPORT, SRV_M_DELETE));
    ck_assert(!srv_route_allows(SRV_RT_EXPORT, SRV_M_PUT));
    ck_assert(srv_route_allows(SRV_RT_DATASET, SRV_M_PUT));
    ck_assert(!srv_route_allows(SRV_RT_DATASETS, SRV_M_PUT));
    ck_assert(!srv_route_allows(SRV_RT_HEALTHZ, SRV_M_POST));
    ck_assert(srv_route_allows(SRV_RT_HEALTHZ, SRV_M_HEAD));
    ck_assert(!srv_route_allows(SRV_RT_METRICS, SRV_M_OTHER));
    ck_assert_int_eq(srv_method_of("PATCH"), SRV_M_OTHER);
    ck_assert_int_eq(srv_method_of("get"), SRV_M_OTHER); /* methods are case-sensitive */
    ck_assert_str_eq(srv_route_allow(SRV_RT_EXPORT), "GET, HEAD, DELETE, OPTIONS");
    ck_assert_str_eq(srv_route_allow(SRV_RT_DATASET), "GET, HEAD, PUT, DELETE, OPTIONS");
    ck_assert_str_eq(srv_route_name(SRV_RT_EXPORT_FILE), "/v1/exports/{id}/file");
    ck_assert_str_eq(srv_route_name(SRV_RT_OTHER), "other");
    ck_assert_str_eq(srv_route_name(-1), "other");
    ck_assert(srv_route_is_upload(SRV_RT_EXPORTS, SRV_M_POST));
    ck_assert(srv_route_is_upload(SRV_RT_DATASET, SRV_M_PUT));
    ck_assert(!srv_route_is_upload(SRV_RT_EXPORT, SRV_M_POST));
    /* every route but "other" has a name and an Allow */
    for (int rt = 0; rt < SRV_RT_OTHER; rt++) {
        ck_assert_str_ne(srv_route_name(rt), "other");
        ck_assert(srv_route_allows((srv_route)rt, SRV_M_GET));
        ck_assert(srv_route_allows((srv_route)rt, SRV_M_OPTIONS));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("srv_route");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, routes);
    tcase_add_test(tc, methods);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
