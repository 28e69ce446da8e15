/* Operator subcommands (see commands.h). They work on the files the daemon uses; the daemon notices
 * changes to the site table, the tokens and the keyring by itself. With `[queue] backend = jetstream`
 * the sites and tokens commands work on the buckets LF_SITES and LF_TOKENS instead (sites.h, auth.h),
 * which every receiver follows; `sites import` and `tokens import` copy the files' entries there. */
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "index.h"
#include "keys.h"
#include "lf_alloc.h"
#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_fileio.h"
#include "lf_jsconfig.h"
#include "lf_jskv.h"
#include "lf_json.h"
#include "lf_progress.h"
#include "lf_queue.h"
#include "lf_secretstream.h"
#include "receiver_config.h"
#include "site_report.h"
#include "sites.h"
#include "store.h"

#define EXIT_RUNTIME LF_RECEIVER_EXIT_RUNTIME
#define EXIT_USAGE LF_RECEIVER_EXIT_USAGE

static const struct lf_receiver_config *cfg_of(lf_service *svc)
{
    return lf_service_config_data(svc);
}

static int usage(const char *msg)
{
    fprintf(stderr, "logferry-receiver: %s (see --help)\n", msg);
    return EXIT_USAGE;
}

/* ---- the shared buckets (backend = jetstream) ---- */

typedef struct shared_bucket {
    lf_jetstream *js;
    lf_jskv *kv;
} shared_bucket;

static bool on_jetstream(const struct lf_receiver_config *cfg)
{
    return cfg->js.backend == LF_QUEUE_BACKEND_JETSTREAM;
}

/* 0, or non-zero with the reason printed. */
static int shared_open(const struct lf_receiver_config *cfg, const char *bucket, shared_bucket *b)
{
    memset(b, 0, sizeof *b);
    lf_jetstream_options o;
    lf_jsconfig_connection(&cfg->js, "logferry-receiver command", &o);
    lf_buf err = LF_BUF_INIT(512);
    int rc = lf_jetstream_connect(&o, &b->js, &err);
    if (rc == 0)
        rc = lf_jskv_open(b->js, bucket, (int)cfg->js.replicas, &b->kv, &err);
    if (rc != 0)
        fprintf(stderr, "logferry-receiver: %s on JetStream: %s\n", bucket, err.len ? lf_buf_cstr(&err) : lf_strerror(rc));
    lf_buf_free(&err);
    return rc;
}

static void shared_close(shared_bucket *b)
{
    lf_jskv_close(b->kv);
    lf_jetstream_close(b->js);
    lf_jetstream_shutdown();
}

/* ---- sites ---- */

/* The sites with their figures from the index (which the daemon may hold open: SQLite shares it). */
static int sites_list(const struct lf_receiver_config *cfg, const lf_sites *s, bool as_json)
{
    char err[512] = "";
    lf_index *ix = NULL;
    int rc = lf_index_open(cfg->index_path, &ix, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "logferry-receiver: sites list: %s\n", err);
        return EXIT_RUNTIME;
    }
    json_t *report = NULL;
    lf_buf out = LF_BUF_INIT(64u << 20);
    lf_buf why = LF_BUF_INIT(512);
    rc = lf_site_report(s, ix, &report, &why);
    if (rc == 0) {
        rc = as_json ? lf_json_dump(report, &out) : lf_site_report_text(report, &out);
        if (rc == 0 && as_json)
            rc = lf_buf_append_char(&out, '\n');
        json_decref(report);
    }
    lf_index_close(ix);
    if (rc == 0)
        fputs(lf_buf_cstr(&out), stdout);
    else
        fprintf(stderr, "logferry-receiver: sites list: %s\n", why.len ? lf_buf_cstr(&why) : lf_strerror(rc));
    lf_buf_free(&out);
    lf_buf_free(&why);
    return rc == 0 ? 0 : EXIT_RUNTIME;
}

#define SITES_USAGE "sites: add NAME PUBKEY | disable NAME | enable NAME | list [--json] | import"

