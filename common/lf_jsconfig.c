#include "lf_jsconfig.h"

const char *const lf_queue_backends[] = {"embedded", "jetstream", NULL};

void lf_jsconfig_connection(const lf_jsconfig *c, const char *name, lf_jetstream_options *o)
{
    lf_jetstream_options_init(o);
    for (size_t i = 0; c->servers && c->servers[i] && i < LF_JETSTREAM_SERVERS_MAX; i++)
        o->servers[o->nservers++] = c->servers[i];
    o->user = c->user;
    o->password = c->password;
    o->nkey_public = c->nkey;
    o->nkey_seed_file = c->nkey_seed_file;
    o->ca_file = c->ca_file;
    o->name = name;
    o->connect_timeout_ms = (int64_t)c->connect_timeout_ms;
}

void lf_jsconfig_queue(const lf_jsconfig *c, const char *queue, lf_jsqueue_options *o)
{
    lf_jsqueue_options_init(o);
    o->queue = queue;
    o->replicas = (int)c->replicas;
    o->dedup_window_ms = c->dedup_window_ms;
}

void lf_jsconfig_preflight(lf_preflight *pf, const lf_jsconfig *c)
{
    if (c->backend != LF_QUEUE_BACKEND_JETSTREAM)
        return;
    if (!c->servers || !c->servers[0])
        lf_preflight_fail(pf, "queue", "servers", "backend = jetstream needs at least one NATS server URL");
    if (c->nkey && *c->nkey)
        lf_preflight_require(pf, "queue", "nkey_seed_file", c->nkey_seed_file, "an nkey signs with its seed");
    if (c->nkey_seed_file && *c->nkey_seed_file)
        lf_preflight_file(pf, "queue", "nkey_seed_file", c->nkey_seed_file, false);
    if (c->ca_file && *c->ca_file)
        lf_preflight_file(pf, "queue", "ca_file", c->ca_file, false);
}
