/* Line reading by rule (see line_reader.h). */
#include "line_reader.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lf_alloc.h"

#define CHUNK (1u << 20)
/* A mapped file's pages behind the reader are dropped from the process every this many bytes, so
 * its resident size stays bounded however large the file (they stay in the page cache; a private
 * read-only mapping refaults the same bytes if touched again). */
#define RELEASE_EVERY (16u << 20)
/* On a boundary of this much, so as not to split the mapping of a large folio (ext4 keeps file pages
 * in them); 4 KiB boundaries looked a few percent slower, near this machine's noise. */
#define RELEASE_ALIGN (2u << 20)

int lf_line_reader_init(lf_line_reader *r, int fd, size_t max_line)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->max_line = max_line ? max_line : 1;
    /* A regular file is mapped: lines point into the page cache, nothing is copied. */
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < SIZE_MAX / 2) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            (void)madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
            r->buf = m;
            r->cap = r->end = (size_t)st.st_size;
            r->eof = true;
            r->mapped = true;
            return 0;
        }
    }
    r->cap = CHUNK * 2;
    r->buf = lf_malloc(r->cap);
    return r->buf ? 0 : -ENOMEM;
}

void lf_line_reader_free(lf_line_reader *r)
{
    if (r->mapped)
        munmap(r->buf, r->cap);
    else
        lf_free(r->buf);
    r->buf = NULL;
}

static void release_behind(lf_line_reader *r)
{
    if (!r->mapped || r->start - r->released < RELEASE_EVERY)
        return;
    size_t upto = r->start / RELEASE_ALIGN * RELEASE_ALIGN;
    if (upto > r->released && madvise(r->buf + r->released, upto - r->released, MADV_DONTNEED) == 0)
        r->released = upto;
}

/* Reads more input after end; 0 at EOF, >0 bytes, -errno. */
static ssize_t fill(lf_line_reader *r)
{
    if (r->start > 0 && (r->end == r->cap || r->start > r->cap / 2)) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end == r->cap) {
        size_t ncap = r->cap * 2;
        char *b = lf_realloc(r->buf, ncap);
        if (!b)
            return -ENOMEM;
        r->buf = b;
        r->cap = ncap;
    }
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        r->end += (size_t)n;
        return n;
    }
}

int lf_line_reader_next(lf_line_reader *r, const char **line, size_t *len, bool *truncated)
{
    size_t scanned = 0; /* bytes after start known to hold no newline */
    for (;;) {
        size_t avail = r->end - r->start;
        if (r->skipping) {
            char *nl = memchr(r->buf + r->start, '\n', avail);
            if (nl) {
                r->start = (size_t)(nl - r->buf) + 1;
                r->skipping = false;
                scanned = 0;
                continue;
            }
            r->start = r->end;
        } else {
            char *nl = avail > scanned ? memchr(r->buf + r->start + scanned, '\n', avail - scanned) : NULL;
            if (nl || (r->eof && avail > 0)) {
                release_behind(r); /* the pages before this line */
                const char *s = r->buf + r->start;
                size_t l = nl ? (size_t)(nl - s) : avail;
                r->start += nl ? l + 1 : l;
                if (l > 0 && s[l - 1] == '\r')
                    l--;
                *truncated = l > r->max_line;
                *line = s;
                *len = l > r->max_line ? r->max_line : l;
                r->lineno++;
                return 1;
            }
            scanned = avail;
            if (avail > r->max_line + 1) {
                /* an over-long line: return its head now, skip the rest up to its newline */
                *line = r->buf + r->start;
                *len = r->max_line;
                *truncated = true;
                r->lineno++;
                r->start += r->max_line;
                r->skipping = true;
                return 1;
            }
        }
        if (r->eof)
            return 0;
        size_t before = r->start;
        ssize_t n = fill(r);
        if (n < 0)
            return (int)n;
        if (n == 0)
            r->eof = true;
        (void)before;
    }
}
