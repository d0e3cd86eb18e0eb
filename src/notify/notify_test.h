/* notify internals for the unit tests; not part of adx_notify.h. */
#ifndef NOTIFY_TEST_H
#define NOTIFY_TEST_H

/* The same datagram sender the library uses without libsystemd, exposed so
 * that it is tested even on builds that have libsystemd. `state` is sent as
 * is (no trailing newline needed). */
int ntf_send_raw(const char *state);

#endif
