/* adx_datasets implementation: the data directory, pins and the summary
 * cache. See include/adx_datasets.h for the layout and the guarantees. */
#include "adx_datasets.h"
#include "datasets_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adx_afile.h"
#include "adx_h5r.h"
#include "adx_h5w.h"
#include "adx_jdec.h"
#include "adx_polis.h"
#include "adx_request.h"
#include "adx_sanitize.h"

#define PUT_PREFIX ".put-"
#define DEL_PREFIX ".del-"

/* What identifies one version of a file on disk. A Polis folder is keyed by
 * its two CSV files: editing a file in place leaves the folder's own mtime
 * alone. */
typedef struct fkey {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    bool present;
} fkey;

typedef struct centry {
    char *name;
    ds_kind kind;
    fkey key[2];
    json_t *summary; /* without name/kind/size/mtime: those come from stat */
    adx_err *error;  /* instead of a summary: the file does not read */
} centry;

typedef struct pin {
    char *name;
    unsigned count;
} pin;

struct ds_store {
    char *dir;
    int lockfd; /* the directory, flock(LOCK_SH) held while the store is open */
    char *h5check;
    adx_limits lim;
    pthread_mutex_t mu;
    pin *pins;
    size_t n_pins, cap_pins;
    centry *cache;
    size_t n_cache, cap_cache;
};

/* A located dataset: where it is and the stat data its summary shows. */
typedef struct loc {
    ds_kind kind;
    char *path; /* the .h5ad file or the folder */
    fkey key[2];
    uint64_t size;
    struct timespec mtime;
} loc;

