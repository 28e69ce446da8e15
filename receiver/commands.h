/* Operator subcommands of logferry-receiver (sites, keys, tokens, sessions, queue). */
#ifndef LF_RECEIVER_COMMANDS_H
#define LF_RECEIVER_COMMANDS_H

#include <stddef.h>

#include "lf_service.h"

extern const lf_service_command lf_receiver_commands[];
extern const size_t lf_receiver_n_commands;

#endif
