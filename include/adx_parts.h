/* adx_parts (prefix parts_) — binary parts of a request (payload.md "Binary
 * parts"): the multipart/form-data body that carries them, the .npy header
 * of a part, and reading a part straight into the typed model.
 *
 * A part is never copied out of the body: the multipart parser only records
 * where each part's bytes lie in the (spooled) body file. A C-order numeric
 * part of 1 MiB or more whose data starts 16-byte aligned in the file
 * becomes its ad_array as a private mapping of those bytes (ad_array.map;
 * the array owns the mapping, so the body file may be closed or unlinked);
 * smaller or unaligned ones are read with pread(2) into the buffer of the
 * ad_array they fill, and parts that must be reordered (Fortran order),
 * converted (UTF-32) or gathered (records) are read from an mmap of their
 * range. A mapped part's file must not be truncated while the model lives
 * (the daemon's spool files are its own; the CLI's are the caller's). The
 * CLI's `--part NAME=FILE` adds whole files to the same set.
 *
 * Ownership: a parts_set owns its parts' names and the file descriptors it
 * opened (parts_set_add_file); a descriptor handed to parts_set_scan_fd stays
 * the caller's. parts_set_free releases everything and accepts a zeroed set.
 * Elements returned by parts_read are the caller's.
 *
 * Errors fill the caller's adx_err and return -1: ADX_E_SCHEMA (400) for a
 * malformed body, a missing, duplicate or unreferenced part, a header that
 * lies about its shape, a dtype that payload.md does not allow; ADX_E_SHAPE
 * (400) for a dtype/shape in the JSON that disagrees with a part;
 * ADX_E_LIMIT (413) for more parts or header bytes than parts_limits allow
 * and for arrays over adx_limits; ADX_E_IO and ADX_E_NOMEM (500). Every
 * message names the part ("part \"X\": ..."); errors found while reading a
 * referenced part carry the pointer of the block that references it.
 *
 * Decisions where payload.md is silent:
 * - Big-endian parts ('>' in the descr) are accepted and byte-swapped as
 *   they are read; '=' means little-endian (every supported host is).
 * - numpy's bool bytes must be 0 or 1, as for base64 bool data.
 * - '<U n' (UTF-32) becomes UTF-8 strings; trailing NUL code points are
 *   padding, as numpy reads them; an invalid code point is a 400.
 * - A structured dtype fills a rec-array: 1-d (or 0-d: one record), each
 *   field a scalar of an allowed dtype (no nested records, no sub-arrays);
 *   padding bytes between fields ("itemsize" / "offsets" forms) are skipped.
 * - A structured .npy where a plain array is expected, or a plain one where
 *   a rec-array is expected, is a 400; a raw part cannot be a rec-array.
 * - A part's Content-Type is recorded but not required: the magic bytes say
 *   whether it is .npy. Content-Transfer-Encoding other than binary, 8bit
 *   or 7bit is refused (RFC 7578 §4.7).
 * - Header lines must end in CRLF; folded (continued) header lines are
 *   refused.
 */
#ifndef ADX_PARTS_H
#define ADX_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adx_common.h"
#include "adx_err.h"
#include "adx_jdec.h"
#include "adx_model.h"
#include "adx_src.h"

/* Name of the part that holds the JSON request. */
#define PARTS_REQUEST "request"

typedef struct parts_limits {
    size_t max_parts;        /* parts in one body */
    size_t max_header_bytes; /* header block of one part */
    size_t max_name_bytes;   /* a part's name */
} parts_limits;

void parts_limits_default(parts_limits *pl); /* 1024 parts, 16 KiB, 255 bytes */

typedef struct parts_part {
    char *name;
    char *content_type; /* NULL when the part had none */
    int fd;             /* where its bytes are (owned by the set or its caller) */
    uint64_t off, len;  /* byte range inside fd */
    unsigned refs;      /* times the request referenced it */
} parts_part;

typedef struct parts_set {
    size_t n, cap;
    parts_part *v;
    int *own_fds; /* descriptors opened by parts_set_add_file */
    size_t n_own;
    const adx_limits *lim; /* NULL → adx_limits_default() when reading */
    adx_budget *budget;    /* NULL = not counted */
} parts_set;

void parts_set_free(parts_set *s);
const parts_part *parts_find(const parts_set *s, const char *name);

