#include "lf_jskv.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "lf_log.h"

struct lf_jskv {
    lf_jetstream *js;
    kvStore *kv;
    char bucket[64];
};

bool lf_jskv_key_valid(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > LF_JSKV_KEY_MAX || key[0] == '.' || key[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '=' || c == '/' || (c == '.' && key[i + 1] != '.');
        if (!ok)
            return false;
    }
    return true;
}

static bool bucket_valid(const char *b)
{
    size_t n = strlen(b);
    if (n == 0 || n >= sizeof ((lf_jskv *)0)->bucket)
        return false;
    return strspn(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

int lf_jskv_open(lf_jetstream *js, const char *bucket, int replicas, lf_jskv **out, lf_buf *err)
{
    *out = NULL;
    if (!js || !bucket || !bucket_valid(bucket) || replicas < 1 || replicas > 5) {
        lf_buf_msgf(err, "key-value bucket: a valid name and 1..5 replicas are required");
        return -EINVAL;
    }
    lf_jskv *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    k->js = js;
    snprintf(k->bucket, sizeof k->bucket, "%s", bucket);
    jsCtx *ctx = lf_jetstream_ctx(js);
    natsStatus s = js_KeyValue(&k->kv, ctx, bucket);
    if (s == NATS_NOT_FOUND) {
        kvConfig c;
        kvConfig_Init(&c);
        c.Bucket = bucket;
        c.History = 1;
        c.StorageType = js_FileStorage;
        c.Replicas = replicas;
        c.MaxValueSize = LF_JSKV_VALUE_MAX;
        /* two processes creating it at once get the same bucket: the server accepts an identical
         * configuration again */
        s = js_CreateKeyValue(&k->kv, ctx, &c);
    }
    if (s != NATS_OK) {
        char what[128];
        snprintf(what, sizeof what, "key-value bucket %s", bucket);
        int rc = lf_jetstream_error(s, 0, what, err);
        free(k);
        return rc;
    }
    *out = k;
    return 0;
}

void lf_jskv_close(lf_jskv *kv)
{
    if (!kv)
        return;
    kvStore_Destroy(kv->kv);
    free(kv);
}

const char *lf_jskv_bucket(const lf_jskv *kv) { return kv->bucket; }

static int bad_key(const lf_jskv *kv, const char *key, lf_buf *err)
{
    lf_buf_msgf(err, "%s: not a valid key: \"%.*s\"", kv->bucket, LF_JSKV_KEY_MAX, key ? key : "");
    return -EINVAL;
}

static int op_error(const lf_jskv *kv, natsStatus s, const char *op, const char *key, lf_buf *err)
{
    char what[256];
    snprintf(what, sizeof what, "%s %s %s", kv->bucket, op, key);
    return lf_jetstream_error(s, 0, what, err);
}

int lf_jskv_get(lf_jskv *kv, const char *key, lf_buf *value, uint64_t *rev, lf_buf *err)
{
    if (!lf_jskv_key_valid(key))
        return bad_key(kv, key, err);
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, kv->kv, key);
    if (s == NATS_NOT_FOUND)
        return -ENOENT; /* absent or deleted: not an error worth a text */
    if (s != NATS_OK)
        return op_error(kv, s, "get", key, err);
    lf_buf_reset(value);
    int rc = lf_buf_append(value, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
    if (rc == 0 && rev)
        *rev = kvEntry_Revision(e);
    if (rc != 0)
        lf_buf_msgf(err, "%s get %s: the value does not fit", kv->bucket, key);
    kvEntry_Destroy(e);
    return rc;
}

int lf_jskv_put(lf_jskv *kv, const char *key, const void *value, size_t len, uint64_t *rev, lf_buf *err)
{
    if (!lf_jskv_key_valid(key))
        return bad_key(kv, key, err);
    if (len > LF_JSKV_VALUE_MAX) {
        lf_buf_msgf(err, "%s put %s: value larger than %d bytes", kv->bucket, key, LF_JSKV_VALUE_MAX);
        return LF_ELIMIT;
    }
    uint64_t r = 0;
    natsStatus s = kvStore_Put(&r, kv->kv, key, value, (int)len);
    if (s != NATS_OK)
        return op_error(kv, s, "put", key, err);
    if (rev)
        *rev = r;
    return 0;
}

/* A refused conditional write (create, update) comes back as NATS_ERR with JetStream's "wrong last
 * sequence" (error 10071) as the thread's last error; any other failure (a full stream, a timeout,
 * the connection) is not a refusal and must not be taken for "the key is there". */
static int conditional_error(lf_jskv *kv, natsStatus s, const char *op, const char *key, lf_buf *err)
{
    if (s == NATS_ERR) {
        natsStatus last = NATS_OK;
        const char *text = nats_GetLastError(&last);
        if (last == s && text && strstr(text, "wrong last sequence"))
            return -EEXIST;
    }
    return op_error(kv, s, op, key, err);
}

int lf_jskv_create(lf_jskv *kv, const char *key, const void *value, size_t len, uint64_t *rev, lf_buf *err)
{
    if (!lf_jskv_key_valid(key))
        return bad_key(kv, key, err);
    if (len > LF_JSKV_VALUE_MAX) {
        lf_buf_msgf(err, "%s create %s: value larger than %d bytes", kv->bucket, key, LF_JSKV_VALUE_MAX);
        return LF_ELIMIT;
    }
    uint64_t r = 0;
    natsStatus s = kvStore_Create(&r, kv->kv, key, value, (int)len);
    if (s != NATS_OK)
        return conditional_error(kv, s, "create", key, err);
    if (rev)
        *rev = r;
    return 0;
}

int lf_jskv_update(lf_jskv *kv, const char *key, const void *value, size_t len, uint64_t last, uint64_t *rev,
                   lf_buf *err)
{
    if (!lf_jskv_key_valid(key))
        return bad_key(kv, key, err);
    if (len > LF_JSKV_VALUE_MAX) {
        lf_buf_msgf(err, "%s update %s: value larger than %d bytes", kv->bucket, key, LF_JSKV_VALUE_MAX);
        return LF_ELIMIT;
    }
    uint64_t r = 0;
    natsStatus s = kvStore_Update(&r, kv->kv, key, value, (int)len, last);
    if (s != NATS_OK)
        return conditional_error(kv, s, "update", key, err);
    if (rev)
        *rev = r;
    return 0;
}

int lf_jskv_delete(lf_jskv *kv, const char *key, lf_buf *err)
{
    if (!lf_jskv_key_valid(key))
        return bad_key(kv, key, err);
    natsStatus s = kvStore_Delete(kv->kv, key);
    return s == NATS_OK ? 0 : op_error(kv, s, "delete", key, err);
}

/* ---- a copy of the whole bucket ---- */

typedef struct kv_item {
    char *key;
    void *value;
    size_t len;
} kv_item;

typedef struct kv_map {
    kv_item *items;
    size_t n, cap;
} kv_map;

static void map_free(kv_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->items[i].key);
        free(m->items[i].value);
    }
    free(m->items);
    memset(m, 0, sizeof *m);
}

