/* Online template miner of the Drain family (He et al., ICWS 2017), written for logferry.
 * Messages (already tokenized by tokenize.h) descend a fixed-depth prefix tree: first by token
 * count, then by their first depth-2 tokens (tokens holding a digit or "<*>" take the "<*>" branch,
 * and a node with max_children children sends new tokens there too). A leaf keeps clusters; the
 * message joins the most similar one (share of equal, non-wildcard positions; ties go to the one
 * with more wildcards, then the older one) if the similarity reaches sim_threshold, and positions
 * that differ become "<*>". Otherwise it starts a new cluster.
 * Memory is bounded: past max_clusters the least recently used cluster is evicted, and tree nodes
 * left without clusters are freed. Time per message is bounded too: a leaf keeps at most
 * max_leaf_clusters clusters (its least recently used one makes room). Results depend only on the input order and the configuration.
 * Template ids: the first 8 bytes of BLAKE2b("logferry-template\0" type "\0" template), so that
 * every parser process computes the same id for the same template of the same log type. */
#ifndef LF_DRAIN_H
#define LF_DRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "tokenize.h"

typedef struct lf_drain_config {
    double sim_threshold;  /* default 0.7 */
    unsigned depth;        /* tree depth counting root and leaf, 3..16, default 4 */
    unsigned max_children; /* per internal node, default 100 */
    size_t max_clusters;   /* LRU cap, default 100000; 0 means unbounded */
    unsigned max_leaf_clusters; /* clusters per leaf (bounds the work per message), default 256 */
} lf_drain_config;

typedef struct lf_drain lf_drain;
typedef struct lf_drain_cluster lf_drain_cluster;

void lf_drain_config_default(lf_drain_config *cfg);

/* 0, LF_ECONFIG (bad configuration) or -ENOMEM. type_name is copied. */
int lf_drain_new(const lf_drain_config *cfg, const char *type_name, lf_drain **out);
void lf_drain_free(lf_drain *d);

/* Adds one message's tokens (from lf_tokenizer_run: toks index into text). *out is the cluster
 * the message joined; it stays valid until the next add or restore (which may evict it). Returns
 * 1 when a cluster was created, 0 when an existing one matched, -ENOMEM. */
int lf_drain_add(lf_drain *d, const lf_token *toks, int ntoks, const char *text, lf_drain_cluster **out);

/* Adds a cluster with this template (tokens separated by single spaces), as persisted. */
int lf_drain_restore(lf_drain *d, const char *tmpl, size_t len, uint64_t count);

/* The template text with "<*>" for parameters (cached; NUL-terminated), or NULL on -ENOMEM. */
const char *lf_drain_cluster_template(lf_drain_cluster *c, size_t *len);
/* The stable template id (computed with the template). */
uint64_t lf_drain_cluster_id(lf_drain_cluster *c);
/* Creation number, unique within this miner (restored clusters get new ones, in file order). */
uint64_t lf_drain_cluster_serial(const lf_drain_cluster *c);
uint64_t lf_drain_cluster_size(const lf_drain_cluster *c);

size_t lf_drain_cluster_count(const lf_drain *d);
uint64_t lf_drain_evictions(const lf_drain *d);
/* Bytes the miner holds (clusters, templates, tree). */
size_t lf_drain_memory(const lf_drain *d);
const char *lf_drain_type_name(const lf_drain *d);

/* Calls cb for every cluster in creation order; stops at and returns cb's first non-zero value. */
int lf_drain_foreach(lf_drain *d, int (*cb)(lf_drain_cluster *c, void *arg), void *arg);

/* The id for a template text of a log type (what lf_drain_cluster_id returns for it). */
uint64_t lf_drain_template_id(const char *type_name, const char *tmpl, size_t len);

#endif
