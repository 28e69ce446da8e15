/* strptime-style timestamp parsing without the C library's locale and time-zone state, so it is
 * fast and the same on every host. Conversions: %Y %y %m %d %e %H %M %S %f (fraction, 1-9 digits)
 * %b %B %h (English month names) %a %A (English day names, skipped) %p (AM/PM) %j (day of year)
 * %s (Unix seconds) %z (Z, +hh, +hhmm, +hh:mm) %T (%H:%M:%S) %F (%Y-%m-%d) %%; a space matches any
 * run of whitespace; any other byte matches itself. */
#ifndef LF_TIMEFMT_H
#define LF_TIMEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses s[0..len) entirely. tz_offset_s is used when the text has no %z. 0 and *us (microseconds
 * since the epoch, UTC) on success, LF_EFORMAT when the text does not fit the format. */
int lf_timefmt_parse(const char *fmt, const char *s, size_t len, int32_t tz_offset_s, int64_t *us);

/* "UTC", "Z", "+02:00", "-0530", "+5": seconds east of UTC. 0 or LF_ECONFIG. */
int lf_timefmt_parse_tz(const char *text, int32_t *offset_s);

/* Writes "2015-10-18T18:01:47.978Z" (milliseconds, or microseconds when they are not whole) into
 * out (at least 32 bytes). Returns the length. */
size_t lf_timefmt_iso8601(int64_t us, char *out);

#endif
