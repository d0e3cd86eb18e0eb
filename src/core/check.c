/* The model's namespaces and its shape and alignment rules (adx_model.h):
 * the one table the filter, sanitize, the summary and the writers iterate,
 * and the one check every reader runs on what it built and every writer
 * runs on what it is given. */
#include "adx_model.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adx_err.h"
#include "adx_utf8.h"

/* anndata's write order (write_h5ad: X, obs, var, obsm, varm, layers, obsp,
 * varp, uns, raw), which every writer keeps. */
const ad_ns_info ad_ns_table[AD_NS__COUNT] = {
    [AD_NS_OBS] = {"obs", true, AD_AXIS_OBS, AD_AXIS_NONE},
    [AD_NS_VAR] = {"var", true, AD_AXIS_VAR, AD_AXIS_NONE},
    [AD_NS_OBSM] = {"obsm", false, AD_AXIS_OBS, AD_AXIS_NONE},
    [AD_NS_VARM] = {"varm", false, AD_AXIS_VAR, AD_AXIS_NONE},
    [AD_NS_LAYERS] = {"layers", false, AD_AXIS_OBS, AD_AXIS_VAR},
    [AD_NS_OBSP] = {"obsp", false, AD_AXIS_OBS, AD_AXIS_OBS},
    [AD_NS_VARP] = {"varp", false, AD_AXIS_VAR, AD_AXIS_VAR},
    [AD_NS_UNS] = {"uns", false, AD_AXIS_NONE, AD_AXIS_NONE},
};

int ad_ns_find(const char *name, size_t len)
{
    for (int k = 0; k < AD_NS__COUNT; k++)
        if (strlen(ad_ns_table[k].name) == len && memcmp(name, ad_ns_table[k].name, len) == 0)
            return k;
    return -1;
}

ad_frame *ad_ns_frame(ad_anndata *a, ad_ns ns)
{
    return ns == AD_NS_OBS ? &a->obs : ns == AD_NS_VAR ? &a->var : NULL;
}

ad_dict *ad_ns_dict(ad_anndata *a, ad_ns ns)
{
    switch (ns) {
    case AD_NS_OBSM:
        return &a->obsm;
    case AD_NS_VARM:
        return &a->varm;
    case AD_NS_LAYERS:
        return &a->layers;
    case AD_NS_OBSP:
        return &a->obsp;
    case AD_NS_VARP:
        return &a->varp;
    case AD_NS_UNS:
        return &a->uns;
    default:
        return NULL;
    }
}

const ad_frame *ad_ns_cframe(const ad_anndata *a, ad_ns ns)
{
    return ad_ns_frame((ad_anndata *)a, ns);
}

const ad_dict *ad_ns_cdict(const ad_anndata *a, ad_ns ns)
{
    return ad_ns_dict((ad_anndata *)a, ns);
}

/* ------------------------------------------------------------ the check */

typedef struct chk {
    adx_err *err;
    char ptr[ADX_ERR_PTR_MAX];
    size_t len;
} chk;

static size_t push(chk *c, const char *key)
{
    size_t mark = c->len;
    adx_ptr_append_key(c->ptr, sizeof c->ptr, key);
    c->len = strlen(c->ptr);
    return mark;
}

static void pop(chk *c, size_t mark)
{
    c->len = mark;
    c->ptr[mark] = '\0';
}

/* Rows and columns of a 2-d element; false when it is not 2-d. */
static bool dims2(const ad_elem *e, uint64_t *r, uint64_t *cols)
{
    if (e->kind == AD_K_SPARSE) {
        *r = e->u.sp.shape[0];
        *cols = e->u.sp.shape[1];
        return true;
    }
    if (e->kind == AD_K_ARRAY && e->u.arr.ndim == 2) {
        *r = e->u.arr.shape[0];
        *cols = e->u.arr.shape[1];
        return true;
    }
    if (e->kind == AD_K_OBJECT && e->u.obj.ndim == 2) {
        *r = e->u.obj.shape[0];
        *cols = e->u.obj.shape[1];
        return true;
    }
    return false;
}

static int ndim_of(const ad_elem *e)
{
    switch (e->kind) {
    case AD_K_ARRAY:
        return e->u.arr.ndim;
    case AD_K_OBJECT:
        return e->u.obj.ndim;
    case AD_K_SPARSE:
        return 2;
    case AD_K_DICT:
    case AD_K_NULL:
        return 0;
    default:
        return 1;
    }
}

static int check_frame(chk *c, const ad_frame *f, const char *what);

/* At most cap-1 bytes of a name for a message: whole UTF-8 sequences, "?"
 * for a byte that starts none (a detail must be valid UTF-8). */
