/* adx_model (prefix ad_) — the one in-memory AnnData model every codec reads
 * or writes: JSON → model, h5ad ↔ model, Polis CSV → model, model → npz/csv.
 *
 * Data lives in typed, contiguous buffers: an ad_array is one allocation of
 * n elements (row-major, host byte order = little-endian on every supported
 * target), strings are one blob plus an offsets array. There is a struct per
 * element *of the AnnData tree* (a column, a matrix, a dict), never per value.
 *
 * Ownership: every container owns what it points to. ad_*_free() releases a
 * value and everything under it and accepts NULL / zeroed structs. Functions
 * that take an `ad_elem *` to store (ad_dict_put, ad_frame_add) take
 * ownership even when they fail (they free it), so callers never leak on an
 * error path. Structs are zero-initialisable: `ad_frame f = {0};` is an empty
 * frame with no rows.
 *
 * Errors: allocation helpers return -1 (or NULL) on overflow or ENOMEM and
 * never abort; they check every size product for overflow.
 *
 * Unsanitized values: decoders keep what does not fit a typed buffer (string
 * columns with nulls, mixed types, nested JSON, uns nulls) as AD_K_OBJECT or
 * AD_K_NULL elements. The sanitize stage turns them into typed arrays and
 * reports each change; writers may assume neither kind is present.
 */
#ifndef ADX_MODEL_H
#define ADX_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AD_MAX_NDIM 32

typedef enum ad_dtype {
    AD_BOOL = 0, /* stored as uint8 0/1 */
    AD_I8,
    AD_I16,
    AD_I32,
    AD_I64,
    AD_U8,
    AD_U16,
    AD_U32,
    AD_U64,
    AD_F32,
    AD_F64,
    AD_STR, /* UTF-8, see ad_array */
    AD_DTYPE__COUNT
} ad_dtype;

size_t ad_dtype_size(ad_dtype t);      /* bytes per element; 0 for AD_STR */
const char *ad_dtype_name(ad_dtype t); /* numpy name: "bool", "int8", …, "float64", "str" */
int ad_dtype_from_name(const char *name, ad_dtype *out); /* numeric names only; -1 if unknown */
bool ad_dtype_is_int(ad_dtype t);                        /* signed or unsigned integer (not bool) */
bool ad_dtype_is_signed(ad_dtype t);
bool ad_dtype_is_float(ad_dtype t);

/* Dense N-d array (ndim 0 = scalar, n = 1).
 * Numeric: `data` holds n * ad_dtype_size(dtype) bytes.
 * AD_STR:  element i is the NUL-terminated string at str + soff[i]; its byte
 *          length is soff[i+1] - soff[i] - 1; soff has n + 1 entries. */
typedef struct ad_array {
    ad_dtype dtype;
    int ndim;
    uint64_t shape[AD_MAX_NDIM];
    uint64_t n;
    void *data;
    char *str;
    uint64_t *soff;
    /* Non-NULL when `data` lies inside a private file mapping of map_len
     * bytes starting at `map` (a large binary part, adx_parts.h): free
     * unmaps it instead of freeing `data`; a clone is an ordinary copy.
     * Zero for every other array. */
    void *map;
    size_t map_len;
} ad_array;

typedef enum ad_kind {
    AD_K_ARRAY = 0,     /* ad_array (dense, N-d, numeric or string; 0-d = scalar) */
    AD_K_SPARSE,        /* ad_sparse */
    AD_K_FRAME,         /* ad_frame (DataFrame) */
    AD_K_CATEGORICAL,   /* ad_categorical */
    AD_K_NULLABLE_INT,  /* ad_nullable, values integer */
    AD_K_NULLABLE_BOOL, /* ad_nullable, values bool */
    AD_K_DICT,          /* ad_dict (mapping) */
    AD_K_OBJECT,        /* ad_object: unsanitized mixed values (decoder output only) */
    AD_K_NULL,          /* a JSON null in uns (decoder output only; sanitize drops it) */
    AD_K_RECARRAY,      /* ad_recarray (numpy structured array; uns, obsm, varm) */
    AD_K__COUNT
} ad_kind;

