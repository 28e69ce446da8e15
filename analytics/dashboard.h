/* The BI dashboard: GET /dashboard (one page, inline JS drawing SVG charts, nothing fetched from
 * elsewhere) and GET /dashboard/api/{usage,features,errors,retention} (JSON: {"columns", "rows"}),
 * filtered by product, version, site, from and to (query parameters). */
#ifndef LF_ANALYTICS_DASHBOARD_H
#define LF_ANALYTICS_DASHBOARD_H

#include "lf_service.h"

int lf_analytics_dashboard_routes(lf_service *svc);

#endif
