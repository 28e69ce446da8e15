/* Evaluation of check results into observations: see checks.h. */
#include "checks.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checks_config.h"
#include "lf_config.h"
#include "lf_error.h"

const char *const lf_check_kind_names[] = {"healthz", "queue",      "parser_progress", "analytics_freshness",
                                           "mysql",   "elasticsearch", "disk", "site_quiet", "site_refusals",
                                           NULL};
const char *const lf_es_status_names[] = {"green", "yellow", "red", NULL};

void lf_check_rules(const lf_check_config *c, lf_alert_rules *r)
{
    memset(r, 0, sizeof(*r));
    r->pending_count = c->pending_count > UINT32_MAX ? UINT32_MAX : (uint32_t)c->pending_count;
    r->pending_ms = (int64_t)c->pending_for_ms;
    r->reminder_ms = (int64_t)c->reminder_every_ms;
    r->flap_window_ms = (int64_t)c->flap_window_ms;
    r->flap_threshold = c->flap_changes > UINT32_MAX ? UINT32_MAX : (uint32_t)c->flap_changes;
    r->flap_quiet_ms = (int64_t)c->flap_quiet_ms;
}

void lf_check_observation(const lf_check_result *res, int64_t time_ms, lf_alert_observation *obs)
{
    obs->time_ms = time_ms;
    obs->ok = res->ok;
    obs->value = res->value;
    obs->threshold = res->threshold;
    obs->message = res->message;
}

static void set(lf_check_result *res, bool ok, const char *value, const char *threshold, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set(lf_check_result *res, bool ok, const char *value, const char *threshold, const char *fmt, ...)
{
    res->ok = ok;
    snprintf(res->value, sizeof(res->value), "%s", value ? value : "");
    snprintf(res->threshold, sizeof(res->threshold), "%s", threshold ? threshold : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
}

void lf_check_format_bytes(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 6) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%" PRIu64 " B", bytes);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
}

static void format_seconds(int64_t s, char *buf, size_t cap)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(buf, cap, "%" PRId64 "d %" PRId64 "h", s / 86400, s / 3600 % 24);
    else if (s >= 3600)
        snprintf(buf, cap, "%" PRId64 "h %" PRId64 "m", s / 3600, s / 60 % 60);
    else if (s >= 60)
        snprintf(buf, cap, "%" PRId64 "m %" PRId64 "s", s / 60, s % 60);
    else
        snprintf(buf, cap, "%" PRId64 "s", s);
}

/* A transport failure or a non-200 answer is a failed check with a message that says which. */
static bool http_failed(const lf_check_config *c, const lf_check_http *h, const char *what, lf_check_result *res)
{
    const char *url = c->url ? c->url : "(no url)";
    if (h->transport_error < 0) {
        set(res, false, "unreachable", "HTTP 200", "%s %s unreachable: %s", what, url, lf_strerror(h->transport_error));
        return true;
    }
    if (h->status != 200) {
        char v[32];
        snprintf(v, sizeof(v), "HTTP %d", h->status);
        set(res, false, v, "HTTP 200", "%s %s answered HTTP %d%s", what, url, h->status,
            h->status == 401 || h->status == 403 ? " (token rejected)" : "");
        return true;
    }
    return false;
}

