/* adx_npz (prefix npz_) — model → .npz (a zip of .npy members that
 * numpy.load(path, allow_pickle=False) opens), layout of
 * shared/spec/formats.md "npz". `compression` GZIP deflates members at
 * `level` (as numpy.savez_compressed), NONE stores them; LZF is rejected by
 * request validation before this is called. Writes exactly `path`; on failure
 * the file may be partial and the caller unlinks it. Thread-safe.
 */
#ifndef ADX_NPZ_H
#define ADX_NPZ_H

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

int npz_write(const ad_anndata *a, const char *path, adx_compression compression, int level,
              const adx_ctl *ctl, adx_report *rep, adx_err *err);

#endif
