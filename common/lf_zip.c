#include "lf_zip.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_fileio.h"

#define READ_CHUNK (64 * 1024)
#define EOCD_SIG 0x06054b50u
#define EOCD64_SIG 0x06064b50u
#define EOCD64_LOC_SIG 0x07064b50u
#define CDH_SIG 0x02014b50u
#define LFH_SIG 0x04034b50u

struct zip_entry {
    char *name;
    uint64_t csize, usize;
    uint64_t offset; /* local header */
    bool is_dir;
    bool seen;       /* libarchive showed it (consistency check) */
};

struct lf_zip {
    int fd;          /* -1 for memory */
    const uint8_t *mem;
    uint64_t size;
    lf_zip_limits lim;
    struct zip_entry *entries;
    size_t count;
    uint64_t total_read; /* decompressed bytes delivered over every read */
    /* libarchive client state */
    uint64_t pos;
    uint8_t *rbuf;
    int io_errno;
};

static const char *reason_names[] = {
    [LF_ZIP_OK] = "ok",
    [LF_ZIP_NOT_ZIP] = "not_zip",
    [LF_ZIP_BAD_STRUCTURE] = "bad_structure",
    [LF_ZIP_BAD_NAME] = "bad_name",
    [LF_ZIP_NAME_TOO_LONG] = "name_too_long",
    [LF_ZIP_DUPLICATE_NAME] = "duplicate_name",
    [LF_ZIP_NOT_REGULAR] = "not_regular",
    [LF_ZIP_ENCRYPTED] = "encrypted",
    [LF_ZIP_UNSUPPORTED_METHOD] = "unsupported_method",
    [LF_ZIP_TOO_MANY_ENTRIES] = "too_many_entries",
    [LF_ZIP_TOO_LARGE] = "too_large",
    [LF_ZIP_RATIO] = "compression_ratio",
    [LF_ZIP_CORRUPT_DATA] = "corrupt_data",
    [LF_ZIP_NO_ENTRY] = "no_entry",
    [LF_ZIP_IO] = "io",
    [LF_ZIP_WRITE] = "write",
};

