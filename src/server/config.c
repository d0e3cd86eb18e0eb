/* Config loading for `serve` (see adx_srv_config.h). */
#include "adx_srv_config.h"

#include "adx_afile.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (1u << 20)

static const char *env_default(const char *k)
{
    return getenv(k);
}

void srv_config_defaults(srv_config *c, const char *(*getenv_fn)(const char *))
{
    memset(c, 0, sizeof *c);
    if (!getenv_fn) getenv_fn = env_default;
    snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
    c->listen_port = 8080;
    /* Twice the two cores of a small machine: a small job's worker waits
     * about half its time (fsyncs, its turn at libhdf5, which runs one write
     * at a time), and another job's decode or compression fills that time
     * (bench/bench_small.py, 32 clients posting the fixture conversation on
     * 2 cores: 127/s with 2 workers, 162/s with 4). A large job's memory is
     * bounded by max_memory whatever the count. */
    c->workers = 4;
    adx_limits_default(&c->limits);
    /* A daemon should refuse a 4 GiB body unless asked: 1 GiB by default. */
    c->limits.max_body_bytes = 1ull << 30;
    c->queue_max = 64;
    c->max_connections = 256;
    c->connection_timeout = 60;
    c->max_connections_per_ip = 64;
    c->header_timeout = 10;
    c->body_timeout = 3600;
    c->max_waiting = 128;
    c->max_spool_bytes = 8ull << 30;
    /* Fixed rather than derived from the machine's RAM, so the defaults
     * (and the config file documenting them) hold everywhere. */
    c->max_memory = 16ull << 30;
    c->job_timeout = 3600;
    c->result_ttl = 3600;
    c->shutdown_grace = 30;
    c->wait_max = 300;
    c->cors_max_age = 600;
    c->log_format = SRV_LOG_JSON;
    const char *sd = getenv_fn("STATE_DIRECTORY"); /* systemd StateDirectory= */
    const char *xdg = getenv_fn("XDG_STATE_HOME");
    if (sd && *sd) {
        /* systemd may pass several colon-separated directories; use the first. */
        size_t n = strcspn(sd, ":");
        snprintf(c->spool_dir, sizeof c->spool_dir, "%.*s", (int)n, sd);
    } else if (xdg && *xdg) {
        snprintf(c->spool_dir, sizeof c->spool_dir, "%s/anndata-exportd", xdg);
    } else {
        const char *tmp = getenv_fn("TMPDIR");
        snprintf(c->spool_dir, sizeof c->spool_dir, "%s/anndata-exportd-%u",
                 tmp && *tmp ? tmp : P_tmpdir, (unsigned)getuid());
    }
    /* data_dir and h5check stay empty: both are resolved at start, the
     * data directory from the final spool_dir (which a later file, variable
     * or flag may still change). */
}

static int parse_u64(const char *v, uint64_t *out)
{
    if (!v || !*v || *v == '-' || isspace((unsigned char)*v)) return -1;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v) return -1;
    *out = x;
    return (int)(end - v);
}

static int parse_size(const char *v, uint64_t *out)
{
    uint64_t x;
    int n = parse_u64(v, &x);
    if (n < 0) return -1;
    const char *s = v + n;
    unsigned shift = 0;
    switch (toupper((unsigned char)*s)) {
    case '\0':
        break;
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    default:
        return -1;
    }
    if (*s) {
        s++;
        if (toupper((unsigned char)*s) == 'I') s++;
        if (toupper((unsigned char)*s) == 'B') s++;
        if (*s) return -1;
    }
    if (shift && x > (UINT64_MAX >> shift)) return -1;
    *out = x << shift;
    return 0;
}

static int parse_duration(const char *v, uint64_t *out)
{
    uint64_t x;
    int n = parse_u64(v, &x);
    if (n < 0) return -1;
    const char *s = v + n;
    uint64_t mul = 1;
    if (*s) {
        switch (*s) {
        case 's':
            mul = 1;
            break;
        case 'm':
            mul = 60;
            break;
        case 'h':
            mul = 3600;
            break;
        case 'd':
            mul = 86400;
            break;
        default:
            return -1;
        }
        if (s[1]) return -1;
    }
    if (__builtin_mul_overflow(x, mul, out)) return -1;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *v)
{
    size_t n = strlen(v);
    if (n >= cap) return -1;
    memcpy(dst, v, n + 1);
    return 0;
}

