/* Load driver for logferry-receiver: N client threads upload pre-built, uniquely-identified
 * sessions of one size over keep-alive connections and report uploads/s and MB/s.
 * --mode disk measures the limit instead: the same bytes written to new files in --dir with
 * fsync, rename and directory fsync, by the same number of threads, with no other processing.
 * Both modes also report the median and 99th percentile of one upload's (one file's) latency.
 *
 *   bench-receiver --mode http --port P --sk FILE --site NAME --size BYTES --count N --clients C
 *   bench-receiver --mode disk --dir D --size BYTES --count N --clients C */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lf_crypto.h"
#include "lf_fileio.h"
#include "lf_manifest.h"
#include "lf_sign.h"
#include "lf_zip.h"

typedef struct session {
    char id[LF_SESSION_ID_LEN + 1];
    char *zip;
    size_t len;
    uint8_t hash[LF_HASH_BYTES];
} session;

static session *g_sessions;
static size_t g_count;
static atomic_size_t g_next;
static atomic_size_t g_ok, g_fail;
static double *g_latency_ms; /* per upload, by index */
static int g_port;
static uint8_t g_sk[LF_SIGN_SK_BYTES];
static const char *g_site = "bench";
static const char *g_dir = ".";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A log of size bytes with realistic, moderately compressible lines, unique per index. */
static int build_session(session *s, size_t i, size_t size)
{
    char *log = malloc(size + 1);
    if (!log)
        return -ENOMEM;
    size_t off = 0;
    unsigned n = 0;
    while (off < size) {
        char line[160];
        int k = snprintf(line, sizeof line, "2026-11-22 10:%02u:%02u.%03u INFO [worker-%zu] request %u served in %u ms bytes=%u\n",
                         n / 60 % 60, n % 60, n % 1000, i, n, (n * 7919u) % 997u, (n * 104729u) % 65536u);
        size_t c = (size_t)k < size - off ? (size_t)k : size - off;
        memcpy(log + off, line, c);
        off += c;
        n++;
    }
    uint8_t lh[LF_HASH_BYTES];
    lf_crypto_hash(lh, log, size);
    char ident[64];
    snprintf(ident, sizeof ident, "bench/%zu.log", i);
    lf_manifest m;
    lf_manifest_init(&m);
    lf_manifest_session_id(m.session_id, g_site, ident, strlen(ident), lh);
    m.site = strdup(g_site);
    m.product = strdup("Bench");
    m.product_version = strdup("1.0");
    m.log_type = strdup("classic");
    m.log_name = strdup("session.log");
    m.log_size = size;
    lf_crypto_hex_encode(m.log_blake2b, lh, sizeof lh);
    lf_buf mj = LF_BUF_INIT(LF_MANIFEST_MAX);
    char err[256];
    int rc = lf_manifest_build(&m, &mj, err, sizeof err);
    memcpy(s->id, m.session_id, sizeof s->id);
    lf_manifest_free(&m);
    if (rc != 0) {
        fprintf(stderr, "manifest: %s\n", err);
        return rc;
    }
    int lfd = memfd_create("log", 0), zfd = memfd_create("zip", 0);
    if (lf_write_all(lfd, log, size) != 0 || lseek(lfd, 0, SEEK_SET) != 0)
        return -EIO;
    lf_zip_error zerr;
    rc = lf_zip_write_session(zfd, "manifest.json", mj.data, mj.len, "session.log", lfd, size, lh, 6, 1795000000,
                              &zerr);
    lf_buf_free(&mj);
    free(log);
    if (rc != 0) {
        fprintf(stderr, "zip: %s\n", zerr.msg);
        return rc;
    }
    off_t zl = lseek(zfd, 0, SEEK_END);
    s->len = (size_t)zl;
    s->zip = malloc(s->len);
    if (!s->zip || pread(zfd, s->zip, s->len, 0) != (ssize_t)s->len)
        return -EIO;
    close(lfd);
    close(zfd);
    lf_crypto_hash(s->hash, s->zip, s->len);
    return 0;
}