/* Copies the file's sites that the bucket lacks (the bucket's entries win). */
static int sites_import(const struct lf_receiver_config *cfg, lf_jskv *kv)
{
    lf_sites file;
    lf_buf err = LF_BUF_INIT(512);
    int rc = lf_sites_open(&file, cfg->sites_file, &err);
    unsigned copied = 0, kept = 0;
    for (size_t i = 0; rc == 0 && i < file.count; i++) {
        lf_site have;
        rc = lf_sites_kv_get(kv, file.sites[i].name, &have, &err);
        if (rc == 0) {
            kept++;
        } else if (rc == -ENOENT) {
            rc = lf_sites_kv_put(kv, &file.sites[i], &err);
            copied += rc == 0;
        }
    }
    if (rc == 0)
        printf("%u sites copied from %s to %s, %u already there (kept as they are)\n", copied, cfg->sites_file,
               LF_JSKV_SITES, kept);
    else
        fprintf(stderr, "logferry-receiver: sites import: %s\n", err.len ? lf_buf_cstr(&err) : lf_strerror(rc));
    lf_buf_free(&err);
    if (file.file.path)
        lf_sites_close(&file);
    return rc == 0 ? 0 : EXIT_RUNTIME;
}

static int cmd_sites_js(const struct lf_receiver_config *cfg, int argc, char **argv)
{
    bool list = strcmp(argv[1], "list") == 0 && (argc == 2 || (argc == 3 && strcmp(argv[2], "--json") == 0));
    bool add = strcmp(argv[1], "add") == 0 && argc == 4;
    bool toggle = (strcmp(argv[1], "disable") == 0 || strcmp(argv[1], "enable") == 0) && argc == 3;
    bool import = strcmp(argv[1], "import") == 0 && argc == 2;
    lf_site site = {0};
    if (add) {
        if (!lf_sign_site_valid(argv[2], strlen(argv[2])))
            return usage("sites add: site names match [a-z0-9._-]{1,64}");
        if (lf_sign_pk_decode(site.pk, argv[3], strlen(argv[3])) != 0)
            return usage("sites add: PUBKEY must be base64 of a 32-byte Ed25519 public key");
    } else if (!list && !toggle && !import) {
        return usage(SITES_USAGE);
    }
    shared_bucket b;
    if (shared_open(cfg, LF_JSKV_SITES, &b) != 0) {
        shared_close(&b);
        return EXIT_RUNTIME;
    }
    lf_buf err = LF_BUF_INIT(512);
    int ret = 0, rc = 0;
    if (list) {
        lf_sites s;
        memset(&s, 0, sizeof s);
        if ((rc = lf_sites_load_kv(&s, b.kv, &err)) == 0)
            ret = sites_list(cfg, &s, argc == 3);
        lf_free(s.sites);
    } else if (import) {
        ret = sites_import(cfg, b.kv);
    } else if (add) {
        snprintf(site.name, sizeof site.name, "%s", argv[2]);
        site.enabled = true;
        if ((rc = lf_sites_kv_put(b.kv, &site, &err)) == 0)
            printf("site %s added (enabled) in %s\n", argv[2], LF_JSKV_SITES);
    } else {
        rc = lf_sites_kv_get(b.kv, argv[2], &site, &err);
        if (rc == -ENOENT) {
            fprintf(stderr, "logferry-receiver: no site named %s\n", argv[2]);
            ret = EXIT_RUNTIME;
            rc = 0;
        } else if (rc == 0) {
            site.enabled = strcmp(argv[1], "enable") == 0;
            if ((rc = lf_sites_kv_put(b.kv, &site, &err)) == 0)
                printf("site %s %sd in %s\n", argv[2], argv[1], LF_JSKV_SITES);
        }
    }
    if (rc != 0) {
        fprintf(stderr, "logferry-receiver: sites %s: %s\n", argv[1], err.len ? lf_buf_cstr(&err) : lf_strerror(rc));
        ret = EXIT_RUNTIME;
    }
    lf_buf_free(&err);
    shared_close(&b);
    return ret;
}

