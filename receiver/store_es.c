/* Elasticsearch session store (see store.h): the encrypted object, base64 in a non-indexed binary
 * field, as ordered chunk documents <id>-<n> written with op_type=create. Chunk 0 is written last, so
 * its presence marks a complete object: scan() lists chunk-0 documents only, and a crash mid-put
 * leaves chunks that no location points to. The location is "<id>/<chunks>".
 *
 * Each call uses its own blocking HTTP client (calls come from several worker threads at once and a
 * blocking client is single-threaded); puts of one id are serialised by a striped lock so that the
 * leftovers of an unfinished put can be replaced safely. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_buf.h"
#include "lf_error.h"
#include "lf_es.h"
#include "lf_fileio.h"
#include "lf_http_client.h"
#include "lf_log.h"
#include "lf_manifest.h"
#include "lf_secretstream.h"

#define ES_LOCKS 64
#define ES_SCAN_PAGE 500
/* A search page of ES_SCAN_PAGE hits of session_id and chunks is about 100 KB; the answer may hold
 * more than that (shards, took...), never this much. */
#define ES_SCAN_RESPONSE_MAX (16u << 20)
/* Above a user template's default 0 and the built-in ones' 100: ours applies to our index. */
#define ES_TEMPLATE_PRIORITY 300

typedef struct es_store {
    lf_store base;
    lf_es_conn conn; /* url (without a trailing slash), credentials, CA */
    char *index;
    size_t chunk_size;
    pthread_mutex_t locks[ES_LOCKS];
} es_store;

static const char *const json_headers[] = {"Content-Type: application/json", NULL};

static int es_client(es_store *es, lf_http_client **c)
{
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    lf_es_conn_client_opts(&es->conn, &o);
    o.proxy = "";
    o.timeout_ms = 120000;
    o.deadline_ms = 300000;
    return lf_http_client_new(NULL, &o, c);
}

/* One request (max_response 0: a chunk document's size). rc < 0 when no answer arrived. */
static int es_request_max(es_store *es, lf_http_client *c, const char *method, const char *path, const void *body,
                          size_t len, size_t max_response, lf_http_response *resp)
{
    char url[1024];
    if ((size_t)snprintf(url, sizeof url, "%s%s", es->conn.url, path) >= sizeof url)
        return -ENAMETOOLONG;
    lf_http_client_request req = {.method = method, .url = url, .body = body, .body_len = len,
                                  .headers = body ? json_headers : NULL,
                                  .max_response = max_response ? max_response : es->chunk_size / 3 * 4 + 65536};
    return lf_http_client_fetch(c, &req, resp);
}

static int es_request(es_store *es, lf_http_client *c, const char *method, const char *path, const void *body,
                      size_t len, lf_http_response *resp)
{
    return es_request_max(es, c, method, path, body, len, 0, resp);
}

/* The error for a refused request: -EAGAIN when the same request will succeed later (429, 5xx;
 * the upload is answered 503 with Retry-After), LF_ECONFIG when someone must act first, logged
 * with what to fix. */
static int refused(const char *what, const char *path, const lf_http_response *r)
{
    char type[64], why[256];
    lf_es_error_of(r->body.data, r->body.len, type, sizeof type, why, sizeof why);
    if (lf_es_classify(r->status, type, why) == LF_ES_RETRY) {
        LF_WARN("store_es", "%s %s: HTTP %d %s (will be retried)", what, path, r->status, type);
        return -EAGAIN;
    }
    LF_ERROR("store_es", "%s %s: HTTP %d %s: %.200s (%s)", what, path, r->status, type, why,
             lf_es_hold_hint(r->status, type));
    return LF_ECONFIG;
}

static unsigned lock_of(const char *id)
{
    unsigned h = 2166136261u;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % ES_LOCKS;
}

static bool valid_id(const char *id)
{
    if (strlen(id) != LF_SESSION_ID_LEN)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
              *p == '-'))
            return false;
    return true;
}

