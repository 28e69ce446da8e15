/* Unit tests of the receiver's tables: site file, bearer tokens and scopes, session index, the
 * filesystem store (round trip through encryption, scan, refusing paths outside the store). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "index.h"
#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_failpoint.h"
#include "lf_fileio.h"
#include "lf_secretstream.h"
#include "lf_sign.h"
#include "sites.h"
#include "store.h"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/lf-rxunit-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    assert_int_equal(lf_crypto_init(), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_text(const char *path, const char *text)
{
    assert_int_equal(lf_write_file_atomic(path, text, strlen(text), 0600), 0);
}

static void test_sites(void **state)
{
    (void)state;
    char path[300];
    lf_buf err = LF_BUF_INIT(512);
    snprintf(path, sizeof path, "%s/sites", g_dir);
    lf_sites s;
    assert_int_equal(lf_sites_open(&s, path, &err), 0); /* missing file: empty */
    assert_int_equal(s.count, 0);
    uint8_t pk[LF_SIGN_PK_BYTES], sk[LF_SIGN_SK_BYTES];
    assert_int_equal(lf_sign_keypair(pk, sk), 0);
    assert_int_equal(lf_sites_put(&s, "Bad Name", pk), -EINVAL);
    assert_int_equal(lf_sites_put(&s, "site-a", pk), 0);
    assert_int_equal(lf_sites_save(&s), 0);
    lf_sites_close(&s);
    assert_int_equal(lf_sites_open(&s, path, &err), 0);
    const lf_site *a = lf_sites_find(&s, "site-a");
    assert_non_null(a);
    assert_true(a->enabled);
    assert_memory_equal(a->pk, pk, sizeof pk);
    assert_null(lf_sites_find(&s, "site-b"));
    /* a damaged file keeps the loaded table */
    sleep(0); /* mtime granularity is ns; the size differs anyway */
    write_text(path, "site-a not-a-key enabled\n");
    lf_sites_refresh(&s);
    assert_non_null(lf_sites_find(&s, "site-a"));
    char pkt[LF_SIGN_PK_B64_SIZE], line[200];
    lf_sign_pk_encode(pkt, pk);
    snprintf(line, sizeof line, "# comment\nsite-a %s disabled\nsite-b %s enabled\n", pkt, pkt);
    write_text(path, line);
    lf_sites_refresh(&s);
    assert_false(lf_sites_find(&s, "site-a")->enabled);
    assert_true(lf_sites_find(&s, "site-b")->enabled);
    lf_sites_close(&s);
    write_text(path, "site-a\n");
    assert_int_equal(lf_sites_open(&s, path, &err), LF_EFORMAT);
    assert_non_null(strstr(lf_buf_cstr(&err), "line 1: expected NAME PUBKEY"));
    assert_non_null(strstr(lf_buf_cstr(&err), path));
    write_text(path, "");
    lf_buf_free(&err);
}

static void test_scopes_and_tokens(void **state)
{
    (void)state;
    unsigned sc = 0;
    assert_int_equal(lf_scopes_parse("worker,read", &sc), 0);
    assert_int_equal(sc, LF_SCOPE_WORKER | LF_SCOPE_READ);
    assert_int_equal(lf_scopes_parse("", &sc), -EINVAL);
    assert_int_equal(lf_scopes_parse("worker,root", &sc), -EINVAL);
    assert_int_equal(lf_scopes_parse("worker,", &sc), 0);
    char out[40];
    lf_scopes_format(LF_SCOPE_READ | LF_SCOPE_ADMIN, out, sizeof out);
    assert_string_equal(out, "read,admin");

    char path[300], key[300];
    lf_buf err = LF_BUF_INIT(512);
    snprintf(path, sizeof path, "%s/tokens", g_dir);
    snprintf(key, sizeof key, "%s/token.key", g_dir);
    lf_tokens t;
    assert_int_equal(lf_tokens_open(&t, path, key, false, &err), -ENOENT);
    assert_int_equal(lf_tokens_open(&t, path, key, true, &err), 0);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    char tok[LF_TOKEN_TEXT_LEN + 1];
    lf_crypto_token_generate(tok);
    t.tokens = lf_calloc(1, sizeof *t.tokens);
    t.count = 1;
    snprintf(t.tokens[0].name, sizeof t.tokens[0].name, "w");
    t.tokens[0].scopes = LF_SCOPE_WORKER;
    assert_int_equal(lf_crypto_token_hash(t.tokens[0].hash, t.key, tok, strlen(tok)), 0);
    assert_int_equal(lf_tokens_save(&t), 0);
    lf_tokens_close(&t);
    assert_int_equal(lf_tokens_open(&t, path, key, false, &err), 0);
    const char *name = NULL;
    assert_int_equal(lf_tokens_check(&t, tok, strlen(tok), &name), LF_SCOPE_WORKER);
    assert_string_equal(name, "w");
    tok[0] ^= 1;
    assert_int_equal(lf_tokens_check(&t, tok, strlen(tok), NULL), 0);
    assert_int_equal(lf_tokens_check(&t, "", 0, NULL), 0);
    tok[0] ^= 1;
    /* the running table follows the file: a replacement that adds read, a broken one (kept), a
     * deleted file (every token revoked) */
    char text[256];
    snprintf(text, sizeof text, "w worker,read %s\n", t.tokens[0].hash);
    assert_int_equal(lf_write_file_atomic(path, text, strlen(text), 0600), 0);
    lf_tokens_refresh(&t);
    assert_int_equal(lf_tokens_check(&t, tok, strlen(tok), NULL), LF_SCOPE_WORKER | LF_SCOPE_READ);
    assert_int_equal(lf_write_file_atomic(path, "w worker short\n", 15, 0600), 0);
    lf_tokens_refresh(&t);
    assert_int_equal(lf_tokens_check(&t, tok, strlen(tok), NULL), LF_SCOPE_WORKER | LF_SCOPE_READ);
    assert_int_equal(unlink(path), 0);
    lf_tokens_refresh(&t);
    assert_int_equal(t.count, 0);
    assert_int_equal(lf_tokens_check(&t, tok, strlen(tok), NULL), 0);
    assert_int_equal(lf_write_file_atomic(path, text, strlen(text), 0600), 0);
    lf_tokens_close(&t);
    /* the token file is not trusted blindly, and a readable key is refused */
    write_text(path, "w worker tooshort\n");
    assert_int_equal(lf_tokens_open(&t, path, key, false, &err), LF_EFORMAT);
    assert_non_null(strstr(lf_buf_cstr(&err), "line 1: expected NAME SCOPES HASH"));
    chmod(key, 0644);
    assert_int_equal(lf_tokens_open(&t, path, key, false, &err), -EPERM);
    chmod(key, 0600);
    lf_buf_free(&err);
}

