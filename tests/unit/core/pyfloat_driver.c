/* Reads doubles as 16 hex digits of their bit pattern, one per line, and
 * prints ad_fmt_pyfloat of each, for pyfloat_vs_python.py. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adx_model.h"

int main(void)
{
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        uint64_t bits;
        if (sscanf(line, "%16" SCNx64, &bits) != 1) return 2;
        double x;
        memcpy(&x, &bits, sizeof x);
        char buf[32];
        ad_fmt_pyfloat(x, buf);
        puts(buf);
    }
    return 0;
}
