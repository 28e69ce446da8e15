/* The skeleton every program's main() uses: standard options, subcommands, and the daemon (a uv
 * loop with an HTTP server answering /healthz and /metrics, signals, systemd notification).
 *
 * A program describes itself with an lf_service_def and calls lf_service_main():
 *
 *   struct receiver_config { lf_service_config common; char *store_dir; ... };  // common first
 *   static const lf_config_option options[] = {
 *       LF_SERVICE_COMMON_OPTIONS("127.0.0.1:8440"),
 *       {"store", "dir", LF_CFG_STRING, "/var/lib/logferry/receiver", offsetof(struct receiver_config,
 *        store_dir), .description = "..."},
 *   };
 *   int main(int argc, char **argv) { return lf_service_main(&receiver_def, argc, argv); }
 *
 * Command line: PROGRAM [--config PATH] [--set section.key=value]... [--dump-config | --check-config
 * | --version | --help | -h | --man] [COMMAND [ARGS...]]. Without a command the daemon runs. Exit
 * codes: 0 done, 1 runtime failure, 2 usage or configuration error (also a daemon whose preflight
 * fails: the units do not restart on 2). `COMMAND --help` prints the command's usage and runs
 * nothing. Run by root, commands act as the owner of the state directory (lf_run_as.h).
 *
 * The daemon: loads the configuration, creates the HTTP server with the [http] limits, registers
 * GET /healthz and GET /metrics, calls the program's start hook (its routes, metrics, checks,
 * timers), listens on [http] listen, writes [http] port_file, logs "listening on HOST:PORT", sends
 * READY=1 and pings the systemd watchdog from the loop. SIGHUP reloads the configuration (reloadable
 * options take effect, others are logged as needing a restart); SIGTERM or SIGINT sends STOPPING=1,
 * drains the HTTP server (requests in progress finish), calls the stop hook and exits 0 once the
 * loop has no more handles. */
#ifndef LF_SERVICE_H
#define LF_SERVICE_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lf_buf.h"
#include "lf_config.h"
#include "lf_http_server.h"
#include "lf_metrics.h"
#include "lf_preflight.h"

/* Options every program has. It must be the first member of the program's configuration struct. */
typedef struct lf_service_config {
    int log_level; /* index into lf_service_log_levels == enum lf_log_level */
    char *http_listen;
    char *http_port_file;
    uint64_t http_max_connections;
    uint64_t http_header_timeout_ms;
    uint64_t http_body_timeout_ms;
    uint64_t http_idle_timeout_ms;
    uint64_t http_body_memory_max;
    char *http_body_tmp_dir;
} lf_service_config;

extern const char *const lf_service_log_levels[]; /* "debug", "info", "warn", "error", NULL */

/* Checks "host:port" / "[v6]:port" (a config validate hook). */
LF_MUST_CHECK int lf_service_validate_listen(const void *field, lf_buf *err);
/* Splits "host:port" or "[v6]:port" into host (NUL-terminated) and port. 0 or -EINVAL. */
LF_MUST_CHECK int lf_service_parse_listen(const char *listen, char *host, size_t host_size, int *port);

#define LF_SERVICE_CFG_OFFSET(field) offsetof(lf_service_config, field)
/* The common options as table entries; put them first in the program's option table. */
#define LF_SERVICE_COMMON_OPTIONS(default_listen)                                                  \
    {"log", "level", LF_CFG_ENUM, "info", LF_SERVICE_CFG_OFFSET(log_level),                        \
     .enum_values = lf_service_log_levels, .flags = LF_CFG_RELOADABLE,                             \
     .description = "Least severe messages written to stderr (journald)."},                        \
    {"http", "listen", LF_CFG_STRING, default_listen, LF_SERVICE_CFG_OFFSET(http_listen),          \
     .validate = lf_service_validate_listen,                                                       \
     .description = "Address and port of the HTTP server (/healthz, /metrics and the program's "   \
                    "API): HOST:PORT or [IPV6]:PORT. Port 0 picks a free port (tests)."},          \
    {"http", "port_file", LF_CFG_STRING, NULL, LF_SERVICE_CFG_OFFSET(http_port_file),              \
     .description = "When set, the bound port is written to this file once listening (tests, "     \
                    "port 0) and removed at exit."},                                               \
    {"http", "max_connections", LF_CFG_UINT, "1024", LF_SERVICE_CFG_OFFSET(http_max_connections),  \
     .min = 1, .max = 1000000,                                                                     \
     .description = "Open connections at most; past it new ones get 503 and are closed."},         \
    {"http", "header_timeout", LF_CFG_DURATION, "10s", LF_SERVICE_CFG_OFFSET(http_header_timeout_ms), \
     .min = 100, .max = 3600000,                                                                   \
     .description = "Time from the first byte of a request to the end of its headers (408)."},     \
    {"http", "body_timeout", LF_CFG_DURATION, "30s", LF_SERVICE_CFG_OFFSET(http_body_timeout_ms),  \
     .min = 100, .max = 3600000, .description = "Longest gap between two pieces of a body (408)."}, \
    {"http", "idle_timeout", LF_CFG_DURATION, "60s", LF_SERVICE_CFG_OFFSET(http_idle_timeout_ms),  \
     .min = 100, .max = 86400000,                                                                  \
     .description = "A keep-alive connection without a request in progress is closed after this."}, \
    {"http", "body_memory_max", LF_CFG_SIZE, "256K", LF_SERVICE_CFG_OFFSET(http_body_memory_max),  \
     .min = 1024, .max = 1ULL << 30,                                                               \
     .description = "A request body is kept in memory up to this size, then spilled to a "         \
                    "temporary file in body_tmp_dir."},                                            \
    {"http", "body_tmp_dir", LF_CFG_STRING, "/tmp", LF_SERVICE_CFG_OFFSET(http_body_tmp_dir),     \
     .description = "Directory for request bodies larger than body_memory_max (unlinked files)."}

