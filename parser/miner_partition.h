/* The miner's batch clustering step: partitions sequences of one token count into groups that are
 * one event type each (see miner.h for where it sits). Pure: works on the tokens' hashes and classes. */
#ifndef LF_MINER_PARTITION_H
#define LF_MINER_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LF_PTOK_WILD 1u /* the token holds "<*>" */
#define LF_PTOK_BARE 2u /* and nothing but punctuation around it */
#define LF_PTOK_CAPS 16u /* a word in capitals (an enumeration's value: GET, RUNNING, HTTPS) */
#define LF_PTOK_EMPTY 32u /* a key with no value: "rhost=" */
#define LF_PTOK_PAST 64u /* a past participle: "Paused", "closed" */

typedef struct lf_ptok {
    uint64_t hash;  /* the token's bytes */
    uint64_t shape; /* lf_ttok_shape */
    uint32_t flags;
} lf_ptok;

typedef struct lf_pitem {
    const lf_ptok *toks; /* ntok tokens */
    uint64_t count;      /* messages it stands for */
} lf_pitem;

/* The rules' settings (miner.h's configuration; the defaults are meant to be left alone). */
typedef struct lf_partition_rules {
    double word_share; /* constant words a group keeps before its columns may be parameters */
    unsigned max_values; /* then a column of at most this many word values still splits (0, 1: none) */
    bool capitals;     /* and so does a column of words in capitals */
} lf_partition_rules;

/* Partitions items[0..n), all of ntok tokens (ntok >= 1), writing each item's group number to
 * group[] (0, 1, ... in order of each group's first item) and their number to *ngroups.
 *
 * A column is constant when all items hold the same token there, a word column unless every item
 * holds a bare parameter there, and mixed when its tokens have at least two shapes. A group is split
 * on one mixed column (its items are grouped by their shape there) and each part again, as long as:
 *   - its constant words are fewer than word_share of its word columns: on the mixed column with
 *     the fewest shapes, columns without "<*>" first (a message type differs from another in words);
 *   - or else on a column without "<*>" that takes at most max_values shapes (opened/closed is two
 *     events, DMA/Normal/HighMem three; more values in an otherwise constant message are a
 *     parameter: user names), on one where every value holds "<*>" and that takes exactly two
 *     shapes ("(uid=<*>)"/"LOGIN(uid=<*>)"), or on one whose values are all words in capitals
 *     (GET/POST/DELETE, LOOKING/FOLLOWING/LEADING: the values of an enumeration the program defines),
 *     or on one whose values are all past participles (Started/Stopped/Paused: outcomes and states);
 *   - and first of all, on a column where some items hold a key without its value ("rhost=") and
 *     others hold a value there: the items are then grouped by which of the two they hold.
 * Going top down, a group may be split on a column chosen for the segment's other messages; so at
 * the end, groups with the same constant words in the same places (differing only where they hold
 * parameters) are joined again when these rules, given their items alone, would not split them.
 * 0 or -ENOMEM. */
int lf_partition(const lf_pitem *items, size_t n, uint32_t ntok, const lf_partition_rules *rules, uint32_t *group,
                 size_t *ngroups);

#endif
