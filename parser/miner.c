/* The template miner (see miner.h for what it does and docs/parsing.md for why). */
#include "miner.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "miner_partition.h"
#include "parse_hash.h"
#include "template_token.h"
#include "u64map.h"

#define TOK_VAR 4u          /* lf_ptok.flags: a gap of varying length (in a structure only) */
#define TOK_UNIT 8u         /* lf_ptok.flags: a short word right after a bare parameter ("<*> KB)") */
#define MIN_ANCHORS 2       /* constant words two templates must share to be one across token counts */
#define MEMO_SLOTS 65536    /* sequence -> template cache, kept across batches */
#define VAR_STEPS 100000    /* bound on the matching work for one sequence against a gapped template */

enum { L_LEN, L_FIRST, L_ANCHOR, L_COUNT }; /* the indexes a template is listed in */

typedef struct link {
    lf_template *prev, *next;
    uint64_t key; /* 0: not listed */
} link;

struct lf_template {
    lf_miner *owner;
    uint64_t id, serial, count, last_used;
    uint64_t order;         /* place in the shared store (lf_miner_commit); UINT64_MAX: not stored yet */
    lf_template *merged_into; /* set when merged during a mine; freed at its end */
    uint32_t ntok, nconst, nanchors;
    bool dirty, has_var, listed;
    lf_ptok *tok;
    uint32_t *off, *len; /* token bytes in arena */
    char *arena;
    size_t arena_len, alloc;
    char *text, *strct; /* cached renderings, NULL when stale */
    size_t text_len, strct_len;
    link links[L_COUNT];
    lf_template *all_prev, *all_next, *lru_prev, *lru_next;
    lf_template *grave_next;
};

typedef struct bseq {
    uint64_t hash, count;
    uint32_t ntok, tok0;
    lf_template *tpl;
} bseq;

typedef struct batch {
    bseq *seqs;
    size_t nseq, capseq;
    lf_ptok *tok;
    uint32_t *toff, *tlen;
    size_t ntok, captok;
    char *text;
    size_t textlen, textcap;
    lf_u64map index; /* sequence hash -> slot + 1 */
    bool mined;
} batch;

typedef struct memo_entry {
    uint64_t key;
    lf_template *t;
} memo_entry;

struct lf_miner {
    lf_miner_config cfg;
    char *type;
    lf_u64map ids;             /* template id -> template */
    lf_u64map heads[L_COUNT];  /* index key -> first template listed under it */
    lf_template *all_head, *all_tail, *lru_head, *lru_tail, *grave;
    size_t ntemplates;
    uint64_t next_serial, evictions, clock;
    size_t bytes;
    lf_u64map alias_map; /* from -> to */
    lf_miner_alias *aliases;
    size_t naliases, capaliases;
    memo_entry *memo;
    batch b;
    bool dirty;
};

void lf_miner_config_default(lf_miner_config *cfg)
{
    cfg->word_share = 0.6;
    cfg->split_values = 3;
    cfg->split_capitals = true;
    cfg->max_templates = 100000;
    cfg->max_batch = 1000000;
}

int lf_miner_new(const lf_miner_config *cfg, const char *type_name, lf_miner **out)
{
    *out = NULL;
    lf_miner_config c;
    if (cfg)
        c = *cfg;
    else
        lf_miner_config_default(&c);
    if (!(c.word_share >= 0.0 && c.word_share <= 1.0) || c.max_batch == 0 || c.max_batch > UINT32_MAX / 2)
        return LF_ECONFIG;
    if (sodium_init() < 0)
        return -ENOMEM;
    lf_miner *m = lf_calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->cfg = c;
    m->type = lf_strdup(type_name ? type_name : "");
    m->memo = lf_calloc(MEMO_SLOTS, sizeof *m->memo);
    if (!m->type || !m->memo) {
        lf_miner_free(m);
        return -ENOMEM;
    }
    m->bytes = sizeof *m + MEMO_SLOTS * sizeof *m->memo;
    *out = m;
    return 0;
}

static void template_release(lf_template *t)
{
    lf_free(t->text);
    lf_free(t->strct);
    lf_free(t->arena);
    lf_free(t->tok);
    lf_free(t->off);
    lf_free(t);
}

static void batch_free(batch *b)
{
    lf_free(b->seqs);
    lf_free(b->tok);
    lf_free(b->toff);
    lf_free(b->tlen);
    lf_free(b->text);
    lf_u64map_free(&b->index);
}

static void free_graveyard(lf_miner *m)
{
    while (m->grave) {
        lf_template *t = m->grave;
        m->grave = t->grave_next;
        template_release(t);
    }
}

void lf_miner_free(lf_miner *m)
{
    if (!m)
        return;
    for (lf_template *t = m->all_head; t;) {
        lf_template *n = t->all_next;
        template_release(t);
        t = n;
    }
    free_graveyard(m);
    lf_u64map_free(&m->ids);
    for (int i = 0; i < L_COUNT; i++)
        lf_u64map_free(&m->heads[i]);
    lf_u64map_free(&m->alias_map);
    lf_free(m->aliases);
    lf_free(m->memo);
    batch_free(&m->b);
    lf_free(m->type);
    lf_free(m);
}

uint64_t lf_miner_template_id(const char *type_name, const char *text, size_t len)
{
    crypto_generichash_state st;
    unsigned char out[crypto_generichash_BYTES_MIN];
    static const char tag[] = "logferry-template";
    crypto_generichash_init(&st, NULL, 0, sizeof out);
    crypto_generichash_update(&st, (const unsigned char *)tag, sizeof tag);
    crypto_generichash_update(&st, (const unsigned char *)type_name, strlen(type_name) + 1);
    crypto_generichash_update(&st, (const unsigned char *)text, len);
    crypto_generichash_final(&st, out, sizeof out);
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = (id << 8) | out[i];
    return id;
}

/* ---- indexes: intrusive lists whose heads live in a hash map ---- */

static int list_add(lf_miner *m, lf_template *t, int which, uint64_t key)
{
    link *l = &t->links[which];
    uint64_t head = 0;
    (void)lf_u64map_get(&m->heads[which], key, &head);
    int rc = lf_u64map_put(&m->heads[which], key, (uint64_t)(uintptr_t)t);
    if (rc < 0)
        return rc;
    l->key = key;
    l->prev = NULL;
    l->next = (lf_template *)(uintptr_t)head;
    if (l->next)
        l->next->links[which].prev = t;
    return 0;
}

static void list_del(lf_miner *m, lf_template *t, int which)
{
    link *l = &t->links[which];
    if (!l->key)
        return;
    if (l->prev)
        l->prev->links[which].next = l->next;
    else if (l->next)
        (void)lf_u64map_put(&m->heads[which], l->key, (uint64_t)(uintptr_t)l->next); /* the slot exists */
    else
        lf_u64map_del(&m->heads[which], l->key);
    if (l->next)
        l->next->links[which].prev = l->prev;
    l->prev = l->next = NULL;
    l->key = 0;
}

static lf_template *list_head(const lf_miner *m, int which, uint64_t key)
{
    uint64_t v = 0;
    return lf_u64map_get(&m->heads[which], key, &v) ? (lf_template *)(uintptr_t)v : NULL;
}

