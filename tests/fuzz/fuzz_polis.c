/* The Polis CSV importer on a folder written from the input: the bytes up
 * to the first NUL are votes.csv, the rest comments.csv (no NUL: only
 * votes.csv, so the missing-file path runs too). */
#include "adx_polis.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_scratch_dir();
    char votes[512], comments[512];
    snprintf(votes, sizeof votes, "%s/votes.csv", dir);
    snprintf(comments, sizeof comments, "%s/comments.csv", dir);
    const uint8_t *nul = memchr(data, 0, size);
    size_t vl = nul ? (size_t)(nul - data) : size;
    if (fuzz_write_file(votes, data, vl) < 0) abort();
    unlink(comments);
    if (nul && fuzz_write_file(comments, nul + 1, size - vl - 1) < 0) abort();
    adx_limits lim;
    fuzz_limits(&lim);
    adx_err err;
    adx_err_init(&err);
    adx_report rep = {0};
    ad_anndata *a = polis_read_dir(dir, &lim, &rep, &err);
    if (a)
        ad_anndata_free(a);
    else if (!adx_err_failed(&err))
        abort();
    rep_free(&rep);
    return 0;
}
