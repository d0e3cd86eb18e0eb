/* adx_polis (prefix polis_) — a Polis CSV export folder (votes.csv,
 * comments.csv, optionally participant-votes.csv) → the participant ×
 * statement model of valency-anndata's loader. Returns NULL with `err` set
 * (pointers name the file and row: "/votes.csv/17/vote").
 */
#ifndef ADX_POLIS_H
#define ADX_POLIS_H

#include "adx_common.h"
#include "adx_err.h"
#include "adx_model.h"
#include "adx_report.h"

ad_anndata *polis_read_dir(const char *dir, const adx_limits *lim, adx_report *rep, adx_err *err);

#endif
