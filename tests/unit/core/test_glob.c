/* glob_match against a hand table of fnmatch.fnmatchcase answers (each row
 * checked with Debian's Python 3.11); the generated comparison is
 * glob_vs_fnmatch.py. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_glob.h"
#include "adx_utf8.h"

static const struct {
    const char *pat, *name;
    bool want;
} rows[] = {
    {"*", "", true},
    {"*", "anything/at all", true},
    {"", "", true},
    {"", "a", false},
    {"?", "", false},
    {"?", "a", true},
    {"?", "\xc3\xa9", true}, /* one code point, two bytes */
    {"??", "\xc3\xa9", false},
    {"X_*", "X_pca", true},
    {"X_*", "x_pca", false}, /* case-sensitive */
    {"kmeans_*", "kmeans_", true},
    {"a*b", "a/x/b", true}, /* "*" crosses "/" */
    {"a?b", "a/b", true},
    {"*a*a*a*", "aaa", true},
    {"*a*a*a*", "aa", false},
    {"[abc]", "b", true},
    {"[abc]", "d", false},
    {"[!a]", "a", false},
    {"[!a]", "b", true},
    {"[a-z]", "m", true},
    {"[a-z]", "M", false},
    {"[z-a]", "m", false}, /* empty range never matches */
    {"[z-a]", "z", false},
    {"[!z-a]", "q", true}, /* ... and negated matches anything */
    {"[]]", "]", true},
    {"[]a]", "a", true},
    {"[!]]", "]", false},
    {"[!]]", "a", true},
    {"[", "[", true}, /* unclosed: literal */
    {"[a", "[a", true},
    {"[!", "[!", true},
    {"[]", "[]", true},
    {"\\", "\\", true}, /* backslash is ordinary */
    {"\\*", "\\anything", true},
    {"\\*", "*", false},
    {"[\\]", "\\", true},
    {"[a-]", "-", true},
    {"[-a]", "-", true},
    {"[a-c-e]", "d", false},
    {"[a-c-e]", "-", true},
    {"[a-c-e]", "e", true},
    {"[--0]", ".", true},
    {"[a--b]", "b", true},
    {"[a--b]", "a", false},
    {"[z-b!-]", "x", true}, /* the merge leaves "!-" first: negated */
    {"[z-b!-]", "-", false},
    {"[b-!!]", "b", true}, /* "!" alone: anything */
    {"[\xc3\xa0-\xc3\xbc]", "\xc3\xa9", true},
    {"[!\xc3\xa9]", "e", true},
    {"\xe2\x9c\x93*", "\xe2\x9c\x93ok", true},
    {"[/]", "/", true},
    {"[?]", "a", false},
    {"[*]", "*", true},
};

START_TEST(hand_table)
{
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        ck_assert_msg(glob_match(rows[i].pat, rows[i].name) == rows[i].want,
                      "glob_match(\"%s\", \"%s\") should be %d", rows[i].pat, rows[i].name,
                      rows[i].want);
}
END_TEST

START_TEST(match_any)
{
    const char *pats[] = {"obs_*", "X_?ca"};
    glob_set *s = glob_set_new(pats, 2, 0, NULL), *none = glob_set_new(pats, 0, 0, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(none);
    ck_assert_int_eq(glob_set_any(s, "X_pca"), 1);
    ck_assert_int_eq(glob_set_any(s, "obs_1"), 1);
    ck_assert_int_eq(glob_set_any(s, "X_umap"), 0);
    ck_assert_int_eq(glob_set_any(none, "X_pca"), 0);
    glob_set_free(s);
    glob_set_free(none);
}
END_TEST

/* The quadratic cases of a backtracking matcher (an audit's repro: a long
 * literal run between stars over a long run of the same letter) cost about
 * linear steps: each segment between stars is searched for once. */
static char *repeat(const char *unit, size_t n, const char *head, const char *tail)
{
    size_t ul = strlen(unit), hl = strlen(head), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + i * ul, unit, ul);
    memcpy(s + hl + ul * n, tail, tl + 1);
    return s;
}

