/* adx_notify (prefix ntf_) — telling a service manager how the daemon is
 * doing, and the `healthcheck` subcommand for container runtimes.
 *
 * Notifications follow systemd's sd_notify protocol: one unix datagram of
 * "KEY=value" lines to the socket named by $NOTIFY_SOCKET (a path, or an
 * abstract name spelled with a leading '@'). With libsystemd at build time
 * (ADX_HAVE_SYSTEMD) the calls go through sd_notify(); without it a small
 * built-in sender does the same. When NOTIFY_SOCKET is unset every call is a
 * no-op, so the daemon calls them unconditionally.
 *
 * Return values of the notification calls mirror sd_notify(): 1 when the
 * message was sent, 0 when there is no manager to tell (NOTIFY_SOCKET unset),
 * a negative errno on failure. A failure is worth a log line, never a reason
 * to stop serving. Nothing here prints, allocates or keeps state; every
 * function may be called from any thread.
 */
#ifndef ADX_NOTIFY_H
#define ADX_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

/* READY=1 — call once the listening socket accepts connections, and again
 * after a reload finished. */
int ntf_ready(void);
/* STOPPING=1 — call when shutdown begins (before draining), so the manager
 * does not mistake the drain for a hang. */
int ntf_stopping(void);
/* RELOADING=1 with MONOTONIC_USEC (what Type=notify-reload wants); follow it
 * with ntf_ready() once the reload is done. */
int ntf_reloading(void);
/* WATCHDOG=1 — keep-alive; send at half the interval ntf_watchdog_usec
 * reports. */
int ntf_watchdog_ping(void);
/* STATUS=<text> — a one-line human status (`systemctl status` shows it).
 * Newlines in the formatted text become spaces, since a newline would start
 * another KEY=value assignment; the text is cut at 512 bytes. */
int ntf_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval the manager asked for: 1 and *usec set when
 * WATCHDOG_USEC is set (and WATCHDOG_PID, if present, is this process),
 * 0 when no watchdog is requested, negative errno when the variables are
 * malformed. *usec is 0 unless 1 is returned. */
int ntf_watchdog_usec(uint64_t *usec);

/* One HTTP/1.0 GET of `url` ("http://HOST[:PORT][/PATH]", HOST may be a
 * name, an IPv4 address or a bracketed IPv6 address; PORT defaults to 80,
 * PATH to "/"), over a plain TCP connection, everything within
 * `timeout_ms`. Returns 0 when it got a status line (stored in *status),
 * -1 otherwise with a reason in msg (always NUL-terminated when msgcap > 0).
 * https is refused: the check runs next to the daemon, not through a proxy. */
int ntf_http_get_status(const char *url, int timeout_ms, int *status, char *msg, size_t msgcap);

/* `anndata-exportd healthcheck [--url URL] [--timeout SECONDS]` (argv[0] is
 * "healthcheck"): exit code 0 when the URL answers 200, 1 otherwise (2 for
 * bad usage). The default URL is http://HOST:PORT/healthz built from
 * ANNDATA_EXPORTD_LISTEN (HOST:PORT, as `serve` takes it; a wildcard host
 * 0.0.0.0 or [::] is reached through loopback), else 127.0.0.1:8080. The
 * default timeout is 5 seconds. Prints one line saying what it saw. */
int ntf_healthcheck_main(int argc, char **argv);

#endif
