/* anndata-exportd — the command line: one-shot `export` and the `serve`
 * daemon. Exit codes: 0 success, 1 internal or I/O failure, 2 bad input or
 * bad usage (the problem+json on stderr says which). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>
#include <jansson.h>
#include <microhttpd.h>
#include <uv.h>

#include "adx_common.h"
#include "adx_config_build.h"
#include "adx_datasets.h"
#include "adx_err.h"
#include "adx_notify.h"
#include "adx_pipeline.h"
#include "adx_request.h"
#include "adx_server.h"

static const char usage_text[] =
    "usage: anndata-exportd <command> [options]\n"
    "\n"
    "Turn AnnData objects (JSON, h5ad, Polis CSV exports) into h5ad, npz or\n"
    "csv/txt bundles.\n"
    "\n"
    "commands:\n"
    "  export REQUEST.json|FILE.h5ad|FOLDER [-o OUT] [--timings]\n"
    "         [--data-dir DIR] [--part NAME=FILE ...] [file options]\n"
    "      Export one input and write the file. The input is\n"
    "        - a request JSON (the body of POST /v1/exports), or '-' to read\n"
    "          it from stdin, gzip-compressed or not; its options travel\n"
    "          inside it;\n"
    "        - an h5ad file (recognised by its HDF5 signature, or named *.h5ad);\n"
    "        - a folder holding a Polis CSV export (votes.csv, comments.csv).\n"
    "      -o, --output OUT  where to write; '-' writes the file to stdout\n"
    "                        (the job JSON then goes to stderr). Default:\n"
    "                        the \"filename\" option, else export.<ext>,\n"
    "                        in the current directory.\n"
    "      --timings         add \"timings\" (seconds per stage) to the job JSON\n"
    "      --part NAME=FILE  a binary part the request references with\n"
    "                        {\"part\": \"NAME\"}: an .npy file, or raw\n"
    "                        little-endian bytes (repeatable)\n"
    "      --data-dir DIR    stored datasets, for a request that names a\n"
    "                        \"dataset\" (default: $ANNDATA_EXPORTD_DATA_DIR)\n"
    "      file options (h5ad or folder INPUT only; a request JSON carries its\n"
    "      own, so giving them with one is an error):\n"
    "      --format F                    h5ad, npz, csv or txt\n"
    "      --filename NAME               its extension also selects the format\n"
    "      --compression gzip|lzf|none   (default gzip)\n"
    "      --compression-opts N          gzip level 0-9 (default 4)\n"
    "      --include PATH                keep only what matches, e.g. obsm/X_*\n"
    "                                    (repeatable; X and raw are always kept)\n"
    "      --categorical-columns GLOB    obs/var columns to store as categoricals\n"
    "                                    (repeatable; default kmeans_*)\n"
    "      --no-strings-to-categoricals  keep string columns as strings\n"
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

static int export_job(pipe_job *j, const char *out, bool timings, double t0, double t1);

static bool h5_named(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot && (!strcasecmp(dot, ".h5ad") || !strcasecmp(dot, ".h5"));
}

/* What INPUT is. The HDF5 signature marks an h5ad file (at 0 or, after a
 * user block, at 512, 1024, 2048, ... as the HDF5 format allows), so an
 * h5ad without extension still works; a file named *.h5ad / *.h5 without
 * one is an h5ad too, so that its error says "not an HDF5 file" rather
 * than "malformed JSON". */
static int classify_input(const char *path, pipe_src_kind *kind)
{
    if (!strcmp(path, "-")) {
        *kind = PIPE_SRC_REQUEST;
        return 0;
    }
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (S_ISDIR(st.st_mode)) {
        *kind = PIPE_SRC_POLIS;
        return 0;
    }
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    *kind = h5_named(path) ? PIPE_SRC_H5AD : PIPE_SRC_REQUEST;
    for (off_t at = 0; at + 8 <= st.st_size; at = at ? at * 2 : 512) {
        unsigned char head[8];
        if (pread(fd, head, sizeof head, at) != (ssize_t)sizeof head) break;
        if (!memcmp(head, sig, sizeof sig)) {
            *kind = PIPE_SRC_H5AD;
            break;
        }
        /* A request is JSON from its first byte; only HDF5 has user blocks. */
        if (at == 0 && (head[0] == '{' || head[0] == ' ' || head[0] == '\n' || head[0] == '\t' ||
                        head[0] == '\r' || head[0] == 0xEF))
            break;
    }
    close(fd);
    return 0;
}

