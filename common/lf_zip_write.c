/* Session archives, the writing half and the entry-name rules (see lf_zip.h).
 *
 * Kept apart from lf_zip.c so that a program that only writes archives (the uploader) links zlib,
 * which libcurl loads anyway, and not libarchive with its own dependencies (libxml2, ICU,
 * libstdc++, ...): a few MiB of resident library pages less.
 *
 * The bytes written are those libarchive 3.6's zip writer produced for the same call (which the
 * uploader used before), so a session packs to the same archive whichever version packed it:
 * every entry has flag 8 (sizes and CRC in a data descriptor after the data), version needed 20
 * (deflate) or 10 (stored), a DOS time in local time, a "UT" extra field with the mtime and a "ux"
 * one with uid and gid 0, mode 0644; zip64 fields only for entries and offsets of 4 GiB - 1 and more. */
#include "lf_zip.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_fileio.h"

#define READ_CHUNK (64 * 1024)
#define OUT_CHUNK (16 * 1024)
#define U32_MAX_LL 0xffffffffULL
/* Above this many bytes a deflated entry gets zip64 fields (deflate may make it larger). */
#define DEFLATE_ZIP64_FROM 0xff000000ULL

enum lf_zip_reason lf_zip_name_check(const char *name, size_t len, size_t max_len, bool *is_dir)
{
    bool dummy;
    if (!is_dir)
        is_dir = &dummy;
    *is_dir = false;
    if (len == 0)
        return LF_ZIP_BAD_NAME;
    if (len > max_len)
        return LF_ZIP_NAME_TOO_LONG;
    if (name[0] == '/')
        return LF_ZIP_BAD_NAME;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c > 0x7e || c == '\\' || c == ':')
            return LF_ZIP_BAD_NAME;
    }
    *is_dir = name[len - 1] == '/';
    size_t end = *is_dir ? len - 1 : len;
    /* segments: none empty, none "." or ".." */
    size_t start = 0;
    for (size_t i = 0; i <= end; i++) {
        if (i < end && name[i] != '/')
            continue;
        size_t seg = i - start;
        if (seg == 0 || (seg == 1 && name[start] == '.') ||
            (seg == 2 && name[start] == '.' && name[start + 1] == '.'))
            return LF_ZIP_BAD_NAME;
        start = i + 1;
    }
    return LF_ZIP_OK;
}

bool lf_zip_name_valid(const char *name, size_t len, size_t max_len, bool *is_dir)
{
    bool dir = false;
    bool good = lf_zip_name_check(name, len, max_len, &dir) == LF_ZIP_OK;
    if (is_dir)
        *is_dir = dir;
    return good;
}

__attribute__((format(printf, 4, 5))) static int fail(lf_zip_error *err, int rc,
                                                      enum lf_zip_reason reason, const char *fmt,
                                                      ...)
{
    if (err) {
        err->reason = reason;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- little-endian encoding ---- */

static uint8_t *put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p = put16(p, v & 0xffff);
    return put16(p, v >> 16);
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    p = put32(p, (uint32_t)v);
    return put32(p, (uint32_t)(v >> 32));
}

static uint32_t min32(uint64_t v) { return v >= U32_MAX_LL ? (uint32_t)U32_MAX_LL : (uint32_t)v; }

/* MS-DOS date and time in local time, clamped to 1980..2107 (as libarchive and Info-ZIP do). */
static uint32_t dos_time(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm) || tm.tm_year < 1980 - 1900)
        return 0x00210000u;
    if (tm.tm_year > 2107 - 1900)
        return 0xff9fbf7du;
    uint32_t dt = ((uint32_t)(tm.tm_year - 80) & 0x7f) << 9;
    dt += ((uint32_t)(tm.tm_mon + 1) & 0x0f) << 5;
    dt += (uint32_t)tm.tm_mday & 0x1f;
    dt <<= 16;
    dt += ((uint32_t)tm.tm_hour & 0x1f) << 11;
    dt += ((uint32_t)tm.tm_min & 0x3f) << 5;
    dt += ((uint32_t)tm.tm_sec & 0x3e) >> 1;
    return dt;
}

/* ---- buffered output ---- */

