/* Failure injection (beanstalkd's and SQLite's idea, curl's torture tests): storage paths ask
 * lf_fail_hit() before each allocation, write and fsync, and tests arm a point so that the Nth call
 * from now fails, once or from then on. Unarmed, a check is one relaxed atomic load.
 *
 * Tests arm points in-process with lf_fail_arm(), or for a whole program through the environment:
 * LF_FAIL_ALLOC=N, LF_FAIL_WRITE=N, LF_FAIL_FSYNC=N, LF_FAIL_PUBLISH=N make the Nth call fail; a trailing '+' (N+)
 * makes every call from the Nth on fail. */
#ifndef LF_FAILPOINT_H
#define LF_FAILPOINT_H

#include <stdbool.h>
#include <stdint.h>

enum lf_fail_kind {
    LF_FAIL_ALLOC,
    LF_FAIL_WRITE,
    LF_FAIL_FSYNC,
    LF_FAIL_PUBLISH, /* a JetStream publish of a stored session (receiver) */
    LF_FAIL_KINDS
};

/* true when this call must fail. Counts every call while the point is armed. */
bool lf_fail_hit(enum lf_fail_kind kind);

/* Arm: the nth call from now (1 = the next one) fails; with sticky, every later one fails too. */
void lf_fail_arm(enum lf_fail_kind kind, uint64_t nth, bool sticky);
void lf_fail_disarm(enum lf_fail_kind kind);
/* Number of calls counted since the point was last armed. */
uint64_t lf_fail_calls(enum lf_fail_kind kind);
/* Reads LF_FAIL_ALLOC/WRITE/FSYNC/PUBLISH from the environment. Programs call it once at start. */
void lf_fail_from_env(void);

#endif
