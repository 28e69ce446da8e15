#include "lf_service.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_failpoint.h"
#include "lf_json.h"
#include "lf_log.h"
#include "lf_manpage.h"
#include "lf_run_as.h"
#include "lf_systemd.h"

#ifndef LF_VERSION
#define LF_VERSION "unknown"
#endif

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define MAX_OVERRIDES 256
#define MAX_CHECKS 32

const char *const lf_service_log_levels[] = {"debug", "info", "warn", "error", NULL};

struct check {
    char *name;
    lf_health_check fn;
    void *arg;
};

struct lf_service {
    const lf_service_def *def;
    void *config;
    const char *config_path; /* NULL: defaults */
    bool config_path_explicit;
    const char *overrides[MAX_OVERRIDES];
    size_t n_overrides;
    uv_loop_t loop;
    bool loop_open;
    lf_http_server *http;
    lf_metrics *metrics;
    lf_counter *reloads_ok, *reloads_failed;
    uv_signal_t sig_term, sig_int, sig_hup;
    bool signals_open;
    lf_systemd_watchdog *watchdog;
    struct check checks[MAX_CHECKS];
    size_t n_checks;
    uint64_t started_ns;
    time_t started_wall;
    char listen_addr[300];
    bool started; /* the program's start hook succeeded: its stop hook must run */
    bool stopping;
    int exit_code;
    void *user;
};

/* ---------------------------------------------------------------------------------------------- */
/* Listen addresses */

int lf_service_parse_listen(const char *listen, char *host, size_t host_size, int *port)
{
    const char *colon;
    const char *h = listen;
    size_t hl;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        h = listen + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
            return -EINVAL; /* an IPv6 address needs brackets */
        hl = (size_t)(colon - listen);
    }
    if (hl == 0 || hl >= host_size)
        return -EINVAL;
    const char *p = colon + 1;
    if (!*p || strlen(p) > 5)
        return -EINVAL;
    int n = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        n = n * 10 + (*p - '0');
    }
    if (n > 65535)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = n;
    return 0;
}

