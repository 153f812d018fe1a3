/*
 * systemd's notify protocol without libsystemd: one datagram per message to
 * $NOTIFY_SOCKET (Type=notify / notify-reload).  Silent when the variable is
 * not set.
 */
#ifndef FPMD_SDNOTIFY_H
#define FPMD_SDNOTIFY_H

#include <stdint.h>

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC once; returns the watchdog period in µs (0 = none). */
uint64_t sdnotify_init(void);
/* Sends "text" (lines such as "READY=1\nSTATUS=..."); 0 or -1. */
int sdnotify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int sdnotify_enabled(void);

#endif
