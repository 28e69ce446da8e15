/* logferry-parser's configuration table (also read by tools/logferry-config-docs). */
#include "parser_config.h"

#include <stddef.h>

#include "logtype.h"

#define F(field) offsetof(struct lf_parser_config, field)

static const lf_config_option parser_options[] = {
    LF_SERVICE_COMMON_OPTIONS("127.0.0.1:8442"),
    {"receiver", "url", LF_CFG_STRING, "http://127.0.0.1:8440", F(receiver_url),
     .description = "Base URL of the receiver whose queue and stored sessions this parser works on."},
    {"receiver", "token", LF_CFG_STRING, NULL, F(receiver_token), .flags = LF_CFG_SECRET,
     .description = "Bearer token with the worker scope, for the queue and the session blobs."},
    {"parser", "workers", LF_CFG_UINT, "2", F(workers), .min = 1, .max = 64,
     .description = "Sessions parsed at the same time (one thread each)."},
};

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
        lf_buf_append_str(err, "not a log type key, or a bad value for it (see docs/parsing.md)");
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