const char *lf_zip_reason_name(enum lf_zip_reason r)
{
    if ((unsigned)r < sizeof reason_names / sizeof *reason_names && reason_names[r])
        return reason_names[r];
    return "unknown";
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

static void ok(lf_zip_error *err)
{
    if (err) {
        err->reason = LF_ZIP_OK;
        err->msg[0] = '\0';
    }
}

void lf_zip_limits_default(lf_zip_limits *l)
{
    l->max_entries = 16;
    l->max_total_size = (uint64_t)4 << 30;
    l->max_entry_ratio = 200;
    l->max_total_ratio = 200;
    l->ratio_floor = 1 << 20;
    l->max_name_len = 255;
    l->max_manifest_size = 64 * 1024;
}

/* ---- raw access to the source ---- */

static int src_pread(lf_zip *z, void *buf, size_t len, uint64_t off)
{
    if (off > z->size || len > z->size - off)
        return LF_ECORRUPT;
    if (z->fd < 0) {
        memcpy(buf, z->mem + off, len);
        return 0;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(z->fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return LF_ECORRUPT; /* file shrank under us */
        got += (size_t)n;
    }
    return 0;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int cmp_entry_names(const void *a, const void *b)
{
    const struct zip_entry *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* ---- central directory ---- */

static int parse_zip64_extra(const uint8_t *extra, size_t len, uint64_t *usize, uint64_t *csize,
                             uint64_t *offset, bool need_u, bool need_c, bool need_o)
{
    size_t i = 0;
    while (i + 4 <= len) {
        uint16_t id = le16(extra + i), sz = le16(extra + i + 2);
        if (sz > len - i - 4)
            return -1;
        if (id == 0x0001) {
            const uint8_t *p = extra + i + 4;
            size_t left = sz;
            if (need_u) {
                if (left < 8)
                    return -1;
                *usize = le64(p), p += 8, left -= 8;
            }
            if (need_c) {
                if (left < 8)
                    return -1;
                *csize = le64(p), p += 8, left -= 8;
            }
            if (need_o) {
                if (left < 8)
                    return -1;
                *offset = le64(p);
            }
            return 0;
        }
        i += 4 + (size_t)sz;
    }
    return need_u || need_c || need_o ? -1 : 0;
}

static int read_directory(lf_zip *z, lf_zip_error *err)
{
    const lf_zip_limits *lim = &z->lim;
    if (z->size < 22)
        return fail(err, LF_EFORMAT, LF_ZIP_NOT_ZIP, "not a zip archive (too short)");
    /* The end record is in the last 22 + 65535 bytes; its comment must end the file exactly. */
    size_t tail_len = z->size < 22 + 65535 ? (size_t)z->size : 22 + 65535;
    uint8_t *tail = lf_malloc(tail_len);
    if (!tail)
        return fail(err, -ENOMEM, LF_ZIP_IO, "out of memory");
    uint64_t tail_off = z->size - tail_len;
    int rc = src_pread(z, tail, tail_len, tail_off);
    if (rc) {
        lf_free(tail);
        return fail(err, rc == LF_ECORRUPT ? LF_ECORRUPT : -EIO, LF_ZIP_IO, "cannot read archive");
    }
    long eocd = -1;
    for (long i = (long)tail_len - 22; i >= 0; i--) {
        if (le32(tail + i) == EOCD_SIG && (size_t)i + 22 + le16(tail + i + 20) == tail_len) {
            eocd = i;
            break;
        }
    }
    if (eocd < 0) {
        lf_free(tail);
        /* Name the common mistakes: the receiver's message is all the uploader sees. */
        uint8_t head[262] = {0};
        size_t hn = z->size < sizeof head ? (size_t)z->size : sizeof head;
        src_pread(z, head, hn, 0);
        if (hn >= 262 && memcmp(head + 257, "ustar", 5) == 0)
            return fail(err, LF_EFORMAT, LF_ZIP_NOT_ZIP, "a tar archive, not a zip");
        if (hn >= 2 && head[0] == 0x1f && head[1] == 0x8b)
            return fail(err, LF_EFORMAT, LF_ZIP_NOT_ZIP, "a gzip stream, not a zip");
        if (hn >= 4 && le32(head) == LFH_SIG)
            return fail(err, LF_EFORMAT, LF_ZIP_NOT_ZIP,
                        "zip without a valid end record (truncated, or data after it)");
        return fail(err, LF_EFORMAT, LF_ZIP_NOT_ZIP, "not a zip archive");
    }
    const uint8_t *e = tail + eocd;
    uint64_t eocd_pos = tail_off + (uint64_t)eocd;
    uint64_t n_entries = le16(e + 10), cd_size = le32(e + 12), cd_off = le32(e + 16);
    /* Several disks: an archive split in parts, never what an uploader sends. */
    bool multi = le16(e + 4) != 0 || le16(e + 6) != 0 || le16(e + 8) != n_entries;
    uint64_t cd_end = eocd_pos; /* where the central directory must end */
    bool zip64 = n_entries == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu;
    if (eocd_pos >= 20) {
        uint8_t loc[20];
        if (src_pread(z, loc, 20, eocd_pos - 20) == 0 && le32(loc) == EOCD64_LOC_SIG) {
            uint64_t e64_pos = le64(loc + 8);
            uint8_t e64[56];
            if (le32(loc + 4) != 0 || le32(loc + 16) != 1 || eocd_pos < 76 || e64_pos > eocd_pos - 76 ||
                src_pread(z, e64, 56, e64_pos) != 0 || le32(e64) != EOCD64_SIG) {
                lf_free(tail);
                return fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE, "bad zip64 end record");
            }
            n_entries = le64(e64 + 32);
            multi = le32(e64 + 16) != 0 || le32(e64 + 20) != 0 || le64(e64 + 24) != n_entries;
            cd_size = le64(e64 + 40);
            cd_off = le64(e64 + 48);
            cd_end = e64_pos;
            zip64 = false;
        }
    }
    lf_free(tail);
    if (zip64)
        return fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE, "zip64 end record missing");
    if (multi)
        return fail(err, LF_EFORMAT, LF_ZIP_NOT_ZIP, "multi-disk zip archives are not accepted");
    if (n_entries == 0)
        return fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE, "empty zip archive");
    if (n_entries > lim->max_entries)
        return fail(err, LF_ELIMIT, LF_ZIP_TOO_MANY_ENTRIES,
                    "%llu entries, more than the %zu allowed", (unsigned long long)n_entries,
                    lim->max_entries);
    if (cd_off > cd_end || cd_size != cd_end - cd_off)
        return fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE,
                    "central directory does not end where the end record starts");
    if (cd_size > (uint64_t)n_entries * (46 + 3 * 65535))
        return fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE, "central directory too large");

    uint8_t *cd = lf_malloc((size_t)cd_size);
    z->entries = lf_calloc((size_t)n_entries, sizeof *z->entries);
    if (!cd || !z->entries) {
        lf_free(cd);
        return fail(err, -ENOMEM, LF_ZIP_IO, "out of memory");
    }
    if ((rc = src_pread(z, cd, (size_t)cd_size, cd_off)) != 0) {
        lf_free(cd);
        return fail(err, LF_ECORRUPT, LF_ZIP_IO, "cannot read the central directory");
    }
    size_t p = 0;
    uint64_t total_u = 0;
    rc = 0;
    for (uint64_t i = 0; i < n_entries; i++) {
        if (cd_size - p < 46 || le32(cd + p) != CDH_SIG) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE, "bad central directory record %llu",
                      (unsigned long long)i);
            break;
        }
        const uint8_t *h = cd + p;
        uint16_t made_by = le16(h + 4), flags = le16(h + 8), method = le16(h + 10);
        uint64_t csize = le32(h + 20), usize = le32(h + 24);
        size_t nlen = le16(h + 28), xlen = le16(h + 30), clen = le16(h + 32);
        uint16_t start_disk = le16(h + 34);
        uint32_t ext = le32(h + 38);
        uint64_t off = le32(h + 42);
        if (cd_size - p - 46 < nlen + xlen + clen) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE, "central directory record %llu overruns",
                      (unsigned long long)i);
            break;
        }
        const char *name = (const char *)h + 46;
        /* Show a clean prefix of a hostile name in messages. */
        char shown[64];
        size_t sn = 0;
        for (size_t k = 0; k < nlen && sn < 40; k++)
            shown[sn++] = (name[k] >= 0x20 && name[k] < 0x7f) ? name[k] : '?';
        shown[sn] = '\0';

        if (nlen > lim->max_name_len) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_NAME_TOO_LONG, "entry name \"%s...\" longer than %zu",
                      shown, lim->max_name_len);
            break;
        }
        bool is_dir = false;
        enum lf_zip_reason why = lf_zip_name_check(name, nlen, lim->max_name_len, &is_dir);
        if (why != LF_ZIP_OK) {
            rc = fail(err, LF_EFORMAT, why,
                      "entry name \"%s\" is not allowed (must be relative, no \"..\", \".\", "
                      "empty segments, backslash, colon or non-printable characters)",
                      shown);
            break;
        }
        if ((flags & 0x0001) || (flags & 0x0040) || method == 99) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_ENCRYPTED, "entry \"%s\" is encrypted", shown);
            break;
        }
        if (method != 0 && method != 8) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_UNSUPPORTED_METHOD,
                      "entry \"%s\" uses compression method %u (only stored and deflate)", shown,
                      method);
            break;
        }
        if ((made_by >> 8) == 3) { /* Unix: the mode is in the high half of the attributes */
            unsigned mode = ext >> 16, fmt = mode & S_IFMT;
            if (fmt == S_IFDIR)
                is_dir = true;
            else if (fmt != 0 && fmt != S_IFREG) {
                rc = fail(err, LF_EFORMAT, LF_ZIP_NOT_REGULAR,
                          "entry \"%s\" is a %s, only regular files are accepted", shown,
                          fmt == S_IFLNK ? "symbolic link" : "special file");
                break;
            }
        }
        if (ext & 0x10) /* MS-DOS directory attribute */
            is_dir = true;
        bool nu = usize == 0xffffffffu, nc = csize == 0xffffffffu, no = off == 0xffffffffu;
        if ((nu || nc || no) && parse_zip64_extra(h + 46 + nlen, xlen, &usize, &csize, &off, nu,
                                                  nc, no) != 0) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE, "entry \"%s\": bad zip64 field", shown);
            break;
        }
        if (start_disk != 0 && start_disk != 0xffff) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_NOT_ZIP, "multi-disk zip archives are not accepted");
            break;
        }
        if (off >= cd_off || csize > cd_off - off) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE, "entry \"%s\" lies outside the data",
                      shown);
            break;
        }
        if (is_dir && usize != 0) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_NOT_REGULAR, "directory entry \"%s\" has data", shown);
            break;
        }
        if (usize > lim->max_total_size || total_u + usize > lim->max_total_size) {
            rc = fail(err, LF_ELIMIT, LF_ZIP_TOO_LARGE,
                      "entries expand to more than %llu bytes",
                      (unsigned long long)lim->max_total_size);
            break;
        }
        total_u += usize;
        if (usize > lim->ratio_floor && usize / (csize ? csize : 1) > lim->max_entry_ratio) {
            rc = fail(err, LF_ELIMIT, LF_ZIP_RATIO,
                      "entry \"%s\" compression ratio above %llu (zip bomb?)", shown,
                      (unsigned long long)lim->max_entry_ratio);
            break;
        }
        struct zip_entry *ze = &z->entries[z->count];
        ze->name = lf_strndup(name, nlen);
        if (!ze->name) {
            rc = fail(err, -ENOMEM, LF_ZIP_IO, "out of memory");
            break;
        }
        ze->csize = csize;
        ze->usize = usize;
        ze->offset = off;
        ze->is_dir = is_dir;
        z->count++;
        p += 46 + nlen + xlen + clen;
    }
    lf_free(cd);
    if (rc)
        return rc;
    if (p != cd_size)
        return fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE,
                    "central directory size does not match its records");
    if (total_u > lim->ratio_floor && total_u / z->size > lim->max_total_ratio)
        return fail(err, LF_ELIMIT, LF_ZIP_RATIO,
                    "archive compression ratio above %llu (zip bomb?)",
                    (unsigned long long)lim->max_total_ratio);
    /* Each local header must exist where the directory says and carry the same name, so that no
     * reader (ours, libarchive's, an operator's unzip) can see another name for the data. */
    for (size_t i = 0; i < z->count; i++) {
        struct zip_entry *ze = &z->entries[i];
        size_t nlen = strlen(ze->name);
        uint8_t *lh = lf_malloc(30 + nlen);
        if (!lh)
            return fail(err, -ENOMEM, LF_ZIP_IO, "out of memory");
        bool good = ze->offset + 30 + nlen <= cd_off &&
                    src_pread(z, lh, 30 + nlen, ze->offset) == 0 && le32(lh) == LFH_SIG &&
                    le16(lh + 26) == nlen && memcmp(lh + 30, ze->name, nlen) == 0 &&
                    (le16(lh + 6) & 0x0041) == 0;
        lf_free(lh);
        if (!good)
            return fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE,
                        "entry \"%.60s\": local header disagrees with the central directory",
                        ze->name);
    }
    /* Duplicates, on a sorted copy of the pointers. */
    struct zip_entry **sorted = lf_malloc(z->count * sizeof *sorted);
    if (!sorted)
        return fail(err, -ENOMEM, LF_ZIP_IO, "out of memory");
    for (size_t i = 0; i < z->count; i++)
        sorted[i] = &z->entries[i];
    qsort(sorted, z->count, sizeof *sorted, cmp_entry_names);
    for (size_t i = 1; i < z->count; i++) {
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_DUPLICATE_NAME, "entry \"%.60s\" appears twice",
                      sorted[i]->name);
            break;
        }
    }
    lf_free(sorted);
    return rc;
}

