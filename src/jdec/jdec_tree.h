/* The decoder's document tree (private to src/jdec, prefix jv_).
 *
 * The request is parsed from an adx_src in chunks into a compact tree whose
 * values are 8-byte NaN-boxed words: a number is stored inline (a double as
 * itself, an integer of up to 48 bits in the payload), so an array of n
 * numbers costs 8n bytes, as a float64 array would, instead of a node per
 * value. Strings, arrays and objects are single allocations holding their
 * elements contiguously; a "base64" string is decoded to bytes while it is
 * read, so the text of a typed block never exists in memory. Bulk numbers
 * are "packed" (see jv_packed below): a rectangular array of numbers keeps
 * its words, row after row, in the buffer the parser collected them in,
 * which a converter rewrites in place into the typed array and adopts, so
 * a matrix exists once, in 8 bytes per value, from its first number to the
 * model. The tree's memory is charged to the request's adx_budget as it
 * grows.
 *
 * Values are passed by value (jv); JV_NONE stands for "absent" (a missing
 * key, an index past the end) as NULL did for jansson pointers.
 */
#ifndef JDEC_TREE_H
#define JDEC_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "adx_common.h"
#include "adx_err.h"
#include "adx_src.h"

/* A struct, not an integer, so that a value is never tested for truth by
 * mistake (0.0 is a value; absence is JV_NONE). */
typedef struct jv {
    uint64_t b;
} jv;

/* Tags live in the top 16 bits of a negative quiet NaN, which no parsed
 * number can produce (JSON has no NaN; ±inf have a zero mantissa). */
enum {
    JVT_NULL = 1,
    JVT_FALSE,
    JVT_TRUE,
    JVT_NONE,
    JVT_INT,  /* 48-bit signed payload */
    JVT_BIG,  /* -> jv_big (an int64 or uint64 beyond 48 bits) */
    JVT_STR,  /* -> jv_str */
    JVT_ARR,  /* -> jv_arr */
    JVT_OBJ,  /* -> jv_obj */
    JVT_B64,  /* -> jv_b64 */
    JVT_EARR, /* the empty array, no allocation */
    JVT_EOBJ, /* the empty object, no allocation */
};
#define JV_TAGBITS(t) ((uint64_t)(0xFFF0u | (t)) << 48)
#define JV_PAYLOAD 0x0000FFFFFFFFFFFFull
#define JV_NULL ((jv){JV_TAGBITS(JVT_NULL)})
#define JV_FALSE ((jv){JV_TAGBITS(JVT_FALSE)})
#define JV_TRUE ((jv){JV_TAGBITS(JVT_TRUE)})
#define JV_NONE ((jv){JV_TAGBITS(JVT_NONE)})

typedef struct jv_str {
    uint64_t len;
    char s[]; /* NUL-terminated, valid UTF-8 without NUL */
} jv_str;
typedef struct jv_block jv_block;
typedef struct jv_arr {
    uint32_t flags; /* JVA_* */
    uint32_t kinds; /* OR of 1 << jv_tag() of the elements (of a packed array: of all its leaves) */
    uint64_t n;
    jv *v;         /* the elements: right after the node, or words of a packed block */
    jv_block *blk; /* the top of a packed array owns its block; else NULL */
} jv_arr;
enum {
    JVA_WORDS = 1, /* v points into a packed block (leaf numbers; nothing to walk) */
    JVA_BIG = 2,   /* allocated alone (freed early by jv_release) */
    JVA_LAZY = 4,  /* a packed array of rank >= 2: its row nodes are made on first use */
};
/* Make the row nodes of a JVA_LAZY array (the rare readers that walk a
 * packed matrix row by row: JSON text, split frames, errors). False when
 * the request's memory budget refuses them. */
bool jv_rows(jv_arr *a);
typedef struct jv_obj {
    uint64_t n;
    jv kv[]; /* key (JVT_STR), value, key, value, ... in document order */
} jv_obj;
typedef struct jv_big {
    bool is_unsigned; /* value above INT64_MAX */
    union {
        int64_t i;
        uint64_t u;
    };
} jv_big;
typedef struct jv_b64 {
    uint64_t n;        /* decoded bytes */
    uint8_t *bytes;    /* malloc'd; taken by whoever adopts it (then NULL) */
    uint64_t text_len; /* characters of the original text */
    bool padded;
    jv_str *text; /* the original text, rebuilt on demand */
} jv_b64;

