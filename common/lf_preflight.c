#include "lf_preflight.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lf_config.h"
#include "lf_http_client.h"

void lf_preflight_init(lf_preflight *pf, const char *config_path)
{
    pf->config_path = config_path;
    lf_buf_init(&pf->problems, 64 * 1024);
    pf->n_problems = 0;
}

void lf_preflight_free(lf_preflight *pf)
{
    lf_buf_free(&pf->problems);
}

void lf_preflight_fail(lf_preflight *pf, const char *section, const char *key, const char *fmt, ...)
{
    pf->n_problems++;
    lf_buf *b = &pf->problems;
    int line = pf->config_path ? lf_config_locate(pf->config_path, section, key) : 0;
    int rc = 0;
    if (pf->config_path && line > 0)
        rc = lf_buf_appendf(b, "%s:%d: ", pf->config_path, line);
    else if (pf->config_path)
        rc = lf_buf_appendf(b, "%s: ", pf->config_path);
    rc = rc ? rc : lf_buf_appendf(b, "[%s] %s: ", section, key);
    va_list ap;
    va_start(ap, fmt);
    rc = rc ? rc : lf_buf_vappendf(b, fmt, ap);
    va_end(ap);
    rc = rc ? rc : lf_buf_append_char(b, '\n');
    /* the buffer is 64 KiB: past that the count still tells how many problems there were */
    (void)rc;
}

void lf_preflight_fail_located(lf_preflight *pf, const char *message)
{
    pf->n_problems++;
    int rc = lf_buf_append_str(&pf->problems, message);
    rc = rc ? rc : lf_buf_append_char(&pf->problems, '\n');
    (void)rc;
}

bool lf_preflight_require(lf_preflight *pf, const char *section, const char *key, const char *value,
                          const char *why)
{
    if (value && *value)
        return true;
    lf_preflight_fail(pf, section, key, "not set; %s", why);
    return false;
}

/* The nearest ancestor of path that exists, into out. */
static void existing_ancestor(const char *path, char *out, size_t size)
{
    snprintf(out, size, "%s", path);
    struct stat st;
    while (stat(out, &st) != 0) {
        char *slash = strrchr(out, '/');
        if (!slash) {
            snprintf(out, size, ".");
            return;
        }
        if (slash == out) {
            out[1] = '\0';
            return;
        }
        *slash = '\0';
    }
}

static const char *whoami(void)
{
    return geteuid() == 0 ? "root" : "the service user";
}

void lf_preflight_dir(lf_preflight *pf, const char *section, const char *key, const char *path, bool writable,
                      bool create)
{
    if (!path || !*path)
        return;
    struct stat st;
    if (stat(path, &st) != 0) {
        int err = errno;
        if (err != ENOENT || !create) {
            lf_preflight_fail(pf, section, key, "directory %s: %s", path, strerror(err));
            return;
        }
        char parent[PATH_MAX];
        existing_ancestor(path, parent, sizeof parent);
        if (access(parent, W_OK | X_OK) != 0)
            lf_preflight_fail(pf, section, key, "directory %s does not exist and %s cannot create it in %s: %s",
                              path, whoami(), parent, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        lf_preflight_fail(pf, section, key, "%s is not a directory", path);
        return;
    }
    if (access(path, (writable ? W_OK : 0) | R_OK | X_OK) != 0)
        lf_preflight_fail(pf, section, key, "directory %s is not %s by %s: %s", path,
                          writable ? "writable" : "readable", whoami(), strerror(errno));
}

void lf_preflight_file(lf_preflight *pf, const char *section, const char *key, const char *path, bool optional)
{
    if (!path || !*path)
        return;
    struct stat st;
    if (stat(path, &st) != 0) {
        int err = errno;
        if (err == ENOENT && optional) {
            char parent[PATH_MAX];
            existing_ancestor(path, parent, sizeof parent);
            if (access(parent, W_OK | X_OK) != 0)
                lf_preflight_fail(pf, section, key, "%s does not exist and %s cannot create it in %s: %s", path,
                                  whoami(), parent, strerror(errno));
            return;
        }
        lf_preflight_fail(pf, section, key, "%s: %s", path, strerror(err));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        lf_preflight_fail(pf, section, key, "%s is not a regular file", path);
        return;
    }
    if (access(path, R_OK) != 0)
        lf_preflight_fail(pf, section, key, "%s is not readable by %s: %s", path, whoami(), strerror(errno));
}

void lf_preflight_url(lf_preflight *pf, const char *section, const char *key, const char *url)
{
    if (!url || !*url)
        return;
    lf_buf err = LF_BUF_INIT(256);
    size_t host_len;
    if (lf_http_url_check(url, &host_len, &err) != 0)
        lf_preflight_fail(pf, section, key, "the URL %s", lf_buf_cstr(&err));
    lf_buf_free(&err);
}
