/* A hash map from non-zero 64-bit keys to 64-bit values (open addressing, linear probing, deletion
 * by backward shift), for the miner's indexes. Keys should already be well mixed (hashes, ids). */
#ifndef LF_U64MAP_H
#define LF_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lf_u64map {
    uint64_t *keys; /* 0: empty */
    uint64_t *vals;
    size_t cap, used; /* cap is a power of two */
} lf_u64map;

void lf_u64map_init(lf_u64map *m);
void lf_u64map_free(lf_u64map *m);
/* The value of key, or false when absent. */
bool lf_u64map_get(const lf_u64map *m, uint64_t key, uint64_t *val);
/* Sets key (non-zero) to val. 0 or -ENOMEM. */
int lf_u64map_put(lf_u64map *m, uint64_t key, uint64_t val);
/* Removes key; true when it was there. */
bool lf_u64map_del(lf_u64map *m, uint64_t key);
void lf_u64map_clear(lf_u64map *m);
size_t lf_u64map_bytes(const lf_u64map *m);

#endif