static kv_item *map_find(kv_map *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].key, key) == 0)
            return &m->items[i];
    return NULL;
}

static void map_remove(kv_map *m, const char *key)
{
    kv_item *it = map_find(m, key);
    if (!it)
        return;
    free(it->key);
    free(it->value);
    *it = m->items[--m->n];
}

static int map_set(kv_map *m, const char *key, const void *value, size_t len)
{
    void *v = malloc(len + 1);
    if (!v)
        return -ENOMEM;
    memcpy(v, value, len);
    ((char *)v)[len] = '\0';
    kv_item *it = map_find(m, key);
    if (it) {
        free(it->value);
        it->value = v;
        it->len = len;
        return 0;
    }
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        kv_item *ni = realloc(m->items, ncap * sizeof *ni);
        if (!ni) {
            free(v);
            return -ENOMEM;
        }
        m->items = ni;
        m->cap = ncap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return -ENOMEM;
    }
    m->items[m->n++] = (kv_item){k, v, len};
    return 0;
}

/* Applies one watch entry (a put sets, a delete or purge removes). */
static int map_apply(kv_map *m, kvEntry *e)
{
    if (kvEntry_Operation(e) == kvOp_Put)
        return map_set(m, kvEntry_Key(e), kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
    map_remove(m, kvEntry_Key(e));
    return 0;
}

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const kv_item *)a)->key, ((const kv_item *)b)->key);
}