typedef enum { K_SIZE, K_U32, K_DUR, K_STR, K_SPECIAL } kind;
typedef struct {
    const char *name;
    kind k;
    size_t off; /* into srv_config */
    size_t width;
    uint64_t min, max;
} keydef;

#define OFF(f) offsetof(srv_config, f)
#define LIM(f) (offsetof(srv_config, limits) + offsetof(adx_limits, f))
static const keydef keys[] = {
    {"listen", K_SPECIAL, 0, 0, 0, 0},
    {"log_format", K_SPECIAL, 0, 0, 0, 0},
    {"workers", K_U32, OFF(workers), 4, 1, 256},
    {"spool_dir", K_STR, OFF(spool_dir), PATH_MAX, 0, 0},
    {"data_dir", K_STR, OFF(data_dir), PATH_MAX, 0, 0},
    {"h5check", K_STR, OFF(h5check), PATH_MAX, 0, 0},
    {"max_body_bytes", K_SIZE, LIM(max_body_bytes), 8, 1, UINT64_MAX},
    {"max_elements", K_SIZE, LIM(max_elements), 8, 1, UINT64_MAX},
    {"max_dim", K_SIZE, LIM(max_dim), 8, 1, UINT64_MAX},
    {"max_total_bytes", K_SIZE, LIM(max_total_bytes), 8, 1, UINT64_MAX},
    {"max_ndim", K_U32, LIM(max_ndim), 4, 1, 32},
    {"max_depth", K_U32, LIM(max_depth), 4, 1, 100000},
    {"max_string_bytes", K_SIZE, LIM(max_string_bytes), 8, 1, UINT64_MAX},
    {"max_keys", K_SIZE, LIM(max_keys), 8, 1, UINT64_MAX},
    {"csv_max_cells", K_SIZE, LIM(csv_max_cells), 8, 0, UINT64_MAX},
    {"max_request_memory", K_SIZE, LIM(max_request_memory), 8, 1, UINT64_MAX},
    {"max_key_bytes", K_SIZE, LIM(max_key_bytes), 8, 1, UINT64_MAX},
    {"max_patterns", K_SIZE, LIM(max_patterns), 8, 1, UINT64_MAX},
    {"max_pattern_bytes", K_SIZE, LIM(max_pattern_bytes), 8, 1, UINT64_MAX},
    {"max_include_tests", K_SIZE, LIM(max_include_tests), 8, 1, UINT64_MAX},
    {"max_parts", K_SIZE, LIM(max_parts), 8, 1, UINT64_MAX},
    {"max_part_header_bytes", K_SIZE, LIM(max_part_header_bytes), 8, 256, 16ull << 20},
    {"queue_max", K_U32, OFF(queue_max), 4, 1, 1000000},
    {"max_connections", K_U32, OFF(max_connections), 4, 4, 1000000},
    {"connection_timeout", K_U32, OFF(connection_timeout), 4, 1, 86400},
    {"max_connections_per_ip", K_U32, OFF(max_connections_per_ip), 4, 1, 1000000},
    {"header_timeout", K_DUR, OFF(header_timeout), 8, 1, 86400},
    {"body_timeout", K_DUR, OFF(body_timeout), 8, 1, 7 * 86400},
    {"max_waiting", K_U32, OFF(max_waiting), 4, 1, 1000000},
    {"max_memory", K_SIZE, OFF(max_memory), 8, 1, UINT64_MAX},
    {"max_spool_bytes", K_SIZE, OFF(max_spool_bytes), 8, 0, UINT64_MAX},
    {"job_timeout", K_DUR, OFF(job_timeout), 8, 0, 365ull * 86400},
    {"result_ttl", K_DUR, OFF(result_ttl), 8, 1, 365ull * 86400},
    {"shutdown_grace", K_DUR, OFF(shutdown_grace), 8, 0, 86400},
    {"wait_max", K_DUR, OFF(wait_max), 8, 0, 86400},
    {"cors_max_age", K_U32, OFF(cors_max_age), 4, 0, 86400},
    {"tokens_file", K_STR, OFF(tokens_file), PATH_MAX, 0, 0},
    {"cors_origins", K_STR, OFF(cors_origins), 4096, 0, 0},
    {"trusted_proxies", K_STR, OFF(trusted_proxies), 4096, 0, 0},
    {"log_file", K_STR, OFF(log_file), PATH_MAX, 0, 0},
};

