/* Top-down partition of a batch's sequences of one token count (see miner_partition.h). */
#include "miner_partition.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lf_alloc.h"

typedef struct segment {
    size_t start, len;
} segment;

typedef struct part {
    const lf_pitem *items;
    uint32_t ntok;
    size_t *idx;       /* item numbers, permuted so that every segment is contiguous */
    uint64_t *shapes;  /* scratch: one column's shapes of a segment */
    segment *stack;
    size_t nstack, capstack;
    uint32_t col;      /* the column the current sort is by */
    bool by_empty;     /* and whether by its shapes or only by which of its keys are empty */
} part;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Distinct shapes of column j over the segment (sorting a copy). */
static size_t distinct_shapes(part *p, const segment *s, uint32_t j)
{
    for (size_t i = 0; i < s->len; i++)
        p->shapes[i] = p->items[p->idx[s->start + i]].toks[j].shape;
    qsort(p->shapes, s->len, sizeof *p->shapes, cmp_u64);
    size_t k = 1;
    for (size_t i = 1; i < s->len; i++)
        k += p->shapes[i] != p->shapes[i - 1];
    return k;
}

typedef struct column_choice {
    bool found, wild, by_empty;
    size_t shapes;
    uint32_t col;
} column_choice;

/* Better: no "<*>" before "<*>", fewer shapes, then the leftmost. */
static bool better(const column_choice *c, bool wild, size_t shapes)
{
    if (!c->found)
        return true;
    if (wild != c->wild)
        return !wild;
    return shapes < c->shapes;
}

/* The column to split the segment on, if any (see the header for the rules). */
static column_choice choose(part *p, const segment *s, const lf_partition_rules *r)
{
    column_choice any = {0}, binary = {0};
    size_t constant = 0, words = 0;
    for (uint32_t j = 0; j < p->ntok; j++) {
        const lf_ptok *first = &p->items[p->idx[s->start]].toks[j];
        bool same = true, all_bare = true, wild = false, all_wild = true, caps = true, past = true, some_empty = false,
             all_empty = true;
        for (size_t i = 0; i < s->len; i++) {
            const lf_ptok *t = &p->items[p->idx[s->start + i]].toks[j];
            same &= t->hash == first->hash;
            all_bare &= (t->flags & LF_PTOK_BARE) != 0;
            wild |= (t->flags & LF_PTOK_WILD) != 0;
            all_wild &= (t->flags & LF_PTOK_WILD) != 0;
            caps &= (t->flags & LF_PTOK_CAPS) != 0;
            past &= (t->flags & LF_PTOK_PAST) != 0;
            some_empty |= (t->flags & LF_PTOK_EMPTY) != 0;
            all_empty &= (t->flags & LF_PTOK_EMPTY) != 0;
        }
        if (!all_bare)
            words++;
        if (same) {
            constant += !all_bare;
            continue;
        }
        /* a key printed without a value ("rhost=") is another message than the key with one */
        if (some_empty && !all_empty)
            return (column_choice){.found = true, .by_empty = true, .col = j};
        size_t k = distinct_shapes(p, s, j);
        if (k < 2)
            continue; /* the values differ only in their numbers: a parameter */
        if (better(&any, wild, k))
            any = (column_choice){.found = true, .wild = wild, .shapes = k, .col = j};
        /* a few word values are that many event types; where every value holds a parameter
         * ("(uid=<*>)"/"LOGIN(uid=<*>)") only two are, since a parameter may itself be a word */
        bool few = wild ? all_wild && k == 2 && r->max_values >= 2 : k <= r->max_values;
        if ((few || (!wild && caps && r->capitals) || (!wild && past)) && better(&binary, wild, k))
            binary = (column_choice){.found = true, .wild = wild, .shapes = k, .col = j};
    }
    if (words == 0 || (double)constant >= r->word_share * (double)words)
        return binary;
    return any;
}

/* What the current split tells items apart by. */
static uint64_t split_key(const part *p, size_t item)
{
    const lf_ptok *t = &p->items[item].toks[p->col];
    return p->by_empty ? (t->flags & LF_PTOK_EMPTY) != 0 : t->shape;
}

