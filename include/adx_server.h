/* adx_server (prefix srv_) — `anndata-exportd serve`: the libuv event loop,
 * libmicrohttpd HTTP API of shared/spec/api.md, worker pool and durable job
 * store. srv_main parses the serve flags (argv[0] is "serve") and runs until
 * SIGTERM/SIGINT; returns the process exit code.
 */
#ifndef ADX_SERVER_H
#define ADX_SERVER_H

int srv_main(int argc, char **argv);
/* libmicrohttpd's version, loading it if it is loaded lazily (adx_dynlib.h);
 * "(not installed)" when it cannot be. */
const char *srv_mhd_version(void);

#endif