static int open_common(lf_zip **out, lf_zip *z, const lf_zip_limits *limits, lf_zip_error *err)
{
    if (limits)
        z->lim = *limits;
    else
        lf_zip_limits_default(&z->lim);
    int rc = read_directory(z, err);
    if (rc) {
        lf_zip_close(z);
        return rc;
    }
    ok(err);
    *out = z;
    return 0;
}

int lf_zip_open_fd(lf_zip **out, int fd, const lf_zip_limits *limits, lf_zip_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return fail(err, -errno, LF_ZIP_IO, "cannot stat the archive");
    if (!S_ISREG(st.st_mode))
        return fail(err, -EINVAL, LF_ZIP_IO, "archive must be a regular file");
    lf_zip *z = lf_calloc(1, sizeof *z);
    if (!z)
        return fail(err, -ENOMEM, LF_ZIP_IO, "out of memory");
    z->fd = fd;
    z->size = (uint64_t)st.st_size;
    return open_common(out, z, limits, err);
}

int lf_zip_open_mem(lf_zip **out, const void *data, size_t len, const lf_zip_limits *limits,
                    lf_zip_error *err)
{
    lf_zip *z = lf_calloc(1, sizeof *z);
    if (!z)
        return fail(err, -ENOMEM, LF_ZIP_IO, "out of memory");
    z->fd = -1;
    z->mem = data;
    z->size = len;
    return open_common(out, z, limits, err);
}

