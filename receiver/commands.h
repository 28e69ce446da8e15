/* Operator subcommands of logferry-receiver (sites, keys, tokens, sessions, queue). */
#ifndef LF_RECEIVER_COMMANDS_H
#define LF_RECEIVER_COMMANDS_H

#include <stddef.h>

#include "lf_queue.h"
#include "lf_service.h"
#include "receiver_config.h"

#define LF_RECEIVER_EXIT_RUNTIME 1
#define LF_RECEIVER_EXIT_USAGE 2

extern const lf_service_command lf_receiver_commands[];
extern const size_t lf_receiver_n_commands;

/* One line of a queue's figures, as `queue stats` prints them (either backend). */
void lf_receiver_print_queue_stats(const char *q, const lf_queue_statistics *s);
/* `queue stats|peek|redrive|check` with backend = jetstream (queue_command_js.c); n: peek's count.
 * The exit status. */
int lf_receiver_queue_command_js(const struct lf_receiver_config *cfg, const char *cmd, const char *q,
                                 unsigned long n);

/* `queue migrate` (queue_migrate.c): moves the embedded queue at [queue] path, its dead letters
 * included, onto the JetStream queue jq; refused while the receiver runs. 0, or a code with err
 * filled. */
struct lf_jsqueue;
struct lf_jetstream;
LF_MUST_CHECK int lf_receiver_queue_migrate(const struct lf_receiver_config *cfg, struct lf_jetstream *js,
                                            struct lf_jsqueue *jq, struct lf_buf *err);

#endif
