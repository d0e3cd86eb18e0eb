/* adx_sanitize: object columns and uns values → typed arrays (payload.md
 * "Sanitization"). One pass over the whole model; every element that is
 * changed leaves report entries so nothing is altered silently. */
#include "adx_sanitize.h"
#include "sanitize_test.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest text a non-string cell can produce: ad_fmt_pyfloat needs 32 bytes,
 * an int64 at most 20 digits and a sign. */
#define CELL_TEXT_MAX 32

static const adx_limits *limits_or_default(const adx_limits *lim, adx_limits *tmp)
{
    if (lim) return lim;
    adx_limits_default(tmp);
    return tmp;
}

/* The decoder builds objects; a malformed one is a bug there, and reading it
 * would run past its buffers, so check the invariants before touching data. */
static int object_check(const ad_object *o, const char *ptr, adx_err *err)
{
    uint64_t n;
    if (o->ndim < 0 || o->ndim > AD_MAX_NDIM || ad_shape_product(o->ndim, o->shape, &n) < 0 ||
        n != o->n)
        return adx_err_set(err, ADX_E_INTERNAL, ptr,
                           "object array has a shape that does not match its %" PRIu64 " cells",
                           o->n);
    if (o->n && (!o->kind || !o->num || !o->soff || !o->str))
        return adx_err_set(err, ADX_E_INTERNAL, ptr, "object array has no cell buffers");
    for (uint64_t i = 0; i < o->n; i++) {
        if (o->kind[i] > AD_CELL_UINT)
            return adx_err_set(err, ADX_E_INTERNAL, ptr, "object cell %" PRIu64 " has kind %u", i,
                               (unsigned)o->kind[i]);
        if (o->soff[i + 1] <= o->soff[i])
            return adx_err_set(err, ADX_E_INTERNAL, ptr,
                               "object cell %" PRIu64 " has a malformed text offset", i);
    }
    return 0;
}

/* The strings built so far are charged to the request's budget in steps
 * of this many bytes (one atomic operation per step, not per cell). */
#define CHARGE_STEP (64 * 1024)

/* Core conversion shared by the public entry points; `ptr` names the element
 * in errors and `lim` bounds what the output may take. The output is
 * charged to ctl's budget as it is built (each cell's text, its NUL and its
 * offset, as the decoder counts strings), an error at `ptr` naming
 * max_request_memory; on failure the charge is given back. */
static int object_convert(const ad_object *o, ad_array *out, san_counts *c, const char *ptr,
                          const adx_limits *lim, const adx_ctl *ctl, adx_err *err)
{
    memset(out, 0, sizeof *out);
    memset(c, 0, sizeof *c);
    if (object_check(o, ptr, err) < 0) return -1;
    if (o->n > lim->max_elements)
        return adx_err_set(err, ADX_E_LIMIT, ptr,
                           "%" PRIu64 " values exceed the limit of %" PRIu64 " elements per array",
                           o->n, lim->max_elements);
    /* Upper bound of the output before building it: the text blob is reused
     * as is and every other cell formats to at most CELL_TEXT_MAX bytes. */
    uint64_t bound;
    if (__builtin_mul_overflow(o->n, (uint64_t)(CELL_TEXT_MAX + 8), &bound) ||
        __builtin_add_overflow(bound, o->n ? o->soff[o->n] : 0, &bound) ||
        bound > lim->max_total_bytes)
        return adx_err_set(err, ADX_E_LIMIT, ptr,
                           "converting %" PRIu64
                           " values to strings would exceed the model size limit of %" PRIu64
                           " bytes",
                           o->n, lim->max_total_bytes);

    ad_strbuild b = {0};
    char tmp[CELL_TEXT_MAX + 8];
    uint64_t charged = 0, pending = 8; /* the offsets' extra entry */
    for (uint64_t i = 0; i < o->n; i++) {
        const char *s = tmp;
        size_t len = 0;
        switch ((ad_cell)o->kind[i]) {
        case AD_CELL_NULL:
            tmp[0] = '\0';
            c->nulls++;
            break;
        case AD_CELL_BOOL:
            s = ad_fmt_pybool(o->num[i].i != 0);
            len = strlen(s);
            c->mixed++;
            break;
        case AD_CELL_INT:
            len = (size_t)snprintf(tmp, sizeof tmp, "%" PRId64, o->num[i].i);
            c->mixed++;
            break;
        case AD_CELL_UINT:
            len = (size_t)snprintf(tmp, sizeof tmp, "%" PRIu64, o->num[i].u);
            c->mixed++;
            break;
        case AD_CELL_REAL:
            ad_fmt_pyfloat(o->num[i].r, tmp);
            len = strlen(tmp);
            c->mixed++;
            break;
        case AD_CELL_JSON: /* the compact JSON text is the value */
        case AD_CELL_STR:
            if (o->kind[i] == AD_CELL_JSON) c->nested++;
            s = ad_object_text(o, i);
            len = (size_t)(o->soff[i + 1] - o->soff[i] - 1);
            if (len > lim->max_string_bytes) {
                adx_err_set(err, ADX_E_LIMIT, ptr,
                            "value %" PRIu64 " is %zu bytes, over the limit of %" PRIu64
                            " bytes per string",
                            i, len, lim->max_string_bytes);
                goto fail;
            }
            break;
        }
        pending += len + 1 + 8;
        if (pending >= CHARGE_STEP || len >= CHARGE_STEP) {
            if (adx_ctl_charge(ctl, pending, ptr, err) < 0) goto fail;
            charged += pending;
            pending = 0;
        }
        if (ad_sb_push(&b, s, len) < 0) goto nomem;
    }
    if (adx_ctl_charge(ctl, pending, ptr, err) < 0) goto fail;
    charged += pending;
    if (ad_sb_finish(&b, out, o->ndim, o->shape) < 0) goto nomem;
    return 0;
nomem:
    adx_err_set(err, ADX_E_NOMEM, ptr, "out of memory converting values to strings");
fail:
    ad_sb_free(&b); /* nothing left to free after ad_sb_finish */
    adx_ctl_release(ctl, charged);
    return -1;
}

