/* Member order and names follow anndata 0.8's write_csvs (obs, var, obsm,
 * varm, X, then uns/<key>.csv) with skip_data=False. Deliberate departures,
 * each documented in include/adx_csvb.h: uns entries always go under uns/
 * (write_csvs lets an uns key such as "obs" overwrite obs.csv), nested dicts
 * are reported instead of written as a Python repr, CR inside a field is
 * quoted, and obsm DataFrames are written column by column. */
#include "adx_csvb.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csvfmt.h"
#include "zipw.h"
#include "zip_dl.h"

/* ---- sparse rows, densified one row at a time ---- */

typedef struct sp_rows {
    const ad_sparse *sp;
    uint64_t nrows, ncols;
    ad_array row; /* 1-d, data dtype, ncols */
    uint64_t cur; /* row held in `row`, UINT64_MAX = none */
    /* csc: positions of the stored values grouped by row */
    uint64_t *rptr, *rpos, *rcol;
    const adx_ctl *ctl; /* the request's budget holds `charged` for the index */
    uint64_t charged;
} sp_rows;

static void sp_rows_free(sp_rows *r)
{
    if (!r) return;
    adx_ctl_release(r->ctl, r->charged);
    ad_array_free(&r->row);
    free(r->rptr);
    free(r->rpos);
    free(r->rcol);
    free(r);
}

static int sp_index_ok(const ad_sparse *sp, uint64_t major)
{
    uint64_t nnz = sp->data.n;
    if (sp->indptr.n != major + 1 || sp->indices.n != nnz) return 0;
    uint64_t prev = 0;
    for (uint64_t k = 0; k <= major; k++) {
        int64_t v = ad_array_get_i64(&sp->indptr, k);
        if (v < 0 || (uint64_t)v < prev || (uint64_t)v > nnz) return 0;
        prev = (uint64_t)v;
    }
    return 1;
}

static sp_rows *sp_rows_new(const ad_sparse *sp, const adx_ctl *ctl, adx_err *err, const char *ptr)
{
    sp_rows *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->ctl = ctl;
    r->sp = sp;
    r->nrows = sp->shape[0];
    r->ncols = sp->shape[1];
    r->cur = UINT64_MAX;
    uint64_t major = sp->csc ? r->ncols : r->nrows;
    if (!sp_index_ok(sp, major) || sp->data.dtype == AD_STR) {
        sp_rows_free(r);
        adx_err_set(err, ADX_E_INTERNAL, ptr, "sparse matrix structure is inconsistent");
        return NULL;
    }
    if (ad_array_init(&r->row, sp->data.dtype, 1, &r->ncols) < 0) goto oom;
    if (sp->csc) {
        uint64_t nnz = sp->data.n, np1;
        if (__builtin_add_overflow(r->nrows, 1, &np1) || np1 > SIZE_MAX / 8 || nnz > SIZE_MAX / 8)
            goto oom;
        /* The by-row index of a csc matrix: three uint64 per stored value
         * and row, held while the bundle is written. */
        uint64_t need = (np1 * 2 + nnz * 2) * 8;
        if (adx_ctl_charge(ctl, need, ptr, err) < 0) {
            sp_rows_free(r);
            return NULL;
        }
        r->charged = need;
        r->rptr = calloc(np1, 8);
        r->rpos = malloc(nnz ? nnz * 8 : 1);
        r->rcol = malloc(nnz ? nnz * 8 : 1);
        if (!r->rptr || !r->rpos || !r->rcol) goto oom;
        for (uint64_t p = 0; p < nnz; p++) {
            int64_t i = ad_array_get_i64(&sp->indices, p);
            if (i < 0 || (uint64_t)i >= r->nrows) {
                sp_rows_free(r);
                adx_err_set(err, ADX_E_INTERNAL, ptr, "sparse index out of range");
                return NULL;
            }
            r->rptr[i + 1]++;
        }
        for (uint64_t i = 0; i < r->nrows; i++)
            r->rptr[i + 1] += r->rptr[i];
        uint64_t *fill = calloc(np1, 8);
        if (!fill) goto oom;
        for (uint64_t j = 0; j < r->ncols; j++) {
            uint64_t a = (uint64_t)ad_array_get_i64(&sp->indptr, j);
            uint64_t b = (uint64_t)ad_array_get_i64(&sp->indptr, j + 1);
            for (uint64_t p = a; p < b; p++) {
                uint64_t i = (uint64_t)ad_array_get_i64(&sp->indices, p);
                uint64_t at = r->rptr[i] + fill[i]++;
                r->rpos[at] = p;
                r->rcol[at] = j;
            }
        }
        free(fill);
    }
    return r;
oom:
    sp_rows_free(r);
    adx_err_set(err, ADX_E_NOMEM, ptr, "out of memory densifying a sparse matrix");
    return NULL;
}

