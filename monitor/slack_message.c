/* Slack webhook JSON for alert notifications: see slack_message.h. */
#include "slack_message.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lf_error.h"

#define NAME_MAX_BYTES 200
#define TEXT_MAX_BYTES 1500

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is not valid: no overlong
 * forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int lf_slack_escape(lf_buf *out, const char *text, size_t max_bytes)
{
    if (!text)
        return 0;
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    bool cut = n > max_bytes;
    if (cut)
        n = max_bytes;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        unsigned c = s[i];
        if (c == '&') {
            rc = lf_buf_append_str(out, "&amp;");
        } else if (c == '<') {
            rc = lf_buf_append_str(out, "&lt;");
        } else if (c == '>') {
            rc = lf_buf_append_str(out, "&gt;");
        } else if (c == '\n') {
            rc = lf_buf_append_char(out, '\n');
        } else if (c < 0x20 || c == 0x7F) {
            rc = lf_buf_append_char(out, ' ');
        } else if (c < 0x80) {
            rc = lf_buf_append_char(out, (char)c);
        } else {
            size_t len = utf8_valid_len(s + i, n - i);
            if (len == 0) {
                /* an invalid byte, or a sequence cut by the limit */
                rc = lf_buf_append_str(out, "\xEF\xBF\xBD");
                i++;
                continue;
            }
            rc = lf_buf_append(out, s + i, len);
            i += len;
            continue;
        }
        i++;
    }
    if (rc == 0 && cut)
        rc = lf_buf_append_str(out, "\xE2\x80\xA6");
    return rc;
}

void lf_slack_format_duration(int64_t ms, char *buf, size_t cap)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    int64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
    if (d > 0)
        snprintf(buf, cap, "%" PRId64 "d %" PRId64 "h", d, h);
    else if (h > 0)
        snprintf(buf, cap, "%" PRId64 "h %" PRId64 "m", h, m);
    else if (m > 0)
        snprintf(buf, cap, "%" PRId64 "m %" PRId64 "s", m, sec);
    else
        snprintf(buf, cap, "%" PRId64 "s", sec);
}

void lf_slack_format_utc(int64_t unix_ms, char *buf, size_t cap)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, cap, "@%" PRId64, unix_ms / 1000);
}

static const char *kind_color(int kind)
{
    switch (kind) {
    case LF_NOTIFY_FIRING:
    case LF_NOTIFY_REMINDER:
        return "danger";
    case LF_NOTIFY_FLAPPING:
        return "warning";
    default:
        return "good";
    }
}

static const char *kind_title(int kind)
{
    switch (kind) {
    case LF_NOTIFY_FIRING:
        return "FIRING";
    case LF_NOTIFY_REMINDER:
        return "STILL FAILING";
    case LF_NOTIFY_RESOLVED:
        return "RESOLVED";
    case LF_NOTIFY_FLAPPING:
        return "FLAPPING";
    case LF_NOTIFY_FLAP_ENDED:
        return "STABLE AGAIN";
    default:
        return "NOTICE";
    }
}

/* Sets key of obj to a new string built in b; the buffer is reset. */
static int set_text(json_t *obj, const char *key, lf_buf *b)
{
    json_t *v = json_stringn(b->data ? b->data : "", b->len);
    lf_buf_reset(b);
    if (!v || json_object_set_new(obj, key, v) != 0)
        return -ENOMEM;
    return 0;
}

static int add_field(json_t *fields, const char *title, lf_buf *b, bool is_short)
{
    json_t *f = json_object();
    if (!f || json_array_append_new(fields, f) != 0)
        return -ENOMEM;
    if (json_object_set_new(f, "title", json_string(title)) != 0 || set_text(f, "value", b) != 0 ||
        json_object_set_new(f, "short", json_boolean(is_short)) != 0)
        return -ENOMEM;
    return 0;
}

