/* logferry-uploader's configuration table (also read by tools/logferry-config-docs). */
#include "uploader_config.h"

#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lf_error.h"
#include "lf_sign.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define F(field) offsetof(struct lf_uploader_config, field)
#define W(field) offsetof(struct lf_uploader_watch, field)

static const char *const after_values[] = {"keep", "delete", "move", NULL};
static const char *const change_values[] = {"continue", "warn", NULL};
static const char *const full_values[] = {"wait", "drop_new", NULL};

static int validate_regex(const void *field, lf_buf *err)
{
    const char *re = *(char *const *)field;
    if (!re)
        return 0;
    int ec;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
    if (!c) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        lf_buf_msgf(err, "invalid regular expression at offset %zu: %s", (size_t)off, (char *)msg);
        return LF_ECONFIG;
    }
    pcre2_code_free(c);
    return 0;
}

static int validate_metadata(const void *field, lf_buf *err)
{
    char *const *list = *(char **const *)field;
    for (size_t i = 0; list && list[i]; i++) {
        const char *eq = strchr(list[i], '=');
        if (!eq || eq == list[i]) {
            lf_buf_msgf(err, "\"%s\" is not key=value", list[i]);
            return LF_ECONFIG;
        }
    }
    return 0;
}

static const lf_config_option uploader_options[] = {
    LF_SERVICE_COMMON_OPTIONS("127.0.0.1:8441"),
    {"receiver", "url", LF_CFG_STRING, "http://127.0.0.1:8440", F(receiver_url),
     .description = "Base URL of the receiver sessions are uploaded to."},
    {"receiver", "proxy", LF_CFG_STRING, NULL, F(proxy),
     .description = "HTTP proxy (http://host:port); unset: the usual environment variables; empty: "
                    "never a proxy."},
    {"receiver", "ca_file", LF_CFG_STRING, NULL, F(ca_file),
     .description = "CA certificates (PEM) that an `https://` receiver's certificate must chain to, "
                    "e.g. a private CA of the TLS proxy in front of the receiver; unset: the system's "
                    "CA bundle."},
    {"receiver", "concurrency", LF_CFG_UINT, "4", F(concurrency), .min = 1, .max = 64,
     .description = "Uploads in flight at most."},
    {"receiver", "max_send_speed", LF_CFG_SIZE, "0", F(max_send_speed), .max = 1ULL << 40,
     .description = "Bandwidth limit in bytes per second for each upload; 0: unlimited."},
    {"receiver", "timeout", LF_CFG_DURATION, "120s", F(upload_timeout_ms), .min = 1000,
     .max = 86400000, .description = "Longest time for one upload attempt."},
    {"receiver", "backoff_max", LF_CFG_DURATION, "5m", F(backoff_max_ms), .min = 100,
     .max = 86400000,
     .description = "Longest wait between two attempts of an upload (exponential backoff with "
                    "jitter; a longer Retry-After is honoured)."},
    {"uploader", "site", LF_CFG_STRING, NULL, F(site),
     .description = "This site's name, as registered at the receiver; uploads are signed in its name."},
    {"uploader", "key_file", LF_CFG_STRING, "/etc/logferry/uploader.key", F(key_file),
     .description = "File holding this site's Ed25519 signing key (readable by the service only)."},
    {"uploader", "state_dir", LF_CFG_STRING, "/var/lib/logferry/uploader/state", F(state_dir),
     .description = "Directory of the registry of shipped sessions (SQLite). Losing it is safe: "
                    "sessions are re-uploaded under the same ids and the receiver answers 200."},
    {"uploader", "scan_interval", LF_CFG_DURATION, "10s", F(scan_interval_ms), .min = 100,
     .max = 86400000, .flags = LF_CFG_RELOADABLE,
     .description = "Time between two scans of the watched directories (the safety net behind "
                    "file events)."},
    {"uploader", "after_upload", LF_CFG_ENUM, "keep", F(after_upload), .enum_values = after_values,
     .description = "What happens to a source file once its session is stored at the receiver: "
                    "keep, delete, or move (to move_dir)."},
    {"uploader", "move_dir", LF_CFG_STRING, NULL, F(move_dir),
     .description = "Directory uploaded files are moved to with after_upload = move."},
    {"uploader", "on_change", LF_CFG_ENUM, "continue", F(on_change), .enum_values = change_values,
     .description = "A file that grows after it was shipped: continue (ship the new tail as a "
                    "continuation session linked to the first) or warn (log and count only)."},
    {"outbox", "dir", LF_CFG_STRING, "/var/lib/logferry/uploader/outbox", F(outbox_dir),
     .description = "Directory of zipped sessions waiting to be uploaded (kept while the receiver is "
                    "unreachable)."},
    {"outbox", "max_size", LF_CFG_SIZE, "10G", F(outbox_max_size), .min = 1 << 16, .max = 1ULL << 50,
     .description = "Most bytes the outbox may hold; at the cap scanning pauses and new sessions "
                    "wait in their watch directory (unless on_full = drop_new)."},
    {"outbox", "on_full", LF_CFG_ENUM, "wait", F(outbox_on_full), .enum_values = full_values,
     .description = "With a full outbox: wait (nothing is dropped) or drop_new (a finished session "
                    "is skipped, counted and logged)."},
    {"outbox", "deflate_level", LF_CFG_INT, "1", F(deflate_level), .min = 0, .max = 9,
     .description = "Deflate level of the session zips (0 stores). 1 costs the site a quarter less CPU "
                    "than 6 for zips about a quarter larger (docs/uploader.md); raise it on slow links."},
};

