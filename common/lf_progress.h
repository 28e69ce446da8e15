/* Progress of a long command-line job (reparse --since, analytics backfill, sessions export), on
 * stderr: on a terminal one line redrawn in place, at most 10 times a second,
 *     reparse  [##########..........]  52%  5200/10000  130/s  ETA 37s
 * otherwise (a log, a pipe, journald) one plain line every LF_PROGRESS_LINE_MS,
 *     reparse: 5200 of 10000 (52%), 130/s, about 37s left
 * and at the end one line with the count and the time taken. A job whose total is unknown (0)
 * shows the count and the rate only. The clock is the caller's (milliseconds, any origin), so the
 * output is the same for the same calls. */
#ifndef LF_PROGRESS_H
#define LF_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define LF_PROGRESS_LINE_MS 5000
#define LF_PROGRESS_REDRAW_MS 100

typedef struct lf_progress {
    FILE *out;
    bool tty;
    char what[32];
    const char *unit; /* "" for a count, "B" for bytes (shown with K, M, G) */
    uint64_t total, done;
    int64_t start_ms, last_ms;
    bool drawn; /* a terminal line is on screen */
} lf_progress;

/* tty: whether out is a terminal (isatty of its descriptor, by the caller). */
void lf_progress_start(lf_progress *p, FILE *out, bool tty, const char *what, const char *unit, uint64_t total,
                       int64_t now_ms);
void lf_progress_update(lf_progress *p, uint64_t done, int64_t now_ms);
void lf_progress_end(lf_progress *p, int64_t now_ms);
/* Milliseconds of CLOCK_MONOTONIC, for callers without a clock of their own. */
int64_t lf_progress_now_ms(void);

#endif
