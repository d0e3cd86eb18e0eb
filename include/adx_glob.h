/* adx_glob (prefix glob_) — shell-style pattern matching with the exact
 * semantics of Python's fnmatch.fnmatchcase on POSIX (the reference
 * implementation's include filter): `*` matches any run including "/",
 * `?` one character, `[abc]`, `[a-z]`, `[!abc]`; a backslash is an ordinary
 * character; an unclosed "[" is a literal "[". Matching is by Unicode code
 * point (UTF-8 decoded; invalid bytes count as one code point each),
 * case-sensitive. Iterative (no recursion), O(len(pattern) * len(name)).
 * Allocates two small code-point buffers per call; on ENOMEM it reports no
 * match.
 */
#ifndef ADX_GLOB_H
#define ADX_GLOB_H

#include <stdbool.h>
#include <stddef.h>

bool glob_match(const char *pattern, const char *name);
/* True if any of n patterns matches. */
bool glob_match_any(const char *const *patterns, size_t n, const char *name);

#endif
