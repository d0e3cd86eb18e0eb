/* Number tokens for num_vs_python.py. Reads one token per line on stdin and
 * prints one result per line: "I <int64>", "U <uint64>", "R <16 hex digits
 * of the double's bits>", "RANGE" or "BAD", first from jn_parse on the bare
 * token, then (mode "doc") through the whole parser: all tokens read back as
 * the elements of one JSON array. */
#include <inttypes.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jdec_num.h"
#include "jdec_tree.h"

static void print_num(int r, const jn_num *n)
{
    uint64_t bits;
    switch (r) {
    case JN_INT:
        printf("I %" PRId64 "\n", n->i);
        break;
    case JN_UINT:
        printf("U %" PRIu64 "\n", n->u);
        break;
    case JN_REAL:
        memcpy(&bits, &n->d, 8);
        printf("R %016" PRIx64 "\n", bits);
        break;
    case JN_RANGE:
        printf("RANGE\n");
        break;
    default:
        printf("BAD\n");
    }
}

int main(int argc, char **argv)
{
    bool doc = argc > 1 && !strcmp(argv[1], "doc");
    locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    /* a locale with a decimal comma must not change anything */
    setlocale(LC_ALL, "de_DE.UTF-8");
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap), line[4096];
    text[len++] = '[';
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strcspn(line, "\n");
        line[n] = '\0';
        if (!doc) {
            jn_num v;
            print_num(jn_parse(line, n, c, &v), &v);
            continue;
        }
        if (len + n + 4 > cap) text = realloc(text, cap *= 2);
        if (len > 1) text[len++] = ',';
        memcpy(text + len, line, n);
        len += n;
    }
    text[len++] = ']';
    if (doc) {
        adx_limits lim;
        adx_limits_default(&lim);
        adx_err err;
        adx_err_init(&err);
        adx_src *s = adx_src_open_mem(text, len, 0, &err);
        jv_parse_opts o = {.lim = &lim};
        jv_doc *d = s ? jv_parse(s, &o, &err) : NULL;
        if (!d) {
            fprintf(stderr, "parse failed: %s at %s\n", err.detail, err.items[0].pointer);
            return 1;
        }
        jv root = jv_doc_root(d);
        for (size_t i = 0; i < jv_array_size(root); i++) {
            jv v = jv_array_get(root, i);
            jn_num x;
            uint64_t u;
            if (jv_is_real(v)) {
                x.d = jv_real_value(v);
                print_num(JN_REAL, &x);
            } else if (jv_big_unsigned(v, &u)) {
                x.u = u;
                print_num(JN_UINT, &x);
            } else {
                x.i = jv_integer_value(v);
                print_num(JN_INT, &x);
            }
        }
        jv_doc_free(d);
        adx_src_close(s);
    }
    free(text);
    freelocale(c);
    return 0;
}
