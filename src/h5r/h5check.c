/* h5r_check_isolated: run the adx-h5check helper on a file and turn its
 * verdict (or its death) into an adx_err. posix_spawn rather than fork, so
 * it is safe from a multi-threaded daemon: nothing runs in the child before
 * exec, and HDF5's global lock, held perhaps by another worker, is never
 * inherited in a locked state. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "adx_config_build.h"
#include "adx_h5r.h"

extern char **environ;

bool h5r_helper_usable(const char *p)
{
    struct stat st;
    return p[0] && stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

int h5r_find_helper(char *out, size_t cap, char *looked, size_t looked_cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char cand[3][PATH_MAX + 64];
    int nc = 0;
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        snprintf(cand[nc++], sizeof cand[0], "%s/src/h5r/adx-h5check", exe);
    }
    snprintf(cand[nc++], sizeof cand[0], "%s/adx-h5check", ADX_LIBEXECDIR);
    if (n > 0) snprintf(cand[nc++], sizeof cand[0], "%s/../libexec/adx-h5check", exe);
    for (int i = 0; i < nc; i++) {
        char real[PATH_MAX];
        const char *use = realpath(cand[i], real) ? real : cand[i];
        if (h5r_helper_usable(cand[i]) && strlen(use) < cap) {
            memcpy(out, use, strlen(use) + 1);
            return 0;
        }
    }
    snprintf(looked, looked_cap, "%s, %s%s%s", cand[0], cand[1], nc > 2 ? ", " : "",
             nc > 2 ? cand[2] : "");
    return -1;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static adx_errtype type_from_slug(const char *slug)
{
    for (int t = ADX_E_INVALID_JSON; t < ADX_E__COUNT; t++)
        if (strcmp(adx_errtype_slug((adx_errtype)t), slug) == 0) return (adx_errtype)t;
    return ADX_E_INTERNAL;
}

#if defined(__SANITIZE_ADDRESS__)
#define ADX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ADX_SANITIZED 1
#endif
#endif
#ifndef ADX_SANITIZED
#define ADX_SANITIZED 0
#endif

void h5r_check_budget(const adx_limits *lim, uint64_t file_bytes, int timeout_ms,
                      uint64_t *as_bytes, unsigned *cpu_seconds)
{
    /* The model may take max_total_bytes (transient chunk and string
     * buffers are charged to it too); the rest is the process itself,
     * libhdf5's metadata cache and free lists. */
    uint64_t base = H5R_CHECK_BASE_BYTES;
    *as_bytes = lim->max_total_bytes > UINT64_MAX - base ? UINT64_MAX : lim->max_total_bytes + base;
    /* Reading costs about one pass over the file plus one over what it
     * decompresses into, and no file inflates more than ~64x (gzip level 9
     * of zeros goes to ~1000x, but such data exceed max_total_bytes first);
     * 32 MiB per CPU second is slow for libhdf5 even under ASan. */
    uint64_t inflated = file_bytes > UINT64_MAX / 64 ? UINT64_MAX : file_bytes * 64;
    uint64_t work =
        (inflated < lim->max_total_bytes ? inflated : lim->max_total_bytes) + file_bytes;
    uint64_t s = 2 + work / (32ull << 20);
    if (ADX_SANITIZED) s *= 4;
    uint64_t cap = (uint64_t)(timeout_ms > 0 ? timeout_ms : 60000) / 1000 + 1;
    *cpu_seconds = (unsigned)(s < cap ? s : cap);
}

int h5r_check_isolated(const char *helper, const char *path, const adx_limits *lim, int timeout_ms,
                       adx_err *err)
{
    return h5r_check_isolated_opts(helper, path, NULL, lim, timeout_ms, err);
}

