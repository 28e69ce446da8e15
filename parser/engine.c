/* Parsing engine (see engine.h). */
#include "engine.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "timefmt.h"

#define TS_MAX 256

struct lf_engine {
    const lf_logtype *type;
    lf_logformat *fmt;
    lf_tokenizer *tok;
    lf_miner *miner;
    lf_params_cache *params;
    int content_idx; /* field index of the content, -1: whole line */
    int level_idx;
    int time_idx[8];
    int ntime;
    int32_t tz;
    /* JSON lines */
    char *json_buf;
    size_t json_cap;
    const char *json_time_key;
    const char *json_level_key;
    const char *json_msg_key;
    lf_span spans[LF_LOGFORMAT_MAX_FIELDS];
    const char *names[LF_LOGFORMAT_MAX_FIELDS];
    size_t name_lens[LF_LOGFORMAT_MAX_FIELDS];
};

static int field_by_name(lf_logformat *f, const char *name)
{
    int i = lf_logformat_field_index(f, name);
    if (i >= 0)
        return i;
    for (int k = 0; k < lf_logformat_field_count(f); k++)
        if (strcasecmp(lf_logformat_field_name(f, k), name) == 0)
            return k;
    return -1;
}

static int fail(char *err, size_t errlen, const char *what, const char *arg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s%s", what, arg);
    return LF_ECONFIG;
}

int lf_engine_new(const lf_logtype *type, const lf_miner_config *cfg, lf_engine **out, char *err, size_t errlen)
{
    *out = NULL;
    lf_engine *e = lf_calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->type = type;
    e->content_idx = e->level_idx = -1;
    int rc = lf_tokenizer_new(&e->tok);
    if (rc < 0)
        goto out;
    if ((rc = lf_params_cache_new(&e->params)) < 0)
        goto out;
    for (int i = 0; i < type->nmasks; i++)
        if ((rc = lf_tokenizer_add_mask(e->tok, type->masks[i], err, errlen)) < 0)
            goto out;
    if ((rc = lf_miner_new(cfg, type->name, &e->miner)) < 0) {
        fail(err, errlen, "bad miner settings", "");
        goto out;
    }
    if (type->timezone && lf_timefmt_parse_tz(type->timezone, &e->tz) < 0) {
        rc = fail(err, errlen, "bad timezone: ", type->timezone);
        goto out;
    }
    if (type->jsonlines) {
        e->json_time_key = type->time_fields;
        e->json_level_key = type->level_field;
        e->json_msg_key = type->content_field;
        *out = e;
        return 0;
    }
    if ((rc = lf_logformat_compile(type->format, &e->fmt, err, errlen)) < 0)
        goto out;
    int nf = lf_logformat_field_count(e->fmt);
    for (int i = 0; i < nf; i++) {
        e->names[i] = lf_logformat_field_name(e->fmt, i);
        e->name_lens[i] = strlen(e->names[i]);
    }
    e->content_idx = type->content_field ? field_by_name(e->fmt, type->content_field) : field_by_name(e->fmt, "Content");
    if (type->content_field && e->content_idx < 0) {
        rc = fail(err, errlen, "content_field is not a field of the format: ", type->content_field);
        goto out;
    }
    if (e->content_idx < 0)
        e->content_idx = nf - 1;
    e->level_idx = type->level_field ? field_by_name(e->fmt, type->level_field) : field_by_name(e->fmt, "Level");
    if (type->level_field && e->level_idx < 0) {
        rc = fail(err, errlen, "level_field is not a field of the format: ", type->level_field);
        goto out;
    }
    if (type->time_fields) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", type->time_fields);
        for (char *sv, *t = strtok_r(buf, " ,", &sv); t; t = strtok_r(NULL, " ,", &sv)) {
            int i = field_by_name(e->fmt, t);
            if (i < 0 || e->ntime == 8) {
                rc = fail(err, errlen, "time_fields: not a field of the format: ", t);
                goto out;
            }
            e->time_idx[e->ntime++] = i;
        }
    } else {
        int d = field_by_name(e->fmt, "Date"), t = field_by_name(e->fmt, "Time");
        int ts = field_by_name(e->fmt, "Timestamp");
        if (d >= 0 && t >= 0) {
            e->time_idx[e->ntime++] = d;
            e->time_idx[e->ntime++] = t;
        } else if (t >= 0 || ts >= 0 || d >= 0) {
            e->time_idx[e->ntime++] = t >= 0 ? t : ts >= 0 ? ts : d;
        }
    }
    *out = e;
    return 0;
