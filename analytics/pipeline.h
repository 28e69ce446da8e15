/* The pipeline page's figures: every stage from the sites to the analytics tables, read where each
 * stage keeps them (the receiver's /v1/sites and /v1/queues/{q}, the parsed tables, the analytics
 * run history). Blocking: run on the thread pool. */
#ifndef LF_ANALYTICS_PIPELINE_H
#define LF_ANALYTICS_PIPELINE_H

#include "lf_error.h"

#include "analytics_config.h"
#include "lf_buf.h"

/* Appends the pipeline JSON to out (docs/analytics.md, "Pipeline page"). A stage that cannot be read
 * carries its "error" and the others are still given. 0 or -ENOMEM. */
LF_MUST_CHECK int lf_pipeline_collect(const struct lf_analytics_config *cfg, lf_buf *out);

/* Asks the receiver to move the queue's dead letters back ([pipeline] token with scope admin).
 * Returns the HTTP status to answer with; out gets the JSON answer ({"moved":N} or an error). */
int lf_pipeline_redrive(const struct lf_analytics_config *cfg, lf_buf *out);

#endif
