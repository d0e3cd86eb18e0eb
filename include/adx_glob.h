/* adx_glob (prefix glob_) — shell-style pattern matching with the exact
 * semantics of Python's fnmatch.fnmatchcase on POSIX (the reference
 * implementation's include filter): `*` matches any run including "/",
 * `?` one character, `[abc]`, `[a-z]`, `[!abc]`; a backslash is an ordinary
 * character; an unclosed "[" is a literal "[". Matching is by Unicode code
 * point (UTF-8 decoded; invalid bytes count as one code point each),
 * case-sensitive.
 *
 * Cost: the segments between stars are placed leftmost, one search each, and
 * no position of the name is looked at twice: O(len(pattern) log + len(name))
 * when the segments between stars are literal text (brackets of one code
 * point count as literal), O(len(name) * ceil(len(segment) / 64)) for a
 * segment with "?" or brackets, plus a binary search per distinct bracket of
 * the segment and code point of the name. That work is counted in steps
 * (about a nanosecond each on a 2020s x86 core): a call's fixed cost, one a
 * byte of the pattern and of the name, one a code point a search looks at,
 * one a 64-bit word of a Shift-And update, one a step of a binary search.
 * Scratch is on the stack for short text, else malloc'd for the call; on
 * ENOMEM it reports no match.
 */
#ifndef ADX_GLOB_H
#define ADX_GLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool glob_match(const char *pattern, const char *name);
/* glob_match that adds its steps to *steps (NULL: not kept) and gives up
 * with -1 once *steps passes max_steps (0 = no bound); else 1 or 0. */
int glob_match_steps(const char *pattern, const char *name, uint64_t *steps, uint64_t max_steps);

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
 * rest glob-matched. Each pattern tried on a name costs 4 steps (1 when it
 * is passed over: it matched before and another matched this name), plus
 * one per 16 bytes of literal prefix and suffix compared, plus the steps of
 * glob_match_steps when the literal text does not decide; at most max_steps
 * in all (0 = no bound), counted in *steps (NULL = the set's own count; sets
 * that share a bound share the counter). The lookups and the walk of the
 * index are linear in the name and not counted. The set keeps the pattern
 * pointers. NULL when out of memory. */
typedef struct glob_set glob_set;
glob_set *glob_set_new(const char *const *patterns, size_t n, uint64_t max_steps, uint64_t *steps);
/* 1 when some pattern matches `name`, 0 when none, -1 once the steps passed
 * max_steps (the set then answers -1). Every pattern that has not matched
 * yet is tried, so glob_set_matched is exact. */
int glob_set_any(glob_set *s, const char *name);
/* Whether pattern i matched any name given so far. */
bool glob_set_matched(const glob_set *s, size_t i);
void glob_set_free(glob_set *s);

#endif
