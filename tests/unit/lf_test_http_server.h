/* For C tests that talk HTTP to a peer: a loopback HTTP/1.1 server on a thread that answers from a
 * script (one connection per request), records the requests it saw and the bodies it accepted.
 * Header-only so that each test program includes it (as lf_test_mariadb.h), after cmocka.h.
 * Loopback only. */
#ifndef LF_TEST_HTTP_SERVER_H
#define LF_TEST_HTTP_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A loopback HTTP/1.1 server on a thread, answering from a script (one connection per request). */
struct lf_test_http_server {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t mu;
    int stop;
    /* script: statuses answered in turn (then 200); retry_after seconds, -1 for none */
    int statuses[64];
    int retry_after_s[64];
    int n_script;
    const char *body_for_path[8][2]; /* path -> answer body; "" path matches any */
    int n_requests;
    char last_auth[256];
    char bodies[64][16384]; /* request bodies answered 200 */
    int n_ok;
};

static void lf_test_http_server_handle(struct lf_test_http_server *s, int c)
{
    struct timeval tv = {2, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static __thread char req[65536];
    size_t len = 0;
    char *hdr_end = NULL;
    while (len < sizeof(req) - 1 && !hdr_end) {
        ssize_t r = recv(c, req + len, sizeof(req) - 1 - len, 0);
        if (r <= 0)
            return;
        len += (size_t)r;
        req[len] = '\0';
        hdr_end = strstr(req, "\r\n\r\n");
    }
    if (!hdr_end)
        return;
    size_t body_off = (size_t)(hdr_end + 4 - req), clen = 0;
    const char *cl = strcasestr(req, "\r\ncontent-length:");
    if (cl && cl < hdr_end)
        clen = strtoul(cl + 17, NULL, 10);
    while (len < body_off + clen && len < sizeof(req) - 1) {
        ssize_t r = recv(c, req + len, sizeof(req) - 1 - len, 0);
        if (r <= 0)
            return;
        len += (size_t)r;
    }
    req[len] = '\0';
    char path[256] = "";
    sscanf(req, "%*s %255s", path);
    pthread_mutex_lock(&s->mu);
    int i = s->n_requests++;
    int status = i < s->n_script ? s->statuses[i] : 200;
    int ra = i < s->n_script ? s->retry_after_s[i] : -1;
    const char *auth = strcasestr(req, "\r\nauthorization: ");
    s->last_auth[0] = '\0';
    if (auth && auth < hdr_end)
        sscanf(auth + 17, "%255[^\r]", s->last_auth);
    if (status == 200 && clen > 0 && s->n_ok < 64) /* posts (webhooks), not probes */
        snprintf(s->bodies[s->n_ok++], sizeof(s->bodies[0]), "%s", req + body_off);
    const char *answer = "ok";
    for (int k = 0; k < 8 && s->body_for_path[k][0]; k++)
        if (!s->body_for_path[k][0][0] || strcmp(s->body_for_path[k][0], path) == 0) {
            answer = s->body_for_path[k][1];
            break;
        }
    pthread_mutex_unlock(&s->mu);
    char head[512];
    int hl = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n", status,
                      strlen(answer));
    if (ra >= 0)
        hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "Retry-After: %d\r\n", ra);
    hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "\r\n");
    if (send(c, head, (size_t)hl, MSG_NOSIGNAL) < 0 || send(c, answer, strlen(answer), MSG_NOSIGNAL) < 0)
        return;
}

static void *lf_test_http_server_main(void *arg)
{
    struct lf_test_http_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        lf_test_http_server_handle(s, c);
        close(c);
    }
    return NULL;
}

static void lf_test_http_server_start(struct lf_test_http_server *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t alen = sizeof(a);
    getsockname(s->fd, (struct sockaddr *)&a, &alen);
    s->port = ntohs(a.sin_port);
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(pthread_create(&s->thread, NULL, lf_test_http_server_main, s), 0);
}

static void lf_test_http_server_stop(struct lf_test_http_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
}

#endif
