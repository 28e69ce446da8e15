/* A session's log parsed into event rows (see parsed_session.h). */
#include "parsed_session.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "line_reader.h"
#include "template_params.h"

#define MAX_PARAMS 256

int lf_psession_init(lf_psession *ps)
{
    memset(ps, 0, sizeof *ps);
    lf_manifest_init(&ps->manifest);
    ps->first_us = ps->last_us = INT64_MIN;
    return lf_jw_init(&ps->arena, -1, 1u << 16);
}

void lf_psession_free(lf_psession *ps)
{
    lf_manifest_free(&ps->manifest);
    lf_free(ps->events);
    lf_free(ps->templates);
    lf_free(ps->tpl_index);
    lf_jw_free(&ps->arena);
    memset(ps, 0, sizeof *ps);
}

size_t lf_psession_datetime(int64_t us, char *out)
{
    int64_t s = us / 1000000, rem = us % 1000000;
    if (rem < 0) {
        rem += 1000000;
        s--;
    }
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 24, "%Y-%m-%d %H:%M:%S", &tm);
    int ms = (int)(rem / 1000);
    out[n++] = '.';
    out[n++] = (char)('0' + ms / 100);
    out[n++] = (char)('0' + ms / 10 % 10);
    out[n++] = (char)('0' + ms % 10);
    out[n] = '\0';
    return n;
}

static bool level_in(const char *s, size_t n, const char *const *names)
{
    for (; *names; names++)
        if (strlen(*names) == n && strncasecmp(s, *names, n) == 0)
            return true;
    return false;
}

bool lf_psession_level_is_warning(const char *s, size_t n)
{
    static const char *const w[] = {"WARN", "WARNING", NULL};
    return s && level_in(s, n, w);
}

bool lf_psession_level_is_error(const char *s, size_t n)
{
    static const char *const e[] = {"ERROR", "ERR", "FATAL", "CRITICAL", "CRIT", "SEVERE", "EMERG", "ALERT", "PANIC", NULL};
    return s && level_in(s, n, e);
}

static inline lf_pstr put_raw(lf_jw *w, const char *s, size_t n)
{
    lf_pstr p = {w->len, 0};
    lf_jw_raw(w, s, n);
    p.len = w->len - p.off;
    return p;
}

static size_t hash_id(uint64_t id, size_t slots)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)(id & (slots - 1));
}

static int grow_index(lf_psession *ps)
{
    size_t slots = ps->tpl_slots ? ps->tpl_slots * 2 : 64;
    size_t *idx = lf_malloc(slots * sizeof *idx);
    if (!idx)
        return -ENOMEM;
    for (size_t i = 0; i < slots; i++)
        idx[i] = SIZE_MAX;
    for (size_t t = 0; t < ps->n_templates; t++) {
        size_t h = hash_id(ps->templates[t].id, slots);
        while (idx[h] != SIZE_MAX)
            h = (h + 1) & (slots - 1);
        idx[h] = t;
    }
    lf_free(ps->tpl_index);
    ps->tpl_index = idx;
    ps->tpl_slots = slots;
    return 0;
}

/* Counts one use of the template; adds it (with its text) the first time. */
static int count_template(lf_psession *ps, uint64_t id, const char *text, size_t tlen, const lf_pevent *ev)
{
    if ((ps->n_templates + 1) * 2 > ps->tpl_slots && grow_index(ps) < 0)
        return -ENOMEM;
    size_t h = hash_id(id, ps->tpl_slots);
    while (ps->tpl_index[h] != SIZE_MAX) {
        lf_ptemplate *t = &ps->templates[ps->tpl_index[h]];
        if (t->id == id) {
            t->count++;
            if (ev->has_ts) {
                if (t->first_us == INT64_MIN || ev->ts_us < t->first_us)
                    t->first_us = ev->ts_us;
                if (t->last_us == INT64_MIN || ev->ts_us > t->last_us)
                    t->last_us = ev->ts_us;
            }
            return 0;
        }
        h = (h + 1) & (ps->tpl_slots - 1);
    }
    if (ps->n_templates == ps->cap_templates) {
        size_t cap = ps->cap_templates ? ps->cap_templates * 2 : 64;
        lf_ptemplate *nt = lf_realloc(ps->templates, cap * sizeof *nt);
        if (!nt)
            return -ENOMEM;
        ps->templates = nt;
        ps->cap_templates = cap;
    }
    lf_ptemplate *t = &ps->templates[ps->n_templates];
    t->id = id;
    t->count = 1;
    t->first_us = t->last_us = ev->has_ts ? ev->ts_us : INT64_MIN;
    t->text = put_raw(&ps->arena, text, tlen);
    ps->tpl_index[h] = ps->n_templates++;
    return ps->arena.error;
}