static json_t *parse_object(const lf_check_http *h)
{
    if (!h->body)
        return NULL;
    json_t *o = json_loadb(h->body, h->len, 0, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void lf_check_eval_healthz(const lf_check_config *c, const lf_check_http *h, lf_check_result *res)
{
    if (http_failed(c, h, "health endpoint", res))
        return;
    json_t *o = parse_object(h);
    const char *status = json_string_value(json_object_get(o, "status"));
    if (!status)
        set(res, false, "not JSON", "status ok", "health endpoint %s answered without a JSON status",
            c->url ? c->url : "");
    else if (strcmp(status, "ok") != 0)
        set(res, false, status, "status ok", "health endpoint %s reports status \"%.64s\"", c->url ? c->url : "",
            status);
    else
        set(res, true, "ok", "status ok", "%s is healthy", c->url ? c->url : "");
    json_decref(o);
}

/* A non-negative integer member, or -1. */
static int64_t get_count(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return (int64_t)json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 9e18)
        return (int64_t)json_real_value(v);
    return -1;
}

/* Queue depth and age from the statistics answer; age in seconds (oldest_age_s, or _ms). */
static bool queue_stats(json_t *o, int64_t *depth, int64_t *age_s, int64_t *dlq)
{
    *depth = get_count(o, "depth");
    *dlq = get_count(o, "dlq_depth");
    *age_s = get_count(o, "oldest_age_s");
    if (*age_s < 0) {
        int64_t ms = get_count(o, "oldest_age_ms");
        *age_s = ms < 0 ? -1 : ms / 1000;
    }
    return *depth >= 0;
}

void lf_check_eval_queue(const lf_check_config *c, const lf_check_http *h, lf_check_result *res)
{
    if (http_failed(c, h, "queue statistics", res))
        return;
    json_t *o = parse_object(h);
    int64_t depth, age, dlq;
    if (!o || !queue_stats(o, &depth, &age, &dlq)) {
        set(res, false, "unreadable", "queue statistics", "queue statistics from %s are not in the expected format",
            c->url ? c->url : "");
        json_decref(o);
        return;
    }
    json_decref(o);
    char v[LF_ALERT_VALUE_MAX], t[LF_ALERT_VALUE_MAX], age_text[32];
    format_seconds(age, age_text, sizeof(age_text));
    /* the first threshold crossed is the one reported; the value always shows all three */
    snprintf(v, sizeof(v), "depth %" PRId64 ", oldest %s, dead letters %" PRId64, depth, age < 0 ? "?" : age_text,
             dlq < 0 ? 0 : dlq);
    if (c->max_dlq_depth >= 0 && dlq > c->max_dlq_depth) {
        snprintf(t, sizeof(t), "dead letters <= %" PRId64, c->max_dlq_depth);
        set(res, false, v, t, "%" PRId64 " message(s) in the dead-letter queue", dlq);
    } else if (c->max_depth >= 0 && depth > c->max_depth) {
        snprintf(t, sizeof(t), "depth <= %" PRId64, c->max_depth);
        set(res, false, v, t, "queue holds %" PRId64 " messages", depth);
    } else if (c->max_oldest_age_ms > 0 && age >= 0 && (uint64_t)age * 1000 > c->max_oldest_age_ms) {
        char lim[32];
        format_seconds((int64_t)(c->max_oldest_age_ms / 1000), lim, sizeof(lim));
        snprintf(t, sizeof(t), "oldest <= %s", lim);
        set(res, false, v, t, "oldest message waits for %s", age_text);
    } else {
        set(res, true, v, "within limits", "queue within limits");
    }
}

void lf_check_eval_elasticsearch(const lf_check_config *c, const lf_check_http *h, lf_check_result *res)
{
    if (http_failed(c, h, "Elasticsearch", res))
        return;
    json_t *o = parse_object(h);
    const char *status = json_string_value(json_object_get(o, "status"));
    int level = -1;
    for (int i = 0; status && lf_es_status_names[i]; i++)
        if (strcmp(status, lf_es_status_names[i]) == 0)
            level = i;
    int worst = c->es_status >= LF_ES_GREEN && c->es_status <= LF_ES_YELLOW ? c->es_status : LF_ES_YELLOW;
    char t[64];
    snprintf(t, sizeof(t), "status %s%s", lf_es_status_names[worst], worst == LF_ES_GREEN ? "" : " or better");
    if (level < 0) {
        set(res, false, "unreadable", t, "Elasticsearch cluster health from %s has no known status",
            c->url ? c->url : "");
    } else {
        const char *cluster = json_string_value(json_object_get(o, "cluster_name"));
        int64_t unassigned = get_count(o, "unassigned_shards");
        char v[LF_ALERT_VALUE_MAX];
        if (unassigned >= 0)
            snprintf(v, sizeof(v), "%s, %" PRId64 " unassigned shard(s)", status, unassigned);
        else
            snprintf(v, sizeof(v), "%s", status);
        if (level > worst)
            set(res, false, v, t, "Elasticsearch cluster %.100s is %s", cluster ? cluster : "", status);
        else
            set(res, true, v, t, "Elasticsearch cluster %.100s is %s", cluster ? cluster : "", status);
    }
    json_decref(o);
}

int lf_check_metric_sum(const char *text, size_t len, const char *name, double *sum)
{
    size_t nl = strlen(name);
    bool found = false;
    double total = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && p[0] != '#' && memcmp(p, name, nl) == 0 && (p[nl] == '{' || p[nl] == ' ')) {
            const char *q = p + nl;
            if (*q == '{') { /* skip labels; a quoted value may contain '}' */
                bool quoted = false;
                for (q++; q < eol; q++) {
                    if (quoted && *q == '\\' && q + 1 < eol)
                        q++;
                    else if (*q == '"')
                        quoted = !quoted;
                    else if (!quoted && *q == '}')
                        break;
                }
                q++;
            }
            while (q < eol && *q == ' ')
                q++;
            char num[64];
            size_t k = 0;
            while (q < eol && *q != ' ' && k < sizeof(num) - 1)
                num[k++] = *q++;
            num[k] = '\0';
            char *e = NULL;
            double v = strtod(num, &e);
            if (k > 0 && e && *e == '\0' && isfinite(v)) {
                total += v;
                found = true;
            }
        }
        p = eol + 1;
    }
    if (!found)
        return -ENOENT;
    *sum = total;
    return 0;
}

