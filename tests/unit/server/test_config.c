/* Unit tests for the serve config: defaults, file syntax, units, every
 * error, precedence (file < environment < flags), policy helpers. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adx_srv_config.h"

static const char *fake_env(const char *k)
{
    if (!strcmp(k, "XDG_STATE_HOME")) return "/state";
    return NULL;
}
static const char *sd_env(const char *k)
{
    if (!strcmp(k, "STATE_DIRECTORY")) return "/var/lib/adx:/other";
    if (!strcmp(k, "XDG_STATE_HOME")) return "/state";
    return NULL;
}
static const char *no_env(const char *k)
{
    return NULL;
}

START_TEST(defaults)
{
    srv_config c;
    srv_config_defaults(&c, fake_env);
    ck_assert_str_eq(c.listen_host, "127.0.0.1");
    ck_assert_uint_eq(c.listen_port, 8080);
    ck_assert_str_eq(c.spool_dir, "/state/anndata-exportd");
    ck_assert_uint_eq(c.result_ttl, 3600);
    ck_assert_uint_eq(c.limits.max_body_bytes, 1ull << 30);
    ck_assert_uint_eq(c.limits.max_ndim, 32);
    /* resolved at start: the data dir from the final spool_dir, h5check by lookup */
    ck_assert_str_eq(c.data_dir, "");
    ck_assert_str_eq(c.h5check, "");
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(srv_config_set(&c, "H5CHECK", "/opt/x/adx-h5check", "--h5check", &e), 0);
    ck_assert_str_eq(c.h5check, "/opt/x/adx-h5check");
    srv_config_defaults(&c, sd_env);
    ck_assert_str_eq(c.spool_dir, "/var/lib/adx");
    srv_config_defaults(&c, no_env);
    char want[64];
    snprintf(want, sizeof want, "%s/anndata-exportd-%u", P_tmpdir, (unsigned)getuid());
    ck_assert_str_eq(c.spool_dir, want);
}
END_TEST

START_TEST(file_syntax_and_units)
{
    srv_config c;
    srv_config_defaults(&c, fake_env);
    adx_err e;
    adx_err_init(&e);
    const char *text = "# comment\n"
                       "\n"
                       "  listen = 0.0.0.0:9000   # trailing comment\n"
                       "workers=4\n"
                       "max_body_bytes = 64M\n"
                       "max_total_bytes = 2GiB\n"
                       "result_ttl = 2h\n"
                       "shutdown_grace = 90s\n"
                       "log_format = logfmt\n"
                       "cors_origins = \"https://a.example#frag, https://b.example\"\n"
                       "max-string-bytes = 1k\n"
                       "listen = [::1]:8081\n";
    ck_assert_int_eq(srv_config_parse_text(&c, text, "t.conf", &e), 0);
    ck_assert_str_eq(c.listen_host, "::1");
    ck_assert_uint_eq(c.listen_port, 8081);
    ck_assert_uint_eq(c.workers, 4);
    ck_assert_uint_eq(c.limits.max_body_bytes, 64ull << 20);
    ck_assert_uint_eq(c.limits.max_total_bytes, 2ull << 30);
    ck_assert_uint_eq(c.limits.max_string_bytes, 1024);
    ck_assert_uint_eq(c.result_ttl, 7200);
    ck_assert_uint_eq(c.shutdown_grace, 90);
    ck_assert_int_eq(c.log_format, SRV_LOG_LOGFMT);
    ck_assert_str_eq(c.cors_origins, "https://a.example#frag, https://b.example");
}
END_TEST

static void expect_error(const char *text, const char *ptr, const char *needle)
{
    srv_config c;
    srv_config_defaults(&c, fake_env);
    adx_err e;
    adx_err_init(&e);
    ck_assert_msg(srv_config_parse_text(&c, text, "bad.conf", &e) == -1, "accepted: %s", text);
    ck_assert_str_eq(e.items[0].pointer, ptr);
    ck_assert_msg(strstr(e.detail, needle) != NULL, "'%s' lacks '%s'", e.detail, needle);
}

