/* Parameter extraction: the template ("<*>" for each parameter, single spaces between tokens) is
 * matched against the original message: literal text must appear as it is, a space matches any run
 * of whitespace, and each "<*>" takes the shortest non-empty text that lets the rest match. */
#ifndef LF_TEMPLATE_PARAMS_H
#define LF_TEMPLATE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

typedef struct lf_param {
    uint32_t off;
    uint32_t len;
} lf_param;

/* Returns the number of parameters (at most max) or -1 when the message does not fit the template
 * (possible only for a message masked by a rule that changed literal text). */
int lf_template_params(const char *tmpl, size_t tlen, const char *msg, size_t mlen, lf_param *out, int max);

/* The same answers, faster for a caller that extracts with a few templates many times: the
 * templates are kept split into tokens in the cache (a fixed-size table, one per thread). */
typedef struct lf_params_cache lf_params_cache;
int lf_params_cache_new(lf_params_cache **out);
void lf_params_cache_free(lf_params_cache *c);
int lf_template_params_cached(lf_params_cache *c, const char *tmpl, size_t tlen, const char *msg, size_t mlen,
                              lf_param *out, int max);

#endif