typedef struct ad_elem ad_elem;

typedef struct ad_sparse {
    bool csc; /* false = csr_matrix, true = csc_matrix */
    uint64_t shape[2];
    ad_array data;    /* 1-d, numeric, nnz */
    ad_array indices; /* 1-d, integer, nnz */
    ad_array indptr;  /* 1-d, integer, major + 1 */
} ad_sparse;

typedef struct ad_categorical {
    ad_array codes;      /* 1-d signed integer (int8/16/32/64); -1 = missing */
    ad_array categories; /* 1-d, numeric or AD_STR, distinct */
    bool ordered;
} ad_categorical;

typedef struct ad_nullable {
    ad_array values; /* 1-d integer (nullable-integer) or AD_BOOL (nullable-boolean) */
    ad_array mask;   /* 1-d AD_BOOL, true = missing */
} ad_nullable;

typedef struct ad_dict {
    size_t n, cap;
    char **keys; /* insertion order is kept and written in that order */
    ad_elem **vals;
} ad_dict;

typedef struct ad_frame {
    uint64_t n_rows;
    ad_array index;     /* 1-d AD_STR with n_rows entries (always present once built) */
    char *index_name;   /* NULL = unnamed; h5ad then names the index dataset "_index" */
    bool index_default; /* "0".."n-1" made because none was given (ad_frame_default_index) */
    size_t ncols, cap;
    char **names;   /* column order */
    ad_elem **cols; /* AD_K_ARRAY (1-d), CATEGORICAL, NULLABLE_*, or OBJECT before sanitize */
} ad_frame;

/* Cells of an unsanitized object array. */
typedef enum ad_cell {
    AD_CELL_NULL = 0,
    AD_CELL_BOOL, /* num.i is 0 or 1 */
    AD_CELL_INT,  /* num.i */
    AD_CELL_REAL, /* num.r */
    AD_CELL_STR,  /* text */
    AD_CELL_JSON, /* text: compact JSON of an array or object */
    AD_CELL_UINT, /* num.u: an integer above INT64_MAX, kept exact for its text */
} ad_cell;

typedef union ad_num {
    int64_t i;
    uint64_t u;
    double r;
} ad_num;

/* Object array: per cell a kind, a number, and a text (empty for non-text
 * cells) stored as a blob + offsets like AD_STR arrays. */
typedef struct ad_object {
    int ndim;
    uint64_t shape[AD_MAX_NDIM];
    uint64_t n;
    uint8_t *kind; /* ad_cell per cell */
    ad_num *num;
    char *str;
    uint64_t *soff; /* n + 1 */
} ad_object;

/* A numpy record array (np.recarray, h5ad encoding "rec-array"): n records
 * of named fields, field order kept. Each field is a 1-d array of n numeric
 * values or strings (AD_STR; fixed-width "<U" in npz, variable-length UTF-8
 * in h5ad, as anndata writes them). Sanitize and the include filter treat the
 * whole record array as one element. */
typedef struct ad_recarray {
    uint64_t n;
    size_t nfields, cap;
    char **names;
    ad_array *fields;
} ad_recarray;

struct ad_elem {
    ad_kind kind;
    union {
        ad_array arr;
        ad_sparse sp;
        ad_frame df;
        ad_categorical cat;
        ad_nullable nl;
        ad_dict dict;
        ad_object obj;
        ad_recarray rec;
    } u;
};

typedef struct ad_raw {
    ad_elem *X; /* AD_K_ARRAY 2-d or AD_K_SPARSE; NULL allowed */
    ad_frame var;
    ad_dict varm;
} ad_raw;

typedef struct ad_anndata {
    uint64_t n_obs, n_vars;
    ad_elem *X; /* NULL (no X), AD_K_ARRAY 2-d, or AD_K_SPARSE */
    ad_frame obs, var;
    ad_dict obsm, varm, layers, obsp, varp, uns;
    ad_raw *raw; /* NULL = no raw */
} ad_anndata;

