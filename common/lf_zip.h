/* Session archives: reading untrusted zip uploads with limits, and writing them.
 *
 * Reading (receiver, parser). lf_zip_open_fd()/lf_zip_open_mem() first parse the zip's central
 * directory themselves and refuse, before decompressing a single byte: anything that is not a
 * plain single-disk zip (tar, gzip, 7z, ... and bytes after the end record); entry names that are
 * empty, longer than max_name_len, absolute, contain "..", "." or empty segments, a backslash, a
 * colon, or characters outside printable ASCII; duplicate names; symlinks, hardlinks, devices and
 * other non-regular entries; directories that claim data; encrypted entries (traditional or
 * strong/AES); compression methods other than stored and deflate; more than max_entries entries;
 * declared sizes past max_total_size, or past max_entry_ratio / max_total_ratio.
 * lf_zip_read_entry() then decompresses one entry with libarchive (zip format only, seekable
 * reader) and stops as soon as the real output passes the declared size, the ratio limits or the
 * total limit, so a bomb is never decompressed beyond the limit. An entry is only good once
 * lf_zip_read_entry() returned 0: the CRC and the size are checked at its end.
 *
 * Ratios are uncompressed / compressed bytes, checked only once an entry (or the archive) is past
 * ratio_floor uncompressed bytes, so tiny highly compressible files are not refused.
 *
 * Every failure fills an lf_zip_error: a reason code (for counters and the HTTP error code) and a
 * message naming the entry, meant for the 400 answer. Return codes: LF_EFORMAT (not an acceptable
 * zip: structure, names, types, encryption, method), LF_ELIMIT (a limit), LF_ECORRUPT (data does
 * not decompress, CRC or size mismatch, truncated), -ENOENT (no such entry), -ENOMEM, -EIO.
 *
 * An lf_zip is used by one thread at a time (it keeps the reader's position and counters).
 *
 * Writing (uploader): lf_zip_write_session() writes manifest.json and one log file streamed from an
 * fd, deflated with zlib, to an fd, in bounded memory (96 KiB of buffers and zlib's deflate state).
 * It does not use libarchive (lf_zip_write.c), so a program that only writes archives does not
 * load it. */
#ifndef LF_ZIP_H
#define LF_ZIP_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_buf.h"
#include "lf_crypto.h"

typedef struct lf_zip_limits {
    size_t max_entries;        /* entries in the archive (directories count) */
    uint64_t max_total_size;   /* sum of uncompressed sizes */
    uint64_t max_entry_ratio;  /* uncompressed / compressed, per entry */
    uint64_t max_total_ratio;  /* sum of uncompressed / size of the archive */
    uint64_t ratio_floor;      /* ratios apply above this many uncompressed bytes */
    size_t max_name_len;       /* bytes in an entry name */
    size_t max_manifest_size;  /* bound for lf_zip_read_entry_buf() callers reading the manifest */
} lf_zip_limits;

/* Defaults: 16 entries, 4 GiB total, ratio 200 per entry and overall above 1 MiB, names of 255
 * bytes, manifest 64 KiB. */
void lf_zip_limits_default(lf_zip_limits *l);

enum lf_zip_reason {
    LF_ZIP_OK = 0,
    LF_ZIP_NOT_ZIP,        /* no end record, other format, bytes after the end, multi-disk */
    LF_ZIP_BAD_STRUCTURE,  /* central directory inconsistent with itself or the file */
    LF_ZIP_BAD_NAME,       /* empty, absolute, "..", backslash, bad characters */
    LF_ZIP_NAME_TOO_LONG,
    LF_ZIP_DUPLICATE_NAME,
    LF_ZIP_NOT_REGULAR,    /* symlink, hardlink, device, fifo, or a directory with data */
    LF_ZIP_ENCRYPTED,
    LF_ZIP_UNSUPPORTED_METHOD,
    LF_ZIP_TOO_MANY_ENTRIES,
    LF_ZIP_TOO_LARGE,      /* max_total_size (or an entry bigger than its reader allows) */
    LF_ZIP_RATIO,          /* compression ratio past a limit: a zip bomb */
    LF_ZIP_CORRUPT_DATA,   /* CRC mismatch, truncated or undecodable data, size mismatch */
    LF_ZIP_NO_ENTRY,
    LF_ZIP_IO,             /* reading the source or allocating failed */
    LF_ZIP_WRITE,          /* writing an archive failed */
};

