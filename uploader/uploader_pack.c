/* Scanning the watched directories and packing finished sessions into the outbox.
 *
 * A file is finished when it has been idle for settle, when its last line matches end_line, or when
 * its name carries the rotation suffix. Packing never ships half a file: the file is hashed, the
 * zip is written while hashing again (lf_zip_write_session refuses a different hash), and the file
 * is re-stat'ed (device, inode, size, mtime) before the zip is renamed into the outbox; any change
 * discards the snapshot and the file is looked at again on the next scan. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_fileio.h"
#include "lf_log.h"
#include "lf_zip.h"
#include "uploader_int.h"

#define PATH_MAXLEN 4096

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           mtime_ns(a) == mtime_ns(b);
}

static bool name_wanted(const struct lf_uploader_watch *w, const char *name)
{
    bool inc = false;
    for (size_t i = 0; w->include && w->include[i]; i++)
        if (fnmatch(w->include[i], name, 0) == 0)
            inc = true;
    if (!inc)
        return false;
    for (size_t i = 0; w->exclude && w->exclude[i]; i++)
        if (fnmatch(w->exclude[i], name, 0) == 0)
            return false;
    return true;
}

/* Start offset of the rotation suffix in s, or -1. */
static ptrdiff_t suffix_at(pcre2_code *re, const char *s)
{
    if (!re)
        return -1;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md)
        return -1;
    ptrdiff_t at = -1;
    if (pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL) >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == strlen(s) && ov[0] > 0)
            at = (ptrdiff_t)ov[0];
    }
    pcre2_match_data_free(md);
    return at;
}

void lf_uploader_identity(const char *relpath, const char *rotated_suffix_re, char *out,
                          size_t outsz)
{
    snprintf(out, outsz, "%s", relpath);
    if (!rotated_suffix_re)
        return;
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)rotated_suffix_re, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
                                   &ec, &off, NULL);
    if (!re)
        return;
    ptrdiff_t at = suffix_at(re, out);
    if (at > 0)
        out[at] = '\0';
    pcre2_code_free(re);
}

/* true when the last line of the file (fd, size bytes) matches end_line. */
static bool ends_session(pcre2_code *re, int fd, off_t size)
{
    char buf[4096];
    off_t from = size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, (size_t)(size - from), from);
    if (n <= 0)
        return false;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    ssize_t b = n;
    while (b > 0 && buf[b - 1] != '\n')
        b--;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md)
        return false;
    bool ok = pcre2_match(re, (PCRE2_SPTR)buf + b, (size_t)(n - b), 0, 0, md, NULL) >= 0;
    pcre2_match_data_free(md);
    return ok;
}

