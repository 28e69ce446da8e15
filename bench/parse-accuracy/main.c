/* bench-parse-accuracy: runs the parsing engine over every system of a Loghub-layout directory
 * (default ../shared/loghub) with the format and masks of its settings.json and the miner's
 * default settings, and prints per system and on average:
 *   GA   grouping accuracy against the original ground truth (<S>_2k.log_structured.csv EventId):
 *        a line is right when the set of lines parsed into its group equals its true group;
 *   PA   parsing accuracy: the line's final template equals the corrected template
 *        (<S>_2k.log_structured_corrected.csv EventTemplate) after whitespace normalisation;
 *   FTA  template-level F1 against the corrected templates: a parsed template is right when its
 *        group is exactly one corrected-template group and its text equals that template;
 *   lines/s of the whole `logferry-parser parse` process (fork+exec, output to /dev/null, input a
 *        file of the system's lines repeated to --lines lines, in the page cache, pinned to CPU 0),
 *        median of --runs: by wall time, and by the process's CPU time (user + system), which other
 *        work on a shared machine does not inflate. Every copy after the first has its numbers
 *        changed (see vary_numbers), as a real log's values vary: the same lines repeated verbatim
 *        (--verbatim) let the tokenizer's cache of tokens answer for the numbers that no mask
 *        replaced (Loghub's Mac: 4% fewer instructions a line than with varied numbers; none where
 *        the masks replace every number, as Android's and OpenStack's).
 * Usage: bench-parse-accuracy [--parser PATH] [--runs N] [--lines N] [--verbatim] [--no-speed] [DIR] */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "line_reader.h"
#include "logtype.h"
#include "parse_cli.h"

typedef struct strv {
    char **v;
    size_t n, cap;
} strv;

static void strv_push(strv *s, char *x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v)
            abort();
    }
    s->v[s->n++] = x;
}

static void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        return NULL;
    }
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Reads the column named col of an RFC 4180 CSV file (quoted fields, "" escapes, CRLF). */
static int csv_column(const char *path, const char *col, strv *out)
{
    size_t len;
    char *b = read_file(path, &len);
    if (!b)
        return -1;
    size_t p = 0;
    int want = -1, row = 0;
    char *field = malloc(len + 1);
    while (p < len) {
        int ci = 0;
        for (;;) { /* one record */
            size_t fl = 0;
            if (p < len && b[p] == '"') {
                p++;
                while (p < len) {
                    if (b[p] == '"' && p + 1 < len && b[p + 1] == '"') {
                        field[fl++] = '"';
                        p += 2;
                    } else if (b[p] == '"') {
                        p++;
                        break;
                    } else {
                        field[fl++] = b[p++];
                    }
                }
            }
            while (p < len && b[p] != ',' && b[p] != '\n' && b[p] != '\r')
                field[fl++] = b[p++];
            field[fl] = '\0';
            if (row == 0 && strcmp(field, col) == 0)
                want = ci;
            else if (row > 0 && ci == want)
                strv_push(out, strdup(field));
            ci++;
            if (p < len && b[p] == ',') {
                p++;
                continue;
            }
            while (p < len && (b[p] == '\r' || b[p] == '\n'))
                p++;
            break;
        }
        if (row == 0 && want < 0)
            break;
        row++;
    }
    free(field);
    free(b);
    return want < 0 ? -1 : 0;
}

static char *norm_ws(const char *s)
{
    char *o = malloc(strlen(s) + 1);
    size_t n = 0;
    bool sp = false;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
            sp = n > 0;
            continue;
        }
        if (sp)
            o[n++] = ' ';
        sp = false;
        o[n++] = *s;
    }
    o[n] = '\0';
    return o;
}

typedef struct kv {
    const char *key;
    size_t idx;
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

/* Assigns a dense group number to each line from string keys. */
static size_t dense_groups(char **keys, size_t n, size_t *group)
{
    kv *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = (kv){keys[i], i};
    qsort(a, n, sizeof *a, kv_cmp);
    size_t g = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(a[i].key, a[i - 1].key) != 0)
            g++;
        group[a[i].idx] = g;
    }
    free(a);
    return n ? g + 1 : 0;
}

