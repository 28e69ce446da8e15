/* Drain-family template miner (see drain.h). */
#include "drain.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "parse_hash.h"

#define MAX_DEPTH 16

struct lf_drain_cluster {
    lf_drain_cluster *lru_prev, *lru_next;   /* most recent first */
    lf_drain_cluster *leaf_prev, *leaf_next; /* order of creation within the leaf */
    lf_drain_cluster *all_prev, *all_next;   /* order of creation */
    lf_drain *owner;
    uint64_t serial, size, id;
    uint64_t last_used; /* the miner's clock when the cluster last took a message */
    uint64_t path[MAX_DEPTH]; /* node keys from the length node down to the leaf */
    uint32_t wild_edges;      /* bit l: the edge into path[l+1] is the "<*>" child */
    uint32_t nlevels;         /* path[nlevels] is the leaf */
    uint32_t ntok;
    size_t alloc;            /* bytes of this block */
    char *rendered;          /* cached template text, NULL when stale */
    size_t rendered_len;
    uint64_t *hash;          /* ntok token hashes, LF_TOKEN_WILD_HASH for "<*>" */
    uint32_t *off, *len;     /* token bytes in arena */
    char *arena;             /* token bytes; tokens that change are appended */
    size_t arena_len, arena_cap;
};

typedef struct node {
    uint64_t key; /* 0: empty slot */
    uint32_t nchild;
    uint32_t has_wild;
    uint32_t nclusters;            /* in the leaf */
    lf_drain_cluster *head, *tail; /* clusters, for leaves */
} node;

struct lf_drain {
    lf_drain_config cfg;
    char *type;
    node *tab;
    size_t tab_cap, tab_used;
    lf_drain_cluster *lru_head, *lru_tail;
    lf_drain_cluster *all_head, *all_tail;
    size_t nclusters;
    uint64_t next_serial, evictions, clock;
    size_t bytes;
};

void lf_drain_config_default(lf_drain_config *cfg)
{
    cfg->sim_threshold = 0.7;
    cfg->depth = 4;
    cfg->max_children = 100;
    cfg->max_clusters = 100000;
    cfg->max_leaf_clusters = 256;
}

int lf_drain_new(const lf_drain_config *cfg, const char *type_name, lf_drain **out)
{
    *out = NULL;
    lf_drain_config c;
    if (cfg)
        c = *cfg;
    else
        lf_drain_config_default(&c);
    if (c.max_leaf_clusters == 0)
        c.max_leaf_clusters = 256;
    if (c.depth < 3 || c.depth > MAX_DEPTH || c.max_children < 2 || !(c.sim_threshold >= 0.0) ||
        c.sim_threshold > 1.0)
        return LF_ECONFIG;
    if (sodium_init() < 0)
        return -ENOMEM;
    lf_drain *d = lf_calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->cfg = c;
    d->type = lf_strdup(type_name ? type_name : "");
    d->tab_cap = 1024;
    d->tab = lf_calloc(d->tab_cap, sizeof *d->tab);
    if (!d->type || !d->tab) {
        lf_drain_free(d);
        return -ENOMEM;
    }
    d->bytes = sizeof *d + d->tab_cap * sizeof *d->tab;
    *out = d;
    return 0;
}

void lf_drain_free(lf_drain *d)
{
    if (!d)
        return;
    lf_drain_cluster *c = d->all_head;
    while (c) {
        lf_drain_cluster *n = c->all_next;
        lf_free(c->rendered);
        lf_free(c->arena);
        lf_free(c);
        c = n;
    }
    lf_free(d->tab);
    lf_free(d->type);
    lf_free(d);
}

/* ---- node table: open addressing, linear probing, backward-shift deletion ---- */

static node *tab_find(lf_drain *d, uint64_t key)
{
    size_t m = d->tab_cap - 1;
    for (size_t i = key & m;; i = (i + 1) & m) {
        if (d->tab[i].key == key)
            return &d->tab[i];
        if (d->tab[i].key == 0)
            return NULL;
    }
}

