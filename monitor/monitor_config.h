/* logferry-monitor's configuration: the common service options, its own, and the [check.NAME]
 * sections of checks_config.h (monitor_config.c). */
#ifndef LF_MONITOR_CONFIG_H
#define LF_MONITOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "checks.h"
#include "lf_buf.h"
#include "lf_config.h"
#include "lf_service.h"

struct lf_monitor_config {
    lf_service_config common; /* first: lf_service reads it */
    char *slack_webhook_url;
    char *slack_dashboard_url;
    uint64_t slack_timeout_ms;
    char *state_dir;
    char *host;
    char *heartbeat_url;
    uint64_t heartbeat_interval_ms;
    uint64_t group_window_ms;
    lf_check_config *checks;
    size_t n_checks;
};

extern const lf_config_table lf_monitor_config_table;

/* Requirements across options (each check's, by kind). 0, or LF_ECONFIG with the reason in err. */
int lf_monitor_config_validate(const void *config, lf_buf *err);

#endif
