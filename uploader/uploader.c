/* The uploader engine: outbox bookkeeping and uploads (see uploader.h; scanning and packing are in
 * uploader_pack.c). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_fileio.h"
#include "lf_log.h"
#include "uploader_int.h"

#define PATH_MAXLEN 4096

void lf_uploader_count(lf_uploader *u, uint64_t *stat, lf_counter *c)
{
    (*stat)++;
    if (c)
        lf_counter_inc(c);
}

int lf_uploader_queue_push(lf_uploader *u, const char *id)
{
    if (u->qlen == u->qcap) {
        size_t ncap = u->qcap ? u->qcap * 2 : 64;
        lf_sid *nq = lf_malloc(ncap * sizeof *nq);
        if (!nq)
            return -ENOMEM;
        for (size_t i = 0; i < u->qlen; i++)
            memcpy(nq[i], u->queue[(u->qhead + i) % u->qcap], sizeof(lf_sid));
        lf_free(u->queue);
        u->queue = nq;
        u->qcap = ncap;
        u->qhead = 0;
    }
    snprintf(u->queue[(u->qhead + u->qlen) % u->qcap], sizeof(lf_sid), "%s", id);
    u->qlen++;
    return 0;
}

/* The outbox directory is the durable list of what waits: rebuild the queue and the byte count
 * from it, and make the registry agree (a crash may come between the rename and the row). */
static int load_outbox(lf_uploader *u)
{
    DIR *d = opendir(u->cfg->outbox_dir);
    if (!d)
        return -errno;
    struct dirent *e;
    int rc = lf_ureg_begin(u->reg);
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n != LF_SESSION_ID_LEN + 4 || strcmp(e->d_name + LF_SESSION_ID_LEN, ".zip") != 0 ||
            !lf_session_id_valid(e->d_name, LF_SESSION_ID_LEN))
            continue;
        char id[LF_SESSION_ID_LEN + 1], path[PATH_MAXLEN], state[16];
        memcpy(id, e->d_name, LF_SESSION_ID_LEN);
        id[LF_SESSION_ID_LEN] = '\0';
        snprintf(path, sizeof path, "%s/%s", u->cfg->outbox_dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        int have = lf_ureg_session_state(u->reg, id, state);
        if (have < 0) {
            rc = have;
            break;
        }
        if (have == 1 && strcmp(state, LF_US_SHIPPED) == 0) {
            unlink(path); /* shipped, then crashed before removing it */
            continue;
        }
        if (have == 0 || strcmp(state, LF_US_OUTBOX) != 0)
            rc = lf_ureg_session_put(u->reg, id, NULL, NULL, st.st_size, LF_US_OUTBOX, NULL);
        u->outbox_bytes += (uint64_t)st.st_size;
        if (rc == 0)
            rc = lf_uploader_queue_push(u, id);
    }
    closedir(d);
    int crc = lf_ureg_commit(u->reg);
    return rc < 0 ? rc : crc;
}

static int compile(const char *re, pcre2_code **out)
{
    *out = NULL;
    if (!re || !*re)
        return 0;
    int ec;
    PCRE2_SIZE off;
    *out = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
    return *out ? 0 : LF_ECONFIG;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = lf_malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", a, b);
    return s;
}

