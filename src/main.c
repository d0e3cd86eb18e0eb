/* anndata-exportd — the command line: one-shot `export` and the `serve`
 * daemon. Exit codes: 0 success, 1 internal or I/O failure, 2 bad input or
 * bad usage (the problem+json on stderr says which). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>
#include <jansson.h>
#include <microhttpd.h>
#include <uv.h>

#include "adx_common.h"
#include "adx_config_build.h"
#include "adx_err.h"
#include "adx_notify.h"
#include "adx_pipeline.h"
#include "adx_request.h"
#include "adx_server.h"

static const char usage_text[] =
    "usage: anndata-exportd <command> [options]\n"
    "\n"
    "Turn JSON-encoded AnnData objects into h5ad, npz or csv/txt bundles.\n"
    "\n"
    "commands:\n"
    "  export REQUEST.json [-o OUT] [--timings]\n"
    "      Run one export request (the body of POST /v1/exports) and write\n"
    "      the file. REQUEST.json may be '-' to read the request from stdin.\n"
    "      -o, --output OUT  where to write; '-' writes the file to stdout\n"
    "                        (the job JSON then goes to stderr). Default:\n"
    "                        the request's \"filename\", else export.<ext>,\n"
    "                        in the current directory.\n"
    "      --timings         add \"timings\" (seconds per stage) to the job JSON\n"
    "      On success prints the job JSON (format, filename, size_bytes,\n"
    "      sha256, summary, report, output). On bad input prints an RFC 9457\n"
    "      problem+json on stderr and exits 2; I/O or internal errors exit 1.\n"
    "\n"
    "  serve [options]\n"
    "      Run the HTTP daemon; `anndata-exportd serve --help` lists its\n"
    "      options.\n"
    "\n"
    "  healthcheck [--url URL] [--timeout SECONDS]\n"
    "      Exit 0 when the daemon answers 200 (default: /healthz at\n"
    "      $ANNDATA_EXPORTD_LISTEN, else 127.0.0.1:8080), 1 otherwise; for\n"
    "      container HEALTHCHECKs.\n"
    "\n"
    "  --help, -h     this text\n"
    "  --version      version of anndata-exportd and of the libraries it uses\n";

static void usage(FILE *f)
{
    fputs(usage_text, f);
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "anndata-exportd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n");
    usage(stderr);
    return 2;
}

static void print_version(void)
{
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    printf("anndata-exportd %s\n", ADX_VERSION);
    printf("HDF5 %u.%u.%u\n", maj, min, rel);
    printf("jansson %s\n", jansson_version_str());
    printf("libuv %s\n", uv_version_string());
    printf("libmicrohttpd %s\n", MHD_get_version());
}

static int exit_code_for(const adx_err *e)
{
    return e->status >= 400 && e->status < 500 && e->type != ADX_E_CANCELED ? 2 : 1;
}

static int report_error(const adx_err *e)
{
    json_t *p = adx_err_problem(e, NULL, NULL);
    char *s = p ? json_dumps(p, JSON_INDENT(2)) : NULL;
    if (s)
        fprintf(stderr, "%s\n", s);
    else
        fprintf(stderr, "anndata-exportd: %s\n", e->detail);
    free(s);
    json_decref(p);
    return exit_code_for(e);
}

/* The request from stdin, bounded by the body limit like an HTTP body. */
static pipe_job *load_stdin(const adx_limits *lim, adx_err *err)
{
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    if (!buf) {
        adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            if (cap > lim->max_body_bytes) break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                adx_err_set(err, ADX_E_NOMEM, "", "out of memory");
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(0, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            free(buf);
            adx_err_set(err, ADX_E_IO, "", "cannot read the request from stdin: %s",
                        strerror(errno));
            return NULL;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    if (len > lim->max_body_bytes) {
        free(buf);
        adx_err_set(err, ADX_E_LIMIT, "", "the request is larger than max_body_bytes = %llu",
                    (unsigned long long)lim->max_body_bytes);
        return NULL;
    }
    pipe_job *j = pipe_load_buffer(buf, len, lim, err);
    free(buf);
    return j;
}

static int copy_to_stdout(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? -1 : 0;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(1, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                rc = -1;
                break;
            }
            off += w;
        }
        if (rc) break;
    }
    close(fd);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmd_export(int argc, char **argv)
{
    const char *req_path = NULL, *out = NULL;
    bool timings = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 >= argc) return bad_usage("%s needs a value", a);
            out = argv[++i];
        } else if (!strncmp(a, "--output=", 9)) {
            out = a + 9;
        } else if (!strcmp(a, "--timings")) {
            timings = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            return bad_usage("unknown option for export: %s", a);
        } else if (!req_path) {
            req_path = a;
        } else {
            return bad_usage("export takes one request file, got another: %s", a);
        }
    }
    if (!req_path) return bad_usage("%s", "export needs a request file (or '-' for stdin)");
    if (out && !*out) return bad_usage("%s", "the output path must not be empty");

    adx_limits lim;
    adx_limits_default(&lim);
    adx_err err;
    adx_err_init(&err);
    double t0 = now_s();
    pipe_job *j =
        !strcmp(req_path, "-") ? load_stdin(&lim, &err) : pipe_load_file(req_path, &lim, &err);
    if (!j) return report_error(&err);
    double t1 = now_s();
    if (pipe_prepare(j, &err)) {
        pipe_free(j);
        return report_error(&err);
    }
    double t2 = now_s();

    bool to_stdout = out && !strcmp(out, "-");
    char *path = NULL;
    char tmpdir[4096] = "";
    if (to_stdout) {
        /* Writers need a seekable file; stream it once it is complete. */
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/anndata-exportd.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmpdir)) {
            adx_err_set(&err, ADX_E_IO, "", "cannot create a temporary directory: %s",
                        strerror(errno));
            pipe_free(j);
            return report_error(&err);
        }
        char *name = req_filename(pipe_request(j), "export");
        if (name && asprintf(&path, "%s/%s", tmpdir, name) < 0) path = NULL;
        free(name);
    } else {
        path = out ? strdup(out) : req_filename(pipe_request(j), "export");
    }
    if (!path) {
        adx_err_set(&err, ADX_E_NOMEM, "", "out of memory");
        if (tmpdir[0]) rmdir(tmpdir);
        pipe_free(j);
        return report_error(&err);
    }

    double t3 = now_s();
    int rc = pipe_write(j, path, NULL, &err);
    double t4 = now_s();
    if (rc == 0 && to_stdout && copy_to_stdout(path) != 0)
        rc =
            adx_err_set(&err, ADX_E_IO, "", "cannot write the file to stdout: %s", strerror(errno));
    if (to_stdout) {
        unlink(path);
        rmdir(tmpdir);
    }
    if (rc != 0) {
        free(path);
        pipe_free(j);
        return report_error(&err);
    }

    json_t *res = pipe_result_json(j, "export");
    if (res) json_object_set_new(res, "output", json_string(to_stdout ? "-" : path));
    if (res && timings)
        json_object_set_new(res, "timings",
                            json_pack("{s:f, s:f, s:f}", "load_s", t1 - t0, "prepare_s", t2 - t1,
                                      "write_s", t4 - t3));
    char *s = res ? json_dumps(res, JSON_INDENT(2)) : NULL;
    json_decref(res);
    free(path);
    pipe_free(j);
    if (!s) {
        fprintf(stderr, "anndata-exportd: out of memory printing the result\n");
        return 1;
    }
    fprintf(to_stdout ? stderr : stdout, "%s\n", s);
    free(s);
    return 0;
}

int main(int argc, char **argv)
{
    int rc;
    if (argc < 2) {
        usage(stderr);
        rc = 2;
    } else if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        rc = 0;
    } else if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        print_version();
        rc = 0;
    } else if (!strcmp(argv[1], "export")) {
        rc = cmd_export(argc - 1, argv + 1);
    } else if (!strcmp(argv[1], "serve")) {
        rc = srv_main(argc - 1, argv + 1);
    } else if (!strcmp(argv[1], "healthcheck")) {
        rc = ntf_healthcheck_main(argc - 1, argv + 1);
    } else {
        rc = bad_usage(argv[1][0] == '-' ? "unknown option: %s" : "unknown command: %s", argv[1]);
    }
    /* HDF5 keeps global state until told otherwise; releasing it keeps
     * LeakSanitizer's report about our own allocations. */
    H5close();
    if (fflush(stdout) != 0 && rc == 0) rc = 1;
    return rc;
}
