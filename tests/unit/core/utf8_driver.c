/* Reads byte strings as hex, one per line ("-" = empty), and prints "ok" or
 * the offset of the first invalid byte per utf8_valid, for
 * utf8_vs_python.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_utf8.h"

int main(void)
{
    static char line[8192];
    static char buf[4096];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = 0;
        for (const char *p = line; p[0] && p[0] != '\n' && p[0] != '-'; p += 2) {
            unsigned v;
            if (sscanf(p, "%2x", &v) != 1 || n == sizeof buf) return 2;
            buf[n++] = (char)v;
        }
        size_t bad;
        if (utf8_valid(buf, n, &bad))
            puts("ok");
        else
            printf("%zu\n", bad);
    }
    return 0;
}