/* Byte sizes print with the largest binary suffix that divides them (counts
 * as plain numbers), durations
 * with the largest unit, so the defaults read as the config file spells them. */
static void fmt_value(const keydef *k, uint64_t v, char *out, size_t cap)
{
    static const char sz[] = "KMGTPE";
    static const struct {
        uint64_t sec;
        char unit;
    } du[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}};
    if (k->k == K_SIZE && (strstr(k->name, "bytes") || strstr(k->name, "memory"))) {
        int i = -1;
        while (i < 5 && v && v % ((uint64_t)1024 << (10 * (i + 1))) == 0)
            i++;
        if (i >= 0)
            snprintf(out, cap, "%" PRIu64 "%c", v >> (10 * (i + 1)), sz[i]);
        else
            snprintf(out, cap, "%" PRIu64, v);
        return;
    }
    if (k->k == K_DUR) {
        for (size_t i = 0; i < sizeof du / sizeof du[0]; i++)
            if (v && v % du[i].sec == 0) {
                snprintf(out, cap, "%" PRIu64 "%c", v / du[i].sec, du[i].unit);
                return;
            }
        snprintf(out, cap, "%" PRIu64 "s", v);
        return;
    }
    snprintf(out, cap, "%" PRIu64, v);
}

void srv_config_print_numeric(FILE *f, const srv_config *c)
{
    int col = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const keydef *k = &keys[i];
        if (k->k != K_SIZE && k->k != K_U32 && k->k != K_DUR) continue;
        uint64_t v = 0;
        if (k->width == 4) {
            uint32_t v32;
            memcpy(&v32, (const char *)c + k->off, 4);
            v = v32;
        } else {
            memcpy(&v, (const char *)c + k->off, 8);
        }
        char flag[64], val[32], cell[100];
        size_t j = 0;
        for (; k->name[j] && j + 1 < sizeof flag; j++)
            flag[j] = k->name[j] == '_' ? '-' : k->name[j];
        flag[j] = '\0';
        fmt_value(k, v, val, sizeof val);
        int n = snprintf(cell, sizeof cell, "--%s %s", flag, val);
        if (col && col + 2 + n > 78) {
            fputc('\n', f);
            col = 0;
        }
        col += fprintf(f, "%s%s", col ? "  " : "  ", cell);
    }
    if (col) fputc('\n', f);
}

static int set_listen(srv_config *c, const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v) return -1;
    const char *host = v;
    size_t hlen = (size_t)(colon - v);
    if (host[0] == '[') { /* [::1]:8080 */
        if (hlen < 2 || host[hlen - 1] != ']') return -1;
        host++;
        hlen -= 2;
    }
    uint64_t port;
    int n = parse_u64(colon + 1, &port);
    if (n < 0 || colon[1 + n] != '\0' || port > 65535) return -1;
    if (hlen == 0 || hlen >= sizeof c->listen_host) return -1;
    memcpy(c->listen_host, host, hlen);
    c->listen_host[hlen] = '\0';
    c->listen_port = (uint16_t)port;
    return 0;
}

