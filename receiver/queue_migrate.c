/* `logferry-receiver queue migrate` (backend = jetstream): moves what a stopped receiver left in its
 * embedded queue (lf_queue.h, at [queue] path) onto the JetStream queue (lf_jsqueue.h), so that an
 * installation switches backends without losing a message.
 *
 * Every message of the queue, whether visible, delayed or in flight (a receipt held by a parser of
 * the stopped receiver is moot: that parser can no longer ack through it), is published with the
 * session id as msg id (lf_receiver_js_publish_id), and every dead letter is published to the
 * dead-letter stream with a reason. A message is deleted from the embedded queue only after its
 * PubAck, so a crash at any point followed by a re-run loses nothing and at worst publishes an id
 * twice: the stream's dedup window drops the copy, and past it the parser's idempotent load does.
 *
 * Delayed and in-flight messages cannot be received now, so the store is opened with a clock moved
 * forward just past the latest visibility time that peek shows: everything becomes receivable at
 * once, and our receipts delete them. The store's clock keeps that lead (at most the longest
 * delay, 12 h) if the embedded queue is ever used again; its times stay ordered.
 *
 * Refused while anything else has the store open: the receiver's index is held with an exclusive
 * SQLite lock for the whole run (a receiver starting meanwhile fails to open it), and the queue
 * store must be free of other connections before it is opened.
 *
 * Sessions the index still has as "stored" (never queued) are not in the embedded queue: the
 * receiver's start-up recovery publishes them to JetStream (recovery.c), so they are only counted. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "commands.h"
#include "index.h"
#include "lf_error.h"
#include "lf_manifest.h"
#include "lf_queue.h"
#include "receiver.h"

#define MIGRATE_BATCH 100
#define MIGRATE_VISIBILITY_MS (60 * 1000) /* only we receive: the receipts stay valid past it anyway */
#define LOCK_WAIT_MS 1000
#define DEAD_REASON "dead-lettered on the embedded queue after max_receives deliveries; moved by queue migrate"

typedef struct migrate {
    const struct lf_receiver_config *cfg;
    lf_jetstream *js;
    lf_jsqueue *jq;
    lf_queue_db *db;
    uint64_t skew_ms; /* added to the wall clock the store sees */
    uint64_t moved, dead;
    lf_buf *err;
} migrate;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t migrate_clock_ms(void *arg)
{
    const migrate *m = arg;
    return wall_ms() + m->skew_ms;
}

/* Opens path (which exists) and takes SQLite's exclusive lock on it, kept until *out is closed.
 * -EBUSY when another connection has it open: in WAL mode every open connection holds a shared
 * lock on the database file. */
static int lock_exclusive(const char *path, const char *what, sqlite3 **out, lf_buf *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, LOCK_WAIT_MS);
        rc = sqlite3_exec(db, "PRAGMA locking_mode=EXCLUSIVE; BEGIN IMMEDIATE; COMMIT;", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        *out = db;
        return 0;
    }
    int code = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? -EBUSY : LF_EDB;
    if (code == -EBUSY)
        lf_buf_msgf(err, "refusing to migrate: the %s %s is in use by another process (is the receiver running? "
                    "stop it first)", what, path);
    else
        lf_buf_msgf(err, "opening the %s %s: %s", what, path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return code;
}

static int publish_dead(migrate *m, const char *sid, lf_buf *err)
{
    /* not "<queue>.<sequence>" (lf_jsqueue's dead letters) nor "<id>.r<sequence>" (redrive) */
    char msg_id[LF_QUEUE_DEDUP_MAX];
    snprintf(msg_id, sizeof msg_id, "%s.migrated", sid);
    return lf_jsqueue_publish_dead(m->jq, sid, strlen(sid), msg_id, sid, DEAD_REASON, err);
}

static void progress(const migrate *m)
{
    uint64_t n = m->moved + m->dead;
    if (n == 1 || n % 1000 == 0) {
        printf("queue migrate: moved so far: %" PRIu64 " messages, %" PRIu64 " dead letters\n", m->moved, m->dead);
        fflush(stdout);
    }
}

/* Publishes one received message, then deletes it from the embedded queue. */
static int move_one(migrate *m, const char *queue, bool dead, const lf_queue_msg *msg)
{
    const char *sid = msg->body;
    if (!lf_session_id_valid(sid, msg->len) || strlen(sid) != msg->len) {
        lf_buf_msgf(m->err, "message %" PRIu64 " of %s is not a session id (%zu bytes); left in %s", msg->id, queue,
                    msg->len, m->cfg->queue_path);
        return -EINVAL;
    }
    lf_buf why = LF_BUF_INIT(512);
    int rc = dead ? publish_dead(m, sid, &why) : lf_receiver_js_publish_id(m->jq, sid, &why);
    if (rc) {
        lf_buf_msgf(m->err, "session %s (message %" PRIu64 " of %s): %s", sid, msg->id, queue,
                    why.len ? lf_buf_cstr(&why) : lf_strerror(rc));
        lf_buf_free(&why);
        return rc;
    }
    lf_buf_free(&why);
    rc = lf_queue_db_ack(m->db, queue, msg->receipt);
    if (rc) {
        lf_buf_msgf(m->err, "session %s is on JetStream but deleting it from %s failed: %s (a re-run publishes "
                    "it again, deduplicated)", sid, m->cfg->queue_path, lf_strerror(rc));
        return rc;
    }
    if (dead)
        m->dead++;
    else
        m->moved++;
    progress(m);
    return 0;
}

