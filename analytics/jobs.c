/* Analytics jobs (jobs.h). Rows are always read from the source connection and written into the
 * target with LOAD DATA from memory, so the source and the target may be different servers; on one
 * server they are simply two connections. */
#include "jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"
#include "schema.h"

#define DAY_LEN 11
#define SQL_MAX (64u << 20)
#define WATERMARK_SETTLE_S 60
#define LF_STR2(x) #x
#define LF_STR(x) LF_STR2(x)

const char *const lf_analytics_builtin_jobs[] = {"daily_usage", "feature_usage", "errors", "retention",
                                                 NULL};

void lf_analytics_mysql_options(const struct lf_analytics_config *cfg, bool source, lf_mysql_options *o)
{
    bool separate = source && (cfg->source_host || cfg->source_socket);
    memset(o, 0, sizeof *o);
    o->socket = separate ? cfg->source_socket : cfg->mysql_socket;
    o->host = o->socket ? NULL : separate ? cfg->source_host : cfg->mysql_host;
    o->port = (unsigned)(separate ? cfg->source_port : cfg->mysql_port);
    o->user = source && cfg->source_user ? cfg->source_user : cfg->mysql_user;
    o->password = source && cfg->source_password ? cfg->source_password : cfg->mysql_password;
    o->database = source ? cfg->source_database : cfg->target_database;
    o->tls = separate ? cfg->source_tls : cfg->mysql_tls; /* the [mysql] server's with the [mysql] settings */
    o->read_timeout_s = 3600;
    o->write_timeout_s = 3600;
    o->create_database = !source;
}

int lf_analytics_open(lf_analytics *a, const struct lf_analytics_config *cfg)
{
    lf_mysql_options o;
    memset(a, 0, sizeof *a);
    a->cfg = cfg;
    lf_analytics_mysql_options(cfg, false, &o);
    int rc = lf_mysql_connect(&o, &a->dst);
    if (rc < 0) {
        LF_ERROR("analytics", "connecting to the target database: %s", lf_strerror(rc));
        return rc;
    }
    lf_analytics_mysql_options(cfg, true, &o);
    rc = lf_mysql_connect(&o, &a->src);
    if (rc < 0) {
        LF_ERROR("analytics", "connecting to the source database: %s", lf_strerror(rc));
        lf_analytics_close(a);
        return rc;
    }
    unsigned applied = 0;
    rc = lf_mysql_migrate(a->dst, lf_analytics_migrations, lf_analytics_migrations_count, &applied);
    if (rc < 0) {
        LF_ERROR("analytics", "migrating the target database: %s (%s)", lf_strerror(rc),
                 lf_mysql_error(a->dst));
        lf_analytics_close(a);
        return rc;
    }
    return 0;
}

void lf_analytics_close(lf_analytics *a)
{
    if (a->src)
        lf_mysql_close(a->src);
    if (a->dst)
        lf_mysql_close(a->dst);
    a->src = a->dst = NULL;
}

bool lf_analytics_job_exists(const struct lf_analytics_config *cfg, const char *name)
{
    for (size_t i = 0; lf_analytics_builtin_jobs[i]; i++)
        if (strcmp(lf_analytics_builtin_jobs[i], name) == 0)
            return true;
    for (size_t i = 0; i < cfg->n_jobs; i++)
        if (strcmp(cfg->jobs[i].name, name) == 0)
            return true;
    return false;
}

long long lf_analytics_percentile(const long long *sorted, size_t n, unsigned p)
{
    size_t rank = (p * n + 99) / 100;
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

/* ---- days ---------------------------------------------------------------------------------- */

typedef struct day_list {
    char (*d)[DAY_LEN];
    size_t n, cap;
} day_list;

static int days_push(day_list *l, const char *day)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = lf_realloc(l->d, cap * sizeof *l->d);
        if (!p)
            return -ENOMEM;
        l->d = p;
        l->cap = cap;
    }
    snprintf(l->d[l->n++], DAY_LEN, "%.10s", day);
    return 0;
}

static int day_row(void *arg, unsigned n, char **v, unsigned long *len)
{
    (void)n;
    (void)len;
    return v[0] ? days_push(arg, v[0]) : 0;
}