int srv_config_set(srv_config *c, const char *key_in, const char *value, const char *origin,
                   adx_err *err)
{
    char key[64];
    size_t kl = strlen(key_in);
    if (kl >= sizeof key) kl = sizeof key - 1;
    for (size_t i = 0; i < kl; i++)
        key[i] = key_in[i] == '-' ? '_' : (char)tolower(key_in[i]);
    key[kl] = '\0';
    char ptr[80];
    snprintf(ptr, sizeof ptr, "/%s", key);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const keydef *d = &keys[i];
        if (strcmp(d->name, key) != 0) continue;
        char *base = (char *)c;
        uint64_t x = 0;
        switch (d->k) {
        case K_SPECIAL:
            if (strcmp(key, "listen") == 0) {
                if (set_listen(c, value) == 0) return 0;
                return adx_err_set(err, ADX_E_BAD_OPTION, ptr,
                                   "%s: listen must be HOST:PORT (e.g. 127.0.0.1:8080), got '%s'",
                                   origin, value);
            }
            if (strcmp(value, "json") == 0) {
                c->log_format = SRV_LOG_JSON;
                return 0;
            }
            if (strcmp(value, "logfmt") == 0) {
                c->log_format = SRV_LOG_LOGFMT;
                return 0;
            }
            return adx_err_set(err, ADX_E_BAD_OPTION, ptr,
                               "%s: log_format must be json or logfmt, got '%s'", origin, value);
        case K_STR:
            if (copy_str(base + d->off, d->width, value) == 0) return 0;
            return adx_err_set(err, ADX_E_BAD_OPTION, ptr, "%s: %s is too long", origin, key);
        case K_SIZE:
        case K_U32:
        case K_DUR: {
            int rc;
            if (d->k == K_DUR) {
                rc = parse_duration(value, &x);
            } else if (d->k == K_SIZE) {
                rc = parse_size(value, &x);
            } else {
                int n = parse_u64(value, &x);
                rc = (n >= 0 && value[n] == '\0') ? 0 : -1;
            }
            if (rc < 0)
                return adx_err_set(err, ADX_E_BAD_OPTION, ptr, "%s: %s: '%s' is not a %s", origin,
                                   key, value,
                                   d->k == K_DUR    ? "duration (seconds, or 30s/5m/1h/1d)"
                                   : d->k == K_SIZE ? "size (bytes, or with K/M/G/T)"
                                                    : "non-negative integer");
            if (x < d->min || x > d->max)
                return adx_err_set(err, ADX_E_BAD_OPTION, ptr,
                                   "%s: %s = %llu is outside [%llu, %llu]", origin, key,
                                   (unsigned long long)x, (unsigned long long)d->min,
                                   (unsigned long long)d->max);
            if (d->width == 4) {
                uint32_t v32 = (uint32_t)x;
                memcpy(base + d->off, &v32, 4);
            } else {
                memcpy(base + d->off, &x, 8);
            }
            return 0;
        }
        }
    }
    return adx_err_set(err, ADX_E_BAD_OPTION, ptr, "%s: unknown setting '%s'", origin, key_in);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int srv_config_parse_text(srv_config *c, const char *text, const char *fname, adx_err *err)
{
    int lineno = 0;
    const char *p = text;
    while (*p) {
        lineno++;
        size_t n = strcspn(p, "\n");
        char line[8192];
        char origin[PATH_MAX + 32];
        snprintf(origin, sizeof origin, "%s:%d", fname, lineno);
        if (n >= sizeof line)
            return adx_err_set(err, ADX_E_BAD_OPTION, "", "%s: line too long", origin);
        memcpy(line, p, n);
        line[n] = '\0';
        p += n;
        if (*p == '\n') p++;
        /* '#' starts a comment only at the start of a line or after blanks,
         * so values such as URLs with fragments survive. */
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        for (char *h = s; (h = strchr(h, '#')); h++)
            if (h > s && isspace((unsigned char)h[-1])) {
                *h = '\0';
                break;
            }
        char *eq = strchr(s, '=');
        if (!eq) return adx_err_set(err, ADX_E_BAD_OPTION, "", "%s: expected key = value", origin);
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        size_t vl = strlen(v);
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v[vl - 1] = '\0';
            v++;
        }
        if (srv_config_set(c, k, v, origin, err) < 0) return -1;
    }
    return 0;
}

int srv_config_load_file(srv_config *c, const char *path, adx_err *err)
{
    size_t len;
    char *buf = afile_read_small(path, CONFIG_FILE_MAX, &len);
    if (!buf && errno == EFBIG)
        return adx_err_set(err, ADX_E_LIMIT, "", "config file %s is over 1 MiB", path);
    if (!buf && errno == ENOMEM)
        return adx_err_set(err, ADX_E_NOMEM, "", "out of memory reading %s", path);
    if (!buf)
        return adx_err_set(err, ADX_E_IO, "", "cannot open config file %s: %s", path,
                           strerror(errno));
    int rc = srv_config_parse_text(c, buf, path, err);
    free(buf);
    return rc;
}