static inline unsigned jv_tag(jv v)
{
    return (v.b >> 48) > 0xFFF0u ? (unsigned)((v.b >> 48) & 0xF) : 0; /* 0 = a double */
}
static inline void *jv_ptr(jv v)
{
    return (void *)(uintptr_t)(v.b & JV_PAYLOAD);
}
static inline jv jv_box(unsigned tag, const void *p)
{
    return (jv){JV_TAGBITS(tag) | ((uint64_t)(uintptr_t)p & JV_PAYLOAD)};
}

/* jansson-like classification, so the decoder reads as it did. */
typedef enum jv_type {
    JV_OBJECT,
    JV_ARRAY,
    JV_STRING,
    JV_INTEGER,
    JV_REAL,
    JV_TRUE_T,
    JV_FALSE_T,
    JV_NULL_T,
    JV_MISSING,
} jv_type;

static inline jv_type jv_typeof(jv v)
{
    switch (jv_tag(v)) {
    case 0:
        return JV_REAL;
    case JVT_NULL:
        return JV_NULL_T;
    case JVT_FALSE:
        return JV_FALSE_T;
    case JVT_TRUE:
        return JV_TRUE_T;
    case JVT_INT:
    case JVT_BIG:
        return JV_INTEGER;
    case JVT_STR:
    case JVT_B64:
        return JV_STRING;
    case JVT_ARR:
    case JVT_EARR:
        return JV_ARRAY;
    case JVT_OBJ:
    case JVT_EOBJ:
        return JV_OBJECT;
    default:
        return JV_MISSING;
    }
}
static inline bool jv_none(jv v)
{
    return v.b == JV_NONE.b;
}
static inline bool jv_is_object(jv v)
{
    return jv_typeof(v) == JV_OBJECT;
}
static inline bool jv_is_array(jv v)
{
    return jv_typeof(v) == JV_ARRAY;
}
static inline bool jv_is_string(jv v)
{
    return jv_typeof(v) == JV_STRING;
}
static inline bool jv_is_integer(jv v)
{
    return jv_typeof(v) == JV_INTEGER;
}
static inline bool jv_is_real(jv v)
{
    return jv_tag(v) == 0;
}
static inline bool jv_is_number(jv v)
{
    return jv_is_integer(v) || jv_is_real(v);
}
static inline bool jv_is_null(jv v)
{
    return v.b == JV_NULL.b;
}
static inline bool jv_is_true(jv v)
{
    return v.b == JV_TRUE.b;
}
static inline bool jv_is_boolean(jv v)
{
    return v.b == JV_TRUE.b || v.b == JV_FALSE.b;
}
/* A BIG unsigned value reads as INT64_MAX here; jv_big_unsigned tells. */
static inline int64_t jv_integer_value(jv v)
{
    if (jv_tag(v) == JVT_INT) return (int64_t)(v.b << 16) >> 16;
    if (jv_tag(v) == JVT_BIG) {
        const jv_big *b = jv_ptr(v);
        return b->is_unsigned ? INT64_MAX : b->i;
    }
    return 0;
}
static inline bool jv_big_unsigned(jv v, uint64_t *u)
{
    if (jv_tag(v) != JVT_BIG || !((const jv_big *)jv_ptr(v))->is_unsigned) return false;
    *u = ((const jv_big *)jv_ptr(v))->u;
    return true;
}
static inline double jv_real_value(jv v)
{
    double d;
    if (jv_tag(v)) return 0;
    memcpy(&d, &v.b, sizeof d);
    return d;
}
static inline jv jv_real(double d)
{
    jv v;
    memcpy(&v.b, &d, sizeof v.b);
    return v;
}
double jv_number_value(jv v);

static inline size_t jv_array_size(jv v)
{
    return jv_tag(v) == JVT_ARR ? (size_t)((const jv_arr *)jv_ptr(v))->n : 0;
}
static inline jv jv_array_get(jv v, size_t i)
{
    if (jv_tag(v) != JVT_ARR) return JV_NONE;
    jv_arr *a = jv_ptr(v);
    if (!a->v && a->n && !jv_rows(a)) return JV_NONE;
    return i < a->n ? a->v[i] : JV_NONE;
}
/* Which tags occur among an array's elements (bit 1 << jv_tag): decoders
 * skip classifying each element of a row that holds only numbers. */
