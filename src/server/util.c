/* Pure helpers of the daemon (see adx_srv_util.h). */
#include "adx_srv_util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Digits only, no sign; refuses overflow so "bytes=99999999999999999999-"
 * is malformed rather than wrapped. Returns the end or NULL. */
static const char *parse_u64(const char *p, uint64_t *v)
{
    if (*p < '0' || *p > '9') return NULL;
    uint64_t x = 0;
    while (*p >= '0' && *p <= '9') {
        if (__builtin_mul_overflow(x, 10, &x) ||
            __builtin_add_overflow(x, (uint64_t)(*p - '0'), &x))
            return NULL;
        p++;
    }
    *v = x;
    return p;
}

srv_range_result srv_range_parse(const char *hdr, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!hdr) return SRV_RANGE_NONE;
    const char *p = skip_ws(hdr);
    if (strncasecmp(p, "bytes", 5) != 0) return SRV_RANGE_NONE;
    p = skip_ws(p + 5);
    if (*p != '=') return SRV_RANGE_NONE;
    p = skip_ws(p + 1);
    uint64_t a = 0, b = 0;
    bool has_a = false, has_b = false;
    if (*p != '-') {
        if (!(p = parse_u64(p, &a))) return SRV_RANGE_NONE;
        has_a = true;
    }
    p = skip_ws(p);
    if (*p != '-') return SRV_RANGE_NONE;
    p = skip_ws(p + 1);
    if (*p >= '0' && *p <= '9') {
        if (!(p = parse_u64(p, &b))) return SRV_RANGE_NONE;
        has_b = true;
    }
    p = skip_ws(p);
    /* Several ranges ("0-1, 5-6") would need multipart/byteranges; ignoring
     * the header and sending 200 is allowed and simpler for every client. */
    if (*p != '\0') return SRV_RANGE_NONE;
    if (!has_a && !has_b) return SRV_RANGE_NONE; /* "bytes=-" */
    if (has_a && has_b && b < a) return SRV_RANGE_NONE;
    if (!has_a) {
        /* suffix range: the last b bytes */
        if (b == 0 || size == 0) return SRV_RANGE_UNSAT;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return SRV_RANGE_OK;
    }
    if (a >= size) return SRV_RANGE_UNSAT;
    *first = a;
    *last = (!has_b || b >= size) ? size - 1 : b;
    return SRV_RANGE_OK;
}

static bool attr_char(unsigned char c)
{
    /* RFC 5987 attr-char */
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("!#$&+-.^_`|~", c) != NULL;
}

int srv_content_disposition(const char *filename, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    bool plain = true;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (n + 1 >= cap) return -1;                                                               \
        out[n++] = (char)(ch);                                                                     \
    } while (0)
    const char *pre = "attachment; filename=\"";
    for (const char *q = pre; *q; q++)
        PUT(*q);
    for (const unsigned char *s = (const unsigned char *)filename; *s; s++) {
        unsigned char c = *s;
        if (c >= 0x80 || c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            if (c >= 0x80 || c < 0x20 || c == 0x7f) plain = false;
            /* One '_' per UTF-8 character, not per byte. */
            if (c >= 0x80 && (c & 0xC0) == 0x80) continue;
            PUT('_');
        } else {
            PUT(c);
        }
    }
    PUT('"');
    if (!plain) {
        const char *mid = "; filename*=UTF-8''";
        for (const char *q = mid; *q; q++)
            PUT(*q);
        for (const unsigned char *s = (const unsigned char *)filename; *s; s++) {
            if (attr_char(*s)) {
                PUT(*s);
            } else {
                PUT('%');
                PUT(hex[*s >> 4]);
                PUT(hex[*s & 15]);
            }
        }
    }
#undef PUT
    out[n] = '\0';
    return 0;
}

bool srv_etag_match(const char *inm, const char *etag)
{
    if (!inm || !etag) return false;
    const char *e = etag;
    if (strncmp(e, "W/", 2) == 0) e += 2;
    size_t elen = strlen(e);
    const char *p = inm;
    for (;;) {
        p = skip_ws(p);
        while (*p == ',')
            p = skip_ws(p + 1);
        if (!*p) return false;
        if (*p == '*') return true;
        if (strncmp(p, "W/", 2) == 0) p += 2;
        const char *start = p;
        if (*p == '"') {
            const char *end = strchr(p + 1, '"');
            if (!end) return false;
            p = end + 1;
        } else {
            while (*p && *p != ',' && *p != ' ' && *p != '\t')
                p++;
        }
        if ((size_t)(p - start) == elen && memcmp(start, e, elen) == 0) return true;
        while (*p && *p != ',')
            p++;
    }
}

bool srv_token_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Walk the configured token's length whatever `a` holds, folding every
     * difference (including the length) into one accumulator. */
    volatile unsigned char acc = (unsigned char)(alen != blen);
    for (size_t i = 0; i < blen; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        acc |= (unsigned char)(x ^ (unsigned char)b[i]);
    }
    return acc == 0;
}

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int srv_id_next(srv_idgen *g, uint64_t ms, const uint8_t rnd10[10], char out[SRV_ID_LEN + 1])
{
    if (ms > g->last_ms) {
        g->last_ms = ms;
        memcpy(g->rnd, rnd10, 10);
    } else {
        /* Same (or earlier: clock stepped back) millisecond: keep the last
         * time and bump the random part so the order still holds. */
        int i = 9;
        while (i >= 0 && ++g->rnd[i] == 0)
            i--;
        if (i < 0) return -1;
    }
    uint64_t t = g->last_ms & ((1ull << 48) - 1);
    for (int i = 9; i >= 0; i--) {
        out[i] = crockford[t & 31];
        t >>= 5;
    }
    /* 80 bits → 16 characters of 5 bits, most significant first. */
    for (int k = 0; k < 16; k++) {
        int bit = k * 5, v = 0;
        for (int j = 0; j < 5; j++) {
            int b = bit + j;
            v = (v << 1) | ((g->rnd[b / 8] >> (7 - b % 8)) & 1);
        }
        out[10 + k] = crockford[v];
    }
    out[SRV_ID_LEN] = '\0';
    return 0;
}

bool srv_id_valid(const char *s)
{
    if (!s) return false;
    size_t i = 0;
    for (; s[i]; i++) {
        if (i >= SRV_ID_LEN || !strchr(crockford, s[i])) return false;
    }
    return i == SRV_ID_LEN;
}

void srv_time_iso(int64_t unix_ms, char *out, size_t cap)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