void lf_check_eval_parser_progress(const lf_check_config *c, lf_check_progress *p, const lf_check_http *queue,
                                   const lf_check_http *metrics, int64_t now_ms, lf_check_result *res)
{
    char window[32], t[LF_ALERT_VALUE_MAX];
    format_seconds((int64_t)(c->progress_window_ms / 1000), window, sizeof(window));
    snprintf(t, sizeof(t), "a session parsed within %s while the queue is not empty", window);
    if (http_failed(c, queue, "queue statistics", res))
        return;
    json_t *o = parse_object(queue);
    int64_t depth, age, dlq;
    bool have = o && queue_stats(o, &depth, &age, &dlq);
    json_decref(o);
    if (!have) {
        set(res, false, "unreadable", t, "queue statistics from %s are not in the expected format",
            c->url ? c->url : "");
        return;
    }
    const char *metric = c->metric ? c->metric : LF_CHECK_DEFAULT_METRIC;
    double counter = 0;
    /* an unreadable counter shows no progress: a dead parser fails once the window has passed */
    bool readable = metrics->transport_error >= 0 && metrics->status == 200 && metrics->body &&
                    lf_check_metric_sum(metrics->body, metrics->len, metric, &counter) == 0;
    bool moved = false;
    if (readable) {
        /* the counter rose, or fell to a positive value (the parser restarted and parsed since) */
        moved = !p->have_counter || counter > p->counter || (counter < p->counter && counter > 0);
        p->have_counter = true;
        p->counter = counter;
    }
    if (moved || depth == 0 || p->last_progress_ms == 0)
        p->last_progress_ms = now_ms;
    int64_t idle_ms = now_ms - p->last_progress_ms;
    char idle[32], v[LF_ALERT_VALUE_MAX];
    format_seconds(idle_ms / 1000, idle, sizeof(idle));
    snprintf(v, sizeof(v), "no progress for %s, queue depth %" PRId64 "%s", idle, depth,
             readable ? "" : ", parser metrics unreadable");
    if (depth > 0 && (uint64_t)idle_ms >= c->progress_window_ms)
        set(res, false, v, t, "parser stalled: no session parsed for %s while %" PRId64 " wait in the queue%s", idle,
            depth, readable ? "" : " (its metrics cannot be read)");
    else
        set(res, true, v, t, "parser is keeping up (queue depth %" PRId64 ")", depth);
}

