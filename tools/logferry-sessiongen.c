/* logferry-sessiongen: writes realistic software usage sessions (one log file per run of a
 * product), deterministic from a seed, with a JSON-lines ground truth. Used by the quick start,
 * the tests and the benchmarks. See docs/sample-data.md and --help.
 *
 * Determinism: every random choice comes from sessiongen_rng.h streams derived from the seed; the
 * world (sites, users, hosts), each session's plan and each session's content use separate streams,
 * so the same arguments always give byte-identical files, and nothing depends on the locale, the
 * clock or the file system's order. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "lf_buf.h"
#include "lf_calendar.h"
#include "sessiongen_rng.h"
#include "sessiongen_vocab.h"

#define PROG "logferry-sessiongen"
#define SG_MSG_MAX 8192        /* one rendered message */
#define SG_STACK_MAX 16384     /* one rendered stack trace */
#define SG_LINE_ROOM (6 * (SG_MSG_MAX + SG_STACK_MAX) + 1024) /* worst case after JSON escaping */
#define SG_OUT_CAP (1u << 20)
#define SG_TABLE 4096          /* entries in each sampled distribution table */
#define SG_MAX_DOCS 8
#define SG_MAX_POOL 20000000u

/* ------------------------------------------------------------------------------------------ */
/* Small formatting helpers (no printf in the hot path, no locale). */

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

static char *put_hex(char *p, uint64_t v, int digits)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        p[i] = hx[v & 15];
        v >>= 4;
    }
    return p + digits;
}

static char *put_str(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* JSON string body (no quotes). UTF-8 passes through; quotes, backslashes and controls escape. */
static char *put_json(char *p, const char *s, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c == '\n') {
            *p++ = '\\';
            *p++ = 'n';
        } else if (c == '\t') {
            *p++ = '\\';
            *p++ = 't';
        } else if (c < 0x20) {
            p = put_str(p, "\\u00", 4);
            *p++ = hx[c >> 4];
            *p++ = hx[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Calendar (proleptic Gregorian, days since 1970-01-01). */

/* Dates as (int y, unsigned m, unsigned d), on common/lf_calendar.h. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    return lf_days_from_civil(y, (int)m, (int)d);
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    int64_t yy;
    int mm, dd;
    lf_civil_from_days(z, &yy, &mm, &dd);
    *y = (int)yy;
    *m = (unsigned)mm;
    *d = (unsigned)dd;
}

/* "YYYY-MM-DD" (10 bytes, no terminator). */
static char *put_date(char *p, int64_t day)
{
    int y;
    unsigned m, d;
    civil_from_days(day, &y, &m, &d);
    p = put_2(p, (unsigned)(y / 100));
    p = put_2(p, (unsigned)(y % 100));
    *p++ = '-';
    p = put_2(p, m);
    *p++ = '-';
    return put_2(p, d);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ------------------------------------------------------------------------------------------ */
/* Compiled templates. */

typedef struct sg_str {
    const char *s;
    uint32_t len;
} sg_str;

typedef struct sg_seg {
    const char *lit;     /* literal text before the placeholder */
    uint32_t litlen;
    char code;           /* placeholder code, 0 when the segment is literal only */
    uint32_t nchoices;   /* for {=a|b|c} */
    sg_str *choices;
    uint32_t *cum;       /* cumulative choice weights: the first choices are the common ones */
} sg_seg;

typedef struct sg_tpl {
    const sg_tpl_def *def;
    sg_seg *segs;
    int nsegs;
    char *key;       /* the text with <*> for every parameter: the ground truth's name */
    char *key_json;
    uint32_t complen;
} sg_tpl;

typedef struct sg_product {
    const sg_product_def *def;
    sg_tpl *tpls; /* startup, body, shutdown, crash */
    int ntpls;
    int body0, shutdown0, crash0;
    /* Cumulative body weights per version and debug switch (0 where a template is off). */
    uint64_t *cum[SG_MAX_VERSIONS][2];
} sg_product;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(1);
    }
    return p;
}

static void die(const char *what)
{
    fprintf(stderr, PROG ": %s\n", what);
    exit(1);
}

static char *json_escape_dup(const char *s)
{
    size_t n = strlen(s);
    char *out = xcalloc(n * 6 + 1, 1);
    char *e = put_json(out, s, n);
    *e = '\0';
    return out;
}

static int is_known_code(char c)
{
    return c && strchr("dDsEnNbkyfFpixuharjwvBoCRlzmUSPWLTg", c) != NULL;
}

/* Splits a template's text into literal/placeholder segments and builds its ground-truth key. */
static void compile_tpl(sg_tpl *t, const sg_tpl_def *def, const char *product_name)
{
    const char *text = def->text;
    size_t n = strlen(text);
    if (n > 600)
        die("template too long (programming error)");
    t->def = def;
    t->segs = xcalloc(n + 4, sizeof(sg_seg));
    t->complen = (uint32_t)strlen(def->component);
    lf_buf key = LF_BUF_INIT(4096);
    const char *lit = text;
    int nparams = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] != '{')
            continue;
        const char *close = strchr(text + i, '}');
        if (!close)
            die("unterminated placeholder in template (programming error)");
        char code = text[i + 1];
        sg_seg *s = &t->segs[t->nsegs++];
        s->lit = lit;
        s->litlen = (uint32_t)(text + i - lit);
        if (lf_buf_append(&key, lit, s->litlen))
            die("template key too long");
        if (code == 'A') {
            /* The product name is literal text, not a parameter. */
            sg_seg *name = &t->segs[t->nsegs++];
            name->lit = product_name;
            name->litlen = (uint32_t)strlen(product_name);
            if (lf_buf_append(&key, product_name, name->litlen))
                die("template key too long");
        } else if (code == '=') {
            s->code = '=';
            const char *c = text + i + 2;
            uint32_t count = 1;
            for (const char *q = c; q < close; q++)
                count += *q == '|';
            s->choices = xcalloc(count, sizeof(sg_str));
            s->cum = xcalloc(count, sizeof(uint32_t));
            uint32_t total = 0;
            for (uint32_t k = 0; k < count; k++) {
                const char *end = memchr(c, '|', (size_t)(close - c));
                if (!end)
                    end = close;
                s->choices[k].s = c;
                s->choices[k].len = (uint32_t)(end - c);
                total += 1200 / (k + 1) + 30; /* Zipf-like, with a floor for the tail */
                s->cum[k] = total;
                c = end + 1;
            }
            s->nchoices = count;
            nparams++;
            if (lf_buf_append_str(&key, "<*>"))
                die("template key too long");
        } else {
            if (!is_known_code(code) || close != text + i + 2)
                die("unknown placeholder in template (programming error)");
            s->code = code;
            nparams++;
            if (lf_buf_append_str(&key, "<*>"))
                die("template key too long");
        }
        lit = close + 1;
        i = (size_t)(close - text);
    }
    sg_seg *last = &t->segs[t->nsegs++];
    last->lit = lit;
    last->litlen = (uint32_t)(text + n - lit);
    if (lf_buf_append(&key, lit, last->litlen))
        die("template key too long");
    if (nparams > 12)
        die("too many parameters in template (programming error)");
    t->key = lf_buf_steal(&key, NULL);
    if (!t->key)
        t->key = xcalloc(1, 1);
    t->key_json = json_escape_dup(t->key);
}

static void compile_product(sg_product *p, const sg_product_def *def)
{
    p->def = def;
    p->ntpls = def->nstartup + def->nbody + def->nshutdown + def->ncrash;
    p->tpls = xcalloc((size_t)p->ntpls, sizeof(sg_tpl));
    p->body0 = def->nstartup;
    p->shutdown0 = p->body0 + def->nbody;
    p->crash0 = p->shutdown0 + def->nshutdown;
    int k = 0;
    for (int i = 0; i < def->nstartup; i++)
        compile_tpl(&p->tpls[k++], &def->startup[i], def->name);
    for (int i = 0; i < def->nbody; i++)
        compile_tpl(&p->tpls[k++], &def->body[i], def->name);
    for (int i = 0; i < def->nshutdown; i++)
        compile_tpl(&p->tpls[k++], &def->shutdown[i], def->name);
    for (int i = 0; i < def->ncrash; i++)
        compile_tpl(&p->tpls[k++], &def->crash[i], def->name);
    /* Ground-truth keys must name one template each. */
    for (int i = 0; i < p->ntpls; i++)
        for (int j = i + 1; j < p->ntpls; j++)
            if (strcmp(p->tpls[i].key, p->tpls[j].key) == 0) {
                fprintf(stderr, PROG ": duplicate template \"%s\" in %s\n", p->tpls[i].key, def->name);
                exit(1);
            }
    for (int v = 0; v < def->nversions; v++)
        for (int dbg = 0; dbg < 2; dbg++) {
            uint64_t *cum = xcalloc((size_t)def->nbody, sizeof(uint64_t));
            uint64_t total = 0;
            for (int i = 0; i < def->nbody; i++) {
                const sg_tpl_def *t = &def->body[i];
                int on = v >= t->vmin && v < t->vmax && (t->level != SG_DEBUG || dbg);
                total += on ? t->weight : 0;
                cum[i] = total;
            }
            p->cum[v][dbg] = cum;
        }
}