static void shown(const char *s, uint64_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (uint64_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_decode((const unsigned char *)s + i, (size_t)(len - i), &cp);
        if (o + (n ? n : 1) + 1 > cap) break;
        if (n)
            memcpy(out + o, s + i, n);
        else
            out[o] = '?';
        o += n ? n : 1;
        i += n ? n : 1;
    }
    out[o] = '\0';
}

/* A frame in obsm/varm/raw.varm under other names than its axis': anndata
 * refuses to read it back (ad_anndata_frames_take_axis_names). */
static int check_frame_names(chk *c, const ad_frame *f, const ad_array *names, const char *which)
{
    if (f->index_default || !names->soff || !f->index.soff || f->index.n != names->n) return 0;
    for (uint64_t i = 0; i < names->n; i++) {
        uint64_t a = f->index.soff[i], la = f->index.soff[i + 1] - a;
        uint64_t b = names->soff[i], lb = names->soff[i + 1] - b;
        if (la == lb && !memcmp(f->index.str + a, names->str + b, la)) continue;
        char got[64], want[64];
        shown(f->index.str + a, la - 1, got, sizeof got);
        shown(names->str + b, lb - 1, want, sizeof want);
        size_t m = push(c, "index");
        adx_err_set(c->err, ADX_E_SHAPE, c->ptr,
                    "index[%" PRIu64 "] is \"%s\" where %s has \"%s\": anndata keeps a "
                    "DataFrame here only under its axis' names, in their order (leave the index "
                    "out to take them)",
                    i, got, which, want);
        pop(c, m);
        return -1;
    }
    return 0;
}

/* An element of obsm/varm/raw.varm: its first dimension is the axis. */
static int check_rows(chk *c, const ad_elem *e, uint64_t want, const char *axis,
                      const ad_array *names, const char *which)
{
    if (ndim_of(e) < 1)
        return adx_err_set(c->err, ADX_E_SHAPE, c->ptr,
                           "has no rows (a %s), expected %" PRIu64 " rows (%s)",
                           e->kind == AD_K_DICT ? "mapping" : "scalar", want, axis);
    uint64_t got = ad_elem_rows(e);
    if (got != want)
        return adx_err_set(c->err, ADX_E_SHAPE, c->ptr,
                           "has %" PRIu64 " rows, expected %" PRIu64 " rows (%s)", got, want, axis);
    if (e->kind == AD_K_FRAME && check_frame_names(c, &e->u.df, names, which) < 0) return -1;
    if (e->kind == AD_K_FRAME) return check_frame(c, &e->u.df, "the frame");
    return 0;
}

/* A frame agrees with itself: the index and every column have n_rows. */
static int check_frame(chk *c, const ad_frame *f, const char *what)
{
    if (f->index.n != f->n_rows && (f->index.n || f->index.str))
        return adx_err_set(c->err, ADX_E_SHAPE, c->ptr,
                           "the index has %" PRIu64 " entries, expected %" PRIu64 " (%s rows)",
                           f->index.n, f->n_rows, what);
    for (size_t i = 0; i < f->ncols; i++) {
        size_t m = push(c, f->names[i]);
        const ad_elem *col = f->cols[i];
        uint64_t got = ad_elem_rows(col);
        if (ndim_of(col) < 1 || got != f->n_rows)
            return adx_err_set(c->err, ADX_E_SHAPE, c->ptr,
                               "column has %" PRIu64 " rows, expected %" PRIu64 " (%s rows)", got,
                               f->n_rows, what);
        if (col->kind == AD_K_FRAME && check_frame(c, &col->u.df, "the column") < 0) return -1;
        pop(c, m);
    }
    return 0;
}

static const char *axis_name(ad_axis x)
{
    return x == AD_AXIS_OBS ? "n_obs" : "n_vars";
}

static uint64_t axis_len(const ad_anndata *a, ad_axis x)
{
    return x == AD_AXIS_OBS ? a->n_obs : a->n_vars;
}

static int check_matrix(chk *c, const ad_elem *e, uint64_t rows, uint64_t cols, const char *rn,
                        const char *cn)
{
    uint64_t r, k;
    if (!dims2(e, &r, &k))
        return adx_err_set(c->err, ADX_E_SHAPE, c->ptr,
                           "has %d dimensions, expected a 2-d matrix of %" PRIu64 " x %" PRIu64
                           " (%s x %s)",
                           ndim_of(e), rows, cols, rn, cn);
    if (r != rows || k != cols)
        return adx_err_set(c->err, ADX_E_SHAPE, c->ptr,
                           "shape is %" PRIu64 " x %" PRIu64 ", expected %" PRIu64 " x %" PRIu64
                           " (%s x %s)",
                           r, k, rows, cols, rn, cn);
    return 0;
}

