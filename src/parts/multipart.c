/* multipart/form-data (RFC 7578 over RFC 2046 §5.1) as a push parser that
 * records byte ranges instead of copying part bodies. */
#include "adx_parts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void parts_limits_default(parts_limits *pl)
{
    pl->max_parts = 1024;
    pl->max_header_bytes = 16384;
    pl->max_name_bytes = 255;
}

enum {
    S_PREAMBLE = 0, /* before the first delimiter */
    S_TAIL,         /* after a delimiter: "--", or padding then CRLF */
    S_DASH2,        /* "-" seen after a delimiter */
    S_PAD_LF,       /* CR seen after a delimiter */
    S_HEADERS,      /* a part's header block */
    S_BODY,         /* a part's content */
    S_EPILOGUE,     /* after the close delimiter */
};

struct parts_mp {
    parts_limits pl;
    char delim[4 + 70 + 1]; /* "\r\n--" + boundary */
    size_t dlen;
    size_t match; /* bytes of delim matched so far */
    int state;
    uint64_t pos; /* offset of the next byte fed */
    char *hdr;    /* header block of the current part */
    size_t hlen;
    uint64_t body_off;
    parts_part cur; /* the part being read (name owned) */
    parts_part *v;
    size_t n, cap;
    bool started; /* a delimiter was seen */
};

static bool is_bchar(unsigned char c)
{
    /* RFC 2046 bchars: DIGIT / ALPHA / "'()+_,-./:=?" and space (not last). */
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && strchr("'()+_,-./:=? ", c) != NULL;
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* One `; key=value` parameter from s; value unquoted into val (cap bytes).
 * Returns the position after it, or NULL when malformed or too long. */
static const char *next_param(const char *s, char *key, size_t kcap, char *val, size_t vcap)
{
    s = skip_ws(s);
    if (*s != ';') return NULL;
    s = skip_ws(s + 1);
    size_t k = 0;
    while (*s && *s != '=' && *s != ';' && *s != ' ' && *s != '\t') {
        if (k + 1 >= kcap) return NULL;
        key[k++] = *s++;
    }
    key[k] = '\0';
    s = skip_ws(s);
    if (*s != '=' || k == 0) return NULL;
    s = skip_ws(s + 1);
    size_t v = 0;
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && s[1]) s++;
            if (v + 1 >= vcap) return NULL;
            val[v++] = *s++;
        }
        if (*s != '"') return NULL;
        s++;
    } else {
        while (*s && *s != ';' && *s != ' ' && *s != '\t') {
            if (v + 1 >= vcap) return NULL;
            val[v++] = *s++;
        }
    }
    val[v] = '\0';
    return skip_ws(s);
}

static bool media_type_is(const char *ct, const char *type)
{
    size_t n = strlen(type);
    return strncasecmp(ct, type, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

int parts_boundary(const char *ct, char out[71], adx_err *err)
{
    out[0] = '\0';
    if (!ct || !media_type_is(skip_ws(ct), "multipart/form-data"))
        return adx_err_set(err, ADX_E_UNSUPPORTED, "", "not a multipart/form-data body");
    const char *s = skip_ws(ct) + strlen("multipart/form-data");
    char key[64], val[256];
    while (*skip_ws(s)) {
        s = next_param(s, key, sizeof key, val, sizeof val);
        if (!s)
            return adx_err_set(err, ADX_E_SCHEMA, "",
                               "malformed multipart/form-data Content-Type parameters");
        if (strcasecmp(key, "boundary") != 0) continue;
        size_t n = strlen(val);
        if (n < 1 || n > 70 || val[n - 1] == ' ')
            return adx_err_set(err, ADX_E_SCHEMA, "",
                               "the multipart boundary must be 1 to 70 characters (RFC 2046)");
        for (size_t i = 0; i < n; i++)
            if (!is_bchar((unsigned char)val[i]))
                return adx_err_set(err, ADX_E_SCHEMA, "",
                                   "the multipart boundary holds a character RFC 2046 does not "
                                   "allow");
        memcpy(out, val, n + 1);
        return 0;
    }
    return adx_err_set(err, ADX_E_SCHEMA, "", "multipart/form-data without a boundary parameter");
}

parts_mp *parts_mp_new(const char *boundary, const parts_limits *pl, adx_err *err)
{
    size_t bl = boundary ? strlen(boundary) : 0;
    if (bl < 1 || bl > 70) {
        adx_err_set(err, ADX_E_SCHEMA, "", "the multipart boundary must be 1 to 70 characters");
        return NULL;
    }
    parts_mp *p = calloc(1, sizeof *p);
    if (!p) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        return NULL;
    }
    if (pl)
        p->pl = *pl;
    else
        parts_limits_default(&p->pl);
    memcpy(p->delim, "\r\n--", 4);
    memcpy(p->delim + 4, boundary, bl + 1);
    p->dlen = 4 + bl;
    /* The first delimiter may open the body without a CRLF before it. */
    p->match = 2;
    return p;
}

static void part_clear(parts_part *q)
{
    free(q->name);
    free(q->content_type);
    memset(q, 0, sizeof *q);
}

void parts_mp_free(parts_mp *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++)
        part_clear(&p->v[i]);
    free(p->v);
    part_clear(&p->cur);
    free(p->hdr);
    free(p);
}