int lf_service_validate_listen(const void *field, lf_buf *err)
{
    const char *s = *(char *const *)field;
    char host[256];
    int port;
    if (!s || lf_service_parse_listen(s, host, sizeof host, &port) != 0) {
        lf_buf_msgf(err, "\"%.80s\" is not HOST:PORT or [IPV6]:PORT", s ? s : "");
        return -EINVAL;
    }
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    if (uv_ip4_addr(host, port, &a4) != 0 && uv_ip6_addr(host, port, &a6) != 0) {
        lf_buf_msgf(err, "\"%.80s\" is not a numeric IPv4 or IPv6 address", host);
        return -EINVAL;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Accessors */

void *lf_service_config_data(lf_service *svc) { return svc->config; }
const char *lf_service_config_path(lf_service *svc) { return svc->config_path; }
uv_loop_t *lf_service_loop(lf_service *svc) { return &svc->loop; }
lf_http_server *lf_service_http(lf_service *svc) { return svc->http; }
lf_metrics *lf_service_metrics(lf_service *svc) { return svc->metrics; }
const lf_service_def *lf_service_definition(lf_service *svc) { return svc->def; }
void *lf_service_user(lf_service *svc) { return svc->user; }
void lf_service_set_user(lf_service *svc, void *user) { svc->user = user; }

static lf_service_config *common(lf_service *svc)
{
    return svc->config;
}

int lf_service_add_check(lf_service *svc, const char *name, lf_health_check check, void *arg)
{
    if (svc->n_checks >= MAX_CHECKS)
        return LF_ELIMIT;
    char *copy = lf_strdup(name);
    if (!copy)
        return -ENOMEM;
    svc->checks[svc->n_checks++] = (struct check){copy, check, arg};
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Each connection holds a descriptor (and an upload a temp file besides): lift the soft limit
 * (often 1024) towards the hard one so [http] max_connections can be reached, and say so when
 * even the hard limit is too low, rather than failing accept() under load. */
static void raise_fd_limit(uint64_t max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)(max_connections * 2 + 256);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (rl.rlim_cur > old && setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
        if (rl.rlim_cur < want)
            LF_WARN("service", "open files limited to %llu (LimitNOFILE); [http] max_connections = %llu needs "
                    "about %llu", (unsigned long long)rl.rlim_cur, (unsigned long long)max_connections,
                    (unsigned long long)want);
    }
}

/* /healthz and /metrics */

static const char *const health_names[] = {"ok", "degraded", "failing"};

static void handle_healthz(lf_http_request *req)
{
    lf_service *svc = req->route_data;
    enum lf_health worst = LF_HEALTH_OK;
    json_t *checks = json_object();
    for (size_t i = 0; i < svc->n_checks; i++) {
        lf_buf detail = LF_BUF_INIT(1024);
        enum lf_health h = svc->checks[i].fn(svc, svc->checks[i].arg, &detail);
        if (h > LF_HEALTH_FAILING)
            h = LF_HEALTH_FAILING;
        if (h > worst)
            worst = h;
        json_t *c = json_pack("{s:s}", "status", health_names[h]);
        if (c && detail.len)
            json_object_set_new(c, "detail", json_string(lf_buf_cstr(&detail)));
        if (c)
            json_object_set_new(checks, svc->checks[i].name, c);
        lf_buf_free(&detail);
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:I, s:o}", "status", health_names[worst], "program",
                             svc->def->program, "version", LF_VERSION, "uptime_s",
                             (json_int_t)((uv_hrtime() - svc->started_ns) / 1000000000u), "checks",
                             checks ? checks : json_object());
    lf_buf out = LF_BUF_INIT(1 << 20);
    if (!body || lf_json_dump(body, &out) != 0 || lf_buf_append_char(&out, '\n') != 0) {
        lf_http_respond_error(req, 500, "internal", "cannot build the health document", NULL);
    } else {
        lf_http_respond(req, worst == LF_HEALTH_FAILING ? 503 : 200, "application/json", out.data, out.len,
                        "Cache-Control: no-store\r\n");
    }
    json_decref(body);
    lf_buf_free(&out);
}

static int render_http_stats(lf_service *svc, lf_buf *out)
{
    lf_http_server_stats st;
    lf_http_server_get_stats(svc->http, &st);
    static const struct {
        const char *name, *help, *type, *labels;
        size_t offset;
    } rows[] = {
        {"lf_http_connections_accepted_total", "HTTP connections accepted.", "counter", NULL,
         offsetof(lf_http_server_stats, connections_accepted)},
        {"lf_http_connections_rejected_total", "HTTP connections refused at the connection cap.",
         "counter", NULL, offsetof(lf_http_server_stats, connections_rejected)},
        {"lf_http_connections_open", "HTTP connections open now.", "gauge", NULL,
         offsetof(lf_http_server_stats, connections_open)},
        {"lf_http_requests_total", "HTTP requests received.", "counter", NULL,
         offsetof(lf_http_server_stats, requests)},
        {"lf_http_responses_total", "HTTP responses by status class.", "counter", "class=\"2xx\"",
         offsetof(lf_http_server_stats, responses_2xx)},
        {NULL, NULL, NULL, "class=\"4xx\"", offsetof(lf_http_server_stats, responses_4xx)},
        {NULL, NULL, NULL, "class=\"5xx\"", offsetof(lf_http_server_stats, responses_5xx)},
        {"lf_http_timeouts_total", "HTTP requests or connections ended by a timeout.", "counter", NULL,
         offsetof(lf_http_server_stats, timeouts)},
        {"lf_http_received_bytes_total", "Bytes read from HTTP clients.", "counter", NULL,
         offsetof(lf_http_server_stats, bytes_in)},
        {"lf_http_sent_bytes_total", "Bytes written to HTTP clients.", "counter", NULL,
         offsetof(lf_http_server_stats, bytes_out)},
    };
    const char *family = NULL;
    int rc = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && !rc; i++) {
        if (rows[i].name) {
            family = rows[i].name;
            rc = lf_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", family, rows[i].help, family, rows[i].type);
        }
        uint64_t v;
        memcpy(&v, (const char *)&st + rows[i].offset, sizeof v);
        if (!rc)
            rc = lf_buf_appendf(out, "%s%s%s%s %" PRIu64 "\n", family, rows[i].labels ? "{" : "",
                                rows[i].labels ? rows[i].labels : "", rows[i].labels ? "}" : "", v);
    }
    return rc;
}