/* Lines are right when their parsed group equals their true group exactly. */
static size_t grouping_correct(const size_t *parsed, size_t np, const size_t *truth, size_t nt, size_t n,
                               bool *group_ok)
{
    size_t *psize = calloc(np, sizeof *psize), *tsize = calloc(nt, sizeof *tsize);
    size_t *pfirst = malloc(np * sizeof *pfirst);
    bool *pure = malloc(np);
    for (size_t g = 0; g < np; g++)
        pfirst[g] = SIZE_MAX, pure[g] = true;
    for (size_t i = 0; i < n; i++) {
        psize[parsed[i]]++;
        tsize[truth[i]]++;
        if (pfirst[parsed[i]] == SIZE_MAX)
            pfirst[parsed[i]] = truth[i];
        else if (pfirst[parsed[i]] != truth[i])
            pure[parsed[i]] = false;
    }
    size_t ok = 0;
    for (size_t g = 0; g < np; g++) {
        bool good = psize[g] && pure[g] && tsize[pfirst[g]] == psize[g];
        if (group_ok)
            group_ok[g] = good;
        if (good)
            ok += psize[g];
    }
    free(psize);
    free(tsize);
    free(pfirst);
    free(pure);
    return ok;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* Changes the values of a copy of the sample the way a log's values vary, keeping every token's
 * shape: each digit of a number that stands apart from letters ("42", "10.0.3.7", "07:07:00",
 * "blk_-1608") becomes another digit, each hex digit after "0x" another hex digit of the same
 * case, and so does each of a hex value without "0x" ("9f4ef63", keeping digits digits). Digits glued
 * to letters ("wl0", "IPV6", "tc19060") are names and stay, and so does the length of every value, so
 * fixed-width fields and line formats still match. */
static void vary_numbers(char *b, size_t len, uint64_t *seed)
{
    for (size_t i = 0; i < len;) {
        bool apart = i == 0 || !is_alnum(b[i - 1]);
        if (apart && b[i] == '0' && i + 2 < len && (b[i + 1] | 0x20) == 'x' && is_hex(b[i + 2])) {
            size_t e = i + 2;
            while (e < len && is_hex(b[e]))
                e++;
            for (size_t k = i + 2; k < e; k++) {
                *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
                unsigned d = (unsigned)(*seed >> 60);
                b[k] = d < 10 ? (char)('0' + d) : (char)((b[k] >= 'A' && b[k] <= 'F' ? 'A' : 'a') + d - 10);
            }
            i = e;
            continue;
        }
        if (apart && is_hex(b[i])) {
            /* a hex value without "0x" ("de9231d", a UUID's "38101a0b"): six or more hex digits, one
             * of them a decimal digit, standing apart; digits stay digits and letters letters */
            size_t e = i;
            bool digit = false;
            while (e < len && is_hex(b[e]))
                digit |= b[e++] <= '9';
            if (digit && e - i >= 6 && (e == len || !is_alnum(b[e]))) {
                for (size_t k = i; k < e; k++) {
                    *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
                    unsigned d = (unsigned)(*seed >> 33);
                    b[k] = b[k] <= '9' ? (char)('0' + d % 10) : (char)((b[k] >= 'a' ? 'a' : 'A') + d % 6);
                }
                i = e;
                continue;
            }
        }
        if (!apart || b[i] < '0' || b[i] > '9') {
            i++;
            continue;
        }
        size_t e = i;
        while (e < len && b[e] >= '0' && b[e] <= '9')
            e++;
        if (e == len || !((b[e] | 0x20) >= 'a' && (b[e] | 0x20) <= 'z')) {
            for (size_t k = i; k < e; k++) {
                *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
                b[k] = (char)('0' + (*seed >> 33) % 10);
            }
        }
        i = e;
    }
}

/* Times the parser process on a file of repeated lines. Returns lines/s of wall time or -1, and
 * in *cpu_lps lines per CPU second (user + system of the process), the figure that a machine
 * shared with other work does not distort. */
static double time_process(const char *parser, const lf_logtype *t, const char *logpath, size_t want_lines, int runs,
                           bool verbatim, double *cpu_lps)
{
    size_t len;
    char *b = read_file(logpath, &len);
    if (!b)
        return -1;
    size_t nl = 0;
    for (size_t i = 0; i < len; i++)
        nl += b[i] == '\n';
    bool final_nl = len && b[len - 1] == '\n';
    size_t per = nl + !final_nl;
    size_t reps = per ? (want_lines + per - 1) / per : 1;
    char tmpl[] = "/tmp/lf-bench-parse-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        free(b);
        return -1;
    }
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        close(fd);
        unlink(tmpl);
        free(b);
        return -1;
    }
    uint64_t seed = 1;
    for (size_t r = 0; r < reps; r++) {
        const char *out = b;
        if (r > 0 && !verbatim) {
            memcpy(copy, b, len);
            vary_numbers(copy, len, &seed);
            out = copy;
        }
        if (write(fd, out, len) != (ssize_t)len || (!final_nl && write(fd, "\n", 1) != 1)) {
            close(fd);
            unlink(tmpl);
            free(copy);
            free(b);
            return -1;
        }
    }
    close(fd);
    free(copy);
    free(b);
    size_t total = reps * per;
    /* warm the page cache */
    int wfd = open(tmpl, O_RDONLY);
    char tmp[1 << 16];
    while (wfd >= 0 && read(wfd, tmp, sizeof tmp) > 0) {
    }
    if (wfd >= 0)
        close(wfd);
    char *argv[8 + 2 * LF_LOGTYPE_MAX_MASKS];
    int ac = 0;
    argv[ac++] = (char *)parser;
    argv[ac++] = "parse";
    argv[ac++] = "--format";
    argv[ac++] = t->format;
    for (int i = 0; i < t->nmasks; i++) {
        argv[ac++] = "--mask";
        argv[ac++] = t->masks[i];
    }
    argv[ac++] = tmpl;
    argv[ac] = NULL;
    double *times = calloc((size_t)runs, sizeof *times);
    double *cpus = calloc((size_t)runs, sizeof *cpus);
    int okruns = 0;
    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        pid_t pid = fork();
        if (pid == 0) {
            int dn = open("/dev/null", O_WRONLY);
            dup2(dn, 1);
            execv(parser, argv);
            _exit(127);
        }
        int st;
        struct rusage ru;
        if (pid < 0 || wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            break;
        times[okruns] = now_s() - t0;
        cpus[okruns++] = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                         (double)ru.ru_stime.tv_usec / 1e6;
    }
    unlink(tmpl);
    double res = -1;
    if (okruns == runs && runs > 0) {
        qsort(times, (size_t)runs, sizeof *times, cmp_double);
        qsort(cpus, (size_t)runs, sizeof *cpus, cmp_double);
        res = (double)total / times[runs / 2];
        *cpu_lps = (double)total / cpus[runs / 2];
    }
    free(times);
    free(cpus);
    return res;
}

