/* Slack incoming-webhook message for one notification or a group sent together.
 *
 * The body is the documented webhook JSON: a top-level "text" (the plain summary that Slack shows in
 * notifications and clients without attachments) and one legacy secondary "attachment" per
 * notification, with "color" (danger for firing and reminders, warning for flapping, good for
 * resolved), a title, the message text and fields: value, threshold, since (UTC and duration), host.
 *
 * Text that comes from checks (names, messages, values) is made safe: invalid UTF-8 becomes U+FFFD,
 * control characters become spaces, Slack's control characters & < > become &amp; &lt; &gt; (so a
 * hostile name cannot form a link or a mention such as <!channel>), and jansson escapes it for JSON.
 * Long text is cut with an ellipsis. */
#ifndef LF_SLACK_MESSAGE_H
#define LF_SLACK_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "alert_state.h"
#include "lf_buf.h"

typedef struct lf_slack_item {
    const char *check;         /* check name */
    const lf_alert_note *note; /* what happened */
    const char *runbook_url;   /* the check's runbook (its title links there); NULL: none */
} lf_slack_item;

/* Where a message points people: the dashboard (a field of every attachment) and each check's
 * runbook. URLs come from the configuration, checked there (http or https, no space, < > or |). */
typedef struct lf_slack_links {
    const char *dashboard_url;                           /* NULL: none */
    const char *(*runbook_of)(void *arg, const char *check); /* NULL, or NULL for a check: none */
    /* The webhook a check's messages go to: NULL (or NULL for a check) for the default one. A
     * message only groups notifications that go to the same webhook. */
    const char *(*route_of)(void *arg, const char *check);
    void *arg;
} lf_slack_links;

/* Most notifications one message carries (Slack displays up to 100 attachments; a long list is
 * unreadable anyway: the outbox sends the rest in the next message). */
#define LF_SLACK_MAX_ITEMS 20

/* Appends the JSON body for items[0..n) to out (n from 1 to LF_SLACK_MAX_ITEMS). host names the
 * monitor's machine; now_ms is used for "for 12m" durations of notifications still open.
 * 0, -EINVAL, -ENOMEM or LF_ELIMIT (out too small). */
int lf_slack_message_build(const lf_slack_item *items, size_t n, const char *host, int64_t now_ms, lf_buf *out);
/* The same with the dashboard link in every attachment (links may be NULL). */
int lf_slack_message_build_linked(const lf_slack_item *items, size_t n, const char *host, const char *dashboard_url,
                                  int64_t now_ms, lf_buf *out);

/* Appends text made safe for Slack (see above), cut to at most max_bytes of input. */
int lf_slack_escape(lf_buf *out, const char *text, size_t max_bytes);

/* "3d 4h", "2h 5m", "5m 10s", "42s" */
void lf_slack_format_duration(int64_t ms, char *buf, size_t cap);
/* "2026-11-22 02:00:00 UTC" */
void lf_slack_format_utc(int64_t unix_ms, char *buf, size_t cap);

#endif