#define VAR_KEY 0x76617269616e74ULL /* the length index's list of gapped templates */

static uint64_t len_key(uint32_t ntok)
{
    return lf_phash_combine(0x6c656e, ntok) | 1;
}

/* Matching index: token count and the first two tokens, each either exact or "holds <*>" (0). */
static uint64_t first_key(uint32_t ntok, uint64_t h0, uint64_t h1)
{
    return lf_phash_combine(lf_phash_combine(len_key(ntok), h0), h1) | 1;
}

static uint64_t prefix_hash(const lf_ptok *k, uint32_t ntok, uint32_t i)
{
    return i < ntok && !(k[i].flags & LF_PTOK_WILD) ? k[i].hash : 0;
}

/* The constant words that identify an event type across token counts: not parameters, and not the
 * unit of one ("(<*> KB)": the unit is part of the value, printed or not). */
static bool is_anchor(const lf_ptok *k)
{
    return !(k->flags & (TOK_VAR | LF_PTOK_BARE | TOK_UNIT));
}

/* Up to three letters with closing punctuation after them ("KB)", "ms,"). */
static bool unit_word(const char *s, size_t n)
{
    size_t letters = 0;
    while (letters < n && ((s[letters] | 32) >= 'a' && (s[letters] | 32) <= 'z'))
        letters++;
    if (letters == 0 || letters > 3)
        return false;
    for (size_t i = letters; i < n; i++)
        if (!strchr(")],;:.", s[i]))
            return false;
    return true;
}

static uint64_t anchor_key(const lf_template *t)
{
    uint64_t h = 0x616e63;
    for (uint32_t i = 0; i < t->ntok; i++)
        if (is_anchor(&t->tok[i]))
            h = lf_phash_combine(h, t->tok[i].hash);
    return h | 1;
}

/* Lists t under its keys: by token count (gapped ones apart), by token count and first token (for
 * matching), and by its constant words (for merging across token counts). */
static int index_add(lf_miner *m, lf_template *t)
{
    int rc = list_add(m, t, L_LEN, t->has_var ? VAR_KEY : len_key(t->ntok));
    if (rc == 0 && !t->has_var)
        rc = list_add(m, t, L_FIRST,
                      first_key(t->ntok, prefix_hash(t->tok, t->ntok, 0), prefix_hash(t->tok, t->ntok, 1)));
    if (rc == 0 && t->nanchors >= MIN_ANCHORS)
        rc = list_add(m, t, L_ANCHOR, anchor_key(t));
    t->listed = true;
    return rc;
}

static void index_del(lf_miner *m, lf_template *t)
{
    for (int i = 0; i < L_COUNT; i++)
        list_del(m, t, i);
    t->listed = false;
}

/* ---- templates ---- */

/* A token of a template being built: its bytes and class. */
typedef struct btok {
    const char *s;
    uint32_t len;
    lf_ptok k;
} btok;

static void classify(btok *n)
{
    n->k.hash = lf_token_hash(n->s, n->len);
    n->k.shape = lf_ttok_shape(n->s, n->len);
    n->k.flags = 0;
    if (lf_ttok_has_wild(n->s, n->len))
        n->k.flags |= LF_PTOK_WILD;
    if (lf_ttok_is_bare(n->s, n->len))
        n->k.flags |= LF_PTOK_BARE;
    if (lf_ttok_is_caps(n->s, n->len))
        n->k.flags |= LF_PTOK_CAPS;
    if (lf_ttok_is_empty_value(n->s, n->len))
        n->k.flags |= LF_PTOK_EMPTY;
    if (lf_ttok_is_past(n->s, n->len))
        n->k.flags |= LF_PTOK_PAST;
}

static const btok var_tok = {"", 0, {0x7661726761702e2eULL, 0x7661726761702e2eULL, TOK_VAR | LF_PTOK_WILD | LF_PTOK_BARE}};

/* Replaces t's tokens with toks (copied). The caller re-indexes. 0 or -ENOMEM (t unchanged). */
static int template_set_tokens(lf_miner *m, lf_template *t, const btok *toks, uint32_t n)
{
    size_t bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        bytes += toks[i].len;
    lf_ptok *k = lf_malloc((n ? n : 1) * sizeof *k);
    uint32_t *off = lf_malloc((n ? n : 1) * 2 * sizeof *off);
    char *a = lf_malloc(bytes + 1);
    if (!k || !off || !a) {
        lf_free(k);
        lf_free(off);
        lf_free(a);
        return -ENOMEM;
    }
    size_t p = 0;
    t->nconst = t->nanchors = 0;
    t->has_var = false;
    for (uint32_t i = 0; i < n; i++) {
        k[i] = toks[i].k;
        k[i].flags &= ~TOK_UNIT;
        if (i > 0 && (k[i - 1].flags & LF_PTOK_BARE) && !(k[i - 1].flags & TOK_VAR) &&
            unit_word(toks[i].s, toks[i].len))
            k[i].flags |= TOK_UNIT;
        off[i] = (uint32_t)p;
        off[n + i] = toks[i].len;
        memcpy(a + p, toks[i].s, toks[i].len);
        p += toks[i].len;
        t->nconst += !(k[i].flags & LF_PTOK_WILD);
        t->nanchors += is_anchor(&k[i]);
        t->has_var |= (k[i].flags & TOK_VAR) != 0;
    }
    a[p] = '\0';
    size_t alloc = sizeof *t + n * (sizeof *k + 2 * sizeof *off) + p + 1;
    m->bytes += alloc;
    m->bytes -= t->alloc;
    lf_free(t->tok);
    lf_free(t->off);
    lf_free(t->arena);
    t->tok = k;
    t->off = off;
    t->len = off + n;
    t->arena = a;
    t->arena_len = p;
    t->alloc = alloc;
    t->ntok = n;
    if (t->text) {
        m->bytes -= t->text_len + 1;
        lf_free(t->text);
        t->text = NULL;
    }
    if (t->strct) {
        m->bytes -= t->strct_len + 1;
        lf_free(t->strct);
        t->strct = NULL;
    }
    t->dirty = true;
    m->dirty = true;
    return 0;
}

static inline const char *tok_text(const lf_template *t, uint32_t i)
{
    return t->arena + t->off[i];
}

static void lru_unlink(lf_miner *m, lf_template *t)
{
    if (t->lru_prev)
        t->lru_prev->lru_next = t->lru_next;
    else
        m->lru_head = t->lru_next;
    if (t->lru_next)
        t->lru_next->lru_prev = t->lru_prev;
    else
        m->lru_tail = t->lru_prev;
    t->lru_prev = t->lru_next = NULL;
}

static void touch(lf_miner *m, lf_template *t)
{
    t->last_used = m->clock;
    if (m->lru_head == t)
        return;
    if (t->lru_prev || t->lru_next) /* listed (and not first); a new template is not yet */
        lru_unlink(m, t);
    t->lru_next = m->lru_head;
    if (m->lru_head)
        m->lru_head->lru_prev = t;
    else
        m->lru_tail = t;
    m->lru_head = t;
}

