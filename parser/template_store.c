/* Template persistence (see template_store.h). */
#include "template_store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"

#define HEADER "logferry-templates 1 "

int lf_template_store_load(lf_drain *d, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    int rc = 0;
    const char *type = lf_drain_type_name(d);
    if (n <= 0 || strncmp(line, HEADER, strlen(HEADER)) != 0) {
        rc = LF_EFORMAT;
        goto out;
    }
    if (line[n - 1] == '\n')
        line[--n] = '\0';
    if (strcmp(line + strlen(HEADER), type) != 0) {
        rc = LF_EFORMAT;
        goto out;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') {
            rc = LF_ECORRUPT; /* a torn last line */
            goto out;
        }
        line[--n] = '\0';
        char *t1 = strchr(line, '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t1 || !t2 || t1 - line != 16) {
            rc = LF_ECORRUPT;
            goto out;
        }
        char *end;
        uint64_t id = strtoull(line, &end, 16);
        uint64_t count = strtoull(t1 + 1, NULL, 10);
        const char *tmpl = t2 + 1;
        size_t tl = (size_t)(line + n - tmpl);
        if (end != t1 || lf_drain_template_id(type, tmpl, tl) != id) {
            rc = LF_ECORRUPT;
            goto out;
        }
        if ((rc = lf_drain_restore(d, tmpl, tl, count)) < 0)
            goto out;
    }
    if (ferror(f))
        rc = -EIO;
out:
    free(line);
    fclose(f);
    return rc;
}

typedef struct save_ctx {
    FILE *f;
    int rc;
} save_ctx;

static int save_one(lf_drain_cluster *c, void *arg)
{
    save_ctx *s = arg;
    size_t len;
    const char *t = lf_drain_cluster_template(c, &len);
    if (!t)
        return -ENOMEM;
    if (fprintf(s->f, "%016" PRIx64 "\t%" PRIu64 "\t", lf_drain_cluster_id(c), lf_drain_cluster_size(c)) < 0 ||
        fwrite(t, 1, len, s->f) != len || fputc('\n', s->f) == EOF)
        return -EIO;
    return 0;
}

int lf_template_store_save(lf_drain *d, const char *path)
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
    save_ctx s = {f, 0};
    int rc = 0;
    if (fprintf(f, HEADER "%s\n", lf_drain_type_name(d)) < 0)
        rc = -EIO;
    if (rc == 0)
        rc = lf_drain_foreach(d, save_one, &s);
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
