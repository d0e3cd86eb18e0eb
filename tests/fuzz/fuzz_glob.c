/* glob_match against a reference: input = pattern NUL name. The reference
 * is a dynamic program over (pattern token, name code point) — obviously
 * right for "*", "?" and literals, with no backtracking to get wrong — and
 * asks glob_match itself only whether one bracket expression matches one
 * code point. So this checks the star/backtracking logic exactly and the
 * bracket code (Python's translate() quirks, see glob.c) for crashes. */
#include "adx_glob.h"
#include "adx_utf8.h"
#include "fuzz_common.h"

/* Code points as adx_glob counts them (adx_utf8's lenient decoding: an
 * invalid byte is a code point of its own). */
static size_t decode(const uint8_t *s, size_t len, uint32_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len;)
        i += utf8_next_lenient(s + i, len - i, &out[n++]);
    return n;
}

/* Encode so that decode() gives `cp` back: the shortest form (a code point
 * of an invalid byte, 0x80-0xFF, comes back from its valid encoding); NUL,
 * which no C string holds, as an overlong form. */
static size_t encode(uint32_t cp, char *o)
{
    if (cp && cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

enum { T_LIT, T_ANY, T_STAR, T_SET };
typedef struct tok {
    int kind;
    uint32_t cp; /* T_LIT */
    char *set;   /* T_SET: "[...]" re-encoded, for glob_match */
} tok;

#define MAXN 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul) return 0;
    size_t pl = (size_t)(nul - data), nl = size - pl - 1;
    if (memchr(nul + 1, 0, nl) || pl > MAXN || nl > MAXN) return -1;
    char *pat = strndup((const char *)data, pl), *name = strndup((const char *)nul + 1, nl);
    uint32_t p[MAXN], s[MAXN];
    size_t pn = decode(data, pl, p), sn = decode(nul + 1, nl, s);

    /* Tokens as fnmatch.translate() cuts them: "[" opens a set closed by
     * the first "]" after an optional "!" and an optional leading "]";
     * an unclosed "[" is a literal. */
    tok t[MAXN];
    size_t tn = 0;
    for (size_t i = 0; i < pn;) {
        tok *k = &t[tn++];
        k->set = NULL;
        if (p[i] == '*') {
            k->kind = T_STAR;
            i++;
        } else if (p[i] == '?') {
            k->kind = T_ANY;
            i++;
        } else if (p[i] == '[') {
            size_t j = i + 1;
            if (j < pn && p[j] == '!') j++;
            if (j < pn && p[j] == ']') j++;
            while (j < pn && p[j] != ']')
                j++;
            if (j >= pn) {
                k->kind = T_LIT;
                k->cp = '[';
                i++;
                continue;
            }
            k->kind = T_SET;
            k->set = malloc(4 * (j - i + 1) + 1);
            size_t o = 0;
            for (size_t q = i; q <= j; q++)
                o += encode(p[q], k->set + o);
            k->set[o] = '\0';
            i = j + 1;
        } else {
            k->kind = T_LIT;
            k->cp = p[i++];
        }
    }

    /* dp[a][b]: tokens [a, tn) match code points [b, sn). */
    static unsigned char dp[MAXN + 1][MAXN + 1];
    for (size_t b = 0; b <= sn; b++)
        dp[tn][b] = b == sn;
    for (size_t a = tn; a-- > 0;) {
        for (size_t b = sn + 1; b-- > 0;) {
            const tok *k = &t[a];
            unsigned char m = 0;
            if (k->kind == T_STAR) {
                m = dp[a + 1][b] || (b < sn && dp[a][b + 1]);
            } else if (b < sn) {
                bool one;
                if (k->kind == T_ANY) {
                    one = true;
                } else if (k->kind == T_LIT) {
                    one = k->cp == s[b];
                } else {
                    char c[5];
                    c[encode(s[b], c)] = '\0';
                    one = glob_match(k->set, c);
                }
                m = one && dp[a + 1][b + 1];
            }
            dp[a][b] = m;
        }
    }
    bool want = dp[0][0], got = glob_match(pat, name);
    if (want != got) {
        fprintf(stderr, "glob_match(\"%s\", \"%s\") = %d, reference says %d\n", pat, name, got,
                want);
        abort();
    }
    const char *const pats[2] = {name, pat};
    bool self = glob_match(name, name);
    /* The shortcuts of many-pattern matching decide only what glob_match
     * would (literal text, prefix, suffix, prefix*suffix). */
    glob_lit g;
    glob_lit_init(&g, pat);
    int lit = glob_lit_check(&g, pat, name, nl, utf8_valid(name, nl, NULL));
    if (lit >= 0 && lit != got) {
        fprintf(stderr, "glob_lit(\"%s\", \"%s\") = %d, glob_match says %d\n", pat, name, lit, got);
        abort();
    }
    glob_set *gs = glob_set_new(pats, 2, 0, NULL);
    if (gs) {
        if (glob_set_any(gs, name) != (got || self) || glob_set_matched(gs, 1) != got ||
            glob_set_matched(gs, 0) != self)
            abort();
        glob_set_free(gs);
    }
    for (size_t i = 0; i < tn; i++)
        free(t[i].set);
    free(pat);
    free(name);
    return 0;
}
