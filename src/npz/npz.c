/* Layout (documented for users in tests/integration/formats/README-npz.md):
 * member names follow the h5ad element paths with keys escaped as in
 * zipw.h, and one extra member `_attrs.npy` (a 0-d '<U' string holding JSON)
 * carries what h5ad keeps in attributes: encoding-type per group element,
 * categorical `ordered`, DataFrame index name and column order, dict key
 * order, and for every dict/frame the [key, member-name] pairs so a reader
 * never has to unescape names itself. */
#include "adx_npz.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adx_utf8.h"
#include "npy.h"
#include "zipw.h"

/* ---- writer state ---- */

typedef struct npz_ctx {
    zw z;
    zw_path path;
    json_t *attrs;
    uint64_t max_member; /* cap on one member's expanded size */
    npz_pad pad;         /* fixed-width strings padded so far (npy.h) */
    adx_err *err;
    /* Arrays built here (shape, format, _attrs) must outlive zip_close. */
    ad_array **owned;
    size_t nowned, owncap;
    uint64_t charged; /* bytes of `owned` held in the request's budget */
    adx_ptr ptr;      /* JSON pointer of the element being written, for errors */
} npz_ctx;

/* Marks to pop the member path and the pointer back together. */
typedef struct mk {
    size_t path, ptr;
} mk;

static void pop(npz_ctx *c, mk m)
{
    zw_path_pop(&c->path, m.path);
    adx_ptr_pop(&c->ptr, m.ptr);
}

/* numpy.lib.format._MAX_HEADER_SIZE: np.load's default max_header_size. */
enum { NPY_LOAD_MAX_HEADER = 10000 };

static int nomem(npz_ctx *c)
{
    return adx_err_set(c->err, ADX_E_NOMEM, NULL, "out of memory while writing npz");
}

static void cur_pointer(npz_ctx *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s", adx_ptr_str(&c->ptr));
}

static int add_member(npz_ctx *c, npy_src *s, int64_t size)
{
    size_t ext = zw_path_lit(&c->path, ".npy");
    if (ext == SIZE_MAX) {
        npz_src_free(s);
        return nomem(c);
    }
    int rc = zw_add(&c->z, c->path.s, npz_src_read, npz_src_free, s, size, c->err);
    zw_path_pop(&c->path, ext);
    return rc;
}

static int pad_error(npz_ctx *c, const char *ptr, uint64_t n, uint64_t width, uint64_t padded)
{
    return adx_err_set(
        c->err, ADX_E_LIMIT, ptr,
        "npz stores strings fixed-width: %llu values padded to the longest (%llu "
        "code points) would be %llu code points, which with the export's other string "
        "arrays is more than 64 MiB and more than %u times their own size; export as "
        "h5ad or csv (strings unpadded) or shorten the longest value",
        (unsigned long long)n, (unsigned long long)width, (unsigned long long)padded,
        NPZ_PAD_RATIO);
}

/* Write array `a` as the member at the current path. */
static int put_array(npz_ctx *c, const ad_array *a)
{
    char descr[32];
    uint64_t body, width = 0;
    const void *data = NULL;
    if (a->dtype == AD_STR) {
        width = npz_str_width(a);
        if (__builtin_mul_overflow(width, 4, &body) || __builtin_mul_overflow(body, a->n, &body) ||
            body > c->max_member) {
            char ptr[ADX_ERR_PTR_MAX];
            cur_pointer(c, ptr, sizeof ptr);
            return adx_err_set(c->err, ADX_E_LIMIT, ptr,
                               "string array of %llu values, longest %llu code points, would "
                               "take more than %llu bytes as fixed-width unicode",
                               (unsigned long long)a->n, (unsigned long long)width,
                               (unsigned long long)c->max_member);
        }
        uint64_t padded;
        if (!npz_str_pad(&c->pad, a, width, &padded)) {
            char ptr[ADX_ERR_PTR_MAX];
            cur_pointer(c, ptr, sizeof ptr);
            return pad_error(c, ptr, a->n, width, padded);
        }
        snprintf(descr, sizeof descr, "<U%llu", (unsigned long long)width);
    } else {
        const char *d = npz_npy_descr(a->dtype);
        size_t nb;
        if (!d || ad_bytes(a->dtype, a->n, &nb) < 0) {
            char ptr[ADX_ERR_PTR_MAX];
            cur_pointer(c, ptr, sizeof ptr);
            return adx_err_set(c->err, ADX_E_INTERNAL, ptr, "array has an unknown dtype or size");
        }
        snprintf(descr, sizeof descr, "%s", d);
        data = a->data;
        body = nb;
    }
    size_t hlen;
    uint8_t *hdr = npz_npy_header(descr, a->ndim, a->shape, &hlen);
    if (!hdr) return nomem(c);
    uint64_t size;
    if (__builtin_add_overflow(body, (uint64_t)hlen, &size) || size > INT64_MAX) {
        free(hdr);
        return adx_err_set(c->err, ADX_E_LIMIT, NULL, "npz member too large");
    }
    npy_src *s = npz_src_new(hdr, hlen, data, data ? body : 0, data ? NULL : a, width);
    if (!s) return nomem(c);
    return add_member(c, s, (int64_t)size);
}