static double process_start_time(lf_service *svc)
{
    /* field 22 of /proc/self/stat (clock ticks after boot) plus btime of /proc/stat */
    char buf[1024];
    double start = (double)svc->started_wall;
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return start;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return start;
    unsigned long long ticks = 0;
    int field = 2;
    for (p++; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    if (field != 22 || sscanf(p, "%llu", &ticks) != 1)
        return start;
    f = fopen("/proc/stat", "re");
    if (!f)
        return start;
    unsigned long long btime = 0;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (!btime || hz <= 0)
        return start;
    return (double)btime + (double)ticks / (double)hz;
}

static int render_process(lf_service *svc, lf_buf *out)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    unsigned long long vsize_pages = 0, rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%llu %llu", &vsize_pages, &rss_pages) != 2)
            vsize_pages = rss_pages = 0;
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    unsigned long fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)))
            fds += de->d_name[0] != '.';
        fds--; /* the directory's own descriptor */
        closedir(d);
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    return lf_buf_appendf(
        out,
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n"
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n"
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n"
        "# HELP process_open_fds Number of open file descriptors.\n"
        "# TYPE process_open_fds gauge\nprocess_open_fds %lu\n"
        "# HELP process_max_fds Maximum number of open file descriptors.\n"
        "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n"
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n"
        "# HELP lf_build_info Program and version; always 1.\n"
        "# TYPE lf_build_info gauge\nlf_build_info{program=\"%s\",version=\"%s\"} 1\n",
        cpu, rss_pages * (unsigned long long)page, vsize_pages * (unsigned long long)page, fds,
        (unsigned long long)rl.rlim_cur, process_start_time(svc), svc->def->program, LF_VERSION);
}

static void handle_metrics(lf_http_request *req)
{
    lf_service *svc = req->route_data;
    lf_buf out = LF_BUF_INIT(64 << 20);
    int rc = lf_metrics_render(svc->metrics, &out);
    if (!rc)
        rc = render_http_stats(svc, &out);
    if (!rc)
        rc = render_process(svc, &out);
    if (rc)
        lf_http_respond_error(req, 500, "internal", lf_strerror(rc), NULL);
    else
        lf_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len,
                        "Cache-Control: no-store\r\n");
    lf_buf_free(&out);
}

/* ---------------------------------------------------------------------------------------------- */
/* Daemon */

static void close_signals(lf_service *svc)
{
    if (!svc->signals_open)
        return;
    svc->signals_open = false;
    uv_close((uv_handle_t *)&svc->sig_term, NULL);
    uv_close((uv_handle_t *)&svc->sig_int, NULL);
    uv_close((uv_handle_t *)&svc->sig_hup, NULL);
}

static void on_drained(lf_http_server *srv, void *arg)
{
    lf_service *svc = arg;
    LF_INFO("service", "HTTP server drained");
    if (svc->def->stop && svc->started)
        svc->def->stop(svc);
    svc->started = false;
    lf_http_server_free(svc->http);
    svc->http = NULL;
    lf_systemd_watchdog_stop(svc->watchdog);
    svc->watchdog = NULL;
    close_signals(svc);
}

void lf_service_shutdown(lf_service *svc, int exit_code)
{
    if (svc->stopping)
        return;
    svc->stopping = true;
    svc->exit_code = exit_code;
    lf_systemd_stopping();
    lf_systemd_status("stopping");
    if (svc->http)
        lf_http_server_drain(svc->http, on_drained, svc);
    else
        close_signals(svc);
}

static const char *effective_path(lf_service *svc)
{
    if (svc->config_path_explicit)
        return svc->config_path;
    /* running on defaults: a default file that appeared since is read now */
    const char *def = svc->def->config->default_path;
    return def && access(def, F_OK) == 0 ? def : NULL;
}