static int cmp_by_col(const void *a, const void *b, void *arg)
{
    const part *p = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    uint64_t sx = split_key(p, x), sy = split_key(p, y);
    if (sx != sy)
        return sx < sy ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int push(part *p, size_t start, size_t len)
{
    if (p->nstack == p->capstack) {
        size_t cap = p->capstack ? p->capstack * 2 : 64;
        segment *ns = lf_realloc(p->stack, cap * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        p->stack = ns;
        p->capstack = cap;
    }
    p->stack[p->nstack++] = (segment){start, len};
    return 0;
}

/* A group's skeleton: its constant words, column by column (a column where it varies or holds a
 * parameter counts as free). Groups with one skeleton differ only where they hold parameters. */
static uint64_t skeleton(const part *p, const segment *s)
{
    uint64_t key = 0x736b656cULL;
    for (uint32_t j = 0; j < p->ntok; j++) {
        const lf_ptok *first = &p->items[p->idx[s->start]].toks[j];
        bool same = !(first->flags & LF_PTOK_WILD);
        for (size_t i = 1; i < s->len && same; i++)
            same = p->items[p->idx[s->start + i]].toks[j].hash == first->hash;
        key = (key ^ (same ? first->hash : 0)) * 0x100000001b3ULL;
    }
    return key;
}

typedef struct group_key {
    uint64_t key;
    size_t start, len; /* its items in idx */
} group_key;

static int cmp_key(const void *a, const void *b)
{
    const group_key *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* The partition goes top down, so a group is split on a column chosen among other messages, where
 * it may be a parameter: "fileName is [<*>]-io80211Family-<*>.pcapng" and "... -CCIOReporter-<*>.xml"
 * part when the column is split for the segment's other messages. Groups with one skeleton are
 * joined again when the rules, given their items alone, would not split them: raw[] then names one
 * of them for all. 0 or -ENOMEM. */
static int rejoin(part *p, const lf_partition_rules *r, uint32_t *raw, size_t n, size_t nraw)
{
    if (nraw < 2)
        return 0;
    size_t *count = lf_calloc(nraw + 1, sizeof *count);
    group_key *g = lf_malloc(nraw * sizeof *g);
    size_t *by_group = lf_malloc(n * sizeof *by_group);
    uint32_t *to = lf_malloc(nraw * sizeof *to);
    int rc = -ENOMEM;
    if (!count || !g || !by_group || !to)
        goto out;
    /* the items ordered by group (a counting sort), so that each group is contiguous */
    for (size_t i = 0; i < n; i++)
        count[raw[i] + 1]++;
    for (size_t k = 0; k < nraw; k++)
        count[k + 1] += count[k];
    for (size_t k = 0; k < nraw; k++)
        g[k] = (group_key){0, count[k], count[k + 1] - count[k]};
    for (size_t i = 0; i < n; i++)
        by_group[count[raw[i]]++] = i;
    memcpy(p->idx, by_group, n * sizeof *by_group);
    for (size_t k = 0; k < nraw; k++) {
        g[k].key = skeleton(p, &(segment){g[k].start, g[k].len});
        to[k] = (uint32_t)k;
    }
    qsort(g, nraw, sizeof *g, cmp_key);
    /* each run of groups with one skeleton, laid out contiguously in idx for the rules to judge */
    size_t at = 0;
    for (size_t a = 0; a < nraw;) {
        size_t e = a + 1;
        while (e < nraw && g[e].key == g[a].key)
            e++;
        size_t start = at;
        for (size_t k = a; k < e; k++) {
            memcpy(p->idx + at, by_group + g[k].start, g[k].len * sizeof *by_group);
            at += g[k].len;
        }
        if (e - a > 1 && !choose(p, &(segment){start, at - start}, r).found) {
            uint32_t into = raw[p->idx[start]];
            for (size_t i = start; i < at; i++)
                to[raw[p->idx[i]]] = into;
        }
        a = e;
    }
    for (size_t i = 0; i < n; i++)
        raw[i] = to[raw[i]];
    rc = 0;
out:
    lf_free(count);
    lf_free(g);
    lf_free(by_group);
    lf_free(to);
    return rc;
}

int lf_partition(const lf_pitem *items, size_t n, uint32_t ntok, const lf_partition_rules *rules, uint32_t *group,
                 size_t *ngroups)
{
    *ngroups = 0;
    if (n == 0)
        return 0;
    part p = {.items = items, .ntok = ntok};
    p.idx = lf_malloc(n * sizeof *p.idx);
    p.shapes = lf_malloc(n * sizeof *p.shapes);
    uint32_t *raw = lf_malloc(n * sizeof *raw);
    int rc = -ENOMEM;
    if (!p.idx || !p.shapes || !raw)
        goto out;
    for (size_t i = 0; i < n; i++)
        p.idx[i] = i;
    if ((rc = push(&p, 0, n)) < 0)
        goto out;
    size_t nraw = 0;
    while (p.nstack) {
        segment s = p.stack[--p.nstack];
        column_choice c = s.len > 1 ? choose(&p, &s, rules) : (column_choice){0};
        if (!c.found) {
            for (size_t i = 0; i < s.len; i++)
                raw[p.idx[s.start + i]] = (uint32_t)nraw;
            nraw++;
            continue;
        }
        p.col = c.col;
        p.by_empty = c.by_empty;
        qsort_r(p.idx + s.start, s.len, sizeof *p.idx, cmp_by_col, &p);
        size_t a = 0;
        for (size_t i = 1; i <= s.len; i++) {
            if (i == s.len || split_key(&p, p.idx[s.start + i]) != split_key(&p, p.idx[s.start + a])) {
                if ((rc = push(&p, s.start + a, i - a)) < 0)
                    goto out;
                a = i;
            }
        }
    }
    if ((rc = rejoin(&p, rules, raw, n, nraw)) < 0)
        goto out;
    /* number the groups in the order of their first items (p.shapes is free now: raw group -> number) */
    uint64_t *number = p.shapes;
    for (size_t g = 0; g < nraw; g++)
        number[g] = UINT64_MAX;
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (number[raw[i]] == UINT64_MAX)
            number[raw[i]] = ng++;
        group[i] = (uint32_t)number[raw[i]];
    }
    *ngroups = ng;
    rc = 0;
out:
    lf_free(p.idx);
    lf_free(p.shapes);
    lf_free(p.stack);
    lf_free(raw);
    return rc;
}