/* ------------------------------------------------------------------------------------------ */
/* Sampled distributions: a sorted table per numeric parameter kind, drawn by index, so the hot
 * path needs no libm. Built from a fixed stream, so they are part of the deterministic output. */

enum { NT_MS, NT_MS_LONG, NT_SEC, NT_COUNT, NT_BIG, NT_BYTES, NT_KIB, NT_KINDS };
static const double nt_shape[NT_KINDS][2] = {
    {45, 1.1}, {1500, 1.1}, {40, 1.3}, {4, 1.0}, {4000, 1.7}, {120000, 1.8}, {20000, 1.2},
};
static const uint64_t nt_max[NT_KINDS] = {
    600000, 3600000, 86400, 5000, 99999999, 2000000000, 4000000,
};

static uint64_t g_num[NT_KINDS][SG_TABLE];
static double g_exp[SG_TABLE]; /* quantiles of the unit exponential */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void build_tables(uint64_t seed)
{
    sg_rng r;
    sg_rng_seed(&r, seed, 2);
    for (int k = 0; k < NT_KINDS; k++) {
        for (int i = 0; i < SG_TABLE; i++) {
            double v = sg_lognormal(&r, nt_shape[k][0], nt_shape[k][1]);
            uint64_t u = v < 1.0 ? 1 : (uint64_t)v;
            if (k == NT_MS && sg_chance(&r, 0.05))
                u = 0; /* some things really take under a millisecond */
            g_num[k][i] = u > nt_max[k] ? nt_max[k] : u;
        }
        qsort(g_num[k], SG_TABLE, sizeof(uint64_t), cmp_u64);
    }
    for (int i = 0; i < SG_TABLE; i++)
        g_exp[i] = -log1p(-((double)i + 0.5) / SG_TABLE);
}

static uint64_t draw_num(sg_rng *r, int kind)
{
    uint64_t x = sg_next(r);
    uint64_t v = g_num[kind][x & (SG_TABLE - 1)];
    /* Jitter so values do not repeat the table's entries exactly. */
    uint64_t j = v / 16 + 1;
    v += ((x >> 32) * j) >> 32; /* below j without a division */
    return v > nt_max[kind] ? nt_max[kind] : v;
}

/* ------------------------------------------------------------------------------------------ */
/* The world: sites, hosts, users. */

enum { OS_WIN, OS_MAC, OS_LINUX };

typedef struct sg_site {
    char name[24];
    int tz;          /* index into sg_site_tz */
    int server0, nservers;
} sg_site;

typedef struct sg_host {
    char name[40];
    const char *os;
    int oskind;
    int cpus, ram_mib;
    uint64_t machine;
    double lag_days; /* how long after a release this host upgrades */
} sg_host;

typedef struct sg_user {
    char id[16];
    int site;
    int locale;
    unsigned products; /* bit per product */
    int host0, nhosts;
    double ret_p;      /* chance of a session on any later weekday */
    int first_day, last_day;
    char licence[24];
    int lictype;
    int64_t expiry_day;
} sg_user;

typedef struct sg_plan {
    int64_t start_us;
    uint32_t k;
    int user, product, host, version, format;
    int crashed, debug;
    uint32_t pid;
    uint64_t target;
    int64_t dur_us;
} sg_plan;

typedef struct sg_opts {
    const char *out_dir;
    uint64_t seed;
    int seed_set;
    int sites, users, days;
    int64_t start_day;
    uint32_t sessions;
    uint64_t max_size;
    unsigned formats; /* bit per format */
    const char *truth;
    int flat;
    const char *one_file;
    uint64_t one_size;
    const char *product;
    int list_templates;
} sg_opts;

typedef struct sg_world {
    const sg_opts *o;
    sg_product products[SG_NPRODUCTS];
    sg_site *sites;
    sg_host *hosts;
    int nhosts;
    sg_user *users;
} sg_world;

static void build_world(sg_world *w, const sg_opts *o)
{
    w->o = o;
    for (int p = 0; p < SG_NPRODUCTS; p++)
        compile_product(&w->products[p], &sg_products[p]);
    sg_rng r;
    sg_rng_seed(&r, o->seed, 1);
    int nsite_names = SG_COUNT(sg_site_names);
    w->sites = xcalloc((size_t)o->sites, sizeof(sg_site));
    w->users = xcalloc((size_t)o->users, sizeof(sg_user));
    w->hosts = xcalloc((size_t)o->sites * 3 + (size_t)o->users * 3, sizeof(sg_host));
    for (int s = 0; s < o->sites; s++) {
        sg_site *site = &w->sites[s];
        if (s < nsite_names)
            snprintf(site->name, sizeof site->name, "%s", sg_site_names[s]);
        else
            snprintf(site->name, sizeof site->name, "%s%d", sg_site_names[s % nsite_names],
                     s / nsite_names + 1);
        site->tz = (int)sg_below(&r, SG_COUNT(sg_site_tz));
        site->server0 = w->nhosts;
        site->nservers = (int)sg_range(&r, 1, 3);
        for (int i = 0; i < site->nservers; i++) {
            sg_host *h = &w->hosts[w->nhosts++];
            snprintf(h->name, sizeof h->name, "srv-%s-%02d", site->name, i + 1);
            int os = (int)sg_below(&r, SG_COUNT(sg_os_server));
            h->os = sg_os_server[os];
            h->oskind = strncmp(h->os, "Windows", 7) == 0 ? OS_WIN : OS_LINUX;
            h->cpus = 8 << sg_below(&r, 3);
            h->ram_mib = 16384 << sg_below(&r, 3);
            h->machine = sg_next(&r);
            h->lag_days = sg_chance(&r, 0.5) ? sg_unit(&r) * 3 : sg_exp(&r, 0.15 * o->days);
        }
    }
    for (int u = 0; u < o->users; u++) {
        sg_user *us = &w->users[u];
        snprintf(us->id, sizeof us->id, "u%04d", u + 1);
        /* Sites differ in size: earlier sites get more users. */
        us->site = (int)(sg_unit(&r) * sg_unit(&r) * o->sites);
        if (u < o->sites)
            us->site = u; /* every site has at least one user */
        sg_site *site = &w->sites[us->site];
        us->locale = sg_chance(&r, 0.85) ? site->tz : (int)sg_below(&r, SG_COUNT(sg_site_locale));
        for (int p = 0; p < SG_NPRODUCTS; p++)
            if (sg_chance(&r, sg_products[p].share))
                us->products |= 1u << p;
        if (!us->products)
            us->products = sg_chance(&r, 0.7) ? 1u : 1u << 2;
        us->host0 = w->nhosts;
        us->nhosts = sg_chance(&r, 0.6) ? 1 : (int)sg_range(&r, 2, 3);
        for (int i = 0; i < us->nhosts; i++) {
            sg_host *h = &w->hosts[w->nhosts++];
            const char *kind = i == 0 ? "ws" : "lt";
            snprintf(h->name, sizeof h->name, "%s-%s-%04u", kind, site->name,
                     (unsigned)sg_range(&r, 1, 9999));
            int os = (int)(sg_unit(&r) * sg_unit(&r) * SG_COUNT(sg_os_desktop));
            h->os = sg_os_desktop[os];
            h->oskind = strncmp(h->os, "Windows", 7) == 0 ? OS_WIN
                        : strncmp(h->os, "macOS", 5) == 0 ? OS_MAC : OS_LINUX;
            h->cpus = 4 << sg_below(&r, 3);
            h->ram_mib = 8192 << sg_below(&r, 3);
            h->machine = sg_next(&r);
            double x = sg_unit(&r);
            h->lag_days = x < 0.3 ? sg_unit(&r) * 2 : x < 0.8 ? sg_exp(&r, 0.12 * o->days)
                                                              : 0.6 * o->days + sg_exp(&r, 0.3 * o->days);
        }
        us->ret_p = 0.08 + 0.72 * pow(sg_unit(&r), 1.3);
        us->first_day = sg_chance(&r, 0.5) ? (int)sg_below(&r, o->days < 7 ? (uint64_t)o->days : 7)
                                           : (int)sg_below(&r, (uint64_t)o->days);
        double keep = 0.55 + 0.45 * sg_unit(&r); /* chance of staying another week */
        int weeks = 0;
        while (weeks < 10000 && sg_chance(&r, keep))
            weeks++;
        int64_t last = (int64_t)us->first_day + 7 * (int64_t)weeks + (int64_t)sg_below(&r, 7);
        us->last_day = last >= o->days ? o->days - 1 : (int)last;
        char *lp = us->licence;
        lp = put_str(lp, "LIC-", 4);
        lp = put_hex(lp, sg_next(&r) & 0xffffffff, 8);
        *lp = '\0';
        for (char *c = us->licence + 4; *c; c++)
            if (*c >= 'a' && *c <= 'f')
                *c = (char)(*c - 'a' + 'A');
        us->lictype = (int)(sg_unit(&r) * sg_unit(&r) * SG_COUNT(sg_licence_types));
        us->expiry_day = o->start_day + sg_range(&r, 60, 700);
    }
}