static void reload(lf_service *svc)
{
    lf_systemd_reloading();
    const char *path = effective_path(svc);
    lf_buf err = LF_BUF_INIT(4096), changed = LF_BUF_INIT(4096), restart = LF_BUF_INIT(4096);
    int rc = 0;
    if (svc->def->validate) {
        /* validate the new configuration as a whole before any of it is applied */
        void *fresh = lf_calloc(1, svc->def->config->target_size);
        rc = fresh ? lf_config_load_overrides(svc->def->config, fresh, path, svc->overrides, svc->n_overrides, &err)
                   : -ENOMEM;
        if (!rc)
            rc = svc->def->validate(fresh, &err);
        if (fresh)
            lf_config_free(svc->def->config, fresh);
        lf_free(fresh);
    }
    if (!rc)
        rc = lf_config_reload_overrides(svc->def->config, svc->config, path, svc->overrides, svc->n_overrides,
                                        &changed, &restart, &err);
    if (rc) {
        lf_counter_inc(svc->reloads_failed);
        LF_ERROR("config", "reload failed, keeping the running configuration: %s", lf_buf_cstr(&err));
        lf_systemd_status("reload failed: %s", lf_buf_cstr(&err));
    } else {
        lf_counter_inc(svc->reloads_ok);
        svc->config_path = path;
        lf_log_set_level((enum lf_log_level)common(svc)->log_level);
        LF_DEBUG("config", "log level is %s", lf_log_level_name(lf_log_min_level));
        LF_INFO("config", "reloaded %s: changed: %s; needs a restart: %s", path ? path : "(defaults)",
                changed.len ? lf_buf_cstr(&changed) : "nothing", restart.len ? lf_buf_cstr(&restart) : "nothing");
        if (restart.len)
            LF_WARN("config", "changed options that need a restart to take effect: %s", lf_buf_cstr(&restart));
        if (changed.len && svc->def->reload)
            svc->def->reload(svc, lf_buf_cstr(&changed));
        if (restart.len)
            lf_systemd_status("listening on %s; reloaded, restart needed for: %s", svc->listen_addr,
                              lf_buf_cstr(&restart));
        else
            lf_systemd_status("listening on %s; reloaded", svc->listen_addr);
    }
    lf_systemd_ready();
    lf_buf_free(&err);
    lf_buf_free(&changed);
    lf_buf_free(&restart);
}

