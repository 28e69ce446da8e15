/* Loads one parsed session into the `logferry` database (db_schema.c) in one transaction that first
 * takes back everything an earlier load of the same session wrote: its template counts, its events,
 * session_templates and sessions rows. So a session loaded twice (a redelivery, a reparse, two
 * parsers racing after a visibility timeout) ends with exactly one copy of its rows.
 *
 * Events go in with one of two methods (bench/parser measures both):
 *   LF_LOAD_INFILE  LOAD DATA LOCAL INFILE fed from memory (lf_mysql_load_data), one statement
 *   LF_LOAD_INSERT  multi-row INSERT statements of about insert_batch_bytes each
 * Templates are upserted in id order (so concurrent loads lock them in the same order):
 * occurrences += the session's count, first_seen/last_seen widened. */
#ifndef LF_LOADER_MYSQL_H
#define LF_LOADER_MYSQL_H

#include <stdint.h>

#include "lf_buf.h"
#include "lf_mysql.h"
#include "miner.h"
#include "parsed_session.h"

typedef enum lf_load_method {
    LF_LOAD_INFILE = 0,
    LF_LOAD_INSERT = 1,
} lf_load_method;

/* "infile" / "insert" -> method; 0 or -EINVAL. */
int lf_load_method_parse(const char *s, lf_load_method *out);

typedef struct lf_loader_mysql_opts {
    lf_load_method method;
    size_t insert_batch_bytes; /* LF_LOAD_INSERT statement size, default 1 MiB */
    const char *parser_version;
    int max_attempts;          /* for lf_loader_mysql_load_retry, default 5 */
    long backoff_ms;           /* first wait between attempts, doubled each time, default 100 */
} lf_loader_mysql_opts;

void lf_loader_mysql_opts_default(lf_loader_mysql_opts *o);

/* One attempt: BEGIN, delete earlier rows, insert, COMMIT (ROLLBACK on failure). scratch is reused
 * between calls (its memory stays with the caller). 0 or lf_mysql's negative code. */
int lf_loader_mysql_load(lf_mysql *db, const lf_psession *ps, const lf_loader_mysql_opts *o, lf_buf *scratch);

/* lf_loader_mysql_load, retried after lf_mysql_reconnect for lost connections and deadlocks (up
 * to max_attempts, with backoff). *attempts (may be NULL) gets the attempts made. */
int lf_loader_mysql_load_retry(lf_mysql *db, const lf_psession *ps, const lf_loader_mysql_opts *o,
                               lf_buf *scratch, int *attempts);

/* The same, and in the same transaction the changes of the miner that parsed the session, shared
 * with the other parsers (template_share.h): *rev gets their revision (0: there were none), for
 * lf_miner_commit(shared, *rev) once the load returned 0. */
int lf_loader_mysql_load_shared(lf_mysql *db, const lf_psession *ps, lf_miner *shared, const lf_loader_mysql_opts *o,
                                lf_buf *scratch, uint64_t *rev);
int lf_loader_mysql_load_retry_shared(lf_mysql *db, const lf_psession *ps, lf_miner *shared,
                                      const lf_loader_mysql_opts *o, lf_buf *scratch, int *attempts, uint64_t *rev);

/* The events table's columns in the order of the rows below. */
#define LF_LOADER_EVENT_COLUMNS "(session_id, seq, line, ts, level, component, template_id, params, fields, message)"
/* Appends the session's event rows as LOAD DATA's tab-separated text (what LF_LOAD_INFILE sends). */
int lf_loader_mysql_events_tsv(const lf_psession *ps, lf_buf *out);

/* Records why a session could not be parsed or loaded (autocommit; one retry after reconnecting).
 * stage: "fetch", "decrypt", "archive", "parse", "load", ... */
int lf_loader_mysql_record_failure(lf_mysql *db, const char *session_id, unsigned attempt, const char *stage,
                                   const char *reason, const char *parser_host);

#endif
