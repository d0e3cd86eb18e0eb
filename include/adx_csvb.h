/* adx_csvb (prefix csvb_) — model → a zip holding anndata 0.8's write_csvs
 * layout (skip_data=False): obs.csv and var.csv with header and index,
 * obsm.csv and varm.csv with AxisArrays.to_df's column names (X_pca1,
 * X_pca2, …) and no index, X.csv (empty when there is no X, as write_csvs
 * writes it), an uns/ folder and one uns/<key>.csv per array-like uns entry
 * (no header, no index). Separator ',' (csv) or '\t' (txt); member names end
 * in .csv either way, as write_csvs names them. Members are deflated
 * (csvb_write) or compressed as the request says (csvb_write_ex).
 *
 * Cell text is pandas.to_csv's: floats as numpy's str (float32 with float32
 * digits), NaN as an empty field, inf as "inf", bools True/False,
 * categoricals as their category values, missing categoricals and nullable
 * values empty; fields quoted when they hold the separator, '"', CR or LF
 * (pandas leaves CR unquoted; quoting it keeps the file RFC 4180), '"'
 * doubled, and a record of one empty field written as "".
 *
 * Reported with REP_NOT_WRITTEN (count 1 each) instead of written: sparse
 * X/obsm/varm matrices over lim->csv_max_cells cells (densified otherwise),
 * sparse uns entries and arrays of more than 2 dimensions (write_csvs omits
 * them), nested uns dicts (write_csvs would write their Python repr), every
 * entry of layers, obsp and varp, and raw. Departures from write_csvs: uns
 * entries always go under uns/ (write_csvs lets an uns key "obs" replace
 * obs.csv), uns keys are escaped as in adx_npz.h
 * except that a leading '_' is kept (csv bundles reserve no names), DataFrames in obsm/varm
 * are written column by column as <key>1, <key>2, … (to_df would write
 * garbage), and 1-d obsm arrays as a single column <key>1. A record array
 * is a table of its fields in order: uns/<key>.csv without header or index
 * (write_csvs' pd.DataFrame(recarray)), in obsm/varm columns <key>1, ….
 *
 * `lim` NULL means adx_limits_default; `rep` NULL drops the entries (tests).
 * Cancel and progress as in adx_npz.h.
 * Writes exactly `path` as npz_write does (temporary file renamed on
 * success). Thread-safe.
 */
#ifndef ADX_CSVB_H
#define ADX_CSVB_H

#include "adx_afile.h"
#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

int csvb_write(const ad_anndata *a, const char *path, char sep, const adx_limits *lim,
               const adx_ctl *ctl, adx_report *rep, adx_err *err);
/* csvb_write with the request's compression: GZIP deflates members at
 * `level` 1-9 (0 stores), NONE stores them, LZF is ADX_E_BAD_OPTION.
 * csvb_write is this with GZIP at level 6. Both write exactly `path`
 * through an afile: a failure leaves `path` as it was. */
int csvb_write_ex(const ad_anndata *a, const char *path, char sep, adx_compression compression,
                  int level, const adx_limits *lim, const adx_ctl *ctl, adx_report *rep,
                  adx_err *err);
/* The same into the caller's afile, which the caller commits (or aborts
 * after a failure); libzip makes no temp file of its own. */
int csvb_write_to(const ad_anndata *a, afile *out, char sep, adx_compression compression, int level,
                  const adx_limits *lim, const adx_ctl *ctl, adx_report *rep, adx_err *err);

#endif