/* Template texts by id, sorted, for the final text of each line's (resolved) id. */
struct id_text {
    uint64_t id;
    char *text;
};

static int cmp_id_text(const void *a, const void *b)
{
    uint64_t x = ((const struct id_text *)a)->id, y = ((const struct id_text *)b)->id;
    return x < y ? -1 : x > y;
}

typedef struct collect_state {
    struct id_text *v;
    size_t n;
} collect_state;

static int collect_one(lf_template *t, void *arg)
{
    collect_state *c = arg;
    c->v[c->n].id = lf_template_id(t);
    c->v[c->n].text = strdup(lf_template_text(t, NULL));
    c->n++;
    return 0;
}

static void collect_texts(lf_miner *m, struct id_text **out, size_t *n)
{
    collect_state c = {calloc(lf_miner_template_count(m) + 1, sizeof *c.v), 0};
    lf_miner_foreach(m, collect_one, &c);
    qsort(c.v, c.n, sizeof *c.v, cmp_id_text);
    *out = c.v;
    *n = c.n;
}

static const char *text_of(const struct id_text *v, size_t n, uint64_t id)
{
    struct id_text key = {id, NULL};
    const struct id_text *hit = bsearch(&key, v, n, sizeof *v, cmp_id_text);
    return hit ? hit->text : NULL;
}

typedef struct result {
    char name[64];
    double ga, ga_raw, pa, fta, lps, cpu_lps;
    size_t unmatched, templates;
    double scale_ga, scale_ga_raw; /* see scale_ga */
    size_t scale_lines, scale_templates;
} result;

/* Grouping accuracy of the sample mined at scale, as `logferry-parser parse` mines a large file: the
 * sample, then copies - 1 copies of it with their numbers varied (vary_numbers), in the parse
 * command's batches (LF_PARSE_BATCH_EVENTS / _BYTES); every line's true group is its sample
 * line's. Each line keeps the id it was given in its batch: res->scale_ga_raw groups by that id,
 * res->scale_ga by it resolved through the merges made since. 0 or -1. */
