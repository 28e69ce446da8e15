/* The site table: which sites may upload, with their Ed25519 public keys.
 * File format, one site a line: "NAME PUBKEY_BASE64 enabled|disabled". Written atomically (0600).
 * The daemon re-reads the file whenever its identity, size or mtime changed (one stat per upload),
 * so `sites add/disable` take effect at once. */
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

typedef struct lf_sites {
    lf_watched_file file; /* the site table file */
    lf_site *sites;
    size_t count;
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

#endif