/* Takes t out of every list and map (not freed). */
static void template_unlink(lf_miner *m, lf_template *t)
{
    index_del(m, t);
    lru_unlink(m, t);
    lf_u64map_del(&m->ids, t->id);
    if (t->all_prev)
        t->all_prev->all_next = t->all_next;
    else
        m->all_head = t->all_next;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
    else
        m->all_tail = t->all_prev;
    m->ntemplates--;
    m->bytes -= t->alloc + (t->text ? t->text_len + 1 : 0) + (t->strct ? t->strct_len + 1 : 0);
}

/* A boolean or the superuser's name inside a constant token is shown as a parameter (Khan et al.'s BL
 * and US rules, as the corrected Loghub templates write them), while the template still takes only
 * messages with that value: "overlap:false" and "overlap:true" are two event types, both shown
 * "overlap:<*>"; "session opened for user root" shows "session opened for user <*>". */
static inline bool subtoken_delim(char c)
{
    unsigned char u = (unsigned char)c;
    return u < 0x80 && u != '_' && !((u | 32) >= 'a' && (u | 32) <= 'z') && !(u >= '0' && u <= '9');
}

/* Is s[i..e) of the token s[0..l) shown as a parameter? Booleans in any case; "root" in small
 * letters and not glued to a name by '-', '.', '/' or '@' ("root-ca.pem", "Root cause" stay). */
static bool shown_as_parameter(const char *s, size_t l, size_t i, size_t e)
{
    size_t n = e - i;
    if (n == 4 && memcmp(s + i, "root", 4) == 0)
        return !(i > 0 && memchr("-./@", s[i - 1], 4)) && !(e < l && memchr("-./@", s[e], 4));
    if (n != 4 && n != 5)
        return false;
    char w[5];
    for (size_t k = 0; k < n; k++)
        w[k] = (char)(s[i + k] >= 'A' && s[i + k] <= 'Z' ? s[i + k] + 32 : s[i + k]);
    return n == 4 ? memcmp(w, "true", 4) == 0 || memcmp(w, "null", 4) == 0 : memcmp(w, "false", 5) == 0;
}

/* Writes the token as shown to out (never longer than s) and returns its length. */
static size_t show_token(const char *s, size_t l, char *out)
{
    size_t o = 0, i = 0;
    while (i < l) {
        size_t e = i;
        while (e < l && !subtoken_delim(s[e]))
            e++;
        if (shown_as_parameter(s, l, i, e)) {
            memcpy(out + o, "<*>", 3);
            o += 3;
        } else {
            memmove(out + o, s + i, e - i);
            o += e - i;
        }
        if (e < l)
            out[o++] = s[e];
        i = e + 1;
    }
    return o;
}

static bool all_letters(const char *s, size_t l)
{
    for (size_t k = 0; k < l; k++)
        if (!((s[k] | 32) >= 'a' && (s[k] | 32) <= 'z'))
            return false;
    return l > 0;
}

/* The template's text into r (room for the sum of token lengths + 4 per token + 4). shown: booleans
 * and "root" as parameters (the text printed); else as they are (the text its id is born from, so
 * that templates that differ only there get different ids). The rules for a gap look at the tokens
 * as they are, so both texts have the same shape. Returns its length. */
static size_t render_text(const lf_template *t, char *r, bool shown)
{
    size_t p = 0;
    size_t last_start = 0, prev_start = 0; /* where the last two written tokens begin */
    bool last_star = false, prev_star = false, last_word = false; /* and what they are */
    int written = 0;
    for (uint32_t i = 0; i < t->ntok; i++) {
        const char *s = tok_text(t, i);
        size_t l = t->len[i];
        if (t->tok[i].flags & TOK_VAR) {
            /* a value printed as a varying number of tokens is one "<*>"; it takes a unit word
             * that follows a "<*>" ("<*> bytes (<*> KB)" -> "<*>") */
            if (written >= 2 && last_word && prev_star) {
                p = last_start - 1; /* drop " word" */
                last_start = prev_start;
                last_star = true;
                last_word = false;
                written--;
            }
            if (written && last_star)
                continue;
            s = "<*>";
            l = 3;
        }
        if (written)
            r[p++] = ' ';
        prev_start = last_start;
        prev_star = last_star;
        last_start = p;
        last_star = l == 3 && memcmp(s, "<*>", 3) == 0;
        last_word = all_letters(s, l);
        if (shown && !(t->tok[i].flags & TOK_VAR))
            p += show_token(s, l, r + p);
        else {
            memcpy(r + p, s, l);
            p += l;
        }
        written++;
    }
    r[p] = '\0';
    return p;
}

static size_t text_room(const lf_template *t)
{
    size_t n = 4;
    for (uint32_t i = 0; i < t->ntok; i++)
        n += t->len[i] + 4;
    return n;
}

const char *lf_template_text(lf_template *t, size_t *len)
{
    if (!t->text) {
        char *r = lf_malloc(text_room(t));
        if (!r)
            return NULL;
        size_t p = render_text(t, r, true);
        t->text = r;
        t->text_len = p;
        t->owner->bytes += p + 1;
    }
    if (len)
        *len = t->text_len;
    return t->text;
}

const char *lf_template_structure(lf_template *t, size_t *len)
{
    if (!t->strct) {
        size_t n = 1;
        for (uint32_t i = 0; i < t->ntok; i++)
            n += t->len[i] + 1;
        char *r = lf_malloc(n);
        if (!r)
            return NULL;
        size_t p = 0;
        for (uint32_t i = 0; i < t->ntok; i++) {
            if (i)
                r[p++] = ' ';
            memcpy(r + p, tok_text(t, i), t->len[i]); /* a gap is the empty token */
            p += t->len[i];
        }
        r[p] = '\0';
        t->strct = r;
        t->strct_len = p;
        t->owner->bytes += p + 1;
    }
    if (len)
        *len = t->strct_len;
    return t->strct;
}

uint64_t lf_template_id(const lf_template *t)
{
    return t->id;
}

uint64_t lf_template_count(const lf_template *t)
{
    return t->count;
}

/* A new template from tokens. id 0: the id of its text. */
static lf_template *template_new(lf_miner *m, const btok *toks, uint32_t n, uint64_t id, uint64_t order)
{
    lf_template *t = lf_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->owner = m;
    t->order = order;
    if (template_set_tokens(m, t, toks, n) < 0) {
        lf_free(t);
        return NULL;
    }
    if (id == 0) {
        char *text = lf_malloc(text_room(t));
        if (!text)
            goto fail;
        size_t tl = render_text(t, text, false);
        id = lf_miner_template_id(m->type, text, tl);
        lf_free(text);
        /* another template was born with this text and has changed or merged since: ids stay unique,
         * and an id that is an alias keeps meaning the template it went to */
        while (id == 0 || lf_u64map_get(&m->ids, id, NULL) || lf_u64map_get(&m->alias_map, id, NULL))
            id = lf_phash_combine(id, 0x626f726e);
    }
    t->id = id;
    if (lf_u64map_put(&m->ids, id, (uint64_t)(uintptr_t)t) < 0)
        goto fail;
    if (index_add(m, t) < 0) {
        index_del(m, t);
        lf_u64map_del(&m->ids, id);
        goto fail;
    }
    t->serial = m->next_serial++;
    t->all_prev = m->all_tail;
    if (m->all_tail)
        m->all_tail->all_next = t;
    else
        m->all_head = t;
    m->all_tail = t;
    m->ntemplates++;
    touch(m, t);
    return t;
fail:
    m->bytes -= t->alloc + (t->text ? t->text_len + 1 : 0);
    template_release(t);
    return NULL;
}