static int cmd_sites(lf_service *svc, int argc, char **argv)
{
    const struct lf_receiver_config *cfg = cfg_of(svc);
    if (argc < 2)
        return usage(SITES_USAGE);
    if (on_jetstream(cfg))
        return cmd_sites_js(cfg, argc, argv);
    if (strcmp(argv[1], "import") == 0)
        return usage("sites import: copies the sites file to JetStream; needs [queue] backend = jetstream");
    lf_sites s;
    lf_buf err = LF_BUF_INIT(512);
    int rc = lf_sites_open(&s, cfg->sites_file, &err);
    if (rc != 0) {
        fprintf(stderr, "logferry-receiver: %s\n", lf_buf_cstr(&err));
        lf_buf_free(&err);
        return EXIT_RUNTIME;
    }
    lf_buf_free(&err);
    int ret = 0;
    if (strcmp(argv[1], "list") == 0 && (argc == 2 || (argc == 3 && strcmp(argv[2], "--json") == 0))) {
        ret = sites_list(cfg, &s, argc == 3);
    } else if (strcmp(argv[1], "add") == 0 && argc == 4) {
        uint8_t pk[LF_SIGN_PK_BYTES];
        if (!lf_sign_site_valid(argv[2], strlen(argv[2]))) {
            ret = usage("sites add: site names match [a-z0-9._-]{1,64}");
        } else if (lf_sign_pk_decode(pk, argv[3], strlen(argv[3])) != 0) {
            ret = usage("sites add: PUBKEY must be base64 of a 32-byte Ed25519 public key");
        } else if ((rc = lf_sites_put(&s, argv[2], pk)) != 0 || (rc = lf_sites_save(&s)) != 0) {
            fprintf(stderr, "logferry-receiver: sites add: %s\n", lf_strerror(rc));
            ret = EXIT_RUNTIME;
        } else {
            printf("site %s added (enabled)\n", argv[2]);
        }
    } else if ((strcmp(argv[1], "disable") == 0 || strcmp(argv[1], "enable") == 0) && argc == 3) {
        lf_site *site = (lf_site *)lf_sites_find(&s, argv[2]);
        if (!site) {
            fprintf(stderr, "logferry-receiver: no site named %s\n", argv[2]);
            ret = EXIT_RUNTIME;
        } else {
            site->enabled = strcmp(argv[1], "enable") == 0;
            if ((rc = lf_sites_save(&s)) != 0) {
                fprintf(stderr, "logferry-receiver: sites %s: %s\n", argv[1], lf_strerror(rc));
                ret = EXIT_RUNTIME;
            } else {
                printf("site %s %sd\n", argv[2], argv[1]);
            }
        }
    } else {
        ret = usage(SITES_USAGE);
    }
    lf_sites_close(&s);
    return ret;
}

/* ---- keys ---- */

static int cmd_keys(lf_service *svc, int argc, char **argv)
{
    const struct lf_receiver_config *cfg = cfg_of(svc);
    if (argc != 2 || (strcmp(argv[1], "rotate") != 0 && strcmp(argv[1], "list") != 0))
        return usage("keys: rotate | list");
    lf_keyring kr;
    lf_keyring_init(&kr);
    char err[256] = "";
    int rc = 0;
    if (access(cfg->keys_dir, F_OK) == 0)
        rc = lf_keyring_load(&kr, cfg->keys_dir, false, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "logferry-receiver: %s\n", err);
        lf_keyring_free(&kr);
        return EXIT_RUNTIME;
    }
    if (strcmp(argv[1], "rotate") == 0) {
        uint8_t id[LF_KEY_ID_BYTES];
        rc = lf_keyring_rotate(&kr, cfg->keys_dir, id);
        if (rc != 0) {
            fprintf(stderr, "logferry-receiver: keys rotate: %s\n", lf_strerror(rc));
            lf_keyring_free(&kr);
            return EXIT_RUNTIME;
        }
        char hex[LF_KEY_ID_HEX_SIZE];
        printf("new current key %s (%zu keys; older ones are kept for reading)\n",
               lf_crypto_hex_encode(hex, id, sizeof id), kr.count);
    } else {
        for (size_t i = 0; i < kr.count; i++) {
            char hex[LF_KEY_ID_HEX_SIZE];
            printf("%s%s\n", lf_crypto_hex_encode(hex, kr.keys[i].id, LF_KEY_ID_BYTES),
                   (long)i == kr.current ? " current" : "");
        }
    }
    lf_keyring_free(&kr);
    return 0;
}

