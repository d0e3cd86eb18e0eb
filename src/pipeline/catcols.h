/* Internal to src/pipeline: categorical_columns applied to a model read from
 * a file (catcols.c). */
#ifndef ADX_PIPE_CATCOLS_H
#define ADX_PIPE_CATCOLS_H

#include <stddef.h>

#include "adx_err.h"
#include "adx_model.h"

/* Plain 1-d obs/var columns whose name matches one of `globs` become
 * categoricals. 0, or -1 with ADX_E_NOMEM. */
int pipe_categorize_columns(ad_anndata *a, const char *const *globs, size_t n, adx_err *err);

#endif
