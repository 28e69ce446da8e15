/* The site table: which sites may upload, with their Ed25519 public keys.
 * File format, one site a line: "NAME PUBKEY_BASE64 enabled|disabled". Written atomically (0600).
 * The daemon re-reads the file whenever its identity, size or mtime changed (one stat per upload),
 * so `sites add/disable` take effect at once.
 *
 * With `[queue] backend = jetstream` the table is the bucket LF_SITES instead (lf_jskv.h), shared by
 * every receiver: key the site's name, value {"pubkey":"BASE64","enabled":true}. The daemon follows
 * the bucket through a mirror (lf_sites_follow) and the file is not read; the commands write the
 * bucket (lf_sites_kv_*). */
#ifndef LF_RECEIVER_SITES_H
#define LF_RECEIVER_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "lf_buf.h"
#include "lf_sign.h"
#include "lf_watched_file.h"

typedef struct lf_site {
    char name[LF_SIGN_SITE_MAX + 1];
    uint8_t pk[LF_SIGN_PK_BYTES];
    bool enabled;
} lf_site;

struct lf_jskv;
struct lf_jskv_mirror;

typedef struct lf_sites {
    lf_watched_file file; /* the site table file */
    lf_site *sites;
    size_t count;
    struct lf_jskv_mirror *mirror; /* jetstream: the table follows this copy of LF_SITES (not owned) */
    uint64_t mirror_gen;           /* the mirror's generation the table was built from */
} lf_sites;

/* Initialises and loads (a missing file is an empty table). 0 or a negative code (err says why). */
int lf_sites_open(lf_sites *s, const char *path, lf_buf *err);
void lf_sites_close(lf_sites *s);
/* Re-reads the file when it changed; keeps the old table if the new one is invalid (logged). */
void lf_sites_refresh(lf_sites *s);
const lf_site *lf_sites_find(const lf_sites *s, const char *name);
/* Writes the table atomically. */
int lf_sites_save(const lf_sites *s);
/* Adds a site or replaces its key (enabled). -EINVAL bad name. */
int lf_sites_put(lf_sites *s, const char *name, const uint8_t pk[LF_SIGN_PK_BYTES]);

/* backend = jetstream: from now on the table is the mirror's (rebuilt by refresh when it changed;
 * an entry that does not parse is logged and left out). Builds it once now. */
void lf_sites_follow(lf_sites *s, struct lf_jskv_mirror *m);
/* The bucket's value of a site, and back. LF_EFORMAT for a value that is not one. */
int lf_site_to_json(const lf_site *site, lf_buf *out);
int lf_site_from_json(const char *name, const void *value, size_t len, lf_site *out);
/* Replaces s's table with the bucket's (for the commands). */
int lf_sites_load_kv(lf_sites *s, struct lf_jskv *kv, lf_buf *err);
/* One site from the bucket: -ENOENT none, LF_EFORMAT unreadable. */
int lf_sites_kv_get(struct lf_jskv *kv, const char *name, lf_site *out, lf_buf *err);
/* Writes one site to the bucket. -EINVAL when its name cannot be a key (dots at an end or doubled). */
int lf_sites_kv_put(struct lf_jskv *kv, const lf_site *site, lf_buf *err);

#endif
