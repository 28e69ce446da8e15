/* The Elasticsearch side of GET /v1/search (kept apart from the route file: the HTTP client's and
 * the HTTP server's headers both name a type lf_http_request). Blocking: call it off the loop. */
#ifndef LF_RECEIVER_READ_SEARCH_H
#define LF_RECEIVER_READ_SEARCH_H

#include <stddef.h>

#include "lf_buf.h"
#include "lf_es.h"

/* Searches PREFIX* for events matching q (query_string over message, AND by default), optionally
 * within [from, to] (@timestamp, dates as Elasticsearch accepts them), newest first, at most limit.
 * Appends {"hits":[{session_id, seq, ts, level, component, template_id, message}...], "total":N}
 * to out. 0, or a negative code with a reason in err. */
int lf_read_search_es(const lf_es_conn *es, const char *index_prefix, const char *q, const char *from,
                      const char *to, unsigned limit, lf_buf *out, char *err, size_t errsz);

#endif