/* Appends `v` to the array member `key` of `o`, creating it. */
static int push_str(json_t *o, const char *key, const char *v)
{
    json_t *a = json_object_get(o, key);
    if (!a) {
        a = json_array();
        if (json_object_set_new(o, key, a)) return -1;
    }
    return json_array_append_new(a, json_string(v));
}

static int cmd_export(int argc, char **argv)
{
    const char *req_path = NULL, *out = NULL, *data_dir = NULL;
    bool timings = false;
    /* --part NAME=FILE: NAME is cut out of argv in place. */
    pipe_part_file *parts = calloc((size_t)argc, sizeof *parts);
    size_t n_parts = 0;
    /* The file options as a request document would carry them; the first
     * one seen is remembered to name it when it is misplaced. */
    json_t *opts = json_object();
    const char *first_file_opt = NULL;
    int rc = 2;
    if (!opts || !parts) {
        fprintf(stderr, "anndata-exportd: out of memory\n");
        json_decref(opts);
        free(parts);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* --name=value and --name value alike. */
        const char *eq = !strncmp(a, "--", 2) ? strchr(a, '=') : NULL;
        char name[64];
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
        const char *val = eq ? eq + 1 : NULL;
#define TAKE_VALUE()                                                                               \
    do {                                                                                           \
        if (!val) {                                                                                \
            if (i + 1 >= argc) {                                                                   \
                rc = bad_usage("%s needs a value", name);                                          \
                goto done;                                                                         \
            }                                                                                      \
            val = argv[++i];                                                                       \
        }                                                                                          \
    } while (0)
        if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
            usage(stdout);
            rc = 0;
            goto done;
        } else if (!strcmp(name, "-o") || !strcmp(name, "--output")) {
            TAKE_VALUE();
            out = val;
        } else if (!strcmp(name, "--timings") && !val) {
            timings = true;
        } else if (!strcmp(name, "--part")) {
            TAKE_VALUE();
            char *peq = strchr(val, '=');
            if (!peq || peq == val || !peq[1]) {
                rc = bad_usage("--part takes NAME=FILE, got '%s'", val);
                goto done;
            }
            *peq = '\0';
            parts[n_parts++] = (pipe_part_file){.name = val, .path = peq + 1};
        } else if (!strcmp(name, "--data-dir")) {
            TAKE_VALUE();
            data_dir = val;
        } else if (!strcmp(name, "--format") || !strcmp(name, "--filename") ||
                   !strcmp(name, "--compression")) {
            TAKE_VALUE();
            if (!first_file_opt) first_file_opt = a;
            /* "none" is what req_parse reads as no compression, too. */
            json_object_set_new(opts, name + 2, json_string(val));
        } else if (!strcmp(name, "--compression-opts")) {
            TAKE_VALUE();
            char *end;
            errno = 0;
            long lv = strtol(val, &end, 10);
            if (!*val || *end || errno) {
                rc = bad_usage("--compression-opts takes an integer, got '%s'", val);
                goto done;
            }
            if (!first_file_opt) first_file_opt = a;
            json_object_set_new(opts, "compression_opts", json_integer(lv));
        } else if (!strcmp(name, "--include") || !strcmp(name, "--categorical-columns")) {
            TAKE_VALUE();
            bool inc = name[2] == 'i';
            if (!first_file_opt) first_file_opt = a;
            if (push_str(opts, inc ? "include" : "categorical_columns", val)) {
                fprintf(stderr, "anndata-exportd: out of memory\n");
                rc = 1;
                goto done;
            }
        } else if (!strcmp(name, "--no-strings-to-categoricals") && !val) {
            if (!first_file_opt) first_file_opt = a;
            json_object_set_new(opts, "strings_to_categoricals", json_false());
        } else if (a[0] == '-' && a[1] != '\0') {
            rc = bad_usage("unknown option for export: %s", a);
            goto done;
        } else if (!req_path) {
            req_path = a;
        } else {
            rc = bad_usage("export takes one input, got another: %s", a);
            goto done;
        }
#undef TAKE_VALUE
    }
    if (!req_path) {
        rc = bad_usage("%s", "export needs an input: a request JSON ('-' for stdin), an h5ad "
                             "file or a Polis folder");
        goto done;
    }
    if (out && !*out) {
        rc = bad_usage("%s", "the output path must not be empty");
        goto done;
    }
    pipe_src_kind kind;
    if (classify_input(req_path, &kind) != 0) {
        /* Unreadable input is an I/O error (exit 1), as for any request. */
        adx_err ierr;
        adx_err_init(&ierr);
        adx_err_set(&ierr, ADX_E_IO, "", "cannot read the input: %s", strerror(errno));
        rc = report_error(&ierr);
        goto done;
    }
    if (kind != PIPE_SRC_REQUEST && n_parts) {
        fprintf(stderr,
                "anndata-exportd: --part applies to a request JSON that references parts; %s is "
                "an h5ad file or a folder\n",
                req_path);
        rc = 2;
        goto done;
    }
    if (kind == PIPE_SRC_REQUEST && first_file_opt) {
        fprintf(stderr,
                "anndata-exportd: %s applies to an h5ad file or a Polis folder; %s is a request "
                "JSON, which carries its own options (put them in the request)\n",
                first_file_opt, req_path);
        rc = 2;
        goto done;
    }
    if (!data_dir) {
        const char *e = getenv("ANNDATA_EXPORTD_DATA_DIR");
        if (e && *e) data_dir = e;
    }

    adx_limits lim;
    adx_limits_default(&lim);
    adx_err err;
    adx_err_init(&err);
    ds_store *store = NULL;
    /* Only a request can name a dataset; a file input never opens the
     * store. The directory must exist: ds_open would create it, which a
     * typo in a command line should not do. */
    if (kind == PIPE_SRC_REQUEST && data_dir) {
        struct stat st;
        if (stat(data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "anndata-exportd: the data directory %s does not exist\n", data_dir);
            rc = 2;
            goto done;
        }
        store = ds_open(data_dir, &lim, NULL, &err);
        if (!store) {
            rc = report_error(&err);
            goto done;
        }
    }
    pipe_env env = {.store = store};
    double t0 = now_s();
    pipe_job *j = NULL;
    /* No adx-h5check for an h5ad: the file is the user's own and a crash of
     * libhdf5 ends only this command, which is all the helper would
     * prevent; finding the helper would mean guessing install layouts. */
    pipe_source src = {.kind = kind, .path = req_path, .parts = parts, .n_parts = n_parts};
    if (kind != PIPE_SRC_REQUEST) src.options = opts;
    j = pipe_open(&src, &lim, &env, &err);
    if (!j && !store && err.type == ADX_E_BAD_OPTION && err.n_items > 0 &&
        !strcmp(err.items[0].pointer, "/dataset"))
        adx_err_add(&err, "/dataset",
                    "the request names a stored dataset: give --data-dir DIR or set "
                    "ANNDATA_EXPORTD_DATA_DIR");
    if (!j) {
        ds_close(store);
        rc = report_error(&err);
        goto done;
    }
    double t1 = now_s();
    rc = export_job(j, out, timings, t0, t1);
    ds_close(store);
done:
    json_decref(opts);
    free(parts);
    return rc;
}

static int export_job(pipe_job *j, const char *out, bool timings, double t0, double t1)
{
    adx_err err;
    adx_err_init(&err);
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