static int scale_ga(const lf_logtype *t, const lf_miner_config *setting, const strv *lines, const size_t *tgroup,
                    size_t nt, size_t copies, result *res)
{
    size_t n = lines->n, total = n * copies;
    lf_engine *e;
    char err[256];
    if (!total || lf_engine_new(t, setting, &e, err, sizeof err) < 0)
        return -1;
    uint64_t *emitted = malloc(total * sizeof *emitted);
    int *slots = malloc(total * sizeof *slots);
    size_t *truth = malloc(total * sizeof *truth), *pgroup = malloc(total * sizeof *pgroup),
           *rgroup = malloc(total * sizeof *rgroup);
    char **keys = calloc(total, sizeof *keys), **rkeys = calloc(total, sizeof *rkeys);
    char *copy = NULL;
    size_t cap = 0, from = 0, bytes = 0, events = 0;
    uint64_t seed = 1;
    int rc = emitted && slots && truth && pgroup && rgroup && keys && rkeys ? 0 : -1;
    for (size_t idx = 0; idx < total && rc == 0; idx++) {
        size_t k = idx % n;
        const char *s = lines->v[k];
        size_t len = strlen(s);
        if (idx >= n) {
            if (len + 1 > cap) {
                cap = 2 * (len + 1);
                free(copy);
                copy = malloc(cap);
                if (!copy) {
                    rc = -1;
                    break;
                }
            }
            memcpy(copy, s, len);
            vary_numbers(copy, len, &seed);
            s = copy;
        }
        lf_event ev;
        (void)lf_engine_split(e, s, len, &ev);
        if (lf_engine_queue(e, &ev) < 0) {
            rc = -1;
            break;
        }
        slots[idx] = ev.slot;
        truth[idx] = tgroup[k];
        bytes += len + 1;
        if (idx + 1 == total || ++events >= LF_PARSE_BATCH_EVENTS || bytes >= LF_PARSE_BATCH_BYTES) {
            if (lf_engine_flush(e) < 0) {
                rc = -1;
                break;
            }
            for (; from <= idx; from++)
                emitted[from] = lf_template_id(lf_engine_template(e, slots[from]));
            lf_engine_reset(e);
            bytes = events = 0;
        }
    }
    if (rc == 0) {
        lf_miner *mn = lf_engine_miner(e);
        char buf[32];
        for (size_t i = 0; i < total; i++) {
            snprintf(buf, sizeof buf, "%016llx", (unsigned long long)lf_miner_resolve(mn, emitted[i]));
            keys[i] = strdup(buf);
            snprintf(buf, sizeof buf, "%016llx", (unsigned long long)emitted[i]);
            rkeys[i] = strdup(buf);
        }
        size_t np = dense_groups(keys, total, pgroup), nr = dense_groups(rkeys, total, rgroup);
        res->scale_ga = (double)grouping_correct(pgroup, np, truth, nt, total, NULL) / (double)total;
        res->scale_ga_raw = (double)grouping_correct(rgroup, nr, truth, nt, total, NULL) / (double)total;
        res->scale_lines = total;
        res->scale_templates = lf_miner_template_count(mn);
    }
    for (size_t i = 0; keys && rkeys && i < total; i++) {
        free(keys[i]);
        free(rkeys[i]);
    }
    free(keys);
    free(rkeys);
    free(copy);
    free(emitted);
    free(slots);
    free(truth);
    free(pgroup);
    free(rgroup);
    lf_engine_free(e);
    return rc;
}

