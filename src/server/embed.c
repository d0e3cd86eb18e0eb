/* Build-time helper: turns a file into a C array so the daemon serves its
 * OpenAPI document without depending on where it was installed.
 * usage: embed INPUT OUTPUT SYMBOL */
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 4) return 2;
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "w");
    if (!in || !out) return 1;
    fprintf(out, "/* generated from %s */\nconst char %s[] = {", argv[1], argv[3]);
    unsigned long n = 0;
    int c;
    /* signed values: UTF-8 bytes above 127 must not overflow plain char */
    while ((c = fgetc(in)) != EOF) {
        fprintf(out, "%s%d", n == 0 ? "\n" : n % 24 ? "," : ",\n", (int)(signed char)c);
        n++;
    }
    fprintf(out, "%s0};\nconst unsigned long %s_len = %luul;\n", n ? "," : "", argv[3], n);
    fclose(in);
    return fclose(out) == 0 ? 0 : 1;
}
