/* Line formats in the Loghub notation: "<Date> <Time> <Level> <Component>: <Content>".
 * Each <Name> becomes a field that matches lazily (".*?"); the text between placeholders is a
 * regular-expression fragment in which a run of spaces matches one or more whitespace characters.
 * The whole line must match (anchored at both ends). A format whose fragments are plain literals
 * (escaped punctuation such as "\[" allowed) is matched by a hand-written scanner first (PCRE2 decides
 * the lines it cannot match); any other format is compiled with PCRE2 and JIT. Both give the same
 * spans (tests and the fuzz target check it).
 * A compiled format holds match scratch: use one per thread. */
#ifndef LF_LOGFORMAT_H
#define LF_LOGFORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LF_LOGFORMAT_MAX_FIELDS 64

typedef struct lf_logformat lf_logformat;

/* A field's value: offset and length in the matched line. set is false for a field inside an
 * optional group that did not take part in the match (its value is then empty). */
typedef struct lf_span {
    uint32_t off;
    uint32_t len;
    bool set;
} lf_span;

/* 0 or LF_ECONFIG (err receives a one-line reason), -ENOMEM. *out is owned by the caller. */
int lf_logformat_compile(const char *format, lf_logformat **out, char *err, size_t errlen);
void lf_logformat_free(lf_logformat *f);

int lf_logformat_field_count(const lf_logformat *f);
const char *lf_logformat_field_name(const lf_logformat *f, int i);
/* Index of the field called name, or -1. */
int lf_logformat_field_index(const lf_logformat *f, const char *name);
/* True when the hand-written scanner is used. */
bool lf_logformat_is_literal(const lf_logformat *f);

/* 1 when the line matches (spans[0..field_count) filled), 0 when it does not, LF_ELIMIT when PCRE2
 * gave up (match limit): callers treat anything but 1 as "does not match". The line is bytes of any
 * value (NUL included), without its line terminator. Lines longer than UINT32_MAX never match. */
int lf_logformat_match(lf_logformat *f, const char *line, size_t len, lf_span *spans);
/* How lf_logformat_match has decided the lines given it: by the scanner's first path (no
 * backtracking), by its depth-first search, or by PCRE2 (a format the scanner cannot take, or a line
 * it could not match), which "unmatched" counts again when PCRE2 did not match either. */
typedef struct lf_logformat_counts {
    uint64_t first_path, search, regex, unmatched;
} lf_logformat_counts;
void lf_logformat_get_counts(const lf_logformat *f, lf_logformat_counts *out);

/* The same through PCRE2 even for a literal format (for differential tests). -ENOMEM when the
 * regex could not be built. */
int lf_logformat_match_regex(lf_logformat *f, const char *line, size_t len, lf_span *spans);

#endif