static int add_event(lf_psession *ps, lf_event *ev, const char *line, size_t len, uint64_t lineno)
{
    if (ps->n_events == ps->cap_events) {
        size_t cap = ps->cap_events ? ps->cap_events * 2 : 256;
        lf_pevent *ne = lf_realloc(ps->events, cap * sizeof *ne);
        if (!ne)
            return -ENOMEM;
        ps->events = ne;
        ps->cap_events = cap;
    }
    lf_pevent *pe = &ps->events[ps->n_events];
    memset(pe, 0, sizeof *pe);
    lf_jw *w = &ps->arena;
    pe->line = (uint32_t)lineno;
    pe->has_ts = ev->has_ts;
    pe->ts_us = ev->ts_us;
    if (ev->has_ts) {
        if (ps->first_us == INT64_MIN || ev->ts_us < ps->first_us)
            ps->first_us = ev->ts_us;
        if (ps->last_us == INT64_MIN || ev->ts_us > ps->last_us)
            ps->last_us = ev->ts_us;
    }
    if (ev->level) {
        pe->has_level = true;
        pe->level = put_raw(w, ev->level, ev->level_len > 16 ? 16 : ev->level_len);
        if (lf_psession_level_is_warning(ev->level, ev->level_len))
            ps->warning_count++;
        else if (lf_psession_level_is_error(ev->level, ev->level_len))
            ps->error_count++;
    }
    pe->fields.off = w->len;
    lf_jw_raw(w, "{", 1);
    for (int i = 0; i < ev->nfields; i++) {
        if (i)
            lf_jw_raw(w, ",", 1);
        lf_jw_str(w, ev->name[i], ev->name_len[i]);
        lf_jw_raw(w, ":", 1);
        lf_jw_str(w, ev->value[i], ev->value_len[i]);
        if (!pe->has_component && ev->name_len[i] == 9 && strncasecmp(ev->name[i], "component", 9) == 0) {
            pe->has_component = true;
            pe->component.off = i; /* index for now: the value is copied below */
        }
    }
    lf_jw_raw(w, "}", 1);
    pe->fields.len = w->len - pe->fields.off;
    if (pe->has_component) {
        int i = (int)pe->component.off;
        pe->component = put_raw(w, ev->value[i], ev->value_len[i] > 255 ? 255 : ev->value_len[i]);
    }
    pe->slot = ev->slot;
    pe->params = (lf_pstr){0, 0};
    /* the content: inside the line, or (JSON lines) decoded text that is copied */
    bool inside = ev->content >= line && ev->content + ev->content_len <= line + len;
    if (!inside)
        pe->content = put_raw(w, ev->content, ev->content_len);
    /* the message goes last so continuation lines can extend it in place */
    pe->message = put_raw(w, line, len);
    if (inside)
        pe->content = (lf_pstr){pe->message.off + (size_t)(ev->content - line), ev->content_len};
    ps->n_events++;
    return w->error;
}

