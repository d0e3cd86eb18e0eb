/* adx_dynlib implementation. See include/adx_dynlib.h. */
#include "adx_dynlib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* One lock for every table: loading happens once per library and process,
 * and the lock orders the slot writes before any caller's use. */
static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;

static void load(dynlib *l)
{
    if (!l->soname) {
        l->ok = true; /* linked: the slots were bound at build time */
        return;
    }
    /* RTLD_LOCAL: its symbols serve only these slots. */
    void *h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(l->why, sizeof l->why, "%s", e ? e : l->soname);
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        void *p = dlsym(h, l->names[i]);
        if (!p) {
            snprintf(l->why, sizeof l->why, "%s: no symbol %s", l->soname, l->names[i]);
            for (size_t k = 0; k < i; k++)
                l->slots[k] = NULL;
            dlclose(h);
            return;
        }
        l->slots[i] = p;
    }
    l->ok = true;
}

int dynlib_load(dynlib *l, adx_err *err)
{
    pthread_mutex_lock(&load_mu);
    if (!l->tried) {
        l->tried = true;
        load(l);
    }
    bool ok = l->ok;
    pthread_mutex_unlock(&load_mu);
    if (ok) return 0;
    if (err) {
        adx_err_set(err, ADX_E_INTERNAL, "", "a shared library this needs is not installed");
        adx_err_cause(err, "%s", l->why);
    }
    return -1;
}