/* Changes t's tokens, keeping its id. 0 or -ENOMEM (t unchanged, still listed). */
static int template_restructure(lf_miner *m, lf_template *t, const btok *toks, uint32_t n)
{
    bool same = n == t->ntok;
    for (uint32_t i = 0; same && i < n; i++)
        same = toks[i].k.hash == t->tok[i].hash && ((toks[i].k.flags ^ t->tok[i].flags) & ~TOK_UNIT) == 0;
    if (same)
        return 0;
    index_del(m, t);
    int rc = template_set_tokens(m, t, toks, n);
    int rc2 = index_add(m, t);
    if (rc2 < 0) {
        index_del(m, t); /* out of memory: the template stays, unlisted until it changes again */
        rc = rc2;
    }
    return rc;
}

/* Earlier in the shared store, or else older here. */
static bool older(const lf_template *a, const lf_template *b)
{
    if (a->order != b->order)
        return a->order < b->order;
    return a->serial < b->serial;
}

static int add_alias(lf_miner *m, uint64_t from, uint64_t to)
{
    if (from == to)
        return 0;
    if (m->naliases == m->capaliases) {
        size_t cap = m->capaliases ? m->capaliases * 2 : 16;
        lf_miner_alias *na = lf_realloc(m->aliases, cap * sizeof *na);
        if (!na)
            return -ENOMEM;
        m->bytes += (cap - m->capaliases) * sizeof *na;
        m->aliases = na;
        m->capaliases = cap;
    }
    int rc = lf_u64map_put(&m->alias_map, from, to);
    if (rc < 0)
        return rc;
    m->aliases[m->naliases++] = (lf_miner_alias){from, to, false};
    m->dirty = true;
    return 0;
}

static void memo_clear(lf_miner *m)
{
    memset(m->memo, 0, MEMO_SLOTS * sizeof *m->memo);
}

/* Merges `gone` into `keep`: its events are keep's from now on (an alias), gone is unlisted and
 * kept in the graveyard until the batch's results are resolved. */
static int template_merge(lf_miner *m, lf_template *keep, lf_template *gone)
{
    int rc = add_alias(m, gone->id, keep->id);
    if (rc < 0)
        return rc;
    keep->count += gone->count;
    keep->dirty = true;
    if (gone->last_used > keep->last_used)
        touch(m, keep);
    template_unlink(m, gone);
    gone->merged_into = keep;
    gone->grave_next = m->grave;
    m->grave = gone;
    memo_clear(m);
    return 0;
}

static lf_template *live(lf_template *t)
{
    while (t && t->merged_into)
        t = t->merged_into;
    return t;
}

/* ---- the batch ---- */

size_t lf_miner_batch_size(const lf_miner *m)
{
    return m->b.nseq;
}

static uint64_t seq_hash(const lf_token *toks, int n)
{
    uint64_t h = 0x736571ULL + (uint64_t)n;
    for (int i = 0; i < n; i++)
        h = lf_phash_combine(h, toks[i].hash);
    return h | 1;
}

static bool seq_equal(const batch *b, const bseq *s, const lf_token *toks, int n)
{
    if (s->ntok != (uint32_t)n)
        return false;
    for (int i = 0; i < n; i++)
        if (b->tok[s->tok0 + i].hash != toks[i].hash)
            return false;
    return true;
}

static int grow_to(void **p, size_t *cap, size_t need, size_t elem, size_t *bytes)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *np = lf_realloc(*p, c * elem);
    if (!np)
        return -ENOMEM;
    *bytes += (c - *cap) * elem;
    *p = np;
    *cap = c;
    return 0;
}

int lf_miner_add(lf_miner *m, const lf_token *toks, int n, const char *text)
{
    batch *b = &m->b;
    if (b->mined)
        lf_miner_reset(m);
    if (n < 0 || n > LF_TOKEN_MAX)
        return -EINVAL;
    uint64_t h = seq_hash(toks, n), v;
    /* equal hashes of different sequences move on to the next key */
    while (lf_u64map_get(&b->index, h, &v)) {
        bseq *s = &b->seqs[v - 1];
        if (seq_equal(b, s, toks, n)) {
            s->count++;
            return (int)(v - 1);
        }
        h = lf_phash_combine(h, 0x636f6c6c) | 1;
    }
    if (b->nseq >= m->cfg.max_batch)
        return LF_ELIMIT;
    size_t bytes = 0;
    for (int i = 0; i < n; i++)
        bytes += toks[i].len;
    size_t captok = b->captok;
    int rc = grow_to((void **)&b->seqs, &b->capseq, b->nseq + 1, sizeof *b->seqs, &m->bytes);
    if (rc == 0 && b->ntok + (size_t)n > captok) {
        size_t c1 = captok, c2 = captok, c3 = captok;
        rc = grow_to((void **)&b->tok, &c1, b->ntok + (size_t)n, sizeof *b->tok, &m->bytes);
        rc = rc ? rc : grow_to((void **)&b->toff, &c2, b->ntok + (size_t)n, sizeof *b->toff, &m->bytes);
        rc = rc ? rc : grow_to((void **)&b->tlen, &c3, b->ntok + (size_t)n, sizeof *b->tlen, &m->bytes);
        if (rc == 0)
            b->captok = c1;
    }
    rc = rc ? rc : grow_to((void **)&b->text, &b->textcap, b->textlen + bytes + 1, 1, &m->bytes);
    if (rc < 0 || b->textlen + bytes > UINT32_MAX)
        return rc < 0 ? rc : LF_ELIMIT;
    size_t before = b->index.cap;
    if ((rc = lf_u64map_put(&b->index, h, b->nseq + 1)) < 0)
        return rc;
    m->bytes += lf_u64map_bytes(&b->index) - before * 2 * sizeof(uint64_t);
    bseq *s = &b->seqs[b->nseq];
    s->hash = h;
    s->count = 1;
    s->ntok = (uint32_t)n;
    s->tok0 = (uint32_t)b->ntok;
    s->tpl = NULL;
    for (int i = 0; i < n; i++) {
        memcpy(b->text + b->textlen, text + toks[i].off, toks[i].len);
        /* the hash for now; shape and classes only when the sequence needs the partition */
        b->tok[b->ntok + (size_t)i] = (lf_ptok){toks[i].hash, 0, 0};
        b->toff[b->ntok + (size_t)i] = (uint32_t)b->textlen;
        b->tlen[b->ntok + (size_t)i] = toks[i].len;
        b->textlen += toks[i].len;
    }
    b->ntok += (size_t)n;
    return (int)b->nseq++;
}