int lf_uploader_open(const struct lf_uploader_config *cfg, uv_loop_t *loop, lf_metrics *metrics,
                     lf_uploader **out)
{
    if (!cfg->site) {
        LF_ERROR("uploader", "[uploader] site is not set");
        return LF_ECONFIG;
    }
    lf_uploader *u = lf_calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->cfg = cfg;
    u->loop = loop;
    u->scan_gen = (int64_t)time(NULL) * 1000;
    gethostname(u->host, sizeof u->host - 1);
    int rc = 0;
    u->tmp_dir = join(cfg->outbox_dir, ".tmp");
    u->failed_dir = join(cfg->outbox_dir, "failed");
    char *db = join(cfg->state_dir, "registry.db");
    if (!u->tmp_dir || !u->failed_dir || !db) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = lf_mkdir_p(cfg->state_dir, 0700)) < 0 || (rc = lf_mkdir_p(u->tmp_dir, 0700)) < 0 ||
        (rc = lf_mkdir_p(u->failed_dir, 0700)) < 0) {
        LF_ERROR("uploader", "cannot create state or outbox directories: %s", lf_strerror(rc));
        goto fail;
    }
    if ((rc = lf_ureg_open(db, &u->reg)) < 0)
        goto fail;
    u->watches = lf_calloc(cfg->n_watches ? cfg->n_watches : 1, sizeof *u->watches);
    if (!u->watches) {
        rc = -ENOMEM;
        goto fail;
    }
    u->n_watches = cfg->n_watches;
    for (size_t i = 0; i < cfg->n_watches; i++) {
        struct watch_rt *wr = &u->watches[i];
        wr->w = &cfg->watches[i];
        if ((rc = compile(wr->w->filename_regex, &wr->name_re)) < 0 ||
            (rc = compile(wr->w->end_line, &wr->end_re)) < 0 ||
            (rc = compile(wr->w->rotated_suffix, &wr->rot_re)) < 0)
            goto fail;
    }
    /* Leftover snapshots of a crash mid-pack are incomplete: remove them. */
    DIR *d = opendir(u->tmp_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    if ((rc = load_outbox(u)) < 0) {
        LF_ERROR("uploader", "outbox %s: %s", cfg->outbox_dir, lf_strerror(rc));
        goto fail;
    }
    if (loop) {
        char kerr[256] = "";
        if ((rc = lf_sign_sk_load(cfg->key_file, u->sk, kerr, sizeof kerr)) < 0) {
            LF_ERROR("uploader", "key %s: %s", cfg->key_file, kerr);
            goto fail;
        }
        u->have_key = true;
        lf_uhttp_opts o = {.proxy = cfg->proxy, .ca_file = cfg->ca_file, .timeout_ms = (long)cfg->upload_timeout_ms,
                           .max_send_speed = (int64_t)cfg->max_send_speed,
                           .max_connections = (long)cfg->concurrency};
        if ((rc = lf_uhttp_new(loop, &o, metrics, &u->http)) < 0)
            goto fail;
    }
    if (metrics) {
        u->m.packed = lf_metrics_counter(metrics, "lf_uploader_packed_total",
                                         "Sessions packed into the outbox.", NULL);
        u->m.shipped = lf_metrics_counter(metrics, "lf_uploader_shipped_total",
                                          "Sessions stored at the receiver (201 or 200).", NULL);
        u->m.already = lf_metrics_counter(metrics, "lf_uploader_already_stored_total",
                                          "Uploads the receiver already had (200).", NULL);
        u->m.failed = lf_metrics_counter(metrics, "lf_uploader_failed_total",
                                         "Sessions refused with a final 4xx (moved to failed).", NULL);
        u->m.dropped = lf_metrics_counter(metrics, "lf_uploader_dropped_total",
                                          "Sessions dropped by the on_full = drop_new policy.", NULL);
        u->m.warned = lf_metrics_counter(metrics, "lf_uploader_changed_after_ship_total",
                                         "Files that grew after shipping (on_change = warn).", NULL);
        u->m.snap_changed = lf_metrics_counter(metrics, "lf_uploader_snapshot_discarded_total",
                                               "Snapshots discarded: the file changed meanwhile.",
                                               NULL);
        u->m.full = lf_metrics_counter(metrics, "lf_uploader_outbox_full_total",
                                       "Times scanning paused on a full outbox.", NULL);
        u->m.unreadable = lf_metrics_counter(metrics, "lf_uploader_unreadable_total",
                                             "Files that could not be read.", NULL);
        u->m.refused_waiting = lf_metrics_counter(metrics, "lf_uploader_refused_waiting_total",
                                                  "Uploads the receiver refused for a reason its side can fix "
                                                  "(401/403: unregistered or disabled site, clock, key); the "
                                                  "session stays in the outbox.",
                                                  NULL);
        u->m.upload_errors = lf_metrics_counter(metrics, "lf_uploader_upload_errors_total",
                                                "Uploads that found the receiver unreachable or "
                                                "busy (retried later).", NULL);
    }
    lf_free(db);
    *out = u;
    return 0;
fail:
    lf_free(db);
    lf_uploader_close(u);
    return rc;
}