/* ---- tokens ---- */

/* Copies the file's tokens that the bucket lacks (the bucket's entries win). */
static int tokens_import(const struct lf_receiver_config *cfg, const lf_tokens *t, lf_jskv *kv, lf_buf *err)
{
    unsigned copied = 0, kept = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->count; i++) {
        rc = lf_tokens_kv_create(t, kv, &t->tokens[i], err);
        if (rc == -EEXIST) {
            kept++;
            rc = 0;
        } else {
            copied += rc == 0;
        }
    }
    if (rc == 0)
        printf("%u tokens copied from %s to %s, %u already there (kept as they are)\n", copied, cfg->tokens_file,
               LF_JSKV_TOKENS, kept);
    return rc;
}

/* backend = jetstream: t holds the token key and the file's table (for import). */
static int cmd_tokens_js(const struct lf_receiver_config *cfg, lf_tokens *t, int argc, char **argv, const char *u)
{
    bool list = strcmp(argv[1], "list") == 0 && argc == 2;
    bool add = strcmp(argv[1], "add") == 0 && argc == 5 && strcmp(argv[3], "--scope") == 0;
    bool revoke = strcmp(argv[1], "revoke") == 0 && argc == 3;
    bool import = strcmp(argv[1], "import") == 0 && argc == 2;
    lf_token_entry e = {0};
    if (add) {
        const char *name = argv[2];
        size_t nl = strlen(name);
        if (!(nl > 0 && nl <= LF_TOKEN_NAME_MAX &&
              strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == nl) ||
            !lf_jskv_key_valid(name))
            return usage("tokens add: names are 1-64 characters of [A-Za-z0-9._-], no dot at an end or two in a row");
        if (lf_scopes_parse(argv[4], &e.scopes) != 0)
            return usage("tokens add: scopes are a comma-separated list of worker, read, admin");
        snprintf(e.name, sizeof e.name, "%s", name);
    } else if (!list && !revoke && !import) {
        return usage(u);
    }
    shared_bucket b;
    if (shared_open(cfg, LF_JSKV_TOKENS, &b) != 0) {
        shared_close(&b);
        return EXIT_RUNTIME;
    }
    lf_buf err = LF_BUF_INIT(512);
    int ret = 0, rc = 0;
    if (list) {
        lf_tokens shared = *t; /* the key; the table is the bucket's */
        shared.tokens = NULL;
        shared.count = 0;
        if ((rc = lf_tokens_load_kv(&shared, b.kv, &err)) == 0)
            for (size_t i = 0; i < shared.count; i++) {
                char sc[32];
                lf_scopes_format(shared.tokens[i].scopes, sc, sizeof sc);
                printf("%s %s\n", shared.tokens[i].name, sc);
            }
        lf_free(shared.tokens);
    } else if (import) {
        rc = tokens_import(cfg, t, b.kv, &err);
    } else if (add) {
        char tok[LF_TOKEN_TEXT_LEN + 1];
        lf_crypto_token_generate(tok);
        if ((rc = lf_crypto_token_hash(e.hash, t->key, tok, strlen(tok))) == 0)
            rc = lf_tokens_kv_create(t, b.kv, &e, &err);
        if (rc == -EEXIST) {
            fprintf(stderr, "logferry-receiver: a token named %s exists (revoke it first)\n", e.name);
            ret = EXIT_RUNTIME;
            rc = 0;
        } else if (rc == 0) {
            printf("%s\n", tok);
            fprintf(stderr, "token %s created in %s; it is shown only this once\n", e.name, LF_JSKV_TOKENS);
        }
        sodium_memzero(tok, sizeof tok);
    } else {
        lf_buf v = LF_BUF_INIT(LF_JSKV_VALUE_MAX);
        rc = lf_jskv_key_valid(argv[2]) ? lf_jskv_get(b.kv, argv[2], &v, NULL, &err) : -ENOENT;
        lf_buf_free(&v);
        if (rc == -ENOENT) {
            fprintf(stderr, "logferry-receiver: no token named %s\n", argv[2]);
            ret = EXIT_RUNTIME;
            rc = 0;
        } else if (rc == 0 && (rc = lf_jskv_delete(b.kv, argv[2], &err)) == 0) {
            printf("token %s revoked in %s\n", argv[2], LF_JSKV_TOKENS);
        }
    }
    if (rc != 0) {
        fprintf(stderr, "logferry-receiver: tokens %s: %s\n", argv[1], err.len ? lf_buf_cstr(&err) : lf_strerror(rc));
        ret = EXIT_RUNTIME;
    }
    lf_buf_free(&err);
    shared_close(&b);
    return ret;
}