/* row[j] += data[p], as scipy's toarray() sums duplicate entries. */
static void sp_add(ad_array *row, uint64_t j, const ad_array *data, uint64_t p)
{
#define ADD(T) ((T *)row->data)[j] = (T)(((T *)row->data)[j] + ((const T *)data->data)[p])
    switch (row->dtype) {
    case AD_BOOL:
        ((uint8_t *)row->data)[j] |= ((const uint8_t *)data->data)[p];
        break;
    case AD_I8:
        ADD(int8_t);
        break;
    case AD_I16:
        ADD(int16_t);
        break;
    case AD_I32:
        ADD(int32_t);
        break;
    case AD_I64:
        ADD(int64_t);
        break;
    case AD_U8:
        ADD(uint8_t);
        break;
    case AD_U16:
        ADD(uint16_t);
        break;
    case AD_U32:
        ADD(uint32_t);
        break;
    case AD_U64:
        ADD(uint64_t);
        break;
    case AD_F32:
        ADD(float);
        break;
    case AD_F64:
        ADD(double);
        break;
    default:
        break;
    }
#undef ADD
}

static int sp_rows_load(sp_rows *r, uint64_t i)
{
    if (r->cur == i) return 0;
    size_t nb;
    if (ad_bytes(r->row.dtype, r->ncols, &nb) < 0) return -1;
    memset(r->row.data, 0, nb);
    const ad_sparse *sp = r->sp;
    if (!sp->csc) {
        uint64_t a = (uint64_t)ad_array_get_i64(&sp->indptr, i);
        uint64_t b = (uint64_t)ad_array_get_i64(&sp->indptr, i + 1);
        for (uint64_t p = a; p < b; p++) {
            int64_t j = ad_array_get_i64(&sp->indices, p);
            if (j < 0 || (uint64_t)j >= r->ncols) return -1;
            sp_add(&r->row, (uint64_t)j, &sp->data, p);
        }
    } else {
        for (uint64_t k = r->rptr[i]; k < r->rptr[i + 1]; k++)
            sp_add(&r->row, r->rcol[k], &sp->data, r->rpos[k]);
    }
    r->cur = i;
    return 0;
}

/* ---- tables: a stream of csv records ----
 *
 * A table is a list of column groups (a 1-d column, or all columns of a
 * matrix) and is emitted one field at a time, so neither a row nor a
 * per-column structure of a wide matrix is ever held: memory stays
 * proportional to the number of elements, not cells or columns. */

enum { CC_ARR, CC_MAT, CC_SP, CC_CAT, CC_NL };

typedef struct ccol {
    int kind;
    const ad_array *a; /* CC_ARR, CC_MAT */
    uint64_t width;    /* fields contributed: 1, or a matrix's columns */
    sp_rows *sr;       /* CC_SP (owned by the table's list) */
    const ad_categorical *cat;
    const ad_nullable *nl;
    char *name;    /* header text */
    bool numbered; /* header of field j is name + (j + 1), as AxisArrays.to_df */
} ccol;

