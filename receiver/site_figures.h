/* What the receiver records about each site's traffic, for the operator who has to find the site
 * that went wrong: every stored session and every refused upload is counted per site in /metrics
 * (lf_receiver_site_*: one series per registered site, unregistered names share the site label
 * "(unregistered)", so a flood of made-up names cannot grow the series), refusals are kept durably
 * in the index (batched: flushed at most a second later) next to the sessions, whose rows give the
 * sessions, bytes and last upload of each site; and every refusal is logged with site, session id,
 * status and reason, at most LF_SITE_LOG_BURST lines per site a minute (then one line saying how
 * many were left out), for at most LF_SITE_LOG_SITES names at once (the rest share one budget).
 *
 * Loop thread only. */
#ifndef LF_RECEIVER_SITE_FIGURES_H
#define LF_RECEIVER_SITE_FIGURES_H

#include "lf_error.h"

#include <stdbool.h>
#include <stdint.h>

#include "index.h"
#include "lf_metrics.h"

#define LF_SITE_LOG_BURST 5
#define LF_SITE_LOG_WINDOW_MS 60000
#define LF_SITE_LOG_SITES 256
#define LF_SITE_UNREGISTERED "(unregistered)"

typedef struct lf_site_figures lf_site_figures;

/* Sets each site's last-upload gauge from the index, so /metrics is right from the start. 0 or a
 * negative code. */
LF_MUST_CHECK int lf_site_figures_new(lf_metrics *metrics, lf_index *index, lf_site_figures **out);
/* Flushes what is pending, then frees. */
void lf_site_figures_free(lf_site_figures *f);

/* A new session of a registered site was stored. */
void lf_site_figures_stored(lf_site_figures *f, const char *site, uint64_t bytes);
/* An upload was refused. site is the name the upload claimed (NULL when it carried none);
 * registered says whether that name is a registered site (only those get their own series and
 * rows). id may be NULL when the path carried none that is valid. */
void lf_site_figures_refused(lf_site_figures *f, const char *site, bool registered, const char *id, int status,
                             const char *reason, const char *message);
/* Writes the pending refusal counts to the index and logs the "left out" lines of ended windows
 * (the 1 s timer calls it). 0 or the index's error (the counts stay pending). */
int lf_site_figures_flush(lf_site_figures *f);

#endif