static void test_index(void **state)
{
    (void)state;
    char path[300], err[256];
    snprintf(path, sizeof path, "%s/index.db", g_dir);
    lf_index *ix = NULL;
    assert_int_equal(lf_index_open(path, &ix, err, sizeof err), 0);
    lf_index_row row = {0}, got;
    snprintf(row.id, sizeof row.id, "%032x", 7);
    snprintf(row.site, sizeof row.site, "site-a");
    row.size = 10;
    snprintf(row.hash, sizeof row.hash, "%064x", 1);
    snprintf(row.backend, sizeof row.backend, "filesystem");
    snprintf(row.location, sizeof row.location, "2026/11/22/x.lfz");
    snprintf(row.status, sizeof row.status, "stored");
    assert_int_equal(lf_index_get(ix, row.id, &got), -ENOENT);
    assert_int_equal(lf_index_insert(ix, &row), 0);
    assert_int_equal(lf_index_insert(ix, &row), -EEXIST);
    assert_int_equal(lf_index_get(ix, row.id, &got), 0);
    assert_string_equal(got.status, "stored");
    assert_string_equal(got.location, row.location);
    uint64_t n = 0;
    assert_int_equal(lf_index_count(ix, "stored", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(lf_index_set_status(ix, row.id, "queued"), 0);
    assert_int_equal(lf_index_set_status(ix, "nope", "queued"), -ENOENT);
    assert_int_equal(lf_index_count(ix, "stored", &n), 0);
    assert_int_equal(n, 0);
    lf_index_close(ix);
    /* not a database */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/bad.db", g_dir);
    write_text(bad, "this is not an SQLite database, it is text that is long enough to be a header.......");
    assert_int_not_equal(lf_index_open(bad, &ix, err, sizeof err), 0);
}

static int count_scan(void *arg, const char *id, const char *location)
{
    (void)location;
    assert_int_equal(strlen(id), 32);
    (*(int *)arg)++;
    return 0;
}

static void test_fs_store(void **state)
{
    (void)state;
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/store", g_dir);
    lf_store *s = NULL;
    assert_int_equal(lf_store_fs_open(dir, true, &s, err, sizeof err), 0);
    lf_keyring kr;
    lf_keyring_init(&kr);
    lf_key k;
    randombytes_buf(&k, sizeof k);
    assert_int_equal(lf_keyring_add(&kr, &k, true), 0);
    const char plain[] = "PK\3\4 pretend zip bytes";
    lf_store_src src = {plain, -1, sizeof plain};
    char loc[512];
    uint64_t stored = 0;
    const char *id = "0123456789abcdef0123456789abcdef";
    assert_int_equal(s->ops->put(s, id, &k, &src, 1795000000000ull, loc, sizeof loc, &stored), 0);
    assert_string_equal(loc, "2026/11/18/0123456789abcdef0123456789abcdef.lfz");
    int fd = -1;
    uint64_t size = 0;
    assert_int_equal(s->ops->open(s, loc, &fd, &size), 0);
    assert_int_equal(size, stored);
    lf_buf out = LF_BUF_INIT(1 << 20);
    assert_int_equal(lf_secretstream_decrypt_fd_buf(&kr, fd, &out), 0);
    close(fd);
    assert_int_equal(out.len, sizeof plain);
    assert_memory_equal(out.data, plain, sizeof plain);
    lf_buf_free(&out);
    assert_int_equal(s->ops->open(s, "../etc/passwd", &fd, &size), -EINVAL);
    assert_int_equal(s->ops->open(s, "/etc/passwd", &fd, &size), -EINVAL);
    int n = 0;
    assert_int_equal(s->ops->scan(s, count_scan, &n), 0);
    assert_int_equal(n, 1);
    /* an injected write failure leaves no temporary and reports ENOSPC */
    lf_fail_arm(LF_FAIL_WRITE, 1, true);
    assert_int_equal(s->ops->put(s, "fedcba9876543210fedcba9876543210", &k, &src, 1795000000000ull, loc, sizeof loc,
                                 &stored),
                     -ENOSPC);
    lf_fail_disarm(LF_FAIL_WRITE);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s/.tmp", dir);
    assert_int_equal(rmdir(tmp), 0); /* empty */
    s->ops->close(s);
    lf_keyring_free(&kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sites),
        cmocka_unit_test(test_scopes_and_tokens),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_fs_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