static int tab_grow(lf_drain *d)
{
    size_t ncap = d->tab_cap * 2;
    node *nt = lf_calloc(ncap, sizeof *nt);
    if (!nt)
        return -ENOMEM;
    for (size_t i = 0; i < d->tab_cap; i++) {
        if (d->tab[i].key == 0)
            continue;
        size_t j = d->tab[i].key & (ncap - 1);
        while (nt[j].key)
            j = (j + 1) & (ncap - 1);
        nt[j] = d->tab[i];
    }
    lf_free(d->tab);
    d->bytes += (ncap - d->tab_cap) * sizeof *nt;
    d->tab = nt;
    d->tab_cap = ncap;
    return 0;
}

static node *tab_insert(lf_drain *d, uint64_t key)
{
    if ((d->tab_used + 1) * 4 > d->tab_cap * 3 && tab_grow(d) < 0)
        return NULL;
    size_t m = d->tab_cap - 1;
    size_t i = key & m;
    while (d->tab[i].key)
        i = (i + 1) & m;
    memset(&d->tab[i], 0, sizeof d->tab[i]);
    d->tab[i].key = key;
    d->tab_used++;
    return &d->tab[i];
}

static void tab_delete(lf_drain *d, node *n)
{
    size_t m = d->tab_cap - 1;
    size_t i = (size_t)(n - d->tab);
    size_t j = i;
    for (;;) {
        j = (j + 1) & m;
        if (d->tab[j].key == 0)
            break;
        size_t home = d->tab[j].key & m;
        /* move j back to i if its home is not in (i, j] cyclically */
        bool in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            d->tab[i] = d->tab[j];
            i = j;
        }
    }
    d->tab[i].key = 0;
    d->tab_used--;
}

static uint64_t nonzero(uint64_t k)
{
    return k ? k : 0x51ed270b27a3c1e5ULL;
}

static uint64_t len_key(int ntok)
{
    return nonzero(lf_phash_combine(0x243f6a8885a308d3ULL, (uint64_t)ntok));
}

static uint64_t child_key(uint64_t parent, uint64_t tokhash)
{
    return nonzero(lf_phash_combine(parent, tokhash));
}

/* Does the token look like (or hold) a variable: a digit, a "<*>", or a key=value / key:value? */
static bool var_like(const char *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if ((s[i] >= '0' && s[i] <= '9') || (s[i] == '<' && i + 2 < n && s[i + 1] == '*' && s[i + 2] == '>') ||
            ((s[i] == '=' || s[i] == ':') && i > 0 && i + 1 < n))
            return true;
    return false;
}

/* Does the token end like a key ("name:" or "name="), so that the next one is its value? */
static bool after_key(const char *s, uint32_t n)
{
    return n > 1 && (s[n - 1] == ':' || s[n - 1] == '=');
}

static int tree_levels(const lf_drain *d, int ntok)
{
    int lv = (int)d->cfg.depth - 2;
    return ntok < lv ? ntok : lv;
}

/* Finds the leaf for a message, or NULL. */
static node *tree_search(lf_drain *d, const lf_token *toks, int ntok)
{
    uint64_t key = len_key(ntok);
    node *n = tab_find(d, key);
    if (!n)
        return NULL;
    int lv = tree_levels(d, ntok);
    for (int l = 0; l < lv; l++) {
        uint64_t ck = child_key(key, toks[l].hash);
        node *c = tab_find(d, ck);
        if (!c) {
            if (!n->has_wild)
                return NULL;
            ck = child_key(key, LF_TOKEN_WILD_HASH);
            c = tab_find(d, ck);
            if (!c)
                return NULL;
        }
        key = ck;
        n = c;
    }
    return n;
}

