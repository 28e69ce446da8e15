/* logferry-uploader's configuration: the common service options plus its own (uploader_config.c). */
#ifndef LF_UPLOADER_CONFIG_H
#define LF_UPLOADER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_config.h"
#include "lf_preflight.h"
#include "lf_service.h"

enum lf_uploader_after { LF_AFTER_KEEP = 0, LF_AFTER_DELETE = 1, LF_AFTER_MOVE = 2 };
enum lf_uploader_on_change { LF_CHANGE_CONTINUE = 0, LF_CHANGE_WARN = 1 };
enum lf_uploader_on_full { LF_FULL_WAIT = 0, LF_FULL_DROP_NEW = 1 };

/* One [watch.NAME] section: a directory where the product writes one log file per session. */
struct lf_uploader_watch {
    char *name;
    char *dir;
    char **include;        /* fnmatch patterns on the file name */
    char **exclude;
    bool recursive;
    char *log_type;
    char *product;
    char *product_version; /* when filename_regex has no "version" group */
    char **metadata;       /* "key=value" pairs copied into every manifest */
    char *filename_regex;  /* PCRE2; named groups user, version, host, started_at, other -> metadata */
    char *end_line;        /* PCRE2 matched against the last line: the session is finished */
    char *rotated_suffix;  /* PCRE2 matched at the end of a name: rotated, finished; stripped for id */
    uint64_t settle_ms;
};

struct lf_uploader_config {
    lf_service_config common; /* first: lf_service reads it */
    char *receiver_url;
    char *proxy;
    char *ca_file;
    uint64_t concurrency;
    uint64_t max_send_speed;
    uint64_t upload_timeout_ms;
    uint64_t backoff_max_ms;
    char *site;
    char *key_file;
    char *state_dir;
    uint64_t scan_interval_ms;
    int after_upload;
    char *move_dir;
    int on_change;
    char *outbox_dir;
    uint64_t outbox_max_size;
    int outbox_on_full;
    int64_t deflate_level;
    struct lf_uploader_watch *watches;
    size_t n_watches;
};

extern const lf_config_table lf_uploader_config_table;
int lf_uploader_config_validate(const void *config, lf_buf *err);
/* What the daemon needs to start (lf_service_def.preflight). */
void lf_uploader_config_preflight(const void *config, lf_preflight *pf);

#endif