/* The "since" field: when the failure (or flapping) began and for how long. */
static int append_since(lf_buf *b, const lf_alert_note *note, int64_t now_ms)
{
    char when[64], dur[64];
    lf_slack_format_utc(note->since_ms, when, sizeof(when));
    if (note->kind == LF_NOTIFY_RESOLVED || note->kind == LF_NOTIFY_FLAP_ENDED) {
        lf_slack_format_duration(note->at_ms - note->since_ms, dur, sizeof(dur));
        return lf_buf_appendf(b, "%s (lasted %s)", when, dur);
    }
    lf_slack_format_duration((now_ms > note->at_ms ? now_ms : note->at_ms) - note->since_ms, dur, sizeof(dur));
    return lf_buf_appendf(b, "%s (for %s)", when, dur);
}

/* The attachment text: what happened, in words. */
static int append_body(lf_buf *b, const lf_alert_note *note)
{
    int rc = 0;
    switch (note->kind) {
    case LF_NOTIFY_RESOLVED:
        rc = lf_buf_append_str(b, "Back to normal. ");
        break;
    case LF_NOTIFY_REMINDER:
        rc = lf_buf_append_str(b, "Still failing. ");
        break;
    case LF_NOTIFY_FLAPPING:
        rc = lf_buf_append_str(b, "Changes state often: reported once, no further alerts until it is stable. "
                                  "Last result: ");
        break;
    case LF_NOTIFY_FLAP_ENDED:
        rc = lf_buf_append_str(b, "No longer flapping. Last result: ");
        break;
    default:
        break;
    }
    if (rc == 0)
        rc = lf_slack_escape(b, note->message[0] ? note->message : "(no message)", TEXT_MAX_BYTES);
    return rc;
}

/* "<URL|text>": a link in Slack's markup (the URL was checked for < > and | at configuration). */
static int add_link_field(json_t *fields, const char *title, const char *url, const char *text, lf_buf *b)
{
    int rc = lf_buf_appendf(b, "<%s|%s>", url, text);
    return rc ? rc : add_field(fields, title, b, true);
}

static int build_attachment(json_t *atts, const lf_slack_item *it, const char *host, const char *dashboard_url,
                            int64_t now_ms, lf_buf *b)
{
    const lf_alert_note *note = it->note;
    int rc;
    /* the _new setters take the reference even when they fail, so nothing leaks on error */
    json_t *a = json_object();
    if (!a || json_array_append_new(atts, a) != 0)
        return -ENOMEM;
    json_t *fields = json_array();
    if (json_object_set_new(a, "fields", fields) != 0 ||
        json_object_set_new(a, "color", json_string(kind_color(note->kind))) != 0)
        return -ENOMEM;

    /* plain fallback for clients that show no attachments */
    if ((rc = lf_buf_appendf(b, "[%s] ", kind_title(note->kind))) || (rc = lf_slack_escape(b, it->check, NAME_MAX_BYTES)) ||
        (rc = lf_buf_append_str(b, " on ")) || (rc = lf_slack_escape(b, host, NAME_MAX_BYTES)) ||
        (rc = lf_buf_append_str(b, ": ")) || (rc = lf_slack_escape(b, note->message, TEXT_MAX_BYTES)) ||
        (rc = set_text(a, "fallback", b)))
        return rc;
    if ((rc = lf_buf_appendf(b, "%s: ", kind_title(note->kind))) || (rc = lf_slack_escape(b, it->check, NAME_MAX_BYTES)) ||
        (rc = set_text(a, "title", b)))
        return rc;
    if ((rc = append_body(b, note)) || (rc = set_text(a, "text", b)))
        return rc;
    if ((rc = lf_slack_escape(b, note->value[0] ? note->value : "-", TEXT_MAX_BYTES)) ||
        (rc = add_field(fields, "Value", b, true)))
        return rc;
    if ((rc = lf_slack_escape(b, note->threshold[0] ? note->threshold : "-", TEXT_MAX_BYTES)) ||
        (rc = add_field(fields, "Threshold", b, true)))
        return rc;
    if ((rc = append_since(b, note, now_ms)) ||
        (rc = add_field(fields, note->kind == LF_NOTIFY_FLAPPING || note->kind == LF_NOTIFY_FLAP_ENDED ? "Flapping since"
                                                                                                   : "Failing since",
                        b, false)))
        return rc;
    if ((rc = lf_slack_escape(b, host, NAME_MAX_BYTES)) || (rc = add_field(fields, "Host", b, true)))
        return rc;
    if (it->runbook_url && ((rc = add_link_field(fields, "Runbook", it->runbook_url, "what to do", b)) ||
                            json_object_set_new(a, "title_link", json_string(it->runbook_url)) != 0))
        return rc ? rc : -ENOMEM;
    if (dashboard_url && (rc = add_link_field(fields, "Dashboard", dashboard_url, "open", b)))
        return rc;
    if (json_object_set_new(a, "footer", json_string("logferry-monitor")) != 0 ||
        json_object_set_new(a, "ts", json_integer(note->at_ms / 1000)) != 0)
        return -ENOMEM;
    return 0;
}

