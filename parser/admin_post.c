/* JSON POSTs for the parser's operator commands (see admin_post.h). */
#include "admin_post.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "lf_http_client.h"

int lf_parser_admin_post(const char *url, const char *token, const char *json_body, char *out, size_t outsz)
{
    char auth[512];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    const char *headers[] = {"Content-Type: application/json", token ? auth : NULL, NULL};
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    lf_http_client *c = NULL;
    int rc = lf_http_client_new(NULL, &o, &c);
    if (rc < 0)
        return rc;
    lf_http_client_request req = {.method = "POST", .url = url, .headers = headers, .body = json_body,
                           .body_len = strlen(json_body)};
    lf_http_response r;
    rc = lf_http_client_fetch(c, &req, &r);
    if (outsz)
        snprintf(out, outsz, "%.*s", rc == 0 ? (int)r.body.len : 0, rc == 0 && r.body.data ? r.body.data : "");
    if (rc == 0)
        rc = r.status;
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
    sodium_memzero(auth, sizeof auth);
    return rc;
}
