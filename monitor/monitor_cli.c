/* silence / unsilence / status: see monitor_cli.h. */
#include "monitor_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lf_buf.h"
#include "lf_config.h"
#include "lf_error.h"
#include "outbox.h"
#include "slack_message.h"

#define MAX_SILENCE_MS (366LL * 86400 * 1000)

bool lf_monitor_cli_is_command(const char *name)
{
    return name && (strcmp(name, "silence") == 0 || strcmp(name, "unsilence") == 0 || strcmp(name, "status") == 0);
}

/* The same characters a [check.NAME] section allows, or "*". */
static bool valid_check_name(const char *s)
{
    if (strcmp(s, LF_OUTBOX_ALL_CHECKS) == 0)
        return true;
    size_t n = strlen(s);
    if (n == 0 || n >= LF_OUTBOX_CHECK_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return false;
    }
    return true;
}

static const char *who_am_i(void)
{
    const char *w = getenv("SUDO_USER");
    if (!w || !w[0])
        w = getenv("USER");
    return w && w[0] ? w : "unknown";
}

static int cmd_silence(lf_outbox *ob, int argc, char *const argv[], int64_t now_ms, FILE *out, FILE *err)
{
    if (argc < 3) {
        fprintf(err, "usage: silence CHECK DURATION [REASON...]\n");
        return 2;
    }
    if (!valid_check_name(argv[1])) {
        fprintf(err, "silence: \"%s\" is not a check name (letters, digits, _ - . or *)\n", argv[1]);
        return 2;
    }
    uint64_t ms = 0;
    if (lf_config_parse_duration(argv[2], &ms) != 0 || ms == 0 || ms > (uint64_t)MAX_SILENCE_MS) {
        fprintf(err, "silence: \"%s\" is not a duration between 1s and 366d (30m, 2h, 1d)\n", argv[2]);
        return 2;
    }
    lf_buf why = LF_BUF_INIT(1024);
    for (int i = 3; i < argc; i++)
        if (lf_buf_appendf(&why, "%s%s", i > 3 ? " " : "", argv[i]) != 0)
            break;
    int64_t until = now_ms + (int64_t)ms;
    int rc = lf_outbox_silence(ob, argv[1], until, who_am_i(), why.len ? lf_buf_cstr(&why) : NULL, now_ms);
    lf_buf_free(&why);
    if (rc < 0) {
        fprintf(err, "silence: %s\n", lf_strerror(rc));
        return 1;
    }
    char when[64], dur[32];
    lf_slack_format_utc(until, when, sizeof(when));
    lf_slack_format_duration((int64_t)ms, dur, sizeof(dur));
    fprintf(out, "%s silenced until %s (%s)\n", strcmp(argv[1], "*") == 0 ? "every check" : argv[1], when, dur);
    return 0;
}

static int cmd_unsilence(lf_outbox *ob, int argc, char *const argv[], FILE *out, FILE *err)
{
    if (argc != 2) {
        fprintf(err, "usage: unsilence CHECK\n");
        return 2;
    }
    int rc = lf_outbox_unsilence(ob, argv[1]);
    if (rc == -ENOENT) {
        fprintf(err, "unsilence: %s has no silence\n", argv[1]);
        return 1;
    }
    if (rc < 0) {
        fprintf(err, "unsilence: %s\n", lf_strerror(rc));
        return 1;
    }
    fprintf(out, "%s unsilenced\n", argv[1]);
    return 0;
}

struct status_ctx {
    FILE *out;
    int64_t now_ms;
    int rows;
};

static int print_row(const lf_outbox_status_row *row, void *arg)
{
    struct status_ctx *c = arg;
    char cond[32] = "-", since[96] = "-", silence[384] = "-";
    if (row->has_state) {
        snprintf(cond, sizeof(cond), "%s%s", lf_alert_status_name(row->state.status),
                 row->state.flapping ? ",flapping" : "");
        if (row->state.status != LF_ALERT_OK && row->state.fail_since_ms > 0) {
            char when[40], dur[32];
            lf_slack_format_utc(row->state.fail_since_ms, when, sizeof(when));
            lf_slack_format_duration(c->now_ms - row->state.fail_since_ms, dur, sizeof(dur));
            snprintf(since, sizeof(since), "%s (%s)", when, dur);
        }
    }
    if (row->silence_until_ms > 0) {
        char when[40];
        lf_slack_format_utc(row->silence_until_ms, when, sizeof(when));
        snprintf(silence, sizeof(silence), "until %s by %s", when, row->silence_who ? row->silence_who : "?");
    }
    fprintf(c->out, "%-24s %-18s %-36s %-8" PRId64 " %s%s%s\n", row->check, cond, since, row->undelivered, silence,
            row->silence_why ? ": " : "", row->silence_why ? row->silence_why : "");
    c->rows++;
    return 0;
}

static int cmd_status(lf_outbox *ob, int argc, int64_t now_ms, FILE *out, FILE *err)
{
    if (argc != 1) {
        fprintf(err, "usage: status\n");
        return 2;
    }
    fprintf(out, "%-24s %-18s %-36s %-8s %s\n", "CHECK", "CONDITION", "FAILING SINCE", "WAITING", "SILENCE");
    struct status_ctx c = {out, now_ms, 0};
    int rc = lf_outbox_foreach_status(ob, now_ms, print_row, &c);
    if (rc < 0) {
        fprintf(err, "status: %s\n", lf_strerror(rc));
        return 1;
    }
    int64_t waiting = 0, due = 0;
    if (lf_outbox_undelivered(ob, &waiting) == 0 && waiting > 0 && lf_outbox_next_due(ob, &due) == 0) {
        char when[40];
        lf_slack_format_utc(due, when, sizeof(when));
        fprintf(out, "%" PRId64 " notification(s) waiting for Slack; next attempt %s\n", waiting, when);
    } else if (c.rows == 0) {
        fprintf(out, "no check has run yet\n");
    }
    return 0;
}

int lf_monitor_cli_run(const char *db_path, int argc, char *const argv[], int64_t now_ms, FILE *out, FILE *err)
{
    if (argc < 1 || !lf_monitor_cli_is_command(argv[0])) {
        fprintf(err, "usage: silence CHECK DURATION [REASON...] | unsilence CHECK | status\n");
        return 2;
    }
    lf_outbox *ob = NULL;
    int rc = lf_outbox_open(db_path, NULL, &ob);
    if (rc < 0) {
        fprintf(err, "%s: cannot open %s: %s\n", argv[0], db_path, lf_strerror(rc));
        return 1;
    }
    int status;
    if (strcmp(argv[0], "silence") == 0)
        status = cmd_silence(ob, argc, argv, now_ms, out, err);
    else if (strcmp(argv[0], "unsilence") == 0)
        status = cmd_unsilence(ob, argc, argv, out, err);
    else
        status = cmd_status(ob, argc, now_ms, out, err);
    lf_outbox_close(ob);
    return status;
}