/* Nothing receivable is left in queue: moves the store's clock just past the latest visibility
 * time among what remains. *more = false when queue is empty. */
static int reveal(migrate *m, const char *queue, bool *more)
{
    lf_queue_msg *msgs = NULL;
    size_t n = 0;
    int rc = lf_queue_db_peek(m->db, queue, LF_QUEUE_RECEIVE_MAX, &msgs, &n);
    if (rc) {
        lf_buf_msgf(m->err, "peeking at %s in %s: %s", queue, m->cfg->queue_path, lf_strerror(rc));
        return rc;
    }
    uint64_t latest = 0;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].visible_at_ms > latest)
            latest = msgs[i].visible_at_ms;
    lf_queue_msgs_free(msgs, n);
    *more = n > 0;
    if (!n)
        return 0;
    uint64_t wall = wall_ms();
    if (latest < wall + m->skew_ms) {
        /* all of them should have been receivable: never loop on a store that disagrees */
        lf_buf_msgf(m->err, "%zu messages of %s in %s cannot be received", n, queue, m->cfg->queue_path);
        return -EIO;
    }
    m->skew_ms = latest - wall + 1;
    return 0;
}

static int move_queue(migrate *m, const char *queue, bool dead)
{
    for (;;) {
        lf_queue_msg *msgs = NULL;
        size_t n = 0;
        int rc = lf_queue_db_receive(m->db, queue, MIGRATE_BATCH, MIGRATE_VISIBILITY_MS, &msgs, &n);
        if (rc) {
            lf_buf_msgf(m->err, "receiving from %s in %s: %s", queue, m->cfg->queue_path, lf_strerror(rc));
            return rc;
        }
        if (!n) {
            bool more = false;
            if ((rc = reveal(m, queue, &more)) != 0 || !more)
                return rc;
            continue;
        }
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = move_one(m, queue, dead, &msgs[i]);
        lf_queue_msgs_free(msgs, n);
        if (rc)
            return rc;
    }
}

/* Sessions stored but never queued: the receiver's start-up recovery publishes them. */
static void report_stored(const struct lf_receiver_config *cfg)
{
    struct stat st;
    if (stat(cfg->index_path, &st) != 0)
        return;
    lf_index *ix = NULL;
    char why[256] = "";
    uint64_t n = 0;
    if (lf_index_open(cfg->index_path, &ix, why, sizeof why) != 0)
        return; /* the lock below says why */
    if (lf_index_count(ix, "stored", &n) == 0 && n > 0)
        printf("queue migrate: %" PRIu64 " sessions in %s are stored but were never queued: the receiver "
               "publishes them to JetStream when it starts\n", n, cfg->index_path);
    lf_index_close(ix);
}

int lf_receiver_queue_migrate(const struct lf_receiver_config *cfg, lf_jetstream *js, lf_jsqueue *jq, lf_buf *err)
{
    struct stat st;
    if (stat(cfg->queue_path, &st) != 0) {
        if (errno != ENOENT) {
            int rc = -errno;
            lf_buf_msgf(err, "queue store %s: %s", cfg->queue_path, strerror(errno));
            return rc;
        }
        printf("queue migrate: there is no queue store at %s: nothing to move\n", cfg->queue_path);
        return 0;
    }
    if (st.st_size == 0) {
        printf("queue migrate: the queue store %s is empty: nothing to move\n", cfg->queue_path);
        return 0;
    }
    report_stored(cfg);
    sqlite3 *index_lock = NULL, *probe = NULL;
    int rc = 0;
    if (stat(cfg->index_path, &st) == 0)
        rc = lock_exclusive(cfg->index_path, "receiver's index", &index_lock, err);
    if (rc == 0 && (rc = lock_exclusive(cfg->queue_path, "queue store", &probe, err)) == 0)
        sqlite3_close(probe); /* lf_queue_db takes it over; the index lock keeps the receiver out */
    migrate m = {.cfg = cfg, .js = js, .jq = jq, .err = err};
    if (rc == 0) {
        lf_queue_options opt;
        lf_queue_options_init(&opt);
        opt.max_receives = 0;   /* receiving here is moving, not a delivery to count */
        opt.dlq_max_age_ms = 0; /* the moved clock must not age dead letters out */
        opt.clock_ms = migrate_clock_ms;
        opt.clock_arg = &m;
        if ((rc = lf_queue_db_open(cfg->queue_path, &opt, &m.db)) != 0)
            lf_buf_msgf(err, "queue store %s: %s", cfg->queue_path, lf_strerror(rc));
    }
    char dlq[LF_QUEUE_NAME_MAX + 8];
    snprintf(dlq, sizeof dlq, "%s.dlq", cfg->queue_name);
    if (rc == 0)
        printf("queue migrate: moving %s and its dead letters from %s to JetStream\n", cfg->queue_name,
               cfg->queue_path);
    if (rc == 0)
        rc = move_queue(&m, cfg->queue_name, false);
    if (rc == 0)
        rc = move_queue(&m, dlq, true);
    if (m.db || rc == 0)
        printf("queue migrate: moved %" PRIu64 " messages and %" PRIu64 " dead letters from %s to JetStream "
               "(streams LF_Q_%s and LF_DLQ_%s)%s\n", m.moved, m.dead, cfg->queue_path, cfg->queue_name,
               cfg->queue_name, rc ? ", then failed" : "");
    lf_queue_db_close(m.db);
    sqlite3_close(index_lock);
    return rc;
}