void lf_uploader_close(lf_uploader *u)
{
    if (!u)
        return;
    if (u->http)
        lf_uhttp_close(u->http);
    for (size_t i = 0; i < u->n_watches; i++) {
        pcre2_code_free(u->watches[i].name_re);
        pcre2_code_free(u->watches[i].end_re);
        pcre2_code_free(u->watches[i].rot_re);
    }
    lf_free(u->watches);
    lf_ureg_close(u->reg);
    lf_free(u->queue);
    lf_free(u->tmp_dir);
    lf_free(u->failed_dir);
    memset(u->sk, 0, sizeof u->sk);
    lf_free(u);
}

struct upload {
    lf_uploader *u;
    char id[LF_SESSION_ID_LEN + 1];
    char path[PATH_MAXLEN];
    uint64_t size;
};

static void after_upload(lf_uploader *u, const char *id)
{
    if (u->cfg->after_upload == LF_AFTER_KEEP)
        return;
    char watch[256], rel[PATH_MAXLEN];
    if (lf_ureg_session_source(u->reg, id, watch, sizeof watch, rel, sizeof rel) != 1)
        return;
    for (size_t i = 0; i < u->n_watches; i++) {
        if (strcmp(u->watches[i].w->name, watch) != 0)
            continue;
        char src[PATH_MAXLEN * 2];
        snprintf(src, sizeof src, "%s/%s", u->watches[i].w->dir, rel);
        lf_ureg_file f;
        struct stat st;
        /* Only the very file that was shipped: not a newer one that took its name. */
        if (lf_ureg_file_get(u->reg, watch, rel, &f) != 1 || stat(src, &st) != 0 ||
            f.ino != (int64_t)st.st_ino || f.size != (int64_t)st.st_size)
            return;
        if (u->cfg->after_upload == LF_AFTER_DELETE) {
            if (unlink(src) != 0)
                LF_WARN("ship", "cannot delete %s: %s", src, strerror(errno));
        } else {
            const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
            char dst[PATH_MAXLEN * 2];
            snprintf(dst, sizeof dst, "%s/%s", u->cfg->move_dir, base);
            if (lf_mkdir_p(u->cfg->move_dir, 0755) < 0 || rename(src, dst) != 0)
                LF_WARN("ship", "cannot move %s to %s: %s", src, dst, strerror(errno));
        }
        return;
    }
}

/* Pauses every upload: exponential, jittered, at least Retry-After. Returns the wait in ms. */
static uint64_t backoff(lf_uploader *u, int rc, int64_t retry_after_ms)
{
    uint64_t base = u->backoff_cur ? u->backoff_cur * 2 : 500;
    if (base > u->cfg->backoff_max_ms)
        base = u->cfg->backoff_max_ms;
    u->backoff_cur = base;
    uint64_t wait = base / 2 + (uint64_t)(random() % (long)(base / 2 + 1));
    if (rc == 0 && retry_after_ms > 0 && (uint64_t)retry_after_ms > wait)
        wait = (uint64_t)retry_after_ms;
    uint64_t until = uv_now(u->loop) + wait;
    if (until > u->backoff_until)
        u->backoff_until = until;
    return wait;
}

