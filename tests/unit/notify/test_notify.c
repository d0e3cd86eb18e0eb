/* ntf_*: notifications arrive on a datagram socket the test owns (a path and
 * an abstract name), the watchdog variables are read as systemd defines
 * them, and the healthcheck talks to a one-connection HTTP server thread. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "adx_notify.h"
#include "notify_test.h"

/* ---- a notification receiver ------------------------------------------- */

typedef struct receiver {
    int fd;
    char dir[64];
    char path[128];
} receiver;

static void receiver_open_path(receiver *r)
{
    /* sun_path holds ~108 bytes: a long TMPDIR falls back to the system one. */
    const char *t = getenv("TMPDIR");
    if (!t || !*t || strlen(t) > 40) t = P_tmpdir;
    snprintf(r->dir, sizeof r->dir, "%s/adx-ntf-XXXXXX", t);
    ck_assert_ptr_nonnull(mkdtemp(r->dir));
    snprintf(r->path, sizeof r->path, "%s/notify", r->dir);
    r->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(r->fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    ck_assert_uint_lt(strlen(r->path), sizeof sa.sun_path);
    memcpy(sa.sun_path, r->path, strlen(r->path) + 1);
    ck_assert_int_eq(bind(r->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(setenv("NOTIFY_SOCKET", r->path, 1), 0);
}

/* An abstract name lives in the kernel only; "@" in NOTIFY_SOCKET means a
 * leading NUL byte in the address. */
static void receiver_open_abstract(receiver *r)
{
    r->dir[0] = '\0';
    snprintf(r->path, sizeof r->path, "@adx-ntf-test-%ld-%d", (long)getpid(), rand());
    r->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(r->fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(r->path);
    memcpy(sa.sun_path, r->path, len);
    sa.sun_path[0] = '\0';
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    ck_assert_int_eq(bind(r->fd, (struct sockaddr *)&sa, salen), 0);
    ck_assert_int_eq(setenv("NOTIFY_SOCKET", r->path, 1), 0);
}

/* The next datagram, NUL-terminated; the send already happened, so a
 * non-blocking read either has it or the message was never sent. */
static const char *receiver_next(receiver *r)
{
    static char buf[1024];
    ssize_t n = recv(r->fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    if (n < 0) return NULL;
    buf[n] = '\0';
    return buf;
}

static void receiver_close(receiver *r)
{
    close(r->fd);
    if (r->dir[0]) {
        unlink(r->path);
        rmdir(r->dir);
    }
    unsetenv("NOTIFY_SOCKET");
}

START_TEST(no_socket_is_a_noop)
{
    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(ntf_ready(), 0);
    ck_assert_int_eq(ntf_stopping(), 0);
    ck_assert_int_eq(ntf_reloading(), 0);
    ck_assert_int_eq(ntf_watchdog_ping(), 0);
    ck_assert_int_eq(ntf_status("idle"), 0);
    ck_assert_int_eq(ntf_send_raw("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    ck_assert_int_eq(ntf_send_raw("READY=1"), 0);
}
END_TEST

START_TEST(messages_on_a_path_socket)
{
    receiver r;
    receiver_open_path(&r);
    ck_assert_int_eq(ntf_ready(), 1);
    ck_assert_str_eq(receiver_next(&r), "READY=1");
    ck_assert_int_eq(ntf_stopping(), 1);
    ck_assert_str_eq(receiver_next(&r), "STOPPING=1");
    ck_assert_int_eq(ntf_watchdog_ping(), 1);
    ck_assert_str_eq(receiver_next(&r), "WATCHDOG=1");
    ck_assert_int_eq(ntf_status("%d jobs\nqueued", 3), 1);
    ck_assert_str_eq(receiver_next(&r), "STATUS=3 jobs queued");
    ck_assert_int_eq(ntf_reloading(), 1);
    const char *m = receiver_next(&r);
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(strncmp(m, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0, "got '%s'", m);
    ck_assert_msg(strlen(m) > 27 && strspn(m + 27, "0123456789") == strlen(m + 27), "got '%s'", m);
    ck_assert_ptr_null(receiver_next(&r));
    receiver_close(&r);
}
END_TEST

START_TEST(long_status_is_cut_not_dropped)
{
    receiver r;
    receiver_open_path(&r);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(ntf_status("%s", big), 1);
    const char *m = receiver_next(&r);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(strncmp(m, "STATUS=xxx", 10), 0);
    ck_assert_uint_eq(strlen(m), 7 + 512);
    receiver_close(&r);
}
END_TEST

START_TEST(messages_on_an_abstract_socket)
{
    receiver r;
    receiver_open_abstract(&r);
    ck_assert_int_eq(ntf_ready(), 1);
    ck_assert_str_eq(receiver_next(&r), "READY=1");
    ck_assert_int_eq(ntf_send_raw("STOPPING=1"), 1);
    ck_assert_str_eq(receiver_next(&r), "STOPPING=1");
    receiver_close(&r);
}
END_TEST

/* The built-in sender, which builds without libsystemd use for every call. */
START_TEST(raw_sender_path_and_errors)
{
    receiver r;
    receiver_open_path(&r);
    ck_assert_int_eq(ntf_send_raw("READY=1\nSTATUS=up"), 1);
    ck_assert_str_eq(receiver_next(&r), "READY=1\nSTATUS=up");
    receiver_close(&r);

    /* Nobody bound there any more. */
    setenv("NOTIFY_SOCKET", r.path, 1);
    int rc = ntf_send_raw("READY=1");
    ck_assert_msg(rc == -ENOENT || rc == -ECONNREFUSED, "rc = %d", rc);
    setenv("NOTIFY_SOCKET", "relative/name", 1);
    ck_assert_int_eq(ntf_send_raw("READY=1"), -EAFNOSUPPORT);
    char huge[200];
    huge[0] = '/';
    memset(huge + 1, 'a', sizeof huge - 2);
    huge[sizeof huge - 1] = '\0';
    setenv("NOTIFY_SOCKET", huge, 1);
    ck_assert_int_eq(ntf_send_raw("READY=1"), -EINVAL);
    unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(watchdog_variables)
{
    uint64_t us = 42;
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    ck_assert_int_eq(ntf_watchdog_usec(&us), 0);
    ck_assert_uint_eq(us, 0);

    setenv("WATCHDOG_USEC", "30000000", 1);
    ck_assert_int_eq(ntf_watchdog_usec(&us), 1);
    ck_assert_uint_eq(us, 30000000u);

    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    ck_assert_int_eq(ntf_watchdog_usec(&us), 1);
    ck_assert_uint_eq(us, 30000000u);

    /* Inherited by a child: not ours to answer. */
    snprintf(pid, sizeof pid, "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    ck_assert_int_eq(ntf_watchdog_usec(&us), 0);
    ck_assert_uint_eq(us, 0);

    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "30s", 1);
    ck_assert_int_lt(ntf_watchdog_usec(&us), 0);
    setenv("WATCHDOG_USEC", "0", 1);
    ck_assert_int_lt(ntf_watchdog_usec(&us), 0);
    setenv("WATCHDOG_USEC", "-5", 1);
    ck_assert_int_lt(ntf_watchdog_usec(&us), 0);
    setenv("WATCHDOG_USEC", "1000", 1);
    setenv("WATCHDOG_PID", "abc", 1);
    ck_assert_int_lt(ntf_watchdog_usec(&us), 0);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}
END_TEST

/* ---- a one-shot HTTP server for the healthcheck ------------------------- */

typedef struct http_stub {
    int lfd;
    int port;
    const char *reply; /* NULL: accept, read, never answer */
    int conns;         /* connections to serve */
    char request[2048];
    pthread_t th;
} http_stub;

static void *stub_run(void *arg)
{
    http_stub *s = arg;
    for (int c = 0; c < s->conns; c++) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) return NULL;
        size_t got = 0;
        while (got < sizeof s->request - 1) {
            ssize_t n = recv(fd, s->request + got, sizeof s->request - 1 - got, 0);
            if (n <= 0) break;
            got += (size_t)n;
            s->request[got] = '\0';
            if (strstr(s->request, "\r\n\r\n")) break;
        }
        if (s->reply) {
            send(fd, s->reply, strlen(s->reply), MSG_NOSIGNAL);
        } else {
            /* Hold the connection until the client gives up. */
            char b[64];
            while (recv(fd, b, sizeof b, 0) > 0) {}
        }
        close(fd);
    }
    return NULL;
}

static void stub_start(http_stub *s, const char *reply, int conns)
{
    memset(s, 0, sizeof *s);
    s->reply = reply;
    s->conns = conns;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s->lfd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(s->lfd, 4), 0);
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    ck_assert_int_eq(pthread_create(&s->th, NULL, stub_run, s), 0);
}

static void stub_join(http_stub *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static int run_hc(const char *url, const char *timeout)
{
    char *argv[6];
    int argc = 0;
    argv[argc++] = "healthcheck";
    if (url) {
        argv[argc++] = "--url";
        argv[argc++] = (char *)url;
    }
    if (timeout) {
        argv[argc++] = "--timeout";
        argv[argc++] = (char *)timeout;
    }
    argv[argc] = NULL;
    return ntf_healthcheck_main(argc, argv);
}

static const char ok_reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               "Content-Length: 15\r\n\r\n{\"status\":\"ok\"}";
static const char unavailable_reply[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                        "Retry-After: 1\r\nContent-Length: 0\r\n\r\n";

START_TEST(healthcheck_200_then_503)
{
    http_stub s;
    stub_start(&s, ok_reply, 1);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", s.port);
    ck_assert_int_eq(run_hc(url, NULL), 0);
    stub_join(&s);
    char expect[128];
    snprintf(expect, sizeof expect, "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n", s.port);
    ck_assert_msg(strncmp(s.request, expect, strlen(expect)) == 0, "request was '%s'", s.request);

    stub_start(&s, unavailable_reply, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", s.port);
    ck_assert_int_eq(run_hc(url, "2"), 1);
    stub_join(&s);
    ck_assert_int_eq(strncmp(s.request, "GET /readyz HTTP/1.0\r\n", 22), 0);
}
END_TEST

START_TEST(healthcheck_default_url_from_listen)
{
    http_stub s;
    stub_start(&s, ok_reply, 2);
    char listen_v[64];
    /* A wildcard bind is probed through loopback. */
    snprintf(listen_v, sizeof listen_v, "0.0.0.0:%d", s.port);
    setenv("ANNDATA_EXPORTD_LISTEN", listen_v, 1);
    ck_assert_int_eq(run_hc(NULL, NULL), 0);
    ck_assert_int_eq(strncmp(s.request, "GET /healthz HTTP/1.0\r\n", 23), 0);
    snprintf(listen_v, sizeof listen_v, "127.0.0.1:%d", s.port);
    setenv("ANNDATA_EXPORTD_LISTEN", listen_v, 1);
    ck_assert_int_eq(run_hc(NULL, "1.5"), 0);
    stub_join(&s);
    unsetenv("ANNDATA_EXPORTD_LISTEN");
}
END_TEST

START_TEST(healthcheck_failures)
{
    /* A port nobody listens on: bind, learn the port, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", ntohs(sa.sin_port));
    ck_assert_int_eq(run_hc(url, "2"), 1);

    http_stub s;
    stub_start(&s, "SSH-2.0-OpenSSH_9.2\r\n", 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", s.port);
    ck_assert_int_eq(run_hc(url, "2"), 1);
    stub_join(&s);

    /* Connected but never answered: the timeout decides. */
    stub_start(&s, NULL, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", s.port);
    ck_assert_int_eq(run_hc(url, "0.2"), 1);
    stub_join(&s);

    int status = -1;
    char msg[128];
    ck_assert_int_eq(
        ntf_http_get_status("https://127.0.0.1/healthz", 100, &status, msg, sizeof msg), -1);
    ck_assert_ptr_nonnull(strstr(msg, "http://"));
    ck_assert_int_eq(status, 0);
}
END_TEST

START_TEST(healthcheck_usage)
{
    ck_assert_int_eq(run_hc("ftp://127.0.0.1/", NULL), 2);
    ck_assert_int_eq(run_hc("http://127.0.0.1:99999/", NULL), 2);
    ck_assert_int_eq(run_hc("http://127.0.0.1/a b", NULL), 2);
    ck_assert_int_eq(run_hc(NULL, "0"), 2);
    ck_assert_int_eq(run_hc(NULL, "abc"), 2);
    char *argv[] = {"healthcheck", "--bogus", NULL};
    ck_assert_int_eq(ntf_healthcheck_main(2, argv), 2);
    char *argv2[] = {"healthcheck", "--url", NULL};
    ck_assert_int_eq(ntf_healthcheck_main(2, argv2), 2);
    setenv("ANNDATA_EXPORTD_LISTEN", "nonsense", 1);
    ck_assert_int_eq(run_hc(NULL, NULL), 2);
    unsetenv("ANNDATA_EXPORTD_LISTEN");
}
END_TEST

static Suite *notify_suite(void)
{
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("notify");
    tcase_add_test(tc, no_socket_is_a_noop);
    tcase_add_test(tc, messages_on_a_path_socket);
    tcase_add_test(tc, long_status_is_cut_not_dropped);
    tcase_add_test(tc, messages_on_an_abstract_socket);
    tcase_add_test(tc, raw_sender_path_and_errors);
    tcase_add_test(tc, watchdog_variables);
    suite_add_tcase(s, tc);
    TCase *hc = tcase_create("healthcheck");
    tcase_set_timeout(hc, 30);
    tcase_add_test(hc, healthcheck_200_then_503);
    tcase_add_test(hc, healthcheck_default_url_from_listen);
    tcase_add_test(hc, healthcheck_failures);
    tcase_add_test(hc, healthcheck_usage);
    suite_add_tcase(s, hc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(notify_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