/* Creates (as needed) the path for a new cluster and records it in c. Returns the leaf. */
static node *tree_place(lf_drain *d, lf_drain_cluster *c, const lf_token *toks, const char *text, int ntok)
{
    uint64_t key = len_key(ntok);
    node *n = tab_find(d, key);
    if (!n && !(n = tab_insert(d, key)))
        return NULL;
    c->path[0] = key;
    c->wild_edges = 0;
    int lv = tree_levels(d, ntok);
    for (int l = 0; l < lv; l++) {
        uint64_t th = toks[l].hash;
        uint64_t ck = child_key(key, th);
        node *ch = tab_find(d, ck);
        bool wild = th == LF_TOKEN_WILD_HASH;
        if (!ch) {
            bool numeric = th == LF_TOKEN_WILD_HASH || var_like(text + toks[l].off, toks[l].len);
            bool make_token;
            if (numeric)
                make_token = false;
            else if (n->has_wild)
                make_token = n->nchild < d->cfg.max_children;
            else
                make_token = n->nchild + 1 < d->cfg.max_children;
            if (!make_token) {
                ck = child_key(key, LF_TOKEN_WILD_HASH);
                wild = true;
                ch = tab_find(d, ck);
            }
            if (!ch) {
                uint64_t pk = key;
                ch = tab_insert(d, ck); /* may move n */
                if (!ch)
                    return NULL;
                n = tab_find(d, pk);
                n->nchild++;
                if (wild)
                    n->has_wild = 1;
                ch = tab_find(d, ck);
            }
        }
        if (wild)
            c->wild_edges |= 1u << l;
        key = ck;
        n = ch;
        c->path[l + 1] = key;
    }
    c->nlevels = (uint32_t)lv;
    return n;
}

/* Removes c from its leaf and frees nodes left empty. */
static void tree_remove(lf_drain *d, lf_drain_cluster *c)
{
    node *leaf = tab_find(d, c->path[c->nlevels]);
    if (!leaf)
        return;
    if (c->leaf_prev)
        c->leaf_prev->leaf_next = c->leaf_next;
    else
        leaf->head = c->leaf_next;
    if (c->leaf_next)
        c->leaf_next->leaf_prev = c->leaf_prev;
    else
        leaf->tail = c->leaf_prev;
    leaf->nclusters--;
    if (leaf->head)
        return;
    for (int l = (int)c->nlevels; l >= 0; l--) {
        node *n = tab_find(d, c->path[l]);
        if (!n || n->nchild > 0 || n->head)
            return;
        tab_delete(d, n);
        if (l == 0)
            return;
        node *p = tab_find(d, c->path[l - 1]);
        if (!p)
            return;
        p->nchild--;
        if (c->wild_edges & (1u << (l - 1)))
            p->has_wild = 0;
    }
}

static void lru_unlink(lf_drain *d, lf_drain_cluster *c)
{
    if (c->lru_prev)
        c->lru_prev->lru_next = c->lru_next;
    else
        d->lru_head = c->lru_next;
    if (c->lru_next)
        c->lru_next->lru_prev = c->lru_prev;
    else
        d->lru_tail = c->lru_prev;
    c->lru_prev = c->lru_next = NULL;
}

static void lru_push_front(lf_drain *d, lf_drain_cluster *c)
{
    c->lru_prev = NULL;
    c->lru_next = d->lru_head;
    if (d->lru_head)
        d->lru_head->lru_prev = c;
    else
        d->lru_tail = c;
    d->lru_head = c;
}

static void cluster_destroy(lf_drain *d, lf_drain_cluster *c)
{
    tree_remove(d, c);
    lru_unlink(d, c);
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        d->all_head = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    else
        d->all_tail = c->all_prev;
    d->bytes -= c->alloc + (c->rendered ? c->rendered_len + 1 : 0);
    d->nclusters--;
    lf_free(c->rendered);
    lf_free(c->arena);
    lf_free(c);
}

