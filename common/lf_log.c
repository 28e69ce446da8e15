#include "lf_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum lf_log_level lf_log_min_level = LF_LOG_INFO;

static const char *log_program;
static int log_fd = -1;
static int log_journal = -1; /* -1: not decided yet */

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
/* syslog priorities: debug 7, info 6, warning 4, err 3 */
static const int level_prio[] = {7, 6, 4, 3};

void lf_log_set_level(enum lf_log_level level)
{
    lf_log_min_level = level;
}

int lf_log_level_parse(const char *name, enum lf_log_level *level)
{
    for (int i = 0; i <= LF_LOG_OFF; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *level = (enum lf_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *level = LF_LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

const char *lf_log_level_name(enum lf_log_level level)
{
    return (unsigned)level <= LF_LOG_OFF ? level_names[level] : "?";
}

void lf_log_set_program(const char *program)
{
    log_program = program;
}

void lf_log_set_fd(int fd)
{
    log_fd = fd;
    log_journal = -1;
}

/* journald sets JOURNAL_STREAM to "dev:ino" of the stream it gave us; if stderr is that stream,
 * it parses "<N>" priority prefixes and adds its own timestamps. */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    if (!js)
        return false;
    unsigned long long dev, ino;
    if (sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void lf_log_emit(enum lf_log_level level, const char *component, const char *fmt, ...)
{
    if ((unsigned)level >= LF_LOG_OFF)
        return;
    int fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
    if (log_journal < 0)
        log_journal = log_fd < 0 && stderr_is_journal();

    char line[4096];
    size_t n = 0;
    if (log_journal) {
        n = (size_t)snprintf(line, sizeof line, "<%d>", level_prio[level]);
    } else {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof line - n, ".%03dZ %s %s%s", (int)(tv.tv_usec / 1000),
                              level_tags[level], log_program ? log_program : "",
                              log_program ? " " : "");
    }
    if (component && n < sizeof line)
        n += (size_t)snprintf(line + n, sizeof line - n, "[%s] ", component);
    if (n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += (size_t)m;
    }
    if (n >= sizeof line - 1) { /* truncated: mark it and keep the newline */
        n = sizeof line - 1;
        memcpy(line + n - 4, "...", 3);
        n--;
    }
    /* Control characters from outside input must not forge extra log lines. */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    ssize_t w;
    do
        w = write(fd, line, n);
    while (w < 0 && errno == EINTR);
}
