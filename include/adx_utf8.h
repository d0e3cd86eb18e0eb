/* adx_utf8 (prefix utf8_, in src/core) — the one UTF-8 decoder and
 * validator. Well-formed means RFC 3629 / Unicode's table 3-7: no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no stray or
 * missing continuation bytes. Python's strict "utf-8" codec (and so
 * anndata, h5py and numpy's "U" dtype) accepts exactly these.
 *
 * Pure functions on caller buffers: no allocation, no errors beyond the
 * return value, no NUL terminator needed (lengths are explicit).
 */
#ifndef ADX_UTF8_H
#define ADX_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One code point from s[0..len): returns its byte length (1-4) and sets
 * *cp, or returns 0 (and leaves *cp alone) when s does not start with a
 * well-formed sequence — including one cut short by len. len must be > 0. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Whether all n bytes are well-formed UTF-8. When not and `bad` is
 * non-NULL, *bad is the offset of the first byte that starts no well-formed
 * sequence. */
bool utf8_valid(const char *s, size_t n, size_t *bad);

/* A decoder that never fails, for comparing text that may not be valid
 * (natural sort keys, glob matching): a well-formed sequence is its code
 * point, any other byte is a code point of its own value (1 byte). Returns
 * the bytes consumed (>= 1). len must be > 0. */
size_t utf8_next_lenient(const unsigned char *s, size_t len, uint32_t *cp);

#endif
