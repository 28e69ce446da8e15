/* `logferry-parser reparse`: puts stored sessions back on the receiver's queue, after a parser
 * upgrade or a fix (see reparse.h). */
#include "reparse.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_post.h"
#include "lf_error.h"
#include "lf_progress.h"
#include "lf_manifest.h"
#include "lf_mysql.h"
#include "service.h"

typedef struct ids {
    char (*v)[LF_SESSION_ID_LEN + 1];
    size_t n, cap;
} ids;

static int ids_add(ids *s, const char *id, size_t len)
{
    if (!lf_session_id_valid(id, len))
        return -EINVAL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        void *nv = realloc(s->v, cap * sizeof *s->v);
        if (!nv)
            return -ENOMEM;
        s->v = nv;
        s->cap = cap;
    }
    memcpy(s->v[s->n], id, len);
    s->v[s->n][len] = '\0';
    s->n++;
    return 0;
}

static int add_row(void *arg, unsigned n, char **values, unsigned long *lengths)
{
    if (n < 1 || !values[0])
        return 0;
    return ids_add(arg, values[0], lengths[0]) == -ENOMEM ? -ENOMEM : 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: logferry-parser reparse (--session ID ... | --since TIME | --failed) [--token ADMIN_TOKEN]\n"
               "  --session ID  put this session back on the queue (repeatable)\n"
               "  --since TIME  every session received at or after TIME ('YYYY-MM-DD[ HH:MM:SS]', UTC), and every\n"
               "                session with a parse failure since then, from the parsed-events database\n"
               "  --failed      move the queue's dead-lettered sessions back (receiver's redrive)\n"
               "  --token T     a receiver token with the admin scope (default: [receiver] admin_token)\n");
}

int lf_parser_reparse(struct lf_parser_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"session", required_argument, NULL, 's'}, {"since", required_argument, NULL, 'S'},
        {"failed", no_argument, NULL, 'f'},        {"token", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    ids list = {0};
    const char *since = NULL, *token = cfg->receiver_admin_token;
    bool failed = false;
    int rc = 2, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:S:ft:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (ids_add(&list, optarg, strlen(optarg)) < 0) {
                fprintf(stderr, "logferry-parser reparse: not a session id: %s\n", optarg);
                goto out;
            }
            break;
        case 'S': since = optarg; break;
        case 'f': failed = true; break;
        case 't': token = optarg; break;
        case 'h': usage(stdout); rc = 0; goto out;
        default: usage(stderr); goto out;
        }
    }
    if (optind != argc || (!list.n && !since && !failed)) {
        usage(stderr);
        goto out;
    }
    if (since) {
        for (const char *p = since; *p; p++)
            if (!strchr("0123456789-: T.", *p)) {
                fprintf(stderr, "logferry-parser reparse: --since wants 'YYYY-MM-DD[ HH:MM:SS]'\n");
                goto out;
            }
        lf_mysql_options mo;
        lf_parser_mysql_options(cfg, &mo);
        lf_mysql *db = NULL;
        int r = lf_mysql_connect(&mo, &db);
        if (r < 0) {
            fprintf(stderr, "logferry-parser reparse: connecting to MySQL: %s\n", lf_strerror(r));
            rc = 1;
            goto out;
        }
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT session_id FROM sessions WHERE received_at >= '%s' OR parsed_at >= '%s' UNION "
                 "SELECT DISTINCT session_id FROM parse_failures WHERE failed_at >= '%s'",
                 since, since, since);
        r = lf_mysql_query(db, sql, add_row, &list);
        if (r < 0)
            fprintf(stderr, "logferry-parser reparse: %s\n", lf_mysql_error(db));
        lf_mysql_close(db);
        if (r < 0) {
            rc = 1;
            goto out;
        }
    }
    if (!token) {
        fprintf(stderr, "logferry-parser reparse: needs a receiver token with the admin scope (--token or "
                        "[receiver] admin_token)\n");
        goto out;
    }
    rc = 0;
    char url[1024], body[1024];
    if (failed) {
        snprintf(url, sizeof url, "%s/v1/queues/%s/redrive", cfg->receiver_url, cfg->queue_name);
        int st = lf_parser_admin_post(url, token, "{}", body, sizeof body);
        if (st == 200) {
            printf("dead-lettered sessions moved back: %s\n", body);
        } else {
            fprintf(stderr, "logferry-parser reparse --failed: %s: %s %s\n", url,
                    st < 0 ? lf_strerror(st) : "HTTP error", body);
            rc = 1;
        }
    }
    /* one request per session: the receiver queues each stored session again */
    size_t done = 0;
    lf_progress progress;
    lf_progress_start(&progress, stderr, isatty(STDERR_FILENO), "reparse", "", list.n, lf_progress_now_ms());
    for (size_t i = 0; i < list.n; i++) {
        snprintf(url, sizeof url, "%s/v1/sessions/%s/reparse", cfg->receiver_url, list.v[i]);
        int st = lf_parser_admin_post(url, token, "{}", body, sizeof body);
        if (st >= 200 && st < 300) {
            done++;
        } else {
            fprintf(stderr, "logferry-parser reparse: %s: %s %s\n", list.v[i], st < 0 ? lf_strerror(st) : "HTTP error",
                    body);
            rc = 1;
        }
        lf_progress_update(&progress, i + 1, lf_progress_now_ms());
    }
    if (list.n) {
        lf_progress_end(&progress, lf_progress_now_ms());
        printf("sessions queued again: %zu of %zu\n", done, list.n);
    }
out:
    free(list.v);
    return rc;
}
