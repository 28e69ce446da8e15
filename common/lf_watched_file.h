/* A file a daemon re-reads when it changes: the site table, the token table, the keyring's
 * "current" key. Another process replaces the file (atomically, by rename); the daemon compares the
 * file's device, inode, size and modification time with those of the content it last took, and
 * reads it again when any differs. What is read and what is remembered come from the same open
 * file, so a replacement racing with the read is seen at the next check. */
#ifndef LF_WATCHED_FILE_H
#define LF_WATCHED_FILE_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "lf_buf.h"

typedef struct lf_watched_file {
    char *path;       /* owned */
    struct stat seen; /* of the content last taken; all zero = missing, or nothing taken yet */
} lf_watched_file;

/* Copies path. 0 or -ENOMEM. Nothing is taken yet: the first check reports a change when the file
 * exists. */
LF_MUST_CHECK int lf_watched_file_init(lf_watched_file *w, const char *path);
void lf_watched_file_close(lf_watched_file *w);

/* Stats the file into *now (all zero when it does not exist) and tells whether it differs from
 * the content last taken. A stat error other than ENOENT counts as a change, so that the reader
 * meets the error and reports it. */
bool lf_watched_file_changed(const lf_watched_file *w, struct stat *now);

/* Reads the whole file (at most max bytes, else LF_ELIMIT) into out and its stat into *st.
 * -ENOENT (with *st all zero) when it does not exist; otherwise 0 or a negative code. */
LF_MUST_CHECK int lf_watched_file_read(const lf_watched_file *w, size_t max, lf_buf *out, struct stat *st);

/* Records st (from lf_watched_file_read or _changed) as the content now in use. Call it only once
 * that content was accepted: a file that failed to load is tried again when it changes. */
void lf_watched_file_take(lf_watched_file *w, const struct stat *st);

#endif