#define JV_K(tag) (1u << (tag))
static inline uint32_t jv_array_kinds(jv v)
{
    return jv_tag(v) == JVT_ARR ? ((const jv_arr *)jv_ptr(v))->kinds : 0;
}
/* The elements of an array (NULL when empty or not an array). */
static inline const jv *jv_array_items(jv v)
{
    if (jv_tag(v) != JVT_ARR) return NULL;
    jv_arr *a = jv_ptr(v);
    if (!a->v && a->n && !jv_rows(a)) return NULL;
    return a->v;
}
static inline size_t jv_object_size(jv v)
{
    return jv_tag(v) == JVT_OBJ ? (size_t)((const jv_obj *)jv_ptr(v))->n : 0;
}
const char *jv_string_value(jv v); /* NULL when not a string */
size_t jv_string_length(jv v);
static inline const char *jv_object_key(jv v, size_t i)
{
    return ((const jv_str *)jv_ptr(((const jv_obj *)jv_ptr(v))->kv[2 * i]))->s;
}
static inline jv jv_object_val(jv v, size_t i)
{
    return ((const jv_obj *)jv_ptr(v))->kv[2 * i + 1];
}
jv jv_object_get(jv v, const char *key); /* JV_NONE when absent */
static inline bool jv_has(jv v, const char *key)
{
    return !jv_none(jv_object_get(v, key));
}
/* Iterate an object's members in document order. */
#define jv_object_foreach(obj, key, val)                                                           \
    for (size_t jv_i_ = 0; jv_i_ < jv_object_size(obj) && ((key) = jv_object_key(obj, jv_i_),      \
                                                          (val) = jv_object_val(obj, jv_i_), 1);   \
         jv_i_++)

/* Compact JSON text of a value as jansson's JSON_COMPACT wrote it, but its
 * reals as Python's json.dumps writes them (repr(float), NaN, Infinity) so
 * that json.loads reads the same values back. malloc'd; NULL on ENOMEM. */
char *jv_dumps(jv v);

/* ---- documents ---- */

typedef struct jv_doc jv_doc;

typedef struct jv_parse_opts {
    const adx_limits *lim;
    adx_budget *budget;    /* may be NULL */
    const adx_ctl *ctl;    /* progress (bytes consumed / total) and cancel; may be NULL */
    double progress_scale; /* the fraction reported at the end of the input */
    const char *base_ptr;  /* pointer prefix of errors; NULL = "" */
} jv_parse_opts;

/* Parse one JSON document (strict RFC 8259). Errors: ADX_E_INVALID_JSON
 * "malformed JSON at line L, column C: ..." (pointer: the element being
 * read), ADX_E_LIMIT (max_string_bytes and max_key_bytes as soon as a string
 * passes them, max_keys, nesting, max_request_memory, max_body_bytes through
 * the source), ADX_E_CANCELED, ADX_E_IO, ADX_E_NOMEM. */
jv_doc *jv_parse(adx_src *src, const jv_parse_opts *o, adx_err *err);
jv jv_doc_root(const jv_doc *d);
void jv_doc_free(jv_doc *d);
/* Free the large buffers under *slot now (the decoder is done with them)
 * and make *slot JV_NONE. `slot` must be inside d's tree. */
void jv_release(jv_doc *d, jv *slot);
/* True (and *err set unless it holds an error already) when a lazy
 * reader of the document failed (jv_rows: the budget refused the words of
 * an encoded block or the row nodes of a packed one), so what it read as
 * absent was not. A refusal recorded without a pointer is reported at
 * `ptr` (the element being decoded; NULL: as recorded). */
bool jv_doc_failed(jv_doc *d, const char *ptr, adx_err *err);
/* Make the words and row nodes of a packed array now (a no-op for other
 * values), so a reader that walks it element by element finds them; an
 * error (max_request_memory) at `pointer`. */
int jv_unpack(jv_doc *d, jv v, const char *pointer, adx_err *err);
/* The slot holding key's value in obj, for jv_release; NULL when absent. */
jv *jv_object_slot(jv obj, const char *key);
/* Take a base64 value's bytes (the caller frees them with free()); the
 * budget charge moves with them. NULL when already taken. */
uint8_t *jv_b64_take(jv_doc *d, jv v, uint64_t *n);

/* A packed array: a rectangular array (any depth up to AD_MAX_NDIM) of
 * numbers, nulls and booleans of at least JV_PACK_MIN bytes keeps its
 * values where the parser's value stack collected them, row after row, in
 * one block; the nodes above the rows only point into it. While a top-level
 * array (one that is not itself a row) is read, its values are re-encoded
 * every few thousand in the narrowest form that gives back every word
 * exactly (jv_enc below): small integers in 1, 2 or 4 bytes, reals that are
 * float32 values in 4, booleans in 1; anything else (a null, a real such as
 * 0.1, an integer beyond 32 bits, a mix of kinds) turns the array back into
 * 8-byte words, once. So an int8 matrix costs about a byte per value while
 * it is parsed whatever the order of its keys ("dtype" before or after
 * "data"), and a float32 one 4 bytes when its values are float32 values (as
 * numpy's tolist() writes them). A converter rewrites the values in place
 * into the typed array (growing the block first when the dtype is wider
 * than the encoding) and adopts the block: no second copy of the data
 * exists at any time. Readers that walk rows (JSON text, split frames,
 * errors) turn an encoded block back into words first (jv_rows). */
