/* The parser daemon's work: N worker threads, each with its own engines (one per log type), MySQL
 * connection, fetcher and optional Elasticsearch loader, taking session ids from the receiver's
 * queue through one shared lf_queue_client.
 *
 * Per message: track the receipt (visibility extended while the job runs), fetch + decrypt + check
 * the archive, parse, load MySQL in one transaction (retried on lost connections and deadlocks),
 * index into Elasticsearch when configured, and only then ack. A failure that will not get better
 * (corrupt or undecryptable object, bad archive, unknown log type, data MySQL refuses) is recorded
 * in parse_failures and the message handed back with failure_delay, so that after the queue's
 * max_receives it lands in the dead-letter queue; a passing one (receiver, MySQL or Elasticsearch
 * away) is handed back with retry_delay. */
#ifndef LF_PARSER_SERVICE_H
#define LF_PARSER_SERVICE_H

#include "lf_mysql.h"
#include "lf_service.h"
#include "parser_config.h"

typedef struct lf_parser_service lf_parser_service;

/* Loads log types and keys, migrates the database, starts the workers. 0 or an error (logged). */
int lf_parser_service_start(lf_service *svc, lf_parser_service **out);
/* Stops receiving, lets running sessions finish, joins the workers, flushes acks. */
void lf_parser_service_stop(lf_parser_service *ps);

/* MySQL options from the configuration (strings borrowed from cfg). */
void lf_parser_mysql_options(const struct lf_parser_config *cfg, lf_mysql_options *o);

#endif
