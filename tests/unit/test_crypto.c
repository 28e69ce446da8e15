/* lf_crypto and lf_sign: BLAKE2b-256 vectors and streaming, hex and base64 strictness, bearer
 * tokens, Ed25519 upload signatures, the Authorization header parser, key files. */
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

#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_failpoint.h"
#include "lf_fileio.h"
#include "lf_sign.h"

static char tmpdir[256];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lf_crypto_XXXXXX");
    return lf_crypto_init() == 0 && mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void hash_vectors_and_streaming(void **state)
{
    uint8_t h[LF_HASH_BYTES];
    char hex[LF_HASH_HEX_SIZE];
    /* BLAKE2b-256 test vectors (empty string, "abc") */
    lf_crypto_hash(h, "", 0);
    assert_string_equal(lf_crypto_hex_encode(hex, h, sizeof h),
                        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    lf_crypto_hash(h, "abc", 3);
    assert_string_equal(lf_crypto_hex_encode(hex, h, sizeof h),
                        "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");

    /* streaming in odd pieces equals one-shot */
    static uint8_t data[300000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 31 + (i >> 8));
    uint8_t one[LF_HASH_BYTES], streamed[LF_HASH_BYTES], filed[LF_HASH_BYTES];
    lf_crypto_hash(one, data, sizeof data);
    lf_hash_ctx ctx;
    lf_crypto_hash_init(&ctx);
    for (size_t off = 0; off < sizeof data;) {
        size_t n = (off % 7919) + 1;
        if (n > sizeof data - off)
            n = sizeof data - off;
        lf_crypto_hash_update(&ctx, data + off, n);
        off += n;
    }
    lf_crypto_hash_final(&ctx, streamed);
    assert_memory_equal(one, streamed, sizeof one);

    char path[512];
    snprintf(path, sizeof path, "%s/data", tmpdir);
    assert_int_equal(lf_write_file_atomic(path, data, sizeof data, 0600), 0);
    uint64_t size = 0;
    assert_int_equal(lf_crypto_hash_file(path, filed, &size), 0);
    assert_int_equal(size, sizeof data);
    assert_memory_equal(one, filed, sizeof one);
    assert_int_equal(lf_crypto_hash_file("/nonexistent", filed, NULL), -ENOENT);
}

static void hex_round_trip_and_rejects(void **state)
{
    uint8_t bin[4];
    assert_int_equal(lf_crypto_hex_decode(bin, 4, "00fFa9B1", 8), 0);
    assert_int_equal(bin[1], 0xff);
    assert_int_equal(bin[3], 0xb1);
    assert_int_equal(lf_crypto_hex_decode(bin, 4, "00ffa9b", 7), -EINVAL);
    assert_int_equal(lf_crypto_hex_decode(bin, 4, "00ffa9bg", 8), -EINVAL);
    assert_int_equal(lf_crypto_hex_decode(bin, 4, "00ffa9b1 ", 9), -EINVAL);
}

static void base64_variants_are_strict(void **state)
{
    const uint8_t raw[] = {0xfb, 0xff, 0xfe, 0x00, 0x41};
    char text[16];
    assert_int_equal(lf_crypto_b64_encode(text, sizeof text, raw, 5, LF_B64_STANDARD), 0);
    assert_string_equal(text, "+//+AEE=");
    assert_int_equal(lf_crypto_b64_encode(text, sizeof text, raw, 5, LF_B64_URLSAFE_NOPAD), 0);
    assert_string_equal(text, "-__-AEE");
    assert_int_equal(lf_crypto_b64_encode(text, 4, raw, 5, LF_B64_STANDARD), -ENOBUFS);

    uint8_t out[8];
    size_t n = 0;
    assert_int_equal(lf_crypto_b64_decode(out, sizeof out, &n, "+//+AEE=", 8, LF_B64_STANDARD), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, raw, 5);
    assert_int_equal(lf_crypto_b64_decode(out, sizeof out, &n, "-__-AEE", 7, LF_B64_URLSAFE_NOPAD),
                     0);
    assert_memory_equal(out, raw, 5);
    /* wrong alphabet, missing padding, trailing garbage, non-canonical bits, too long */
    assert_int_equal(lf_crypto_b64_decode(out, sizeof out, &n, "-__-AEE=", 8, LF_B64_STANDARD),
                     -EINVAL);
    assert_int_equal(lf_crypto_b64_decode(out, sizeof out, &n, "+//+AEE", 7, LF_B64_STANDARD),
                     -EINVAL);
    assert_int_equal(lf_crypto_b64_decode(out, sizeof out, &n, "+//+AEE= ", 9, LF_B64_STANDARD),
                     -EINVAL);
    assert_int_equal(lf_crypto_b64_decode(out, sizeof out, &n, "QR==", 4, LF_B64_STANDARD),
                     -EINVAL);
    assert_int_equal(lf_crypto_b64_decode(out, 2, &n, "+//+AEE=", 8, LF_B64_STANDARD), -ENOBUFS);
}

static void tokens_hash_and_verify(void **state)
{
    uint8_t key[LF_TOKEN_KEY_BYTES], other[LF_TOKEN_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    randombytes_buf(other, sizeof other);
    char t1[LF_TOKEN_TEXT_LEN + 1], t2[LF_TOKEN_TEXT_LEN + 1];
    lf_crypto_token_generate(t1);
    lf_crypto_token_generate(t2);
    assert_int_equal(strlen(t1), LF_TOKEN_TEXT_LEN);
    assert_string_not_equal(t1, t2);
    assert_null(strpbrk(t1, "+/="));
    char stored[LF_TOKEN_HASH_HEX_SIZE];
    assert_int_equal(lf_crypto_token_hash(stored, key, t1, strlen(t1)), 0);
    assert_int_equal(strlen(stored), 64);
    assert_true(lf_crypto_token_verify(key, t1, strlen(t1), stored));
    assert_false(lf_crypto_token_verify(key, t2, strlen(t2), stored));
    assert_false(lf_crypto_token_verify(other, t1, strlen(t1), stored));
    assert_false(lf_crypto_token_verify(key, t1, strlen(t1) - 1, stored));
    assert_false(lf_crypto_token_verify(key, t1, strlen(t1), "zz"));
    assert_false(lf_crypto_token_verify(key, t1, 0, stored));
    assert_int_equal(lf_crypto_token_hash(stored, key, t1, 0), -EINVAL);
    assert_true(lf_crypto_equal("abc", "abc", 3));
    assert_false(lf_crypto_equal("abc", "abd", 3));
}

static void sign_and_verify_request(void **state)
{
    uint8_t pk[LF_SIGN_PK_BYTES], sk[LF_SIGN_SK_BYTES], pk2[LF_SIGN_PK_BYTES],
        sk2[LF_SIGN_SK_BYTES];
    assert_int_equal(lf_sign_keypair(pk, sk), 0);
    assert_int_equal(lf_sign_keypair(pk2, sk2), 0);
    uint8_t body[LF_HASH_BYTES], body2[LF_HASH_BYTES];
    lf_crypto_hash(body, "zip bytes", 9);
    lf_crypto_hash(body2, "zip bytez", 9);

    lf_buf msg = LF_BUF_INIT(1000);
    assert_int_equal(lf_sign_message(&msg, "PUT", "/v1/sessions/ab", 1700000000, body), 0);
    char hex[LF_HASH_HEX_SIZE];
    char expect[300];
    snprintf(expect, sizeof expect, "PUT\n/v1/sessions/ab\n1700000000\n%s",
             lf_crypto_hex_encode(hex, body, sizeof body));
    assert_string_equal(lf_buf_cstr(&msg), expect);
    lf_buf_free(&msg);

    lf_buf hdr = LF_BUF_INIT(LF_SIGN_HEADER_MAX);
    const char *path = "/v1/sessions/0123456789abcdef0123456789abcdef";
    assert_int_equal(lf_sign_request(&hdr, sk, "site-1", "PUT", path, 1700000000, body), 0);
    assert_int_equal(strncmp(hdr.data, "Ferry-Ed25519 site=\"site-1\", ts=\"1700000000\", sig=\"",
                             51),
                     0);
    lf_sign_auth a;
    char err[128];
    assert_int_equal(lf_sign_auth_parse(&a, hdr.data, hdr.len, err, sizeof err), 0);
    assert_string_equal(a.site, "site-1");
    assert_int_equal(a.ts, 1700000000);

    enum lf_sign_status st;
    assert_int_equal(lf_sign_verify(&a, pk, "PUT", path, body, 1700000010, 300, &st), 0);
    assert_int_equal(st, LF_SIGN_OK);
    /* wrong key, body, path, method: bad signature */
    assert_int_equal(lf_sign_verify(&a, pk2, "PUT", path, body, 1700000000, 300, &st), LF_EAUTH);
    assert_int_equal(st, LF_SIGN_BAD_SIGNATURE);
    assert_int_equal(lf_sign_verify(&a, pk, "PUT", path, body2, 1700000000, 300, &st), LF_EAUTH);
    assert_int_equal(st, LF_SIGN_BAD_SIGNATURE);
    assert_int_equal(lf_sign_verify(&a, pk, "PUT", "/v1/sessions/x", body, 1700000000, 300, &st),
                     LF_EAUTH);
    assert_int_equal(st, LF_SIGN_BAD_SIGNATURE);
    assert_int_equal(lf_sign_verify(&a, pk, "POST", path, body, 1700000000, 300, &st), LF_EAUTH);
    /* a changed timestamp breaks the signature, it is signed */
    lf_sign_auth moved = a;
    moved.ts += 1;
    assert_int_equal(lf_sign_verify(&moved, pk, "PUT", path, body, 1700000000, 300, &st),
                     LF_EAUTH);
    assert_int_equal(st, LF_SIGN_BAD_SIGNATURE);
    /* window edges */
    assert_int_equal(lf_sign_verify(&a, pk, "PUT", path, body, 1700000300, 300, &st), 0);
    assert_int_equal(lf_sign_verify(&a, pk, "PUT", path, body, 1700000301, 300, &st), LF_EAUTH);
    assert_int_equal(st, LF_SIGN_STALE);
    assert_int_equal(lf_sign_verify(&a, pk, "PUT", path, body, 1699999700, 300, &st), 0);
    assert_int_equal(lf_sign_verify(&a, pk, "PUT", path, body, 1699999699, 300, &st), LF_EAUTH);
    assert_int_equal(st, LF_SIGN_FUTURE);
    assert_int_equal(lf_sign_verify(&a, pk, "PUT", path, body, INT64_MIN, 300, &st), LF_EAUTH);
    assert_int_equal(st, LF_SIGN_FUTURE);
    assert_string_equal(lf_sign_status_str(LF_SIGN_STALE), "timestamp too old");
    lf_buf_free(&hdr);

    assert_int_equal(lf_sign_request(&hdr, sk, "Bad Site", "PUT", path, 1, body), -EINVAL);
    assert_int_equal(lf_sign_request(&hdr, sk, "s", "put", path, 1, body), -EINVAL);
    assert_int_equal(lf_sign_request(&hdr, sk, "s", "PUT", "no-slash", 1, body), -EINVAL);
    lf_buf_free(&hdr);
}

static int parse(const char *s)
{
    lf_sign_auth a;
    char err[128] = "";
    int rc = lf_sign_auth_parse(&a, s, strlen(s), err, sizeof err);
    if (rc)
        assert_true(err[0] != '\0'); /* every refusal says why */
    return rc;
}

static void auth_header_parser_is_strict(void **state)
{
    uint8_t sig[LF_SIGN_SIG_BYTES];
    memset(sig, 0x5a, sizeof sig);
    char b64[LF_SIGN_SIG_B64_SIZE];
    assert_true(lf_crypto_b64_encode(b64, sizeof b64, sig, sizeof sig, LF_B64_STANDARD) == 0);
    char h[1200];
#define H(...) (snprintf(h, sizeof h, __VA_ARGS__), h)
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\", sig=\"%s\"", b64)), 0);
    /* order-independent, flexible spaces */
    assert_int_equal(parse(H("Ferry-Ed25519   sig=\"%s\" ,ts=\"99\",site=\"x.y_z-1\"  ", b64)), 0);
    lf_sign_auth a;
    assert_int_equal(lf_sign_auth_parse(&a, h, strlen(h), NULL, 0), 0);
    assert_string_equal(a.site, "x.y_z-1");
    assert_int_equal(a.ts, 99);
    assert_memory_equal(a.sig, sig, sizeof sig);
    /* max int64 ts is accepted, one more is not */
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"9223372036854775807\", sig=\"%s\"", b64)),
                     0);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"9223372036854775808\", sig=\"%s\"", b64)),
                     LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"99999999999999999999\", sig=\"%s\"", b64)),
                     LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"-1\", sig=\"%s\"", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"\", sig=\"%s\"", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1 \", sig=\"%s\"", b64)), LF_EFORMAT);
    /* duplicates, missing, unknown keys, wrong scheme */
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", site=\"a\", ts=\"1\", sig=\"%s\"", b64)),
                     LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\", ts=\"1\"")), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\", sig=\"%s\", sig=\"%s\"", b64, b64)),
                     LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\"")), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\", sig=\"%s\", x=\"1\"", b64)),
                     LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\", alg=\"%s\"", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("ferry-ed25519 site=\"a\", ts=\"1\", sig=\"%s\"", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("Bearer abc")), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519")), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 ")), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519site=\"a\", ts=\"1\", sig=\"%s\"", b64)), LF_EFORMAT);
    /* quoting */
    assert_int_equal(parse(H("Ferry-Ed25519 site=a, ts=\"1\", sig=\"%s\"", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a, ts=\"1\", sig=\"%s\"", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\\\"\", ts=\"1\", sig=\"%s\"", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\", sig=\"%s", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\" ts=\"1\", sig=\"%s\"", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\",, ts=\"1\", sig=\"%s\"", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\", sig=\"%s\",", b64)), LF_EFORMAT);
    /* bad values */
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"A\", ts=\"1\", sig=\"%s\"", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"\", ts=\"1\", sig=\"%s\"", b64)), LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"%065d\", ts=\"1\", sig=\"%s\"", 0, b64)),
                     LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"%064d\", ts=\"1\", sig=\"%s\"", 0, b64)), 0);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\", sig=\"%.86s\"", b64)),
                     LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\", sig=\"%sAAAA\"", b64)),
                     LF_EFORMAT);
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\", sig=\"%.84s!!==\"", b64)),
                     LF_EFORMAT);
    /* too long as a whole */
    assert_int_equal(parse(H("Ferry-Ed25519 site=\"a\", ts=\"1\", sig=\"%s\"%600s", b64, "")),
                     LF_EFORMAT);
    /* an embedded NUL is just a bad character, lengths are explicit */
    char nul[] = "Ferry-Ed25519 site=\"a\0\", ts=\"1\"";
    assert_int_equal(lf_sign_auth_parse(&a, nul, sizeof nul - 1, NULL, 0), LF_EFORMAT);
