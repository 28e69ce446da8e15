/* logferry-uploader's configuration: the common service options plus its own (uploader_config.c). */
#ifndef LF_UPLOADER_CONFIG_H
#define LF_UPLOADER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lf_config.h"
#include "lf_service.h"

/* One [watch.NAME] section: a directory where the product writes one log file per session. */
struct lf_uploader_watch {
    char *name;
    char *dir;
    char *pattern;
    uint64_t settle_ms;
};

struct lf_uploader_config {
    lf_service_config common; /* first: lf_service reads it */
    char *receiver_url;
    char *site;
    char *key_file;
    char *outbox_dir;
    uint64_t outbox_max_size;
    struct lf_uploader_watch *watches;
    size_t n_watches;
};

extern const lf_config_table lf_uploader_config_table;

#endif
