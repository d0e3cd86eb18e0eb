/* LD_PRELOAD shim for fault-injection tests: makes fsync/fdatasync fail
 * with EIO, or write/pwrite fail with ENOSPC, on the files a test names,
 * and only there (stdout, logs and the input keep working).
 *
 *   ADX_FAULT       "fsync" (EIO) or "write" (ENOSPC)
 *   ADX_FAULT_PATH  the fault hits an fd whose /proc/self/fd target
 *                   contains this text (usually the output directory)
 *   ADX_FAULT_AFTER that many matching calls succeed first (default 0), so
 *                   a fault can land in the middle of a file
 *
 * Without both variables every call goes straight to libc. The real
 * functions are found with dlsym(RTLD_NEXT), so under ASan the sanitizer's
 * interceptors still run (the test sets verify_asan_link_order=0). */
/* pwrite and pwrite64 are both defined here, so neither may be renamed. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int hits(const char *op, int fd)
{
    const char *want = getenv("ADX_FAULT"), *where = getenv("ADX_FAULT_PATH");
    if (!want || !where || !*where || strcmp(want, op) != 0) return 0;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = '\0';
    if (!strstr(target, where)) return 0;
    /* Tests run single-threaded writers; a plain counter is enough. */
    static long seen;
    const char *after = getenv("ADX_FAULT_AFTER");
    return seen++ >= (after ? atol(after) : 0);
}

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

int fsync(int fd)
{
    if (hits("fsync", fd)) {
        errno = EIO;
        return -1;
    }
    return REAL("fsync", int (*)(int))(fd);
}

int fdatasync(int fd)
{
    if (hits("fsync", fd)) {
        errno = EIO;
        return -1;
    }
    return REAL("fdatasync", int (*)(int))(fd);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (n && hits("write", fd)) {
        errno = ENOSPC;
        return -1;
    }
    return REAL("write", ssize_t(*)(int, const void *, size_t))(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (n && hits("write", fd)) {
        errno = ENOSPC;
        return -1;
    }
    return REAL("pwrite", ssize_t(*)(int, const void *, size_t, off_t))(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    if (n && hits("write", fd)) {
        errno = ENOSPC;
        return -1;
    }
    return REAL("pwrite64", ssize_t(*)(int, const void *, size_t, off64_t))(fd, buf, n, off);
}