/* A small array built here (shape.npy, format.npy, _attrs.npy): kept in
 * the context until the archive is closed. Takes ownership of *a. */
static int put_owned_blob(npz_ctx *c, ad_array *a, ad_array **kept);

static int put_owned(npz_ctx *c, ad_array *a)
{
    ad_array *keep = NULL;
    if (put_owned_blob(c, a, &keep) < 0) return -1;
    return put_array(c, keep);
}

/* Keep a buffer built here until the archive is closed, without writing
 * it as a member of its own (*kept points at the stored copy). */
static int put_owned_blob(npz_ctx *c, ad_array *a, ad_array **kept)
{
    if (c->nowned == c->owncap) {
        size_t cap = c->owncap ? c->owncap * 2 : 16;
        ad_array **o = realloc(c->owned, cap * sizeof *o);
        if (!o) {
            ad_array_free(a);
            return nomem(c);
        }
        c->owned = o;
        c->owncap = cap;
    }
    ad_array *keep = malloc(sizeof *keep);
    if (!keep) {
        ad_array_free(a);
        return nomem(c);
    }
    *keep = *a;
    memset(a, 0, sizeof *a);
    c->owned[c->nowned++] = keep;
    *kept = keep;
    return 0;
}

static int put_str_scalar(npz_ctx *c, const char *text)
{
    ad_array a;
    if (ad_array_from_cstrs(&a, &text, 1) < 0) return nomem(c);
    a.ndim = 0; /* a 0-d string, as np.array('csr') */
    return put_owned(c, &a);
}

/* Extend the path by a literal child name (already a safe segment). */
static int child_lit(npz_ctx *c, const char *name, mk *m)
{
    m->ptr = adx_ptr_key(&c->ptr, name);
    m->path = zw_path_lit(&c->path, c->path.len ? "/" : "");
    if (m->path == SIZE_MAX || zw_path_lit(&c->path, name) == SIZE_MAX) {
        if (m->path != SIZE_MAX) zw_path_pop(&c->path, m->path);
        adx_ptr_pop(&c->ptr, m->ptr);
        return nomem(c);
    }
    return 0;
}

static json_t *attrs_for(npz_ctx *c, const char *enc, const char *ver)
{
    json_t *o = json_pack("{s:s,s:s}", "encoding-type", enc, "encoding-version", ver);
    if (!o || json_object_set_new(c->attrs, c->path.s ? c->path.s : "", o) < 0) return NULL;
    return o;
}

/* jansson refuses invalid UTF-8. Keys read from an h5ad may hold any bytes
 * and would also become zip member names: refuse them, by name. */
static json_t *jstr(npz_ctx *c, const char *s, const char *what)
{
    json_t *j = json_string(s);
    if (!j) {
        char ptr[ADX_ERR_PTR_MAX];
        cur_pointer(c, ptr, sizeof ptr);
        adx_err_set(c->err, ADX_E_SCHEMA, ptr, "%s is not valid UTF-8", what);
    }
    return j;
}

static int put_elem(npz_ctx *c, const ad_elem *e);

static int put_array_child(npz_ctx *c, const char *name, const ad_array *a)
{
    mk mark;
    if (child_lit(c, name, &mark) < 0) return -1;
    int rc = put_array(c, a);
    pop(c, mark);
    return rc;
}

/* Keyed children (dict entries, frame columns): each written under its
 * escaped key, and the [key, member] pair recorded in `keys`. */
