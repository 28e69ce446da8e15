/* Reads lines from a file descriptor by rule: "\n" ends a line and a "\r" before it is dropped
 * (CRLF), a last line without a newline is still a line, bytes of any value (NUL, invalid UTF-8)
 * pass through, and a line longer than max_line is cut at max_line bytes (the rest up to its
 * newline is skipped and the line is flagged truncated). Memory is bounded by max_line; a regular
 * file is mapped instead of read, so lines point into the page cache, and the pages already read are
 * dropped from the process as it goes (its resident size does not grow with the file). A mapped
 * file must not be truncated while it is read (logferry's session files are complete before
 * parsing). */
#ifndef LF_LINE_READER_H
#define LF_LINE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lf_line_reader {
    int fd;
    char *buf;
    size_t cap, start, end;
    size_t max_line;
    bool eof;
    bool skipping; /* inside the cut-off rest of an over-long line */
    bool mapped;   /* buf is a read-only mapping of the whole (regular) file */
    size_t released; /* mapped: bytes before this (page-aligned) are dropped from the process */
    uint64_t lineno; /* number of the line last returned, from 1 */
} lf_line_reader;

int lf_line_reader_init(lf_line_reader *r, int fd, size_t max_line);
void lf_line_reader_free(lf_line_reader *r);
/* 1 and the line (valid until the next call), 0 at end of input, -errno on a read error. */
int lf_line_reader_next(lf_line_reader *r, const char **line, size_t *len, bool *truncated);

#endif
