/* datasets internals the unit tests look at; not part of adx_datasets.h. */
#ifndef DATASETS_TEST_H
#define DATASETS_TEST_H

#include "adx_datasets.h"

const char *ds_kind_name(ds_kind k);   /* "h5ad", "polis" */
const char *ds_dir(const ds_store *s); /* the data directory, without a trailing "/" */

#endif