static int version_for(const sg_world *w, int product, const sg_host *h, int day)
{
    const sg_product_def *pd = &sg_products[product];
    int v = 0;
    for (int i = 1; i < pd->nversions; i++)
        if (pd->release_frac[i] * w->o->days + h->lag_days <= day)
            v = i;
    return v;
}

static int format_for(const sg_opts *o, int product)
{
    int f = sg_products[product].format;
    if (o->formats & (1u << f))
        return f;
    return (o->formats & (1u << SG_FMT_CLASSIC)) ? SG_FMT_CLASSIC : SG_FMT_JSONL;
}

/* Plans session k on (user, day): product, host, version, start, duration, size, crash. */
static void plan_session(const sg_world *w, sg_plan *pl, uint32_t k, int user, int day, int product)
{
    const sg_opts *o = w->o;
    const sg_user *u = &w->users[user];
    sg_rng r;
    sg_rng_seed(&r, o->seed, 0x100000000ULL + k);
    memset(pl, 0, sizeof *pl);
    pl->k = k;
    pl->user = user;
    if (product < 0) {
        static const unsigned weight[SG_NPRODUCTS] = {3, 1, 2};
        unsigned total = 0;
        for (int p = 0; p < SG_NPRODUCTS; p++)
            total += (u->products >> p & 1) ? weight[p] : 0;
        unsigned x = (unsigned)sg_below(&r, total);
        for (int p = 0; p < SG_NPRODUCTS; p++) {
            unsigned wt = (u->products >> p & 1) ? weight[p] : 0;
            if (x < wt) {
                product = p;
                break;
            }
            x -= wt;
        }
    }
    pl->product = product;
    const sg_product_def *pd = &sg_products[product];
    if (pd->kind == SG_KIND_SERVER) {
        const sg_site *site = &w->sites[u->site];
        pl->host = site->server0 + (int)sg_below(&r, (uint64_t)site->nservers);
    } else {
        pl->host = u->host0 + (sg_chance(&r, 0.7) ? 0 : (int)sg_below(&r, (uint64_t)u->nhosts));
    }
    pl->version = version_for(w, product, &w->hosts[pl->host], day);
    pl->format = format_for(o, product);

    /* Local start time: office hours for people, any time for servers and scheduled runs. */
    double hour;
    if (pd->kind == SG_KIND_SERVER || (pd->kind == SG_KIND_CLI && sg_chance(&r, 0.2)))
        hour = sg_unit(&r) * 24;
    else {
        hour = sg_chance(&r, 0.55) ? 9.8 + 1.5 * sg_normal(&r) : 14.5 + 1.8 * sg_normal(&r);
        if (hour < 6)
            hour = 6 + sg_unit(&r);
        if (hour > 21)
            hour = 20 + sg_unit(&r);
    }
    int64_t local_us = (int64_t)(hour * 3600e6);
    int64_t tz_us = (int64_t)sg_site_tz_offset_min[w->sites[u->site].tz] * 60 * 1000000;
    pl->start_us = (o->start_day + day) * 86400LL * 1000000 + local_us - tz_us +
                   (int64_t)sg_below(&r, 1000);

    double size;
    if (sg_chance(&r, pd->tail_p))
        size = sg_pareto(&r, pd->tail_xm, pd->tail_alpha);
    else
        size = sg_lognormal(&r, pd->size_median, pd->size_sigma);
    if (size < 2048)
        size = 2048 + sg_unit(&r) * 1024;
    pl->target = size >= (double)o->max_size ? o->max_size : (uint64_t)size;

    double dur = sg_lognormal(&r, pd->dur_median_s, pd->dur_sigma);
    double rel = (double)pl->target / pd->size_median;
    if (rel > 1)
        dur *= pow(rel, 0.3); /* bigger logs come from longer runs */
    double cap = pd->kind == SG_KIND_DESKTOP ? 14 * 3600.0 : pd->kind == SG_KIND_SERVER ? 3 * 86400.0
                                                                                       : 6 * 3600.0;
    if (dur > cap)
        dur = cap * (0.8 + 0.2 * sg_unit(&r));
    if (dur < 3)
        dur = 3 + sg_unit(&r) * 5;
    pl->dur_us = (int64_t)(dur * 1e6);
    pl->crashed = sg_chance(&r, pd->crash_p[pl->version]);
    pl->debug = sg_chance(&r, pd->kind == SG_KIND_CLI ? 0.3 : 0.12);
    pl->pid = (uint32_t)sg_range(&r, 1200, 65000);
}

