/* The routing table (route.h). */
#include "route.h"

#include <stdio.h>
#include <string.h>

#define M(x) (1u << (x))
#define ALWAYS (M(SRV_M_GET) | M(SRV_M_HEAD) | M(SRV_M_OPTIONS))

/* How a pattern matches: the exact path (a trailing '/' allowed for
 * collections), one id segment (optionally followed by "/file"), or the
 * whole rest of the path as a name. */
typedef enum { P_EXACT, P_COLLECTION, P_ID, P_ID_FILE, P_REST } pkind;

static const struct {
    srv_route rt;
    pkind kind;
    const char *prefix; /* what the path starts with */
    const char *name;   /* for metrics and logs */
    unsigned methods;
    const char *allow;
} routes[] = {
    {SRV_RT_DATASETS, P_COLLECTION, "/v1/datasets", "/v1/datasets", ALWAYS, "GET, HEAD, OPTIONS"},
    {SRV_RT_DATASET, P_REST, "/v1/datasets/", "/v1/datasets/{name}",
     ALWAYS | M(SRV_M_PUT) | M(SRV_M_DELETE), "GET, HEAD, PUT, DELETE, OPTIONS"},
    {SRV_RT_HEALTHZ, P_EXACT, "/healthz", "/healthz", ALWAYS, "GET, HEAD, OPTIONS"},
    {SRV_RT_READYZ, P_EXACT, "/readyz", "/readyz", ALWAYS, "GET, HEAD, OPTIONS"},
    {SRV_RT_METRICS, P_EXACT, "/metrics", "/metrics", ALWAYS, "GET, HEAD, OPTIONS"},
    {SRV_RT_OPENAPI, P_EXACT, "/openapi.json", "/openapi.json", ALWAYS, "GET, HEAD, OPTIONS"},
    {SRV_RT_VERSION, P_EXACT, "/v1/version", "/v1/version", ALWAYS, "GET, HEAD, OPTIONS"},
    {SRV_RT_EXPORTS, P_COLLECTION, "/v1/exports", "/v1/exports", ALWAYS | M(SRV_M_POST),
     "GET, HEAD, POST, OPTIONS"},
    {SRV_RT_EXPORT, P_ID, "/v1/exports/", "/v1/exports/{id}", ALWAYS | M(SRV_M_DELETE),
     "GET, HEAD, DELETE, OPTIONS"},
    {SRV_RT_EXPORT_FILE, P_ID_FILE, "/v1/exports/", "/v1/exports/{id}/file", ALWAYS,
     "GET, HEAD, OPTIONS"},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

static bool match(size_t i, const char *path, srv_route_match *m)
{
    size_t pl = strlen(routes[i].prefix);
    if (strncmp(path, routes[i].prefix, pl) != 0) return false;
    const char *rest = path + pl;
    switch (routes[i].kind) {
    case P_EXACT:
        return *rest == '\0';
    case P_COLLECTION:
        return !strcmp(rest, "") || !strcmp(rest, "/");
    case P_REST:
        /* Slashes (a decoded %2F) belong to the name, so that a bad name is
         * a 400 for the name rather than a 404 for the route. */
        if (!*rest) return false;
        snprintf(m->name, sizeof m->name, "%s", rest);
        return true;
    case P_ID:
    case P_ID_FILE: {
        /* Unknown-shaped ids still route here so they get a 404 for the id,
         * not for the route. */
        size_t n = strcspn(rest, "/");
        if (n == 0 || n > SRV_ID_LEN) return false;
        const char *tail = routes[i].kind == P_ID ? "" : "/file";
        if (strcmp(rest + n, tail) != 0) return false;
        memcpy(m->id, rest, n);
        m->id[n] = '\0';
        return true;
    }
    }
    return false;
}

srv_route srv_route_of(const char *path, srv_route_match *m)
{
    memset(m, 0, sizeof *m);
    m->route = SRV_RT_OTHER;
    for (size_t i = 0; i < N_ROUTES; i++)
        if (match(i, path, m)) {
            m->route = routes[i].rt;
            break;
        }
    return m->route;
}

srv_method srv_method_of(const char *method)
{
    static const char *names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
    for (int i = 0; i < SRV_M_OTHER; i++)
        if (!strcmp(method, names[i])) return (srv_method)i;
    return SRV_M_OTHER;
}

static int index_of(srv_route rt)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        if (routes[i].rt == rt) return (int)i;
    return -1;
}

bool srv_route_allows(srv_route rt, srv_method m)
{
    int i = index_of(rt);
    return i >= 0 && m < SRV_M_OTHER && (routes[i].methods & M(m));
}

const char *srv_route_allow(srv_route rt)
{
    int i = index_of(rt);
    return i >= 0 ? routes[i].allow : "GET, HEAD, OPTIONS";
}

const char *srv_route_name(int rt)
{
    int i = rt >= 0 && rt < SRV_RT__COUNT ? index_of((srv_route)rt) : -1;
    return i >= 0 ? routes[i].name : "other";
}

bool srv_route_is_upload(srv_route rt, srv_method m)
{
    return (rt == SRV_RT_EXPORTS && m == SRV_M_POST) || (rt == SRV_RT_DATASET && m == SRV_M_PUT);
}
