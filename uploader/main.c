/* logferry-uploader: entry point. Modes: run (the daemon; also the default without a command),
 * once (scan, ship, exit with a status for cron), status, keygen. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "connection_test.h"
#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_log.h"
#include "lf_run_as.h"
#include "lf_service.h"
#include "lf_sign.h"
#include "uploader.h"
#include "uploader_config.h"

/* once's exit codes beyond 0/1/2 (sysexits.h values, which cron wrappers know). */
#define EXIT_PENDING 75 /* EX_TEMPFAIL: sessions left for the next run (receiver down, outbox full) */
#define EXIT_REFUSED 65 /* EX_DATAERR: sessions refused by the receiver (see status) */

/* ---- daemon ---- */

struct daemon {
    lf_service *svc;
    lf_uploader *u;
    uv_timer_t scan_timer, pump_timer;
    uv_fs_event_t *events;
    size_t n_events;
    bool scan_soon;
};

static struct daemon D;

static void daemon_packed(void *arg)
{
    lf_uploader_pump(arg);
}

static void do_scan(struct daemon *d)
{
    int rc = lf_uploader_scan(d->u);
    if (rc < 0)
        LF_ERROR("scan", "scan failed: %s", lf_strerror(rc));
    lf_uploader_pump(d->u);
}

static void scan_cb(uv_timer_t *t)
{
    struct daemon *d = t->data;
    const struct lf_uploader_config *cfg = lf_service_config_data(d->svc);
    d->scan_soon = false;
    do_scan(d);
    uv_timer_start(&d->scan_timer, scan_cb, cfg->scan_interval_ms, 0);
}

/* Retries after a backoff and keeps the outbox moving once the receiver is back. */
static void pump_cb(uv_timer_t *t)
{
    struct daemon *d = t->data;
    lf_uploader_pump(d->u);
    /* A full outbox that has room again: scan now rather than at the next interval. */
    if (lf_uploader_outbox_full(d->u) && lf_uploader_pending(d->u) == 0 && !d->scan_soon) {
        d->scan_soon = true;
        uv_timer_start(&d->scan_timer, scan_cb, 0, 0);
    }
}

/* File events only bring the next scan forward: the scan decides, so a missed event costs at most
 * one scan_interval. */
static void event_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)filename;
    (void)events;
    (void)status;
    struct daemon *d = h->data;
    if (!d->scan_soon) {
        d->scan_soon = true;
        uv_timer_start(&d->scan_timer, scan_cb, 200, 0);
    }
}

static void on_done(void *arg)
{
    struct daemon *d = arg;
    lf_uploader_pump(d->u);
}

static double g_outbox_bytes(void *arg) { return (double)lf_uploader_outbox_bytes(arg); }
static double g_pending(void *arg) { return (double)lf_uploader_pending(arg); }
static double g_in_flight(void *arg) { return (double)lf_uploader_in_flight(arg); }

static enum lf_health check_outbox(lf_service *svc, void *arg, lf_buf *detail)
{
    (void)svc;
    lf_uploader *u = arg;
    lf_buf_msgf(detail, "%" PRId64 " waiting, %" PRIu64 " bytes%s", lf_uploader_pending(u),
                   lf_uploader_outbox_bytes(u), lf_uploader_outbox_full(u) ? ", full" : "");
    return lf_uploader_outbox_full(u) ? LF_HEALTH_DEGRADED : LF_HEALTH_OK;
}

static enum lf_health check_receiver(lf_service *svc, void *arg, lf_buf *detail)
{
    (void)svc;
    int64_t b = lf_uploader_backoff_ms(arg);
    const char *refusal = lf_uploader_refusal(arg);
    if (refusal) {
        lf_buf_msgf(detail, "the receiver refuses this site (%s); sessions wait in the outbox; next try in %" PRId64
                            " ms", refusal, b);
        return LF_HEALTH_DEGRADED;
    }
    if (b > 0) {
        lf_buf_msgf(detail, "unreachable or busy; next try in %" PRId64 " ms", b);
        return LF_HEALTH_DEGRADED;
    }
    lf_buf_msgf(detail, "ok");
    return LF_HEALTH_OK;
}

