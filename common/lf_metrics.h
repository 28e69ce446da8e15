/* Metrics: counters, gauges and fixed-bucket histograms, rendered in the Prometheus text exposition
 * format (version 0.0.4) for GET /metrics.
 *
 * Metrics are registered once at start-up in a registry and then updated lock-free from any thread
 * (relaxed atomics). A metric name may have several label sets: register each series separately,
 * e.g. lf_metrics_counter(reg, "lf_uploads_total", "Uploads by outcome", "outcome=\"stored\"").
 */
#ifndef LF_METRICS_H
#define LF_METRICS_H

#include "lf_error.h"

#include <stddef.h>
#include <stdint.h>

#include "lf_buf.h"

typedef struct lf_metrics lf_metrics;
typedef struct lf_counter lf_counter;
typedef struct lf_gauge lf_gauge;
typedef struct lf_histogram lf_histogram;

LF_MUST_CHECK int lf_metrics_new(lf_metrics **out);
void lf_metrics_free(lf_metrics *reg);

/* Registration returns the series (NULL on allocation failure or a clash with another type).
 * labels: NULL or the inside of the braces, already escaped: "route=\"put_session\",code=\"201\"".
 * Registering the same name and labels twice returns the same series. Strings are copied.
 * Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, labels name="value" pairs (le is reserved); anything
 * else returns NULL, so that the exposition can never be malformed. */
lf_counter *lf_metrics_counter(lf_metrics *reg, const char *name, const char *help, const char *labels);
lf_gauge *lf_metrics_gauge(lf_metrics *reg, const char *name, const char *help, const char *labels);
/* bounds: ascending upper bounds (le), n of them; +Inf is implicit. */
lf_histogram *lf_metrics_histogram(lf_metrics *reg, const char *name, const char *help,
                                   const char *labels, const double *bounds, size_t n);

void lf_counter_add(lf_counter *c, uint64_t n);
static inline void lf_counter_inc(lf_counter *c) { lf_counter_add(c, 1); }
uint64_t lf_counter_value(const lf_counter *c);

void lf_gauge_set(lf_gauge *g, double v);
void lf_gauge_add(lf_gauge *g, double delta);
double lf_gauge_value(const lf_gauge *g);

void lf_histogram_observe(lf_histogram *h, double v);

/* Callback gauges: evaluated at render time (queue depth read from the store, etc.), with the
 * registry's lock held: the callback must not register metrics. -EINVAL (bad name or labels),
 * -EEXIST (that series exists already). */
typedef double (*lf_gauge_fn)(void *arg);
LF_MUST_CHECK int lf_metrics_gauge_fn(lf_metrics *reg, const char *name, const char *help, const char *labels,
                        lf_gauge_fn fn, void *arg);

/* Appends value to out escaped for a label value (backslash, double quote, newline). */
LF_MUST_CHECK int lf_metrics_escape_label(lf_buf *out, const char *value);

/* Appends the Prometheus text exposition of every metric (grouped by name with HELP and TYPE). */
LF_MUST_CHECK int lf_metrics_render(lf_metrics *reg, lf_buf *out);

#endif
