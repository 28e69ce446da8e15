/* Files re-read when they change (see lf_watched_file.h). */
#include "lf_watched_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_fileio.h"

int lf_watched_file_init(lf_watched_file *w, const char *path)
{
    memset(w, 0, sizeof *w);
    w->path = lf_strdup(path);
    return w->path ? 0 : -ENOMEM;
}

void lf_watched_file_close(lf_watched_file *w)
{
    lf_free(w->path);
    memset(w, 0, sizeof *w);
}

static bool same(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

bool lf_watched_file_changed(const lf_watched_file *w, struct stat *now)
{
    if (stat(w->path, now) != 0) {
        int e = errno;
        memset(now, 0, sizeof *now);
        if (e != ENOENT)
            return true;
    }
    return !same(now, &w->seen);
}

int lf_watched_file_read(const lf_watched_file *w, size_t max, lf_buf *out, struct stat *st)
{
    memset(st, 0, sizeof *st);
    int fd = open(w->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    struct stat at;
    if (fstat(fd, &at) != 0)
        rc = -errno;
    else if ((uint64_t)at.st_size > max)
        rc = LF_ELIMIT;
    else
        rc = lf_read_fd(fd, max, out);
    close(fd);
    if (rc == 0)
        *st = at;
    return rc;
}

void lf_watched_file_take(lf_watched_file *w, const struct stat *st)
{
    w->seen = *st;
}
