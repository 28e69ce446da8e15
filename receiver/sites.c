/* Site table file (see sites.h). */
#include "sites.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_fileio.h"
#include "lf_jskv.h"
#include "lf_json.h"
#include "lf_log.h"
#include "lf_watched_file.h"

#define SITES_FILE_MAX (16u << 20)

static int parse(const char *text, lf_site **out, size_t *count, lf_buf *err)
{
    lf_site *sites = NULL;
    size_t n = 0, cap = 0;
    unsigned lineno = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        lineno++;
        char line[512];
        if (len >= sizeof line) {
            lf_buf_msgf(err, "line %u: too long", lineno);
            goto fail;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (eol ? 1 : 0);
        if (line[0] == '\0' || line[0] == '#')
            continue;
        char name[128], pk[128], state[32], extra[2];
        if (sscanf(line, "%127s %127s %31s %1s", name, pk, state, extra) != 3 ||
            !lf_sign_site_valid(name, strlen(name)) ||
            (strcmp(state, "enabled") != 0 && strcmp(state, "disabled") != 0)) {
            lf_buf_msgf(err, "line %u: expected NAME PUBKEY enabled|disabled", lineno);
            goto fail;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            lf_site *ns = lf_realloc(sites, ncap * sizeof *ns);
            if (!ns) {
                lf_free(sites);
                return -ENOMEM;
            }
            sites = ns;
            cap = ncap;
        }
        lf_site *s = &sites[n];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", name);
        if (lf_sign_pk_decode(s->pk, pk, strlen(pk)) != 0) {
            lf_buf_msgf(err, "line %u: public key is not base64 of 32 bytes", lineno);
            goto fail;
        }
        s->enabled = strcmp(state, "enabled") == 0;
        n++;
    }
    *out = sites;
    *count = n;
    return 0;
fail:
    lf_free(sites);
    return LF_EFORMAT;
}

/* (Re)loads the table; a missing file is an empty table. On failure the old table stays. */
static int load(lf_sites *s, lf_buf *err)
{
    struct stat st;
    lf_buf b = LF_BUF_INIT(SITES_FILE_MAX);
    int rc = lf_watched_file_read(&s->file, SITES_FILE_MAX, &b, &st);
    lf_site *sites = NULL;
    size_t n = 0;
    if (rc == 0) {
        lf_buf why = LF_BUF_INIT(256);
        rc = parse(lf_buf_cstr(&b), &sites, &n, &why);
        if (rc != 0)
            lf_buf_msgf(err, "%s: %s", s->file.path, rc == -ENOMEM ? "out of memory" : lf_buf_cstr(&why));
        lf_buf_free(&why);
    } else if (rc == -ENOENT) {
        rc = 0;
    } else {
        lf_buf_msgf(err, "%s: %s", s->file.path, lf_strerror(rc));
    }
    lf_buf_free(&b);
    if (rc != 0)
        return rc;
    lf_free(s->sites);
    s->sites = sites;
    s->count = n;
    lf_watched_file_take(&s->file, &st);
    return 0;
}

int lf_sites_open(lf_sites *s, const char *path, lf_buf *err)
{
    memset(s, 0, sizeof *s);
    int rc = lf_watched_file_init(&s->file, path);
    if (rc == 0)
        rc = load(s, err);
    if (rc != 0)
        lf_sites_close(s);
    return rc;
}

void lf_sites_close(lf_sites *s)
{
    lf_free(s->sites);
    lf_watched_file_close(&s->file);
    memset(s, 0, sizeof *s);
}

static void rebuild_from_mirror(lf_sites *s);

void lf_sites_refresh(lf_sites *s)
{
    if (s->mirror) {
        if (lf_jskv_mirror_generation(s->mirror) != s->mirror_gen)
            rebuild_from_mirror(s);
        return;
    }
    struct stat now;
    if (!lf_watched_file_changed(&s->file, &now))
        return;
    lf_buf err = LF_BUF_INIT(512);
    if (load(s, &err) != 0)
        LF_ERROR("sites", "keeping the previous site table: %s", lf_buf_cstr(&err));
    else
        LF_INFO("sites", "site table reloaded: %zu sites", s->count);
    lf_buf_free(&err);
}

const lf_site *lf_sites_find(const lf_sites *s, const char *name)
{
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->sites[i].name, name) == 0)
            return &s->sites[i];
    return NULL;
}

int lf_sites_save(const lf_sites *s)
{
    lf_buf b = LF_BUF_INIT(SITES_FILE_MAX);
    int rc = 0;
    for (size_t i = 0; i < s->count && rc == 0; i++) {
        char pk[LF_SIGN_PK_B64_SIZE];
        lf_sign_pk_encode(pk, s->sites[i].pk);
        rc = lf_buf_appendf(&b, "%s %s %s\n", s->sites[i].name, pk,
                            s->sites[i].enabled ? "enabled" : "disabled");
    }
    if (rc == 0)
        rc = lf_write_file_atomic(s->file.path, b.data ? b.data : "", b.len, 0600);
    lf_buf_free(&b);
    return rc;
}

