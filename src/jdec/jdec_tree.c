/* The streaming JSON parser and the compact document tree (jdec_tree.h).
 *
 * One pass over the input in 256 KiB chunks with an explicit stack: values
 * of an open array or object collect on one growing value stack and move
 * into a node of exactly their size when it closes, so no container is ever
 * grown element by element. Arrays of numbers are the exception: a closing
 * row of numbers leaves its words on the stack when its parent's rows so
 * far have the same shape, so a matrix ends as one run of words; if it is
 * large the stack buffer itself becomes its block (what lies below moves to
 * a new stack) and the words are never copied (packed arrays, jdec_tree.h).
 * A row that breaks the pattern turns the rows before it into nodes, once.
 * The frame of a top-level array re-encodes its words every enc_chunk
 * values into the narrowest exact form (jv_enc), so what stays on the stack
 * is about the size of the typed array it will become; a value that form
 * cannot keep turns the run back into words, once. A row (or 2-d slab) of
 * such an array that grows past row_chunk words joins the run before it
 * closes, and gets its words back if it turns out not to fit.
 * Small nodes come from an arena; nodes of JV_BIG_NODE bytes or more are
 * allocated alone so the decoder can release a converted element before it
 * decodes the next one.
 */
#include "jdec_tree.h"

#include <inttypes.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "adx_model.h"
#include "adx_utf8.h"
#include "jdec_num.h"

enum {
    CHUNK = 256 * 1024,
    ARENA_CHUNK = 2 * 1024 * 1024,
    JV_BIG_NODE = 32 * 1024,
    SMALL_OBJ = 16, /* objects up to this many keys find duplicates by scanning */
};

/* A big node: header + node, tracked in the document so it can be freed
 * early (jv_release) or at the end. */
typedef struct big_hdr {
    uint64_t idx, size;
    uint64_t pad[2]; /* keep the node 32-byte aligned */
} big_hdr;

typedef struct parser parser;

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
} arena_chunk;

struct jv_doc {
    jv root;
    adx_budget *budget;
    uint64_t charged; /* what this document charged and still holds */
    arena_chunk *arena;
    big_hdr **big;
    size_t nbig, capbig;
    jv_b64 **b64;
    size_t nb64, capb64;
    jv_block **blk;
    size_t nblk, capblk;
    parser *ps; /* while parsing, for the pointers of budget errors */
    /* the first failure of a lazy reader (jv_rows), which can only answer
     * "absent": the decoder fails with it (jv_doc_failed) */
    adx_err lazy_err;
};

/* ------------------------------------------------------------ memory */

static void cur_ptr(parser *ps, char *out, size_t depth);
static size_t parser_depth(const parser *ps);

static int doc_charge(jv_doc *d, uint64_t n, adx_err *err)
{
    char ptr[ADX_ERR_PTR_MAX] = "";
    if (d->budget && d->budget->limit && d->ps) cur_ptr(d->ps, ptr, parser_depth(d->ps));
    if (adx_budget_charge(d->budget, n, ptr, err)) return -1;
    d->charged += n;
    return 0;
}

static void doc_release(jv_doc *d, uint64_t n)
{
    adx_budget_release(d->budget, n);
    d->charged -= n;
}

static void *arena_alloc(jv_doc *d, size_t n, adx_err *err)
{
    n = (n + 7) & ~(size_t)7;
    arena_chunk *c = d->arena;
    if (!c || c->cap - c->used < n) {
        /* Chunks grow with the document (64 KiB up to ARENA_CHUNK), so a
         * small request costs little and a big one few allocations. */
        size_t cap = c ? (c->cap * 2 < ARENA_CHUNK ? c->cap * 2 : ARENA_CHUNK) : 64 * 1024;
        if (cap < n) cap = n;
        if (doc_charge(d, cap + sizeof *c, err)) return NULL;
        c = adx_mem_alloc(sizeof *c + cap);
        if (!c) {
            doc_release(d, cap + sizeof *c);
            adx_err_set(err, ADX_E_NOMEM, "", "out of memory while reading the request");
            return NULL;
        }
        c->next = d->arena;
        c->used = 0;
        c->cap = cap;
        d->arena = c;
    }
    void *p = c->mem + c->used;
    c->used += n;
    return p;
}

static void *big_alloc(jv_doc *d, size_t n, adx_err *err)
{
    if (d->nbig == d->capbig) {
        size_t nc = d->capbig ? d->capbig * 2 : 64;
        big_hdr **nb = realloc(d->big, nc * sizeof *nb);
        if (!nb) goto nomem;
        d->big = nb;
        d->capbig = nc;
    }
    if (doc_charge(d, n + sizeof(big_hdr), err)) return NULL;
    big_hdr *h = adx_mem_alloc(sizeof *h + n);
    if (!h) {
        doc_release(d, n + sizeof(big_hdr));
        goto nomem;
    }
    h->idx = d->nbig;
    h->size = n + sizeof *h;
    d->big[d->nbig++] = h;
    return h + 1;
nomem:
    adx_err_set(err, ADX_E_NOMEM, "", "out of memory while reading the request");
    return NULL;
}

static void *node_alloc(jv_doc *d, size_t n, adx_err *err)
{
    return n >= JV_BIG_NODE ? big_alloc(d, n, err) : arena_alloc(d, n, err);
}

/* An array node: with room for its n elements after it, or (words) only
 * the header, its elements living in a packed block. */
static jv_arr *arr_alloc(jv_doc *d, uint64_t n, bool words, adx_err *err)
{
    size_t sz = sizeof(jv_arr) + (words ? 0 : (size_t)n * sizeof(jv));
    jv_arr *a = node_alloc(d, sz, err);
    if (!a) return NULL;
    a->flags = (words ? JVA_WORDS : 0) | (sz >= JV_BIG_NODE ? JVA_BIG : 0);
    a->kinds = 0;
    a->n = n;
    a->v = words ? NULL : (jv *)(a + 1);
    a->blk = NULL;
    return a;
}

/* The words of a packed array: one malloc'd buffer (the value stack the
 * parser collected them on, handed over), the elements from word `off`. */
struct jv_block {
    void *mem;        /* NULL once taken or freed */
    uint64_t off;     /* words before the values */
    uint64_t n;       /* values */
    unsigned enc;     /* enum jv_enc of the values */
    int64_t lo, hi;   /* their range, for an integer encoding */
    uint64_t charged; /* = the allocation's size */
    jv_doc *doc;
    uint32_t kinds; /* of all the words */
    int ndim;
    uint64_t shape[AD_MAX_NDIM];
    jv rows; /* the row nodes once made (JVA_LAZY), else JV_NONE */
};

static size_t pack_min = JV_PACK_MIN;
/* Values of a top-level array are encoded every enc_chunk words: 64 KiB of
 * words stay in the cache while they are re-read. */
static size_t enc_chunk = JV_PACK_MIN / sizeof(jv);
/* A row of a top-level array longer than this many words goes into the
 * array's run before it ends (1 MiB of words by default). */
static size_t row_chunk = JV_PACK_MIN / sizeof(jv) * 16;

void jv_pack_min_set(size_t bytes)
{
    pack_min = bytes;
    enc_chunk = bytes == SIZE_MAX ? SIZE_MAX : bytes / sizeof(jv) ? bytes / sizeof(jv) : 1;
    row_chunk = enc_chunk == SIZE_MAX ? SIZE_MAX : enc_chunk == 1 ? 1 : enc_chunk * 16;
}

static void block_free(jv_doc *d, jv_block *b)
{
    if (!b->mem) return;
    free(b->mem);
    b->mem = NULL;
    doc_release(d, b->charged);
    b->charged = 0;
}

bool jv_packed_get(jv v, jv_packed *out)
{
    if (jv_tag(v) != JVT_ARR) return false;
    const jv_arr *a = jv_ptr(v);
    if (!a->blk || !a->blk->mem || !a->blk->ndim) return false;
    const jv_block *b = a->blk;
    out->data = (jv *)b->mem + b->off;
    out->words = b->enc == JV_ENC_WORDS ? (jv *)b->mem + b->off : NULL;
    out->enc = b->enc;
    out->lo = b->lo;
    out->hi = b->hi;
    out->n = b->n;
    out->kinds = b->kinds;
    out->base = b->mem;
    out->size = b->charged;
    out->ndim = a->blk->ndim;
    out->shape = a->blk->shape;
    return true;
}

/* Resize a block's allocation to `bytes`, the budget following. */
static int block_resize(jv_block *b, size_t bytes, const char *pointer, adx_err *err)
{
    jv_doc *d = b->doc;
    if (bytes > b->charged) {
        if (adx_budget_charge(d->budget, bytes - b->charged, pointer, err)) return -1;
        d->charged += bytes - b->charged;
    }
    /* a larger block is about to be written whole */
    void *p = bytes > b->charged ? adx_mem_grow(b->mem, b->charged, bytes) : realloc(b->mem, bytes);
    if (!p) {
        if (bytes > b->charged) doc_release(d, bytes - b->charged);
        return adx_err_set(err, ADX_E_NOMEM, pointer, "out of memory while decoding");
    }
    if (bytes < b->charged) doc_release(d, b->charged - bytes);
    b->mem = p;
    b->charged = bytes;
    return 0;
}

int jv_packed_grow(jv v, size_t bytes, jv_packed *pk, const char *pointer, adx_err *err)
{
    if (!jv_packed_get(v, pk)) return adx_err_set(err, ADX_E_INTERNAL, pointer, "no packed block");
    jv_block *b = ((jv_arr *)jv_ptr(v))->blk;
    if (bytes > b->charged && block_resize(b, bytes, pointer, err)) return -1;
    jv_packed_get(v, pk);
    return 0;
}

/* An encoded block back to words, in place (back to front: word i lands at
 * or after value i), for the readers that walk rows. */
static int block_widen(jv_block *b, adx_err *err)
{
    if (b->enc == JV_ENC_WORDS) return 0;
    if (block_resize(b, (size_t)(b->off + b->n) * sizeof(jv), "", err)) return -1;
    unsigned char *p = (unsigned char *)((jv *)b->mem + b->off);
    for (uint64_t i = b->n; i-- > 0;) {
        jv w = jv_enc_get(p, b->enc, i);
        memcpy(p + i * sizeof(jv), &w, sizeof w);
    }
    b->enc = JV_ENC_WORDS;
    return 0;
}