void lf_check_eval_freshness(const lf_check_config *c, const lf_check_job_age *rows, size_t n, int query_error,
                             const char *error, lf_check_result *res)
{
    char lim[32], t[LF_ALERT_VALUE_MAX];
    format_seconds((int64_t)(c->max_age_ms / 1000), lim, sizeof(lim));
    snprintf(t, sizeof(t), "last successful run younger than %s", lim);
    if (query_error < 0) {
        set(res, false, "query failed", t, "analytics run history cannot be read: %s",
            error && error[0] ? error : lf_strerror(query_error));
        return;
    }
    int64_t max_s = (int64_t)(c->max_age_ms / 1000);
    const char *stale = NULL;
    int64_t stale_age = -2; /* -1: never ran */
    size_t checked = 0;
    if (c->jobs && c->jobs[0]) {
        for (char **j = c->jobs; *j; j++) {
            int64_t age = -1;
            for (size_t i = 0; i < n; i++)
                if (rows[i].job && strcmp(rows[i].job, *j) == 0)
                    age = rows[i].age_s;
            checked++;
            if ((age < 0 || age > max_s) && (stale_age != -1) && (age < 0 || age > stale_age)) {
                stale = *j;
                stale_age = age;
            }
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            checked++;
            int64_t age = rows[i].age_s;
            if ((age < 0 || age > max_s) && (stale_age != -1) && (age < 0 || age > stale_age)) {
                stale = rows[i].job;
                stale_age = age;
            }
        }
        if (checked == 0) {
            set(res, false, "no runs", t, "no successful analytics run is recorded");
            return;
        }
    }
    char v[LF_ALERT_VALUE_MAX], age_text[32];
    if (stale) {
        if (stale_age < 0) {
            snprintf(v, sizeof(v), "%.64s: never", stale);
            set(res, false, v, t, "analytics job %.64s has no successful run", stale);
        } else {
            format_seconds(stale_age, age_text, sizeof(age_text));
            snprintf(v, sizeof(v), "%.64s: %s ago", stale, age_text);
            set(res, false, v, t, "analytics job %.64s last succeeded %s ago", stale, age_text);
        }
        return;
    }
    int64_t oldest = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].age_s > oldest)
            oldest = rows[i].age_s;
    format_seconds(oldest, age_text, sizeof(age_text));
    snprintf(v, sizeof(v), "%zu job(s), oldest run %s ago", checked, age_text);
    set(res, true, v, t, "analytics is fresh");
}

void lf_check_eval_mysql(const lf_check_config *c, int connect_error, const char *error, double latency_ms,
                         lf_check_result *res)
{
    char t[64], v[64];
    snprintf(t, sizeof(t), "SELECT 1 within %" PRIu64 " ms", c->max_latency_ms);
    const char *where = c->mysql_socket ? c->mysql_socket : c->mysql_host ? c->mysql_host : "localhost";
    if (connect_error < 0) {
        set(res, false, "no answer", t, "MySQL at %.100s fails: %.300s", where,
            error && error[0] ? error : lf_strerror(connect_error));
        return;
    }
    snprintf(v, sizeof(v), "SELECT 1 in %.1f ms", latency_ms);
    if (c->max_latency_ms > 0 && latency_ms > (double)c->max_latency_ms)
        set(res, false, v, t, "MySQL at %.100s is slow: SELECT 1 took %.1f ms", where, latency_ms);
    else
        set(res, true, v, t, "MySQL at %.100s answers", where);
}

void lf_check_eval_disk(const lf_check_config *c, int stat_error, uint64_t free_bytes, uint64_t total_bytes,
                        lf_check_result *res)
{
    const char *path = c->path ? c->path : "";
    char t[LF_ALERT_VALUE_MAX], v[LF_ALERT_VALUE_MAX], fb[32], mb[32];
    lf_check_format_bytes(c->min_free_bytes, mb, sizeof(mb));
    if (c->min_free_bytes > 0 && c->min_free_percent > 0)
        snprintf(t, sizeof(t), "free >= %s and >= %.1f%%", mb, c->min_free_percent);
    else if (c->min_free_percent > 0)
        snprintf(t, sizeof(t), "free >= %.1f%%", c->min_free_percent);
    else
        snprintf(t, sizeof(t), "free >= %s", mb);
    if (stat_error < 0) {
        set(res, false, "unknown", t, "free space of %.200s cannot be read: %s", path, lf_strerror(stat_error));
        return;
    }
    double pct = total_bytes ? 100.0 * (double)free_bytes / (double)total_bytes : 0.0;
    lf_check_format_bytes(free_bytes, fb, sizeof(fb));
    snprintf(v, sizeof(v), "%s free (%.1f%%)", fb, pct);
    if ((c->min_free_bytes > 0 && free_bytes < c->min_free_bytes) ||
        (c->min_free_percent > 0 && pct < c->min_free_percent))
        set(res, false, v, t, "disk almost full at %.200s: %s free (%.1f%%)", path, fb, pct);
    else
        set(res, true, v, t, "enough free space at %.200s", path);
}

