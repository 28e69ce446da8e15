/* The BI dashboard: GET /dashboard (one page, inline JS drawing SVG charts, nothing fetched from
 * elsewhere), GET /dashboard/pipeline (every stage's figures, re-run and redrive for admins) and
 * their JSON API under /dashboard/api (docs/analytics.md), behind the sign-in of dashboard_auth.h. */
#ifndef LF_ANALYTICS_DASHBOARD_H
#define LF_ANALYTICS_DASHBOARD_H

#include "lf_service.h"

typedef struct lf_dashboard lf_dashboard;

/* Registers the routes; *out lives until lf_analytics_dashboard_free (after the HTTP server has
 * drained: requests in progress use it). */
int lf_analytics_dashboard_start(lf_service *svc, lf_dashboard **out);
void lf_analytics_dashboard_free(lf_dashboard *d);

#endif