static void fmt_time(char out[32], int64_t sec)
{
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Fills manifest fields from filename_regex's named groups. */
static void apply_name_groups(struct watch_rt *wr, const char *name, lf_manifest *m)
{
    if (!wr->name_re)
        return;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(wr->name_re, NULL);
    if (!md)
        return;
    if (pcre2_match(wr->name_re, (PCRE2_SPTR)name, strlen(name), 0, 0, md, NULL) >= 0) {
        uint32_t count = 0, esize = 0;
        PCRE2_SPTR table = NULL;
        pcre2_pattern_info(wr->name_re, PCRE2_INFO_NAMECOUNT, &count);
        pcre2_pattern_info(wr->name_re, PCRE2_INFO_NAMEENTRYSIZE, &esize);
        pcre2_pattern_info(wr->name_re, PCRE2_INFO_NAMETABLE, &table);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        for (uint32_t i = 0; i < count; i++) {
            const unsigned char *e = table + (size_t)i * esize;
            int g = (e[0] << 8) | e[1];
            const char *gname = (const char *)e + 2;
            if (ov[2 * g] == PCRE2_UNSET)
                continue;
            size_t len = ov[2 * g + 1] - ov[2 * g];
            char *v = lf_malloc(len + 1);
            if (!v)
                continue;
            memcpy(v, name + ov[2 * g], len);
            v[len] = '\0';
            char **slot = NULL;
            if (strcmp(gname, "user") == 0)
                slot = &m->user;
            else if (strcmp(gname, "host") == 0)
                slot = &m->host;
            else if (strcmp(gname, "version") == 0)
                slot = &m->product_version;
            else if (strcmp(gname, "started_at") == 0 && lf_manifest_time_valid(v, NULL))
                slot = &m->started_at;
            if (slot) {
                lf_free(*slot);
                *slot = v;
            } else {
                int mrc = len > 0 ? lf_manifest_set_metadata(m, gname, v) : 0;
                if (mrc != 0)
                    LF_WARN("pack", "%s: metadata %s from the file name left out: %s", name, gname,
                            lf_strerror(mrc));
                lf_free(v);
            }
        }
    }
    pcre2_match_data_free(md);
}

/* Hashes [0, split) into prefix and [split, size) into tail, and all into full (may be NULL).
 * Without a split the tail is the whole file: one hash pass, not two. */
static int hash_ranges(int fd, uint64_t size, uint64_t split, uint8_t prefix[LF_HASH_BYTES],
                       uint8_t tail[LF_HASH_BYTES], uint8_t full[LF_HASH_BYTES])
{
    lf_hash_ctx p, t, f;
    lf_crypto_hash_init(&p);
    lf_crypto_hash_init(&t);
    lf_crypto_hash_init(&f);
    static unsigned char buf[64 * 1024];
    uint64_t off = 0;
    while (off < size) {
        size_t want = size - off > sizeof buf ? sizeof buf : (size_t)(size - off);
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return LF_ECONFLICT; /* shrank while reading */
        size_t k = (size_t)n;
        if (split == 0 && full) {
            lf_crypto_hash_update(&f, buf, k);
            off += k;
            continue;
        }
        if (off < split) {
            size_t pre = split - off < k ? (size_t)(split - off) : k;
            lf_crypto_hash_update(&p, buf, pre);
            lf_crypto_hash_update(&t, buf + pre, k - pre);
        } else {
            lf_crypto_hash_update(&t, buf, k);
        }
        lf_crypto_hash_update(&f, buf, k);
        off += k;
    }
    lf_crypto_hash_final(&p, prefix);
    if (split == 0 && full) {
        lf_crypto_hash_final(&f, full);
        memcpy(tail, full, LF_HASH_BYTES);
        return 0;
    }
    lf_crypto_hash_final(&t, tail);
    if (full)
        lf_crypto_hash_final(&f, full);
    return 0;
}

/* Looks at one candidate file. Returns 1 packed, 0 nothing to do, LF_ELIMIT outbox full, < 0
 * error for this file (logged; the scan goes on). */
static int consider(lf_uploader *u, struct watch_rt *wr, const char *path, const char *relpath,
                    const char *name)
{
    const struct lf_uploader_config *cfg = u->cfg;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    lf_ureg_file prev;
    int have = lf_ureg_file_get(u->reg, wr->w->name, relpath, &prev);
    if (have == 0) /* renamed (rotation)? Then it is the file seen under its old name */
        have = lf_ureg_file_by_inode(u->reg, wr->w->name, (int64_t)st.st_dev, (int64_t)st.st_ino,
                                     &prev);
    if (have < 0)
        return have;
    if (have && prev.dev == (int64_t)st.st_dev && prev.ino == (int64_t)st.st_ino &&
        prev.size == (int64_t)st.st_size && prev.mtime_ns == mtime_ns(&st))
        return lf_ureg_file_put(u->reg, wr->w->name, relpath, &prev, u->scan_gen);
    if (st.st_size == 0)
        return 0; /* nothing written yet (or just truncated by copytruncate) */

    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            lf_uploader_count(u, &u->st.unreadable, u->m.unreadable);
            LF_WARN("scan", "%s: cannot read: %s (will retry)", path, strerror(errno));
        }
        return 0;
    }
    bool finished = suffix_at(wr->rot_re, name) > 0;
    if (!finished && wr->end_re)
        finished = ends_session(wr->end_re, fd, st.st_size);
    if (!finished) {
        int64_t age_ms = (int64_t)time(NULL) * 1000 - mtime_ns(&st) / 1000000;
        finished = age_ms >= (int64_t)wr->w->settle_ms;
    }
    if (!finished) {
        close(fd);
        return 0;
    }

    /* Same inode grown past what was shipped, with the shipped bytes unchanged: a continuation. */
    uint64_t split = 0;
    if (have && prev.dev == (int64_t)st.st_dev && prev.ino == (int64_t)st.st_ino &&
        prev.shipped_size > 0 && (int64_t)st.st_size > prev.shipped_size)
        split = (uint64_t)prev.shipped_size;
    uint8_t prefix[LF_HASH_BYTES], tail[LF_HASH_BYTES], full[LF_HASH_BYTES];
    int rc = hash_ranges(fd, (uint64_t)st.st_size, split, prefix, tail, full);
    if (rc < 0) {
        close(fd);
        if (rc != LF_ECONFLICT) {
            lf_uploader_count(u, &u->st.unreadable, u->m.unreadable);
            LF_WARN("scan", "%s: read failed: %s (will retry)", path, lf_strerror(rc));
        }
        return 0;
    }
    if (split && memcmp(prefix, prev.prefix_hash, LF_HASH_BYTES) != 0)
        split = 0; /* rewritten in place: a new session */
    if (split && cfg->on_change == LF_CHANGE_WARN) {
        close(fd);
        lf_uploader_count(u, &u->st.changed_warned, u->m.warned);
        LF_WARN("scan", "%s grew from %" PRId64 " to %lld bytes after it was shipped; not shipping "
                        "the tail (on_change = warn)", path, prev.shipped_size, (long long)st.st_size);
        prev.size = st.st_size;
        prev.mtime_ns = mtime_ns(&st);
        return lf_ureg_file_put(u->reg, wr->w->name, relpath, &prev, u->scan_gen);
    }

    char ident[PATH_MAXLEN + 32];
    lf_uploader_identity(relpath, NULL, ident, sizeof ident);
    ptrdiff_t at = suffix_at(wr->rot_re, ident);
    if (at > 0 && strchr(ident + at, '/') == NULL)
        ident[at] = '\0';
    int part = 0;
    if (split) {
        part = prev.part + 1;
        size_t l = strlen(ident);
        snprintf(ident + l, sizeof ident - l, "#part=%d", part);
    }
    char id[LF_SESSION_ID_LEN + 1];
    lf_manifest_session_id(id, cfg->site, ident, strlen(ident), split ? tail : full);

    lf_ureg_file now = {.dev = (int64_t)st.st_dev, .ino = (int64_t)st.st_ino,
                        .size = (int64_t)st.st_size, .mtime_ns = mtime_ns(&st),
                        .shipped_size = (int64_t)st.st_size, .part = part};
    memcpy(now.prefix_hash, full, LF_HASH_BYTES);
    snprintf(now.first_id, sizeof now.first_id, "%s", split ? prev.first_id : id);

    char state[16];
    rc = lf_ureg_session_state(u->reg, id, state);
    if (rc != 0) {
        close(fd);
        return rc < 0 ? rc : lf_ureg_file_put(u->reg, wr->w->name, relpath, &now, u->scan_gen);
    }
    uint64_t len = (uint64_t)st.st_size - split;
    if (u->outbox_bytes + len + 4096 > cfg->outbox_max_size) {
        close(fd);
        if (cfg->outbox_on_full == LF_FULL_DROP_NEW) {
            lf_uploader_count(u, &u->st.dropped, u->m.dropped);
            LF_WARN("outbox", "outbox full (%" PRIu64 " bytes): dropping %s (on_full = drop_new)",
                    u->outbox_bytes, path);
            rc = lf_ureg_session_put(u->reg, id, wr->w->name, relpath, (int64_t)len, LF_US_DROPPED,
                                     "outbox full");
            return rc < 0 ? rc : lf_ureg_file_put(u->reg, wr->w->name, relpath, &now, u->scan_gen);
        }
        return LF_ELIMIT;
    }

    lf_manifest m;
    lf_manifest_init(&m);
    m.site = lf_strdup(cfg->site);
    m.product = lf_strdup(wr->w->product);
    m.product_version = lf_strdup(wr->w->product_version);
    m.log_type = lf_strdup(wr->w->log_type);
    const char *base = strrchr(ident, '/') ? strrchr(ident, '/') + 1 : ident;
    char log_name[256];
    snprintf(log_name, sizeof log_name, "%.*s", (int)strcspn(base, "#"), base);
    if (!lf_zip_name_valid(log_name, strlen(log_name), 255, NULL) ||
        strcmp(log_name, LF_MANIFEST_NAME) == 0)
        snprintf(log_name, sizeof log_name, "session.log");
    m.log_name = lf_strdup(log_name);
    m.log_size = len;
    lf_crypto_hex_encode(m.log_blake2b, split ? tail : full, LF_HASH_BYTES);
    memcpy(m.session_id, id, sizeof id);
    if (u->host[0])
        m.host = lf_strdup(u->host);
    /* The identity's path, not a rotated name: the same session always packs to the same bytes. */
    char spath[PATH_MAXLEN * 2];
    snprintf(spath, sizeof spath, "%s/%.*s", wr->w->dir, (int)strcspn(ident, "#"), ident);
    m.source_path = lf_strdup(spath);
    char ended[32];
    fmt_time(ended, st.st_mtim.tv_sec);
    for (size_t i = 0; wr->w->metadata && wr->w->metadata[i]; i++) {
        char kv[1200];
        snprintf(kv, sizeof kv, "%s", wr->w->metadata[i]);
        char *eq = strchr(kv, '=');
        if (eq) {
            *eq = '\0';
            int mrc = lf_manifest_set_metadata(&m, kv, eq + 1);
            if (mrc != 0)
                LF_WARN("pack", "%s: metadata %s of watch %s left out: %s", path, kv, wr->w->name, lf_strerror(mrc));
        }
    }
    apply_name_groups(wr, name, &m);
    int64_t started = 0;
    if (!m.started_at || (lf_manifest_time_valid(m.started_at, &started) &&
                          started <= (int64_t)st.st_mtim.tv_sec))
        m.ended_at = lf_strdup(ended);
    if (split) {
        snprintf(m.continuation_of, sizeof m.continuation_of, "%s", prev.first_id);
        m.part = (uint32_t)part;
    }
    lf_buf mj = LF_BUF_INIT(LF_MANIFEST_MAX);
    char err[256] = "";
    rc = lf_manifest_build(&m, &mj, err, sizeof err);
    lf_manifest_free(&m);
    if (rc < 0) {
        close(fd);
        lf_buf_free(&mj);
        LF_ERROR("scan", "%s: manifest: %s", path, err);
        return rc;
    }

    char tmp[PATH_MAXLEN], dst[PATH_MAXLEN];
    snprintf(tmp, sizeof tmp, "%s/%s.zip", u->tmp_dir, id);
    snprintf(dst, sizeof dst, "%s/%s.zip", cfg->outbox_dir, id);
    int zfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (zfd < 0) {
        rc = -errno;
        close(fd);
        lf_buf_free(&mj);
        LF_ERROR("outbox", "%s: %s", tmp, strerror(-rc));
        return rc;
    }
    lf_zip_error zerr;
    memset(&zerr, 0, sizeof zerr);
    if (lseek(fd, (off_t)split, SEEK_SET) < 0)
        rc = -errno;
    else
        rc = lf_zip_write_session(zfd, LF_MANIFEST_NAME, mj.data, mj.len, log_name, fd, len, split ? tail : full, (int)cfg->deflate_level,
                                  st.st_mtim.tv_sec, &zerr);
    lf_buf_free(&mj);
    close(fd);
    struct stat after;
    if (rc == 0)
        rc = lf_fsync(zfd);
    off_t zsize = rc == 0 ? lseek(zfd, 0, SEEK_END) : 0;
    close(zfd);
    if (rc == 0 && (stat(path, &after) != 0 || !same_file(&st, &after)))
        rc = LF_ECONFLICT;
    if (rc == LF_ECONFLICT) {
        unlink(tmp);
        lf_uploader_count(u, &u->st.snapshot_changed, u->m.snap_changed);
        LF_INFO("scan", "%s changed while it was being packed; snapshot discarded", path);
        return 0;
    }
    if (rc < 0) {
        unlink(tmp);
        LF_ERROR("outbox", "packing %s failed: %s (disk full?); will retry", path, lf_strerror(rc));
        return rc;
    }
    /* The directory itself is fsync'd once per scan, before the registry commits these rows
     * (sync_outbox_dir): a rename lost in a crash also loses the uncommitted rows, so the file is
     * packed again; an upload that already got its 2xx is then answered 200 (same id, same bytes). */
    if (rename(tmp, dst) != 0) {
        rc = -errno;
        unlink(tmp);
        LF_ERROR("outbox", "%s: %s", dst, strerror(-rc));
        return rc;
    }
    u->outbox_unsynced = true;
    rc = lf_ureg_session_put(u->reg, id, wr->w->name, relpath, (int64_t)len, LF_US_OUTBOX, NULL);
    if (rc == 0)
        rc = lf_ureg_file_put(u->reg, wr->w->name, relpath, &now, u->scan_gen);
    if (rc < 0)
        return rc; /* the zip is in the outbox; the next start reconciles the registry */
    u->outbox_bytes += (uint64_t)zsize;
    lf_uploader_count(u, &u->st.packed, u->m.packed);
    LF_DEBUG("scan", "packed %s as %s%s", path, id, split ? " (continuation)" : "");
    rc = lf_uploader_queue_push(u, id);
    if (rc == 0 && u->packed_fn)
        u->packed_fn(u->packed_arg);
    return rc < 0 ? rc : 1;
}

