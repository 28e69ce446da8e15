/* logferry-receiver's configuration: the common service options plus its own (receiver_config.c). */
#ifndef LF_RECEIVER_CONFIG_H
#define LF_RECEIVER_CONFIG_H

#include <stdint.h>

#include "lf_config.h"
#include "lf_es.h"
#include "lf_jsconfig.h"
#include "lf_mysql.h"
#include "lf_service.h"

enum { LF_STORE_BACKEND_FILESYSTEM, LF_STORE_BACKEND_ELASTICSEARCH };

struct lf_receiver_config {
    lf_service_config common; /* first: lf_service reads it */
    char *store_dir;
    int store_backend; /* LF_STORE_BACKEND_* */
    char *es_url;
    char *es_index;
    uint64_t es_chunk_size;
    lf_es_auth es_auth;
    uint64_t max_upload_size;
    char *index_path;
    char *keys_dir;
    char *queue_path;
    char *queue_name;
    uint64_t max_receives;
    lf_jsconfig js;             /* [queue] backend and JetStream connection */
    uint64_t js_visibility_ms;  /* jetstream: the consumer's ack wait, as the parsers' */
    uint64_t max_publishes;     /* jetstream: publishes waiting for their PubAck at once */
    uint64_t republish_interval_ms; /* jetstream: sweep of sessions stored but not acknowledged */
    char *advertise_url;        /* jetstream: named in each message (header Lf-Receiver) */
    uint64_t signature_window_ms;
    char *sites_file;
    char *tokens_file;
    char *token_key_file;
    uint64_t max_concurrent_uploads;
    uint64_t upload_threads;
    uint64_t max_queue_depth;
    uint64_t min_free_disk;
    uint64_t retry_after_ms;
    uint64_t zip_max_entries;
    uint64_t zip_max_total_size;
    uint64_t zip_max_ratio;
    /* read routes (list, events, search): the parsed-events database and Elasticsearch */
    char *mysql_host;
    uint64_t mysql_port;
    char *mysql_user;
    char *mysql_password;
    char *mysql_database;
    uint64_t mysql_pool_size;
    lf_mysql_tls mysql_tls;
    char *search_es_url;
    char *search_index_prefix;
    lf_es_auth search_es_auth;
};

extern const lf_config_table lf_receiver_config_table;

#endif
