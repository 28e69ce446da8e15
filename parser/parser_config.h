/* logferry-parser's configuration: the common service options, its own, and the [logtype.NAME]
 * sections that parser/logtype.c reads (parser_config.c). */
#ifndef LF_PARSER_CONFIG_H
#define LF_PARSER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lf_config.h"
#include "lf_es.h"
#include "lf_jsconfig.h"
#include "lf_mysql.h"
#include "lf_service.h"

/* A [logtype.NAME] section as the configuration loader keeps it: its keys, checked one by one with
 * lf_logtype_set(); lf_logtypes_load() builds the types from the same file. */
struct lf_parser_logtype_section {
    char *name;
    char **pairs; /* key, value, key, value..., NULL */
};

#define LF_PARSER_PEERS_MAX 32

struct lf_parser_config {
    lf_service_config common; /* first: lf_service reads it */
    char *receiver_url;
    char **receiver_peers; /* NULL-terminated, or NULL: other receivers' base URLs (jetstream) */
    uint64_t max_waiting_sessions; /* jetstream: sessions set aside while their receiver is away */
    char *receiver_token;
    char *receiver_admin_token;
    char *queue_name;
    uint64_t queue_wait_ms;
    uint64_t visibility_ms;
    lf_jsconfig js; /* [queue]: backend and JetStream connection */
    uint64_t queue_max_receives;
    uint64_t workers;
    char *keys_dir;
    int load_method; /* index into lf_parser_load_methods == lf_load_method */
    uint64_t max_log_size;
    uint64_t max_events;
    uint64_t nack_delay_ms;
    uint64_t failure_delay_ms;
    char *templates_dir;
    char *mysql_host;
    uint64_t mysql_port;
    char *mysql_socket;
    char *mysql_user;
    char *mysql_password;
    char *mysql_database;
    lf_mysql_tls mysql_tls;
    char *es_url;
    char *es_index_prefix;
    uint64_t es_bulk_bytes;
    lf_es_auth es_auth;
    struct lf_parser_logtype_section *logtypes;
    size_t n_logtypes;
};

extern const lf_config_table lf_parser_config_table;
extern const char *const lf_parser_load_methods[]; /* "infile", "insert", NULL */

#endif