/* ---- arrays ---- */

/* Allocate a zero-filled array (AD_STR: soff of n+1 zeros and str = "" so
 * every element is the empty string). Returns -1 on overflow / ENOMEM
 * (a is then zeroed). `shape` may be NULL when ndim == 0. */
int ad_array_init(ad_array *a, ad_dtype t, int ndim, const uint64_t *shape);
void ad_array_free(ad_array *a);
int ad_array_clone(ad_array *dst, const ad_array *src);
/* Bytes a buffer of n elements of t takes, or -1 on overflow. */
int ad_bytes(ad_dtype t, uint64_t n, size_t *out);
/* Checked product of dims (0 if any dim is 0). -1 on overflow. */
int ad_shape_product(int ndim, const uint64_t *shape, uint64_t *out);

static inline const char *ad_str_at(const ad_array *a, uint64_t i)
{
    return a->str + a->soff[i];
}
static inline size_t ad_str_len(const ad_array *a, uint64_t i)
{
    return (size_t)(a->soff[i + 1] - a->soff[i] - 1);
}
/* Numeric element i converted (bool → 0/1). Undefined for AD_STR. */
double ad_array_get_f64(const ad_array *a, uint64_t i);
int64_t ad_array_get_i64(const ad_array *a, uint64_t i);
/* Store categorical code v at i of a signed code array (AD_I8..AD_I64, the
 * width pandas picks for the number of categories; v must fit it). */
void ad_codes_set(ad_array *codes, uint64_t i, int64_t v);
/* Build a 1-d AD_STR array from C strings (copies). */
int ad_array_from_cstrs(ad_array *a, const char *const *s, uint64_t n);

/* String builder: append strings, then move them into an ad_array. */
typedef struct ad_strbuild {
    char *buf;
    size_t len, cap;
    uint64_t *off;
    uint64_t n, ncap;
} ad_strbuild;
int ad_sb_push(ad_strbuild *b, const char *s, size_t len); /* -1 on ENOMEM */
/* Move into `out` as an AD_STR array of the given shape (product must equal
 * the number pushed; NULL shape with ndim 1 means [n]). The builder is reset
 * either way. */
int ad_sb_finish(ad_strbuild *b, ad_array *out, int ndim, const uint64_t *shape);
void ad_sb_free(ad_strbuild *b);

/* ---- elements ---- */

ad_elem *ad_elem_new(ad_kind k); /* zeroed, NULL on ENOMEM */
void ad_elem_free(ad_elem *e);
ad_elem *ad_elem_clone(const ad_elem *e); /* deep copy; NULL on ENOMEM */
/* Wrap an array (moved: *a is zeroed afterwards). NULL on ENOMEM (a freed). */
ad_elem *ad_elem_from_array(ad_array *a);
/* Number of rows (first dimension) an element has: arrays shape[0] (0-d: 0),
 * sparse shape[0], frame n_rows, categorical/nullable length, object shape[0]. */
uint64_t ad_elem_rows(const ad_elem *e);
/* Encoding type name as in h5ad: "array", "string-array", "csr_matrix",
 * "csc_matrix", "dataframe", "categorical", "nullable-integer",
 * "nullable-boolean", "dict", "numeric-scalar", "string", "object", "null",
 * "rec-array". */
const char *ad_elem_encoding(const ad_elem *e);

/* ---- record arrays ---- */

/* Append field `name` (moved: *a is zeroed; freed on failure). The first
 * field fixes n; a later one must have n entries and a new name; a field must
 * be 1-d. -1 on a duplicate name, a wrong length or rank, or ENOMEM. */
int ad_recarray_add(ad_recarray *r, const char *name, ad_array *a);
/* As ad_recarray_add for a name the caller knows is new (no scan: readers
 * whose input cannot repeat a name stay linear in the number of fields). */
int ad_recarray_append(ad_recarray *r, const char *name, ad_array *a);
void ad_recarray_free(ad_recarray *r);
int ad_recarray_clone(ad_recarray *dst, const ad_recarray *src);

