/* Template mining: the token rules, clustering, stable ids, determinism, LRU eviction with pruned
 * tree nodes, persistence across a restart, and the built-in JSON-lines type through the engine. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "drain.h"
#include "engine.h"
#include "lf_error.h"
#include "template_store.h"
#include "tokenize.h"

/* The normalised tokens of a message joined by single spaces. */
static char *norm(lf_tokenizer *t, const char *msg)
{
    const lf_token *toks;
    const char *text;
    int n = lf_tokenizer_run(t, msg, strlen(msg), &toks, &text);
    assert_true(n >= 0);
    static char out[4096];
    size_t p = 0;
    for (int i = 0; i < n; i++) {
        if (i)
            out[p++] = ' ';
        memcpy(out + p, text + toks[i].off, toks[i].len);
        p += toks[i].len;
        assert_true((toks[i].hash == LF_TOKEN_WILD_HASH) == (toks[i].len == 3 && !memcmp(text + toks[i].off, "<*>", 3)));
    }
    out[p] = '\0';
    return out;
}

static void token_rules(void **state)
{
    lf_tokenizer *t;
    assert_int_equal(lf_tokenizer_new(&t), 0);
    assert_string_equal(norm(t, "PacketResponder 1 for block blk_38865049064139660 terminating"),
                        "PacketResponder <*> for block <*> terminating");
    assert_string_equal(norm(t, "  size:67108864 took -27 ms,  ok=true  "), "size:<*> took <*> ms, ok=<*>");
    assert_string_equal(norm(t, "workerEnv.init() ok /etc/httpd/conf/workers2.properties"),
                        "workerEnv.init() ok <*>");
    assert_string_equal(norm(t, "from 10.251.73.220:50010 and /10.0.0.1"), "from <*> and <*>");
    assert_string_equal(norm(t, "iar 003a90dc dear 0x00b35148 word cafe"), "iar <*> dear <*> word cafe");
    assert_string_equal(norm(t, "Created MRAppMaster for application appattempt_1445144423722_0020_000001"),
                        "Created MRAppMaster for application <*>");
    assert_string_equal(norm(t, "Old: msra-sa-41/10.190.173.170:8030 New: [hdfs://msra-sa-41:9000]"),
                        "Old: <*> New: [<*>]");
    assert_string_equal(norm(t, "jk2_init() Found child 6725 in scoreboard slot 10"),
                        "jk2_init() Found child <*> in scoreboard slot <*>");
    /* a long run of parameters is one (a list), four stay four */
    assert_string_equal(norm(t, "delete 1 2 3 4 5 6 7 done"), "delete <*> done");
    assert_string_equal(norm(t, "REPORT : 1 2 3 4"), "REPORT : <*> <*> <*> <*>");
    /* masks run first and keep the whitespace around what they replace */
    char err[200];
    assert_int_equal(lf_tokenizer_add_mask(t, "0x.*?\\s", err, sizeof err), 0);
    assert_int_equal(lf_tokenizer_add_mask(t, "core\\.\\d+", err, sizeof err), 0);
    assert_string_equal(norm(t, "[HRESULT = 0x800f080d - CBS_E_X] generating core.2275"),
                        "[HRESULT = <*> - CBS_E_X] generating <*>");
    assert_int_equal(lf_tokenizer_add_mask(t, "(unclosed", err, sizeof err), LF_ECONFIG);
    assert_non_null(strstr(err, "unclosed"));
    /* the tail of a message with too many tokens is one parameter */
    char big[LF_TOKEN_MAX * 4 + 64] = "";
    for (int i = 0; i < LF_TOKEN_MAX + 10; i++)
        strcat(big, i % 2 ? "a " : "b ");
    const lf_token *toks;
    const char *text;
    assert_int_equal(lf_tokenizer_run(t, big, strlen(big), &toks, &text), LF_TOKEN_MAX);
    assert_int_equal(toks[LF_TOKEN_MAX - 1].hash, LF_TOKEN_WILD_HASH);
    assert_int_equal(lf_tokenizer_run(t, "", 0, &toks, &text), 0);
    lf_tokenizer_free(t);
}

