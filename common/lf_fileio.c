#include "lf_fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lf_error.h"
#include "lf_failpoint.h"

int lf_write_all(int fd, const void *buf, size_t len)
{
    if (lf_fail_hit(LF_FAIL_WRITE))
        return -ENOSPC;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO; /* a regular file never does this; do not spin */
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t lf_read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int lf_fsync(int fd)
{
    if (lf_fail_hit(LF_FAIL_FSYNC))
        return -EIO;
    while (fsync(fd) != 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

int lf_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = lf_fsync(fd);
    close(fd);
    return rc;
}

int lf_path_dirname(const char *path, char *out, size_t outsz)
{
    const char *slash = strrchr(path, '/');
    size_t n;
    if (!slash) {
        path = ".";
        n = 1;
    } else if (slash == path) {
        n = 1; /* "/name" */
    } else {
        n = (size_t)(slash - path);
    }
    if (n + 1 > outsz)
        return -ENAMETOOLONG;
    memcpy(out, path, n);
    out[n] = '\0';
    return 0;
}

int lf_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char dir[4096], tmp[4096];
    int rc = lf_path_dirname(path, dir, sizeof dir);
    if (rc)
        return rc;
    /* pid + a counter: unique per process and call; O_EXCL catches any leftover. */
    static unsigned counter;
    unsigned seq = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), seq);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    /* open() applies the umask; set the mode exactly as asked. */
    if (fchmod(fd, mode) != 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = lf_write_all(fd, data, len)) != 0)
        goto fail;
    if ((rc = lf_fsync(fd)) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        rc = -errno;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = -errno;
        goto fail;
    }
    return lf_fsync_dir(dir);

fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

int lf_read_file(const char *path, size_t max, lf_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = lf_read_fd(fd, max, out);
    close(fd);
    return rc;
}

int lf_read_fd(int fd, size_t max, lf_buf *out)
{
    int rc = 0;
    size_t total = 0;
    char chunk[16384];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        if ((size_t)n > max - total) {
            rc = LF_ELIMIT;
            break;
        }
        total += (size_t)n;
        if ((rc = lf_buf_append(out, chunk, (size_t)n)) != 0)
            break;
    }
    return rc;
}

int lf_mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0)
        return -EINVAL;
    if (len >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0) {
            int e = errno;
            struct stat st;
            if (e != EEXIST)
                return -e;
            if (stat(buf, &st) != 0)
                return -errno;
            if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        }
        buf[i] = saved;
    }
    return 0;
}
