/* For C tests that need a real NATS server with JetStream: starts Debian's nats-server on a free
 * loopback port with its store in a scratch directory, waits until JetStream answers, and kills it
 * (also when the test process dies: PR_SET_PDEATHSIG). Header-only, like lf_test_mariadb.h.
 * nats-server is installed by scripts/install-deps.sh, so a missing one is a failure, not a skip. */
#ifndef LF_TEST_NATS_H
#define LF_TEST_NATS_H

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lf_jetstream.h"

struct lf_test_nats {
    pid_t pid;
    unsigned port;
    char dir[256];     /* scratch: store/, server.log */
    char url[64];
    char extra[8][512]; /* extra nats-server arguments, e.g. "--user", "u" */
    int nextra;
};

static inline const char *lf_test_nats_binary(void)
{
    static const char *const paths[] = {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

static inline unsigned lf_test_nats_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    unsigned port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static inline int64_t lf_test_nats_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects with o (servers filled in when empty) until JetStream answers or timeout_ms passed. */
static inline int lf_test_nats_connect(struct lf_test_nats *n, lf_jetstream_options *o, int64_t timeout_ms,
                                       lf_jetstream **out)
{
    if (!o->nservers) {
        o->servers[0] = n->url;
        o->nservers = 1;
    }
    int64_t deadline = lf_test_nats_now_ms() + timeout_ms;
    int rc;
    for (;;) {
        lf_buf err = LF_BUF_INIT(4096);
        rc = lf_jetstream_connect(o, out, &err);
        if (!rc) {
            /* connected: JetStream is ready once its API answers (it may still be recovering the
             * store after a restart) */
            rc = lf_jetstream_ping(*out, &err);
            if (rc) {
                lf_jetstream_close(*out);
                *out = NULL;
            }
        }
        if (!rc || rc == LF_EAUTH || rc == -EPROTO || lf_test_nats_now_ms() > deadline) {
            if (rc)
                fprintf(stderr, "connecting to the test nats-server: %s\n", err.data ? err.data : lf_strerror(rc));
            lf_buf_free(&err);
            return rc;
        }
        lf_buf_free(&err);
        struct timespec ts = {0, 20 * 1000 * 1000}; /* poll interval, not a wait for an outcome */
        nanosleep(&ts, NULL);
    }
}

/* Starts (or, after lf_test_nats_kill, restarts on the same port and store) the server. */
static inline int lf_test_nats_start(struct lf_test_nats *n)
{
    const char *bin = lf_test_nats_binary();
    if (!bin) {
        fprintf(stderr, "nats-server is not installed (scripts/install-deps.sh installs it)\n");
        return -1;
    }
    if (!n->dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(n->dir, sizeof n->dir, "%s/lf-nats-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(n->dir))
            return -1;
        n->port = lf_test_nats_free_port();
        if (!n->port)
            return -1;
        snprintf(n->url, sizeof n->url, "nats://127.0.0.1:%u", n->port);
    }
    char port[16], store[300], log[300];
    snprintf(port, sizeof port, "%u", n->port);
    snprintf(store, sizeof store, "%s/store", n->dir);
    snprintf(log, sizeof log, "%s/server.log", n->dir);
    const char *argv[40] = {bin, "-a", "127.0.0.1", "-p", port, "-js", "-sd", store, "-l", log};
    int argc = 10;
    for (int i = 0; i < n->nextra && argc < 38; i++)
        argv[argc++] = n->extra[i];
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    n->pid = pid;
    return 0;
}

static inline void lf_test_nats_kill(struct lf_test_nats *n)
{
    if (n->pid > 0) {
        kill(n->pid, SIGKILL);
        waitpid(n->pid, NULL, 0);
        n->pid = 0;
    }
}

/* Kills the server and removes its scratch directory. */
static inline void lf_test_nats_stop(struct lf_test_nats *n)
{
    lf_test_nats_kill(n);
    if (n->dir[0] && !getenv("LF_KEEP_SCRATCH")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", n->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", n->dir);
    }
    n->dir[0] = '\0';
}

/* A server shared by a cmocka test group and one connection to it with the default options; the
 * group setup and teardown below make and free it (state points at it). */
struct lf_test_nats_group {
    struct lf_test_nats server;
    lf_jetstream *js;
};

static inline int lf_test_nats_group_setup(void **state)
{
    struct lf_test_nats_group *g = calloc(1, sizeof *g);
    if (!g || lf_test_nats_start(&g->server))
        return -1;
    lf_jetstream_options o;
    lf_jetstream_options_init(&o);
    if (lf_test_nats_connect(&g->server, &o, 20000, &g->js))
        return -1;
    *state = g;
    return 0;
}

static inline int lf_test_nats_group_teardown(void **state)
{
    struct lf_test_nats_group *g = *state;
    lf_jetstream_close(g->js);
    lf_test_nats_stop(&g->server);
    free(g);
    return 0;
}

#endif
