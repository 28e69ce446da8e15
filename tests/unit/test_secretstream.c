/* lf_secretstream and lf_keyring: round trips at chunk boundaries, every kind of damage detected
 * (truncation, tampering, reordering, wrong key, trailing bytes), bounded memory on a large file,
 * injected write failures, keyring rotation, loading and permission checks. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_failpoint.h"
#include "lf_fileio.h"
#include "lf_keyring.h"
#include "lf_secretstream.h"

static char tmpdir[256];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lf_ss_XXXXXX");
    return lf_crypto_init() == 0 && mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void random_key(lf_key *k)
{
    randombytes_buf(k->id, sizeof k->id);
    randombytes_buf(k->key, sizeof k->key);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static void round_trip_sizes(void **state)
{
    lf_key k;
    random_key(&k);
    lf_keyring kr;
    lf_keyring_init(&kr);
    assert_int_equal(lf_keyring_add(&kr, &k, true), 0);
    const size_t chunk = 1000;
    size_t sizes[] = {0, 1, 999, 1000, 1001, 2000, 2500, 10000};
    uint8_t *data = malloc(10000);
    fill(data, 10000, 7);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        lf_buf enc = LF_BUF_INIT(1 << 20), dec = LF_BUF_INIT(1 << 20);
        assert_int_equal(lf_secretstream_encrypt_buf(&k, data, sizes[i], chunk, &enc), 0);
        assert_memory_equal(enc.data, "LFENC1\0\1", 8);
        /* records: full chunks then a final one (possibly empty) */
        size_t records = sizes[i] / chunk + 1;
        assert_int_equal(enc.len, LF_SS_HEADER_BYTES + sizes[i] + records * (4 + 17));
        uint8_t id[LF_KEY_ID_BYTES];
        assert_int_equal(lf_secretstream_key_id(enc.data, enc.len, id), 0);
        assert_memory_equal(id, k.id, sizeof id);
        assert_int_equal(lf_secretstream_decrypt_buf(&kr, enc.data, enc.len, &dec), 0);
        assert_int_equal(dec.len, sizes[i]);
        if (sizes[i])
            assert_memory_equal(dec.data, data, sizes[i]);
        lf_buf_free(&enc);
        lf_buf_free(&dec);
    }
    free(data);
    lf_keyring_free(&kr);
}

static int decrypt(const lf_keyring *kr, const uint8_t *p, size_t n)
{
    lf_buf dec = LF_BUF_INIT(1 << 20);
    int rc = lf_secretstream_decrypt_buf(kr, p, n, &dec);
    if (rc != 0)
        assert_int_equal(dec.len, 0); /* nothing handed back on failure */
    lf_buf_free(&dec);
    return rc;
}