int h5r_check_isolated_opts(const char *helper, const char *path, const h5r_opts *ro,
                            const adx_limits *lim, int timeout_ms, adx_err *err)
{
    adx_limits deflim;
    if (!lim) {
        adx_limits_default(&deflim);
        lim = &deflim;
    }
    struct stat fst;
    uint64_t as_bytes;
    unsigned cpu_s;
    h5r_check_budget(lim, stat(path, &fst) == 0 ? (uint64_t)fst.st_size : 0, timeout_ms, &as_bytes,
                     &cpu_s);
    char nums[9][24];
    /* 0: no address-space limit (ASan's shadow memory needs terabytes). */
    uint64_t v[9] = {lim->max_elements,
                     lim->max_dim,
                     lim->max_total_bytes,
                     lim->max_ndim,
                     lim->max_depth,
                     lim->max_string_bytes,
                     lim->max_keys,
                     ADX_SANITIZED ? 0 : as_bytes,
                     cpu_s};
    for (int i = 0; i < 9; i++)
        snprintf(nums[i], sizeof nums[i], "%llu", (unsigned long long)v[i]);
    /* the helper reads what the caller will read: "--include PATH" pairs */
    size_t ninc = ro && ro->has_include ? ro->n_include : 0;
    char **argv = calloc(12 + 2 * ninc + 1, sizeof *argv);
    if (!argv) return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
    char *fixed[] = {(char *)helper, (char *)path, nums[0], nums[1], nums[2], nums[3],
                     nums[4],        nums[5],      nums[6], nums[7], nums[8]};
    memcpy(argv, fixed, sizeof fixed);
    size_t na = 11;
    if (ro && ro->has_include) {
        argv[na++] = (char *)"--only";
        for (size_t i = 0; i < ninc; i++) {
            argv[na++] = (char *)"--include";
            argv[na++] = (char *)ro->include[i];
        }
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        int e = errno;
        free(argv);
        adx_err_set(err, ADX_E_IO, "", "cannot create a pipe");
        return adx_err_cause(err, "pipe2: %s", strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    /* libhdf5 may print on its way down; the verdict comes from stdout */
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, helper, &fa, NULL, argv, environ);
    free(argv);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        adx_err_set(err, ADX_E_INTERNAL, "", "cannot start the h5ad checker");
        return adx_err_cause(err, "%s: %s", helper, strerror(rc));
    }
    char out[8192];
    size_t len = 0;
    bool timed_out = false;
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 60000);
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        ssize_t n = read(fds[0], out + len, sizeof out - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* EOF: the helper is done (or dead) */
        len += (size_t)n;
        if (len == sizeof out - 1) break;
    }
    close(fds[0]);
    out[len] = '\0';
    if (timed_out) kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            int e = errno;
            adx_err_set(err, ADX_E_INTERNAL, "", "lost the checker process");
            return adx_err_cause(err, "waitpid: %s", strerror(e));
        }
    if (timed_out)
        return adx_err_set(err, ADX_E_SCHEMA, "",
                           "reading the file took longer than %d ms; refused as damaged",
                           timeout_ms);
    unsigned long long mib = (unsigned long long)(as_bytes >> 20);
    /* The limits are the file's budget, so running into one is the file's
     * fault (a 400), as a crash of libhdf5 on it is. */
    if (WIFSIGNALED(st) && (WTERMSIG(st) == SIGXCPU || WTERMSIG(st) == SIGKILL))
        return adx_err_set(err, ADX_E_SCHEMA, "",
                           "the file needs more than %u s of CPU time to read (the budget for "
                           "its size); refused as damaged",
                           cpu_s);
    if (WIFSIGNALED(st))
        return adx_err_set(err, ADX_E_SCHEMA, "",
                           "the file crashed the HDF5 library (signal %d) or needs more than %llu "
                           "MiB of memory to read: it is corrupt",
                           WTERMSIG(st), mib);
    if (!WIFEXITED(st)) return adx_err_set(err, ADX_E_INTERNAL, "", "the checker ended abnormally");
    if (WEXITSTATUS(st) == 0) return 0;
    if (WEXITSTATUS(st) == 1) {
        json_t *o = json_loads(out, 0, NULL);
        const char *slug = NULL, *ptr = NULL, *detail = NULL, *cause = NULL;
        if (o && json_unpack(o, "{s:s, s:s, s:s, s?s}", "type", &slug, "pointer", &ptr, "detail",
                             &detail, "cause", &cause) == 0) {
            if (type_from_slug(slug) == ADX_E_NOMEM) {
                adx_err_set(err, ADX_E_SCHEMA, ptr,
                            "the file needs more than %llu MiB of memory to read (max_total_bytes "
                            "%llu and the reader's own); refused as damaged",
                            mib, (unsigned long long)lim->max_total_bytes);
            } else {
                adx_err_set(err, type_from_slug(slug), ptr, "%s", detail);
                if (cause && *cause) adx_err_cause(err, "%s", cause);
            }
            json_decref(o);
            return -1;
        }
        json_decref(o);
    }
    /* Sanitizer reports and aborts end here too (their exit codes). */
    return adx_err_set(err, ADX_E_SCHEMA, "",
                       "the file could not be read safely (checker exit status %d)",
                       WEXITSTATUS(st));
}