void *jv_packed_take(jv_doc *d, jv v, size_t bytes)
{
    jv_packed pk;
    if (!jv_packed_get(v, &pk)) return NULL;
    jv_block *b = ((jv_arr *)jv_ptr(v))->blk;
    void *p = b->mem;
    /* shrinking never needs more memory (mremap or a split chunk) */
    void *fit = realloc(p, bytes ? bytes : 1);
    if (fit) p = fit;
    doc_release(d, b->charged);
    b->charged = 0;
    b->mem = NULL;
    return p;
}

static void big_free(jv_doc *d, void *node)
{
    big_hdr *h = (big_hdr *)node - 1;
    d->big[h->idx] = NULL;
    doc_release(d, h->size);
    free(h);
}

static size_t node_size(jv v)
{
    switch (jv_tag(v)) {
    case JVT_STR:
        return sizeof(jv_str) + ((jv_str *)jv_ptr(v))->len + 1;
    case JVT_ARR: {
        const jv_arr *a = jv_ptr(v);
        return a->flags & JVA_BIG ? JV_BIG_NODE : 0;
    }
    case JVT_OBJ:
        return sizeof(jv_obj) + ((jv_obj *)jv_ptr(v))->n * 2 * sizeof(jv);
    default:
        return 0;
    }
}

static void release_walk(jv_doc *d, jv v)
{
    unsigned t = jv_tag(v);
    if (t == JVT_ARR) {
        const jv_arr *a = jv_ptr(v);
        /* a packed array's words are numbers: only its row nodes are walked */
        if (!(a->flags & (JVA_WORDS | JVA_LAZY)))
            for (uint64_t i = 0; i < a->n; i++)
                if (jv_tag(a->v[i]) >= JVT_BIG) release_walk(d, a->v[i]);
        if (a->blk) {
            block_free(d, a->blk);
            if (!jv_none(a->blk->rows)) release_walk(d, a->blk->rows);
            a->blk->rows = JV_NONE;
        }
    } else if (t == JVT_OBJ) {
        const jv_obj *o = jv_ptr(v);
        for (uint64_t i = 0; i < 2 * o->n; i++)
            if (jv_tag(o->kv[i]) >= JVT_BIG) release_walk(d, o->kv[i]);
    } else if (t == JVT_B64) {
        jv_b64 *b = jv_ptr(v);
        if (b->bytes) {
            free(b->bytes);
            doc_release(d, b->n);
            b->bytes = NULL;
        }
        free(b->text);
        b->text = NULL;
    }
    if (node_size(v) >= JV_BIG_NODE) big_free(d, jv_ptr(v));
}

void jv_release(jv_doc *d, jv *slot)
{
    if (!d || !slot) return;
    release_walk(d, *slot);
    *slot = JV_NONE;
}

jv *jv_object_slot(jv obj, const char *key)
{
    if (jv_tag(obj) != JVT_OBJ) return NULL;
    jv_obj *o = jv_ptr(obj);
    for (uint64_t i = 0; i < o->n; i++)
        if (!strcmp(((jv_str *)jv_ptr(o->kv[2 * i]))->s, key)) return &o->kv[2 * i + 1];
    return NULL;
}

uint8_t *jv_b64_take(jv_doc *d, jv v, uint64_t *n)
{
    (void)d;
    if (jv_tag(v) != JVT_B64) return NULL;
    jv_b64 *b = jv_ptr(v);
    uint8_t *p = b->bytes;
    *n = b->n;
    b->bytes = NULL;
    /* The charge stays with the request: the bytes are model data now. */
    if (p) d->charged -= b->n;
    return p;
}

bool jv_doc_failed(jv_doc *d, const char *ptr, adx_err *err)
{
    if (!d || !adx_err_failed(&d->lazy_err)) return false;
    if (adx_err_failed(err)) return true;
    /* the refusal was charged where no pointer is known (after the parse):
     * it belongs to the element being decoded */
    const adx_err *lz = &d->lazy_err;
    if (ptr && *ptr && lz->n_items && !lz->items[0].pointer[0])
        adx_err_set(err, lz->type, ptr, "%s", lz->detail);
    else
        *err = d->lazy_err;
    return true;
}