struct out {
    int fd;
    int rc;           /* first write error; later output is dropped */
    uint64_t written; /* bytes of archive so far (buffered ones included) */
    size_t used;
    uint8_t *buf;     /* OUT_CHUNK bytes */
};

static void out_flush(struct out *o)
{
    if (o->used && o->rc == 0)
        o->rc = lf_write_all(o->fd, o->buf, o->used);
    o->used = 0;
}

static void out_put(struct out *o, const void *data, size_t len)
{
    const uint8_t *p = data;
    o->written += len;
    while (len > 0) {
        if (o->used == OUT_CHUNK)
            out_flush(o);
        size_t k = OUT_CHUNK - o->used < len ? OUT_CHUNK - o->used : len;
        memcpy(o->buf + o->used, p, k);
        o->used += k;
        p += k;
        len -= k;
    }
}

/* ---- entries ---- */

struct entry {
    const char *name;
    uint64_t size;      /* declared uncompressed size */
    bool deflate;
    bool zip64;         /* zip64 fields in the local header and the data descriptor */
    uint16_t version;   /* needed to extract */
    uint64_t offset;    /* of the local header */
    uint32_t crc;
    uint64_t csize, usize; /* written */
};

/* UT (mtime) and ux (uid 0, gid 0) extra fields, the same in local and central headers. */
static uint8_t *put_common_extra(uint8_t *p, int64_t mtime)
{
    memcpy(p, "UT", 2);
    p = put16(p + 2, 5);
    *p++ = 1;
    p = put32(p, (uint32_t)mtime);
    memcpy(p, "ux\013\000\001", 5);
    p += 5;
    *p++ = 4;
    p = put32(p, 0);
    *p++ = 4;
    return put32(p, 0);
}

static void entry_start(struct out *o, struct entry *e, const char *name, uint64_t size,
                        bool deflate, uint32_t dtime, int64_t mtime)
{
    e->name = name;
    e->size = size;
    e->deflate = deflate;
    e->version = deflate ? 20 : 10;
    e->zip64 = size >= U32_MAX_LL || (deflate && size > DEFLATE_ZIP64_FROM);
    if (e->zip64)
        e->version = 45;
    e->offset = o->written;
    e->crc = 0;
    e->csize = e->usize = 0;
    uint8_t h[30 + 24 + 20], *p = h;
    p = put32(p, 0x04034b50u);
    p = put16(p, e->version);
    p = put16(p, 8);                /* sizes and CRC in the data descriptor */
    p = put16(p, deflate ? 8 : 0);
    p = put32(p, dtime);
    p = put32(p, 0);                /* CRC: never known up front */
    if (e->zip64) {
        p = put32(p, 0xffffffffu);
        p = put32(p, 0xffffffffu);
    } else {
        p = put32(p, deflate ? 0 : (uint32_t)size);
        p = put32(p, (uint32_t)size);
    }
    size_t nlen = strlen(name);
    p = put16(p, (uint32_t)nlen);
    p = put16(p, e->zip64 ? 24 + 20 : 24);
    out_put(o, h, (size_t)(p - h));
    out_put(o, name, nlen);
    p = put_common_extra(h, mtime);
    if (e->zip64) {
        p = put16(p, 1);
        p = put16(p, 16);
        p = put64(p, size);
        p = put64(p, deflate ? 0 : size);
    }
    out_put(o, h, (size_t)(p - h));
}

static void entry_finish(struct out *o, struct entry *e)
{
    uint8_t d[24], *p = d;
    p = put32(p, 0x08074b50u);
    p = put32(p, e->crc);
    if (e->zip64) {
        p = put64(p, e->csize);
        p = put64(p, e->usize);
    } else {
        p = put32(p, (uint32_t)e->csize);
        p = put32(p, (uint32_t)e->usize);
    }
    out_put(o, d, (size_t)(p - d));
}

