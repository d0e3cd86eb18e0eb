/* Reads floats as hex of their bit pattern, one per line — 16 digits for a
 * double, 8 for a float32 — and prints ad_fmt_pyfloat or ad_fmt_npfloat32
 * of each, for pyfloat_vs_python.py. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adx_model.h"

int main(void)
{
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        char buf[32];
        size_t n = strcspn(line, "\n");
        if (n == 8) {
            uint32_t bits;
            if (sscanf(line, "%8" SCNx32, &bits) != 1) return 2;
            float x;
            memcpy(&x, &bits, sizeof x);
            ad_fmt_npfloat32(x, buf);
        } else {
            uint64_t bits;
            if (sscanf(line, "%16" SCNx64, &bits) != 1) return 2;
            double x;
            memcpy(&x, &bits, sizeof x);
            ad_fmt_pyfloat(x, buf);
        }
        puts(buf);
    }
    return 0;
}
