/* Reads lists of hex-encoded strings (one per line, a blank line ends a
 * list) and prints each list sorted with ad_natural_cmp in the same
 * format, for natsort_vs_python.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_model.h"

typedef struct item {
    char *s;
    size_t len;
} item;

static int cmp(const void *x, const void *y)
{
    const item *a = x, *b = y;
    return ad_natural_cmp(a->s, a->len, b->s, b->len);
}

static void flush(item *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp);
    for (size_t i = 0; i < n; i++) {
        if (v[i].len == 0) printf("-");
        for (size_t k = 0; k < v[i].len; k++)
            printf("%02x", (unsigned char)v[i].s[k]);
        printf("\n");
        free(v[i].s);
    }
    printf("\n");
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0, n = 0, vcap = 0;
    item *v = NULL;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n') line[--len] = '\0';
        if (len == 0) {
            flush(v, n);
            n = 0;
            continue;
        }
        if (line[0] == '-') len = 0; /* "-" stands for the empty string */
        if (n == vcap) {
            vcap = vcap ? 2 * vcap : 16;
            item *nv = realloc(v, vcap * sizeof *v);
            if (!nv) return 2;
            v = nv;
        }
        v[n].len = (size_t)len / 2;
        v[n].s = malloc(v[n].len + 1);
        if (!v[n].s) return 2;
        for (size_t k = 0; k < v[n].len; k++) {
            unsigned x;
            if (sscanf(line + 2 * k, "%2x", &x) != 1) return 2;
            v[n].s[k] = (char)x;
        }
        v[n].s[v[n].len] = '\0';
        n++;
    }
    if (n) flush(v, n);
    free(v);
    free(line);
    return 0;
}
