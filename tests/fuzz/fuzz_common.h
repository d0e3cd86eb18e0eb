/* Shared by the libFuzzer targets and their replay driver (private to
 * tests/fuzz). Limits are small so that one input can never make a target
 * allocate more than a few tens of MB through a size the code accepted:
 * anything above that is a finding (libFuzzer's -malloc_limit_mb), not the
 * budget doing its job. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adx_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_limits(adx_limits *l)
{
    adx_limits_default(l);
    l->max_body_bytes = 1u << 20;
    l->max_elements = 1u << 16;
    l->max_dim = 1u << 16;
    l->max_total_bytes = 32u << 20;
    l->max_ndim = 8;
    l->max_depth = 16;
    l->max_string_bytes = 1u << 16;
    l->max_keys = 1024;
    l->csv_max_cells = 1u << 16;
}

/* A private scratch directory for targets that need files (tmpfs when there
 * is one: a file per input), removed at exit. */
char *fuzz_scratch_dir(void);
/* Write `len` bytes to `path`; 0 or -1. */
int fuzz_write_file(const char *path, const void *buf, size_t len);

#endif