static void central_header(struct out *o, const struct entry *e, uint32_t dtime, int64_t mtime)
{
    uint8_t z64[4 + 24], *z = z64 + 4;
    /* 0xffffffff in a field means "see the zip64 extra", so a value of exactly that needs one too
     * (libarchive writes it bare: the one place where the bytes differ from its) */
    bool need64 = e->csize >= U32_MAX_LL || e->usize >= U32_MAX_LL || e->offset >= U32_MAX_LL;
    if (need64) {
        if (e->usize >= U32_MAX_LL)
            z = put64(z, e->usize);
        if (e->csize >= U32_MAX_LL)
            z = put64(z, e->csize);
        if (e->offset >= U32_MAX_LL)
            z = put64(z, e->offset);
        put16(z64, 1);
        put16(z64 + 2, (uint32_t)(z - (z64 + 4)));
    }
    size_t z64len = need64 ? (size_t)(z - z64) : 0;
    uint16_t needed = need64 && e->version < 45 ? 45 : e->version;
    size_t nlen = strlen(e->name);
    uint8_t h[46], *p = h;
    p = put32(p, 0x02014b50u);
    p = put16(p, 3 * 256 + e->version); /* made by: Unix */
    p = put16(p, needed);
    p = put16(p, 8);
    p = put16(p, e->deflate ? 8 : 0);
    p = put32(p, dtime);
    p = put32(p, e->crc);
    p = put32(p, min32(e->csize));
    p = put32(p, min32(e->usize));
    p = put16(p, (uint32_t)nlen);
    p = put16(p, (uint32_t)(24 + z64len));
    p = put16(p, 0);                    /* comment */
    p = put16(p, 0);                    /* disk */
    p = put16(p, 0);                    /* internal attributes */
    p = put32(p, (uint32_t)0100644 << 16);
    p = put32(p, min32(e->offset));
    out_put(o, h, sizeof h);
    out_put(o, e->name, nlen);
    uint8_t x[24];
    put_common_extra(x, mtime);
    out_put(o, x, sizeof x);
    if (z64len)
        out_put(o, z64, z64len);
}

static void end_records(struct out *o, uint64_t cd_start, uint64_t cd_end, uint64_t entries)
{
    uint8_t b[56], *p;
    if (cd_end - cd_start >= U32_MAX_LL || cd_start >= U32_MAX_LL || entries >= 0xffff) {
        memset(b, 0, sizeof b);
        p = put32(b, 0x06064b50u);
        p = put64(p, 44);
        p = put16(p, 45);
        p = put16(p, 45);
        p = put32(p, 0);
        p = put32(p, 0);
        p = put64(p, entries);
        p = put64(p, entries);
        p = put64(p, cd_end - cd_start);
        put64(p, cd_start);
        out_put(o, b, 56);
        memset(b, 0, 20);
        p = put32(b, 0x07064b50u);
        p = put32(p, 0);
        p = put64(p, cd_end);
        put32(p, 1);
        out_put(o, b, 20);
    }
    memset(b, 0, 22);
    p = put32(b, 0x06054b50u);
    p = put16(p, 0);
    p = put16(p, 0);
    p = put16(p, entries >= 0xffff ? 0xffff : (uint32_t)entries);
    p = put16(p, entries >= 0xffff ? 0xffff : (uint32_t)entries);
    p = put32(p, min32(cd_end - cd_start));
    put32(p, min32(cd_start));
    out_put(o, b, 22);
}

/* Compresses (or stores) len bytes of data into the current entry; finish ends the stream. */
static int entry_data(struct out *o, struct entry *e, z_stream *zs, uint8_t *zbuf,
                      const void *data, size_t len, bool finish)
{
    if (len)
        e->crc = (uint32_t)crc32_z(e->crc, data, len);
    e->usize += len;
    if (!e->deflate) {
        out_put(o, data, len);
        e->csize += len;
        return 0;
    }
    zs->next_in = (Bytef *)(uintptr_t)data;
    zs->avail_in = (uInt)len;
    for (;;) {
        zs->next_out = zbuf;
        zs->avail_out = OUT_CHUNK;
        int zr = deflate(zs, finish ? Z_FINISH : Z_NO_FLUSH);
        if (zr == Z_STREAM_ERROR)
            return -EIO;
        size_t n = OUT_CHUNK - zs->avail_out;
        out_put(o, zbuf, n);
        e->csize += n;
        if (finish ? zr == Z_STREAM_END : (zs->avail_in == 0 && zs->avail_out != 0))
            return 0;
    }
}

