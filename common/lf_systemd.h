/* systemd service notification (sd_notify(3)) and the watchdog.
 *
 * The datagram protocol is spoken directly to $NOTIFY_SOCKET (a unix socket path, or "@name" for
 * the abstract namespace), not through libsystemd: it is a few lines, and libsystemd would load
 * libgcrypt, liblzma, liblz4 and libcap into every program, the uploader at the sites included.
 * When NOTIFY_SOCKET is unset (not run by systemd) every call is a no-op returning 0. */
#ifndef LF_SYSTEMD_H
#define LF_SYSTEMD_H

#include "lf_error.h"

#include <stdint.h>
#include <uv.h>

/* Sends a state string ("READY=1", "STATUS=...", several separated by newlines). 0 when sent or
 * when there is no NOTIFY_SOCKET, else a negative errno. */
LF_MUST_CHECK int lf_systemd_notify(const char *state);
/* The same, to socket_path (tests use it directly). */
LF_MUST_CHECK int lf_systemd_notify_socket(const char *socket_path, const char *state);

int lf_systemd_ready(void);     /* READY=1 */
int lf_systemd_stopping(void);  /* STOPPING=1 */
int lf_systemd_reloading(void); /* RELOADING=1 with MONOTONIC_USEC (Type=notify-reload wants it) */
int lf_systemd_status(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* STATUS=... */
LF_MUST_CHECK int lf_systemd_watchdog_ping(void); /* WATCHDOG=1 */

/* The watchdog interval systemd expects pings within (WatchdogSec=): 0 and *usec = 0 when the
 * watchdog is off or meant for another process (WATCHDOG_PID), else 0 and the interval. */
LF_MUST_CHECK int lf_systemd_watchdog_usec(uint64_t *usec);

/* A uv timer on loop that pings at half the watchdog interval. It does not keep the loop alive.
 * *out is NULL when the watchdog is off. */
typedef struct lf_systemd_watchdog lf_systemd_watchdog;
LF_MUST_CHECK int lf_systemd_watchdog_start(uv_loop_t *loop, lf_systemd_watchdog **out);
/* Stops and closes the timer (freed from the loop); NULL is fine. */
void lf_systemd_watchdog_stop(lf_systemd_watchdog *w);

#endif
