/* Parser loading benchmark: events/s from a durable queue (the embedded SQLite queue the receiver
 * serves) to committed MySQL rows, for both loading methods, and MariaDB's own LOAD DATA INFILE of the
 * same event rows from a file in the same run (the limit).
 *
 * Per method: the tables are emptied, N session ids are sent to a fresh queue, then W worker threads
 * each receive an id, parse that session's log (generated in memory, classic format with stack
 * traces) with their own engine, load it with lf_loader_mysql_load_retry (one transaction: delete
 * earlier rows, session row, events, session_templates, templates upsert) and ack. The clock runs
 * from the first receive to the last ack.
 *
 *   bench-parser --port P --user U --password PW [--socket S] [--sessions N] [--lines L] [--workers W]
 *                [--tmp DIR]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "db_schema.h"
#include "engine.h"
#include "lf_error.h"
#include "lf_fileio.h"
#include "lf_mysql.h"
#include "lf_queue.h"
#include "loader_mysql.h"
#include "parsed_session.h"

static const char *COMPONENTS[] = {"core", "ui", "io", "net", "render", "license"};
static const char *WORDS[] = {"alpha", "beta", "gamma", "delta", "report", "export", "import", "main", "zeta"};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct session {
    char id[LF_SESSION_ID_LEN + 1];
    int fd; /* memfd with the log */
} session;

static struct {
    lf_mysql_options my;
    session *sessions;
    size_t n_sessions;
    lf_queue_db *queue;
    pthread_mutex_t mu;
    lf_loader_mysql_opts load;
    lf_logtype type;
    uint64_t events;
    int failed;
} B;

static int make_log(int fd, size_t lines)
{
    lf_buf b = LF_BUF_INIT(SIZE_MAX / 4);
    int64_t t = 1793606400 + (int64_t)(rnd() % 2592000);
    int rc = 0;
    for (size_t i = 0; i < lines && !rc; i++) {
        time_t s = (time_t)(t + (int64_t)i / 3);
        struct tm tm;
        gmtime_r(&s, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
        unsigned r = (unsigned)(rnd() % 100);
        const char *lvl = r < 70 ? "INFO" : r < 85 ? "DEBUG" : r < 95 ? "WARN" : "ERROR";
        const char *w = WORDS[rnd() % 9], *comp = COMPONENTS[rnd() % 6];
        unsigned n = (unsigned)(rnd() % 100000), k = (unsigned)(rnd() % 6);
        switch (k) {
        case 0: rc = lf_buf_appendf(&b, "%s.%03d %s [%s] Opened dialog %s in the main window\n", stamp, (int)(i % 1000), lvl, comp, w); break;
        case 1: rc = lf_buf_appendf(&b, "%s.%03d %s [%s] Exported %u pages to %s.pdf in %u ms\n", stamp, (int)(i % 1000), lvl, comp, n, w, n / 7); break;
        case 2: rc = lf_buf_appendf(&b, "%s.%03d %s [%s] Connection to 10.0.%u.%u:%u closed\n", stamp, (int)(i % 1000), lvl, comp, n % 256, n / 256 % 256, n); break;
        case 3: rc = lf_buf_appendf(&b, "%s.%03d %s [%s] User %s saved file %s.dat\n", stamp, (int)(i % 1000), lvl, comp, w, WORDS[n % 9]); break;
        case 4: rc = lf_buf_appendf(&b, "%s.%03d %s [%s] Command %s took %u ms\n", stamp, (int)(i % 1000), lvl, comp, w, n); break;
        default: rc = lf_buf_appendf(&b, "%s.%03d %s [%s] Cache hit ratio %u percent\n", stamp, (int)(i % 1000), lvl, comp, n % 100); break;
        }
        if (!rc && lvl[0] == 'E')
            rc = lf_buf_appendf(&b, "\tat module.fn(file.c:%u)\n\tat main(main.c:3)\n", n % 999);
    }
    if (!rc)
        rc = lf_write_all(fd, b.data, b.len);
    lf_buf_free(&b);
    return rc;
}

static int manifest_for(lf_psession *ps, const session *s)
{
    char json[512];
    int n = snprintf(json, sizeof json,
                     "{\"format\":1,\"session_id\":\"%s\",\"site\":\"bench\",\"product\":\"Studio\","
                     "\"product_version\":\"4.2.1\",\"log_type\":\"classic\",\"log_name\":\"s.log\",\"log_size\":0,"
                     "\"log_blake2b\":\"%064d\"}",
                     s->id, 0);
    char err[256];
    lf_manifest_free(&ps->manifest);
    return lf_manifest_parse(&ps->manifest, json, (size_t)n, err, sizeof err);
}

static size_t find_session(const char *id)
{
    for (size_t i = 0; i < B.n_sessions; i++)
        if (strcmp(B.sessions[i].id, id) == 0)
            return i;
    return SIZE_MAX;
}

static void *worker(void *arg)
{
    (void)arg;
    lf_mysql *db = NULL;
    lf_engine *eng = NULL;
    char err[256];
    if (lf_mysql_connect(&B.my, &db) < 0 || lf_engine_new(&B.type, NULL, &eng, err, sizeof err) < 0) {
        B.failed = 1;
        return NULL;
    }
    lf_buf scratch = LF_BUF_INIT(SIZE_MAX / 4);
    uint64_t events = 0;
    for (;;) {
        lf_queue_msg *m = NULL;
        size_t n = 0;
        pthread_mutex_lock(&B.mu);
        int rc = lf_queue_db_receive(B.queue, "sessions", 1, 600000, &m, &n);
        pthread_mutex_unlock(&B.mu);
        if (rc < 0 || n == 0) {
            lf_queue_msgs_free(m, n);
            break;
        }
        char id[LF_SESSION_ID_LEN + 1];
        snprintf(id, sizeof id, "%.*s", (int)m[0].len, (const char *)m[0].body);
        size_t idx = find_session(id);
        lf_psession ps;
        rc = idx == SIZE_MAX ? -ENOENT : lf_psession_init(&ps);
        if (rc == 0) {
            rc = manifest_for(&ps, &B.sessions[idx]);
            if (rc == 0 && lseek(B.sessions[idx].fd, 0, SEEK_SET) == 0)
                rc = lf_psession_parse(&ps, eng, B.sessions[idx].fd, 0);
            if (rc == 0)
                rc = lf_loader_mysql_load_retry(db, &ps, &B.load, &scratch, NULL);
            events += ps.n_events;
            lf_psession_free(&ps);
        }
        if (rc < 0) {
            fprintf(stderr, "session %s: %s (%s)\n", id, lf_strerror(rc), lf_mysql_error(db));
            B.failed = 1;
        }
        pthread_mutex_lock(&B.mu);
        if (lf_queue_db_ack(B.queue, "sessions", m[0].receipt) != 0)
            B.failed = 1;
        B.events += events;
        pthread_mutex_unlock(&B.mu);
        events = 0;
        lf_queue_msgs_free(m, n);
    }
    lf_buf_free(&scratch);
    lf_engine_free(eng);
    lf_mysql_close(db);
    return NULL;
}

static int empty_tables(lf_mysql *db)
{
    static const char *const t[] = {"events", "sessions", "session_templates", "templates"};
    for (int i = 0; i < 4; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "TRUNCATE TABLE %s", t[i]);
        if (lf_mysql_exec(db, sql) < 0)
            return -1;
    }
    return 0;
}

