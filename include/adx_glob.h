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

/* What a pattern's literal text tells without matching, for matching many
 * names against many patterns in about linear time: a pattern with no "*",
 * "?" or "[" matches exactly its own text; otherwise a name starts with the
 * text before the first of them and, in a pattern without "[", ends with
 * the text after its last "*" when that holds no "?". Byte comparisons
 * stand for code points only when the pattern and the name are both valid
 * UTF-8 (an invalid byte counts as the code point of its value, which a
 * valid sequence can spell too), so otherwise glob_match decides. */
typedef struct glob_lit {
    bool valid, literal;
    bool exact; /* one run of "*" between the prefix and suffix, nothing else: they decide */
    size_t len, pre, suf; /* bytes: the pattern, its literal prefix, its literal suffix */
} glob_lit;
void glob_lit_init(glob_lit *g, const char *pattern);
/* 0: `name` (nlen bytes, name_valid: valid UTF-8) cannot match; 1: it
 * matches (a literal pattern, or prefix*suffix); -1: glob_match decides. */
int glob_lit_check(const glob_lit *g, const char *pattern, const char *name, size_t nlen,
                   bool name_valid);
/* True if any of n patterns matches. */
bool glob_match_any(const char *const *patterns, size_t n, const char *name);

#endif
