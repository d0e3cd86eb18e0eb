/* A model holding every element kind the h5ad writer handles, shared by the
 * unit tests and the driver program the Python integration test runs. */
#ifndef H5W_SAMPLE_MODEL_H
#define H5W_SAMPLE_MODEL_H

#include "adx_model.h"

#define SAMPLE_N_OBS 5
#define SAMPLE_N_VARS 4
#define SAMPLE_BIG_ROWS 3000
#define SAMPLE_BIG_COLS 200

/* Numeric array of `dtype` with the given shape; element i gets vals[i % nv]. */
ad_elem *sample_num(ad_dtype t, int ndim, const uint64_t *shape, const double *vals, int nv);
/* 1-d (or N-d when shape != NULL) string array. */
ad_elem *sample_strs(const char *const *s, uint64_t n, int ndim, const uint64_t *shape);
/* What a reader does for a model built by hand from X or from obs/var rows:
 * n_obs and n_vars set, and obs, var and raw.var without columns given a
 * default index of that length, so the writer's shape assertion holds. */
void sample_fit_axes(ad_anndata *a);
/* The comprehensive model; NULL on ENOMEM. */
ad_anndata *sample_model(void);

#endif
