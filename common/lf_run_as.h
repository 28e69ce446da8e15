/* Admin commands run by root act as the service user. `logferry-receiver sites add` run from a root
 * shell would otherwise write a root-owned 0600 file that the daemon (user logferry) cannot read.
 * The service user is not named anywhere: it is whoever owns the program's state directory (the
 * package creates /var/lib/logferry/PROGRAM for user logferry), so a site that runs the services
 * under another account gets that account. Nothing changes when the caller is not root or the
 * directory is missing or owned by root (a development checkout). */
#ifndef LF_RUN_AS_H
#define LF_RUN_AS_H

#include "lf_error.h"

#include <stdbool.h>
#include <sys/types.h>

#include "lf_buf.h"

/* The owner of dir when the caller is root and dir exists, owned by someone else: *uid, *gid and
 * true. Otherwise false (nothing to change). */
bool lf_run_as_owner(const char *dir, uid_t *uid, gid_t *gid);

/* When lf_run_as_owner names an owner, switches this process to it for good (supplementary groups,
 * group, user). 0 (switched, or nothing to do) or a negative errno with the reason in err: a
 * command that cannot switch must not go on as root and write files the service cannot read. */
LF_MUST_CHECK int lf_run_as_switch(const char *dir, lf_buf *err);

/* For a command that must stay root (it writes where the service user may not, such as
 * /etc/logferry): gives path to the owner of dir, as lf_run_as_owner names it. 0 or negative errno. */
LF_MUST_CHECK int lf_run_as_chown(const char *path, const char *dir, lf_buf *err);

#endif
