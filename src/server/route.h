/* The routing table of the HTTP API: which path is which route, the
 * methods each route takes and the name metrics use for it. Pure (no
 * sockets), so the unit tests check it directly. */
#ifndef SRV_ROUTE_H
#define SRV_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "adx_srv_util.h"

typedef enum srv_route {
    SRV_RT_EXPORTS = 0,
    SRV_RT_EXPORT,
    SRV_RT_EXPORT_FILE,
    SRV_RT_HEALTHZ,
    SRV_RT_READYZ,
    SRV_RT_METRICS,
    SRV_RT_OPENAPI,
    SRV_RT_VERSION,
    SRV_RT_DATASETS,
    SRV_RT_DATASET,
    SRV_RT_OTHER,
    SRV_RT__COUNT
} srv_route;

typedef enum srv_method {
    SRV_M_GET = 0,
    SRV_M_HEAD,
    SRV_M_POST,
    SRV_M_PUT,
    SRV_M_DELETE,
    SRV_M_OPTIONS,
    SRV_M_OTHER,
    SRV_M__COUNT
} srv_method;

typedef struct srv_route_match {
    srv_route route;
    char id[SRV_ID_LEN + 1]; /* {id} of /v1/exports/{id}[/file], as sent */
    char name[512];          /* {name} of /v1/datasets/{name}, as sent (checked later) */
} srv_route_match;

/* The route of a (decoded) path; SRV_RT_OTHER when none matches. */
srv_route srv_route_of(const char *path, srv_route_match *m);
srv_method srv_method_of(const char *method);
bool srv_route_allows(srv_route rt, srv_method m);
/* The Allow header of a route ("GET, HEAD, POST, OPTIONS"). */
const char *srv_route_allow(srv_route rt);
/* The route's pattern ("/v1/exports/{id}"), "other" for SRV_RT_OTHER. */
const char *srv_route_name(int rt);
/* Routes whose body is an upload, answered as soon as the headers are in
 * (to refuse it early): POST /v1/exports, PUT /v1/datasets/{name}. */
bool srv_route_is_upload(srv_route rt, srv_method m);

#endif
