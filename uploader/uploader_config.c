/* logferry-uploader's configuration table (also read by tools/logferry-config-docs). */
#include "uploader_config.h"

#include <stddef.h>

#define F(field) offsetof(struct lf_uploader_config, field)
#define W(field) offsetof(struct lf_uploader_watch, field)

static const lf_config_option uploader_options[] = {
    LF_SERVICE_COMMON_OPTIONS("127.0.0.1:8441"),
    {"receiver", "url", LF_CFG_STRING, "http://127.0.0.1:8440", F(receiver_url),
     .description = "Base URL of the receiver sessions are uploaded to."},
    {"uploader", "site", LF_CFG_STRING, NULL, F(site),
     .description = "This site's name, as registered at the receiver; uploads are signed in its name."},
    {"uploader", "key_file", LF_CFG_STRING, "/etc/logferry/uploader.key", F(key_file),
     .description = "File holding this site's Ed25519 signing key (readable by the service only)."},
    {"outbox", "dir", LF_CFG_STRING, "/var/lib/logferry/uploader/outbox", F(outbox_dir),
     .description = "Directory of zipped sessions waiting to be uploaded (kept while the receiver is "
                    "unreachable)."},
    {"outbox", "max_size", LF_CFG_SIZE, "10G", F(outbox_max_size), .min = 1 << 20, .max = 1ULL << 50,
     .description = "Most bytes the outbox may hold; at the cap new sessions wait in their watch "
                    "directory instead of being dropped."},
};

static const lf_config_option watch_options[] = {
    {"watch.NAME", "dir", LF_CFG_STRING, NULL, W(dir), .flags = LF_CFG_REQUIRED,
     .description = "Directory the product writes its session logs to."},
    {"watch.NAME", "pattern", LF_CFG_STRING, "*.log", W(pattern),
     .description = "Shell pattern (fnmatch) of the session log file names."},
    {"watch.NAME", "settle", LF_CFG_DURATION, "60s", W(settle_ms), .min = 1000, .max = 86400000,
     .flags = LF_CFG_RELOADABLE,
     .description = "A file unchanged for this long is a finished session."},
};

static const lf_config_section_table uploader_sections[] = {
    {.prefix = "watch",
     .options = watch_options,
     .n_options = sizeof watch_options / sizeof watch_options[0],
     .element_size = sizeof(struct lf_uploader_watch),
     .name_offset = W(name),
     .array_offset = F(watches),
     .count_offset = F(n_watches),
     .max_count = 64,
     .description = "A directory watched for finished session logs, one section per directory."},
};

const lf_config_table lf_uploader_config_table = {
    .program = "logferry-uploader",
    .default_path = "/etc/logferry/uploader.conf",
    .options = uploader_options,
    .n_options = sizeof uploader_options / sizeof uploader_options[0],
    .sections = uploader_sections,
    .n_sections = sizeof uploader_sections / sizeof uploader_sections[0],
    .target_size = sizeof(struct lf_uploader_config),
    .description = "Runs at each customer site: finds finished session logs, zips each with a "
                   "manifest, signs and uploads it, and keeps an offline outbox.",
};
