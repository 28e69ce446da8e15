/* Proleptic Gregorian calendar arithmetic on days since 1970-01-01, for any year (era-based
 * civil-day algorithms: 400-year eras of 146097 days, months counted from March so that the leap
 * day comes last). Inline because the parser converts a timestamp per log line. */
#ifndef LF_CALENDAR_H
#define LF_CALENDAR_H

#include <stdint.h>

/* Days since 1970-01-01 of year y, month m (1-12), day d (1-31); the caller checks the ranges. */
static inline int64_t lf_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* The date of day z (days since 1970-01-01). */
static inline void lf_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

#endif
