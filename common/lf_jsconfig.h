/* The `[queue]` keys that choose the queue's backend and reach NATS JetStream, one definition for
 * every program that has them (receiver and parser: they must agree on the streams). A program's
 * config struct embeds an lf_jsconfig and lists LF_JSCONFIG_OPTIONS(offsetof(..., field), desc) in
 * its table; desc describes `backend` for that program. */
#ifndef LF_JSCONFIG_H
#define LF_JSCONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lf_config.h"
#include "lf_jetstream.h"
#include "lf_jsqueue.h"
#include "lf_preflight.h"

enum { LF_QUEUE_BACKEND_EMBEDDED, LF_QUEUE_BACKEND_JETSTREAM };
extern const char *const lf_queue_backends[]; /* "embedded", "jetstream", NULL */

typedef struct lf_jsconfig {
    int backend; /* LF_QUEUE_BACKEND_* */
    char **servers;
    char *user;
    char *password;
    char *nkey;
    char *nkey_seed_file;
    char *ca_file;
    uint64_t connect_timeout_ms;
    uint64_t replicas;
    uint64_t dedup_window_ms;
} lf_jsconfig;

#define LF_JSCONFIG_OPTIONS(OFF, BACKEND_DESC)                                                                  \
    {"queue", "backend", LF_CFG_ENUM, "embedded", (OFF) + offsetof(lf_jsconfig, backend),                     \
     .enum_values = lf_queue_backends, .description = BACKEND_DESC},                                          \
    {"queue", "servers", LF_CFG_LIST, "nats://127.0.0.1:4222", (OFF) + offsetof(lf_jsconfig, servers),         \
     .description = "jetstream: NATS server URLs, comma-separated, tried in this order (`tls://` or a ca_file "  \
                    "for TLS)."},                                                                             \
    {"queue", "user", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_jsconfig, user),                               \
     .description = "jetstream: NATS user name (with password), or leave unset."},                            \
    {"queue", "password", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_jsconfig, password), .flags = LF_CFG_SECRET, \
     .description = "jetstream: the NATS user's password."},                                                  \
    {"queue", "nkey", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_jsconfig, nkey),                               \
     .description = "jetstream: the user's public nkey (`U...`), instead of user and password; needs "          \
                    "nkey_seed_file."},                                                                       \
    {"queue", "nkey_seed_file", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_jsconfig, nkey_seed_file),           \
     .description = "jetstream: file holding the nkey's seed (readable by the service user only)."},          \
    {"queue", "ca_file", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_jsconfig, ca_file),                         \
     .description = "jetstream: PEM CA bundle; when set the connection is TLS and the server's certificate "    \
                    "must chain to it."},                                                                     \
    {"queue", "connect_timeout", LF_CFG_DURATION, "2s", (OFF) + offsetof(lf_jsconfig, connect_timeout_ms),     \
     .min = 100, .max = 60000, .description = "jetstream: how long to try each server when connecting."},     \
    {"queue", "replicas", LF_CFG_UINT, "1", (OFF) + offsetof(lf_jsconfig, replicas), .min = 1, .max = 5,       \
     .description = "jetstream: replicas of the queue's streams and consumer (3 on a three-node cluster). "     \
                    "Receivers and parsers must agree: each makes the streams match its own setting."},       \
    {"queue", "dedup_window", LF_CFG_DURATION, "5m", (OFF) + offsetof(lf_jsconfig, dedup_window_ms),           \
     .min = 1000, .max = 604800000,                                                                           \
     .description = "jetstream: how long the stream remembers a session id, so that a re-publish is dropped."}

/* Connection options from c; the pointers stay c's. name is the connection's name. */
void lf_jsconfig_connection(const lf_jsconfig *c, const char *name, lf_jetstream_options *o);
/* Queue options from c (replicas, dedup window); the caller sets the rest. */
void lf_jsconfig_queue(const lf_jsconfig *c, const char *queue, lf_jsqueue_options *o);
/* With backend = jetstream: a server, the nkey with its seed file, and that the seed and CA files
 * are readable regular files. */
void lf_jsconfig_preflight(lf_preflight *pf, const lf_jsconfig *c);

#endif