static int put_keyed(npz_ctx *c, json_t *keys, const char *key, const ad_elem *v)
{
    json_t *k = jstr(c, key, "key");
    if (!k) return -1;
    mk mark;
    mark.path = zw_path_push(&c->path, key);
    if (mark.path == SIZE_MAX) {
        json_decref(k);
        return nomem(c);
    }
    mark.ptr = adx_ptr_key(&c->ptr, key);
    const char *member = c->path.s + mark.path + (mark.path ? 1 : 0);
    if (json_array_append_new(keys, json_pack("[o,s]", k, member)) < 0) {
        pop(c, mark);
        return nomem(c);
    }
    int rc = put_elem(c, v);
    pop(c, mark);
    return rc;
}

static int put_sparse(npz_ctx *c, const ad_sparse *sp)
{
    json_t *at = attrs_for(c, sp->csc ? "csc_matrix" : "csr_matrix", "0.1.0");
    if (!at || json_object_set_new(
                   at, "shape",
                   json_pack("[I,I]", (json_int_t)sp->shape[0], (json_int_t)sp->shape[1])) < 0)
        return nomem(c);
    if (put_array_child(c, "data", &sp->data) < 0 ||
        put_array_child(c, "indices", &sp->indices) < 0 ||
        put_array_child(c, "indptr", &sp->indptr) < 0)
        return -1;
    ad_array shp;
    uint64_t two = 2;
    if (ad_array_init(&shp, AD_I64, 1, &two) < 0) return nomem(c);
    ((int64_t *)shp.data)[0] = (int64_t)sp->shape[0];
    ((int64_t *)shp.data)[1] = (int64_t)sp->shape[1];
    mk mark;
    if (child_lit(c, "shape", &mark) < 0) {
        ad_array_free(&shp);
        return -1;
    }
    int rc = put_owned(c, &shp);
    pop(c, mark);
    if (rc < 0) return -1;
    if (child_lit(c, "format", &mark) < 0) return -1;
    rc = put_str_scalar(c, sp->csc ? "csc" : "csr");
    pop(c, mark);
    return rc;
}

static int put_frame(npz_ctx *c, const ad_frame *f)
{
    json_t *at = attrs_for(c, "dataframe", "0.2.0");
    json_t *order = json_array(), *keys = json_array();
    if (!at || !order || !keys) {
        json_decref(order);
        json_decref(keys);
        return nomem(c);
    }
    /* set_new takes the references even when it fails */
    if (json_object_set_new(at, "column-order", order) < 0 ||
        json_object_set_new(at, "keys", keys) < 0)
        return nomem(c);
    json_t *iname = f->index_name ? jstr(c, f->index_name, "index name") : json_null();
    if (!iname) return -1;
    if (json_object_set_new(at, "index-name", iname) < 0) return nomem(c);
    for (size_t i = 0; i < f->ncols; i++) {
        json_t *name = jstr(c, f->names[i], "column name");
        if (!name) return -1;
        if (json_array_append_new(order, name) < 0) return nomem(c);
    }
    ad_array empty_index = {0};
    const ad_array *idx = &f->index;
    if (!f->index.soff) {
        /* A zero-initialised frame has no index buffer yet: write 0 names. */
        uint64_t zero = 0;
        if (ad_array_init(&empty_index, AD_STR, 1, &zero) < 0) return nomem(c);
        mk mark;
        if (child_lit(c, "_index", &mark) < 0) {
            ad_array_free(&empty_index);
            return -1;
        }
        int rc = put_owned(c, &empty_index);
        pop(c, mark);
        if (rc < 0) return -1;
    } else if (put_array_child(c, "_index", idx) < 0) {
        return -1;
    }
    for (size_t i = 0; i < f->ncols; i++)
        if (put_keyed(c, keys, f->names[i], f->cols[i]) < 0) return -1;
    return 0;
}

static int put_dict(npz_ctx *c, const ad_dict *d)
{
    json_t *at = attrs_for(c, "dict", "0.1.0");
    json_t *keys = at ? json_array() : NULL;
    if (!keys || json_object_set_new(at, "keys", keys) < 0) return nomem(c);
    for (size_t i = 0; i < d->n; i++)
        if (put_keyed(c, keys, d->keys[i], d->vals[i]) < 0) return -1;
    return 0;
}

/* Python's repr of a field name, for the structured descr. Printable ASCII
 * only: numpy's format 1.0 header is latin-1 text, and names beyond ASCII
 * would need escapes numpy's parser and this writer would have to agree on. */
