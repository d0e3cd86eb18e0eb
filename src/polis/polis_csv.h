/* polis_csv (prefix pcsv_) — internal to the Polis import: an RFC 4180 CSV
 * reader and pandas-like column typing.
 *
 * Accepted: comma separator; fields quoted with '"' holding separators,
 * newlines and doubled quotes; LF, CRLF or lone CR record ends; a leading
 * UTF-8 BOM; a missing final newline. Blank lines are skipped (as
 * pandas.read_csv does). Errors (ADX_E_SCHEMA): a record whose field count
 * differs from the header's, an unterminated quoted field, text after a
 * closing quote, an empty or duplicate header name, invalid UTF-8. Pointers
 * are "/<file>/<line>": the 1-based line on which the offending record
 * starts (what an editor shows; the header is normally line 1).
 */
#ifndef ADX_POLIS_CSV_H
#define ADX_POLIS_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"

typedef struct pcsv_table {
    size_t ncols;
    uint64_t nrows;  /* data records (header excluded) */
    char **header;   /* ncols names */
    char *blob;      /* every cell, NUL-terminated */
    uint64_t *cell;  /* nrows * ncols offsets into blob, row-major */
    uint64_t *recno; /* per data row: its record number (header = 1) */
} pcsv_table;

/* Parse `buf` (not NUL-terminated). `fname` names the file in pointers. */
int pcsv_parse(const char *buf, size_t len, const char *fname, const adx_limits *lim, pcsv_table *t,
               adx_err *err);
void pcsv_free(pcsv_table *t);
/* Column index of `name`, or -1. */
long pcsv_col(const pcsv_table *t, const char *name);

static inline const char *pcsv_cell(const pcsv_table *t, uint64_t row, size_t col)
{
    return t->blob + t->cell[row * t->ncols + col];
}

/* Column types, decided on every non-empty cell like pandas.read_csv's
 * default inference, except that only the empty cell counts as missing
 * ("NA", "null", "nan" … stay text in text columns). */
typedef enum pcsv_type {
    PCSV_EMPTY = 0, /* every cell empty */
    PCSV_INT,       /* int64 */
    PCSV_FLOAT,     /* float64 (also "nan", "inf") */
    PCSV_BOOL,      /* True/False/true/false/TRUE/FALSE */
    PCSV_TEXT,
} pcsv_type;

pcsv_type pcsv_column_type(const pcsv_table *t, size_t col, bool *has_empty);
bool pcsv_parse_i64(const char *s, int64_t *out);
bool pcsv_parse_f64(const char *s, double *out);

/* Build a column element from the rows `rows[0..n)` of column `col` (a row
 * of UINT64_MAX is a missing row, as pandas' reindex makes). Types:
 * int64 (float64 with NaN when something is missing), float64, bool
 * (nullable-boolean when something is missing), text → AD_STR, or
 * AD_K_OBJECT with null cells when some are empty; an all-empty column is
 * an AD_K_OBJECT of nulls. NULL on ENOMEM. */
ad_elem *pcsv_column(const pcsv_table *t, size_t col, const uint64_t *rows, uint64_t n);

#endif
