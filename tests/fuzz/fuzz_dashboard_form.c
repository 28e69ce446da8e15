/* Fuzz target: what the dashboard reads from outside, a sign-in form (lf_http_form_param) and a users
 * file (lf_dash_users_parse). A field is read whole or refused with a known code, never cut; a users
 * file parses whole, with valid names and roles, or is refused with a reason. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard_users.h"
#include "lf_error.h"
#include "lf_http_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"user", "password", "next"};
    for (size_t i = 0; i < 3; i++) {
        char buf[64];
        memset(buf, 0x55, sizeof buf);
        int rc = lf_http_form_param((const char *)data, size, names[i], buf, sizeof buf);
        if (rc >= 0) {
            if ((size_t)rc >= sizeof buf || buf[rc] != '\0' || memchr(buf, '\0', (size_t)rc))
                abort();
        } else if (rc != -ENOENT && rc != -E2BIG && rc != -EILSEQ && rc != -ENOTUNIQ) {
            abort();
        }
    }
    lf_dash_users u;
    lf_buf err = LF_BUF_INIT(1024);
    int rc = lf_dash_users_parse((const char *)data, size, &u, &err);
    if (rc == 0) {
        for (size_t i = 0; i < u.n; i++)
            if (!lf_dash_user_name_ok(u.v[i].name) || u.v[i].role == LF_DASH_NONE ||
                strncmp(u.v[i].hash, "$argon2", 7) != 0 || lf_dash_users_find(&u, u.v[i].name) != &u.v[i])
                abort();
        lf_dash_users_free(&u);
    } else if (rc != LF_ECONFIG || err.len == 0) {
        abort();
    }
    lf_buf_free(&err);
    return 0;
}
