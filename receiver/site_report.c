#include "site_report.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lf_sign.h"
#include "site_figures.h"

struct collect {
    json_t *by_site; /* site name -> figures object */
    int rc;
};

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

/* "bad_signature=2,stale=1" into {"bad_signature":2,"stale":1} */
static json_t *reasons_object(const char *pairs)
{
    json_t *o = json_object();
    char copy[sizeof ((lf_index_site_figure *)0)->refusal_reasons];
    snprintf(copy, sizeof copy, "%s", pairs);
    char *save = NULL;
    for (char *p = strtok_r(copy, ",", &save); p && o; p = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(p, '=');
        if (!eq)
            continue;
        *eq = '\0';
        json_object_set_new(o, p, json_integer((json_int_t)strtoll(eq + 1, NULL, 10)));
    }
    return o;
}

static int collect(void *arg, const lf_index_site_figure *f)
{
    struct collect *c = arg;
    json_t *o = json_pack("{s:I,s:I,s:o,s:I,s:o,s:o}", "sessions", (json_int_t)f->sessions, "bytes",
                          (json_int_t)f->bytes, "last_upload", time_or_null(f->last_upload_ms), "refusals",
                          (json_int_t)f->refusals, "refusals_by_reason", reasons_object(f->refusal_reasons),
                          "last_refusal", time_or_null(f->last_refusal_ms));
    if (!o || json_object_set_new(c->by_site, f->site, o) != 0) {
        c->rc = -ENOMEM;
        return -1;
    }
    return 0;
}

static json_t *entry(const char *name, const char *state, const char *pk, json_t *figures)
{
    json_t *o = json_pack("{s:s,s:s,s:o}", "site", name, "state", state, "public_key",
                          pk ? json_string(pk) : json_null());
    if (!o)
        return NULL;
    if (figures) {
        json_object_update(o, figures);
    } else {
        json_t *zero = json_pack("{s:i,s:i,s:n,s:i,s:{},s:n}", "sessions", 0, "bytes", 0, "last_upload", "refusals",
                                 0, "refusals_by_reason", "last_refusal");
        json_object_update(o, zero);
        json_decref(zero);
    }
    return o;
}

int lf_site_report(const lf_sites *sites, lf_index *index, json_t **out, lf_buf *err)
{
    struct collect c = {json_object(), 0};
    if (!c.by_site)
        return -ENOMEM;
    int rc = lf_index_site_figures(index, collect, &c);
    if (rc == 0 && c.rc)
        rc = c.rc;
    json_t *list = rc == 0 ? json_array() : NULL;
    if (rc == 0 && !list)
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < sites->count; i++) {
        const lf_site *s = &sites->sites[i];
        char pk[LF_SIGN_PK_B64_SIZE];
        lf_sign_pk_encode(pk, s->pk);
        json_t *o = entry(s->name, s->enabled ? "enabled" : "disabled", pk, json_object_get(c.by_site, s->name));
        if (!o || json_array_append_new(list, o) != 0)
            rc = -ENOMEM;
    }
    json_t *unreg = json_object_get(c.by_site, LF_SITE_UNREGISTERED);
    if (rc == 0 && unreg) {
        json_t *o = entry(LF_SITE_UNREGISTERED, "unregistered", NULL, unreg);
        if (!o || json_array_append_new(list, o) != 0)
            rc = -ENOMEM;
    }
    json_decref(c.by_site);
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
