/* Fuzz target: decrypting stored objects (lf_secretstream). Any input either decrypts (only
 * possible for objects made with the fixed key below) or fails with a defined code and an empty
 * output; a decrypted object must re-encrypt and decrypt to the same plaintext. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lf_error.h"
#include "lf_secretstream.h"

static const lf_key fixed_key = {
    .id = {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
           0x11, 0x11},
    .key = {0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
            0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
            0x22, 0x22, 0x22, 0x22},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lf_keyring kr;
    lf_keyring_init(&kr);
    if (lf_keyring_add(&kr, &fixed_key, true) != 0)
        abort();
    lf_buf out = LF_BUF_INIT(4 << 20);
    int rc = lf_secretstream_decrypt_buf(&kr, data, size, &out);
    if (rc != 0) {
        if (out.len != 0 || (rc != LF_ECORRUPT && rc != LF_EAUTH && rc != -ENOKEY &&
                             rc != LF_ELIMIT && rc != -ENOMEM))
            abort();
    } else {
        lf_buf again = LF_BUF_INIT(8 << 20), back = LF_BUF_INIT(4 << 20);
        if (lf_secretstream_encrypt_buf(&fixed_key, out.data, out.len, 0, &again) != 0 ||
            lf_secretstream_decrypt_buf(&kr, again.data, again.len, &back) != 0 ||
            back.len != out.len || (out.len && memcmp(back.data, out.data, out.len) != 0))
            abort();
        lf_buf_free(&again);
        lf_buf_free(&back);
    }
    lf_buf_free(&out);
    lf_keyring_free(&kr);
    return 0;
}