static int daemon_start(lf_service *svc)
{
    const struct lf_uploader_config *cfg = lf_service_config_data(svc);
    struct daemon *d = &D;
    memset(d, 0, sizeof *d);
    d->svc = svc;
    lf_metrics *m = lf_service_metrics(svc);
    int rc = lf_uploader_open(cfg, lf_service_loop(svc), m, &d->u);
    if (rc < 0)
        return rc;
    lf_uploader_on_done(d->u, on_done, d);
    lf_uploader_on_packed(d->u, daemon_packed, d->u);
    rc = lf_metrics_gauge_fn(m, "lf_uploader_outbox_bytes", "Bytes waiting in the outbox.", NULL, g_outbox_bytes,
                             d->u);
    rc = rc ? rc
            : lf_metrics_gauge_fn(m, "lf_uploader_outbox_sessions", "Sessions waiting in the outbox.", NULL,
                                  g_pending, d->u);
    rc = rc ? rc : lf_metrics_gauge_fn(m, "lf_uploader_in_flight", "Uploads in progress.", NULL, g_in_flight, d->u);
    rc = rc ? rc : lf_service_add_check(svc, "outbox", check_outbox, d->u);
    rc = rc ? rc : lf_service_add_check(svc, "receiver", check_receiver, d->u);
    if (rc != 0) {
        LF_ERROR("uploader", "cannot register the metrics and health checks: %s", lf_strerror(rc));
        lf_uploader_close(d->u);
        d->u = NULL;
        return rc;
    }
    uv_loop_t *loop = lf_service_loop(svc);
    uv_timer_init(loop, &d->scan_timer);
    uv_timer_init(loop, &d->pump_timer);
    d->scan_timer.data = d->pump_timer.data = d;
    d->events = calloc(cfg->n_watches ? cfg->n_watches : 1, sizeof *d->events);
    for (size_t i = 0; d->events && i < cfg->n_watches; i++) {
        uv_fs_event_init(loop, &d->events[i]);
        d->events[i].data = d;
        d->n_events++;
        int erc = uv_fs_event_start(&d->events[i], event_cb, cfg->watches[i].dir, 0);
        if (erc < 0)
            LF_WARN("uploader", "watch %s: no file events for %s (%s); periodic scans only",
                    cfg->watches[i].name, cfg->watches[i].dir, uv_strerror(erc));
    }
    uv_timer_start(&d->scan_timer, scan_cb, 0, 0);
    uv_timer_start(&d->pump_timer, pump_cb, 250, 250);
    LF_INFO("uploader", "site %s: %zu watch(es), outbox %s, receiver %s", cfg->site,
            cfg->n_watches, cfg->outbox_dir, cfg->receiver_url);
    return 0;
}

static void free_events(uv_handle_t *h)
{
    struct daemon *d = h->data;
    if (--d->n_events == 0) {
        free(d->events);
        d->events = NULL;
    }
}

static void daemon_stop(lf_service *svc)
{
    (void)svc;
    struct daemon *d = &D;
    uv_close((uv_handle_t *)&d->scan_timer, NULL);
    uv_close((uv_handle_t *)&d->pump_timer, NULL);
    size_t n = d->n_events;
    for (size_t i = 0; i < n; i++)
        uv_close((uv_handle_t *)&d->events[i], free_events);
    if (n == 0)
        free(d->events);
    lf_uploader_close(d->u);
    d->u = NULL;
}

/* ---- once ---- */

struct once_loop {
    lf_uploader *u;
    uv_loop_t *loop;
};

/* Uploads progress while the scan packs: start what the limit allows, let curl run a little. */
static void once_packed(void *arg)
{
    struct once_loop *o = arg;
    lf_uploader_pump(o->u);
    uv_run(o->loop, UV_RUN_NOWAIT);
}

