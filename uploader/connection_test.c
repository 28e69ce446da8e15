/* `logferry-uploader test`: the path from this site to the receiver, one check at a time, as
 * `filebeat test output` does: the URL, name resolution, a TCP connection, TLS against ca_file (or
 * the system's CAs), the receiver's /healthz, then a probe signed exactly as an upload (GET
 * /v1/probe) that says whether the site is registered and enabled, whether the key verifies, and
 * how far apart the clocks are. One line per check; a failed one says what to do about it. */
#include "connection_test.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_http_client.h"
#include "lf_json.h"
#include "lf_sign.h"

#define CONNECT_TIMEOUT_MS 5000

struct target {
    bool tls;
    char host[256];
    char port[8];
    char base[2048]; /* the URL without a trailing slash */
};

static int say(FILE *out, bool ok, const char *check, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int say(FILE *out, bool ok, const char *check, const char *fmt, ...)
{
    fprintf(out, "%-8s %-4s ", check, ok ? "ok" : "FAIL");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    return ok ? 0 : 1;
}

/* Copies n bytes of src into dst as a string; -ENAMETOOLONG when they do not fit (never cut). */
static int copy_part(char *dst, size_t size, const char *src, size_t n)
{
    if (n >= size)
        return -ENAMETOOLONG;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static int parse_url(const char *url, struct target *t)
{
    size_t host_len;
    lf_buf err = LF_BUF_INIT(256);
    int rc = lf_http_url_check(url, &host_len, &err);
    lf_buf_free(&err);
    if (rc)
        return rc;
    t->tls = strncmp(url, "https://", 8) == 0;
    const char *h = url + (t->tls ? 8 : 7);
    const char *at = memchr(h, '@', host_len);
    if (at) { /* credentials in the URL are not ours to test */
        host_len -= (size_t)(at + 1 - h);
        h = at + 1;
    }
    const char *end = h + host_len, *colon = NULL;
    if (*h == '[') {
        const char *close = memchr(h, ']', host_len);
        if (!close)
            return -EINVAL;
        rc = copy_part(t->host, sizeof t->host, h + 1, (size_t)(close - h - 1));
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(h, ':', host_len);
        rc = copy_part(t->host, sizeof t->host, h, (size_t)((colon ? colon : end) - h));
    }
    if (rc == 0 && colon)
        rc = copy_part(t->port, sizeof t->port, colon + 1, (size_t)(end - colon - 1));
    else if (rc == 0)
        rc = copy_part(t->port, sizeof t->port, t->tls ? "443" : "80", t->tls ? 3 : 2);
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    /* the longest path appended is "/v1/probe": the base must leave room for it */
    rc = rc ? rc : copy_part(t->base, sizeof t->base - 16, url, n);
    if (rc == 0 && (!t->host[0] || !t->port[0] || strspn(t->port, "0123456789") != strlen(t->port)))
        rc = -EINVAL;
    return rc;
}

/* A TCP connection to one of the addresses, within CONNECT_TIMEOUT_MS each. */
static int try_connect(const struct addrinfo *ai, char *addr, size_t addr_size)
{
    int last = -EHOSTUNREACH;
    for (; ai; ai = ai->ai_next) {
        char host[NI_MAXHOST], serv[NI_MAXSERV];
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, serv, sizeof serv,
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            snprintf(addr, addr_size, ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = -errno;
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -errno;
        if (rc == -EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            int n = poll(&p, 1, CONNECT_TIMEOUT_MS);
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (n == 0)
                rc = -ETIMEDOUT;
            else if (n < 0)
                rc = -errno;
            else
                rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 ? -soerr : -errno;
        }
        close(fd);
        if (rc == 0)
            return 0;
        last = rc;
    }
    return last;
}

static lf_http_client *client_for(const struct lf_uploader_config *cfg)
{
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    o.max_attempts = 1;
    o.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    o.timeout_ms = 15000;
    o.ca_file = cfg->ca_file;
    o.proxy = cfg->proxy;
    o.max_response = 64 * 1024;
    lf_http_client *c = NULL;
    return lf_http_client_new(NULL, &o, &c) == 0 ? c : NULL;
}

static const char *tls_advice(int rc, const struct lf_uploader_config *cfg)
{
    if (rc == LF_EAUTH)
        return cfg->ca_file ? "the receiver's certificate is not signed by a CA in [receiver] ca_file, or does not "
                              "name this host: give ca_file the CA that signed it"
                            : "the receiver's certificate is not signed by a CA this system trusts, or does not "
                              "name this host: set [receiver] ca_file to the CA that signed it";
    if (rc == LF_ECONFIG)
        return "[receiver] ca_file cannot be read as PEM certificates";
    if (rc == -EPROTO)
        return "the TLS handshake failed: does this port speak TLS (https://), and a version this system allows?";
    return NULL;
}

static void print_pubkey_hint(FILE *out, const struct lf_uploader_config *cfg, const uint8_t sk[LF_SIGN_SK_BYTES])
{
    uint8_t pk[LF_SIGN_PK_BYTES];
    char text[LF_SIGN_PK_B64_SIZE];
    lf_sign_sk_to_pk(pk, sk);
    lf_sign_pk_encode(text, pk);
    fprintf(out, "                  on the receiver: logferry-receiver sites add %s %s\n", cfg->site, text);
}

int lf_uploader_connection_test(const struct lf_uploader_config *cfg, FILE *out)
{
    int failed = 0;
    struct target t;
    memset(&t, 0, sizeof t);
    if (!cfg->receiver_url || parse_url(cfg->receiver_url, &t) != 0)
        return say(out, false, "url", "[receiver] url \"%.200s\" is not an http:// or https:// URL with a host "
                                      "and a numeric port, or is too long (host %zu, URL %zu bytes at most)",
                   cfg->receiver_url ? cfg->receiver_url : "", sizeof t.host - 1, sizeof t.base - 17);
    say(out, true, "url", "%s (host %s, port %s%s)", t.base, t.host, t.port, t.tls ? ", TLS" : ", no TLS");

    bool via_proxy = cfg->proxy ? cfg->proxy[0] != '\0' : (getenv(t.tls ? "https_proxy" : "http_proxy") != NULL);
    if (via_proxy) {
        say(out, true, "resolve", "skipped: connections go through the proxy %s",
            cfg->proxy ? cfg->proxy : "of the environment");
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        int g = getaddrinfo(t.host, t.port, &hints, &ai);
        if (g != 0)
            return say(out, false, "resolve", "cannot resolve %s: %s: check the host in [receiver] url and this "
                                              "machine's DNS (/etc/resolv.conf)",
                       t.host, gai_strerror(g));
        char first[300] = "";
        size_t n = 0;
        for (struct addrinfo *p = ai; p; p = p->ai_next)
            n++;
        char addr[300] = "";
        int rc = try_connect(ai, addr, sizeof addr);
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, first, sizeof first, NULL, 0, NI_NUMERICHOST) != 0)
            first[0] = '\0';
        freeaddrinfo(ai);
        say(out, true, "resolve", "%s is %s%s", t.host, first, n > 1 ? " (and other addresses)" : "");
        if (rc != 0)
            return say(out, false, "connect", "cannot connect to %s: %s: is the receiver (or the TLS proxy in front "
                                              "of it) running there, and does every firewall between let this "
                                              "host through?",
                       addr, strerror(-rc));
        say(out, true, "connect", "%s accepts connections", addr);
    }

    lf_http_client *http = client_for(cfg);
    if (!http)
        return say(out, false, "receiver", "cannot set up an HTTP client (out of memory, or ca_file unusable)");
    char url[2300];
    snprintf(url, sizeof url, "%s/healthz", t.base);
    lf_http_client_request req = {.method = "GET", .url = url};
    lf_http_response resp;
    int rc = lf_http_client_fetch(http, &req, &resp);
    if (rc < 0) {
        const char *advice = t.tls ? tls_advice(rc, cfg) : NULL;
        if (advice)
            failed |= say(out, false, "tls", "%s: %s", lf_strerror(rc), advice);
        else
            failed |= say(out, false, "receiver", "GET %s: %s: is the receiver running behind this address?", url,
                          lf_strerror(rc));
        lf_http_response_free(&resp);
        lf_http_client_close(http, NULL, NULL);
        return failed;
    }
    if (t.tls)
        say(out, true, "tls", "the certificate of %s is trusted (%s)", t.host,
            cfg->ca_file ? cfg->ca_file : "the system's CAs");
    else
        say(out, true, "tls", "not used (http://): uploads are signed but cross the network unencrypted");
    json_t *j = NULL;
    if (resp.status != 200 && resp.status != 503)
        failed |= say(out, false, "receiver", "GET %s answered %d: is this the receiver (or does a proxy route "
                                              "/healthz elsewhere)?",
                      url, resp.status);
    else if (lf_json_parse(lf_buf_cstr(&resp.body), resp.body.len, 64 * 1024, &j, NULL) != 0)
        failed |= say(out, false, "receiver", "GET %s answered something that is not the receiver's health", url);
    else
        failed |= say(out, resp.status == 200, "receiver", "%s %s, health %s",
                      json_string_value(json_object_get(j, "program")) ? json_string_value(json_object_get(j, "program"))
                                                                        : "?",
                      json_string_value(json_object_get(j, "version")) ? json_string_value(json_object_get(j, "version"))
                                                                        : "?",
                      json_string_value(json_object_get(j, "status")) ? json_string_value(json_object_get(j, "status"))
                                                                       : "?");
    json_decref(j);
    j = NULL;
    lf_http_response_free(&resp);

    /* the signed probe */
    uint8_t sk[LF_SIGN_SK_BYTES];
    char why[256] = "";
    if (!cfg->site || lf_sign_sk_load(cfg->key_file, sk, why, sizeof why) != 0) {
        failed |= say(out, false, "site", "%s", cfg->site ? why : "[uploader] site is not set");
        lf_http_client_close(http, NULL, NULL);
        return 1;
    }
    uint8_t hash[LF_HASH_BYTES];
    lf_crypto_hash(hash, "", 0);
    lf_buf auth = LF_BUF_INIT(1024);
    int64_t sent_at = (int64_t)time(NULL);
    rc = lf_buf_append_str(&auth, "Authorization: ");
    rc = rc ? rc : lf_sign_request(&auth, sk, cfg->site, "GET", "/v1/probe", sent_at, hash);
    snprintf(url, sizeof url, "%s/v1/probe", t.base);
    const char *headers[] = {lf_buf_cstr(&auth), NULL};
    lf_http_client_request probe = {.method = "GET", .url = url, .headers = headers};
    rc = rc ? rc : lf_http_client_fetch(http, &probe, &resp);
    lf_buf_free(&auth);
    if (rc < 0) {
        failed |= say(out, false, "site", "GET %s: %s", url, lf_strerror(rc));
        lf_http_response_free(&resp);
        lf_http_client_close(http, NULL, NULL);
        sodium_memzero(sk, sizeof sk);
        return 1;
    }
    const char *error = NULL;
    json_int_t skew = 0, window = 0;
    bool have_skew = false;
    if (lf_json_parse(lf_buf_cstr(&resp.body), resp.body.len, 64 * 1024, &j, NULL) == 0) {
        error = json_string_value(json_object_get(j, "error"));
        have_skew = json_is_integer(json_object_get(j, "clock_skew_s"));
        skew = json_integer_value(json_object_get(j, "clock_skew_s"));
        window = json_integer_value(json_object_get(j, "signature_window_s"));
    }
    if (resp.status == 200) {
        say(out, true, "site", "%s is registered and enabled, and the receiver verifies this key", cfg->site);
    } else if (resp.status == 404) {
        failed |= say(out, false, "site", "the receiver at %s has no /v1/probe: it is older than this uploader, or "
                                          "a proxy does not pass the route",
                      t.base);
    } else if (error && strcmp(error, "unknown_site") == 0) {
        failed |= say(out, false, "site", "the receiver does not know the site %s: register it", cfg->site);
        print_pubkey_hint(out, cfg, sk);
    } else if (error && strcmp(error, "bad_signature") == 0) {
        failed |= say(out, false, "site", "the receiver has another key for %s than %s: register this one (it "
                                          "replaces the old)",
                      cfg->site, cfg->key_file);
        print_pubkey_hint(out, cfg, sk);
    } else if (error && strcmp(error, "site_disabled") == 0) {
        failed |= say(out, false, "site", "%s is disabled on the receiver: logferry-receiver sites enable %s",
                      cfg->site, cfg->site);
    } else if (error && strcmp(error, "stale") == 0) {
        say(out, true, "site", "%s is registered and the receiver verifies this key", cfg->site);
    } else {
        failed |= say(out, false, "site", "the probe got HTTP %d: %.200s", resp.status, lf_buf_cstr(&resp.body));
    }
    if (!have_skew && j && json_is_integer(json_object_get(j, "server_time"))) {
        /* not authenticated (the site is unknown): the receiver's time as it says, this side's */
        skew = json_integer_value(json_object_get(j, "server_time")) - sent_at;
        have_skew = true;
    }
    if (have_skew) {
        long long off = (long long)(skew < 0 ? -skew : skew);
        if (off > window)
            failed |= say(out, false, "clock", "this clock is %lld s %s the receiver's; it refuses signatures more "
                                               "than %lld s off: set the time right (NTP: timedatectl "
                                               "set-ntp true)",
                          off, skew > 0 ? "behind" : "ahead of", (long long)window);
        else
            say(out, true, "clock", "%lld s apart (the receiver accepts up to %lld s)", off, (long long)window);
    }
    json_decref(j);
    lf_http_response_free(&resp);
    lf_http_client_close(http, NULL, NULL);
    sodium_memzero(sk, sizeof sk);
    return failed;
}
