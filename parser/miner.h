/* The template miner: clusters the messages of a log type into templates ("Connection from <*>
 * closed"), written for logferry (docs/parsing.md explains the rules and how they were chosen).
 *
 * It works on batches, not on single lines: a batch is a session, or a slice of a very large one.
 * Messages (already tokenized by tokenize.h) are added to the current batch, which keeps each
 * distinct token sequence once with its count; lf_miner_mine() then decides, for the batch as a
 * whole, which template each sequence belongs to:
 *   1. a sequence that an existing template accepts takes it;
 *   2. the other sequences of each token count are partitioned together with the existing
 *      templates of that count, top down: while a group keeps too few constant words, it is split on
 *      the column whose values look most like alternatives of an event (fewest distinct values);
 *      once its template keeps enough constant words, a column with a few word values still splits
 *      (opened/closed, DMA/Normal/HighMem: split_values) and a column with more becomes a parameter
 *      (user names); booleans and "root" are words here but shown as "<*>" in the text;
 *   3. templates with the same constant words in the same order but a different number of
 *      parameter tokens are one event type whose value is printed as a varying number of tokens
 *      ("705 bytes" and "1398 bytes (1.36 KB)").
 * A group that contains one existing template generalises it; one that contains several merges them;
 * one that contains none starts a template.
 *
 * Ids: a template's id is fixed when it is born (the first 8 bytes of BLAKE2b over
 * "logferry-template\0" type "\0" its first text, booleans and "root" as they are), and stays while
 * its text generalises. When templates merge, the oldest keeps its id and the others become its
 * aliases: lf_miner_resolve() follows them, and the caller records them (MySQL
 * templates.canonical_id) so that every stored id resolves to the one of its event type.
 *
 * Bounded memory: at most max_templates templates (the least recently used one is evicted past it)
 * and, per batch, at most max_batch distinct sequences (lf_miner_add says when the batch is full).
 * Results depend only on the input, its order and how it was cut into batches. */
#ifndef LF_MINER_H
#define LF_MINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenize.h"

typedef struct lf_miner_config {
    double word_share;    /* constant words a template must keep before a column may become a parameter; 0.6 */
    unsigned split_values; /* ... after which a column of at most this many word values still splits; 3 */
    bool split_capitals;   /* ... and one of words in capitals; true */
    size_t max_templates; /* LRU cap, default 100000; 0 means unbounded */
    size_t max_batch;     /* distinct sequences in one batch, default 1000000 */
} lf_miner_config;

typedef struct lf_miner lf_miner;
typedef struct lf_template lf_template;

/* A merge: events stored with id `from` belong to the template whose id is `to`. */
typedef struct lf_miner_alias {
    uint64_t from, to;
    bool stored; /* known to the shared store (restored, or committed since) */
} lf_miner_alias;

void lf_miner_config_default(lf_miner_config *cfg);

/* 0, LF_ECONFIG (bad configuration) or -ENOMEM. type_name is copied. */
int lf_miner_new(const lf_miner_config *cfg, const char *type_name, lf_miner **out);
void lf_miner_free(lf_miner *m);

/* Adds one message (tokens from lf_tokenizer_run: toks index into text) to the current batch.
 * Returns its slot (>= 0; equal sequences share a slot), LF_ELIMIT when the batch is full (mine
 * and reset it, then add again) or -ENOMEM. The tokens are copied. */
int lf_miner_add(lf_miner *m, const lf_token *toks, int ntoks, const char *text);

/* Clusters the current batch. 0 or -ENOMEM (the miner is then unchanged, apart from templates that
 * earlier batches made). Afterwards lf_miner_result() gives each slot's template. */
int lf_miner_mine(lf_miner *m);

/* The template of a slot of the mined batch, valid until the next lf_miner_reset. */
lf_template *lf_miner_result(const lf_miner *m, int slot);

/* Forgets the batch (its slots and results). Templates stay. */
void lf_miner_reset(lf_miner *m);

/* Number of slots in the current batch. */
size_t lf_miner_batch_size(const lf_miner *m);

/* The template text with "<*>" for parameters (NUL-terminated, valid while the template lives and
 * until it changes), or NULL on -ENOMEM. */
const char *lf_template_text(lf_template *t, size_t *len);
uint64_t lf_template_id(const lf_template *t);
/* Messages the template took (with those of the templates merged into it). */
uint64_t lf_template_count(const lf_template *t);

/* Follows aliases from an id to the id of the template it now belongs to (itself when none). */
uint64_t lf_miner_resolve(const lf_miner *m, uint64_t id);

/* Every alias made so far, in the order made (valid until the next add, mine or restore). */
const lf_miner_alias *lf_miner_aliases(const lf_miner *m, size_t *n);

/* Changes since the last lf_miner_commit(), for a caller that shares templates with other parsers
 * (MySQL): tpl is called for each template born, generalised or merged into that still lives, alias
 * for each alias not stored yet. Stops at and returns a callback's first non-zero value. */
int lf_miner_foreach_changed(lf_miner *m, int (*tpl)(lf_template *t, void *arg),
                             int (*alias)(const lf_miner_alias *a, void *arg), void *arg);
/* The changes are stored; templates born since the last commit take `order` as their place in the
 * store's order (older templates keep their ids when templates merge; see lf_miner_restore). */
void lf_miner_commit(lf_miner *m, uint64_t order);
/* There are changes not committed. */
bool lf_miner_dirty(const lf_miner *m);
/* The template's place in the shared store's order (UINT64_MAX: not stored). */
uint64_t lf_template_order(const lf_template *t);

/* The template's structure, the form persisted and shared: its tokens separated by single spaces,
 * where an empty token (two spaces, or a space at either end) is a gap of varying length. */
const char *lf_template_structure(lf_template *t, size_t *len);

/* Adds (or updates) a template from its persisted or shared form: id, structure, count, and its
 * place in the store's order (0 when the store keeps none: restore order then decides). A template
 * with this id takes the structure unless it has changes of its own not committed yet; a template
 * with the same structure and another id is merged with it, the one earlier in the store's order
 * (else the one restored first) keeping its id. 0, LF_EFORMAT (a bad structure) or -ENOMEM. */
int lf_miner_restore(lf_miner *m, uint64_t id, const char *structure, size_t len, uint64_t count, uint64_t order);
/* Records that events stored with `from` belong to `to`, as the store says: when both templates are
 * here they are merged into `to`. 0, LF_EFORMAT or -ENOMEM. */
int lf_miner_restore_alias(lf_miner *m, uint64_t from, uint64_t to);

/* Calls cb for every template in creation order; stops at and returns cb's first non-zero value. */
int lf_miner_foreach(lf_miner *m, int (*cb)(lf_template *t, void *arg), void *arg);

size_t lf_miner_template_count(const lf_miner *m);
uint64_t lf_miner_evictions(const lf_miner *m);
/* Bytes the miner holds (templates, indexes and the current batch). */
size_t lf_miner_memory(const lf_miner *m);
const char *lf_miner_type_name(const lf_miner *m);

/* The id a template born with this text gets (BLAKE2b, see above). */
uint64_t lf_miner_template_id(const char *type_name, const char *text, size_t len);

#endif
