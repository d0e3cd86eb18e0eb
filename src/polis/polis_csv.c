/* RFC 4180 reader and column typing for the Polis import (polis_csv.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adx_utf8.h"
#include "polis_csv.h"

typedef struct cbuf {
    char *p;
    size_t len, cap;
} cbuf;

static int cb_put(cbuf *b, char c)
{
    if (b->len == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        if (nc < b->cap) return -1;
        char *np = realloc(b->p, nc);
        if (!np) return -1;
        b->p = np;
        b->cap = nc;
    }
    b->p[b->len++] = c;
    return 0;
}

typedef struct ubuf {
    uint64_t *p;
    size_t len, cap;
} ubuf;

static int ub_put(ubuf *b, uint64_t v)
{
    if (b->len == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        if (nc > SIZE_MAX / sizeof(uint64_t)) return -1;
        uint64_t *np = realloc(b->p, nc * sizeof *np);
        if (!np) return -1;
        b->p = np;
        b->cap = nc;
    }
    b->p[b->len++] = v;
    return 0;
}

void pcsv_free(pcsv_table *t)
{
    if (!t) return;
    for (size_t i = 0; t->header && i < t->ncols; i++)
        free(t->header[i]);
    free(t->header);
    free(t->blob);
    free(t->cell);
    free(t->recno);
    memset(t, 0, sizeof *t);
}

long pcsv_col(const pcsv_table *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (strcmp(t->header[i], name) == 0) return (long)i;
    return -1;
}

static int perr(adx_err *err, const char *fname, uint64_t rec, const char *fmt, const char *arg)
{
    char ptr[ADX_ERR_PTR_MAX] = "";
    adx_ptr_append_key(ptr, sizeof ptr, fname);
    size_t l = strlen(ptr);
    snprintf(ptr + l, sizeof ptr - l, "/%llu", (unsigned long long)rec);
    return adx_err_set(err, ADX_E_SCHEMA, ptr, fmt, arg);
}

int pcsv_parse(const char *buf, size_t len, const char *fname, const adx_limits *lim, pcsv_table *t,
               adx_err *err)
{
    memset(t, 0, sizeof *t);
    size_t i = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) i = 3;
    if (!utf8_valid(buf + i, len - i, NULL))
        return perr(err, fname, 1, "%s is not valid UTF-8", fname);
    cbuf blob = {0};
    ubuf cells = {0}, recs = {0};
    adx_strmap names = {0}; /* header names seen, pointing into blob */
    uint64_t rec = 1;       /* record being read (header = 1) */
    size_t nfield = 0;      /* fields in the current record */
    uint64_t line = 1;      /* physical line */
    uint64_t rec_line = 1;  /* line the current record starts on: what pointers name */
    int rc = -1;
    char tmp[160];
    while (i < len || nfield > 0) {
        /* Blank line between records: skipped like pandas. */
        if (nfield == 0 && i < len && (buf[i] == '\n' || buf[i] == '\r')) {
            if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n') i++;
            i++;
            line++;
            continue;
        }
        if (nfield == 0) rec_line = line;
        /* One field. */
        size_t start = blob.len;
        if (ub_put(&cells, start) < 0) goto nomem;
        bool quoted = i < len && buf[i] == '"';
        if (quoted) {
            i++;
            for (;;) {
                if (i >= len) {
                    snprintf(tmp, sizeof tmp, "unterminated quoted field (opened on line %llu)",
                             (unsigned long long)line);
                    perr(err, fname, rec_line, "%s", tmp);
                    goto out;
                }
                char c = buf[i];
                if (c == '"') {
                    if (i + 1 < len && buf[i + 1] == '"') {
                        if (cb_put(&blob, '"') < 0) goto nomem;
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (c == '\n' || (c == '\r' && !(i + 1 < len && buf[i + 1] == '\n'))) line++;
                if (cb_put(&blob, c) < 0) goto nomem;
                i++;
            }
            if (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') {
                perr(err, fname, rec_line, "%s", "text after a closing quote");
                goto out;
            }
        } else {
            while (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') {
                if (cb_put(&blob, buf[i]) < 0) goto nomem;
                i++;
            }
        }
        if (blob.len - start > lim->max_string_bytes) {
            adx_err_set(err, ADX_E_LIMIT, "", "a field in %s exceeds max_string_bytes (%llu)",
                        fname, (unsigned long long)lim->max_string_bytes);
            goto out;
        }
        if (cb_put(&blob, '\0') < 0) goto nomem;
        nfield++;
        if (i < len && buf[i] == ',') {
            i++;
            continue;
        }
        /* End of record (newline or end of input). */
        if (i < len) {
            if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n') i++;
            i++;
            line++;
        }
        if (rec == 1) {
            t->ncols = nfield;
            if (nfield > lim->max_keys) {
                adx_err_set(err, ADX_E_LIMIT, "", "%s has more than max_keys columns", fname);
                goto out;
            }
        } else if (nfield != t->ncols) {
            snprintf(tmp, sizeof tmp, "record has %zu fields but the header has %zu", nfield,
                     t->ncols);
            perr(err, fname, rec_line, "%s", tmp);
            goto out;
        } else if (ub_put(&recs, rec_line) < 0) {
            goto nomem;
        }
        if (cells.len > lim->max_elements) {
            adx_err_set(err, ADX_E_LIMIT, "", "%s has more than max_elements (%llu) cells", fname,
                        (unsigned long long)lim->max_elements);
            goto out;
        }
        rec++;
        nfield = 0;
    }
    if (rec == 1) {
        perr(err, fname, 1, "%s has no header line", fname);
        goto out;
    }
    t->header = calloc(t->ncols, sizeof *t->header);
    if (!t->header) goto nomem;
    for (size_t c = 0; c < t->ncols; c++) {
        const char *h = blob.p + cells.p[c];
        if (!*h) {
            perr(err, fname, 1, "%s", "empty column name in the header");
            goto out;
        }
        size_t at;
        bool added;
        if (adx_strmap_add(&names, h, &at, &added) < 0) goto nomem;
        if (!added) {
            perr(err, fname, 1, "duplicate column name \"%s\"", h);
            goto out;
        }
        t->header[c] = strdup(h);
        if (!t->header[c]) goto nomem;
    }
    t->nrows = rec - 2;
    /* Data cells follow the header's; shift offsets so row 0 starts at 0. */
    t->cell = malloc((cells.len - t->ncols + 1) * sizeof *t->cell);
    if (!t->cell) goto nomem;
    memcpy(t->cell, cells.p + t->ncols, (cells.len - t->ncols) * sizeof *t->cell);
    t->blob = blob.p;
    blob.p = NULL;
    t->recno = recs.p;
    recs.p = NULL;
    rc = 0;
    goto out;
nomem:
    adx_err_set(err, ADX_E_NOMEM, "", "out of memory reading %s", fname);
out:
    adx_strmap_free(&names);
    free(blob.p);
    free(cells.p);
    free(recs.p);
    if (rc < 0) pcsv_free(t);
    return rc;
}

/* ---------------------------------------------------------------- types */

bool pcsv_parse_i64(const char *s, int64_t *out)
{
    /* Hand-rolled: this runs once per id and vote cell, and strtoll's locale
     * and errno handling dominated the import of large exports. */
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    if (*s < '0' || *s > '9') return false;
    uint64_t v = 0;
    const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (lim - d) / 10) return false;
        v = v * 10 + d;
    }
    if (*s) return false;
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}