typedef struct table {
    char sep;
    bool header, index;
    const ad_array *idx;
    char *idx_name;
    uint64_t nrows;
    ccol *cols;
    size_t ncols, cap;
    sp_rows **sps;
    size_t nsps;
    uint64_t nf; /* fields per record */
    /* streaming state: record `row` (-1 = header), field k = field j of
     * group g; `piece` holds the text not yet handed to libzip */
    int64_t row;
    size_t g;
    uint64_t j, k;
    csvb_buf piece, hname;
    size_t ppos;
} table;

static void table_free(void *p)
{
    table *t = p;
    if (!t) return;
    for (size_t i = 0; i < t->ncols; i++)
        free(t->cols[i].name);
    free(t->cols);
    for (size_t i = 0; i < t->nsps; i++)
        sp_rows_free(t->sps[i]);
    free(t->sps);
    free(t->idx_name);
    csvb_buf_free(&t->piece);
    csvb_buf_free(&t->hname);
    free(t);
}

static table *table_new(char sep, bool header, bool index, uint64_t nrows)
{
    table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->sep = sep;
    t->header = header;
    t->index = index;
    t->nrows = nrows;
    t->row = header ? -1 : 0;
    return t;
}

/* Append a column group; `name` is copied. */
static int table_add(table *t, ccol c, const char *name, bool numbered)
{
    if (t->ncols == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        ccol *nc = realloc(t->cols, cap * sizeof *nc);
        if (!nc) return -1;
        t->cols = nc;
        t->cap = cap;
    }
    c.name = strdup(name ? name : "");
    if (!c.name) return -1;
    c.numbered = numbered;
    t->cols[t->ncols++] = c;
    return 0;
}

static int table_own_sp(table *t, sp_rows *r)
{
    sp_rows **n = realloc(t->sps, (t->nsps + 1) * sizeof *n);
    if (!n) {
        sp_rows_free(r);
        return -1;
    }
    t->sps = n;
    t->sps[t->nsps++] = r;
    return 0;
}

/* Text of element k of a (numeric or string), numbers formatted into num. */
static void cell_of(const ad_array *a, uint64_t k, char *num, const char **f, size_t *fl)
{
    if (a->dtype == AD_STR) {
        *f = ad_str_at(a, k);
        *fl = ad_str_len(a, k);
    } else {
        *fl = csvb_fmt_num(a, k, num);
        *f = num;
    }
}

static int table_cell(const ccol *cc, uint64_t i, uint64_t j, char *num, const char **f, size_t *fl)
{
    *f = "";
    *fl = 0;
    switch (cc->kind) {
    case CC_ARR:
        cell_of(cc->a, i, num, f, fl);
        break;
    case CC_MAT:
        cell_of(cc->a, i * cc->width + j, num, f, fl);
        break;
    case CC_SP:
        if (sp_rows_load(cc->sr, i) < 0) return -1;
        cell_of(&cc->sr->row, j, num, f, fl);
        break;
    case CC_CAT: {
        int64_t code = ad_array_get_i64(&cc->cat->codes, i);
        if (code >= 0 && (uint64_t)code < cc->cat->categories.n)
            cell_of(&cc->cat->categories, (uint64_t)code, num, f, fl);
        break;
    }
    case CC_NL:
        if (!((const uint8_t *)cc->nl->mask.data)[i]) cell_of(&cc->nl->values, i, num, f, fl);
        break;
    }
    return 0;
}

/* Put the next piece of text into t->piece: a field (with its leading
 * separator) or a record's end. 1 when the table is complete. */
