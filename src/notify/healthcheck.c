/* `anndata-exportd healthcheck`: the container runtime's liveness probe.
 * The runtime image has no curl, and the probe must not depend on anything
 * but the binary itself, so this is a minimal HTTP/1.0 client. */
#include "adx_notify.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 5000

static int fail(char *msg, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t cap, const char *fmt, ...)
{
    if (cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct url_parts {
    char host[256];
    char port[8];
    char path[1024];
} url_parts;

static int parse_url(const char *url, url_parts *u, char *msg, size_t cap)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return fail(msg, cap, "only http:// URLs are supported, got '%s'", url);
    const char *p = url + 7;
    const char *hend;
    const char *h = p;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (!hend) return fail(msg, cap, "unterminated IPv6 address in '%s'", url);
        h = p + 1;
        p = hend + 1;
    } else {
        hend = p + strcspn(p, ":/?#");
        p = hend;
    }
    size_t hl = (size_t)(hend - h);
    if (hl == 0 || hl >= sizeof u->host) return fail(msg, cap, "bad host in '%s'", url);
    memcpy(u->host, h, hl);
    u->host[hl] = '\0';
    snprintf(u->port, sizeof u->port, "80");
    if (*p == ':') {
        p++;
        size_t pl = strspn(p, "0123456789");
        long port = pl > 0 && pl <= 5 ? strtol(p, NULL, 10) : 0;
        if (port < 1 || port > 65535) return fail(msg, cap, "bad port in '%s'", url);
        snprintf(u->port, sizeof u->port, "%ld", port);
        p += pl;
    }
    if (*p != '\0' && *p != '/') return fail(msg, cap, "bad URL '%s'", url);
    const char *path = *p ? p : "/";
    /* The path goes into the request line verbatim: no spaces, no CR/LF. */
    for (const char *c = path; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return fail(msg, cap, "bad character in the path of '%s'", url);
    if (strlen(path) >= sizeof u->path) return fail(msg, cap, "path too long in '%s'", url);
    snprintf(u->path, sizeof u->path, "%s", path);
    return 0;
}

static int remaining(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    return left > 0 ? (int)(left > 1000000 ? 1000000 : left) : 0;
}

/* Waits for `events` on fd until the deadline; 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        int t = remaining(deadline);
        if (t == 0) return 0;
        int r = poll(&pfd, 1, t);
        if (r < 0 && errno == EINTR) continue;
        return r < 0 ? -1 : r;
    }
}

static int connect_any(const url_parts *u, int64_t deadline, char *msg, size_t cap)
{
    /* No AI_ADDRCONFIG: in a container with only a loopback interface it
     * would hide 127.0.0.1 itself. */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gr = getaddrinfo(u->host, u->port, &hints, &res);
    if (gr != 0) return fail(msg, cap, "cannot resolve %s: %s", u->host, gai_strerror(gr));
    int fd = -1;
    int err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        int s =
            socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (s < 0) {
            err = errno;
            continue;
        }
        if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0) {
            fd = s;
            break;
        }
        if (errno != EINPROGRESS) {
            err = errno;
            close(s);
            continue;
        }
        int w = wait_fd(s, POLLOUT, deadline);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (w == 1 && getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
            fd = s;
            break;
        }
        err = w == 0 ? ETIMEDOUT : (soerr ? soerr : errno);
        close(s);
        if (w == 0) break;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return fail(msg, cap, "cannot connect to %s port %s: %s", u->host, u->port,
                    strerror(err ? err : ECONNREFUSED));
    return fd;
}