static int run_system(const char *dir, const char *name, json_t *cfg, const char *parser, int runs, size_t speed_lines, bool verbatim,
                      size_t scale_copies, size_t batch, const lf_miner_config *setting, result *res)
{
    char path[4096];
    memset(res, 0, sizeof *res);
    snprintf(res->name, sizeof res->name, "%s", name);
    lf_logtype t;
    lf_logtype_init(&t, name);
    const char *fmt = json_string_value(json_object_get(cfg, "log_format"));
    if (!fmt) {
        fprintf(stderr, "%s: no log_format\n", name);
        return -1;
    }
    lf_logtype_set(&t, "format", fmt);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(cfg, "regex"), i, m) lf_logtype_set(&t, "mask", json_string_value(m));
    t.continuation = false;

    strv truth_id = {0}, truth_tmpl = {0}, lines = {0};
    snprintf(path, sizeof path, "%s/%s/%s_2k.log_structured.csv", dir, name, name);
    if (csv_column(path, "EventId", &truth_id) < 0) {
        fprintf(stderr, "%s: cannot read EventId\n", path);
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s/%s_2k.log_structured_corrected.csv", dir, name, name);
    if (csv_column(path, "EventTemplate", &truth_tmpl) < 0) {
        fprintf(stderr, "%s: cannot read EventTemplate\n", path);
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s/%s_2k.log", dir, name, name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(path);
        return -1;
    }
    lf_line_reader rd;
    lf_line_reader_init(&rd, fd, t.max_line);
    const char *l;
    size_t ll;
    bool tr;
    while (lf_line_reader_next(&rd, &l, &ll, &tr) > 0)
        strv_push(&lines, strndup(l, ll));
    lf_line_reader_free(&rd);
    close(fd);
    size_t n = lines.n;
    if (truth_id.n != n || truth_tmpl.n != n) {
        fprintf(stderr, "%s: %zu lines but %zu/%zu ground-truth rows\n", name, n, truth_id.n, truth_tmpl.n);
        return -1;
    }
    lf_engine *e;
    char err[256];
    if (lf_engine_new(&t, setting, &e, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", name, err);
        return -1;
    }
    /* the lines are mined in batches of `batch` lines (all at once by default), as a parser mines
     * a session at a time; each line keeps the id it was given in its batch */
    uint64_t *emitted = malloc(n * sizeof *emitted);
    int *slots = malloc(n * sizeof *slots);
    size_t from = 0;
    for (size_t k = 0; k < n; k++) {
        lf_event ev;
        if (lf_engine_split(e, lines.v[k], strlen(lines.v[k]), &ev) == 0)
            res->unmatched++;
        if (lf_engine_queue(e, &ev) < 0) {
            fprintf(stderr, "%s: the miner refused line %zu\n", name, k + 1);
            return -1;
        }
        slots[k] = ev.slot;
        if (k + 1 == n || (batch && (k + 1) % batch == 0)) {
            if (lf_engine_flush(e) < 0) {
                fprintf(stderr, "%s: out of memory\n", name);
                return -1;
            }
            for (; from <= k; from++)
                emitted[from] = lf_template_id(lf_engine_template(e, slots[from]));
            lf_engine_reset(e);
        }
    }
    /* final templates: each line's id resolved through the merges made since */
    lf_miner *mn = lf_engine_miner(e);
    res->templates = lf_miner_template_count(mn);
    struct id_text *texts = NULL;
    size_t ntexts = 0;
    collect_texts(mn, &texts, &ntexts);
    char **skeys = malloc(n * sizeof *skeys), **rkeys = malloc(n * sizeof *rkeys);
    char **pkeys = malloc(n * sizeof *pkeys), **ctmpl = malloc(n * sizeof *ctmpl);
    char buf[32];
    size_t pa_ok = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t fin = lf_miner_resolve(mn, emitted[k]);
        snprintf(buf, sizeof buf, "%016llx", (unsigned long long)fin);
        skeys[k] = strdup(buf);
        snprintf(buf, sizeof buf, "%016llx", (unsigned long long)emitted[k]);
        rkeys[k] = strdup(buf);
        const char *tx = text_of(texts, ntexts, fin);
        pkeys[k] = norm_ws(tx ? tx : "");
        ctmpl[k] = norm_ws(truth_tmpl.v[k]);
        if (strcmp(pkeys[k], ctmpl[k]) == 0)
            pa_ok++;
    }
    size_t *pgroup = malloc(n * sizeof *pgroup), *tgroup = malloc(n * sizeof *tgroup),
           *cgroup = malloc(n * sizeof *cgroup), *rgroup = malloc(n * sizeof *rgroup);
    size_t np = dense_groups(skeys, n, pgroup);
    size_t nr = dense_groups(rkeys, n, rgroup);
    size_t nt = dense_groups(truth_id.v, n, tgroup);
    size_t ntc = dense_groups(ctmpl, n, cgroup);
    res->ga = (double)grouping_correct(pgroup, np, tgroup, nt, n, NULL) / (double)n;
    res->ga_raw = (double)grouping_correct(rgroup, nr, tgroup, nt, n, NULL) / (double)n;
    res->pa = (double)pa_ok / (double)n;
    bool *gok = calloc(np, 1);
    grouping_correct(pgroup, np, cgroup, ntc, n, gok);
    size_t correct = 0;
    bool *seen = calloc(np, 1);
    for (size_t k = 0; k < n; k++) {
        size_t g = pgroup[k];
        if (seen[g])
            continue;
        seen[g] = true;
        if (gok[g] && strcmp(pkeys[k], ctmpl[k]) == 0)
            correct++;
    }
    double prec = np ? (double)correct / (double)np : 0, rec = ntc ? (double)correct / (double)ntc : 0;
    res->fta = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0;
    if (getenv("LF_BENCH_DUMP")) {
        /* wrong lines, for studying the rules: parsed \t corrected */
        for (size_t k = 0; k < n; k++)
            if (strcmp(pkeys[k], ctmpl[k]) != 0)
                fprintf(stderr, "%s\tPA\t%s\t%s\n", name, pkeys[k], ctmpl[k]);
        bool *gaok = calloc(np, 1);
        grouping_correct(pgroup, np, tgroup, nt, n, gaok);
        for (size_t k = 0; k < n; k++)
            if (!gaok[pgroup[k]])
                fprintf(stderr, "%s\tGA\t%s\t%s\t%s\n", name, pkeys[k], truth_id.v[k], ctmpl[k]);
        free(gaok);
    }
    if (scale_copies > 1 && scale_ga(&t, setting, &lines, tgroup, nt, scale_copies, res) < 0) {
        fprintf(stderr, "%s: the run at scale failed\n", name);
        return -1;
    }
    res->lps = parser && speed_lines ? time_process(parser, &t, path, speed_lines, runs, verbatim, &res->cpu_lps) : 0;
    for (size_t k = 0; k < n; k++) {
        free(pkeys[k]);
        free(ctmpl[k]);
        free(skeys[k]);
        free(rkeys[k]);
    }
    for (size_t k = 0; k < ntexts; k++)
        free(texts[k].text);
    free(texts);
    free(pkeys);
    free(ctmpl);
    free(skeys);
    free(rkeys);
    free(rgroup);
    free(emitted);
    free(slots);
    free(pgroup);
    free(tgroup);
    free(cgroup);
    free(gok);
    free(seen);
    lf_engine_free(e);
    strv_free(&truth_id);
    strv_free(&truth_tmpl);
    strv_free(&lines);
    lf_logtype_clear(&t);
    return 0;
}


