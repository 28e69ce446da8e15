/* logferry-parser's configuration: the common service options, its own, and the [logtype.NAME]
 * sections that parser/logtype.c reads (parser_config.c). */
#ifndef LF_PARSER_CONFIG_H
#define LF_PARSER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lf_config.h"
#include "lf_service.h"

/* A [logtype.NAME] section as the configuration loader keeps it: its keys, checked one by one with
 * lf_logtype_set(); lf_logtypes_load() builds the types from the same file. */
struct lf_parser_logtype_section {
    char *name;
    char **pairs; /* key, value, key, value..., NULL */
};

struct lf_parser_config {
    lf_service_config common; /* first: lf_service reads it */
    char *receiver_url;
    char *receiver_token;
    uint64_t workers;
    struct lf_parser_logtype_section *logtypes;
    size_t n_logtypes;
};

extern const lf_config_table lf_parser_config_table;

#endif
