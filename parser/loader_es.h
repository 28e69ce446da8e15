/* Indexing a parsed session's events into Elasticsearch: daily indices PREFIX + YYYY.MM.DD (of the
 * event's time, else the session's start, else today), with an index template and mapping this
 * module installs before its first bulk request. Document ids are "<session id>-<seq>", so a
 * session indexed twice overwrites its own documents (idempotent). Bulk request bodies stay under
 * bulk_bytes. Per item: 429 is retried (only the failed items, with exponential backoff, a bounded
 * number of times); a document the mapping refuses (400) is not retried and counted with its
 * reason; a whole request that fails (transport error, 5xx) is retried by the HTTP client. */
#ifndef LF_LOADER_ES_H
#define LF_LOADER_ES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parsed_session.h"

typedef struct lf_loader_es lf_loader_es;

typedef struct lf_loader_es_result {
    uint64_t indexed;  /* documents Elasticsearch accepted */
    uint64_t rejected; /* refused by the mapping (400): recorded, not retried */
    bool permanent;    /* a failure that retrying will not cure */
    char reason[512];  /* the first failure's reason */
} lf_loader_es_result;

int lf_loader_es_new(const char *url, const char *index_prefix, size_t bulk_bytes, lf_loader_es **out);
void lf_loader_es_free(lf_loader_es *es);

/* Installs the template (first call), then indexes every event. 0 when every document was indexed
 * or refused by the mapping (res->rejected, res->reason); < 0 when some could not be indexed
 * (Elasticsearch away, 429 past the retries). */
int lf_loader_es_load(lf_loader_es *es, const lf_psession *ps, lf_loader_es_result *res);

/* Index name for a time: prefix + "YYYY.MM.DD" (UTC). out needs strlen(prefix) + 11 bytes. */
void lf_loader_es_index_name(const char *prefix, int64_t us, char *out, size_t n);

#endif