static int next_piece(table *t, adx_err *err)
{
    t->piece.len = 0;
    t->ppos = 0;
    if (t->row >= 0 && (uint64_t)t->row >= t->nrows) return 1;
    if (t->k == t->nf) {
        t->row++;
        t->k = 0;
        t->g = 0;
        t->j = 0;
        return csvb_buf_put(&t->piece, "\n", 1) < 0 ? -1 : 0;
    }
    if (t->k > 0 && csvb_buf_put(&t->piece, &t->sep, 1) < 0) goto oom;
    char num[32];
    const char *f = "";
    size_t fl = 0;
    if (t->index && t->k == 0) {
        if (t->row < 0) {
            f = t->idx_name ? t->idx_name : "";
            fl = strlen(f);
        } else {
            f = ad_str_at(t->idx, (uint64_t)t->row);
            fl = ad_str_len(t->idx, (uint64_t)t->row);
        }
    } else {
        while (t->cols[t->g].width == 0)
            t->g++; /* nf counts fields, so a field remains in a later group */
        const ccol *cc = &t->cols[t->g];
        if (t->row < 0) {
            f = cc->name;
            fl = strlen(f);
            if (cc->numbered) {
                char d[24];
                int n = snprintf(d, sizeof d, "%llu", (unsigned long long)t->j + 1);
                t->hname.len = 0;
                if (csvb_buf_put(&t->hname, f, fl) < 0 || csvb_buf_put(&t->hname, d, (size_t)n) < 0)
                    goto oom;
                f = t->hname.s;
                fl = t->hname.len;
            }
        } else if (table_cell(cc, (uint64_t)t->row, t->j, num, &f, &fl) < 0) {
            return adx_err_set(err, ADX_E_INTERNAL, NULL, "sparse index out of range");
        }
        if (++t->j >= cc->width) {
            t->g++;
            t->j = 0;
        }
    }
    t->k++;
    /* A record of one empty field is written "" (Python's csv module does,
     * so the line is not read back as no record). */
    int rc = t->nf == 1 && fl == 0 ? csvb_buf_put(&t->piece, "\"\"", 2)
                                   : csvb_put_field(&t->piece, f, fl, t->sep);
    if (rc == 0) return 0;
oom:
    return adx_err_set(err, ADX_E_NOMEM, NULL, "out of memory writing csv");
}

static int64_t table_read(void *p, uint8_t *buf, uint64_t cap, adx_err *err)
{
    table *t = p;
    uint64_t o = 0;
    while (o < cap) {
        if (t->ppos == t->piece.len) {
            int rc = next_piece(t, err);
            if (rc < 0) return -1;
            if (rc > 0) break;
        }
        size_t n = t->piece.len - t->ppos;
        if (n > cap - o) n = (size_t)(cap - o);
        memcpy(buf + o, t->piece.s + t->ppos, n);
        t->ppos += n;
        o += n;
    }
    return (int64_t)o;
}

/* ---- writer ---- */

typedef struct csv_ctx {
    zw z;
    char sep;
    const adx_limits *lim;
    adx_report *rep;
    adx_err *err;
} csv_ctx;

static void ptr_of(char *out, size_t cap, const char *ns, const char *key)
{
    snprintf(out, cap, "/%s", ns);
    if (key) adx_ptr_append_key(out, cap, key);
}

static int not_written(csv_ctx *c, const char *ns, const char *key, const char *why)
{
    char ptr[ADX_ERR_PTR_MAX];
    ptr_of(ptr, sizeof ptr, ns, key);
    /* A lost report entry is not worth failing the export for, but it must
     * not pass silently either: an entry that cannot be stored is OOM. */
    if (c->rep && rep_add(c->rep, ptr, REP_NOT_WRITTEN, 1, why) < 0)
        return adx_err_set(c->err, ADX_E_NOMEM, ptr, "out of memory recording the report");
    return 0;
}

static int oom(csv_ctx *c)
{
    return adx_err_set(c->err, ADX_E_NOMEM, NULL, "out of memory writing the csv bundle");
}

/* Whether a sparse matrix may be densified; reports it otherwise. */
static int sp_fits(csv_ctx *c, const ad_sparse *sp, const char *ns, const char *key, bool *ok)
{
    uint64_t cells;
    *ok = !__builtin_mul_overflow(sp->shape[0], sp->shape[1], &cells) &&
          cells <= c->lim->csv_max_cells;
    if (*ok) return 0;
    char why[160];
    snprintf(why, sizeof why, "sparse %llux%llu matrix exceeds csv_max_cells = %llu when densified",
             (unsigned long long)sp->shape[0], (unsigned long long)sp->shape[1],
             (unsigned long long)c->lim->csv_max_cells);
    return not_written(c, ns, key, why);
}