int jv_unpack(jv_doc *d, jv v, const char *pointer, adx_err *err)
{
    (void)d;
    if (jv_tag(v) != JVT_ARR) return 0;
    jv_arr *a = jv_ptr(v);
    if (a->v || !a->n || !(a->flags & JVA_LAZY) || !a->blk || !a->blk->mem) return 0;
    /* the same work as the lazy path, with the error where it belongs */
    adx_err *lz = &a->blk->doc->lazy_err;
    if (jv_rows(a)) return 0;
    adx_errtype t = lz->type;
    char msg[ADX_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", lz->detail);
    adx_err_init(lz);
    return adx_err_set(err, t == ADX_E_NONE ? ADX_E_NOMEM : t, pointer, "%s", msg);
}

jv jv_doc_root(const jv_doc *d)
{
    return d->root;
}

void jv_doc_free(jv_doc *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->nb64; i++) {
        free(d->b64[i]->bytes);
        free(d->b64[i]->text);
    }
    free(d->b64);
    for (size_t i = 0; i < d->nblk; i++)
        free(d->blk[i]->mem);
    free(d->blk);
    for (size_t i = 0; i < d->nbig; i++)
        free(d->big[i]);
    free(d->big);
    for (arena_chunk *c = d->arena, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    adx_budget_release(d->budget, d->charged);
    free(d);
}

/* ---------------------------------------------------------- accessors */

double jv_number_value(jv v)
{
    if (jv_tag(v) == 0) return jv_real_value(v);
    uint64_t u;
    if (jv_big_unsigned(v, &u)) return (double)u;
    return (double)jv_integer_value(v);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The text of a base64 value, rebuilt (the parser only keeps values whose
 * text is the canonical encoding of their bytes). NULL on ENOMEM. */
static jv_str *b64_text(jv_b64 *b)
{
    if (b->text) return b->text;
    jv_str *s = malloc(sizeof *s + (b->n + 2) / 3 * 4 + 1);
    if (!s) return NULL;
    char *o = s->s;
    uint64_t i = 0, n = b->n;
    const uint8_t *p = b->bytes;
    for (; i + 3 <= n; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64chars[x >> 18];
        *o++ = b64chars[(x >> 12) & 63];
        *o++ = b64chars[(x >> 6) & 63];
        *o++ = b64chars[x & 63];
    }
    if (n - i == 1) {
        uint32_t x = (uint32_t)p[i] << 16;
        *o++ = b64chars[x >> 18];
        *o++ = b64chars[(x >> 12) & 63];
        if (b->padded) *o++ = '=', *o++ = '=';
    } else if (n - i == 2) {
        uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = b64chars[x >> 18];
        *o++ = b64chars[(x >> 12) & 63];
        *o++ = b64chars[(x >> 6) & 63];
        if (b->padded) *o++ = '=';
    }
    *o = '\0';
    s->len = (uint64_t)(o - s->s);
    b->text = s;
    return s;
}

const char *jv_string_value(jv v)
{
    if (jv_tag(v) == JVT_STR) return ((const jv_str *)jv_ptr(v))->s;
    if (jv_tag(v) == JVT_B64) {
        jv_b64 *b = jv_ptr(v);
        if (!b->bytes && !b->text) return ""; /* adopted: the text is gone */
        jv_str *s = b64_text(b);
        return s ? s->s : "";
    }
    return NULL;
}

size_t jv_string_length(jv v)
{
    if (jv_tag(v) == JVT_STR) return ((const jv_str *)jv_ptr(v))->len;
    if (jv_tag(v) == JVT_B64) return ((const jv_b64 *)jv_ptr(v))->text_len;
    return 0;
}

jv jv_object_get(jv v, const char *key)
{
    jv *s = jv_object_slot(v, key);
    return s ? *s : JV_NONE;
}

/* --------------------------------------------------------------- dump */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void dump_str(sbuf *b, const char *s, size_t n)
{
    sb_add(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (c < 0x20) {
                snprintf(u, sizeof u, "\\u%04X", c);
                esc = u;
            }
        }
        if (esc) {
            sb_add(b, s + i - run, run);
            run = 0;
            sb_add(b, esc, strlen(esc));
        } else {
            run++;
        }
    }
    sb_add(b, s + n - run, run);
    sb_add(b, "\"", 1);
}

/* Python's json.dumps: repr(float), and for what JSON cannot spell the
 * tokens Python's json.loads reads back (1e400 decodes to inf). */
static void dump_real(sbuf *b, double x)
{
    char buf[32];
    if (isnan(x))
        strcpy(buf, "NaN");
    else if (isinf(x))
        strcpy(buf, x < 0 ? "-Infinity" : "Infinity");
    else
        ad_fmt_pyfloat(x, buf);
    sb_add(b, buf, strlen(buf));
}

static void dump(sbuf *b, jv v)
{
    char num[32];
    switch (jv_typeof(v)) {
    case JV_NULL_T:
    case JV_MISSING:
        sb_add(b, "null", 4);
        break;
    case JV_TRUE_T:
        sb_add(b, "true", 4);
        break;
    case JV_FALSE_T:
        sb_add(b, "false", 5);
        break;
    case JV_INTEGER: {
        uint64_t u;
        if (jv_big_unsigned(v, &u))
            snprintf(num, sizeof num, "%" PRIu64, u);
        else
            snprintf(num, sizeof num, "%" PRId64, jv_integer_value(v));
        sb_add(b, num, strlen(num));
        break;
    }
    case JV_REAL:
        dump_real(b, jv_real_value(v));
        break;
    case JV_STRING:
        dump_str(b, jv_string_value(v), jv_string_length(v));
        break;
    case JV_ARRAY:
        sb_add(b, "[", 1);
        for (size_t i = 0; i < jv_array_size(v); i++) {
            if (i) sb_add(b, ",", 1);
            dump(b, jv_array_get(v, i));
        }
        sb_add(b, "]", 1);
        break;
    case JV_OBJECT:
        sb_add(b, "{", 1);
        for (size_t i = 0; i < jv_object_size(v); i++) {
            if (i) sb_add(b, ",", 1);
            const char *k = jv_object_key(v, i);
            dump_str(b, k, strlen(k));
            sb_add(b, ":", 1);
            dump(b, jv_object_val(v, i));
        }
        sb_add(b, "}", 1);
        break;
    }
}

char *jv_dumps(jv v)
{
    sbuf b = {0};
    dump(&b, v);
    if (b.oom || !b.p) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ------------------------------------------------------------- parser */

typedef struct frame {
    bool obj;
    size_t base;    /* value-stack index of the first element / key */
    uint64_t count; /* elements, or members so far */
    uint32_t *ht;   /* duplicate-key set of a large object (indexes + 1) */
    size_t htcap;
    /* arrays: OR of JV_K() of the elements, or of the leaves when packed */
    uint32_t kinds;
    /* pk_nd > 0: every element so far is a packed array of this rank and
     * shape whose words lie on the value stack (no node made for them) */
    uint32_t pk_nd;
    uint64_t pk_shape[AD_MAX_NDIM];
    /* A top-level array (its parent is not an array) encodes its values as
     * they come (jdec_tree.h, jv_enc): enc_n values of encoding `enc` from
     * the byte at word `base`, then words from `pend` not yet encoded.
     * ENC_OFF: words only (a row, an object, or values no encoding keeps). */
    unsigned enc;
    uint64_t enc_n;
    size_t pend;
    int64_t lo, hi;
    bool in_arr;  /* some frame below is an array */
    bool has_enc; /* an object whose "encoding-type": "array" came */
    bool has_f32; /* an object whose "dtype": "float32" came */
    bool f32x;    /* an array that is such an object's "data": JV_ENC_F32X */
    /* a row (or slab) of a top-level array: how many of its values went
     * into the parent's run already (its words from `base` are the rest) */
    uint64_t early;
} frame;

enum { ENC_NONE = 100, ENC_OFF = JV_ENC_WORDS };

/* Leaves a packed array may hold: numbers, null, booleans. */
#define PACK_KINDS                                                                                 \
    (JV_K(0) | JV_K(JVT_INT) | JV_K(JVT_BIG) | JV_K(JVT_NULL) | JV_K(JVT_TRUE) | JV_K(JVT_FALSE))

struct parser {
    const jv_parse_opts *o;
    const adx_limits *lim;
    adx_err *err;
    jv_doc *d;
    adx_src *src;
    unsigned char *buf;
    const unsigned char *p, *end;
    bool eof;
    uint64_t off;              /* stream offset of buf[0] */
    uint64_t line, line_start; /* for messages: 1-based line, offset of its start */
    jv *vs;                    /* value stack */
    size_t vn, vcap;
    frame *fs;
    size_t fn, fcap;
    uint32_t max_nest;
    char *sb; /* string scratch */
    size_t sblen, sbcap;
    uint64_t scratch_charged;
    bool next_is_b64; /* the value being read belongs to a "base64" key */
    locale_t cloc;
};

/* The pointer of the value being read, from the open frames: an array's
 * element is at index `count`, an object's member has its key on the value
 * stack once it is being read. */
static void cur_ptr(parser *ps, char *out, size_t depth)
{
    adx_ptr p;
    adx_ptr_init(&p, ps->o->base_ptr);
    for (size_t i = 0; i < depth && i < ps->fn; i++) {
        const frame *f = &ps->fs[i];
        if (f->obj) {
            size_t kk = f->base + 2 * f->count;
            if (kk < ps->vn && jv_tag(ps->vs[kk]) == JVT_STR)
                adx_ptr_key(&p, ((jv_str *)jv_ptr(ps->vs[kk]))->s);
        } else {
            adx_ptr_idx(&p, f->count);
        }
    }
    snprintf(out, ADX_ERR_PTR_MAX, "%s", adx_ptr_str(&p));
}

static int p_fail(parser *ps, adx_errtype t, bool at_container, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int p_fail(parser *ps, adx_errtype t, bool at_container, const char *fmt, ...)
{
    char ptr[ADX_ERR_PTR_MAX], msg[ADX_ERR_MSG_MAX];
    cur_ptr(ps, ptr, at_container && ps->fn ? ps->fn - 1 : ps->fn);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (t == ADX_E_INVALID_JSON) {
        uint64_t at = ps->off + (uint64_t)(ps->p - ps->buf);
        return adx_err_set(ps->err, t, ptr,
                           "malformed JSON at line %" PRIu64 ", column %" PRIu64 ": %s", ps->line,
                           at - ps->line_start + 1, msg);
    }
    return adx_err_set(ps->err, t, ptr, "%s", msg);
}

static size_t parser_depth(const parser *ps)
{
    return ps->fn;
}

static int p_syntax(parser *ps, const char *what)
{
    return p_fail(ps, ADX_E_INVALID_JSON, false, "%s", what);
}

/* Charge the budget at the current pointer. */
static int p_charge(parser *ps, uint64_t n)
{
    return doc_charge(ps->d, n, ps->err);
}

static int refill(parser *ps)
{
    if (ps->eof) return 0;
    const adx_ctl *ctl = ps->o->ctl;
    if (adx_ctl_canceled(ctl))
        return adx_err_set(ps->err, ADX_E_CANCELED, "", "the job was canceled while reading");
    ps->off += (uint64_t)(ps->end - ps->buf);
    ssize_t r = adx_src_read(ps->src, ps->buf, CHUNK, ps->err);
    if (r < 0) return -1;
    ps->p = ps->buf;
    ps->end = ps->buf + r;
    if (r == 0) ps->eof = true;
    uint64_t total = adx_src_total(ps->src);
    if (ctl && ctl->progress && total)
        adx_ctl_progress(ctl,
                         ps->o->progress_scale * (double)adx_src_consumed(ps->src) / (double)total);
    return 0;
}

/* Next byte without consuming it; -1 at the end, -2 on a read error. */
static inline int peekc(parser *ps)
{
    if (ps->p == ps->end) {
        if (refill(ps)) return -2;
        if (ps->p == ps->end) return -1;
    }
    return *ps->p;
}

static int skip_ws(parser *ps)
{
    for (;;) {
        while (ps->p < ps->end) {
            unsigned char c = *ps->p;
            if (c == ' ' || c == '\t' || c == '\r')
                ps->p++;
            else if (c == '\n') {
                ps->p++;
                ps->line++;
                ps->line_start = ps->off + (uint64_t)(ps->p - ps->buf);
            } else
                return c;
        }
        if (refill(ps)) return -2;
        if (ps->p == ps->end) return -1;
    }
}

/* Above this the value stack grows by this many words at a time, so its
 * unused room stays under 8 MiB whatever the array (glibc grows such a
 * buffer with mremap, without a copy). */
#define VS_STEP ((size_t)1 << 20)

static int vreserve(parser *ps, size_t need);

static int vpush(parser *ps, jv v)
{
    if (ps->vn == ps->vcap && vreserve(ps, ps->vn + 1)) return -1;
    ps->vs[ps->vn++] = v;
    return 0;
}

/* ---- strings ---- */

static int sb_reserve(parser *ps, size_t more)
{
    if (ps->sblen + more + 1 <= ps->sbcap) return 0;
    size_t nc = ps->sbcap ? ps->sbcap : 256;
    while (nc < ps->sblen + more + 1)
        nc *= 2;
    if (p_charge(ps, nc - ps->sbcap)) return -1;
    char *n = realloc(ps->sb, nc);
    if (!n) return adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory reading the request");
    ps->sb = n;
    ps->sbcap = nc;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int get_hex4(parser *ps, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int c = peekc(ps);
        if (c == -2) return -1;
        int h = c < 0 ? -1 : hexval(c);
        if (h < 0) return p_syntax(ps, "invalid \\u escape (four hex digits expected)");
        ps->p++;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 0;
}

static void put_utf8(parser *ps, uint32_t cp)
{
    char *o = ps->sb + ps->sblen;
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 63));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | ((cp >> 6) & 63));
        *o++ = (char)(0x80 | (cp & 63));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | ((cp >> 12) & 63));
        *o++ = (char)(0x80 | ((cp >> 6) & 63));
        *o++ = (char)(0x80 | (cp & 63));
    }
    ps->sblen = (size_t)(o - ps->sb);
}

