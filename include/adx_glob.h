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
#include <stdint.h>

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

/* Many patterns against many names in about one pass over each name,
 * whatever the number of patterns: literal patterns are looked up in a hash
 * map, patterns with a literal prefix (else suffix) found through an index
 * of those bytes, prefix*suffix decided by them (glob_lit), and only the
 * rest glob-matched, at most max_tests times in all (0 = no bound) counted
 * in *tests (NULL = the set's own count; sets that share a bound share the
 * counter). The set keeps the pattern pointers. NULL when out of memory. */
typedef struct glob_set glob_set;
glob_set *glob_set_new(const char *const *patterns, size_t n, uint64_t max_tests, uint64_t *tests);
/* 1 when some pattern matches `name`, 0 when none, -1 once the glob matches
 * passed max_tests (the set then answers -1). Every pattern that has not
 * matched yet is tried, so glob_set_matched is exact. */
int glob_set_any(glob_set *s, const char *name);
/* Whether pattern i matched any name given so far. */
bool glob_set_matched(const glob_set *s, size_t i);
void glob_set_free(glob_set *s);

#endif
