/* anndata-exportd — the command line: one-shot `export` and the `serve`
 * daemon. Exit codes: 0 success, 1 internal or I/O failure, 2 bad input or
 * bad usage (the problem+json on stderr says which). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <jansson.h>
#include <uv.h>

#include "adx_common.h"
#include "adx_config_build.h"
#include "adx_datasets.h"
#include "adx_afile.h"
#include "adx_err.h"
#include "adx_h5r.h"
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
    "          it from stdin; its options travel inside it; gzip-compressed\n"
    "          (REQ.json.gz) is recognised by its magic bytes;\n"
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
    printf("libmicrohttpd %s\n", srv_mhd_version());
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
    /* The cause names this machine's paths and the system's words: the
     * user's own, so the CLI shows them after the problem document. */
    if (e->cause[0]) fprintf(stderr, "anndata-exportd: cause: %s\n", e->cause);
    free(s);
    json_decref(p);
    return exit_code_for(e);
}

static int copy_to_stdout(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = afile_copy_fd(fd, 1, NULL);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
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
        /* A request is JSON (or gzip, 1f 8b) from its first byte; only
         * HDF5 has user blocks. */
        if (at == 0 && (head[0] == '{' || head[0] == ' ' || head[0] == '\n' || head[0] == '\t' ||
                        head[0] == '\r' || head[0] == 0xEF || (head[0] == 0x1f && head[1] == 0x8b)))
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

/* `export`'s command line. */
typedef struct export_args {
    const char *input, *out, *data_dir;
    bool timings;
    /* The file options as a request document would carry them; the first
     * one seen is remembered to name it when it is misplaced. */
    json_t *opts;
    const char *first_file_opt;
    pipe_part_file *parts; /* --part NAME=FILE (NAME cut out of argv in place) */
    size_t n_parts;
} export_args;

/* Returns -1 when the export goes on, else the exit status (help, a usage
 * error, no memory). */
static int export_parse_args(int argc, char **argv, export_args *ea)
{
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
            if (i + 1 >= argc) return bad_usage("%s needs a value", name);                         \
            val = argv[++i];                                                                       \
        }                                                                                          \
    } while (0)
        if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(name, "-o") || !strcmp(name, "--output")) {
            TAKE_VALUE();
            ea->out = val;
        } else if (!strcmp(name, "--timings") && !val) {
            ea->timings = true;
        } else if (!strcmp(name, "--part")) {
            TAKE_VALUE();
            char *peq = strchr(val, '=');
            if (!peq || peq == val || !peq[1])
                return bad_usage("--part takes NAME=FILE, got '%s'", val);
            *peq = '\0';
            ea->parts[ea->n_parts++] = (pipe_part_file){.name = val, .path = peq + 1};
        } else if (!strcmp(name, "--data-dir")) {
            TAKE_VALUE();
            ea->data_dir = val;
        } else if (!strcmp(name, "--format") || !strcmp(name, "--filename") ||
                   !strcmp(name, "--compression")) {
            TAKE_VALUE();
            if (!ea->first_file_opt) ea->first_file_opt = a;
            /* "none" is what req_parse reads as no compression, too. */
            json_object_set_new(ea->opts, name + 2, json_string(val));
        } else if (!strcmp(name, "--compression-opts")) {
            TAKE_VALUE();
            char *end;
            errno = 0;
            long lv = strtol(val, &end, 10);
            if (!*val || *end || errno)
                return bad_usage("--compression-opts takes an integer, got '%s'", val);
            if (!ea->first_file_opt) ea->first_file_opt = a;
            json_object_set_new(ea->opts, "compression_opts", json_integer(lv));
        } else if (!strcmp(name, "--include") || !strcmp(name, "--categorical-columns")) {
            TAKE_VALUE();
            bool inc = name[2] == 'i';
            if (!ea->first_file_opt) ea->first_file_opt = a;
            if (push_str(ea->opts, inc ? "include" : "categorical_columns", val)) {
                fprintf(stderr, "anndata-exportd: out of memory\n");
                return 1;
            }
        } else if (!strcmp(name, "--no-strings-to-categoricals") && !val) {
            if (!ea->first_file_opt) ea->first_file_opt = a;
            json_object_set_new(ea->opts, "strings_to_categoricals", json_false());
        } else if (a[0] == '-' && a[1] != '\0') {
            return bad_usage("unknown option for export: %s", a);
        } else if (!ea->input) {
            ea->input = a;
        } else {
            return bad_usage("export takes one input, got another: %s", a);
        }
#undef TAKE_VALUE
    }
    if (!ea->input)
        return bad_usage("%s", "export needs an input: a request JSON ('-' for stdin), an h5ad "
                               "file or a Polis folder");
    if (ea->out && !*ea->out) return bad_usage("%s", "the output path must not be empty");
    return -1;
}

/* The data directory a request may name a dataset in. Only a request can;
 * a file input never opens the store. The directory must exist: ds_open
 * would create it, which a typo in a command line should not do. Returns
 * -1 when the export goes on (*store may stay NULL), else the exit status. */