void lf_miner_reset(lf_miner *m)
{
    batch *b = &m->b;
    b->nseq = b->ntok = b->textlen = 0;
    lf_u64map_clear(&b->index);
    b->mined = false;
}

lf_template *lf_miner_result(const lf_miner *m, int slot)
{
    if (slot < 0 || (size_t)slot >= m->b.nseq || !m->b.mined)
        return NULL;
    return m->b.seqs[slot].tpl;
}

/* ---- matching a sequence against a template ---- */

static inline bool wild_at(const char *s, size_t n, size_t i)
{
    return i + 3 <= n && s[i] == '<' && s[i + 1] == '*' && s[i + 2] == '>';
}

/* Byte j of s belongs to a "<*>" (a parameter already): only a "<*>" of the pattern may cover it. */
static inline bool in_wild(const char *s, size_t n, size_t j)
{
    return wild_at(s, n, j) || (j >= 1 && wild_at(s, n, j - 1)) || (j >= 2 && wild_at(s, n, j - 2));
}

/* pattern p, in which each "<*>" stands for any bytes (none too: a value inside a token, such as the
 * host in "(<*>)", may be empty), against s. */
static bool glob_match(const char *p, size_t pl, const char *s, size_t sl)
{
    size_t i = 0, j = 0, star_p = SIZE_MAX, star_s = 0;
    while (j < sl || i < pl) {
        if (i + 3 <= pl && p[i] == '<' && p[i + 1] == '*' && p[i + 2] == '>') {
            i += 3;
            star_p = i;
            star_s = j;
            continue;
        }
        if (i < pl && j < sl && p[i] == s[j] && !in_wild(s, sl, j)) {
            i++;
            j++;
            continue;
        }
        if (star_p == SIZE_MAX || star_s >= sl)
            return false;
        i = star_p;
        j = ++star_s;
    }
    return true;
}

static inline bool tok_fits(const lf_template *t, uint32_t i, const batch *b, uint32_t k)
{
    const lf_ptok *tt = &t->tok[i], *st = &b->tok[k];
    if (tt->hash == st->hash)
        return true;
    if (!(tt->flags & LF_PTOK_WILD))
        return false;
    /* a key without its value: the partition never joins it to one with a value (the batch's
     * tokens are not classified yet, so it is read from the text) */
    if (!(tt->flags & LF_PTOK_EMPTY) && lf_ttok_is_empty_value(b->text + b->toff[k], b->tlen[k]))
        return false;
    if (tt->hash == LF_TOKEN_WILD_HASH)
        return true;
    return glob_match(tok_text(t, i), t->len[i], b->text + b->toff[k], b->tlen[k]);
}

static bool fits_fixed(const lf_template *t, const batch *b, const bseq *s)
{
    if (t->ntok != s->ntok)
        return false;
    for (uint32_t i = 0; i < t->ntok; i++) /* the cheap comparisons first */
        if (!(t->tok[i].flags & LF_PTOK_WILD) && t->tok[i].hash != b->tok[s->tok0 + i].hash)
            return false;
    for (uint32_t i = 0; i < t->ntok; i++)
        if ((t->tok[i].flags & LF_PTOK_WILD) && !tok_fits(t, i, b, s->tok0 + i))
            return false;
    return true;
}

/* Template tokens from i against sequence tokens from j; a gap takes zero or more tokens. */
static bool fits_var_from(const lf_template *t, uint32_t i, const batch *b, const bseq *s, uint32_t j, long *steps)
{
    for (; i < t->ntok; i++, j++) {
        if (--*steps < 0)
            return false;
        if (t->tok[i].flags & TOK_VAR) {
            if (i + 1 == t->ntok)
                return true;
            for (uint32_t k = j; k <= s->ntok; k++)
                if (fits_var_from(t, i + 1, b, s, k, steps))
                    return true;
            return false;
        }
        if (j >= s->ntok || !tok_fits(t, i, b, s->tok0 + j))
            return false;
    }
    return j == s->ntok;
}

static bool fits(const lf_template *t, const batch *b, const bseq *s)
{
    if (!t->has_var)
        return fits_fixed(t, b, s);
    if (s->ntok < t->nconst) /* cannot hold the template's constant tokens */
        return false;
    long steps = VAR_STEPS;
    return fits_var_from(t, 0, b, s, 0, &steps);
}

/* More specific: more constant tokens, then older. */
static bool more_specific(const lf_template *a, const lf_template *b)
{
    if (!b)
        return true;
    if (a->nconst != b->nconst)
        return a->nconst > b->nconst;
    return older(a, b);
}

static lf_template *find_fitting(lf_miner *m, const bseq *s)
{
    const batch *b = &m->b;
    memo_entry *e = &m->memo[s->hash & (MEMO_SLOTS - 1)];
    if (e->key == s->hash && e->t && fits(e->t, b, s))
        return e->t;
    lf_template *best = NULL;
    /* the templates whose first two tokens are these exact tokens or hold "<*>" */
    uint64_t h0 = s->ntok > 0 ? b->tok[s->tok0].hash : 0, h1 = s->ntok > 1 ? b->tok[s->tok0 + 1].hash : 0;
    uint64_t keys[4] = {first_key(s->ntok, h0, h1), first_key(s->ntok, h0, 0), first_key(s->ntok, 0, h1),
                        first_key(s->ntok, 0, 0)};
    int nkeys = s->ntok > 1 ? 4 : s->ntok == 1 ? 2 : 1;
    if (s->ntok == 1)
        keys[1] = keys[3];
    for (int k = 0; k < nkeys; k++)
        for (lf_template *t = list_head(m, L_FIRST, keys[k]); t; t = t->links[L_FIRST].next)
            if (more_specific(t, best) && fits_fixed(t, b, s))
                best = t;
    for (lf_template *t = list_head(m, L_LEN, VAR_KEY); t; t = t->links[L_LEN].next)
        if (more_specific(t, best) && fits(t, b, s))
            best = t;
    if (best) {
        e->key = s->hash;
        e->t = best;
    }
    return best;
}

/* ---- building template tokens from a group ---- */

typedef struct scratch {
    btok *toks;       /* the tokens being built */
    char *bytes;      /* generalised tokens' bytes */
    size_t nbytes, capbytes;
    size_t cap;
} scratch;

static int cmp_text(const void *a, const void *b)
{
    const btok *x = a, *y = b;
    size_t l = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, l);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* One column of a group: the token every member holds, or the generalisation of the distinct
 * ones (in byte order, so that the result does not depend on the members' order). */
static int fold_column(btok *vals, size_t n, scratch *sc, btok *out)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < d && !seen; k++)
            seen = vals[k].k.hash == vals[i].k.hash;
        if (!seen)
            vals[d++] = vals[i];
    }
    if (d == 1) {
        *out = vals[0];
        return 0;
    }
    qsort(vals, d, sizeof *vals, cmp_text);
    size_t need = 0;
    for (size_t i = 0; i < d; i++)
        need += vals[i].len + 3;
    if (sc->nbytes + 2 * need > sc->capbytes)
        return -ENOBUFS; /* the caller sizes the buffer; cannot happen */
    char *acc = sc->bytes + sc->nbytes;
    size_t al = vals[0].len;
    memcpy(acc, vals[0].s, al);
    char *tmp = acc + need;
    for (size_t i = 1; i < d; i++) {
        if (al == vals[i].len && memcmp(acc, vals[i].s, al) == 0)
            continue;
        size_t nl = lf_ttok_generalise(acc, al, vals[i].s, vals[i].len, tmp);
        memcpy(acc, tmp, nl);
        al = nl;
    }
    sc->nbytes += al;
    out->s = acc;
    out->len = (uint32_t)al;
    classify(out);
    return 0;
}