bool ds_name_valid(const char *name)
{
    if (!name || !name[0] || name[0] == '.') return false;
    size_t i = 0;
    for (; name[i]; i++) {
        char c = name[i];
        if (i >= ADX_DATASET_NAME_MAX) return false;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

const char *ds_kind_name(ds_kind k)
{
    return k == DS_KIND_POLIS ? "polis" : "h5ad";
}

const char *ds_dir(const ds_store *s)
{
    return s ? s->dir : NULL;
}

static int bad_name(adx_err *err)
{
    return adx_err_set(err, ADX_E_BAD_OPTION, "/dataset",
                       "dataset names are 1-%d characters of [A-Za-z0-9._-], not starting with a "
                       "dot",
                       ADX_DATASET_NAME_MAX);
}

static int nomem(adx_err *err)
{
    return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
}

static char *join(const char *dir, const char *name, const char *suffix)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s%s", dir, name, suffix ? suffix : "") < 0) return NULL;
    return p;
}

static void key_of(fkey *k, const struct stat *st)
{
    k->dev = st->st_dev;
    k->ino = st->st_ino;
    k->size = st->st_size;
    k->mtime = st->st_mtim;
    k->present = true;
}

static bool key_eq(const fkey *a, const fkey *b)
{
    return a->present == b->present && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static bool later(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

static void loc_free(loc *l)
{
    free(l->path);
    l->path = NULL;
}

/* Is DIR/name a Polis folder? Fills the keys from its CSV files. */
static bool polis_at(const char *folder, loc *l)
{
    static const char *const files[2] = {"votes.csv", "comments.csv"};
    struct stat st;
    if (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode)) return false;
    memset(l->key, 0, sizeof l->key);
    l->size = 0;
    l->mtime = st.st_mtim;
    for (int i = 0; i < 2; i++) {
        char *p = join(folder, files[i], NULL);
        int rc = p ? stat(p, &st) : -1;
        free(p);
        if (rc != 0 || !S_ISREG(st.st_mode)) {
            /* votes.csv makes a folder a dataset; a missing comments.csv is
             * the reader's error to report. */
            if (i == 0) return false;
            continue;
        }
        key_of(&l->key[i], &st);
        l->size += (uint64_t)st.st_size;
        if (later(&st.st_mtim, &l->mtime)) l->mtime = st.st_mtim;
    }
    return true;
}

/* Find `name` (already validated). 0 and *l filled, or -1 with NOT_FOUND
 * (or NOMEM). */
static int locate(const ds_store *s, const char *name, loc *l, adx_err *err)
{
    memset(l, 0, sizeof *l);
    char *file = join(s->dir, name, ".h5ad");
    if (!file) return nomem(err);
    struct stat st;
    if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
        l->kind = DS_KIND_H5AD;
        l->path = file;
        key_of(&l->key[0], &st);
        l->size = (uint64_t)st.st_size;
        l->mtime = st.st_mtim;
        return 0;
    }
    free(file);
    char *folder = join(s->dir, name, NULL);
    if (!folder) return nomem(err);
    if (polis_at(folder, l)) {
        l->kind = DS_KIND_POLIS;
        l->path = folder;
        return 0;
    }
    free(folder);
    return adx_err_set(err, ADX_E_NOT_FOUND, "/dataset", "no dataset named \"%s\"", name);
}

/* ---- pins and cache (callers hold s->mu) ---- */

static pin *pin_find(ds_store *s, const char *name)
{
    for (size_t i = 0; i < s->n_pins; i++)
        if (!strcmp(s->pins[i].name, name)) return &s->pins[i];
    return NULL;
}

static centry *cache_find(ds_store *s, const char *name)
{
    for (size_t i = 0; i < s->n_cache; i++)
        if (!strcmp(s->cache[i].name, name)) return &s->cache[i];
    return NULL;
}

static void cache_drop_locked(ds_store *s, const char *name)
{
    centry *e = cache_find(s, name);
    if (!e) return;
    free(e->name);
    json_decref(e->summary);
    free(e->error);
    *e = s->cache[--s->n_cache];
}

static void cache_drop(ds_store *s, const char *name)
{
    pthread_mutex_lock(&s->mu);
    cache_drop_locked(s, name);
    pthread_mutex_unlock(&s->mu);
}

/* Errors that say something about the file rather than about this moment
 * are worth caching; the file has to change before it reads differently. */
static bool lasting(adx_errtype t)
{
    return t == ADX_E_SCHEMA || t == ADX_E_SHAPE || t == ADX_E_LIMIT;
}

/* Remembers a copy of `summary`, or `e` when summary is NULL. A failed
 * insert only costs a later re-read. The copies are made before the lock
 * is taken; a deep copy because callers go on to change their summary and
 * jansson values shared between threads are not safe to change. */
static void cache_put(ds_store *s, const char *name, const loc *l, json_t *summary,
                      const adx_err *e)
{
    adx_err *ec = NULL;
    json_t *copy = NULL, *old = NULL;
    if (!summary) {
        if (!e || !lasting(e->type) || !(ec = malloc(sizeof *ec))) return;
        *ec = *e;
    } else if (!(copy = json_deep_copy(summary))) {
        return;
    }
    char *nm = strdup(name);
    if (!nm) {
        free(ec);
        json_decref(copy);
        return;
    }
    pthread_mutex_lock(&s->mu);
    centry *c = cache_find(s, name);
    if (!c) {
        if (s->n_cache == s->cap_cache) {
            size_t cap = s->cap_cache ? 2 * s->cap_cache : 16;
            centry *n = realloc(s->cache, cap * sizeof *n);
            if (!n) goto out;
            s->cache = n;
            s->cap_cache = cap;
        }
        c = &s->cache[s->n_cache++];
        memset(c, 0, sizeof *c);
        c->name = nm;
        nm = NULL;
    }
    old = c->summary;
    free(c->error);
    c->summary = copy;
    c->error = ec;
    copy = NULL;
    ec = NULL;
    c->kind = l->kind;
    memcpy(c->key, l->key, sizeof c->key);
out:
    pthread_mutex_unlock(&s->mu);
    json_decref(old);
    json_decref(copy);
    free(nm);
    free(ec);
}

/* A private copy of the cached summary (or of the cached error, into `e`)
 * when the entry still matches the files; NULL and `e` untouched else. */
static json_t *cache_get(ds_store *s, const char *name, const loc *l, adx_err *e)
{
    json_t *r = NULL;
    pthread_mutex_lock(&s->mu);
    centry *c = cache_find(s, name);
    if (c && c->kind == l->kind && key_eq(&c->key[0], &l->key[0]) &&
        key_eq(&c->key[1], &l->key[1])) {
        if (c->summary)
            r = json_deep_copy(c->summary);
        else if (c->error)
            *e = *c->error;
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

void ds_pin(ds_store *s, const char *name)
{
    if (!s || !name) return;
    pthread_mutex_lock(&s->mu);
    pin *p = pin_find(s, name);
    if (p) {
        p->count++;
    } else {
        if (s->n_pins == s->cap_pins) {
            size_t cap = s->cap_pins ? 2 * s->cap_pins : 16;
            pin *n = realloc(s->pins, cap * sizeof *n);
            if (!n) goto out;
            s->pins = n;
            s->cap_pins = cap;
        }
        char *nm = strdup(name);
        if (!nm) goto out;
        s->pins[s->n_pins++] = (pin){nm, 1};
    }
out:
    pthread_mutex_unlock(&s->mu);
}

void ds_unpin(ds_store *s, const char *name)
{
    if (!s || !name) return;
    pthread_mutex_lock(&s->mu);
    pin *p = pin_find(s, name);
    if (p && --p->count == 0) {
        free(p->name);
        *p = s->pins[--s->n_pins];
    }
    pthread_mutex_unlock(&s->mu);
}

bool ds_pinned(ds_store *s, const char *name)
{
    if (!s || !name) return false;
    pthread_mutex_lock(&s->mu);
    bool r = pin_find(s, name) != NULL;
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- summaries ---- */

static ad_anndata *read_model(ds_store *s, const loc *l, const h5r_opts *o, const adx_ctl *ctl,
                              adx_report *rep, adx_err *err)
{
    ad_anndata *a = l->kind == DS_KIND_H5AD ? h5r_read_opts(l->path, o, &s->lim, ctl, rep, err)
                                            : polis_read_dir(l->path, &s->lim, rep, err);
    if (!a) {
        if (!adx_err_failed(err)) adx_err_set(err, ADX_E_INTERNAL, "", "reading failed");
    }
    return a;
}

static json_t *decorate(const char *name, const loc *l, json_t *summary)
{
    char when[32] = "";
    struct tm tm;
    time_t t = l->mtime.tv_sec;
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "name", name, "kind", ds_kind_name(l->kind),
                          "size_bytes", (json_int_t)l->size, "modified_at", when);
    if (!o || json_object_update(o, summary)) {
        json_decref(o);
        json_decref(summary);
        return NULL;
    }
    json_decref(summary);
    return o;
}

/* The summary body (without name/kind/size/modified_at) for a located
 * dataset: from the cache, else read. A dataset that does not read gives
 * {"error": problem} when `as_entry`, else NULL with err set. */
static json_t *summary_body(ds_store *s, const char *name, const loc *l, bool as_entry,
                            adx_err *err)
{
    adx_err e;
    adx_err_init(&e);
    json_t *body = cache_get(s, name, l, &e);
    if (!body && !adx_err_failed(&e)) {
        adx_report rep = {0};
        ad_anndata *a = read_model(s, l, NULL, NULL, &rep, &e);
        rep_free(&rep);
        if (a) {
            body = ad_summary_json(a);
            ad_anndata_free(a);
            if (!body) return nomem(err), NULL;
        }
        cache_put(s, name, l, body, &e);
    }
    if (body) return body;
    if (!as_entry) {
        *err = e;
        return NULL;
    }
    json_t *p = adx_err_problem(&e, NULL, NULL);
    body = p ? json_pack("{s:o}", "error", p) : NULL;
    if (!body) nomem(err);
    return body;
}

json_t *ds_summary(ds_store *s, const char *name, adx_err *err)
{
    if (!s) return adx_err_set(err, ADX_E_INTERNAL, "", "no data directory"), NULL;
    if (!ds_name_valid(name)) return bad_name(err), NULL;
    loc l;
    if (locate(s, name, &l, err)) return NULL;
    json_t *body = summary_body(s, name, &l, false, err);
    json_t *r = body ? decorate(name, &l, body) : NULL;
    if (body && !r) nomem(err);
    loc_free(&l);
    return r;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The name a directory entry stands for, or NULL when it is no dataset. */
static char *entry_name(ds_store *s, const char *d_name)
{
    if (d_name[0] == '.') return NULL;
    size_t n = strlen(d_name);
    char *name = NULL;
    if (n > 5 && !strcmp(d_name + n - 5, ".h5ad")) {
        name = strndup(d_name, n - 5);
        if (name && ds_name_valid(name)) {
            char *p = join(s->dir, d_name, NULL);
            struct stat st;
            bool ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
            free(p);
            if (ok) return name;
        }
        free(name);
        name = NULL;
    }
    if (!ds_name_valid(d_name)) return NULL;
    /* A folder that also has a <name>.h5ad file is listed once, as that
     * file (the loop above returns it for the file's own entry). */
    char *file = join(s->dir, d_name, ".h5ad");
    struct stat st;
    bool shadowed = !file || (stat(file, &st) == 0 && S_ISREG(st.st_mode));
    free(file);
    if (shadowed) return NULL;
    char *folder = join(s->dir, d_name, NULL);
    loc l = {0};
    bool ok = folder && polis_at(folder, &l);
    free(folder);
    return ok ? strdup(d_name) : NULL;
}

bool ds_empty(ds_store *s)
{
    DIR *d = s ? opendir(s->dir) : NULL;
    if (!d) return true;
    bool empty = true;
    struct dirent *de;
    while (empty && (de = readdir(d))) {
        char *nm = entry_name(s, de->d_name);
        empty = nm == NULL;
        free(nm);
    }
    closedir(d);
    return empty;
}

json_t *ds_list(ds_store *s, adx_err *err)
{
    if (!s) return adx_err_set(err, ADX_E_INTERNAL, "", "no data directory"), NULL;
    DIR *d = opendir(s->dir);
    if (!d) {
        int e = errno;
        adx_err_set(err, ADX_E_IO, "", "cannot list the data directory");
        adx_err_cause(err, "%s: %s", s->dir, strerror(e));
        return NULL;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        char *nm = entry_name(s, de->d_name);
        if (!nm) continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 32;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                free(nm);
                rc = -1;
                break;
            }
            names = nn;
            cap = nc;
        }
        names[n++] = nm;
    }
    closedir(d);
    json_t *arr = rc ? NULL : json_array();
    if (arr && n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; arr && i < n; i++) {
        loc l;
        adx_err e;
        adx_err_init(&e);
        /* Removed between readdir and now: not a dataset any more. */
        if (locate(s, names[i], &l, &e)) {
            if (e.type == ADX_E_NOT_FOUND) continue;
            json_decref(arr);
            arr = NULL;
            break;
        }
        json_t *body = summary_body(s, names[i], &l, true, &e);
        json_t *o = body ? decorate(names[i], &l, body) : NULL;
        loc_free(&l);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (!arr) nomem(err);
    return arr;
}

/* ---- load ---- */

ad_anndata *ds_load(ds_store *s, const char *name, const adx_ctl *ctl, adx_report *rep,
                    adx_err *err)
{
    return ds_load_opts(s, name, NULL, ctl, rep, err);
}

ad_anndata *ds_load_opts(ds_store *s, const char *name, const h5r_opts *o, const adx_ctl *ctl,
                         adx_report *rep, adx_err *err)
{
    if (!s) return adx_err_set(err, ADX_E_INTERNAL, "", "no data directory"), NULL;
    if (!ds_name_valid(name)) return bad_name(err), NULL;
    ds_pin(s, name);
    loc l;
    ad_anndata *a = NULL;
    if (locate(s, name, &l, err) == 0) {
        a = read_model(s, &l, o, ctl, rep, err);
        loc_free(&l);
    }
    ds_unpin(s, name);
    return a;
}

/* ---- put ---- */

static int conflict(const char *name, adx_err *err)
{
    return adx_err_set(err, ADX_E_CONFLICT, "/dataset",
                       "dataset \"%s\" is in use by an export; try again when it has finished",
                       name);
}

/* The JSON upload as a model: the AnnData object itself, or a request's
 * "adata". Sanitized, because it is stored as h5ad. */
static ad_anndata *decode_json(ds_store *s, const char *src, adx_report *rep, adx_err *err)
{
    jdec_opts o = {.limits = &s->lim};
    jdec_doc *doc = jdec_read_file(src, &o, err);
    if (!doc) {
        if (!adx_err_failed(err)) adx_err_set(err, ADX_E_INVALID_JSON, "", "cannot parse");
        return NULL;
    }
    /* An AnnData object has no "adata" member (jdec refuses unknown keys),
     * so its presence means a whole request was sent. */
    bool request = jdec_doc_has(doc, "adata");
    o.base_ptr = request ? "/adata" : "";
    ad_anndata *a = jdec_doc_anndata(doc, request ? "adata" : NULL, &o, rep, err);
    jdec_doc_free(doc);
    if (a && san_anndata(a, &s->lim, rep, err)) {
        ad_anndata_free(a);
        a = NULL;
    }
    if (!a && !adx_err_failed(err)) adx_err_set(err, ADX_E_INTERNAL, "", "decoding failed");
    return a;
}

static ad_anndata *check_h5ad(ds_store *s, const char *src, const adx_ctl *ctl, adx_report *rep,
                              adx_err *err)
{
    struct stat st;
    if (stat(src, &st) != 0 || !S_ISREG(st.st_mode)) {
        adx_err_set(err, ADX_E_IO, "", "cannot read the uploaded file");
        return NULL;
    }
    /* libhdf5 is not hardened against corrupt metadata: a crash must take
     * down the helper, not the daemon. */
    if (s->h5check && h5r_check_isolated(s->h5check, src, &s->lim, 0, err)) {
        return NULL;
    }
    ad_anndata *a = h5r_read(src, &s->lim, ctl, rep, err);
    if (!a) {
        if (!adx_err_failed(err)) adx_err_set(err, ADX_E_INTERNAL, "", "reading failed");
    }
    return a;
}

/* Whether a PUT of `name` may go ahead, before the (possibly long)
 * validation of the upload: a valid name and kind, not a Polis folder, not
 * pinned (checked again before the rename). */
static int put_admissible(ds_store *s, const char *name, const char *src_path, ds_input input,
                          adx_err *err)
{
    if (!s || !src_path)
        return adx_err_set(err, ADX_E_INTERNAL, "", "ds_put without a store or a file");
    if (!ds_name_valid(name)) return bad_name(err);
    if (input != DS_INPUT_H5AD && input != DS_INPUT_JSON)
        return adx_err_set(err, ADX_E_INTERNAL, "", "unknown upload kind");
    char *folder = join(s->dir, name, NULL), *final = join(s->dir, name, ".h5ad");
    int rc = 0;
    struct stat st;
    loc pl;
    if (!folder || !final) {
        rc = nomem(err);
    } else if (!(stat(final, &st) == 0 && S_ISREG(st.st_mode)) && polis_at(folder, &pl)) {
        /* 409, not 415: the body may be fine, the name's current state is
         * what forbids the PUT (and no retry will help, so no Retry-After). */
        rc = adx_err_set(err, ADX_E_CONFLICT, "/dataset",
                         "dataset \"%s\" is a Polis folder, which only the operator can replace",
                         name);
    } else if (ds_pinned(s, name)) {
        rc = conflict(name, err);
    }
    free(folder);
    free(final);
    return rc;
}

/* After the rename: the summary cache and the uploader's summary (with the
 * report, since exports of the stored file cannot see what sanitize did). */
static void put_publish(ds_store *s, const char *name, json_t *body, const adx_report *rep,
                        json_t **summary)
{
    loc l;
    adx_err e2;
    adx_err_init(&e2);
    if (locate(s, name, &l, &e2) != 0) {
        cache_drop(s, name);
        return;
    }
    if (l.kind == DS_KIND_H5AD) cache_put(s, name, &l, body, NULL);
    if (summary) {
        json_t *copy = json_deep_copy(body);
        *summary = copy ? decorate(name, &l, copy) : NULL;
        if (*summary && rep->n) json_object_set_new(*summary, "report", rep_to_json(rep));
    }
    loc_free(&l);
}

int ds_put(ds_store *s, const char *name, const char *src_path, ds_input input, const adx_ctl *ctl,
           bool *created, json_t **summary, adx_err *err)
{
    if (summary) *summary = NULL;
    char *final = NULL;
    afile *out = NULL;
    ad_anndata *a = NULL;
    adx_report rep = {0};
    json_t *body = NULL;
    int rc = -1;
    if (put_admissible(s, name, src_path, input, err) < 0) goto out;
    final = join(s->dir, name, ".h5ad");
    if (!final) {
        nomem(err);
        goto out;
    }

    a = input == DS_INPUT_H5AD ? check_h5ad(s, src_path, ctl, &rep, err)
                               : decode_json(s, src_path, &rep, err);
    if (!a) goto out;
    body = ad_summary_json(a);
    if (!body) {
        nomem(err);
        goto out;
    }

    /* Stored datasets are the operator's data: readable by the group that
     * runs exports, not by everyone. ".put-" so that ds_open removes a temp
     * file this process leaves behind. */
    afile_opts ao = {.mode = 0640, .tmp_prefix = PUT_PREFIX};
    out = afile_begin(final, &ao, err);
    if (!out) goto out;
    if (input == DS_INPUT_JSON) {
        h5w_opts o;
        h5w_opts_default(&o);
        o.compression = ADX_COMP_GZIP;
        o.level = 4;
        if (h5w_write(a, afile_temp_path(out), &o, ctl, &rep, err)) {
            if (!adx_err_failed(err)) adx_err_set(err, ADX_E_INTERNAL, "", "writing failed");
            goto out;
        }
    } else if (afile_take(out, src_path, err) != 0) {
        goto out;
    }
    /* A pin taken after this check sees the new file whole, never a mix;
     * the window only decides which version that job reads. */
    if (ds_pinned(s, name)) {
        conflict(name, err);
        goto out;
    }
    struct stat st;
    bool existed = stat(final, &st) == 0;
    afile *f = out;
    out = NULL;
    if (afile_commit(f, NULL, err) != 0) {
        /* The old file may be gone already. */
        cache_drop(s, name);
        goto out;
    }
    if (created) *created = !existed;
    put_publish(s, name, body, &rep, summary);
    rc = 0;
out:
    afile_abort(out);
    if (src_path) unlink(src_path);
    ad_anndata_free(a);
    json_decref(body);
    rep_free(&rep);
    free(final);
    return rc;
}

/* ---- delete ---- */

int ds_delete(ds_store *s, const char *name, adx_err *err)
{
    if (!s) return adx_err_set(err, ADX_E_INTERNAL, "", "no data directory");
    if (!ds_name_valid(name)) return bad_name(err);
    if (ds_pinned(s, name)) return conflict(name, err);
    loc l;
    if (locate(s, name, &l, err)) return -1;
    char *grave = NULL;
    if (asprintf(&grave, "%s/" DEL_PREFIX "XXXXXX", s->dir) < 0) {
        loc_free(&l);
        return nomem(err);
    }
    /* The unique name must exist for the rename to take its place: a file
     * for a file, an (empty) folder for a folder. */
    int ok;
    if (l.kind == DS_KIND_H5AD) {
        int fd = mkostemp(grave, O_CLOEXEC);
        ok = fd >= 0;
        if (ok) close(fd);
    } else {
        ok = mkdtemp(grave) != NULL;
    }
    int rc = 0, mv;
    if (!ok) {
        int e = errno;
        rc = adx_err_set(err, ADX_E_IO, "", "cannot delete the dataset");
        adx_err_cause(err, "%s: %s", grave, strerror(e));
    } else if ((mv = afile_rename(l.path, grave)) < 0) {
        int e = errno;
        afile_remove_tree(grave);
        rc = e == ENOENT
                 ? adx_err_set(err, ADX_E_NOT_FOUND, "/dataset", "no dataset named \"%s\"", name)
                 : adx_err_set(err, ADX_E_IO, "", "cannot delete the dataset");
        if (e != ENOENT) adx_err_cause(err, "%s: %s", l.path, strerror(e));
    } else {
        if (mv > 0) {
            int e = errno;
            rc = adx_err_set(err, ADX_E_IO, "", "cannot sync the data directory");
            adx_err_cause(err, "%s: %s", s->dir, strerror(e));
        }
        /* The name is gone; a failure here leaves a .del- entry that the
         * next ds_open removes. */
        cache_drop(s, name);
        afile_remove_tree(grave);
    }
    free(grave);
    loc_free(&l);
    return rc;
}

/* ---- open / close ---- */

static void clean_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    int dfd = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, PUT_PREFIX, strlen(PUT_PREFIX)) &&
            strncmp(de->d_name, DEL_PREFIX, strlen(DEL_PREFIX)))
            continue;
        afile_remove_at(dfd, de->d_name);
    }
    closedir(d);
}

