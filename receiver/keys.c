/* Keyring holder with reload on rotation (see keys.h). */
#include "keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"

int lf_receiver_keys_open(lf_receiver_keys *k, const char *dir, bool create_first, char *err,
                          size_t errsz)
{
    memset(k, 0, sizeof *k);
    pthread_mutex_init(&k->mu, NULL);
    char current[4096];
    snprintf(current, sizeof current, "%s/current", dir);
    k->dir = lf_strdup(dir);
    k->current = lf_calloc(1, sizeof *k->current);
    if (!k->dir || !k->current || lf_watched_file_init(&k->current_file, current) != 0) {
        lf_receiver_keys_close(k);
        return -ENOMEM;
    }
    lf_keyring_init(k->current);
    /* the stat before the load: a rotation in between is seen at the next check */
    struct stat seen, st;
    lf_watched_file_changed(&k->current_file, &seen);
    int rc = 0;
    if (stat(dir, &st) == 0)
        rc = lf_keyring_load(k->current, dir, false, err, errsz);
    if (rc == 0 && create_first && !lf_keyring_current(k->current)) {
        rc = lf_keyring_rotate(k->current, dir, NULL);
        if (rc != 0)
            snprintf(err, errsz, "cannot create the first key in %s: %s", dir, lf_strerror(rc));
        else
            LF_INFO("keys", "created the first encryption key in %s", dir);
        lf_watched_file_changed(&k->current_file, &seen); /* our own rotation is in k->current */
    }
    if (rc != 0) {
        lf_receiver_keys_close(k);
        return rc;
    }
    lf_watched_file_take(&k->current_file, &seen);
    return 0;
}

void lf_receiver_keys_close(lf_receiver_keys *k)
{
    if (k->current) {
        lf_keyring_free(k->current);
        lf_free(k->current);
    }
    for (size_t i = 0; i < k->n_retired; i++) {
        lf_keyring_free(k->retired[i]);
        lf_free(k->retired[i]);
    }
    lf_free(k->retired);
    lf_free(k->dir);
    lf_watched_file_close(&k->current_file);
    if (k->dir || k->current)
        pthread_mutex_destroy(&k->mu);
    memset(k, 0, sizeof *k);
}

const lf_keyring *lf_receiver_keys_get(lf_receiver_keys *k)
{
    pthread_mutex_lock(&k->mu);
    struct stat st;
    if (lf_watched_file_changed(&k->current_file, &st)) {
        lf_keyring *fresh = lf_calloc(1, sizeof *fresh);
        lf_keyring **nr = lf_realloc(k->retired, (k->n_retired + 1) * sizeof *nr);
        if (nr)
            k->retired = nr;
        char err[256] = "";
        if (fresh && nr) {
            lf_keyring_init(fresh);
            int rc = lf_keyring_load(fresh, k->dir, false, err, sizeof err);
            if (rc == 0 && lf_keyring_current(fresh)) {
                k->retired[k->n_retired++] = k->current;
                k->current = fresh;
                lf_watched_file_take(&k->current_file, &st);
                LF_INFO("keys", "keyring reloaded (%zu keys)", fresh->count);
                fresh = NULL;
            } else {
                LF_ERROR("keys", "keeping the loaded keyring: %s", rc ? err : "no current key");
                lf_keyring_free(fresh);
            }
        }
        lf_free(fresh);
    }
    const lf_keyring *kr = k->current;
    pthread_mutex_unlock(&k->mu);
    return kr;
}
