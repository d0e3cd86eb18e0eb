/* adx_csvb (prefix csvb_) — model → a zip holding anndata's write_csvs
 * layout (obs.csv, var.csv, obsm.csv, varm.csv, X.csv, uns/<key>.csv),
 * separator ',' (csv) or '\t' (txt), quoting as pandas does. Sparse matrices
 * are densified up to lim->csv_max_cells; whatever is not written is added
 * to the report (REP_NOT_WRITTEN). Writes exactly `path`; on failure the file
 * may be partial and the caller unlinks it. Thread-safe.
 */
#ifndef ADX_CSVB_H
#define ADX_CSVB_H

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

int csvb_write(const ad_anndata *a, const char *path, char sep, const adx_limits *lim,
               const adx_ctl *ctl, adx_report *rep, adx_err *err);

#endif