START_TEST(errors_name_key_and_line)
{
    expect_error("workers = 2\nnope = 1\n", "/nope", "bad.conf:2: unknown setting");
    expect_error("workers = 0\n", "/workers", "outside");
    expect_error("workers = -1\n", "/workers", "not a non-negative integer");
    expect_error("workers = 2x\n", "/workers", "not a non-negative integer");
    expect_error("workers\n", "", "bad.conf:1: expected key = value");
    expect_error("max_body_bytes = 12Q\n", "/max_body_bytes", "not a size");
    expect_error("max_body_bytes = 99999999999T\n", "/max_body_bytes", "not a size");
    expect_error("result_ttl = 5w\n", "/result_ttl", "not a duration");
    expect_error("listen = 8080\n", "/listen", "HOST:PORT");
    expect_error("listen = host:70000\n", "/listen", "HOST:PORT");
    expect_error("listen = :80\n", "/listen", "HOST:PORT");
    expect_error("log_format = xml\n", "/log_format", "json or logfmt");
    expect_error("max_ndim = 33\n", "/max_ndim", "outside");
    expect_error("workers = 99999999999999999999999\n", "/workers", "non-negative integer");
}
END_TEST

START_TEST(precedence_file_env_flags)
{
    char path[256];
    const char *td = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/adx-conf-XXXXXX", td && *td ? td : P_tmpdir);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "workers = 3\nqueue_max = 10\nresult_ttl = 100\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    srv_config c;
    srv_config_defaults(&c, fake_env);
    adx_err e;
    adx_err_init(&e);
    char *env[] = {"ANNDATA_EXPORTD_QUEUE_MAX=20", "ANNDATA_EXPORTD_RESULT_TTL=200", "OTHER=1",
                   NULL};
    char cfgflag[300];
    snprintf(cfgflag, sizeof cfgflag, "--config=%s", path);
    char *argv[] = {"serve", "--result-ttl", "300", cfgflag, "--data-dir=/d", NULL};
    const char *what = NULL;
    ck_assert_int_eq(srv_config_from_args(&c, 5, argv, env, &what, &e), 0);
    unlink(path);
    ck_assert_uint_eq(c.workers, 3);      /* file */
    ck_assert_uint_eq(c.queue_max, 20);   /* env over file */
    ck_assert_uint_eq(c.result_ttl, 300); /* flag over env */
    ck_assert_str_eq(c.data_dir, "/d");
}
END_TEST

START_TEST(args_errors_and_help)
{
    srv_config c;
    adx_err e;
    const char *what;
    srv_config_defaults(&c, fake_env);
    adx_err_init(&e);
    char *a1[] = {"serve", "--workers", NULL};
    ck_assert_int_eq(srv_config_from_args(&c, 2, a1, NULL, &what, &e), -1);
    ck_assert(strstr(e.detail, "needs a value") != NULL);
    adx_err_init(&e);
    char *a2[] = {"serve", "stray", NULL};
    ck_assert_int_eq(srv_config_from_args(&c, 2, a2, NULL, &what, &e), -1);
    adx_err_init(&e);
    char *a3[] = {"serve", "--bogus=1", NULL};
    ck_assert_int_eq(srv_config_from_args(&c, 2, a3, NULL, &what, &e), -1);
    ck_assert(strstr(e.detail, "--bogus") != NULL);
    adx_err_init(&e);
    char *a4[] = {"serve", "--config", "/nonexistent/adx.conf", NULL};
    ck_assert_int_eq(srv_config_from_args(&c, 3, a4, NULL, &what, &e), -1);
    ck_assert(strstr(e.detail, "cannot open config file") != NULL);
    adx_err_init(&e);
    char *env[] = {"ANNDATA_EXPORTD_WORKERS=zero", NULL};
    char *a5[] = {"serve", NULL};
    ck_assert_int_eq(srv_config_from_args(&c, 1, a5, env, &what, &e), -1);
    ck_assert(strstr(e.detail, "ANNDATA_EXPORTD_WORKERS") != NULL);
    char *a6[] = {"serve", "--workers", "2", "--help", NULL};
    ck_assert_int_eq(srv_config_from_args(&c, 4, a6, NULL, &what, &e), 1);
    ck_assert_str_eq(what, "help");
}
END_TEST