static int cmd_once(lf_service *svc, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const struct lf_uploader_config *cfg = lf_service_config_data(svc);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return 1;
    lf_uploader *u;
    int rc = lf_uploader_open(cfg, &loop, NULL, &u);
    if (rc < 0) {
        uv_loop_close(&loop);
        return 1;
    }
    struct once_loop ol = {u, &loop};
    lf_uploader_on_packed(u, once_packed, &ol);
    int exit_code = 0;
    lf_uploader_stats st0;
    lf_uploader_stats_get(u, &st0);
    for (int round = 0;; round++) {
        int packed = lf_uploader_scan(u);
        if (packed < 0) {
            exit_code = 1;
            break;
        }
        bool full = lf_uploader_outbox_full(u);
        lf_uploader_pump(u);
        while (lf_uploader_in_flight(u) > 0) {
            uv_run(&loop, UV_RUN_ONCE);
            if (lf_uploader_backoff_ms(u) == 0)
                lf_uploader_pump(u);
        }
        if (lf_uploader_take_unreachable(u)) {
            if (lf_uploader_refusal(u))
                LF_WARN("once", "the receiver refuses this site (%s); %" PRId64 " session(s) left in the outbox "
                                "for the next run", lf_uploader_refusal(u), lf_uploader_pending(u));
            else
                LF_WARN("once", "receiver unreachable or busy; %" PRId64 " session(s) left in the "
                                "outbox for the next run", lf_uploader_pending(u));
            exit_code = EXIT_PENDING;
            break;
        }
        if (!full && packed == 0 && lf_uploader_pending(u) == 0)
            break;
        if (round > 100000) {
            exit_code = EXIT_PENDING;
            break;
        }
    }
    lf_uploader_stats st;
    lf_uploader_stats_get(u, &st);
    if (exit_code == 0 && st.pack_errors > st0.pack_errors) {
        LF_WARN("once", "%" PRIu64 " finished session(s) could not be packed (see above); they are "
                        "tried again next run", st.pack_errors - st0.pack_errors);
        exit_code = EXIT_PENDING;
    }
    if (exit_code == 0 && st.failed > st0.failed)
        exit_code = EXIT_REFUSED;
    LF_INFO("once", "packed %" PRIu64 ", shipped %" PRIu64 " (%" PRIu64 " already stored), "
                    "refused %" PRIu64 ", left %" PRId64, st.packed, st.shipped, st.already_had,
            st.failed, lf_uploader_pending(u));
    lf_uploader_close(u);
    uv_run(&loop, UV_RUN_DEFAULT); /* let the client's handles close */
    uv_loop_close(&loop);
    return exit_code;
}

/* ---- status ---- */

static void print_failed(void *arg, const char *id, const char *relpath, const char *reason)
{
    printf("%s %s %s: %s\n", (const char *)arg, id, relpath, reason);
}

/* ---- test ---- */

static int cmd_test(lf_service *svc, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: logferry-uploader test\n");
        return 2;
    }
    if (lf_crypto_init() < 0)
        return 1;
    return lf_uploader_connection_test(lf_service_config_data(svc), stdout);
}

/* ---- retry-failed ---- */