static int escape(parser *ps)
{
    int c = peekc(ps);
    if (c == -2) return -1;
    if (c < 0) return p_syntax(ps, "the request ends inside a string");
    ps->p++;
    if (sb_reserve(ps, 4)) return -1;
    char simple = 0;
    switch (c) {
    case '"':
    case '\\':
    case '/':
        simple = (char)c;
        break;
    case 'b':
        simple = '\b';
        break;
    case 'f':
        simple = '\f';
        break;
    case 'n':
        simple = '\n';
        break;
    case 'r':
        simple = '\r';
        break;
    case 't':
        simple = '\t';
        break;
    case 'u': {
        uint32_t cp;
        if (get_hex4(ps, &cp)) return -1;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return p_syntax(ps, "lone low surrogate in a \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            int a = peekc(ps);
            if (a == -2) return -1;
            if (a != '\\') return p_syntax(ps, "lone high surrogate in a \\u escape");
            ps->p++;
            a = peekc(ps);
            if (a == -2) return -1;
            if (a != 'u') return p_syntax(ps, "lone high surrogate in a \\u escape");
            ps->p++;
            uint32_t lo;
            if (get_hex4(ps, &lo)) return -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return p_syntax(ps, "lone high surrogate in a \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        /* Valid JSON, but h5ad's strings (HDF5's, C's) end at U+0000 and
         * numpy's <U drops trailing ones: no output could keep it. */
        if (cp == 0)
            return p_fail(ps, ADX_E_SCHEMA, false,
                          "a string holds \\u0000 (U+0000), which the output formats cannot "
                          "store (h5ad and numpy strings end at it)");
        put_utf8(ps, cp);
        return 0;
    }
    default:
        return p_syntax(ps, "invalid escape in a string");
    }
    ps->sb[ps->sblen++] = simple;
    return 0;
}

/* One UTF-8 sequence whose lead byte is at ps->p (>= 0x80): the lead and
 * its continuation bytes (which may straddle a chunk), judged by the core
 * decoder (no overlong forms, no surrogates, nothing above U+10FFFF). */
static int utf8_seq(parser *ps)
{
    unsigned char seq[4];
    size_t k = 0;
    seq[k++] = *ps->p++;
    while (k < 4) {
        int c = peekc(ps);
        if (c == -2) return -1;
        if (c < 0 || (c & 0xC0) != 0x80) break;
        seq[k++] = (unsigned char)c;
        ps->p++;
    }
    uint32_t cp;
    if (utf8_decode(seq, k, &cp) != k) return p_syntax(ps, "invalid UTF-8 in a string");
    if (sb_reserve(ps, 4)) return -1;
    memcpy(ps->sb + ps->sblen, seq, k);
    ps->sblen += k;
    return 0;
}

/* Read a string body (after the opening quote) into the scratch buffer.
 * `cap` bounds its length (0 = none) with `what` naming the limit. */
static int lex_string(parser *ps, uint64_t cap, const char *what, bool key)
{
    ps->sblen = 0;
    for (;;) {
        const unsigned char *s = ps->p, *e = ps->end;
        while (s < e && *s >= 0x20 && *s != '"' && *s != '\\' && *s < 0x80)
            s++;
        size_t run = (size_t)(s - ps->p);
        if (run) {
            if (sb_reserve(ps, run)) return -1;
            memcpy(ps->sb + ps->sblen, ps->p, run);
            ps->sblen += run;
            ps->p = s;
        }
        if (cap && ps->sblen > cap)
            return p_fail(ps, ADX_E_LIMIT, key,
                          "%s longer than %" PRIu64 " bytes exceeds %s = %" PRIu64,
                          key ? "a key" : "a string", cap, what, cap);
        int c = peekc(ps);
        if (c == -2) return -1;
        if (c < 0) return p_syntax(ps, "the request ends inside a string");
        if (c == '"') {
            ps->p++;
            /* an empty first string has no buffer yet: reserve its NUL */
            if (sb_reserve(ps, 0)) return -1;
            ps->sb[ps->sblen] = '\0';
            return 0;
        }
        if (c == '\\') {
            ps->p++;
            if (escape(ps)) return -1;
        } else if (c < 0x20) {
            return p_syntax(ps, "control character in a string (escape it)");
        } else if (c >= 0x80) {
            if (utf8_seq(ps)) return -1;
        }
    }
}

static int make_str(parser *ps, jv *out)
{
    jv_str *s = node_alloc(ps->d, sizeof *s + ps->sblen + 1, ps->err);
    if (!s) return -1;
    s->len = ps->sblen;
    memcpy(s->s, ps->sb, ps->sblen + 1);
    *out = jv_box(JVT_STR, s);
    return 0;
}

/* ---- base64 ---- */

/* Decoding table: the 6-bit value, 0x80 for any other byte. */
static uint8_t b64dec[256];
static uint32_t b64d0[256], b64d1[256], b64d2[256], b64d3[256];

static void b64_init(void)
{
    static _Atomic int done;
    if (atomic_load(&done)) return;
    for (int i = 0; i < 256; i++) {
        b64dec[i] = 0x80;
        b64d0[i] = b64d1[i] = b64d2[i] = b64d3[i] = 0x01000000u;
    }
    for (int i = 0; i < 64; i++) {
        unsigned char c = (unsigned char)b64chars[i];
        b64dec[c] = (uint8_t)i;
        /* pre-shifted so four lookups OR into three output bytes (little-
         * endian byte order: b0 | b1 << 8 | b2 << 16); bit 24 flags junk */
        b64d0[c] = (uint32_t)i << 2;
        b64d1[c] = (uint32_t)(i >> 4) | (uint32_t)(i & 15) << 12;
        b64d2[c] = (uint32_t)(i >> 2) << 8 | (uint32_t)(i & 3) << 22;
        b64d3[c] = (uint32_t)i << 16;
    }
    atomic_store(&done, 1);
}

/* Decode as many whole quads of [s, e) as are valid into o; returns the
 * characters consumed (a multiple of 4) and the bytes written in *w. Each
 * pair of quads is stored as one 8-byte write whose last two bytes the
 * next overwrites, so o needs two bytes of slack. */
static size_t b64_quads(const unsigned char *s, const unsigned char *e, uint8_t *o, size_t *w)
{
    size_t i = 0, n = (size_t)(e - s), k = 0;
    while (i + 16 <= n) {
        const unsigned char *q = s + i;
        uint32_t a = b64d0[q[0]] | b64d1[q[1]] | b64d2[q[2]] | b64d3[q[3]];
        uint32_t b = b64d0[q[4]] | b64d1[q[5]] | b64d2[q[6]] | b64d3[q[7]];
        uint32_t c = b64d0[q[8]] | b64d1[q[9]] | b64d2[q[10]] | b64d3[q[11]];
        uint32_t d = b64d0[q[12]] | b64d1[q[13]] | b64d2[q[14]] | b64d3[q[15]];
        if ((a | b | c | d) & 0x01000000u) break;
        uint64_t lo = (uint64_t)a | (uint64_t)b << 24, hi = (uint64_t)c | (uint64_t)d << 24;
        memcpy(o + k, &lo, 8);
        memcpy(o + k + 6, &hi, 8);
        i += 16;
        k += 12;
    }
    while (i + 4 <= n) {
        uint32_t x = b64d0[s[i]] | b64d1[s[i + 1]] | b64d2[s[i + 2]] | b64d3[s[i + 3]];
        if (x & 0x01000000u) break;
        memcpy(o + k, &x, 4);
        i += 4;
        k += 3;
    }
    *w = k;
    return i;
}

size_t jv_b64_decode(const char *s, size_t n, uint8_t *o, size_t *written)
{
    b64_init();
    return b64_quads((const unsigned char *)s, (const unsigned char *)s + n, o, written);
}

/* A "base64" string: decoded as it streams into a byte buffer. If the
 * text is not canonical base64 (a stray character, bad padding, non-zero
 * trailing bits, an escape) it is kept as an ordinary string instead, so
 * the decoder reports the problem exactly as for any string. */
static int lex_b64(parser *ps, jv *out)
{
    b64_init();
    jv_doc *d = ps->d;
    size_t cap = 0, n = 0;
    uint8_t *bytes = NULL;
    uint64_t chars = 0, charged = 0;
    unsigned char tail[4];
    size_t ntail = 0;
    int pad = 0;
    for (;;) {
        if (ps->p == ps->end) {
            if (refill(ps)) goto fail;
            if (ps->p == ps->end) {
                free(bytes);
                doc_release(d, charged);
                return p_syntax(ps, "the request ends inside a string");
            }
        }
        /* room for this whole chunk decoded */
        size_t avail = (size_t)(ps->end - ps->p);
        size_t need = n + avail / 4 * 3 + 8;
        if (need > cap) {
            size_t nc = cap ? cap : 4096;
            while (nc < need)
                nc *= 2;
            if (p_charge(ps, nc - cap)) goto fail;
            charged += nc - cap;
            uint8_t *nb = adx_mem_grow(bytes, n, nc);
            if (!nb) {
                adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory reading the request");
                goto fail;
            }
            bytes = nb;
            cap = nc;
        }
        if (ntail == 0 && !pad) {
            size_t w;
            size_t used = b64_quads(ps->p, ps->end, bytes + n, &w);
            ps->p += used;
            n += w;
            chars += used;
        }
        /* the slow path: a quad split by the chunk end, padding, the end */
        while (ps->p < ps->end) {
            unsigned char c = *ps->p;
            if (c == '"') {
                ps->p++;
                goto done;
            }
            if (pad) {
                if (c != '=' || pad == 2) goto text;
                pad++;
                ps->p++;
                chars++;
                continue;
            }
            if (c == '=') {
                if (ntail < 2) goto text;
                pad = 1;
                ps->p++;
                chars++;
                continue;
            }
            if (b64dec[c] & 0x80) goto text;
            tail[ntail++] = c;
            ps->p++;
            chars++;
            if (ntail == 4) {
                uint32_t x = b64d0[tail[0]] | b64d1[tail[1]] | b64d2[tail[2]] | b64d3[tail[3]];
                bytes[n++] = (uint8_t)x;
                bytes[n++] = (uint8_t)(x >> 8);
                bytes[n++] = (uint8_t)(x >> 16);
                ntail = 0;
                break; /* back to the fast loop */
            }
        }
    }
done:
    /* A partial quad: 2 or 3 characters with zero trailing bits; padding
     * must complete the quad. */
    if (ntail == 1) goto text_end;
    if (ntail == 2) {
        if (b64dec[tail[1]] & 15) goto text_end;
        if (pad && pad != 2) goto text_end;
        bytes[n++] = (uint8_t)(b64dec[tail[0]] << 2 | b64dec[tail[1]] >> 4);
    } else if (ntail == 3) {
        if (b64dec[tail[2]] & 3) goto text_end;
        if (pad && pad != 1) goto text_end;
        bytes[n++] = (uint8_t)(b64dec[tail[0]] << 2 | b64dec[tail[1]] >> 4);
        bytes[n++] = (uint8_t)(b64dec[tail[1]] << 4 | b64dec[tail[2]] >> 2);
    } else if (pad) {
        goto text_end;
    }
    {
        jv_b64 *b = arena_alloc(d, sizeof *b, ps->err);
        if (!b) goto fail;
        if (d->nb64 == d->capb64) {
            size_t nc = d->capb64 ? d->capb64 * 2 : 16;
            jv_b64 **nb = realloc(d->b64, nc * sizeof *nb);
            if (!nb) {
                adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory reading the request");
                goto fail;
            }
            d->b64 = nb;
            d->capb64 = nc;
        }
        /* Trim to size; the charge follows. */
        if (n) {
            uint8_t *fit = realloc(bytes, n);
            if (fit) bytes = fit;
        } else {
            free(bytes);
            bytes = NULL;
        }
        doc_release(d, charged - n);
        *b = (jv_b64){.n = n, .bytes = bytes, .text_len = chars, .padded = pad != 0};
        d->b64[d->nb64++] = b;
        *out = jv_box(JVT_B64, b);
        return 0;
    }
text_end:
    /* the closing quote was consumed: rebuild the whole text */
    ps->p--;
text : {
    /* Rebuild the text read so far (the decoded quads re-encode to exactly
     * the characters they came from), then read the rest as a string. */
    jv_b64 tmp = {.n = n, .bytes = bytes};
    jv_str *t = b64_text(&tmp);
    if (!t) {
        adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory reading the request");
        goto fail;
    }
    ps->sblen = 0;
    int r = sb_reserve(ps, t->len + ntail + (size_t)pad);
    if (!r) {
        memcpy(ps->sb, t->s, t->len);
        memcpy(ps->sb + t->len, tail, ntail);
        memset(ps->sb + t->len + ntail, '=', (size_t)pad);
        ps->sblen = t->len + ntail + (size_t)pad;
    }
    free(t);
    free(bytes);
    doc_release(d, charged);
    if (r) return -1;
    size_t keep = ps->sblen;
    char *saved = malloc(keep + 1);
    if (!saved) return adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory reading the request");
    memcpy(saved, ps->sb, keep);
    r = lex_string(ps, 0, NULL, false);
    if (!r) r = sb_reserve(ps, keep);
    if (!r) {
        memmove(ps->sb + keep, ps->sb, ps->sblen + 1);
        memcpy(ps->sb, saved, keep);
        ps->sblen += keep;
    }
    free(saved);
    return r ? -1 : make_str(ps, out);
}
fail:
    free(bytes);
    doc_release(d, charged);
    return -1;
}

/* ---- numbers ---- */

static int num_value(parser *ps, int r, const jn_num *num, jv *out);

static int lex_number(parser *ps, jv *out)
{
    /* the common case: the token ends inside the buffer, one pass */
    jn_num fast;
    const char *fe;
    int fr = jn_scan((const char *)ps->p, (const char *)ps->end, ps->cloc, &fast, &fe);
    if (fr && fr != JN_BAD) {
        ps->p = (const unsigned char *)fe;
        return num_value(ps, fr, &fast, out);
    }
    char tmp[128];
    char *tok = tmp;
    const char *in = NULL; /* the token in the read buffer, when it lies there whole */
    size_t len = 0, cap = sizeof tmp;
    const unsigned char *s = ps->p, *e = ps->end;
    /* fast path: the token ends inside the buffer */
    while (s < e && jn_is_numchar(*s))
        s++;
    if (s < e) {
        /* Parsed where it lies: a non-number byte follows it in the
         * buffer, so even strtod stops at its end. */
        in = (const char *)ps->p;
        len = (size_t)(s - ps->p);
        ps->p = s;
    } else if (ps->eof) {
        len = (size_t)(s - ps->p);
        if (len >= cap) {
            tok = malloc(len + 1);
            if (!tok) return adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory");
        }
        memcpy(tok, ps->p, len);
        ps->p = s;
        tok[len] = '\0';
    } else {
        for (;;) {
            int c = peekc(ps);
            if (c == -2) {
                if (tok != tmp) free(tok);
                return -1;
            }
            if (c < 0 || !jn_is_numchar((unsigned char)c)) break;
            if (len + 1 >= cap) {
                if (cap >= (1u << 20)) {
                    if (tok != tmp) free(tok);
                    return p_fail(ps, ADX_E_LIMIT, false, "a number of more than 1 MiB");
                }
                char *nt = malloc(cap * 2);
                if (!nt) {
                    if (tok != tmp) free(tok);
                    return adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory");
                }
                memcpy(nt, tok, len);
                if (tok != tmp) free(tok);
                tok = nt;
                cap *= 2;
            }
            tok[len++] = (char)c;
            ps->p++;
        }
    }
    if (!in) tok[len] = '\0';
    jn_num num;
    int r = jn_parse(in ? in : tok, len, ps->cloc, &num);
    if (tok != tmp) free(tok);
    return num_value(ps, r, &num, out);
}

static int num_value(parser *ps, int r, const jn_num *n, jv *out)
{
    jn_num num = *n;
    switch (r) {
    case JN_BAD:
        return p_syntax(ps, "invalid number");
    case JN_RANGE:
        return p_fail(ps, ADX_E_SCHEMA, false,
                      "integer out of range (numbers here fit int64 or uint64; send larger values "
                      "as reals)");
    case JN_INT:
        if (num.i >= -(INT64_C(1) << 47) && num.i < (INT64_C(1) << 47)) {
            *out = (jv){JV_TAGBITS(JVT_INT) | ((uint64_t)num.i & JV_PAYLOAD)};
            return 0;
        }
        /* fallthrough */
    case JN_UINT: {
        jv_big *b = arena_alloc(ps->d, sizeof *b, ps->err);
        if (!b) return -1;
        b->is_unsigned = r == JN_UINT;
        if (r == JN_UINT)
            b->u = num.u;
        else
            b->i = num.i;
        *out = jv_box(JVT_BIG, b);
        return 0;
    }
    default:
        *out = jv_real(num.d);
        return 0;
    }
}

static int lex_literal(parser *ps, const char *word, jv v, jv *out)
{
    for (const char *w = word; *w; w++) {
        int c = peekc(ps);
        if (c == -2) return -1;
        if (c != *w) return p_syntax(ps, "invalid literal");
        ps->p++;
    }
    *out = v;
    return 0;
}

/* ---- containers ---- */

static int push_frame(parser *ps, bool obj)
{
    if (ps->fn >= ps->max_nest)
        return p_fail(ps, ADX_E_LIMIT, false,
                      "JSON nested deeper than %u levels (max_depth + max_ndim + 16)",
                      ps->max_nest);
    if (ps->fn == ps->fcap) {
        size_t nc = ps->fcap ? ps->fcap * 2 : 32;
        frame *n = realloc(ps->fs, nc * sizeof *n);
        if (!n) return adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory reading the request");
        ps->fs = n;
        ps->fcap = nc;
    }
    /* not a compound literal: pk_shape is left alone until it is used */
    frame *f = &ps->fs[ps->fn++];
    f->obj = obj;
    f->base = ps->vn;
    f->count = 0;
    f->ht = NULL;
    f->htcap = 0;
    f->kinds = 0;
    f->pk_nd = 0;
    const frame *up = ps->fn >= 2 ? &ps->fs[ps->fn - 2] : NULL;
    f->enc = !obj && (!up || up->obj) ? ENC_NONE : ENC_OFF;
    f->in_arr = up && (!up->obj || up->in_arr);
    f->has_enc = f->has_f32 = false;
    /* the key of the member being read is on the stack below it */
    f->f32x = !obj && up && up->has_enc && up->has_f32 && !up->in_arr && ps->vn > 0 &&
              jv_tag(ps->vs[ps->vn - 1]) == JVT_STR &&
              !strcmp(((const jv_str *)jv_ptr(ps->vs[ps->vn - 1]))->s, "data");
    f->enc_n = 0;
    f->early = 0;
    f->pend = ps->vn;
    f->lo = INT64_MAX;
    f->hi = INT64_MIN;
    return 0;
}

/* An object member whose value is a string: "encoding-type": "array" and
 * "dtype": "float32" (in this order or the other) make the "data" after
 * them JV_ENC_F32X. */
static void note_member(parser *ps, frame *f, jv v)
{
    const jv_str *k = jv_ptr(ps->vs[ps->vn - 1]), *s = jv_ptr(v);
    ad_dtype t;
    if (!strcmp(k->s, "encoding-type"))
        f->has_enc = !strcmp(s->s, "array");
    else if (!strcmp(k->s, "dtype"))
        f->has_f32 = ad_dtype_from_name(s->s, &t) == 0 && t == AD_F32;
}

/* ---- encoded runs (the values of a top-level array, jv_enc) ---- */

static int vreserve(parser *ps, size_t need)
{
    if (need <= ps->vcap) return 0;
    size_t nc = ps->vcap ? ps->vcap : 1024;
    while (nc < need)
        nc = nc < VS_STEP ? nc * 2 : nc + VS_STEP;
    if (p_charge(ps, (nc - ps->vcap) * sizeof(jv))) return -1;
    jv *n = adx_mem_grow(ps->vs, ps->vcap * sizeof *n, nc * sizeof *n);
    if (!n) {
        doc_release(ps->d, (nc - ps->vcap) * sizeof(jv));
        return adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory reading the request");
    }
    ps->vs = n;
    ps->vcap = nc;
    return 0;
}

static unsigned int_enc(int64_t lo, int64_t hi)
{
    if (lo >= 0)
        return hi <= UINT8_MAX    ? JV_ENC_U8
               : hi <= UINT16_MAX ? JV_ENC_U16
               : hi <= UINT32_MAX ? JV_ENC_U32
                                  : ENC_OFF;
    return lo >= INT8_MIN && hi <= INT8_MAX     ? JV_ENC_I8
           : lo >= INT16_MIN && hi <= INT16_MAX ? JV_ENC_I16
           : lo >= INT32_MIN && hi <= INT32_MAX ? JV_ENC_I32
                                                : ENC_OFF;
}

static bool is_int_enc(unsigned e)
{
    return e >= JV_ENC_U8 && e <= JV_ENC_I32;
}

/* The encoding that keeps the run and m more words w exactly (the kinds
 * of the whole array so far decide which scan applies). */
static unsigned enc_for(frame *f, const jv *w, size_t m)
{
    const uint32_t k = f->kinds;
    if (f->f32x) return k & ~PACK_KINDS ? ENC_OFF : JV_ENC_F32X;
    if (k == JV_K(JVT_INT) && (f->enc == ENC_NONE || is_int_enc(f->enc))) {
        int64_t lo = f->lo, hi = f->hi;
        for (size_t i = 0; i < m; i++) {
            int64_t x = (int64_t)(w[i].b << 16) >> 16;
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
        f->lo = lo;
        f->hi = hi;
        return int_enc(lo, hi);
    }
    if (k == JV_K(0) && (f->enc == ENC_NONE || f->enc == JV_ENC_F32)) {
        for (size_t i = 0; i < m; i++) {
            double x;
            memcpy(&x, &w[i], sizeof x);
            /* a float cast of a finite value beyond FLT_MAX is undefined */
            if (!(fabs(x) <= FLT_MAX) ? !isinf(x) : (double)(float)x != x) return ENC_OFF;
        }
        return JV_ENC_F32;
    }
    if (!(k & ~(JV_K(JVT_TRUE) | JV_K(JVT_FALSE))) && (f->enc == ENC_NONE || f->enc == JV_ENC_BOOL))
        return JV_ENC_BOOL;
    return ENC_OFF;
}

/* numpy's float32 of a packed word, as the decoder's dtype conversion
 * makes it (null = NaN, beyond float32's range = inf) */
static float f32_of(jv w)
{
    double r;
    switch (jv_tag(w)) {
    case 0:
        r = jv_real_value(w);
        break;
    case JVT_INT:
        r = (double)((int64_t)(w.b << 16) >> 16);
        break;
    case JVT_TRUE:
        r = 1;
        break;
    case JVT_FALSE:
        r = 0;
        break;
    case JVT_BIG: {
        const jv_big *b = jv_ptr(w);
        if (b->is_unsigned) return (float)b->u;
        r = (double)b->i;
        break;
    }
    default:
        r = NAN;
    }
    if (isfinite(r) && fabs(r) > FLT_MAX) return r > 0 ? INFINITY : -INFINITY;
    return (float)r;
}

static void enc_put(unsigned char *p, unsigned e, uint64_t i, jv w)
{
    int64_t x = (int64_t)(w.b << 16) >> 16;
    switch (e) {
    case JV_ENC_U8:
    case JV_ENC_I8:
        p[i] = (unsigned char)x;
        break;
    case JV_ENC_U16:
    case JV_ENC_I16: {
        uint16_t y = (uint16_t)x;
        memcpy(p + 2 * i, &y, 2);
        break;
    }
    case JV_ENC_U32:
    case JV_ENC_I32: {
        uint32_t y = (uint32_t)x;
        memcpy(p + 4 * i, &y, 4);
        break;
    }
    case JV_ENC_F32: {
        float y = (float)jv_real_value(w);
        memcpy(p + 4 * i, &y, 4);
        break;
    }
    case JV_ENC_F32X: {
        float y = f32_of(w);
        memcpy(p + 4 * i, &y, 4);
        break;
    }
    case JV_ENC_BOOL:
        p[i] = w.b == JV_TRUE.b;
        break;
    default:
        memcpy(p + 8 * i, &w, 8);
    }
}

/* Re-encode f's run into the wider (or equal) encoding e, ENC_OFF = back
 * to words, moving the pending words out of its way first. Back to front:
 * value i lands at or after where it was. */
static int enc_recode(parser *ps, frame *f, unsigned e)
{
    size_t m = ps->vn - f->pend, sn = jv_enc_size(e);
    size_t np = f->base + (size_t)((f->enc_n * sn + sizeof(jv) - 1) / sizeof(jv));
    if (vreserve(ps, np + m)) return -1;
    /* up out of the run's way, or down over the gap enc_fast may leave */
    if (np != f->pend) memmove(ps->vs + np, ps->vs + f->pend, m * sizeof(jv));
    /* An empty run may sit on a stack not yet allocated (vs NULL). */
    if (f->enc != ENC_NONE && f->enc != e && f->enc_n) {
        unsigned char *b = (unsigned char *)(ps->vs + f->base);
        for (uint64_t i = f->enc_n; i-- > 0;)
            enc_put(b, e, i, jv_enc_get(b, f->enc, i));
    }
    f->pend = np;
    ps->vn = np + m;
    if (e == ENC_OFF) f->enc_n = 0, f->pend = ps->vn;
    f->enc = e;
    return 0;
}

/* Encode f's pending words at the end of its run. */
static int enc_flush(parser *ps, frame *f);

/* Whether row f (still open) can join the rows of its parent p so far. */
static bool row_fits(const frame *p, const frame *f)
{
    return p->count == 0 || (p->pk_nd == f->pk_nd + 1 && f->count <= p->pk_shape[0] &&
                             !memcmp(p->pk_shape + 1, f->pk_shape, f->pk_nd * sizeof *f->pk_shape));
}

/* A long row's words go into its parent's run before the row ends, so a
 * row costs no more than row_chunk words however long it is. */
static int row_flush(parser *ps, frame *f, frame *p)
{
    size_t m = ps->vn - f->base;
    p->kinds |= f->kinds;
    if (enc_flush(ps, p)) return -1;
    if (p->enc == ENC_OFF) {
        /* the run went back to words: the row's are the last ones */
        f->base = ps->vn - (size_t)(m + f->early);
        f->early = 0;
    } else {
        f->early += m;
        f->base = ps->vn;
    }
    return 0;
}

/* The row will not join its parent after all (ragged, or not numbers):
 * the parent's run goes back to words, the row's words with it. */
static int row_unflush(parser *ps, frame *f, frame *p)
{
    size_t m = ps->vn - f->base;
    if (enc_recode(ps, p, ENC_OFF)) return -1;
    f->base = ps->vn - (size_t)(m + f->early);
    f->early = 0;
    return 0;
}

#define FAST_INT(T)                                                                                \
    for (; i < m; i++) {                                                                           \
        uint64_t wb = w[i].b;                                                                      \
        int64_t x = (int64_t)(wb << 16) >> 16;                                                     \
        if ((wb >> 48) != (0xFFF0u | JVT_INT) || x < clo || x > chi) break;                        \
        lo = x < lo ? x : lo;                                                                      \
        hi = x > hi ? x : hi;                                                                      \
        T y = (T)x;                                                                                \
        memcpy(b + (n0 + i) * sizeof(T), &y, sizeof(T));                                           \
    }

/* The common case in one pass: f's pending words while they fit its
 * encoding as it is (what enc_for would keep), written at the run's end.
 * Returns how many; the rest take the general way. */
static size_t enc_fast(frame *f, unsigned char *b, const jv *w, size_t m)
{
    const uint64_t n0 = f->enc_n;
    int64_t lo = f->lo, hi = f->hi, clo = 0, chi = 0;
    size_t i = 0;
    switch (f->enc) {
    case JV_ENC_U8:
        chi = UINT8_MAX;
        FAST_INT(uint8_t);
        break;
    case JV_ENC_I8:
        clo = INT8_MIN, chi = INT8_MAX;
        FAST_INT(int8_t);
        break;
    case JV_ENC_U16:
        chi = UINT16_MAX;
        FAST_INT(uint16_t);
        break;
    case JV_ENC_I16:
        clo = INT16_MIN, chi = INT16_MAX;
        FAST_INT(int16_t);
        break;
    case JV_ENC_U32:
        chi = UINT32_MAX;
        FAST_INT(uint32_t);
        break;
    case JV_ENC_I32:
        clo = INT32_MIN, chi = INT32_MAX;
        FAST_INT(int32_t);
        break;
    case JV_ENC_F32:
        for (; i < m; i++) {
            double x;
            if ((w[i].b >> 48) > 0xFFF0u) break; /* not a double */
            memcpy(&x, &w[i], sizeof x);
            if (!(fabs(x) <= FLT_MAX) ? !isinf(x) : (double)(float)x != x) break;
            float y = (float)x;
            memcpy(b + (n0 + i) * 4, &y, 4);
        }
        break;
    case JV_ENC_F32X:
        for (; i < m; i++) {
            float y = f32_of(w[i]);
            memcpy(b + (n0 + i) * 4, &y, 4);
        }
        break;
    case JV_ENC_BOOL:
        for (; i < m && (w[i].b == JV_TRUE.b || w[i].b == JV_FALSE.b); i++)
            b[n0 + i] = w[i].b == JV_TRUE.b;
        break;
    default:
        break;
    }
    f->lo = lo;
    f->hi = hi;
    f->enc_n += i;
    return i;
}

static int enc_flush(parser *ps, frame *f)
{
    size_t m = ps->vn - f->pend;
    if (f->enc == ENC_OFF || m == 0) return 0;
    /* front to back: value i lands before word i */
    size_t done = enc_fast(f, (unsigned char *)(ps->vs + f->base), ps->vs + f->pend, m);
    if (done == m) {
        ps->vn = f->pend =
            f->base + (size_t)((f->enc_n * jv_enc_size(f->enc) + sizeof(jv) - 1) / sizeof(jv));
        return 0;
    }
    /* the run ends before f->pend now: a gap the general way closes */
    f->pend += done;
    m -= done;
    unsigned e = enc_for(f, ps->vs + f->pend, m);
    if (e != f->enc && (f->enc_n || e == ENC_OFF) && enc_recode(ps, f, e)) return -1;
    f->enc = e;
    if (e == ENC_OFF) return 0;
    size_t sn = jv_enc_size(e);
    unsigned char *b = (unsigned char *)(ps->vs + f->base);
    const jv *w = ps->vs + f->pend;
    /* front to back: value i lands before word i */
    switch (e) {
    case JV_ENC_U8:
    case JV_ENC_I8:
        for (size_t i = 0; i < m; i++)
            b[f->enc_n + i] = (unsigned char)w[i].b;
        break;
    case JV_ENC_F32:
        for (size_t i = 0; i < m; i++) {
            float y = (float)jv_real_value(w[i]);
            memcpy(b + 4 * (f->enc_n + i), &y, 4);
        }
        break;
    default:
        for (size_t i = 0; i < m; i++)
            enc_put(b, e, f->enc_n + i, w[i]);
    }
    f->enc_n += m;
    ps->vn = f->pend = f->base + (size_t)((f->enc_n * sn + sizeof(jv) - 1) / sizeof(jv));
    return 0;
}

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static const jv_str *key_at(parser *ps, frame *f, uint64_t i)
{
    return jv_ptr(ps->vs[f->base + 2 * i]);
}

/* Insert member i's key into the frame's set; 1 if it was there. */
static int ht_insert(parser *ps, frame *f, uint64_t i)
{
    const jv_str *k = key_at(ps, f, i);
    size_t mask = f->htcap - 1, h = (size_t)hash_str(k->s, k->len) & mask;
    while (f->ht[h]) {
        const jv_str *o = key_at(ps, f, f->ht[h] - 1);
        if (o->len == k->len && !memcmp(o->s, k->s, k->len)) return 1;
        h = (h + 1) & mask;
    }
    f->ht[h] = (uint32_t)(i + 1);
    return 0;
}

static int ht_grow(parser *ps, frame *f, uint64_t n)
{
    size_t nc = f->htcap ? f->htcap : 64;
    while (nc < 2 * n)
        nc *= 2;
    if (nc == f->htcap) return 0;
    if (p_charge(ps, (nc - f->htcap) * sizeof(uint32_t))) return -1;
    uint32_t *t = calloc(nc, sizeof *t);
    if (!t) return adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory reading the request");
    free(f->ht);
    f->ht = t;
    f->htcap = nc;
    for (uint64_t i = 0; i < n; i++)
        (void)ht_insert(ps, f, i);
    return 0;
}

/* The key of member f->count was just pushed: refuse a duplicate. */
static int check_dup(parser *ps, frame *f)
{
    uint64_t i = f->count;
    if (i + 1 > ps->lim->max_keys)
        return p_fail(ps, ADX_E_LIMIT, true,
                      "more than %" PRIu64 " keys exceed max_keys = %" PRIu64, ps->lim->max_keys,
                      ps->lim->max_keys);
    const jv_str *k = key_at(ps, f, i);
    bool dup = false;
    if (i < SMALL_OBJ) {
        for (uint64_t j = 0; j < i && !dup; j++) {
            const jv_str *o = key_at(ps, f, j);
            dup = o->len == k->len && !memcmp(o->s, k->s, k->len);
        }
    } else {
        if ((i + 1) * 2 > f->htcap && ht_grow(ps, f, i)) return -1;
        dup = ht_insert(ps, f, i);
    }
    if (dup) {
        char key[80];
        snprintf(key, sizeof key, "%.60s", k->s);
        return p_fail(ps, ADX_E_INVALID_JSON, true, "duplicate object key \"%s\"", key);
    }
    return 0;
}

/* Nodes with their own copy of n words of rank `nd` (exact kinds per
 * array), for packed words that do not stay packed. */
static int build_nodes(parser *ps, const jv *w, uint32_t nd, const uint64_t *shape, jv *out)
{
    jv_arr *a = arr_alloc(ps->d, shape[0], false, ps->err);
    if (!a) return -1;
    if (nd == 1) {
        uint32_t kinds = 0;
        for (uint64_t i = 0; i < shape[0]; i++)
            kinds |= JV_K(jv_tag(w[i]));
        a->kinds = kinds;
        memcpy(a->v, w, shape[0] * sizeof(jv));
    } else {
        uint64_t sub = 1;
        for (uint32_t k = 1; k < nd; k++)
            sub *= shape[k];
        for (uint64_t i = 0; i < shape[0]; i++)
            if (build_nodes(ps, w + i * sub, nd - 1, shape + 1, &a->v[i])) return -1;
        a->kinds = JV_K(JVT_ARR);
    }
    *out = jv_box(JVT_ARR, a);
    return 0;
}

/* Row nodes over packed words (they point into the block). */
static int build_headers(jv_doc *d, jv *w, uint32_t nd, const uint64_t *shape, uint32_t kinds,
                         jv *out, adx_err *err)
{
    jv_arr *a = arr_alloc(d, shape[0], nd == 1, err);
    if (!a) return -1;
    if (nd == 1) {
        a->v = w;
        a->kinds = kinds;
    } else {
        uint64_t sub = 1;
        for (uint32_t k = 1; k < nd; k++)
            sub *= shape[k];
        for (uint64_t i = 0; i < shape[0]; i++)
            if (build_headers(d, w + i * sub, nd - 1, shape + 1, kinds, &a->v[i], err)) return -1;
        a->kinds = JV_K(JVT_ARR);
    }
    *out = jv_box(JVT_ARR, a);
    return 0;
}

/* The node of a packed array: rank 1 points at the words; above, the row
 * nodes wait for a reader that walks rows (jv_rows), so a matrix costs its
 * words and one node whatever the length of its rows. */
static int packed_top(parser *ps, jv_block *b, uint32_t nd, const uint64_t *shape, uint32_t kinds,
                      jv *out)
{
    b->doc = ps->d;
    b->kinds = kinds;
    b->ndim = (int)nd;
    memcpy(b->shape, shape, nd * sizeof *shape);
    b->rows = JV_NONE;
    jv_arr *a = arr_alloc(ps->d, shape[0], true, ps->err);
    if (!a) return -1;
    if (nd == 1 && b->enc == JV_ENC_WORDS) {
        a->v = (jv *)b->mem + b->off;
        a->kinds = kinds;
    } else if (nd == 1) {
        /* encoded: the words come back for a reader that walks them */
        a->flags = (a->flags & ~(uint32_t)JVA_WORDS) | JVA_LAZY;
        a->kinds = kinds;
    } else {
        a->flags = (a->flags & ~(uint32_t)JVA_WORDS) | JVA_LAZY;
        a->kinds = JV_K(JVT_ARR);
    }
    a->blk = b;
    *out = jv_box(JVT_ARR, a);
    return 0;
}

bool jv_rows(jv_arr *a)
{
    jv_block *b = a->blk;
    if (!(a->flags & JVA_LAZY) || !b || !b->mem) return false;
    adx_err *err = &b->doc->lazy_err;
    if (adx_err_failed(err)) return false;
    if (block_widen(b, err)) return false;
    if (b->ndim == 1) {
        a->v = (jv *)b->mem + b->off;
        return true;
    }
    jv rows;
    if (build_headers(b->doc, (jv *)b->mem + b->off, (uint32_t)b->ndim, b->shape, b->kinds, &rows,
                      err))
        return false;
    b->rows = rows;
    a->v = ((jv_arr *)jv_ptr(rows))->v;
    return true;
}

/* The words from `base` to the top of the stack become a block (the
 * values, nv of encoding enc, from its word `off`) and leave the stack. */
static jv_block *take_words(parser *ps, size_t base, uint64_t nv, unsigned enc, int64_t lo,
                            int64_t hi)
{
    jv_doc *d = ps->d;
    size_t n = ps->vn - base; /* words the values take */
    if (d->nblk == d->capblk) {
        size_t nc = d->capblk ? d->capblk * 2 : 16;
        jv_block **nb = realloc(d->blk, nc * sizeof *nb);
        if (!nb) {
            adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory reading the request");
            return NULL;
        }
        d->blk = nb;
        d->capblk = nc;
    }
    jv_block *b = arena_alloc(d, sizeof *b, ps->err);
    if (!b) return NULL;
    if (base <= n) {
        /* The value stack itself becomes the block (what lies below the
         * array, no more than the array, moves to a new stack): the words
         * are never copied. */
        size_t ncap = 1024;
        while (ncap < base + 1)
            ncap *= 2;
        jv *nvs = malloc(ncap * sizeof *nvs);
        if (!nvs) {
            adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory reading the request");
            return NULL;
        }
        memcpy(nvs, ps->vs, base * sizeof *nvs);
        jv *old = ps->vs;
        jv *fit = realloc(old, ps->vn * sizeof *old);
        if (fit) old = fit;
        doc_release(d, (ps->vcap - ps->vn) * sizeof(jv));
        *b = (jv_block){.mem = old,
                        .off = base,
                        .n = nv,
                        .enc = enc,
                        .lo = lo,
                        .hi = hi,
                        .charged = ps->vn * sizeof(jv),
                        .rows = JV_NONE};
        ps->vs = nvs;
        ps->vcap = 0;
        d->blk[d->nblk++] = b;
        ps->vn = base;
        if (p_charge(ps, ncap * sizeof(jv))) return NULL;
        ps->vcap = ncap;
        return b;
    }
    if (p_charge(ps, n * sizeof(jv))) return NULL;
    jv *mem = adx_mem_alloc(n * sizeof *mem);
    if (!mem) {
        doc_release(d, n * sizeof(jv));
        adx_err_set(ps->err, ADX_E_NOMEM, "", "out of memory reading the request");
        return NULL;
    }
    memcpy(mem, ps->vs + base, n * sizeof *mem);
    *b = (jv_block){.mem = mem,
                    .off = 0,
                    .n = nv,
                    .enc = enc,
                    .lo = lo,
                    .hi = hi,
                    .charged = n * sizeof(jv),
                    .rows = JV_NONE};
    d->blk[d->nblk++] = b;
    ps->vn = base;
    return b;
}

/* A packed frame's elements (the words from f->base) become a value: a
 * packed array when large, plain nodes when small. Pops the words. */
static int pack_close(parser *ps, frame *f, jv *out)
{
    uint32_t nd = f->pk_nd + 1;
    uint64_t shape[AD_MAX_NDIM];
    shape[0] = f->count;
    memcpy(shape + 1, f->pk_shape, f->pk_nd * sizeof *shape);
    uint64_t nv = 1;
    for (uint32_t k = 0; k < nd; k++)
        nv *= shape[k];
    if (nv * sizeof(jv) < pack_min) {
        if (f->enc != ENC_OFF && enc_recode(ps, f, ENC_OFF)) return -1;
        if (build_nodes(ps, ps->vs + f->base, nd, shape, out)) return -1;
        ps->vn = f->base;
        return 0;
    }
    if (enc_flush(ps, f)) return -1;
    unsigned enc = f->enc == ENC_NONE ? JV_ENC_WORDS : f->enc;
    jv_block *b = take_words(ps, f->base, nv, enc, f->lo, f->hi);
    if (!b) return -1;
    return packed_top(ps, b, nd, shape, f->kinds, out);
}

/* An element that is not a packed array of the same shape arrives in a
 * frame whose elements were packed: they become nodes. Large ones keep
 * their words where they are (the stack becomes a block, as for a packed
 * array, and the row nodes point into it), so a big matrix followed by a
 * ragged row is never copied; small ones are copied into plain nodes (in
 * place: node i lands at or before the words it was made from). */
static int unpack_frame(parser *ps, frame *f)
{
    if (f->early && row_unflush(ps, f, f - 1)) return -1;
    if (f->enc != ENC_OFF && enc_recode(ps, f, ENC_OFF)) return -1;
    uint64_t sub = 1;
    for (uint32_t k = 0; k < f->pk_nd; k++)
        sub *= f->pk_shape[k];
    uint64_t nw = f->count * sub;
    if (nw * sizeof(jv) >= pack_min && nw) {
        jv_block *b = take_words(ps, f->base, nw, JV_ENC_WORDS, 0, 0);
        if (!b) return -1;
        /* no top node: the first row owns the block (jv_release frees it
         * with the array) and jv_packed_get sees none */
        b->doc = ps->d;
        b->ndim = 0;
        b->kinds = f->kinds;
        jv *w = (jv *)b->mem + b->off;
        for (uint64_t i = 0; i < f->count; i++) {
            jv row;
            if (build_headers(ps->d, w + i * sub, f->pk_nd, f->pk_shape, f->kinds, &row, ps->err) ||
                vpush(ps, row))
                return -1;
            if (i == 0) ((jv_arr *)jv_ptr(row))->blk = b;
        }
    } else {
        for (uint64_t i = 0; i < f->count; i++) {
            jv v;
            if (build_nodes(ps, ps->vs + f->base + i * sub, f->pk_nd, f->pk_shape, &v)) return -1;
            ps->vs[f->base + i] = v;
        }
        ps->vn = f->base + f->count;
    }
    f->pk_nd = 0;
    f->kinds = JV_K(JVT_ARR);
    return 0;
}

/* Closes the innermost container. *absorbed: it was a packed array that
 * joined its parent's packed elements (its words stay where they are; no
 * value to store). */
static int close_container(parser *ps, jv *out, bool *absorbed)
{
    frame *f = &ps->fs[ps->fn - 1];
    *absorbed = false;
    if (f->early) {
        frame *p = f - 1;
        if (((f->kinds & ~PACK_KINDS) || f->pk_nd + 1 >= AD_MAX_NDIM || !row_fits(p, f) ||
             (p->count && p->pk_shape[0] != f->count)) &&
            row_unflush(ps, f, p))
            return -1;
    }
    size_t cnt = ps->vn - f->base;
    if ((f->obj ? cnt == 0 : f->count == 0) && !f->pk_nd) {
        *out = jv_box(f->obj ? JVT_EOBJ : JVT_EARR, NULL);
    } else if (f->obj) {
        jv_obj *o = node_alloc(ps->d, sizeof *o + cnt * sizeof(jv), ps->err);
        if (!o) return -1;
        o->n = cnt / 2;
        memcpy(o->kv, ps->vs + f->base, cnt * sizeof(jv));
        *out = jv_box(JVT_OBJ, o);
    } else if (!(f->kinds & ~PACK_KINDS)) {
        /* rectangular numbers: join the parent's rows, or become a value */
        frame *p = ps->fn >= 2 ? &ps->fs[ps->fn - 2] : NULL;
        uint32_t nd = f->pk_nd + 1;
        if (p && !p->obj && nd < AD_MAX_NDIM &&
            (p->count == 0 ||
             (p->pk_nd == nd && p->pk_shape[0] == f->count &&
              !memcmp(p->pk_shape + 1, f->pk_shape, f->pk_nd * sizeof *f->pk_shape)))) {
            p->pk_nd = nd;
            p->pk_shape[0] = f->count;
            memcpy(p->pk_shape + 1, f->pk_shape, f->pk_nd * sizeof *f->pk_shape);
            p->kinds |= f->kinds;
            ps->fn--;
            *absorbed = true;
            return 0; /* the caller encodes the parent's rows now and then */
        }
        if (pack_close(ps, f, out)) return -1;
    } else {
        jv_arr *a = arr_alloc(ps->d, cnt, false, ps->err);
        if (!a) return -1;
        a->kinds = f->kinds;
        memcpy(a->v, ps->vs + f->base, cnt * sizeof(jv));
        *out = jv_box(JVT_ARR, a);
    }
    if (f->ht) {
        doc_release(ps->d, f->htcap * sizeof(uint32_t));
        free(f->ht);
    }
    ps->vn = f->base;
    ps->fn--;
    return 0;
}

/* The main loop: values, commas and closers, iteratively. */
static int parse(parser *ps)
{
    jv v;
    int c;
    bool absorbed;
    for (;;) {
        absorbed = false;
        /* expect a value */
        c = skip_ws(ps);
        if (c == -2) return -1;
        if (c < 0)
            return p_syntax(ps, ps->fn || ps->vn ? "the request ends too early"
                                                 : "the request is empty");
        bool b64 = ps->next_is_b64;
        ps->next_is_b64 = false;
        switch (c) {
        case '{':
        case '[': {
            bool obj = c == '{';
            ps->p++;
            if (push_frame(ps, obj)) return -1;
            c = skip_ws(ps);
            if (c == -2) return -1;
            if (c == (obj ? '}' : ']')) {
                ps->p++;
                if (close_container(ps, &v, &absorbed)) return -1;
                break;
            }
            if (obj) goto key;
            continue;
        }
        case '"':
            ps->p++;
            if (b64) {
                if (lex_b64(ps, &v)) return -1;
            } else {
                /* refused as soon as it passes the limit, not once whole */
                if (lex_string(ps, ps->lim->max_string_bytes, "max_string_bytes", false) ||
                    make_str(ps, &v))
                    return -1;
            }
            break;
        case 't':
            if (lex_literal(ps, "true", JV_TRUE, &v)) return -1;
            break;
        case 'f':
            if (lex_literal(ps, "false", JV_FALSE, &v)) return -1;
            break;
        case 'n':
            if (lex_literal(ps, "null", JV_NULL, &v)) return -1;
            break;
        default:
            if (c == '-' || (c >= '0' && c <= '9')) {
                if (lex_number(ps, &v)) return -1;
                break;
            }
            return p_syntax(ps, "expected a value");
        }
        /* a value is complete: store it, then a comma or closers */
        for (;;) {
            if (ps->fn == 0) {
                ps->d->root = v;
                c = skip_ws(ps);
                if (c == -2) return -1;
                if (c >= 0) return p_syntax(ps, "text after the end of the document");
                return 0;
            }
            frame *f = &ps->fs[ps->fn - 1];
            if (!absorbed) {
                if (f->obj && jv_tag(v) == JVT_STR && !f->in_arr) note_member(ps, f, v);
                if (!f->obj) {
                    if (f->pk_nd && unpack_frame(ps, f)) return -1;
                    f->kinds |= JV_K(jv_tag(v));
                    /* a value no run keeps: back to words for good */
                    if (f->enc != ENC_OFF && (f->kinds & ~PACK_KINDS) && enc_recode(ps, f, ENC_OFF))
                        return -1;
                }
                if (vpush(ps, v)) return -1;
            }
            if (f->enc != ENC_OFF) {
                if (ps->vn - f->pend >= enc_chunk && enc_flush(ps, f)) return -1;
            } else if (!f->obj && ps->vn - f->base >= row_chunk && ps->fn >= 2) {
                frame *p = f - 1;
                if (!p->obj && p->enc != ENC_OFF && !(f->kinds & ~PACK_KINDS) &&
                    f->pk_nd + 1 < AD_MAX_NDIM && row_fits(p, f) && row_flush(ps, f, p))
                    return -1;
            }
            f->count++;
            absorbed = false;
            c = skip_ws(ps);
            if (c == -2) return -1;
            if (c == ',') {
                ps->p++;
                if (f->obj) goto key;
                break; /* next element */
            }
            if (c == (f->obj ? '}' : ']')) {
                ps->p++;
                if (close_container(ps, &v, &absorbed)) return -1;
                continue;
            }
            if (c < 0) return p_syntax(ps, "the request ends too early");
            return p_syntax(ps, f->obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        continue;
    key:
        c = skip_ws(ps);
        if (c == -2) return -1;
        if (c != '"') return p_syntax(ps, c < 0 ? "the request ends too early" : "expected a key");
        ps->p++;
        {
            frame *f = &ps->fs[ps->fn - 1];
            if (lex_string(ps, ps->lim->max_key_bytes, "max_key_bytes", true) || make_str(ps, &v) ||
                vpush(ps, v) || check_dup(ps, f))
                return -1;
            ps->next_is_b64 = ps->sblen == 6 && !memcmp(ps->sb, "base64", 6);
        }
        c = skip_ws(ps);
        if (c == -2) return -1;
        if (c != ':') return p_syntax(ps, c < 0 ? "the request ends too early" : "expected ':'");
        ps->p++;
    }
}

jv_doc *jv_parse(adx_src *src, const jv_parse_opts *o, adx_err *err)
{
    jv_doc *d = calloc(1, sizeof *d);
    unsigned char *buf = malloc(CHUNK);
    locale_t cloc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (!d || !buf || !cloc) {
        free(d);
        free(buf);
        if (cloc) freelocale(cloc);
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory reading the request");
        return NULL;
    }
    d->budget = o->budget;
    d->root = JV_NONE;
    adx_err_init(&d->lazy_err);
    parser ps = {.o = o,
                 .lim = o->lim,
                 .err = err,
                 .d = d,
                 .src = src,
                 .buf = buf,
                 .p = buf,
                 .end = buf,
                 .line = 1,
                 .cloc = cloc};
    ps.max_nest = o->lim->max_depth + o->lim->max_ndim + 16;
    d->ps = &ps;
    int r = doc_charge(d, CHUNK, err);
    bool charged_chunk = r == 0;
    if (!r) r = parse(&ps);
    d->ps = NULL;
    for (size_t i = 0; i < ps.fn; i++)
        if (ps.fs[i].ht) {
            doc_release(d, ps.fs[i].htcap * sizeof(uint32_t));
            free(ps.fs[i].ht);
        }
    free(ps.fs);
    doc_release(d, ps.vcap * sizeof(jv) + ps.sbcap + (charged_chunk ? CHUNK : 0));
    free(ps.vs);
    free(ps.sb);
    free(buf);
    freelocale(cloc);
    if (r) {
        jv_doc_free(d);
        return NULL;
    }
    return d;
}
