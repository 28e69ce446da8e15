/* Fuzz target: the Authorization header parser (lf_sign_auth_parse). A value that parses must
 * rebuild to a value that parses to the same fields; verification of it against a fixed key must
 * fail cleanly (no one can forge it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lf_error.h"
#include "lf_sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lf_sign_auth a;
    char err[128] = "";
    int rc = lf_sign_auth_parse(&a, (const char *)data, size, err, sizeof err);
    if (rc != 0) {
        if (rc != LF_EFORMAT || err[0] == '\0')
            abort();
        return 0;
    }
    lf_buf hdr = LF_BUF_INIT(LF_SIGN_HEADER_MAX);
    if (lf_sign_auth_build(&hdr, a.site, a.ts, a.sig) != 0)
        abort();
    lf_sign_auth b;
    if (lf_sign_auth_parse(&b, hdr.data, hdr.len, NULL, 0) != 0 || strcmp(a.site, b.site) != 0 ||
        a.ts != b.ts || memcmp(a.sig, b.sig, sizeof a.sig) != 0)
        abort();
    lf_buf_free(&hdr);
    static const uint8_t pk[LF_SIGN_PK_BYTES] = {
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
        0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
    uint8_t body[LF_HASH_BYTES] = {0};
    enum lf_sign_status st;
    rc = lf_sign_verify(&a, pk, "PUT", "/v1/sessions/x", body, a.ts, 300, &st);
    if (rc == 0 || st == LF_SIGN_OK)
        abort();
    return 0;
}