/* Reads the bucket's current values into m through a watch (ends at its "initial values done"). */
static int read_all(lf_jskv *kv, kv_map *m, int64_t timeout_ms, lf_buf *err)
{
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    wo.IgnoreDeletes = true;
    kvWatcher *w = NULL;
    natsStatus s = kvStore_WatchAll(&w, kv->kv, &wo);
    if (s != NATS_OK)
        return op_error(kv, s, "watch", "(all keys)", err);
    int rc = 0;
    for (;;) {
        kvEntry *e = NULL;
        s = kvWatcher_Next(&e, w, timeout_ms);
        if (s != NATS_OK) {
            rc = op_error(kv, s, "reading", "(all keys)", err);
            break;
        }
        if (!e)
            break; /* the initial values are all in */
        rc = map_apply(m, e);
        kvEntry_Destroy(e);
        if (rc != 0)
            break;
    }
    kvWatcher_Destroy(w);
    return rc;
}

int lf_jskv_each(lf_jskv *kv, int (*fn)(void *arg, const char *key, const void *value, size_t len), void *arg,
                 lf_buf *err)
{
    kv_map m = {0};
    int rc = read_all(kv, &m, lf_jetstream_timeout_ms(kv->js), err);
    if (rc == 0 && m.n)
        qsort(m.items, m.n, sizeof *m.items, cmp_item);
    for (size_t i = 0; rc == 0 && i < m.n; i++)
        rc = fn(arg, m.items[i].key, m.items[i].value, m.items[i].len);
    map_free(&m);
    return rc;
}

/* ---- the mirror ---- */

/* The watch's own JetStream context waits this long for an API answer: ending a watch asks the
 * server to delete its consumer, and while the server is away that request waits its whole timeout,
 * which a receiver's stop must not (the server drops the idle consumer by itself). */
#define MIRROR_API_WAIT_MS 1000

struct lf_jskv_mirror {
    lf_jskv *kv;
    jsCtx *ctx;   /* with MIRROR_API_WAIT_MS */
    kvStore *wkv; /* the bucket through ctx, for the watch */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t ready_cond;
    kv_map map;          /* under lock */
    uint64_t generation; /* under lock */
    bool ready, stop;    /* under lock */
    int start_rc;        /* the first watch's failure, under lock */
    char start_err[256];
};

static void mirror_bump(lf_jskv_mirror *m) { m->generation++; }