static int cmd_tokens(lf_service *svc, int argc, char **argv)
{
    const struct lf_receiver_config *cfg = cfg_of(svc);
    const char *u = on_jetstream(cfg) ? "tokens: add NAME --scope worker[,read,admin] | list | revoke NAME | import"
                                      : "tokens: add NAME --scope worker[,read,admin] | list | revoke NAME";
    if (argc < 2)
        return usage(u);
    lf_tokens t;
    lf_buf err = LF_BUF_INIT(512);
    bool adding = strcmp(argv[1], "add") == 0;
    int rc = lf_tokens_open(&t, cfg->tokens_file, cfg->token_key_file, adding, &err);
    if (rc != 0) {
        bool no_key_yet = rc == -ENOENT && !adding && strcmp(argv[1], "list") == 0; /* no tokens */
        if (!no_key_yet)
            fprintf(stderr, "logferry-receiver: %s\n", lf_buf_cstr(&err));
        lf_buf_free(&err);
        return no_key_yet ? 0 : EXIT_RUNTIME;
    }
    lf_buf_free(&err);
    if (on_jetstream(cfg)) {
        int jret = cmd_tokens_js(cfg, &t, argc, argv, u);
        lf_tokens_close(&t);
        return jret;
    }
    int ret = 0;
    if (strcmp(argv[1], "list") == 0 && argc == 2) {
        for (size_t i = 0; i < t.count; i++) {
            char sc[32];
            lf_scopes_format(t.tokens[i].scopes, sc, sizeof sc);
            printf("%s %s\n", t.tokens[i].name, sc);
        }
    } else if (adding && argc == 5 && strcmp(argv[3], "--scope") == 0) {
        unsigned scopes;
        const char *name = argv[2];
        bool exists = false;
        for (size_t i = 0; i < t.count; i++)
            exists |= strcmp(t.tokens[i].name, name) == 0;
        size_t nl = strlen(name);
        bool name_ok = nl > 0 && nl <= LF_TOKEN_NAME_MAX && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == nl;
        if (!name_ok) {
            ret = usage("tokens add: names are 1-64 characters of [A-Za-z0-9._-]");
        } else if (exists) {
            fprintf(stderr, "logferry-receiver: a token named %s exists (revoke it first)\n", name);
            ret = EXIT_RUNTIME;
        } else if (lf_scopes_parse(argv[4], &scopes) != 0) {
            ret = usage("tokens add: scopes are a comma-separated list of worker, read, admin");
        } else {
            char tok[LF_TOKEN_TEXT_LEN + 1];
            lf_crypto_token_generate(tok);
            lf_token_entry *nv = lf_realloc(t.tokens, (t.count + 1) * sizeof *nv);
            if (!nv) {
                ret = EXIT_RUNTIME;
            } else {
                t.tokens = nv;
                lf_token_entry *e = &t.tokens[t.count++];
                snprintf(e->name, sizeof e->name, "%s", name);
                e->scopes = scopes;
                if ((rc = lf_crypto_token_hash(e->hash, t.key, tok, strlen(tok))) != 0 ||
                    (rc = lf_tokens_save(&t)) != 0) {
                    fprintf(stderr, "logferry-receiver: tokens add: %s\n", lf_strerror(rc));
                    ret = EXIT_RUNTIME;
                } else {
                    printf("%s\n", tok);
                    fprintf(stderr, "token %s created; it is shown only this once\n", name);
                }
            }
            sodium_memzero(tok, sizeof tok);
        }
    } else if (strcmp(argv[1], "revoke") == 0 && argc == 3) {
        size_t j = 0;
        for (size_t i = 0; i < t.count; i++)
            if (strcmp(t.tokens[i].name, argv[2]) != 0)
                t.tokens[j++] = t.tokens[i];
        if (j == t.count) {
            fprintf(stderr, "logferry-receiver: no token named %s\n", argv[2]);
            ret = EXIT_RUNTIME;
        } else {
            t.count = j;
            if ((rc = lf_tokens_save(&t)) != 0) {
                fprintf(stderr, "logferry-receiver: tokens revoke: %s\n", lf_strerror(rc));
                ret = EXIT_RUNTIME;
            } else {
                printf("token %s revoked\n", argv[2]);
            }
        }
    } else {
        ret = usage(u);
    }
    lf_tokens_close(&t);
    return ret;
}