out:
    lf_engine_free(e);
    return rc;
}

void lf_engine_free(lf_engine *e)
{
    if (!e)
        return;
    lf_logformat_free(e->fmt);
    lf_tokenizer_free(e->tok);
    lf_miner_free(e->miner);
    lf_params_cache_free(e->params);
    lf_free(e->json_buf);
    lf_free(e);
}

lf_miner *lf_engine_miner(lf_engine *e)
{
    return e->miner;
}

void lf_engine_format_counts(const lf_engine *e, lf_logformat_counts *out)
{
    if (e->fmt)
        lf_logformat_get_counts(e->fmt, out);
    else
        *out = (lf_logformat_counts){0}; /* JSON lines: no line format */
}

int lf_engine_params(lf_engine *e, const char *tmpl, size_t tlen, const char *msg, size_t mlen, lf_param *out,
                     int max)
{
    return lf_template_params_cached(e->params, tmpl, tlen, msg, mlen, out, max);
}

const lf_logtype *lf_engine_type(const lf_engine *e)
{
    return e->type;
}

bool lf_engine_continuation(const lf_engine *e)
{
    return e->type->continuation;
}

static void whole_line(lf_event *ev, const char *line, size_t len)
{
    ev->matched = false;
    ev->nfields = 0;
    ev->content = line;
    ev->content_len = len;
    ev->level = NULL;
    ev->level_len = 0;
}

/* JSON lines: string values are copied into json_buf; other values as compact JSON text. */
static int split_json(lf_engine *e, const char *line, size_t len, lf_event *ev)
{
    json_error_t jerr;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        whole_line(ev, line, len);
        return 0;
    }
    size_t need = len * 2 + 64;
    if (need > e->json_cap) {
        char *b = lf_realloc(e->json_buf, need);
        if (!b) {
            json_decref(o);
            return -ENOMEM;
        }
        e->json_buf = b;
        e->json_cap = need;
    }
    size_t used = 0;
    ev->matched = true;
    ev->nfields = 0;
    ev->content = NULL;
    ev->content_len = 0;
    ev->level = NULL;
    int msg_rank = 99, lvl_rank = 99;
    static const char *const msg_keys[] = {"message", "msg", "log", NULL};
    static const char *const lvl_keys[] = {"level", "severity", "lvl", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (ev->nfields == LF_EVENT_MAX_FIELDS)
            break;
        size_t kl = strlen(key);
        const char *val;
        size_t vl;
        char *dumped = NULL;
        if (json_is_string(v)) {
            val = json_string_value(v);
            vl = json_string_length(v);
        } else {
            dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            val = dumped ? dumped : "";
            vl = strlen(val);
        }
        if (used + kl + vl + 2 > e->json_cap) { /* cannot happen: output is no longer than the input */
            free(dumped);
            break;
        }
        char *kp = e->json_buf + used;
        memcpy(kp, key, kl);
        used += kl;
        char *vp = e->json_buf + used;
        memcpy(vp, val, vl);
        used += vl;
        free(dumped);
        int i = ev->nfields++;
        ev->name[i] = kp;
        ev->name_len[i] = kl;
        ev->value[i] = vp;
        ev->value_len[i] = vl;
        if (e->json_msg_key) {
            if (strcmp(key, e->json_msg_key) == 0)
                msg_rank = 0, ev->content = vp, ev->content_len = vl;
        } else {
            for (int r = 0; msg_keys[r]; r++)
                if (r < msg_rank && strcmp(key, msg_keys[r]) == 0)
                    msg_rank = r, ev->content = vp, ev->content_len = vl;
        }
        if (e->json_level_key) {
            if (strcmp(key, e->json_level_key) == 0)
                lvl_rank = 0, ev->level = vp, ev->level_len = vl;
        } else {
            for (int r = 0; lvl_keys[r]; r++)
                if (r < lvl_rank && strcmp(key, lvl_keys[r]) == 0)
                    lvl_rank = r, ev->level = vp, ev->level_len = vl;
        }
    }
    json_decref(o);
    if (!ev->content) {
        ev->content = "";
        ev->content_len = 0;
    }
    return 1;
}

