/* adx_srv_config (prefix srv_config_) — settings of `anndata-exportd serve`.
 *
 * Precedence, lowest first: built-in defaults, the config file (--config
 * FILE, `key = value` lines, '#' comments), ANNDATA_EXPORTD_<KEY>
 * environment variables (KEY upper-cased, e.g. ANNDATA_EXPORTD_QUEUE_MAX),
 * then command-line flags (--key VALUE or --key=VALUE, '-' and '_'
 * interchangeable). config/anndata-exportd.conf documents every key.
 *
 * Errors fill an adx_err (pointer "/<key>", message naming the source: file
 * and line, variable, or flag). Nothing here allocates or prints.
 */
#ifndef ADX_SRV_CONFIG_H
#define ADX_SRV_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "adx_common.h"
#include "adx_err.h"

typedef enum srv_log_format { SRV_LOG_JSON = 0, SRV_LOG_LOGFMT } srv_log_format;

typedef struct srv_config {
    char listen_host[256];
    uint16_t listen_port;
    unsigned workers;
    char spool_dir[PATH_MAX];
    char data_dir[PATH_MAX]; /* "" = <spool_dir>/datasets, seeded with the bundled example */
    char h5check[PATH_MAX];  /* adx-h5check helper; "" = looked up at start */
    adx_limits limits;
    unsigned queue_max;              /* jobs waiting for a worker (429 beyond) */
    unsigned max_connections;        /* MHD_OPTION_CONNECTION_LIMIT */
    unsigned connection_timeout;     /* seconds of inactivity before a close */
    unsigned max_connections_per_ip; /* MHD_OPTION_PER_IP_CONNECTION_LIMIT */
    uint64_t header_timeout;         /* seconds to receive a request's headers */
    uint64_t body_timeout;           /* seconds to receive an upload body */
    unsigned max_waiting;            /* ?wait requests in progress at once (429 beyond) */
    uint64_t max_memory;             /* estimated memory of running jobs together */
    uint64_t max_spool_bytes;        /* spool quota: uploads, kept requests, results; 0 none */
    uint64_t job_timeout;            /* seconds a job may run; 0 none */
    uint64_t result_ttl;             /* seconds a finished job and its file live */
    uint64_t shutdown_grace;         /* seconds running jobs get on SIGTERM */
    uint64_t wait_max;               /* cap of ?wait=SECONDS */
    unsigned cors_max_age;           /* seconds a preflight may be cached */
    char tokens_file[PATH_MAX];      /* "" = no authentication */
    char cors_origins[4096];         /* comma-separated origins, "*" for any; "" none */
    char trusted_proxies[4096];      /* comma-separated addresses or CIDRs */
    srv_log_format log_format;
    char log_file[PATH_MAX]; /* "" = standard error */
} srv_config;

/* Defaults; the spool directory comes from `getenv_fn` (STATE_DIRECTORY,
 * XDG_STATE_HOME, else the temp dir + uid) so tests can inject it. */
void srv_config_defaults(srv_config *c, const char *(*getenv_fn)(const char *));
/* One setting by name (e.g. "max_body_bytes"). Sizes accept K/M/G/T binary
 * suffixes; durations are seconds with optional s/m/h/d suffix. `origin`
 * names the source for messages ("file.conf:12", "--workers"). */
int srv_config_set(srv_config *c, const char *key, const char *value, const char *origin,
                   adx_err *err);
/* Parse a whole config file's text (NUL-terminated). */
int srv_config_parse_text(srv_config *c, const char *text, const char *fname, adx_err *err);
/* Every numeric setting as its flag with the value `c` holds (the defaults
 * for `serve --help`), wrapped at 78 columns. */
void srv_config_print_numeric(FILE *f, const srv_config *c);
int srv_config_load_file(srv_config *c, const char *path, adx_err *err);
/* Apply ANNDATA_EXPORTD_* entries of a NULL-terminated environ array. */
int srv_config_apply_env(srv_config *c, char *const *envp, adx_err *err);

/* The whole precedence chain for `serve` argv (argv[0] = "serve").
 * Returns 0 to run, 1 when --help or --version was asked (*what = "help" or
 * "version"), -1 on error. */
int srv_config_from_args(srv_config *c, int argc, char **argv, char *const *envp, const char **what,
                         adx_err *err);

/* Policy helpers used per request. */
bool srv_config_origin_allowed(const srv_config *c, const char *origin);
bool srv_config_proxy_trusted(const srv_config *c, const struct sockaddr *sa);

#endif
