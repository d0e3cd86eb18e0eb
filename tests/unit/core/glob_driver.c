/* Reads "<hex pattern> <hex name>" lines on stdin and prints 1 or 0 per line
 * (glob_match). Hex keeps any byte, newline or space out of the framing so
 * the Python side can send arbitrary strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_glob.h"

static int unhex(const char *h, size_t n, char *out)
{
    if (n % 2) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (char)v;
    }
    out[n / 2] = '\0';
    return 0;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n') line[--len] = '\0';
        char *sp = strchr(line, ' ');
        if (!sp) {
            fprintf(stderr, "bad line: %s\n", line);
            free(line);
            return 2;
        }
        size_t pl = (size_t)(sp - line), nl = strlen(sp + 1);
        char *p = malloc(pl / 2 + 1), *s = malloc(nl / 2 + 1);
        if (!p || !s || unhex(line, pl, p) < 0 || unhex(sp + 1, nl, s) < 0) {
            fprintf(stderr, "bad hex: %s\n", line);
            free(p);
            free(s);
            free(line);
            return 2;
        }
        printf("%d\n", glob_match(p, s) ? 1 : 0);
        free(p);
        free(s);
    }
    free(line);
    return 0;
}
