#include "lf_keyring.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "lf_alloc.h"
#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_fileio.h"

#define SET_ERR(...)                                                                               \
    do {                                                                                           \
        if (err && errsz)                                                                          \
            snprintf(err, errsz, __VA_ARGS__);                                                     \
    } while (0)

void lf_keyring_init(lf_keyring *kr)
{
    kr->keys = NULL;
    kr->count = 0;
    kr->cap = 0;
    kr->current = -1;
}

void lf_keyring_free(lf_keyring *kr)
{
    if (kr->keys)
        sodium_memzero(kr->keys, kr->cap * sizeof *kr->keys);
    lf_free(kr->keys);
    lf_keyring_init(kr);
}

const lf_key *lf_keyring_current(const lf_keyring *kr)
{
    return kr->current >= 0 ? &kr->keys[kr->current] : NULL;
}

const lf_key *lf_keyring_find(const lf_keyring *kr, const uint8_t id[LF_KEY_ID_BYTES])
{
    for (size_t i = 0; i < kr->count; i++)
        if (memcmp(kr->keys[i].id, id, LF_KEY_ID_BYTES) == 0)
            return &kr->keys[i];
    return NULL;
}

int lf_keyring_add(lf_keyring *kr, const lf_key *key, bool make_current)
{
    if (lf_keyring_find(kr, key->id))
        return -EEXIST;
    if (kr->count >= LF_KEYRING_MAX_KEYS)
        return LF_ELIMIT;
    if (kr->count == kr->cap) {
        size_t cap = kr->cap ? kr->cap * 2 : 4;
        /* Not realloc: the old block holds key material and must be wiped before it is freed. */
        lf_key *keys = lf_calloc(cap, sizeof *keys);
        if (!keys)
            return -ENOMEM;
        if (kr->count)
            memcpy(keys, kr->keys, kr->count * sizeof *keys);
        if (kr->keys)
            sodium_memzero(kr->keys, kr->cap * sizeof *kr->keys);
        lf_free(kr->keys);
        kr->keys = keys;
        kr->cap = cap;
    }
    kr->keys[kr->count] = *key;
    if (make_current)
        kr->current = (long)kr->count;
    kr->count++;
    return 0;
}

/* Opens name in dir refusing symlinks, non-regular files and loose modes. */
static int open_checked(int dfd, const char *dir, const char *name, bool allow_group_read,
                        char *err, size_t errsz)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP) {
            SET_ERR("%s/%s: is a symbolic link; key files must be regular files", dir, name);
            return -EPERM;
        }
        SET_ERR("%s/%s: %s", dir, name, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        SET_ERR("%s/%s: %s", dir, name, strerror(e));
        return -e;
    }
    mode_t loose = allow_group_read ? 037 : 077;
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        SET_ERR("%s/%s: not a regular file", dir, name);
        return -EPERM;
    }
    if (st.st_mode & loose) {
        close(fd);
        SET_ERR("%s/%s: mode %04o is too open (allowed: %s); fix with chmod %s", dir, name,
                (unsigned)(st.st_mode & 07777), allow_group_read ? "0600 or 0640" : "0600",
                allow_group_read ? "640" : "600");
        return -EPERM;
    }
    return fd;
}

static bool parse_key_name(const char *name, uint8_t id[LF_KEY_ID_BYTES])
{
    size_t n = strlen(name);
    return n == 2 * LF_KEY_ID_BYTES + 4 && strcmp(name + 2 * LF_KEY_ID_BYTES, ".key") == 0 &&
           lf_crypto_hex_decode(id, LF_KEY_ID_BYTES, name, 2 * LF_KEY_ID_BYTES) == 0;
}

