/* Session store backends behind one small interface. A backend keeps encrypted session objects
 * (lf_secretstream format) under a location string that the index records. put() returns only once
 * the object is durable; it never replaces an object that was acknowledged before (the index is
 * checked first), and a failed put() leaves nothing that the index points to.
 *
 * Backends: filesystem (store_fs.c), elasticsearch (store_es.c). Calls may come from any thread (worker threads). */
#ifndef LF_RECEIVER_STORE_H
#define LF_RECEIVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_es.h"
#include "lf_keyring.h"

typedef struct lf_store lf_store;

/* Plaintext to store: in memory (fd == -1) or readable from fd (read from offset 0 with pread or
 * after a seek: the backend may move the offset). */
typedef struct lf_store_src {
    const void *data;
    int fd;
    uint64_t len;
} lf_store_src;

typedef struct lf_store_ops {
    const char *name;
    /* Encrypts src with key and stores it as session id. location (locsz bytes) gets where. */
    int (*put)(lf_store *s, const char *id, const lf_key *key, const lf_store_src *src,
               uint64_t received_ms, char *location, size_t locsz, uint64_t *stored_size);
    /* A readable fd of the encrypted object at offset 0, and its size. The caller closes the fd. */
    int (*open)(lf_store *s, const char *location, int *fd, uint64_t *size);
    /* Calls fn for every stored object (recovery). fn returning non-zero stops the scan. */
    int (*scan)(lf_store *s, int (*fn)(void *arg, const char *id, const char *location), void *arg);
    void (*close)(lf_store *s);
} lf_store_ops;

struct lf_store {
    const lf_store_ops *ops;
};

/* Filesystem backend rooted at dir (created if missing): dir/YYYY/MM/DD/<id>.lfz (UTC date of
 * receipt), temporaries in dir/.tmp (emptied at open when clean_tmp: the daemon, never a CLI). */
int lf_store_fs_open(const char *dir, bool clean_tmp, lf_store **out, char *err, size_t errsz);

/* Free bytes for unprivileged users on the store's file system (statvfs), or a negative errno. */
int64_t lf_store_fs_free_bytes(const char *dir);

/* Elasticsearch backend: index (created from the index template installed here, PUT
 * /_index_template/<index>) holds documents <id>-<n> of at most chunk_size encrypted bytes each
 * (base64 in a non-indexed binary field), written with op_type=create; locations are
 * "<id>/<chunks>". url and auth as common/lf_es.h checks them. Fails when Elasticsearch cannot be
 * reached or refuses the template (LF_EAUTH for 401 and 403). */
#define LF_STORE_ES_CHUNK_MAX (16u << 20) /* see receiver_config.c */
int lf_store_es_open(const char *url, const lf_es_auth *auth, const char *index, uint64_t chunk_size,
                     lf_store **out, char *err, size_t errsz);

/* Opens the backend that cfg's store.backend names (receiver.c); clean_tmp as for the filesystem. */
struct lf_receiver_config;
int lf_receiver_store_open(const struct lf_receiver_config *cfg, bool clean_tmp, lf_store **out, char *err,
                           size_t errsz);

#endif
