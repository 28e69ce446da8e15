/* Filesystem session store: temp file, fsync, rename, fsync dir (see store.h). */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_fileio.h"
#include "lf_log.h"
#include "lf_manifest.h"
#include "lf_secretstream.h"

typedef struct fs_store {
    lf_store base;
    char *dir;
    char *tmp;
} fs_store;

static int fs_put(lf_store *s, const char *id, const lf_key *key, const lf_store_src *src,
                  uint64_t received_ms, char *location, size_t locsz, uint64_t *stored_size)
{
    fs_store *fs = (fs_store *)s;
    time_t t = (time_t)(received_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char rel[128], final[4096], tmp[4096], shard[4096];
    snprintf(rel, sizeof rel, "%04d/%02d/%02d/%s.lfz", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, id);
    snprintf(shard, sizeof shard, "%s/%04d/%02d/%02d", fs->dir, tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday);
    snprintf(final, sizeof final, "%s/%s", fs->dir, rel);
    uint8_t rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    char rhex[17];
    lf_crypto_hex_encode(rhex, rnd, sizeof rnd);
    snprintf(tmp, sizeof tmp, "%s/%s.%s.tmp", fs->tmp, id, rhex);

    /* a new shard directory is made durable in its parent, once per day */
    struct stat st;
    int rc = 0;
    if (stat(shard, &st) != 0) {
        if ((rc = lf_mkdir_p(shard, 0700)) != 0)
            return rc;
        char parent[4096];
        snprintf(parent, sizeof parent, "%s/%04d/%02d", fs->dir, tm.tm_year + 1900, tm.tm_mon + 1);
        char year[4096];
        snprintf(year, sizeof year, "%s/%04d", fs->dir, tm.tm_year + 1900);
        if ((rc = lf_fsync_dir(parent)) != 0 || (rc = lf_fsync_dir(year)) != 0 ||
            (rc = lf_fsync_dir(fs->dir)) != 0)
            return rc;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    uint64_t out = 0;
    if (src->fd >= 0) {
        if (lseek(src->fd, 0, SEEK_SET) < 0)
            rc = -errno;
        else
            rc = lf_secretstream_encrypt_fd(key, src->fd, fd, 0, &out);
    } else {
        rc = lf_secretstream_encrypt_mem_fd(key, src->data, (size_t)src->len, fd, 0, &out);
    }
    if (rc == 0)
        rc = lf_fsync(fd);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, final) != 0)
        rc = -errno;
    if (rc == 0)
        rc = lf_fsync_dir(shard);
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    snprintf(location, locsz, "%s", rel);
    *stored_size = out;
    return 0;
}

static int fs_open(lf_store *s, const char *location, int *fdp, uint64_t *size)
{
    fs_store *fs = (fs_store *)s;
    if (strstr(location, "..") || location[0] == '/')
        return -EINVAL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fs->dir, location);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *fdp = fd;
    *size = (uint64_t)st.st_size;
    return 0;
}

static bool all_digits(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Walks dir/YYYY/MM/DD/<id>.lfz. */
static int scan_level(fs_store *fs, const char *rel, int depth,
                      int (*fn)(void *arg, const char *id, const char *location), void *arg)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", fs->dir, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        if (depth < 3) {
            if (all_digits(e->d_name, depth == 0 ? 4 : 2))
                rc = scan_level(fs, sub, depth + 1, fn, arg);
        } else {
            size_t n = strlen(e->d_name);
            if (n == LF_SESSION_ID_LEN + 4 && strcmp(e->d_name + LF_SESSION_ID_LEN, ".lfz") == 0) {
                char id[LF_SESSION_ID_LEN + 1];
                memcpy(id, e->d_name, LF_SESSION_ID_LEN);
                id[LF_SESSION_ID_LEN] = '\0';
                rc = fn(arg, id, sub);
            }
        }
    }
    closedir(d);
    return rc;
}

static int fs_scan(lf_store *s, int (*fn)(void *arg, const char *id, const char *location), void *arg)
{
    return scan_level((fs_store *)s, "", 0, fn, arg);
}

static void fs_close(lf_store *s)
{
    fs_store *fs = (fs_store *)s;
    lf_free(fs->dir);
    lf_free(fs->tmp);
    lf_free(fs);
}

static const lf_store_ops fs_ops = {"filesystem", fs_put, fs_open, fs_scan, fs_close};

int lf_store_fs_open(const char *dir, bool clean_tmp, lf_store **out, char *err, size_t errsz)
{
    fs_store *fs = lf_calloc(1, sizeof *fs);
    if (!fs)
        return -ENOMEM;
    fs->base.ops = &fs_ops;
    fs->dir = lf_strdup(dir);
    size_t n = strlen(dir) + 8;
    fs->tmp = lf_malloc(n);
    if (!fs->dir || !fs->tmp) {
        fs_close(&fs->base);
        return -ENOMEM;
    }
    snprintf(fs->tmp, n, "%s/.tmp", dir);
    int rc = lf_mkdir_p(fs->tmp, 0700);
    if (rc != 0) {
        snprintf(err, errsz, "cannot create %s: %s", fs->tmp, lf_strerror(rc));
        fs_close(&fs->base);
        return rc;
    }
    /* temporaries of uploads that never completed */
    DIR *d = clean_tmp ? opendir(fs->tmp) : NULL;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            if (unlinkat(dirfd(d), e->d_name, 0) == 0)
                LF_INFO("store", "removed the unfinished temporary %s/%s", fs->tmp, e->d_name);
        }
        closedir(d);
    }
    *out = &fs->base;
    return 0;
}

int64_t lf_store_fs_free_bytes(const char *dir)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0)
        return -errno;
    return (int64_t)((uint64_t)sv.f_bavail * sv.f_frsize);
}
