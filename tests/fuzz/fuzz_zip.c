/* Fuzz target: untrusted zip uploads. Opens the input as a zip with tight limits, reads every
 * entry (CRC checks), and parses manifest.json when present, as the receiver does. Nothing may
 * crash, leak or read out of bounds; every refusal must carry a reason and a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_manifest.h"
#include "lf_zip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lf_zip_limits lim;
    lf_zip_limits_default(&lim);
    lim.max_total_size = 16 << 20; /* keep each input fast */
    lf_zip *z = NULL;
    lf_zip_error err;
    int rc = lf_zip_open_mem(&z, data, size, &lim, &err);
    if (rc != 0) {
        if (err.reason == LF_ZIP_OK || err.msg[0] == '\0' || z != NULL)
            abort(); /* a refusal must say why, and hand nothing back */
        return 0;
    }
    for (size_t i = 0; i < lf_zip_entry_count(z); i++)
        if (lf_zip_entry_name(z, i) == NULL)
            abort();
    rc = lf_zip_verify_all(z, &err);
    if (rc != 0 && (err.reason == LF_ZIP_OK || err.msg[0] == '\0'))
        abort();
    /* the receiver's whole check: manifest, layout, size and hash of the log */
    lf_manifest m;
    char msg[256] = "";
    rc = lf_manifest_check_archive(z, &m, NULL, NULL, msg, sizeof msg);
    if (rc == 0)
        lf_manifest_free(&m);
    else if (msg[0] == '\0' || m.site != NULL)
        abort();
    lf_zip_close(z);
    return 0;
}
