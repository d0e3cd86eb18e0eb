/* JSON number tokens → int64 / uint64 / double (private to src/jdec, prefix
 * jn_). Reals are correctly rounded, bit-identical to Python's float() of the
 * same text: the Clinger fast path when the decimal has at most 15
 * significant digits and a power of ten that is exact in a double; else,
 * up to 19 digits, Eisel-Lemire with a table of 128-bit powers of five
 * (jdec_pow5.h, from gen_pow5.py), which either rounds correctly or says it
 * cannot; else (and for subnormals) strtod_l in the "C" locale (glibc's
 * strtod rounds correctly). */
#ifndef JDEC_NUM_H
#define JDEC_NUM_H

#include <locale.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef union jn_num {
    int64_t i;
    uint64_t u;
    double d;
} jn_num;

enum { JN_INT = 1, JN_UINT, JN_REAL, JN_BAD, JN_RANGE };

static inline bool jn_is_numchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Parse tok[0..len) by the RFC 8259 grammar: JN_INT (fits
 * int64), JN_UINT (above INT64_MAX, fits uint64), JN_REAL (overflow gives
 * ±inf and underflow ±0, as Python), JN_RANGE (an integer beyond both),
 * JN_BAD (not a JSON number: leading zeros, "1.", "+1", ".5", ...). tok
 * need not be NUL-terminated when the byte after it is no number character. */
int jn_parse(const char *tok, size_t len, locale_t c_locale, jn_num *out);
/* The number that starts at s, in one pass, when it ends before `end` at a
 * byte that is no number character: its JN_* and *endp; else 0 (the token
 * may go on past `end`, or is malformed): read it whole, then jn_parse. */
int jn_scan(const char *s, const char *end, locale_t c_locale, jn_num *out, const char **endp);

#endif