/* ---- categoricals: the one builder ----
 *
 * Every categorical a decoder or sanitize step makes comes from here, so the
 * order of categories, the width of codes and what counts as missing are
 * decided in one place. */

/* Codes dtype pandas picks for n categories (coerce_indexer_dtype): int8
 * below 127, int16 below 32767, int32 below 2^31-1, else int64. */
ad_dtype ad_codes_dtype(uint64_t n_categories);

typedef enum ad_cat_order {
    /* pandas' astype("category") / pd.Categorical(values): numbers by value,
     * strings by code point (bytes of UTF-8), booleans False < True. */
    AD_CAT_SORTED = 0,
    /* anndata's strings_to_categoricals: natsort.natsorted's default key
     * (ad_natural_cmp) for strings; numbers by value. */
    AD_CAT_NATURAL,
} ad_cat_order;

/* Categorical of a 1-d array of values (numeric, bool or AD_STR): the
 * categories are the distinct values in `order`, with the values' dtype (of
 * equal values the first row's is kept; 0.0 and -0.0 are one value); codes
 * have ad_codes_dtype(number of categories). Row i is missing (code -1) when
 * `missing` is non-NULL and missing[i] is non-zero, and when a float value is
 * NaN. `out` is initialised here (ordered = false; zeroed on failure).
 * O(n) hashing plus a sort of the distinct values only.
 *
 * The builder's scratch (a group per row, the hash of distinct values as it
 * grows: up to ~100 bytes per distinct value) is charged to `budget` while
 * it runs and given back before it returns; the categorical it returns is
 * the caller's to charge. Returns 0, or -1 with `err` set at `ptr` (either
 * may be NULL): ADX_E_LIMIT when the budget refuses, ADX_E_NOMEM on ENOMEM,
 * overflow or values not 1-d. */
struct adx_budget;
struct adx_err;
int ad_cat_from_values(ad_categorical *out, const ad_array *values, const uint8_t *missing,
                       ad_cat_order order, struct adx_budget *budget, const char *ptr,
                       struct adx_err *err);

/* Why a categorical's parts do not make one (pandas would refuse it). */
typedef enum ad_cat_fault {
    AD_CAT_OK = 0,
    AD_CAT_NOT_1D,     /* categories are not 1-d */
    AD_CAT_NAN,        /* categories[at] is NaN (missing values are code -1) */
    AD_CAT_DUPLICATE,  /* categories[at] repeats categories[first] */
    AD_CAT_CODE_RANGE, /* codes[at] = code is outside [-1, number of categories) */
} ad_cat_fault;

typedef struct ad_cat_problem {
    ad_cat_fault kind;
    uint64_t at, first;
    int64_t code;
} ad_cat_problem;

/* Check categories: 1-d, no NaN, distinct (O(n) hashing). Returns 0 when
 * they are fine, 1 with *p describing the first problem, -1 on ENOMEM. */
int ad_cat_check_categories(const ad_array *cats, ad_cat_problem *p);

/* Categorical from categories (moved: *categories is zeroed; freed on
 * failure) and n codes, stored with ad_codes_dtype. Checks the categories
 * (ad_cat_check_categories) and every code. Returns 0, 1 with *p set (the
 * caller words the error at its own pointer), or -1 on ENOMEM. */
int ad_cat_from_codes(ad_categorical *out, ad_array *categories, const int64_t *codes, uint64_t n,
                      bool ordered, ad_cat_problem *p);

/* natsorted's order for two strings (negative/0/positive): NFD text by code
 * point, runs of decimal digits of any script and single non-decimal digits
 * ("²") as integers, a key that is a prefix of another first; equal keys
 * ("a01", "a1") by code point, as Python's stable sort over pandas' sorted
 * categories leaves them. 0 only when the bytes are equal. Not reproduced:
 * NFD's reordering of stacked combining marks. */
int ad_natural_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* ---- dicts ---- */

/* Insert or replace `key`; takes ownership of v (freed on failure). */
int ad_dict_put(ad_dict *d, const char *key, ad_elem *v);
/* Append `key`, which the caller knows is not in d yet (no scan: decoders
 * that check keys with a hash set stay linear in the number of keys). */