START_TEST(long_segments_cost_linear_steps)
{
    char *name = repeat("a", 60000, "", "7"), *hit = repeat("a", 60000, "", "c");
    size_t nl = strlen(name);
    struct {
        char *pat;
        uint64_t words; /* Shift-And words per code point of the name (0: KMP) */
    } cases[] = {
        {repeat("a", 4000, "*", "c*"), 0},
        {repeat("[a]", 1300, "*", "c*"), 0}, /* a one-letter bracket is a literal */
        {repeat("a?", 2000, "*", "c*"), (4001 + 63) / 64},
        {repeat("[ab]", 1000, "*", "c*"), (1001 + 63) / 64},
        {repeat("*a", 2000, "", "c*"), 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t pl = strlen(cases[i].pat);
        /* bytes decoded, a pattern sorted, KMP's two looks, or the words
         * of the masks that match and the binary searches */
        uint64_t bound = 8 * (pl + nl) + 1000 + nl * 3 * cases[i].words;
        uint64_t steps = 0;
        ck_assert_int_eq(glob_match_steps(cases[i].pat, name, &steps, 0), 0);
        ck_assert_msg(steps <= bound, "case %zu: %" PRIu64 " steps, bound %" PRIu64, i, steps,
                      bound);
        /* the quadratic matcher compared ~len(name) * len(segment) */
        ck_assert_uint_lt(steps, (uint64_t)nl * 4000 / 20);
        steps = 0;
        ck_assert_int_eq(glob_match_steps(cases[i].pat, hit, &steps, 0), 1);
        ck_assert_uint_le(steps, bound);
        free(cases[i].pat);
    }
    free(name);
    free(hit);
}
END_TEST

/* The steps add up across calls and a call gives up once they pass the
 * bound, whatever it was doing; 0 means no bound. */
START_TEST(steps_are_bounded)
{
    char *name = repeat("ab", 5000, "", ""), *pat = repeat("a?", 300, "*", "c*");
    uint64_t steps = 0;
    ck_assert_int_eq(glob_match_steps(pat, name, &steps, 0), 0);
    uint64_t one = steps;
    ck_assert_uint_gt(one, 10000); /* at least the name's length */
    ck_assert_int_eq(glob_match_steps(pat, name, &steps, 0), 0);
    ck_assert_uint_eq(steps, 2 * one); /* the same work, counted again */
    steps = 0;
    ck_assert_int_eq(glob_match_steps(pat, name, &steps, one), 0); /* just enough */
    steps = 0;
    ck_assert_int_eq(glob_match_steps(pat, name, &steps, one - 1), -1);
    ck_assert_uint_gt(steps, one - 1);
    steps = one; /* an earlier match spent the budget: the next one stops at once */
    ck_assert_int_eq(glob_match_steps("*", "x", &steps, one), -1);
    ck_assert_int_eq(glob_match_steps("a*", "ab", NULL, 0), 1);
    free(name);
    free(pat);
}
END_TEST

START_TEST(long_inputs_are_linear_enough)
{
    /* the classic exponential case for recursive matchers */
    char name[4001], pat[200];
    for (int i = 0; i < 4000; i++)
        name[i] = 'a';
    name[4000] = '\0';
    int k = 0;
    for (int i = 0; i < 60; i++) {
        pat[k++] = 'a';
        pat[k++] = '*';
    }
    pat[k++] = 'b';
    pat[k] = '\0';
    ck_assert(!glob_match(pat, name));
    pat[k - 1] = 'a';
    ck_assert(glob_match(pat, name));
}
END_TEST

/* glob_lit decides only what glob_match would: random patterns and names
 * over an alphabet of wildcards, bracket characters, a two-byte letter and
 * invalid bytes (so the UTF-8 rule is exercised both ways). */
START_TEST(literal_checks_agree_with_glob_match)
{
    static const char *const atoms[] = {"a", "b", "\xc3\xa9", "\xe9", "*", "?",
                                        "[", "]", "!",        "-",    "x"};
    enum { NA = sizeof atoms / sizeof *atoms };
    unsigned seed = 12345;
    int decided = 0;
    for (int round = 0; round < 40000; round++) {
        char pat[64] = "", name[64] = "";
        int pl = (int)(rand_r(&seed) % 7), nl = (int)(rand_r(&seed) % 7);
        for (int k = 0; k < pl; k++)
            strcat(pat, atoms[rand_r(&seed) % NA]);
        for (int k = 0; k < nl; k++)
            strcat(name, atoms[rand_r(&seed) % (NA - 5)]); /* names: letters only */
        if (rand_r(&seed) % 4 == 0) strcat(name, pat);     /* often the pattern's own text */
        glob_lit g;
        glob_lit_init(&g, pat);
        size_t n = strlen(name);
        int r = glob_lit_check(&g, pat, name, n, utf8_valid(name, n, NULL));
        if (r < 0) continue;
        decided++;
        ck_assert_msg(r == (int)glob_match(pat, name), "pattern \"%s\" name \"%s\": lit %d", pat,
                      name, r);
    }
    ck_assert_int_gt(decided, 10000);
    /* the cases the rules are about */
    glob_lit g;
    glob_lit_init(&g, "[*]x");
    ck_assert_int_eq(glob_lit_check(&g, "[*]x", "*x", 2, true), -1); /* no suffix past a "[" */
    glob_lit_init(&g, "ab*cd");
    ck_assert_int_eq(glob_lit_check(&g, "ab*cd", "abcd", 4, true), 1); /* prefix*suffix decide */
    ck_assert_int_eq(glob_lit_check(&g, "ab*cd", "abc", 3, true),
                     0); /* prefix and suffix overlap */
    ck_assert_int_eq(glob_lit_check(&g, "ab*cd", "xbcd", 4, true), 0);
    ck_assert_int_eq(glob_lit_check(&g, "ab*cd", "abxd", 4, true), 0);
    glob_lit_init(&g, "a*b*c");
    ck_assert_int_eq(glob_lit_check(&g, "a*b*c", "axc", 3, true),
                     -1); /* the inner b: glob decides */
    glob_lit_init(&g, "\xc3\xa9");
    ck_assert_int_eq(glob_lit_check(&g, "\xc3\xa9", "\xe9", 1, false),
                     -1);                      /* invalid: glob decides */
    ck_assert(glob_match("\xc3\xa9", "\xe9")); /* both are U+00E9 */
}
END_TEST

/* glob_set answers what matching every pattern answers, and knows which
 * patterns matched: random patterns (repeats, literals, prefixes, suffixes,
 * brackets holding "*") on random names, some not valid UTF-8. */
START_TEST(set_agrees_with_matching_every_pattern)
{
    static const char *const atoms[] = {"a", "b", "\xc3\xa9", "*", "?", "[", "]", "!", "-"};
    enum { NA = sizeof atoms / sizeof *atoms, NP = 10, NN = 40 };
    unsigned seed = 777;
    for (int round = 0; round < 400; round++) {
        char pats[NP][24], names[NN][24];
        const char *pp[NP];
        for (int q = 0; q < NP; q++) {
            pats[q][0] = '\0';
            if (q && rand_r(&seed) % 6 == 0) {
                strcpy(pats[q], pats[q - 1]);
            } else {
                int l = (int)(rand_r(&seed) % 5);
                for (int k = 0; k < l; k++)
                    strcat(pats[q], atoms[rand_r(&seed) % NA]);
            }
            pp[q] = pats[q];
        }
        bool want_pat[NP] = {0};
        glob_set *s = glob_set_new(pp, NP, 0, NULL);
        ck_assert_ptr_nonnull(s);
        for (int k = 0; k < NN; k++) {
            names[k][0] = '\0';
            int l = (int)(rand_r(&seed) % 5);
            for (int c = 0; c < l; c++)
                strcat(names[k], atoms[rand_r(&seed) % 3]);
            if (rand_r(&seed) % 8 == 0) strcat(names[k], "\xe9"); /* not valid UTF-8 */
            bool want = false;
            for (int q = 0; q < NP; q++)
                if (glob_match(pats[q], names[k])) want = want_pat[q] = true;
            ck_assert_msg(glob_set_any(s, names[k]) == want, "round %d name \"%s\"", round,
                          names[k]);
        }
        for (int q = 0; q < NP; q++)
            ck_assert_msg(glob_set_matched(s, q) == want_pat[q], "round %d pattern \"%s\"", round,
                          pats[q]);
        glob_set_free(s);
    }
    /* the bound, shared by two sets: patterns the literal text decides cost
     * a step a try, those it does not their glob match */
    const char *dear[] = {"*1*", "?2?"}, *cheap[] = {"k1", "k9*", "*7", "*"};
    uint64_t tests = 0;
    glob_set *c = glob_set_new(cheap, 4, 1000, &tests), *d = glob_set_new(dear, 2, 1000, &tests);
    char nm[16];
    for (int k = 0; k < 100; k++) {
        snprintf(nm, sizeof nm, "k%d", k);
        ck_assert_int_eq(glob_set_any(c, nm), 1); /* "*" matches; no glob match needed */
    }
    ck_assert_uint_ge(tests, 4 * 100); /* "*" is tried on every name */
    ck_assert_uint_le(tests, 4 * 150);
    int r = 0;
    for (int k = 0; k < 100 && r >= 0; k++) {
        snprintf(nm, sizeof nm, "k%d", k);
        r = glob_set_any(d, nm);
    }
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(glob_set_any(d, "x"), -1); /* stays over */
    glob_set_free(c);
    glob_set_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("glob");
    TCase *t = tcase_create("glob");
    tcase_add_test(t, hand_table);
    tcase_add_test(t, match_any);
    tcase_add_test(t, long_inputs_are_linear_enough);
    tcase_add_test(t, long_segments_cost_linear_steps);
    tcase_add_test(t, steps_are_bounded);
    tcase_add_test(t, literal_checks_agree_with_glob_match);
    tcase_add_test(t, set_agrees_with_matching_every_pattern);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
