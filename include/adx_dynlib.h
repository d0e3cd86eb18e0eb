/* adx_dynlib (prefix dynlib_) — a shared library loaded on first use.
 *
 * The command line's common path (export to h5ad) needs neither the HTTP
 * stack nor libzip nor libsystemd, yet linking them loads about twenty
 * shared objects (gnutls, libcrypto, libgcrypt, ...) into every process:
 * more time than a small export. A module that needs one declares a table
 * of the functions it calls (see DYNLIB_SLOT) and calls dynlib_load before
 * its first call; the build decides (meson option lazy_libs) whether the
 * table is filled by dlopen at that moment or the library is linked as
 * usual, in which case the table is bound to the linked functions and
 * dynlib_load does nothing.
 *
 * Ownership: a dynlib is a static object of its module; loaded once
 * (thread-safe), never unloaded. Errors: a library or symbol that cannot be
 * found is ADX_E_INTERNAL ("... is not installed"), dlerror's text in the
 * log-only cause; every later call gives the same answer.
 */
#ifndef ADX_DYNLIB_H
#define ADX_DYNLIB_H

#include <stdbool.h>
#include <stddef.h>

#include "adx_err.h"

typedef struct dynlib {
    const char *soname;       /* "libzip.so.4"; NULL when linked */
    const char *const *names; /* symbol names ... */
    void **slots;             /* ... and where each address goes */
    size_t n;
    bool tried, ok;
    char why[256]; /* dlerror() of the failure */
} dynlib;

/* 0 once every symbol is bound; -1 with `err` set (err may be NULL). */
int dynlib_load(dynlib *l, adx_err *err);

/* A module's table, from an X-macro list of the functions it calls:
 *
 *   #define ZW_ZIP_SYMS(X) X(zip_close) X(zip_file_add)
 *   DYNLIB_DECLARE(zw_zip, ZW_ZIP_SYMS)            (header, before the below)
 *   #define zip_close DYNLIB_CALL(zw_zip, zip_close)  (only when lazy)
 *   DYNLIB_DEFINE(zw_zip, ZW_ZIP_SYMS, "libzip.so.4" or NULL)  (one .c file)
 *
 * Each call then goes through a pointer of the function's own type (taken
 * from the library's header), so the compiler still checks every call.
 * A function's slot index is named after it, so it is in one table only. */
#define DYNLIB_INDEX_(f) DYNLIB_I_##f,
#define DYNLIB_TYPE_(f) typedef __typeof__(f) dynlib_t_##f;
#define DYNLIB_NAME_(f) #f,
#define DYNLIB_DECLARE(name, SYMS)                                                                 \
    enum { SYMS(DYNLIB_INDEX_) name##_n_ };                                                        \
    SYMS(DYNLIB_TYPE_)                                                                             \
    extern void *name##_slots[];                                                                   \
    extern dynlib name;
#define DYNLIB_DEFINE(name, SYMS, soname)                                                          \
    static const char *const name##_names_[] = {SYMS(DYNLIB_NAME_)};                               \
    void *name##_slots[name##_n_];                                                                 \
    dynlib name = {soname, name##_names_, name##_slots, name##_n_, false, false, ""};
#define DYNLIB_CALL(name, f) (*(dynlib_t_##f *)name##_slots[DYNLIB_I_##f])

#endif
