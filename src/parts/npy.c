/* .npy header (numpy's format.py, versions 1.0-3.0): the Python literal
 * {'descr': ..., 'fortran_order': ..., 'shape': (...)} read without eval. */
#include "adx_parts.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool parts_is_npy(const void *buf, size_t len)
{
    return len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0;
}

void parts_npy_free(parts_npy *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->nfields; i++)
        free(h->fields[i].name);
    free(h->fields);
    memset(h, 0, sizeof *h);
}

typedef struct lex {
    const char *s, *end;
    const char *name, *pointer;
    adx_err *err;
} lex;

__attribute__((format(printf, 2, 3))) static int bad(lex *x, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return adx_err_set(x->err, ADX_E_SCHEMA, x->pointer, "part \"%.100s\": .npy header: %s",
                       x->name, msg);
}

static void ws(lex *x)
{
    while (x->s < x->end && (*x->s == ' ' || *x->s == '\t' || *x->s == '\n' || *x->s == '\r'))
        x->s++;
}

static bool eat(lex *x, char c)
{
    ws(x);
    if (x->s < x->end && *x->s == c) {
        x->s++;
        return true;
    }
    return false;
}

/* A Python string literal ('...' or "..."), simple escapes only. The result
 * is malloc'd in *out. */
static int str_lit(lex *x, char **out)
{
    ws(x);
    if (x->s >= x->end || (*x->s != '\'' && *x->s != '"')) return bad(x, "a string was expected");
    char q = *x->s++;
    const char *start = x->s;
    size_t n = 0;
    for (const char *p = start; p < x->end && *p != q; p++, n++)
        if (*p == '\\') p++;
    char *o = malloc(n + 1);
    if (!o) return adx_err_set(x->err, ADX_E_NOMEM, "", "out of memory");
    size_t k = 0;
    while (x->s < x->end && *x->s != q) {
        if (*x->s == '\\') {
            x->s++;
            if (x->s >= x->end) break;
            if (*x->s != '\\' && *x->s != '\'' && *x->s != '"') {
                free(o);
                return bad(x, "an escape in a string that this reader does not take");
            }
        }
        if (*x->s == '\0') {
            free(o);
            return bad(x, "a NUL byte in a string");
        }
        o[k++] = *x->s++;
    }
    if (x->s >= x->end) {
        free(o);
        return bad(x, "an unterminated string");
    }
    x->s++;
    o[k] = '\0';
    *out = o;
    return 0;
}

static int uint_lit(lex *x, uint64_t *v)
{
    ws(x);
    if (x->s >= x->end || *x->s < '0' || *x->s > '9') return bad(x, "a dimension was expected");
    uint64_t r = 0;
    while (x->s < x->end && *x->s >= '0' && *x->s <= '9') {
        if (__builtin_mul_overflow(r, 10, &r) ||
            __builtin_add_overflow(r, (uint64_t)(*x->s - '0'), &r))
            return bad(x, "a dimension too large");
        x->s++;
    }
    if (x->s < x->end && *x->s == 'L') x->s++; /* Python 2 longs */
    *v = r;
    return 0;
}

/* A tuple of dimensions: (), (n,), (n, m, ...). */
static int shape_lit(lex *x, const adx_limits *lim, int *ndim, uint64_t *shape)
{
    if (!eat(x, '(')) return bad(x, "'shape' must be a tuple");
    int nd = 0;
    while (!eat(x, ')')) {
        if (nd >= AD_MAX_NDIM || (uint32_t)nd >= lim->max_ndim) {
            adx_err_set(x->err, ADX_E_LIMIT, x->pointer,
                        "part \"%.100s\": more than %u dimensions (limit max_ndim)", x->name,
                        (unsigned)(lim->max_ndim < AD_MAX_NDIM ? lim->max_ndim : AD_MAX_NDIM));
            return -1;
        }
        if (uint_lit(x, &shape[nd])) return -1;
        if (shape[nd] > lim->max_dim) {
            adx_err_set(x->err, ADX_E_LIMIT, x->pointer,
                        "part \"%.100s\": dimension %llu is over the limit max_dim = %llu", x->name,
                        (unsigned long long)shape[nd], (unsigned long long)lim->max_dim);
            return -1;
        }
        nd++;
        if (eat(x, ')')) break;
        if (!eat(x, ',')) return bad(x, "'shape' must be a tuple of integers");
    }
    *ndim = nd;
    return 0;
}

