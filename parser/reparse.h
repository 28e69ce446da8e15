/* `logferry-parser reparse --session ID | --since TIME | --failed`: puts stored sessions back on the
 * receiver's queue so the (upgraded or fixed) parsers load them again, idempotently.
 *   --failed   POST /v1/queues/{q}/redrive (admin): dead-lettered sessions go back on the queue
 *   --session  POST /v1/sessions/{id}/reparse (admin) per session: the receiver queues the stored
 *              session again
 *   --since    the sessions received (or parsed, or failed) since TIME, from the parsed-events
 *              database, each as --session
 * Exit codes: 0 all done, 1 some failed, 2 usage. */
#ifndef LF_PARSER_REPARSE_H
#define LF_PARSER_REPARSE_H

#include "parser_config.h"

int lf_parser_reparse(struct lf_parser_config *cfg, int argc, char **argv);

#endif