START_TEST(origins)
{
    srv_config c;
    srv_config_defaults(&c, fake_env);
    ck_assert(!srv_config_origin_allowed(&c, "https://a.example")); /* none by default */
    strcpy(c.cors_origins, "https://a.example, http://localhost:3000");
    ck_assert(srv_config_origin_allowed(&c, "https://a.example"));
    ck_assert(srv_config_origin_allowed(&c, "http://localhost:3000"));
    ck_assert(!srv_config_origin_allowed(&c, "https://a.example.evil"));
    ck_assert(!srv_config_origin_allowed(&c, "https://a.exampl"));
    ck_assert(!srv_config_origin_allowed(&c, ""));
    ck_assert(!srv_config_origin_allowed(&c, NULL));
    strcpy(c.cors_origins, "*");
    ck_assert(srv_config_origin_allowed(&c, "https://any.example"));
}
END_TEST

static struct sockaddr_in v4(const char *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, s, &a.sin_addr);
    return a;
}

START_TEST(proxies)
{
    srv_config c;
    srv_config_defaults(&c, fake_env);
    struct sockaddr_in a = v4("10.1.2.3");
    ck_assert(!srv_config_proxy_trusted(&c, (struct sockaddr *)&a));
    strcpy(c.trusted_proxies, "10.0.0.0/8, 192.168.1.7, ::1, bogus, 1.2.3.4/40");
    ck_assert(srv_config_proxy_trusted(&c, (struct sockaddr *)&a));
    a = v4("11.1.2.3");
    ck_assert(!srv_config_proxy_trusted(&c, (struct sockaddr *)&a));
    a = v4("192.168.1.7");
    ck_assert(srv_config_proxy_trusted(&c, (struct sockaddr *)&a));
    a = v4("192.168.1.8");
    ck_assert(!srv_config_proxy_trusted(&c, (struct sockaddr *)&a));
    a = v4("1.2.3.4"); /* its entry has an impossible prefix: ignored */
    ck_assert(!srv_config_proxy_trusted(&c, (struct sockaddr *)&a));
    struct sockaddr_in6 b = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::1", &b.sin6_addr);
    ck_assert(srv_config_proxy_trusted(&c, (struct sockaddr *)&b));
    inet_pton(AF_INET6, "::ffff:10.9.9.9", &b.sin6_addr); /* v4-mapped */
    ck_assert(srv_config_proxy_trusted(&c, (struct sockaddr *)&b));
    inet_pton(AF_INET6, "::2", &b.sin6_addr);
    ck_assert(!srv_config_proxy_trusted(&c, (struct sockaddr *)&b));
    ck_assert(!srv_config_proxy_trusted(&c, NULL));
}
END_TEST

/* The example file documents every setting with its default: applying each
 * "#key = value" line must leave the built-in defaults unchanged, and every
 * setting the parser knows must be there. */
