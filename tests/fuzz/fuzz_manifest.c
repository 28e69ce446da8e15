/* Fuzz target: manifest.json from untrusted uploads. Whatever parses must build back to canonical
 * JSON that parses again to the same canonical text (build/parse are inverse), and every refusal
 * must name a field. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_error.h"
#include "lf_manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lf_manifest m;
    char err[256] = "";
    int rc = lf_manifest_parse(&m, data, size, err, sizeof err);
    if (rc != 0) {
        if (err[0] == '\0' || m.site != NULL)
            abort();
        return 0;
    }
    lf_buf a = LF_BUF_INIT(LF_MANIFEST_MAX * 2), b = LF_BUF_INIT(LF_MANIFEST_MAX * 2);
    rc = lf_manifest_build(&m, &a, err, sizeof err);
    /* a parsed manifest may grow past the size bound when re-escaped; anything else must build */
    if (rc != 0 && rc != LF_ELIMIT)
        abort();
    if (rc == 0) {
        lf_manifest m2;
        if (lf_manifest_parse(&m2, a.data, a.len, err, sizeof err) != 0)
            abort();
        if (lf_manifest_build(&m2, &b, err, sizeof err) != 0 || a.len != b.len ||
            memcmp(a.data, b.data, a.len) != 0)
            abort();
        lf_manifest_free(&m2);
    }
    lf_buf_free(&a);
    lf_buf_free(&b);
    lf_manifest_free(&m);
    return 0;
}
