/* logferry-parser's configuration table (also read by tools/logferry-config-docs). */
#include "parser_config.h"

#include <stddef.h>

#include "lf_es.h"
#include "lf_jsqueue.h"
#include "logtype.h"

#define F(field) offsetof(struct lf_parser_config, field)

/* Each peer an http(s) URL a message's origin can equal (lf_jsqueue_origin_valid), at most
 * LF_PARSER_PEERS_MAX of them. */
static int validate_peers(const void *field, lf_buf *err)
{
    char *const *list = *(char **const *)field;
    size_t n = 0;
    for (; list && list[n]; n++)
        if (!lf_jsqueue_origin_valid(list[n])) {
            lf_buf_msgf(err, "\"%s\" is not an http:// or https:// URL of at most %d characters", list[n],
                        LF_JSQUEUE_ORIGIN_MAX - 1);
            return LF_ECONFIG;
        }
    if (n > LF_PARSER_PEERS_MAX) {
        lf_buf_msgf(err, "more than %d peers", LF_PARSER_PEERS_MAX);
        return LF_ECONFIG;
    }
    return 0;
}

static const lf_config_option parser_options[] = {
    LF_SERVICE_COMMON_OPTIONS("127.0.0.1:8442"),
    {"receiver", "url", LF_CFG_STRING, "http://127.0.0.1:8440", F(receiver_url),
     .description = "Base URL of the receiver whose queue and stored sessions this parser works on. On jetstream, "
                    "sessions whose message names no receiver are fetched here; a receiver with [queue] "
                    "advertise_url is matched by that URL, so write it the same way (a trailing / aside)."},
    {"receiver", "peers", LF_CFG_LIST, NULL, F(receiver_peers), .validate = validate_peers,
     .description = "jetstream: the other receivers' base URLs (comma-separated, as in their [queue] advertise_url) "
                    "that a message may name as the holder of its session; the parser fetches the blob from "
                    "the receiver named, with the same token. A message naming a receiver that is neither url "
                    "nor one of these is dead-lettered unfetched, so the token never goes to a host not listed "
                    "here. A message naming none is fetched from url."},
    {"receiver", "max_waiting_sessions", LF_CFG_UINT, "256", F(max_waiting_sessions), .min = 1, .max = 2000,
     .description = "jetstream: sessions this parser sets aside, still in flight, while the receiver storing them "
                    "is away, so that the workers go on with other receivers' sessions. Once that many wait, the "
                    "parser takes no new message until one of them is parsed (each worker may add one more it "
                    "had already received). Every parser's waiting sessions count toward the consumer's "
                    "max_ack_pending (10000), past which JetStream delivers to no parser: keep this times the "
                    "number of parsers well below it (256 allows about 30 parsers)."},
    {"receiver", "token", LF_CFG_STRING, NULL, F(receiver_token), .flags = LF_CFG_SECRET,
     .description = "Bearer token with the worker scope, for the queue and the session blobs."},
    {"receiver", "admin_token", LF_CFG_STRING, NULL, F(receiver_admin_token), .flags = LF_CFG_SECRET,
     .description = "A token with the admin scope, used only by `reparse` (redrive, re-queue)."},
    {"receiver", "queue", LF_CFG_STRING, "sessions", F(queue_name),
     .description = "Name of the receiver's queue of session ids."},
    {"receiver", "wait", LF_CFG_DURATION, "10s", F(queue_wait_ms), .min = 0, .max = 20000,
     .description = "Long poll: how long one receive request waits for a message (whole seconds)."},
    {"receiver", "visibility", LF_CFG_DURATION, "60s", F(visibility_ms), .min = 2000, .max = 43200000,
     .description = "How long a received session stays invisible to other parsers; extended every half of "
                    "it while the session is being parsed and loaded."},
    LF_JSCONFIG_OPTIONS(F(js),
                        "Where the queue is: `embedded` takes sessions through the receiver's queue API ([receiver]); "
                        "`jetstream` pulls them straight from NATS JetStream, filled by receivers with the same backend "
                        "and shared by any number of receivers and parsers (the queue name, wait and visibility of "
                        "[receiver] still apply; visibility is the consumer's ack wait, which the receivers' "
                        "[queue] visibility must equal)."),
    {"queue", "max_receives", LF_CFG_UINT, "5", F(queue_max_receives), .min = 0, .max = 1000,
     .description = "jetstream: deliveries of a session before it is moved to the dead-letter stream with its "
                    "reason (0: never)."},
    {"parser", "workers", LF_CFG_UINT, "2", F(workers), .min = 1, .max = 64,
     .description = "Sessions parsed at the same time (one thread each, with its own engine and MySQL connection)."},
    {"parser", "keys_dir", LF_CFG_STRING, "/var/lib/logferry/receiver/keys", F(keys_dir),
     .description = "The receiver's keyring directory (a copy with the same files), to decrypt stored sessions."},
    {"parser", "load_method", LF_CFG_ENUM, "infile", F(load_method), .enum_values = lf_parser_load_methods,
     .description = "How events go into MySQL: infile (LOAD DATA LOCAL INFILE fed from memory) or insert "
                    "(multi-row INSERT statements). bench/parser measures both."},
    {"parser", "max_log_size", LF_CFG_SIZE, "1G", F(max_log_size), .min = 1024, .max = 1ULL << 40,
     .description = "Largest session log decompressed (bigger ones fail with a parse_failures row)."},
    {"parser", "max_events", LF_CFG_UINT, "20000000", F(max_events), .min = 1, .max = 1000000000,
     .description = "Most events in one session."},
    {"parser", "retry_delay", LF_CFG_DURATION, "10s", F(nack_delay_ms), .min = 0, .max = 43200000,
     .description = "A session that failed for a passing reason of its own (a deadlock past the retries, a "
                    "500 on its blob) is handed back and tried again after this; it is also the longest "
                    "wait between retries while MySQL, Elasticsearch or the receiver is away."},
    {"parser", "failure_delay", LF_CFG_DURATION, "30s", F(failure_delay_ms), .min = 0, .max = 43200000,
     .description = "A session that could not be decrypted, unzipped or parsed is handed back with this delay "
                    "(after the queue's max_receives it goes to the dead-letter queue)."},
    {"parser", "templates_dir", LF_CFG_STRING, NULL, F(templates_dir),
     .description = "No longer used: mined templates are kept in MySQL (table templates) and shared by every "
                    "parser, so they survive restarts and agree across hosts. Accepted so that older "
                    "configuration files still load; a warning at start says it is ignored."},
    {"mysql", "host", LF_CFG_STRING, "127.0.0.1", F(mysql_host), .description = "MySQL/MariaDB host."},
    {"mysql", "port", LF_CFG_UINT, "3306", F(mysql_port), .min = 1, .max = 65535, .description = "Its port."},
    {"mysql", "socket", LF_CFG_STRING, NULL, F(mysql_socket),
     .description = "Unix socket path; when set, used instead of host and port."},
    {"mysql", "user", LF_CFG_STRING, "logferry", F(mysql_user), .description = "MySQL user."},
    {"mysql", "password", LF_CFG_STRING, NULL, F(mysql_password), .flags = LF_CFG_SECRET,
     .description = "Its password."},
    {"mysql", "database", LF_CFG_STRING, "logferry", F(mysql_database),
     .description = "Database of the parsed events (created and migrated by `db migrate` and at start)."},
    LF_MYSQL_TLS_OPTIONS("mysql", "", F(mysql_tls), 0),
    {"elasticsearch", "url", LF_CFG_STRING, NULL, F(es_url), .validate = lf_es_url_validate,
     .description = "When set, events are also indexed into Elasticsearch at this base URL (http:// or "
                    "https://, without credentials)."},
    {"elasticsearch", "index_prefix", LF_CFG_STRING, "logferry-events-", F(es_index_prefix),
     .validate = lf_es_index_name_validate,
     .description = "Daily indices are named PREFIX + YYYY.MM.DD of the event's time (lower case, not in "
                    "the logs-, metrics-, synthetics-, traces- or profiling- name spaces)."},
    /* Elasticsearch's indexing pressure limit (10% of the heap) answers 429 to any request above it,
     * every time: 16M stays under it from a 256 MB heap up; the docs advise bulks of 5-15 MB. */
    {"elasticsearch", "bulk_bytes", LF_CFG_SIZE, "5M", F(es_bulk_bytes), .min = 4096, .max = 16ULL << 20,
     .description = "Largest bulk request body."},
    LF_ES_AUTH_OPTIONS("elasticsearch", "", F(es_auth)),
};