/* One dtype string ("<f8", "|b1", "<U10") of an allowed kind. */
static int descr_str(lex *x, const char *d, parts_npy_field *f)
{
    char order = '|';
    const char *p = d;
    if (*p == '<' || *p == '>' || *p == '|' || *p == '=') order = *p++;
    char kind = *p ? *p++ : '\0';
    char *endp;
    unsigned long sz = *p >= '0' && *p <= '9' ? strtoul(p, &endp, 10) : 0;
    if (!sz || *endp != '\0') {
        if (kind == 'O')
            return bad(x,
                       "object dtype '%.40s' is refused (no pickles; send numbers or "
                       "fixed-width strings)",
                       d);
        return bad(x, "dtype '%.40s' is not one payload.md allows", d);
    }
    f->swap = order == '>' && sz > 1;
    f->size = (uint32_t)sz;
    switch (kind) {
    case 'b':
        if (sz == 1) return f->dtype = AD_BOOL, 0;
        break;
    case 'i':
        if (sz == 1) return f->dtype = AD_I8, 0;
        if (sz == 2) return f->dtype = AD_I16, 0;
        if (sz == 4) return f->dtype = AD_I32, 0;
        if (sz == 8) return f->dtype = AD_I64, 0;
        break;
    case 'u':
        if (sz == 1) return f->dtype = AD_U8, 0;
        if (sz == 2) return f->dtype = AD_U16, 0;
        if (sz == 4) return f->dtype = AD_U32, 0;
        if (sz == 8) return f->dtype = AD_U64, 0;
        break;
    case 'f':
        if (sz == 4) return f->dtype = AD_F32, 0;
        if (sz == 8) return f->dtype = AD_F64, 0;
        break;
    case 'U':
        if (sz > UINT32_MAX / 4) break;
        f->dtype = AD_STR;
        f->size = (uint32_t)(4 * sz);
        f->swap = order == '>';
        return 0;
    case 'O':
        return bad(x,
                   "object dtype '%.40s' is refused (no pickles; send numbers or fixed-width "
                   "strings)",
                   d);
    }
    return bad(x,
               "dtype '%.40s' is not one payload.md allows (bool, int8-64, uint8-64, "
               "float32/64, <U n)",
               d);
}

/* [('name', '<f8'), ('', '|V4'), ...]: fields in order, packed, with numpy's
 * unnamed void entries standing for padding. `seen` finds a repeated name
 * (a 1 MiB header holds ~70,000 fields: a scan per field would be
 * quadratic). */
static int descr_fields(lex *x, parts_npy *h, adx_strmap *seen)
{
    size_t cap = 0;
    uint64_t off = 0;
    while (!eat(x, ']')) {
        if (!eat(x, '(')) return bad(x, "a structured dtype must be a list of (name, dtype)");
        char *name = NULL, *d = NULL;
        ws(x);
        if (x->s < x->end && *x->s == '(') return bad(x, "field titles are not accepted");
        if (str_lit(x, &name)) return -1;
        if (!eat(x, ',') || str_lit(x, &d)) {
            free(name);
            return adx_err_failed(x->err) ? -1 : bad(x, "a structured field must be (name, dtype)");
        }
        if (eat(x, ',')) {
            ws(x);
            if (x->s < x->end && *x->s == '(') {
                free(name);
                free(d);
                return bad(x, "sub-array fields are not accepted (one value per field)");
            }
        }
        if (!eat(x, ')')) {
            free(name);
            free(d);
            return bad(x, "a structured field must be (name, dtype)");
        }
        if (name[0] == '\0' && (d[0] == '|' || d[0] == '<') && d[1] == 'V') {
            /* padding: skip its bytes */
            char *e;
            unsigned long pad = strtoul(d + 2, &e, 10);
            bool ok = *e == '\0' && !__builtin_add_overflow(off, (uint64_t)pad, &off);
            free(name);
            free(d);
            if (!ok) return bad(x, "malformed padding field");
        } else {
            parts_npy_field f = {0};
            if (name[0] == '\0') {
                free(name);
                free(d);
                return bad(x, "a structured field without a name");
            }
            if (d[0] == '[' || descr_str(x, d, &f)) {
                free(name);
                free(d);
                return adx_err_failed(x->err) ? -1 : bad(x, "nested structured dtypes");
            }
            free(d);
            size_t at;
            bool added;
            if (adx_strmap_add(seen, name, &at, &added)) {
                free(name);
                return adx_err_set(x->err, ADX_E_NOMEM, "", "out of memory");
            }
            if (!added) {
                int r = bad(x, "field '%.100s' appears twice", name);
                free(name);
                return r;
            }
            if (h->nfields == cap) {
                size_t nc = cap ? 2 * cap : 8;
                parts_npy_field *nv = realloc(h->fields, nc * sizeof *nv);
                if (!nv) {
                    free(name);
                    return adx_err_set(x->err, ADX_E_NOMEM, "", "out of memory");
                }
                h->fields = nv;
                cap = nc;
            }
            f.name = name;
            f.offset = off;
            h->fields[h->nfields++] = f;
            if (__builtin_add_overflow(off, (uint64_t)f.size, &off))
                return bad(x, "record too large");
        }
        if (eat(x, ']')) break;
        if (!eat(x, ',')) return bad(x, "a structured dtype must be a list of (name, dtype)");
    }
    if (h->nfields == 0) return bad(x, "a structured dtype without fields");
    h->structured = true;
    h->itemsize = off;
    return 0;
}

static int descr_list(lex *x, parts_npy *h)
{
    adx_strmap seen = {0};
    int r = descr_fields(x, h, &seen);
    adx_strmap_free(&seen);
    return r;
}