static lf_drain_cluster *cluster_create(lf_drain *d, const lf_token *toks, int ntok, const char *text)
{
    size_t arena = 0;
    for (int i = 0; i < ntok; i++)
        arena += toks[i].hash == LF_TOKEN_WILD_HASH ? 0 : toks[i].len;
    size_t sz = sizeof(lf_drain_cluster) + (size_t)ntok * (sizeof(uint64_t) + 2 * sizeof(uint32_t));
    lf_drain_cluster *c = lf_calloc(1, sz);
    char *a = lf_malloc(arena + 1);
    if (!c || !a) {
        lf_free(c);
        lf_free(a);
        return NULL;
    }
    c->alloc = sz + arena + 1;
    c->owner = d;
    c->ntok = (uint32_t)ntok;
    c->hash = (uint64_t *)(c + 1);
    c->off = (uint32_t *)(c->hash + ntok);
    c->len = c->off + ntok;
    c->arena = a;
    c->arena_cap = arena + 1;
    size_t p = 0;
    for (int i = 0; i < ntok; i++) {
        c->hash[i] = toks[i].hash;
        c->off[i] = (uint32_t)p;
        if (toks[i].hash == LF_TOKEN_WILD_HASH) {
            c->len[i] = 0;
            continue;
        }
        c->len[i] = toks[i].len;
        memcpy(c->arena + p, text + toks[i].off, toks[i].len);
        p += toks[i].len;
    }
    c->arena_len = p;
    return c;
}

static bool affix_char(char ch)
{
    return ch != '<' && ch != '>' && ch != '*' && strchr(",;:=|\"'[](){}.-+@#$%&/\\!?", ch) && ch != '\0';
}

/* Generalises template token i of c to cover the message token m: the punctuation both share at
 * their start and end is kept around "<*>" ("'<*>'", "<*>,"), otherwise the token becomes "<*>". */
static int generalise(lf_drain *d, lf_drain_cluster *c, uint32_t i, const char *m, size_t ml)
{
    const char *a = c->arena + c->off[i];
    size_t al = c->len[i];
    size_t lim = al < ml ? al : ml;
    size_t pre = 0, suf = 0;
    /* up to two closing characters ("<*>,", "<*>'."), and the common head up to a key mark or an
     * opening bracket ("size=<*>", "chdir(<*>)", "'<*>'") when that bracket is closed too */
    /* both tokens keep at least one byte for the "<*>" */
    while (suf < 2 && suf + 1 < lim && a[al - 1 - suf] == m[ml - 1 - suf] && affix_char(a[al - 1 - suf]))
        suf++;
    static const char open[] = "([{'\"<", close[] = ")]}'\">";
    for (size_t k = 0; k + suf + 1 < lim && a[k] == m[k]; k++) {
        const char *op = a[k] ? strchr(open, a[k]) : NULL;
        if (a[k] == '=' || a[k] == ':' || (op && suf > 0 && a[al - suf] == close[op - open]))
            pre = k + 1;
    }    if (pre + suf == 0) {
        c->hash[i] = LF_TOKEN_WILD_HASH;
        return 0;
    }
    size_t nl = pre + 3 + suf;
    if (c->arena_len + nl > c->arena_cap) {
        size_t ncap = (c->arena_len + nl) * 2;
        char *na = lf_realloc(c->arena, ncap);
        if (!na)
            return -ENOMEM;
        d->bytes += ncap - c->arena_cap;
        c->alloc += ncap - c->arena_cap;
        c->arena = na;
        c->arena_cap = ncap;
        a = c->arena + c->off[i];
    }
    char *o = c->arena + c->arena_len;
    memcpy(o, a, pre);
    memcpy(o + pre, "<*>", 3);
    memcpy(o + pre + 3, a + al - suf, suf);
    c->off[i] = (uint32_t)c->arena_len;
    c->len[i] = (uint32_t)nl;
    c->arena_len += nl;
    c->hash[i] = lf_token_hash(o, nl);
    return 0;
}

