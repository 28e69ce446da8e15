/* Template persistence in a file (see template_store.h). */
#include "template_store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_hex.h"

#define MAGIC "logferry-templates "

/* Reads 16 hex digits at s into *v; false unless exactly that. */
static bool hex16(const char *s, size_t n, uint64_t *v)
{
    if (n != 16)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < 16; i++) {
        int d = lf_hex_value(s[i]);
        if (d < 0)
            return false;
        x = x << 4 | (unsigned)d;
    }
    *v = x;
    return true;
}

static bool decimal(const char *s, size_t n, uint64_t *v)
{
    if (n == 0 || n > 19)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *v = x;
    return true;
}

/* One record line (without its newline). */
static int load_line(lf_miner *m, int version, const char *line, size_t n)
{
    const char *t1 = memchr(line, '\t', n);
    const char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(line + n - t1 - 1)) : NULL;
    if (!t1 || !t2)
        return LF_ECORRUPT;
    uint64_t a, b;
    if (version >= 2 && t1 - line == 5 && memcmp(line, "alias", 5) == 0) {
        if (!hex16(t1 + 1, (size_t)(t2 - t1 - 1), &a) || !hex16(t2 + 1, (size_t)(line + n - t2 - 1), &b))
            return LF_ECORRUPT;
        return lf_miner_restore_alias(m, a, b) < 0 ? LF_ECORRUPT : 0;
    }
    if (!hex16(line, (size_t)(t1 - line), &a) || !decimal(t1 + 1, (size_t)(t2 - t1 - 1), &b))
        return LF_ECORRUPT;
    const char *body = t2 + 1;
    size_t bl = (size_t)(line + n - body);
    /* version 1: the id is the hash of the template's text, as it was then */
    if (version == 1 && lf_miner_template_id(lf_miner_type_name(m), body, bl) != a)
        return LF_ECORRUPT;
    int rc = lf_miner_restore(m, a, body, bl, b, 0);
    return rc == LF_EFORMAT ? LF_ECORRUPT : rc;
}

int lf_template_store_load(lf_miner *m, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    int rc = 0, version = 0;
    const char *type = lf_miner_type_name(m);
    if (n <= 0 || strncmp(line, MAGIC, strlen(MAGIC)) != 0 || line[n - 1] != '\n') {
        rc = LF_EFORMAT;
        goto out;
    }
    line[--n] = '\0';
    const char *v = line + strlen(MAGIC);
    if (v[0] == '1' && v[1] == ' ')
        version = 1;
    else if (v[0] == '2' && v[1] == ' ')
        version = 2;
    if (!version || strcmp(v + 2, type) != 0) {
        rc = LF_EFORMAT;
        goto out;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') {
            rc = LF_ECORRUPT; /* a torn last line */
            goto out;
        }
        line[--n] = '\0';
        if ((rc = load_line(m, version, line, (size_t)n)) < 0)
            goto out;
    }
    if (ferror(f))
        rc = -EIO;
out:
    free(line);
    fclose(f);
    return rc;
}

static int save_one(lf_template *t, void *arg)
{
    FILE *f = arg;
    size_t len;
    const char *s = lf_template_structure(t, &len);
    if (!s)
        return -ENOMEM;
    if (fprintf(f, "%016" PRIx64 "\t%" PRIu64 "\t", lf_template_id(t), lf_template_count(t)) < 0 ||
        fwrite(s, 1, len, f) != len || fputc('\n', f) == EOF)
        return -EIO;
    return 0;
}

int lf_template_store_save(lf_miner *m, const char *path)
{
    size_t pl = strlen(path);
    char *tmp = lf_malloc(pl + 8);
    if (!tmp)
        return -ENOMEM;
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int rc = -errno;
        lf_free(tmp);
        return rc;
    }
    int rc = 0;
    if (fprintf(f, MAGIC "2 %s\n", lf_miner_type_name(m)) < 0)
        rc = -EIO;
    if (rc == 0)
        rc = lf_miner_foreach(m, save_one, f);
    size_t na;
    const lf_miner_alias *al = lf_miner_aliases(m, &na);
    for (size_t i = 0; i < na && rc == 0; i++)
        if (fprintf(f, "alias\t%016" PRIx64 "\t%016" PRIx64 "\n", al[i].from, al[i].to) < 0)
            rc = -EIO;
    if (rc == 0 && fflush(f) != 0)
        rc = -errno;
    if (rc == 0 && fsync(fileno(f)) != 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    lf_free(tmp);
    return rc;
}
