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
 *        replaced (ir_per_line.py with and without --varied: Loghub's Linux 7% fewer instructions a
 *        line verbatim, Mac 4%; none where the masks replace every number, as Android's).
 *        --keep-input DIR keeps each system's timed input as DIR/<system>.log (for callgrind:
 *        bench/parse-accuracy/ir_per_line.py --varied).
 *   at scale: GA of the sample and --scale N - 1 varied copies mined in parse's batches (scale_ga).
 * Usage: bench-parse-accuracy [--parser PATH] [--runs N] [--lines N] [--verbatim] [--keep-input DIR]
 *                             [--scale N] [--batch N] [--no-speed] [--no-loso] [DIR] */
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
#include "lf_hex.h"
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

typedef struct id_line {
    uint64_t id;
    size_t idx;
} id_line;

static int id_line_cmp(const void *a, const void *b)
{
    const id_line *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Assigns a dense group number to each line from its template id. */
static size_t id_groups(const uint64_t *ids, size_t n, size_t *group)
{
    id_line *a = malloc((n ? n : 1) * sizeof *a);
    if (!a)
        abort();
    for (size_t i = 0; i < n; i++)
        a[i] = (id_line){ids[i], i};
    qsort(a, n, sizeof *a, id_line_cmp);
    size_t g = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && a[i].id != a[i - 1].id)
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

static bool is_letter(char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return lf_hex_value(c) >= 0;
}

/* A pseudo-random number below n (a 64-bit LCG, of which the high bits are the good ones). */
static unsigned next_below(uint64_t *seed, unsigned n)
{
    *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(*seed >> 33) % n;
}

/* Each digit of s[0..n) becomes another digit, each hex letter another hex letter of its case. */
static void scramble(char *s, size_t n, uint64_t *seed)
{
    for (size_t k = 0; k < n; k++)
        s[k] = is_digit(s[k]) ? (char)('0' + next_below(seed, 10)) : (char)((s[k] >= 'a' ? 'a' : 'A') + next_below(seed, 6));
}

/* Changes the values of a copy of the sample the way a log's values vary, keeping every token's
 * shape: the digits of a number that stands apart from letters ("42", "10.0.3.7", "07:07:00",
 * "blk_-1608"), of a "0x" value, and of a hex value of six or more digits, one of them decimal
 * ("9f4ef63", a UUID's "38101a0b"), digits staying digits and letters letters. Digits glued to
 * letters ("wl0", "IPV6", "tc19060") are names and stay, and so does the length of every value, so
 * fixed-width fields and line formats still match. */
static void vary_numbers(char *b, size_t len, uint64_t *seed)
{
    size_t i = 0;
    while (i < len) {
        if (i > 0 && (is_digit(b[i - 1]) || is_letter(b[i - 1]))) {
            i++; /* inside a word */
            continue;
        }
        bool prefixed = b[i] == '0' && i + 2 < len && (b[i + 1] | 0x20) == 'x' && is_hex(b[i + 2]);
        size_t h = prefixed ? i + 2 : i, e = h;
        bool digit = false;
        while (e < len && is_hex(b[e]))
            digit |= is_digit(b[e++]);
        if (prefixed || (digit && e - h >= 6 && (e == len || !is_letter(b[e])))) {
            scramble(b + h, e - h, seed);
            i = e;
            continue;
        }
        for (e = i; e < len && is_digit(b[e]); e++) {
        }
        if (e > i && (e == len || !is_letter(b[e])))
            scramble(b + i, e - i, seed);
        i = e > i ? e : i + 1;
    }
}

/* How the parser process is timed: on `lines` lines (the sample repeated), the median of `runs`. */
typedef struct speed_opts {
    const char *parser;
    int runs;
    size_t lines;
    bool verbatim;        /* copies as they are, not with their numbers varied */
    const char *keep_dir; /* keep the input there as <system>.log; NULL: a temporary file */
} speed_opts;

/* Times the parser process on a file of repeated lines. Returns lines/s of wall time or -1, and
 * in *cpu_lps lines per CPU second (user + system of the process), the figure that a machine
 * shared with other work does not distort. */
static double time_process(const speed_opts *so, const lf_logtype *t, const char *logpath, double *cpu_lps)
{
    const char *parser = so->parser;
    int runs = so->runs;
    size_t len;
    char *b = read_file(logpath, &len);
    if (!b)
        return -1;
    size_t nl = 0;
    for (size_t i = 0; i < len; i++)
        nl += b[i] == '\n';
    bool final_nl = len && b[len - 1] == '\n';
    size_t per = nl + !final_nl;
    size_t reps = per ? (so->lines + per - 1) / per : 1;
    char tmpl[4096] = "/tmp/lf-bench-parse-XXXXXX";
    int fd;
    if (so->keep_dir) {
        snprintf(tmpl, sizeof tmpl, "%s/%s.log", so->keep_dir, t->name);
        fd = open(tmpl, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    } else {
        fd = mkstemp(tmpl);
    }
    if (fd < 0) {
        free(b);
        return -1;
    }
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        close(fd);
        if (!so->keep_dir)
        unlink(tmpl);
        free(b);
        return -1;
    }
    uint64_t seed = 1;
    for (size_t r = 0; r < reps; r++) {
        const char *out = b;
        if (r > 0 && !so->verbatim) {
            memcpy(copy, b, len);
            vary_numbers(copy, len, &seed);
            out = copy;
        }
        if (write(fd, out, len) != (ssize_t)len || (!final_nl && write(fd, "\n", 1) != 1)) {
            close(fd);
            if (!so->keep_dir)
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
    if (!so->keep_dir)
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

/* Mines the sample, then copies - 1 copies of it with their numbers varied (vary_numbers), as a
 * parser mines: a batch ends after max_events lines or max_bytes bytes of them (0: no limit) and at
 * the end, and each line keeps the id of the template it was given in its batch (emitted[]).
 * Counts the lines the line format did not match. 0, or -1 with a message. */
static int mine(lf_engine *e, const char *name, const strv *lines, size_t copies, size_t max_events, size_t max_bytes,
                uint64_t *emitted, size_t *unmatched)
{
    size_t n = lines->n, total = n * copies, from = 0, events = 0, bytes = 0, cap = 0;
    int *slots = malloc((total ? total : 1) * sizeof *slots);
    char *copy = NULL;
    uint64_t seed = 1;
    if (!slots) {
        fprintf(stderr, "%s: out of memory\n", name);
        return -1;
    }
    int rc = 0;
    for (size_t idx = 0; idx < total && rc == 0; idx++) {
        const char *s = lines->v[idx % n];
        size_t len = strlen(s);
        if (idx >= n) {
            if (len + 1 > cap) {
                free(copy);
                cap = 2 * (len + 1);
                copy = malloc(cap);
                if (!copy) {
                    fprintf(stderr, "%s: out of memory\n", name);
                    rc = -1;
                    break;
                }
            }
            memcpy(copy, s, len);
            vary_numbers(copy, len, &seed);
            s = copy;
        }
        lf_event ev;
        if (lf_engine_split(e, s, len, &ev) == 0)
            ++*unmatched;
        if (lf_engine_queue(e, &ev) < 0) {
            fprintf(stderr, "%s: the miner refused line %zu\n", name, idx + 1);
            rc = -1;
            break;
        }
        slots[idx] = ev.slot;
        events++;
        bytes += len + 1;
        if (idx + 1 == total || (max_events && events >= max_events) || (max_bytes && bytes >= max_bytes)) {
            if (lf_engine_flush(e) < 0) {
                fprintf(stderr, "%s: out of memory\n", name);
                rc = -1;
                break;
            }
            for (; from <= idx; from++)
                emitted[from] = lf_template_id(lf_engine_template(e, slots[from]));
            lf_engine_reset(e);
            events = bytes = 0;
        }
    }
    free(copy);
    free(slots);
    return rc;
}

/* Grouping accuracy of the sample mined at scale, as `logferry-parser parse` mines a large file: the
 * sample and copies - 1 varied copies (mine) in the parse command's batches (LF_PARSE_BATCH_*);
 * every line's true group is its sample line's. res->scale_ga_raw groups the lines by the id each
 * was given in its batch, res->scale_ga by it resolved through the merges made since. 0 or -1. */
static int scale_ga(const lf_logtype *t, const lf_miner_config *setting, const char *name, const strv *lines,
                    const size_t *tgroup, size_t nt, size_t copies, result *res)
{
    size_t n = lines->n, total = n * copies, unmatched = 0;
    lf_engine *e;
    char err[256];
    if (!total || lf_engine_new(t, setting, &e, err, sizeof err) < 0)
        return -1;
    uint64_t *emitted = malloc(total * sizeof *emitted), *resolved = malloc(total * sizeof *resolved);
    size_t *truth = malloc(total * sizeof *truth), *pgroup = malloc(total * sizeof *pgroup),
           *rgroup = malloc(total * sizeof *rgroup);
    int rc = emitted && resolved && truth && pgroup && rgroup ? 0 : -1;
    if (rc == 0)
        rc = mine(e, name, lines, copies, LF_PARSE_BATCH_EVENTS, LF_PARSE_BATCH_BYTES, emitted, &unmatched);
    if (rc == 0) {
        lf_miner *mn = lf_engine_miner(e);
        for (size_t i = 0; i < total; i++) {
            resolved[i] = lf_miner_resolve(mn, emitted[i]);
            truth[i] = tgroup[i % n];
        }
        size_t np = id_groups(resolved, total, pgroup), nr = id_groups(emitted, total, rgroup);
        res->scale_ga = (double)grouping_correct(pgroup, np, truth, nt, total, NULL) / (double)total;
        res->scale_ga_raw = (double)grouping_correct(rgroup, nr, truth, nt, total, NULL) / (double)total;
        res->scale_lines = total;
        res->scale_templates = lf_miner_template_count(mn);
    }
    free(emitted);
    free(resolved);
    free(truth);
    free(pgroup);
    free(rgroup);
    lf_engine_free(e);
    return rc;
}

/* speed: NULL for no timing */
static int run_system(const char *dir, const char *name, json_t *cfg, const speed_opts *speed, size_t scale_copies,
                      size_t batch, const lf_miner_config *setting, result *res)
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
    uint64_t *emitted = malloc(n * sizeof *emitted), *resolved = malloc(n * sizeof *resolved);
    if (!emitted || !resolved || mine(e, name, &lines, 1, batch, 0, emitted, &res->unmatched) < 0)
        return -1;
    /* final templates: each line's id resolved through the merges made since */
    lf_miner *mn = lf_engine_miner(e);
    res->templates = lf_miner_template_count(mn);
    struct id_text *texts = NULL;
    size_t ntexts = 0;
    collect_texts(mn, &texts, &ntexts);
    char **pkeys = malloc(n * sizeof *pkeys), **ctmpl = malloc(n * sizeof *ctmpl);
    size_t pa_ok = 0;
    for (size_t k = 0; k < n; k++) {
        resolved[k] = lf_miner_resolve(mn, emitted[k]);
        const char *tx = text_of(texts, ntexts, resolved[k]);
        pkeys[k] = norm_ws(tx ? tx : "");
        ctmpl[k] = norm_ws(truth_tmpl.v[k]);
        if (strcmp(pkeys[k], ctmpl[k]) == 0)
            pa_ok++;
    }
    size_t *pgroup = malloc(n * sizeof *pgroup), *tgroup = malloc(n * sizeof *tgroup),
           *cgroup = malloc(n * sizeof *cgroup), *rgroup = malloc(n * sizeof *rgroup);
    size_t np = id_groups(resolved, n, pgroup);
    size_t nr = id_groups(emitted, n, rgroup);
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
    if (scale_copies > 1 && scale_ga(&t, setting, name, &lines, tgroup, nt, scale_copies, res) < 0) {
        fprintf(stderr, "%s: the run at scale failed\n", name);
        return -1;
    }
    res->lps = speed ? time_process(speed, &t, path, &res->cpu_lps) : 0;
    for (size_t k = 0; k < n; k++) {
        free(pkeys[k]);
        free(ctmpl[k]);
    }
    for (size_t k = 0; k < ntexts; k++)
        free(texts[k].text);
    free(texts);
    free(pkeys);
    free(ctmpl);
    free(rgroup);
    free(emitted);
    free(resolved);
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
            if (run_system(dir, name, cfg, NULL, 0, batch, &c, &r[st * nsys + k]) < 0) {
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

/* A count given on the command line: digits only, or the program stops (a typo must not become 0,
 * which turns the measurement off). */
static size_t count_arg(const char *opt, const char *v)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-') {
        fprintf(stderr, "bench-parse-accuracy: %s wants a count, not \"%s\"\n", opt, v);
        exit(2);
    }
    return (size_t)n;
}

int main(int argc, char **argv)
{
    const char *dir = getenv("LF_LOGHUB") ? getenv("LF_LOGHUB") : "../shared/loghub";
    char *parser = NULL;
    speed_opts so = {.runs = 5, .lines = 1000000};
    size_t batch = 0, scale_copies = 50;
    bool speed = true, loso = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--parser") && i + 1 < argc)
            parser = strdup(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            so.runs = (int)count_arg("--runs", argv[++i]);
        else if (!strcmp(argv[i], "--lines") && i + 1 < argc)
            so.lines = count_arg("--lines", argv[++i]);
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc)
            scale_copies = count_arg("--scale", argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = count_arg("--batch", argv[++i]);
        else if (!strcmp(argv[i], "--no-speed"))
            speed = false;
        else if (!strcmp(argv[i], "--verbatim"))
            so.verbatim = true;
        else if (!strcmp(argv[i], "--keep-input") && i + 1 < argc)
            so.keep_dir = argv[++i];
        else if (!strcmp(argv[i], "--no-loso"))
            loso = false;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: bench-parse-accuracy [--parser PATH] [--runs N] [--lines N] [--verbatim] "
                            "[--keep-input DIR] [--scale N] [--batch N] [--no-speed] [--no-loso] [DIR]\n");
            return 2;
        } else
            dir = argv[i];
    }
    if (so.runs < 1)
        so.runs = 1;
    if (speed && !parser)
        parser = default_parser(argv[0]);
    if (speed && !parser) {
        fprintf(stderr, "bench-parse-accuracy: no parser binary found (use --parser or --no-speed)\n");
        return 1;
    }
    so.parser = parser;
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
        if (run_system(dir, name, cfg, speed && so.lines ? &so : NULL, scale_copies, batch, &def, &res[k]) < 0) {
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
