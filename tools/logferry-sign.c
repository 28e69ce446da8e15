/* logferry-sign: the uploader side of upload signatures, for tests and operators.
 *   logferry-sign keygen SKFILE        new keypair: writes the secret key file (0600), prints the
 *                                      public key (the text for `logferry-receiver sites add`)
 *   logferry-sign pubkey SKFILE        prints the public key of a secret key file
 *   logferry-sign header SKFILE SITE METHOD PATH TS BODYFILE
 *                                      prints the Authorization value for that request ("-" reads
 *                                      the body from stdin; TS "now" uses the clock) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_sign.h"

static int usage(void)
{
    fprintf(stderr, "usage: logferry-sign keygen SKFILE | pubkey SKFILE | header SKFILE SITE METHOD PATH TS BODYFILE\n");
    return 2;
}

static int load(const char *path, uint8_t sk[LF_SIGN_SK_BYTES])
{
    char err[256] = "";
    int rc = lf_sign_sk_load(path, sk, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "logferry-sign: %s: %s\n", path, err[0] ? err : lf_strerror(rc));
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3 || lf_crypto_init() != 0)
        return usage();
    uint8_t sk[LF_SIGN_SK_BYTES], pk[LF_SIGN_PK_BYTES];
    char pkt[LF_SIGN_PK_B64_SIZE];
    if (strcmp(argv[1], "keygen") == 0 && argc == 3) {
        int rc = lf_sign_keypair(pk, sk);
        if (rc == 0)
            rc = lf_sign_sk_save(argv[2], sk);
        if (rc != 0) {
            fprintf(stderr, "logferry-sign: %s: %s\n", argv[2], lf_strerror(rc));
            return 1;
        }
        lf_sign_pk_encode(pkt, pk);
        printf("%s\n", pkt);
        return 0;
    }
    if (strcmp(argv[1], "pubkey") == 0 && argc == 3) {
        if (load(argv[2], sk) != 0)
            return 1;
        lf_sign_sk_to_pk(pk, sk);
        lf_sign_pk_encode(pkt, pk);
        printf("%s\n", pkt);
        return 0;
    }
    if (strcmp(argv[1], "header") == 0 && argc == 8) {
        if (load(argv[2], sk) != 0)
            return 1;
        int64_t ts;
        if (strcmp(argv[6], "now") == 0) {
            ts = (int64_t)time(NULL);
        } else {
            char *end;
            errno = 0;
            ts = strtoll(argv[6], &end, 10);
            if (errno || *end || ts < 0)
                return usage();
        }
        uint8_t hash[LF_HASH_BYTES];
        int rc;
        if (strcmp(argv[7], "-") == 0)
            rc = lf_crypto_hash_fd(STDIN_FILENO, hash, NULL);
        else
            rc = lf_crypto_hash_file(argv[7], hash, NULL);
        if (rc != 0) {
            fprintf(stderr, "logferry-sign: %s: %s\n", argv[7], lf_strerror(rc));
            return 1;
        }
        lf_buf out = LF_BUF_INIT(LF_SIGN_HEADER_MAX);
        rc = lf_sign_request(&out, sk, argv[3], argv[4], argv[5], ts, hash);
        sodium_memzero(sk, sizeof sk);
        if (rc != 0) {
            fprintf(stderr, "logferry-sign: cannot sign: %s\n", lf_strerror(rc));
            lf_buf_free(&out);
            return 1;
        }
        printf("%s\n", lf_buf_cstr(&out));
        lf_buf_free(&out);
        return 0;
    }
    return usage();
}
