/* Bounded memory: two million distinct lines go through the parsing engine (format match, masks,
 * token rules, miner) in batches of 10,000 (sessions) with a template cap of 20,000. Nearly every
 * line starts a new template, so the miner evicts in every batch, and each batch is partitioned
 * together with the 20,000 templates of its token count (the worst case of the miner's work: about
 * 8 s here); the miner's own accounting must stay under its cap-derived budget and the process's
 * peak resident size (VmHWM) must stay under 64 MiB above where it started.
 * And a large file read through the line reader (which maps it) does not stay resident: the
 * mapped pages already read are dropped as it goes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "line_reader.h"

#ifndef LINES
#define LINES 2000000ULL
#endif
#define CAP 20000
#define BATCH 10000
#define MINER_BUDGET ((CAP + BATCH) * 1024ULL) /* bytes the miner may hold at the cap, with a batch */
#define RSS_BUDGET_KIB (64 * 1024ULL)  /* growth of the peak resident size */

static unsigned long long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long v = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = strtoull(line + kl + 1, NULL, 10);
    fclose(f);
    return v;
}

/* Distinct lower-case words from a number (no digits, so the token rules keep them). */
static size_t word(uint64_t k, char *out)
{
    size_t n = 0;
    do {
        out[n++] = (char)('a' + k % 26);
        k /= 26;
    } while (k);
    return n;
}

static void two_million_distinct_lines(void **state)
{
    lf_logtype t;
    assert_int_equal(lf_logtype_init(&t, "memtest"), 0);
    assert_int_equal(lf_logtype_set(&t, "format", "<Level> <Component>: <Content>"), 0);
    assert_int_equal(lf_logtype_set(&t, "mask", "(\\d+\\.){3}\\d+"), 0);
    lf_miner_config dc;
    lf_miner_config_default(&dc);
    dc.max_templates = CAP;
    lf_engine *e;
    char err[200];
    assert_int_equal(lf_engine_new(&t, &dc, &e, err, sizeof err), 0);
    unsigned long long hwm0 = status_kib("VmHWM");
    char line[256];
    lf_event ev;
    size_t max_mem = 0;
    for (uint64_t i = 0; i < LINES; i++) {
        /* the first two words come from small vocabularies (as in real logs); the next three make
         * every line distinct */
        size_t n = (size_t)snprintf(line, sizeof line, "INFO svc%u: ", (unsigned)(i % 7));
        n += word(1000 + i % 89, line + n);
        line[n++] = ' ';
        n += word(5000 + (i / 89) % 97, line + n);
        line[n++] = ' ';
        n += word(i, line + n);
        line[n++] = ' ';
        n += word(i * 2654435761u + 7, line + n);
        line[n++] = ' ';
        n += word(i * 40503u + 11, line + n);
        /* few constant words: however the miner weighs them, every line stays an event type of its own */
        n += (size_t)snprintf(line + n, sizeof line - n, " at 10.0.%u.%u", (unsigned)(i % 256), (unsigned)(i % 199));
        assert_int_equal(lf_engine_split(e, line, n, &ev), 1);
        assert_int_equal(lf_engine_queue(e, &ev), 0);
        if ((i + 1) % BATCH == 0) {
            size_t m = lf_miner_memory(lf_engine_miner(e)); /* the batch at its fullest */
            if (m > max_mem)
                max_mem = m;
            assert_int_equal(lf_engine_flush(e), 0);
            assert_non_null(lf_engine_template(e, ev.slot));
            lf_engine_reset(e);
            /* the templates this batch used may stand over the cap until the next one evicts */
            assert_true(lf_miner_template_count(lf_engine_miner(e)) <= CAP + BATCH);
        }
    }
    lf_miner *d = lf_engine_miner(e);
    assert_true(lf_miner_template_count(d) <= CAP + BATCH);
    assert_true(lf_miner_evictions(d) > LINES / 2);
    unsigned long long hwm1 = status_kib("VmHWM");
    print_message("miner: %zu templates, %llu evicted, peak %zu bytes; VmHWM %llu -> %llu KiB\n",
                  lf_miner_template_count(d), (unsigned long long)lf_miner_evictions(d), max_mem, hwm0, hwm1);
    assert_true(max_mem <= MINER_BUDGET);
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer's quarantine and shadow memory make the resident size meaningless here */
#else
    assert_true(hwm1 > 0 && hwm1 - hwm0 <= RSS_BUDGET_KIB);
#endif
    lf_engine_free(e);
    lf_logtype_clear(&t);
}

#define MAPPED_FILE_MIB 96
#define MAPPED_RSS_BUDGET_KIB (40 * 1024ULL) /* the reader drops what it has read every 16 MiB */

static void mapped_file_is_not_kept_resident(void **state)
{
    (void)state;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/lf-test-mapped-XXXXXX", dir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    char line[64];
    memset(line, 'x', sizeof line);
    line[sizeof line - 1] = '\n';
    char block[1 << 16];
    for (size_t i = 0; i < sizeof block; i += sizeof line)
        memcpy(block + i, line, sizeof line);
    for (size_t i = 0; i < (size_t)MAPPED_FILE_MIB << 4; i++)
        assert_int_equal(write(fd, block, sizeof block), (ssize_t)sizeof block);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);

    lf_line_reader rd;
    assert_int_equal(lf_line_reader_init(&rd, fd, 1024), 0);
    assert_true(rd.mapped);
    unsigned long long base = status_kib("RssFile"), peak = base;
    const char *l;
    size_t len, n = 0;
    bool truncated;
    int r;
    while ((r = lf_line_reader_next(&rd, &l, &len, &truncated)) > 0) {
        assert_int_equal(len, sizeof line - 1);
        assert_int_equal(l[len - 1], 'x');
        if (++n % 65536 == 0) {
            unsigned long long v = status_kib("RssFile");
            peak = v > peak ? v : peak;
        }
    }
    assert_int_equal(r, 0);
    assert_int_equal(n, ((size_t)MAPPED_FILE_MIB << 20) / sizeof line);
    print_message("mapped %d MiB: RssFile %llu -> peak %llu KiB\n", MAPPED_FILE_MIB, base, peak);
    assert_true(peak - base <= MAPPED_RSS_BUDGET_KIB);
    lf_line_reader_free(&rd);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(two_million_distinct_lines),
                                       cmocka_unit_test(mapped_file_is_not_kept_resident)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
