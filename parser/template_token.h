/* What the miner needs to know about one token of a template or message: whether it is a parameter,
 * its shape (what is left when the numbers in it are taken out), and how two different tokens
 * generalise into one ("'a1'" and "'b2'" into "'<*>'"). */
#ifndef LF_TEMPLATE_TOKEN_H
#define LF_TEMPLATE_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The token holds "<*>" somewhere. */
bool lf_ttok_has_wild(const char *s, size_t n);

/* A bare parameter: "<*>" with nothing but punctuation around it ("<*>", "(<*>", "<*>),"). A token
 * that keeps letters beside its "<*>" ("uid=<*>", "vCores:<*>") still names something and is not. */
bool lf_ttok_is_bare(const char *s, size_t n);

/* A word in capitals: at least two capital letters, no small ones, nothing but digits, '_' and '-'
 * besides, inside optional brackets, quotes and trailing punctuation ("GET", "\"POST", "RUNNING,",
 * "CONTAINER_REMOTE_LAUNCH", "IPV4"). */
bool lf_ttok_is_caps(const char *s, size_t n);

/* A past participle: a word of small letters (the first may be a capital) ending in "ed", with at
 * least three letters before it ("Paused", "closed", "failed,"): an outcome or a state. */
bool lf_ttok_is_past(const char *s, size_t n);

/* The length of the key ("delay=", "tr.intent=": letters, digits, '_', '.', '-', then '=') that
 * s[0..n) starts with, or 0. */
size_t lf_ttok_key_length(const char *s, size_t n);

/* A key printed without its value ("rhost=", "ruser=,", and in a template "<*>="): another message
 * than the key with a value. Not a value that ends in '=' ("dGVzdA==", "sig=QU1D=="). */
bool lf_ttok_is_empty_value(const char *s, size_t n);

/* Hash of the token with every run of hex digits that holds a decimal digit replaced by one mark:
 * "bglio716" and "bglio91", "0x7fda4bf0>" and "0x7fda>" have the same shape, "HTTPS" and "SOCKS5"
 * do not. Tokens that differ only in their numbers are values of one parameter. */
uint64_t lf_ttok_shape(const char *s, size_t n);

/* Writes into out (room for a_len + 3 bytes) the token that covers both a and b: the punctuation
 * both share at their end (up to two characters) and their common head up to a key mark or an
 * opening bracket that is closed at the end are kept around "<*>" ("'<*>'", "<*>,", "size=<*>",
 * "chdir(<*>)"; "()" and "(x)" give "(<*>)": a "<*>" inside a token may stand for nothing); otherwise
 * "<*>". Returns its length. a and b differ. */
size_t lf_ttok_generalise(const char *a, size_t a_len, const char *b, size_t b_len, char *out);

#endif