int lf_sites_put(lf_sites *s, const char *name, const uint8_t pk[LF_SIGN_PK_BYTES])
{
    if (!lf_sign_site_valid(name, strlen(name)))
        return -EINVAL;
    lf_site *found = (lf_site *)lf_sites_find(s, name);
    if (!found) {
        lf_site *ns = lf_realloc(s->sites, (s->count + 1) * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        s->sites = ns;
        found = &s->sites[s->count++];
        memset(found, 0, sizeof *found);
        snprintf(found->name, sizeof found->name, "%s", name);
    }
    memcpy(found->pk, pk, LF_SIGN_PK_BYTES);
    found->enabled = true;
    return 0;
}

/* ---- backend = jetstream: the bucket LF_SITES ---- */

int lf_site_to_json(const lf_site *site, lf_buf *out)
{
    char pk[LF_SIGN_PK_B64_SIZE];
    lf_sign_pk_encode(pk, site->pk);
    lf_buf_reset(out);
    return lf_buf_appendf(out, "{\"pubkey\":\"%s\",\"enabled\":%s}", pk, site->enabled ? "true" : "false");
}

int lf_site_from_json(const char *name, const void *value, size_t len, lf_site *out)
{
    if (!lf_sign_site_valid(name, strlen(name)))
        return LF_EFORMAT;
    json_t *o = NULL;
    if (lf_json_parse(value, len, LF_JSKV_VALUE_MAX, &o, NULL) != 0)
        return LF_EFORMAT;
    const char *pk = NULL;
    bool enabled = false;
    int rc = 0;
    if (!json_is_object(o) || lf_json_get_string(o, "pubkey", &pk) != 0 || lf_json_get_bool(o, "enabled", &enabled) != 0)
        rc = LF_EFORMAT;
    memset(out, 0, sizeof *out);
    if (rc == 0 && lf_sign_pk_decode(out->pk, pk, strlen(pk)) != 0)
        rc = LF_EFORMAT;
    json_decref(o);
    if (rc != 0)
        return rc;
    snprintf(out->name, sizeof out->name, "%s", name);
    out->enabled = enabled;
    return 0;
}

typedef struct table_build {
    lf_site *sites;
    size_t n, cap;
    unsigned skipped;
} table_build;

static int add_entry(void *arg, const char *key, const void *value, size_t len)
{
    table_build *b = arg;
    lf_site site;
    if (lf_site_from_json(key, value, len, &site) != 0) {
        LF_ERROR("sites", "%s: entry %s is not a site ({\"pubkey\":...,\"enabled\":...}): left out", LF_JSKV_SITES,
                 key);
        b->skipped++;
        return 0;
    }
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 16;
        lf_site *ns = lf_realloc(b->sites, ncap * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        b->sites = ns;
        b->cap = ncap;
    }
    b->sites[b->n++] = site;
    return 0;
}

static void rebuild_from_mirror(lf_sites *s)
{
    table_build b = {0};
    uint64_t gen = 0;
    int rc = lf_jskv_mirror_each(s->mirror, &gen, add_entry, &b);
    if (rc != 0) {
        lf_free(b.sites);
        LF_ERROR("sites", "keeping the previous site table: %s", lf_strerror(rc));
        return;
    }
    lf_free(s->sites);
    s->sites = b.sites;
    s->count = b.n;
    s->mirror_gen = gen;
    LF_INFO("sites", "site table from %s: %zu sites", LF_JSKV_SITES, s->count);
}

void lf_sites_follow(lf_sites *s, struct lf_jskv_mirror *m)
{
    s->mirror = m;
    s->mirror_gen = 0;
    rebuild_from_mirror(s);
}

int lf_sites_load_kv(lf_sites *s, struct lf_jskv *kv, lf_buf *err)
{
    table_build b = {0};
    int rc = lf_jskv_each(kv, add_entry, &b, err);
    if (rc != 0) {
        lf_free(b.sites);
        return rc;
    }
    lf_free(s->sites);
    s->sites = b.sites;
    s->count = b.n;
    return 0;
}

int lf_sites_kv_get(struct lf_jskv *kv, const char *name, lf_site *out, lf_buf *err)
{
    if (!lf_jskv_key_valid(name))
        return -ENOENT; /* no such key can exist */
    lf_buf v = LF_BUF_INIT(LF_JSKV_VALUE_MAX);
    int rc = lf_jskv_get(kv, name, &v, NULL, err);
    if (rc == 0 && (rc = lf_site_from_json(name, v.data ? v.data : "", v.len, out)) != 0)
        lf_buf_msgf(err, "%s: the entry of %s is not a site", LF_JSKV_SITES, name);
    lf_buf_free(&v);
    return rc;
}

int lf_sites_kv_put(struct lf_jskv *kv, const lf_site *site, lf_buf *err)
{
    if (!lf_sign_site_valid(site->name, strlen(site->name)) || !lf_jskv_key_valid(site->name)) {
        lf_buf_msgf(err, "site %s: names with a dot at either end or two dots in a row cannot be shared on JetStream",
                    site->name);
        return -EINVAL;
    }
    lf_buf v = LF_BUF_INIT(LF_JSKV_VALUE_MAX);
    int rc = lf_site_to_json(site, &v);
    if (rc == 0)
        rc = lf_jskv_put(kv, site->name, v.data, v.len, NULL, err);
    lf_buf_free(&v);
    return rc;
}