static int name_repr(npz_ctx *c, const char *name, zw_path *out)
{
    bool sq = strchr(name, '\'') != NULL, dq = strchr(name, '"') != NULL;
    char quote = sq && !dq ? '"' : '\'';
    char buf[4] = {quote, 0};
    if (zw_path_lit(out, buf) == SIZE_MAX) return nomem(c);
    if (!utf8_valid(name, strlen(name), NULL)) {
        char ptr[ADX_ERR_PTR_MAX];
        cur_pointer(c, ptr, sizeof ptr);
        return adx_err_set(c->err, ADX_E_SCHEMA, ptr,
                           "a record field name is not valid UTF-8, which an npz structured "
                           "dtype cannot name");
    }
    /* A Python string literal, as numpy's header is read with
     * ast.literal_eval: controls escaped, any other character as itself
     * (non-ASCII makes the header format 3.0, UTF-8: npz_npy_wrap). */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        char esc[8];
        if (*p < 0x20 || *p == 0x7f)
            snprintf(esc, sizeof esc, "\\x%02x", *p);
        else if (*p == '\\' || *p == (unsigned char)quote)
            snprintf(esc, sizeof esc, "\\%c", *p);
        else
            snprintf(esc, sizeof esc, "%c", *p);
        if (zw_path_lit(out, esc) == SIZE_MAX) return nomem(c);
    }
    buf[0] = quote;
    buf[1] = '\0';
    if (zw_path_lit(out, buf) == SIZE_MAX) return nomem(c);
    return 0;
}

/* A record array is one member of a structured dtype, as np.save writes a
 * np.recarray's array: fields in order, packed, strings as '<U n' (n = the
 * field's longest value in code points), so numpy.load needs no pickle. */
static int put_recarray(npz_ctx *c, const ad_recarray *r)
{
    if (!attrs_for(c, "rec-array", "0.2.0")) return nomem(c);
    char ptr[ADX_ERR_PTR_MAX];
    zw_path d = {0};
    uint8_t *hdr = NULL;
    uint64_t *width = calloc(r->nfields ? r->nfields : 1, sizeof *width);
    int rc = -1;
    if (!width || zw_path_lit(&d, "[") == SIZE_MAX) {
        rc = nomem(c);
        goto out;
    }
    uint64_t recsize = 0;
    for (size_t f = 0; f < r->nfields; f++) {
        const ad_array *a = &r->fields[f];
        char td[48];
        uint64_t es;
        if (a->dtype == AD_STR) {
            width[f] = npz_str_width(a);
            uint64_t padded;
            if (!npz_str_pad(&c->pad, a, width[f], &padded)) {
                cur_pointer(c, ptr, sizeof ptr);
                rc = pad_error(c, ptr, a->n, width[f], padded);
                goto out;
            }
            if (__builtin_mul_overflow(width[f], 4, &es)) es = UINT64_MAX;
            snprintf(td, sizeof td, "'<U%llu')", (unsigned long long)width[f]);
        } else {
            const char *nd = npz_npy_descr(a->dtype);
            if (!nd) {
                cur_pointer(c, ptr, sizeof ptr);
                rc = adx_err_set(c->err, ADX_E_INTERNAL, ptr, "record field of unknown dtype");
                goto out;
            }
            es = ad_dtype_size(a->dtype);
            snprintf(td, sizeof td, "'%s')", nd);
        }
        if (zw_path_lit(&d, f ? ", (" : "(") == SIZE_MAX || name_repr(c, r->names[f], &d) < 0 ||
            zw_path_lit(&d, ", ") == SIZE_MAX || zw_path_lit(&d, td) == SIZE_MAX) {
            if (!adx_err_failed(c->err)) nomem(c);
            goto out;
        }
        if (__builtin_add_overflow(recsize, es, &recsize)) recsize = UINT64_MAX;
    }
    uint64_t body;
    if (__builtin_mul_overflow(recsize, r->n, &body) || body > c->max_member) {
        cur_pointer(c, ptr, sizeof ptr);
        rc = adx_err_set(c->err, ADX_E_LIMIT, ptr,
                         "record array of %llu records would take more than %llu bytes in npz",
                         (unsigned long long)r->n, (unsigned long long)c->max_member);
        goto out;
    }
    if (zw_path_lit(&d, "]") == SIZE_MAX) {
        rc = nomem(c);
        goto out;
    }
    size_t hlen;
    uint64_t shape = r->n;
    hdr = npz_npy_header_repr(d.s, 1, &shape, &hlen);
    if (!hdr) {
        rc = nomem(c);
        goto out;
    }
    cur_pointer(c, ptr, sizeof ptr);
    /* numpy.load (1.24 on) refuses a header longer than max_header_size,
     * 10,000 bytes, unless given allow_pickle=True: a wider record would
     * make a file that needs exactly what npz promises not to. */
    if (hlen > NPY_LOAD_MAX_HEADER + 10) {
        rc = adx_err_set(c->err, ADX_E_LIMIT, ptr,
                         "a record array of %zu fields needs an .npy header of %zu bytes; "
                         "numpy.load reads at most %d without allow_pickle: fewer or shorter "
                         "field names",
                         r->nfields, hlen, NPY_LOAD_MAX_HEADER);
        goto out;
    }
    if (adx_ctl_charge(c->z.ctl, body, ptr, c->err) < 0) {
        rc = -1;
        goto out;
    }
    c->charged += body;
    ad_array blob;
    if (ad_array_init(&blob, AD_U8, 1, &body) < 0) {
        rc = nomem(c);
        goto out;
    }
    uint8_t *o = blob.data;
    for (uint64_t i = 0; i < r->n; i++)
        for (size_t f = 0; f < r->nfields; f++) {
            const ad_array *a = &r->fields[f];
            if (a->dtype != AD_STR) {
                size_t es = ad_dtype_size(a->dtype);
                memcpy(o, (const uint8_t *)a->data + i * es, es);
                o += es;
                continue;
            }
            const unsigned char *s = (const unsigned char *)ad_str_at(a, i);
            size_t bl = ad_str_len(a, i), at = 0;
            for (uint64_t k = 0; k < width[f]; k++, o += 4) {
                uint32_t cp = 0;
                if (at < bl) at += npz_utf8_next(s + at, bl - at, &cp);
                o[0] = (uint8_t)cp;
                o[1] = (uint8_t)(cp >> 8);
                o[2] = (uint8_t)(cp >> 16);
                o[3] = (uint8_t)(cp >> 24);
            }
        }
    ad_array *kept = NULL;
    if (put_owned_blob(c, &blob, &kept) < 0) goto out;
    npy_src *s = npz_src_new(hdr, hlen, kept->data, body, NULL, 0);
    hdr = NULL; /* the member's now, or freed */
    if (!s) {
        rc = nomem(c);
        goto out;
    }
    rc = add_member(c, s, (int64_t)(body + hlen));
out:
    free(hdr);
    zw_path_free(&d);
    free(width);
    return rc;
}

