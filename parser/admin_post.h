/* One JSON POST to the receiver with a bearer token, for the parser's operator commands (kept apart
 * from the files that include the HTTP server's headers, whose lf_http_request is another type). */
#ifndef LF_PARSER_ADMIN_POST_H
#define LF_PARSER_ADMIN_POST_H

#include <stddef.h>

/* Returns the HTTP status, or a negative code when no answer came. The response body (cut to
 * outsz - 1 bytes) goes to out, NUL-terminated. */
int lf_parser_admin_post(const char *url, const char *token, const char *json_body, char *out, size_t outsz);

#endif
