#include "lf_run_as.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool lf_run_as_owner(const char *dir, uid_t *uid, gid_t *gid)
{
    struct stat st;
    if (geteuid() != 0 || !dir || stat(dir, &st) != 0 || st.st_uid == 0)
        return false;
    *uid = st.st_uid;
    *gid = st.st_gid;
    return true;
}

int lf_run_as_switch(const char *dir, lf_buf *err)
{
    uid_t uid;
    gid_t gid;
    if (!lf_run_as_owner(dir, &uid, &gid))
        return 0;
    /* the account's own groups when it has an entry, else only the directory's group */
    struct passwd *pw = getpwuid(uid);
    int rc = 0;
    if (pw) {
        gid = pw->pw_gid;
        if (initgroups(pw->pw_name, gid) != 0)
            rc = -errno;
    } else if (setgroups(0, NULL) != 0) {
        rc = -errno;
    }
    if (!rc && setgid(gid) != 0)
        rc = -errno;
    if (!rc && setuid(uid) != 0)
        rc = -errno;
    /* setuid from root drops every id; make sure there is no way back */
    if (!rc && (getuid() != uid || geteuid() != uid || setuid(0) == 0))
        rc = -EPERM;
    if (rc)
        lf_buf_msgf(err, "cannot act as the owner (uid %u) of %s: %s", (unsigned)uid, dir, strerror(-rc));
    return rc;
}

int lf_run_as_chown(const char *path, const char *dir, lf_buf *err)
{
    uid_t uid;
    gid_t gid;
    if (!lf_run_as_owner(dir, &uid, &gid))
        return 0;
    struct passwd *pw = getpwuid(uid);
    if (pw)
        gid = pw->pw_gid;
    if (chown(path, uid, gid) != 0) {
        int rc = -errno;
        lf_buf_msgf(err, "cannot give %s to the owner (uid %u) of %s: %s", path, (unsigned)uid, dir, strerror(errno));
        return rc;
    }
    return 0;
}