/* ---------------------------------------------------------------------------------------------- */
/* Sites (the receiver's GET /v1/sites) */

uint64_t lf_check_site_interval(const char *entry, char *site, size_t site_size)
{
    const char *eq = strchr(entry, '=');
    if (!eq || eq == entry || (size_t)(eq - entry) >= site_size)
        return 0;
    uint64_t ms = 0;
    if (lf_config_parse_duration(eq + 1, &ms) != 0 || ms == 0)
        return 0;
    memcpy(site, entry, (size_t)(eq - entry));
    site[eq - entry] = '\0';
    return ms;
}

static uint64_t interval_of(const lf_check_config *c, const char *site)
{
    for (char **e = c->site_intervals; e && *e; e++) {
        char name[80];
        uint64_t ms = lf_check_site_interval(*e, name, sizeof name);
        if (ms && strcmp(name, site) == 0)
            return ms;
    }
    return c->max_quiet_ms;
}

/* "2026-12-07T01:02:03Z" in ms since the epoch; -1 when it is not that. */
static int64_t rfc3339_ms(const char *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = t ? strptime(t, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (!end || *end)
        return -1;
    return (int64_t)timegm(&tm) * 1000;
}

static json_t *sites_of(const lf_check_config *c, const lf_check_http *h, lf_check_result *res)
{
    if (http_failed(c, h, "the receiver's site list", res))
        return NULL;
    json_t *o = parse_object(h);
    json_t *sites = o ? json_object_get(o, "sites") : NULL;
    if (!json_is_array(sites)) {
        set(res, false, "unreadable", "site list", "the site list from %s is not in the expected format",
            c->url ? c->url : "");
        json_decref(o);
        return NULL;
    }
    return o;
}

void lf_check_eval_site_quiet(const lf_check_config *c, const lf_check_http *h, int64_t now_ms, lf_check_result *res)
{
    json_t *o = sites_of(c, h, res);
    if (!o)
        return;
    char quiet[LF_ALERT_MESSAGE_MAX] = "";
    size_t n_quiet = 0, n_watched = 0, used = 0;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(o, "sites"), i, s)
    {
        const char *name = json_string_value(json_object_get(s, "site"));
        const char *state = json_string_value(json_object_get(s, "state"));
        int64_t last = rfc3339_ms(json_string_value(json_object_get(s, "last_upload")));
        /* a disabled site is quiet on purpose; one that never uploaded has nothing to compare */
        if (!name || !state || strcmp(state, "enabled") != 0 || last < 0)
            continue;
        n_watched++;
        uint64_t limit = interval_of(c, name);
        if (now_ms - last <= (int64_t)limit)
            continue;
        char age[32], lim[32];
        format_seconds((now_ms - last) / 1000, age, sizeof age);
        format_seconds((int64_t)(limit / 1000), lim, sizeof lim);
        int w = snprintf(quiet + used, sizeof quiet - used, "%s%s sent nothing for %s (expected every %s)",
                         n_quiet ? "; " : "", name, age, lim);
        if (w > 0 && (size_t)w < sizeof quiet - used)
            used += (size_t)w;
        n_quiet++;
    }
    json_decref(o);
    char v[LF_ALERT_VALUE_MAX], t[LF_ALERT_VALUE_MAX], lim[32];
    format_seconds((int64_t)(c->max_quiet_ms / 1000), lim, sizeof lim);
    snprintf(t, sizeof t, "an upload every %s%s", lim, c->site_intervals ? " (or per site)" : "");
    snprintf(v, sizeof v, "%zu of %zu sites quiet", n_quiet, n_watched);
    if (n_quiet)
        set(res, false, v, t, "%s", quiet);
    else
        set(res, true, v, t, "every site uploaded within its interval (%zu watched)", n_watched);
}