/* Walks one directory level (and below when recursive). Returns packed count or LF_ELIMIT. */
static int walk(lf_uploader *u, struct watch_rt *wr, const char *dir, const char *rel, int depth,
                bool *complete)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (depth == 0)
            LF_WARN("scan", "watch %s: cannot open %s: %s", wr->w->name, dir, strerror(errno));
        *complete = false;
        return 0;
    }
    int packed = 0;
    struct dirent *e;
    char path[PATH_MAXLEN], relpath[PATH_MAXLEN];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int n1 = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int n2 = snprintf(relpath, sizeof relpath, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        if (n1 >= (int)sizeof path || n2 >= (int)sizeof relpath)
            continue;
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (wr->w->recursive && depth < 32) {
                int rc = walk(u, wr, path, relpath, depth + 1, complete);
                if (rc < 0) {
                    closedir(d);
                    return rc;
                }
                packed += rc;
            }
            continue;
        }
        if (!S_ISREG(st.st_mode) || !name_wanted(wr->w, e->d_name))
            continue;
        int rc = consider(u, wr, path, relpath, e->d_name);
        if (rc == LF_ELIMIT) {
            closedir(d);
            return rc;
        }
        if (rc < 0) {
            *complete = false;
            u->st.pack_errors++;
        } else
            packed += rc;
    }
    closedir(d);
    return packed;
}

