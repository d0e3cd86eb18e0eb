/* Builders for hand-made models in the sanitize and filter tests. */
#ifndef SAN_TEST_HELPERS_H
#define SAN_TEST_HELPERS_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "adx_model.h"
#include "adx_report.h"

/* One cell of an object array, as a decoder would produce it. */
typedef struct tcell {
    ad_cell kind;
    int64_t i;
    double r;
    const char *text;
    uint64_t u;
} tcell;

#define C_NULL                                                                                     \
    {                                                                                              \
        AD_CELL_NULL, 0, 0, NULL, 0                                                                \
    }
#define C_BOOL(b)                                                                                  \
    {                                                                                              \
        AD_CELL_BOOL, (b), 0, NULL, 0                                                              \
    }
#define C_INT(v)                                                                                   \
    {                                                                                              \
        AD_CELL_INT, (v), 0, NULL, 0                                                               \
    }
#define C_UINT(v)                                                                                  \
    {                                                                                              \
        AD_CELL_UINT, 0, 0, NULL, (v)                                                              \
    }
#define C_REAL(v)                                                                                  \
    {                                                                                              \
        AD_CELL_REAL, 0, (v), NULL, 0                                                              \
    }
#define C_STR(s)                                                                                   \
    {                                                                                              \
        AD_CELL_STR, 0, 0, (s), 0                                                                  \
    }
#define C_JSON(s)                                                                                  \
    {                                                                                              \
        AD_CELL_JSON, 0, 0, (s), 0                                                                 \
    }

static inline ad_elem *mk_object(int ndim, const uint64_t *shape, const tcell *cells, uint64_t n)
{
    ad_elem *e = ad_elem_new(AD_K_OBJECT);
    ck_assert_ptr_nonnull(e);
    ad_object *o = &e->u.obj;
    o->ndim = ndim;
    for (int k = 0; k < ndim; k++)
        o->shape[k] = shape[k];
    o->n = n;
    o->kind = calloc(n ? n : 1, 1);
    o->num = calloc(n ? n : 1, sizeof(ad_num));
    o->soff = calloc(n + 1, sizeof(uint64_t));
    size_t total = 1;
    for (uint64_t i = 0; i < n; i++)
        total += (cells[i].text ? strlen(cells[i].text) : 0) + 1;
    o->str = calloc(total, 1);
    ck_assert(o->kind && o->num && o->soff && o->str);
    uint64_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        o->kind[i] = (uint8_t)cells[i].kind;
        if (cells[i].kind == AD_CELL_REAL)
            o->num[i].r = cells[i].r;
        else if (cells[i].kind == AD_CELL_UINT)
            o->num[i].u = cells[i].u;
        else
            o->num[i].i = cells[i].i;
        size_t len = cells[i].text ? strlen(cells[i].text) : 0;
        if (len) memcpy(o->str + off, cells[i].text, len);
        off += len + 1;
        o->soff[i + 1] = off;
    }
    return e;
}

static inline ad_elem *mk_col(const tcell *cells, uint64_t n)
{
    uint64_t shape[1] = {n};
    return mk_object(1, shape, cells, n);
}

static inline ad_elem *mk_strs(const char *const *s, uint64_t n)
{
    ad_array a;
    ck_assert_int_eq(ad_array_from_cstrs(&a, s, n), 0);
    return ad_elem_from_array(&a);
}

static inline ad_elem *mk_f64(const double *v, uint64_t n)
{
    ad_array a;
    uint64_t shape[1] = {n};
    ck_assert_int_eq(ad_array_init(&a, AD_F64, 1, shape), 0);
    if (n) memcpy(a.data, v, n * sizeof(double));
    return ad_elem_from_array(&a);
}

static inline ad_elem *mk_dict(void)
{
    ad_elem *e = ad_elem_new(AD_K_DICT);
    ck_assert_ptr_nonnull(e);
    return e;
}

static inline void mk_frame(ad_frame *f, uint64_t n_rows)
{
    memset(f, 0, sizeof *f);
    ck_assert_int_eq(ad_frame_default_index(f, n_rows), 0);
}

static inline ad_elem *mk_frame_elem(uint64_t n_rows)
{
    ad_elem *e = ad_elem_new(AD_K_FRAME);
    ck_assert_ptr_nonnull(e);
    mk_frame(&e->u.df, n_rows);
    return e;
}

static inline ad_elem *frame_col(const ad_frame *f, const char *name)
{
    for (size_t i = 0; i < f->ncols; i++)
        if (strcmp(f->names[i], name) == 0) return f->cols[i];
    return NULL;
}

/* Index of the report entry with this path and action, or -1. */
static inline long rep_find(const adx_report *r, const char *path, const char *action)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->e[i].path, path) == 0 && strcmp(r->e[i].action, action) == 0) return (long)i;
    return -1;
}

static inline void assert_strs(const ad_array *a, const char *const *want, uint64_t n)
{
    ck_assert_int_eq(a->dtype, AD_STR);
    ck_assert_uint_eq(a->n, n);
    for (uint64_t i = 0; i < n; i++) {
        ck_assert_str_eq(ad_str_at(a, i), want[i]);
        ck_assert_uint_eq(ad_str_len(a, i), strlen(want[i]));
    }
}

#endif
