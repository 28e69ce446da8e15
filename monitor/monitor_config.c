/* logferry-monitor's configuration table (also read by tools/logferry-config-docs). */
#include "monitor_config.h"

#include <stddef.h>

#include "checks_config.h"

#define F(field) offsetof(struct lf_monitor_config, field)

static const lf_config_option monitor_options[] = {
    LF_SERVICE_COMMON_OPTIONS("127.0.0.1:8444"),
    {"slack", "webhook_url", LF_CFG_STRING, NULL, F(slack_webhook_url), .flags = LF_CFG_SECRET,
     .description = "Slack incoming-webhook URL alerts are posted to (the URL is the credential). "
                    "Unset: alerts are only logged."},
    {"slack", "timeout", LF_CFG_DURATION, "10s", F(slack_timeout_ms), .min = 100, .max = 300000,
     .description = "Longest a post to Slack may take before it is retried."},
    {"monitor", "state_dir", LF_CFG_STRING, "/var/lib/logferry/monitor", F(state_dir),
     .description = "Directory of the alert states and the outbox of undelivered notifications, kept "
                    "across restarts."},
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