#define ENV_PREFIX "ANNDATA_EXPORTD_"

int srv_config_apply_env(srv_config *c, char *const *envp, adx_err *err)
{
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *e = envp[i];
        if (strncmp(e, ENV_PREFIX, sizeof ENV_PREFIX - 1) != 0) continue;
        const char *k = e + sizeof ENV_PREFIX - 1;
        const char *eq = strchr(k, '=');
        if (!eq || eq == k || (size_t)(eq - k) >= 64) continue;
        char key[64], origin[96];
        memcpy(key, k, (size_t)(eq - k));
        key[eq - k] = '\0';
        snprintf(origin, sizeof origin, ENV_PREFIX "%s", key);
        if (srv_config_set(c, key, eq + 1, origin, err) < 0) return -1;
    }
    return 0;
}

int srv_config_from_args(srv_config *c, int argc, char **argv, char *const *envp, const char **what,
                         adx_err *err)
{
    const char *cfg = NULL;
    *what = NULL;
    /* First pass: only what decides the later passes. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *what = "help";
            return 1;
        }
        if (strcmp(argv[i], "--version") == 0) {
            *what = "version";
            return 1;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) cfg = argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0) cfg = argv[i] + 9;
    }
    if (cfg && srv_config_load_file(c, cfg, err) < 0) return -1;
    if (srv_config_apply_env(c, envp, err) < 0) return -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return adx_err_set(err, ADX_E_BAD_OPTION, "", "unexpected argument '%s'", a);
        char key[64];
        const char *val;
        const char *eq = strchr(a + 2, '=');
        size_t kl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (kl == 0 || kl >= sizeof key)
            return adx_err_set(err, ADX_E_BAD_OPTION, "", "unknown flag '%s'", a);
        memcpy(key, a + 2, kl);
        key[kl] = '\0';
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc)
                return adx_err_set(err, ADX_E_BAD_OPTION, "", "flag %s needs a value", a);
            val = argv[++i];
        }
        if (strcmp(key, "config") == 0) continue;
        char origin[80];
        snprintf(origin, sizeof origin, "--%s", key);
        if (srv_config_set(c, key, val, origin, err) < 0) return -1;
    }
    return 0;
}

bool srv_config_origin_allowed(const srv_config *c, const char *origin)
{
    if (!origin || !*origin) return false;
    size_t ol = strlen(origin);
    const char *p = c->cors_origins;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, ", \t");
        if (n == 1 && *p == '*') return true;
        if (n && n == ol && strncasecmp(p, origin, n) == 0) return true;
        p += n;
    }
    return false;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0) return false;
    if (!rest) return true;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

bool srv_config_proxy_trusted(const srv_config *c, const struct sockaddr *sa)
{
    if (!sa) return false;
    uint8_t peer[16];
    int fam = sa->sa_family;
    if (fam == AF_INET) {
        memcpy(peer, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (fam == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            fam = AF_INET;
            memcpy(peer, (const uint8_t *)a6 + 12, 4);
        } else {
            memcpy(peer, a6, 16);
        }
    } else {
        return false;
    }
    const char *p = c->trusted_proxies;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, ", \t");
        char item[64];
        if (n && n < sizeof item) {
            memcpy(item, p, n);
            item[n] = '\0';
            char *slash = strchr(item, '/');
            long bits = -1;
            if (slash) {
                *slash = '\0';
                char *end;
                bits = strtol(slash + 1, &end, 10);
                if (*end || bits < 0) bits = -2;
            }
            uint8_t net[16];
            if (bits != -2 && fam == AF_INET && inet_pton(AF_INET, item, net) == 1) {
                if (bits < 0 || bits > 32) bits = bits < 0 ? 32 : -2;
                if (bits >= 0 && prefix_match(peer, net, (unsigned)bits)) return true;
            } else if (bits != -2 && fam == AF_INET6 && inet_pton(AF_INET6, item, net) == 1) {
                if (bits < 0 || bits > 128) bits = bits < 0 ? 128 : -2;
                if (bits >= 0 && prefix_match(peer, net, (unsigned)bits)) return true;
            }
        }
        p += n;
    }
    return false;
}
