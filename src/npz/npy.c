#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adx_utf8.h"

const char *npz_npy_descr(ad_dtype t)
{
    switch (t) {
    case AD_BOOL:
        return "|b1";
    case AD_I8:
        return "|i1";
    case AD_I16:
        return "<i2";
    case AD_I32:
        return "<i4";
    case AD_I64:
        return "<i8";
    case AD_U8:
        return "|u1";
    case AD_U16:
        return "<u2";
    case AD_U32:
        return "<u4";
    case AD_U64:
        return "<u8";
    case AD_F32:
        return "<f4";
    case AD_F64:
        return "<f8";
    default:
        return NULL;
    }
}

uint8_t *npz_npy_wrap(const char *dict, size_t dict_len, size_t *len)
{
    /* numpy: hlen = len(header) + 1 ('\n'); pad so that magic(6) + version(2)
     * + length field + hlen is a multiple of 64; try the 2-byte length first. */
    size_t pre = 8 + 2, hlen = dict_len + 1;
    int major = 1;
    size_t pad = 64 - ((pre + hlen) % 64);
    /* 1.0 and 2.0 are latin-1; 3.0 is 2.0 in UTF-8 (numpy 1.17 on), what
     * np.save writes when a field name is not latin-1. UTF-8 throughout
     * keeps one encoding for any name. */
    bool utf8 = false;
    for (size_t i = 0; i < dict_len && !utf8; i++)
        utf8 = (unsigned char)dict[i] >= 0x80;
    if (utf8 || hlen + pad > 65535) {
        major = utf8 ? 3 : 2;
        pre = 8 + 4;
        pad = 64 - ((pre + hlen) % 64);
    }
    size_t total;
    if (__builtin_add_overflow(pre, hlen, &total) || __builtin_add_overflow(total, pad, &total) ||
        hlen + pad > UINT32_MAX)
        return NULL;
    uint8_t *b = malloc(total);
    if (!b) return NULL;
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    uint64_t hl = hlen + pad;
    b[8] = (uint8_t)(hl & 0xff);
    b[9] = (uint8_t)((hl >> 8) & 0xff);
    if (major >= 2) {
        b[10] = (uint8_t)((hl >> 16) & 0xff);
        b[11] = (uint8_t)((hl >> 24) & 0xff);
    }
    memcpy(b + pre, dict, dict_len);
    memset(b + pre + dict_len, ' ', pad);
    b[total - 1] = '\n';
    *len = total;
    return b;
}

uint8_t *npz_npy_header(const char *descr, int ndim, const uint64_t *shape, size_t *len)
{
    char q[64];
    int n = snprintf(q, sizeof q, "'%s'", descr);
    if (n < 0 || (size_t)n >= sizeof q) return NULL;
    return npz_npy_header_repr(q, ndim, shape, len);
}

uint8_t *npz_npy_header_repr(const char *descr, int ndim, const uint64_t *shape, size_t *len)
{
    if (ndim < 0 || ndim > AD_MAX_NDIM) return NULL;
    /* 32 dims × (20 digits + ", ") plus the fixed text fits easily. */
    size_t dl = strlen(descr), cap = dl + 1200;
    char *d = malloc(cap);
    if (!d) return NULL;
    int n = snprintf(d, cap, "{'descr': %s, 'fortran_order': False, 'shape': (", descr);
    if (n < 0 || (size_t)n >= cap) return free(d), NULL;
    size_t o = (size_t)n;
    for (int i = 0; i < ndim; i++) {
        n = snprintf(d + o, cap - o, i ? ", %llu" : "%llu", (unsigned long long)shape[i]);
        if (n < 0 || (size_t)n >= cap - o) return free(d), NULL;
        o += (size_t)n;
    }
    n = snprintf(d + o, cap - o, "%s), }", ndim == 1 ? "," : "");
    if (n < 0 || (size_t)n >= cap - o) return free(d), NULL;
    o += (size_t)n;
    if (ndim > 0) {
        /* numpy leaves room to grow axis 0 in place: 21 - len(repr(shape[0])). */
        char tmp[24];
        int sl = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)shape[0]);
        for (int i = sl; i < 21; i++) {
            if (o + 1 >= cap) return free(d), NULL;
            d[o++] = ' ';
        }
    }
    uint8_t *h = npz_npy_wrap(d, o, len);
    free(d);
    return h;
}

size_t npz_utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t k = utf8_decode(s, len, cp);
    if (k) return k;
    *cp = 0xfffd;
    return 1;
}

uint64_t npz_utf8_count(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    uint64_t n = 0;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
        } else {
            uint32_t cp;
            i += npz_utf8_next(u + i, len - i, &cp);
        }
        n++;
    }
    return n;
}

