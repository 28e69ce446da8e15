/* `logferry-parser parse`: parse a log file and print one JSON object per event (see parse_cli.h
 * and docs/parsing.md). */
#include "parse_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "event_json.h"
#include "lf_error.h"
#include "line_reader.h"
#include "logtype.h"
#include "template_params.h"
#include "template_store.h"
#include "timefmt.h"

#define MAX_PARAMS 256

static void usage(FILE *f)
{
    fprintf(f,
            "usage: logferry-parser parse [--type NAME [--config FILE] | --format FORMAT [--mask REGEX]...\n"
            "                             [--time-format F] [--time-fields \"A B\"] [--timezone TZ]\n"
            "                             [--level-field N] [--content-field N] [--jsonlines]]\n"
            "                             [--no-continuation] [--templates FILE] [--max-line BYTES]\n"
            "                             [--word-share X] [--max-templates N] [--stats] FILE|-\n"
            "Prints one JSON object per event: line, ts, level, fields, content, template_id, template,\n"
            "params (and continuation, truncated, unmatched when they apply).\n"
            "--type reads [logtype.NAME] from --config (default $LF_PARSER_CONFIG or\n"
            "/etc/logferry/parser.conf); the type jsonlines is built in.\n");
}

typedef struct out_state {
    lf_jw w;
    bool open; /* an event's object is written up to its last member */
    bool in_cont;
} out_state;

static void close_event(out_state *o)
{
    if (!o->open)
        return;
    if (o->in_cont)
        lf_jw_raw(&o->w, "]", 1);
    lf_jw_raw(&o->w, "}\n", 2);
    o->open = false;
    o->in_cont = false;
}

/* Writes a string taken from a line that is known clean (no escaping needed) or not. */
static inline void put_str(lf_jw *w, bool clean, const char *s, size_t n)
{
    if (clean)
        lf_jw_str_clean(w, s, n);
    else
        lf_jw_str(w, s, n);
}

static void write_event(out_state *o, lf_engine *eng, const lf_event *ev, lf_template *tpl, uint64_t lineno,
                        bool truncated, bool clean)
{
    lf_jw *w = &o->w;
    static const char k_line[] = "{\"line\":";
    lf_jw_raw(w, k_line, sizeof k_line - 1);
    lf_jw_u64(w, lineno);
    if (ev->has_ts) {
        char ts[32];
        size_t n = lf_timefmt_iso8601(ev->ts_us, ts);
        lf_jw_raw(w, ",\"ts\":\"", 7);
        lf_jw_raw(w, ts, n);
        lf_jw_raw(w, "\"", 1);
    } else {
        lf_jw_raw(w, ",\"ts\":null", 10);
    }
    if (ev->level) {
        lf_jw_raw(w, ",\"level\":", 9);
        put_str(w, clean, ev->level, ev->level_len);
    } else {
        lf_jw_raw(w, ",\"level\":null", 13);
    }
    lf_jw_raw(w, ",\"fields\":{", 11);
    for (int i = 0; i < ev->nfields; i++) {
        if (i)
            lf_jw_raw(w, ",", 1);
        put_str(w, clean, ev->name[i], ev->name_len[i]); /* format field names are plain */
        lf_jw_raw(w, ":", 1);
        put_str(w, clean, ev->value[i], ev->value_len[i]);
    }
    lf_jw_raw(w, "},\"content\":", 12);
    put_str(w, clean, ev->content, ev->content_len);
    size_t tl = 0;
    const char *t = tpl ? lf_template_text(tpl, &tl) : NULL;
    if (t) {
        lf_jw_raw(w, ",\"template_id\":", 15);
        lf_jw_hex64(w, lf_template_id(tpl));
        lf_jw_raw(w, ",\"template\":", 12);
        put_str(w, clean || lf_jw_is_clean(t, tl), t, tl);
        lf_param ps[MAX_PARAMS];
        int np = lf_engine_params(eng, t, tl, ev->content, ev->content_len, ps, MAX_PARAMS);
        lf_jw_raw(w, ",\"params\":[", 11);
        for (int i = 0; i < np; i++) {
            if (i)
                lf_jw_raw(w, ",", 1);
            put_str(w, clean, ev->content + ps[i].off, ps[i].len);
        }
        lf_jw_raw(w, "]", 1);
    } else {
        lf_jw_raw(w, ",\"template_id\":null,\"template\":null,\"params\":[]", 46);
    }
    if (!ev->matched)
        lf_jw_raw(w, ",\"unmatched\":true", 17);
    if (truncated)
        lf_jw_raw(w, ",\"truncated\":true", 17);
    o->open = true;
    o->in_cont = false;
}