static int cluster_insert(lf_drain *d, const lf_token *toks, int ntok, const char *text, lf_drain_cluster **out)
{
    if (d->cfg.max_clusters && d->nclusters >= d->cfg.max_clusters && d->lru_tail) {
        cluster_destroy(d, d->lru_tail);
        d->evictions++;
    }
    lf_drain_cluster *c = cluster_create(d, toks, ntok, text);
    if (!c)
        return -ENOMEM;
    node *leaf = tree_place(d, c, toks, text, ntok);
    if (!leaf) {
        lf_free(c->arena);
        lf_free(c);
        return -ENOMEM;
    }
    if (leaf->nclusters >= d->cfg.max_leaf_clusters) {
        lf_drain_cluster *old = leaf->head;
        for (lf_drain_cluster *x = leaf->head; x; x = x->leaf_next)
            if (x->last_used < old->last_used)
                old = x;
        uint64_t lk = c->path[c->nlevels];
        cluster_destroy(d, old); /* table slots may move, and a leaf left empty is freed */
        d->evictions++;
        leaf = tab_find(d, lk);
        if (!leaf && !(leaf = tree_place(d, c, toks, text, ntok))) {
            lf_free(c->arena);
            lf_free(c);
            return -ENOMEM;
        }
    }
    c->leaf_prev = leaf->tail;
    if (leaf->tail)
        leaf->tail->leaf_next = c;
    else
        leaf->head = c;
    leaf->tail = c;
    leaf->nclusters++;
    c->last_used = ++d->clock;
    lru_push_front(d, c);
    c->all_prev = d->all_tail;
    if (d->all_tail)
        d->all_tail->all_next = c;
    else
        d->all_head = c;
    d->all_tail = c;
    c->serial = d->next_serial++;
    c->size = 1;
    d->nclusters++;
    d->bytes += c->alloc;
    *out = c;
    return 1;
}

int lf_drain_add(lf_drain *d, const lf_token *toks, int ntok, const char *text, lf_drain_cluster **out)
{
    node *leaf = tree_search(d, toks, ntok);
    lf_drain_cluster *best = NULL;
    double best_sim = -1.0;
    uint32_t best_par = 0;
    if (leaf) {
        for (lf_drain_cluster *c = leaf->head; c; c = c->leaf_next) {
            uint32_t same = 0, par = 0, wordmis = 0;
            for (int i = 0; i < ntok; i++) {
                uint64_t h = c->hash[i];
                if (h == LF_TOKEN_WILD_HASH)
                    par++;
                else if (h == toks[i].hash)
                    same++;
                else if (!var_like(c->arena + c->off[i], c->len[i]) && !var_like(text + toks[i].off, toks[i].len) &&
                         !(i > 0 && after_key(text + toks[i - 1].off, toks[i - 1].len)))
                    wordmis++;
            }
            /* a wildcard position is compatible with any token; two different words (no digit, no
             * wildcard) count against the match twice, as words usually belong to the template,
             * unless they follow a key ("hive: SAM," / "hive: DEFAULT,") and so are its value */
            double sim = ntok ? ((double)(same + par) - (double)wordmis) / (double)ntok : 1.0;
            /* and a message must agree with at least half of the template's literal tokens, or a
             * template made mostly of wildcards would swallow every message of its length */
            if (ntok > (int)par && 2 * same < (uint32_t)ntok - par)
                sim = 0.0;
            if (sim > best_sim || (sim == best_sim && par > best_par)) {
                best = c;
                best_sim = sim;
                best_par = par;
            }
        }
    }
    if (best && best_sim >= d->cfg.sim_threshold) {
        bool changed = false;
        for (int i = 0; i < ntok; i++) {
            if (best->hash[i] != LF_TOKEN_WILD_HASH && best->hash[i] != toks[i].hash) {
                if (toks[i].hash == LF_TOKEN_WILD_HASH)
                    best->hash[i] = LF_TOKEN_WILD_HASH;
                else if (generalise(d, best, (uint32_t)i, text + toks[i].off, toks[i].len) < 0)
                    return -ENOMEM;
                changed = true;
            }
        }
        if (changed && best->rendered) {
            d->bytes -= best->rendered_len + 1;
            lf_free(best->rendered);
            best->rendered = NULL;
        }
        best->size++;
        best->last_used = ++d->clock;
        if (d->lru_head != best) {
            lru_unlink(d, best);
            lru_push_front(d, best);
        }
        *out = best;
        return 0;
    }
    return cluster_insert(d, toks, ntok, text, out);
}

