/* adx_afile implementation. See include/adx_afile.h for the guarantees. */
#include "adx_afile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>

struct afile {
    int fd;
    char *tmp, *target, *dir;
    mode_t mode;
    bool want_sha, inorder, named; /* named: a writer had the path */
    afile_sync sync;
    uint64_t end, hashed;
    struct sha256_ctx h;
};

enum { COPY_BUF = 1 << 16 };

/* The client reads `what`; the path and errno text are for the log. A full
 * disk or quota is a kind of its own: the daemon answers it with 507. */
static int io_fail(adx_err *err, int e, const char *what, const char *path)
{
    adx_err_set(err, e == ENOSPC || e == EDQUOT ? ADX_E_NO_SPACE : ADX_E_IO, "", "%s", what);
    return adx_err_cause(err, "%s: %s", path, strerror(e));
}

/* Directory part of `path` ("." when it has none), malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    const char *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The one read loop behind every copy: `sink` gets each chunk. */
static int copy_loop(int in, int (*sink)(void *ud, const void *buf, size_t n), void *ud,
                     uint64_t *copied)
{
    char *buf = malloc(COPY_BUF);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, COPY_BUF);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? -1 : 0;
            break;
        }
        if (sink(ud, buf, (size_t)n) != 0) {
            rc = -1;
            break;
        }
        total += (uint64_t)n;
    }
    int e = errno;
    free(buf);
    if (copied) *copied = total;
    errno = e;
    return rc;
}

static int fd_sink(void *ud, const void *buf, size_t n)
{
    return write_all(*(int *)ud, buf, n);
}

int afile_copy_fd(int in, int out, uint64_t *copied)
{
    return copy_loop(in, fd_sink, &out, copied);
}

static void afile_free(afile *f)
{
    if (f->fd >= 0) close(f->fd);
    free(f->tmp);
    free(f->target);
    free(f->dir);
    free(f);
}

void afile_abort(afile *f)
{
    if (!f) return;
    unlink(f->tmp);
    afile_free(f);
}

afile *afile_begin(const char *target, const afile_opts *o, adx_err *err)
{
    afile_opts d = {0};
    if (!o) o = &d;
    if (!target || !*target) {
        adx_err_set(err, ADX_E_INTERNAL, "", "afile_begin without a target");
        return NULL;
    }
    afile *f = calloc(1, sizeof *f);
    if (!f) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        return NULL;
    }
    f->fd = -1;
    f->mode = o->mode ? o->mode : 0644;
    f->want_sha = o->sha256;
    f->sync = o->sync;
    f->inorder = true;
    const char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    const char *prefix = o->tmp_prefix ? o->tmp_prefix : ".";
    /* The base is cut so that a name at the 255-byte limit still leaves
     * room for the prefix and suffix; uniqueness comes from the XXXXXX. */
    if (asprintf(&f->tmp, "%.*s%s%.64s.XXXXXX", (int)(base - target), target, prefix, base) < 0)
        f->tmp = NULL;
    f->target = strdup(target);
    f->dir = dir_of(target);
    if (!f->tmp || !f->target || !f->dir) {
        afile_free(f);
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        return NULL;
    }
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    if (f->fd < 0) {
        io_fail(err, errno, "cannot create a temporary file in the output directory", f->tmp);
        afile_free(f);
        return NULL;
    }
    /* mkstemp makes it 0600; what the file is for decides who reads it. */
    if (fchmod(f->fd, f->mode) != 0) {
        io_fail(err, errno, "cannot set the mode of a new file", f->tmp);
        afile_abort(f);
        return NULL;
    }
    if (f->want_sha) sha256_init(&f->h);
    return f;
}

int afile_pwrite(afile *f, const void *buf, size_t n, uint64_t off, adx_err *err)
{
    if (pwrite_all(f->fd, buf, n, off) != 0)
        return io_fail(err, errno, "cannot write the file", f->tmp);
    if (f->want_sha && f->inorder) {
        if (off == f->hashed) {
            sha256_update(&f->h, n, buf);
            f->hashed += n;
        } else {
            f->inorder = false;
        }
    }
    if (off + n > f->end) f->end = off + n;
    return 0;
}

int afile_write(afile *f, const void *buf, size_t n, adx_err *err)
{
    return afile_pwrite(f, buf, n, f->end, err);
}

typedef struct in_sink {
    afile *f;
    adx_err *err;
} in_sink;

