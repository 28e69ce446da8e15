/* A SQLite VFS shim over the default "unix" VFS. It does two things:
 *  - failure injection: xWrite fails with SQLITE_FULL (as a full disk would) when LF_FAIL_WRITE is
 *    hit, and xSync with SQLITE_IOERR_FSYNC when LF_FAIL_FSYNC is hit;
 *  - full-disk safety of the WAL index: SQLite memory-maps the "-shm" file after extending it with
 *    sparse writes; on a full disk the first write to such a page raises SIGBUS (seen when a WAL is
 *    recovered or checkpointed on a full disk). After each mapping the shim allocates the region's
 *    blocks (posix_fallocate; a no-op once allocated) and reports SQLITE_FULL instead when there is
 *    no space, before SQLite touches the pages. SQLite asks for each region once per connection.
 * Everything else is passed through unchanged. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lf_failpoint.h"
#include "lf_queue_store.h"

typedef struct shim_file {
    sqlite3_file base;
    const char *db_name; /* main database files only; valid until xClose (SQLite's promise) */
    sqlite3_file *real;  /* follows this struct in the same allocation */
} shim_file;

static sqlite3_vfs shim_vfs;
static sqlite3_vfs *real_vfs;
static int shim_registered_rc = SQLITE_ERROR;
static pthread_once_t shim_once = PTHREAD_ONCE_INIT;

#define REAL(f) (((shim_file *)(f))->real)

static int shim_close(sqlite3_file *f)
{
    int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
    f->pMethods = NULL;
    return rc;
}

static int shim_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), buf, amt, off);
}

static int shim_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    if (lf_fail_hit(LF_FAIL_WRITE))
        return SQLITE_FULL;
    return REAL(f)->pMethods->xWrite(REAL(f), buf, amt, off);
}

static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int shim_sync(sqlite3_file *f, int flags)
{
    if (lf_fail_hit(LF_FAIL_FSYNC))
        return SQLITE_IOERR_FSYNC;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int shim_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int shim_lock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int shim_unlock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int shim_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int shim_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int shim_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int shim_device_characteristics(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int shim_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    if (REAL(f)->pMethods->iVersion < 2)
        return SQLITE_IOERR_SHMMAP;
    int rc = REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
    const char *db_name = ((shim_file *)f)->db_name;
    if (rc != SQLITE_OK || !*pp || !db_name)
        return rc;
    char shm[4096];
    if (snprintf(shm, sizeof shm, "%s-shm", db_name) >= (int)sizeof shm)
        return rc;
    int fd = open(shm, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return rc; /* not a file we can reach (e.g. heap wal-index): nothing to secure */
    int err = posix_fallocate(fd, 0, (off_t)(pg + 1) * pgsz);
    close(fd);
    if (err == ENOSPC || err == EDQUOT) {
        *pp = NULL;
        return SQLITE_FULL;
    }
    return rc;
}

static int shim_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void shim_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int shim_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    /* No memory mapping through the shim: every page is read (and written) via the hooks above. */
    *pp = NULL;
    return SQLITE_OK;
}

static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return SQLITE_OK;
}

static const sqlite3_io_methods shim_io = {
    3,
    shim_close,
    shim_read,
    shim_write,
    shim_truncate,
    shim_sync,
    shim_file_size,
    shim_lock,
    shim_unlock,
    shim_check_reserved,
    shim_file_control,
    shim_sector_size,
    shim_device_characteristics,
    shim_shm_map,
    shim_shm_lock,
    shim_shm_barrier,
    shim_shm_unmap,
    shim_fetch,
    shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    shim_file *s = (shim_file *)f;
    s->real = (sqlite3_file *)(s + 1);
    s->db_name = (flags & SQLITE_OPEN_MAIN_DB) ? name : NULL;
    memset(s->real, 0, (size_t)real_vfs->szOsFile);
    int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out_flags);
    /* SQLite calls xClose only when pMethods is set, so mirror the real file's state. */
    f->pMethods = s->real->pMethods ? &shim_io : NULL;
    return rc;
}

static void shim_init(void)
{
    real_vfs = sqlite3_vfs_find("unix");
    if (!real_vfs)
        return;
    shim_vfs = *real_vfs; /* pass-through for every VFS method but xOpen */
    shim_vfs.szOsFile = (int)sizeof(shim_file) + real_vfs->szOsFile;
    shim_vfs.zName = LF_QUEUE_VFS_NAME;
    shim_vfs.pNext = NULL;
    shim_vfs.xOpen = shim_open;
    shim_registered_rc = sqlite3_vfs_register(&shim_vfs, 0);
}

int lf_queue_vfs_register(void)
{
    pthread_once(&shim_once, shim_init);
    return shim_registered_rc;
}