static int put_elem(npz_ctx *c, const ad_elem *e)
{
    if (adx_ctl_canceled(c->z.ctl))
        return adx_err_set(c->err, ADX_E_CANCELED, NULL, "export canceled");
    switch (e->kind) {
    case AD_K_ARRAY:
        return put_array(c, &e->u.arr);
    case AD_K_SPARSE:
        return put_sparse(c, &e->u.sp);
    case AD_K_FRAME:
        return put_frame(c, &e->u.df);
    case AD_K_CATEGORICAL: {
        json_t *at = attrs_for(c, "categorical", "0.2.0");
        if (!at || json_object_set_new(at, "ordered", json_boolean(e->u.cat.ordered)) < 0)
            return nomem(c);
        if (put_array_child(c, "codes", &e->u.cat.codes) < 0) return -1;
        return put_array_child(c, "categories", &e->u.cat.categories);
    }
    case AD_K_NULLABLE_INT:
    case AD_K_NULLABLE_BOOL:
        if (!attrs_for(c, e->kind == AD_K_NULLABLE_INT ? "nullable-integer" : "nullable-boolean",
                       "0.1.0"))
            return nomem(c);
        if (put_array_child(c, "values", &e->u.nl.values) < 0) return -1;
        return put_array_child(c, "mask", &e->u.nl.mask);
    case AD_K_DICT:
        return put_dict(c, &e->u.dict);
    case AD_K_RECARRAY:
        return put_recarray(c, &e->u.rec);
    default: {
        char ptr[ADX_ERR_PTR_MAX];
        cur_pointer(c, ptr, sizeof ptr);
        return adx_err_set(c->err, ADX_E_INTERNAL, ptr,
                           "element of kind %s reached the npz writer unsanitized",
                           ad_elem_encoding(e));
    }
    }
}

static int put_top_dict(npz_ctx *c, const char *name, const ad_dict *d)
{
    mk mark;
    if (child_lit(c, name, &mark) < 0) return -1;
    int rc = put_dict(c, d);
    pop(c, mark);
    return rc;
}

static int put_top_frame(npz_ctx *c, const char *name, const ad_frame *f)
{
    mk mark;
    if (child_lit(c, name, &mark) < 0) return -1;
    int rc = put_frame(c, f);
    pop(c, mark);
    return rc;
}

