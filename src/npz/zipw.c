#include "zipw.h"
#include "zip_dl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct zw_member {
    zw *w;
    zw_read_fn rd;
    zw_free_fn freefn;
    void *st;
    int64_t size;
    zip_error_t zerr;
} zw_member;

static void member_destroy(zw_member *m)
{
    if (!m) return;
    if (m->freefn) m->freefn(m->st);
    zip_error_fini(&m->zerr);
    free(m);
}

static zip_int64_t member_cb(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
    zw_member *m = ud;
    switch (cmd) {
    case ZIP_SOURCE_OPEN:
    case ZIP_SOURCE_READ:
        if (adx_ctl_canceled(m->w->ctl)) {
            m->w->canceled = true;
            zip_error_set(&m->zerr, ZIP_ER_CANCELLED, 0);
            return -1;
        }
        if (cmd == ZIP_SOURCE_OPEN) return 0;
        {
            int64_t n = m->rd(m->st, data, len, &m->w->inner);
            if (n < 0) {
                if (!adx_err_failed(&m->w->inner))
                    adx_err_set(&m->w->inner, ADX_E_INTERNAL, NULL, "zip member generator failed");
                zip_error_set(&m->zerr, ZIP_ER_READ, EIO);
                return -1;
            }
            return n;
        }
    case ZIP_SOURCE_CLOSE:
        return 0;
    case ZIP_SOURCE_STAT: {
        zip_stat_t *st = ZIP_SOURCE_GET_ARGS(zip_stat_t, data, len, &m->zerr);
        if (!st) return -1;
        zip_stat_init(st);
        st->mtime = m->w->mtime;
        st->valid |= ZIP_STAT_MTIME;
        if (m->size >= 0) {
            st->size = (zip_uint64_t)m->size;
            st->valid |= ZIP_STAT_SIZE;
        }
        return (zip_int64_t)sizeof(*st);
    }
    case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&m->zerr, data, len);
    case ZIP_SOURCE_FREE:
        member_destroy(m);
        return 0;
    case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                              ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE,
                                              -1);
    default:
        zip_error_set(&m->zerr, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
}

static void progress_cb(zip_t *za, double f, void *ud)
{
    (void)za;
    adx_ctl_progress(((zw *)ud)->ctl, f);
}

static int cancel_cb(zip_t *za, void *ud)
{
    (void)za;
    zw *w = ud;
    if (adx_ctl_canceled(w->ctl)) w->canceled = true;
    return w->canceled ? 1 : 0;
}

/* The archive's output as a libzip source: a file that does not exist yet
 * (so libzip starts a new archive) and that writes into the afile. */