static const char *part_label(const parts_mp *p, char *buf, size_t cap)
{
    const char *nm = NULL, *q = NULL;
    size_t n = 0;
    if (p->cur.name) {
        nm = p->cur.name;
        n = strlen(nm);
    } else if (p->state == S_HEADERS && p->hdr) {
        /* Headers not parsed yet (too long, truncated): name the part if
         * its name is already in the buffer. */
        nm = memmem(p->hdr, p->hlen, "name=\"", 6);
        if (nm) {
            nm += 6;
            q = memchr(nm, '"', p->hlen - (size_t)(nm - p->hdr));
            n = q ? (size_t)(q - nm) : 0;
            if (!q) nm = NULL;
        }
    }
    if (nm) {
        if (n > 100) n = 100;
        snprintf(buf, cap, "part \"%.*s\"", (int)n, nm);
    } else {
        snprintf(buf, cap, "part %zu", p->n + 1);
    }
    return buf;
}

static int valid_name(const char *s, size_t max, const char **why)
{
    size_t n = strlen(s);
    if (n == 0) return *why = "is empty", -1;
    if (n > max) return *why = "is too long", -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return *why = "holds a control character", -1;
    return 0;
}

/* One header line "Name: value" of the current part. */
static int header_line(parts_mp *p, char *line, adx_err *err)
{
    char lb[128];
    char *colon = strchr(line, ':');
    if (line[0] == ' ' || line[0] == '\t')
        return adx_err_set(err, ADX_E_SCHEMA, "", "%s: folded header lines are not accepted",
                           part_label(p, lb, sizeof lb));
    if (!colon)
        return adx_err_set(err, ADX_E_SCHEMA, "", "%s: a header line without ':'",
                           part_label(p, lb, sizeof lb));
    *colon = '\0';
    const char *val = skip_ws(colon + 1);
    if (!strcasecmp(line, "Content-Disposition")) {
        if (!media_type_is(val, "form-data"))
            return adx_err_set(err, ADX_E_SCHEMA, "",
                               "%s: Content-Disposition must be form-data (RFC 7578)",
                               part_label(p, lb, sizeof lb));
        const char *s = val + strlen("form-data");
        char key[64];
        size_t vcap = p->pl.max_name_bytes + 2 > 1024 ? p->pl.max_name_bytes + 2 : 1024;
        char *v = malloc(vcap);
        if (!v) return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        while (*skip_ws(s)) {
            s = next_param(s, key, sizeof key, v, vcap);
            if (!s) {
                free(v);
                return adx_err_set(err, ADX_E_SCHEMA, "",
                                   "%s: malformed Content-Disposition parameters",
                                   part_label(p, lb, sizeof lb));
            }
            if (strcasecmp(key, "name") != 0) continue;
            const char *why;
            if (p->cur.name) {
                free(v);
                return adx_err_set(err, ADX_E_SCHEMA, "", "%s: two names in Content-Disposition",
                                   part_label(p, lb, sizeof lb));
            }
            if (valid_name(v, p->pl.max_name_bytes, &why)) {
                free(v);
                return adx_err_set(err, ADX_E_SCHEMA, "", "%s: its name %s",
                                   part_label(p, lb, sizeof lb), why);
            }
            p->cur.name = strdup(v);
            if (!p->cur.name) {
                free(v);
                return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
            }
        }
        free(v);
    } else if (!strcasecmp(line, "Content-Type")) {
        free(p->cur.content_type);
        p->cur.content_type = strdup(val);
        if (!p->cur.content_type) return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
    } else if (!strcasecmp(line, "Content-Transfer-Encoding")) {
        if (strcasecmp(val, "binary") && strcasecmp(val, "8bit") && strcasecmp(val, "7bit"))
            return adx_err_set(err, ADX_E_SCHEMA, "",
                               "%s: Content-Transfer-Encoding %.40s is not accepted (send the "
                               "bytes as they are)",
                               part_label(p, lb, sizeof lb), val);
    }
    return 0;
}