/* ---- sessions export ---- */

static void export_progress(void *arg, uint64_t plain_bytes)
{
    lf_progress_update(arg, plain_bytes, lf_progress_now_ms());
}

static int cmd_requeue(const struct lf_receiver_config *cfg)
{
    char err[256] = "";
    lf_index *ix = NULL;
    int rc = lf_index_open(cfg->index_path, &ix, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "logferry-receiver: index: %s\n", err);
        return EXIT_RUNTIME;
    }
    uint64_t n = 0;
    rc = lf_index_requeue_all(ix, &n);
    lf_index_close(ix);
    if (rc != 0) {
        fprintf(stderr, "logferry-receiver: sessions requeue: %s\n", lf_strerror(rc));
        return EXIT_RUNTIME;
    }
    printf("%" PRIu64 " sessions will be queued again at the next start\n", n);
    return 0;
}

static int cmd_sessions(lf_service *svc, int argc, char **argv)
{
    const struct lf_receiver_config *cfg = cfg_of(svc);
    if (argc == 2 && strcmp(argv[1], "requeue") == 0)
        return cmd_requeue(cfg);
    const char *out = NULL;
    if (argc == 5 && strcmp(argv[3], "--out") == 0)
        out = argv[4];
    else if (argc != 3)
        return usage("sessions export ID [--out FILE] | requeue");
    if (strcmp(argv[1], "export") != 0)
        return usage("sessions export ID [--out FILE] | requeue");
    char err[256] = "";
    lf_index *ix = NULL;
    lf_store *store = NULL;
    lf_keyring kr;
    lf_keyring_init(&kr);
    int ret = EXIT_RUNTIME, in = -1, fd = -1;
    char tmp[4096] = "";
    int rc = lf_index_open(cfg->index_path, &ix, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "logferry-receiver: index: %s\n", err);
        goto done;
    }
    lf_index_row row;
    if ((rc = lf_index_get(ix, argv[2], &row)) != 0) {
        fprintf(stderr, "logferry-receiver: session %s: %s\n", argv[2], rc == -ENOENT ? "not stored" : lf_strerror(rc));
        goto done;
    }
    if ((rc = lf_receiver_store_open(cfg, false, &store, err, sizeof err)) != 0 ||
        (rc = lf_keyring_load(&kr, cfg->keys_dir, false, err, sizeof err)) != 0) {
        fprintf(stderr, "logferry-receiver: %s\n", err);
        goto done;
    }
    uint64_t size;
    if ((rc = store->ops->open(store, row.location, &in, &size)) != 0) {
        fprintf(stderr, "logferry-receiver: cannot open %s: %s\n", row.location, lf_strerror(rc));
        goto done;
    }
    if (out) {
        snprintf(tmp, sizeof tmp, "%s.partial", out);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            fprintf(stderr, "logferry-receiver: %s: %s\n", tmp, strerror(errno));
            tmp[0] = '\0';
            goto done;
        }
    } else {
        fd = STDOUT_FILENO;
    }
    uint64_t plain = 0;
    lf_progress progress;
    lf_progress_start(&progress, stderr, isatty(STDERR_FILENO), "export", "B", size, lf_progress_now_ms());
    rc = lf_secretstream_decrypt_fd_progress(&kr, in, fd, &plain, export_progress, &progress);
    if (rc == 0)
        lf_progress_end(&progress, lf_progress_now_ms());
    if (rc == 0 && out)
        rc = lf_fsync(fd);
    if (rc != 0) {
        fprintf(stderr, "logferry-receiver: decrypting %s: %s\n", row.location, lf_strerror(rc));
        goto done;
    }
    if (out) {
        close(fd);
        fd = -1;
        if (rename(tmp, out) != 0) {
            fprintf(stderr, "logferry-receiver: %s: %s\n", out, strerror(errno));
            goto done;
        }
        tmp[0] = '\0';
        fprintf(stderr, "exported %s (%" PRIu64 " bytes) to %s\n", row.id, plain, out);
    }
    ret = 0;
