/* Fuzz target: line formats. The first line of the input is a format in the Loghub notation, the
 * other lines are log lines. Compilation either succeeds or names its reason; a literal format must
 * give exactly the spans PCRE2 gives for the same format (the hand-written scanner is an
 * optimisation, never a different answer); spans stay inside the line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_error.h"
#include "logformat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t fl = nl ? (size_t)(nl - s) : size;
    if (fl > 4096 || memchr(s, '\0', fl))
        return 0; /* formats come from configuration text */
    char fmt[4097];
    memcpy(fmt, s, fl);
    fmt[fl] = '\0';
    lf_logformat *f = NULL;
    char err[256] = "";
    int rc = lf_logformat_compile(fmt, &f, err, sizeof err);
    if (rc != 0) {
        if (rc != LF_ECONFIG || err[0] == '\0' || f != NULL)
            abort();
        return 0;
    }
    int nf = lf_logformat_field_count(f);
    lf_span a[LF_LOGFORMAT_MAX_FIELDS], b[LF_LOGFORMAT_MAX_FIELDS];
    size_t pos = nl ? fl + 1 : size;
    while (pos <= size) {
        const char *line = s + pos;
        const char *e = memchr(line, '\n', size - pos);
        size_t len = e ? (size_t)(e - line) : size - pos;
        int m = lf_logformat_match(f, line, len, a);
        if (m < 0 && m != LF_ELIMIT)
            abort();
        if (m == 1)
            for (int i = 0; i < nf; i++)
                if (a[i].set && (size_t)a[i].off + a[i].len > len)
                    abort();
        if (lf_logformat_is_literal(f)) {
            int r = lf_logformat_match_regex(f, line, len, b);
            if (r != LF_ELIMIT) {
                if (r != m)
                    abort();
                for (int i = 0; m == 1 && i < nf; i++)
                    if (a[i].set != b[i].set || a[i].off != b[i].off || a[i].len != b[i].len)
                        abort();
            }
        }
        if (!e)
            break;
        pos += len + 1;
    }
    lf_logformat_free(f);
    return 0;
}
