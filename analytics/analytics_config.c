/* logferry-analytics's configuration table (also read by tools/logferry-config-docs). */
#include "analytics_config.h"

#include <stddef.h>

#define F(field) offsetof(struct lf_analytics_config, field)

static const lf_config_option analytics_options[] = {
    LF_SERVICE_COMMON_OPTIONS("127.0.0.1:8443"),
    {"mysql", "host", LF_CFG_STRING, "127.0.0.1", F(mysql_host),
     .description = "MySQL/MariaDB server address (ignored when socket is set)."},
    {"mysql", "port", LF_CFG_UINT, "3306", F(mysql_port), .min = 1, .max = 65535,
     .description = "MySQL/MariaDB server port."},
    {"mysql", "socket", LF_CFG_STRING, NULL, F(mysql_socket),
     .description = "Unix socket of the server, used instead of host and port when set."},
    {"mysql", "user", LF_CFG_STRING, "logferry", F(mysql_user), .description = "MySQL user."},
    {"mysql", "password", LF_CFG_STRING, NULL, F(mysql_password), .flags = LF_CFG_SECRET,
     .description = "MySQL password."},
    {"analytics", "source_database", LF_CFG_STRING, "logferry", F(source_database),
     .description = "Database the parser loads events into, read by the jobs."},
    {"analytics", "target_database", LF_CFG_STRING, "logferry_analytics", F(target_database),
     .description = "Database of the analytics tables (Tableau, dashboard), the run history and the "
                    "jobs' lock."},
};

const lf_config_table lf_analytics_config_table = {
    .program = "logferry-analytics",
    .default_path = "/etc/logferry/analytics.conf",
    .options = analytics_options,
    .n_options = sizeof analytics_options / sizeof analytics_options[0],
    .target_size = sizeof(struct lf_analytics_config),
    .description = "Scheduled, incremental, idempotent loaders from the parsed tables into the "
                   "analytics database.",
};