done:
    if (fd >= 0 && out)
        close(fd);
    if (tmp[0])
        unlink(tmp);
    if (in >= 0)
        close(in);
    lf_keyring_free(&kr);
    if (store)
        store->ops->close(store);
    lf_index_close(ix);
    return ret;
}

/* ---- queue ---- */

void lf_receiver_print_queue_stats(const char *q, const lf_queue_statistics *s)
{
    printf("queue %s: depth %" PRIu64 ", in flight %" PRIu64 ", delayed %" PRIu64 ", oldest %" PRIu64
           " ms, dead letters %" PRIu64 " (purged %" PRIu64 "); sent %" PRIu64 ", received %" PRIu64
           ", acked %" PRIu64 ", nacked %" PRIu64 ", dead-lettered %" PRIu64 ", redriven %" PRIu64 "\n",
           q, s->depth, s->in_flight, s->delayed, s->oldest_age_ms, s->dlq_depth, s->dlq_purged, s->sent,
           s->received, s->acked, s->nacked, s->dead_lettered, s->redriven);
}

static int cmd_queue(lf_service *svc, int argc, char **argv)
{
    const struct lf_receiver_config *cfg = cfg_of(svc);
    const char *u = "queue stats [QUEUE] | peek [QUEUE [N]] | redrive [QUEUE] | check | migrate";
    if (argc < 2 || argc > 4)
        return usage(u);
    const char *q = argc >= 3 ? argv[2] : cfg->queue_name;
    if (!lf_queue_name_valid(q))
        return usage("queue names are 1-120 characters of [A-Za-z0-9._-]");
    if (cfg->js.backend == LF_QUEUE_BACKEND_JETSTREAM) {
        bool known = (strcmp(argv[1], "stats") == 0 && argc <= 3) || strcmp(argv[1], "peek") == 0 ||
                     (strcmp(argv[1], "redrive") == 0 && argc <= 3) || (strcmp(argv[1], "check") == 0 && argc == 2) ||
                     (strcmp(argv[1], "migrate") == 0 && argc == 2);
        if (!known)
            return usage(u);
        unsigned long n = argc == 4 ? strtoul(argv[3], NULL, 10) : 10;
        return lf_receiver_queue_command_js(cfg, argv[1], q, n < 1 || n > LF_QUEUE_RECEIVE_MAX ? 10 : n);
    }
    if (strcmp(argv[1], "migrate") == 0) {
        fprintf(stderr, "logferry-receiver: queue migrate moves the embedded queue (%s) onto JetStream: set "
                        "[queue] backend = jetstream and its servers first (docs/operations.md)\n",
                cfg->queue_path);
        return EXIT_USAGE;
    }
    lf_queue_options opt;
    lf_queue_options_init(&opt);
    opt.max_receives = (uint32_t)cfg->max_receives;
    lf_queue_db *db = NULL;
    int rc = lf_queue_db_open(cfg->queue_path, &opt, &db);
    if (rc != 0) {
        fprintf(stderr, "logferry-receiver: queue store %s: %s\n", cfg->queue_path, lf_strerror(rc));
        return EXIT_RUNTIME;
    }
    int ret = 0;
    if (strcmp(argv[1], "stats") == 0 && argc <= 3) {
        lf_queue_statistics s;
        if ((rc = lf_queue_db_stats(db, q, &s)) == 0)
            lf_receiver_print_queue_stats(q, &s);
    } else if (strcmp(argv[1], "peek") == 0) {
        unsigned long n = argc == 4 ? strtoul(argv[3], NULL, 10) : 10;
        if (n < 1 || n > LF_QUEUE_RECEIVE_MAX)
            n = 10;
        lf_queue_msg *msgs = NULL;
        size_t cnt = 0;
        if ((rc = lf_queue_db_peek(db, q, (uint32_t)n, &msgs, &cnt)) == 0) {
            for (size_t i = 0; i < cnt; i++)
                printf("%" PRIu64 " %s receives=%" PRIu32 " sent_ms=%" PRIu64 " %.*s\n", msgs[i].id,
                       msgs[i].in_flight ? "in_flight" : "visible", msgs[i].receive_count, msgs[i].sent_ms,
                       (int)msgs[i].len, (const char *)msgs[i].body);
            lf_queue_msgs_free(msgs, cnt);
        }
    } else if (strcmp(argv[1], "redrive") == 0 && argc <= 3) {
        uint64_t moved = 0;
        if ((rc = lf_queue_db_redrive(db, q, 0, &moved)) == 0)
            printf("moved %" PRIu64 " messages from %s.dlq to %s\n", moved, q, q);
    } else if (strcmp(argv[1], "check") == 0 && argc == 2) {
        char *report = NULL;
        rc = lf_queue_db_check(db, &report);
        printf("%s\n", report ? report : "?");
        lf_free(report);
    } else {
        ret = usage(u);
    }
    if (rc != 0 && ret == 0) {
        fprintf(stderr, "logferry-receiver: queue %s: %s\n", argv[1], lf_strerror(rc));
        ret = EXIT_RUNTIME;
    }
    lf_queue_db_close(db);
    return ret;
}

