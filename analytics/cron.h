/* 5-field cron expressions: minute hour day-of-month month day-of-week.
 *
 * Each field is "*", a number, a range "a-b", a step "*" "/n" or "a-b/n" or "a/n" (from a to the
 * field's end), or a comma-separated list of those. Day of week is 0-7 (0 and 7 are Sunday). As in
 * Vixie cron, when both day-of-month and day-of-week are restricted, a day matching either runs.
 * Times are read in the process's local time zone (TZ), so DST changes behave like localtime_r: a
 * time skipped by a jump forward is normalised by mktime, a repeated hour runs once. */
#ifndef LF_ANALYTICS_CRON_H
#define LF_ANALYTICS_CRON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

typedef struct lf_cron {
    uint64_t minutes; /* bit m: minute m (0-59) */
    uint32_t hours;   /* bit h (0-23) */
    uint32_t mdays;   /* bit d (1-31) */
    uint16_t months;  /* bit m (1-12) */
    uint8_t wdays;    /* bit d (0-6, Sunday 0) */
    bool mday_star, wday_star;
} lf_cron;

/* 0 or -EINVAL. */
int lf_cron_parse(const char *expr, lf_cron *out);
/* First matching minute strictly after t (local time), or (time_t)-1 when none within 5 years
 * (e.g. "0 0 30 2 *"). */
time_t lf_cron_next(const lf_cron *c, time_t t);

#endif