/* Makes this scan's renames into the outbox durable, then commits the scan's registry rows. On a
 * failed directory fsync the rows are rolled back instead: the zips stay in the outbox, and the
 * next start (load_outbox) or scan reconciles them. */
static int commit_scan(lf_uploader *u)
{
    if (u->outbox_unsynced) {
        int rc = lf_fsync_dir(u->cfg->outbox_dir);
        if (rc < 0) {
            LF_ERROR("outbox", "cannot sync %s: %s", u->cfg->outbox_dir, lf_strerror(rc));
            lf_ureg_rollback(u->reg);
            return rc;
        }
        u->outbox_unsynced = false;
    }
    return lf_ureg_commit(u->reg);
}

int lf_uploader_scan(lf_uploader *u)
{
    u->scan_gen++;
    int total = 0;
    /* One transaction per scan: thousands of unchanged files cost one fsync, not one each. A crash
     * before the commit loses only rows the next start rebuilds from the outbox listing. */
    int trc = lf_ureg_begin(u->reg);
    if (trc < 0)
        return trc;
    if ((trc = lf_uploader_adopt_retried(u)) < 0) {
        lf_ureg_rollback(u->reg);
        return trc;
    }
    for (size_t i = 0; i < u->n_watches; i++) {
        struct watch_rt *wr = &u->watches[i];
        bool complete = true;
        int rc = walk(u, wr, wr->w->dir, "", 0, &complete);
        if (rc == LF_ELIMIT) {
            if (!u->full) {
                lf_uploader_count(u, &u->st.outbox_full_pauses, u->m.full);
                LF_WARN("outbox", "outbox full (%" PRIu64 " of %" PRIu64 " bytes): scanning paused "
                                  "until uploads make room; nothing is dropped",
                        u->outbox_bytes, u->cfg->outbox_max_size);
            }
            u->full = true;
            trc = commit_scan(u);
            return trc < 0 ? trc : total;
        }
        if (rc > 0)
            total += rc;
        if (complete) {
            int gone = lf_ureg_file_gc(u->reg, wr->w->name, u->scan_gen);
            if (gone > 0)
                LF_DEBUG("scan", "watch %s: forgot %d files that are gone", wr->w->name, gone);
        }
    }
    trc = commit_scan(u);
    if (trc < 0)
        return trc;
    if (u->full)
        LF_INFO("outbox", "outbox has room again (%" PRIu64 " bytes); scanning resumed",
                u->outbox_bytes);
    u->full = false;
    return total;
}