/* The miner's settings that leave-one-system-out chooses among: every threshold and every rule that
 * can be switched, each value a reasonable one. */
static const double loso_shares[] = {0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9};
#define N_SHARES (sizeof loso_shares / sizeof loso_shares[0])
static const unsigned loso_values[] = {0, 2, 3, 4};
#define N_VALUES (sizeof loso_values / sizeof loso_values[0])
#define N_RULES (N_VALUES * 2) /* split_values x capitals */
#define N_SETTINGS (N_SHARES * N_RULES)

static void loso_setting(size_t i, lf_miner_config *c)
{
    lf_miner_config_default(c);
    c->word_share = loso_shares[i / N_RULES];
    c->split_values = loso_values[(i % N_RULES) / 2];
    c->split_capitals = (i & 1) != 0;
}

static bool loso_is_default(size_t i)
{
    lf_miner_config c, d;
    loso_setting(i, &c);
    lf_miner_config_default(&d);
    return c.word_share == d.word_share && c.split_values == d.split_values &&
           c.split_capitals == d.split_capitals;
}

/* Leave one system out: for each system, the setting with the best mean GA on the other systems
 * (the default when it is among the best) is chosen there and scored on the one left out. So the
 * figures say how the miner does on a system none of its choices saw; the default figures above are
 * the best fit for all of them at once. */
