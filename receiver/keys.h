/* The receiver's keyring for encryption at rest, shared by worker threads. `keys rotate` (another
 * process) changes the directory; the daemon notices a new "current" file before each encryption
 * and swaps in a freshly loaded keyring. Replaced keyrings are kept until the daemon stops, so a
 * worker still using one is never left with freed keys (rotations are rare). */
#ifndef LF_RECEIVER_KEYS_H
#define LF_RECEIVER_KEYS_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "lf_keyring.h"
#include "lf_watched_file.h"

typedef struct lf_receiver_keys {
    pthread_mutex_t mu;
    char *dir;
    lf_keyring *current;   /* the keyring in use */
    lf_keyring **retired;  /* earlier ones, freed at close */
    size_t n_retired;
    lf_watched_file current_file; /* dir/current: a rotation replaces it */
} lf_receiver_keys;

/* Loads dir; with create_first, makes a first key when there is none. 0 or a negative code. */
int lf_receiver_keys_open(lf_receiver_keys *k, const char *dir, bool create_first, char *err,
                          size_t errsz);
void lf_receiver_keys_close(lf_receiver_keys *k);
/* The keyring to use now (reloaded if the directory's current key changed). Thread-safe. Valid
 * until lf_receiver_keys_close. */
const lf_keyring *lf_receiver_keys_get(lf_receiver_keys *k);

#endif