int lf_zip_write_session(int out_fd, const char *manifest_name, const void *manifest,
                         size_t manifest_len, const char *log_name, int log_fd, uint64_t log_size,
                         const uint8_t log_hash[LF_HASH_BYTES], int level, int64_t mtime,
                         lf_zip_error *err)
{
    bool d1 = false, d2 = false;
    if (level < 0 || level > 9 ||
        lf_zip_name_check(manifest_name, strlen(manifest_name), 255, &d1) != LF_ZIP_OK ||
        lf_zip_name_check(log_name, strlen(log_name), 255, &d2) != LF_ZIP_OK || d1 || d2 ||
        strcmp(manifest_name, log_name) == 0)
        return fail(err, -EINVAL, LF_ZIP_BAD_NAME, "invalid entry names or level");
    /* one allocation: the read chunk, the deflate output chunk and the output buffer */
    uint8_t *mem = lf_malloc(READ_CHUNK + 2 * OUT_CHUNK);
    if (!mem)
        return fail(err, -ENOMEM, LF_ZIP_IO, "out of memory");
    uint8_t *chunk = mem, *zbuf = mem + READ_CHUNK;
    struct out o = {.fd = out_fd, .buf = mem + READ_CHUNK + OUT_CHUNK};
    bool deflating = level > 0;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* libarchive's parameters: raw deflate, 32 KiB window, memLevel 8, default strategy */
    if (deflating && deflateInit2(&zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        lf_free(mem);
        return fail(err, -ENOMEM, LF_ZIP_IO, "out of memory");
    }
    uint32_t dtime = dos_time(mtime);
    struct entry ents[2];
    int rc = 0;

    entry_start(&o, &ents[0], manifest_name, manifest_len, deflating, dtime, mtime);
    rc = entry_data(&o, &ents[0], &zs, zbuf, manifest, manifest_len, false);
    if (rc == 0 && deflating)
        rc = entry_data(&o, &ents[0], &zs, zbuf, NULL, 0, true);
    entry_finish(&o, &ents[0]);
    if (rc == 0 && deflating)
        rc = deflateReset(&zs) == Z_OK ? 0 : -EIO;
    if (rc < 0 || o.rc)
        goto write_failed;

    entry_start(&o, &ents[1], log_name, log_size, deflating, dtime, mtime);
    lf_hash_ctx hctx;
    lf_crypto_hash_init(&hctx);
    uint64_t left = log_size;
    while (left > 0) {
        size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
        ssize_t n = lf_read_full(log_fd, chunk, want);
        if (n < 0) {
            rc = fail(err, (int)n, LF_ZIP_IO, "cannot read the log: %s", strerror((int)-n));
            goto out;
        }
        if ((size_t)n < want) {
            rc = fail(err, -EIO, LF_ZIP_IO, "the log ended %llu bytes before its size",
                      (unsigned long long)(left - (uint64_t)n));
            goto out;
        }
        lf_crypto_hash_update(&hctx, chunk, (size_t)n);
        left -= (uint64_t)n;
        if ((rc = entry_data(&o, &ents[1], &zs, zbuf, chunk, (size_t)n, false)) < 0 || o.rc)
            goto write_failed;
    }
    if (deflating && (rc = entry_data(&o, &ents[1], &zs, zbuf, NULL, 0, true)) < 0)
        goto write_failed;
    entry_finish(&o, &ents[1]);

    uint64_t cd_start = o.written;
    for (int i = 0; i < 2; i++)
        central_header(&o, &ents[i], dtime, mtime);
    end_records(&o, cd_start, o.written, 2);
    out_flush(&o);
    if (o.rc)
        goto write_failed;
    if (log_hash) {
        uint8_t h[LF_HASH_BYTES];
        lf_crypto_hash_final(&hctx, h);
        if (!lf_crypto_equal(h, log_hash, LF_HASH_BYTES))
            rc = fail(err, LF_ECONFLICT, LF_ZIP_IO,
                      "the log changed since it was hashed (content differs)");
    }
    goto out;

write_failed:
    rc = fail(err, o.rc ? o.rc : -EIO, LF_ZIP_WRITE, "cannot write the zip: %s",
              o.rc ? strerror(-o.rc) : "deflate failed");
out:
    if (deflating)
        deflateEnd(&zs);
    lf_free(mem);
    if (rc == 0 && err) {
        err->reason = LF_ZIP_OK;
        err->msg[0] = '\0';
    }
    return rc;
}
