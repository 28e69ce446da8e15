/* Keyring for encryption at rest: a directory of data keys, one file per key id, and a pointer to
 * the current key.
 *
 * Layout of the directory:
 *   <32 hex digits>.key   32 random bytes (raw), mode 0600, written atomically with fsync;
 *                         the file name is the hex of the 16-byte key id
 *   current               the current key id as 32 hex digits and a newline (atomic replace)
 * Rotation creates a new key and makes it current; old keys stay, so objects encrypted under them
 * can still be decrypted. Loading refuses (with a reason naming the file and its mode) any key file
 * or "current" file that is not a regular file, or whose mode gives others any access or the group
 * more than read; group read (0640) is refused too unless allow_group_read is set. The directory
 * itself must not be writable by group or others. */
#ifndef LF_KEYRING_H
#define LF_KEYRING_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LF_KEY_ID_BYTES 16
#define LF_KEY_BYTES 32
#define LF_KEY_ID_HEX_SIZE (LF_KEY_ID_BYTES * 2 + 1)
#define LF_KEYRING_MAX_KEYS 4096

typedef struct lf_key {
    uint8_t id[LF_KEY_ID_BYTES];
    uint8_t key[LF_KEY_BYTES];
} lf_key;

/* The loaded keys. Owns keys (wiped on free). Not thread-safe to change; reading from several
 * threads after loading is fine. */
typedef struct lf_keyring {
    lf_key *keys;
    size_t count;
    size_t cap;
    long current; /* index in keys, -1 when there is no current key */
} lf_keyring;

void lf_keyring_init(lf_keyring *kr);
/* Wipes and frees the keys; kr is empty again. */
void lf_keyring_free(lf_keyring *kr);

/* Loads every key of dir and the current pointer into kr (which must be empty: init'ed or freed).
 * A missing "current" file leaves current at -1 (an empty, new keyring); a "current" that names a
 * key that is not there is an error (LF_ECORRUPT). -EPERM for loose permissions, LF_EFORMAT for a
 * key file of the wrong size or a bad name; err (may be NULL) says which file and why.
 * Files whose names do not end in ".key" (other than "current") are ignored, as are temporaries. */
LF_MUST_CHECK int lf_keyring_load(lf_keyring *kr, const char *dir, bool allow_group_read, char *err,
                    size_t errsz);

/* Creates a new random key in dir (created with mode 0700 if missing), makes it current on disk
 * (both files fsync'd, the directory too), and adds it to kr as current. new_id (may be NULL) gets
 * its id. 0 or a negative code; on failure the previous current key stays current. */
LF_MUST_CHECK int lf_keyring_rotate(lf_keyring *kr, const char *dir, uint8_t new_id[LF_KEY_ID_BYTES]);

/* In memory only (tests, or keys from elsewhere): adds a key; make_current selects it. A second
 * key with the same id is refused (-EEXIST). */
LF_MUST_CHECK int lf_keyring_add(lf_keyring *kr, const lf_key *key, bool make_current);

/* The current key, or NULL when there is none. */
const lf_key *lf_keyring_current(const lf_keyring *kr);
/* The key with this id, or NULL. */
const lf_key *lf_keyring_find(const lf_keyring *kr, const uint8_t id[LF_KEY_ID_BYTES]);

#endif