/* Mines the engine's batch and fills in the template and parameters of the events queued into it. */
static int resolve_batch(lf_psession *ps, lf_engine *eng)
{
    int rc = lf_engine_flush(eng);
    if (rc < 0)
        return rc;
    lf_jw *w = &ps->arena;
    for (size_t i = ps->n_resolved; i < ps->n_events; i++) {
        lf_pevent *pe = &ps->events[i];
        lf_template *t = lf_engine_template(eng, pe->slot);
        size_t tl = 0;
        const char *text = t ? lf_template_text(t, &tl) : NULL;
        if (!text)
            return -ENOMEM;
        pe->template_id = lf_template_id(t);
        /* room for the worst case first (every byte escaped as \u00XX), so that the arena does not
         * move while the parameters are copied out of it */
        size_t coff = pe->content.off, clen = pe->content.len;
        if (lf_jw_reserve(w, clen * 6 + 4 * MAX_PARAMS + 2) < 0)
            return -ENOMEM;
        pe->params.off = w->len;
        lf_jw_raw(w, "[", 1);
        lf_param pr[MAX_PARAMS];
        int np = lf_engine_params(eng, text, tl, w->buf + coff, clen, pr, MAX_PARAMS);
        for (int k = 0; k < np; k++) {
            if (k)
                lf_jw_raw(w, ",", 1);
            lf_jw_str(w, w->buf + coff + pr[k].off, pr[k].len);
        }
        lf_jw_raw(w, "]", 1);
        pe->params.len = w->len - pe->params.off;
        if ((rc = count_template(ps, pe->template_id, text, tl, pe)) < 0)
            return rc;
        if (w->error)
            return w->error;
    }
    ps->n_resolved = ps->n_events;
    lf_engine_reset(eng);
    return 0;
}

/* A session crashed when its type knows its shutdown line and the last event is not it. */
static int detect_crash(lf_psession *ps, const lf_logtype *type)
{
    ps->crashed = false;
    if (!type->end_line)
        return 0;
    if (ps->n_events == 0) {
        ps->crashed = true;
        return 0;
    }
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)type->end_line, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &errcode,
                                   &erroff, NULL);
    if (!re)
        return LF_ECONFIG;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        pcre2_code_free(re);
        return -ENOMEM;
    }
    const lf_pevent *last = &ps->events[ps->n_events - 1];
    const char *msg = lf_psession_str(ps, last->message);
    const char *nl = memchr(msg, '\n', last->message.len);
    size_t first_len = nl ? (size_t)(nl - msg) : last->message.len;
    /* NO_UTF_CHECK is not used: a last line of invalid UTF-8 simply does not match */
    int m = pcre2_match(re, (PCRE2_SPTR)msg, first_len, 0, 0, md, NULL);
    ps->crashed = m < 0;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return 0;
}

int lf_psession_parse(lf_psession *ps, lf_engine *eng, int fd, size_t max_events)
{
    lf_line_reader rd;
    int r = lf_line_reader_init(&rd, fd, lf_engine_type(eng)->max_line);
    if (r < 0)
        return r;
    bool cont = lf_engine_continuation(eng);
    const char *line;
    size_t len;
    bool truncated;
    lf_event ev;
    while ((r = lf_line_reader_next(&rd, &line, &len, &truncated)) > 0) {
        ps->log_bytes += len + 1;
        int m = lf_engine_split(eng, line, len, &ev);
        if (m < 0) {
            r = m;
            break;
        }
        if (m == 0 && cont && ps->n_events > 0) {
            lf_pevent *last = &ps->events[ps->n_events - 1];
            lf_jw_raw(&ps->arena, "\n", 1);
            lf_jw_raw(&ps->arena, line, len);
            last->message.len = ps->arena.len - last->message.off;
            if (ps->arena.error) {
                r = ps->arena.error;
                break;
            }
            continue;
        }
        if (max_events && ps->n_events >= max_events) {
            r = LF_ELIMIT;
            break;
        }
        r = lf_engine_queue(eng, &ev);
        if (r == LF_ELIMIT && (r = resolve_batch(ps, eng)) == 0) /* the miner's batch is full */
            r = lf_engine_queue(eng, &ev);
        if (r < 0)
            break;
        if ((r = add_event(ps, &ev, line, len, rd.lineno)) < 0)
            break;
    }
    if (r >= 0)
        r = resolve_batch(ps, eng);
    else
        lf_engine_reset(eng);
    ps->line_count = (uint32_t)rd.lineno;
    lf_line_reader_free(&rd);
    if (r >= 0)
        r = detect_crash(ps, lf_engine_type(eng));
    return r < 0 ? r : 0;
}