typedef struct lf_service lf_service;

/* A subcommand: `PROGRAM [options] NAME ARGS...`. argv[0] is NAME. Returns the exit code. With
 * no_config, run is called before any configuration is loaded (svc gives no config then). */
typedef struct lf_service_command {
    const char *name;
    const char *usage;   /* "add NAME --scope SCOPE | list", shown after the name in --help */
    const char *summary; /* one line */
    int (*run)(lf_service *svc, int argc, char **argv);
    bool no_config;
    /* Run by root, the command stays root (it writes where the service user may not, and gives
     * what it writes to the service user itself: lf_run_as_chown). Otherwise root acts as the owner
     * of the program's state_dir (lf_run_as_switch) before the command runs. */
    bool as_root;
    /* The command prints its own --help (longer than usage and summary); otherwise `PROGRAM COMMAND
     * --help` (or -h) prints usage and summary, exits 0 and runs nothing. */
    bool own_help;
} lf_service_command;

typedef struct lf_service_def {
    const char *program; /* "logferry-receiver" */
    const char *summary; /* one line for --help */
    const char *description; /* a paragraph for the manual page (optional) */
    const char *section;     /* manual section: "8" for daemons */
    const char *state_dir;   /* the package's state directory: whose owner admin commands act as */
    const lf_config_table *config; /* program's table; its struct starts with lf_service_config */
    const lf_service_command *commands;
    size_t n_commands;
    /* Optional: requirements across options, after every load and before a reload is applied.
     * 0, or an error with the reason in err (the configuration is then refused). */
    int (*validate)(const void *config, lf_buf *err);
    /* Optional: what start-up needs beyond valid values (keys a mode requires, directories the
     * service user can write, keys that load), each problem reported with lf_preflight_fail & co.
     * Run by --check-config and before the daemon starts; any problem means exit 2. */
    void (*preflight)(const void *config, lf_preflight *pf);
    /* Daemon hooks, all optional, all called on the loop thread. */
    /* Before listening: routes (lf_http_server_route(lf_service_http(svc), ...)), metrics
     * (lf_service_metrics), checks (lf_service_add_check), timers on lf_service_loop. 0 or an error
     * (the program then exits 1; a failed start hook must clean up after itself). */
    int (*start)(lf_service *svc);
    /* After the HTTP server drained (or when listening failed after a successful start): close the
     * program's handles; the loop runs until none is left, then the process exits. */
    void (*stop)(lf_service *svc);
    /* After a SIGHUP applied reloadable changes; changed lists them ("[log] level, [demo] answer"). */
    void (*reload)(lf_service *svc, const char *changed);
} lf_service_def;

/* Runs the program. Returns the process exit code. */
LF_MUST_CHECK int lf_service_main(const lf_service_def *def, int argc, char **argv);

/* Accessors for hooks and commands. */
void *lf_service_config_data(lf_service *svc); /* the program's configuration struct */
const char *lf_service_config_path(lf_service *svc); /* NULL when running on defaults */
uv_loop_t *lf_service_loop(lf_service *svc);
lf_http_server *lf_service_http(lf_service *svc);
lf_metrics *lf_service_metrics(lf_service *svc);
const lf_service_def *lf_service_definition(lf_service *svc);
void *lf_service_user(lf_service *svc); /* a pointer the program keeps with the service */
void lf_service_set_user(lf_service *svc, void *user);

/* Health checks shown in /healthz. The worst status wins: ok (200), degraded (200), failing (503). */
enum lf_health { LF_HEALTH_OK = 0, LF_HEALTH_DEGRADED = 1, LF_HEALTH_FAILING = 2 };
typedef enum lf_health (*lf_health_check)(lf_service *svc, void *arg, lf_buf *detail);
LF_MUST_CHECK int lf_service_add_check(lf_service *svc, const char *name, lf_health_check check, void *arg);

/* Stops the daemon as SIGTERM does; the process then exits with exit_code. */
void lf_service_shutdown(lf_service *svc, int exit_code);

#endif
