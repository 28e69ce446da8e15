/* Encryption at rest: libsodium crypto_secretstream_xchacha20poly1305, chunked, streaming, bounded
 * memory (one chunk at a time, whatever the object size).
 *
 * File format (all integers big-endian):
 *   offset 0   7 bytes  magic "LFENC1\0"
 *          7   1 byte   version, 1
 *          8  16 bytes  key id (which keyring key encrypted it)
 *         24   4 bytes  plaintext chunk size used by the writer (1 .. 1 MiB)
 *         28  24 bytes  secretstream header
 *         52            records: 4-byte ciphertext length L (17 .. chunk size + 17), then L bytes
 * Every record is one secretstream message; the last one carries TAG_FINAL, every other TAG_MESSAGE.
 * The first 28 bytes are the additional data of every record, so changing the key id, version or
 * chunk size is detected. An empty plaintext is one empty FINAL record.
 *
 * Decryption fails, and never reports success, on: wrong magic/version/sizes, bytes after the
 * FINAL record, or a missing FINAL record (truncation) -> LF_ECORRUPT; a record that does not
 * authenticate (tampering, reordering, records from another object, wrong key) -> LF_EAUTH; an
 * unknown key id -> -ENOKEY. Plaintext is written one authenticated chunk at a time, so on failure
 * the output may hold a prefix of authentic plaintext: callers decrypt into a temporary file (or
 * the buffer, which is emptied on failure) and discard it unless the call returned 0.
 *
 * Writes go through lf_write_all() (LF_FAIL_WRITE), buffers through lf_alloc (LF_FAIL_ALLOC). */
#ifndef LF_SECRETSTREAM_H
#define LF_SECRETSTREAM_H

#include "lf_error.h"

#include <stddef.h>
#include <stdint.h>

#include "lf_buf.h"
#include "lf_keyring.h"

#define LF_SS_MAGIC "LFENC1"  /* plus its NUL: 7 bytes */
#define LF_SS_VERSION 1
#define LF_SS_HEADER_BYTES 52
#define LF_SS_DEFAULT_CHUNK (64 * 1024)
#define LF_SS_MAX_CHUNK (1024 * 1024)

/* Encrypts everything readable from in_fd (from its current offset) to out_fd, with chunk
 * plaintext bytes per record (0 = LF_SS_DEFAULT_CHUNK; at most LF_SS_MAX_CHUNK). Does not fsync:
 * the caller decides when (lf_fsync). *out_bytes (may be NULL) gets the bytes written.
 * 0 or a negative code. */
LF_MUST_CHECK int lf_secretstream_encrypt_fd(const lf_key *key, int in_fd, int out_fd, size_t chunk,
                               uint64_t *out_bytes);
/* Encrypts len bytes of data, appending the object to out. */
LF_MUST_CHECK int lf_secretstream_encrypt_buf(const lf_key *key, const void *data, size_t len, size_t chunk,
                                lf_buf *out);

/* Mixed forms: memory to an fd (the receiver holding a small body in memory), and an fd to memory
 * (a parser reading a stored object; out's maximum bounds the plaintext, LF_ELIMIT). */
LF_MUST_CHECK int lf_secretstream_encrypt_mem_fd(const lf_key *key, const void *data, size_t len, int out_fd,
                                   size_t chunk, uint64_t *out_bytes);
LF_MUST_CHECK int lf_secretstream_decrypt_fd_buf(const lf_keyring *kr, int in_fd, lf_buf *out);

/* Reads the key id from the first LF_SS_HEADER_BYTES of an object. 0 or LF_ECORRUPT. */
LF_MUST_CHECK int lf_secretstream_key_id(const void *header, size_t len, uint8_t id[LF_KEY_ID_BYTES]);

/* Decrypts an object read from in_fd (its current offset) into out_fd, choosing the key by the
 * object's key id. *plain_bytes (may be NULL) gets the plaintext size. See above for errors. */
LF_MUST_CHECK int lf_secretstream_decrypt_fd(const lf_keyring *kr, int in_fd, int out_fd,
                               uint64_t *plain_bytes);
/* The same, calling progress (may be NULL) with the plaintext written so far after each record. */
LF_MUST_CHECK int lf_secretstream_decrypt_fd_progress(const lf_keyring *kr, int in_fd, int out_fd,
                                                      uint64_t *plain_bytes,
                                                      void (*progress)(void *arg, uint64_t plain_bytes), void *arg);
/* Decrypts an object in memory, appending the plaintext to out (out's maximum bounds it:
 * LF_ELIMIT). On failure out is restored to its length before the call. */
LF_MUST_CHECK int lf_secretstream_decrypt_buf(const lf_keyring *kr, const void *data, size_t len, lf_buf *out);

#endif
