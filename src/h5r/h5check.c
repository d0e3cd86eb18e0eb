/* h5r_check_isolated: run the adx-h5check helper on a file and turn its
 * verdict (or its death) into an adx_err. posix_spawn rather than fork, so
 * it is safe from a multi-threaded daemon: nothing runs in the child before
 * exec, and HDF5's global lock, held perhaps by another worker, is never
 * inherited in a locked state. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "adx_h5r.h"

extern char **environ;

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
    char nums[7][24];
    uint64_t v[7] = {lim->max_elements, lim->max_dim,          lim->max_total_bytes, lim->max_ndim,
                     lim->max_depth,    lim->max_string_bytes, lim->max_keys};
    for (int i = 0; i < 7; i++)
        snprintf(nums[i], sizeof nums[i], "%llu", (unsigned long long)v[i]);
    /* the helper reads what the caller will read: "--include PATH" pairs */
    size_t ninc = ro && ro->has_include ? ro->n_include : 0;
    char **argv = calloc(10 + 2 * ninc + 1, sizeof *argv);
    if (!argv) return adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
    char *fixed[] = {(char *)helper, (char *)path, nums[0], nums[1], nums[2],
                     nums[3],        nums[4],      nums[5], nums[6]};
    memcpy(argv, fixed, sizeof fixed);
    size_t na = 9;
    if (ro && ro->has_include) {
        argv[na++] = (char *)"--only";
        for (size_t i = 0; i < ninc; i++) {
            argv[na++] = (char *)"--include";
            argv[na++] = (char *)ro->include[i];
        }
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        free(argv);
        return adx_err_set(err, ADX_E_IO, "", "cannot create a pipe: %s", strerror(errno));
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
        return adx_err_set(err, ADX_E_INTERNAL, "", "cannot start %s: %s", helper, strerror(rc));
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
        if (errno != EINTR)
            return adx_err_set(err, ADX_E_INTERNAL, "", "lost the checker process: %s",
                               strerror(errno));
    if (timed_out)
        return adx_err_set(err, ADX_E_SCHEMA, "",
                           "reading the file took longer than %d ms; refused as damaged",
                           timeout_ms);
    if (WIFSIGNALED(st))
        return adx_err_set(err, ADX_E_SCHEMA, "",
                           "the file crashed the HDF5 library (signal %d): it is corrupt",
                           WTERMSIG(st));
    if (!WIFEXITED(st)) return adx_err_set(err, ADX_E_INTERNAL, "", "the checker ended abnormally");
    if (WEXITSTATUS(st) == 0) return 0;
    if (WEXITSTATUS(st) == 1) {
        json_t *o = json_loads(out, 0, NULL);
        const char *slug = NULL, *ptr = NULL, *detail = NULL;
        if (o && json_unpack(o, "{s:s, s:s, s:s}", "type", &slug, "pointer", &ptr, "detail",
                             &detail) == 0) {
            adx_err_set(err, type_from_slug(slug), ptr, "%s", detail);
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
