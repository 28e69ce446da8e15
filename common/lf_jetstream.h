/* A connection to a NATS JetStream cluster (libnats), for the scale-out queue (lf_jsqueue.h) and,
 * later, the receivers' shared state.
 *
 * Connecting: the server URLs are tried in order of the list (libnats randomises none of them here,
 * so a test sees the first); with a CA file the connection is TLS and the server's certificate must
 * chain to that CA. Authentication is user/password or an nkey (public key plus the file holding
 * its seed; libnats reads the seed when signing the server's nonce and clears it afterwards). No
 * credential ever reaches a log line or an error text. After a successful connect, libnats
 * reconnects on its own for ever (any server of the list, and those the cluster announces); calls
 * made while it is away wait for their timeout and fail with -ETIMEDOUT or -ENOTCONN.
 *
 * Threads: a connection may be used by several threads at once (libnats locks internally).
 * Blocking calls only: this is for worker threads and command-line tools, not a libuv loop.
 *
 * libnats keeps process-wide state (its own threads, a TLS context) that only nats_Close() frees:
 * a program calls lf_jetstream_shutdown() once, after closing its last connection.
 *
 * Errors (negative codes): -EINVAL bad option, -ENOMEM, -ETIMEDOUT, -ECONNREFUSED no server could
 * be reached, -ENOTCONN the connection is closed or away, LF_EAUTH authentication or permission
 * refused, -EPROTO TLS failed, -ENOENT (stream, consumer or message not found), -EIO anything else
 * libnats or the server reported (described in err). */
#ifndef LF_JETSTREAM_H
#define LF_JETSTREAM_H

#include "lf_buf.h"
#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LF_JETSTREAM_SERVERS_MAX 16

typedef struct lf_jetstream_options {
    const char *servers[LF_JETSTREAM_SERVERS_MAX]; /* "nats://host:4222", "tls://host:4222" */
    size_t nservers;
    const char *user;          /* with password; NULL for none */
    const char *password;
    const char *nkey_public;   /* "U..." with nkey_seed_file; NULL for none */
    const char *nkey_seed_file;
    const char *ca_file;       /* PEM CA bundle: TLS required and verified; NULL = plain */
    const char *name;          /* connection name the server shows (monitoring); NULL for none */
    int64_t connect_timeout_ms; /* per server; default 2000 */
    int64_t request_timeout_ms; /* JetStream API requests and publish acks; default 5000 */
} lf_jetstream_options;

/* Zeroes o and sets the defaults above. */
void lf_jetstream_options_init(lf_jetstream_options *o);

typedef struct lf_jetstream lf_jetstream;

/* Connects. On failure err says why (never with a credential in it). */
LF_MUST_CHECK int lf_jetstream_connect(const lf_jetstream_options *o, lf_jetstream **out, lf_buf *err);
/* Closes and frees; NULL is fine. No call may be in progress. */
void lf_jetstream_close(lf_jetstream *js);
/* Frees libnats' process-wide state; after every connection is closed, once per process. */
void lf_jetstream_shutdown(void);

/* Asks JetStream for the account's information: 0 when JetStream answers (it is enabled, and ready
 * after a restart), for health checks and for waiting on a server that is starting. */
LF_MUST_CHECK int lf_jetstream_ping(lf_jetstream *js, lf_buf *err);

/* true while the connection is up (not reconnecting or closed). Does not block: a libuv loop may
 * call it, to refuse work that would wait for a timeout. */
bool lf_jetstream_connected(lf_jetstream *js);

/* The libnats handles, for lf_jsqueue and the key-value code (natsConnection *, jsCtx *). */
void *lf_jetstream_nats(lf_jetstream *js);
void *lf_jetstream_ctx(lf_jetstream *js);
int64_t lf_jetstream_timeout_ms(const lf_jetstream *js);

/* Maps a natsStatus (and a JetStream API error code, 0 for none) to a code of ours and, when err
 * is not NULL, describes it there with what (the operation) in front. */
int lf_jetstream_error(int nats_status, int js_errcode, const char *what, lf_buf *err);

#endif
