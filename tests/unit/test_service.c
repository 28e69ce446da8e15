/* lf_service: listen address parsing, and a daemon in a child process with the hooks a program
 * uses (routes, checks, metrics, stop and reload hooks), drained by SIGTERM while a request body is
 * still arriving. The five real programs are exercised by tests/integration/test_programs.py. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lf_service.h"

static void parse_listen(void **state)
{
    char host[64];
    int port;
    assert_int_equal(lf_service_parse_listen("127.0.0.1:8440", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8440);
    assert_int_equal(lf_service_parse_listen("[::1]:0", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(lf_service_parse_listen("0.0.0.0:65535", host, sizeof host, &port), 0);
    assert_int_equal(port, 65535);
    const char *bad[] = {"", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:8a",
                         "::1:80", "[::1]80", "[::1", "[]:80", "h:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (lf_service_parse_listen(bad[i], host, sizeof host, &port) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    char tiny[4];
    assert_int_equal(lf_service_parse_listen("127.0.0.1:1", tiny, sizeof tiny, &port), -EINVAL);
}

static void validate_listen(void **state)
{
    lf_buf err = LF_BUF_INIT(256);
    const char *ok = "[::1]:8440";
    assert_int_equal(lf_service_validate_listen(&ok, &err), 0);
    const char *name = "localhost:8440";
    assert_int_equal(lf_service_validate_listen(&name, &err), -EINVAL);
    assert_string_equal(lf_buf_cstr(&err), "\"localhost\" is not a numeric IPv4 or IPv6 address");
    lf_buf_reset(&err);
    const char *bad = "nowhere";
    assert_int_equal(lf_service_validate_listen(&bad, &err), -EINVAL);
    assert_string_equal(lf_buf_cstr(&err), "\"nowhere\" is not HOST:PORT or [IPV6]:PORT");
    lf_buf_free(&err);
}

/* ---- a small program built on lf_service ---- */

struct demo_config {
    lf_service_config common;
    uint64_t answer;
};

static const lf_config_option demo_options[] = {
    LF_SERVICE_COMMON_OPTIONS("127.0.0.1:0"),
    {"demo", "answer", LF_CFG_UINT, "42", offsetof(struct demo_config, answer), .flags = LF_CFG_RELOADABLE,
     .description = "Answer."},
};

static const lf_config_table demo_table = {
    .program = "demo", .default_path = "/nonexistent/demo.conf", .options = demo_options,
    .n_options = sizeof demo_options / sizeof demo_options[0], .target_size = sizeof(struct demo_config),
};

static char dir[64];
static lf_counter *echoes;

