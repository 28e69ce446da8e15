/* Helpers shared by the receiver's route files (see receiver.h). */
#include "receiver.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lf_error.h"
#include "lf_fileio.h"
#include "lf_log.h"

void lf_receiver_count_rejection(lf_receiver *r, const char *reason)
{
    char labels[96];
    snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
    lf_counter *c = lf_metrics_counter(r->metrics, "lf_receiver_rejections_total",
                                       "Requests refused, by reason", labels);
    if (c)
        lf_counter_inc(c);
}

void lf_receiver_respond_error(lf_receiver *r, lf_http_request *req, int status, const char *code,
                               const char *message)
{
    char hdr[64] = "";
    if (status == 429 || status == 503)
        snprintf(hdr, sizeof hdr, "Retry-After: %llu\r\n",
                 (unsigned long long)((r->cfg->retry_after_ms + 999) / 1000));
    lf_http_respond_error(req, status, code, message, hdr[0] ? hdr : NULL);
}

int lf_receiver_storage_status(int err)
{
    return err == -ENOSPC || err == -EDQUOT ? 507 : 503;
}

int lf_receiver_store_open(const struct lf_receiver_config *cfg, bool clean_tmp, lf_store **out, char *err,
                           size_t errsz)
{
    if (cfg->store_backend == LF_STORE_BACKEND_ELASTICSEARCH) {
        /* store.dir keeps the temporaries recovery decrypts into */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s/.tmp", cfg->store_dir);
        int rc = lf_mkdir_p(tmp, 0700);
        if (rc != 0) {
            snprintf(err, errsz, "cannot create %s: %s", tmp, lf_strerror(rc));
            return rc;
        }
        return lf_store_es_open(cfg->es_url, &cfg->es_auth, cfg->es_index, cfg->es_chunk_size, out, err, errsz);
    }
    return lf_store_fs_open(cfg->store_dir, clean_tmp, out, err, errsz);
}

void lf_receiver_job_done(lf_receiver *r)
{
    if (r->release_pending && !r->mark_running && !r->sweep_running &&
        !(r->jsq && r->stats_in_flight) && r->closing_handles == 0)
        r->release_cb(r);
}

static void on_handle_closed(uv_handle_t *h)
{
    lf_receiver *r = h->data;
    r->closing_handles--;
    lf_receiver_job_done(r);
}

void lf_receiver_close_handle(lf_receiver *r, uv_handle_t *h)
{
    h->data = r;
    r->closing_handles++;
    uv_close(h, on_handle_closed);
}

int64_t lf_receiver_start_deadline(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + LF_RECEIVER_START_WAIT_MS;
}

bool lf_receiver_retry_start(int rc, int64_t deadline, const char *what, lf_buf *err)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if ((rc != -ETIMEDOUT && rc != -ENOTCONN) || (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 >= deadline)
        return false;
    LF_WARN("receiver", "%s: %s (%s); trying again", what, lf_strerror(rc), lf_buf_cstr(err));
    lf_buf_reset(err);
    struct timespec pause = {0, 500 * 1000000L};
    nanosleep(&pause, NULL);
    return true;
}
