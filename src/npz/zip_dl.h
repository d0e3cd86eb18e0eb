/* libzip through adx_dynlib: zipw.c and csvb.c, the only callers of
 * libzip, include this after <zip.h>, so a process that writes no zip
 * (an h5ad export, the daemon until its first npz) never loads libzip and
 * the libcrypto it pulls in. ADX_LAZY_ZIP (adx_config_build.h) is the
 * soname to dlopen; without it libzip is linked as usual. Internal to the
 * npz and csv writers; zw_begin loads it. */
#ifndef ADX_ZIP_DL_H
#define ADX_ZIP_DL_H

#include <zip.h>

#include "adx_config_build.h"
#include "adx_dynlib.h"

#define ZW_ZIP_SYMS(X)                                                                             \
    X(zip_close)                                                                                   \
    X(zip_dir_add)                                                                                 \
    X(zip_discard)                                                                                 \
    X(zip_error_fini)                                                                              \
    X(zip_error_init)                                                                              \
    X(zip_error_set)                                                                               \
    X(zip_error_strerror)                                                                          \
    X(zip_error_to_data)                                                                           \
    X(zip_file_add)                                                                                \
    X(zip_open_from_source)                                                                        \
    X(zip_register_cancel_callback_with_state)                                                     \
    X(zip_register_progress_callback_with_state)                                                   \
    X(zip_set_file_compression)                                                                    \
    X(zip_source_free)                                                                             \
    X(zip_source_function_create)                                                                  \
    X(zip_source_make_command_bitmap)                                                              \
    X(zip_stat_init)                                                                               \
    X(zip_strerror)

DYNLIB_DECLARE(zw_zip, ZW_ZIP_SYMS)

#ifdef ADX_LAZY_ZIP
#define zip_close DYNLIB_CALL(zw_zip, zip_close)
#define zip_dir_add DYNLIB_CALL(zw_zip, zip_dir_add)
#define zip_discard DYNLIB_CALL(zw_zip, zip_discard)
#define zip_error_fini DYNLIB_CALL(zw_zip, zip_error_fini)
#define zip_error_init DYNLIB_CALL(zw_zip, zip_error_init)
#define zip_error_set DYNLIB_CALL(zw_zip, zip_error_set)
#define zip_error_strerror DYNLIB_CALL(zw_zip, zip_error_strerror)
#define zip_error_to_data DYNLIB_CALL(zw_zip, zip_error_to_data)
#define zip_file_add DYNLIB_CALL(zw_zip, zip_file_add)
#define zip_open_from_source DYNLIB_CALL(zw_zip, zip_open_from_source)
#define zip_register_cancel_callback_with_state                                                    \
    DYNLIB_CALL(zw_zip, zip_register_cancel_callback_with_state)
#define zip_register_progress_callback_with_state                                                  \
    DYNLIB_CALL(zw_zip, zip_register_progress_callback_with_state)
#define zip_set_file_compression DYNLIB_CALL(zw_zip, zip_set_file_compression)
#define zip_source_free DYNLIB_CALL(zw_zip, zip_source_free)
#define zip_source_function_create DYNLIB_CALL(zw_zip, zip_source_function_create)
#define zip_source_make_command_bitmap DYNLIB_CALL(zw_zip, zip_source_make_command_bitmap)
#define zip_stat_init DYNLIB_CALL(zw_zip, zip_stat_init)
#define zip_strerror DYNLIB_CALL(zw_zip, zip_strerror)
#endif

#endif