static int cmp_plan(const void *a, const void *b)
{
    const sg_plan *x = a, *y = b;
    if (x->start_us != y->start_us)
        return x->start_us < y->start_us ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

/* ------------------------------------------------------------------------------------------ */
/* Output: one large buffer, write(2) when full. */

typedef struct sg_out {
    int fd;
    char *buf;
    size_t len, cap;
    uint64_t total; /* bytes of this file so far */
    int err;
} sg_out;

static void out_flush(sg_out *o)
{
    size_t off = 0;
    while (off < o->len && !o->err) {
        ssize_t n = write(o->fd, o->buf + off, o->len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            o->err = errno;
            break;
        }
        off += (size_t)n;
    }
    o->len = 0;
}

static char *out_room(sg_out *o)
{
    if (o->cap - o->len < SG_LINE_ROOM)
        out_flush(o);
    return o->buf + o->len;
}

static void out_commit(sg_out *o, char *end)
{
    size_t n = (size_t)(end - (o->buf + o->len));
    o->len += n;
    o->total += n;
}

/* ------------------------------------------------------------------------------------------ */
/* A session being written. */

typedef struct sg_sess {
    const sg_world *w;
    const sg_plan *pl;
    const sg_product *prod;
    const sg_host *host;
    const sg_user *user;
    sg_rng r;
    int64_t now_us;
    int64_t first_us, last_us;
    int64_t cur_sec;
    char clock[19]; /* "YYYY-MM-DD HH:MM:SS" of cur_sec */
    /* context strings */
    char pid[12], cpus[8], ram[12], machine[40], expiry[12], workdir[160];
    const char *const *dirs;
    int ndirs;
    char sep;
    char docs[SG_MAX_DOCS][96];
    int ndocs;
    /* counters for the ground truth */
    uint64_t lines, events, cont;
    uint64_t levels[SG_NLEVELS];
    uint64_t *tcount;
    /* per event: typed fields found while rendering */
    int64_t f_dur, f_size;
    const char *f_file;
    uint32_t f_filelen;
    char msg[SG_MSG_MAX];
    char stack[SG_STACK_MAX];
} sg_sess;

static char *render_file_name(sg_sess *s, char *p)
{
    const char *stem = sg_stems[sg_below(&s->r, SG_COUNT(sg_stems))];
    p = put_str(p, stem, strlen(stem));
    if (sg_chance(&s->r, 0.4)) {
        *p++ = '_';
        p = put_u64(p, sg_below(&s->r, 400));
    }
    const sg_product_def *pd = s->prod->def;
    const char *ext = pd->exts[(int)(sg_unit(&s->r) * sg_unit(&s->r) * pd->nexts)];
    return put_str(p, ext, strlen(ext));
}

/* A directory with %U replaced by the user id. */
static char *render_dir(sg_sess *s, char *p, const char *dir)
{
    for (const char *c = dir; *c; c++) {
        if (c[0] == '%' && c[1] == 'U') {
            p = put_str(p, s->user->id, strlen(s->user->id));
            c++;
        } else {
            *p++ = *c;
        }
    }
    return p;
}

static char *render_path(sg_sess *s, char *p)
{
    p = render_dir(s, p, s->dirs[sg_below(&s->r, (uint64_t)s->ndirs)]);
    *p++ = s->sep;
    if (s->prod->def->kind == SG_KIND_CLI && sg_chance(&s->r, 0.5)) {
        const char *w = sg_words[sg_below(&s->r, SG_COUNT(sg_words))];
        p = put_str(p, w, strlen(w));
        *p++ = s->sep;
    }
    return render_file_name(s, p);
}

static char *render_param(sg_sess *s, const sg_seg *g, char *p)
{
    sg_rng *r = &s->r;
    char *start = p;
    uint64_t v;
    switch (g->code) {
    case '=': {
        uint32_t x = (uint32_t)sg_below(r, g->cum[g->nchoices - 1]);
        uint32_t i = 0;
        while (x >= g->cum[i])
            i++;
        return put_str(p, g->choices[i].s, g->choices[i].len);
    }
    case 'd':
    case 'D':
        v = draw_num(r, g->code == 'd' ? NT_MS : NT_MS_LONG);
        if (s->f_dur < 0)
            s->f_dur = (int64_t)v;
        return put_u64(p, v);
    case 's': return put_u64(p, draw_num(r, NT_SEC));
    case 'E': return put_u64(p, (uint64_t)((s->now_us - s->first_us) / 1000000));
    case 'n': return put_u64(p, draw_num(r, NT_COUNT));
    case 'N': return put_u64(p, draw_num(r, NT_BIG));
    case 'b':
        v = draw_num(r, NT_BYTES);
        if (s->f_size < 0)
            s->f_size = (int64_t)v;
        return put_u64(p, v);
    case 'k': return put_u64(p, draw_num(r, NT_KIB));
    case 'y': return put_u64(p, sg_below(r, 101));
    case 'f':
    case 'F':
    case 'p':
        if (g->code == 'f')
            p = render_file_name(s, p);
        else if (g->code == 'F') {
            const char *d = s->docs[(int)(sg_unit(r) * sg_unit(r) * s->ndocs)];
            p = put_str(p, d, strlen(d));
        } else
            p = render_path(s, p);
        if (!s->f_file) {
            s->f_file = start;
            s->f_filelen = (uint32_t)(p - start);
        }
        return p;
    case 'i': return put_hex(p, sg_next(r), 8);
    case 'x': return put_hex(p, sg_next(r), 16);
    case 'u': {
        uint64_t a = sg_next(r), b = sg_next(r);
        p = put_hex(p, a >> 32, 8);
        *p++ = '-';
        p = put_hex(p, a >> 16, 4);
        *p++ = '-';
        p = put_hex(p, 0x4000 | (a & 0x0fff), 4);
        *p++ = '-';
        p = put_hex(p, 0x8000 | (b >> 48 & 0x3fff), 4);
        *p++ = '-';
        return put_hex(p, b, 12);
    }
    case 'h': {
        const char *h = sg_remote_hosts[sg_below(r, SG_COUNT(sg_remote_hosts))];
        return put_str(p, h, strlen(h));
    }
    case 'a':
        v = sg_next(r);
        if (v & 1) {
            p = put_str(p, "10.", 3);
            p = put_u64(p, v >> 8 & 0xff);
        } else {
            p = put_str(p, "192.168", 7);
        }
        *p++ = '.';
        p = put_u64(p, v >> 16 & 0xff);
        *p++ = '.';
        return put_u64(p, 1 + (v >> 24) % 254);
    case 'r': {
        static const unsigned ports[] = {443, 8443, 3128, 8080};
        return put_u64(p, ports[sg_below(r, 4)]);
    }
    case 'j':
        p = put_str(p, "job-", 4);
        return put_u64(p, 100000 + sg_below(r, 900000));
    case 'w': {
        const char *w = sg_words[(int)(sg_unit(r) * sg_unit(r) * SG_COUNT(sg_words))];
        return put_str(p, w, strlen(w));
    }
    case 'v': {
        const char *x = s->prod->def->versions[s->pl->version];
        return put_str(p, x, strlen(x));
    }
    case 'B': {
        const char *x = s->prod->def->builds[s->pl->version];
        return put_str(p, x, strlen(x));
    }
    case 'o': return put_str(p, s->host->os, strlen(s->host->os));
    case 'C': return put_str(p, s->cpus, strlen(s->cpus));
    case 'R': return put_str(p, s->ram, strlen(s->ram));
    case 'l': {
        const char *x = sg_site_locale[s->user->locale];
        return put_str(p, x, strlen(x));
    }
    case 'z': {
        const char *x = sg_site_tz[s->w->sites[s->user->site].tz];
        return put_str(p, x, strlen(x));
    }
    case 'm': return put_str(p, s->machine, strlen(s->machine));
    case 'U': return put_str(p, s->user->id, strlen(s->user->id));
    case 'S': {
        const char *x = s->w->sites[s->user->site].name;
        return put_str(p, x, strlen(x));
    }
    case 'P': return put_str(p, s->pid, strlen(s->pid));
    case 'W': return put_str(p, s->workdir, strlen(s->workdir));
    case 'L': return put_str(p, s->user->licence, strlen(s->user->licence));
    case 'T': {
        const char *x = sg_licence_types[s->user->lictype];
        return put_str(p, x, strlen(x));
    }
    case 'g': return put_str(p, s->expiry, 10);
    default: return p;
    }
}

/* Renders a template's message into s->msg; returns its length. */
static size_t render_msg(sg_sess *s, const sg_tpl *t)
{
    char *p = s->msg;
    s->f_dur = s->f_size = -1;
    s->f_file = NULL;
    for (int i = 0; i < t->nsegs; i++) {
        const sg_seg *g = &t->segs[i];
        p = put_str(p, g->lit, g->litlen);
        if (g->code)
            p = render_param(s, g, p);
    }
    return (size_t)(p - s->msg);
}

static const char *const cause_java[] = {
    "java.io.IOException: Broken pipe", "java.net.SocketTimeoutException: Read timed out",
    "java.nio.file.AccessDeniedException", "java.lang.IllegalArgumentException: negative size",
    "java.sql.SQLTransientConnectionException: connection is not available",
};

/* Renders a stack trace (lines separated by '\n', no trailing newline) into s->stack. The same
 * error has the same few stack shapes (its code paths), and line numbers move between versions, as
 * they would in real code: so traces can be grouped, and a trace is not noise. */
static size_t render_stack(sg_sess *s, int tidx, int *nlines)
{
    const sg_product_def *pd = s->prod->def;
    uint64_t path = sg_below(&s->r, 3);
    sg_rng shape;
    sg_rng_seed(&shape, sg_mix((uint64_t)s->pl->product << 32 | (uint64_t)tidx, path),
                (uint64_t)s->pl->version);
    sg_rng *r = &shape;
    char *p = s->stack;
    int depth = 4 + (int)sg_below(r, 14);
    int n = 0;
    if (pd->stack_style == SG_STACK_NATIVE) {
        /* The outermost frame is main() or a thread's entry, the last two in the list. */
        const char *root = pd->frames[pd->nframes - 1 - (int)sg_below(r, 2)];
        for (int i = 0; i < depth; i++) {
            const char *f = i == depth - 1 ? root : pd->frames[sg_below(r, (uint64_t)pd->nframes - 2)];
            if (i)
                *p++ = '\n';
            p = put_str(p, "\t#", 2);
            p = put_u64(p, (uint64_t)i);
            p = put_str(p, i < 10 ? "  0x00007f" : " 0x00007f", i < 10 ? 10 : 9);
            /* ASLR: a per-process base plus the frame's offset. */
            uint64_t base = sg_mix(s->pl->pid, s->pl->k) & 0xffff000000ULL;
            p = put_hex(p, base + (sg_next(r) & 0xffffff), 10);
            p = put_str(p, " in ", 4);
            p = put_str(p, f, strlen(f));
            p = put_u64(p, 10 + sg_below(r, 900));
            n++;
        }
        *nlines = n;
        return (size_t)(p - s->stack);
    }
    /* Java style; Atlas Studio before 4.2.1 indents frames with spaces, later with a tab. */
    const char *at = "\tat ";
    size_t atlen = 4;
    if (s->pl->product == 0 && s->pl->version < 2) {
        at = "    at ";
        atlen = 7;
    }
    int cause = sg_chance(r, 0.3);
    for (int part = 0; part < 1 + cause; part++) {
        if (part) {
            const char *c = cause_java[sg_below(r, SG_COUNT(cause_java))];
            *p++ = '\n';
            p = put_str(p, "Caused by: ", 11);
            p = put_str(p, c, strlen(c));
            n++;
            depth = 2 + (int)sg_below(r, 4);
        }
        for (int i = 0; i < depth; i++) {
            /* The outermost frame of the first trace is the thread's entry, the last in the list. */
            const char *f = !part && i == depth - 1 ? pd->frames[pd->nframes - 1]
                                                    : pd->frames[sg_below(r, (uint64_t)pd->nframes - 1)];
            size_t fl = strlen(f);
            if (n)
                *p++ = '\n';
            p = put_str(p, at, atlen);
            p = put_str(p, f, fl);
            if (f[fl - 1] == ':')
                p = put_u64(p, 20 + sg_below(r, 700));
            *p++ = ')';
            n++;
        }
        if (part) {
            p = put_str(p, "\n\t... ", 6);
            p = put_u64(p, 3 + sg_below(r, 30));
            p = put_str(p, " more", 5);
            n++;
        }
    }
    *nlines = n;
    return (size_t)(p - s->stack);
}

static const char level_classic[SG_NLEVELS][6] = {"DEBUG", "INFO ", "WARN ", "ERROR", "FATAL"};
static const char *const level_name[SG_NLEVELS] = {"DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
static const char *const level_json[SG_NLEVELS] = {"debug", "info", "warn", "error", "fatal"};
static const size_t level_json_len[SG_NLEVELS] = {5, 4, 4, 5, 5};

/* "YYYY-MM-DD?HH:MM:SS.mmm" for the current time (? is tsep). The text up to the seconds is
 * cached: consecutive lines mostly share their second. */
static char *put_clock(sg_sess *s, char *p, char tsep)
{
    int64_t ms = s->now_us / 1000;
    int64_t sec = floor_div(ms, 1000);
    if (sec != s->cur_sec) {
        s->cur_sec = sec;
        int64_t day = floor_div(sec, 86400);
        int64_t in = sec - day * 86400;
        char *c = put_date(s->clock, day);
        *c++ = ' ';
        c = put_2(c, (unsigned)(in / 3600));
        *c++ = ':';
        c = put_2(c, (unsigned)(in / 60 % 60));
        *c++ = ':';
        put_2(c, (unsigned)(in % 60));
    }
    p = put_str(p, s->clock, 19);
    p[-9] = tsep;
    *p++ = '.';
    unsigned frac = (unsigned)(ms - sec * 1000);
    *p++ = (char)('0' + frac / 100);
    return put_2(p, frac % 100);
}

static void emit(sg_sess *s, sg_out *o, int tidx)
{
    const sg_tpl *t = &s->prod->tpls[tidx];
    const sg_tpl_def *d = t->def;
    size_t mlen = render_msg(s, t);
    size_t slen = 0;
    int snl = 0;
    if (d->flags & SG_F_STACK)
        slen = render_stack(s, tidx, &snl);
    char *p = out_room(o);
    if (s->pl->format == SG_FMT_CLASSIC) {
        p = put_clock(s, p, ' ');
        *p++ = ' ';
        p = put_str(p, level_classic[d->level], 5);
        p = put_str(p, " [", 2);
        p = put_str(p, d->component, t->complen);
        p = put_str(p, "] ", 2);
        p = put_str(p, s->msg, mlen);
        *p++ = '\n';
        if (slen) {
            p = put_str(p, s->stack, slen);
            *p++ = '\n';
            s->cont += (uint64_t)snl;
            s->lines += (uint64_t)snl;
        }
    } else {
        /* Start-up, shutdown and crash messages come from the main thread. */
        const char *th = "main";
        if (tidx >= s->prod->body0 && tidx < s->prod->shutdown0)
            th = s->prod->def->threads[sg_below(&s->r, (uint64_t)s->prod->def->nthreads)];
        p = put_str(p, "{\"ts\":\"", 7);
        p = put_clock(s, p, 'T');
        p = put_str(p, "Z\",\"level\":\"", 12);
        p = put_str(p, level_json[d->level], level_json_len[d->level]);
        p = put_str(p, "\",\"component\":\"", 15);
        p = put_str(p, d->component, t->complen);
        p = put_str(p, "\",\"thread\":\"", 12);
        p = put_str(p, th, strlen(th));
        p = put_str(p, "\",\"msg\":\"", 9);
        p = put_json(p, s->msg, mlen);
        *p++ = '"';
        if (s->f_dur >= 0) {
            p = put_str(p, ",\"duration_ms\":", 15);
            p = put_u64(p, (uint64_t)s->f_dur);
        }
        if (s->f_size >= 0) {
            p = put_str(p, ",\"file_size\":", 13);
            p = put_u64(p, (uint64_t)s->f_size);
        }
        if (s->f_file) {
            p = put_str(p, ",\"file\":\"", 9);
            p = put_json(p, s->f_file, s->f_filelen);
            *p++ = '"';
        }
        if (slen) {
            p = put_str(p, ",\"stack\":\"", 10);
            p = put_json(p, s->stack, slen);
            *p++ = '"';
        }
        p = put_str(p, "}\n", 2);
    }
    out_commit(o, p);
    s->last_us = s->now_us;
    s->lines++;
    s->events++;
    s->levels[d->level]++;
    s->tcount[tidx]++;
}

static void advance(sg_sess *s, double mean_us)
{
    s->now_us += (int64_t)(mean_us * g_exp[sg_next(&s->r) & (SG_TABLE - 1)]);
}

static int pick_body(sg_sess *s)
{
    const uint64_t *cum = s->prod->cum[s->pl->version][s->pl->debug];
    int n = s->prod->def->nbody;
    uint64_t x = sg_below(&s->r, cum[n - 1]);
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (x < cum[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return s->prod->body0 + lo;
}

/* Writes one whole session to o (which the caller opened). */
static void write_session(sg_sess *s, sg_out *o)
{
    const sg_product *pr = s->prod;
    const sg_product_def *pd = pr->def;
    const sg_plan *pl = s->pl;
    sg_rng *r = &s->r;
    s->now_us = s->first_us = s->last_us = pl->start_us;
    s->cur_sec = INT64_MIN;

    /* Context that stays fixed for the session. */
    snprintf(s->pid, sizeof s->pid, "%u", pl->pid);
    snprintf(s->cpus, sizeof s->cpus, "%d", s->host->cpus);
    snprintf(s->ram, sizeof s->ram, "%d", s->host->ram_mib);
    char *mp = put_hex(s->machine, s->host->machine, 16);
    mp = put_hex(mp, sg_mix(s->host->machine, 7), 16);
    *mp = '\0';
    put_date(s->expiry, s->user->expiry_day);
    s->expiry[10] = '\0';
    int win = s->host->oskind == OS_WIN;
    s->sep = win ? '\\' : '/';
    if (pd->kind == SG_KIND_SERVER) {
        s->dirs = win ? sg_dirs_server_win : sg_dirs_server;
        s->ndirs = win ? SG_COUNT(sg_dirs_server_win) : SG_COUNT(sg_dirs_server);
    } else if (win) {
        s->dirs = sg_dirs_win;
        s->ndirs = SG_COUNT(sg_dirs_win);
    } else if (s->host->oskind == OS_MAC) {
        s->dirs = sg_dirs_mac;
        s->ndirs = SG_COUNT(sg_dirs_mac);
    } else {
        s->dirs = sg_dirs_unix;
        s->ndirs = SG_COUNT(sg_dirs_unix);
    }
    char *wp = s->workdir;
    if (pd->kind == SG_KIND_SERVER)
        wp = put_str(wp, s->dirs[0], strlen(s->dirs[0]));
    else if (win) {
        wp = render_dir(s, wp, "C:\\Users\\%U\\AppData\\Local\\");
        wp = put_str(wp, pd->name, strlen(pd->name));
    } else if (s->host->oskind == OS_MAC) {
        wp = render_dir(s, wp, "/Users/%U/Library/Application Support/");
        wp = put_str(wp, pd->name, strlen(pd->name));
    } else {
        wp = render_dir(s, wp, "/home/%U/.local/share/");
        wp = put_str(wp, pd->slug, strlen(pd->slug));
    }
    *wp = '\0';
    s->ndocs = 3 + (int)sg_below(r, SG_MAX_DOCS - 2);
    for (int i = 0; i < s->ndocs; i++) {
        char *e = render_file_name(s, s->docs[i]);
        *e = '\0';
    }

    uint64_t base = o->total;
    for (int i = 0; i < pd->nstartup; i++) {
        const sg_tpl_def *t = &pd->startup[i];
        if (t->level == SG_DEBUG && !pl->debug)
            continue;
        if (t->weight < 100 && !sg_chance(r, t->weight / 100.0))
            continue;
        if (i)
            advance(s, 25e3);
        emit(s, o, i);
    }
    double avg_line = pl->format == SG_FMT_JSONL ? 200.0 : 105.0;
    double est_lines = (double)(pl->target > o->total - base ? pl->target - (o->total - base) : 1) / avg_line;
    double gap_us = (double)pl->dur_us / (est_lines < 1 ? 1 : est_lines);
    while (o->total - base < pl->target && !o->err) {
        advance(s, gap_us);
        emit(s, o, pick_body(s));
    }
    if (pl->crashed) {
        /* Most crashes leave a last word; some processes are simply killed. */
        if (sg_chance(r, 0.7)) {
            uint64_t total = 0;
            for (int i = 0; i < pd->ncrash; i++)
                total += pd->crash[i].weight;
            uint64_t x = sg_below(r, total);
            int i = 0;
            while (x >= pd->crash[i].weight) {
                x -= pd->crash[i].weight;
                i++;
            }
            advance(s, gap_us);
            emit(s, o, pr->crash0 + i);
        }
    } else {
        for (int i = 0; i < pd->nshutdown; i++) {
            advance(s, 150e3);
            emit(s, o, pr->shutdown0 + i);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Ground truth. */

static void iso_time(char *buf, int64_t us)
{
    int64_t ms = floor_div(us, 1000);
    int64_t day = floor_div(ms, 86400000);
    int64_t in = ms - day * 86400000;
    char *p = put_date(buf, day);
    *p++ = 'T';
    p = put_2(p, (unsigned)(in / 3600000));
    *p++ = ':';
    p = put_2(p, (unsigned)(in / 60000 % 60));
    *p++ = ':';
    p = put_2(p, (unsigned)(in / 1000 % 60));
    *p++ = '.';
    unsigned frac = (unsigned)(in % 1000);
    *p++ = (char)('0' + frac / 100);
    p = put_2(p, frac % 100);
    *p++ = 'Z';
    *p = '\0';
}

/* Appends "key":"value", (value JSON-escaped). Keeps the first error in *rc. */
static void add_json_str(lf_buf *b, int *rc, const char *key, const char *val)
{
    size_t n = strlen(val);
    char *tmp = xcalloc(n * 6 + 1, 1);
    char *e = put_json(tmp, val, n);
    *e = '\0';
    if (*rc == 0)
        *rc = lf_buf_appendf(b, "\"%s\":\"%s\",", key, tmp);
    free(tmp);
}

#define TRUTH_APPEND(call)     \
    do {                       \
        if (rc == 0)           \
            rc = (call);       \
    } while (0)

static int write_truth(FILE *tf, const sg_sess *s, const char *relpath, uint64_t bytes)
{
    const sg_plan *pl = s->pl;
    const sg_product_def *pd = s->prod->def;
    lf_buf b = LF_BUF_INIT(64u << 20);
    char t0[32], t1[32];
    int rc = 0;
    iso_time(t0, s->first_us);
    iso_time(t1, s->last_us);
    TRUTH_APPEND(lf_buf_append_char(&b, '{'));
    add_json_str(&b, &rc, "path", relpath);
    add_json_str(&b, &rc, "site", s->w->sites[s->user->site].name);
    add_json_str(&b, &rc, "product", pd->name);
    add_json_str(&b, &rc, "product_slug", pd->slug);
    add_json_str(&b, &rc, "version", pd->versions[pl->version]);
    add_json_str(&b, &rc, "build", pd->builds[pl->version]);
    add_json_str(&b, &rc, "user", s->user->id);
    add_json_str(&b, &rc, "host", s->host->name);
    add_json_str(&b, &rc, "os", s->host->os);
    add_json_str(&b, &rc, "locale", sg_site_locale[s->user->locale]);
    add_json_str(&b, &rc, "format", pl->format == SG_FMT_CLASSIC ? "classic" : "jsonl");
    add_json_str(&b, &rc, "started_at", t0);
    add_json_str(&b, &rc, "ended_at", t1);
    TRUTH_APPEND(lf_buf_appendf(&b, "\"pid\":%u,\"debug\":%s,\"crashed\":%s,", pl->pid,
                                pl->debug ? "true" : "false", pl->crashed ? "true" : "false"));
    TRUTH_APPEND(lf_buf_appendf(&b, "\"lines\":%" PRIu64 ",\"events\":%" PRIu64 ",\"continuation_lines\":%" PRIu64
                                    ",\"bytes\":%" PRIu64 ",\"levels\":{",
                                s->lines, s->events, s->cont, bytes));
    for (int l = 0; l < SG_NLEVELS; l++)
        TRUTH_APPEND(lf_buf_appendf(&b, "%s\"%s\":%" PRIu64, l ? "," : "", level_name[l], s->levels[l]));
    TRUTH_APPEND(lf_buf_append_str(&b, "},\"templates\":{"));
    int first = 1;
    for (int i = 0; i < s->prod->ntpls; i++) {
        if (!s->tcount[i])
            continue;
        TRUTH_APPEND(lf_buf_appendf(&b, "%s\"%s\":%" PRIu64, first ? "" : ",", s->prod->tpls[i].key_json,
                                    s->tcount[i]));
        first = 0;
    }
    TRUTH_APPEND(lf_buf_append_str(&b, "}}\n"));
    if (rc == 0 && fwrite(b.data, 1, b.len, tf) != b.len)
        rc = -EIO;
    lf_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Files. */

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp)
        return -ENAMETOOLONG;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -errno;
            tmp[i] = c;
        }
    }
    return 0;
}

static int write_logtypes(const char *dir)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/logtypes.conf", dir) >= sizeof path)
        return -ENAMETOOLONG;
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fputs("# Log types of the sessions written by logferry-sessiongen (parser configuration).\n"
          "# Atlas Studio and Cobalt CLI write \"classic\", Beacon Server writes \"jsonl\" (unless\n"
          "# --formats allowed only one). Stack-trace lines (a tab, \"    at \" or \"Caused by:\")\n"
          "# do not match the classic format and continue the event before them. A session whose\n"
          "# last event is not its shutdown line crashed (end_line).\n"
          "\n"
          "[logtype.classic]\n"
          "format = <Date> <Time> <Level> \\[<Component>\\] <Content>\n"
          "time_fields = Date,Time\n"
          "time_format = %Y-%m-%d %H:%M:%S.%f\n"
          "timezone = UTC\n"
          "level_field = Level\n"
          "continuation = true\n"
          "end_line = Shutdown complete after \\d+ s\n"
          "\n"
          "[logtype.jsonl]\n"
          "builtin = jsonlines\n"
          "time_fields = ts\n"
          "level_field = level\n"
          "message_key = msg\n"
          "end_line = Shutdown complete after \\d+ s\n",
          f);
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Session file name: <user>_<host>_<version>_<start>_<pid>.log, start as 20261102T091501Z. Products
 * commonly put their version in log names; the uploader's filename_regex picks it up. */
static void session_name(char *buf, size_t size, const sg_world *w, const sg_plan *pl, uint32_t pid)
{
    const sg_user *u = &w->users[pl->user];
    int64_t sec = floor_div(pl->start_us, 1000000);
    int64_t day = floor_div(sec, 86400);
    int64_t in = sec - day * 86400;
    char date[11];
    int y;
    unsigned m, d;
    civil_from_days(day, &y, &m, &d);
    snprintf(date, sizeof date, "%04d%02u%02u", y, m, d);
    const char *slug = sg_products[pl->product].slug;
    const char *site = w->sites[u->site].name;
    const char *version = sg_products[pl->product].versions[pl->version];
    if (w->o->flat)
        snprintf(buf, size, "%s_%s_%s_%s_%s_%sT%02d%02d%02dZ_%u.log", site, slug, u->id,
                 w->hosts[pl->host].name, version, date, (int)(in / 3600), (int)(in / 60 % 60),
                 (int)(in % 60), pid);
    else
        snprintf(buf, size, "%s/%s/%s_%s_%s_%sT%02d%02d%02dZ_%u.log", site, slug, u->id,
                 w->hosts[pl->host].name, version, date, (int)(in / 3600), (int)(in / 60 % 60),
                 (int)(in % 60), pid);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* Writes one session to path; fills in the session counters. Returns 0 or -errno. */
static int generate_file(const sg_world *w, const sg_plan *pl, const char *path, sg_out *o,
                         uint64_t *tcount, sg_sess *s, uint64_t *bytes)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    memset(s, 0, offsetof(sg_sess, msg));
    s->w = w;
    s->pl = pl;
    s->prod = &w->products[pl->product];
    s->host = &w->hosts[pl->host];
    s->user = &w->users[pl->user];
    sg_rng_seed(&s->r, w->o->seed, 0x200000000ULL + pl->k);
    memset(tcount, 0, (size_t)s->prod->ntpls * sizeof(uint64_t));
    s->tcount = tcount;
    o->fd = fd;
    o->len = 0;
    o->total = 0;
    o->err = 0;
    write_session(s, o);
    out_flush(o);
    int rc = o->err ? -o->err : 0;
    *bytes = o->total;
    if (rc == 0) {
        /* The file's time is the session's end, as a finished log's would be. */
        struct timespec ts[2];
        ts[0].tv_sec = ts[1].tv_sec = (time_t)floor_div(s->last_us, 1000000);
        ts[0].tv_nsec = ts[1].tv_nsec = (long)(s->last_us - (int64_t)ts[0].tv_sec * 1000000) * 1000;
        if (futimens(fd, ts) != 0)
            rc = -errno;
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Command line. */

static void usage(FILE *f)
{
    fputs(
        "Usage: " PROG " --out DIR --seed N [options]\n"
        "       " PROG " --one-file PATH --size BYTES --seed N [options]\n"
        "\n"
        "Writes realistic usage sessions of three products (Atlas Studio, a desktop application;\n"
        "Beacon Server; Cobalt CLI), one log file per session, deterministic from the seed: the\n"
        "same arguments always give byte-identical output.\n"
        "\n"
        "Options:\n"
        "  --out DIR            where to write sessions and DIR/logtypes.conf\n"
        "  --seed N             the seed (required; any 64-bit number)\n"
        "  --sites N            customer sites (default 4)\n"
        "  --users N            users across all sites (default 60)\n"
        "  --days N             length of the date range (default 42)\n"
        "  --start YYYY-MM-DD   first day (default 2026-10-05)\n"
        "  --sessions N         how many sessions (default 400)\n"
        "  --max-size BYTES     cap on a session's size, the long tail's end (default 256M)\n"
        "  --formats LIST       classic,jsonl (default both): the formats products may use;\n"
        "                       Atlas Studio and Cobalt CLI write classic, Beacon Server jsonl,\n"
        "                       and a product whose format is not allowed uses the other one\n"
        "  --truth FILE         also write the ground truth, one JSON object per session\n"
        "  --layout site|flat   site: DIR/<site>/<product>/<user>_<host>_<version>_<start>_<pid>.log\n"
        "                       flat: DIR/<site>_<product>_<user>_<host>_<version>_<start>_<pid>.log\n"
        "                       (default site); file times are the sessions' end times\n"
        "  --one-file PATH      write a single session of about --size BYTES to PATH, for\n"
        "                       benchmarks (a clean shutdown, no crash)\n"
        "  --size BYTES         size for --one-file\n"
        "  --product SLUG       product for --one-file: atlas-studio, beacon-server or\n"
        "                       cobalt-cli (default: atlas-studio, or beacon-server when\n"
        "                       --formats is jsonl)\n"
        "  --templates          print every product's message templates (one JSON object a\n"
        "                       line: product, kind, level, component, template, first and\n"
        "                       last version) and exit\n"
        "  -h, --help           this text\n"
        "\n"
        "Sizes accept a K, M or G suffix (powers of 1024).\n",
        f);
}

static int parse_u64(const char *s, uint64_t *out, int allow_suffix)
{
    if (!s || !*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -1;
    uint64_t mul = 1;
    if (allow_suffix && *end) {
        switch (*end) {
        case 'k': case 'K': mul = 1ULL << 10; break;
        case 'm': case 'M': mul = 1ULL << 20; break;
        case 'g': case 'G': mul = 1ULL << 30; break;
        default: return -1;
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
    }
    if (*end)
        return -1;
    if (v > UINT64_MAX / mul)
        return -1;
    *out = (uint64_t)v * mul;
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (parse_u64(s, &v, 0) || v < (uint64_t)lo || v > (uint64_t)hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_date(const char *s, int64_t *day)
{
    int y;
    unsigned m, d;
    char tail;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2u-%2u%c", &y, &m, &d, &tail) != 3)
        return -1;
    if (y < 1971 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    int64_t z = days_from_civil(y, m, d);
    int yy;
    unsigned mm, dd;
    civil_from_days(z, &yy, &mm, &dd);
    if (yy != y || mm != m || dd != d)
        return -1; /* 2026-02-30 and the like */
    *day = z;
    return 0;
}

static int parse_formats(const char *s, unsigned *mask)
{
    *mask = 0;
    char tmp[64];
    if (strlen(s) >= sizeof tmp)
        return -1;
    strcpy(tmp, s);
    char *save = NULL;
    for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "classic") == 0)
            *mask |= 1u << SG_FMT_CLASSIC;
        else if (strcmp(t, "jsonl") == 0)
            *mask |= 1u << SG_FMT_JSONL;
        else
            return -1;
    }
    return *mask ? 0 : -1;
}

static void bad(const char *what)
{
    fprintf(stderr, PROG ": %s (see --help)\n", what);
    exit(2);
}

static void parse_args(int argc, char **argv, sg_opts *o)
{
    enum { O_OUT = 256, O_SEED, O_SITES, O_USERS, O_DAYS, O_START, O_SESSIONS, O_MAXSIZE, O_FORMATS,
           O_TRUTH, O_LAYOUT, O_ONEFILE, O_SIZE, O_PRODUCT, O_TEMPLATES };
    static const struct option longopts[] = {
        {"out", required_argument, NULL, O_OUT},
        {"seed", required_argument, NULL, O_SEED},
        {"sites", required_argument, NULL, O_SITES},
        {"users", required_argument, NULL, O_USERS},
        {"days", required_argument, NULL, O_DAYS},
        {"start", required_argument, NULL, O_START},
        {"sessions", required_argument, NULL, O_SESSIONS},
        {"max-size", required_argument, NULL, O_MAXSIZE},
        {"formats", required_argument, NULL, O_FORMATS},
        {"truth", required_argument, NULL, O_TRUTH},
        {"layout", required_argument, NULL, O_LAYOUT},
        {"one-file", required_argument, NULL, O_ONEFILE},
        {"size", required_argument, NULL, O_SIZE},
        {"product", required_argument, NULL, O_PRODUCT},
        {"templates", no_argument, NULL, O_TEMPLATES},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->sites = 4;
    o->users = 60;
    o->days = 42;
    o->start_day = days_from_civil(2026, 10, 5);
    o->sessions = 400;
    o->max_size = 256ULL << 20;
    o->formats = (1u << SG_FMT_CLASSIC) | (1u << SG_FMT_JSONL);
    int c, n;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_OUT: o->out_dir = optarg; break;
        case O_SEED:
            if (parse_u64(optarg, &o->seed, 0))
                bad("--seed needs a non-negative number");
            o->seed_set = 1;
            break;
        case O_SITES:
            if (parse_int(optarg, 1, 1000, &o->sites))
                bad("--sites must be 1..1000");
            break;
        case O_USERS:
            if (parse_int(optarg, 1, 1000000, &o->users))
                bad("--users must be 1..1000000");
            break;
        case O_DAYS:
            if (parse_int(optarg, 1, 3650, &o->days))
                bad("--days must be 1..3650");
            break;
        case O_START:
            if (parse_date(optarg, &o->start_day))
                bad("--start must be a date YYYY-MM-DD");
            break;
        case O_SESSIONS:
            if (parse_int(optarg, 0, 10000000, &n))
                bad("--sessions must be 0..10000000");
            o->sessions = (uint32_t)n;
            break;
        case O_MAXSIZE:
            if (parse_u64(optarg, &v, 1) || v < 4096)
                bad("--max-size must be at least 4096 bytes");
            o->max_size = v;
            break;
        case O_FORMATS:
            if (parse_formats(optarg, &o->formats))
                bad("--formats is a list of classic and jsonl");
            break;
        case O_TRUTH: o->truth = optarg; break;
        case O_LAYOUT:
            if (strcmp(optarg, "site") == 0)
                o->flat = 0;
            else if (strcmp(optarg, "flat") == 0)
                o->flat = 1;
            else
                bad("--layout is site or flat");
            break;
        case O_ONEFILE: o->one_file = optarg; break;
        case O_SIZE:
            if (parse_u64(optarg, &o->one_size, 1) || o->one_size < 1)
                bad("--size needs a positive size");
            break;
        case O_PRODUCT: o->product = optarg; break;
        case O_TEMPLATES: o->list_templates = 1; break;
        case 'h': usage(stdout); exit(0);
        default: bad("unknown option");
        }
    }
    if (optind < argc)
        bad("unexpected argument");
    if (o->list_templates)
        return;
    if (!o->seed_set)
        bad("--seed is required");
    if (o->one_file) {
        if (!o->one_size)
            bad("--one-file needs --size");
    } else {
        if (!o->out_dir)
            bad("--out is required");
        if (o->one_size || o->product)
            bad("--size and --product go with --one-file");
    }
    if ((uint64_t)o->users * (uint64_t)o->days > SG_MAX_POOL)
        bad("--users times --days is too large");
}

/* ------------------------------------------------------------------------------------------ */

typedef struct sg_pair {
    int user, day;
} sg_pair;

/* Which (user, day) pairs have activity: a user starts on their first day, comes back on later
 * days with their own return probability (rarely at weekends), until they stop. */
static sg_pair *activity_pool(const sg_world *w, size_t *n)
{
    const sg_opts *o = w->o;
    size_t cap = 1024, len = 0;
    sg_pair *pool = xcalloc(cap, sizeof *pool);
    sg_rng r;
    sg_rng_seed(&r, o->seed, 3);
    for (int u = 0; u < o->users; u++) {
        const sg_user *us = &w->users[u];
        for (int d = us->first_day; d <= us->last_day; d++) {
            int64_t wd = (o->start_day + d + 4) % 7; /* 0 is Sunday */
            double p = us->ret_p * ((wd == 0 || wd == 6) ? 0.15 : 1.0);
            if (d != us->first_day && !sg_chance(&r, p))
                continue;
            if (len == cap) {
                cap *= 2;
                sg_pair *np = realloc(pool, cap * sizeof *pool);
                if (!np)
                    die("out of memory");
                pool = np;
            }
            pool[len].user = u;
            pool[len].day = d;
            len++;
        }
    }
    *n = len;
    return pool;
}

static int run_one_file(const sg_world *w, const sg_opts *o)
{
    int product = o->formats == (1u << SG_FMT_JSONL) ? 1 : 0;
    if (o->product) {
        product = -1;
        for (int p = 0; p < SG_NPRODUCTS; p++)
            if (strcmp(o->product, sg_products[p].slug) == 0)
                product = p;
        if (product < 0)
            bad("unknown --product");
    }
    /* The first user of the product; the session is on the middle day of the range. */
    int user = 0;
    for (int u = 0; u < o->users; u++)
        if (w->users[u].products >> product & 1) {
            user = u;
            break;
        }
    sg_plan pl;
    plan_session(w, &pl, 0, user, o->days / 2, product);
    if (sg_products[product].kind == SG_KIND_SERVER)
        pl.host = w->sites[w->users[user].site].server0;
    else
        pl.host = w->users[user].host0;
    pl.version = version_for(w, product, &w->hosts[pl.host], o->days / 2);
    pl.target = o->one_size;
    pl.crashed = 0;
    pl.dur_us = 8 * 3600LL * 1000000;
    sg_out out = {.buf = xcalloc(SG_OUT_CAP, 1), .cap = SG_OUT_CAP};
    uint64_t *tcount = xcalloc((size_t)w->products[product].ntpls, sizeof(uint64_t));
    sg_sess *s = xcalloc(1, sizeof *s);
    uint64_t bytes = 0;
    int rc = generate_file(w, &pl, o->one_file, &out, tcount, s, &bytes);
    if (rc) {
        fprintf(stderr, PROG ": %s: %s\n", o->one_file, strerror(-rc));
        return 1;
    }
    if (o->truth) {
        FILE *tf = fopen(o->truth, "w");
        if (!tf || write_truth(tf, s, o->one_file, bytes) || fclose(tf) != 0) {
            fprintf(stderr, PROG ": %s: cannot write the ground truth\n", o->truth);
            return 1;
        }
    }
    free(s);
    free(tcount);
    free(out.buf);
    return 0;
}

static int run_sessions(const sg_world *w, const sg_opts *o)
{
    int rc = mkdir_p(o->out_dir);
    if (rc == 0)
        rc = write_logtypes(o->out_dir);
    if (rc) {
        fprintf(stderr, PROG ": %s: %s\n", o->out_dir, strerror(-rc));
        return 1;
    }
    size_t npool = 0;
    sg_pair *pool = activity_pool(w, &npool);
    uint32_t n = o->sessions;
    sg_plan *plans = xcalloc(n, sizeof *plans);
    sg_rng r;
    sg_rng_seed(&r, o->seed, 4);
    for (uint32_t k = 0; k < n; k++) {
        /* Stratified over the pool: every active (user, day) gets its share of sessions. */
        size_t idx = (size_t)(((double)k + sg_unit(&r)) * (double)npool / n);
        if (idx >= npool)
            idx = npool - 1;
        plan_session(w, &plans[k], k, pool[idx].user, pool[idx].day, -1);
    }
    free(pool);
    qsort(plans, n, sizeof *plans, cmp_plan);

    FILE *tf = NULL;
    if (o->truth && !(tf = fopen(o->truth, "w"))) {
        fprintf(stderr, PROG ": %s: %s\n", o->truth, strerror(errno));
        return 1;
    }
    /* File names must be unique: a clash (same user, host, second and pid) moves the pid on. */
    size_t hcap = 16;
    while (hcap < (size_t)n * 2)
        hcap *= 2;
    uint64_t *seen = xcalloc(hcap, sizeof(uint64_t));
    int maxtpl = 0;
    for (int p = 0; p < SG_NPRODUCTS; p++)
        if (w->products[p].ntpls > maxtpl)
            maxtpl = w->products[p].ntpls;
    uint64_t *tcount = xcalloc((size_t)maxtpl, sizeof(uint64_t));
    sg_out out = {.buf = xcalloc(SG_OUT_CAP, 1), .cap = SG_OUT_CAP};
    sg_sess *s = xcalloc(1, sizeof *s);
    char rel[512], path[PATH_MAX + 600], dir[PATH_MAX + 600];
    int status = 0;
    for (uint32_t k = 0; k < n && !status; k++) {
        sg_plan *pl = &plans[k];
        for (;;) {
            session_name(rel, sizeof rel, w, pl, pl->pid);
            uint64_t h = fnv1a(rel) | 1;
            size_t i = h & (hcap - 1);
            int clash = 0;
            while (seen[i]) {
                if (seen[i] == h) {
                    clash = 1;
                    break;
                }
                i = (i + 1) & (hcap - 1);
            }
            if (!clash) {
                seen[i] = h;
                break;
            }
            pl->pid++;
        }
        snprintf(path, sizeof path, "%s/%s", o->out_dir, rel);
        if (!o->flat) {
            snprintf(dir, sizeof dir, "%s", path);
            char *slash = strrchr(dir, '/');
            if (slash)
                *slash = '\0';
            if ((rc = mkdir_p(dir)) != 0) {
                fprintf(stderr, PROG ": %s: %s\n", dir, strerror(-rc));
                status = 1;
                break;
            }
        }
        uint64_t bytes = 0;
        rc = generate_file(w, pl, path, &out, tcount, s, &bytes);
        if (rc) {
            fprintf(stderr, PROG ": %s: %s\n", path, strerror(-rc));
            status = 1;
            break;
        }
        if (tf && write_truth(tf, s, rel, bytes)) {
            fprintf(stderr, PROG ": %s: cannot write the ground truth\n", o->truth);
            status = 1;
        }
    }
    if (tf && fclose(tf) != 0 && !status) {
        fprintf(stderr, PROG ": %s: %s\n", o->truth, strerror(errno));
        status = 1;
    }
    free(s);
    free(out.buf);
    free(tcount);
    free(seen);
    free(plans);
    return status;
}

static void free_world(sg_world *w)
{
    for (int p = 0; p < SG_NPRODUCTS; p++) {
        sg_product *pr = &w->products[p];
        for (int i = 0; i < pr->ntpls; i++) {
            sg_tpl *t = &pr->tpls[i];
            for (int j = 0; j < t->nsegs; j++) {
                free(t->segs[j].choices);
                free(t->segs[j].cum);
            }
            free(t->segs);
            free(t->key);
            free(t->key_json);
        }
        free(pr->tpls);
        for (int v = 0; v < SG_MAX_VERSIONS; v++)
            for (int d = 0; d < 2; d++)
                free(pr->cum[v][d]);
    }
    free(w->sites);
    free(w->hosts);
    free(w->users);
}

/* The whole vocabulary, keyed as the ground truth keys it. */
static int list_templates(const sg_world *w)
{
    static const char *const kinds[] = {"startup", "body", "shutdown", "crash"};
    for (int p = 0; p < SG_NPRODUCTS; p++) {
        const sg_product *pr = &w->products[p];
        const sg_product_def *pd = pr->def;
        for (int i = 0; i < pr->ntpls; i++) {
            const sg_tpl *t = &pr->tpls[i];
            int kind = i < pr->body0 ? 0 : i < pr->shutdown0 ? 1 : i < pr->crash0 ? 2 : 3;
            int vmax = t->def->vmax > pd->nversions ? pd->nversions : t->def->vmax;
            printf("{\"product\":\"%s\",\"product_slug\":\"%s\",\"kind\":\"%s\",\"level\":\"%s\","
                   "\"component\":\"%s\",\"stack\":%s,\"weight\":%u,\"first_version\":\"%s\","
                   "\"last_version\":\"%s\",\"template\":\"%s\"}\n",
                   pd->name, pd->slug, kinds[kind], level_name[t->def->level], t->def->component,
                   (t->def->flags & SG_F_STACK) ? "true" : "false", t->def->weight,
                   pd->versions[t->def->vmin], pd->versions[vmax - 1], t->key_json);
        }
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    sg_opts o;
    parse_args(argc, argv, &o);
    if (o.list_templates) {
        sg_world lw;
        memset(&lw, 0, sizeof lw);
        for (int p = 0; p < SG_NPRODUCTS; p++)
            compile_product(&lw.products[p], &sg_products[p]);
        int st = list_templates(&lw);
        free_world(&lw);
        return st;
    }
    build_tables(o.seed);
    sg_world w;
    memset(&w, 0, sizeof w);
    build_world(&w, &o);
    int status;
    if (o.one_file) {
        status = run_one_file(&w, &o);
        if (status == 0 && o.out_dir) {
            int rc = mkdir_p(o.out_dir);
            if (rc == 0)
                rc = write_logtypes(o.out_dir);
            if (rc) {
                fprintf(stderr, PROG ": %s: %s\n", o.out_dir, strerror(-rc));
                status = 1;
            }
        }
    } else {
        status = run_sessions(&w, &o);
    }
    free_world(&w);
    return status;
}
