/* Internals shared by uploader.c (engine, outbox, uploads) and uploader_pack.c (scan, pack). */
#ifndef LF_UPLOADER_INT_H
#define LF_UPLOADER_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "uploader.h"
#include "uploader_http.h"

struct watch_rt {
    const struct lf_uploader_watch *w;
    pcre2_code *name_re, *end_re, *rot_re;
};

typedef char lf_sid[LF_SESSION_ID_LEN + 1];

struct lf_uploader {
    const struct lf_uploader_config *cfg;
    uv_loop_t *loop;
    lf_ureg *reg;
    lf_uhttp *http;
    uint8_t sk[LF_SIGN_SK_BYTES];
    bool have_key;
    char host[256];
    struct watch_rt *watches;
    size_t n_watches;
    char *tmp_dir, *failed_dir;
    uint64_t outbox_bytes;
    bool full, full_logged;
    bool outbox_unsynced; /* renamed into the outbox since its directory was last fsync'd */
    int64_t scan_gen;
    lf_sid *queue; /* ring of ids waiting in the outbox */
    size_t qhead, qlen, qcap;
    int in_flight;
    uint64_t backoff_until, backoff_cur; /* uv_now ms */
    bool unreachable;
    char refusal[256]; /* the receiver's last 401/403 ("HTTP 401: {...}"), until an upload succeeds */
    lf_uploader_stats st;
    struct {
        lf_counter *packed, *shipped, *already, *failed, *dropped, *warned, *snap_changed, *full,
            *unreadable, *upload_errors, *refused_waiting;
    } m;
    void (*packed_fn)(void *);
    void *packed_arg;
    void (*done_fn)(void *);
    void *done_arg;
};

int lf_uploader_queue_push(lf_uploader *u, const char *id);
/* Queues the sessions retry-failed put back into the outbox (each scan calls it). */
int lf_uploader_adopt_retried(lf_uploader *u);
void lf_uploader_count(lf_uploader *u, uint64_t *stat, lf_counter *c);

#endif
