/* adx_h5r (prefix h5r_) — h5ad file → model. Reads every encoding anndata
 * 0.8+ writes and the older pre-0.8 layout. Input is untrusted: every size,
 * rank and offset is checked against `lim`; unknown encodings are errors
 * naming the element path ("/obsm/X_umap"). Returns NULL with `err` set.
 * Thread-safe (HDF5 is built thread-safe; calls serialize on its lock).
 */
#ifndef ADX_H5R_H
#define ADX_H5R_H

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

ad_anndata *h5r_read(const char *path, const adx_limits *lim, const adx_ctl *ctl, adx_report *rep,
                     adx_err *err);

#endif