static zip_int64_t out_cb(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
    zw *w = ud;
    switch (cmd) {
    case ZIP_SOURCE_STAT:
        zip_error_set(&w->oerr, ZIP_ER_READ, ENOENT);
        return -1;
    case ZIP_SOURCE_BEGIN_WRITE:
        w->pos = 0;
        return 0;
    case ZIP_SOURCE_WRITE:
        if (afile_pwrite(w->out, data, len, w->pos, &w->inner) != 0) {
            zip_error_set(&w->oerr, ZIP_ER_WRITE, EIO);
            return -1;
        }
        w->pos += len;
        return (zip_int64_t)len;
    case ZIP_SOURCE_SEEK_WRITE: {
        zip_source_args_seek_t *a =
            ZIP_SOURCE_GET_ARGS(zip_source_args_seek_t, data, len, &w->oerr);
        if (!a) return -1;
        /* libzip seeks back to patch a local header and forward again. */
        int64_t base = a->whence == SEEK_SET ? 0 : (int64_t)w->pos;
        if (a->whence == SEEK_END || base + a->offset < 0) {
            zip_error_set(&w->oerr, ZIP_ER_SEEK, EINVAL);
            return -1;
        }
        w->pos = (uint64_t)(base + a->offset);
        return 0;
    }
    case ZIP_SOURCE_TELL_WRITE:
        return (zip_int64_t)w->pos;
    case ZIP_SOURCE_REMOVE:
        w->emptied = true;
        return 0;
    case ZIP_SOURCE_COMMIT_WRITE:
    case ZIP_SOURCE_ROLLBACK_WRITE:
    case ZIP_SOURCE_FREE:
        return 0;
    case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&w->oerr, data, len);
    case ZIP_SOURCE_SUPPORTS:
        return ZIP_SOURCE_SUPPORTS_WRITABLE;
    default:
        zip_error_set(&w->oerr, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
}

#ifdef ADX_LAZY_ZIP
DYNLIB_DEFINE(zw_zip, ZW_ZIP_SYMS, ADX_LAZY_ZIP)
#else
DYNLIB_DEFINE(zw_zip, ZW_ZIP_SYMS, NULL)
#endif

int zw_open(zw *w, afile *out, bool deflate, int level, const adx_ctl *ctl, adx_err *err)
{
    memset(w, 0, sizeof *w);
    if (dynlib_load(&zw_zip, err) < 0) return -1;
    adx_err_init(&w->inner);
    zip_error_init(&w->oerr);
    w->out = out;
    w->ctl = ctl;
    w->deflate = deflate;
    w->level = level < 1 ? 1 : level > 9 ? 9 : level;
    w->mtime = time(NULL);
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_function_create(out_cb, w, &ze);
    if (src) {
        w->za = zip_open_from_source(src, ZIP_CREATE | ZIP_TRUNCATE, &ze);
        if (!w->za) zip_source_free(src);
    }
    if (!w->za) {
        adx_err_set(err, ADX_E_IO, NULL, "cannot create the zip archive");
        adx_err_cause(err, "libzip: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        zip_error_fini(&w->oerr);
        return -1;
    }
    zip_error_fini(&ze);
    zip_register_progress_callback_with_state(w->za, 0.01, progress_cb, NULL, w);
    zip_register_cancel_callback_with_state(w->za, cancel_cb, NULL, w);
    return 0;
}

int zw_add(zw *w, const char *name, zw_read_fn rd, zw_free_fn freefn, void *st, int64_t size,
           adx_err *err)
{
    zw_member *m = calloc(1, sizeof *m);
    if (!m) {
        if (freefn) freefn(st);
        return adx_err_set(err, ADX_E_NOMEM, NULL, "out of memory adding zip member %s", name);
    }
    m->w = w;
    m->rd = rd;
    m->freefn = freefn;
    m->st = st;
    m->size = size;
    zip_error_init(&m->zerr);
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_function_create(member_cb, m, &ze);
    if (!src) {
        member_destroy(m);
        adx_err_set(err, ADX_E_NOMEM, NULL, "cannot create zip source for %s", name);
        adx_err_cause(err, "libzip: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return -1;
    }
    zip_error_fini(&ze);
    zip_int64_t idx = zip_file_add(w->za, name, src, ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
        zip_source_free(src); /* frees m through ZIP_SOURCE_FREE */
        adx_err_set(err, ADX_E_IO, NULL, "cannot add zip member %s", name);
        return adx_err_cause(err, "libzip: %s", zip_strerror(w->za));
    }
    int rc = w->deflate ? zip_set_file_compression(w->za, (zip_uint64_t)idx, ZIP_CM_DEFLATE,
                                                   (zip_uint32_t)w->level)
                        : zip_set_file_compression(w->za, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
    if (rc < 0) {
        adx_err_set(err, ADX_E_IO, NULL, "cannot set compression of %s", name);
        return adx_err_cause(err, "libzip: %s", zip_strerror(w->za));
    }
    return 0;
}

int zw_close(zw *w, adx_err *err)
{
    if (zip_close(w->za) == 0) {
        w->za = NULL;
        zip_error_fini(&w->oerr);
        /* libzip writes no file for an archive without members; an empty
         * archive is still one (its end record alone), which readers open. */
        static const uint8_t eocd[22] = {'P', 'K', 5, 6};
        if (w->emptied && afile_pwrite(w->out, eocd, sizeof eocd, 0, err) != 0) return -1;
        return 0;
    }
    if (w->canceled || adx_ctl_canceled(w->ctl)) {
        adx_err_set(err, ADX_E_CANCELED, NULL, "export canceled");
    } else if (adx_err_failed(&w->inner)) {
        adx_err_set(err, w->inner.type, w->inner.n_items ? w->inner.items[0].pointer : NULL, "%s",
                    w->inner.detail);
        if (w->inner.cause[0]) adx_err_cause(err, "%s", w->inner.cause);
    } else {
        adx_err_set(err, ADX_E_IO, NULL, "writing the zip archive failed");
        adx_err_cause(err, "libzip: %s", zip_strerror(w->za));
    }
    zw_discard(w);
    return -1;
}

void zw_discard(zw *w)
{
    if (w->za) {
        zip_discard(w->za);
        zip_error_fini(&w->oerr);
    }
    w->za = NULL;
}

/* ---- paths ---- */

static int path_reserve(zw_path *p, size_t extra)
{
    size_t need;
    if (__builtin_add_overflow(p->len, extra + 1, &need)) return -1;
    if (need <= p->cap) return 0;
    size_t cap = p->cap ? p->cap : 64;
    while (cap < need) {
        if (__builtin_mul_overflow(cap, 2, &cap)) return -1;
    }
    char *s = realloc(p->s, cap);
    if (!s) return -1;
    p->s = s;
    p->cap = cap;
    return 0;
}

size_t zw_path_lit(zw_path *p, const char *text)
{
    size_t mark = p->len, n = strlen(text);
    if (path_reserve(p, n) < 0) return SIZE_MAX;
    memcpy(p->s + p->len, text, n + 1);
    p->len += n;
    return mark;
}

static size_t path_esc(zw_path *p, const char *key, bool underscore)
{
    size_t mark = p->len, n = strlen(key);
    /* Worst case every byte doubles. */
    if (n > SIZE_MAX / 2 - 2 || path_reserve(p, 2 * n + 2) < 0) return SIZE_MAX;
    char *o = p->s + p->len;
    if (n == 0) *o++ = '~';
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (c == '~') {
            *o++ = '~';
            *o++ = '0';
        } else if (c == '/') {
            *o++ = '~';
            *o++ = '1';
        } else if (c == '\\') {
            *o++ = '~';
            *o++ = '2';
        } else if (i == 0 && c == '.') {
            *o++ = '~';
            *o++ = '3';
        } else if (i == 0 && c == '_' && underscore) {
            *o++ = '~';
            *o++ = '4';
        } else {
            *o++ = c;
        }
    }
    *o = '\0';
    p->len = (size_t)(o - p->s);
    return mark;
}

size_t zw_path_esc(zw_path *p, const char *key)
{
    return path_esc(p, key, true);
}

size_t zw_path_esc_file(zw_path *p, const char *key)
{
    return path_esc(p, key, false);
}

size_t zw_path_push(zw_path *p, const char *key)
{
    size_t mark = p->len;
    if (p->len && zw_path_lit(p, "/") == SIZE_MAX) return SIZE_MAX;
    if (zw_path_esc(p, key) == SIZE_MAX) {
        zw_path_pop(p, mark);
        return SIZE_MAX;
    }
    return mark;
}

void zw_path_free(zw_path *p)
{
    free(p->s);
    p->s = NULL;
    p->len = p->cap = 0;
}
