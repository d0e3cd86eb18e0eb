/* Reading one part into the model: pread(2) straight into the array buffer
 * for C-order numeric data, an mmap of the part's range where values must
 * be reordered (Fortran order), converted (UTF-32 → UTF-8) or gathered from
 * records. */
#include "adx_parts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct rctx {
    const char *name, *pointer;
    const adx_limits *lim;
    adx_budget *budget;
    uint64_t charged; /* released again if the read fails */
    adx_err *err;
} rctx;

__attribute__((format(printf, 3, 4))) static int fail(rctx *c, adx_errtype t, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return adx_err_set(c->err, t, c->pointer, "part \"%.100s\": %s", c->name, msg);
}

static int charge(rctx *c, uint64_t bytes)
{
    if (adx_budget_charge(c->budget, bytes, c->pointer, c->err)) return -1;
    c->charged += bytes;
    return 0;
}

static void refund(rctx *c, uint64_t bytes)
{
    adx_budget_release(c->budget, bytes);
    c->charged -= bytes;
}

/* What the decoded values of one field or array will take: exact for
 * numbers; for strings the most UTF-8 their code units can need (refunded
 * down to the real size once known). */
static uint64_t cost(const parts_npy_field *f, uint64_t n)
{
    if (f->dtype != AD_STR) return n * f->size;
    return (n + 1) * 8 + n * ((uint64_t)f->size + 1);
}

static void refund_strings(rctx *c, const parts_npy_field *f, const ad_array *a)
{
    if (f->dtype != AD_STR) return;
    uint64_t real = (a->n + 1) * 8 + a->soff[a->n];
    uint64_t est = cost(f, a->n);
    if (real < est) refund(c, est - real);
}

static int pread_all(rctx *c, int fd, void *buf, uint64_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t r = pread(fd, p, chunk, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail(c, ADX_E_IO, "cannot read it: %s", strerror(errno));
        if (r == 0) return fail(c, ADX_E_IO, "its file ended early (changed while read?)");
        p += r;
        off += (uint64_t)r;
        n -= (uint64_t)r;
    }
    return 0;
}

typedef struct map {
    void *base;
    size_t len;
    const uint8_t *p;
} map;

/* Read faults on a mapped file come one per 16 pages; one call maps them
 * all (page faults are dear on virtual machines). Read-only entries: a
 * private writable mapping would otherwise copy every page. */
static void populate_read(void *b, size_t len)
{
#ifdef MADV_POPULATE_READ
    (void)madvise(b, len, MADV_POPULATE_READ);
#else
    (void)b;
    (void)len;
#endif
}

static int map_range(rctx *c, int fd, uint64_t off, uint64_t len, map *m)
{
    memset(m, 0, sizeof *m);
    if (len == 0) return 0;
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t start = off - off % (uint64_t)(pg > 0 ? pg : 4096);
    uint64_t span = len + (off - start);
    if (span > SIZE_MAX) return fail(c, ADX_E_LIMIT, "too large to map");
    void *b = mmap(NULL, (size_t)span, PROT_READ, MAP_PRIVATE, fd, (off_t)start);
    if (b == MAP_FAILED) return fail(c, ADX_E_IO, "cannot map it: %s", strerror(errno));
    populate_read(b, (size_t)span);
    m->base = b;
    m->len = (size_t)span;
    m->p = (const uint8_t *)b + (off - start);
    return 0;
}

static void unmap(map *m)
{
    if (m->base) munmap(m->base, m->len);
    memset(m, 0, sizeof *m);
}

static void swap_in_place(uint8_t *d, size_t size, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++, d += size) {
        if (size == 2) {
            uint16_t v;
            memcpy(&v, d, 2);
            v = __builtin_bswap16(v);
            memcpy(d, &v, 2);
        } else if (size == 4) {
            uint32_t v;
            memcpy(&v, d, 4);
            v = __builtin_bswap32(v);
            memcpy(d, &v, 4);
        } else if (size == 8) {
            uint64_t v;
            memcpy(&v, d, 8);
            v = __builtin_bswap64(v);
            memcpy(d, &v, 8);
        }
    }
}