static int export_open_store(const export_args *ea, const adx_limits *lim, ds_store **store)
{
    *store = NULL;
    const char *dir = ea->data_dir;
    if (!dir) {
        const char *e = getenv("ANNDATA_EXPORTD_DATA_DIR");
        if (e && *e) dir = e;
    }
    if (!dir) return -1;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "anndata-exportd: the data directory %s does not exist\n", dir);
        return 2;
    }
    adx_err err;
    adx_err_init(&err);
    *store = ds_open(dir, lim, NULL, &err);
    return *store ? -1 : report_error(&err);
}

static int export_run(const export_args *ea)
{
    pipe_src_kind kind;
    if (classify_input(ea->input, &kind) != 0) {
        /* Unreadable input is an I/O error (exit 1), as for any request. */
        adx_err ierr;
        adx_err_init(&ierr);
        adx_err_cause(&ierr, "%s: %s", ea->input, strerror(errno));
        adx_err_set(&ierr, ADX_E_IO, "", "cannot read the input");
        return report_error(&ierr);
    }
    if (kind != PIPE_SRC_REQUEST && ea->n_parts) {
        fprintf(stderr,
                "anndata-exportd: --part applies to a request JSON that references parts; %s is "
                "an h5ad file or a folder\n",
                ea->input);
        return 2;
    }
    if (kind == PIPE_SRC_REQUEST && ea->first_file_opt) {
        fprintf(stderr,
                "anndata-exportd: %s applies to an h5ad file or a Polis folder; %s is a request "
                "JSON, which carries its own options (put them in the request)\n",
                ea->first_file_opt, ea->input);
        return 2;
    }
    adx_limits lim;
    adx_limits_default(&lim);
    ds_store *store = NULL;
    int rc = kind == PIPE_SRC_REQUEST ? export_open_store(ea, &lim, &store) : -1;
    if (rc >= 0) return rc;
    adx_err err;
    adx_err_init(&err);
    pipe_env env = {.store = store};
    double t0 = adx_mono_s();
    pipe_job *j = NULL;
    /* An h5ad is read by the adx-h5check helper first, as the daemon reads
     * uploads: a corrupt file that crashes libhdf5 (fuzzing finds such
     * global-heap reads) is then a 400, not this command dying by a signal.
     * It costs one more read of the file; where the helper is not
     * installed the file is read in-process only. */
    char helper[PATH_MAX], looked[3 * PATH_MAX + 200];
    bool checked =
        kind == PIPE_SRC_H5AD && h5r_find_helper(helper, sizeof helper, looked, sizeof looked) == 0;
    pipe_source src = {.kind = kind,
                       .path = ea->input,
                       .parts = ea->parts,
                       .n_parts = ea->n_parts,
                       .h5check = checked ? helper : NULL};
    if (kind != PIPE_SRC_REQUEST) src.options = ea->opts;
    j = pipe_open(&src, &lim, &env, &err);
    if (!j && !store && err.type == ADX_E_BAD_OPTION && err.n_items > 0 &&
        !strcmp(err.items[0].pointer, "/dataset"))
        adx_err_add(&err, "/dataset",
                    "the request names a stored dataset: give --data-dir DIR or set "
                    "ANNDATA_EXPORTD_DATA_DIR");
    if (!j)
        rc = report_error(&err);
    else
        rc = export_job(j, ea->out, ea->timings, t0, adx_mono_s());
    ds_close(store);
    return rc;
}

/* Page faults are most of a small job's cost where a fault is dear (on a
 * paravirtualized VM one costs ~20 us): with glibc's defaults the heap grows
 * 128 KiB at a time, blocks over 128 KiB are mmapped and unmapped again at
 * every job, and each 4 KiB page is faulted in on its own.
 *
 * An export is one job per process (the fixture conversation took ~1,500
 * faults, a third of its CPU): one heap of 30 MiB is reserved up front,
 * starting on a 2 MiB boundary, kept when freed and advised to transparent
 * huge pages before anything touches it, so it is faulted in 2 MiB steps
 * instead (the fixture: ~190 faults, most of them the loader's). The
 * daemon runs job after job: blocks up to 4 MiB stay in its arenas to be
 * reused by the next job and each arena keeps up to 32 MiB when free; no
 * huge pages, so an idle daemon still gives back the rest.
 *
 * glibc serves a block of any size from the free top of the heap when it
 * fits; the top pad stays at its default, so a block that grows past what
 * the top holds moves once to a mapping of its own (over the mmap
 * threshold), and from then on realloc grows it with mremap, without a
 * copy (adx_mem_grow; the decoder's value stack grows in steps). Best
 * effort: under a sanitizer's allocator brk does not move and
 * nothing is advised. */
