/* GET /v1/sites (read scope): every site with its figures (site_report.h). The index query runs on
 * the thread pool; the site table is copied on the loop first (the loop thread reloads it). */
#include <errno.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_json.h"
#include "receiver.h"
#include "site_report.h"

typedef struct {
    uv_work_t work;
    lf_receiver *r;
    lf_http_request *req;
    lf_sites sites; /* a copy: only sites and count are set */
    lf_buf body;
    int rc;
    lf_buf err;
} sites_job;

static void work_sites(uv_work_t *w)
{
    sites_job *j = w->data;
    json_t *report = NULL;
    j->rc = lf_site_report(&j->sites, j->r->index, &report, &j->err);
    if (j->rc == 0) {
        j->rc = lf_json_dump(report, &j->body);
        json_decref(report);
    }
}

static void after_sites(uv_work_t *w, int status)
{
    sites_job *j = w->data;
    if (status == 0 && j->rc == 0)
        lf_http_respond(j->req, 200, "application/json", lf_buf_cstr(&j->body), j->body.len, NULL);
    else
        lf_receiver_respond_error(j->r, j->req, 503, "index_unavailable",
                                  j->err.len ? lf_buf_cstr(&j->err) : "the index cannot be read; retry later");
    lf_free(j->sites.sites);
    lf_buf_free(&j->body);
    lf_buf_free(&j->err);
    lf_free(j);
}

static void handle_sites(lf_http_request *req)
{
    lf_receiver *r = req->route_data;
    if (lf_tokens_authorize(&r->tokens, req, "read") != 0)
        return;
    lf_sites_refresh(&r->sites);
    sites_job *j = lf_calloc(1, sizeof *j);
    if (j && r->sites.count) {
        j->sites.sites = lf_malloc(r->sites.count * sizeof *j->sites.sites);
        if (j->sites.sites) {
            memcpy(j->sites.sites, r->sites.sites, r->sites.count * sizeof *j->sites.sites);
            j->sites.count = r->sites.count;
        }
    }
    if (!j || (r->sites.count && !j->sites.sites)) {
        if (j)
            lf_free(j);
        lf_receiver_respond_error(r, req, 503, "no_memory", "out of memory; retry later");
        return;
    }
    j->r = r;
    j->req = req;
    j->work.data = j;
    lf_buf_init(&j->body, 64u << 20);
    lf_buf_init(&j->err, 512);
    int rc = uv_queue_work(r->loop, &j->work, work_sites, after_sites);
    if (rc != 0) {
        lf_free(j->sites.sites);
        lf_free(j);
        lf_receiver_respond_error(r, req, 503, "busy", "cannot queue the request; retry later");
    }
}

int lf_receiver_site_routes(lf_receiver *r)
{
    return lf_http_server_route(lf_service_http(r->svc), LF_HTTP_GET | LF_HTTP_HEAD, "/v1/sites", 0, handle_sites,
                                NULL, r);
}