bool pcsv_parse_f64(const char *s, double *out)
{
    if (!*s || *s == ' ' || *s == '\t') return false;
    /* strtod also takes hex floats and "infinity"; pandas takes neither hex
     * nor leading spaces, so those stay text. */
    const char *q = s + (*s == '-' || *s == '+');
    if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) return false;
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s) return false;
    *out = v;
    return true;
}

static int bool_value(const char *s)
{
    if (!strcmp(s, "True") || !strcmp(s, "true") || !strcmp(s, "TRUE")) return 1;
    if (!strcmp(s, "False") || !strcmp(s, "false") || !strcmp(s, "FALSE")) return 0;
    return -1;
}

pcsv_type pcsv_column_type(const pcsv_table *t, size_t col, bool *has_empty)
{
    bool is_int = true, is_float = true, is_bool = true, any = false;
    *has_empty = false;
    for (uint64_t r = 0; r < t->nrows; r++) {
        const char *s = pcsv_cell(t, r, col);
        if (!*s) {
            *has_empty = true;
            continue;
        }
        any = true;
        int64_t i;
        double d;
        if (is_int && !pcsv_parse_i64(s, &i)) is_int = false;
        if (is_float && !is_int && !pcsv_parse_f64(s, &d)) is_float = false;
        if (is_bool && bool_value(s) < 0) is_bool = false;
    }
    if (!any) return PCSV_EMPTY;
    if (is_int) return PCSV_INT;
    if (is_float) return PCSV_FLOAT;
    if (is_bool) return PCSV_BOOL;
    return PCSV_TEXT;
}

