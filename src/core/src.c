/* adx_src implementation: counted reads, fd / memory sources, gzip. */
#include "adx_src.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

struct adx_src {
    adx_src_ops ops;
    void *ud;
    adx_src *inner; /* gzip: the compressed source, for consumed() */
    uint64_t total, max, delivered;
    unsigned char pb[4]; /* bytes peeked by adx_src_auto, served first */
    size_t npb, pbpos;
};

adx_src *adx_src_new(const adx_src_ops *ops, void *ud, uint64_t total, uint64_t max_bytes,
                     adx_err *err)
{
    adx_src *s = calloc(1, sizeof *s);
    if (!s) {
        if (ops->close) ops->close(ud);
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory opening the request");
        return NULL;
    }
    s->ops = *ops;
    s->ud = ud;
    s->total = total;
    s->max = max_bytes;
    return s;
}

static int over_limit(adx_src *s, adx_err *err)
{
    return adx_err_set(err, ADX_E_LIMIT, "",
                       "request of more than %" PRIu64 " bytes exceeds max_body_bytes = %" PRIu64,
                       s->max, s->max);
}

ssize_t adx_src_read(adx_src *s, void *buf, size_t n, adx_err *err)
{
    if (n == 0) return 0;
    ssize_t got;
    if (s->pbpos < s->npb) {
        size_t k = s->npb - s->pbpos < n ? s->npb - s->pbpos : n;
        memcpy(buf, s->pb + s->pbpos, k);
        s->pbpos += k;
        got = (ssize_t)k;
    } else {
        got = s->ops.read(s->ud, buf, n, err);
        if (got < 0) {
            if (!adx_err_failed(err)) adx_err_set(err, ADX_E_IO, "", "cannot read the request");
            return -1;
        }
    }
    s->delivered += (uint64_t)got;
    if (s->max && s->delivered > s->max) return over_limit(s, err);
    return got;
}

ssize_t adx_src_read_full(adx_src *s, void *buf, size_t n, adx_err *err)
{
    size_t o = 0;
    while (o < n) {
        ssize_t r = adx_src_read(s, (char *)buf + o, n - o, err);
        if (r < 0) return -1;
        if (r == 0) break;
        o += (size_t)r;
    }
    return (ssize_t)o;
}

uint64_t adx_src_delivered(const adx_src *s)
{
    return s->delivered;
}

uint64_t adx_src_consumed(const adx_src *s)
{
    return s->inner ? adx_src_consumed(s->inner) : s->delivered;
}

uint64_t adx_src_total(const adx_src *s)
{
    return s->inner ? adx_src_total(s->inner) : s->total;
}

void adx_src_close(adx_src *s)
{
    if (!s) return;
    if (s->ops.close) s->ops.close(s->ud);
    free(s);
}

/* ------------------------------------------------------------------ fd */

typedef struct fd_src {
    int fd, own;
} fd_src;

static ssize_t fd_read(void *ud, void *buf, size_t n, adx_err *err)
{
    fd_src *f = ud;
    for (;;) {
        ssize_t r = read(f->fd, buf, n);
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        adx_err_set(err, ADX_E_IO, "", "cannot read the request: %s", strerror(errno));
        return -1;
    }
}

static void fd_close(void *ud)
{
    fd_src *f = ud;
    if (f->own) close(f->fd);
    free(f);
}

adx_src *adx_src_open_fd(int fd, int own, uint64_t max_bytes, adx_err *err)
{
    static const adx_src_ops ops = {fd_read, fd_close};
    fd_src *f = malloc(sizeof *f);
    if (!f) {
        if (own) close(fd);
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory opening the request");
        return NULL;
    }
    f->fd = fd;
    f->own = own;
    struct stat st;
    uint64_t total = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    if (S_ISREG(st.st_mode) && max_bytes && total > max_bytes) {
        fd_close(f);
        adx_err_set(err, ADX_E_LIMIT, "",
                    "file of %" PRIu64 " bytes exceeds max_body_bytes = %" PRIu64, total,
                    max_bytes);
        return NULL;
    }
    return adx_src_new(&ops, f, total, max_bytes, err);
}

adx_src *adx_src_open_path(const char *path, uint64_t max_bytes, adx_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        adx_err_set(err, ADX_E_IO, "", "cannot open the input: %s", strerror(e));
        adx_err_cause(err, "%s: %s", path, strerror(e));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        close(fd);
        adx_err_set(err, ADX_E_IO, "", "cannot read the input: not a regular file");
        adx_err_cause(err, "%s", path);
        return NULL;
    }
    return adx_src_open_fd(fd, 1, max_bytes, err);
}