static int connect_rx(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request on fd; returns the status or -1 (connection to be reopened). */
static int put(int fd, const session *s)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/sessions/%s", s->id);
    lf_buf auth = LF_BUF_INIT(LF_SIGN_HEADER_MAX);
    if (lf_sign_request(&auth, g_sk, g_site, "PUT", path, (int64_t)time(NULL), s->hash) != 0)
        return -1;
    char head[1024];
    int hl = snprintf(head, sizeof head,
                      "PUT %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/zip\r\nAuthorization: %s\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      path, auth.data, s->len);
    lf_buf_free(&auth);
    if (lf_write_all(fd, head, (size_t)hl) != 0 || lf_write_all(fd, s->zip, s->len) != 0)
        return -1;
    char buf[4096];
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (!end && have >= sizeof buf - 1)
            return -1;
    }
    int status = atoi(buf + 9);
    const char *cl = strcasestr(buf, "content-length:");
    size_t clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
    size_t got = have - (size_t)(end + 4 - buf);
    while (got < clen) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    if (strcasestr(buf, "connection: close"))
        return -status;
    return status;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of the sorted v[0..n), nearest rank. */
static double quantile(const double *v, size_t n, double q)
{
    size_t k = (size_t)(q * (double)n + 0.999999);
    return v[k ? k - 1 : 0];
}

static void *http_client(void *arg)
{
    (void)arg;
    int fd = connect_rx();
    size_t i;
    while ((i = atomic_fetch_add(&g_next, 1)) < g_count) {
        double t0 = now_s();
        if (fd < 0)
            fd = connect_rx();
        int st = fd >= 0 ? put(fd, &g_sessions[i]) : -1;
        g_latency_ms[i] = (now_s() - t0) * 1e3;
        if (st == 201 || st == 200 || st == -201 || st == -200)
            atomic_fetch_add(&g_ok, 1);
        else {
            atomic_fetch_add(&g_fail, 1);
            if (atomic_load(&g_fail) < 5)
                fprintf(stderr, "upload %zu: status %d\n", i, st);
        }
        if (st <= 0) {
            if (fd >= 0)
                close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void *disk_client(void *arg)
{
    (void)arg;
    size_t i;
    while ((i = atomic_fetch_add(&g_next, 1)) < g_count) {
        double t0 = now_s();
        char tmp[4096], fin[4096];
        snprintf(tmp, sizeof tmp, "%s/%s.tmp", g_dir, g_sessions[i].id);
        snprintf(fin, sizeof fin, "%s/%s.lfz", g_dir, g_sessions[i].id);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int rc = fd < 0 ? -1 : lf_write_all(fd, g_sessions[i].zip, g_sessions[i].len);
        if (rc == 0)
            rc = lf_fsync(fd);
        if (fd >= 0)
            close(fd);
        if (rc == 0)
            rc = rename(tmp, fin);
        if (rc == 0)
            rc = lf_fsync_dir(g_dir);
        g_latency_ms[i] = (now_s() - t0) * 1e3;
        atomic_fetch_add(rc == 0 ? &g_ok : &g_fail, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = "http", *sk = NULL;
    size_t size = 256 * 1024, clients = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--mode")) mode = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) g_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--sk")) sk = argv[i + 1];
        else if (!strcmp(argv[i], "--site")) g_site = argv[i + 1];
        else if (!strcmp(argv[i], "--size")) size = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--count")) g_count = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--clients")) clients = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--dir")) g_dir = argv[i + 1];
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (lf_crypto_init() != 0 || !g_count || clients < 1 || clients > 1024)
        return 2;
    if (!strcmp(mode, "http")) {
        char err[256] = "";
        if (!sk || lf_sign_sk_load(sk, g_sk, err, sizeof err) != 0) {
            fprintf(stderr, "secret key: %s\n", err);
            return 2;
        }
    }
    g_sessions = calloc(g_count, sizeof *g_sessions);
    g_latency_ms = calloc(g_count, sizeof *g_latency_ms);
    if (!g_sessions || !g_latency_ms)
        return 1;
    uint8_t salt[4];
    randombytes_buf(salt, sizeof salt); /* fresh ids on every run */
    for (size_t i = 0; i < g_count; i++)
        if (build_session(&g_sessions[i], i + ((size_t)salt[0] << 24 | (size_t)salt[1] << 16 | (size_t)salt[2] << 8), size) != 0)
            return 1;
    uint64_t bytes = 0;
    for (size_t i = 0; i < g_count; i++)
        bytes += g_sessions[i].len;
    pthread_t *th = calloc(clients, sizeof *th);
    double t0 = now_s();
    for (size_t i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, !strcmp(mode, "http") ? http_client : disk_client, NULL);
    for (size_t i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    double dt = now_s() - t0;
    qsort(g_latency_ms, g_count, sizeof *g_latency_ms, cmp_double);
    printf("mode=%s size=%zu count=%zu clients=%zu ok=%zu failed=%zu seconds=%.3f uploads_per_s=%.1f mb_per_s=%.2f "
           "p50_ms=%.1f p99_ms=%.1f\n",
           mode, size, g_count, clients, atomic_load(&g_ok), atomic_load(&g_fail), dt, (double)g_count / dt,
           (double)bytes / dt / 1e6, quantile(g_latency_ms, g_count, 0.50), quantile(g_latency_ms, g_count, 0.99));
    for (size_t i = 0; i < g_count; i++)
        free(g_sessions[i].zip);
    free(g_sessions);
    free(g_latency_ms);
    free(th);
    return atomic_load(&g_fail) ? 1 : 0;
}