typedef struct lf_zip_error {
    enum lf_zip_reason reason;
    char msg[256];
} lf_zip_error;

/* Short stable name of a reason ("duplicate_name"), for counters and JSON. */
const char *lf_zip_reason_name(enum lf_zip_reason r);

typedef struct lf_zip lf_zip;

/* true when name (len bytes) is an acceptable entry name under the rules above, at most max_len
 * bytes; *is_dir (may be NULL) tells whether it names a directory (ends in '/'). */
bool lf_zip_name_valid(const char *name, size_t len, size_t max_len, bool *is_dir);
/* The same check, saying why a name is refused (LF_ZIP_BAD_NAME, LF_ZIP_NAME_TOO_LONG) or
 * LF_ZIP_OK. The name rules and the writer live in lf_zip_write.c, which needs zlib only. */
enum lf_zip_reason lf_zip_name_check(const char *name, size_t len, size_t max_len, bool *is_dir);

/* Opens and validates a zip read from fd (read with pread: the fd's offset is not used or moved;
 * the fd must stay open until lf_zip_close and is not closed by it), or from memory (data must
 * stay valid until lf_zip_close). *out is set only on success. */
LF_MUST_CHECK int lf_zip_open_fd(lf_zip **out, int fd, const lf_zip_limits *limits, lf_zip_error *err);
LF_MUST_CHECK int lf_zip_open_mem(lf_zip **out, const void *data, size_t len, const lf_zip_limits *limits,
                    lf_zip_error *err);
void lf_zip_close(lf_zip *z);

/* Entries in central-directory order, directories included. */
size_t lf_zip_entry_count(const lf_zip *z);
/* Name of entry i (owned by z), NULL past the end. */
const char *lf_zip_entry_name(const lf_zip *z, size_t i);
/* Declared uncompressed size of the named entry; -ENOENT when absent. */
LF_MUST_CHECK int lf_zip_entry_size(const lf_zip *z, const char *name, uint64_t *size);

/* Called with each decompressed chunk (data valid during the call only). A non-zero return stops
 * reading and becomes lf_zip_read_entry()'s result. Chunks delivered before a failure must be
 * discarded by the caller: only a 0 result means the entry was complete and its CRC matched. */
typedef int (*lf_zip_data_fn)(void *ctx, const void *data, size_t len);

/* Decompresses the named regular entry, checking limits as it goes and CRC and size at the end. */
LF_MUST_CHECK int lf_zip_read_entry(lf_zip *z, const char *name, lf_zip_data_fn fn, void *ctx,
                      lf_zip_error *err);
/* Same into memory: appends to out, refusing (LF_ELIMIT, LF_ZIP_TOO_LARGE) an entry whose
 * declared size is above max bytes before reading it. out is restored on failure. */
LF_MUST_CHECK int lf_zip_read_entry_buf(lf_zip *z, const char *name, size_t max, lf_buf *out,
                          lf_zip_error *err);
/* Same, writing the data to out_fd with lf_write_all (LF_FAIL_WRITE); no fsync. On failure the
 * bytes written so far must be discarded (write to a temporary file). */
LF_MUST_CHECK int lf_zip_read_entry_fd(lf_zip *z, const char *name, int out_fd, lf_zip_error *err);
/* Reads every regular entry to its end, discarding the data: the full CRC check. */
LF_MUST_CHECK int lf_zip_verify_all(lf_zip *z, lf_zip_error *err);

/* Writes an archive holding manifest_name (the manifest bytes) and then log_name, whose log_size
 * bytes are read from log_fd (from its current offset). level: deflate level 0..9 (0: stored).
 * mtime: the entries' modification time (Unix seconds). When log_hash is not NULL the BLAKE2b-256
 * of the streamed log bytes must equal it, else LF_ECONFLICT (the file changed since it was
 * hashed): the archive written so far must then be discarded. A log that ends before log_size
 * bytes gives -EIO. Writes go through lf_write_all (LF_FAIL_WRITE); no fsync (the caller's
 * choice). 0 or a negative code, with err filled. */
LF_MUST_CHECK int lf_zip_write_session(int out_fd, const char *manifest_name, const void *manifest,
                         size_t manifest_len, const char *log_name, int log_fd, uint64_t log_size,
                         const uint8_t log_hash[LF_HASH_BYTES], int level, int64_t mtime,
                         lf_zip_error *err);

#endif