static int leave_one_out(const char *dir, json_t *settings, size_t batch, size_t nsys)
{
    result *r = calloc(N_SETTINGS * nsys, sizeof *r);
    const char *name;
    json_t *cfg;
    for (size_t st = 0; st < N_SETTINGS; st++) {
        lf_miner_config c;
        loso_setting(st, &c);
        size_t k = 0;
        json_object_foreach(settings, name, cfg)
        {
            if (run_system(dir, name, cfg, NULL, 0, 0, false, 0, batch, &c, &r[st * nsys + k]) < 0) {
                free(r);
                return 1;
            }
            k++;
        }
    }
    printf("\nleave one system out: each system scored with the setting that is best on the others\n");
    printf("%-10s %7s %7s %7s   %s\n", "system", "GA", "PA", "FTA", "setting chosen (word_share, split values, capitals)");
    double ga = 0, pa = 0, fta = 0;
    size_t chose_default = 0;
    for (size_t out = 0; out < nsys; out++) {
        size_t best = 0;
        double best_ga = -1;
        for (size_t st = 0; st < N_SETTINGS; st++) {
            double g = 0;
            for (size_t i = 0; i < nsys; i++)
                if (i != out)
                    g += r[st * nsys + i].ga;
            if (g > best_ga + 1e-12 || (g > best_ga - 1e-12 && loso_is_default(st) && !loso_is_default(best))) {
                best = st;
                best_ga = g;
            }
        }
        const result *x = &r[best * nsys + out];
        lf_miner_config c;
        loso_setting(best, &c);
        chose_default += loso_is_default(best);
        printf("%-10s %7.4f %7.4f %7.4f   %.2f %u %s%s\n", x->name, x->ga, x->pa, x->fta, c.word_share,
               c.split_values, c.split_capitals ? "on" : "off",
               loso_is_default(best) ? " (the default)" : "");
        ga += x->ga;
        pa += x->pa;
        fta += x->fta;
    }
    printf("%-10s %7.4f %7.4f %7.4f   (the default chosen for %zu of %zu)\n", "mean", ga / (double)nsys,
           pa / (double)nsys, fta / (double)nsys, chose_default, nsys);
    /* with split values 0 and capitals off, both rules are off */
    for (int caps = 1; caps >= 0; caps--) {
        printf("mean GA on all systems, by word_share and split values (capitals %s):\n", caps ? "on" : "off");
        printf("  share");
        for (size_t v = 0; v < N_VALUES; v++)
            printf("  values %u", loso_values[v]);
        printf("\n");
        for (size_t i = 0; i < N_SHARES; i++) {
            printf("  %5.2f", loso_shares[i]);
            for (size_t v = 0; v < N_VALUES; v++) {
                size_t st = i * N_RULES + v * 2 + (size_t)caps;
                double g = 0;
                for (size_t k = 0; k < nsys; k++)
                    g += r[st * nsys + k].ga;
                printf("  %8.4f", g / (double)nsys);
            }
            printf("\n");
        }
    }
    free(r);
    return 0;
}

