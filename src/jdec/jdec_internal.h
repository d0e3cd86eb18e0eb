/* Shared state and helpers of the JSON decoder's translation units.
 *
 * Two pointers are tracked while walking: `p` names the input (for errors,
 * rooted at jdec_opts.base_ptr) and `s` names the element in the stored
 * object (for report entries, e.g. "/obs/index"), because the two differ
 * inside DataFrames ("/adata/obs/columns/x" is stored as "/obs/x").
 */
#ifndef JDEC_INTERNAL_H
#define JDEC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "adx_glob.h"
#include "adx_jdec.h"
#include "jdec_tree.h"

typedef struct jd {
    const adx_limits *lim;
    bool h5ad_names; /* jdec_opts.h5ad_names */
    const char *const *globs;
    size_t nglobs;
    glob_set *cat; /* globs arranged for many columns (adx_glob.h) */
    adx_report *rep;
    adx_err *err;
    adx_ptr p;
    adx_ptr s;
    uint64_t total; /* decoded bytes so far, against lim->max_total_bytes */
    jdec_part_fn part;
    void *part_ud;
    jv_doc *doc;        /* for releasing converted parts of the tree */
    adx_budget *budget; /* decoded arrays are charged here as well */
} jd;

/* Classification of one JSON leaf. NANSTR is a string spelling a float
 * special ("NaN", "inf", ...), which numeric contexts accept. */
enum jd_leaf { L_INT = 0, L_REAL, L_BOOL, L_NULL, L_NANSTR, L_STR, L_ARR, L_OBJ, L__COUNT };

/* What a plain nested array is decoded as. */
enum jd_mode {
    JD_MATRIX, /* numbers only (X, layers, obsm, sparse parts); anything else is an error */
    JD_UNS,    /* uns values: strings and mixed scalars allowed, nested → one JSON cell */
};

