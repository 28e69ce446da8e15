/* Configuration of one [check.NAME] section: the option table for lf_config's repeated sections.
 *
 * The monitor's configuration table plugs it in with LF_CHECKS_SECTION_TABLE:
 *
 *   struct monitor_config { ...; lf_check_config *checks; size_t n_checks; };
 *   static const lf_config_section_table monitor_sections[] = {
 *       LF_CHECKS_SECTION_TABLE(struct monitor_config, checks, n_checks),
 *   };
 *
 * and, after loading, calls lf_check_config_validate() on each element (the requirements that depend
 * on the kind: a queue check needs a url, a disk check a path and a threshold, ...). */
#ifndef LF_CHECKS_CONFIG_H
#define LF_CHECKS_CONFIG_H

#include <stddef.h>

#include "checks.h"
#include "lf_buf.h"
#include "lf_config.h"

/* The options of one [check.NAME] section (their section field, "check.NAME", is documentation). */
extern const lf_config_option lf_check_config_options[];
#define LF_CHECK_CONFIG_N_OPTIONS 48
#define LF_CHECKS_MAX 256

#define LF_CHECK_DEFAULT_METRIC "lf_parser_sessions_total"
#define LF_CHECK_DEFAULT_FRESHNESS_QUERY                                                                    \
    "SELECT job, TIMESTAMPDIFF(SECOND, MAX(finished_at), UTC_TIMESTAMP()) FROM logferry_analytics.job_runs " \
    "WHERE status = 'ok' GROUP BY job"

#define LF_CHECKS_SECTION_TABLE(target_type, array_field, count_field)                                      \
    {                                                                                                       \
        .prefix = "check", .options = lf_check_config_options, .n_options = LF_CHECK_CONFIG_N_OPTIONS,      \
        .element_size = sizeof(lf_check_config), .name_offset = offsetof(lf_check_config, name),            \
        .array_offset = offsetof(target_type, array_field), .count_offset = offsetof(target_type, count_field), \
        .max_count = LF_CHECKS_MAX,                                                                         \
        .description = "One check the monitor runs on its own interval, with its thresholds and alerting.", \
    }

/* Cross-option requirements of one check, by kind. 0, or LF_ECONFIG with "[check.NAME] key: why"
 * in err. */
int lf_check_config_validate(const lf_check_config *c, lf_buf *err);

/* A link put into Slack messages (runbook_url, dashboard_url): http(s), no space, < > or |. */
int lf_check_link_validate(const void *field, lf_buf *err);

#endif
