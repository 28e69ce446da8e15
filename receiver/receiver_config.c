/* logferry-receiver's configuration table (also read by tools/logferry-config-docs). */
#include "receiver_config.h"

#include <stddef.h>

#include "lf_es.h"

#define F(field) offsetof(struct lf_receiver_config, field)

static const char *const store_backends[] = {"filesystem", "elasticsearch", NULL};

/* The value every published message carries in its Lf-Receiver header, which a parser refuses whole
 * unless it is an http(s) URL it can match against its [receiver] url and peers: caught here, at
 * --check-config, rather than at the receiver's start. */
static int validate_advertise_url(const void *field, lf_buf *err)
{
    const char *url = *(const char *const *)field;
    if (url && !lf_jsqueue_origin_valid(url)) {
        lf_buf_msgf(err, "\"%s\" is not an http:// or https:// URL of at most %d characters", url,
                    LF_JSQUEUE_ORIGIN_MAX - 1);
        return LF_ECONFIG;
    }
    return 0;
}

static const lf_config_option receiver_options[] = {
    LF_SERVICE_COMMON_OPTIONS("127.0.0.1:8440"),
    {"store", "dir", LF_CFG_STRING, "/var/lib/logferry/receiver/sessions", F(store_dir),
     .description = "Directory of the stored sessions (encrypted zips, YYYY/MM/DD/<id>.lfz), the system of "
                    "record. Temporary files live in its .tmp subdirectory."},
    {"store", "backend", LF_CFG_ENUM, "filesystem", F(store_backend), .enum_values = store_backends,
     .description = "Where the encrypted sessions are kept: filesystem (under store.dir) or elasticsearch "
                    "(the original design's system of record: chunk documents <id>-<n> in store.es_index, "
                    "the encrypted zip base64-encoded in a non-indexed binary field, written with "
                    "op_type=create; the index template is installed at start). store.dir still holds "
                    "temporary files with either."},
    {"store", "es_url", LF_CFG_STRING, "http://127.0.0.1:9200", F(es_url), .validate = lf_es_url_validate,
     .description = "Elasticsearch base URL for store.backend = elasticsearch (http:// or https://, without "
                    "credentials)."},
    {"store", "es_index", LF_CFG_STRING, "logferry-sessions", F(es_index), .validate = lf_es_index_name_validate,
     .description = "Elasticsearch index of the stored sessions; also the name of its index template."},
    /* A chunk document is 4/3 of this in base64. Elasticsearch answers 413 above
     * http.max_content_length (100mb) and 429, every time, above its indexing pressure limit (10% of
     * the heap): 16M (21.4 MB documents) passes both from a 256 MB heap up. */
    {"store", "es_chunk_size", LF_CFG_SIZE, "4M", F(es_chunk_size), .min = 1024, .max = 16ULL << 20,
     .description = "Encrypted bytes per Elasticsearch chunk document (a session larger than this is split "
                    "into ordered chunks; each document is about 4/3 of it, base64). At most 16M, which keeps "
                    "a document under Elasticsearch's request and indexing pressure limits."},
    LF_ES_AUTH_OPTIONS("store", "es_", F(es_auth)),
    {"store", "max_upload_size", LF_CFG_SIZE, "1G", F(max_upload_size), .min = 1024, .max = 64ULL << 30,
     .description = "Largest session upload accepted (413 above it), checked against Content-Length "
                    "before the body is read."},
    {"store", "index_path", LF_CFG_STRING, "/var/lib/logferry/receiver/index.db", F(index_path),
     .description = "SQLite database indexing the stored sessions (id, site, sizes, content hash, time, "
                    "location, status)."},
    {"store", "keys_dir", LF_CFG_STRING, "/var/lib/logferry/receiver/keys", F(keys_dir),
     .description = "Keyring directory for encryption at rest (mode 0700, key files 0600). A first key is "
                    "created at start when there is none; `keys rotate` adds a new current key."},
    {"queue", "path", LF_CFG_STRING, "/var/lib/logferry/receiver/queue.db", F(queue_path),
     .description = "SQLite database of the embedded durable queue (WAL mode)."},
    {"queue", "sessions_queue", LF_CFG_STRING, "sessions", F(queue_name),
     .description = "Queue on which the ids of stored sessions are sent for the parsers."},
    {"queue", "max_receives", LF_CFG_UINT, "5", F(max_receives), .min = 1, .max = 1000,
     .description = "A message received more often than this moves to the dead-letter queue."},
    LF_JSCONFIG_OPTIONS(F(js),
                        "Where session ids are queued for the parsers: `embedded` (the SQLite queue in queue.path, "
                        "served to parsers by this receiver's queue API) or `jetstream` (published to NATS "
                        "JetStream, from which parsers with the same backend pull directly; an upload is answered "
                        "2xx only after JetStream acknowledged the publish)."),
    {"queue", "visibility", LF_CFG_DURATION, "60s", F(js_visibility_ms), .min = 2000, .max = 43200000,
     .description = "jetstream: the consumer's ack wait. Must equal the parsers' [receiver] visibility: every "
                    "process that opens the queue sets the consumer to its own value."},
    {"queue", "max_publishes", LF_CFG_UINT, "8", F(max_publishes), .min = 1, .max = 128,
     .description = "jetstream: publishes waiting for JetStream's acknowledgement at once, each holding one of "
                    "limits.upload_threads (keep it below that, so that a slow JetStream does not stall the "
                    "stores); further stored sessions wait their turn, holding no thread, and their uploads are "
                    "answered once published. While JetStream is unreachable uploads get 503 with Retry-After (a "
                    "session already stored is published again when its uploader retries)."},
    {"queue", "republish_interval", LF_CFG_DURATION, "30s", F(republish_interval_ms), .min = 1000,
     .max = 86400000,
     .description = "jetstream: how often sessions stored but never acknowledged by JetStream (a crash or a "
                    "failed publish between store and answer) are published again."},
    {"queue", "advertise_url", LF_CFG_STRING, NULL, F(advertise_url), .validate = validate_advertise_url,
     .description = "jetstream: this receiver's base URL as the parsers reach it (for example "
                    "`https://recv-2.example:8440`), named in every message it publishes so that a parser "
                    "fetches the session from the receiver that stores it. Unset: parsers fetch from their own "
                    "[receiver] url (one receiver, or a store every receiver reads, such as Elasticsearch)."},
    {"auth", "signature_window", LF_CFG_DURATION, "5m", F(signature_window_ms), .min = 1000, .max = 86400000,
     .flags = LF_CFG_RELOADABLE,
     .description = "Upload signatures whose timestamp differs from the receiver's clock by more than this "
                    "are refused (401)."},
    {"auth", "sites_file", LF_CFG_STRING, "/var/lib/logferry/receiver/sites", F(sites_file),
     .description = "Site table (`sites add|disable|enable|list`): name, Ed25519 public key, state. Re-read "
                    "when it changes."},
    {"auth", "tokens_file", LF_CFG_STRING, "/var/lib/logferry/receiver/tokens", F(tokens_file),
     .description = "Bearer tokens (`tokens add|list|revoke`), stored as keyed BLAKE2b hashes with their "
                    "scopes. Re-read when it changes."},
    {"auth", "token_key_file", LF_CFG_STRING, "/var/lib/logferry/receiver/token.key", F(token_key_file),
     .description = "Secret key of the token hashes (32 bytes, mode 0600), created when missing."},
    {"limits", "max_concurrent_uploads", LF_CFG_UINT, "64", F(max_concurrent_uploads), .min = 1,
     .max = 100000,
     .description = "Uploads being verified and stored at once; past it new uploads get 503 with "
                    "Retry-After before their body is read."},
    {"limits", "upload_threads", LF_CFG_UINT, "16", F(upload_threads), .min = 1, .max = 128,
     .description = "Threads verifying, encrypting and storing uploads (the libuv thread pool; an "
                    "UV_THREADPOOL_SIZE in the environment wins). Storing waits on fsync, so more threads "
                    "than cores keep the disk busy."},
    {"limits", "max_queue_depth", LF_CFG_UINT, "1000000", F(max_queue_depth), .min = 1,
     .max = 1000000000ULL,
     .description = "Visible messages on the sessions queue past which uploads get 429 with Retry-After "
                    "(the parsers are behind)."},
    {"limits", "min_free_disk", LF_CFG_SIZE, "1G", F(min_free_disk), .max = 1ULL << 50,
     .description = "Free space on the store's file system below which uploads get 503 with Retry-After "
                    "(0 disables the check). A write that fails with ENOSPC gives 507."},
    {"limits", "retry_after", LF_CFG_DURATION, "5s", F(retry_after_ms), .min = 1000, .max = 3600000,
     .description = "Retry-After sent with 429 and 503 answers (rounded up to seconds)."},
    {"zip", "max_entries", LF_CFG_UINT, "16", F(zip_max_entries), .min = 2, .max = 100000,
     .description = "Entries an upload's zip may hold (directories count)."},
    {"zip", "max_total_size", LF_CFG_SIZE, "4G", F(zip_max_total_size), .min = 1024, .max = 1ULL << 40,
     .description = "Sum of the uncompressed sizes of an upload's entries (zip bombs)."},
    {"zip", "max_ratio", LF_CFG_UINT, "200", F(zip_max_ratio), .min = 2, .max = 100000,
     .description = "Largest compression ratio (uncompressed / compressed), per entry and overall, above "
                    "1 MiB of uncompressed data (zip bombs)."},
    {"mysql", "host", LF_CFG_STRING, "127.0.0.1", F(mysql_host),
     .description = "MariaDB/MySQL server of the parsed-events database, for GET /v1/sessions, "
                    "/v1/sessions/{id}/events and the parse status in GET /v1/sessions/{id}. Connections are "
                    "opened on demand; while it is unreachable those routes answer 503."},
    {"mysql", "port", LF_CFG_UINT, "3306", F(mysql_port), .min = 1, .max = 65535,
     .description = "Port of the parsed-events database server."},
    {"mysql", "user", LF_CFG_STRING, "logferry", F(mysql_user),
     .description = "User for the read routes (read-only privileges are enough)."},
    {"mysql", "password", LF_CFG_STRING, NULL, F(mysql_password), .flags = LF_CFG_SECRET,
     .description = "Password of mysql.user."},
    {"mysql", "database", LF_CFG_STRING, "logferry", F(mysql_database),
     .description = "The parsed-events database written by logferry-parser."},
    {"mysql", "pool_size", LF_CFG_UINT, "4", F(mysql_pool_size), .min = 1, .max = 64,
     .description = "Database connections the read routes keep at most."},
    LF_MYSQL_TLS_OPTIONS("mysql", "", F(mysql_tls), 0),
    {"search", "es_url", LF_CFG_STRING, NULL, F(search_es_url), .validate = lf_es_url_validate,
     .description = "Elasticsearch base URL holding the parsed events (logferry-parser's "
                    "elasticsearch.url); unset: GET /v1/search answers 503."},
    {"search", "index_prefix", LF_CFG_STRING, "logferry-events-", F(search_index_prefix),
     .validate = lf_es_index_name_validate,
     .description = "Prefix of the daily event indices searched by GET /v1/search."},
    LF_ES_AUTH_OPTIONS("search", "es_", F(search_es_auth)),
};

const lf_config_table lf_receiver_config_table = {
    .program = "logferry-receiver",
    .default_path = "/etc/logferry/receiver.conf",
    .options = receiver_options,
    .n_options = sizeof receiver_options / sizeof receiver_options[0],
    .target_size = sizeof(struct lf_receiver_config),
    .description = "The central HTTP API: verifies and stores uploaded sessions, queues them for the "
                   "parsers and answers queries.",
};