/* GET of chunk n: its decoded source object (caller decrefs), NULL with *rc set otherwise (-ENOENT
 * when missing). */
static json_t *get_chunk(es_store *es, lf_http_client *c, const char *id, unsigned n, int *rc)
{
    char path[256];
    snprintf(path, sizeof path, "/%s/_doc/%s-%u", es->index, id, n);
    lf_http_response r;
    *rc = es_request(es, c, "GET", path, NULL, 0, &r);
    json_t *src = NULL;
    if (*rc == 0) {
        char type[64];
        if (r.status == 404)
            lf_es_error_of(r.body.data, r.body.len, type, sizeof type, NULL, 0);
        if (r.status == 404 && !type[0]) { /* the document is missing; a missing index is an error type */
            *rc = -ENOENT;
        } else if (r.status != 200) {
            *rc = refused("GET", path, &r);
        } else {
            json_t *doc = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
            json_t *s = doc ? json_object_get(doc, "_source") : NULL;
            if (json_is_object(s))
                src = json_incref(s);
            else
                *rc = -EPROTO;
            json_decref(doc);
        }
    }
    lf_http_response_free(&r);
    return src;
}

/* true when chunk 0 of id is not stored (the object was never completed); false with *rc == 0 when
 * it is, false with *rc < 0 when that cannot be known. */
static bool chunk0_absent(es_store *es, lf_http_client *c, const char *id, int *rc)
{
    json_t *doc = get_chunk(es, c, id, 0, rc);
    if (doc) {
        json_decref(doc);
        return false;
    }
    if (*rc == -ENOENT) {
        *rc = 0;
        return true;
    }
    return false;
}

/* Writes one chunk with op_type=create. A 409 is accepted when the stored chunk holds the same data
 * (a retried request whose first answer was lost); with other data it is replaced only when
 * replace_partial (chunk n > 0 of an unfinished earlier put: chunk 0 is absent), else -EEXIST. */
static int put_chunk(es_store *es, lf_http_client *c, const char *id, unsigned n, unsigned chunks,
                     uint64_t size, uint64_t received_ms, const char *b64, bool replace_partial)
{
    lf_buf body = LF_BUF_INIT((size_t)-1);
    int rc = lf_buf_appendf(&body,
                            "{\"session_id\":\"%s\",\"chunk\":%u,\"chunks\":%u,\"size\":%" PRIu64
                            ",\"created_at\":%" PRIu64 ",\"data\":\"",
                            id, n, chunks, size, received_ms);
    if (rc == 0 && (rc = lf_buf_append_str(&body, b64)) == 0)
        rc = lf_buf_append_str(&body, "\"}");
    if (rc != 0) {
        lf_buf_free(&body);
        return rc;
    }
    char path[256];
    snprintf(path, sizeof path, "/%s/_create/%s-%u", es->index, id, n);
    lf_http_response r;
    rc = es_request(es, c, "PUT", path, body.data, body.len, &r);
    int status = r.status;
    if (rc == 0 && status != 201 && status != 409)
        rc = refused("PUT", path, &r);
    lf_http_response_free(&r);
    if (rc == 0 && status == 409) {
        json_t *old = get_chunk(es, c, id, n, &rc);
        if (old) {
            const char *d = json_string_value(json_object_get(old, "data"));
            bool same = d && strcmp(d, b64) == 0 &&
                        json_integer_value(json_object_get(old, "chunks")) == (json_int_t)chunks;
            json_decref(old);
            if (same) {
                rc = 0;
            } else if (replace_partial && chunk0_absent(es, c, id, &rc)) {
                snprintf(path, sizeof path, "/%s/_doc/%s-%u", es->index, id, n);
                rc = es_request(es, c, "PUT", path, body.data, body.len, &r);
                status = r.status;
                if (rc == 0 && status != 200 && status != 201)
                    rc = refused("PUT", path, &r);
                lf_http_response_free(&r);
                if (rc == 0)
                    LF_INFO("store_es", "replaced chunk %u of an unfinished store of %s", n, id);
            } else if (rc == 0) {
                rc = -EEXIST;
            }
        }
    }
    lf_buf_free(&body);
    return rc;
}