static void upload_done(void *arg, int rc, int status, int64_t retry_after_ms, const char *body)
{
    struct upload *up = arg;
    lf_uploader *u = up->u;
    u->in_flight--;
    if (rc == -ECANCELED) {
        lf_free(up);
        return;
    }
    /* 409 for our own id: the id binds the log's hash, so the receiver holds these very log bytes,
     * packed earlier with another manifest (a rotated copy with another mtime): shipped. */
    if (status == 409)
        LF_WARN("ship", "session %s is stored at the receiver with another manifest; counting it "
                        "as shipped", up->id);
    if (status == 200 || status == 201 || status == 409) {
        unlink(up->path);
        u->outbox_bytes = u->outbox_bytes > up->size ? u->outbox_bytes - up->size : 0;
        lf_ureg_session_put(u->reg, up->id, NULL, NULL, -1, LF_US_SHIPPED, NULL);
        lf_uploader_count(u, &u->st.shipped, u->m.shipped);
        if (status != 201)
            lf_uploader_count(u, &u->st.already_had, u->m.already);
        after_upload(u, up->id);
        u->backoff_cur = 0;
        u->refusal[0] = '\0';
    } else if (status == 401 || status == 403) {
        /* The receiver does not take this site now: not registered yet, disabled, our clock too far
         * from its own, or a key it does not know. Its side can fix each of these, so the session
         * waits in the outbox and is tried again with the backoff; status shows why. */
        snprintf(u->refusal, sizeof u->refusal, "HTTP %d: %.200s", status, body ? body : "");
        lf_ureg_session_put(u->reg, up->id, NULL, NULL, -1, LF_US_OUTBOX, u->refusal);
        lf_uploader_count(u, &u->st.refused_waiting, u->m.refused_waiting);
        u->unreachable = true; /* `once` ends its run: trying again now gets the same answer */
        uint64_t wait = backoff(u, rc, retry_after_ms);
        LF_WARN("ship", "session %s refused by the receiver (%s); it waits in the outbox, next try in %" PRIu64
                        " ms",
                up->id, u->refusal, wait);
        lf_uploader_queue_push(u, up->id);
    } else if (status >= 400 && status < 500 && status != 408 && status != 429) {
        char reason[512];
        snprintf(reason, sizeof reason, "HTTP %d: %.400s", status,
                 body ? body : "");
        char dst[PATH_MAXLEN];
        snprintf(dst, sizeof dst, "%s/%s.zip", u->failed_dir, up->id);
        if (rename(up->path, dst) != 0)
            LF_ERROR("ship", "cannot move %s to failed: %s", up->path, strerror(errno));
        u->outbox_bytes = u->outbox_bytes > up->size ? u->outbox_bytes - up->size : 0;
        lf_ureg_session_put(u->reg, up->id, NULL, NULL, -1, LF_US_FAILED, reason);
        lf_uploader_count(u, &u->st.failed, u->m.failed);
        LF_ERROR("ship", "session %s refused, moved to %s: %s", up->id, dst, reason);
    } else {
        /* Receiver down, busy or full: back off. */
        lf_uploader_count(u, &u->st.upload_errors, u->m.upload_errors);
        u->unreachable = true;
        uint64_t wait = backoff(u, rc, retry_after_ms);
        if (rc < 0)
            LF_WARN("ship", "upload of %s failed: %s; retrying in %" PRIu64 " ms", up->id,
                    lf_strerror(rc), wait);
        else
            LF_WARN("ship", "upload of %s answered %d; retrying in %" PRIu64 " ms", up->id, status,
                    wait);
        lf_uploader_queue_push(u, up->id);
    }
    lf_free(up);
    if (u->done_fn)
        u->done_fn(u->done_arg);
}

