/* Indexing a parsed session's events into Elasticsearch: daily indices PREFIX + YYYY.MM.DD (of the
 * event's time, else the session's start, else today), with an index template and mapping this
 * module installs before its first bulk request. Document ids are "<session id>-<seq>", so a
 * session indexed twice overwrites its own documents (idempotent). Bulk request bodies stay under
 * bulk_bytes. The mapping keeps keyword values longer than Lucene takes (32766 bytes) out of the
 * keyword index (ignore_above), so a long parameter never costs its event: the event is stored
 * whole and found through its message.
 *
 * Refusals are classed as common/lf_es.h says. Per item: RETRY (429, 5xx) is retried (only those
 * items, with exponential backoff, a bounded number of times); NEVER (the mapping refuses the
 * document) is given up and counted by its error type; HOLD (credentials, privileges, no such
 * index, the shard limit...) stops the load with LF_ECONFIG, so that the caller keeps the session
 * until the cluster or the configuration is fixed. A whole request is classed the same way; its
 * RETRY statuses are retried by the HTTP client first. */
#ifndef LF_LOADER_ES_H
#define LF_LOADER_ES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_es.h"
#include "parsed_session.h"

typedef struct lf_loader_es lf_loader_es;

#define LF_LOADER_ES_REFUSAL_TYPES 4

typedef struct lf_loader_es_result {
    uint64_t indexed; /* documents Elasticsearch accepted */
    uint64_t refused; /* documents that can never be indexed as they are: given up */
    struct {
        char type[64]; /* Elasticsearch's error type, "other" past LF_LOADER_ES_REFUSAL_TYPES */
        uint64_t count;
    } refusals[LF_LOADER_ES_REFUSAL_TYPES + 1]; /* refused, by type */
    size_t n_refusal_types;
    char reason[512]; /* the first failure's reason (with the event's seq), or the hold's */
} lf_loader_es_result;

/* conn: the checked connection settings (copied). */
int lf_loader_es_new(const lf_es_conn *conn, const char *index_prefix, size_t bulk_bytes, lf_loader_es **out);
void lf_loader_es_free(lf_loader_es *es);

/* Installs the template (first call), then indexes every event. 0 when every document was indexed
 * or can never be (res->refused, by type, and res->reason); LF_ECONFIG when Elasticsearch refuses
 * until something is fixed (res->reason says what: keep the session and try again later); another
 * negative code when it could not be reached or kept answering 429 past the retries. */
int lf_loader_es_load(lf_loader_es *es, const lf_psession *ps, lf_loader_es_result *res);

/* Index name for a time: prefix + "YYYY.MM.DD" (UTC). out needs strlen(prefix) + 11 bytes. */
void lf_loader_es_index_name(const char *prefix, int64_t us, char *out, size_t n);

#endif
