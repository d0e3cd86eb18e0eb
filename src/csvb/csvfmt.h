/* csvfmt (prefix csvb_) — internal: cell text exactly as pandas.to_csv writes
 * it for anndata's write_csvs. Exposed for unit tests. */
#ifndef ADX_CSVFMT_H
#define ADX_CSVFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adx_model.h"

/* Growable text buffer. */
typedef struct csvb_buf {
    char *s;
    size_t len, cap;
} csvb_buf;
int csvb_buf_put(csvb_buf *b, const char *s, size_t n); /* -1 on ENOMEM */
void csvb_buf_free(csvb_buf *b);

/* Text of numeric element i as pandas writes it: floats by repr
 * (ad_fmt_pyfloat, ad_fmt_npfloat32) with NaN as
 * "" (pandas' na_rep), ±inf as "inf"/"-inf", bools True/False, integers in
 * decimal. Returns the length. Not for AD_STR. */
size_t csvb_fmt_num(const ad_array *a, uint64_t i, char buf[32]);
/* Whether a field needs quotes: it holds the separator, '"', CR or LF. */
bool csvb_needs_quote(const char *s, size_t n, char sep);
/* Append one field, quoted and with '"' doubled when needed. */
int csvb_put_field(csvb_buf *b, const char *s, size_t n, char sep);
/* Append a record: fields joined by sep, then '\n'. A record of one empty
 * field is written as "" (Python's csv module does, so the line is not
 * mistaken for no record). */
int csvb_put_record(csvb_buf *b, const char *const *fields, const size_t *lens, size_t n, char sep);

#endif