/* The header block is complete (hdr ends in CRLF CRLF, or is one CRLF). */
static int headers_done(parts_mp *p, adx_err *err)
{
    char lb[128];
    if (memchr(p->hdr, '\0', p->hlen))
        return adx_err_set(err, ADX_E_SCHEMA, "", "%s: a NUL byte in its headers",
                           part_label(p, lb, sizeof lb));
    p->hdr[p->hlen] = '\0';
    char *s = p->hdr;
    for (;;) {
        char *eol = strstr(s, "\r\n");
        if (!eol || eol == s) break;
        *eol = '\0';
        if (strchr(s, '\n') || strchr(s, '\r'))
            return adx_err_set(err, ADX_E_SCHEMA, "", "%s: header lines must end in CRLF",
                               part_label(p, lb, sizeof lb));
        if (header_line(p, s, err)) return -1;
        s = eol + 2;
    }
    if (!p->cur.name)
        return adx_err_set(err, ADX_E_SCHEMA, "",
                           "%s: no Content-Disposition: form-data; name=\"...\" header",
                           part_label(p, lb, sizeof lb));
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].name, p->cur.name))
            return adx_err_set(err, ADX_E_SCHEMA, "", "%s: a second part of the same name",
                               part_label(p, lb, sizeof lb));
    p->body_off = p->pos + 1;
    p->hlen = 0;
    p->state = S_BODY;
    p->match = 0;
    return 0;
}

static int push_part(parts_mp *p, uint64_t end, adx_err *err)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? 2 * p->cap : 8;
        parts_part *nv = realloc(p->v, nc * sizeof *nv);
        if (!nv) return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        p->v = nv;
        p->cap = nc;
    }
    p->cur.off = p->body_off;
    p->cur.len = end - p->body_off;
    p->v[p->n++] = p->cur;
    memset(&p->cur, 0, sizeof p->cur);
    return 0;
}

/* A full delimiter ends at p->pos (inclusive). */
static int delimiter_seen(parts_mp *p, adx_err *err)
{
    if (p->state == S_BODY && push_part(p, p->pos + 1 - p->dlen, err)) return -1;
    p->started = true;
    p->state = S_TAIL;
    p->match = 0;
    return 0;
}

