/* The analytics database's tables (docs/analytics.md), as lf_mysql migrations. */
#ifndef LF_ANALYTICS_SCHEMA_H
#define LF_ANALYTICS_SCHEMA_H

#include <stddef.h>

#include "lf_mysql.h"

extern const lf_mysql_migration lf_analytics_migrations[];
extern const size_t lf_analytics_migrations_count;

#endif