/* -------------------------------------------------------------- memory */

typedef struct mem_src {
    const unsigned char *p;
    size_t len, pos;
} mem_src;

static ssize_t mem_read(void *ud, void *buf, size_t n, adx_err *err)
{
    (void)err;
    mem_src *m = ud;
    size_t k = m->len - m->pos < n ? m->len - m->pos : n;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

static void mem_close(void *ud)
{
    free(ud);
}

adx_src *adx_src_open_mem(const void *buf, size_t len, uint64_t max_bytes, adx_err *err)
{
    static const adx_src_ops ops = {mem_read, mem_close};
    if (max_bytes && (uint64_t)len > max_bytes) {
        adx_err_set(err, ADX_E_LIMIT, "", "body of %zu bytes exceeds max_body_bytes = %" PRIu64,
                    len, max_bytes);
        return NULL;
    }
    mem_src *m = calloc(1, sizeof *m);
    if (!m) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory opening the request");
        return NULL;
    }
    m->p = buf;
    m->len = len;
    return adx_src_new(&ops, m, len, max_bytes, err);
}

/* ---------------------------------------------------------------- gzip */

enum { GZ_IN = 64 * 1024 };

typedef struct gz_src {
    adx_src *in;
    z_stream z;
    unsigned char buf[GZ_IN];
    int eof;    /* inner source exhausted */
    int member; /* inside a gzip member */
} gz_src;

static int gz_corrupt(adx_err *err)
{
    return adx_err_set(err, ADX_E_INVALID_JSON, "", "the request is not valid gzip data");
}

static ssize_t gz_read(void *ud, void *buf, size_t n, adx_err *err)
{
    gz_src *g = ud;
    g->z.next_out = buf;
    g->z.avail_out = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
    while (g->z.avail_out == (uInt)(n > UINT32_MAX ? UINT32_MAX : n)) {
        if (g->z.avail_in == 0 && !g->eof) {
            ssize_t r = adx_src_read(g->in, g->buf, sizeof g->buf, err);
            if (r < 0) return -1;
            if (r == 0)
                g->eof = 1;
            else {
                g->z.next_in = g->buf;
                g->z.avail_in = (uInt)r;
            }
        }
        if (g->z.avail_in == 0 && g->eof) {
            if (g->member) {
                adx_err_set(err, ADX_E_INVALID_JSON, "", "the gzip request is truncated");
                return -1;
            }
            break;
        }
        if (!g->member) {
            /* Another member follows (gzip(1) concatenates them). */
            if (inflateReset(&g->z) != Z_OK) return gz_corrupt(err);
            g->member = 1;
        }
        int zr = inflate(&g->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            g->member = 0;
        else if (zr == Z_MEM_ERROR) {
            adx_err_set(err, ADX_E_NOMEM, "", "out of memory decompressing the request");
            return -1;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return gz_corrupt(err);
    }
    return (ssize_t)((size_t)(n > UINT32_MAX ? UINT32_MAX : n) - g->z.avail_out);
}

static void gz_close(void *ud)
{
    gz_src *g = ud;
    inflateEnd(&g->z);
    adx_src_close(g->in);
    free(g);
}

adx_src *adx_src_gzip(adx_src *inner, uint64_t max_bytes, adx_err *err)
{
    static const adx_src_ops ops = {gz_read, gz_close};
    gz_src *g = calloc(1, sizeof *g);
    if (!g) {
        adx_src_close(inner);
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory opening the request");
        return NULL;
    }
    g->in = inner;
    /* 16 + MAX_WBITS: gzip wrapper only, so a zlib or raw stream is refused. */
    if (inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK) {
        adx_src_close(inner);
        free(g);
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory opening the request");
        return NULL;
    }
    g->member = 1;
    adx_src *s = adx_src_new(&ops, g, 0, max_bytes, err);
    if (s) s->inner = inner;
    return s;
}

adx_src *adx_src_auto(adx_src *s, uint64_t max_bytes, adx_err *err)
{
    unsigned char m[2];
    ssize_t k = adx_src_read_full(s, m, 2, err);
    if (k < 0) {
        adx_src_close(s);
        return NULL;
    }
    memcpy(s->pb, m, (size_t)k);
    s->npb = (size_t)k;
    s->pbpos = 0;
    s->delivered -= (uint64_t)k; /* served again */
    if (k == 2 && m[0] == 0x1f && m[1] == 0x8b) return adx_src_gzip(s, max_bytes, err);
    s->max = max_bytes;
    return s;
}
