/* logferry-receiver's configuration table (also read by tools/logferry-config-docs). */
#include "receiver_config.h"

#include <stddef.h>

#define F(field) offsetof(struct lf_receiver_config, field)

static const lf_config_option receiver_options[] = {
    LF_SERVICE_COMMON_OPTIONS("127.0.0.1:8440"),
    {"store", "dir", LF_CFG_STRING, "/var/lib/logferry/receiver/sessions", F(store_dir),
     .description = "Directory of the stored sessions (encrypted zips), the system of record."},
    {"store", "max_upload_size", LF_CFG_SIZE, "1G", F(max_upload_size), .min = 1024, .max = 64ULL << 30,
     .description = "Largest session upload accepted (413 above it), checked against Content-Length "
                    "before the body is read."},
    {"queue", "path", LF_CFG_STRING, "/var/lib/logferry/receiver/queue.db", F(queue_path),
     .description = "SQLite database of the embedded durable queue (WAL mode)."},
    {"queue", "max_receives", LF_CFG_UINT, "5", F(max_receives), .min = 1, .max = 1000,
     .description = "A message received more often than this moves to the dead-letter queue."},
    {"auth", "signature_window", LF_CFG_DURATION, "5m", F(signature_window_ms), .min = 1000, .max = 86400000,
     .flags = LF_CFG_RELOADABLE,
     .description = "Upload signatures whose timestamp differs from the receiver's clock by more than this "
                    "are refused (401)."},
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