ds_store *ds_open(const char *dir, const adx_limits *lim, const char *h5check, adx_err *err)
{
    if (!dir || !*dir) {
        adx_err_set(err, ADX_E_BAD_OPTION, "", "no data directory given");
        return NULL;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        int e = errno;
        adx_err_set(err, ADX_E_IO, "", "cannot create the data directory");
        adx_err_cause(err, "%s: %s", dir, strerror(e));
        return NULL;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        adx_err_set(err, ADX_E_IO, "", "the data directory is not a directory");
        return NULL;
    }
    ds_store *s = calloc(1, sizeof *s);
    if (!s) {
        nomem(err);
        return NULL;
    }
    if (lim)
        s->lim = *lim;
    else
        adx_limits_default(&s->lim);
    /* Trailing slashes would double in joined paths. */
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    s->dir = strndup(dir, n);
    s->h5check = h5check ? strdup(h5check) : NULL;
    if (!s->dir || (h5check && !s->h5check) || pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s->dir);
        free(s->h5check);
        free(s);
        nomem(err);
        return NULL;
    }
    /* Another store (the daemon, a CLI export) may have a put or delete in
     * flight: its temp entries are leftovers only when nobody else holds
     * the directory. */
    s->lockfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->lockfd >= 0 && flock(s->lockfd, LOCK_EX | LOCK_NB) == 0) {
        clean_leftovers(s->dir);
        flock(s->lockfd, LOCK_SH);
    } else if (s->lockfd >= 0) {
        flock(s->lockfd, LOCK_SH);
    }
    return s;
}

void ds_close(ds_store *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_pins; i++)
        free(s->pins[i].name);
    free(s->pins);
    for (size_t i = 0; i < s->n_cache; i++) {
        free(s->cache[i].name);
        json_decref(s->cache[i].summary);
        free(s->cache[i].error);
    }
    free(s->cache);
    pthread_mutex_destroy(&s->mu);
    if (s->lockfd >= 0) close(s->lockfd);
    free(s->dir);
    free(s->h5check);
    free(s);
}
