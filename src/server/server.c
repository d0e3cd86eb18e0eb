/* `anndata-exportd serve`: process setup, signals, shutdown and the small
 * service documents (version, tokens). */
#include "adx_server.h"
#include "datadir.h"
#include "http.h"
#include "run.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "adx_config_build.h"
#include "adx_dynlib.h"
#include "adx_notify.h"

extern char **environ;

#define TICK_MS 200
#define FORCED_EXIT_MS 10000

int64_t srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t srv_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void srv_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            /* getrandom cannot fail after boot on Linux >= 3.17; ids stay
             * unique through the time part and the monotonic increment. */
            for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(srv_mono_ns() >> (i % 8));
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

void srv_new_id(srv_state *s, char out[SRV_ID_LEN + 1])
{
    uint8_t rnd[10];
    srv_random(rnd, sizeof rnd);
    if (srv_id_next(&s->idgen, (uint64_t)srv_now_ms(), rnd, out) < 0) {
        /* 2^80 ids in one millisecond cannot happen; reseed all the same. */
        s->idgen.last_ms++;
        srv_id_next(&s->idgen, s->idgen.last_ms + 1, rnd, out);
    }
}

static void tokens_free(char **t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* do not leave secrets in freed memory */
        explicit_bzero(t[i], strlen(t[i]));
        free(t[i]);
    }
    free(t);
}

int srv_tokens_load(srv_state *s, adx_err *err)
{
    const char *path = s->cfg.tokens_file;
    if (!path[0]) return 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return adx_err_set(err, ADX_E_IO, "/tokens_file", "cannot open tokens file %s: %s", path,
                           strerror(errno));
    char **t = NULL;
    size_t n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t l = strcspn(p, "\r\n");
        while (l && (p[l - 1] == ' ' || p[l - 1] == '\t'))
            l--;
        p[l] = '\0';
        if (!l || *p == '#') continue;
        char **nt = realloc(t, (n + 1) * sizeof *t);
        char *dup = strdup(p);
        if (!nt || !dup) {
            free(dup);
            if (nt) t = nt;
            tokens_free(t, n);
            fclose(f);
            return adx_err_set(err, ADX_E_NOMEM, "/tokens_file", "out of memory");
        }
        t = nt;
        t[n++] = dup;
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    if (n == 0) {
        free(t);
        /* An empty file must not silently turn authentication off. */
        return adx_err_set(err, ADX_E_BAD_OPTION, "/tokens_file", "tokens file %s holds no token",
                           path);
    }
    tokens_free(s->tokens, s->n_tokens);
    s->tokens = t;
    s->n_tokens = n;
    return 0;
}

json_t *srv_version_json(void)
{
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    char h5[32];
    snprintf(h5, sizeof h5, "%u.%u.%u", maj, min, rel);
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:b}, s:{s:s, s:s, s:s, s:s}}", "name",
                     "anndata-exportd", "version", ADX_VERSION, "build", "compiler",
#ifdef __VERSION__
                     __VERSION__,
#else
                     "unknown",
#endif
                     "c_standard", "C11", "systemd", ADX_HAVE_SYSTEMD, "libraries", "hdf5", h5,
                     "libmicrohttpd", MHD_get_version(), "jansson", jansson_version_str(), "libuv",
                     uv_version_string());
}

const char *srv_mhd_version(void)
{
    return dynlib_load(&srv_mhd, NULL) == 0 ? MHD_get_version() : "(not installed)";
}

/* ---- shutdown ------------------------------------------------------------- */

static void close_all(srv_state *s)
{
    srv_http_stop(s);
    uv_timer_stop(&s->tick);
    uv_close((uv_handle_t *)&s->tick, NULL);
    uv_timer_stop(&s->watchdog);
    uv_close((uv_handle_t *)&s->watchdog, NULL);
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_hup, NULL);
}

