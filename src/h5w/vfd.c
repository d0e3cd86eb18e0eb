/* The file driver the h5ad writer creates its files with: POSIX I/O like
 * HDF5's sec2 driver (same feature flags, so the same file layout), except
 * that a failed write, truncate or close is recorded for the writer instead
 * of being returned to libhdf5.
 *
 * Why: libhdf5 1.10 cannot survive a failed H5Fclose. When the final flush
 * hits ENOSPC, H5Fclose returns an error but leaves the file's id
 * registered with its object already half destroyed; the next H5Fclose, or
 * H5close at exit, walks freed memory (SIGSEGV in H5F__close_cb), and the
 * file's descriptor and metadata cache are never released. With this driver
 * HDF5 never sees a write fail, so every H5Fclose completes; the writer
 * polls the recorded errno (h5w_vfd_failed) and turns it into its own error
 * (507 for a full disk) before the afile is aborted.
 *
 * After the first failure nothing more is written (the file is discarded
 * anyway, and a full disk should not be filled further); reads past what
 * was written return zeros, as sec2's do past the end of the file.
 *
 * A new file is built in memory up to VFD_IMAGE_MAX and written with one
 * pwrite at close. libhdf5 writes a small h5ad in about 120 pieces and
 * reads about 100 of them back, all while it holds its global lock (one
 * lock for every thread of the process: two workers writing small files
 * wait for each other's system calls); memcpy instead of those calls
 * shortens that time, and one write of the whole file costs the kernel
 * less than many small ones. A file that grows past the limit is written
 * out as it is and goes on as above. A failed write of the image is
 * recorded like any other (the writer answers 507 for a full disk). */
#include "h5w_internal.h"

#include "adx_common.h"
#include "adx_err.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

/* H5FD_class_t changed shape in 1.13 (a version and a value field first). */
#if !H5_VERSION_GE(1, 10, 0) || H5_VERSION_GE(1, 13, 0)
#error "src/h5w/vfd.c implements the file driver interface of HDF5 1.10-1.12"
#endif

typedef struct vfd_file {
    H5FD_t pub; /* first: libhdf5 casts between the two */
    int fd;
    haddr_t eoa, eof;
    dev_t dev;
    ino_t ino;
    h5w_vfd_info info;
    /* The file's bytes [0, eof) while `image` is set (a new, empty file
     * that has not outgrown VFD_IMAGE_MAX); nothing is on disk yet. */
    bool image;
    unsigned char *img;
    size_t img_cap;
} vfd_file;

/* Files up to this size are written at close, in one piece. */
#define VFD_IMAGE_MAX ((size_t)1 << 20)
#define VFD_IMAGE_MIN ((size_t)64 << 10)

/* sec2's limit: the largest offset an off_t holds. */
#define VFD_MAXADDR (((haddr_t)1 << (8 * sizeof(off_t) - 1)) - 1)

static void note(vfd_file *f, int e)
{
    if (f->info.err && *f->info.err == 0) *f->info.err = e ? e : EIO;
}

static bool failed(const vfd_file *f)
{
    return f->info.err && *f->info.err != 0;
}

static void *vfd_fapl_get(H5FD_t *file)
{
    h5w_vfd_info *copy = malloc(sizeof *copy);
    if (copy) *copy = ((vfd_file *)file)->info;
    return copy;
}

static H5FD_t *vfd_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr)
{
    if (!name || !*name || maxaddr == 0 || maxaddr == HADDR_UNDEF || maxaddr > VFD_MAXADDR) {
        errno = EINVAL;
        return NULL;
    }
    int o = O_CLOEXEC | ((flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY);
    if (flags & H5F_ACC_TRUNC) o |= O_TRUNC;
    if (flags & H5F_ACC_CREAT) o |= O_CREAT;
    if (flags & H5F_ACC_EXCL) o |= O_EXCL;
    int fd = open(name, o, 0666);
    if (fd < 0) return NULL; /* errno stays for the caller of H5Fcreate */
    struct stat st;
    vfd_file *f = calloc(1, sizeof *f);
    if (!f || fstat(fd, &st) != 0) {
        int e = f ? errno : ENOMEM;
        free(f);
        close(fd);
        errno = e;
        return NULL;
    }
    f->fd = fd;
    f->eof = (haddr_t)st.st_size;
    /* Only a file being created: one already holding bytes is read and
     * written in place. */
    f->image = (flags & H5F_ACC_RDWR) && st.st_size == 0;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    const h5w_vfd_info *in = H5Pget_driver_info(fapl);
    if (in) f->info = *in;
    return &f->pub;
}

static void pwrite_out(vfd_file *f, const unsigned char *p, size_t size, haddr_t addr)
{
    while (size > 0 && !failed(f)) {
        ssize_t n = pwrite(f->fd, p, size, (off_t)addr);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            note(f, n < 0 ? errno : EIO);
            break;
        }
        p += n;
        addr += (haddr_t)n;
        size -= (size_t)n;
    }
}

/* Write the image out (the file on disk is empty) and go on in place. */
static void image_flush(vfd_file *f)
{
    if (!f->image) return;
    f->image = false;
    pwrite_out(f, f->img, (size_t)f->eof, 0);
    free(f->img);
    adx_budget_release(f->info.budget, f->img_cap);
    f->img = NULL;
    f->img_cap = 0;
}

/* Room for [0, end) in the image, zero-filled past eof; false when the
 * file outgrows it (or memory runs out): then it is written out. */
