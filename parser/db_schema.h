/* The parsed-events database (`logferry` by default) that logferry-parser creates and migrates and
 * that the receiver's read routes and logferry-analytics read. docs/database.md describes every
 * table; this is the one place the DDL lives. */
#ifndef LF_DB_SCHEMA_H
#define LF_DB_SCHEMA_H

#include <stddef.h>

#include "lf_mysql.h"

extern const lf_mysql_migration lf_parser_migrations[];
extern const size_t lf_parser_migrations_count;

#endif