/* ---- mining ---- */

typedef struct member {
    const lf_ptok *toks;
    const char *text;         /* sequence: batch text base; template: NULL */
    const uint32_t *off, *len;
    lf_template *tpl;         /* an existing template, or NULL for a sequence */
    bseq *seq;
} member;

static void member_token(const member *mb, uint32_t j, btok *out)
{
    out->k = mb->toks[j];
    if (mb->tpl) {
        out->s = tok_text(mb->tpl, j);
        out->len = mb->tpl->len[j];
    } else {
        out->s = mb->text + mb->off[j];
        out->len = mb->len[j];
    }
}

typedef struct miner_work {
    lf_pitem *items;
    member *members;
    uint32_t *group, *order;
    size_t cap;
    btok *vals;
    btok *built;
    scratch sc;
    uint64_t *touched; /* ids of templates made or changed by the partition step */
    size_t ntouched, captouched;
} miner_work;

static void work_free(miner_work *w)
{
    lf_free(w->items);
    lf_free(w->members);
    lf_free(w->group);
    lf_free(w->order);
    lf_free(w->vals);
    lf_free(w->built);
    lf_free(w->sc.bytes);
    lf_free(w->touched);
}

static int work_reserve(miner_work *w, size_t n)
{
    if (n <= w->cap)
        return 0;
    size_t c = w->cap ? w->cap : 64;
    while (c < n)
        c *= 2;
    lf_pitem *i = lf_realloc(w->items, c * sizeof *i);
    if (i)
        w->items = i;
    member *mb = lf_realloc(w->members, c * sizeof *mb);
    if (mb)
        w->members = mb;
    uint32_t *g = lf_realloc(w->group, c * sizeof *g);
    if (g)
        w->group = g;
    uint32_t *o = lf_realloc(w->order, c * sizeof *o);
    if (o)
        w->order = o;
    btok *v = lf_realloc(w->vals, c * sizeof *v);
    if (v)
        w->vals = v;
    if (!i || !mb || !g || !o || !v)
        return -ENOMEM;
    w->cap = c;
    return 0;
}

static int note_touched(miner_work *w, uint64_t id)
{
    if (w->ntouched == w->captouched) {
        size_t c = w->captouched ? w->captouched * 2 : 64;
        uint64_t *n = lf_realloc(w->touched, c * sizeof *n);
        if (!n)
            return -ENOMEM;
        w->touched = n;
        w->captouched = c;
    }
    w->touched[w->ntouched++] = id;
    return 0;
}