int ntf_http_get_status(const char *url, int timeout_ms, int *status, char *msg, size_t msgcap)
{
    if (msgcap > 0) msg[0] = '\0';
    if (status) *status = 0;
    url_parts u;
    if (parse_url(url, &u, msg, msgcap) < 0) return -1;
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
    int fd = connect_any(&u, deadline, msg, msgcap);
    if (fd < 0) return -1;

    char req[1536];
    bool v6 = strchr(u.host, ':') != NULL;
    int rl =
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.0\r\nHost: %s%s%s:%s\r\nUser-Agent: anndata-exportd-healthcheck"
                 "\r\nAccept: */*\r\nConnection: close\r\n\r\n",
                 u.path, v6 ? "[" : "", u.host, v6 ? "]" : "", u.port);
    int rc = -1;
    for (int off = 0; off < rl;) {
        int w = wait_fd(fd, POLLOUT, deadline);
        if (w <= 0) {
            fail(msg, msgcap, "timed out sending the request");
            goto out;
        }
        ssize_t n = send(fd, req + off, (size_t)(rl - off), MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) {
            fail(msg, msgcap, "send: %s", strerror(errno));
            goto out;
        }
        off += (int)n;
    }

    /* Only the status line matters; the body may be anything. */
    char line[256];
    size_t got = 0;
    while (got < sizeof line - 1 && !memchr(line, '\n', got)) {
        int w = wait_fd(fd, POLLIN, deadline);
        if (w <= 0) {
            fail(msg, msgcap, "timed out waiting for the response");
            goto out;
        }
        ssize_t n = recv(fd, line + got, sizeof line - 1 - got, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) {
            fail(msg, msgcap, "recv: %s", strerror(errno));
            goto out;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    line[got] = '\0';
    /* "HTTP/1.x NNN" followed by a reason, or nothing. */
    bool ok = strncmp(line, "HTTP/1.", 7) == 0 && isdigit((unsigned char)line[7]) &&
              line[8] == ' ' && isdigit((unsigned char)line[9]) &&
              isdigit((unsigned char)line[10]) && isdigit((unsigned char)line[11]) &&
              (line[12] == ' ' || line[12] == '\r' || line[12] == '\n' || line[12] == '\0');
    if (!ok) {
        line[strcspn(line, "\r\n")] = '\0';
        fail(msg, msgcap, "not an HTTP response: '%.60s'", line);
        goto out;
    }
    int code = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (status) *status = code;
    line[strcspn(line, "\r\n")] = '\0';
    fail(msg, msgcap, "%.200s", line);
    rc = 0;
out:
    close(fd);
    return rc;
}

/* ANNDATA_EXPORTD_LISTEN as `serve` reads it (HOST:PORT, [V6]:PORT) turned
 * into the URL the daemon can be reached at from this host. */
static int default_url(char *out, size_t cap)
{
    const char *l = getenv("ANNDATA_EXPORTD_LISTEN");
    if (!l || !*l) l = "127.0.0.1:8080";
    const char *colon = strrchr(l, ':');
    if (!colon || colon == l || !colon[1]) return -1;
    char host[256];
    size_t hl = (size_t)(colon - l);
    if (hl >= sizeof host) return -1;
    memcpy(host, l, hl);
    host[hl] = '\0';
    bool bracketed = host[0] == '[';
    if (bracketed) {
        if (hl < 3 || host[hl - 1] != ']') return -1;
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    /* A wildcard bind is not an address to connect to. */
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "*") || !host[0])
        snprintf(host, sizeof host, "127.0.0.1");
    else if (!strcmp(host, "::"))
        snprintf(host, sizeof host, "::1");
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(out, cap, "http://%s%s%s:%s/healthz", v6 ? "[" : "", host, v6 ? "]" : "",
                     colon + 1);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static void hc_usage(FILE *f)
{
    fputs("usage: anndata-exportd healthcheck [--url URL] [--timeout SECONDS]\n"
          "\n"
          "Exits 0 when URL answers HTTP 200, 1 otherwise. The default URL is\n"
          "http://HOST:PORT/healthz from ANNDATA_EXPORTD_LISTEN (a wildcard host is\n"
          "reached through loopback), else http://127.0.0.1:8080/healthz.\n"
          "The default timeout is 5 seconds.\n",
          f);
}

int ntf_healthcheck_main(int argc, char **argv)
{
    char url_buf[600];
    const char *url = NULL;
    int timeout_ms = DEFAULT_TIMEOUT_MS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            hc_usage(stdout);
            return 0;
        }
        bool is_url = !strncmp(a, "--url", 5) && (a[5] == '\0' || a[5] == '=');
        bool is_to = !strncmp(a, "--timeout", 9) && (a[9] == '\0' || a[9] == '=');
        if (!is_url && !is_to) {
            fprintf(stderr, "anndata-exportd healthcheck: unknown argument '%s'\n", a);
            hc_usage(stderr);
            return 2;
        }
        const char *eq = strchr(a, '=');
        if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            fprintf(stderr, "anndata-exportd healthcheck: %s needs a value\n", a);
            return 2;
        }
        if (is_url) {
            url = v;
        } else {
            char *end;
            errno = 0;
            double s = strtod(v, &end);
            if (errno || end == v || *end || !(s > 0) || s > 3600) {
                fprintf(stderr,
                        "anndata-exportd healthcheck: --timeout takes seconds in (0, 3600], "
                        "got '%s'\n",
                        v);
                return 2;
            }
            timeout_ms = (int)(s * 1000 + 0.5);
            if (timeout_ms < 1) timeout_ms = 1;
        }
    }
    if (!url) {
        if (default_url(url_buf, sizeof url_buf) < 0) {
            fprintf(stderr,
                    "anndata-exportd healthcheck: ANNDATA_EXPORTD_LISTEN must be HOST:PORT, "
                    "got '%s'\n",
                    getenv("ANNDATA_EXPORTD_LISTEN"));
            return 2;
        }
        url = url_buf;
    }
    int status = 0;
    char msg[320];
    url_parts u;
    if (parse_url(url, &u, msg, sizeof msg) < 0) {
        fprintf(stderr, "anndata-exportd healthcheck: %s\n", msg);
        return 2;
    }
    if (ntf_http_get_status(url, timeout_ms, &status, msg, sizeof msg) < 0) {
        fprintf(stderr, "unhealthy: %s: %s\n", url, msg);
        return 1;
    }
    if (status != 200) {
        fprintf(stderr, "unhealthy: %s: %s\n", url, msg);
        return 1;
    }
    printf("healthy: %s: %s\n", url, msg);
    return 0;
}