void lf_zip_close(lf_zip *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->count; i++)
        lf_free(z->entries[i].name);
    lf_free(z->entries);
    lf_free(z->rbuf);
    lf_free(z);
}

size_t lf_zip_entry_count(const lf_zip *z)
{
    return z->count;
}

const char *lf_zip_entry_name(const lf_zip *z, size_t i)
{
    return i < z->count ? z->entries[i].name : NULL;
}

static struct zip_entry *find_entry(const lf_zip *z, const char *name)
{
    for (size_t i = 0; i < z->count; i++)
        if (strcmp(z->entries[i].name, name) == 0)
            return &z->entries[i];
    return NULL;
}

int lf_zip_entry_size(const lf_zip *z, const char *name, uint64_t *size)
{
    struct zip_entry *e = find_entry(z, name);
    if (!e)
        return -ENOENT;
    *size = e->usize;
    return 0;
}

/* ---- libarchive client callbacks over the source ---- */

static la_ssize_t cb_read(struct archive *a, void *ud, const void **buf)
{
    lf_zip *z = ud;
    if (z->pos >= z->size)
        return 0;
    size_t n = z->size - z->pos < READ_CHUNK ? (size_t)(z->size - z->pos) : READ_CHUNK;
    if (z->fd < 0) {
        *buf = z->mem + z->pos;
    } else {
        int rc = src_pread(z, z->rbuf, n, z->pos);
        if (rc) {
            z->io_errno = rc;
            archive_set_error(a, EIO, "read error");
            return -1;
        }
        *buf = z->rbuf;
    }
    z->pos += n;
    return (la_ssize_t)n;
}