static void write_continuation(out_state *o, const char *line, size_t len)
{
    if (!o->in_cont) {
        lf_jw_raw(&o->w, ",\"continuation\":[", 17);
        o->in_cont = true;
    } else {
        lf_jw_raw(&o->w, ",", 1);
    }
    lf_jw_str(&o->w, line, len);
}

/* A batch (parse_cli.h) keeps the events' lines (and continuation lines) until it is mined. */

typedef struct pending {
    uint64_t lineno;
    size_t line;  /* index of its first line in batch.lines */
    size_t nlines; /* with its continuation lines */
    size_t spans; /* index of its fields' places in batch.spans, SIZE_MAX: split the line again */
    int64_t ts_us;
    bool has_ts, truncated;
    int slot;
} pending;

typedef struct line_ref {
    size_t off, len;
} line_ref;

typedef struct batch {
    char *bytes;
    size_t nbytes, capbytes;
    line_ref *lines;
    size_t nlines, caplines;
    pending *events;
    size_t nevents, capevents;
    lf_span *spans; /* the fields' places of matched lines of a line format, not to split them twice */
    size_t nspans, capspans;
} batch;

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *np = realloc(*p, c * elem);
    if (!np)
        return -ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

static int batch_line(batch *b, const char *line, size_t len)
{
    int rc = grow((void **)&b->bytes, &b->capbytes, b->nbytes + len + 1, 1);
    rc = rc ? rc : grow((void **)&b->lines, &b->caplines, b->nlines + 1, sizeof *b->lines);
    if (rc < 0)
        return rc;
    memcpy(b->bytes + b->nbytes, line, len);
    b->lines[b->nlines++] = (line_ref){b->nbytes, len};
    b->nbytes += len;
    return 0;
}

/* Mines the batch and writes its events. */
static int flush_batch(lf_engine *eng, const lf_logtype *type, batch *b, out_state *o, uint64_t *events)
{
    int rc = lf_engine_flush(eng);
    if (rc < 0)
        return rc;
    lf_event ev;
    for (size_t i = 0; i < b->nevents && !o->w.error; i++) {
        const pending *p = &b->events[i];
        const line_ref *l = &b->lines[p->line];
        const char *line = b->bytes + l->off;
        if (p->spans != SIZE_MAX)
            lf_engine_respan(eng, line, l->len, b->spans + p->spans, &ev);
        else if ((rc = lf_engine_split(eng, line, l->len, &ev)) < 0)
            return rc;
        ev.has_ts = p->has_ts;
        ev.ts_us = p->ts_us;
        /* JSON lines values are decoded text, not the line: check them one by one */
        bool clean = !type->jsonlines && lf_jw_is_clean(line, l->len);
        write_event(o, eng, &ev, lf_engine_template(eng, p->slot), p->lineno, p->truncated, clean);
        for (size_t k = 1; k < p->nlines; k++)
            write_continuation(o, b->bytes + b->lines[p->line + k].off, b->lines[p->line + k].len);
        close_event(o);
        (*events)++;
    }
    lf_engine_reset(eng);
    b->nbytes = b->nlines = b->nevents = b->nspans = 0;
    return o->w.error;
}

static int parse_double(const char *s, double *v)
{
    char *e;
    errno = 0;
    *v = strtod(s, &e);
    return errno || *e || e == s ? -1 : 0;
}

static int parse_ulong(const char *s, unsigned long long *v)
{
    char *e;
    errno = 0;
    *v = strtoull(s, &e, 10);
    return errno || *e || e == s || *s == '-' ? -1 : 0;
}

