/* lf_systemd: notifications arrive on a unix datagram socket given as NOTIFY_SOCKET, exactly as
 * systemd would read them; the watchdog follows WATCHDOG_USEC/WATCHDOG_PID and pings from the loop. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "lf_systemd.h"

static char sock_path[108];

static int bind_socket(const char *path, bool abstract)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t n = strlen(path);
    memcpy(a.sun_path, path, n);
    if (abstract)
        a.sun_path[0] = '\0';
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + !abstract);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, len), 0);
    return fd;
}

/* The next datagram, or "" after a short wait. */
static void recv_msg(int fd, char *buf, size_t size)
{
    struct pollfd p = {fd, POLLIN, 0};
    buf[0] = '\0';
    if (poll(&p, 1, 500) != 1)
        return;
    ssize_t n = recv(fd, buf, size - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
}

static int setup(void **state)
{
    snprintf(sock_path, sizeof sock_path, "/tmp/lf-notify-%d", (int)getpid());
    unlink(sock_path);
    int *fd = malloc(sizeof *fd);
    *fd = bind_socket(sock_path, false);
    *state = fd;
    return 0;
}

static int teardown(void **state)
{
    int *fd = *state;
    close(*fd);
    free(fd);
    unlink(sock_path);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    return 0;
}

static void notifications(void **state)
{
    int fd = *(int *)*state;
    char buf[1024];
    setenv("NOTIFY_SOCKET", sock_path, 1);
    assert_int_equal(lf_systemd_ready(), 0);
    recv_msg(fd, buf, sizeof buf);
    assert_string_equal(buf, "READY=1");
    assert_int_equal(lf_systemd_status("listening on %s:%d\nsecond line", "127.0.0.1", 8440), 0);
    recv_msg(fd, buf, sizeof buf);
    assert_string_equal(buf, "STATUS=listening on 127.0.0.1:8440 second line");
    assert_int_equal(lf_systemd_reloading(), 0);
    recv_msg(fd, buf, sizeof buf);
    assert_true(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
    assert_true(strtoull(buf + 27, NULL, 10) > 0);
    assert_int_equal(lf_systemd_stopping(), 0);
    recv_msg(fd, buf, sizeof buf);
    assert_string_equal(buf, "STOPPING=1");
    assert_int_equal(lf_systemd_watchdog_ping(), 0);
    recv_msg(fd, buf, sizeof buf);
    assert_string_equal(buf, "WATCHDOG=1");

    /* not under systemd: nothing is sent, nothing fails */
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(lf_systemd_ready(), 0);
    recv_msg(fd, buf, sizeof buf);
    assert_string_equal(buf, "");
}

static void own_protocol(void **state)
{
    int fd = *(int *)*state;
    char buf[256];
    assert_int_equal(lf_systemd_notify_socket(sock_path, "READY=1\nSTATUS=x"), 0);
    recv_msg(fd, buf, sizeof buf);
    assert_string_equal(buf, "READY=1\nSTATUS=x");

    char abstract[64];
    snprintf(abstract, sizeof abstract, "@lf-notify-test-%d", (int)getpid());
    int afd = bind_socket(abstract, true);
    assert_int_equal(lf_systemd_notify_socket(abstract, "STOPPING=1"), 0);
    recv_msg(afd, buf, sizeof buf);
    assert_string_equal(buf, "STOPPING=1");
    close(afd);

    assert_int_equal(lf_systemd_notify_socket("/nonexistent/dir/sock", "READY=1"), -ENOENT);
    assert_int_equal(lf_systemd_notify_socket("relative", "READY=1"), -EAFNOSUPPORT);
    assert_int_equal(lf_systemd_notify_socket("", "READY=1"), -EINVAL);
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void watchdog(void **state)
{
    int fd = *(int *)*state;
    char buf[256], pid[32];
    uint64_t usec = 1;
    setenv("NOTIFY_SOCKET", sock_path, 1);

    unsetenv("WATCHDOG_USEC");
    assert_int_equal(lf_systemd_watchdog_usec(&usec), 0);
    assert_int_equal(usec, 0);

    /* meant for another process */
    setenv("WATCHDOG_USEC", "100000", 1);
    setenv("WATCHDOG_PID", "1", 1);
    assert_int_equal(lf_systemd_watchdog_usec(&usec), 0);
    assert_int_equal(usec, 0);

    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(lf_systemd_watchdog_usec(&usec), 0);
    assert_int_equal(usec, 100000);

    uv_loop_t loop;
    uv_loop_init(&loop);
    lf_systemd_watchdog *w = NULL;
    assert_int_equal(lf_systemd_watchdog_start(&loop, &w), 0);
    assert_non_null(w);
    uv_timer_t stop;
    uv_timer_init(&loop, &stop);
    uv_timer_start(&stop, stop_loop, 180, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* pings at 0, 50, 100 and 150 ms */
    int pings = 0;
    for (;;) {
        recv_msg(fd, buf, sizeof buf);
        if (!*buf)
            break;
        assert_string_equal(buf, "WATCHDOG=1");
        pings++;
    }
    assert_in_range(pings, 3, 5);
    lf_systemd_watchdog_stop(w);
    uv_close((uv_handle_t *)&stop, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* off: no timer */
    unsetenv("WATCHDOG_USEC");
    uv_loop_init(&loop);
    assert_int_equal(lf_systemd_watchdog_start(&loop, &w), 0);
    assert_null(w);
    lf_systemd_watchdog_stop(w);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(notifications, setup, teardown),
        cmocka_unit_test_setup_teardown(own_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(watchdog, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