static int check_bool(rctx *c, const uint8_t *d, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (d[i] > 1)
            return fail(c, ADX_E_SCHEMA, "bool element %llu is byte %u, not 0 or 1",
                        (unsigned long long)i, d[i]);
    return 0;
}

/* The source element (in file order) of each element in C order, for a
 * Fortran-ordered array; amortized O(1) per step. */
typedef struct forder {
    int nd;
    uint64_t idx[AD_MAX_NDIM], shape[AD_MAX_NDIM], stride[AD_MAX_NDIM];
    uint64_t src;
} forder;

static void forder_init(forder *f, bool fortran, int nd, const uint64_t *shape)
{
    memset(f, 0, sizeof *f);
    f->nd = fortran ? nd : 0;
    uint64_t s = 1;
    for (int k = 0; k < f->nd; k++) {
        f->shape[k] = shape[k];
        f->stride[k] = s;
        s *= shape[k];
    }
}

static void forder_next(forder *f)
{
    if (f->nd == 0) {
        f->src++;
        return;
    }
    int k = f->nd - 1;
    f->idx[k]++;
    f->src += f->stride[k];
    while (k > 0 && f->idx[k] == f->shape[k]) {
        f->src -= f->shape[k] * f->stride[k];
        f->idx[k] = 0;
        k--;
        f->idx[k]++;
        f->src += f->stride[k];
    }
}

/* UTF-32 code units (numpy '<U w') → one UTF-8 string. Trailing NULs are
 * numpy's padding. */
static int push_utf32(rctx *c, ad_strbuild *sb, const uint8_t *src, uint32_t bytes, bool swap,
                      uint64_t i)
{
    uint32_t w = bytes / 4;
    while (w > 0) {
        uint32_t v;
        memcpy(&v, src + 4 * (w - 1), 4);
        if (v) break;
        w--;
    }
    char stackbuf[256];
    size_t cap = (size_t)w * 4 + 1;
    char *o = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
    if (!o) return adx_err_set(c->err, ADX_E_NOMEM, "", "out of memory");
    size_t k = 0;
    for (uint32_t j = 0; j < w; j++) {
        uint32_t v;
        memcpy(&v, src + 4 * j, 4);
        if (swap) v = __builtin_bswap32(v);
        if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
            if (o != stackbuf) free(o);
            if (v == 0)
                return fail(c, ADX_E_SCHEMA, "string %llu holds a NUL character",
                            (unsigned long long)i);
            return fail(c, ADX_E_SCHEMA, "string %llu holds U+%X, not a Unicode scalar value",
                        (unsigned long long)i, v);
        }
        if (v < 0x80) {
            o[k++] = (char)v;
        } else if (v < 0x800) {
            o[k++] = (char)(0xC0 | v >> 6);
            o[k++] = (char)(0x80 | (v & 0x3F));
        } else if (v < 0x10000) {
            o[k++] = (char)(0xE0 | v >> 12);
            o[k++] = (char)(0x80 | (v >> 6 & 0x3F));
            o[k++] = (char)(0x80 | (v & 0x3F));
        } else {
            o[k++] = (char)(0xF0 | v >> 18);
            o[k++] = (char)(0x80 | (v >> 12 & 0x3F));
            o[k++] = (char)(0x80 | (v >> 6 & 0x3F));
            o[k++] = (char)(0x80 | (v & 0x3F));
        }
    }
    int r = 0;
    if (k > c->lim->max_string_bytes)
        r = fail(c, ADX_E_LIMIT, "string %llu is over the limit max_string_bytes = %llu",
                 (unsigned long long)i, (unsigned long long)c->lim->max_string_bytes);
    else if (ad_sb_push(sb, o, k))
        r = adx_err_set(c->err, ADX_E_NOMEM, "", "out of memory");
    if (o != stackbuf) free(o);
    return r;
}