/* ---- errors and limits (jdec_util.c) ---- */
int jd_fail(jd *d, adx_errtype t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int jd_fail_at(jd *d, adx_errtype t, const char *ptr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int jd_nomem(jd *d);
/* Account n elements of dtype t (AD_STR: n bytes) against max_total_bytes. */
int jd_reserve(jd *d, ad_dtype t, uint64_t n);
int jd_reserve_bytes(jd *d, uint64_t bytes);
int jd_check_elements(jd *d, uint64_t n);
int jd_check_dim(jd *d, uint64_t n);
int jd_check_keys(jd *d, uint64_t n);
int jd_check_str(jd *d, size_t len);
/* A name (mapping or uns key, column or index name): jd_check_str, and with
 * h5ad_names one h5ad can hold. The pointer is at the name. */
int jd_check_name(jd *d, const char *name, size_t len);
const char *jd_type_name(jv v);
int jd_leaf_str(jv v);
/* v may be NULL (missing record key) → L_NULL. Inline: it runs per element. */
static inline int jd_leaf(jv v)
{
    if (jv_none(v)) return L_NULL;
    switch (jv_typeof(v)) {
    case JV_INTEGER:
        return L_INT;
    case JV_REAL:
        return L_REAL;
    case JV_NULL_T:
        return L_NULL;
    case JV_TRUE_T:
    case JV_FALSE_T:
        return L_BOOL;
    case JV_STRING:
        return jd_leaf_str(v);
    case JV_ARRAY:
        return L_ARR;
    default:
        return L_OBJ;
    }
}
/* The elements of a 1-d array read where they lie: a packed array's
 * encoded values (jdec_tree.h) without turning them back into words, or a
 * plain array's nodes. Valid until the array is converted or released. */
typedef struct jd_seq {
    const void *data;
    unsigned enc;
    uint64_t n;
    uint32_t kinds; /* of a packed array (OR of JV_K() of its values); 0 = not known */
} jd_seq;
static inline jd_seq jd_seq_of(jv v)
{
    jv_packed pk;
    if (jv_packed_get(v, &pk) && pk.ndim == 1) return (jd_seq){pk.data, pk.enc, pk.n, pk.kinds};
    return (jd_seq){jv_array_items(v), JV_ENC_WORDS, jv_array_size(v), 0};
}
static inline jv jd_seq_get(const jd_seq *s, uint64_t i)
{
    return i < s->n && s->data ? jv_enc_get(s->data, s->enc, i) : JV_NONE;
}
/* Memory a decoder step holds for a while (scratch arrays, sort buffers):
 * charged to the request's budget at d->p, released with jd_temp_release. */
int jd_temp_charge(jd *d, uint64_t bytes);
void jd_temp_release(jd *d, uint64_t bytes);

/* A float spelled as a string; returns false if s is not one of them. */
bool jd_nanstr(const char *s, double *out);
/* A non-negative integer size (integral reals such as 1e12 count too, so a
 * huge declared shape fails as a limit rather than a type error). */
int jd_get_size(jd *d, jv v, uint64_t *out);
/* Parse "shape": array of sizes, each checked against max_dim, rank against
 * max_ndim, and for dense arrays the product against max_elements (*n; 0
 * when !dense). d->p must point at the shape. */
int jd_get_shape(jd *d, jv v, int *ndim, uint64_t *shape, uint64_t *n, bool dense);
/* Push a string into a builder after the string-length and total checks. */
int jd_sb_push(jd *d, ad_strbuild *b, const char *s, size_t len);
/* "(2, 3)" as numpy prints a shape. */
void jd_fmt_shape(char *buf, size_t cap, int ndim, const uint64_t *shape);
void jd_fmt_pyint(int64_t v, char buf[32]);
/* str() of an integer token, those above INT64_MAX too (their int64 view
 * is clamped). */
void jd_fmt_jint(jv v, char buf[32]);
int jd_report(jd *d, const char *path, const char *action, uint64_t count, const char *detail);

/* adx_strmap_add that reports running out of memory on d. */
int jd_strmap_add(jd *d, adx_strmap *m, const char *k, size_t *val, bool *added);

/* Object-array builder (AD_K_OBJECT). */
typedef struct jd_objb {
    ad_object o;
    ad_strbuild sb;
    uint64_t i;
} jd_objb;
int jd_objb_init(jd *d, jd_objb *b, int ndim, const uint64_t *shape);
int jd_objb_put(jd *d, jd_objb *b, jv v); /* v may be NULL → null cell */
ad_elem *jd_objb_finish(jd *d, jd_objb *b);
void jd_objb_free(jd_objb *b);

/* ---- arrays (jdec_array.c) ---- */
/* Plain nested JSON array → element (AD_K_ARRAY, or AD_K_OBJECT in JD_UNS). */
ad_elem *jd_nested(jd *d, jv v, enum jd_mode mode);
/* Typed dense {"encoding-type":"array", "dtype", "shape"?, "data"|"base64"}. */
ad_elem *jd_typed_dense(jd *d, jv v);
/* csr_matrix / csc_matrix. */
ad_elem *jd_sparse(jd *d, jv v, bool csc);
/* Decode a typed value list into `a` with the given dtype; `data` is nested
 * or flat; when ndim >= 0 the shape is fixed, else taken from the data. */
int jd_fill_typed(jd *d, jv data, ad_dtype t, int ndim, const uint64_t *shape, ad_array *a);
int jd_base64(jd *d, jv s, ad_dtype t, int ndim, const uint64_t *shape, ad_array *a);
/* A packed array (jdec_tree.h) of n = prod(shape) words converted in place
 * into `a` of dtype t, its block adopted: 1. 0 when v is not packed (the
 * caller copies), -1 on a value t refuses (reported at its pointer under
 * d->p before anything was overwritten). v's words are gone after a 1. */
int jd_fill_packed(jd *d, jv v, int ndim, const uint64_t *shape, ad_dtype t, ad_array *a);
/* Store a converted leaf; 0 or -1 (error at d->p, which names the leaf). */
int jd_put_leaf(jd *d, jv v, ad_dtype t, void *out, uint64_t i);
int jd_dtype(jd *d, jv v, ad_dtype *t); /* "dtype" value, error lists allowed */
/* One 1-d Array of a sparse matrix or a rec-array field: a plain array or a
 * typed block {"dtype", "data"|"base64"|"part"}. *plain tells whether the
 * dtype was chosen by the decoder (then index arrays may be narrowed). */
enum jd_part_role { PART_DATA, PART_INDEX };
int jd_block_1d(jd *d, jv v, enum jd_part_role role, ad_array *a, bool *plain);
/* {"part": NAME, "dtype"?, "shape"?} through the caller's part callback. */
ad_elem *jd_part(jd *d, jv v, bool recarray);

/* ---- frames and columns (jdec_frame.c) ---- */
typedef struct jd_frame_info {
    bool rows_known;
    char rows_ptr[ADX_ERR_PTR_MAX]; /* where the row count came from */
} jd_frame_info;
int jd_frame(jd *d, jv v, ad_frame *f, bool globs, jd_frame_info *fi);
/* Give a frame without index or columns its row count and default index. */
int jd_frame_finish(jd *d, ad_frame *f, jd_frame_info *fi, uint64_t n_rows);
/* Typed column / 1-d element: categorical, nullable-integer, nullable-boolean,
 * string-array; `enc` already read. */
ad_elem *jd_typed_1d(jd *d, jv v, const char *enc);
bool jd_is_frame_object(jv v);
/* {"encoding-type": "rec-array", "fields": {name: Array}} or with "part". */
ad_elem *jd_recarray(jd *d, jv v);

/* ---- uns (jdec_uns.c) ---- */
ad_elem *jd_uns_value(jd *d, jv v, uint32_t depth);
int jd_uns_dict(jd *d, jv v, ad_dict *out, uint32_t depth);

#endif