int lf_keyring_load(lf_keyring *kr, const char *dir, bool allow_group_read, char *err,
                    size_t errsz)
{
    if (lf_crypto_init() != 0)
        return -EIO;
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        SET_ERR("%s: %s", dir, strerror(e));
        return -e;
    }
    int dfd = dirfd(d);
    int rc = 0;
    /* Whoever may write the directory may replace keys or "current": only the owner. */
    struct stat dst;
    if (fstat(dfd, &dst) != 0) {
        rc = -errno;
        SET_ERR("%s: %s", dir, strerror(errno));
        closedir(d);
        return rc;
    }
    if (dst.st_mode & 022) {
        SET_ERR("%s: directory mode %04o lets group or others write it; fix with chmod go-w", dir,
                (unsigned)(dst.st_mode & 07777));
        closedir(d);
        return -EPERM;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        lf_key k;
        if (!parse_key_name(de->d_name, k.id))
            continue;
        int fd = open_checked(dfd, dir, de->d_name, allow_group_read, err, errsz);
        if (fd < 0) {
            rc = fd;
            break;
        }
        uint8_t extra;
        ssize_t n = lf_read_full(fd, k.key, sizeof k.key);
        ssize_t m = n == (ssize_t)sizeof k.key ? lf_read_full(fd, &extra, 1) : 0;
        close(fd);
        if (n != (ssize_t)sizeof k.key || m != 0) {
            sodium_memzero(&k, sizeof k);
            SET_ERR("%s/%s: a key file must hold exactly %d bytes", dir, de->d_name,
                    LF_KEY_BYTES);
            rc = n < 0 ? (int)n : LF_EFORMAT;
            break;
        }
        rc = lf_keyring_add(kr, &k, false);
        sodium_memzero(&k, sizeof k);
        if (rc != 0) {
            SET_ERR("%s/%s: %s", dir, de->d_name, lf_strerror(rc));
            break;
        }
    }
    if (rc == 0) {
        int fd = openat(dfd, "current", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT) {
            kr->current = -1;
        } else {
            if (fd >= 0)
                close(fd);
            fd = open_checked(dfd, dir, "current", allow_group_read, err, errsz);
            if (fd < 0) {
                rc = fd;
            } else {
                char text[64];
                ssize_t n = lf_read_full(fd, text, sizeof text);
                close(fd);
                uint8_t id[LF_KEY_ID_BYTES];
                size_t len = n > 0 ? (size_t)n : 0;
                while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
                    len--;
                if (n < 0 || lf_crypto_hex_decode(id, sizeof id, text, len) != 0) {
                    SET_ERR("%s/current: does not hold a key id (32 hex digits)", dir);
                    rc = n < 0 ? (int)n : LF_EFORMAT;
                } else {
                    const lf_key *k = lf_keyring_find(kr, id);
                    if (!k) {
                        SET_ERR("%s/current: names key %.*s, which is not in the keyring", dir,
                                (int)len, text);
                        rc = LF_ECORRUPT;
                    } else {
                        kr->current = (long)(k - kr->keys);
                    }
                }
            }
        }
    }
    closedir(d);
    if (rc != 0)
        lf_keyring_free(kr);
    return rc;
}

int lf_keyring_rotate(lf_keyring *kr, const char *dir, uint8_t new_id[LF_KEY_ID_BYTES])
{
    if (lf_crypto_init() != 0)
        return -EIO;
    int rc = lf_mkdir_p(dir, 0700);
    if (rc)
        return rc;
    lf_key k;
    randombytes_buf(k.id, sizeof k.id);
    randombytes_buf(k.key, sizeof k.key);
    char hex[LF_KEY_ID_HEX_SIZE];
    lf_crypto_hex_encode(hex, k.id, sizeof k.id);
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s.key", dir, hex) >= sizeof path) {
        rc = -ENAMETOOLONG;
        goto out;
    }
    /* The key file must be durable before "current" names it. */
    if ((rc = lf_write_file_atomic(path, k.key, sizeof k.key, 0600)) != 0)
        goto out;
    char cur[4096];
    if ((size_t)snprintf(cur, sizeof cur, "%s/current", dir) >= sizeof cur) {
        rc = -ENAMETOOLONG;
        goto out;
    }
    char line[LF_KEY_ID_HEX_SIZE + 1];
    memcpy(line, hex, 2 * LF_KEY_ID_BYTES);
    line[2 * LF_KEY_ID_BYTES] = '\n';
    /* In memory first (it can fail on allocation), current only once the disk says so. */
    if ((rc = lf_keyring_add(kr, &k, false)) != 0)
        goto out;
    if ((rc = lf_write_file_atomic(cur, line, sizeof line - 1, 0600)) != 0)
        goto out;
    kr->current = (long)(kr->count - 1);
    if (new_id)
        memcpy(new_id, k.id, sizeof k.id);
out:
    sodium_memzero(&k, sizeof k);
    return rc;
}