static void damage_is_detected(void **state)
{
    lf_key k, other;
    random_key(&k);
    random_key(&other);
    lf_keyring kr;
    lf_keyring_init(&kr);
    assert_int_equal(lf_keyring_add(&kr, &k, true), 0);
    uint8_t data[3000];
    fill(data, sizeof data, 3);
    lf_buf enc = LF_BUF_INIT(1 << 20);
    /* 3 full records of 1000 and an empty final one */
    assert_int_equal(lf_secretstream_encrypt_buf(&k, data, sizeof data, 1000, &enc), 0);
    const size_t rec = 4 + 1000 + 17;
    uint8_t *p = (uint8_t *)enc.data;
    size_t n = enc.len;
    assert_int_equal(n, LF_SS_HEADER_BYTES + 3 * rec + 21);
    assert_int_equal(decrypt(&kr, p, n), 0);

    /* truncation anywhere, including exactly at record boundaries */
    for (size_t cut = 0; cut < n; cut += (cut < 60 ? 1 : 97))
        assert_true(decrypt(&kr, p, cut) == LF_ECORRUPT || decrypt(&kr, p, cut) == LF_EAUTH);
    assert_int_equal(decrypt(&kr, p, LF_SS_HEADER_BYTES + 3 * rec), LF_ECORRUPT);
    assert_int_equal(decrypt(&kr, p, LF_SS_HEADER_BYTES + rec), LF_ECORRUPT);
    assert_int_equal(decrypt(&kr, p, LF_SS_HEADER_BYTES), LF_ECORRUPT);

    /* every single flipped bit is caught (sampled over the object) */
    uint8_t *copy = malloc(n + 8);
    for (size_t off = 0; off < n; off += (off < LF_SS_HEADER_BYTES + 8 ? 1 : 13)) {
        memcpy(copy, p, n);
        copy[off] ^= 0x04;
        int rc = decrypt(&kr, copy, n);
        if (off >= 8 && off < 24)
            assert_int_equal(rc, -ENOKEY); /* the key id itself */
        else
            assert_true(rc == LF_ECORRUPT || rc == LF_EAUTH);
    }
    /* reordered records (same length, so only authentication can tell) */
    memcpy(copy, p, n);
    memcpy(copy + LF_SS_HEADER_BYTES, p + LF_SS_HEADER_BYTES + rec, rec);
    memcpy(copy + LF_SS_HEADER_BYTES + rec, p + LF_SS_HEADER_BYTES, rec);
    assert_int_equal(decrypt(&kr, copy, n), LF_EAUTH);
    /* a record dropped from the middle */
    memcpy(copy, p, LF_SS_HEADER_BYTES + rec);
    memcpy(copy + LF_SS_HEADER_BYTES + rec, p + LF_SS_HEADER_BYTES + 2 * rec, n - LF_SS_HEADER_BYTES - 2 * rec);
    assert_int_equal(decrypt(&kr, copy, n - rec), LF_EAUTH);
    /* a record spliced in from another object under the same key and the same plaintext */
    {
        lf_buf enc2 = LF_BUF_INIT(1 << 20);
        assert_int_equal(lf_secretstream_encrypt_buf(&k, data, sizeof data, 1000, &enc2), 0);
        assert_int_equal(enc2.len, n);
        memcpy(copy, p, n);
        memcpy(copy + LF_SS_HEADER_BYTES + rec, enc2.data + LF_SS_HEADER_BYTES + rec, rec);
        assert_int_equal(decrypt(&kr, copy, n), LF_EAUTH);
        /* and the other object's header on this object's records */
        memcpy(copy, p, n);
        memcpy(copy, enc2.data, LF_SS_HEADER_BYTES);
        assert_int_equal(decrypt(&kr, copy, n), LF_EAUTH);
        lf_buf_free(&enc2);
    }
    /* trailing bytes after the final record */
    memcpy(copy, p, n);
    memcpy(copy + n, "garbage!", 8);
    assert_int_equal(decrypt(&kr, copy, n + 8), LF_ECORRUPT);
    /* a record length beyond the chunk size is refused before reading it */
    memcpy(copy, p, n);
    copy[LF_SS_HEADER_BYTES] = 0x7f;
    assert_int_equal(decrypt(&kr, copy, n), LF_ECORRUPT);
    free(copy);

    /* wrong key with the right id */
    lf_keyring wrong;
    lf_keyring_init(&wrong);
    memcpy(other.id, k.id, sizeof k.id);
    assert_int_equal(lf_keyring_add(&wrong, &other, true), 0);
    assert_int_equal(decrypt(&wrong, p, n), LF_EAUTH);
    lf_keyring_free(&wrong);
    /* unknown key id */
    lf_keyring empty;
    lf_keyring_init(&empty);
    assert_int_equal(decrypt(&empty, p, n), -ENOKEY);
    /* not an object at all */
    assert_int_equal(decrypt(&kr, (const uint8_t *)"PK\3\4 hello", 10), LF_ECORRUPT);
    lf_buf_free(&enc);
    lf_keyring_free(&kr);
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void large_file_in_bounded_memory(void **state)
{
    lf_key k;
    random_key(&k);
    lf_keyring kr;
    lf_keyring_init(&kr);
    assert_int_equal(lf_keyring_add(&kr, &k, true), 0);
    char plain[512], enc[512], dec[512];
    snprintf(plain, sizeof plain, "%s/plain", tmpdir);
    snprintf(enc, sizeof enc, "%s/enc", tmpdir);
    snprintf(dec, sizeof dec, "%s/dec", tmpdir);
    const size_t mib = 256;
    int fd = open(plain, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    uint8_t *block = malloc(1 << 20);
    for (size_t i = 0; i < mib; i++) {
        fill(block, 1 << 20, (uint32_t)i);
        assert_int_equal(lf_write_all(fd, block, 1 << 20), 0);
    }
    free(block);
    close(fd);
    uint8_t h1[LF_HASH_BYTES], h2[LF_HASH_BYTES];
    assert_int_equal(lf_crypto_hash_file(plain, h1, NULL), 0);

    long rss_before = max_rss_kib();
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int in = open(plain, O_RDONLY), out = open(enc, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    uint64_t written = 0;
    assert_int_equal(lf_secretstream_encrypt_fd(&k, in, out, 0, &written), 0);
    assert_int_equal(lf_fsync(out), 0);
    close(in);
    close(out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    in = open(enc, O_RDONLY);
    out = open(dec, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    uint64_t plain_bytes = 0;
    assert_int_equal(lf_secretstream_decrypt_fd(&kr, in, out, &plain_bytes), 0);
    close(in);
    close(out);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    long rss_after = max_rss_kib();
    assert_int_equal(plain_bytes, (uint64_t)mib << 20);
    assert_int_equal(lf_crypto_hash_file(dec, h2, NULL), 0);
    assert_memory_equal(h1, h2, sizeof h1);
    /* the peak grew by far less than the file: a chunk or two, not 256 MiB */
    assert_true(rss_after - rss_before < 16 * 1024);
    double enc_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double dec_s = (double)(t2.tv_sec - t1.tv_sec) + (double)(t2.tv_nsec - t1.tv_nsec) / 1e9;
    print_message("secretstream %zu MiB: encrypt %.0f MiB/s, decrypt %.0f MiB/s, peak RSS +%ld KiB\n",
                  mib, (double)mib / enc_s, (double)mib / dec_s, rss_after - rss_before);
    unlink(plain);
    unlink(enc);
    unlink(dec);
    lf_keyring_free(&kr);
}

static void write_failures_are_reported(void **state)
{
    lf_key k;
    random_key(&k);
    char path[512];
    snprintf(path, sizeof path, "%s/wf", tmpdir);
    uint8_t data[5000];
    fill(data, sizeof data, 9);
    for (int nth = 1; nth <= 3; nth++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        assert_int_equal(lf_write_all(p[1], data, sizeof data), 0);
        close(p[1]);
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        lf_fail_arm(LF_FAIL_WRITE, (uint64_t)nth, false);
        assert_int_equal(lf_secretstream_encrypt_fd(&k, p[0], out, 2000, NULL), -ENOSPC);
        lf_fail_disarm(LF_FAIL_WRITE);
        close(out);
        close(p[0]);
    }
    /* mixed forms, and write failures while decrypting to an fd */
    lf_key k2;
    random_key(&k2);
    lf_keyring kr;
    lf_keyring_init(&kr);
    assert_int_equal(lf_keyring_add(&kr, &k2, true), 0);
    int out = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    uint64_t written = 0;
    assert_int_equal(lf_secretstream_encrypt_mem_fd(&k2, data, sizeof data, out, 2000, &written), 0);
    assert_int_equal(written, LF_SS_HEADER_BYTES + sizeof data + 3 * 21);
    lseek(out, 0, SEEK_SET);
    lf_buf plain = LF_BUF_INIT(1 << 20);
    assert_int_equal(lf_secretstream_decrypt_fd_buf(&kr, out, &plain), 0);
    assert_int_equal(plain.len, sizeof data);
    assert_memory_equal(plain.data, data, sizeof data);
    lf_buf_free(&plain);
    lf_buf tiny = LF_BUF_INIT(100);
    lseek(out, 0, SEEK_SET);
    assert_int_equal(lf_secretstream_decrypt_fd_buf(&kr, out, &tiny), LF_ELIMIT);
    assert_int_equal(tiny.len, 0);
    lf_buf_free(&tiny);
    char path2[512];
    snprintf(path2, sizeof path2, "%s/wf2", tmpdir);
    for (int nth = 1; nth <= 3; nth++) {
        lseek(out, 0, SEEK_SET);
        int dec = open(path2, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        lf_fail_arm(LF_FAIL_WRITE, (uint64_t)nth, false);
        assert_int_equal(lf_secretstream_decrypt_fd(&kr, out, dec, NULL), -ENOSPC);
        lf_fail_disarm(LF_FAIL_WRITE);
        close(dec);
    }
    close(out);
    lf_keyring_free(&kr);

    /* allocation failure */
    lf_buf enc = LF_BUF_INIT(1 << 20);
    lf_fail_arm(LF_FAIL_ALLOC, 1, false);
    assert_int_equal(lf_secretstream_encrypt_buf(&k, data, sizeof data, 0, &enc), -ENOMEM);
    lf_fail_disarm(LF_FAIL_ALLOC);
    assert_int_equal(enc.len, 0);
    /* output bounded by the buffer's maximum */
    lf_buf small = LF_BUF_INIT(100);
    assert_int_equal(lf_secretstream_encrypt_buf(&k, data, sizeof data, 0, &small), LF_ELIMIT);
    assert_int_equal(small.len, 0);
    lf_buf_free(&small);
    lf_buf_free(&enc);
    assert_int_equal(lf_secretstream_encrypt_buf(&k, data, 1, LF_SS_MAX_CHUNK + 1, &enc), -EINVAL);
}

static void keyring_rotate_load_and_permissions(void **state)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/keys", tmpdir);
    char err[512];
    lf_keyring kr;
    lf_keyring_init(&kr);
    assert_int_equal(lf_keyring_rotate(&kr, dir, NULL), 0);
    uint8_t id2[LF_KEY_ID_BYTES];
    assert_int_equal(lf_keyring_rotate(&kr, dir, id2), 0);
    assert_int_equal(kr.count, 2);
    assert_memory_equal(lf_keyring_current(&kr)->id, id2, sizeof id2);
    /* an object under the first key still decrypts after rotation, from a fresh load */
    lf_buf enc = LF_BUF_INIT(1 << 20), dec = LF_BUF_INIT(1 << 20);
    assert_int_equal(lf_secretstream_encrypt_buf(&kr.keys[0], "old data", 8, 0, &enc), 0);
    lf_keyring loaded;
    lf_keyring_init(&loaded);
    assert_int_equal(lf_keyring_load(&loaded, dir, false, err, sizeof err), 0);
    assert_int_equal(loaded.count, 2);
    assert_memory_equal(lf_keyring_current(&loaded)->id, id2, sizeof id2);
    assert_int_equal(lf_secretstream_decrypt_buf(&loaded, enc.data, enc.len, &dec), 0);
    assert_string_equal(lf_buf_cstr(&dec), "old data");
    lf_keyring_free(&loaded);

    /* modes */
    char hex[LF_KEY_ID_HEX_SIZE], path[600];
    lf_crypto_hex_encode(hex, id2, sizeof id2);
    snprintf(path, sizeof path, "%s/%s.key", dir, hex);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(lf_keyring_load(&loaded, dir, false, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "0640"));
    assert_int_equal(loaded.count, 0);
    assert_int_equal(lf_keyring_load(&loaded, dir, true, err, sizeof err), 0);
    lf_keyring_free(&loaded);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(lf_keyring_load(&loaded, dir, true, err, sizeof err), -EPERM);
    assert_int_equal(chmod(path, 0660), 0);
    assert_int_equal(lf_keyring_load(&loaded, dir, true, err, sizeof err), -EPERM);
    assert_int_equal(chmod(path, 0600), 0);

    /* a directory others can write is refused */
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(lf_keyring_load(&loaded, dir, false, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "directory"));
    assert_int_equal(chmod(dir, 0700), 0);

    /* a short key file */
    char junk[600];
    snprintf(junk, sizeof junk, "%s/%032d.key", dir, 0);
    assert_int_equal(lf_write_file_atomic(junk, "short", 5, 0600), 0);
    assert_int_equal(lf_keyring_load(&loaded, dir, false, err, sizeof err), LF_EFORMAT);
    assert_non_null(strstr(err, "exactly 32 bytes"));
    unlink(junk);

    /* "current" naming a missing key */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(lf_keyring_load(&loaded, dir, false, err, sizeof err), LF_ECORRUPT);

    /* failures during rotation keep the old current key, on disk and in memory */
    lf_keyring kr2;
    lf_keyring_init(&kr2);
    char dir2[512];
    snprintf(dir2, sizeof dir2, "%s/keys2", tmpdir);
    assert_int_equal(lf_keyring_rotate(&kr2, dir2, NULL), 0);
    uint8_t cur[LF_KEY_ID_BYTES];
    memcpy(cur, lf_keyring_current(&kr2)->id, sizeof cur);
    for (int nth = 1; nth <= 2; nth++) {
        lf_fail_arm(LF_FAIL_WRITE, (uint64_t)nth, false);
        assert_int_equal(lf_keyring_rotate(&kr2, dir2, NULL), -ENOSPC);
        lf_fail_disarm(LF_FAIL_WRITE);
        lf_fail_arm(LF_FAIL_FSYNC, (uint64_t)nth * 2 - 1, false);
        assert_int_equal(lf_keyring_rotate(&kr2, dir2, NULL), -EIO);
        lf_fail_disarm(LF_FAIL_FSYNC);
    }
    assert_memory_equal(lf_keyring_current(&kr2)->id, cur, sizeof cur);
    assert_int_equal(lf_keyring_load(&loaded, dir2, false, err, sizeof err), 0);
    assert_memory_equal(lf_keyring_current(&loaded)->id, cur, sizeof cur);
    lf_keyring_free(&loaded);
    lf_keyring_free(&kr2);

    lf_buf_free(&enc);
    lf_buf_free(&dec);
    lf_keyring_free(&kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_sizes),
        cmocka_unit_test(damage_is_detected),
        cmocka_unit_test(large_file_in_bounded_memory),
        cmocka_unit_test(write_failures_are_reported),
        cmocka_unit_test(keyring_rotate_load_and_permissions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