static la_int64_t cb_seek(struct archive *a, void *ud, la_int64_t offset, int whence)
{
    lf_zip *z = ud;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)z->pos : (int64_t)z->size;
    int64_t np = base + offset;
    if (np < 0 || (uint64_t)np > z->size)
        return ARCHIVE_FATAL;
    z->pos = (uint64_t)np;
    return np;
}

static la_int64_t cb_skip(struct archive *a, void *ud, la_int64_t request)
{
    lf_zip *z = ud;
    uint64_t left = z->size - z->pos;
    uint64_t n = request < 0 ? 0 : (uint64_t)request < left ? (uint64_t)request : left;
    z->pos += n;
    return (la_int64_t)n;
}

static int open_archive(lf_zip *z, struct archive **out, lf_zip_error *err)
{
    if (z->fd >= 0 && !z->rbuf) {
        z->rbuf = lf_malloc(READ_CHUNK);
        if (!z->rbuf)
            return fail(err, -ENOMEM, LF_ZIP_IO, "out of memory");
    }
    struct archive *a = archive_read_new();
    if (!a)
        return fail(err, -ENOMEM, LF_ZIP_IO, "out of memory");
    z->pos = 0;
    z->io_errno = 0;
    /* zip only: no other format or filter can be detected */
    archive_read_support_format_zip_seekable(a);
    archive_read_set_read_callback(a, cb_read);
    archive_read_set_seek_callback(a, cb_seek);
    archive_read_set_skip_callback(a, cb_skip);
    archive_read_set_callback_data(a, z);
    if (archive_read_open1(a) != ARCHIVE_OK) {
        int rc = fail(err, LF_EFORMAT, LF_ZIP_NOT_ZIP, "not a readable zip: %s",
                      archive_error_string(a) ? archive_error_string(a) : "unknown error");
        archive_read_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

struct read_state {
    lf_zip *z;
    struct zip_entry *e;
    lf_zip_data_fn fn;
    void *ctx;
};

/* Streams the current entry's data, enforcing the limits on the bytes actually produced. */
static int read_data(struct archive *a, struct read_state *rs, lf_zip_error *err)
{
    lf_zip *z = rs->z;
    struct zip_entry *e = rs->e;
    const lf_zip_limits *lim = &z->lim;
    uint64_t got = 0;
    char buf[16384];
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, sizeof buf);
        if (n < 0) {
            if (z->io_errno)
                return fail(err, -EIO, LF_ZIP_IO, "cannot read the archive");
            return fail(err, LF_ECORRUPT, LF_ZIP_CORRUPT_DATA, "entry \"%.60s\": %s", e->name,
                        archive_error_string(a) ? archive_error_string(a) : "bad data");
        }
        if (n == 0)
            break;
        got += (uint64_t)n;
        z->total_read += (uint64_t)n;
        if (got > e->usize)
            return fail(err, LF_ECORRUPT, LF_ZIP_CORRUPT_DATA,
                        "entry \"%.60s\" is larger than its declared %llu bytes", e->name,
                        (unsigned long long)e->usize);
        if (z->total_read > lim->max_total_size)
            return fail(err, LF_ELIMIT, LF_ZIP_TOO_LARGE, "entries expand to more than %llu bytes",
                        (unsigned long long)lim->max_total_size);
        if (got > lim->ratio_floor && got / (e->csize ? e->csize : 1) > lim->max_entry_ratio)
            return fail(err, LF_ELIMIT, LF_ZIP_RATIO,
                        "entry \"%.60s\" compression ratio above %llu (zip bomb?)", e->name,
                        (unsigned long long)lim->max_entry_ratio);
        if (z->total_read > lim->ratio_floor && z->total_read / z->size > lim->max_total_ratio)
            return fail(err, LF_ELIMIT, LF_ZIP_RATIO,
                        "archive compression ratio above %llu (zip bomb?)",
                        (unsigned long long)lim->max_total_ratio);
        if (rs->fn) {
            int rc = rs->fn(rs->ctx, buf, (size_t)n);
            if (rc)
                return fail(err, rc, LF_ZIP_IO, "entry \"%.60s\": reader stopped: %s", e->name,
                            lf_strerror(rc));
        }
    }
    if (got != e->usize)
        return fail(err, LF_ECORRUPT, LF_ZIP_CORRUPT_DATA,
                    "entry \"%.60s\" has %llu bytes, declared %llu", e->name,
                    (unsigned long long)got, (unsigned long long)e->usize);
    return 0;
}

