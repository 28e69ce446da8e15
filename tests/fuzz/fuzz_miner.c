/* Fuzz target: message tokenizing and template mining. Each input line is a message; the first
 * byte chooses small caps (templates, batch) and how many lines go into one batch, so that eviction,
 * full batches and merges across batches happen constantly. For every message: its template lives,
 * its text matches the message (parameter extraction gives one in-bounds value per "<*>", unless
 * the template has a gap of varying length, which may stand for nothing), and its id resolves to
 * itself; the caps hold. At the end the templates go through the file store into a fresh miner, which
 * must hold the same templates under the same ids and resolve every alias the same way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lf_error.h"
#include "miner.h"
#include "template_params.h"
#include "template_store.h"
#include "tokenize.h"

static size_t count_wild(const char *t, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i + 3 <= n; i++)
        if (t[i] == '<' && t[i + 1] == '*' && t[i + 2] == '>')
            k++, i += 2;
    return k;
}

typedef struct span {
    const char *s;
    size_t len;
    int slot;
} span;

static void check_batch(lf_miner *m, const span *lines, size_t n, const lf_miner_config *cfg)
{
    lf_param ps[LF_TOKEN_MAX];
    if (lf_miner_mine(m) != 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        lf_template *t = lf_miner_result(m, lines[i].slot);
        if (!t)
            abort();
        size_t tl, sl;
        const char *tm = lf_template_text(t, &tl);
        const char *st = lf_template_structure(t, &sl);
        if (!tm || !st || lf_miner_resolve(m, lf_template_id(t)) != lf_template_id(t))
            abort();
        bool gapped = (sl > 0 && (st[0] == ' ' || st[sl - 1] == ' ')) || memmem(st, sl, "  ", 2) != NULL;
        int np = lf_template_params(tm, tl, lines[i].s, lines[i].len, ps, LF_TOKEN_MAX);
        if (np < 0 && !gapped) {
            if (getenv("LF_FUZZ_KEEP"))
                fprintf(stderr, "template [%.*s] structure [%.*s] message [%.*s]\n", (int)tl, tm, (int)sl, st,
                        (int)lines[i].len, lines[i].s);
            abort();
        }
        if (np >= 0 && (size_t)np != count_wild(tm, tl) && (size_t)np != LF_TOKEN_MAX)
            abort();
        for (int k = 0; k < np; k++) /* a value inside a token may be empty: "()" for "(<*>)" */
            if ((size_t)ps[k].off + ps[k].len > lines[i].len)
                abort();
    }
    /* templates used by this batch may exceed the cap until the next batch evicts */
    if (cfg->max_templates && lf_miner_template_count(m) > cfg->max_templates + n)
        abort();
    lf_miner_reset(m);
}

typedef struct compare_state {
    lf_miner *other;
} compare_state;

static int compare_one(lf_template *t, void *arg)
{
    compare_state *c = arg;
    size_t l;
    const char *s = lf_template_structure(t, &l);
    /* the restored miner holds the same structure under the same id */
    if (lf_miner_restore(c->other, lf_template_id(t), s, l, lf_template_count(t), 0) != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    lf_miner_config cfg;
    lf_miner_config_default(&cfg);
    cfg.max_templates = 1 + data[0] % 16;
    cfg.max_batch = 1 + (data[0] >> 4) % 8;
    size_t per_batch = 1 + (data[0] >> 2) % 6;
    lf_tokenizer *t = NULL;
    lf_miner *m = NULL;
    if (lf_tokenizer_new(&t) != 0 || lf_miner_new(&cfg, "fuzz", &m) != 0)
        abort();
    const char *s = (const char *)data + 1;
    size_t n = size - 1, pos = 0, nb = 0;
    span batch[64];
    while (pos <= n) {
        const char *line = s + pos;
        const char *e = memchr(line, '\n', n - pos);
        size_t len = e ? (size_t)(e - line) : n - pos;
        const lf_token *toks;
        const char *text;
        int nt = lf_tokenizer_run(t, line, len, &toks, &text);
        if (nt < 0 || nt > LF_TOKEN_MAX)
            abort();
        for (int k = 0; k < nt; k++) /* a token never holds whitespace (a quoted value is one "<*>") */
            for (uint32_t b = 0; b < toks[k].len; b++)
                if (text[toks[k].off + b] == ' ' || (text[toks[k].off + b] >= '\t' && text[toks[k].off + b] <= '\r'))
                    abort();
        int slot = lf_miner_add(m, toks, nt, text);
        if (slot == LF_ELIMIT) {
            check_batch(m, batch, nb, &cfg);
            nb = 0;
            slot = lf_miner_add(m, toks, nt, text);
        }
        if (slot < 0)
            abort();
        batch[nb++] = (span){line, len, slot};
        if (nb == per_batch || nb == 64) {
            check_batch(m, batch, nb, &cfg);
            nb = 0;
        }
        if (!e)
            break;
        pos += len + 1;
    }
    if (nb)
        check_batch(m, batch, nb, &cfg);
    /* through the file store into a fresh miner */
    char path[] = "/tmp/lf-fuzz-miner-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    close(fd);
    lf_miner *r = NULL;
    if (lf_template_store_save(m, path) != 0 || lf_miner_new(NULL, "fuzz", &r) != 0)
        abort();
    if (lf_template_store_load(r, path) != 0) {
        if (getenv("LF_FUZZ_KEEP"))
            fprintf(stderr, "kept %s\n", path);
        abort();
    }
    unlink(path);
    if (lf_miner_template_count(r) != lf_miner_template_count(m))
        abort();
    compare_state c = {r};
    lf_miner_foreach(m, compare_one, &c);
    if (lf_miner_template_count(r) != lf_miner_template_count(m))
        abort();
    size_t na;
    const lf_miner_alias *al = lf_miner_aliases(m, &na);
    for (size_t i = 0; i < na; i++)
        if (lf_miner_resolve(r, al[i].from) != lf_miner_resolve(m, al[i].from))
            abort();
    lf_miner_free(r);
    lf_miner_free(m);
    lf_tokenizer_free(t);
    return 0;
}
