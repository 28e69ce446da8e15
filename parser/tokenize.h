/* Message preprocessing before template mining: the log type's masking regexes (PCRE2, JIT), then
 * a split on whitespace and the token rules of docs/parsing.md (numbers, paths, booleans and
 * words joined to a variable become "<*>"; "<*>.<*>" and "<*><*>" merge). A tokenizer holds
 * scratch buffers that are reused across calls: one per thread, no allocation per line once warm. */
#ifndef LF_TOKENIZE_H
#define LF_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

#define LF_TOKEN_MAX 256        /* tokens mined per message; the rest is one "<*>" */
#define LF_TOKEN_WILD_HASH 1ULL /* hash of the "<*>" token */
#define LF_TOKEN_LIST_RUN 5     /* this many "<*>" in a row are mined as one (a list) */

typedef struct lf_token {
    uint32_t off; /* in the text returned by lf_tokenizer_run */
    uint32_t len;
    uint64_t hash; /* LF_TOKEN_WILD_HASH exactly when the token is "<*>" */
} lf_token;

typedef struct lf_tokenizer lf_tokenizer;

int lf_tokenizer_new(lf_tokenizer **out);
void lf_tokenizer_free(lf_tokenizer *t);
/* Adds a masking regex (PCRE2 syntax); masks run in the order added. 0, LF_ECONFIG (err filled)
 * or -ENOMEM. */
int lf_tokenizer_add_mask(lf_tokenizer *t, const char *regex, char *err, size_t errlen);
int lf_tokenizer_mask_count(const lf_tokenizer *t);

/* Tokenizes a message. Returns the token count (0..LF_TOKEN_MAX) or -ENOMEM; *toks and *text stay
 * valid until the next call. */
int lf_tokenizer_run(lf_tokenizer *t, const char *s, size_t len, const lf_token **toks, const char **text);

/* Hash of a token's bytes as lf_tokenizer_run computes it. */
uint64_t lf_token_hash(const char *s, size_t len);

#endif