enum jv_enc {
    JV_ENC_WORDS = 0, /* 8-byte jv words */
    JV_ENC_U8,
    JV_ENC_I8,
    JV_ENC_U16,
    JV_ENC_I16,
    JV_ENC_U32,
    JV_ENC_I32,  /* integers (JVT_INT) */
    JV_ENC_F32,  /* reals that are float32 values */
    JV_ENC_BOOL, /* true / false as 1 / 0 */
    /* Any number (null = NaN) as numpy's float32 of it: only for the "data"
     * of an {"encoding-type": "array", "dtype": "float32"} object whose two
     * keys come first, outside any array (so nothing but a float32
     * conversion reads it); the words it gives back are those floats. */
    JV_ENC_F32X
};
static inline size_t jv_enc_size(unsigned e)
{
    static const unsigned char sz[] = {8, 1, 1, 2, 2, 4, 4, 4, 1, 4};
    return sz[e];
}
static inline jv jv_int_word(int64_t i)
{
    return (jv){JV_TAGBITS(JVT_INT) | ((uint64_t)i & JV_PAYLOAD)};
}
/* Value i of an encoded run, as the word it was made from. */
static inline jv jv_enc_get(const void *data, unsigned e, uint64_t i)
{
    const unsigned char *p = data;
    switch (e) {
    case JV_ENC_U8:
        return jv_int_word(p[i]);
    case JV_ENC_I8:
        return jv_int_word((int8_t)p[i]);
    case JV_ENC_U16: {
        uint16_t x;
        memcpy(&x, p + 2 * i, 2);
        return jv_int_word(x);
    }
    case JV_ENC_I16: {
        int16_t x;
        memcpy(&x, p + 2 * i, 2);
        return jv_int_word(x);
    }
    case JV_ENC_U32: {
        uint32_t x;
        memcpy(&x, p + 4 * i, 4);
        return jv_int_word(x);
    }
    case JV_ENC_I32: {
        int32_t x;
        memcpy(&x, p + 4 * i, 4);
        return jv_int_word(x);
    }
    case JV_ENC_F32:
    case JV_ENC_F32X: {
        float x;
        memcpy(&x, p + 4 * i, 4);
        return x != x ? JV_NULL : jv_real((double)x); /* a NaN was a null */
    }
    case JV_ENC_BOOL:
        return p[i] ? JV_TRUE : JV_FALSE;
    default: {
        jv w;
        memcpy(&w, p + 8 * i, 8);
        return w;
    }
    }
}

typedef struct jv_packed {
    jv *words;        /* n words, row-major, when enc is JV_ENC_WORDS; else NULL */
    const void *data; /* the n values in their encoding (= words when words) */
    unsigned enc;     /* enum jv_enc */
    int64_t lo, hi;   /* the range of the values of an integer encoding */
    uint64_t n;
    uint32_t kinds; /* OR of JV_K() over all values */
    void *base;     /* the block's start: the converted data goes here */
    size_t size;    /* the block's bytes */
    int ndim;
    const uint64_t *shape; /* rectangular by construction */
} jv_packed;
/* True when v is the top of a packed array whose block is still there. */
bool jv_packed_get(jv v, jv_packed *out);
/* Grow the block to at least `bytes` (charged to the document's budget,
 * an error at `pointer` naming max_request_memory) and refresh *pk. */
int jv_packed_grow(jv v, size_t bytes, jv_packed *pk, const char *pointer, adx_err *err);
/* Take the block after its values were converted in place into `bytes`
 * bytes at its start: shrunk to that size, malloc'd (free()), the caller's
 * from now on. The document's budget charge for it is released (the caller
 * charges the typed array). NULL (nothing taken) on a second call. The
 * array's values must not be read afterwards. */
void *jv_packed_take(jv_doc *d, jv v, size_t bytes);
/* Smallest array (bytes of words) that is packed; smaller ones are plain
 * nodes. Tests lower it to run every path through packed arrays; values
 * are encoded every max(pack_min / 8, 1) of them (SIZE_MAX: never). */
enum { JV_PACK_MIN = 64 * 1024 };
void jv_pack_min_set(size_t bytes);

/* The base64 loop alone (for its benchmark): whole valid quads of s[0..n)
 * into o (n / 4 * 3 + 2 bytes of room); returns the characters used. */
size_t jv_b64_decode(const char *s, size_t n, uint8_t *o, size_t *written);

#endif