int lf_parser_cli_parse(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},         {"config", required_argument, NULL, 'c'},
        {"format", required_argument, NULL, 'f'},       {"mask", required_argument, NULL, 'm'},
        {"time-format", required_argument, NULL, 'T'},  {"time-fields", required_argument, NULL, 'F'},
        {"timezone", required_argument, NULL, 'z'},     {"level-field", required_argument, NULL, 'l'},
        {"content-field", required_argument, NULL, 'C'}, {"jsonlines", no_argument, NULL, 'j'},
        {"no-continuation", no_argument, NULL, 'n'},    {"templates", required_argument, NULL, 'p'},
        {"max-line", required_argument, NULL, 'L'},     {"word-share", required_argument, NULL, 's'},
        {"max-templates", required_argument, NULL, 'k'},
        {"stats", no_argument, NULL, 'S'},              {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *type_name = NULL, *config = NULL, *templates = NULL;
    lf_logtype inline_type;
    bool inline_used = false, stats = false;
    lf_miner_config dcfg;
    lf_miner_config_default(&dcfg);
    int rc = 2;
    if (lf_logtype_init(&inline_type, "inline") < 0)
        return 1;
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "t:c:f:m:T:F:z:l:C:jnp:L:s:k:Sh", opts, NULL)) != -1) {
        unsigned long long u;
        double dv;
        const char *key = NULL;
        switch (c) {
        case 't': type_name = optarg; break;
        case 'c': config = optarg; break;
        case 'p': templates = optarg; break;
        case 'S': stats = true; break;
        case 'f': key = "format"; break;
        case 'm': key = "mask"; break;
        case 'T': key = "time_format"; break;
        case 'F': key = "time_fields"; break;
        case 'z': key = "timezone"; break;
        case 'l': key = "level_field"; break;
        case 'C': key = "content_field"; break;
        case 'L': key = "max_line"; break;
        case 'j': lf_logtype_set(&inline_type, "builtin", "jsonlines"); inline_used = true; break;
        case 'n': inline_type.continuation = false; break;
        case 's':
            if (parse_double(optarg, &dv) < 0 || dv < 0 || dv > 1) {
                fprintf(stderr, "logferry-parser parse: --word-share wants a number in [0, 1]\n");
                goto out;
            }
            dcfg.word_share = dv;
            break;
        case 'k':
            if (parse_ulong(optarg, &u) < 0) {
                fprintf(stderr, "logferry-parser parse: --max-templates wants a count\n");
                goto out;
            }
            dcfg.max_templates = (size_t)u;
            break;
        case 'h': usage(stdout); rc = 0; goto out;
        default: usage(stderr); goto out;
        }
        if (key) {
            int r = lf_logtype_set(&inline_type, key, optarg);
            if (r < 0) {
                fprintf(stderr, "logferry-parser parse: bad value for --%s: %s\n", key, optarg);
                goto out;
            }
            if (strcmp(key, "max_line") != 0)
                inline_used = true;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        goto out;
    }
    if (type_name && (inline_type.format || inline_type.jsonlines)) {
        fprintf(stderr, "logferry-parser parse: use either --type or --format/--jsonlines\n");
        goto out;
    }
    if (!type_name && !inline_type.format && !inline_type.jsonlines) {
        if (inline_used) {
            fprintf(stderr, "logferry-parser parse: --format (or --jsonlines) is required with inline options\n");
            goto out;
        }
        inline_type.jsonlines = false;
        fprintf(stderr, "logferry-parser parse: give --type NAME or --format FORMAT\n");
        goto out;
    }
    lf_logtypes types = {0};
    const lf_logtype *type = &inline_type;
    char err[512] = "";
    if (type_name) {
        if (!config)
            config = getenv("LF_PARSER_CONFIG");
        if (!config && access("/etc/logferry/parser.conf", R_OK) == 0)
            config = "/etc/logferry/parser.conf";
        int r = lf_logtypes_load(&types, config, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "logferry-parser parse: %s\n", err[0] ? err : lf_strerror(r));
            goto out;
        }
        type = lf_logtypes_find(&types, type_name);
        if (!type) {
            fprintf(stderr, "logferry-parser parse: no log type \"%s\"%s%s\n", type_name,
                    config ? " in " : "", config ? config : "");
            lf_logtypes_free(&types);
            goto out;
        }
    }
    lf_engine *eng = NULL;
    int r = lf_engine_new(type, &dcfg, &eng, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "logferry-parser parse: %s\n", err[0] ? err : lf_strerror(r));
        lf_logtypes_free(&types);
        goto out;
    }
    if (templates) {
        r = lf_template_store_load(lf_engine_miner(eng), templates);
        if (r < 0 && r != -ENOENT) {
            fprintf(stderr, "logferry-parser parse: %s: %s\n", templates, lf_strerror(r));
            rc = 1;
            goto done;
        }
    }
    const char *path = argv[optind];
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "logferry-parser parse: %s: %s\n", path, strerror(errno));
        rc = 1;
        goto done;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    lf_line_reader rd;
    out_state o = {0};
    if (lf_line_reader_init(&rd, fd, type->max_line) < 0 || lf_jw_init(&o.w, 1, 1u << 20) < 0) {
        fprintf(stderr, "logferry-parser parse: out of memory\n");
        rc = 1;
        goto done_fd;
    }
    const char *line;
    size_t len;
    bool truncated;
    uint64_t events = 0, conts = 0;
    lf_event ev;
    bool cont = lf_engine_continuation(eng);
    batch b = {0};
    rc = 0;
    while ((r = lf_line_reader_next(&rd, &line, &len, &truncated)) > 0) {
        int m = lf_engine_split(eng, line, len, &ev);
        if (m < 0) {
            r = m;
            break;
        }
        if (m == 0 && cont && b.nevents > 0) {
            if ((r = batch_line(&b, line, len)) < 0)
                break;
            b.events[b.nevents - 1].nlines++;
            conts++;
            continue;
        }
        if ((b.nevents >= LF_PARSE_BATCH_EVENTS || b.nbytes >= LF_PARSE_BATCH_BYTES) &&
            (r = flush_batch(eng, type, &b, &o, &events)) < 0)
            break;
        r = lf_engine_queue(eng, &ev);
        if (r == LF_ELIMIT && (r = flush_batch(eng, type, &b, &o, &events)) == 0)
            r = lf_engine_queue(eng, &ev);
        if (r < 0)
            break;
        if ((r = grow((void **)&b.events, &b.capevents, b.nevents + 1, sizeof *b.events)) < 0)
            break;
        size_t spans = SIZE_MAX;
        if (m == 1 && !type->jsonlines) {
            int nf = lf_engine_field_count(eng);
            if ((r = grow((void **)&b.spans, &b.capspans, b.nspans + (size_t)nf, sizeof *b.spans)) < 0)
                break;
            spans = b.nspans;
            for (int f = 0; f < nf; f++)
                b.spans[b.nspans++] = (lf_span){(uint32_t)(ev.value[f] - line), (uint32_t)ev.value_len[f], true};
        }
        b.events[b.nevents++] = (pending){rd.lineno, b.nlines, 1, spans, ev.ts_us, ev.has_ts, truncated, ev.slot};
        if ((r = batch_line(&b, line, len)) < 0)
            break;
    }
    if (r >= 0 && b.nevents)
        r = flush_batch(eng, type, &b, &o, &events);
    free(b.bytes);
    free(b.lines);
    free(b.events);
    free(b.spans);
    if (r < 0) {
        fprintf(stderr, "logferry-parser parse: %s: %s\n", path, lf_strerror(r));
        rc = 1;
    }
    if (lf_jw_flush(&o.w) < 0) {
        fprintf(stderr, "logferry-parser parse: writing output: %s\n", lf_strerror(o.w.error));
        rc = 1;
    }
    if (templates && rc == 0) {
        r = lf_template_store_save(lf_engine_miner(eng), templates);
        if (r < 0) {
            fprintf(stderr, "logferry-parser parse: saving %s: %s\n", templates, lf_strerror(r));
            rc = 1;
        }
    }
    if (stats) {
        lf_logformat_counts fc;
        lf_engine_format_counts(eng, &fc);
        fprintf(stderr, "lines %llu events %llu continuation %llu templates %zu evicted %llu miner_bytes %zu\n",
                (unsigned long long)rd.lineno, (unsigned long long)events, (unsigned long long)conts,
                lf_miner_template_count(lf_engine_miner(eng)),
                (unsigned long long)lf_miner_evictions(lf_engine_miner(eng)), lf_miner_memory(lf_engine_miner(eng)));
        fprintf(stderr, "format first_path %llu search %llu regex %llu unmatched %llu\n",
                (unsigned long long)fc.first_path, (unsigned long long)fc.search, (unsigned long long)fc.regex,
                (unsigned long long)fc.unmatched);
    }
    lf_jw_free(&o.w);
    lf_line_reader_free(&rd);
done_fd:
    if (fd > 0)
        close(fd);
done:
    lf_engine_free(eng);
    lf_logtypes_free(&types);
out:
    lf_logtype_clear(&inline_type);
    return rc;
}