static void write_marker(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void handle_echo(lf_http_request *req)
{
    lf_service *svc = req->route_data;
    struct demo_config *c = lf_service_config_data(svc);
    lf_counter_inc(echoes);
    char text[64];
    int n = snprintf(text, sizeof text, "%llu %llu", (unsigned long long)req->body.len,
                     (unsigned long long)c->answer);
    lf_http_respond(req, 200, "text/plain", text, (size_t)n, NULL);
}

static enum lf_health demo_check(lf_service *svc, void *arg, lf_buf *detail)
{
    lf_buf_msgf(detail, "half");
    return LF_HEALTH_DEGRADED;
}

static int demo_start(lf_service *svc)
{
    echoes = lf_metrics_counter(lf_service_metrics(svc), "demo_echoes_total", "Echoes.", NULL);
    if (!echoes)
        return -ENOMEM;
    int rc = lf_service_add_check(svc, "thing", demo_check, NULL);
    if (!rc)
        rc = lf_http_server_route(lf_service_http(svc), LF_HTTP_POST, "/echo", 1 << 20, handle_echo, NULL, svc);
    return rc;
}

static void demo_stop(lf_service *svc)
{
    write_marker("stopped", "yes");
}

static void demo_reload(lf_service *svc, const char *changed)
{
    write_marker("reloaded", changed);
}

static int demo_hello(lf_service *svc, int argc, char **argv)
{
    struct demo_config *c = lf_service_config_data(svc);
    printf("hello %s %llu\n", argc > 1 ? argv[1] : "", (unsigned long long)c->answer);
    return 3;
}

static const lf_service_command demo_commands[] = {
    {"hello", "NAME", "Greets.", demo_hello, .no_config = false},
};

static const lf_service_def demo_def = {
    .program = "demo", .summary = "A test program.", .config = &demo_table,
    .commands = demo_commands, .n_commands = 1,
    .start = demo_start, .stop = demo_stop, .reload = demo_reload,
};

static char *slurp(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Reads until the server closes (every request here says Connection: close, or the server drains). */
static char *read_all(int fd)
{
    static char buf[65536];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = recv(fd, buf + n, sizeof buf - 1 - n, 0)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    return buf;
}

static char *request(int port, const char *text)
{
    int fd = connect_to(port);
    send_all(fd, text);
    return read_all(fd);
}

static void daemon_lifecycle(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/lfsvc-%d", (int)getpid());
    char conf[128], port_file[128];
    snprintf(conf, sizeof conf, "%s/demo.conf", dir);
    snprintf(port_file, sizeof port_file, "%s/port", dir);
    assert_int_equal(mkdir(dir, 0700) == 0 || errno == EEXIST, 1);
    FILE *f = fopen(conf, "w");
    fprintf(f, "[http]\nlisten = 127.0.0.1:0\nport_file = %s\n[demo]\nanswer = 1\n", port_file);
    fclose(f);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = {"demo", "--config", conf, NULL};
        exit(lf_service_main(&demo_def, 3, argv)); /* exit, not _exit: LeakSanitizer checks the child */
    }
    int port = 0;
    for (int i = 0; i < 300 && !port; i++) {
        char *p = slurp("port");
        if (p)
            port = atoi(p);
        else
            sleep_ms(20);
    }
    assert_true(port > 0);

    char *resp = request(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(resp, "HTTP/1.1 200 "));
    assert_non_null(strstr(resp, "\"status\":\"degraded\",\"program\":\"demo\""));
    assert_non_null(strstr(resp, "\"checks\":{\"thing\":{\"status\":\"degraded\",\"detail\":\"half\"}}"));

    resp = request(port, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello");
    assert_non_null(strstr(resp, "\r\n\r\n5 1"));
    resp = request(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(resp, "\n# TYPE demo_echoes_total counter\ndemo_echoes_total 1\n"));

    /* SIGHUP: a reloadable option changes, the reload hook hears of it, the route sees it */
    f = fopen(conf, "w");
    fprintf(f, "[http]\nlisten = 127.0.0.1:0\nport_file = %s\n[demo]\nanswer = 2\n", port_file);
    fclose(f);
    kill(pid, SIGHUP);
    char *reloaded = NULL;
    for (int i = 0; i < 300 && !(reloaded = slurp("reloaded")); i++)
        sleep_ms(20);
    assert_non_null(reloaded);
    assert_string_equal(reloaded, "[demo] answer");
    resp = request(port, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx");
    assert_non_null(strstr(resp, "\r\n\r\n1 2"));

    /* SIGTERM while the body is still arriving: the request completes, then the process exits 0 */
    int fd = connect_to(port);
    send_all(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello");
    sleep_ms(200);
    kill(pid, SIGTERM);
    sleep_ms(300);
    int status;
    assert_int_equal(waitpid(pid, &status, WNOHANG), 0); /* still waiting for the body */
    assert_null(slurp("stopped"));
    /* new connections are no longer accepted */
    int refused = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(refused, (struct sockaddr *)&a, sizeof a), -1);
    close(refused);
    send_all(fd, "world");
    resp = read_all(fd);
    assert_non_null(strstr(resp, "HTTP/1.1 200 "));
    assert_non_null(strstr(resp, "\r\n\r\n10 2"));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_non_null(slurp("stopped"));
    assert_null(slurp("port")); /* removed at exit */
    unlink(conf);
    char path[128];
    snprintf(path, sizeof path, "%s/stopped", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/reloaded", dir);
    unlink(path);
    rmdir(dir);
}

static void commands(void **state)
{
    /* a command runs with the loaded configuration and its exit code is the program's */
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        char *argv[] = {"demo", "--set", "demo.answer=7", "hello", "world", NULL};
        exit(lf_service_main(&demo_def, 5, argv));
    }
    close(out[1]);
    char buf[256];
    ssize_t n = read(out[0], buf, sizeof buf - 1);
    close(out[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "hello world 7\n");
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_listen),
        cmocka_unit_test(validate_listen),
        cmocka_unit_test(daemon_lifecycle),
        cmocka_unit_test(commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