/* A DataFrame column as a table column. */
static int column_of(const ad_elem *col, ccol *cc)
{
    memset(cc, 0, sizeof *cc);
    cc->width = 1;
    if (col->kind == AD_K_ARRAY && col->u.arr.ndim == 1) {
        cc->kind = CC_ARR;
        cc->a = &col->u.arr;
    } else if (col->kind == AD_K_CATEGORICAL) {
        cc->kind = CC_CAT;
        cc->cat = &col->u.cat;
    } else if (col->kind == AD_K_NULLABLE_INT || col->kind == AD_K_NULLABLE_BOOL) {
        cc->kind = CC_NL;
        cc->nl = &col->u.nl;
    } else {
        return -1;
    }
    return 0;
}

/* Add the columns of a matrix-like element. `prefix` non-NULL names them
 * prefix1, prefix2, … (anndata's AxisArrays.to_df). Returns 1 when the
 * element was added, 0 when it was reported instead, -1 on error. */
static int add_matrix_cols(csv_ctx *c, table *t, const ad_elem *e, const char *prefix,
                           const char *ns, const char *key, bool as_uns)
{
    char ptr[ADX_ERR_PTR_MAX];
    ptr_of(ptr, sizeof ptr, ns, key);
    bool numbered = prefix != NULL;
    switch (e->kind) {
    case AD_K_ARRAY: {
        const ad_array *a = &e->u.arr;
        if (a->ndim <= 1) {
            ccol cc = {.kind = CC_ARR, .a = a, .width = 1};
            return table_add(t, cc, prefix, numbered) < 0 ? oom(c) : 1;
        }
        if (a->ndim == 2) {
            ccol cc = {.kind = CC_MAT, .a = a, .width = a->shape[1]};
            return table_add(t, cc, prefix, numbered) < 0 ? oom(c) : 1;
        }
        int rc = not_written(c, ns, key, "arrays of more than 2 dimensions do not fit a csv table");
        return rc < 0 ? -1 : 0;
    }
    case AD_K_SPARSE: {
        if (as_uns) {
            int rc = not_written(c, ns, key, "write_csvs omits sparse uns entries");
            return rc < 0 ? -1 : 0;
        }
        bool ok;
        if (sp_fits(c, &e->u.sp, ns, key, &ok) < 0) return -1;
        if (!ok) return 0;
        sp_rows *r = sp_rows_new(&e->u.sp, c->z.ctl, c->err, ptr);
        if (!r) return -1;
        if (table_own_sp(t, r) < 0) return oom(c);
        ccol cc = {.kind = CC_SP, .sr = r, .width = r->ncols};
        return table_add(t, cc, prefix, numbered) < 0 ? oom(c) : 1;
    }
    case AD_K_CATEGORICAL: {
        ccol cc = {.kind = CC_CAT, .cat = &e->u.cat, .width = 1};
        return table_add(t, cc, prefix, numbered) < 0 ? oom(c) : 1;
    }
    case AD_K_NULLABLE_INT:
    case AD_K_NULLABLE_BOOL: {
        ccol cc = {.kind = CC_NL, .nl = &e->u.nl, .width = 1};
        return table_add(t, cc, prefix, numbered) < 0 ? oom(c) : 1;
    }
    case AD_K_FRAME: {
        const ad_frame *f = &e->u.df;
        for (size_t j = 0; j < f->ncols; j++) {
            ccol cc;
            if (column_of(f->cols[j], &cc) < 0)
                return adx_err_set(c->err, ADX_E_INTERNAL, ptr,
                                   "DataFrame column %s is not a 1-d column", f->names[j]);
            /* named by position: <key>1, <key>2, … like the matrix columns */
            char name[ADX_ERR_PTR_MAX + 24];
            snprintf(name, sizeof name, "%s%llu", prefix ? prefix : "", (unsigned long long)j + 1);
            if (table_add(t, cc, prefix ? name : "", false) < 0) return oom(c);
        }
        return 1;
    }
    case AD_K_RECARRAY: {
        /* pd.DataFrame(recarray): a column per field, in field order */
        const ad_recarray *r = &e->u.rec;
        for (size_t j = 0; j < r->nfields; j++) {
            if (r->fields[j].ndim != 1 || r->fields[j].n != r->n)
                return adx_err_set(c->err, ADX_E_INTERNAL, ptr, "record field %s is not 1-d",
                                   r->names[j]);
            ccol cc = {.kind = CC_ARR, .a = &r->fields[j], .width = 1};
            char name[ADX_ERR_PTR_MAX + 24];
            snprintf(name, sizeof name, "%s%llu", prefix ? prefix : "", (unsigned long long)j + 1);
            if (table_add(t, cc, prefix ? name : "", false) < 0) return oom(c);
        }
        return 1;
    }
    case AD_K_DICT: {
        int rc = not_written(c, ns, key,
                             "nested dicts have no csv form (write_csvs would write their repr)");
        return rc < 0 ? -1 : 0;
    }
    default:
        return adx_err_set(c->err, ADX_E_INTERNAL, ptr,
                           "element of kind %s reached the csv writer unsanitized",
                           ad_elem_encoding(e));
    }
}