const lf_service_command lf_receiver_commands[] = {
    {"sites", "add NAME PUBKEY | disable NAME | enable NAME | list [--json] | import",
     "manage the sites allowed to upload; list shows each site's last upload, sessions, bytes and refusals; with "
     "[queue] backend = jetstream they are shared by every receiver (bucket LF_SITES) and import copies the sites "
     "file there",
     cmd_sites, .no_config = false},
    {"keys", "rotate | list", "encryption keys at rest (rotate: new current key, old ones kept)", cmd_keys, .no_config = false},
    {"tokens", "add NAME --scope worker[,read,admin] | list | revoke NAME | import",
     "bearer tokens of the API; with [queue] backend = jetstream shared by every receiver (bucket LF_TOKENS; "
     "each needs the same token_key_file) and import copies the tokens file there",
     cmd_tokens,
     .no_config = false},
    {"sessions", "export ID [--out FILE] | requeue",
     "decrypt a stored session (its zip) for an operator; requeue: queue every stored session again at "
     "the next start (after a lost queue store)",
     cmd_sessions,
     .no_config = false},
    {"queue", "stats [Q] | peek [Q [N]] | redrive [Q] | check | migrate",
     "inspect and repair the durable queue; migrate moves the embedded queue onto JetStream", cmd_queue,
     .no_config = false},
};
const size_t lf_receiver_n_commands = sizeof lf_receiver_commands / sizeof lf_receiver_commands[0];