typedef struct miner {
    lf_tokenizer *t;
    lf_drain *d;
} miner;

static void miner_init(miner *m, const char *type, size_t cap)
{
    lf_drain_config c;
    lf_drain_config_default(&c);
    c.max_clusters = cap;
    assert_int_equal(lf_tokenizer_new(&m->t), 0);
    assert_int_equal(lf_drain_new(&c, type, &m->d), 0);
}

static void miner_free(miner *m)
{
    lf_drain_free(m->d);
    lf_tokenizer_free(m->t);
}

static lf_drain_cluster *add(miner *m, const char *msg)
{
    const lf_token *toks;
    const char *text;
    int n = lf_tokenizer_run(m->t, msg, strlen(msg), &toks, &text);
    assert_true(n >= 0);
    lf_drain_cluster *c = NULL;
    assert_true(lf_drain_add(m->d, toks, n, text, &c) >= 0);
    return c;
}

static const char *tmpl(lf_drain_cluster *c)
{
    return lf_drain_cluster_template(c, NULL);
}

static void clustering(void **state)
{
    miner m;
    miner_init(&m, "app", 0);
    lf_drain_cluster *a = add(&m, "Connection from alice closed by peer after a short while");
    assert_string_equal(tmpl(a), "Connection from alice closed by peer after a short while");
    uint64_t first_id = lf_drain_cluster_id(a);
    a = add(&m, "Connection from bob closed by peer after a short while");
    assert_string_equal(tmpl(a), "Connection from <*> closed by peer after a short while");
    assert_int_not_equal(lf_drain_cluster_id(a), first_id);
    assert_int_equal(lf_drain_cluster_size(a), 2);
    /* two words differing in a short message are two templates */
    lf_drain_cluster *s1 = add(&m, "Transitioned from NEW to RUNNING");
    lf_drain_cluster *s2 = add(&m, "Transitioned from NEW to FAILED");
    assert_int_not_equal(lf_drain_cluster_serial(s1), lf_drain_cluster_serial(s2));
    /* generalising keeps shared punctuation and keys */
    lf_drain_cluster *k = add(&m, "Loading hive: SAM, into key 'abc1' now");
    k = add(&m, "Loading hive: DEFAULT, into key 'xyz2' now");
    assert_string_equal(tmpl(k), "Loading hive: <*>, into key '<*>' now");
    lf_drain_cluster *q = add(&m, "cache state size=12 mode=fast on disk");
    q = add(&m, "cache state size=12 mode=slow-ish on disk");
    assert_string_equal(tmpl(q), "cache state size=<*> mode=<*> on disk");
    assert_int_equal(lf_drain_cluster_count(m.d), 5);
    /* ids are a function of type and template text only */
    assert_int_equal(lf_drain_cluster_id(a), lf_drain_template_id("app", "Connection from <*> closed by peer after a short while",
                                                                strlen("Connection from <*> closed by peer after a short while")));
    assert_int_not_equal(lf_drain_template_id("other", "Connection from <*> closed by peer after a short while",
                                              strlen("Connection from <*> closed by peer after a short while")),
                         lf_drain_cluster_id(a));
    miner_free(&m);
}

static void deterministic(void **state)
{
    miner m1, m2;
    miner_init(&m1, "t", 50);
    miner_init(&m2, "t", 50);
    char line[128];
    uint32_t x = 12345;
    for (int i = 0; i < 5000; i++) {
        x = x * 1103515245u + 12345u;
        snprintf(line, sizeof line, "op%c user%u did %s in %u ms", 'a' + (x >> 8) % 20, (x >> 4) % 50,
                 (x >> 12) % 3 ? "read" : "write", x % 1000);
        lf_drain_cluster *a = add(&m1, line);
        lf_drain_cluster *b = add(&m2, line);
        assert_int_equal(lf_drain_cluster_id(a), lf_drain_cluster_id(b));
        assert_string_equal(tmpl(a), tmpl(b));
    }
    assert_int_equal(lf_drain_cluster_count(m1.d), lf_drain_cluster_count(m2.d));
    miner_free(&m1);
    miner_free(&m2);
}