static int afile_sink(void *ud, const void *buf, size_t n)
{
    in_sink *s = ud;
    return afile_write(s->f, buf, n, s->err);
}

int afile_copy_in(afile *f, int in, adx_err *err)
{
    in_sink s = {f, err};
    if (copy_loop(in, afile_sink, &s, NULL) == 0) return 0;
    if (!adx_err_failed(err)) io_fail(err, errno, "cannot read the file to copy", f->target);
    return -1;
}

int afile_take(afile *f, const char *src, adx_err *err)
{
    if (rename(src, f->tmp) == 0) {
        /* The fd still names the temp file that the rename replaced. */
        close(f->fd);
        f->fd = open(f->tmp, O_RDWR | O_CLOEXEC);
        if (f->fd < 0) return io_fail(err, errno, "cannot reopen the file", f->tmp);
        if (fchmod(f->fd, f->mode) != 0) return io_fail(err, errno, "cannot set the mode", f->tmp);
        f->inorder = false;
        struct stat st;
        if (fstat(f->fd, &st) != 0) return io_fail(err, errno, "cannot stat the file", f->tmp);
        f->end = (uint64_t)st.st_size;
        return 0;
    }
    if (errno != EXDEV) return io_fail(err, errno, "cannot move the file", src);
    /* Another file system (a spool elsewhere): copy, then drop the source. */
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return io_fail(err, errno, "cannot open the file to copy", src);
    int rc = afile_copy_in(f, in, err);
    close(in);
    if (rc == 0) unlink(src);
    return rc;
}

int afile_fd(afile *f)
{
    f->inorder = false;
    return f->fd;
}

const char *afile_temp_path(afile *f)
{
    f->inorder = false;
    f->named = true;
    return f->tmp;
}

static int sha_sink(void *ud, const void *buf, size_t n)
{
    sha256_update(ud, n, buf);
    return 0;
}

static int finish(afile *f, afile_result *out, adx_err *err)
{
    if (f->named) {
        /* A library given the name may have replaced the file it found. */
        close(f->fd);
        f->fd = open(f->tmp, O_RDWR | O_CLOEXEC);
        if (f->fd < 0) return io_fail(err, errno, "cannot reopen the written file", f->tmp);
        if (fchmod(f->fd, f->mode) != 0) return io_fail(err, errno, "cannot set the mode", f->tmp);
    }
    if (f->want_sha && !f->inorder) {
        /* Write-back starts now and overlaps the read-back for the hash,
         * so the fsync below waits less (a 63 MB h5ad on this VM: 62 ->
         * ~48 ms). Only a hint: fsync still decides what is durable. */
        if (f->sync != AFILE_SYNC_NONE) sync_file_range(f->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        sha256_init(&f->h);
        if (lseek(f->fd, 0, SEEK_SET) != 0 || copy_loop(f->fd, sha_sink, &f->h, NULL) != 0)
            return io_fail(err, errno, "cannot read the written file back", f->tmp);
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0) return io_fail(err, errno, "cannot stat the written file", f->tmp);
    if (out) {
        out->size = (uint64_t)st.st_size;
        out->sha256[0] = '\0';
        if (f->want_sha) {
            uint8_t d[SHA256_DIGEST_SIZE];
            sha256_digest(&f->h, sizeof d, d);
            for (size_t i = 0; i < sizeof d; i++)
                snprintf(out->sha256 + 2 * i, 3, "%02x", d[i]);
        }
    }
    if (f->sync != AFILE_SYNC_NONE && fsync(f->fd) != 0)
        return io_fail(err, errno, "cannot sync the file to disk", f->tmp);
    int fd = f->fd;
    f->fd = -1;
    /* NFS and some FUSE file systems report write-back failures here. */
    if (close(fd) != 0) return io_fail(err, errno, "cannot close the written file", f->tmp);
    return 0;
}

int afile_commit(afile *f, afile_result *out, adx_err *err)
{
    if (!f) return adx_err_set(err, ADX_E_INTERNAL, "", "afile_commit without a file");
    if (finish(f, out, err) != 0) {
        afile_abort(f);
        return -1;
    }
    if (rename(f->tmp, f->target) != 0) {
        io_fail(err, errno, "cannot move the file into place", f->target);
        afile_abort(f);
        return -1;
    }
    /* The rename is durable only once the directory entry is on disk. */
    if (f->sync == AFILE_SYNC_ALL && afile_sync_path(f->dir) != 0) {
        io_fail(err, errno, "cannot sync the output directory", f->dir);
        unlink(f->target);
        afile_free(f);
        return -1;
    }
    afile_free(f);
    return 0;
}

int afile_write_file(const char *path, const void *text, size_t len, mode_t mode, adx_err *err)
{
    return afile_write_file_sync(path, text, len, mode, AFILE_SYNC_ALL, err);
}

int afile_write_file_sync(const char *path, const void *text, size_t len, mode_t mode,
                          afile_sync sync, adx_err *err)
{
    afile_opts o = {.mode = mode, .sync = sync};
    afile *f = afile_begin(path, &o, err);
    if (!f) return -1;
    if (afile_write(f, text, len, err) != 0) {
        afile_abort(f);
        return -1;
    }
    return afile_commit(f, NULL, err);
}

int afile_append(const char *path, const void *buf, size_t len, mode_t mode, afile_sync sync,
                 adx_err *err)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode ? mode : 0644);
    if (fd < 0) return io_fail(err, errno, "cannot open the file", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        io_fail(err, errno, "cannot stat the file", path);
        close(fd);
        return -1;
    }
    int e = write_all(fd, buf, len) != 0 ? errno : 0;
    /* A part of a record would make the next one unreadable: take it back. */
    if (e && ftruncate(fd, st.st_size) != 0) {
        /* the reader skips a torn line; the error below is what counts */
    }
    if (!e && sync != AFILE_SYNC_NONE && fdatasync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (e) return io_fail(err, e, "cannot append to the file", path);
    if (sync == AFILE_SYNC_ALL) {
        char *d = dir_of(path);
        int rc = d ? afile_sync_path(d) : -1;
        e = d ? errno : ENOMEM;
        free(d);
        if (rc != 0) return io_fail(err, e, "cannot sync the directory", path);
    }
    return 0;
}

