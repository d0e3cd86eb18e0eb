/* adx-h5check: read one h5ad file with h5r_read in its own process, for
 * h5r_check_isolated(). A corrupt file that crashes libhdf5 then takes down
 * only this helper.
 *
 *   adx-h5check <file> <max_elements> <max_dim> <max_total_bytes> <max_ndim>
 *               <max_depth> <max_string_bytes> <max_keys> <max_as_bytes>
 *               <max_cpu_seconds> [--only [--include PATH]...]
 *
 * --only reads what h5r_read_opts reads with that include filter (none
 * given: an empty filter), so the check covers what the caller will read.
 *
 * The last two become RLIMIT_AS (0: none) and RLIMIT_CPU before anything is read (see
 * h5r_check_budget), so a file that makes libhdf5 allocate or loop without
 * end stops here, at the budget, instead of taking the machine's memory or a
 * worker for a minute.
 * Exit 0: the file reads. Exit 1: it does not; stdout holds one JSON object
 * {"type": slug, "pointer": "...", "detail": "..."}. Exit 2: bad usage.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <jansson.h>

#include "adx_h5r.h"

static int arg_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    bool only = argc > 11 && strcmp(argv[11], "--only") == 0;
    int ninc = only ? (argc - 12) / 2 : 0;
    bool pairs_ok = true;
    for (int i = 0; only && i < ninc; i++)
        pairs_ok &= strcmp(argv[12 + 2 * i], "--include") == 0;
    if (argc < 11 || (argc > 11 && (!only || (argc - 12) % 2 || !pairs_ok))) {
        fprintf(stderr,
                "usage: %s FILE MAX_ELEMENTS MAX_DIM MAX_TOTAL_BYTES MAX_NDIM MAX_DEPTH "
                "MAX_STRING_BYTES MAX_KEYS MAX_AS_BYTES MAX_CPU_SECONDS "
                "[--only [--include PATH]...]\n",
                argv[0]);
        return 2;
    }
    adx_limits lim;
    adx_limits_default(&lim);
    uint64_t v[9];
    for (int i = 0; i < 9; i++)
        if (arg_u64(argv[i + 2], &v[i]) < 0) {
            fprintf(stderr, "%s: not a number: %s\n", argv[0], argv[i + 2]);
            return 2;
        }
    lim.max_elements = v[0];
    lim.max_dim = v[1];
    lim.max_total_bytes = v[2];
    lim.max_ndim = (uint32_t)(v[3] > UINT32_MAX ? UINT32_MAX : v[3]);
    lim.max_depth = (uint32_t)(v[4] > UINT32_MAX ? UINT32_MAX : v[4]);
    lim.max_string_bytes = v[5];
    lim.max_keys = v[6];
    /* SIGXCPU at the soft limit, SIGKILL a second later should it be
     * caught; neither above a hard limit this process already has. */
    struct rlimit cpu, as;
    if (getrlimit(RLIMIT_CPU, &cpu) < 0 || getrlimit(RLIMIT_AS, &as) < 0) {
        perror("adx-h5check: getrlimit");
        return 2;
    }
    if (cpu.rlim_max == RLIM_INFINITY || v[8] + 1 < cpu.rlim_max) cpu.rlim_max = v[8] + 1;
    cpu.rlim_cur = v[8] < cpu.rlim_max ? v[8] : cpu.rlim_max;
    if (as.rlim_max == RLIM_INFINITY || (v[7] && v[7] < as.rlim_max)) as.rlim_max = v[7];
    as.rlim_cur = as.rlim_max;
    if (setrlimit(RLIMIT_CPU, &cpu) < 0 || (v[7] && setrlimit(RLIMIT_AS, &as) < 0)) {
        perror("adx-h5check: setrlimit");
        return 2;
    }
    const char **inc = calloc((size_t)ninc + 1, sizeof *inc);
    if (!inc) return 2;
    for (int i = 0; i < ninc; i++)
        inc[i] = argv[13 + 2 * i];
    h5r_opts ro = {.include = inc, .n_include = (size_t)ninc, .has_include = only};
    adx_err err;
    adx_err_init(&err);
    ad_anndata *a = h5r_read_opts(argv[1], &ro, &lim, NULL, NULL, &err);
    free(inc);
    if (a) {
        ad_anndata_free(a);
        return 0;
    }
    json_t *o = json_pack("{s:s, s:s, s:s}", "type", adx_errtype_slug(err.type), "pointer",
                          err.n_items ? err.items[0].pointer : "", "detail", err.detail);
    if (o && err.cause[0]) json_object_set_new(o, "cause", json_string(err.cause));
    if (o) {
        json_dumpf(o, stdout, JSON_COMPACT);
        json_decref(o);
    }
    return 1;
}