#undef H
}

static void key_files(void **state)
{
    uint8_t pk[LF_SIGN_PK_BYTES], sk[LF_SIGN_SK_BYTES], sk2[LF_SIGN_SK_BYTES];
    assert_int_equal(lf_sign_keypair(pk, sk), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/site.key", tmpdir);
    assert_int_equal(lf_sign_sk_save(path, sk), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char err[256];
    assert_int_equal(lf_sign_sk_load(path, sk2, err, sizeof err), 0);
    assert_memory_equal(sk, sk2, sizeof sk);

    /* public key text round trip */
    char text[LF_SIGN_PK_B64_SIZE];
    uint8_t pk2[LF_SIGN_PK_BYTES];
    lf_sign_pk_encode(text, pk);
    assert_int_equal(strlen(text), 44);
    char padded[64];
    snprintf(padded, sizeof padded, " %s\n", text);
    assert_int_equal(lf_sign_pk_decode(pk2, padded, strlen(padded)), 0);
    assert_memory_equal(pk, pk2, sizeof pk);
    assert_int_equal(lf_sign_pk_decode(pk2, text, 40), LF_EFORMAT);

    /* loose permissions are refused with a reason */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(lf_sign_sk_load(path, sk2, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "0640"));
    assert_int_equal(chmod(path, 0600), 0);

    /* damaged content */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.key", tmpdir);
    assert_int_equal(lf_write_file_atomic(bad, "not a key\n", 10, 0600), 0);
    assert_int_equal(lf_sign_sk_load(bad, sk2, err, sizeof err), LF_EFORMAT);
    /* a flipped public half is detected */
    uint8_t broken[LF_SIGN_SK_BYTES];
    memcpy(broken, sk, sizeof broken);
    broken[40] ^= 1;
    assert_int_equal(lf_sign_sk_save(bad, broken), 0);
    assert_int_equal(lf_sign_sk_load(bad, sk2, err, sizeof err), LF_EFORMAT);

    /* write and fsync failures are reported and leave the old file */
    uint8_t pk3[LF_SIGN_PK_BYTES], sk3[LF_SIGN_SK_BYTES];
    assert_int_equal(lf_sign_keypair(pk3, sk3), 0);
    lf_fail_arm(LF_FAIL_WRITE, 1, false);
    assert_int_equal(lf_sign_sk_save(path, sk3), -ENOSPC);
    lf_fail_disarm(LF_FAIL_WRITE);
    lf_fail_arm(LF_FAIL_FSYNC, 1, false);
    assert_int_equal(lf_sign_sk_save(path, sk3), -EIO);
    lf_fail_disarm(LF_FAIL_FSYNC);
    assert_int_equal(lf_sign_sk_load(path, sk2, err, sizeof err), 0);
    assert_memory_equal(sk, sk2, sizeof sk);

    /* a symlink is refused */
    char link[512];
    snprintf(link, sizeof link, "%s/link.key", tmpdir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(lf_sign_sk_load(link, sk2, err, sizeof err), -EPERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_vectors_and_streaming),
        cmocka_unit_test(hex_round_trip_and_rejects),
        cmocka_unit_test(base64_variants_are_strict),
        cmocka_unit_test(tokens_hash_and_verify),
        cmocka_unit_test(sign_and_verify_request),
        cmocka_unit_test(auth_header_parser_is_strict),
        cmocka_unit_test(key_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