int parts_mp_feed(parts_mp *p, const void *data, size_t len, adx_err *err)
{
    const unsigned char *b = data;
    size_t i = 0;
    char lb[128];
    while (i < len) {
        unsigned char c = b[i];
        switch (p->state) {
        case S_PREAMBLE:
        case S_BODY:
            if (p->match == 0) {
                /* Part bodies are most of the input: skip to the next CR. */
                const unsigned char *cr = memchr(b + i, '\r', len - i);
                if (!cr) {
                    p->pos += len - i;
                    i = len;
                    continue;
                }
                p->pos += (uint64_t)(cr - (b + i));
                i = (size_t)(cr - b);
                c = '\r';
            }
            if (c == (unsigned char)p->delim[p->match]) {
                if (++p->match == p->dlen && delimiter_seen(p, err)) return -1;
            } else {
                /* No CR inside "--boundary", so a mismatch can only restart
                 * at this byte. */
                p->match = c == '\r' ? 1 : 0;
            }
            break;
        case S_TAIL:
            if (c == '-') {
                p->state = S_DASH2;
            } else if (c == ' ' || c == '\t') {
                /* transport padding */
            } else if (c == '\r') {
                p->state = S_PAD_LF;
            } else if (c == '\n') {
                return adx_err_set(err, ADX_E_SCHEMA, "",
                                   "a multipart delimiter line not ended by CRLF at byte %llu",
                                   (unsigned long long)p->pos);
            } else {
                /* "--boundaryX": a longer boundary-like line is content. */
                return adx_err_set(err, ADX_E_SCHEMA, "",
                                   "a multipart delimiter followed by other text at byte %llu",
                                   (unsigned long long)p->pos);
            }
            break;
        case S_DASH2:
            if (c != '-')
                return adx_err_set(err, ADX_E_SCHEMA, "",
                                   "a multipart delimiter followed by other text at byte %llu",
                                   (unsigned long long)p->pos);
            p->state = S_EPILOGUE;
            break;
        case S_PAD_LF:
            if (c != '\n')
                return adx_err_set(err, ADX_E_SCHEMA, "",
                                   "a multipart delimiter line not ended by CRLF at byte %llu",
                                   (unsigned long long)p->pos);
            if (p->n >= p->pl.max_parts) {
                adx_err_set(err, ADX_E_LIMIT, "",
                            "more than %zu parts in the body (limit max_parts)", p->pl.max_parts);
                return -1;
            }
            p->state = S_HEADERS;
            p->hlen = 0;
            break;
        case S_HEADERS:
            if (p->hlen >= p->pl.max_header_bytes)
                return adx_err_set(err, ADX_E_LIMIT, "",
                                   "%s: its headers are longer than %zu bytes (limit "
                                   "max_part_header_bytes)",
                                   part_label(p, lb, sizeof lb), p->pl.max_header_bytes);
            if (!p->hdr) {
                p->hdr = malloc(p->pl.max_header_bytes + 1);
                if (!p->hdr) return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
            }
            p->hdr[p->hlen++] = (char)c;
            if (c == '\n' && ((p->hlen == 2 && p->hdr[0] == '\r') ||
                              (p->hlen >= 4 && !memcmp(p->hdr + p->hlen - 4, "\r\n\r\n", 4)))) {
                if (headers_done(p, err)) return -1;
            }
            break;
        case S_EPILOGUE:
            /* Ignored (RFC 2046): done. */
            p->pos += len - i;
            return 0;
        }
        p->pos++;
        i++;
    }
    return 0;
}

int parts_mp_finish(parts_mp *p, parts_set *s, int fd, adx_err *err)
{
    char lb[128];
    if (p->state != S_EPILOGUE) {
        if (!p->started)
            return adx_err_set(err, ADX_E_SCHEMA, "",
                               "the multipart boundary never appears in the body");
        if (p->state == S_BODY)
            return adx_err_set(err, ADX_E_SCHEMA, "",
                               "truncated multipart body: %s has no closing boundary",
                               part_label(p, lb, sizeof lb));
        if (p->state == S_HEADERS)
            return adx_err_set(err, ADX_E_SCHEMA, "",
                               "truncated multipart body: it ends in the headers of %s",
                               part_label(p, lb, sizeof lb));
        return adx_err_set(err, ADX_E_SCHEMA, "",
                           "truncated multipart body: no closing delimiter (\"--boundary--\")");
    }
    size_t need = s->n + p->n;
    if (need > s->cap) {
        parts_part *nv = realloc(s->v, need * sizeof *nv);
        if (!nv) return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        s->v = nv;
        s->cap = need;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (parts_find(s, p->v[i].name))
            return adx_err_set(err, ADX_E_SCHEMA, "", "part \"%.100s\" is given twice",
                               p->v[i].name);
    }
    for (size_t i = 0; i < p->n; i++) {
        p->v[i].fd = fd;
        s->v[s->n++] = p->v[i];
    }
    p->n = 0;
    return 0;
}

void parts_set_free(parts_set *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++)
        part_clear(&s->v[i]);
    free(s->v);
    for (size_t i = 0; i < s->n_own; i++)
        close(s->own_fds[i]);
    free(s->own_fds);
    memset(s, 0, sizeof *s);
}

const parts_part *parts_find(const parts_set *s, const char *name)
{
    /* Part counts are bounded by max_parts and each name is looked up once
     * per reference, so a scan stays linear in the request. */
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name)) return &s->v[i];
    return NULL;
}