int san_object_convert(const ad_object *o, ad_array *out, san_counts *counts, adx_err *err)
{
    adx_limits tmp;
    return object_convert(o, out, counts, "", limits_or_default(NULL, &tmp), NULL, err);
}

int san_object_to_strings(const ad_object *o, ad_array *out, const char **action, uint64_t *count,
                          adx_err *err)
{
    san_counts c;
    *action = NULL;
    *count = 0;
    if (san_object_convert(o, out, &c, err) < 0) return -1;
    if (c.nested) {
        *action = REP_NESTED_TO_JSON;
        *count = c.nested;
    } else if (c.mixed) {
        *action = REP_MIXED_TO_STRING;
        *count = c.mixed;
    } else if (c.nulls) {
        *action = REP_NULL_TO_EMPTY;
        *count = c.nulls;
    }
    return 0;
}

/* ------------------------------------------------------------ the walk */

typedef struct walk {
    const adx_limits *lim;
    const adx_ctl *ctl;
    adx_report *rep;
    adx_err *err;
    adx_ptr ptr;
    uint32_t depth;
} walk;

static int report(walk *w, const char *action, uint64_t count)
{
    if (rep_add(w->rep, adx_ptr_str(&w->ptr), action, count, NULL) < 0)
        return adx_err_set(w->err, ADX_E_NOMEM, adx_ptr_str(&w->ptr),
                           "out of memory recording the report");
    return 0;
}

static int san_elem(walk *w, ad_elem *e);

static int san_object_elem(walk *w, ad_elem *e)
{
    ad_array out;
    san_counts c;
    if (object_convert(&e->u.obj, &out, &c, adx_ptr_str(&w->ptr), w->lim, w->ctl, w->err) < 0)
        return -1;
    ad_object_free(&e->u.obj);
    e->kind = AD_K_ARRAY;
    e->u.arr = out;
    if (c.nulls && report(w, REP_NULL_TO_EMPTY, c.nulls) < 0) return -1;
    if (c.mixed && report(w, REP_MIXED_TO_STRING, c.mixed) < 0) return -1;
    if (c.nested && report(w, REP_NESTED_TO_JSON, c.nested) < 0) return -1;
    return 0;
}

static int enter(walk *w)
{
    /* The decoder enforces max_depth; this only bounds our own recursion in
     * case a model was built some other way, with headroom for the frames
     * and dicts a level of uns may add. */
    if (++w->depth > (uint64_t)w->lim->max_depth + 8)
        return adx_err_set(w->err, ADX_E_LIMIT, adx_ptr_str(&w->ptr),
                           "nesting deeper than the limit of %" PRIu32 " levels",
                           w->lim->max_depth);
    return 0;
}