/* Values of field f of every element, taken from the mapped data at `base`
 * (elements of `itemsize` bytes, in file order), into a C-order array. */
static int gather(rctx *c, const uint8_t *base, uint64_t itemsize, const parts_npy_field *f,
                  bool fortran, int ndim, const uint64_t *shape, uint64_t n, ad_array *out)
{
    forder fo;
    forder_init(&fo, fortran, ndim, shape);
    if (f->dtype == AD_STR) {
        ad_strbuild sb = {0};
        for (uint64_t i = 0; i < n; i++, forder_next(&fo)) {
            if (push_utf32(c, &sb, base + fo.src * itemsize + f->offset, f->size, f->swap, i)) {
                ad_sb_free(&sb);
                return -1;
            }
        }
        if (ad_sb_finish(&sb, out, ndim, shape))
            return adx_err_set(c->err, ADX_E_NOMEM, "", "out of memory");
        return 0;
    }
    if (ad_array_init(out, f->dtype, ndim, shape))
        return adx_err_set(c->err, ADX_E_NOMEM, "", "out of memory");
    uint8_t *d = out->data;
    size_t sz = f->size;
    for (uint64_t i = 0; i < n; i++, forder_next(&fo))
        memcpy(d + i * sz, base + fo.src * itemsize + f->offset, sz);
    if (f->swap) swap_in_place(d, sz, n);
    if (f->dtype == AD_BOOL && check_bool(c, d, n)) {
        ad_array_free(out);
        return -1;
    }
    return 0;
}

