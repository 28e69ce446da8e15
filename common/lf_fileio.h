/* Durable file I/O helpers shared by every storage path: complete writes, fsync of files and of
 * their directories, atomic replacement of small files, bounded reads and mkdir -p.
 * Every write and fsync goes through the failure-injection points LF_FAIL_WRITE and LF_FAIL_FSYNC
 * (common/lf_failpoint.h), so tests can make the Nth one fail. */
#ifndef LF_FILEIO_H
#define LF_FILEIO_H

#include "lf_error.h"

#include <stddef.h>
#include <sys/types.h>

#include "lf_buf.h"

/* Writes all len bytes, retrying on EINTR and short writes. 0 or a negative errno (-EIO, -ENOSPC,
 * ...). An injected LF_FAIL_WRITE failure returns -ENOSPC (after writing nothing). */
LF_MUST_CHECK int lf_write_all(int fd, const void *buf, size_t len);

/* Reads exactly len bytes unless end of file comes first. Returns the count read (< len only at
 * end of file) or a negative errno. Retries on EINTR. */
ssize_t lf_read_full(int fd, void *buf, size_t len);

/* fsync(2); an injected LF_FAIL_FSYNC failure returns -EIO. */
LF_MUST_CHECK int lf_fsync(int fd);

/* fsyncs the directory at path (makes a create or rename in it durable). Counts as an fsync for
 * LF_FAIL_FSYNC. */
LF_MUST_CHECK int lf_fsync_dir(const char *path);

/* Replaces path with data atomically and durably: writes a temporary file in the same directory
 * (created with mode, exclusive), fsyncs it, renames it over path and fsyncs the directory. On any
 * failure the temporary file is removed and path keeps its previous content. mode is applied
 * exactly (the umask does not loosen or tighten it). 0 or a negative errno. */
LF_MUST_CHECK int lf_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Reads the whole file into out (appended; out's own maximum also applies). A file larger than max
 * bytes gives LF_ELIMIT without reading it all. 0 or a negative code. */
LF_MUST_CHECK int lf_read_file(const char *path, size_t max, lf_buf *out);
/* The same from fd's current offset to its end; fd stays open. */
LF_MUST_CHECK int lf_read_fd(int fd, size_t max, lf_buf *out);

/* Creates path and its missing parents with mode (like mkdir -p). An existing directory is fine;
 * an existing non-directory gives -ENOTDIR. 0 or a negative errno. */
LF_MUST_CHECK int lf_mkdir_p(const char *path, mode_t mode);

/* Directory part of path into out (size outsz): "a/b" -> "a", "b" -> ".", "/b" -> "/".
 * 0, or -ENAMETOOLONG. */
LF_MUST_CHECK int lf_path_dirname(const char *path, char *out, size_t outsz);

#endif