int ad_dict_append(ad_dict *d, const char *key, ad_elem *v);
ad_elem *ad_dict_get(const ad_dict *d, const char *key);
/* Remove entry i (frees key and value). */
void ad_dict_remove_at(ad_dict *d, size_t i);
/* Keep the entries for which keep(key, value, ud) is true, in order; free
 * the others. One pass: removing many entries one by one is quadratic. */
typedef bool (*ad_keep_fn)(const char *key, ad_elem *value, void *ud);
void ad_dict_retain(ad_dict *d, ad_keep_fn keep, void *ud);
void ad_dict_free(ad_dict *d);
int ad_dict_clone(ad_dict *dst, const ad_dict *src);

/* ---- frames ---- */

/* Append a column; takes ownership of col (freed on failure). Replaces an
 * existing column of the same name in place. */
int ad_frame_add(ad_frame *f, const char *name, ad_elem *col);
/* As ad_frame_add for a name the caller knows is new (no scan). */
int ad_frame_append(ad_frame *f, const char *name, ad_elem *col);
void ad_frame_remove_at(ad_frame *f, size_t i);
/* ad_dict_retain for columns (the index is not a column: always kept). */
void ad_frame_retain(ad_frame *f, ad_keep_fn keep, void *ud);
/* Index "0".."n_rows-1" as anndata makes for a missing index. */
int ad_frame_default_index(ad_frame *f, uint64_t n_rows);
void ad_frame_free(ad_frame *f);
int ad_frame_clone(ad_frame *dst, const ad_frame *src);

/* ---- objects ---- */

void ad_object_free(ad_object *o);
int ad_object_clone(ad_object *dst, const ad_object *src);
static inline const char *ad_object_text(const ad_object *o, uint64_t i)
{
    return o->str + o->soff[i];
}

/* ---- anndata ---- */

ad_anndata *ad_anndata_new(void); /* empty, NULL on ENOMEM */
void ad_anndata_free(ad_anndata *a);
ad_anndata *ad_anndata_clone(const ad_anndata *a);
void ad_raw_free(ad_raw *r);
/* Sum of all buffer sizes (approximate memory of the model). */
uint64_t ad_anndata_bytes(const ad_anndata *a);
/* Calls `on_array` for every array of the model (a frame's index, a
 * column, the parts of sparse, categorical and nullable elements, the
 * fields of a record array), with the kind of the element holding it
 * (AD_K_ARRAY for a plain array or an index), and `on_object` (may be
 * NULL) for every unsanitized object array, in no promised order. */
typedef struct ad_walk {
    void (*on_array)(const ad_array *arr, ad_kind holder, void *ud);
    void (*on_object)(const ad_object *obj, void *ud);
    void *ud;
} ad_walk;
void ad_anndata_walk(const ad_anndata *a, const ad_walk *w);
/* What one array's buffers take (strings: their bytes and offsets). */
uint64_t ad_array_bytes(const ad_array *a);
/* {"n_obs","n_vars","X":{"encoding","dtype","shape"}|null,"obs":[columns],
 *  "var":[...],"obsm","varm","layers","obsp","varp","uns":[keys],
 *  "raw":{"n_vars","var":[...],"varm":[...]}|null,
 *  "record_arrays":[{"path":"/uns/rank_genes_groups/names","n":20,
 *  "fields":[{"name","dtype"}]}] (every record array in obsm, varm, uns at
 *  any dict depth, raw.varm)}: the one summary the job
 * JSON and stored datasets both print. A jansson json_t (declared as a
 * struct so this header does not pull jansson into every codec). New
 * reference; NULL on ENOMEM or a NULL model. */
struct json_t *ad_summary_json(const ad_anndata *a);

/* ---- namespaces: the one table ----
 *
 * The AnnData namespaces besides X and raw, in anndata's write order, with
 * what each element's dimensions must equal. The include filter, sanitize,
 * the summary, ad_anndata_check and the writers iterate this table instead
 * of naming the namespaces themselves. */