/* Walks the archive with libarchive; reads the entry named want (or every regular entry when want
 * is NULL), checking that what libarchive sees agrees with the central directory. */
static int walk(lf_zip *z, const char *want, lf_zip_data_fn fn, void *ctx, lf_zip_error *err)
{
    struct archive *a = NULL;
    int rc = open_archive(z, &a, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < z->count; i++)
        z->entries[i].seen = false;
    bool found = false;
    for (;;) {
        struct archive_entry *ae;
        int r = archive_read_next_header(a, &ae);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            rc = z->io_errno ? fail(err, -EIO, LF_ZIP_IO, "cannot read the archive")
                             : fail(err, LF_ECORRUPT, LF_ZIP_CORRUPT_DATA, "bad zip entry: %s",
                                    archive_error_string(a) ? archive_error_string(a) : "unknown");
            break;
        }
        const char *name = archive_entry_pathname(ae);
        struct zip_entry *e = name ? find_entry(z, name) : NULL;
        if (!e || e->seen) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE,
                      "local entries disagree with the central directory");
            break;
        }
        e->seen = true;
        /* The name must be the central directory's name for the record at this offset: a local
         * header that claims another entry's name would make tools disagree on the content. */
        if (archive_entry_is_encrypted(ae)) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_ENCRYPTED, "entry \"%.60s\" is encrypted", e->name);
            break;
        }
        mode_t type = archive_entry_filetype(ae);
        if (type == AE_IFDIR || e->is_dir) {
            if (archive_entry_size_is_set(ae) && archive_entry_size(ae) != 0) {
                rc = fail(err, LF_EFORMAT, LF_ZIP_NOT_REGULAR, "directory entry \"%.60s\" has data",
                          e->name);
                break;
            }
            continue;
        }
        if (type != AE_IFREG || archive_entry_hardlink(ae) || archive_entry_symlink(ae)) {
            rc = fail(err, LF_EFORMAT, LF_ZIP_NOT_REGULAR,
                      "entry \"%.60s\" is not a regular file", e->name);
            break;
        }
        if (want && strcmp(want, e->name) != 0)
            continue;
        struct read_state rs = {z, e, fn, ctx};
        if ((rc = read_data(a, &rs, err)) != 0)
            break;
        found = true;
        if (want)
            break;
    }
    archive_read_free(a);
    if (rc == 0 && want && !found) {
        struct zip_entry *e = find_entry(z, want);
        rc = fail(err, -ENOENT, LF_ZIP_NO_ENTRY,
                  e && e->is_dir ? "\"%.60s\" is a directory" : "no entry \"%.60s\" in the archive",
                  want);
    }
    if (rc == 0)
        ok(err);
    return rc;
}

