/* The queue client against a small in-test HTTP server that plays the receiver's queue API:
 * messages parsed, bearer token sent, receive retried through refused connections and 503s,
 * acks batched into one request, visibility extended while tracked and a stale receipt reported
 * lost, 401 reported as LF_EAUTH, stop ends a waiting receive. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lf_error.h"
#include "lf_queue_client.h"

typedef struct fake {
    int lfd;
    int port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    int fail_503;        /* answer this many requests with 503 first */
    int status_override; /* answer every request with this status (0: off) */
    int extend_404;      /* extend answers 404 */
    int receives, acks, extends, nacks;
    int ack_receipts;
    char last_auth[256];
    char acked[4096];
} fake;

static fake F;

static void respond(int fd, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     status, strlen(body));
    if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0)
        return;
}

static void handle(int fd, const char *path, const char *headers, const char *body)
{
    pthread_mutex_lock(&F.mu);
    const char *a = strcasestr(headers, "\r\nAuthorization: ");
    if (a) {
        a += 17;
        size_t l = strcspn(a, "\r");
        snprintf(F.last_auth, sizeof F.last_auth, "%.*s", (int)l, a);
    }
    int status = 200;
    char out[1024] = "{}";
    if (F.status_override) {
        status = F.status_override;
        snprintf(out, sizeof out, "{\"error\":\"x\",\"message\":\"y\"}");
    } else if (F.fail_503 > 0) {
        F.fail_503--;
        status = 503;
        snprintf(out, sizeof out, "{\"error\":\"busy\",\"message\":\"busy\"}");
    } else if (strstr(path, "/v1/queues/sessions/receive")) {
        F.receives++;
        snprintf(out, sizeof out,
                 "{\"messages\":[{\"id\":7,\"receipt\":\"r-7-%d\",\"receive_count\":2,\"sent_ms\":1700000000123,"
                 "\"visible_at_ms\":1,\"body\":\"0123456789abcdef0123456789abcdef\"}]}",
                 F.receives);
    } else if (strstr(path, "/v1/queues/sessions/ack")) {
        F.acks++;
        int n = 0;
        for (const char *p = strstr(body, "\"r-"); p; p = strstr(p + 1, "\"r-"))
            n++;
        F.ack_receipts += n;
        strncat(F.acked, body, sizeof F.acked - strlen(F.acked) - 1);
        char res[1024] = "";
        for (int i = 0; i < n && strlen(res) < sizeof res - 16; i++)
            strcat(res, i ? ",\"acked\"" : "\"acked\"");
        snprintf(out, sizeof out, "{\"acked\":%d,\"results\":[%s]}", n, res);
    } else if (strstr(path, "/v1/queues/sessions/extend")) {
        F.extends++;
        if (F.extend_404) {
            status = 404;
            snprintf(out, sizeof out, "{\"error\":\"receipt_not_found\",\"message\":\"stale\"}");
        } else {
            snprintf(out, sizeof out, "{\"ok\":true}");
        }
    } else if (strstr(path, "/v1/queues/sessions/nack")) {
        F.nacks++;
        snprintf(out, sizeof out, "{\"ok\":true}");
    } else {
        status = 404;
    }
    pthread_mutex_unlock(&F.mu);
    respond(fd, status, out);
}

static void *conn_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[65536];
    size_t len = 0;
    for (;;) {
        char *end = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t hlen = (size_t)(end - buf) + 4;
            size_t clen = 0;
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (cl && cl < end)
                clen = strtoul(cl + 17, NULL, 10);
            if (len >= hlen + clen) {
                char path[512] = "", hdrs[4096], body[16384];
                sscanf(buf, "%*s %511s", path);
                snprintf(hdrs, sizeof hdrs, "%.*s", (int)hlen, buf);
                snprintf(body, sizeof body, "%.*s", (int)clen, buf + hlen);
                handle(fd, path, hdrs, body);
                memmove(buf, buf + hlen + clen, len - hlen - clen);
                len -= hlen + clen;
                continue;
            }
        }
        ssize_t n = read(fd, buf + len, sizeof buf - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    close(fd);
    return NULL;
}