static void shutdown_step(srv_state *s, int64_t now)
{
    if (now >= s->shutdown_deadline_ms && !s->shutdown_canceled && s->jobs.n_running) {
        s->shutdown_canceled = true;
        srv_log("warn", "shutdown grace period over; stopping running jobs (they rerun on start)",
                json_pack("{s:i}", "running", s->jobs.n_running));
        for (srv_job *j = s->jobs.head; j; j = j->next)
            if (j->state == SRV_JOB_RUNNING) atomic_store(&j->cancel, SRV_CANCEL_SHUTDOWN);
    }
    if (now >= s->shutdown_deadline_ms + FORCED_EXIT_MS) {
        /* A stage that never polls the cancel flag must not keep the
         * process alive forever; everything accepted is on disk already. */
        srv_log("error", "workers did not stop; exiting anyway", json_pack("{}"));
        srv_log_close();
        _exit(0);
    }
    if (s->jobs.n_running || s->jobs.n_validating || s->n_ds_work) return;
    if (!s->drain_started_ms) s->drain_started_ms = now;
    const union MHD_DaemonInfo *ci =
        s->http.mhd ? MHD_get_daemon_info(s->http.mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
    bool idle = !ci || ci->num_connections == 0;
    /* Give answered clients a moment to read their responses. */
    if (srv_http_suspended(s) == 0 && (idle || now - s->drain_started_ms >= 1000)) {
        srv_log("info", "shutdown complete", json_pack("{s:i}", "queued", s->jobs.n_queued));
        close_all(s);
    }
}

static void on_watchdog(uv_timer_t *t)
{
    ntf_watchdog_ping();
}

static void on_job_timeout(void *ud, srv_job *j)
{
    srv_state *s = ud;
    srv_log(
        "warn", "job over job_timeout; stopping it",
        json_pack("{s:s, s:I}", "job_id", j->id, "job_timeout_s", (json_int_t)s->cfg.job_timeout));
}

static void on_tick(uv_timer_t *t)
{
    srv_state *s = t->data;
    int64_t now = srv_now_ms();
    /* libmicrohttpd frees closed connections (and so re-arms a listen socket
     * paused at max_connections) on the run after the one that closed them,
     * which no fd event may ever trigger: a periodic run bounds that. */
    srv_http_kick(s);
    srv_spool_poll_free(s, t->loop);
    /* Expiry walks the whole table; seconds are its unit anyway. */
    if (now - s->last_sweep_ms >= 1000 || now < s->last_sweep_ms) {
        s->last_sweep_ms = now;
        srv_jobs_tick(&s->jobs, now);
        srv_jobs_deadline(&s->jobs, now, (int64_t)s->cfg.job_timeout * 1000, on_job_timeout, s);
    }
    srv_http_tick(s, now);
    if (s->shutting_down) shutdown_step(s, now);
}

static void begin_shutdown(srv_state *s, int signum)
{
    if (s->shutting_down) {
        if (signum == SIGINT && !s->shutdown_canceled) {
            /* A second Ctrl-C means now. */
            s->shutdown_deadline_ms = srv_now_ms();
        }
        return;
    }
    s->shutting_down = true;
    ntf_stopping();
    ntf_status("draining: %u running, %u queued", s->jobs.n_running, s->jobs.n_queued);
    s->shutdown_deadline_ms = srv_now_ms() + (int64_t)s->cfg.shutdown_grace * 1000;
    srv_http_quiesce(s);
    srv_log("info", "shutting down",
            json_pack("{s:s, s:i, s:i, s:I}", "signal", strsignal(signum), "running",
                      s->jobs.n_running, "queued", s->jobs.n_queued, "grace_s",
                      (json_int_t)s->cfg.shutdown_grace));
    on_tick(&s->tick);
}

static void on_signal(uv_signal_t *h, int signum)
{
    srv_state *s = h->data;
    if (signum == SIGHUP) {
        adx_err err;
        adx_err_init(&err);
        ntf_reloading();
        int lr = srv_log_reopen();
        int tr = srv_tokens_load(s, &err);
        ntf_ready();
        srv_log(lr == 0 && tr == 0 ? "info" : "error", "SIGHUP: reopened log, reloaded tokens",
                json_pack("{s:b, s:s?, s:i}", "log_ok", lr == 0, "tokens_error",
                          tr == 0 ? NULL : err.detail, "tokens", (int)s->n_tokens));
        return;
    }
    begin_shutdown(s, signum);
}

static void usage(FILE *f)
{
    fputs("usage: anndata-exportd serve [--listen HOST:PORT] [--config FILE]\n"
          "                             [--data-dir DIR] [--spool-dir DIR] [--workers N]\n"
          "                             [--h5check PATH] [--KEY VALUE ...]\n"
          "\n"
          "Runs the HTTP export daemon.\n"
          "  --data-dir DIR  stored datasets (/v1/datasets). Default SPOOL/datasets,\n"
          "                  seeded with the bundled example `polis-example` while it\n"
          "                  holds no dataset; a configured directory is never seeded.\n"
          "  --h5check PATH  the adx-h5check helper that reads every uploaded h5ad in\n"
          "                  a child process. Default: looked up next to the binary's\n"
          "                  build tree, then in " ADX_LIBEXECDIR ".\n"
          "\n"
          "Limits and deadlines (defaults; each refusal is a problem+json naming it):\n"
          "  --max-connections-per-ip N  connections from one address (64)\n"
          "  --header-timeout DUR    to send a request's headers (10s)\n"
          "  --body-timeout DUR      to send an upload body (1h)\n"
          "  --max-waiting N         ?wait requests in progress (128; then 429)\n"
          "  --max-spool-bytes SIZE  uploads, queued requests and results (8G; 507)\n"
          "  --max-memory SIZE       estimated memory of running jobs together (16G;\n"
          "                          a job waits queued until it fits, one runs alone)\n"
          "  --job-timeout DUR       a job's run; then it fails (1h; 0 = none)\n"
          "\n"
          "Every numeric setting with its default (sizes take K/M/G/T, durations\n"
          "s/m/h/d):\n",
          f);
    srv_config defaults;
    srv_config_defaults(&defaults, NULL);
    srv_config_print_numeric(f, &defaults);
    fputs("\n"
          "Every setting of the config file (see config/anndata-exportd.conf) is also\n"
          "a flag (--queue-max 64) and an environment variable\n"
          "(ANNDATA_EXPORTD_QUEUE_MAX=64). Precedence: flags, then environment, then\n"
          "the config file, then defaults.\n"
          "Signals: SIGTERM/SIGINT drain and exit 0, SIGHUP reopens the log file and\n"
          "reloads the tokens file.\n",
          f);
}

int srv_main(int argc, char **argv)
{
    /* Static: the state outlives nothing but is too large for the stack. */
    static srv_state st;
    memset(&st, 0, sizeof st);
    st.spool.lock_fd = -1;
    srv_config_defaults(&st.cfg, NULL);
    adx_err err;
    adx_err_init(&err);
    const char *what = NULL;
    int rc = srv_config_from_args(&st.cfg, argc, argv, environ, &what, &err);
    if (rc == 1) {
        if (!strcmp(what, "version"))
            printf("anndata-exportd %s\n", ADX_VERSION);
        else
            usage(stdout);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "anndata-exportd serve: %s\n", err.detail);
        usage(stderr);
        return 2;
    }
    if (dynlib_load(&srv_mhd, &err) < 0) {
        fprintf(stderr, "anndata-exportd serve: libmicrohttpd cannot be loaded (%s)\n", err.cause);
        return 1;
    }
    /* Exports, validation and dataset work call libhdf5 from several pool
     * threads at once: without its global lock that corrupts its state. */
    hbool_t h5ts = 0;
    if (H5is_library_threadsafe(&h5ts) < 0 || !h5ts) {
        fprintf(stderr, "anndata-exportd serve: the libhdf5 this binary uses was built without "
                        "thread safety (--enable-threadsafe); the daemon runs HDF5 reads and "
                        "writes on several worker threads at once and refuses to start on it. "
                        "Install a thread-safe libhdf5 (Debian's libhdf5-103 is one).\n");
        return 1;
    }
    /* Exports take `workers` threads; two more keep validation of new
     * bodies and job records from waiting behind long exports. Must be set
     * before libuv's pool starts. */
    char tp[16];
    snprintf(tp, sizeof tp, "%u", st.cfg.workers + 2);
    setenv("UV_THREADPOOL_SIZE", tp, 1);
    signal(SIGPIPE, SIG_IGN);
    if (srv_log_open(&st.cfg, &err) < 0 || srv_tokens_load(&st, &err) < 0) {
        fprintf(stderr, "anndata-exportd serve: %s\n", err.detail);
        return 2;
    }
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "anndata-exportd serve: cannot create the event loop\n");
        return 1;
    }
    st.loop = &loop;
    srv_jobs_hooks hooks = srv_spool_hooks(&st);
    hooks.unpin = srv_datadir_unpin;
    srv_jobs_init(&st.jobs, st.cfg.queue_max, st.cfg.result_ttl, &hooks);
    st.jobs.max_memory = st.cfg.max_memory;
    bool up = srv_spool_lock(&st, &err) == 0 && srv_spool_scan(&st, &err) == 0;
    /* Results whose time ran out while the daemon was down are expired
     * before the first request, not at the first tick after it. */
    if (up) srv_jobs_tick(&st.jobs, srv_now_ms());
    if (!up || srv_datadir_open(&st, &err) < 0 || srv_http_start(&st, &err) < 0) {
        srv_log("error", "startup failed",
                srv_log_cause(json_pack("{s:s}", "error", err.detail), &err));
        fprintf(stderr, "anndata-exportd serve: %s%s%s\n", err.detail, err.cause[0] ? ": " : "",
                err.cause);
        srv_jobs_free_all(&st.jobs);
        srv_datadir_close(&st);
        srv_spool_unlock(&st);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        srv_log_close();
        return 1;
    }
    uv_timer_init(&loop, &st.tick);
    st.tick.data = &st;
    uv_timer_start(&st.tick, on_tick, TICK_MS, TICK_MS);
    uv_signal_init(&loop, &st.sig_term);
    uv_signal_init(&loop, &st.sig_int);
    uv_signal_init(&loop, &st.sig_hup);
    st.sig_term.data = st.sig_int.data = st.sig_hup.data = &st;
    uv_signal_start(&st.sig_term, on_signal, SIGTERM);
    uv_signal_start(&st.sig_int, on_signal, SIGINT);
    uv_signal_start(&st.sig_hup, on_signal, SIGHUP);
    srv_run_dispatch(&st);
    /* The watchdog is fed from the loop itself, so a stuck loop (not a busy
     * worker) is what makes systemd restart the daemon. */
    uint64_t wd_usec = 0;
    uv_timer_init(&loop, &st.watchdog);
    if (ntf_watchdog_usec(&wd_usec) == 1 && wd_usec >= 2000) {
        uint64_t every = wd_usec / 2000;
        ntf_watchdog_ping();
        uv_timer_start(&st.watchdog, on_watchdog, every, every);
    }
    int nr = ntf_ready();
    if (nr < 0)
        srv_log("warn", "could not notify the service manager",
                json_pack("{s:s}", "error", strerror(-nr)));
    ntf_status("listening on %s:%u", st.cfg.listen_host, st.cfg.listen_port);
    uv_run(&loop, UV_RUN_DEFAULT);
    srv_jobs_free_all(&st.jobs);
    /* Close anything a late completion left open, then the loop itself. */
    uv_run(&loop, UV_RUN_DEFAULT);
    srv_datadir_close(&st);
    srv_spool_unlock(&st);
    uv_loop_close(&loop);
    tokens_free(st.tokens, st.n_tokens);
    st.tokens = NULL;
    st.n_tokens = 0;
    srv_log_close();
    return 0;
}
