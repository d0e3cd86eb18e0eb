/* libmicrohttpd through adx_dynlib (include/adx_dynlib.h): http.h includes
 * this after <microhttpd.h>, so only `serve` loads libmicrohttpd and the
 * gnutls stack it links; the command line's exports never do. ADX_LAZY_MHD
 * (adx_config_build.h) is the soname to dlopen; without it the library is
 * linked as usual. srv_main loads it before anything else. */
#ifndef SRV_MHD_DL_H
#define SRV_MHD_DL_H

#include <microhttpd.h>

#include "adx_config_build.h"
#include "adx_dynlib.h"

#define SRV_MHD_SYMS(X)                                                                            \
    X(MHD_add_response_header)                                                                     \
    X(MHD_create_response_from_buffer)                                                             \
    X(MHD_create_response_from_fd_at_offset64)                                                     \
    X(MHD_destroy_response)                                                                        \
    X(MHD_get_connection_info)                                                                     \
    X(MHD_get_connection_values)                                                                   \
    X(MHD_get_daemon_info)                                                                         \
    X(MHD_get_timeout)                                                                             \
    X(MHD_get_version)                                                                             \
    X(MHD_lookup_connection_value)                                                                 \
    X(MHD_queue_response)                                                                          \
    X(MHD_quiesce_daemon)                                                                          \
    X(MHD_resume_connection)                                                                       \
    X(MHD_run)                                                                                     \
    X(MHD_start_daemon)                                                                            \
    X(MHD_stop_daemon)                                                                             \
    X(MHD_suspend_connection)

DYNLIB_DECLARE(srv_mhd, SRV_MHD_SYMS)

#ifdef ADX_LAZY_MHD
#define MHD_add_response_header DYNLIB_CALL(srv_mhd, MHD_add_response_header)
#define MHD_create_response_from_buffer DYNLIB_CALL(srv_mhd, MHD_create_response_from_buffer)
#define MHD_create_response_from_fd_at_offset64                                                    \
    DYNLIB_CALL(srv_mhd, MHD_create_response_from_fd_at_offset64)
#define MHD_destroy_response DYNLIB_CALL(srv_mhd, MHD_destroy_response)
#define MHD_get_connection_info DYNLIB_CALL(srv_mhd, MHD_get_connection_info)
#define MHD_get_connection_values DYNLIB_CALL(srv_mhd, MHD_get_connection_values)
#define MHD_get_daemon_info DYNLIB_CALL(srv_mhd, MHD_get_daemon_info)
#define MHD_get_timeout DYNLIB_CALL(srv_mhd, MHD_get_timeout)
#define MHD_get_version DYNLIB_CALL(srv_mhd, MHD_get_version)
#define MHD_lookup_connection_value DYNLIB_CALL(srv_mhd, MHD_lookup_connection_value)
#define MHD_queue_response DYNLIB_CALL(srv_mhd, MHD_queue_response)
#define MHD_quiesce_daemon DYNLIB_CALL(srv_mhd, MHD_quiesce_daemon)
#define MHD_resume_connection DYNLIB_CALL(srv_mhd, MHD_resume_connection)
#define MHD_run DYNLIB_CALL(srv_mhd, MHD_run)
#define MHD_start_daemon DYNLIB_CALL(srv_mhd, MHD_start_daemon)
#define MHD_stop_daemon DYNLIB_CALL(srv_mhd, MHD_stop_daemon)
#define MHD_suspend_connection DYNLIB_CALL(srv_mhd, MHD_suspend_connection)
#endif

#endif