uint64_t npz_str_width(const ad_array *a)
{
    uint64_t w = 1;
    for (uint64_t i = 0; i < a->n; i++) {
        size_t bl = ad_str_len(a, i);
        if (bl <= w) continue; /* code points never exceed bytes */
        uint64_t c = npz_utf8_count(ad_str_at(a, i), bl);
        if (c > w) w = c;
    }
    return w;
}

bool npz_str_pad(npz_pad *acc, const ad_array *a, uint64_t width, uint64_t *padded)
{
    if (__builtin_mul_overflow(a->n, width, padded)) *padded = UINT64_MAX;
    /* the blob holds each value and its terminator: bytes + n */
    uint64_t own = acc->own + (a->n ? a->soff[a->n] - a->soff[0] : 0), total, cap;
    if (__builtin_add_overflow(acc->padded, *padded, &total)) return false;
    if (total > NPZ_PAD_FLOOR && !__builtin_mul_overflow(own, NPZ_PAD_RATIO, &cap) && total > cap)
        return false;
    acc->padded = total;
    acc->own = own;
    return true;
}

/* ---- one .npy member: header + body served on demand ---- */

struct npy_src {
    uint8_t *hdr;
    size_t hlen;
    const uint8_t *data; /* numeric body, borrowed from the model */
    uint64_t dlen;
    const ad_array *sa; /* string body: encoded to UTF-32 while read */
    uint64_t width;
    uint64_t pos; /* bytes served */
    uint64_t si;  /* string element */
    size_t sbyte; /* byte offset inside element si */
    uint64_t scp; /* code points emitted for element si */
    uint8_t part[4];
    unsigned npart, part_off; /* a code point split across reads */
};

void npz_src_free(void *p)
{
    npy_src *s = p;
    if (!s) return;
    free(s->hdr);
    free(s);
}

static void put_cp(uint8_t *o, uint32_t cp)
{
    o[0] = (uint8_t)(cp & 0xff);
    o[1] = (uint8_t)((cp >> 8) & 0xff);
    o[2] = (uint8_t)((cp >> 16) & 0xff);
    o[3] = (uint8_t)((cp >> 24) & 0xff);
}

int64_t npz_src_read(void *p, uint8_t *buf, uint64_t cap, adx_err *err)
{
    (void)err;
    npy_src *s = p;
    uint64_t o = 0;
    while (o < cap && s->pos < s->hlen) {
        uint64_t n = s->hlen - s->pos;
        if (n > cap - o) n = cap - o;
        memcpy(buf + o, s->hdr + s->pos, n);
        o += n;
        s->pos += n;
    }
    uint64_t body_start = o;
    if (!s->sa) {
        uint64_t dpos = s->pos - s->hlen;
        uint64_t n = s->dlen - dpos;
        if (n > cap - o) n = cap - o;
        if (n) memcpy(buf + o, s->data + dpos, n);
        o += n;
        s->pos += n;
        return (int64_t)o;
    }
    while (o < cap) {
        if (s->npart) {
            while (s->part_off < 4 && o < cap)
                buf[o++] = s->part[s->part_off++];
            if (s->part_off == 4) s->npart = 0;
            continue;
        }
        if (s->si >= s->sa->n) break;
        uint32_t cp = 0;
        if (s->scp >= s->width) {
            s->si++;
            s->sbyte = 0;
            s->scp = 0;
            continue;
        }
        size_t bl = ad_str_len(s->sa, s->si);
        if (s->sbyte >= bl && cap - o >= 4) {
            /* The padding of a short value in a wide column: zeros in bulk. */
            uint64_t n = s->width - s->scp, room = (cap - o) / 4;
            if (n > room) n = room;
            memset(buf + o, 0, n * 4);
            o += n * 4;
            s->scp += n;
            continue;
        }
        if (s->sbyte < bl) {
            const unsigned char *str = (const unsigned char *)ad_str_at(s->sa, s->si);
            if (str[s->sbyte] < 0x80)
                cp = str[s->sbyte++];
            else
                s->sbyte += npz_utf8_next(str + s->sbyte, bl - s->sbyte, &cp);
        }
        s->scp++;
        if (cap - o >= 4) {
            put_cp(buf + o, cp);
            o += 4;
        } else {
            put_cp(s->part, cp);
            s->npart = 1;
            s->part_off = 0;
        }
    }
    s->pos += o - body_start;
    return (int64_t)o;
}

npy_src *npz_src_new(uint8_t *hdr, size_t hlen, const void *data, uint64_t dlen, const ad_array *sa,
                     uint64_t width)
{
    npy_src *s = calloc(1, sizeof *s);
    if (!s) {
        free(hdr);
        return NULL;
    }
    s->hdr = hdr;
    s->hlen = hlen;
    s->data = data;
    s->dlen = dlen;
    s->sa = sa;
    s->width = width;
    return s;
}