/* Fills ev from the fields' places in the line (the format's answer). */
static void fill_fields(const lf_engine *e, const char *line, size_t len, const lf_span *spans, lf_event *ev)
{
    int nf = lf_logformat_field_count(e->fmt);
    ev->matched = true;
    ev->nfields = nf;
    for (int i = 0; i < nf; i++) {
        ev->name[i] = e->names[i];
        ev->name_len[i] = e->name_lens[i];
        ev->value[i] = line + spans[i].off;
        ev->value_len[i] = spans[i].len;
    }
    if (e->content_idx >= 0) {
        ev->content = ev->value[e->content_idx];
        ev->content_len = ev->value_len[e->content_idx];
    } else {
        ev->content = line;
        ev->content_len = len;
    }
    if (e->level_idx >= 0) {
        ev->level = ev->value[e->level_idx];
        ev->level_len = ev->value_len[e->level_idx];
    } else {
        ev->level = NULL;
        ev->level_len = 0;
    }
}

int lf_engine_split(lf_engine *e, const char *line, size_t len, lf_event *ev)
{
    ev->has_ts = false;
    ev->slot = -1;
    if (e->type->jsonlines)
        return split_json(e, line, len, ev);
    if (lf_logformat_match(e->fmt, line, len, e->spans) != 1) {
        whole_line(ev, line, len);
        return 0;
    }
    fill_fields(e, line, len, e->spans, ev);
    return 1;
}

int lf_engine_field_count(const lf_engine *e)
{
    return e->fmt ? lf_logformat_field_count(e->fmt) : 0;
}

void lf_engine_respan(const lf_engine *e, const char *line, size_t len, const lf_span *spans, lf_event *ev)
{
    ev->has_ts = false;
    ev->slot = -1;
    fill_fields(e, line, len, spans, ev);
}

static void parse_ts_json(lf_engine *e, lf_event *ev)
{
    static const char *const keys[] = {"ts", "time", "timestamp", "@timestamp", NULL};
    static const char *const fmts[] = {"%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f",
                                       "%Y-%m-%dT%H:%M:%S",      "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S",
                                       NULL};
    for (int i = 0; i < ev->nfields; i++) {
        bool want = false;
        if (e->json_time_key)
            want = ev->name_len[i] == strlen(e->json_time_key) && memcmp(ev->name[i], e->json_time_key, ev->name_len[i]) == 0;
        else
            for (int k = 0; keys[k]; k++)
                if (ev->name_len[i] == strlen(keys[k]) && memcmp(ev->name[i], keys[k], ev->name_len[i]) == 0)
                    want = true;
        if (!want)
            continue;
        if (e->type->time_format) {
            ev->has_ts = lf_timefmt_parse(e->type->time_format, ev->value[i], ev->value_len[i], e->tz, &ev->ts_us) == 0;
            return;
        }
        for (int f = 0; fmts[f]; f++)
            if (lf_timefmt_parse(fmts[f], ev->value[i], ev->value_len[i], e->tz, &ev->ts_us) == 0) {
                ev->has_ts = true;
                return;
            }
        int64_t secs;
        if (lf_timefmt_parse("%s", ev->value[i], ev->value_len[i], 0, &secs) == 0) {
            ev->has_ts = true;
            ev->ts_us = secs;
        }
        return;
    }
}

int lf_engine_queue(lf_engine *e, lf_event *ev)
{
    if (ev->matched) {
        if (e->type->jsonlines) {
            parse_ts_json(e, ev);
        } else if (e->type->time_format && e->ntime > 0) {
            char buf[TS_MAX];
            size_t n = 0;
            bool ok = true;
            for (int k = 0; k < e->ntime && ok; k++) {
                int i = e->time_idx[k];
                size_t vl = ev->value_len[i];
                if (n + vl + 1 > sizeof buf)
                    ok = false;
                else {
                    if (k)
                        buf[n++] = ' ';
                    memcpy(buf + n, ev->value[i], vl);
                    n += vl;
                }
            }
            ev->has_ts = ok && lf_timefmt_parse(e->type->time_format, buf, n, e->tz, &ev->ts_us) == 0;
        }
    }
    const lf_token *toks;
    const char *text;
    int nt = lf_tokenizer_run(e->tok, ev->content, ev->content_len, &toks, &text);
    if (nt < 0)
        return nt;
    int slot = lf_miner_add(e->miner, toks, nt, text);
    if (slot < 0)
        return slot;
    ev->slot = slot;
    return 0;
}

int lf_engine_flush(lf_engine *e)
{
    return lf_miner_mine(e->miner);
}

lf_template *lf_engine_template(const lf_engine *e, int slot)
{
    return lf_miner_result(e->miner, slot);
}

void lf_engine_reset(lf_engine *e)
{
    lf_miner_reset(e->miner);
}