static ad_elem *object_column(const pcsv_table *t, size_t col, const uint64_t *rows, uint64_t n)
{
    ad_elem *e = ad_elem_new(AD_K_OBJECT);
    if (!e) return NULL;
    ad_object *o = &e->u.obj;
    o->ndim = 1;
    o->shape[0] = n;
    o->n = n;
    o->kind = calloc(n ? n : 1, 1);
    o->num = calloc(n ? n : 1, sizeof *o->num);
    ad_strbuild b = {0};
    if (!o->kind || !o->num) goto fail;
    for (uint64_t i = 0; i < n; i++) {
        const char *s = rows[i] == UINT64_MAX ? "" : pcsv_cell(t, rows[i], col);
        o->kind[i] = *s ? AD_CELL_STR : AD_CELL_NULL;
        if (ad_sb_push(&b, s, strlen(s)) < 0) goto fail;
    }
    ad_array tmp;
    if (ad_sb_finish(&b, &tmp, 1, NULL) < 0) goto fail;
    o->str = tmp.str;
    o->soff = tmp.soff;
    return e;
fail:
    ad_sb_free(&b);
    ad_elem_free(e);
    return NULL;
}

ad_elem *pcsv_column(const pcsv_table *t, size_t col, const uint64_t *rows, uint64_t n)
{
    bool has_empty;
    pcsv_type ty = pcsv_column_type(t, col, &has_empty);
    bool missing = false;
    for (uint64_t i = 0; i < n; i++)
        missing |= rows[i] == UINT64_MAX;
    uint64_t shape[1] = {n};
    ad_array a;
    switch (ty) {
    case PCSV_EMPTY:
    case PCSV_TEXT:
        if (ty == PCSV_EMPTY || has_empty || missing) return object_column(t, col, rows, n);
        {
            ad_strbuild b = {0};
            for (uint64_t i = 0; i < n; i++) {
                const char *s = pcsv_cell(t, rows[i], col);
                if (ad_sb_push(&b, s, strlen(s)) < 0) {
                    ad_sb_free(&b);
                    return NULL;
                }
            }
            if (ad_sb_finish(&b, &a, 1, shape) < 0) return NULL;
        }
        return ad_elem_from_array(&a);
    case PCSV_INT:
        if (!has_empty && !missing) {
            if (ad_array_init(&a, AD_I64, 1, shape) < 0) return NULL;
            for (uint64_t i = 0; i < n; i++)
                pcsv_parse_i64(pcsv_cell(t, rows[i], col), &((int64_t *)a.data)[i]);
            return ad_elem_from_array(&a);
        }
        /* pandas makes an int column with gaps float64 */
        __attribute__((fallthrough));
    case PCSV_FLOAT:
        if (ad_array_init(&a, AD_F64, 1, shape) < 0) return NULL;
        for (uint64_t i = 0; i < n; i++) {
            const char *s = rows[i] == UINT64_MAX ? "" : pcsv_cell(t, rows[i], col);
            double d = NAN;
            int64_t v;
            if (ty == PCSV_INT && pcsv_parse_i64(s, &v))
                d = (double)v;
            else if (*s)
                pcsv_parse_f64(s, &d);
            ((double *)a.data)[i] = d;
        }
        return ad_elem_from_array(&a);
    case PCSV_BOOL:
        if (ad_array_init(&a, AD_BOOL, 1, shape) < 0) return NULL;
        for (uint64_t i = 0; i < n; i++) {
            const char *s = rows[i] == UINT64_MAX ? "" : pcsv_cell(t, rows[i], col);
            ((uint8_t *)a.data)[i] = bool_value(s) == 1;
        }
        if (!has_empty && !missing) return ad_elem_from_array(&a);
        {
            ad_elem *e = ad_elem_new(AD_K_NULLABLE_BOOL);
            if (!e || ad_array_init(&e->u.nl.mask, AD_BOOL, 1, shape) < 0) {
                ad_elem_free(e);
                ad_array_free(&a);
                return NULL;
            }
            for (uint64_t i = 0; i < n; i++)
                ((uint8_t *)e->u.nl.mask.data)[i] =
                    rows[i] == UINT64_MAX || !*pcsv_cell(t, rows[i], col);
            e->u.nl.values = a;
            return e;
        }
    }
    return NULL;
}