static int es_put(lf_store *s, const char *id, const lf_key *key, const lf_store_src *src, uint64_t received_ms,
                  char *location, size_t locsz, uint64_t *stored_size)
{
    es_store *es = (es_store *)s;
    if (!valid_id(id))
        return -EINVAL;
    int fd = memfd_create("lf-store-es", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint64_t out = 0;
    int rc;
    if (src->fd >= 0)
        rc = lseek(src->fd, 0, SEEK_SET) < 0 ? -errno : lf_secretstream_encrypt_fd(key, src->fd, fd, 0, &out);
    else
        rc = lf_secretstream_encrypt_mem_fd(key, src->data, (size_t)src->len, fd, 0, &out);
    unsigned chunks = (unsigned)((out + es->chunk_size - 1) / es->chunk_size);
    if (chunks == 0)
        chunks = 1;
    uint8_t *raw = NULL;
    char *b64 = NULL;
    lf_http_client *c = NULL;
    size_t b64max = sodium_base64_ENCODED_LEN(es->chunk_size, sodium_base64_VARIANT_ORIGINAL);
    if (rc == 0 && (!(raw = lf_malloc(es->chunk_size)) || !(b64 = lf_malloc(b64max))))
        rc = -ENOMEM;
    if (rc == 0)
        rc = es_client(es, &c);
    pthread_mutex_t *lock = &es->locks[lock_of(id)];
    pthread_mutex_lock(lock);
    /* chunks 1..n-1 first, chunk 0 last: chunk 0 marks a complete object */
    for (unsigned i = 1; rc == 0 && i <= chunks; i++) {
        unsigned n = i % chunks;
        uint64_t off = (uint64_t)n * es->chunk_size;
        size_t len = (size_t)(out - off < es->chunk_size ? out - off : es->chunk_size);
        ssize_t got = pread(fd, raw, len, (off_t)off);
        if (got != (ssize_t)len) {
            rc = got < 0 ? -errno : -EIO;
            break;
        }
        sodium_bin2base64(b64, b64max, raw, len, sodium_base64_VARIANT_ORIGINAL);
        rc = put_chunk(es, c, id, n, chunks, out, received_ms, b64, n != 0);
    }
    pthread_mutex_unlock(lock);
    if (c)
        lf_http_client_close(c, NULL, NULL);
    lf_free(raw);
    lf_free(b64);
    close(fd);
    if (rc != 0)
        return rc;
    snprintf(location, locsz, "%s/%u", id, chunks);
    *stored_size = out;
    return 0;
}

static int parse_location(const char *location, char id[LF_SESSION_ID_LEN + 1], unsigned *chunks)
{
    const char *slash = strchr(location, '/');
    if (!slash || (size_t)(slash - location) != LF_SESSION_ID_LEN)
        return -EINVAL;
    memcpy(id, location, LF_SESSION_ID_LEN);
    id[LF_SESSION_ID_LEN] = '\0';
    char *end;
    errno = 0;
    unsigned long n = strtoul(slash + 1, &end, 10);
    if (!valid_id(id) || errno || *end || end == slash + 1 || n == 0 || n > 1000000)
        return -EINVAL;
    *chunks = (unsigned)n;
    return 0;
}

static int es_open(lf_store *s, const char *location, int *fdp, uint64_t *size)
{
    es_store *es = (es_store *)s;
    char id[LF_SESSION_ID_LEN + 1];
    unsigned chunks;
    int rc = parse_location(location, id, &chunks);
    if (rc != 0)
        return rc;
    int fd = memfd_create("lf-store-es", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    lf_http_client *c = NULL;
    rc = es_client(es, &c);
    uint8_t *raw = lf_malloc(es->chunk_size + 3);
    if (rc == 0 && !raw)
        rc = -ENOMEM;
    uint64_t total = 0, want = 0;
    for (unsigned n = 0; rc == 0 && n < chunks; n++) {
        json_t *doc = get_chunk(es, c, id, n, &rc);
        if (!doc)
            break;
        const char *sid = json_string_value(json_object_get(doc, "session_id"));
        const char *d = json_string_value(json_object_get(doc, "data"));
        size_t len = 0;
        if (!sid || strcmp(sid, id) != 0 || !d ||
            json_integer_value(json_object_get(doc, "chunk")) != (json_int_t)n ||
            json_integer_value(json_object_get(doc, "chunks")) != (json_int_t)chunks ||
            sodium_base642bin(raw, es->chunk_size + 3, d, strlen(d), NULL, &len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0)
            rc = -EPROTO;
        else
            want = (uint64_t)json_integer_value(json_object_get(doc, "size"));
        json_decref(doc);
        if (rc == 0)
            rc = lf_write_all(fd, raw, len);
        total += len;
    }
    if (rc == 0 && total != want) {
        LF_ERROR("store_es", "session %s: %" PRIu64 " bytes in its chunks, %" PRIu64 " expected", id, total, want);
        rc = -EPROTO;
    }
    if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
        rc = -errno;
    lf_free(raw);
    if (c)
        lf_http_client_close(c, NULL, NULL);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *fdp = fd;
    *size = total;
    return 0;
}

/* Lists chunk-0 documents (complete objects) by session_id with search_after, after a refresh so
 * that everything acknowledged is searchable. */
static int es_scan(lf_store *s, int (*fn)(void *arg, const char *id, const char *location), void *arg)
{
    es_store *es = (es_store *)s;
    lf_http_client *c = NULL;
    int rc = es_client(es, &c);
    if (rc != 0)
        return rc;
    char path[256], after[LF_SESSION_ID_LEN + 1] = "";
    lf_http_response r;
    snprintf(path, sizeof path, "/%s/_refresh", es->index);
    rc = es_request_max(es, c, "POST", path, NULL, 0, ES_SCAN_RESPONSE_MAX, &r);
    int status = r.status;
    if (rc == 0 && status == 404) { /* nothing stored yet */
        lf_http_response_free(&r);
        lf_http_client_close(c, NULL, NULL);
        return 0;
    }
    if (rc == 0 && status != 200)
        rc = refused("POST", path, &r);
    lf_http_response_free(&r);
    snprintf(path, sizeof path, "/%s/_search", es->index);
    for (unsigned pages = 0; rc == 0 && pages < 10000000; pages++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"size\":%d,\"query\":{\"term\":{\"chunk\":0}},\"sort\":[{\"session_id\":\"asc\"}],"
                 "\"_source\":[\"session_id\",\"chunks\"]%s%s%s}",
                 ES_SCAN_PAGE, after[0] ? ",\"search_after\":[\"" : "", after, after[0] ? "\"]" : "");
        if ((rc = es_request_max(es, c, "POST", path, body, strlen(body), ES_SCAN_RESPONSE_MAX, &r)) == 0 &&
            r.status != 200)
            rc = refused("POST", path, &r);
        json_t *doc = rc == 0 ? json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL) : NULL;
        lf_http_response_free(&r);
        if (rc != 0)
            break;
        json_t *hits = json_object_get(json_object_get(doc, "hits"), "hits");
        if (!json_is_array(hits)) {
            json_decref(doc);
            rc = -EPROTO;
            break;
        }
        size_t i, n = json_array_size(hits);
        json_t *h;
        json_array_foreach(hits, i, h)
        {
            json_t *src = json_object_get(h, "_source");
            const char *id = json_string_value(json_object_get(src, "session_id"));
            json_int_t chunks = json_integer_value(json_object_get(src, "chunks"));
            if (!id || !valid_id(id) || chunks < 1) {
                LF_WARN("store_es", "skipping a malformed chunk document %s",
                        json_string_value(json_object_get(h, "_id")) ? json_string_value(json_object_get(h, "_id")) : "?");
                continue;
            }
            snprintf(after, sizeof after, "%s", id);
            char loc[64];
            snprintf(loc, sizeof loc, "%s/%lld", id, (long long)chunks);
            if ((rc = fn(arg, id, loc)) != 0)
                break;
        }
        json_decref(doc);
        if (n < ES_SCAN_PAGE)
            break;
    }
    lf_http_client_close(c, NULL, NULL);
    return rc;
}

static void es_close(lf_store *s)
{
    es_store *es = (es_store *)s;
    for (int i = 0; i < ES_LOCKS; i++)
        pthread_mutex_destroy(&es->locks[i]);
    lf_es_conn_free(&es->conn);
    lf_free(es->index);
    lf_free(es);
}

static const lf_store_ops es_ops = {"elasticsearch", es_put, es_open, es_scan, es_close};

static int install_template(es_store *es, char *err, size_t errsz)
{
    char body[1024], path[256];
    snprintf(body, sizeof body,
             "{\"index_patterns\":[\"%s\"],\"priority\":%d,\"template\":{\"mappings\":{\"dynamic\":\"strict\",\"properties\":{"
             "\"session_id\":{\"type\":\"keyword\"},\"chunk\":{\"type\":\"integer\"},"
             "\"chunks\":{\"type\":\"integer\"},\"size\":{\"type\":\"long\"},"
             "\"created_at\":{\"type\":\"date\",\"format\":\"epoch_millis\"},"
             "\"data\":{\"type\":\"binary\",\"doc_values\":false}}}}}",
             es->index, ES_TEMPLATE_PRIORITY);
    snprintf(path, sizeof path, "/_index_template/%s", es->index);
    lf_http_client *c;
    int rc = es_client(es, &c);
    if (rc != 0)
        return rc;
    lf_http_response r;
    rc = es_request(es, c, "PUT", path, body, strlen(body), &r);
    if (rc != 0) {
        snprintf(err, errsz, "Elasticsearch at %s: %s", es->conn.url, lf_strerror(rc));
    } else if (r.status != 200) {
        char type[64], why[256];
        lf_es_error_of(r.body.data, r.body.len, type, sizeof type, why, sizeof why);
        snprintf(err, errsz, "installing the index template %s: HTTP %d %s: %.200s (%s)", path, r.status, type, why,
                 lf_es_hold_hint(r.status, type));
        rc = r.status == 401 || r.status == 403 ? LF_EAUTH : -EIO;
    }
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
    return rc;
}

int lf_store_es_open(const char *url, const lf_es_auth *auth, const char *index, uint64_t chunk_size,
                     lf_store **out, char *err, size_t errsz)
{
    lf_buf why = LF_BUF_INIT(512);
    if (!index || lf_es_index_name_validate(&index, &why) != 0 || chunk_size < 1024 ||
        chunk_size > LF_STORE_ES_CHUNK_MAX) {
        snprintf(err, errsz, "store.es_index %s; store.es_chunk_size must be 1K to 16M",
                 why.len ? lf_buf_cstr(&why) : "is required");
        lf_buf_free(&why);
        return LF_ECONFIG;
    }
    es_store *es = lf_calloc(1, sizeof *es);
    if (!es) {
        lf_buf_free(&why);
        return -ENOMEM;
    }
    es->base.ops = &es_ops;
    es->chunk_size = (size_t)chunk_size;
    for (int i = 0; i < ES_LOCKS; i++)
        pthread_mutex_init(&es->locks[i], NULL);
    int rc = lf_es_conn_init(&es->conn, url, auth, &why);
    if (rc != 0)
        snprintf(err, errsz, "store: %s", rc == -ENOMEM ? "out of memory" : lf_buf_cstr(&why));
    lf_buf_free(&why);
    es->index = rc == 0 ? lf_strdup(index) : NULL;
    if (rc == 0 && !es->index)
        rc = -ENOMEM;
    if (rc != 0) {
        es_close(&es->base);
        return rc;
    }
    rc = install_template(es, err, errsz);
    if (rc != 0) {
        es_close(&es->base);
        return rc;
    }
    *out = &es->base;
    return 0;
}
