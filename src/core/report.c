/* adx_report implementation. */
#include "adx_report.h"

#include <stdlib.h>
#include <string.h>

int rep_add(adx_report *r, const char *path, const char *action, uint64_t count, const char *detail)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        rep_entry *e = realloc(r->e, cap * sizeof *e);
        if (!e) return -1;
        r->e = e;
        r->cap = cap;
    }
    rep_entry *x = &r->e[r->n];
    x->path = strdup(path ? path : "");
    x->action = strdup(action);
    x->detail = detail ? strdup(detail) : NULL;
    x->count = count;
    if (!x->path || !x->action || (detail && !x->detail)) {
        free(x->path);
        free(x->action);
        free(x->detail);
        return -1;
    }
    r->n++;
    return 0;
}

void rep_free(adx_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->e[i].path);
        free(r->e[i].action);
        free(r->e[i].detail);
    }
    free(r->e);
    memset(r, 0, sizeof *r);
}

json_t *rep_to_json(const adx_report *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n; i++) {
        json_t *o = json_pack("{s:s, s:s, s:I}", "path", r->e[i].path, "action", r->e[i].action,
                              "count", (json_int_t)r->e[i].count);
        if (o && r->e[i].detail) json_object_set_new(o, "detail", json_string(r->e[i].detail));
        json_array_append_new(a, o);
    }
    return a;
}
