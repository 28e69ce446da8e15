#include "site_report.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lf_sign.h"
#include "site_figures.h"

static json_t *time_or_null(uint64_t ms)
{
    if (!ms)
        return json_null();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char text[32];
    if (!gmtime_r(&t, &tm) || strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return json_null();
    return json_string(text);
}

/* The figures of one site, created with zeros on first use. NULL: out of memory. */
static json_t *figures_of(json_t *by_site, const char *site)
{
    json_t *o = json_object_get(by_site, site);
    if (o)
        return o;
    o = json_pack("{s:i,s:i,s:n,s:i,s:{},s:n}", "sessions", 0, "bytes", 0, "last_upload", "refusals", 0,
                  "refusals_by_reason", "last_refusal");
    return o && json_object_set_new(by_site, site, o) == 0 ? o : NULL;
}

static int add_uploads(void *arg, const char *site, uint64_t sessions, uint64_t bytes, uint64_t last_ms)
{
    json_t *o = figures_of(arg, site);
    if (!o || json_object_set_new(o, "sessions", json_integer((json_int_t)sessions)) ||
        json_object_set_new(o, "bytes", json_integer((json_int_t)bytes)) ||
        json_object_set_new(o, "last_upload", time_or_null(last_ms)))
        return -ENOMEM;
    return 0;
}

static int add_refusals(void *arg, const char *site, const char *reason, uint64_t count, uint64_t last_ms)
{
    json_t *o = figures_of(arg, site);
    if (!o)
        return -ENOMEM;
    json_int_t total = json_integer_value(json_object_get(o, "refusals")) + (json_int_t)count;
    const char *prev = json_string_value(json_object_get(o, "last_refusal"));
    json_t *when = time_or_null(last_ms);
    /* RFC 3339 UTC strings of one format order as the times do */
    bool later = !prev || (json_is_string(when) && strcmp(json_string_value(when), prev) > 0);
    if (json_object_set_new(o, "refusals", json_integer(total)) ||
        json_object_set_new(json_object_get(o, "refusals_by_reason"), reason, json_integer((json_int_t)count)) ||
        (later ? json_object_set_new(o, "last_refusal", when) : (json_decref(when), 0)))
        return -ENOMEM;
    return 0;
}

static json_t *entry(const char *name, const char *state, const char *pk, json_t *by_site)
{
    json_t *o = json_pack("{s:s,s:s,s:o}", "site", name, "state", state, "public_key",
                          pk ? json_string(pk) : json_null());
    json_t *figures = figures_of(by_site, name);
    if (!o || !figures || json_object_update(o, figures) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int lf_site_report(const lf_sites *sites, lf_index *index, json_t **out, lf_buf *err)
{
    json_t *by_site = json_object();
    if (!by_site)
        return -ENOMEM;
    int rc = lf_index_site_uploads(index, add_uploads, by_site);
    rc = rc ? rc : lf_index_site_refusals(index, add_refusals, by_site);
    json_t *list = rc == 0 ? json_array() : NULL;
    if (rc == 0 && !list)
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < sites->count; i++) {
        const lf_site *s = &sites->sites[i];
        char pk[LF_SIGN_PK_B64_SIZE];
        lf_sign_pk_encode(pk, s->pk);
        json_t *o = entry(s->name, s->enabled ? "enabled" : "disabled", pk, by_site);
        if (!o || json_array_append_new(list, o) != 0)
            rc = -ENOMEM;
    }
    if (rc == 0 && json_object_get(by_site, LF_SITE_UNREGISTERED)) {
        json_t *o = entry(LF_SITE_UNREGISTERED, "unregistered", NULL, by_site);
        if (!o || json_array_append_new(list, o) != 0)
            rc = -ENOMEM;
    }
    json_decref(by_site);
    if (rc != 0) {
        json_decref(list);
        lf_buf_msgf(err, "reading the sites' figures from the index: %s", lf_strerror(rc));
        return rc;
    }
    *out = json_pack("{s:o}", "sites", list);
    return *out ? 0 : -ENOMEM;
}

int lf_site_report_text(const json_t *report, lf_buf *out)
{
    int rc = lf_buf_appendf(out, "%-24s %-12s %-20s %10s %14s %9s  %s\n", "SITE", "STATE", "LAST UPLOAD (UTC)",
                            "SESSIONS", "BYTES", "REFUSALS", "PUBLIC KEY / REFUSALS BY REASON");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(report, "sites"), i, s)
    {
        if (rc)
            break;
        const char *last = json_string_value(json_object_get(s, "last_upload"));
        const char *pk = json_string_value(json_object_get(s, "public_key"));
        char when[24] = "never";
        if (last)
            snprintf(when, sizeof when, "%.10s %.8s", last, last + 11);
        rc = lf_buf_appendf(out, "%-24s %-12s %-20s %10lld %14lld %9lld  %s", json_string_value(json_object_get(s, "site")),
                            json_string_value(json_object_get(s, "state")), when,
                            (long long)json_integer_value(json_object_get(s, "sessions")),
                            (long long)json_integer_value(json_object_get(s, "bytes")),
                            (long long)json_integer_value(json_object_get(s, "refusals")), pk ? pk : "-");
        const char *reason;
        json_t *n;
        bool first = true;
        json_object_foreach(json_object_get(s, "refusals_by_reason"), reason, n)
        {
            rc = rc ? rc : lf_buf_appendf(out, "%s%s=%lld", first ? " " : ",", reason, (long long)json_integer_value(n));
            first = false;
        }
        rc = rc ? rc : lf_buf_append_char(out, '\n');
    }
    return rc;
}
