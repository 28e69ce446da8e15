/* logferry-analytics's configuration: the common service options plus its own (analytics_config.c). */
#ifndef LF_ANALYTICS_CONFIG_H
#define LF_ANALYTICS_CONFIG_H

#include <stdint.h>

#include "lf_config.h"
#include "lf_service.h"

struct lf_analytics_config {
    lf_service_config common; /* first: lf_service reads it */
    char *mysql_host;
    uint64_t mysql_port;
    char *mysql_socket;
    char *mysql_user;
    char *mysql_password;
    char *source_database;
    char *target_database;
};

extern const lf_config_table lf_analytics_config_table;

#endif
