/* Fuzz target: message tokenizing and template mining. Each input line is a message; the first
 * byte chooses small caps so that eviction and leaf limits are exercised constantly. For every
 * message the template it joined must cover it (parameter extraction succeeds with one value per
 * "<*>"), the id must be the hash of the template, the caps must hold, and a second miner restored
 * from the first one's templates must give the same ids. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drain.h"
#include "lf_error.h"
#include "template_params.h"
#include "tokenize.h"

static size_t count_wild(const char *t, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i + 3 <= n; i++)
        if (t[i] == '<' && t[i + 1] == '*' && t[i + 2] == '>')
            k++, i += 2;
    return k;
}

static int restore_one(lf_drain_cluster *c, void *arg)
{
    lf_drain *r = arg;
    size_t len;
    const char *t = lf_drain_cluster_template(c, &len);
    if (!t || lf_drain_restore(r, t, len, lf_drain_cluster_size(c)) != 0)
        abort();
    return 0;
}

static int compare_one(lf_drain_cluster *c, void *arg)
{
    uint64_t **ids = arg;
    if (lf_drain_cluster_id(c) != **ids)
        abort();
    (*ids)++;
    return 0;
}

static int collect_id(lf_drain_cluster *c, void *arg)
{
    uint64_t **ids = arg;
    **ids = lf_drain_cluster_id(c);
    (*ids)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    lf_drain_config cfg;
    lf_drain_config_default(&cfg);
    cfg.max_clusters = 1 + data[0] % 16;
    cfg.max_leaf_clusters = 1 + (data[0] >> 4) % 4;
    cfg.depth = 3 + data[0] % 3;
    cfg.max_children = 2 + data[0] % 5;
    lf_tokenizer *t = NULL;
    lf_drain *d = NULL, *r = NULL;
    if (lf_tokenizer_new(&t) != 0 || lf_drain_new(&cfg, "fuzz", &d) != 0)
        abort();
    const char *s = (const char *)data + 1;
    size_t n = size - 1, pos = 0;
    lf_param ps[LF_TOKEN_MAX];
    while (pos <= n) {
        const char *line = s + pos;
        const char *e = memchr(line, '\n', n - pos);
        size_t len = e ? (size_t)(e - line) : n - pos;
        const lf_token *toks;
        const char *text;
        int nt = lf_tokenizer_run(t, line, len, &toks, &text);
        if (nt < 0 || nt > LF_TOKEN_MAX)
            abort();
        lf_drain_cluster *c;
        if (lf_drain_add(d, toks, nt, text, &c) < 0)
            abort();
        size_t tl;
        const char *tm = lf_drain_cluster_template(c, &tl);
        if (!tm || lf_drain_cluster_id(c) != lf_drain_template_id("fuzz", tm, tl))
            abort();
        int np = lf_template_params(tm, tl, line, len, ps, LF_TOKEN_MAX);
        if (np < 0 || (size_t)np != count_wild(tm, tl))
            abort();
        for (int i = 0; i < np; i++)
            if (ps[i].len == 0 || (size_t)ps[i].off + ps[i].len > len)
                abort();
        if (lf_drain_cluster_count(d) > cfg.max_clusters)
            abort();
        if (!e)
            break;
        pos += len + 1;
    }
    /* restore into a fresh miner: same templates, same ids, same order */
    size_t nc = lf_drain_cluster_count(d);
    uint64_t *ids = malloc((nc + 1) * sizeof *ids), *p = ids;
    lf_drain_foreach(d, collect_id, &p);
    lf_drain_config rc = cfg;
    rc.max_clusters = 0;
    rc.max_leaf_clusters = 1000;
    if (lf_drain_new(&rc, "fuzz", &r) != 0)
        abort();
    lf_drain_foreach(d, restore_one, r);
    if (lf_drain_cluster_count(r) != nc)
        abort();
    p = ids;
    lf_drain_foreach(r, compare_one, &p);
    free(ids);
    lf_drain_free(r);
    lf_drain_free(d);
    lf_tokenizer_free(t);
    return 0;
}