static int san_frame(walk *w, ad_frame *f)
{
    if (enter(w) < 0) return -1;
    for (size_t i = 0; i < f->ncols; i++) {
        size_t mark = adx_ptr_key(&w->ptr, f->names[i]);
        int r = 0;
        if (!f->cols[i] || f->cols[i]->kind == AD_K_NULL)
            r = adx_err_set(w->err, ADX_E_INTERNAL, adx_ptr_str(&w->ptr),
                            "a DataFrame column is null rather than an array");
        else
            r = san_elem(w, f->cols[i]);
        adx_ptr_pop(&w->ptr, mark);
        if (r < 0) return -1;
    }
    w->depth--;
    return 0;
}

typedef struct dict_walk {
    walk *w;
    int r;
} dict_walk;

/* One entry of san_dict: a null leaves (reported), anything else is
 * sanitized; after a failure the rest stay as they are. */
static bool san_entry(const char *key, ad_elem *v, void *ud)
{
    dict_walk *c = ud;
    if (c->r < 0) return true;
    size_t mark = adx_ptr_key(&c->w->ptr, key);
    bool keep = true;
    if (!v || v->kind == AD_K_NULL)
        keep = (c->r = report(c->w, REP_DROPPED_NULL, 1)) < 0;
    else
        c->r = san_elem(c->w, v);
    adx_ptr_pop(&c->w->ptr, mark);
    return keep;
}

static int san_dict(walk *w, ad_dict *d)
{
    if (enter(w) < 0) return -1;
    dict_walk c = {w, 0};
    ad_dict_retain(d, san_entry, &c); /* nulls leave in one pass */
    if (c.r < 0) return -1;
    w->depth--;
    return 0;
}

static int san_elem(walk *w, ad_elem *e)
{
    if (adx_ctl_canceled(w->ctl))
        return adx_err_set(w->err, ADX_E_CANCELED, adx_ptr_str(&w->ptr), "the job was canceled");
    switch (e->kind) {
    case AD_K_OBJECT:
        return san_object_elem(w, e);
    case AD_K_FRAME:
        return san_frame(w, &e->u.df);
    case AD_K_DICT:
        return san_dict(w, &e->u.dict);
    default:
        return 0; /* typed values are written as they are */
    }
}

/* X and raw.X are never null in a well-formed model, but a null there must
 * not reach a writer either: it means "no matrix". */
static int san_matrix(walk *w, ad_elem **x, const char *key)
{
    if (!*x) return 0;
    size_t mark = adx_ptr_key(&w->ptr, key);
    int r = 0;
    if ((*x)->kind == AD_K_NULL) {
        r = report(w, REP_DROPPED_NULL, 1);
        if (r == 0) {
            ad_elem_free(*x);
            *x = NULL;
        }
    } else {
        r = san_elem(w, *x);
    }
    adx_ptr_pop(&w->ptr, mark);
    return r;
}

static int san_named_frame(walk *w, ad_frame *f, const char *key)
{
    size_t mark = adx_ptr_key(&w->ptr, key);
    int r = san_frame(w, f);
    adx_ptr_pop(&w->ptr, mark);
    return r;
}

static int san_named_dict(walk *w, ad_dict *d, const char *key)
{
    size_t mark = adx_ptr_key(&w->ptr, key);
    int r = san_dict(w, d);
    adx_ptr_pop(&w->ptr, mark);
    return r;
}

int san_anndata(ad_anndata *a, const adx_limits *lim, adx_report *rep, adx_err *err)
{
    return san_anndata_ctl(a, lim, NULL, rep, err);
}

int san_anndata_ctl(ad_anndata *a, const adx_limits *lim, const adx_ctl *ctl, adx_report *rep,
                    adx_err *err)
{
    adx_limits tmp;
    walk w = {.lim = limits_or_default(lim, &tmp), .ctl = ctl, .rep = rep, .err = err};
    adx_ptr_init(&w.ptr, NULL);
    if (san_matrix(&w, &a->X, "X") < 0) return -1;
    for (int ns = 0; ns < AD_NS__COUNT; ns++) {
        const char *name = ad_ns_table[ns].name;
        if (ad_ns_table[ns].frame ? san_named_frame(&w, ad_ns_frame(a, (ad_ns)ns), name) < 0
                                  : san_named_dict(&w, ad_ns_dict(a, (ad_ns)ns), name) < 0)
            return -1;
    }
    if (a->raw) {
        size_t mark = adx_ptr_key(&w.ptr, "raw");
        int r = san_matrix(&w, &a->raw->X, "X");
        if (r == 0) r = san_named_frame(&w, &a->raw->var, "var");
        if (r == 0) r = san_named_dict(&w, &a->raw->varm, "varm");
        adx_ptr_pop(&w.ptr, mark);
        if (r < 0) return -1;
    }
    return 0;
}