static bool image_reserve(vfd_file *f, haddr_t end)
{
    if (!f->image) return false;
    if (end <= f->img_cap) return true;
    if (end > VFD_IMAGE_MAX) {
        image_flush(f);
        return false;
    }
    size_t cap = f->img_cap ? f->img_cap : VFD_IMAGE_MIN;
    while (cap < end)
        cap *= 2;
    if (cap > VFD_IMAGE_MAX) cap = VFD_IMAGE_MAX;
    adx_err refused; /* not an error of the export: the file goes to disk */
    adx_err_init(&refused);
    if (adx_budget_charge(f->info.budget, cap - f->img_cap, NULL, &refused) < 0) {
        image_flush(f);
        return false;
    }
    unsigned char *p = realloc(f->img, cap);
    if (!p) {
        adx_budget_release(f->info.budget, cap - f->img_cap);
        image_flush(f);
        return false;
    }
    memset(p + f->img_cap, 0, cap - f->img_cap);
    f->img = p;
    f->img_cap = cap;
    return true;
}

static herr_t vfd_close(H5FD_t *file)
{
    vfd_file *f = (vfd_file *)file;
    image_flush(f);
    /* NFS reports write-back failures at close. */
    if (close(f->fd) != 0) note(f, errno);
    free(f);
    return 0;
}

static int vfd_cmp(const H5FD_t *a, const H5FD_t *b)
{
    const vfd_file *x = (const vfd_file *)a, *y = (const vfd_file *)b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    return 0;
}

static herr_t vfd_query(const H5FD_t *file, unsigned long *flags)
{
    (void)file;
    /* sec2's flags: they decide how libhdf5 lays the file out. */
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_POSIX_COMPAT_HANDLE |
             H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
    return 0;
}

static haddr_t vfd_get_eoa(const H5FD_t *file, H5FD_mem_t type)
{
    (void)type;
    return ((const vfd_file *)file)->eoa;
}

static herr_t vfd_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr)
{
    (void)type;
    ((vfd_file *)file)->eoa = addr;
    return 0;
}

static haddr_t vfd_get_eof(const H5FD_t *file, H5FD_mem_t type)
{
    (void)type;
    return ((const vfd_file *)file)->eof;
}

static herr_t vfd_get_handle(H5FD_t *file, hid_t fapl, void **handle)
{
    (void)fapl;
    *handle = &((vfd_file *)file)->fd;
    return 0;
}

static bool in_range(haddr_t addr, size_t size)
{
    return addr != HADDR_UNDEF && addr <= VFD_MAXADDR && size <= VFD_MAXADDR - addr;
}

static herr_t vfd_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size,
                       void *buf)
{
    (void)type;
    (void)dxpl;
    vfd_file *f = (vfd_file *)file;
    if (!in_range(addr, size)) return -1;
    unsigned char *p = buf;
    if (f->image) {
        /* zeros past what was written, as on disk */
        size_t have = addr < f->eof ? (size_t)(f->eof - addr) : 0;
        if (have > size) have = size;
        if (have) memcpy(p, f->img + addr, have);
        memset(p + have, 0, size - have);
        return 0;
    }
    while (size > 0) {
        ssize_t n = pread(f->fd, p, size, (off_t)addr);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) {
            memset(p, 0, size);
            break;
        }
        p += n;
        addr += (haddr_t)n;
        size -= (size_t)n;
    }
    return 0;
}

static herr_t vfd_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size,
                        const void *buf)
{
    (void)type;
    (void)dxpl;
    vfd_file *f = (vfd_file *)file;
    if (!in_range(addr, size)) return -1;
    haddr_t end = addr + size;
    if (image_reserve(f, end))
        memcpy(f->img + addr, buf, size);
    else
        pwrite_out(f, buf, size, addr);
    /* libhdf5's idea of the file, whatever reached the disk. */
    if (end > f->eof) f->eof = end;
    return 0;
}

static herr_t vfd_truncate(H5FD_t *file, hid_t dxpl, hbool_t closing)
{
    (void)dxpl;
    (void)closing;
    vfd_file *f = (vfd_file *)file;
    if (f->eoa == f->eof) return 0;
    if (image_reserve(f, f->eoa)) {
        /* bytes cut off read as zeros if the file grows again */
        if (f->eoa < f->eof) memset(f->img + f->eoa, 0, (size_t)(f->eof - f->eoa));
        f->eof = f->eoa;
        return 0;
    }
    if (!failed(f) && ftruncate(f->fd, (off_t)f->eoa) != 0) note(f, errno);
    f->eof = f->eoa;
    return 0;
}

static const H5FD_class_t vfd_class = {
    .name = "adx_h5w",
    .maxaddr = VFD_MAXADDR,
    .fc_degree = H5F_CLOSE_WEAK,
    .fapl_size = sizeof(h5w_vfd_info),
    .fapl_get = vfd_fapl_get,
    .open = vfd_open,
    .close = vfd_close,
    .cmp = vfd_cmp,
    .query = vfd_query,
    .get_eoa = vfd_get_eoa,
    .set_eoa = vfd_set_eoa,
    .get_eof = vfd_get_eof,
    .get_handle = vfd_get_handle,
    .read = vfd_read,
    .write = vfd_write,
    .truncate = vfd_truncate,
    .fl_map = H5FD_FLMAP_DICHOTOMY,
};

static pthread_mutex_t vfd_mu = PTHREAD_MUTEX_INITIALIZER;
static hid_t vfd_id = H5I_INVALID_HID;

hid_t h5w_vfd_fapl(const h5w_vfd_info *info)
{
    pthread_mutex_lock(&vfd_mu);
    /* H5close unregisters drivers; a later write registers it again. */
    if (vfd_id < 0 || H5Iget_type(vfd_id) != H5I_VFL) vfd_id = H5FDregister(&vfd_class);
    hid_t id = vfd_id;
    pthread_mutex_unlock(&vfd_mu);
    if (id < 0) return H5I_INVALID_HID;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return H5I_INVALID_HID;
    if (H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 || H5Pset_driver(fapl, id, info) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}
