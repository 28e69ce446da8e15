/* Helpers shared by the receiver's route files (see receiver.h). */
#include "receiver.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lf_error.h"

lf_receiver *lf_receiver_instance;

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