static char *word(uint64_t k, char *buf)
{
    int n = 0;
    do {
        buf[n++] = (char)('a' + k % 26);
        k /= 26;
    } while (k);
    buf[n] = '\0';
    return buf;
}

static void lru_eviction(void **state)
{
    miner m;
    miner_init(&m, "t", 100);
    char line[200], w1[16], w2[16];
    size_t mem_at_cap = 0;
    for (uint64_t i = 0; i < 20000; i++) {
        snprintf(line, sizeof line, "begin %s middle %s end", word(i, w1), word(i * 7919 + 13, w2));
        add(&m, line);
        /* a hot template stays: it is always recently used */
        add(&m, "hot template line stays");
        assert_true(lf_drain_cluster_count(m.d) <= 100);
        if (i == 1000)
            mem_at_cap = lf_drain_memory(m.d);
    }
    assert_true(lf_drain_evictions(m.d) > 19000);
    /* memory does not grow once the cap is reached (tree nodes are freed with their clusters) */
    assert_true(lf_drain_memory(m.d) <= mem_at_cap * 2);
    lf_drain_cluster *h = add(&m, "hot template line stays");
    assert_true(lf_drain_cluster_size(h) >= 20000);
    miner_free(&m);
}

static void leaf_cap(void **state)
{
    lf_drain_config c;
    lf_drain_config_default(&c);
    c.max_leaf_clusters = 1;
    lf_tokenizer *t;
    lf_drain *d;
    assert_int_equal(lf_tokenizer_new(&t), 0);
    assert_int_equal(lf_drain_new(&c, "t", &d), 0);
    char line[100], w[16];
    for (uint64_t i = 0; i < 1000; i++) {
        /* same first two words: one leaf; the rest differs in words, so no two lines merge */
        snprintf(line, sizeof line, "same prefix %s here", word(i * 31 + 5, w));
        const lf_token *toks;
        const char *text;
        int n = lf_tokenizer_run(t, line, strlen(line), &toks, &text);
        lf_drain_cluster *cl;
        assert_int_equal(lf_drain_add(d, toks, n, text, &cl), 1);
        assert_int_equal(lf_drain_cluster_count(d), 1);
    }
    assert_int_equal(lf_drain_evictions(d), 999);
    lf_drain_free(d);
    lf_tokenizer_free(t);
}

static void persistence(void **state)
{
    char path[] = "/tmp/lf-test-templates-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    miner m;
    miner_init(&m, "svc", 0);
    lf_drain_cluster *a = add(&m, "user=alice logged in from 10.0.0.1");
    a = add(&m, "user=bob logged in from 10.0.0.2");
    assert_string_equal(tmpl(a), "user=<*> logged in from <*>");
    uint64_t id_a = lf_drain_cluster_id(a);
    add(&m, "disk full on /var");
    assert_int_equal(lf_template_store_save(m.d, path), 0);
    miner_free(&m);

    miner r;
    miner_init(&r, "svc", 0);
    assert_int_equal(lf_template_store_load(r.d, path), 0);
    assert_int_equal(lf_drain_cluster_count(r.d), 2);
    lf_drain_cluster *b = add(&r, "user=carol logged in from 10.0.0.3");
    assert_int_equal(lf_drain_cluster_id(b), id_a);
    assert_int_equal(lf_drain_cluster_size(b), 3);
    assert_int_equal(lf_drain_cluster_count(r.d), 2);
    miner_free(&r);

    /* another type's file, or a damaged one, is refused */
    miner o;
    miner_init(&o, "other", 0);
    assert_int_equal(lf_template_store_load(o.d, path), LF_EFORMAT);
    miner_free(&o);
    FILE *f = fopen(path, "a");
    fputs("0123456789abcdef\t1\tforged template\n", f);
    fclose(f);
    miner_init(&o, "svc", 0);
    assert_int_equal(lf_template_store_load(o.d, path), LF_ECORRUPT);
    miner_free(&o);
    miner_init(&o, "svc", 0);
    assert_int_equal(lf_template_store_load(o.d, "/nonexistent/x"), -ENOENT);
    miner_free(&o);
    unlink(path);
}

