/* Logging to stderr, which journald collects under systemd. One line per message:
 *   2026-11-22T01:55:38.123Z WARN  [queue] message        (terminal or file)
 *   <4>[queue] message                                     (under journald: JOURNAL_STREAM set)
 * A message below the current level costs one comparison: the macros test the level before any
 * argument is evaluated or formatted. Each line is written with a single write(2), so lines from
 * several threads never interleave. */
#ifndef LF_LOG_H
#define LF_LOG_H

#include "lf_error.h"

enum lf_log_level {
    LF_LOG_DEBUG = 0,
    LF_LOG_INFO = 1,
    LF_LOG_WARN = 2,
    LF_LOG_ERROR = 3,
    LF_LOG_OFF = 4,
};

extern enum lf_log_level lf_log_min_level;

void lf_log_set_level(enum lf_log_level level);
/* "debug", "info", "warn"/"warning", "error", "off" -> 0 and *level; else -EINVAL. */
LF_MUST_CHECK int lf_log_level_parse(const char *name, enum lf_log_level *level);
const char *lf_log_level_name(enum lf_log_level level);
/* Program name shown in the plain format; defaults to none. The string must outlive logging. */
void lf_log_set_program(const char *program);
/* Redirects output to fd (tests); -1 restores stderr. */
void lf_log_set_fd(int fd);

void lf_log_emit(enum lf_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LF_LOG(level, component, ...)                                                              \
    do {                                                                                           \
        if ((level) >= lf_log_min_level)                                                           \
            lf_log_emit((level), (component), __VA_ARGS__);                                        \
    } while (0)

#define LF_DEBUG(component, ...) LF_LOG(LF_LOG_DEBUG, component, __VA_ARGS__)
#define LF_INFO(component, ...) LF_LOG(LF_LOG_INFO, component, __VA_ARGS__)
#define LF_WARN(component, ...) LF_LOG(LF_LOG_WARN, component, __VA_ARGS__)
#define LF_ERROR(component, ...) LF_LOG(LF_LOG_ERROR, component, __VA_ARGS__)

#endif