/* Top-level text: the one-line summary, or a count and a list for a group. */
static int build_summary(lf_buf *b, const lf_slack_item *items, size_t n, const char *host)
{
    int rc;
    if (n == 1) {
        const lf_alert_note *note = items[0].note;
        if ((rc = lf_buf_appendf(b, "[%s] ", kind_title(note->kind))) ||
            (rc = lf_slack_escape(b, items[0].check, NAME_MAX_BYTES)) || (rc = lf_buf_append_str(b, " on ")) ||
            (rc = lf_slack_escape(b, host, NAME_MAX_BYTES)) || (rc = lf_buf_append_str(b, ": ")) ||
            (rc = lf_slack_escape(b, note->message[0] ? note->message : "(no message)", TEXT_MAX_BYTES)))
            return rc;
        return 0;
    }
    size_t failing = 0;
    for (size_t i = 0; i < n; i++)
        failing += items[i].note->kind == LF_NOTIFY_FIRING || items[i].note->kind == LF_NOTIFY_REMINDER;
    if ((rc = lf_buf_appendf(b, "%zu alerts on ", n)) || (rc = lf_slack_escape(b, host, NAME_MAX_BYTES)) ||
        (rc = lf_buf_appendf(b, " (%zu failing): ", failing)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        if ((rc = lf_buf_appendf(b, "%s%s ", i ? ", " : "", kind_title(items[i].note->kind))) ||
            (rc = lf_slack_escape(b, items[i].check, NAME_MAX_BYTES)))
            return rc;
    }
    return 0;
}

int lf_slack_message_build(const lf_slack_item *items, size_t n, const char *host, int64_t now_ms, lf_buf *out)
{
    return lf_slack_message_build_linked(items, n, host, NULL, now_ms, out);
}

int lf_slack_message_build_linked(const lf_slack_item *items, size_t n, const char *host, const char *dashboard_url,
                                  int64_t now_ms, lf_buf *out)
{
    if (!items || n == 0 || n > LF_SLACK_MAX_ITEMS)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!items[i].check || !items[i].note)
            return -EINVAL;
    if (!host || !host[0])
        host = "unknown host";
    lf_buf b = LF_BUF_INIT(64 * 1024);
    json_t *root = json_object();
    json_t *atts = json_array();
    int rc = -ENOMEM;
    if (!root || !atts) {
        json_decref(atts);
        goto done;
    }
    if (json_object_set_new(root, "attachments", atts) != 0)
        goto done;
    if ((rc = build_summary(&b, items, n, host)) || (rc = set_text(root, "text", &b)))
        goto done;
    for (size_t i = 0; i < n; i++)
        if ((rc = build_attachment(atts, &items[i], host, dashboard_url, now_ms, &b)))
            goto done;
    char *text = json_dumps(root, JSON_COMPACT);
    if (!text) {
        rc = -ENOMEM;
        goto done;
    }
    rc = lf_buf_append_str(out, text);
    free(text);
done:
    lf_buf_free(&b);
    json_decref(root);
    return rc;
}