static uint64_t ccol_rows(const ccol *cc)
{
    switch (cc->kind) {
    case CC_ARR:
        return cc->a->n;
    case CC_MAT:
        return cc->a->shape[0];
    case CC_SP:
        return cc->sr->nrows;
    case CC_CAT:
        return cc->cat->codes.n;
    default:
        return cc->nl->values.n < cc->nl->mask.n ? cc->nl->values.n : cc->nl->mask.n;
    }
}

/* Takes ownership of t. Every column must cover the table's rows: the
 * generator indexes them without further checks. */
static int add_table(csv_ctx *c, const char *member, table *t)
{
    t->nf = t->index ? 1 : 0;
    for (size_t i = 0; i < t->ncols; i++) {
        if (ccol_rows(&t->cols[i]) < t->nrows) {
            table_free(t);
            return adx_err_set(c->err, ADX_E_INTERNAL, NULL,
                               "%s: column %s is shorter than the table", member, t->cols[i].name);
        }
        t->nf += t->cols[i].width; /* widths are dims, far below overflow */
    }
    if (t->index && t->nrows && (!t->idx->soff || t->idx->n < t->nrows)) {
        table_free(t);
        return adx_err_set(c->err, ADX_E_INTERNAL, NULL, "%s: index is shorter than the table",
                           member);
    }
    return zw_add(&c->z, member, table_read, table_free, t, -1, c->err);
}

static int frame_rows_check(csv_ctx *c, const ad_frame *f, const char *ns)
{
    if (f->ncols && f->index.n != f->n_rows)
        return adx_err_set(c->err, ADX_E_INTERNAL, ns, "frame index length disagrees with rows");
    return 0;
}

static int write_frame(csv_ctx *c, const char *member, const char *ns, const ad_frame *f)
{
    char ptr[64];
    snprintf(ptr, sizeof ptr, "/%s", ns);
    if (frame_rows_check(c, f, ptr) < 0) return -1;
    table *t = table_new(c->sep, true, true, f->index.soff ? f->index.n : 0);
    if (!t) return oom(c);
    t->idx = &f->index;
    if (f->index_name && !(t->idx_name = strdup(f->index_name))) {
        table_free(t);
        return oom(c);
    }
    for (size_t j = 0; j < f->ncols; j++) {
        ccol cc;
        if (column_of(f->cols[j], &cc) < 0) {
            table_free(t);
            char cp[ADX_ERR_PTR_MAX];
            ptr_of(cp, sizeof cp, ns, f->names[j]);
            return adx_err_set(c->err, ADX_E_INTERNAL, cp, "is not a 1-d column");
        }
        if (table_add(t, cc, f->names[j], false) < 0) {
            table_free(t);
            return oom(c);
        }
    }
    return add_table(c, member, t);
}

