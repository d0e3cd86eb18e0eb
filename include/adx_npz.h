/* adx_npz (prefix npz_) — model → .npz: a zip of .npy members that
 * numpy.load(path, allow_pickle=False) opens, layout of shared/spec/formats.md
 * "npz", documented with the Python that rebuilds the AnnData in
 * tests/integration/formats/README-npz.md.
 *
 * - Members are numpy format 1.0 (2.0 when a header exceeds 65535 bytes),
 *   headers byte-identical to np.save; dtypes '|b1' '|i1' '<i2' … '<f8';
 *   strings as fixed-width '<U n' (UTF-32LE, n = longest value in code
 *   points, at least 1), never object arrays.
 * - Keys are escaped to one path segment each: '~' → "~0", '/' → "~1",
 *   '\' → "~2", leading '.' → "~3", leading '_' → "~4", "" → "~". Names
 *   beginning with '_' are the format's: <frame>/_index.npy and _attrs.npy,
 *   a 0-d '<U' JSON object with the h5ad attributes of every non-array
 *   element (encoding-type, ordered, shape, index-name, column-order, and
 *   [key, member] pairs for dicts and frames).
 * - `compression` GZIP deflates members at `level` 1-9 (level 0 stores);
 *   NONE stores them; LZF fails with ADX_E_BAD_OPTION.
 * - Memory: members are streamed while libzip writes, numeric bodies straight
 *   from the model buffers and strings encoded chunk by chunk, so no array is
 *   copied. One '<U' member may expand to at most the default
 *   max_total_bytes (ADX_E_LIMIT otherwise).
 * - ctl: cancel is polled when each member opens and on every chunk
 *   (ADX_E_CANCELED); progress comes from libzip. `rep` may be NULL: npz
 *   holds every element kind, so nothing is reported.
 * - npz_write writes exactly `path` through an afile (adx_afile.h): a
 *   failure leaves `path` as it was (absent, or its previous content).
 *   npz_write_to writes into the caller's afile, which the caller commits
 *   (or aborts, after a failure); libzip makes no temp file of its own. Unsanitized elements
 *   (AD_K_OBJECT/NULL) are ADX_E_INTERNAL naming their path. Thread-safe.
 */
#ifndef ADX_NPZ_H
#define ADX_NPZ_H

#include "adx_afile.h"
#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

int npz_write(const ad_anndata *a, const char *path, adx_compression compression, int level,
              const adx_ctl *ctl, adx_report *rep, adx_err *err);
int npz_write_to(const ad_anndata *a, afile *out, adx_compression compression, int level,
                 const adx_ctl *ctl, adx_report *rep, adx_err *err);

#endif