static int put_top_elem(npz_ctx *c, const char *name, const ad_elem *e)
{
    mk mark;
    if (child_lit(c, name, &mark) < 0) return -1;
    int rc = put_elem(c, e);
    pop(c, mark);
    return rc;
}

static int put_model(npz_ctx *c, const ad_anndata *a)
{
    json_t *root = json_pack("{s:s,s:s,s:[I,I]}", "encoding-type", "anndata", "encoding-version",
                             "0.1.0", "shape", (json_int_t)a->n_obs, (json_int_t)a->n_vars);
    if (!root || json_object_set_new(c->attrs, "", root) < 0) return nomem(c);
    if (a->X && put_top_elem(c, "X", a->X) < 0) return -1;
    for (int ns = 0; ns < AD_NS__COUNT; ns++) {
        const char *name = ad_ns_table[ns].name;
        if (ad_ns_table[ns].frame ? put_top_frame(c, name, ad_ns_cframe(a, (ad_ns)ns)) < 0
                                  : put_top_dict(c, name, ad_ns_cdict(a, (ad_ns)ns)) < 0)
            return -1;
    }
    if (a->raw) {
        mk mark;
        if (child_lit(c, "raw", &mark) < 0) return -1;
        int rc = attrs_for(c, "raw", "0.1.0") ? 0 : nomem(c);
        if (rc == 0 && a->raw->X) rc = put_top_elem(c, "X", a->raw->X);
        if (rc == 0) rc = put_top_frame(c, "var", &a->raw->var);
        if (rc == 0) rc = put_top_dict(c, "varm", &a->raw->varm);
        pop(c, mark);
        if (rc < 0) return -1;
    }
    /* _attrs last: it is complete only now. */
    char *txt = json_dumps(c->attrs, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!txt) return nomem(c);
    const char *t = txt;
    ad_array s;
    int rc = ad_array_from_cstrs(&s, &t, 1);
    free(txt);
    if (rc < 0) return nomem(c);
    s.ndim = 0;
    mk mark;
    if (child_lit(c, "_attrs", &mark) < 0) {
        ad_array_free(&s);
        return -1;
    }
    rc = put_owned(c, &s);
    pop(c, mark);
    return rc;
}

int npz_write_to(const ad_anndata *a, afile *out, adx_compression compression, int level,
                 const adx_ctl *ctl, adx_report *rep, adx_err *err)
{
    (void)rep; /* npz holds every element kind: nothing is left out */
    if (!a || !out) return adx_err_set(err, ADX_E_INTERNAL, NULL, "npz_write without a model");
    if (ad_anndata_assert(a, err) < 0) return -1;
    if (compression == ADX_COMP_LZF)
        return adx_err_set(err, ADX_E_BAD_OPTION, "/compression",
                           "lzf compression is not available for npz");
    if (adx_ctl_canceled(ctl)) return adx_err_set(err, ADX_E_CANCELED, NULL, "export canceled");
    npz_ctx c = {0};
    c.err = err;
    adx_ptr_init(&c.ptr, NULL);
    adx_limits lim;
    adx_limits_default(&lim);
    c.max_member = lim.max_total_bytes;
    c.attrs = json_object();
    if (!c.attrs) return nomem(&c);
    /* gzip level 0 means "no compression": store, as deflate level 0 would. */
    bool deflate = compression == ADX_COMP_GZIP && level != 0;
    int rc = zw_open(&c.z, out, deflate, level, ctl, err);
    if (rc == 0) rc = put_model(&c, a);
    if (rc == 0)
        rc = zw_close(&c.z, err);
    else
        zw_discard(&c.z);
    json_decref(c.attrs);
    zw_path_free(&c.path);
    for (size_t i = 0; i < c.nowned; i++) {
        ad_array_free(c.owned[i]);
        free(c.owned[i]);
    }
    free(c.owned);
    adx_ctl_release(ctl, c.charged);
    if (rc == 0) adx_ctl_progress(ctl, 1.0);
    return rc;
}

int npz_write(const ad_anndata *a, const char *path, adx_compression compression, int level,
              const adx_ctl *ctl, adx_report *rep, adx_err *err)
{
    if (!path) return adx_err_set(err, ADX_E_INTERNAL, NULL, "npz_write without a path");
    afile *f = afile_begin(path, NULL, err);
    if (!f) return -1;
    if (npz_write_to(a, f, compression, level, ctl, rep, err) != 0) {
        afile_abort(f);
        return -1;
    }
    return afile_commit(f, NULL, err);
}