static int write_axis_df(csv_ctx *c, const char *member, const char *ns, const ad_dict *d,
                         uint64_t nrows)
{
    table *t = table_new(c->sep, true, false, nrows);
    if (!t) return oom(c);
    for (size_t i = 0; i < d->n; i++) {
        const ad_elem *e = d->vals[i];
        if (e->kind == AD_K_ARRAY && e->u.arr.ndim == 2 && e->u.arr.shape[0] != nrows) {
            table_free(t);
            char ptr[ADX_ERR_PTR_MAX];
            ptr_of(ptr, sizeof ptr, ns, d->keys[i]);
            return adx_err_set(c->err, ADX_E_INTERNAL, ptr, "has %llu rows, expected %llu",
                               (unsigned long long)e->u.arr.shape[0], (unsigned long long)nrows);
        }
        if (add_matrix_cols(c, t, e, d->keys[i], ns, d->keys[i], false) < 0) {
            table_free(t);
            return -1;
        }
    }
    return add_table(c, member, t);
}

static int write_X(csv_ctx *c, const ad_elem *X)
{
    if (!X) {
        /* pd.DataFrame(None).to_csv writes an empty file. */
        table *t = table_new(c->sep, false, false, 0);
        return t ? add_table(c, "X.csv", t) : oom(c);
    }
    uint64_t nrows = ad_elem_rows(X);
    table *t = table_new(c->sep, false, false, nrows);
    if (!t) return oom(c);
    int rc = add_matrix_cols(c, t, X, NULL, "X", NULL, false);
    if (rc <= 0) {
        table_free(t);
        return rc;
    }
    return add_table(c, "X.csv", t);
}

static int write_uns(csv_ctx *c, const ad_dict *uns)
{
    zw_path name = {0};
    for (size_t i = 0; i < uns->n; i++) {
        const ad_elem *e = uns->vals[i];
        uint64_t nrows = 1;
        if (e->kind == AD_K_ARRAY && e->u.arr.ndim >= 1)
            nrows = e->u.arr.shape[0];
        else if (e->kind != AD_K_ARRAY)
            nrows = ad_elem_rows(e);
        table *t = table_new(c->sep, false, false, nrows);
        if (!t) {
            zw_path_free(&name);
            return oom(c);
        }
        int rc = add_matrix_cols(c, t, e, NULL, "uns", uns->keys[i], true);
        if (rc <= 0) {
            table_free(t);
            if (rc < 0) {
                zw_path_free(&name);
                return -1;
            }
            continue;
        }
        zw_path_pop(&name, 0);
        if (zw_path_lit(&name, "uns/") == SIZE_MAX ||
            zw_path_esc_file(&name, uns->keys[i]) == SIZE_MAX ||
            zw_path_lit(&name, ".csv") == SIZE_MAX) {
            table_free(t);
            zw_path_free(&name);
            return oom(c);
        }
        if (add_table(c, name.s, t) < 0) {
            zw_path_free(&name);
            return -1;
        }
    }
    zw_path_free(&name);
    return 0;
}

static int report_dict(csv_ctx *c, const char *ns, const ad_dict *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (not_written(c, ns, d->keys[i], "write_csvs does not write this namespace") < 0)
            return -1;
    return 0;
}