static int cmd_retry_failed(lf_service *svc, int argc, char **argv)
{
    const struct lf_uploader_config *cfg = lf_service_config_data(svc);
    bool all = argc == 2 && strcmp(argv[1], "--all") == 0;
    if (argc < 2 || (!all && argc >= 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: logferry-uploader retry-failed ID... | --all\n");
        return 2;
    }
    lf_uploader *u;
    if (lf_uploader_open(cfg, NULL, NULL, &u) < 0)
        return 1;
    int rc = lf_uploader_retry_failed(u, all ? NULL : argv + 1, all ? 0 : (size_t)(argc - 1), stdout);
    lf_uploader_close(u);
    return rc;
}

static int cmd_status(lf_service *svc, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const struct lf_uploader_config *cfg = lf_service_config_data(svc);
    lf_uploader *u;
    if (lf_uploader_open(cfg, NULL, NULL, &u) < 0)
        return 1;
    lf_ureg_counts c;
    int rc = lf_ureg_counts_get(lf_uploader_registry(u), &c);
    if (rc == 0) {
        printf("pending: %" PRId64 "\n", lf_uploader_pending(u));
        printf("shipped: %" PRId64 "\n", c.shipped);
        printf("failed: %" PRId64 "\n", c.failed);
        printf("dropped: %" PRId64 "\n", c.dropped);
        printf("outbox_bytes: %" PRIu64 "\n", lf_uploader_outbox_bytes(u));
        printf("outbox_max_size: %" PRIu64 "\n", cfg->outbox_max_size);
        printf("outbox_use_percent: %.1f\n",
               100.0 * (double)lf_uploader_outbox_bytes(u) / (double)cfg->outbox_max_size);
        rc = lf_ureg_state_each(lf_uploader_registry(u), LF_US_FAILED, false, print_failed, (void *)"failed");
        if (rc == 0)
            rc = lf_ureg_state_each(lf_uploader_registry(u), LF_US_OUTBOX, true, print_failed,
                                    (void *)"waiting (refused by the receiver; its side can fix it, retried)");
    }
    lf_uploader_close(u);
    return rc < 0 ? 1 : 0;
}

/* ---- keygen ---- */

static int cmd_keygen(lf_service *svc, int argc, char **argv)
{
    const struct lf_uploader_config *cfg = lf_service_config_data(svc);
    bool force = argc > 1 && strcmp(argv[1], "--force") == 0;
    struct stat st;
    if (!force && stat(cfg->key_file, &st) == 0) {
        fprintf(stderr, "logferry-uploader: %s exists; keygen --force replaces it (the receiver "
                        "must then be given the new public key)\n", cfg->key_file);
        return 1;
    }
    if (lf_crypto_init() < 0)
        return 1;
    uint8_t pk[LF_SIGN_PK_BYTES], sk[LF_SIGN_SK_BYTES];
    if (lf_sign_keypair(pk, sk) < 0)
        return 1;
    int rc = lf_sign_sk_save(cfg->key_file, sk);
    memset(sk, 0, sizeof sk);
    if (rc < 0) {
        fprintf(stderr, "logferry-uploader: %s: %s\n", cfg->key_file, lf_strerror(rc));
        return 1;
    }
    /* keygen stays root (the key lives in /etc/logferry, which the service user cannot write) and
     * gives the key to the service user, the only one that may read it */
    lf_buf err = LF_BUF_INIT(512);
    rc = lf_run_as_chown(cfg->key_file, lf_service_definition(svc)->state_dir, &err);
    if (rc < 0)
        fprintf(stderr, "logferry-uploader: %s\n", lf_buf_cstr(&err));
    lf_buf_free(&err);
    if (rc < 0)
        return 1;
    char text[LF_SIGN_PK_B64_SIZE];
    lf_sign_pk_encode(text, pk);
    fprintf(stderr, "key written to %s; register it on the receiver with:\n", cfg->key_file);
    printf("logferry-receiver sites add %s %s\n", cfg->site ? cfg->site : "SITE", text);
    return 0;
}

static const lf_service_command commands[] = {
    {"once", "", "scan, ship everything finished, exit (0 done, 75 sessions left for the next "
                 "run, 65 sessions refused)", cmd_once, .no_config = false},
    {"status", "", "sessions pending, shipped, failed and waiting (with the receiver's reasons), outbox use", cmd_status,
     .no_config = false},
    {"test", "",
     "check the path to the receiver: name, connection, TLS against ca_file, the receiver, the site's "
     "registration and key, the clocks; one line per check, exit 1 on any failure",
     cmd_test, .no_config = false},
    {"retry-failed", "ID... | --all",
     "put failed sessions (refused for good: 400, 413, ...) back into the outbox, after the cause is fixed",
     cmd_retry_failed, .no_config = false},
    {"keygen", "[--force]", "create the site key pair; prints the line to run on the receiver",
     cmd_keygen, .as_root = true},
};

static const lf_service_def uploader = {
    .program = "logferry-uploader",
    .summary = "Finds finished session logs, zips each with a manifest, signs and uploads it to the "
               "receiver, and keeps an offline outbox.",
    .description = "Each [watch.NAME] section names a directory of session logs. A session is finished when "
                   "its end_line matches, its rotated_suffix appears or it has not changed for settle; it "
                   "is then packed with its manifest into the outbox and uploaded, signed with the site's "
                   "Ed25519 key, until the receiver confirms it durably stored. The outbox survives "
                   "restarts, crashes and outages: no session is lost or sent twice.",
    .section = "8",
    .state_dir = "/var/lib/logferry/uploader",
    .config = &lf_uploader_config_table,
    .commands = commands,
    .n_commands = sizeof commands / sizeof commands[0],
    .validate = lf_uploader_config_validate,
    .preflight = lf_uploader_config_preflight,
    .start = daemon_start,
    .stop = daemon_stop,
};

int main(int argc, char **argv)
{
    /* `run` names the daemon explicitly; the skeleton runs it when no command is given. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "run") == 0 && (i == 1 || strncmp(argv[i - 1], "--", 2) != 0 ||
                                            strchr(argv[i - 1], '=') != NULL ||
                                            strcmp(argv[i - 1], "--dump-config") == 0)) {
            for (int k = i; k < argc - 1; k++)
                argv[k] = argv[k + 1];
            argc--;
            break;
        }
        if (strncmp(argv[i], "--", 2) != 0 && (i == 1 || strncmp(argv[i - 1], "--", 2) != 0))
            break;
    }
    return lf_service_main(&uploader, argc, argv);
}