static bool mirror_stopping(lf_jskv_mirror *m)
{
    pthread_mutex_lock(&m->lock);
    bool s = m->stop;
    pthread_mutex_unlock(&m->lock);
    return s;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *mirror_main(void *arg)
{
    lf_jskv_mirror *m = arg;
    lf_jskv *kv = m->kv;
    kvWatcher *w = NULL;
    kv_map building = {0}; /* a new watch's initial values, swapped in whole once complete */
    bool initial = false, lost = false, was_ready = false;
    while (!mirror_stopping(m)) {
        if (!w) {
            if (!lf_jetstream_connected(kv->js)) {
                nap_ms(250);
                continue;
            }
            natsStatus s = kvStore_WatchAll(&w, m->wkv, NULL);
            if (s != NATS_OK) {
                lf_buf err = LF_BUF_INIT(256);
                int rc = op_error(kv, s, "watch", "(all keys)", &err);
                pthread_mutex_lock(&m->lock);
                if (!m->ready && !m->start_rc) {
                    m->start_rc = rc;
                    snprintf(m->start_err, sizeof m->start_err, "%s", lf_buf_cstr(&err));
                    pthread_cond_broadcast(&m->ready_cond);
                }
                pthread_mutex_unlock(&m->lock);
                if (was_ready)
                    LF_WARN("jskv", "%s: cannot watch (retried): %s", kv->bucket, lf_buf_cstr(&err));
                lf_buf_free(&err);
                w = NULL;
                nap_ms(500);
                continue;
            }
            map_free(&building);
            initial = true;
        }
        kvEntry *e = NULL;
        natsStatus s = kvWatcher_Next(&e, w, 500);
        if (s == NATS_TIMEOUT) {
            if (!lf_jetstream_connected(kv->js) && !lost) {
                lost = true;
                pthread_mutex_lock(&m->lock);
                size_t n = m->map.n;
                pthread_mutex_unlock(&m->lock);
                LF_WARN("jskv", "%s: JetStream unreachable: keeping the last known %zu entries until it is back",
                        kv->bucket, n);
            } else if (lost && lf_jetstream_connected(kv->js)) {
                /* updates made while away may be missed by this watch: read the bucket afresh */
                kvWatcher_Destroy(w);
                w = NULL;
                lost = false;
                LF_INFO("jskv", "%s: JetStream is back: reading the bucket again", kv->bucket);
            }
            continue;
        }
        if (s != NATS_OK) {
            LF_WARN("jskv", "%s: watch ended (%s): watching again", kv->bucket, natsStatus_GetText(s));
            kvWatcher_Destroy(w);
            w = NULL;
            nap_ms(250);
            continue;
        }
        int rc = 0;
        if (!e) { /* the initial values are all in: they replace the copy */
            pthread_mutex_lock(&m->lock);
            map_free(&m->map);
            m->map = building;
            memset(&building, 0, sizeof building);
            mirror_bump(m);
            m->ready = true;
            pthread_cond_broadcast(&m->ready_cond);
            pthread_mutex_unlock(&m->lock);
            initial = false;
            was_ready = true;
            continue;
        }
        if (initial) {
            rc = map_apply(&building, e);
        } else {
            pthread_mutex_lock(&m->lock);
            rc = map_apply(&m->map, e);
            mirror_bump(m);
            pthread_mutex_unlock(&m->lock);
        }
        kvEntry_Destroy(e);
        if (rc != 0) {
            /* out of memory: a copy missing an update must not stay; read it all again */
            LF_ERROR("jskv", "%s: %s applying an update: reading the bucket again", kv->bucket, strerror(-rc));
            kvWatcher_Destroy(w);
            w = NULL;
            nap_ms(250);
        }
    }
    kvWatcher_Destroy(w);
    map_free(&building);
    return NULL;
}

int lf_jskv_mirror_start(lf_jskv *kv, int64_t timeout_ms, lf_jskv_mirror **out, lf_buf *err)
{
    *out = NULL;
    lf_jskv_mirror *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->kv = kv;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = MIRROR_API_WAIT_MS;
    natsStatus s = natsConnection_JetStream(&m->ctx, lf_jetstream_nats(kv->js), &jo);
    if (s == NATS_OK)
        s = js_KeyValue(&m->wkv, m->ctx, kv->bucket);
    if (s != NATS_OK) {
        int rc = op_error(kv, s, "watch", "(all keys)", err);
        jsCtx_Destroy(m->ctx);
        free(m);
        return rc;
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->ready_cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = -pthread_create(&m->thread, NULL, mirror_main, m);
    if (rc != 0) {
        lf_buf_msgf(err, "%s: cannot start the watch thread", kv->bucket);
        pthread_cond_destroy(&m->ready_cond);
        pthread_mutex_destroy(&m->lock);
        kvStore_Destroy(m->wkv);
        jsCtx_Destroy(m->ctx);
        free(m);
        return rc;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->lock);
    while (!m->ready && !m->start_rc)
        if (pthread_cond_timedwait(&m->ready_cond, &m->lock, &until) == ETIMEDOUT)
            break;
    if (!m->ready) {
        rc = m->start_rc ? m->start_rc : -ETIMEDOUT;
        if (m->start_rc)
            lf_buf_msgf(err, "%s", m->start_err);
        else
            lf_buf_msgf(err, "%s: the bucket's values did not arrive within %lld ms", kv->bucket,
                        (long long)timeout_ms);
    }
    pthread_mutex_unlock(&m->lock);
    if (rc != 0) {
        lf_jskv_mirror_stop(m);
        return rc;
    }
    *out = m;
    return 0;
}

void lf_jskv_mirror_stop(lf_jskv_mirror *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stop = true;
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL); /* its waits are 500 ms, and MIRROR_API_WAIT_MS to end the watch */
    map_free(&m->map);
    kvStore_Destroy(m->wkv);
    jsCtx_Destroy(m->ctx);
    pthread_cond_destroy(&m->ready_cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

uint64_t lf_jskv_mirror_generation(lf_jskv_mirror *m)
{
    pthread_mutex_lock(&m->lock);
    uint64_t g = m->generation;
    pthread_mutex_unlock(&m->lock);
    return g;
}

int lf_jskv_mirror_each(lf_jskv_mirror *m, uint64_t *gen,
                        int (*fn)(void *arg, const char *key, const void *value, size_t len), void *arg)
{
    pthread_mutex_lock(&m->lock);
    if (gen)
        *gen = m->generation;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < m->map.n; i++)
        rc = fn(arg, m->map.items[i].key, m->map.items[i].value, m->map.items[i].len);
    pthread_mutex_unlock(&m->lock);
    return rc;
}