static int parse_day(const char *s, time_t *out)
{
    struct tm tm = {0};
    int y, m, d;
    char extra;
    if (!s || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    *out = timegm(&tm);
    return 0;
}

static int days_range(day_list *l, const char *from, const char *to)
{
    time_t a, b;
    if (parse_day(from, &a) || parse_day(to, &b) || b < a || (b - a) / 86400 > 100000)
        return -EINVAL;
    for (time_t t = a; t <= b; t += 86400) {
        struct tm tm;
        char buf[DAY_LEN];
        gmtime_r(&t, &tm);
        strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
        int rc = days_push(l, buf);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- small helpers ------------------------------------------------------------------------- */

static int str_row(void *arg, unsigned n, char **v, unsigned long *len)
{
    (void)len;
    char *out = arg;
    if (n > 0 && v[0])
        snprintf(out, 32, "%s", v[0]);
    return 0;
}

static int db_err(lf_mysql *db, const char *what, int rc, lf_buf *err)
{
    lf_buf_reset(err);
    lf_buf_msgf(err, "%s: %s (%s)", what, lf_strerror(rc), lf_mysql_error(db));
    return rc;
}

/* Pause between the partition's delete and its commit: failure injection for the crash test. */
static void test_pause(void)
{
    const char *ms = getenv("LF_ANALYTICS_SLEEP_MS");
    if (ms && *ms)
        usleep((useconds_t)strtoul(ms, NULL, 10) * 1000);
}

/* ---- copying query results as TSV ---------------------------------------------------------- */

typedef struct tsv {
    lf_buf buf;
    long long rows;
} tsv;

static int tsv_row(void *arg, unsigned n, char **v, unsigned long *len)
{
    tsv *t = arg;
    for (unsigned i = 0; i < n; i++) {
        if (i && lf_buf_append_char(&t->buf, '\t'))
            return -ENOMEM;
        if (lf_mysql_tsv_append(&t->buf, v[i], v[i] ? len[i] : 0))
            return -ENOMEM;
    }
    if (lf_buf_append_char(&t->buf, '\n'))
        return -ENOMEM;
    t->rows++;
    return 0;
}

/* ---- daily_usage: aggregates by SQL, exact percentiles in C -------------------------------- */

typedef struct usage_group {
    char *key[3]; /* product, version, site */
    char *counts[4]; /* sessions, users, hosts, crashed */
    size_t dur_from, dur_n;
} usage_group;

typedef struct usage_state {
    usage_group *g;
    size_t n, cap, cur;
    long long *dur;
    size_t dur_n, dur_cap;
    int err;
} usage_state;

static int usage_agg_row(void *arg, unsigned n, char **v, unsigned long *len)
{
    (void)len;
    usage_state *s = arg;
    if (n != 7)
        return -EPROTO;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        void *p = lf_realloc(s->g, cap * sizeof *s->g);
        if (!p)
            return -ENOMEM;
        s->g = p;
        s->cap = cap;
    }
    usage_group *g = &s->g[s->n];
    memset(g, 0, sizeof *g);
    s->n++;
    for (int i = 0; i < 3; i++)
        if (!(g->key[i] = lf_strdup(v[i] ? v[i] : "")))
            return -ENOMEM;
    for (int i = 0; i < 4; i++)
        if (!(g->counts[i] = lf_strdup(v[3 + i] ? v[3 + i] : "0")))
            return -ENOMEM;
    return 0;
}

static int usage_dur_row(void *arg, unsigned n, char **v, unsigned long *len)
{
    (void)len;
    usage_state *s = arg;
    if (n != 4 || !v[3])
        return -EPROTO;
    /* Both queries order by the same key, so the groups are met in the same order. */
    while (s->cur < s->n && (strcmp(s->g[s->cur].key[0], v[0]) || strcmp(s->g[s->cur].key[1], v[1]) ||
                             strcmp(s->g[s->cur].key[2], v[2])))
        s->cur++;
    if (s->cur == s->n)
        return -EPROTO;
    if (s->dur_n == s->dur_cap) {
        size_t cap = s->dur_cap ? s->dur_cap * 2 : 1024;
        void *p = lf_realloc(s->dur, cap * sizeof *s->dur);
        if (!p)
            return -ENOMEM;
        s->dur = p;
        s->dur_cap = cap;
    }
    usage_group *g = &s->g[s->cur];
    if (g->dur_n == 0)
        g->dur_from = s->dur_n;
    g->dur_n++;
    s->dur[s->dur_n++] = strtoll(v[3], NULL, 10);
    return 0;
}

static void usage_free(usage_state *s)
{
    for (size_t i = 0; i < s->n; i++) {
        for (int k = 0; k < 3; k++)
            lf_free(s->g[i].key[k]);
        for (int k = 0; k < 4; k++)
            lf_free(s->g[i].counts[k]);
    }
    lf_free(s->g);
    lf_free(s->dur);
}

static int usage_rows(lf_analytics *a, const char *day, tsv *out, lf_buf *err)
{
    usage_state s = {0};
    char sql[1024];
    char w[256];
    snprintf(w, sizeof w, "started_at >= '%s' AND started_at < '%s' + INTERVAL 1 DAY", day, day);
    snprintf(sql, sizeof sql,
             "SELECT product, product_version, site, COUNT(*), COUNT(DISTINCT user_name), "
             "COUNT(DISTINCT host), SUM(crashed <> 0) FROM sessions WHERE %s "
             "GROUP BY product, product_version, site ORDER BY product, product_version, site",
             w);
    int rc = lf_mysql_query(a->src, sql, usage_agg_row, &s);
    if (rc < 0) {
        usage_free(&s);
        return db_err(a->src, "daily_usage: reading sessions", rc, err);
    }
    snprintf(sql, sizeof sql,
             "SELECT product, product_version, site, duration_ms FROM sessions WHERE %s AND "
             "duration_ms IS NOT NULL ORDER BY product, product_version, site, duration_ms",
             w);
    rc = lf_mysql_query(a->src, sql, usage_dur_row, &s);
    if (rc < 0) {
        usage_free(&s);
        return db_err(a->src, "daily_usage: reading durations", rc, err);
    }
    for (size_t i = 0; i < s.n && rc == 0; i++) {
        usage_group *g = &s.g[i];
        char p[3][32];
        static const unsigned pct[3] = {50, 90, 99};
        for (int k = 0; k < 3; k++) {
            if (g->dur_n)
                snprintf(p[k], sizeof p[k], "%lld",
                         lf_analytics_percentile(s.dur + g->dur_from, g->dur_n, pct[k]));
        }
        char *v[11] = {(char *)day, g->key[0], g->key[1], g->key[2], g->counts[0], g->counts[1],
                       g->counts[2], g->dur_n ? p[0] : NULL, g->dur_n ? p[1] : NULL,
                       g->dur_n ? p[2] : NULL, g->counts[3]};
        unsigned long len[11];
        for (int k = 0; k < 11; k++)
            len[k] = v[k] ? strlen(v[k]) : 0;
        rc = tsv_row(out, 11, v, len);
    }
    usage_free(&s);
    return rc;
}

/* ---- the day partition ----------------------------------------------------------------------- */

/* A stored template id resolved through merges (parser/template_share.h): the id of the template its
 * events belong to now. Needs "LEFT JOIN templates m ON m.template_id = <alias>.template_id". */
#define RESOLVED_ID(alias) "COALESCE(m.canonical_id, " alias ".template_id)"

typedef struct day_job {
    const char *name;
    const char *table;
    const char *columns;
    const char *select; /* {D} stands for the day; NULL: usage_rows */
} day_job;

static const day_job day_jobs[] = {
    {"daily_usage", "daily_usage",
     "day, product, product_version, site, sessions, users, hosts, duration_p50_ms, duration_p90_ms, "
     "duration_p99_ms, crashed",
     NULL},
    {"feature_usage", "feature_usage",
     "day, product, product_version, site, template_id, template, events, sessions",
     /* Grouped first, the TEXT joined after: a TEXT column in the grouping would force an on-disk
      * temporary table. */
     "SELECT '{D}', x.product, x.product_version, x.site, x.template_id, t.template, x.events, x.sessions FROM "
     "(SELECT s.product, s.product_version, s.site, " RESOLVED_ID("st") " AS template_id, "
     "SUM(st.occurrences) AS events, "
     "COUNT(DISTINCT s.session_id) AS sessions FROM sessions s JOIN session_templates st ON st.session_id = "
     "s.session_id LEFT JOIN templates m ON m.template_id = st.template_id "
     "WHERE s.started_at >= '{D}' AND s.started_at < '{D}' + INTERVAL 1 DAY "
     "GROUP BY s.product, s.product_version, s.site, " RESOLVED_ID("st") ") x "
     "LEFT JOIN templates t ON t.template_id = x.template_id"},
    {"errors", "errors_daily", "day, product, product_version, site, session_id, errors, fatals",
     "SELECT '{D}', s.product, s.product_version, s.site, s.session_id, SUM(LOWER(e.level) = 'error'), "
     "SUM(LOWER(e.level) = 'fatal') FROM sessions s JOIN events e ON e.session_id = s.session_id "
     "WHERE s.started_at >= '{D}' AND s.started_at < '{D}' + INTERVAL 1 DAY "
     "AND LOWER(e.level) IN ('error', 'fatal') GROUP BY s.session_id, s.product, s.product_version, s.site"},
};

static const day_job *find_day_job(const char *name)
{
    for (size_t i = 0; i < sizeof day_jobs / sizeof day_jobs[0]; i++)
        if (strcmp(day_jobs[i].name, name) == 0)
            return &day_jobs[i];
    return NULL;
}

/* Error templates seen on day: upserted so first_day is the earliest day they were seen; product
 * and version are the smallest (product, version) among that day's sessions. */
static int new_error_templates(lf_analytics *a, const char *day, long long *rows, lf_buf *err)
{
    char sql[2048];
    tsv t = {LF_BUF_INIT(SQL_MAX), 0};
    snprintf(sql, sizeof sql,
             "SELECT x.template_id, x.product, x.product_version, t.template FROM (SELECT "
             RESOLVED_ID("e") " AS template_id, s.product, s.product_version FROM sessions s JOIN events e ON "
             "e.session_id = s.session_id LEFT JOIN templates m ON m.template_id = e.template_id "
             "WHERE s.started_at >= '%s' AND s.started_at < '%s' + "
             "INTERVAL 1 DAY AND LOWER(e.level) IN ('error', 'fatal') GROUP BY " RESOLVED_ID("e") ", "
             "s.product, s.product_version) x LEFT JOIN templates t ON t.template_id = x.template_id",
             day, day);
    int rc = lf_mysql_query(a->src, sql, tsv_row, &t);
    if (rc < 0) {
        lf_buf_free(&t.buf);
        return db_err(a->src, "errors: reading error templates", rc, err);
    }
    if (t.rows == 0) {
        lf_buf_free(&t.buf);
        return 0;
    }
    /* Staged in a temporary table, then merged: the first row per template is the smallest key. */
    rc = (int)lf_mysql_exec(a->dst, "CREATE TEMPORARY TABLE IF NOT EXISTS net_stage (template_id "
                                    "BIGINT UNSIGNED, product VARCHAR(128), product_version "
                                    "VARCHAR(128), template TEXT) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
    if (rc >= 0)
        rc = (int)lf_mysql_exec(a->dst, "DELETE FROM net_stage");
    if (rc >= 0)
        rc = (int)lf_mysql_load_data(a->dst, "net_stage (template_id, product, product_version, template)",
                                     t.buf.data, t.buf.len);
    lf_buf_free(&t.buf);
    if (rc >= 0)
        rc = (int)lf_mysql_execf(
            a->dst,
            "INSERT INTO new_error_templates (template_id, first_day, product, product_version, template) "
            "SELECT n.template_id, '%s', n.product, n.product_version, n.template FROM net_stage n "
            "WHERE NOT EXISTS (SELECT 1 FROM net_stage m WHERE m.template_id = n.template_id AND "
            "(m.product < n.product OR (m.product = n.product AND m.product_version < n.product_version))) "
            "ON DUPLICATE KEY UPDATE "
            "product = IF(VALUES(first_day) <= new_error_templates.first_day, VALUES(product), "
            "new_error_templates.product), "
            "product_version = IF(VALUES(first_day) <= new_error_templates.first_day, "
            "VALUES(product_version), new_error_templates.product_version), "
            "template = IF(VALUES(first_day) <= new_error_templates.first_day, VALUES(template), "
            "new_error_templates.template), "
            "first_day = LEAST(new_error_templates.first_day, VALUES(first_day))",
            day);
    if (rc < 0)
        return db_err(a->dst, "errors: writing new_error_templates", rc, err);
    *rows += rc;
    return 0;
}

/* One day's partition: read from the source, then delete + load + commit in one transaction. */
static int run_day(lf_analytics *a, const day_job *j, const char *day, long long *rows, lf_buf *err)
{
    tsv t = {LF_BUF_INIT(SQL_MAX), 0};
    int rc;
    if (j->select) {
        lf_buf sql = LF_BUF_INIT(8192);
        rc = 0;
        for (const char *p = j->select; *p && !rc;) {
            if (strncmp(p, "{D}", 3) == 0) {
                rc = lf_buf_append_str(&sql, day);
                p += 3;
            } else {
                rc = lf_buf_append_char(&sql, *p++);
            }
        }
        if (rc == 0)
            rc = lf_mysql_query(a->src, lf_buf_cstr(&sql), tsv_row, &t);
        lf_buf_free(&sql);
        if (rc < 0)
            db_err(a->src, j->name, rc, err);
    } else {
        rc = usage_rows(a, day, &t, err);
    }
    if (rc < 0)
        goto out;
    rc = lf_mysql_begin(a->dst);
    if (rc >= 0)
        rc = (int)lf_mysql_execf(a->dst, "DELETE FROM %s WHERE day = '%s'", j->table, day);
    if (rc >= 0 && t.rows > 0) {
        char tail[512];
        snprintf(tail, sizeof tail, "%s (%s)", j->table, j->columns);
        rc = (int)lf_mysql_load_data(a->dst, tail, t.buf.data, t.buf.len);
    }
    if (rc < 0) {
        db_err(a->dst, j->name, rc, err);
    } else if (strcmp(j->name, "errors") == 0) {
        rc = new_error_templates(a, day, rows, err);
    }
    if (rc >= 0) {
        test_pause();
        rc = lf_mysql_commit(a->dst);
        if (rc < 0)
            db_err(a->dst, "commit", rc, err);
    }
    if (rc < 0)
        lf_mysql_rollback(a->dst);
    else
        *rows += t.rows;
out:
    lf_buf_free(&t.buf);
    return rc < 0 ? rc : 0;
}

/* ---- retention: incremental by week ---------------------------------------------------------
 * A (product, user)'s cohort is its first active week. retention_activity keeps each week's
 * distinct active (product, user, version, site), reloaded per changed week from that week's
 * sessions (the dashboard filters retention by version and site from it);
 * retention_cohort keeps each user's first week. A changed week W can change only
 *   (a) the cohorts of the users active in W (before or after the reload): the rows of every
 *       cohort that gained or lost a user are rebuilt whole, and
 *   (b) column W (cohort_week + week_offset = W) of the other cohorts, rebuilt from W's activity.
 * So a run reads the changed weeks' sessions and the users they touch, never the whole history,
 * and its cost stays flat as history grows (bench/analytics). A backfill clears and rebuilds. */

static const char *const retention_temp_sql[] = {
    "DROP TEMPORARY TABLE IF EXISTS lf_ret_touched, lf_ret_new, lf_ret_cohorts",
    "CREATE TEMPORARY TABLE lf_ret_touched (product VARCHAR(128) NOT NULL, user_name VARCHAR(255) NOT NULL, "
    "PRIMARY KEY (product, user_name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TEMPORARY TABLE lf_ret_new (product VARCHAR(128) NOT NULL, user_name VARCHAR(255) NOT NULL, "
    "c DATE NULL, PRIMARY KEY (product, user_name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TEMPORARY TABLE lf_ret_cohorts (cohort_week DATE NOT NULL, product VARCHAR(128) NOT NULL, "
    "PRIMARY KEY (cohort_week, product)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
};

static const char *const retention_cohort_sql[] = {
    /* the touched users' first weeks now */
    "INSERT INTO lf_ret_new SELECT t.product, t.user_name, MIN(a.week) FROM lf_ret_touched t LEFT JOIN "
    "retention_activity a ON a.product = t.product AND a.user_name = t.user_name GROUP BY t.product, t.user_name",
    /* cohorts that lose a user, then cohorts that gain one */
    "INSERT IGNORE INTO lf_ret_cohorts SELECT rc.cohort_week, rc.product FROM lf_ret_new n JOIN retention_cohort rc "
    "ON rc.product = n.product AND rc.user_name = n.user_name WHERE n.c IS NULL OR n.c <> rc.cohort_week",
    "INSERT IGNORE INTO lf_ret_cohorts SELECT n.c, n.product FROM lf_ret_new n LEFT JOIN retention_cohort rc "
    "ON rc.product = n.product AND rc.user_name = n.user_name WHERE n.c IS NOT NULL AND "
    "(rc.cohort_week IS NULL OR rc.cohort_week <> n.c)",
    "DELETE rc FROM retention_cohort rc JOIN lf_ret_new n ON rc.product = n.product AND rc.user_name = n.user_name",
    "INSERT INTO retention_cohort (product, user_name, cohort_week) SELECT product, user_name, c FROM lf_ret_new "
    "WHERE c IS NOT NULL",
    /* (a) whole rows of the changed cohorts */
    "DELETE rw FROM retention_weekly rw JOIN lf_ret_cohorts x ON rw.cohort_week = x.cohort_week AND "
    "rw.product = x.product",
    "INSERT INTO retention_weekly (cohort_week, product, week_offset, users, cohort_users) SELECT rc.cohort_week, "
    "rc.product, DATEDIFF(a.week, rc.cohort_week) DIV 7, COUNT(DISTINCT a.user_name), 0 FROM lf_ret_cohorts x JOIN retention_cohort rc "
    "ON rc.cohort_week = x.cohort_week AND rc.product = x.product JOIN retention_activity a ON "
    "a.product = rc.product AND a.user_name = rc.user_name GROUP BY rc.cohort_week, rc.product, "
    "DATEDIFF(a.week, rc.cohort_week) DIV 7",
};

/* Column W of the cohorts whose rows were not rebuilt whole. */
static const char retention_column_delete[] =
    "DELETE rw FROM retention_weekly rw LEFT JOIN lf_ret_cohorts x ON x.cohort_week = rw.cohort_week AND "
    "x.product = rw.product WHERE x.product IS NULL AND rw.cohort_week + INTERVAL rw.week_offset WEEK = '%s'";
static const char retention_column_insert[] =
    "INSERT INTO retention_weekly (cohort_week, product, week_offset, users, cohort_users) SELECT rc.cohort_week, "
    "a.product, DATEDIFF('%s', rc.cohort_week) DIV 7, COUNT(DISTINCT a.user_name), 0 FROM retention_activity a JOIN retention_cohort rc "
    "ON rc.product = a.product AND rc.user_name = a.user_name LEFT JOIN lf_ret_cohorts x ON "
    "x.cohort_week = rc.cohort_week AND x.product = rc.product WHERE a.week = '%s' AND x.product IS NULL "
    "GROUP BY rc.cohort_week, a.product";
static const char retention_sizes[] =
    "UPDATE retention_weekly rw JOIN (SELECT cohort_week, product, COUNT(*) AS n FROM retention_cohort GROUP BY "
    "cohort_week, product) s ON s.cohort_week = rw.cohort_week AND s.product = rw.product SET rw.cohort_users = s.n "
    "WHERE rw.cohort_users <> s.n";

/* The Mondays of the days, each once (days come sorted, so equal weeks are adjacent). */
static int weeks_of(const day_list *days, day_list *weeks)
{
    for (size_t i = 0; i < days->n; i++) {
        time_t t;
        if (parse_day(days->d[i], &t) != 0)
            return -EINVAL;
        struct tm tm;
        gmtime_r(&t, &tm);
        t -= (time_t)((tm.tm_wday + 6) % 7) * 86400;
        gmtime_r(&t, &tm);
        char w[DAY_LEN];
        strftime(w, sizeof w, "%Y-%m-%d", &tm);
        int rc = weeks->n && strcmp(weeks->d[weeks->n - 1], w) == 0 ? 0 : days_push(weeks, w);
        if (rc)
            return rc;
    }
    return 0;
}

/* The users active in week %s, noted as touched (run before and after the week's reload). */
static const char retention_touched[] =
    "INSERT IGNORE INTO lf_ret_touched SELECT product, user_name FROM retention_activity WHERE week = '%s'";

/* Reloads week w of retention_activity from the source and notes the users it had and has. */
static int retention_week(lf_analytics *a, const char *w, tsv *t, long long *rows, lf_buf *err)
{
    char sql[512];
    t->rows = 0;
    lf_buf_reset(&t->buf);
    snprintf(sql, sizeof sql,
             "SELECT DISTINCT product, user_name, '%s', product_version, site FROM sessions WHERE user_name IS "
             "NOT NULL AND started_at >= '%s' AND started_at < '%s' + INTERVAL 7 DAY",
             w, w, w);
    int rc = lf_mysql_query(a->src, sql, tsv_row, t);
    if (rc < 0)
        return db_err(a->src, "retention: reading sessions", rc, err);
    if ((rc = (int)lf_mysql_execf(a->dst, retention_touched, w)) < 0 ||
        (rc = (int)lf_mysql_execf(a->dst, "DELETE FROM retention_activity WHERE week = '%s'", w)) < 0)
        return db_err(a->dst, "retention: activity", rc, err);
    if (t->rows > 0) {
        if ((rc = (int)lf_mysql_load_data(a->dst, "retention_activity (product, user_name, week, product_version, site)",
                                          t->buf.data, t->buf.len)) < 0)
            return db_err(a->dst, "retention: activity", rc, err);
    }
    if ((rc = (int)lf_mysql_execf(a->dst, retention_touched, w)) < 0)
        return db_err(a->dst, "retention: activity", rc, err);
    *rows += t->rows;
    return 0;
}

static int run_retention(lf_analytics *a, const day_list *days, bool all, long long *rows, lf_buf *err)
{
    tsv t = {LF_BUF_INIT(SQL_MAX), 0};
    day_list weeks = {0};
    int rc = weeks_of(days, &weeks);
    if (rc < 0) {
        lf_buf_reset(err);
        lf_buf_msgf(err, "retention: bad day");
        goto out;
    }
    for (size_t i = 0; i < sizeof retention_temp_sql / sizeof *retention_temp_sql && rc >= 0; i++)
        rc = (int)lf_mysql_exec(a->dst, retention_temp_sql[i]);
    if (rc >= 0)
        rc = lf_mysql_begin(a->dst);
    if (rc < 0) {
        db_err(a->dst, "retention", rc, err);
        goto out;
    }
    if (all && ((rc = (int)lf_mysql_exec(a->dst, "DELETE FROM retention_activity")) < 0 ||
                (rc = (int)lf_mysql_exec(a->dst, "DELETE FROM retention_cohort")) < 0 ||
                (rc = (int)lf_mysql_exec(a->dst, "DELETE FROM retention_weekly")) < 0))
        db_err(a->dst, "retention: clearing", rc, err);
    for (size_t i = 0; i < weeks.n && rc >= 0; i++)
        rc = retention_week(a, weeks.d[i], &t, rows, err);
    for (size_t i = 0; i < sizeof retention_cohort_sql / sizeof *retention_cohort_sql && rc >= 0; i++)
        if ((rc = (int)lf_mysql_exec(a->dst, retention_cohort_sql[i])) < 0)
            db_err(a->dst, "retention: cohorts", rc, err);
    for (size_t i = 0; i < weeks.n && rc >= 0; i++)
        if ((rc = (int)lf_mysql_execf(a->dst, retention_column_delete, weeks.d[i])) < 0 ||
            (rc = (int)lf_mysql_execf(a->dst, retention_column_insert, weeks.d[i], weeks.d[i])) < 0)
            db_err(a->dst, "retention: week column", rc, err);
    if (rc >= 0 && (rc = (int)lf_mysql_exec(a->dst, retention_sizes)) < 0)
        db_err(a->dst, "retention: cohort sizes", rc, err);
    if (rc >= 0) {
        test_pause();
        if ((rc = lf_mysql_commit(a->dst)) < 0)
            db_err(a->dst, "retention: commit", rc, err);
    }
    if (rc < 0)
        lf_mysql_rollback(a->dst);
out:
    lf_free(weeks.d);
    lf_buf_free(&t.buf);
    return rc < 0 ? rc : 0;
}

/* ---- custom SQL jobs ----------------------------------------------------------------------- */

static const struct lf_analytics_job_section *find_custom(const struct lf_analytics_config *cfg,
                                                          const char *name)
{
    for (size_t i = 0; i < cfg->n_jobs; i++)
        if (strcmp(cfg->jobs[i].name, name) == 0)
            return &cfg->jobs[i];
    return NULL;
}

static int read_text(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    lf_buf b = LF_BUF_INIT(16u << 20);
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = lf_buf_append(&b, chunk, n);
    fclose(f);
    if (rc == 0 && !b.data)
        rc = lf_buf_append_str(&b, "");
    if (rc) {
        lf_buf_free(&b);
        return rc;
    }
    *out = lf_buf_steal(&b, NULL);
    return 0;
}

/* Replaces :from_day and :to_day by quoted dates; statements end with ';' at a line end. */
static int run_custom(lf_analytics *a, const struct lf_analytics_job_section *j, const char *from,
                      const char *to, long long *rows, lf_buf *err)
{
    char *text = NULL;
    int rc = read_text(j->sql_file, &text);
    if (rc < 0) {
        lf_buf_reset(err);
        lf_buf_msgf(err, "reading %s: %s", j->sql_file, lf_strerror(rc));
        return rc;
    }
    lf_buf sql = LF_BUF_INIT(SQL_MAX);
    for (const char *p = text; *p && !rc;) {
        if (strncmp(p, ":from_day", 9) == 0) {
            rc = lf_buf_appendf(&sql, "'%s'", from);
            p += 9;
        } else if (strncmp(p, ":to_day", 7) == 0) {
            rc = lf_buf_appendf(&sql, "'%s'", to);
            p += 7;
        } else {
            rc = lf_buf_append_char(&sql, *p++);
        }
    }
    free(text); /* from lf_buf_steal */
    if (rc != 0) { /* never run part of the file */
        lf_buf_free(&sql);
        lf_buf_reset(err);
        lf_buf_msgf(err, "%s: %s once its days are filled in", j->sql_file, lf_strerror(rc));
        return rc;
    }
    rc = lf_mysql_begin(a->dst);
    char *s = sql.data;
    while (rc >= 0 && s && *s) {
        char *end = strstr(s, ";\n");
        if (end)
            *end = '\0';
        const char *q = s;
        while (*q == ' ' || *q == '\n' || *q == '\t' || *q == '\r')
            q++;
        if (*q) {
            int64_t n = lf_mysql_exec(a->dst, q);
            if (n < 0)
                rc = (int)n;
            else
                *rows += n;
        }
        s = end ? end + 2 : NULL;
    }
    if (rc >= 0) {
        test_pause();
        rc = lf_mysql_commit(a->dst);
    }
    if (rc < 0) {
        db_err(a->dst, j->name, rc, err);
        lf_mysql_rollback(a->dst);
    }
    lf_buf_free(&sql);
    return rc < 0 ? rc : 0;
}

/* ---- a run ----------------------------------------------------------------------------------- */

int lf_analytics_run(lf_analytics *a, const char *job, const char *from, const char *to, bool all,
                     long long *rows_out)
{
    lf_buf err = LF_BUF_INIT(4096), q = LF_BUF_INIT(12288);
    day_list days = {0};
    long long rows = 0;
    int64_t got = 0, run_id = 0;
    char new_wm[32] = "", host[256] = "";
    struct timespec t0, t1;
    const day_job *dj = find_day_job(job);
    const struct lf_analytics_job_section *cj = dj ? NULL : find_custom(a->cfg, job);
    bool retention = strcmp(job, "retention") == 0;
    if (!dj && !cj && !retention)
        return -ENOENT;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    char lock_sql[256];
    snprintf(lock_sql, sizeof lock_sql, "SELECT GET_LOCK('logferry.analytics.%.100s', 0)", job);
    int rc = lf_mysql_query_int(a->dst, lock_sql, &got);
    if (rc < 0)
        return rc;
    if (got != 1) {
        LF_INFO("analytics", "job %s: running in another process (lock held); skipped", job);
        return 1;
    }
    /* Holding the lock, no other run of this job is alive: a 'running' row is a killed run's. */
    rc = lf_buf_append_str(&q, "UPDATE job_runs SET status = 'abandoned' WHERE status = 'running' AND job = ");
    rc = rc ? rc : lf_mysql_quote(a->dst, &q, job, strlen(job));
    if (rc != 0 || lf_mysql_exec(a->dst, lf_buf_cstr(&q)) < 0)
        LF_WARN("analytics", "job %s: marking abandoned runs: %s", job, lf_mysql_error(a->dst));
    lf_buf_reset(&q);
    gethostname(host, sizeof host - 1);
    rc = lf_buf_append_str(&q, "INSERT INTO job_runs (job, started_at, status, host) VALUES (");
    rc = rc ? rc : lf_mysql_quote(a->dst, &q, job, strlen(job));
    rc = rc ? rc : lf_buf_append_str(&q, ", NOW(3), 'running', ");
    rc = rc ? rc : lf_mysql_quote(a->dst, &q, host, strlen(host));
    rc = rc ? rc : lf_buf_append_str(&q, ")");
    rc = rc ? rc : (int)lf_mysql_exec(a->dst, lf_buf_cstr(&q));
    if (rc >= 0)
        rc = lf_mysql_query_int(a->dst, "SELECT LAST_INSERT_ID()", &run_id);
    if (rc < 0) {
        db_err(a->dst, "job_runs", rc, &err);
        goto release;
    }

    /* Which days. */
    if (from && to) {
        rc = days_range(&days, from, to);
        if (rc < 0)
            lf_buf_msgf(&err, "bad --from/--to");
    } else {
        char wm[32] = "1970-01-01";
        /* Sessions parsed in the last WATERMARK_SETTLE_S seconds wait for the next run: a transaction
         * still open in the parser may yet commit rows with a parsed_at older than MAX(parsed_at). */
        rc = lf_mysql_query(a->src,
                            "SELECT LEAST(MAX(parsed_at), NOW(3) - INTERVAL " LF_STR(WATERMARK_SETTLE_S)
                            " SECOND) FROM sessions",
                            str_row, new_wm);
        if (rc >= 0 && !all) {
            lf_buf_reset(&q);
            rc = lf_buf_append_str(&q, "SELECT parsed_until FROM job_watermarks WHERE job = ");
            rc = rc ? rc : lf_mysql_quote(a->dst, &q, job, strlen(job));
            rc = rc ? rc : lf_mysql_query(a->dst, lf_buf_cstr(&q), str_row, wm);
        }
        if (rc >= 0 && all) {
            rc = lf_mysql_query(a->src, "SELECT DISTINCT DATE(started_at) FROM sessions WHERE "
                                        "started_at IS NOT NULL ORDER BY 1", day_row, &days);
        } else if (rc >= 0 && new_wm[0]) {
            char sql[512];
            snprintf(sql, sizeof sql,
                     "SELECT DISTINCT DATE(started_at) FROM sessions WHERE parsed_at > '%s' AND "
                     "parsed_at <= '%s' AND started_at IS NOT NULL ORDER BY 1",
                     wm, new_wm);
            rc = lf_mysql_query(a->src, sql, day_row, &days);
        }
        if (rc < 0)
            db_err(a->src, "finding changed days", rc, &err);
    }

    /* The work. */
    if (rc >= 0 && days.n > 0) {
        if (dj) {
            for (size_t i = 0; i < days.n && rc >= 0; i++) {
                rc = run_day(a, dj, days.d[i], &rows, &err);
                if (rc >= 0 && a->on_day)
                    a->on_day(a->on_day_arg, job, i + 1, days.n);
            }
        } else if (retention) {
            rc = run_retention(a, &days, all, &rows, &err);
        } else {
            rc = run_custom(a, cj, days.d[0], days.d[days.n - 1], &rows, &err);
        }
    }
    if (rc >= 0 && !(from && to) && new_wm[0]) {
        lf_buf_reset(&q);
        rc = lf_buf_append_str(&q, "INSERT INTO job_watermarks (job, parsed_until, updated_at) VALUES (");
        rc = rc ? rc : lf_mysql_quote(a->dst, &q, job, strlen(job));
        rc = rc ? rc
                : lf_buf_appendf(&q, ", '%s', NOW(3)) ON DUPLICATE KEY UPDATE parsed_until = VALUES(parsed_until), "
                                     "updated_at = VALUES(updated_at)", new_wm);
        rc = rc ? rc : (int)lf_mysql_exec(a->dst, lf_buf_cstr(&q));
        if (rc < 0)
            db_err(a->dst, "job_watermarks", rc, &err);
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long ms = (long long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    lf_buf_reset(&q);
    /* The error text is at most 4 KiB and q has room for it quoted (8 KiB): if the statement still
     * cannot be built it is not run, since without its WHERE it would update every run. */
    int qrc = lf_buf_appendf(&q, "UPDATE job_runs SET finished_at = NOW(3), duration_ms = %lld, `rows` = %lld, "
                                 "status = '%s', window_from = %s%s%s, window_to = %s%s%s, error = ",
                             ms, rows, rc >= 0 ? "ok" : "failed", days.n ? "'" : "", days.n ? days.d[0] : "NULL",
                             days.n ? "'" : "", days.n ? "'" : "", days.n ? days.d[days.n - 1] : "NULL",
                             days.n ? "'" : "");
    if (qrc == 0 && rc < 0)
        qrc = lf_mysql_quote(a->dst, &q, err.data ? err.data : "error", err.data ? err.len : 5);
    else if (qrc == 0)
        qrc = lf_buf_append_str(&q, "NULL");
    qrc = qrc ? qrc : lf_buf_appendf(&q, " WHERE id = %lld", (long long)run_id);
    if (qrc != 0 || lf_mysql_exec(a->dst, lf_buf_cstr(&q)) < 0)
        LF_WARN("analytics", "job %s: recording the run: %s", job, lf_mysql_error(a->dst));
    if (rc < 0)
        LF_ERROR("analytics", "job %s failed: %s", job, lf_buf_cstr(&err));
    else
        LF_INFO("analytics", "job %s: %zu day(s), %lld rows, %lld ms", job, days.n, rows, ms);
release:
    snprintf(lock_sql, sizeof lock_sql, "DO RELEASE_LOCK('logferry.analytics.%.100s')", job);
    lf_mysql_exec(a->dst, lock_sql);
    lf_free(days.d);
    lf_buf_free(&err);
    lf_buf_free(&q);
    if (rows_out)
        *rows_out = rows;
    return rc < 0 ? rc : 0;
}