static int dict(lex *x, const adx_limits *lim, parts_npy *h)
{
    bool seen_d = false, seen_f = false, seen_s = false;
    if (!eat(x, '{')) return bad(x, "the header is not a dict");
    while (!eat(x, '}')) {
        char *key = NULL;
        if (str_lit(x, &key)) return -1;
        if (!eat(x, ':')) {
            free(key);
            return bad(x, "':' expected after a key");
        }
        if (!strcmp(key, "descr") && !seen_d) {
            seen_d = true;
            ws(x);
            if (eat(x, '[')) {
                if (descr_list(x, h)) goto fail;
            } else {
                char *d = NULL;
                if (x->s < x->end && *x->s == '{') {
                    bad(x, "the dict form of a structured dtype is not accepted");
                    goto fail;
                }
                if (str_lit(x, &d)) goto fail;
                int r = descr_str(x, d, &h->elem);
                free(d);
                if (r) goto fail;
                h->itemsize = h->elem.size;
            }
        } else if (!strcmp(key, "fortran_order") && !seen_f) {
            seen_f = true;
            ws(x);
            if ((size_t)(x->end - x->s) >= 4 && !memcmp(x->s, "True", 4)) {
                h->fortran = true;
                x->s += 4;
            } else if ((size_t)(x->end - x->s) >= 5 && !memcmp(x->s, "False", 5)) {
                x->s += 5;
            } else {
                bad(x, "'fortran_order' must be True or False");
                goto fail;
            }
        } else if (!strcmp(key, "shape") && !seen_s) {
            seen_s = true;
            if (shape_lit(x, lim, &h->ndim, h->shape)) goto fail;
        } else {
            bad(x, "unexpected or repeated key '%.40s'", key);
            goto fail;
        }
        free(key);
        if (eat(x, '}')) break;
        if (!eat(x, ',')) return bad(x, "',' expected between entries");
        continue;
    fail:
        free(key);
        return -1;
    }
    if (!seen_d || !seen_f || !seen_s)
        return bad(x, "the header must have 'descr', 'fortran_order' and 'shape'");
    ws(x);
    if (x->s != x->end) return bad(x, "text after the header dict");
    return 0;
}

int parts_npy_parse(const void *buf, size_t len, const adx_limits *lim, const char *name,
                    const char *pointer, parts_npy *out, size_t *need, adx_err *err)
{
    adx_limits dl;
    if (!lim) {
        adx_limits_default(&dl);
        lim = &dl;
    }
    memset(out, 0, sizeof *out);
    const uint8_t *b = buf;
    lex x = {.name = name ? name : "?", .pointer = pointer ? pointer : "", .err = err};
    if (memcmp(b, "\x93NUMPY", len < 6 ? len : 6) != 0) return bad(&x, "no numpy magic");
    if (len < 10) {
        *need = len >= 8 && b[6] == 1 ? 10 : PARTS_NPY_PREFIX;
        return 1;
    }
    int major = b[6], minor = b[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return bad(&x, "format version %d.%d is not 1.0, 2.0 or 3.0", major, minor);
    uint64_t hlen, pre;
    if (major == 1) {
        hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8;
        pre = 10;
    } else {
        if (len < 12) return *need = 12, 1;
        hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
        pre = 12;
    }
    if (hlen > PARTS_NPY_MAX_HEADER)
        return bad(&x, "a header of %llu bytes (at most %u are read)", (unsigned long long)hlen,
                   PARTS_NPY_MAX_HEADER);
    if (len < pre + hlen) return *need = (size_t)(pre + hlen), 1;
    x.s = (const char *)b + pre;
    x.end = x.s + hlen;
    /* Version 1/2 headers are latin-1 and numpy only writes ASCII there;
     * version 3 is UTF-8 (field names). A NUL never belongs in either. */
    if (memchr(x.s, '\0', hlen)) return bad(&x, "a NUL byte in the header");
    out->major = major;
    out->data_off = pre + hlen;
    if (dict(&x, lim, out)) {
        parts_npy_free(out);
        return -1;
    }
    if (out->structured && out->ndim > 1) {
        int r = bad(&x, "a structured array must be 1-d (a record array)");
        parts_npy_free(out);
        return r;
    }
    if (ad_shape_product(out->ndim, out->shape, &out->n) ||
        __builtin_mul_overflow(out->n, out->itemsize, &(uint64_t){0})) {
        int r = bad(&x, "its shape overflows");
        parts_npy_free(out);
        return r;
    }
    if (out->n > lim->max_elements) {
        adx_err_set(err, ADX_E_LIMIT, x.pointer,
                    "part \"%.100s\": %llu elements, over the limit max_elements = %llu", x.name,
                    (unsigned long long)out->n, (unsigned long long)lim->max_elements);
        parts_npy_free(out);
        return -1;
    }
    if (out->ndim <= 1) out->fortran = false; /* the same bytes either way */
    return 0;
}