/* Builds the template tokens of the members of one group (ntok each). */
static int build_group(miner_work *w, member *const *mem, size_t nm, uint32_t ntok)
{
    size_t need = 0;
    for (size_t i = 0; i < nm; i++)
        for (uint32_t j = 0; j < ntok; j++) {
            btok t;
            member_token(mem[i], j, &t);
            need += t.len + 3;
        }
    need = need * 2 + 64;
    if (need > w->sc.capbytes) {
        char *nb = lf_realloc(w->sc.bytes, need);
        if (!nb)
            return -ENOMEM;
        w->sc.bytes = nb;
        w->sc.capbytes = need;
    }
    w->sc.nbytes = 0;
    if (ntok > w->sc.cap) {
        btok *nb = lf_realloc(w->built, ntok * sizeof *nb);
        if (!nb)
            return -ENOMEM;
        w->built = nb;
        w->sc.cap = ntok;
    }
    for (uint32_t j = 0; j < ntok; j++) {
        for (size_t i = 0; i < nm; i++)
            member_token(mem[i], j, &w->vals[i]);
        int rc = fold_column(w->vals, nm, &w->sc, &w->built[j]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cmp_member_age(const void *a, const void *b)
{
    const lf_template *x = ((const member *)a)->tpl, *y = ((const member *)b)->tpl;
    return older(x, y) ? -1 : older(y, x) ? 1 : 0;
}

/* Partitions the unmatched sequences of one token count with the templates of that count. */
static int mine_length(lf_miner *m, miner_work *w, bseq **seqs, size_t ns, uint32_t ntok)
{
    batch *b = &m->b;
    size_t nt = 0;
    for (lf_template *t = list_head(m, L_LEN, len_key(ntok)); t; t = t->links[L_LEN].next)
        nt++;
    int rc = work_reserve(w, ns + nt + 1);
    if (rc < 0)
        return rc;
    size_t n = 0;
    for (size_t i = 0; i < ns; i++) {
        bseq *s = seqs[i];
        for (uint32_t j = 0; j < s->ntok; j++) {
            lf_ptok *k = &b->tok[s->tok0 + j];
            btok t = {b->text + b->toff[s->tok0 + j], b->tlen[s->tok0 + j], *k};
            classify(&t);
            *k = t.k;
        }
        if (s->ntok) /* an empty message has no tokens (and the arrays may not exist yet) */
            w->members[n] = (member){b->tok + s->tok0, b->text, b->toff + s->tok0, b->tlen + s->tok0, NULL, s};
        else
            w->members[n] = (member){NULL, b->text, NULL, NULL, NULL, s};
        n++;
    }
    /* the existing templates, oldest first, so that the partition's order does not depend on the
     * lists' order */
    size_t t0 = n;
    for (lf_template *t = list_head(m, L_LEN, len_key(ntok)); t; t = t->links[L_LEN].next)
        w->members[n++] = (member){t->tok, NULL, NULL, NULL, t, NULL};
    qsort(w->members + t0, n - t0, sizeof *w->members, cmp_member_age);
    for (size_t i = 0; i < n; i++)
        w->items[i] = (lf_pitem){w->members[i].toks, w->members[i].tpl ? w->members[i].tpl->count : w->members[i].seq->count};
    size_t ng = 0;
    if (ntok == 0) {
        memset(w->group, 0, n * sizeof *w->group);
        ng = 1;
    } else if ((rc = lf_partition(w->items, n, ntok,
                                  &(lf_partition_rules){m->cfg.word_share, m->cfg.split_values,
                                                        m->cfg.split_capitals},
                                  w->group, &ng)) < 0) {
        return rc;
    }
    /* members by group (counting sort, stable) */
    size_t *start = lf_calloc(ng + 1, sizeof *start);
    member **by = lf_malloc(n * sizeof *by);
    if (!start || !by) {
        lf_free(start);
        lf_free(by);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        start[w->group[i] + 1]++;
    for (size_t g = 0; g < ng; g++)
        start[g + 1] += start[g];
    size_t *fill = lf_malloc((ng + 1) * sizeof *fill);
    if (!fill) {
        lf_free(start);
        lf_free(by);
        return -ENOMEM;
    }
    memcpy(fill, start, (ng + 1) * sizeof *fill);
    for (size_t i = 0; i < n; i++)
        by[fill[w->group[i]]++] = &w->members[i];
    lf_free(fill);
    for (size_t g = 0; g < ng && rc == 0; g++) {
        member **mem = by + start[g];
        size_t nm = start[g + 1] - start[g];
        lf_template *keep = NULL;
        bool any_seq = false;
        for (size_t i = 0; i < nm; i++) {
            if (mem[i]->tpl && (!keep || older(mem[i]->tpl, keep)))
                keep = mem[i]->tpl;
            any_seq |= mem[i]->seq != NULL;
        }
        if (!any_seq)
            continue; /* templates alone keep what they are */
        if ((rc = build_group(w, mem, nm, ntok)) < 0)
            break;
        if (!keep) {
            keep = template_new(m, w->built, ntok, 0, UINT64_MAX);
            if (!keep) {
                rc = -ENOMEM;
                break;
            }
        } else {
            for (size_t i = 0; i < nm && rc == 0; i++)
                if (mem[i]->tpl && mem[i]->tpl != keep)
                    rc = template_merge(m, keep, mem[i]->tpl);
            rc = rc ? rc : template_restructure(m, keep, w->built, ntok);
        }
        for (size_t i = 0; i < nm && rc == 0; i++) {
            if (!mem[i]->seq)
                continue;
            mem[i]->seq->tpl = keep;
            keep->count += mem[i]->seq->count;
            memo_entry *e = &m->memo[mem[i]->seq->hash & (MEMO_SLOTS - 1)];
            e->key = mem[i]->seq->hash;
            e->t = keep;
        }
        touch(m, keep);
        rc = rc ? rc : note_touched(w, keep->id);
    }
    lf_free(start);
    lf_free(by);
    return rc;
}

/* Gaps of a template between its anchors: gap g spans tokens [gs[g], ge[g]). */
static void gaps_of(const lf_template *t, uint32_t *gs, uint32_t *ge)
{
    uint32_t g = 0;
    gs[0] = 0;
    for (uint32_t i = 0; i < t->ntok; i++) {
        if (is_anchor(&t->tok[i])) {
            ge[g] = i;
            gs[++g] = i + 1;
        }
    }
    ge[g] = t->ntok;
}

static bool same_anchors(const lf_template *a, const lf_template *b)
{
    if (a->nanchors != b->nanchors)
        return false;
    uint32_t i = 0, j = 0;
    for (;;) {
        while (i < a->ntok && !is_anchor(&a->tok[i]))
            i++;
        while (j < b->ntok && !is_anchor(&b->tok[j]))
            j++;
        if (i == a->ntok || j == b->ntok)
            return i == a->ntok && j == b->ntok;
        if (a->tok[i].hash != b->tok[j].hash)
            return false;
        i++;
        j++;
    }
}

static bool same_structure(const lf_template *a, const lf_template *b)
{
    if (a->ntok != b->ntok)
        return false;
    for (uint32_t i = 0; i < a->ntok; i++)
        if (a->tok[i].hash != b->tok[i].hash)
            return false;
    return true;
}

/* Templates of one event type printed with different token counts: same constant words in the
 * same order. Merges them into the oldest, whose structure keeps the gaps on which all agree and
 * marks the others as gaps of varying length. */
static int merge_across_lengths(lf_miner *m, lf_template *t)
{
    if (t->nanchors < MIN_ANCHORS)
        return 0;
    lf_template *set[64];
    size_t n = 0;
    bool differ = false;
    for (lf_template *o = list_head(m, L_ANCHOR, anchor_key(t)); o && n < 64; o = o->links[L_ANCHOR].next) {
        if (!same_anchors(o, t))
            continue;
        set[n++] = o;
        differ |= !same_structure(o, t);
    }
    if (n < 2 || !differ)
        return 0;
    uint32_t na = t->nanchors;
    uint32_t *gs = lf_malloc(n * (na + 1) * 2 * sizeof *gs);
    btok *out = NULL;
    if (!gs)
        return -ENOMEM;
    uint32_t *ge = gs + n * (na + 1);
    size_t max = 0;
    for (size_t k = 0; k < n; k++) {
        gaps_of(set[k], gs + k * (na + 1), ge + k * (na + 1));
        max += set[k]->ntok;
    }
    out = lf_malloc((max + 1) * sizeof *out);
    int rc = -ENOMEM;
    if (!out)
        goto done;
    uint32_t no = 0;
    const lf_template *ref = set[0];
    const uint32_t *rs = gs, *re = ge;
    for (uint32_t g = 0; g <= na; g++) {
        bool agree = true;
        for (size_t k = 1; k < n && agree; k++) {
            const lf_template *o = set[k];
            uint32_t s0 = gs[k * (na + 1) + g], e0 = ge[k * (na + 1) + g];
            agree = e0 - s0 == re[g] - rs[g];
            for (uint32_t i = 0; agree && i < e0 - s0; i++)
                agree = o->tok[s0 + i].hash == ref->tok[rs[g] + i].hash;
        }
        if (agree) {
            for (uint32_t i = rs[g]; i < re[g]; i++)
                out[no++] = (btok){tok_text(ref, i), ref->len[i], ref->tok[i]};
        } else {
            out[no++] = var_tok;
        }
        if (g < na) {
            uint32_t i = re[g];
            out[no++] = (btok){tok_text(ref, i), ref->len[i], ref->tok[i]};
        }
    }
    lf_template *keep = set[0];
    for (size_t k = 1; k < n; k++)
        if (older(set[k], keep))
            keep = set[k];
    /* the tokens point into the members' arenas: restructure before any member is freed */
    rc = template_restructure(m, keep, out, no);
    for (size_t k = 0; k < n && rc == 0; k++)
        if (set[k] != keep)
            rc = template_merge(m, keep, set[k]);
done:
    lf_free(out);
    lf_free(gs);
    return rc;
}

static int cmp_seq_len(const void *a, const void *b)
{
    const bseq *x = *(bseq *const *)a, *y = *(bseq *const *)b;
    if (x->ntok != y->ntok)
        return x->ntok < y->ntok ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Past max_templates, the least recently used templates that this batch did not use go. */
static void evict(lf_miner *m)
{
    bool any = false;
    while (m->cfg.max_templates && m->ntemplates > m->cfg.max_templates && m->lru_tail &&
           m->lru_tail->last_used < m->clock) {
        lf_template *t = m->lru_tail;
        template_unlink(m, t);
        template_release(t);
        m->evictions++;
        any = true;
    }
    if (any)
        memo_clear(m);
}

int lf_miner_mine(lf_miner *m)
{
    batch *b = &m->b;
    m->clock++;
    bseq **open = lf_malloc((b->nseq ? b->nseq : 1) * sizeof *open);
    if (!open)
        return -ENOMEM;
    size_t no = 0;
    for (size_t i = 0; i < b->nseq; i++) {
        bseq *s = &b->seqs[i];
        s->tpl = find_fitting(m, s);
        if (s->tpl) {
            s->tpl->count += s->count;
            touch(m, s->tpl);
        } else {
            open[no++] = s;
        }
    }
    qsort(open, no, sizeof *open, cmp_seq_len);
    miner_work w = {0};
    int rc = 0;
    for (size_t a = 0; a < no && rc == 0;) {
        size_t e = a;
        while (e < no && open[e]->ntok == open[a]->ntok)
            e++;
        rc = mine_length(m, &w, open + a, e - a, open[a]->ntok);
        a = e;
    }
    for (size_t i = 0; i < w.ntouched && rc == 0; i++) {
        uint64_t v;
        if (lf_u64map_get(&m->ids, w.touched[i], &v))
            rc = merge_across_lengths(m, (lf_template *)(uintptr_t)v);
    }
    /* results point at the templates that live on */
    for (size_t i = 0; i < b->nseq; i++)
        b->seqs[i].tpl = live(b->seqs[i].tpl);
    free_graveyard(m);
    work_free(&w);
    lf_free(open);
    if (rc < 0)
        return rc;
    evict(m);
    b->mined = true;
    return 0;
}

/* ---- aliases, changes, persistence ---- */

uint64_t lf_miner_resolve(const lf_miner *m, uint64_t id)
{
    uint64_t to;
    for (int hops = 0; hops < 64 && lf_u64map_get(&m->alias_map, id, &to); hops++)
        id = to;
    return id;
}

const lf_miner_alias *lf_miner_aliases(const lf_miner *m, size_t *n)
{
    *n = m->naliases;
    return m->aliases;
}

int lf_miner_foreach_changed(lf_miner *m, int (*tpl)(lf_template *t, void *arg),
                             int (*alias)(const lf_miner_alias *a, void *arg), void *arg)
{
    for (lf_template *t = m->all_head; t && tpl; t = t->all_next) {
        if (!t->dirty)
            continue;
        int rc = tpl(t, arg);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < m->naliases && alias; i++) {
        if (m->aliases[i].stored)
            continue;
        int rc = alias(&m->aliases[i], arg);
        if (rc)
            return rc;
    }
    return 0;
}

void lf_miner_commit(lf_miner *m, uint64_t order)
{
    for (lf_template *t = m->all_head; t; t = t->all_next) {
        if (t->dirty && t->order == UINT64_MAX)
            t->order = order;
        t->dirty = false;
    }
    for (size_t i = 0; i < m->naliases; i++)
        m->aliases[i].stored = true;
    m->dirty = false;
}

uint64_t lf_template_order(const lf_template *t)
{
    return t->order;
}

bool lf_miner_dirty(const lf_miner *m)
{
    return m->dirty;
}

/* Splits a persisted structure into tokens (an empty token is a gap). */
static int parse_structure(const char *s, size_t len, btok *out, uint32_t *n)
{
    uint32_t k = 0;
    size_t i = 0;
    if (len == 0) {
        *n = 0;
        return 0;
    }
    for (;;) {
        size_t e = i;
        while (e < len && s[e] != ' ')
            e++;
        if (k == LF_TOKEN_MAX)
            return LF_EFORMAT;
        for (size_t x = i; x < e; x++) /* whitespace never is in a token; any other byte may be */
            if (s[x] == '\t' || s[x] == '\n' || s[x] == '\r' || s[x] == '\v' || s[x] == '\f')
                return LF_EFORMAT;
        if (e == i) {
            out[k++] = var_tok;
        } else {
            out[k] = (btok){s + i, (uint32_t)(e - i), {0}};
            classify(&out[k]);
            k++;
        }
        if (e >= len)
            break;
        i = e + 1;
    }
    *n = k;
    return 0;
}

static lf_template *by_id(const lf_miner *m, uint64_t id)
{
    uint64_t v;
    return lf_u64map_get(&m->ids, id, &v) ? (lf_template *)(uintptr_t)v : NULL;
}

int lf_miner_restore(lf_miner *m, uint64_t id, const char *structure, size_t len, uint64_t count, uint64_t order)
{
    btok toks[LF_TOKEN_MAX];
    uint32_t n;
    if (id == 0)
        return LF_EFORMAT;
    int rc = parse_structure(structure, len, toks, &n);
    if (rc < 0)
        return rc;
    if (order == 0)
        order = UINT64_MAX - 1; /* no order from the store: restore order (serials) decides */
    lf_template *t = by_id(m, id);
    if (!t && lf_u64map_get(&m->alias_map, id, NULL))
        return 0; /* merged here already: the store learns it from this miner's changes */
    if (t) {
        if (!t->dirty) { /* local changes not yet shared win until they are */
            rc = template_restructure(m, t, toks, n);
            t->dirty = false;
        }
        if (order < t->order)
            t->order = order;
        if (count > t->count)
            t->count = count;
    } else {
        t = template_new(m, toks, n, id, order);
        if (!t)
            return -ENOMEM;
        t->count = count;
        t->dirty = false;
    }
    /* another template with the very same structure is the same event type */
    for (lf_template *o = list_head(m, L_LEN, t->has_var ? VAR_KEY : len_key(t->ntok)); o && rc == 0;) {
        lf_template *next = o->links[L_LEN].next;
        if (o != t && same_structure(o, t)) {
            lf_template *keep = older(o, t) ? o : t, *gone = keep == o ? t : o;
            rc = template_merge(m, keep, gone);
            t = keep;
            next = list_head(m, L_LEN, t->has_var ? VAR_KEY : len_key(t->ntok));
        }
        o = next;
    }
    free_graveyard(m);
    return rc;
}

int lf_miner_restore_alias(lf_miner *m, uint64_t from, uint64_t to)
{
    if (from == 0 || to == 0 || from == to)
        return LF_EFORMAT;
    uint64_t cur;
    if (lf_u64map_get(&m->alias_map, from, &cur) && cur == to)
        return 0;
    lf_template *f = by_id(m, from), *t = by_id(m, lf_miner_resolve(m, to));
    size_t before = m->naliases;
    int rc;
    if (f && t && f != t) {
        rc = template_merge(m, t, f);
        free_graveyard(m);
    } else {
        rc = add_alias(m, from, to);
    }
    for (size_t i = before; i < m->naliases; i++)
        m->aliases[i].stored = true; /* the store told us */
    return rc;
}

int lf_miner_foreach(lf_miner *m, int (*cb)(lf_template *t, void *arg), void *arg)
{
    for (lf_template *t = m->all_head; t;) {
        lf_template *n = t->all_next;
        int rc = cb(t, arg);
        if (rc)
            return rc;
        t = n;
    }
    return 0;
}

size_t lf_miner_template_count(const lf_miner *m)
{
    return m->ntemplates;
}

uint64_t lf_miner_evictions(const lf_miner *m)
{
    return m->evictions;
}

size_t lf_miner_memory(const lf_miner *m)
{
    return m->bytes + lf_u64map_bytes(&m->ids) + lf_u64map_bytes(&m->alias_map) + lf_u64map_bytes(&m->heads[0]) +
           lf_u64map_bytes(&m->heads[1]) + lf_u64map_bytes(&m->heads[2]);
}

const char *lf_miner_type_name(const lf_miner *m)
{
    return m->type;
}