START_TEST(example_file_matches_defaults)
{
    const char *src = getenv("ADX_SRC");
    ck_assert_msg(src != NULL, "ADX_SRC is not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/config/anndata-exportd.conf", src);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    srv_config def, c;
    srv_config_defaults(&def, fake_env);
    srv_config_defaults(&c, fake_env);
    char line[1024];
    int keys = 0;
    static const char *known[] = {"listen",
                                  "workers",
                                  "spool_dir",
                                  "data_dir",
                                  "max_body_bytes",
                                  "max_elements",
                                  "max_dim",
                                  "max_total_bytes",
                                  "max_ndim",
                                  "max_depth",
                                  "max_string_bytes",
                                  "max_keys",
                                  "csv_max_cells",
                                  "queue_max",
                                  "max_connections",
                                  "connection_timeout",
                                  "result_ttl",
                                  "shutdown_grace",
                                  "wait_max",
                                  "cors_max_age",
                                  "tokens_file",
                                  "cors_origins",
                                  "trusted_proxies",
                                  "log_format",
                                  "log_file",
                                  "h5check",
                                  "max_request_memory",
                                  "max_key_bytes",
                                  "max_patterns",
                                  "max_pattern_bytes",
                                  "max_include_tests",
                                  "max_parts",
                                  "max_part_header_bytes",
                                  "max_connections_per_ip",
                                  "header_timeout",
                                  "body_timeout",
                                  "max_waiting",
                                  "max_spool_bytes",
                                  "max_memory",
                                  "job_timeout"};
    int seen[sizeof known / sizeof known[0]] = {0};
    while (fgets(line, sizeof line, f)) {
        char key[64], val[512] = "";
        if (sscanf(line, "#%63[a-z0-9_] = %511[^\n]", key, val) < 1 || !strchr(line, '=')) continue;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (!strcmp(known[i], key)) seen[i]++;
        keys++;
        if (!val[0]) continue; /* computed defaults (paths) stay as they are */
        adx_err e;
        adx_err_init(&e);
        ck_assert_msg(srv_config_set(&c, key, val, "example", &e) == 0, "%s", e.detail);
    }
    fclose(f);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        ck_assert_msg(seen[i] == 1, "%s documented %d times", known[i], seen[i]);
    ck_assert_int_eq(keys, (int)(sizeof known / sizeof known[0]));
    ck_assert(memcmp(&def, &c, sizeof c) == 0);
    /* and the parser knows no setting the file does not document */
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(srv_config_set(&c, "undocumented", "1", "x", &e), -1);
}
END_TEST

START_TEST(help_lists_every_numeric_default)
{
    /* What --help prints must parse back to the defaults: flag by flag into a
     * config whose numbers were all changed first. */
    srv_config def, c;
    srv_config_defaults(&def, NULL);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    srv_config_print_numeric(f, &def);
    fclose(f);
    ck_assert(strstr(text, "--max-parts 1024") != NULL);
    ck_assert(strstr(text, "--max-part-header-bytes 16K") != NULL);
    ck_assert(strstr(text, "--header-timeout 10s") != NULL);
    ck_assert(strstr(text, "--max-spool-bytes 8G") != NULL);
    srv_config_defaults(&c, NULL);
    memset(&c.limits, 0x5a, sizeof c.limits);
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(text, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
        ck_assert(strncmp(tok, "--", 2) == 0);
        char *val = strtok_r(NULL, " \n", &save);
        ck_assert_ptr_nonnull(val);
        char key[64];
        size_t i = 0;
        for (const char *p = tok + 2; *p && i + 1 < sizeof key; p++)
            key[i++] = *p == '-' ? '_' : *p;
        key[i] = '\0';
        adx_err e;
        adx_err_init(&e);
        ck_assert_msg(srv_config_set(&c, key, val, "help", &e) == 0, "%s %s: %s", key, val,
                      e.detail);
        n++;
    }
    ck_assert_int_ge(n, 30);
    ck_assert(memcmp(&def.limits, &c.limits, sizeof c.limits) == 0);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("srv_config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, file_syntax_and_units);
    tcase_add_test(tc, errors_name_key_and_line);
    tcase_add_test(tc, precedence_file_env_flags);
    tcase_add_test(tc, args_errors_and_help);
    tcase_add_test(tc, origins);
    tcase_add_test(tc, proxies);
    tcase_add_test(tc, example_file_matches_defaults);
    tcase_add_test(tc, help_lists_every_numeric_default);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