static void tune_malloc(bool one_shot)
{
    enum { MiB = 1 << 20, HUGE = 2 * MiB };
    if (!one_shot) {
        mallopt(M_MMAP_THRESHOLD, 4 * MiB);
        mallopt(M_TRIM_THRESHOLD, 32 * MiB);
        return;
    }
    /* glibc's chunks: a 16-byte header (prev_size, size) before each block,
     * the free top of the heap one more chunk. The top starts wherever
     * start-up left it; below the next 2 MiB boundary only 4 KiB pages can
     * back it (the fixture's first blocks took ~200 faults there), so a
     * block that is never freed fills that part, and the top's header
     * lands just below the boundary. */
    enum { HDR = 2 * sizeof(size_t) };
    if (!mallopt(M_MMAP_THRESHOLD, 32 * MiB) || !mallopt(M_TRIM_THRESHOLD, 40 * MiB)) return;
    void *volatile first = malloc(1); /* the heap exists from its first block on */
    free(first);
    uintptr_t brk0 = (uintptr_t)sbrk(0), top = brk0 - mallinfo2().keepcost;
    uintptr_t edge = (top + 4096 + HDR + HUGE - 1) & ~(uintptr_t)(HUGE - 1);
    static void *filler; /* kept: freed, it would be the job's first block */
    filler = brk0 != (uintptr_t)-1 ? malloc(edge - HDR - top - sizeof(size_t)) : NULL;
    /* Anything but a block carved from the top (a sanitizer's allocator,
     * another malloc) leaves the heap to its defaults. */
    if (!filler || (uintptr_t)filler != top + HDR) {
        mallopt(M_MMAP_THRESHOLD, 1 * MiB);
        return;
    }
    /* The reservation: brk moves 30 MiB and more at once; glibc writes only
     * the headers at its two ends, so the pages between are still
     * untouched when they are advised to huge pages. */
    void *volatile p = malloc(30 * MiB);
    uintptr_t hi = (uintptr_t)sbrk(0) & ~(uintptr_t)(HUGE - 1);
    if (p && hi != ((uintptr_t)-1 & ~(uintptr_t)(HUGE - 1)) && hi > edge)
        (void)madvise((void *)edge, hi - edge, MADV_HUGEPAGE);
    free(p);
    mallopt(M_MMAP_THRESHOLD, 1 * MiB);
}

static int cmd_export(int argc, char **argv)
{
    tune_malloc(true);
    export_args ea = {.opts = json_object(), .parts = calloc((size_t)argc, sizeof(pipe_part_file))};
    if (!ea.opts || !ea.parts) {
        fprintf(stderr, "anndata-exportd: out of memory\n");
        json_decref(ea.opts);
        free(ea.parts);
        return 1;
    }
    int rc = export_parse_args(argc, argv, &ea);
    if (rc < 0) rc = export_run(&ea);
    json_decref(ea.opts);
    free(ea.parts);
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
    double t2 = adx_mono_s();

    bool to_stdout = out && !strcmp(out, "-");
    char *path = NULL;
    char tmpdir[4096] = "";
    if (to_stdout) {
        /* Writers need a seekable file; stream it once it is complete. */
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/anndata-exportd.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmpdir)) {
            adx_err_cause(&err, "%s: %s", tmpdir, strerror(errno));
            adx_err_set(&err, ADX_E_IO, "", "cannot create a temporary directory");
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

    double t3 = adx_mono_s();
    int rc = pipe_write(j, path, NULL, &err);
    double t4 = adx_mono_s();
    if (rc == 0 && to_stdout && copy_to_stdout(path) != 0) {
        adx_err_cause(&err, "stdout: %s", strerror(errno));
        rc = adx_err_set(&err, ADX_E_IO, "", "cannot write the file to stdout");
    }
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
    double writer_s = 0, commit_s = 0;
    if (res && timings && pipe_write_times(j, &writer_s, &commit_s) == 0)
        json_object_set_new(res, "timings",
                            json_pack("{s:f, s:f, s:f, s:f, s:f}", "load_s", t1 - t0, "prepare_s",
                                      t2 - t1, "write_s", t4 - t3, "writer_s", writer_s, "commit_s",
                                      commit_s));
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
    (void)H5dont_atexit(); /* closed below, when it is safe to */
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
        tune_malloc(false);
        rc = srv_main(argc - 1, argv + 1);
    } else if (!strcmp(argv[1], "healthcheck")) {
        rc = ntf_healthcheck_main(argc - 1, argv + 1);
    } else {
        rc = bad_usage(argv[1][0] == '-' ? "unknown option: %s" : "unknown command: %s", argv[1]);
    }
    /* HDF5 keeps global state until told otherwise; releasing it keeps
     * LeakSanitizer's report about our own allocations. After a failure
     * it is left to the exit: closing a library that a corrupt file left
     * with objects it cannot close prints its own lines after the
     * problem+json on stderr, which must be that document alone. */
    if (rc == 0) H5close();
    if (fflush(stdout) != 0 && rc == 0) rc = 1;
    return rc;
}