int lf_zip_read_entry(lf_zip *z, const char *name, lf_zip_data_fn fn, void *ctx,
                      lf_zip_error *err)
{
    if (!find_entry(z, name))
        return fail(err, -ENOENT, LF_ZIP_NO_ENTRY, "no entry \"%.60s\" in the archive", name);
    return walk(z, name, fn, ctx, err);
}

static int append_to_buf(void *ctx, const void *data, size_t len)
{
    return lf_buf_append(ctx, data, len);
}

int lf_zip_read_entry_buf(lf_zip *z, const char *name, size_t max, lf_buf *out,
                          lf_zip_error *err)
{
    struct zip_entry *e = find_entry(z, name);
    if (!e)
        return fail(err, -ENOENT, LF_ZIP_NO_ENTRY, "no entry \"%.60s\" in the archive", name);
    if (e->usize > max)
        return fail(err, LF_ELIMIT, LF_ZIP_TOO_LARGE, "entry \"%.60s\" is larger than %zu bytes",
                    name, max);
    size_t before = out->len;
    int rc = walk(z, name, append_to_buf, out, err);
    if (rc)
        lf_buf_truncate(out, before);
    return rc;
}

static int write_to_fd(void *ctx, const void *data, size_t len)
{
    return lf_write_all(*(const int *)ctx, data, len);
}

int lf_zip_read_entry_fd(lf_zip *z, const char *name, int out_fd, lf_zip_error *err)
{
    return lf_zip_read_entry(z, name, write_to_fd, &out_fd, err);
}

int lf_zip_verify_all(lf_zip *z, lf_zip_error *err)
{
    int rc = walk(z, NULL, NULL, NULL, err);
    if (rc == 0) {
        for (size_t i = 0; i < z->count; i++)
            if (!z->entries[i].seen)
                return fail(err, LF_EFORMAT, LF_ZIP_BAD_STRUCTURE,
                            "entry \"%.60s\" is not reachable", z->entries[i].name);
    }
    return rc;
}
