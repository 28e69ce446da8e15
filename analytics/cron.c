/* Cron expression parsing and next-time computation (cron.h). */
#include "cron.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse_num(const char **p, int lo, int hi, int *out)
{
    if (!isdigit((unsigned char)**p))
        return -EINVAL;
    long v = 0;
    while (isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        if (v > 1000)
            return -EINVAL;
        (*p)++;
    }
    if (v < lo || v > hi)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* One field (text up to the next space or end) into a bit set over [lo, hi]. */
static int parse_field(const char **p, int lo, int hi, uint64_t *bits, bool *star)
{
    *bits = 0;
    *star = false;
    for (;;) {
        int a, b, step = 1;
        bool all = false;
        if (**p == '*') {
            (*p)++;
            a = lo;
            b = hi;
            all = true;
        } else {
            if (parse_num(p, lo, hi, &a))
                return -EINVAL;
            b = a;
            if (**p == '-') {
                (*p)++;
                if (parse_num(p, lo, hi, &b) || b < a)
                    return -EINVAL;
            }
        }
        if (**p == '/') {
            (*p)++;
            if (parse_num(p, 1, hi - lo + 1, &step))
                return -EINVAL;
            if (!all && b == a)
                b = hi; /* "a/n": from a to the end */
        } else if (all) {
            *star = true;
        }
        for (int v = a; v <= b; v += step)
            *bits |= 1ULL << v;
        if (**p != ',')
            break;
        (*p)++;
    }
    if (**p && **p != ' ' && **p != '\t')
        return -EINVAL;
    return 0;
}

int lf_cron_parse(const char *expr, lf_cron *out)
{
    static const int lo[5] = {0, 0, 1, 1, 0}, hi[5] = {59, 23, 31, 12, 7};
    uint64_t bits[5];
    bool star[5];
    const char *p = expr;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 5; i++) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            return -EINVAL;
        if (parse_field(&p, lo[i], hi[i], &bits[i], &star[i]))
            return -EINVAL;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p)
        return -EINVAL;
    out->minutes = bits[0];
    out->hours = (uint32_t)bits[1];
    out->mdays = (uint32_t)bits[2];
    out->months = (uint16_t)bits[3];
    out->wdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday too */
    out->mday_star = star[2];
    out->wday_star = star[4];
    return 0;
}

static bool day_matches(const lf_cron *c, const struct tm *tm)
{
    bool md = (c->mdays >> tm->tm_mday) & 1, wd = (c->wdays >> tm->tm_wday) & 1;
    if (c->mday_star || c->wday_star)
        return md && wd;
    return md || wd;
}

time_t lf_cron_next(const lf_cron *c, time_t t)
{
    struct tm tm;
    time_t start = t - (t % 60 + 60) % 60 + 60; /* next whole minute */
    if (!localtime_r(&start, &tm))
        return (time_t)-1;
    tm.tm_sec = 0;
    time_t limit = t + (time_t)5 * 366 * 86400;
    /* Each step skips at least a minute and whole months, days or hours when they cannot match, so
     * the loop is bounded by the 5-year limit (at most ~60 month + 1900 day + ... steps). */
    for (int guard = 0; guard < 200000; guard++) {
        tm.tm_isdst = -1;
        time_t now = mktime(&tm);
        if (now == (time_t)-1 || now > limit)
            return (time_t)-1;
        if (now <= t) { /* a DST fold moved us back: step a minute */
            tm.tm_min++;
            continue;
        }
        if (!((c->months >> (tm.tm_mon + 1)) & 1)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = 0;
            tm.tm_min = 0;
            continue;
        }
        if (!day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = 0;
            tm.tm_min = 0;
            continue;
        }
        if (!((c->hours >> tm.tm_hour) & 1)) {
            tm.tm_hour++;
            tm.tm_min = 0;
            continue;
        }
        if (!((c->minutes >> tm.tm_min) & 1)) {
            tm.tm_min++;
            continue;
        }
        return now;
    }
    return (time_t)-1;
}
