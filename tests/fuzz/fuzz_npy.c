/* .npy header parsing and reading a part: the input is the whole part. A
 * header that parses must describe exactly the bytes that follow for the
 * read to succeed, and then the element holds n values of its dtype;
 * parsing a prefix of the header asks for more, never fails differently.
 * The request alternates between "anything" and "a rec-array". */
#include <sys/mman.h>

#include "adx_parts.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    adx_limits lim;
    fuzz_limits(&lim);
    adx_err e;
    adx_err_init(&e);
    parts_npy h;
    size_t need = 0;
    int pr = parts_npy_parse(data, size, &lim, "p", "", &h, &need, &e);
    if (pr == 1 && need <= size) abort(); /* asked for bytes it had */
    if (pr == -1 && !adx_err_failed(&e)) abort();
    uint64_t want = 0;
    bool whole = false;
    if (pr == 0) {
        if (h.data_off > size) abort();
        want = h.data_off + h.n * h.itemsize;
        whole = want == size;
        parts_npy_free(&h);
    }
    int fd = memfd_create("npy", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) abort();
    parts_set s = {0};
    s.lim = &lim;
    s.v = calloc(1, sizeof *s.v);
    s.n = s.cap = 1;
    s.v[0] = (parts_part){.name = strdup("p"), .fd = fd, .len = size};
    jdec_part_req r = {.name = "p", .ndim = -1, .recarray = size && (data[size - 1] & 1)};
    if (!parts_is_npy(data, size)) {
        r.has_dtype = true;
        r.dtype = size ? (ad_dtype)(data[0] % AD_STR) : AD_U8;
        r.ndim = 1;
        r.shape[0] = ad_dtype_size(r.dtype) ? size / ad_dtype_size(r.dtype) : 0;
        r.recarray = false;
    }
    ad_elem *el = NULL;
    adx_err_init(&e);
    int rc = parts_read(&s, &r, &el, "/x", &e);
    if (rc == 0) {
        if (!el) abort();
        if (parts_is_npy(data, size) && (pr != 0 || !whole)) abort(); /* a lie was accepted */
        if (el->kind == AD_K_ARRAY && el->u.arr.dtype != AD_STR && el->u.arr.n && !el->u.arr.data)
            abort();
        ad_elem_free(el);
    } else if (!adx_err_failed(&e) || el) {
        abort();
    }
    parts_set_free(&s);
    close(fd);
    return 0;
}