static const lf_config_option watch_options[] = {
    {"watch.NAME", "dir", LF_CFG_STRING, NULL, W(dir), .flags = LF_CFG_REQUIRED,
     .description = "Directory the product writes its session logs to."},
    {"watch.NAME", "include", LF_CFG_LIST, "*.log", W(include),
     .description = "Shell patterns (fnmatch) of the session log file names, comma-separated."},
    {"watch.NAME", "exclude", LF_CFG_LIST, NULL, W(exclude),
     .description = "Shell patterns of names never shipped, comma-separated."},
    {"watch.NAME", "recursive", LF_CFG_BOOL, "false", W(recursive),
     .description = "Also look in subdirectories."},
    {"watch.NAME", "log_type", LF_CFG_STRING, "generic", W(log_type),
     .description = "log_type written to the manifests ([a-z0-9_-]{1,64})."},
    {"watch.NAME", "product", LF_CFG_STRING, "unknown", W(product),
     .description = "product written to the manifests."},
    {"watch.NAME", "product_version", LF_CFG_STRING, "unknown", W(product_version),
     .description = "product_version when filename_regex has no \"version\" group."},
    {"watch.NAME", "metadata", LF_CFG_LIST, NULL, W(metadata), .validate = validate_metadata,
     .description = "Static key=value pairs added to every manifest's metadata, comma-separated."},
    {"watch.NAME", "filename_regex", LF_CFG_STRING, NULL, W(filename_regex),
     .validate = validate_regex,
     .description = "PCRE2 matched against the file name; named groups user, host, version "
                    "(product_version) and started_at become manifest fields, others metadata."},
    {"watch.NAME", "end_line", LF_CFG_STRING, NULL, W(end_line), .validate = validate_regex,
     .description = "PCRE2: a file whose last line matches is finished without waiting for settle."},
    {"watch.NAME", "rotated_suffix", LF_CFG_STRING, "\\.[0-9]+$", W(rotated_suffix),
     .validate = validate_regex,
     .description = "PCRE2 matching the suffix rotation adds (app.log -> app.log.1). A name with it "
                    "is finished at once, and the suffix is removed from the session's identity so "
                    "a rotated file keeps its id."},
    {"watch.NAME", "settle", LF_CFG_DURATION, "60s", W(settle_ms), .min = 100, .max = 86400000,
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

int lf_uploader_config_validate(const void *config, lf_buf *err)
{
    const struct lf_uploader_config *c = config;
    if (c->after_upload == LF_AFTER_MOVE && !c->move_dir) {
        lf_buf_msgf(err, "[uploader] after_upload = move needs move_dir");
        return LF_ECONFIG;
    }
    return 0;
}

void lf_uploader_config_preflight(const void *config, lf_preflight *pf)
{
    const struct lf_uploader_config *c = config;
    lf_preflight_require(pf, "uploader", "site", c->site, "uploads are signed in the site's name");
    lf_preflight_url(pf, "receiver", "url", c->receiver_url);
    lf_preflight_file(pf, "receiver", "ca_file", c->ca_file, false);
    if (lf_preflight_require(pf, "uploader", "key_file", c->key_file, "uploads are signed with it")) {
        uint8_t sk[LF_SIGN_SK_BYTES];
        char why[256] = "";
        if (lf_sign_sk_load(c->key_file, sk, why, sizeof why) != 0)
            lf_preflight_fail(pf, "uploader", "key_file", "%s (\"logferry-uploader keygen\" creates it)", why);
        sodium_memzero(sk, sizeof sk);
    }
    lf_preflight_dir(pf, "uploader", "state_dir", c->state_dir, true, true);
    lf_preflight_dir(pf, "outbox", "dir", c->outbox_dir, true, true);
    if (c->after_upload == LF_AFTER_MOVE)
        lf_preflight_dir(pf, "uploader", "move_dir", c->move_dir, true, true);
    for (size_t i = 0; i < c->n_watches; i++) {
        char section[300];
        snprintf(section, sizeof section, "watch.%s", c->watches[i].name);
        /* a watched directory that is not there yet is scanned once it appears; one that exists
         * must be readable, and writable when shipped files are deleted or moved away */
        struct stat st;
        if (c->watches[i].dir && stat(c->watches[i].dir, &st) == 0)
            lf_preflight_dir(pf, section, "dir", c->watches[i].dir, c->after_upload != LF_AFTER_KEEP, false);
    }
}
