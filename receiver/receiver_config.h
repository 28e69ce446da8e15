/* logferry-receiver's configuration: the common service options plus its own (receiver_config.c). */
#ifndef LF_RECEIVER_CONFIG_H
#define LF_RECEIVER_CONFIG_H

#include <stdint.h>

#include "lf_config.h"
#include "lf_service.h"

struct lf_receiver_config {
    lf_service_config common; /* first: lf_service reads it */
    char *store_dir;
    uint64_t max_upload_size;
    char *queue_path;
    uint64_t max_receives;
    uint64_t signature_window_ms;
};

extern const lf_config_table lf_receiver_config_table;

#endif
