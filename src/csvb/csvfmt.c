#include "csvfmt.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int csvb_buf_put(csvb_buf *b, const char *s, size_t n)
{
    size_t need;
    if (__builtin_add_overflow(b->len, n + 1, &need)) return -1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            if (__builtin_mul_overflow(cap, 2, &cap)) return -1;
        char *p = realloc(b->s, cap);
        if (!p) return -1;
        b->s = p;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

void csvb_buf_free(csvb_buf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

size_t csvb_fmt_num(const ad_array *a, uint64_t i, char buf[32])
{
    switch (a->dtype) {
    case AD_BOOL:
        strcpy(buf, ((const uint8_t *)a->data)[i] ? "True" : "False");
        break;
    case AD_F32: {
        float v = ((const float *)a->data)[i];
        if (isnan(v))
            buf[0] = '\0';
        else
            ad_fmt_npfloat32(v, buf);
        break;
    }
    case AD_F64: {
        double v = ((const double *)a->data)[i];
        if (isnan(v))
            buf[0] = '\0';
        else
            ad_fmt_pyfloat(v, buf);
        break;
    }
    case AD_U8:
    case AD_U16:
    case AD_U32:
    case AD_U64: {
        uint64_t v;
        switch (a->dtype) {
        case AD_U8:
            v = ((const uint8_t *)a->data)[i];
            break;
        case AD_U16:
            v = ((const uint16_t *)a->data)[i];
            break;
        case AD_U32:
            v = ((const uint32_t *)a->data)[i];
            break;
        default:
            v = ((const uint64_t *)a->data)[i];
            break;
        }
        snprintf(buf, 32, "%" PRIu64, v);
        break;
    }
    default:
        snprintf(buf, 32, "%" PRId64, ad_array_get_i64(a, i));
        break;
    }
    return strlen(buf);
}

bool csvb_needs_quote(const char *s, size_t n, char sep)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == sep || s[i] == '"' || s[i] == '\n' || s[i] == '\r') return true;
    return false;
}

int csvb_put_field(csvb_buf *b, const char *s, size_t n, char sep)
{
    if (!csvb_needs_quote(s, n, sep)) return csvb_buf_put(b, s, n);
    if (csvb_buf_put(b, "\"", 1) < 0) return -1;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            if (csvb_buf_put(b, s + start, i + 1 - start) < 0) return -1;
            if (csvb_buf_put(b, "\"", 1) < 0) return -1;
            start = i + 1;
        }
    }
    if (csvb_buf_put(b, s + start, n - start) < 0) return -1;
    return csvb_buf_put(b, "\"", 1);
}

int csvb_put_record(csvb_buf *b, const char *const *fields, const size_t *lens, size_t n, char sep)
{
    if (n == 1 && lens[0] == 0) return csvb_buf_put(b, "\"\"\n", 3);
    for (size_t i = 0; i < n; i++) {
        if (i && csvb_buf_put(b, &sep, 1) < 0) return -1;
        if (csvb_put_field(b, fields[i], lens[i], sep) < 0) return -1;
    }
    return csvb_buf_put(b, "\n", 1);
}