static bool same_shape(int nd, const uint64_t *a, int nd2, const uint64_t *b)
{
    if (nd != nd2) return false;
    for (int i = 0; i < nd; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static void shape_text(char *buf, size_t cap, int nd, const uint64_t *s)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < nd && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", i ? ", " : "", (unsigned long long)s[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* The header of a part that starts with numpy's magic. */
static int read_npy_header(rctx *c, const parts_part *p, parts_npy *h)
{
    uint8_t pre[PARTS_NPY_PREFIX];
    size_t have = p->len < sizeof pre ? (size_t)p->len : sizeof pre;
    if (pread_all(c, p->fd, pre, have, p->off)) return -1;
    size_t need = 0;
    int r = parts_npy_parse(pre, have, c->lim, c->name, c->pointer, h, &need, c->err);
    if (r <= 0) return r;
    if (need > p->len) return fail(c, ADX_E_SCHEMA, ".npy header: the part ends inside it");
    uint8_t *buf = malloc(need);
    if (!buf) return adx_err_set(c->err, ADX_E_NOMEM, "", "out of memory");
    r = pread_all(c, p->fd, buf, need, p->off);
    if (!r) r = parts_npy_parse(buf, need, c->lim, c->name, c->pointer, h, &need, c->err);
    free(buf);
    if (r > 0) r = fail(c, ADX_E_SCHEMA, ".npy header: inconsistent length");
    return r;
}

/* A large C-order numeric part becomes its array by mapping its pages
 * rather than reading them: they are in the page cache already (the body
 * was just spooled, the CLI's file just written), and a mapping costs a
 * page-table entry per page where pread(2) into new memory costs a fresh
 * zeroed page, a copy and a second fault at first use in user space
 * (~0.2 s of system time on the 48 MB of bench_parts.py's parts).
 * MAP_PRIVATE: a byte swap writes private copies, never the body. Only
 * where the data starts 16-byte aligned in the file, as malloc would give
 * (an .npy file's data starts at a multiple of 64; a multipart part may
 * lie anywhere). Returns 1 when the part is not mapped (use pread). */
#define MAP_MIN_BYTES (1u << 20)

static int map_plain(const parts_part *p, const parts_npy *h, uint64_t data_off, uint64_t bytes,
                     ad_array *out)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t page = pg > 0 ? (uint64_t)pg : 4096, start = data_off - data_off % page;
    uint64_t span = bytes + (data_off - start);
    struct stat st;
    /* A file shorter than the range (changed since the header was read)
     * would fault past its end; pread reports that as an error instead. */
    if (bytes < MAP_MIN_BYTES || data_off % 16 || span > SIZE_MAX || fstat(p->fd, &st) != 0 ||
        (uint64_t)st.st_size < data_off + bytes)
        return 1;
    void *b = mmap(NULL, (size_t)span, PROT_READ | PROT_WRITE, MAP_PRIVATE, p->fd, (off_t)start);
    if (b == MAP_FAILED) return 1;
    populate_read(b, (size_t)span);
    memset(out, 0, sizeof *out);
    out->dtype = h->elem.dtype;
    out->ndim = h->ndim;
    for (int i = 0; i < h->ndim; i++)
        out->shape[i] = h->shape[i];
    out->n = h->n;
    out->data = (uint8_t *)b + (data_off - start);
    out->map = b;
    out->map_len = (size_t)span;
    return 0;
}

static int read_plain(rctx *c, const parts_part *p, const parts_npy *h, ad_array *out)
{
    uint64_t data_off = p->off + h->data_off, bytes = h->n * h->itemsize;
    const parts_npy_field *f = &h->elem;
    if (charge(c, cost(f, h->n))) return -1;
    if (f->dtype != AD_STR && !h->fortran) {
        if (map_plain(p, h, data_off, bytes, out) != 0) {
            if (ad_array_init(out, f->dtype, h->ndim, h->shape))
                return adx_err_set(c->err, ADX_E_NOMEM, "", "out of memory");
            if (pread_all(c, p->fd, out->data, bytes, data_off)) goto fail;
        }
        if (f->swap) swap_in_place(out->data, f->size, h->n);
        if (f->dtype == AD_BOOL && check_bool(c, out->data, h->n)) goto fail;
        return 0;
    fail:
        ad_array_free(out);
        return -1;
    }
    map m;
    if (map_range(c, p->fd, data_off, bytes, &m)) return -1;
    int r = gather(c, m.p, h->itemsize, f, h->fortran, h->ndim, h->shape, h->n, out);
    unmap(&m);
    if (!r) refund_strings(c, f, out);
    return r;
}

static int read_records(rctx *c, const parts_part *p, const parts_npy *h, ad_elem *e)
{
    map m;
    if (map_range(c, p->fd, p->off + h->data_off, h->n * h->itemsize, &m)) return -1;
    uint64_t n = h->n;
    int r = 0;
    for (size_t i = 0; i < h->nfields && !r; i++) {
        ad_array a;
        r = charge(c, cost(&h->fields[i], n));
        if (!r) r = gather(c, m.p, h->itemsize, &h->fields[i], false, 1, &n, n, &a);
        if (!r) refund_strings(c, &h->fields[i], &a);
        if (!r && ad_recarray_append(&e->u.rec, h->fields[i].name, &a)) /* npy: distinct */
            r = adx_err_set(c->err, ADX_E_NOMEM, "", "out of memory");
    }
    unmap(&m);
    if (!r) e->u.rec.n = n;
    return r;
}

int parts_read(parts_set *s, const jdec_part_req *req, ad_elem **out, const char *pointer,
               adx_err *err)
{
    *out = NULL;
    adx_limits dl;
    const adx_limits *lim = s->lim;
    if (!lim) {
        adx_limits_default(&dl);
        lim = &dl;
    }
    rctx c = {.name = req->name,
              .pointer = pointer ? pointer : "",
              .lim = lim,
              .budget = s->budget,
              .err = err};
    parts_part *p = (parts_part *)parts_find(s, req->name);
    if (!p || !strcmp(req->name, PARTS_REQUEST))
        return fail(&c, ADX_E_SCHEMA,
                    p ? "the request part cannot hold an array"
                      : "referenced here but the request has no such part");
    p->refs++;
    uint8_t magic[6];
    size_t have = p->len < 6 ? (size_t)p->len : 6;
    if (pread_all(&c, p->fd, magic, have, p->off)) return -1;
    parts_npy h = {0};
    char t1[200], t2[200];
    if (parts_is_npy(magic, have)) {
        if (read_npy_header(&c, p, &h)) return -1;
    } else {
        if (req->recarray)
            return fail(&c, ADX_E_SCHEMA,
                        "a rec-array part must be a .npy file with a "
                        "structured dtype");
        if (!req->has_dtype || req->ndim < 0)
            return fail(&c, ADX_E_SCHEMA,
                        "a raw (non-.npy) part needs \"dtype\" and \"shape\" "
                        "in the request");
        h.elem.dtype = req->dtype;
        h.elem.size = (uint32_t)ad_dtype_size(req->dtype);
        h.itemsize = h.elem.size;
        h.ndim = req->ndim;
        memcpy(h.shape, req->shape, sizeof h.shape);
        if (ad_shape_product(h.ndim, h.shape, &h.n) ||
            __builtin_mul_overflow(h.n, h.itemsize, &(uint64_t){0}))
            return fail(&c, ADX_E_SCHEMA, "its shape overflows");
        if (h.n > lim->max_elements)
            return fail(&c, ADX_E_LIMIT, "%llu elements, over the limit max_elements = %llu",
                        (unsigned long long)h.n, (unsigned long long)lim->max_elements);
    }
    int rc = -1;
    if (h.structured && !req->recarray) {
        fail(&c, ADX_E_SCHEMA,
             "a structured (record) .npy where an array is expected; send it "
             "as {\"encoding-type\": \"rec-array\", \"part\": ...}");
        goto done;
    }
    if (!h.structured && req->recarray) {
        fail(&c, ADX_E_SCHEMA, "a rec-array part must be a .npy file with a structured dtype");
        goto done;
    }
    if (!h.structured && req->has_dtype && req->dtype != h.elem.dtype) {
        fail(&c, ADX_E_SHAPE, "\"dtype\" is %s but the .npy header says %s",
             ad_dtype_name(req->dtype), ad_dtype_name(h.elem.dtype));
        goto done;
    }
    if (req->ndim >= 0 && !same_shape(req->ndim, req->shape, h.ndim, h.shape)) {
        shape_text(t1, sizeof t1, req->ndim, req->shape);
        shape_text(t2, sizeof t2, h.ndim, h.shape);
        fail(&c, ADX_E_SHAPE, "\"shape\" is %s but the .npy header says %s", t1, t2);
        goto done;
    }
    uint64_t want = h.data_off + h.n * h.itemsize;
    if (p->len != want) {
        shape_text(t2, sizeof t2, h.ndim, h.shape);
        fail(&c, ADX_E_SCHEMA, "%llu bytes of data, but shape %s of %llu-byte %s needs %llu",
             (unsigned long long)(p->len - (p->len < h.data_off ? p->len : h.data_off)), t2,
             (unsigned long long)h.itemsize, h.structured ? "records" : "elements",
             (unsigned long long)(h.n * h.itemsize));
        goto done;
    }
    ad_elem *e = ad_elem_new(h.structured ? AD_K_RECARRAY : AD_K_ARRAY);
    if (!e) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        goto done;
    }
    if (h.structured ? read_records(&c, p, &h, e) : read_plain(&c, p, &h, &e->u.arr)) {
        ad_elem_free(e);
        goto done;
    }
    *out = e;
    rc = 0;
done:
    if (rc) adx_budget_release(c.budget, c.charged);
    parts_npy_free(&h);
    return rc;
}

int parts_jdec_part(void *ud, const jdec_part_req *req, ad_elem **out, const char *pointer,
                    adx_err *err)
{
    return parts_read(ud, req, out, pointer, err);
}
