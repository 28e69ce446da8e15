/* The report of every site, as `sites list` and GET /v1/sites show it: the registered sites (name,
 * state, public key) with what the index holds about them (site_figures.h: sessions, bytes, last
 * upload, refusals by reason), and one "(unregistered)" entry when names that are not registered
 * were refused. */
#ifndef LF_RECEIVER_SITE_REPORT_H
#define LF_RECEIVER_SITE_REPORT_H

#include "lf_error.h"

#include <jansson.h>

#include "index.h"
#include "lf_buf.h"
#include "sites.h"

/* {"sites":[{"site","state","public_key","last_upload","sessions","bytes","refusals",
 * "refusals_by_reason":{...},"last_refusal"}...]}: times are RFC 3339 UTC or null. 0 with *out a new
 * reference, or a negative code with the reason in err. */
LF_MUST_CHECK int lf_site_report(const lf_sites *sites, lf_index *index, json_t **out, lf_buf *err);
/* The same as a table for a terminal: one line per site. */
LF_MUST_CHECK int lf_site_report_text(const json_t *report, lf_buf *out);

#endif
