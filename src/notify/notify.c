/* Service-manager notifications (see adx_notify.h). */
#include "adx_notify.h"
#include "notify_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "adx_config_build.h"

#if ADX_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

#include "adx_dynlib.h"

/* libsystemd only for sd_notify, loaded by the first notification when the
 * build loads it lazily (ADX_LAZY_SYSTEMD, adx_dynlib.h): no command but
 * `serve` under a service manager pays for it and its libgcrypt/lz4/zstd. */
#define NTF_SD_SYMS(X) X(sd_notify)
DYNLIB_DECLARE(ntf_sd, NTF_SD_SYMS)
#ifdef ADX_LAZY_SYSTEMD
DYNLIB_DEFINE(ntf_sd, NTF_SD_SYMS, ADX_LAZY_SYSTEMD)
#define sd_notify DYNLIB_CALL(ntf_sd, sd_notify)
#else
DYNLIB_DEFINE(ntf_sd, NTF_SD_SYMS, NULL)
#endif
#endif

int ntf_send_raw(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !*name) return 0;
    if (!state) return -EINVAL;

    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(name);
    /* Only the two unix forms; systemd's vsock addresses matter inside VMs
     * only, where libsystemd is there to handle them. */
    if (name[0] != '/' && name[0] != '@') return -EAFNOSUPPORT;
    if (len > sizeof sa.sun_path || (name[0] == '/' && len == sizeof sa.sun_path)) return -EINVAL;
    memcpy(sa.sun_path, name, len);
    /* An abstract name has no terminating NUL: its length is the address. */
    if (name[0] == '@') sa.sun_path[0] = '\0';
    socklen_t salen =
        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/' ? 1 : 0));

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    ssize_t n;
    do {
        n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    } while (n < 0 && errno == EINTR);
    int rc = n < 0 ? -errno : 1;
    close(fd);
    return rc;
}

static int send_state(const char *state)
{
#if ADX_HAVE_SYSTEMD
    /* Without NOTIFY_SOCKET there is nobody to tell and nothing to load. */
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !*name) return 0;
    /* A libsystemd that cannot be loaded leaves the unix forms to ours. */
    if (dynlib_load(&ntf_sd, NULL) < 0) return ntf_send_raw(state);
    return sd_notify(0, state);
#else
    return ntf_send_raw(state);
#endif
}

int ntf_ready(void)
{
    return send_state("READY=1");
}

int ntf_stopping(void)
{
    return send_state("STOPPING=1");
}

int ntf_reloading(void)
{
    /* systemd (253+) pairs RELOADING=1 with the CLOCK_MONOTONIC time of the
     * reload request so it can tell this reload from a later one. */
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return -errno;
    char buf[64];
    snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
             (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
    return send_state(buf);
}

int ntf_watchdog_ping(void)
{
    return send_state("WATCHDOG=1");
}

int ntf_status(const char *fmt, ...)
{
    char buf[sizeof "STATUS=" + 512];
    memcpy(buf, "STATUS=", 7);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + 7, sizeof buf - 7, fmt, ap);
    va_end(ap);
    if (n < 0) return -EINVAL;
    for (char *p = buf + 7; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return send_state(buf);
}

static int parse_u64_env(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9') return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -EINVAL;
    *out = v;
    return 0;
}

int ntf_watchdog_usec(uint64_t *usec)
{
    if (usec) *usec = 0;
    /* What sd_watchdog_enabled() does, kept here so both builds parse the
     * variables the same way. */
    const char *s = getenv("WATCHDOG_USEC");
    if (!s) return 0;
    uint64_t v;
    if (parse_u64_env(s, &v) < 0 || v == 0) return -EINVAL;
    /* The variables are inherited by children; only the process the manager
     * started owes it keep-alives. */
    const char *p = getenv("WATCHDOG_PID");
    if (p) {
        uint64_t pid;
        if (parse_u64_env(p, &pid) < 0 || pid == 0) return -EINVAL;
        if (pid != (uint64_t)getpid()) return 0;
    }
    if (usec) *usec = v;
    return 1;
}
