/* logferry-monitor's configuration table (also read by tools/logferry-config-docs). */
#include "monitor_config.h"

#include <stddef.h>

#include "checks_config.h"

#define F(field) offsetof(struct lf_monitor_config, field)

static const lf_config_option monitor_options[] = {
    LF_SERVICE_COMMON_OPTIONS("127.0.0.1:8444"),
    {"slack", "webhook_url", LF_CFG_STRING, NULL, F(slack_webhook_url), .flags = LF_CFG_SECRET | LF_CFG_RELOADABLE,
     .description = "Slack incoming-webhook URL alerts are posted to (the URL is the credential). "
                    "Unset: alerts are only logged."},
    {"slack", "dashboard_url", LF_CFG_STRING, NULL, F(slack_dashboard_url), .flags = LF_CFG_RELOADABLE,
     .validate = lf_check_link_validate,
     .description = "The dashboard every Slack message links to (a field \"Dashboard\"); unset: none."},
    {"slack", "timeout", LF_CFG_DURATION, "10s", F(slack_timeout_ms), .min = 100, .max = 300000,
     .flags = LF_CFG_RELOADABLE,
     .description = "Longest a post to Slack may take before it is retried."},
    {"monitor", "state_dir", LF_CFG_STRING, "/var/lib/logferry/monitor", F(state_dir),
     .description = "Directory of the alert states and the outbox of undelivered notifications, kept "
                    "across restarts."},
    {"monitor", "host", LF_CFG_STRING, NULL, F(host), .flags = LF_CFG_RELOADABLE,
     .description = "Name of this monitor shown in every message. Unset: the host name."},
    {"monitor", "heartbeat_url", LF_CFG_STRING, NULL, F(heartbeat_url), .flags = LF_CFG_SECRET | LF_CFG_RELOADABLE,
     .description = "Dead-man's switch: URL fetched (GET) every heartbeat_interval while the monitor runs, "
                    "e.g. a healthchecks.io ping URL that alerts when the pings stop. Unset: none."},
    {"monitor", "heartbeat_interval", LF_CFG_DURATION, "60s", F(heartbeat_interval_ms), .min = 1000,
     .max = 86400000, .flags = LF_CFG_RELOADABLE,
     .description = "Time between two heartbeat pings."},
    {"monitor", "group_window", LF_CFG_DURATION, "10s", F(group_window_ms), .min = 0, .max = 3600000,
     .flags = LF_CFG_RELOADABLE,
     .description = "The oldest waiting notification is held this long, then sent together with every "
                    "notification created within this window after it as one Slack message. 0: no wait."},
};

static const lf_config_section_table monitor_sections[] = {
    LF_CHECKS_SECTION_TABLE(struct lf_monitor_config, checks, n_checks),
};

const lf_config_table lf_monitor_config_table = {
    .program = "logferry-monitor",
    .default_path = "/etc/logferry/monitor.conf",
    .options = monitor_options,
    .n_options = sizeof monitor_options / sizeof monitor_options[0],
    .sections = monitor_sections,
    .n_sections = 1,
    .target_size = sizeof(struct lf_monitor_config),
    .description = "Watches every other part (health, queues, parser progress, database freshness, "
                   "disks) and alerts to Slack; meant to run on its own host.",
};

int lf_monitor_config_validate(const void *config, lf_buf *err)
{
    const struct lf_monitor_config *c = config;
    for (size_t i = 0; i < c->n_checks; i++) {
        int rc = lf_check_config_validate(&c->checks[i], err);
        if (rc)
            return rc;
    }
    return 0;
}
