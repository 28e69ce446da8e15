/* 64-bit hash map (see u64map.h). */
#include "u64map.h"

#include <errno.h>
#include <string.h>

#include "lf_alloc.h"
#include "parse_hash.h"

void lf_u64map_init(lf_u64map *m)
{
    memset(m, 0, sizeof *m);
}

void lf_u64map_free(lf_u64map *m)
{
    lf_free(m->keys);
    lf_free(m->vals);
    memset(m, 0, sizeof *m);
}

static inline size_t slot_of(const lf_u64map *m, uint64_t key)
{
    return (size_t)lf_phash_mix(key) & (m->cap - 1);
}

bool lf_u64map_get(const lf_u64map *m, uint64_t key, uint64_t *val)
{
    if (!m->cap || key == 0)
        return false;
    for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            if (val)
                *val = m->vals[i];
            return true;
        }
        if (m->keys[i] == 0)
            return false;
    }
}

static int grow(lf_u64map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *k = lf_calloc(cap, sizeof *k), *v = lf_malloc(cap * sizeof *v);
    if (!k || !v) {
        lf_free(k);
        lf_free(v);
        return -ENOMEM;
    }
    lf_u64map old = *m;
    m->keys = k;
    m->vals = v;
    m->cap = cap;
    m->used = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i])
            (void)lf_u64map_put(m, old.keys[i], old.vals[i]); /* cannot grow again */
    lf_free(old.keys);
    lf_free(old.vals);
    return 0;
}

int lf_u64map_put(lf_u64map *m, uint64_t key, uint64_t val)
{
    if (key == 0)
        return -EINVAL;
    if ((m->used + 1) * 4 > m->cap * 3) {
        int rc = grow(m);
        if (rc < 0)
            return rc;
    }
    for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return 0;
        }
        if (m->keys[i] == 0) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->used++;
            return 0;
        }
    }
}

bool lf_u64map_del(lf_u64map *m, uint64_t key)
{
    if (!m->cap || key == 0)
        return false;
    size_t mask = m->cap - 1, i = slot_of(m, key);
    while (m->keys[i] != key) {
        if (m->keys[i] == 0)
            return false;
        i = (i + 1) & mask;
    }
    /* backward shift: move later entries of the probe run into the hole when their home allows */
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (m->keys[j] == 0)
            break;
        size_t home = slot_of(m, m->keys[j]);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
    m->used--;
    return true;
}

void lf_u64map_clear(lf_u64map *m)
{
    if (m->cap)
        memset(m->keys, 0, m->cap * sizeof *m->keys);
    m->used = 0;
}

size_t lf_u64map_bytes(const lf_u64map *m)
{
    return m->cap * 2 * sizeof(uint64_t);
}