typedef enum ad_ns {
    AD_NS_OBS = 0,
    AD_NS_VAR,
    AD_NS_OBSM,
    AD_NS_VARM,
    AD_NS_LAYERS,
    AD_NS_OBSP,
    AD_NS_VARP,
    AD_NS_UNS,
    AD_NS__COUNT
} ad_ns;

typedef enum ad_axis { AD_AXIS_NONE = 0, AD_AXIS_OBS, AD_AXIS_VAR } ad_axis;

typedef struct ad_ns_info {
    const char *name; /* "obsm" */
    bool frame;       /* obs, var: an ad_frame; the others an ad_dict */
    /* Rows (frames: their length) and columns each element must have:
     * obsm/varm fix rows only (cols NONE), uns neither. */
    ad_axis rows, cols;
} ad_ns_info;

extern const ad_ns_info ad_ns_table[AD_NS__COUNT];
/* The namespace named by the len bytes at name, or -1. */
int ad_ns_find(const char *name, size_t len);
ad_frame *ad_ns_frame(ad_anndata *a, ad_ns ns); /* NULL for a mapping */
ad_dict *ad_ns_dict(ad_anndata *a, ad_ns ns);   /* NULL for obs, var */
const ad_frame *ad_ns_cframe(const ad_anndata *a, ad_ns ns);
const ad_dict *ad_ns_cdict(const ad_anndata *a, ad_ns ns);

/* ---- shapes and alignment: the one check ---- */

typedef struct adx_err adx_err; /* adx_err.h */

/* The model's shape rules, which every reader checks what it built against
 * and every writer asserts before writing: X (when present) is 2-d and
 * n_obs x n_vars; obs has n_obs rows and var n_vars; every frame's index and
 * columns have its rows; obsm/varm elements have n_obs/n_vars rows (and at
 * least one dimension); layers are n_obs x n_vars, obsp n_obs x n_obs, varp
 * n_vars x n_vars (2-d); raw.X has n_obs rows and raw.var one row per raw.X
 * column; raw.varm elements have raw.var's rows. Kinds are the readers'
 * business (a string X is not a shape problem). Returns 0, or -1 with
 * ADX_E_SHAPE at the element's JSON pointer below `base` (NULL = "", e.g.
 * "/obsm/X_pca") and a message with both numbers. */
int ad_anndata_check(const ad_anndata *a, const char *base, adx_err *err);
/* anndata keeps a DataFrame in obsm, varm or raw.varm only under its axis'
 * names (obs_names, var_names, raw.var_names) and refuses to read a file
 * where it is not. A frame that came without an index (records without
 * "_index", a frame without "index") takes them; a frame whose index was
 * given must equal them, which ad_anndata_check enforces. The copies are
 * charged to `budget` (NULL: none); -1 with err set when it refuses. */
int ad_anndata_frames_take_axis_names(ad_anndata *a, struct adx_budget *budget, adx_err *err);
/* A writer's assertion of the same rules: a model that fails them is a bug
 * in whoever built it, not in the client's input, so the error is
 * ADX_E_INTERNAL (same pointer, the shape message in the detail). */
int ad_anndata_assert(const ad_anndata *a, adx_err *err);

/* ---- Python-compatible text (sanitize, csv) ---- */

/* str(x) as Python prints a float: shortest repr that round-trips, "1.0",
 * "1e+20", "1e-05", "nan", "inf", "-inf". buf must hold 32 bytes. */
void ad_fmt_pyfloat(double x, char buf[32]);
/* str() of a numpy float32: the shortest digits that round-trip *as
 * float32*, in the same layout (0.1f → "0.1", 1e20f → "1e+20"); notation
 * decided on the value, as numpy does (0.0001f is 9.99999997e-05: "1e-04").
 * buf must hold 32 bytes. */
void ad_fmt_npfloat32(float x, char buf[32]);
/* "True"/"False" */
static inline const char *ad_fmt_pybool(bool b)
{
    return b ? "True" : "False";
}

#endif