static void *accept_thread(void *arg)
{
    (void)arg;
    while (!F.stop) {
        struct pollfd p = {F.lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(F.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        pthread_create(&t, NULL, conn_thread, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
    return NULL;
}

static void fake_listen(int port)
{
    F.lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(F.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(F.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(F.lfd, (struct sockaddr *)&sa, &sl);
    F.port = ntohs(sa.sin_port);
    assert_int_equal(listen(F.lfd, 64), 0);
    F.stop = 0;
    pthread_create(&F.thread, NULL, accept_thread, NULL);
}

static void fake_close(void)
{
    F.stop = 1;
    pthread_join(F.thread, NULL);
    close(F.lfd);
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    pthread_mutex_init(&F.mu, NULL);
    fake_listen(0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_close();
    return 0;
}

static lf_queue_client *client(unsigned visibility_s)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", F.port);
    lf_queue_client_opts o;
    lf_queue_client_opts_default(&o);
    o.base_url = url;
    o.token = "tok-123";
    o.wait_s = 1;
    o.visibility_s = visibility_s;
    o.backoff_base_ms = 20;
    o.backoff_max_ms = 200;
    o.ack_delay_ms = 50;
    lf_queue_client *qc = NULL;
    assert_int_equal(lf_queue_client_new(&o, &qc), 0);
    return qc;
}

static int fake_get(int *field)
{
    pthread_mutex_lock(&F.mu);
    int v = *field;
    pthread_mutex_unlock(&F.mu);
    return v;
}

static void receives_messages_with_token(void **state)
{
    (void)state;
    lf_queue_client *qc = client(30);
    lf_queue_client_msg *m = NULL;
    size_t n = 0;
    assert_int_equal(lf_queue_client_receive(qc, 4, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].id, 7);
    assert_string_equal(m[0].receipt, "r-7-1");
    assert_int_equal(m[0].receive_count, 2);
    assert_int_equal(m[0].sent_ms, 1700000000123LL);
    assert_string_equal(m[0].body, "0123456789abcdef0123456789abcdef");
    assert_string_equal(F.last_auth, "Bearer tok-123");
    lf_queue_client_msgs_free(m, n);
    lf_queue_client_close(qc, 1000);
}

static void receive_waits_out_503s(void **state)
{
    (void)state;
    F.fail_503 = 3;
    lf_queue_client *qc = client(30);
    lf_queue_client_msg *m = NULL;
    size_t n = 0;
    assert_int_equal(lf_queue_client_receive(qc, 1, &m, &n), 0);
    assert_int_equal(n, 1);
    lf_queue_client_stats st;
    lf_queue_client_stats_get(qc, &st);
    assert_int_equal(st.receive_failures, 3);
    lf_queue_client_msgs_free(m, n);
    lf_queue_client_close(qc, 1000);
}

static void *restart_later(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 400 * 1000000L};
    nanosleep(&ts, NULL);
    fake_listen(F.port);
    return NULL;
}

static void receive_reconnects_when_receiver_returns(void **state)
{
    (void)state;
    fake_close(); /* the receiver is away: connections are refused */
    lf_queue_client *qc = client(30);
    pthread_t t;
    pthread_create(&t, NULL, restart_later, NULL);
    lf_queue_client_msg *m = NULL;
    size_t n = 0;
    assert_int_equal(lf_queue_client_receive(qc, 1, &m, &n), 0);
    assert_int_equal(n, 1);
    pthread_join(t, NULL);
    lf_queue_client_stats st;
    lf_queue_client_stats_get(qc, &st);
    assert_true(st.receive_failures >= 1);
    lf_queue_client_msgs_free(m, n);
    lf_queue_client_close(qc, 1000);
}

static void acks_are_batched(void **state)
{
    (void)state;
    lf_queue_client *qc = client(30);
    char r[32];
    for (int i = 0; i < 20; i++) {
        snprintf(r, sizeof r, "r-%d", i);
        assert_int_equal(lf_queue_client_ack(qc, r), 0);
    }
    assert_int_equal(lf_queue_client_flush(qc, 5000), 0);
    assert_int_equal(fake_get(&F.ack_receipts), 20);
    assert_true(fake_get(&F.acks) <= 2);
    assert_non_null(strstr(F.acked, "\"r-19\""));
    lf_queue_client_stats st;
    lf_queue_client_stats_get(qc, &st);
    assert_int_equal(st.acked, 20);
    lf_queue_client_close(qc, 1000);
}

static void acks_survive_an_absent_receiver(void **state)
{
    (void)state;
    lf_queue_client *qc = client(30);
    F.fail_503 = 4;
    assert_int_equal(lf_queue_client_ack(qc, "r-a"), 0);
    assert_int_equal(lf_queue_client_ack(qc, "r-b"), 0);
    assert_int_equal(lf_queue_client_flush(qc, 10000), 0);
    assert_int_equal(fake_get(&F.ack_receipts), 2);
    lf_queue_client_close(qc, 1000);
}

static void tracked_receipts_are_extended(void **state)
{
    (void)state;
    lf_queue_client *qc = client(1); /* extended every 500 ms */
    assert_int_equal(lf_queue_client_track(qc, "r-long"), 0);
    struct timespec ts = {1, 700 * 1000000L};
    nanosleep(&ts, NULL);
    int ext = fake_get(&F.extends);
    assert_true(ext >= 2 && ext <= 5);
    assert_false(lf_queue_client_lost(qc, "r-long"));
    pthread_mutex_lock(&F.mu);
    F.extend_404 = 1;
    pthread_mutex_unlock(&F.mu);
    ts.tv_sec = 1;
    ts.tv_nsec = 0;
    nanosleep(&ts, NULL);
    assert_true(lf_queue_client_lost(qc, "r-long"));
    /* acking untracks: no more extensions */
    lf_queue_client_untrack(qc, "r-long");
    int before = fake_get(&F.extends);
    nanosleep(&ts, NULL);
    assert_int_equal(fake_get(&F.extends), before);
    lf_queue_client_close(qc, 1000);
}

static void unauthorised_is_final(void **state)
{
    (void)state;
    F.status_override = 403;
    lf_queue_client *qc = client(30);
    lf_queue_client_msg *m = NULL;
    size_t n = 0;
    assert_int_equal(lf_queue_client_receive(qc, 1, &m, &n), LF_EAUTH);
    assert_int_equal(lf_queue_client_nack(qc, "r-1", 5), LF_EAUTH);
    lf_queue_client_close(qc, 100);
}

static void *stop_later(void *arg)
{
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    lf_queue_client_stop(arg);
    return NULL;
}

static void stop_ends_a_retrying_receive(void **state)
{
    (void)state;
    F.status_override = 503;
    lf_queue_client *qc = client(30);
    pthread_t t;
    pthread_create(&t, NULL, stop_later, qc);
    lf_queue_client_msg *m = NULL;
    size_t n = 0;
    assert_int_equal(lf_queue_client_receive(qc, 1, &m, &n), LF_ECLOSED);
    pthread_join(t, NULL);
    lf_queue_client_close(qc, 100);
}

static void nack_is_sent(void **state)
{
    (void)state;
    lf_queue_client *qc = client(30);
    assert_int_equal(lf_queue_client_track(qc, "r-n"), 0);
    assert_int_equal(lf_queue_client_nack(qc, "r-n", 3), 0);
    assert_int_equal(fake_get(&F.nacks), 1);
    lf_queue_client_close(qc, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(receives_messages_with_token, setup, teardown),
        cmocka_unit_test_setup_teardown(receive_waits_out_503s, setup, teardown),
        cmocka_unit_test_setup_teardown(receive_reconnects_when_receiver_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(acks_are_batched, setup, teardown),
        cmocka_unit_test_setup_teardown(acks_survive_an_absent_receiver, setup, teardown),
        cmocka_unit_test_setup_teardown(tracked_receipts_are_extended, setup, teardown),
        cmocka_unit_test_setup_teardown(unauthorised_is_final, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_ends_a_retrying_receive, setup, teardown),
        cmocka_unit_test_setup_teardown(nack_is_sent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