/* Reasons a site causes; the others (busy, queue_full, disk_low, in_progress, storage errors) are
 * the receiver's own state, which other checks watch. */
static bool reason_counted(const lf_check_config *c, const char *reason)
{
    if (c->reasons) {
        for (char **r = c->reasons; *r; r++)
            if (strcmp(*r, reason) == 0)
                return true;
        return false;
    }
    static const char *const pressure[] = {"busy", "queue_full", "disk_low", "in_progress", "storage_full",
                                           "storage_error"};
    for (size_t i = 0; i < sizeof pressure / sizeof pressure[0]; i++)
        if (strcmp(pressure[i], reason) == 0)
            return false;
    return true;
}

static uint64_t previous_count(const lf_check_progress *p, const char *site, bool *known)
{
    for (size_t i = 0; i < p->n_sites; i++)
        if (strcmp(p->sites[i].name, site) == 0) {
            *known = true;
            return p->sites[i].count;
        }
    *known = false;
    return 0;
}

void lf_check_eval_site_refusals(const lf_check_config *c, lf_check_progress *p, const lf_check_http *h,
                                 int64_t now_ms, lf_check_result *res)
{
    (void)now_ms;
    json_t *o = sites_of(c, h, res);
    if (!o)
        return;
    uint64_t total = 0;
    char recent[LF_ALERT_MESSAGE_MAX] = "";
    size_t used = 0, n_recent = 0, n_sites = 0;
    lf_check_progress next = *p;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(o, "sites"), i, s)
    {
        const char *name = json_string_value(json_object_get(s, "site"));
        if (!name)
            continue;
        uint64_t site_total = 0;
        const char *reason;
        json_t *n;
        char reasons[160] = "";
        size_t rused = 0;
        json_object_foreach(json_object_get(s, "refusals_by_reason"), reason, n)
        {
            if (!reason_counted(c, reason) || !json_is_integer(n) || json_integer_value(n) < 0)
                continue;
            site_total += (uint64_t)json_integer_value(n);
            int w = snprintf(reasons + rused, sizeof reasons - rused, "%s%s %lld", rused ? ", " : "", reason,
                             (long long)json_integer_value(n));
            if (w > 0 && (size_t)w < sizeof reasons - rused)
                rused += (size_t)w;
        }
        total += site_total;
        /* name the sites whose count grew since the previous run */
        bool known;
        uint64_t before = previous_count(p, name, &known);
        if (p->have_refusals && site_total > before) {
            int w = snprintf(recent + used, sizeof recent - used, "%s%s (%s)", n_recent ? "; " : "", name, reasons);
            if (w > 0 && (size_t)w < sizeof recent - used)
                used += (size_t)w;
            n_recent++;
        }
        if (n_sites < LF_CHECK_REFUSAL_SITES) {
            snprintf(next.sites[n_sites].name, sizeof next.sites[n_sites].name, "%s", name);
            next.sites[n_sites].count = site_total;
            n_sites++;
        }
    }
    json_decref(o);
    /* the first run, and a count that went down (a new index), only set the baseline */
    uint64_t new_ones = p->have_refusals && total >= p->refusals ? total - p->refusals : 0;
    bool baseline = !p->have_refusals || total < p->refusals;
    next.have_refusals = true;
    next.refusals = total;
    next.n_sites = n_sites;
    *p = next;
    char v[LF_ALERT_VALUE_MAX], t[LF_ALERT_VALUE_MAX];
    snprintf(v, sizeof v, "%" PRIu64 " refused since the last check", new_ones);
    snprintf(t, sizeof t, "at most %" PRIu64, c->max_refusals);
    if (!baseline && new_ones > c->max_refusals)
        set(res, false, v, t, "%" PRIu64 " uploads refused since the last check: %s", new_ones,
            n_recent ? recent : "(more sites than are remembered one by one)");
    else
        set(res, true, v, t, "%s", baseline ? "refusal counts read (first run)" : "no new refusals over the limit");
}
