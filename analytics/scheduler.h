/* The daemon's scheduler: each job (built-ins on [analytics] schedule, [job.NAME] on its own) runs
 * at its cron times in the configured time zone, on a worker thread, one job at a time in this
 * process (and one at a time across hosts by the job's MySQL lock). Missed runs are caught up once
 * at start: a job whose last successful run is older than its previous scheduled time runs now. */
#ifndef LF_ANALYTICS_SCHEDULER_H
#define LF_ANALYTICS_SCHEDULER_H

#include "lf_service.h"

typedef struct scheduler lf_analytics_scheduler;

/* Starts the timer; *out until lf_analytics_scheduler_stop, which frees it once a run in progress
 * has finished. */
int lf_analytics_scheduler_start(lf_service *svc, lf_analytics_scheduler **out);
void lf_analytics_scheduler_stop(lf_analytics_scheduler *s);

#endif