const char *const lf_parser_load_methods[] = {"infile", "insert", NULL};

/* Each key of a [logtype.NAME] section must be one lf_logtype_set() accepts. */
static int check_logtype_key(const void *field, lf_buf *err)
{
    const char *const *pair = field;
    lf_logtype t;
    int rc = lf_logtype_init(&t, "check");
    if (rc)
        return rc;
    rc = lf_logtype_set(&t, pair[0], pair[1]);
    lf_logtype_clear(&t);
    if (rc)
        lf_buf_msgf(err, "not a log type key, or a bad value for it (see docs/parsing.md)");
    return rc;
}

static const lf_config_option logtype_options[] = {
    {"logtype.NAME", LF_CFG_ANY_KEY, LF_CFG_LIST, NULL, offsetof(struct lf_parser_logtype_section, pairs),
     .validate = check_logtype_key,
     .description = "A log type's keys (format, mask, time_fields, time_format, timezone, level_field, "
                    "content_field, continuation, max_line, builtin, message_key), read by the log type "
                    "loader: see docs/parsing.md. mask may repeat."},
};

static const lf_config_section_table parser_sections[] = {
    {.prefix = "logtype",
     .options = logtype_options,
     .n_options = 1,
     .element_size = sizeof(struct lf_parser_logtype_section),
     .name_offset = offsetof(struct lf_parser_logtype_section, name),
     .array_offset = F(logtypes),
     .count_offset = F(n_logtypes),
     .max_count = 256,
     .description = "A log type: how the lines of a product's session logs become events."},
};

const lf_config_table lf_parser_config_table = {
    .program = "logferry-parser",
    .default_path = "/etc/logferry/parser.conf",
    .options = parser_options,
    .n_options = sizeof parser_options / sizeof parser_options[0],
    .sections = parser_sections,
    .n_sections = 1,
    .target_size = sizeof(struct lf_parser_config),
    .description = "Takes session ids from the receiver's queue, decrypts and unzips each session, "
                   "parses its lines into events and loads them into MySQL (and Elasticsearch).",
};
