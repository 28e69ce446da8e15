/* Timestamp parsing and formatting (see timefmt.h). */
#include "timefmt.h"

#include <stdio.h>
#include <string.h>

#include "lf_calendar.h"
#include "lf_error.h"

static const char *const months[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const month_full[12] = {"january", "february", "march",     "april",   "may",      "june",
                                           "july",    "august",   "september", "october", "november", "december"};
static const char *const day_abbr[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
static const char *const day_full[7] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};

static bool is_ws(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Reads 1..maxd digits (at least mind). */
static bool num(const char *s, size_t len, size_t *p, int mind, int maxd, int64_t *v)
{
    int n = 0;
    int64_t x = 0;
    while (*p < len && n < maxd && s[*p] >= '0' && s[*p] <= '9') {
        x = x * 10 + (s[*p] - '0');
        (*p)++;
        n++;
    }
    *v = x;
    return n >= mind;
}

static int name(const char *s, size_t len, size_t *p, const char *const *full, const char *const *abbr, int n)
{
    for (int i = 0; i < n; i++) {
        size_t fl = strlen(full[i]);
        if (len - *p >= fl && strncasecmp(s + *p, full[i], fl) == 0) {
            *p += fl;
            return i;
        }
    }
    for (int i = 0; i < n; i++) {
        if (len - *p >= 3 && strncasecmp(s + *p, abbr[i], 3) == 0) {
            *p += 3;
            return i;
        }
    }
    return -1;
}

static int parse_offset(const char *s, size_t len, size_t *p, int32_t *off)
{
    if (*p < len && (s[*p] == 'Z' || s[*p] == 'z')) {
        (*p)++;
        *off = 0;
        return 0;
    }
    if (*p >= len || (s[*p] != '+' && s[*p] != '-'))
        return LF_EFORMAT;
    int sign = s[*p] == '-' ? -1 : 1;
    (*p)++;
    int64_t h, m = 0;
    size_t st = *p;
    if (!num(s, len, p, 1, 2, &h))
        return LF_EFORMAT;
    if (*p - st == 2 || *p - st == 1) {
        if (*p < len && s[*p] == ':')
            (*p)++;
        if (*p < len && s[*p] >= '0' && s[*p] <= '9' && !num(s, len, p, 2, 2, &m))
            return LF_EFORMAT;
    }
    if (h > 23 || m > 59)
        return LF_EFORMAT;
    *off = (int32_t)(sign * (h * 3600 + m * 60));
    return 0;
}

int lf_timefmt_parse(const char *fmt, const char *s, size_t len, int32_t tz_offset_s, int64_t *us)
{
    int64_t Y = 1970, mo = 1, d = 1, H = 0, M = 0, S = 0, frac_us = 0, yday = -1, epoch = 0;
    bool have_epoch = false;
    int pm = -1;
    int32_t off = tz_offset_s;
    size_t p = 0;
    int64_t v;
    for (const char *f = fmt; *f; f++) {
        if (*f == ' ') {
            if (p >= len || !is_ws(s[p]))
                return LF_EFORMAT;
            while (p < len && is_ws(s[p]))
                p++;
            continue;
        }
        if (*f != '%') {
            if (p >= len || s[p] != *f)
                return LF_EFORMAT;
            p++;
            continue;
        }
        f++;
        switch (*f) {
        case 'Y':
            if (!num(s, len, &p, 4, 4, &Y))
                return LF_EFORMAT;
            break;
        case 'y':
            if (!num(s, len, &p, 2, 2, &v))
                return LF_EFORMAT;
            Y = v < 69 ? 2000 + v : 1900 + v;
            break;
        case 'm':
            if (!num(s, len, &p, 1, 2, &mo) || mo < 1 || mo > 12)
                return LF_EFORMAT;
            break;
        case 'e':
            while (p < len && s[p] == ' ')
                p++;
            /* fall through */
        case 'd':
            if (!num(s, len, &p, 1, 2, &d) || d < 1 || d > 31)
                return LF_EFORMAT;
            break;
        case 'H':
            if (!num(s, len, &p, 1, 2, &H) || H > 23)
                return LF_EFORMAT;
            break;
        case 'M':
            if (!num(s, len, &p, 1, 2, &M) || M > 59)
                return LF_EFORMAT;
            break;
        case 'S':
            if (!num(s, len, &p, 1, 2, &S) || S > 60)
                return LF_EFORMAT;
            break;
        case 'f': {
            int n = 0;
            frac_us = 0;
            while (p < len && n < 9 && s[p] >= '0' && s[p] <= '9') {
                if (n < 6)
                    frac_us = frac_us * 10 + (s[p] - '0');
                n++;
                p++;
            }
            if (n == 0)
                return LF_EFORMAT;
            for (int i = n; i < 6; i++)
                frac_us *= 10;
            break;
        }
        case 'b':
        case 'B':
        case 'h': {
            int i = name(s, len, &p, month_full, months, 12);
            if (i < 0)
                return LF_EFORMAT;
            mo = i + 1;
            break;
        }
        case 'a':
        case 'A':
            if (name(s, len, &p, day_full, day_abbr, 7) < 0)
                return LF_EFORMAT;
            break;
        case 'p':
            if (len - p >= 2 && strncasecmp(s + p, "am", 2) == 0)
                pm = 0;
            else if (len - p >= 2 && strncasecmp(s + p, "pm", 2) == 0)
                pm = 1;
            else
                return LF_EFORMAT;
            p += 2;
            break;
        case 'j':
            if (!num(s, len, &p, 1, 3, &yday) || yday < 1 || yday > 366)
                return LF_EFORMAT;
            break;
        case 's': {
            bool neg = p < len && s[p] == '-';
            if (neg)
                p++;
            if (!num(s, len, &p, 1, 12, &epoch))
                return LF_EFORMAT;
            if (neg)
                epoch = -epoch;
            have_epoch = true;
            break;
        }
        case 'z':
            if (parse_offset(s, len, &p, &off) < 0)
                return LF_EFORMAT;
            break;
        case 'T':
            if (lf_timefmt_parse("%H:%M:%S", s + p, 8 <= len - p ? 8 : len - p, 0, &v) < 0)
                return LF_EFORMAT;
            H = (v / 3600000000LL) % 24;
            M = (v / 60000000LL) % 60;
            S = (v / 1000000LL) % 60;
            p += 8;
            break;
        case 'F': {
            size_t e = p;
            while (e < len && e - p < 10)
                e++;
            if (lf_timefmt_parse("%Y-%m-%d", s + p, e - p, 0, &v) < 0)
                return LF_EFORMAT;
            int64_t yy;
            int mm, dd;
            lf_civil_from_days(v / 86400000000LL, &yy, &mm, &dd);
            Y = yy;
            mo = mm;
            d = dd;
            p = e;
            break;
        }
        case '%':
            if (p >= len || s[p] != '%')
                return LF_EFORMAT;
            p++;
            break;
        default:
            return LF_EFORMAT;
        }
    }
    if (p != len)
        return LF_EFORMAT;
    if (have_epoch) {
        *us = epoch * 1000000LL + frac_us;
        return 0;
    }
    if (pm >= 0) {
        if (H > 12 || H == 0)
            return LF_EFORMAT;
        H = H % 12 + (pm ? 12 : 0);
    }
    int64_t day = yday > 0 ? lf_days_from_civil(Y, 1, 1) + yday - 1 : lf_days_from_civil(Y, (int)mo, (int)d);
    *us = ((day * 86400 + H * 3600 + M * 60 + S) - off) * 1000000LL + frac_us;
    return 0;
}

int lf_timefmt_parse_tz(const char *text, int32_t *offset_s)
{
    if (!text || !*text || strcasecmp(text, "UTC") == 0 || strcasecmp(text, "GMT") == 0) {
        *offset_s = 0;
        return 0;
    }
    size_t p = 0, len = strlen(text);
    if (parse_offset(text, len, &p, offset_s) < 0 || p != len)
        return LF_ECONFIG;
    return 0;
}

size_t lf_timefmt_iso8601(int64_t us, char *out)
{
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t sub = us - secs * 1000000;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    int m, d;
    lf_civil_from_days(days, &y, &m, &d);
    int n;
    if (sub % 1000 == 0)
        n = snprintf(out, 32, "%04lld-%02d-%02dT%02d:%02d:%02d.%03lldZ", (long long)y, m, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60), (long long)(sub / 1000));
    else
        n = snprintf(out, 32, "%04lld-%02d-%02dT%02d:%02d:%02d.%06lldZ", (long long)y, m, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60), (long long)sub);
    return n > 0 && n < 32 ? (size_t)n : 0;
}
