#include "lf_systemd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_log.h"

int lf_systemd_notify_socket(const char *socket_path, const char *state)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t n = strlen(socket_path);
    if (n == 0 || n >= sizeof addr.sun_path)
        return -EINVAL;
    if (socket_path[0] != '/' && socket_path[0] != '@')
        return -EAFNOSUPPORT; /* vsock: and other transports are not spoken here */
    memcpy(addr.sun_path, socket_path, n);
    if (addr.sun_path[0] == '@')
        addr.sun_path[0] = '\0'; /* abstract namespace */
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (socket_path[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t w;
    do
        w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, alen);
    while (w < 0 && errno == EINTR);
    int rc = w < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int lf_systemd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    return lf_systemd_notify_socket(path, state);
}

int lf_systemd_ready(void)
{
    return lf_systemd_notify("READY=1");
}

int lf_systemd_stopping(void)
{
    return lf_systemd_notify("STOPPING=1");
}

int lf_systemd_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[96];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
             (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
    return lf_systemd_notify(msg);
}

int lf_systemd_status(const char *fmt, ...)
{
    char msg[512];
    memcpy(msg, "STATUS=", 7);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + 7, sizeof msg - 7, fmt, ap);
    va_end(ap);
    /* one line: a newline would start another assignment */
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return lf_systemd_notify(msg);
}

int lf_systemd_watchdog_ping(void)
{
    return lf_systemd_notify("WATCHDOG=1");
}

int lf_systemd_watchdog_usec(uint64_t *usec)
{
    *usec = 0;
    const char *s = getenv("WATCHDOG_USEC");
    if (!s)
        return 0;
    char *end;
    errno = 0;
    unsigned long long u = strtoull(s, &end, 10);
    if (errno || end == s || *end || u == 0)
        return -EINVAL;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid) {
        long long p = strtoll(pid, &end, 10);
        if (end == pid || *end || p <= 0)
            return -EINVAL;
        if (p != (long long)getpid())
            return 0;
    }
    *usec = u;
    return 0;
}

struct lf_systemd_watchdog {
    uv_timer_t timer;
};

static void watchdog_closed(uv_handle_t *h)
{
    lf_free(h->data);
}

static void watchdog_tick(uv_timer_t *t)
{
    int rc = lf_systemd_watchdog_ping();
    if (rc)
        LF_WARN("systemd", "watchdog ping failed: %s", strerror(-rc));
}

int lf_systemd_watchdog_start(uv_loop_t *loop, lf_systemd_watchdog **out)
{
    *out = NULL;
    uint64_t usec;
    int rc = lf_systemd_watchdog_usec(&usec);
    if (rc || usec == 0)
        return rc;
    lf_systemd_watchdog *w = lf_calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    uint64_t half_ms = usec / 2000;
    if (half_ms == 0)
        half_ms = 1;
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    uv_unref((uv_handle_t *)&w->timer);
    rc = uv_timer_start(&w->timer, watchdog_tick, 0, half_ms);
    if (rc) {
        uv_close((uv_handle_t *)&w->timer, watchdog_closed);
        return rc;
    }
    LF_DEBUG("systemd", "watchdog: pinging every %" PRIu64 " ms", half_ms);
    *out = w;
    return 0;
}

void lf_systemd_watchdog_stop(lf_systemd_watchdog *w)
{
    if (!w)
        return;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, watchdog_closed);
}