static char *default_parser(const char *argv0)
{
    const char *bd = getenv("LF_BUILD_DIR");
    char p[4096];
    const char *cands[] = {"logferry-parser"};
    for (int i = 0; i < 1; i++) {
        if (bd)
            snprintf(p, sizeof p, "%s/%s", bd, cands[i]);
        else {
            snprintf(p, sizeof p, "%s", argv0);
            char *s = strrchr(p, '/');
            if (s)
                s[1] = '\0';
            else
                p[0] = '\0';
            strncat(p, cands[i], sizeof p - strlen(p) - 1);
        }
        /* logferry-parser counts only once its main dispatches "parse" */
        if (access(p, X_OK) == 0) {
            char cmd[4200];
            snprintf(cmd, sizeof cmd, "'%s' parse --help >/dev/null 2>&1", p);
            if (system(cmd) == 0)
                return strdup(p);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *dir = getenv("LF_LOGHUB") ? getenv("LF_LOGHUB") : "../shared/loghub";
    char *parser = NULL;
    int runs = 5;
    size_t speed_lines = 1000000, batch = 0, scale_copies = 50;
    bool speed = true, loso = true, verbatim = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--parser") && i + 1 < argc)
            parser = strdup(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--lines") && i + 1 < argc)
            speed_lines = (size_t)atoll(argv[++i]);
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc)
            scale_copies = (size_t)atoll(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = (size_t)atoll(argv[++i]);
        else if (!strcmp(argv[i], "--no-speed"))
            speed = false;
        else if (!strcmp(argv[i], "--verbatim"))
            verbatim = true;
        else if (!strcmp(argv[i], "--no-loso"))
            loso = false;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: bench-parse-accuracy [--parser PATH] [--runs N] [--lines N] [--verbatim] [--scale N] [--batch N] "
                            "[--no-speed] "
                            "[--no-loso] [DIR]\n");
            return 2;
        } else
            dir = argv[i];
    }
    if (runs < 1)
        runs = 1;
    if (speed && !parser)
        parser = default_parser(argv[0]);
    if (speed && !parser) {
        fprintf(stderr, "bench-parse-accuracy: no parser binary found (use --parser or --no-speed)\n");
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/settings.json", dir);
    json_error_t je;
    json_t *settings = json_load_file(path, JSON_PRESERVE_ORDER, &je);
    if (!settings) {
        fprintf(stderr, "%s: %s\n", path, je.text);
        return 1;
    }
    cpu_set_t cs;
    CPU_ZERO(&cs);
    CPU_SET(0, &cs);
    (void)sched_setaffinity(0, sizeof cs, &cs); /* one core, for us and the timed processes */
    printf("%-10s %7s %7s %7s %7s %9s %12s %12s\n", "system", "GA", "GA ids", "PA", "FTA", "templates", "wall l/s",
           "cpu l/s");
    size_t nsys = json_object_size(settings), k = 0;
    result *res = calloc(nsys, sizeof *res);
    const char *name;
    json_t *cfg;
    int failed = 0;
    json_object_foreach(settings, name, cfg)
    {
        lf_miner_config def;
        lf_miner_config_default(&def);
        if (run_system(dir, name, cfg, speed ? parser : NULL, runs, speed_lines, verbatim, scale_copies, batch, &def, &res[k]) < 0) {
            failed = 1;
            continue;
        }
        result *r = &res[k++];
        printf("%-10s %7.4f %7.4f %7.4f %7.4f %9zu %12.0f %12.0f\n", r->name, r->ga, r->ga_raw, r->pa, r->fta,
               r->templates, r->lps,
               r->cpu_lps);
        if (r->unmatched)
            printf("%-10s (%zu lines did not match the format)\n", "", r->unmatched);
        fflush(stdout);
    }
    double ga = 0, ga_raw = 0, pa = 0, fta = 0;
    double *lps = calloc(k ? k : 1, sizeof *lps), *cps = calloc(k ? k : 1, sizeof *cps);
    for (size_t i = 0; i < k; i++) {
        ga += res[i].ga;
        ga_raw += res[i].ga_raw;
        pa += res[i].pa;
        fta += res[i].fta;
        lps[i] = res[i].lps;
        cps[i] = res[i].cpu_lps;
    }
    qsort(lps, k, sizeof *lps, cmp_double);
    qsort(cps, k, sizeof *cps, cmp_double);
    double med = k ? (k % 2 ? lps[k / 2] : (lps[k / 2 - 1] + lps[k / 2]) / 2) : 0;
    double cmed = k ? (k % 2 ? cps[k / 2] : (cps[k / 2 - 1] + cps[k / 2]) / 2) : 0;
    if (k)
        printf("%-10s %7.4f %7.4f %7.4f %7.4f %9s %12.0f %12.0f  (lines/s: medians over systems)\n", "mean",
               ga / (double)k, ga_raw / (double)k, pa / (double)k, fta / (double)k, "", med, cmed);
    free(lps);
    free(cps);
    if (scale_copies > 1 && k) {
        printf("\nat scale: each sample and %zu copies with their numbers varied, mined in the batches of "
               "`logferry-parser parse`\n%-10s %9s %7s %7s %9s\n",
               scale_copies - 1, "system", "lines", "GA", "GA ids", "templates");
        double sga = 0, sraw = 0;
        for (size_t i = 0; i < k; i++) {
            printf("%-10s %9zu %7.4f %7.4f %9zu\n", res[i].name, res[i].scale_lines, res[i].scale_ga,
                   res[i].scale_ga_raw, res[i].scale_templates);
            sga += res[i].scale_ga;
            sraw += res[i].scale_ga_raw;
        }
        printf("%-10s %9s %7.4f %7.4f\n", "mean", "", sga / (double)k, sraw / (double)k);
    }
    if (loso && !failed && k > 1)
        failed = leave_one_out(dir, settings, batch, k);
    free(res);
    free(parser);
    json_decref(settings);
    return failed;
}
