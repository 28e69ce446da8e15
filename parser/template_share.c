/* Templates shared through MySQL (see template_share.h). */
#include "template_share.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"

typedef struct sync_state {
    lf_miner *m;
    uint64_t rev;
    int rc;
} sync_state;

static bool to_u64(const char *s, unsigned long len, uint64_t *v)
{
    if (!s || len == 0 || len > 20)
        return false;
    uint64_t x = 0;
    for (unsigned long i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *v = x;
    return true;
}

/* template_id, structure, canonical_id, occurrences, born_rev, rev */
static int sync_row(void *arg, unsigned n, char **v, unsigned long *l)
{
    sync_state *s = arg;
    uint64_t id, count = 0, born = 0, rev, canon;
    if (n != 6 || !to_u64(v[0], l[0], &id) || !to_u64(v[5], l[5], &rev))
        return LF_EFORMAT;
    (void)to_u64(v[3], l[3], &count);
    (void)to_u64(v[4], l[4], &born);
    if (rev > s->rev)
        s->rev = rev;
    int rc;
    if (v[2]) {
        if (!to_u64(v[2], l[2], &canon))
            return LF_EFORMAT;
        rc = canon == id ? 0 : lf_miner_restore_alias(s->m, id, canon);
    } else {
        if (!v[1])
            return 0;
        rc = lf_miner_restore(s->m, id, v[1], l[1], count, born);
    }
    if (rc == LF_EFORMAT) {
        /* a row this parser cannot read (written by hand, or by a newer version): skip it, say so */
        LF_WARN("parser", "templates row %" PRIu64 " has a structure this parser cannot read; ignored", id);
        return 0;
    }
    return rc;
}

int lf_template_share_sync(lf_mysql *db, lf_miner *m, const char *log_type, uint64_t *rev)
{
    lf_buf q = LF_BUF_INIT(1 << 16);
    /* the first sync takes every row, rows from before revisions (rev 0) too; merged rows after the
     * live ones of a revision, so that the template they point at is there */
    int rc = lf_buf_append_str(&q, "SELECT template_id, COALESCE(structure, template), canonical_id, occurrences, "
                                   "born_rev, rev FROM templates WHERE log_type = ");
    rc = rc ? rc : lf_mysql_quote(db, &q, log_type, strlen(log_type));
    rc = rc ? rc : lf_buf_appendf(&q, " AND rev %s %" PRIu64 " ORDER BY rev, canonical_id IS NOT NULL, template_id",
                              *rev ? ">" : ">=", *rev);
    sync_state s = {m, *rev, 0};
    if (rc == 0)
        rc = lf_mysql_query(db, lf_buf_cstr(&q), sync_row, &s);
    lf_buf_free(&q);
    if (rc == 0)
        *rev = s.rev ? s.rev : 1; /* past the first sync even when the table is empty */
    return rc;
}

typedef struct change {
    uint64_t id;
    lf_template *t;
} change;

typedef struct write_state {
    change *v;
    size_t n, cap;
    lf_miner_alias *al;
    size_t nal, capal;
} write_state;

static int collect_tpl(lf_template *t, void *arg)
{
    write_state *w = arg;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        change *nv = lf_realloc(w->v, cap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        w->v = nv;
        w->cap = cap;
    }
    w->v[w->n++] = (change){lf_template_id(t), t};
    return 0;
}

static int collect_alias(const lf_miner_alias *a, void *arg)
{
    write_state *w = arg;
    if (w->nal == w->capal) {
        size_t cap = w->capal ? w->capal * 2 : 16;
        lf_miner_alias *na = lf_realloc(w->al, cap * sizeof *na);
        if (!na)
            return -ENOMEM;
        w->al = na;
        w->capal = cap;
    }
    w->al[w->nal++] = *a;
    return 0;
}

static int cmp_change(const void *a, const void *b)
{
    uint64_t x = ((const change *)a)->id, y = ((const change *)b)->id;
    return x < y ? -1 : x > y;
}

typedef struct u64_result {
    bool found;
    uint64_t v;
} u64_result;

static int u64_row(void *arg, unsigned n, char **v, unsigned long *l)
{
    u64_result *r = arg;
    if (n < 1 || !v[0] || !to_u64(v[0], l[0], &r->v))
        return LF_EFORMAT;
    r->found = true;
    return 1; /* the first row is enough */
}

/* The first column of the first row as an unsigned 64-bit number (ids do not fit int64_t). */
static int query_u64(lf_mysql *db, const char *sql, uint64_t *out, bool *found)
{
    u64_result r = {0};
    int rc = lf_mysql_query(db, sql, u64_row, &r);
    if (rc == 1)
        rc = 0;
    *found = r.found;
    *out = r.v;
    return rc;
}

static int exec_ok(lf_mysql *db, const char *sql)
{
    int64_t n = lf_mysql_exec(db, sql);
    return n < 0 ? (int)n : 0;
}

int lf_template_share_write(lf_mysql *db, lf_miner *m, const char *log_type, lf_buf *b, uint64_t *rev)
{
    *rev = 0;
    if (!lf_miner_dirty(m))
        return 0;
    write_state w = {0};
    int rc = lf_miner_foreach_changed(m, collect_tpl, collect_alias, &w);
    if (rc == 0 && w.n + w.nal == 0)
        goto out;
    /* the revision: the row lock makes writers of changes take turns until they commit */
    int64_t r = 0;
    rc = rc ? rc : exec_ok(db, "UPDATE template_revs SET rev = LAST_INSERT_ID(rev + 1) WHERE id = 1");
    rc = rc ? rc : lf_mysql_query_int(db, "SELECT LAST_INSERT_ID()", &r);
    if (rc == 0 && r <= 0)
        rc = LF_EFORMAT; /* template_revs has no row: the schema is not migrated */
    if (rc)
        goto out;
    *rev = (uint64_t)r;
    /* templates in id order, so that concurrent loads lock their rows in the same order */
    qsort(w.v, w.n, sizeof *w.v, cmp_change);
    char now[32];
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        time_t sec = ts.tv_sec;
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(now, sizeof now, "'%Y-%m-%d %H:%M:%S'", &tm);
    }
    if (w.n) {
        lf_buf_reset(b);
        rc = lf_buf_append_str(b, "INSERT INTO templates (template_id, log_type, template, structure, first_seen, "
                                  "last_seen, occurrences, rev, born_rev) VALUES ");
        for (size_t i = 0; i < w.n && !rc; i++) {
            size_t tl, sl;
            const char *text = lf_template_text(w.v[i].t, &tl);
            const char *st = lf_template_structure(w.v[i].t, &sl);
            if (!text || !st) {
                rc = -ENOMEM;
                break;
            }
            uint64_t born = lf_template_order(w.v[i].t);
            rc = lf_buf_appendf(b, "%s(%" PRIu64 ",", i ? "," : "", w.v[i].id);
            rc = rc ? rc : lf_mysql_quote(db, b, log_type, strlen(log_type));
            rc = rc ? rc : lf_buf_append_char(b, ',');
            rc = rc ? rc : lf_mysql_quote(db, b, text, tl);
            rc = rc ? rc : lf_buf_append_char(b, ',');
            rc = rc ? rc : lf_mysql_quote(db, b, st, sl);
            rc = rc ? rc : lf_buf_appendf(b, ",%s,%s,0,%" PRIu64 ",%" PRIu64 ")", now, now, *rev,
                                      born == UINT64_MAX || born == 0 ? *rev : born);
        }
        /* a template merged meanwhile by another parser stays merged (its canonical_id is kept): this
         * parser learns of it at its next sync */
        rc = rc ? rc : lf_buf_append_str(b, " ON DUPLICATE KEY UPDATE template = VALUES(template), structure = "
                                        "VALUES(structure), rev = VALUES(rev), born_rev = IF(born_rev = 0, "
                                        "VALUES(born_rev), born_rev)");
        rc = rc ? rc : exec_ok(db, lf_buf_cstr(b));
    }
    for (size_t i = 0; i < w.nal && !rc; i++) {
        /* the end of the chain `to` is on, then every row on `from`'s chain moves to it */
        uint64_t root = 0;
        bool found;
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT COALESCE(canonical_id, template_id) FROM templates WHERE template_id = %" PRIu64,
                 w.al[i].to);
        if ((rc = query_u64(db, sql, &root, &found)) != 0)
            break;
        if (!found)
            root = w.al[i].to;
        snprintf(sql, sizeof sql,
                 "UPDATE templates SET canonical_id = %" PRIu64 ", rev = %" PRIu64 " WHERE (template_id = %" PRIu64
                 " OR canonical_id = %" PRIu64 ") AND template_id <> %" PRIu64,
                 root, *rev, w.al[i].from, w.al[i].from, root);
        rc = exec_ok(db, sql);
    }
out:
    lf_free(w.v);
    lf_free(w.al);
    return rc;
}