static int write_all(csv_ctx *c, const ad_anndata *a)
{
    if (write_frame(c, "obs.csv", "obs", &a->obs) < 0) return -1;
    if (write_frame(c, "var.csv", "var", &a->var) < 0) return -1;
    if (write_axis_df(c, "obsm.csv", "obsm", &a->obsm, a->n_obs) < 0) return -1;
    if (write_axis_df(c, "varm.csv", "varm", &a->varm, a->n_vars) < 0) return -1;
    if (write_X(c, a->X) < 0) return -1;
    /* write_csvs makes the uns folder even when it stays empty. */
    if (zip_dir_add(c->z.za, "uns", ZIP_FL_ENC_UTF_8) < 0) {
        adx_err_set(c->err, ADX_E_IO, NULL, "cannot add uns/ to the zip");
        return adx_err_cause(c->err, "libzip: %s", zip_strerror(c->z.za));
    }
    if (write_uns(c, &a->uns) < 0) return -1;
    /* The matrices over both axes (layers, obsp, varp) have no csv form. */
    for (int ns = 0; ns < AD_NS__COUNT; ns++)
        if (ad_ns_table[ns].cols != AD_AXIS_NONE &&
            report_dict(c, ad_ns_table[ns].name, ad_ns_cdict(a, (ad_ns)ns)) < 0)
            return -1;
    if (a->raw && not_written(c, "raw", NULL, "write_csvs does not write raw") < 0) return -1;
    return 0;
}

int csvb_write(const ad_anndata *a, const char *path, char sep, const adx_limits *lim,
               const adx_ctl *ctl, adx_report *rep, adx_err *err)
{
    return csvb_write_ex(a, path, sep, ADX_COMP_GZIP, 6, lim, ctl, rep, err);
}

static int write_bundle(const ad_anndata *a, afile *out, char sep, adx_compression compression,
                        int level, const adx_limits *lim, const adx_ctl *ctl, adx_report *rep,
                        adx_err *err)
{
    if (!a || !out) return adx_err_set(err, ADX_E_INTERNAL, NULL, "csvb_write without a model");
    if (ad_anndata_assert(a, err) < 0) return -1;
    if (compression == ADX_COMP_LZF)
        return adx_err_set(err, ADX_E_BAD_OPTION, "/compression",
                           "lzf compression is not available for csv/txt bundles");
    if (sep != ',' && sep != '\t')
        return adx_err_set(err, ADX_E_BAD_OPTION, "/format", "csv separator must be ',' or tab");
    if (adx_ctl_canceled(ctl)) return adx_err_set(err, ADX_E_CANCELED, NULL, "export canceled");
    adx_limits deflim;
    if (!lim) {
        adx_limits_default(&deflim);
        lim = &deflim;
    }
    csv_ctx c = {.sep = sep, .lim = lim, .rep = rep, .err = err};
    /* As for npz: gzip level 0 means stored. */
    bool deflate = compression == ADX_COMP_GZIP && level != 0;
    if (zw_open(&c.z, out, deflate, level, ctl, err) < 0) return -1;
    if (write_all(&c, a) < 0) {
        zw_discard(&c.z);
        return -1;
    }
    if (zw_close(&c.z, err) < 0) return -1;
    adx_ctl_progress(ctl, 1.0);
    return 0;
}

int csvb_write_to(const ad_anndata *a, afile *out, char sep, adx_compression compression, int level,
                  const adx_limits *lim, const adx_ctl *ctl, adx_report *rep, adx_err *err)
{
    /* Number text must not follow a process locale with a decimal comma
     * (snprintf/strtod read it): pin "C" for this thread while writing. */
    locale_t cloc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    locale_t prev = cloc ? uselocale(cloc) : (locale_t)0;
    int rc = write_bundle(a, out, sep, compression, level, lim, ctl, rep, err);
    if (cloc) {
        uselocale(prev);
        freelocale(cloc);
    }
    return rc;
}

int csvb_write_ex(const ad_anndata *a, const char *path, char sep, adx_compression compression,
                  int level, const adx_limits *lim, const adx_ctl *ctl, adx_report *rep,
                  adx_err *err)
{
    if (!path) return adx_err_set(err, ADX_E_INTERNAL, NULL, "csvb_write without a path");
    afile *f = afile_begin(path, NULL, err);
    if (!f) return -1;
    if (csvb_write_to(a, f, sep, compression, level, lim, ctl, rep, err) != 0) {
        afile_abort(f);
        return -1;
    }
    return afile_commit(f, NULL, err);
}