int parts_set_scan_fd(parts_set *s, int fd, const char *content_type, const parts_limits *pl,
                      adx_err *err)
{
    char boundary[71];
    if (parts_boundary(content_type, boundary, err)) return -1;
    parts_mp *p = parts_mp_new(boundary, pl, err);
    if (!p) return -1;
    enum { BUF = 1 << 16 };
    unsigned char *buf = malloc(BUF);
    if (!buf) {
        parts_mp_free(p);
        return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
    }
    uint64_t off = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, BUF, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = (adx_err_cause(err, "%s", strerror(errno)),
                  adx_err_set(err, ADX_E_IO, "", "cannot read the body"));
            break;
        }
        if (r == 0) break;
        off += (uint64_t)r;
        if (parts_mp_feed(p, buf, (size_t)r, err)) {
            rc = -1;
            break;
        }
    }
    free(buf);
    if (!rc) rc = parts_mp_finish(p, s, fd, err);
    parts_mp_free(p);
    if (!rc && !parts_find(s, PARTS_REQUEST))
        rc = adx_err_set(err, ADX_E_SCHEMA, "",
                         "the multipart body has no part named \"request\" (the JSON request)");
    return rc;
}

int parts_set_add_file(parts_set *s, const char *name, const char *path, adx_err *err)
{
    const char *why;
    if (valid_name(name, 255, &why))
        return adx_err_set(err, ADX_E_BAD_OPTION, "", "a part name %s", why);
    if (parts_find(s, name))
        return adx_err_set(err, ADX_E_BAD_OPTION, "", "part \"%.100s\" is given twice", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? errno : EINVAL;
        if (fd >= 0) close(fd);
        return adx_err_set(err, ADX_E_IO, "", "part \"%.100s\": cannot read its file: %s", name,
                           strerror(e));
    }
    int *nf = realloc(s->own_fds, (s->n_own + 1) * sizeof *nf);
    parts_part *nv = s->n == s->cap ? realloc(s->v, (s->cap ? 2 * s->cap : 8) * sizeof *nv) : s->v;
    if (nf) s->own_fds = nf;
    if (nv && nv != s->v) {
        s->v = nv;
        s->cap = s->cap ? 2 * s->cap : 8;
    }
    char *nm = strdup(name);
    if (!nf || !nv || !nm) {
        free(nm);
        close(fd);
        return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
    }
    s->own_fds[s->n_own++] = fd;
    s->v[s->n++] = (parts_part){.name = nm, .fd = fd, .off = 0, .len = (uint64_t)st.st_size};
    return 0;
}

int parts_check_unreferenced(const parts_set *s, adx_err *err)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].refs == 0 && strcmp(s->v[i].name, PARTS_REQUEST) != 0)
            return adx_err_set(err, ADX_E_SCHEMA, "",
                               "part \"%.100s\" is not referenced by the request (no \"part\": "
                               "\"%.100s\" anywhere in it)",
                               s->v[i].name, s->v[i].name);
    return 0;
}

typedef struct range_src {
    int fd;
    uint64_t off, left;
} range_src;

static ssize_t range_read(void *ud, void *buf, size_t n, adx_err *err)
{
    range_src *r = ud;
    if (n > r->left) n = (size_t)r->left;
    for (;;) {
        ssize_t k = n ? pread(r->fd, buf, n, (off_t)r->off) : 0;
        if (k < 0 && errno == EINTR) continue;
        if (k < 0)
            return (adx_err_cause(err, "%s", strerror(errno)),
                    adx_err_set(err, ADX_E_IO, "", "cannot read the body"));
        if (k == 0 && n)
            return adx_err_set(err, ADX_E_IO, "", "the body ended early (changed while read?)");
        r->off += (uint64_t)k;
        r->left -= (uint64_t)k;
        return k;
    }
}

adx_src *parts_open_src(const parts_set *s, const char *name, uint64_t max_bytes, adx_err *err)
{
    const parts_part *p = parts_find(s, name);
    if (!p) {
        adx_err_set(err, ADX_E_SCHEMA, "", "the body has no part named \"%.100s\"", name);
        return NULL;
    }
    range_src *r = malloc(sizeof *r);
    if (!r) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        return NULL;
    }
    *r = (range_src){.fd = p->fd, .off = p->off, .left = p->len};
    static const adx_src_ops ops = {.read = range_read, .close = free};
    return adx_src_new(&ops, r, p->len, max_bytes, err);
}
