/* See lf_sqlite_setup.h. */
#include "lf_sqlite_setup.h"

#include <time.h>

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

int lf_sqlite_exec_setup(sqlite3 *db, const char *sql, int timeout_ms, char **errmsg)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (errmsg)
            *errmsg = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, errmsg);
        if ((rc & 0xff) != SQLITE_BUSY || elapsed_ms(&start) >= timeout_ms)
            return rc;
        if (errmsg) {
            sqlite3_free(*errmsg);
            *errmsg = NULL;
        }
        struct timespec pause = {0, 10 * 1000000}; /* the other set-up takes milliseconds */
        nanosleep(&pause, NULL);
    }
}
