/* The h5ad reader on the input as a file (h5r_read takes a path; a tmpfs
 * file per input keeps the production entry point, stat and H5Fis_hdf5
 * included). Crashes inside libhdf5 itself are triaged by scripts/fuzz.sh
 * (frame #0 in libhdf5, nothing of ours allocated the memory): the daemon
 * reads uploads in the adx-h5check child first, which contains them. */
#include <hdf5.h>

#include "adx_h5r.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[512];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s/in.h5ad", fuzz_scratch_dir());
        /* libhdf5's free lists would otherwise keep every size class it
         * ever saw, which reads as growth to libFuzzer's RSS limit. */
        H5set_free_list_limits(1 << 20, 1 << 16, 1 << 20, 1 << 16, 1 << 20, 1 << 16);
    }
    if (fuzz_write_file(path, data, size) < 0) abort();
    adx_limits lim;
    fuzz_limits(&lim);
    adx_err err;
    adx_err_init(&err);
    adx_report rep = {0};
    ad_anndata *a = h5r_read(path, &lim, NULL, &rep, &err);
    if (a)
        ad_anndata_free(a);
    else if (!adx_err_failed(&err))
        abort();
    rep_free(&rep);
    return 0;
}
