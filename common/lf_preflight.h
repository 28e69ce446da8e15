/* Start-up requirements the option table cannot express: a key a mode needs, a directory the service
 * user must be able to write, a key file that must load. A program lists them in its preflight hook
 * (lf_service_def.preflight); `--check-config` and the daemon's start both run it, so a service that
 * cannot start says why with file and line and exits 2 (the units have RestartPreventExitStatus=2:
 * an unconfigured service stays down instead of restarting every few seconds).
 *
 * Each problem is kept as "PATH:LINE: [section] key: reason" (without LINE when the key is not in
 * the file, without PATH when running on built-in defaults). Checks never stop at the first problem:
 * the operator sees every one of them at once. */
#ifndef LF_PREFLIGHT_H
#define LF_PREFLIGHT_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>

#include "lf_buf.h"

typedef struct lf_preflight {
    const char *config_path; /* NULL: built-in defaults */
    lf_buf problems;         /* one line per problem */
    size_t n_problems;
} lf_preflight;

void lf_preflight_init(lf_preflight *pf, const char *config_path);
void lf_preflight_free(lf_preflight *pf);

/* A problem with [section] key (section "watch.NAME" for repeated sections). */
void lf_preflight_fail(lf_preflight *pf, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A problem whose message already names its place ("path:line: ..."), kept as it is. */
void lf_preflight_fail_located(lf_preflight *pf, const char *message);
/* The key must be set (not NULL, not empty); why says what needs it ("the daemon signs uploads"). */
bool lf_preflight_require(lf_preflight *pf, const char *section, const char *key, const char *value,
                          const char *why);
/* A directory the program uses. It must exist, or, with create, its nearest existing ancestor must be
 * writable (the program makes it); with writable, the program must be able to create files in it. */
void lf_preflight_dir(lf_preflight *pf, const char *section, const char *key, const char *path, bool writable,
                      bool create);
/* A file the program reads: exists, is a regular file, readable. With optional, a missing file is
 * fine (the program starts without it) but then its directory must be writable (it is created). */
void lf_preflight_file(lf_preflight *pf, const char *section, const char *key, const char *path, bool optional);
/* An http:// or https:// URL with a host. */
void lf_preflight_url(lf_preflight *pf, const char *section, const char *key, const char *url);

#endif