static double run_method(lf_mysql *db, const char *qpath, lf_load_method method, unsigned workers)
{
    if (empty_tables(db) < 0)
        return -1;
    unlink(qpath);
    lf_queue_options qo;
    lf_queue_options_init(&qo);
    if (lf_queue_db_open(qpath, &qo, &B.queue) < 0)
        return -1;
    for (size_t i = 0; i < B.n_sessions; i++)
        if (lf_queue_db_send(B.queue, "sessions", B.sessions[i].id, LF_SESSION_ID_LEN, NULL, 0, NULL, NULL) < 0)
            return -1;
    B.load.method = method;
    B.events = 0;
    pthread_t th[64];
    double t0 = now_s();
    for (unsigned i = 0; i < workers; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (unsigned i = 0; i < workers; i++)
        pthread_join(th[i], NULL);
    double dt = now_s() - t0;
    lf_queue_db_close(B.queue);
    B.queue = NULL;
    int64_t rows = 0;
    if (lf_mysql_query_int(db, "SELECT COUNT(*) FROM events", &rows) != 0)
        B.failed = 1;
    if (B.failed || (uint64_t)rows != B.events) {
        fprintf(stderr, "%s: %" PRId64 " rows for %" PRIu64 " events\n", method == LF_LOAD_INFILE ? "infile" : "insert",
                rows, B.events);
        return -1;
    }
    return (double)B.events / dt;
}

/* MariaDB's own LOAD DATA INFILE of the same rows, from a file on the server's disk. */
static double run_limit(lf_mysql *db, const char *tsv_path)
{
    lf_engine *eng = NULL;
    char err[256];
    if (lf_engine_new(&B.type, NULL, &eng, err, sizeof err) < 0)
        return -1;
    lf_buf all = LF_BUF_INIT(SIZE_MAX / 4);
    uint64_t events = 0;
    for (size_t i = 0; i < B.n_sessions; i++) {
        lf_psession ps;
        if (lf_psession_init(&ps) < 0 || manifest_for(&ps, &B.sessions[i]) < 0 ||
            lseek(B.sessions[i].fd, 0, SEEK_SET) != 0 || lf_psession_parse(&ps, eng, B.sessions[i].fd, 0) < 0 ||
            lf_loader_mysql_events_tsv(&ps, &all) < 0)
            return -1;
        events += ps.n_events;
        lf_psession_free(&ps);
    }
    lf_engine_free(eng);
    FILE *f = fopen(tsv_path, "w");
    if (!f || fwrite(all.data, 1, all.len, f) != all.len || fclose(f) != 0)
        return -1;
    lf_buf_free(&all);
    if (empty_tables(db) < 0)
        return -1;
    char sql[2048];
    snprintf(sql, sizeof sql, "LOAD DATA INFILE '%s' INTO TABLE events CHARACTER SET utf8mb4 %s", tsv_path,
             LF_LOADER_EVENT_COLUMNS);
    double t0 = now_s();
    int64_t n = lf_mysql_exec(db, sql);
    double dt = now_s() - t0;
    unlink(tsv_path);
    if (n < 0 || (uint64_t)n != events) {
        fprintf(stderr, "LOAD DATA INFILE: %s (%" PRId64 " of %" PRIu64 ")\n", lf_mysql_error(db), n, events);
        return -1;
    }
    return (double)events / dt;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},     {"user", required_argument, NULL, 'u'},
        {"password", required_argument, NULL, 'P'}, {"socket", required_argument, NULL, 'S'},
        {"sessions", required_argument, NULL, 'n'}, {"lines", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},  {"tmp", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    memset(&B.my, 0, sizeof B.my);
    B.my.host = "127.0.0.1";
    B.my.port = 3306;
    B.my.database = "lf_bench_parser";
    B.my.create_database = true;
    size_t sessions = 100, lines = 2000;
    unsigned workers = 2;
    const char *tmp = "/tmp";
    if (strlen(tmp) > 800)
        return 2;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': B.my.port = (unsigned)atoi(optarg); break;
        case 'u': B.my.user = optarg; break;
        case 'P': B.my.password = optarg; break;
        case 'S': B.my.socket = optarg; break;
        case 'n': sessions = strtoul(optarg, NULL, 10); break;
        case 'l': lines = strtoul(optarg, NULL, 10); break;
        case 'w': workers = (unsigned)atoi(optarg); break;
        case 't':
            if (strlen(optarg) > 800)
                return 2;
            tmp = optarg;
            break;
        default: fprintf(stderr, "usage: see bench/parser/run.sh\n"); return 2;
        }
    }
    if (workers < 1 || workers > 64 || sessions < 1)
        return 2;
    pthread_mutex_init(&B.mu, NULL);
    lf_loader_mysql_opts_default(&B.load);
    B.load.parser_version = "bench";
    if (lf_logtype_init(&B.type, "classic") < 0 ||
        lf_logtype_set(&B.type, "format", "<Date> <Time> <Level> \\[<Component>\\] <Content>") < 0 ||
        lf_logtype_set(&B.type, "time_fields", "Date Time") < 0 ||
        lf_logtype_set(&B.type, "time_format", "%Y-%m-%d %H:%M:%S.%f") < 0 ||
        lf_logtype_set(&B.type, "level_field", "Level") < 0)
        return 1;
    lf_mysql *db = NULL;
    unsigned applied;
    if (lf_mysql_connect(&B.my, &db) < 0 ||
        lf_mysql_migrate(db, lf_parser_migrations, lf_parser_migrations_count, &applied) < 0) {
        fprintf(stderr, "MySQL: %s\n", db ? lf_mysql_error(db) : "cannot connect");
        return 1;
    }
    B.sessions = calloc(sessions, sizeof *B.sessions);
    B.n_sessions = sessions;
    for (size_t i = 0; i < sessions; i++) {
        snprintf(B.sessions[i].id, sizeof B.sessions[i].id, "%016" PRIx64 "%016" PRIx64, rnd(), (uint64_t)i);
        B.sessions[i].fd = memfd_create("bench-log", MFD_CLOEXEC);
        if (B.sessions[i].fd < 0 || make_log(B.sessions[i].fd, lines) < 0)
            return 1;
    }
    char qpath[900], tsv[900];
    snprintf(qpath, sizeof qpath, "%s/bench-parser-queue.db", tmp);
    snprintf(tsv, sizeof tsv, "%s/bench-parser-events.tsv", tmp);
    double infile = run_method(db, qpath, LF_LOAD_INFILE, workers);
    double insert = run_method(db, qpath, LF_LOAD_INSERT, workers);
    double limit = run_limit(db, tsv);
    unlink(qpath);
    if (infile < 0 || insert < 0 || limit < 0) {
        fprintf(stderr, "benchmark failed\n");
        return 1;
    }
    double best = infile > insert ? infile : insert;
    printf("sessions %zu, lines per session %zu, workers %u\n", sessions, lines, workers);
    printf("queue -> MySQL, LOAD DATA LOCAL INFILE from memory: %10.0f events/s\n", infile);
    printf("queue -> MySQL, multi-row INSERT:                   %10.0f events/s\n", insert);
    printf("MariaDB LOAD DATA INFILE of the same rows (limit):  %10.0f events/s\n", limit);
    printf("best method: %s, %.0f%% of the limit (goal 70%%)\n", infile >= insert ? "infile" : "insert",
           100.0 * best / limit);
    lf_mysql_close(db);
    return 0;
}