int lf_drain_restore(lf_drain *d, const char *tmpl, size_t len, uint64_t count)
{
    lf_token toks[LF_TOKEN_MAX];
    int n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && tmpl[i] == ' ')
            i++;
        if (i >= len)
            break;
        size_t e = i;
        while (e < len && tmpl[e] != ' ')
            e++;
        if (n == LF_TOKEN_MAX)
            return LF_EFORMAT;
        toks[n].off = (uint32_t)i;
        toks[n].len = (uint32_t)(e - i);
        toks[n].hash = lf_token_hash(tmpl + i, e - i);
        n++;
        i = e;
    }
    lf_drain_cluster *c;
    int rc = cluster_insert(d, toks, n, tmpl, &c);
    if (rc < 0)
        return rc;
    c->size = count;
    return 0;
}

uint64_t lf_drain_template_id(const char *type_name, const char *tmpl, size_t len)
{
    crypto_generichash_state st;
    unsigned char out[crypto_generichash_BYTES_MIN];
    static const char tag[] = "logferry-template";
    crypto_generichash_init(&st, NULL, 0, sizeof out);
    crypto_generichash_update(&st, (const unsigned char *)tag, sizeof tag);
    crypto_generichash_update(&st, (const unsigned char *)type_name, strlen(type_name) + 1);
    crypto_generichash_update(&st, (const unsigned char *)tmpl, len);
    crypto_generichash_final(&st, out, sizeof out);
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = (id << 8) | out[i];
    return id;
}

const char *lf_drain_cluster_template(lf_drain_cluster *c, size_t *len)
{
    if (!c->rendered) {
        size_t n = 0;
        for (uint32_t i = 0; i < c->ntok; i++)
            n += (c->hash[i] == LF_TOKEN_WILD_HASH ? 3 : c->len[i]) + 1;
        char *r = lf_malloc(n + 1);
        if (!r)
            return NULL;
        size_t p = 0;
        for (uint32_t i = 0; i < c->ntok; i++) {
            if (i)
                r[p++] = ' ';
            if (c->hash[i] == LF_TOKEN_WILD_HASH) {
                memcpy(r + p, "<*>", 3);
                p += 3;
            } else {
                memcpy(r + p, c->arena + c->off[i], c->len[i]);
                p += c->len[i];
            }
        }
        r[p] = '\0';
        c->rendered = r;
        c->rendered_len = p;
        lf_drain *d = c->owner;
        c->id = lf_drain_template_id(d->type, r, p);
        d->bytes += p + 1;
    }
    if (len)
        *len = c->rendered_len;
    return c->rendered;
}

uint64_t lf_drain_cluster_id(lf_drain_cluster *c)
{
    if (!c->rendered && !lf_drain_cluster_template(c, NULL))
        return 0;
    return c->id;
}

uint64_t lf_drain_cluster_serial(const lf_drain_cluster *c)
{
    return c->serial;
}

uint64_t lf_drain_cluster_size(const lf_drain_cluster *c)
{
    return c->size;
}

size_t lf_drain_cluster_count(const lf_drain *d)
{
    return d->nclusters;
}

uint64_t lf_drain_evictions(const lf_drain *d)
{
    return d->evictions;
}

size_t lf_drain_memory(const lf_drain *d)
{
    return d->bytes;
}

const char *lf_drain_type_name(const lf_drain *d)
{
    return d->type;
}

int lf_drain_foreach(lf_drain *d, int (*cb)(lf_drain_cluster *c, void *arg), void *arg)
{
    for (lf_drain_cluster *c = d->all_head; c;) {
        lf_drain_cluster *n = c->all_next;
        int rc = cb(c, arg);
        if (rc)
            return rc;
        c = n;
    }
    return 0;
}