char *afile_read_small(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    /* sized by the file (a job record is a few KB), grown if it grows */
    struct stat st;
    size_t cap = fstat(fd, &st) == 0 && (uint64_t)st.st_size < max ? (size_t)st.st_size : max;
    char *buf = malloc(cap + 1);
    size_t n = 0;
    int e = buf ? 0 : ENOMEM;
    while (!e) {
        if (n == cap + 1) {
            size_t nc = cap > max / 2 ? max : 2 * cap + 64;
            char *nb = nc > cap ? realloc(buf, nc + 1) : NULL;
            if (!nb) {
                e = nc > cap ? ENOMEM : EFBIG;
                break;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t r = read(fd, buf + n, cap + 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            e = r < 0 ? errno : 0;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (!e && n > max) e = EFBIG;
    if (e) {
        free(buf);
        errno = e;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int afile_sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    if (close(fd) != 0 && rc == 0) return -1;
    errno = e;
    return rc;
}

int afile_rename(const char *from, const char *to)
{
    if (rename(from, to) != 0) return -1;
    char *dto = dir_of(to), *dfrom = dir_of(from);
    int rc = dto && dfrom ? 0 : -1;
    if (rc != 0) errno = ENOMEM;
    if (rc == 0) rc = afile_sync_path(dto);
    if (rc == 0 && strcmp(dto, dfrom) != 0) rc = afile_sync_path(dfrom);
    int e = errno;
    free(dto);
    free(dfrom);
    errno = e;
    return rc == 0 ? 0 : 1;
}

static int remove_at(int dirfd, const char *name, int depth)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return 0;
    if (errno != EISDIR && errno != EPERM) return -1;
    /* Every tree removed here is flat or nearly; the bound only stops a
     * hostile tree. */
    if (depth > 16) {
        errno = ELOOP;
        return -1;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0, e = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (remove_at(fd, de->d_name, depth + 1) != 0 && rc == 0) {
            rc = -1;
            e = errno;
        }
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc) errno = e;
    return rc;
}

int afile_remove_at(int dirfd, const char *name)
{
    return remove_at(dirfd, name, 0);
}

int afile_remove_tree(const char *path)
{
    char *dir = dir_of(path);
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (dfd < 0) return errno == ENOENT ? 0 : -1;
    int rc = *base ? remove_at(dfd, base, 0) : (errno = EINVAL, -1);
    int e = errno;
    close(dfd);
    errno = e;
    return rc;
}