/* The boundary of a `multipart/form-data; boundary=...` Content-Type
 * (RFC 2046 §5.1.1: 1-70 characters, quoted or not). `out` holds 71 bytes.
 * ADX_E_UNSUPPORTED for another media type, ADX_E_SCHEMA for a missing or
 * malformed boundary. */
int parts_boundary(const char *content_type, char out[71], adx_err *err);

/* Streaming multipart parser: feed the body in chunks of any size (a
 * boundary may be split anywhere); offsets count from the first byte fed.
 * Linear in the body; memory is the header block of one part plus the part
 * table. */
typedef struct parts_mp parts_mp;
parts_mp *parts_mp_new(const char *boundary, const parts_limits *pl, adx_err *err);
int parts_mp_feed(parts_mp *p, const void *buf, size_t len, adx_err *err);
/* End of the body: fails unless the closing delimiter was seen. On success
 * the parts are moved into `s` (fd set to `fd`). */
int parts_mp_finish(parts_mp *p, parts_set *s, int fd, adx_err *err);
void parts_mp_free(parts_mp *p);

/* Parse the multipart body in `fd` (read from offset 0 to EOF) into `s`.
 * `pl` NULL → defaults. The request part must be present. */
int parts_set_scan_fd(parts_set *s, int fd, const char *content_type, const parts_limits *pl,
                      adx_err *err);
/* Add the whole file at `path` as part `name` (the CLI's --part). A second
 * part of the same name is an error. */
int parts_set_add_file(parts_set *s, const char *name, const char *path, adx_err *err);
/* A byte source over part `name` (read with pread; the set's descriptor
 * must outlive it). ADX_E_SCHEMA when there is no such part. */
adx_src *parts_open_src(const parts_set *s, const char *name, uint64_t max_bytes, adx_err *err);
/* After decoding: a part other than PARTS_REQUEST that nothing referenced
 * is a 400 naming it. */
int parts_check_unreferenced(const parts_set *s, adx_err *err);

/* ---- .npy headers ---- */

typedef struct parts_npy_field {
    char *name;
    ad_dtype dtype;
    uint32_t size;   /* bytes per value in the file ('<U n': 4 n) */
    uint64_t offset; /* inside one record */
    bool swap;       /* big-endian in the file */
} parts_npy_field;

typedef struct parts_npy {
    int major;         /* format version 1, 2 or 3 */
    uint64_t data_off; /* bytes before the data */
    bool fortran;
    int ndim;
    uint64_t shape[AD_MAX_NDIM];
    uint64_t n;        /* elements (records) */
    uint64_t itemsize; /* bytes per element (record) */
    bool structured;
    parts_npy_field elem; /* the dtype of a plain array (name NULL) */
    size_t nfields;
    parts_npy_field *fields;
} parts_npy;

/* Bytes needed to know the header's length (magic + version + length). */
#define PARTS_NPY_PREFIX 12
/* numpy's own cap on a header it will read (max_header_size) is 10000; a
 * structured dtype with many long names can need more, so allow this. */
#define PARTS_NPY_MAX_HEADER (1u << 20)

/* Whether `buf` (len bytes) starts with numpy's magic. */
bool parts_is_npy(const void *buf, size_t len);
/* Parse a header held in buf[0..len). Returns 0 when parsed, 1 when more
 * bytes are needed (*need = the total the header takes), -1 on a bad header
 * (ADX_E_SCHEMA "part \"name\": ..."; pointer as given). `lim` bounds ndim,
 * dims and elements (NULL → defaults). */
int parts_npy_parse(const void *buf, size_t len, const adx_limits *lim, const char *name,
                    const char *pointer, parts_npy *out, size_t *need, adx_err *err);
void parts_npy_free(parts_npy *h);

/* ---- reading a part into the model ---- */

/* Read part req->name into a new AD_K_ARRAY (or AD_K_RECARRAY) element.
 * `pointer` is the block that referenced it ("/adata/X"). Counts the
 * reference; the element's buffers are charged to s->budget. */
int parts_read(parts_set *s, const jdec_part_req *req, ad_elem **out, const char *pointer,
               adx_err *err);
/* parts_read as the decoder's jdec_part_fn (ud = the parts_set). */
int parts_jdec_part(void *ud, const jdec_part_req *req, ad_elem **out, const char *pointer,
                    adx_err *err);

#endif