static void on_signal(uv_signal_t *h, int signum)
{
    lf_service *svc = h->data;
    if (signum == SIGHUP) {
        LF_INFO("service", "SIGHUP: reloading the configuration");
        if (!svc->stopping)
            reload(svc);
        return;
    }
    LF_INFO("service", "%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    lf_service_shutdown(svc, 0);
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    char text[16];
    int n = snprintf(text, sizeof text, "%d\n", port);
    ssize_t w = write(fd, text, (size_t)n);
    int rc = w == n ? 0 : (w < 0 ? -errno : -EIO);
    if (close(fd) != 0 && !rc)
        rc = -errno;
    /* renamed into place so that a reader never sees a partial number */
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

static void walk_report(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        LF_WARN("service", "handle of type %s still open at exit; closing it", uv_handle_type_name(h->type));
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int start_daemon(lf_service *svc)
{
    lf_service_config *cc = common(svc);
    int rc = uv_loop_init(&svc->loop);
    if (rc) {
        LF_ERROR("service", "uv_loop_init: %s", uv_strerror(rc));
        return rc;
    }
    svc->loop_open = true;
    svc->started_ns = uv_hrtime();
    svc->started_wall = time(NULL);
    if ((rc = lf_metrics_new(&svc->metrics)) != 0)
        return rc;
    svc->reloads_ok = lf_metrics_counter(svc->metrics, "lf_config_reloads_total",
                                         "Configuration reloads (SIGHUP) by result.", "result=\"ok\"");
    svc->reloads_failed = lf_metrics_counter(svc->metrics, "lf_config_reloads_total",
                                             "Configuration reloads (SIGHUP) by result.", "result=\"failed\"");
    if (!svc->reloads_ok || !svc->reloads_failed)
        return -ENOMEM;

    raise_fd_limit(cc->http_max_connections);
    lf_http_server_limits limits;
    lf_http_server_limits_default(&limits);
    limits.max_connections = (unsigned)cc->http_max_connections;
    limits.header_timeout_ms = cc->http_header_timeout_ms;
    limits.body_timeout_ms = cc->http_body_timeout_ms;
    limits.idle_timeout_ms = cc->http_idle_timeout_ms;
    limits.body_memory_max = (size_t)cc->http_body_memory_max;
    limits.body_tmp_dir = cc->http_body_tmp_dir;
    if ((rc = lf_http_server_new(&svc->loop, &limits, &svc->http)) != 0) {
        LF_ERROR("service", "cannot create the HTTP server: %s", lf_strerror(rc));
        return rc;
    }
    if ((rc = lf_http_server_route(svc->http, LF_HTTP_GET | LF_HTTP_HEAD, "/healthz", 0, handle_healthz, NULL,
                                   svc)) != 0 ||
        (rc = lf_http_server_route(svc->http, LF_HTTP_GET | LF_HTTP_HEAD, "/metrics", 0, handle_metrics, NULL,
                                   svc)) != 0) {
        LF_ERROR("service", "cannot register routes: %s", lf_strerror(rc));
        return rc;
    }
    if (svc->def->start && (rc = svc->def->start(svc)) != 0) {
        LF_ERROR("service", "start failed: %s", lf_strerror(rc));
        return rc;
    }
    svc->started = true;

    char host[256];
    int port;
    if (lf_service_parse_listen(cc->http_listen, host, sizeof host, &port) != 0) {
        LF_ERROR("service", "[http] listen: bad address \"%s\"", cc->http_listen);
        return -EINVAL;
    }
    if ((rc = lf_http_server_listen(svc->http, host, port)) != 0) {
        LF_ERROR("service", "cannot listen on %s: %s", cc->http_listen, lf_strerror(rc));
        return rc;
    }
    port = lf_http_server_port(svc->http);
    snprintf(svc->listen_addr, sizeof svc->listen_addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (cc->http_port_file && (rc = write_port_file(cc->http_port_file, port)) != 0) {
        LF_ERROR("service", "cannot write [http] port_file %s: %s", cc->http_port_file, lf_strerror(rc));
        return rc;
    }
    LF_INFO("service", "%s %s listening on %s", svc->def->program, LF_VERSION, svc->listen_addr);

    uv_signal_init(&svc->loop, &svc->sig_term);
    uv_signal_init(&svc->loop, &svc->sig_int);
    uv_signal_init(&svc->loop, &svc->sig_hup);
    svc->sig_term.data = svc->sig_int.data = svc->sig_hup.data = svc;
    svc->signals_open = true;
    if ((rc = uv_signal_start(&svc->sig_term, on_signal, SIGTERM)) != 0 ||
        (rc = uv_signal_start(&svc->sig_int, on_signal, SIGINT)) != 0 ||
        (rc = uv_signal_start(&svc->sig_hup, on_signal, SIGHUP)) != 0) {
        LF_ERROR("service", "cannot handle signals: %s", uv_strerror(rc));
        return rc;
    }
    if ((rc = lf_systemd_watchdog_start(&svc->loop, &svc->watchdog)) != 0)
        LF_WARN("service", "systemd watchdog: %s", lf_strerror(rc));
    lf_systemd_ready();
    lf_systemd_status("listening on %s", svc->listen_addr);
    return 0;
}

static int run_daemon(lf_service *svc)
{
    int rc = start_daemon(svc);
    if (rc == 0) {
        uv_run(&svc->loop, UV_RUN_DEFAULT);
        rc = svc->exit_code;
    } else {
        rc = EXIT_RUNTIME;
    }
    /* tear down whatever is still open (a failed start, or a stop hook that left handles) */
    if (svc->http) {
        if (svc->def->stop && svc->started)
            svc->def->stop(svc);
        lf_http_server_free(svc->http);
        svc->http = NULL;
    }
    lf_systemd_watchdog_stop(svc->watchdog);
    svc->watchdog = NULL;
    close_signals(svc);
    if (svc->loop_open) {
        uv_run(&svc->loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&svc->loop) == UV_EBUSY) {
            uv_walk(&svc->loop, walk_report, NULL);
            uv_run(&svc->loop, UV_RUN_DEFAULT);
            uv_loop_close(&svc->loop);
        }
    }
    if (common(svc)->http_port_file)
        unlink(common(svc)->http_port_file);
    LF_INFO("service", "exiting with status %d", rc);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Command line */

static void usage(const lf_service_def *def, FILE *out)
{
    fprintf(out,
            "Usage: %s [OPTIONS] [COMMAND [ARGS...]]\n\n%s\n\nWithout a command, runs the service.\n\n"
            "Options:\n"
            "  --config PATH            configuration file (default %s; a missing default file means\n"
            "                           built-in defaults)\n"
            "  --set SECTION.KEY=VALUE  override one option (repeatable)\n"
            "  --dump-config            print the effective configuration and exit\n"
            "  --check-config           check the configuration and what the service needs to start\n"
            "  --version                print the version and exit\n"
            "  --man                    print the manual page (troff) and exit\n"
            "  -h, --help               print this help and exit\n",
            def->program, def->summary ? def->summary : "", def->config->default_path);
    if (def->n_commands) {
        fprintf(out, "\nCommands:\n");
        for (size_t i = 0; i < def->n_commands; i++) {
            const lf_service_command *c = &def->commands[i];
            fprintf(out, "  %s%s%s\n      %s\n", c->name, c->usage ? " " : "", c->usage ? c->usage : "",
                    c->summary ? c->summary : "");
        }
    }
    fprintf(out, "\n`%s COMMAND --help` describes one command. Manual: man %s; every option: man "
                 "logferry.conf.\n", def->program, def->program);
}

static bool asks_help(int argc, char **argv)
{
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--") == 0)
            return false;
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0)
            return true;
    }
    return false;
}

static void command_usage(const lf_service_def *def, const lf_service_command *c, FILE *out)
{
    fprintf(out, "Usage: %s [OPTIONS] %s%s%s\n\n%s\n\nOPTIONS are those of %s --help. Manual: man %s.\n",
            def->program, c->name, c->usage && *c->usage ? " " : "", c->usage ? c->usage : "",
            c->summary ? c->summary : "", def->program, def->program);
}

/* What start-up needs beyond valid values; prints or logs every problem. 0 or EXIT_USAGE. */
static int preflight(lf_service *svc, bool daemon)
{
    if (!svc->def->preflight)
        return 0;
    lf_preflight pf;
    lf_preflight_init(&pf, svc->config_path);
    svc->def->preflight(svc->config, &pf);
    int rc = 0;
    if (pf.n_problems) {
        rc = EXIT_USAGE;
        const char *text = lf_buf_cstr(&pf.problems);
        if (daemon) {
            /* one line in the journal: the first problem and where to see the others */
            const char *nl = strchr(text, '\n');
            int first = nl ? (int)(nl - text) : (int)strlen(text);
            if (pf.n_problems > 1)
                LF_ERROR("service", "not starting: %.*s (and %zu more: %s --check-config lists them)", first, text,
                         pf.n_problems - 1, svc->def->program);
            else
                LF_ERROR("service", "not starting: %.*s", first, text);
        } else {
            fprintf(stderr, "%s", text);
            fprintf(stderr, "%s: %zu problem%s: the service would not start\n", svc->def->program, pf.n_problems,
                    pf.n_problems == 1 ? "" : "s");
        }
    }
    lf_preflight_free(&pf);
    return rc;
}

/* Root runs commands and --check-config as the service user (lf_run_as.h). */
static int act_as_service_user(const lf_service_def *def)
{
    lf_buf err = LF_BUF_INIT(1024);
    int rc = lf_run_as_switch(def->state_dir, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", def->program, lf_buf_cstr(&err));
    lf_buf_free(&err);
    return rc ? EXIT_RUNTIME : 0;
}

/* "--name VALUE" or "--name=VALUE"; returns the value or NULL and advances *i. */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *matched)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    *matched = false;
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=') {
        *matched = true;
        return a + n + 1;
    }
    if (a[n] != '\0')
        return NULL;
    *matched = true;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static int load_config(lf_service *svc, const char *path_arg)
{
    const lf_config_table *t = svc->def->config;
    svc->config = lf_calloc(1, t->target_size);
    if (!svc->config) {
        fprintf(stderr, "%s: out of memory\n", svc->def->program);
        return EXIT_RUNTIME;
    }
    const char *path = path_arg;
    svc->config_path_explicit = path_arg != NULL;
    if (!path && t->default_path && access(t->default_path, F_OK) == 0)
        path = t->default_path;
    svc->config_path = path;
    lf_buf err = LF_BUF_INIT(8192);
    int rc = lf_config_load_overrides(t, svc->config, path, svc->overrides, svc->n_overrides, &err);
    if (!rc && svc->def->validate) {
        rc = svc->def->validate(svc->config, &err);
        if (rc && path) { /* name the file: the hook's message names the section and key */
            lf_buf named = LF_BUF_INIT(8192);
            lf_buf_msgf(&named, "%s: %s", path, lf_buf_cstr(&err));
            lf_buf_free(&err);
            err = named;
        }
    }
    if (rc) {
        fprintf(stderr, "%s: configuration error: %s\n", svc->def->program, lf_buf_cstr(&err));
        lf_buf_free(&err);
        return EXIT_USAGE;
    }
    lf_buf_free(&err);
    lf_log_set_level((enum lf_log_level)common(svc)->log_level);
    return 0;
}

int lf_service_main(const lf_service_def *def, int argc, char **argv)
{
    lf_service svc_storage;
    lf_service *svc = &svc_storage;
    memset(svc, 0, sizeof *svc);
    svc->def = def;
    lf_log_set_program(def->program);
    lf_fail_from_env();
    signal(SIGPIPE, SIG_IGN);

    const char *config_arg = NULL;
    bool dump = false, check = false;
    int i = 1;
    if (i < argc && strcmp(argv[i], "-h") == 0) {
        usage(def, stdout);
        return 0;
    }
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        bool m;
        const char *v;
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(argv[i], "--help") == 0) {
            usage(def, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--man") == 0)
            return lf_manpage_program(def, stdout) == 0 && fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", def->program, LF_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--dump-config") == 0) {
            dump = true;
            continue;
        }
        if (strcmp(argv[i], "--check-config") == 0) {
            check = true;
            continue;
        }
        v = option_value(argc, argv, &i, "--config", &m);
        if (m) {
            if (!v || !*v) {
                fprintf(stderr, "%s: --config needs a PATH\n", def->program);
                return EXIT_USAGE;
            }
            config_arg = v;
            continue;
        }
        v = option_value(argc, argv, &i, "--set", &m);
        if (m) {
            if (!v || !strchr(v, '=')) {
                fprintf(stderr, "%s: --set needs SECTION.KEY=VALUE\n", def->program);
                return EXIT_USAGE;
            }
            if (svc->n_overrides >= MAX_OVERRIDES) {
                fprintf(stderr, "%s: more than %d --set options\n", def->program, MAX_OVERRIDES);
                return EXIT_USAGE;
            }
            svc->overrides[svc->n_overrides++] = v;
            continue;
        }
        fprintf(stderr, "%s: unknown option %s (see --help)\n", def->program, argv[i]);
        return EXIT_USAGE;
    }

    const lf_service_command *cmd = NULL;
    if (i < argc) {
        for (size_t k = 0; k < def->n_commands && !cmd; k++)
            if (strcmp(def->commands[k].name, argv[i]) == 0)
                cmd = &def->commands[k];
        if (!cmd) {
            fprintf(stderr, "%s: unknown command \"%s\" (see --help)\n", def->program, argv[i]);
            return EXIT_USAGE;
        }
        if (!cmd->own_help && asks_help(argc - i, argv + i)) {
            command_usage(def, cmd, stdout);
            return 0;
        }
        if (cmd->no_config)
            return cmd->run(svc, argc - i, argv + i);
    }

    int rc = load_config(svc, config_arg);
    if (rc == 0 && ((cmd && !cmd->as_root) || (check && !dump)))
        rc = act_as_service_user(def);
    if (rc == 0) {
        if (dump) {
            rc = lf_config_dump(def->config, svc->config, stdout) == 0 ? 0 : EXIT_RUNTIME;
        } else if (check) {
            rc = preflight(svc, false);
            if (rc == 0)
                printf("%s: configuration %s is valid\n", def->program,
                       svc->config_path ? svc->config_path : "(built-in defaults)");
        } else if (cmd) {
            rc = cmd->run(svc, argc - i, argv + i);
        } else if ((rc = preflight(svc, true)) == 0) {
            rc = run_daemon(svc);
        }
    }
    if (svc->config) {
        lf_config_free(def->config, svc->config);
        lf_free(svc->config);
    }
    lf_metrics_free(svc->metrics);
    for (size_t k = 0; k < svc->n_checks; k++)
        lf_free(svc->checks[k].name);
    fflush(stdout);
    return rc;
}