static int start_upload(lf_uploader *u, const char *id)
{
    struct upload *up = lf_calloc(1, sizeof *up);
    if (!up)
        return -ENOMEM;
    up->u = u;
    snprintf(up->id, sizeof up->id, "%s", id);
    snprintf(up->path, sizeof up->path, "%s/%s.zip", u->cfg->outbox_dir, id);
    uint8_t h[LF_HASH_BYTES];
    uint64_t size = 0;
    int rc = lf_crypto_hash_file(up->path, h, &size);
    if (rc < 0) {
        LF_ERROR("ship", "%s: %s; forgetting it", up->path, lf_strerror(rc));
        lf_free(up);
        return rc;
    }
    up->size = size;
    char path[64], url[2048];
    snprintf(path, sizeof path, "/v1/sessions/%s", id);
    const char *base = u->cfg->receiver_url;
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    snprintf(url, sizeof url, "%.*s%s", (int)bl, base, path);
    lf_buf auth = LF_BUF_INIT(1024);
    rc = lf_buf_append_str(&auth, "Authorization: ");
    rc = rc ? rc : lf_sign_request(&auth, u->sk, u->cfg->site, "PUT", path, (int64_t)time(NULL), h);
    if (rc < 0) {
        lf_buf_free(&auth);
        lf_free(up);
        return rc;
    }
    const char *headers[] = {"Content-Type: application/zip", auth.data, NULL};
    rc = lf_uhttp_put_file(u->http, url, headers, up->path, upload_done, up);
    lf_buf_free(&auth);
    if (rc < 0) {
        lf_free(up);
        return rc;
    }
    u->in_flight++;
    return 0;
}

void lf_uploader_pump(lf_uploader *u)
{
    if (!u->http)
        return;
    if (u->backoff_until > uv_now(u->loop))
        return;
    while (u->qlen > 0 && u->in_flight < (int)u->cfg->concurrency) {
        lf_sid id;
        memcpy(id, u->queue[u->qhead], sizeof id);
        u->qhead = (u->qhead + 1) % u->qcap;
        u->qlen--;
        int rc = start_upload(u, id);
        if (rc == -ENOENT)
            lf_ureg_session_put(u->reg, id, NULL, NULL, -1, LF_US_FAILED, "outbox file vanished");
        else if (rc < 0) {
            lf_uploader_queue_push(u, id);
            break;
        }
    }
}

int lf_uploader_in_flight(const lf_uploader *u) { return u->in_flight; }
int64_t lf_uploader_pending(const lf_uploader *u) { return (int64_t)u->qlen; }
bool lf_uploader_outbox_full(const lf_uploader *u) { return u->full; }
uint64_t lf_uploader_outbox_bytes(const lf_uploader *u) { return u->outbox_bytes; }
lf_ureg *lf_uploader_registry(lf_uploader *u) { return u->reg; }

const char *lf_uploader_refusal(const lf_uploader *u)
{
    return u->refusal[0] ? u->refusal : NULL;
}

int64_t lf_uploader_backoff_ms(const lf_uploader *u)
{
    if (!u->loop)
        return 0;
    uint64_t now = uv_now(u->loop);
    return u->backoff_until > now ? (int64_t)(u->backoff_until - now) : 0;
}

void lf_uploader_stats_get(const lf_uploader *u, lf_uploader_stats *s) { *s = u->st; }

void lf_uploader_on_done(lf_uploader *u, void (*fn)(void *), void *arg)
{
    u->done_fn = fn;
    u->done_arg = arg;
}

bool lf_uploader_take_unreachable(lf_uploader *u)
{
    bool r = u->unreachable;
    u->unreachable = false;
    return r;
}

void lf_uploader_on_packed(lf_uploader *u, void (*fn)(void *), void *arg)
{
    u->packed_fn = fn;
    u->packed_arg = arg;
}

/* The failed sessions to put back, collected first: writing while the SELECT that lists them is
 * still open could meet a snapshot the running daemon has moved past (SQLITE_BUSY_SNAPSHOT, which
 * no busy timeout waits out). */
struct retry_item {
    char id[LF_SESSION_ID_LEN + 1];
    char relpath[512];
    char reason[512];
};

struct retry_list {
    struct retry_item *v;
    size_t n, cap;
    int rc;
};

static void collect_failed(void *arg, const char *id, const char *relpath, const char *reason)
{
    struct retry_list *l = arg;
    if (l->rc)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct retry_item *v = lf_realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->rc = -ENOMEM;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    struct retry_item *it = &l->v[l->n++];
    snprintf(it->id, sizeof it->id, "%s", id);
    snprintf(it->relpath, sizeof it->relpath, "%s", relpath);
    snprintf(it->reason, sizeof it->reason, "%s", reason);
}

