/* Log types: how to turn a file's lines into events. A type is either a line format (Loghub
 * notation, see logformat.h) or the built-in JSON-lines type ("jsonlines": one JSON object per
 * line). Types come from an INI file, one section per type:
 *
 *   [logtype.hdfs]
 *   format = <Date> <Time> <Pid> <Level> <Component>: <Content>
 *   mask = blk_-?\d+                  ; repeatable, applied in order before mining
 *   mask = (\d+\.){3}\d+(:\d+)?
 *   time_fields = Date Time           ; joined with one space, then parsed with time_format
 *   time_format = %y%m%d %H%M%S
 *   timezone = UTC                    ; or +02:00 ...; used when the text has no %z
 *   level_field = Level
 *   content_field = Content           ; default Content, else the last field
 *   continuation = true               ; a line that does not match belongs to the event before it
 *   max_line = 16777216               ; longer lines are cut here (the event says "truncated")
 *
 *   [logtype.app]
 *   builtin = jsonlines               ; continuation defaults to false here
 *   message_key = msg                 ; default: message, msg, log
 *   level_field = severity            ; default: level, severity
 *   time_fields = ts                  ; default: ts, time, timestamp, @timestamp
 *
 * Unknown keys are errors. Fields not named are defaulted when the type is compiled. */
#ifndef LF_LOGTYPE_H
#define LF_LOGTYPE_H

#include <stdbool.h>
#include <stddef.h>

#define LF_LOGTYPE_MAX_MASKS 32

typedef struct lf_logtype {
    char *name;
    bool jsonlines;
    char *format;
    char *masks[LF_LOGTYPE_MAX_MASKS];
    int nmasks;
    char *time_fields; /* space- or comma-separated field names; NULL: defaults */
    char *time_format; /* NULL: no timestamp for format types; ISO 8601 guesses for jsonlines */
    char *timezone;
    char *level_field;
    char *content_field;
    bool continuation;
    size_t max_line;
    /* PCRE2 searched in the first line of a session's last event: a session whose last event does
     * not match ended without its shutdown line (it crashed). NULL: crashes are not detected. */
    char *end_line;
} lf_logtype;

typedef struct lf_logtypes {
    lf_logtype *types;
    size_t n;
} lf_logtypes;

/* A type with defaults (continuation on, max_line 16 MiB) and the given name. */
int lf_logtype_init(lf_logtype *t, const char *name);
void lf_logtype_clear(lf_logtype *t);
/* Sets one key as in the INI file. 0, LF_ECONFIG (unknown key or bad value) or -ENOMEM. */
int lf_logtype_set(lf_logtype *t, const char *key, const char *value);

/* Loads every [logtype.NAME] section of an INI file (other sections are ignored, so the types can
 * live in the parser's own configuration file). 0, -errno, or LF_ECONFIG with "path:line: reason"
 * in err. The built-in "jsonlines" type is always present unless the file defines one so named. */
int lf_logtypes_load(lf_logtypes *ts, const char *path, char *err, size_t errlen);
void lf_logtypes_free(lf_logtypes *ts);
const lf_logtype *lf_logtypes_find(const lf_logtypes *ts, const char *name);

#endif
