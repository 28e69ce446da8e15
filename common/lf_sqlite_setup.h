/* Setting up an SQLite database that another process may be setting up at the same moment. */
#ifndef LF_SQLITE_SETUP_H
#define LF_SQLITE_SETUP_H

#include <sqlite3.h>

/* The busy timeout of the programs' own databases (the outbox, the index, the registry), and how long
 * their set-up waits out a busy answer. */
#define LF_SQLITE_BUSY_TIMEOUT_MS 5000

/* sqlite3_exec of an idempotent set-up script (PRAGMAs, CREATE ... IF NOT EXISTS, INSERT OR IGNORE),
 * run again while it fails with SQLITE_BUSY, for up to timeout_ms. Two connections turning a new
 * database to WAL at once (a daemon starting while its command-line tool opens the same file) get
 * SQLITE_BUSY at once, without the busy handler, since waiting could deadlock; trying again after the
 * other has finished succeeds. Returns the SQLite result code; *errmsg as sqlite3_exec (free it with
 * sqlite3_free). */
int lf_sqlite_exec_setup(sqlite3 *db, const char *sql, int timeout_ms, char **errmsg);

#endif