/* One session back: the row first ("retry", in its own write transaction, which waits for the
 * daemon's), then the file; a file that cannot move puts the row back to "failed". */
static int retry_one(lf_uploader *u, const struct retry_item *it, FILE *out)
{
    char src[PATH_MAXLEN], dst[PATH_MAXLEN];
    snprintf(src, sizeof src, "%s/%s.zip", u->failed_dir, it->id);
    snprintf(dst, sizeof dst, "%s/%s.zip", u->cfg->outbox_dir, it->id);
    int rc = lf_ureg_begin(u->reg);
    rc = rc ? rc : lf_ureg_session_put(u->reg, it->id, NULL, NULL, -1, LF_US_RETRY, NULL);
    rc = rc ? (lf_ureg_rollback(u->reg), rc) : lf_ureg_commit(u->reg);
    if (rc < 0) {
        fprintf(out, "%s: the registry cannot record it (%s); left in failed/\n", it->id, lf_strerror(rc));
        return 1;
    }
    if (rename(src, dst) != 0) {
        fprintf(out, "%s: cannot move %s back: %s\n", it->id, src, strerror(errno));
        if (lf_ureg_session_put(u->reg, it->id, NULL, NULL, -1, LF_US_FAILED, it->reason) < 0)
            fprintf(out, "%s: and its row could not be set back to failed\n", it->id);
        return 1;
    }
    fprintf(out, "%s %s: back in the outbox (was: %s)\n", it->id, it->relpath, it->reason);
    return 0;
}

int lf_uploader_retry_failed(lf_uploader *u, char **ids, size_t n, FILE *out)
{
    struct retry_list l = {0};
    int bad = 0;
    if (lf_ureg_state_each(u->reg, LF_US_FAILED, false, collect_failed, &l) < 0 || l.rc) {
        fprintf(out, "cannot list the failed sessions\n");
        lf_free(l.v);
        return 1;
    }
    size_t moved = 0;
    if (n == 0) {
        for (size_t i = 0; i < l.n; i++)
            if (retry_one(u, &l.v[i], out) == 0)
                moved++;
            else
                bad = 1;
    } else {
        for (size_t k = 0; k < n; k++) {
            const struct retry_item *found = NULL;
            for (size_t i = 0; i < l.n && !found; i++)
                if (strcmp(l.v[i].id, ids[k]) == 0)
                    found = &l.v[i];
            if (!found) {
                fprintf(out, "%s: not a failed session (logferry-uploader status lists them)\n", ids[k]);
                bad = 1;
            } else if (retry_one(u, found, out) == 0) {
                moved++;
            } else {
                bad = 1;
            }
        }
    }
    lf_free(l.v);
    if (moved && lf_fsync_dir(u->cfg->outbox_dir) < 0)
        bad = 1;
    fprintf(out, "%zu session%s back in the outbox%s\n", moved, moved == 1 ? "" : "s",
            moved ? "; a running uploader ships them after its next scan" : "");
    return bad;
}

/* Sessions that retry-failed put back: adopted into the queue (they are in the outbox again). */
static void adopt_one(void *arg, const char *id, const char *relpath, const char *reason)
{
    (void)relpath;
    (void)reason;
    lf_uploader *u = arg;
    char path[PATH_MAXLEN];
    snprintf(path, sizeof path, "%s/%s.zip", u->cfg->outbox_dir, id);
    struct stat st;
    if (stat(path, &st) != 0)
        return; /* not moved back (yet): the row stays "retry" */
    if (lf_ureg_session_put(u->reg, id, NULL, NULL, st.st_size, LF_US_OUTBOX, NULL) < 0)
        return;
    u->outbox_bytes += (uint64_t)st.st_size;
    if (lf_uploader_queue_push(u, id) == 0)
        LF_INFO("ship", "session %s is back in the outbox (retry-failed)", id);
}

int lf_uploader_adopt_retried(lf_uploader *u)
{
    return lf_ureg_state_each(u->reg, LF_US_RETRY, false, adopt_one, u);
}