static void engine_jsonlines(void **state)
{
    lf_logtype t;
    assert_int_equal(lf_logtype_init(&t, "jsonlines"), 0);
    t.jsonlines = true;
    lf_engine *e;
    char err[200];
    assert_int_equal(lf_engine_new(&t, NULL, &e, err, sizeof err), 0);
    lf_event ev;
    const char *l = "{\"ts\":\"2020-01-02T03:04:05.5Z\",\"level\":\"warn\",\"msg\":\"disk 91% full\",\"n\":3}";
    assert_int_equal(lf_engine_split(e, l, strlen(l), &ev), 1);
    assert_int_equal(lf_engine_mine(e, &ev), 0);
    assert_int_equal(ev.nfields, 4);
    assert_true(ev.has_ts);
    assert_int_equal(ev.ts_us, 1577934245500000LL);
    assert_memory_equal(ev.level, "warn", 4);
    assert_memory_equal(ev.content, "disk 91% full", 13);
    assert_string_equal(lf_drain_cluster_template(ev.cluster, NULL), "disk <*>% full");
    assert_memory_equal(ev.value[3], "3", 1);
    /* not JSON: the whole line is the content */
    assert_int_equal(lf_engine_split(e, "plain text", 10, &ev), 0);
    assert_int_equal(ev.content_len, 10);
    lf_engine_free(e);
    lf_logtype_clear(&t);
}

static void engine_format_type(void **state)
{
    lf_logtype t;
    lf_logtype_init(&t, "hdfs");
    assert_int_equal(lf_logtype_set(&t, "format", "<Date> <Time> <Pid> <Level> <Component>: <Content>"), 0);
    assert_int_equal(lf_logtype_set(&t, "mask", "blk_-?\\d+"), 0);
    assert_int_equal(lf_logtype_set(&t, "time_format", "%y%m%d %H%M%S"), 0);
    assert_int_equal(lf_logtype_set(&t, "continuation", "maybe"), LF_ECONFIG);
    assert_int_equal(lf_logtype_set(&t, "no_such_key", "x"), LF_ECONFIG);
    lf_engine *e;
    char err[200];
    assert_int_equal(lf_engine_new(&t, NULL, &e, err, sizeof err), 0);
    lf_event ev;
    const char *l = "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_-38 terminating";
    assert_int_equal(lf_engine_split(e, l, strlen(l), &ev), 1);
    assert_int_equal(lf_engine_mine(e, &ev), 0);
    assert_true(ev.has_ts);
    assert_int_equal(ev.ts_us, 1226262975000000LL);
    assert_memory_equal(ev.level, "INFO", 4);
    assert_string_equal(lf_drain_cluster_template(ev.cluster, NULL), "PacketResponder <*> for block <*> terminating");
    lf_engine_free(e);
    /* a level field that the format lacks is a configuration error */
    assert_int_equal(lf_logtype_set(&t, "level_field", "Severity"), 0);
    assert_int_equal(lf_engine_new(&t, NULL, &e, err, sizeof err), LF_ECONFIG);
    assert_non_null(strstr(err, "Severity"));
    lf_logtype_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_rules), cmocka_unit_test(clustering),       cmocka_unit_test(deterministic),
        cmocka_unit_test(lru_eviction), cmocka_unit_test(leaf_cap),        cmocka_unit_test(persistence),     cmocka_unit_test(engine_jsonlines),
        cmocka_unit_test(engine_format_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