static int check_ns(chk *c, const ad_anndata *a, ad_ns ns)
{
    const ad_ns_info *in = &ad_ns_table[ns];
    size_t m0 = push(c, in->name);
    if (in->frame) {
        const ad_frame *f = ad_ns_cframe(a, ns);
        uint64_t want = axis_len(a, in->rows);
        if (f->n_rows != want)
            return adx_err_set(c->err, ADX_E_SHAPE, c->ptr,
                               "%s has %" PRIu64 " rows, expected %s = %" PRIu64, in->name,
                               f->n_rows, axis_name(in->rows), want);
        if (check_frame(c, f, in->name) < 0) return -1;
    } else if (in->rows != AD_AXIS_NONE) {
        const ad_dict *d = ad_ns_cdict(a, ns);
        for (size_t i = 0; i < d->n; i++) {
            size_t m = push(c, d->keys[i]);
            int r = in->cols == AD_AXIS_NONE
                        ? check_rows(c, d->vals[i], axis_len(a, in->rows), axis_name(in->rows),
                                     in->rows == AD_AXIS_OBS ? &a->obs.index : &a->var.index,
                                     in->rows == AD_AXIS_OBS ? "obs_names" : "var_names")
                        : check_matrix(c, d->vals[i], axis_len(a, in->rows), axis_len(a, in->cols),
                                       axis_name(in->rows), axis_name(in->cols));
            if (r < 0) return -1;
            pop(c, m);
        }
    }
    pop(c, m0);
    return 0;
}

static int check_raw(chk *c, const ad_anndata *a)
{
    const ad_raw *raw = a->raw;
    size_t m0 = push(c, "raw");
    uint64_t r, k;
    if (raw->X) {
        size_t m = push(c, "X");
        if (!dims2(raw->X, &r, &k))
            return adx_err_set(c->err, ADX_E_SHAPE, c->ptr,
                               "raw.X has %d dimensions, expected a 2-d matrix", ndim_of(raw->X));
        if (r != a->n_obs)
            return adx_err_set(c->err, ADX_E_SHAPE, c->ptr,
                               "raw.X has %" PRIu64 " rows, expected n_obs = %" PRIu64, r,
                               a->n_obs);
        pop(c, m);
        m = push(c, "var");
        if (raw->var.n_rows != k)
            return adx_err_set(c->err, ADX_E_SHAPE, c->ptr,
                               "raw.var has %" PRIu64 " rows, expected %" PRIu64 " (raw.X columns)",
                               raw->var.n_rows, k);
        pop(c, m);
    }
    size_t m = push(c, "var");
    if (check_frame(c, &raw->var, "raw.var") < 0) return -1;
    pop(c, m);
    m = push(c, "varm");
    for (size_t i = 0; i < raw->varm.n; i++) {
        size_t mk = push(c, raw->varm.keys[i]);
        if (check_rows(c, raw->varm.vals[i], raw->var.n_rows, "raw.var rows", &raw->var.index,
                       "raw.var_names") < 0)
            return -1;
        pop(c, mk);
    }
    pop(c, m);
    pop(c, m0);
    return 0;
}

int ad_anndata_assert(const ad_anndata *a, adx_err *err)
{
    adx_err shape;
    adx_err_init(&shape);
    if (ad_anndata_check(a, NULL, &shape) == 0) return 0;
    return adx_err_set(err, ADX_E_INTERNAL, shape.items[0].pointer,
                       "the model disagrees with itself: %s", shape.detail);
}

int ad_anndata_check(const ad_anndata *a, const char *base, adx_err *err)
{
    chk c = {.err = err};
    snprintf(c.ptr, sizeof c.ptr, "%s", base ? base : "");
    c.len = strlen(c.ptr);
    if (a->X) {
        size_t m = push(&c, "X");
        uint64_t r, k;
        if (!dims2(a->X, &r, &k))
            return adx_err_set(err, ADX_E_SHAPE, c.ptr, "X has %d dimensions, expected 2",
                               ndim_of(a->X));
        if (r != a->n_obs || k != a->n_vars)
            return adx_err_set(err, ADX_E_SHAPE, c.ptr,
                               "X is %" PRIu64 " x %" PRIu64 ", expected n_obs x n_vars = %" PRIu64
                               " x %" PRIu64,
                               r, k, a->n_obs, a->n_vars);
        pop(&c, m);
    }
    for (int ns = 0; ns < AD_NS__COUNT; ns++)
        if (check_ns(&c, a, (ad_ns)ns) < 0) return -1;
    if (a->raw && check_raw(&c, a) < 0) return -1;
    return 0;
}
