/* Template mining: the token rules, the batch partition (parameters and event types told apart),
 * merges across token counts, ids that stay while templates generalise, aliases for merged ids,
 * batches that agree with one big batch, determinism, bounded templates, persistence, and the
 * engine's queue/flush with both kinds of log type. */
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

#include "engine.h"
#include "lf_error.h"
#include "lf_failpoint.h"
#include "miner.h"
#include "miner_partition.h"
#include "template_params.h"
#include "template_store.h"
#include "template_token.h"
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
    /* input, tokens joined by one space */
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"PacketResponder 1 for block blk_38865049064139660 terminating",
         "PacketResponder <*> for block <*> terminating"},
        /* a boolean stays a word in the tokens (the template shows it as a parameter, see below) */
        {"  size:67108864 took -27 ms,  ok=true  ",
         "size:<*> took <*> ms, ok=true"},
        {"workerEnv.init() ok /etc/httpd/conf/workers2.properties",
         "workerEnv.init() ok <*>"},
        {"from 10.251.73.220:50010 and /10.0.0.1",
         "from <*> and <*>"},
        {"iar 003a90dc dear 0x00b35148 word cafe",
         "iar <*> dear <*> word cafe"},
        {"Created MRAppMaster for application appattempt_1445144423722_0020_000001",
         "Created MRAppMaster for application <*>"},
        {"Old: msra-sa-41/10.190.173.170:8030 New: [hdfs://msra-sa-41:9000]",
         "Old: <*> New: [<*>]"},
        /* a relative path to a file is a path; two names joined by '/' are words */
        {"open Nodes/dn731/pkts_out.rrd ../x/y.conf, seq/ack/win TCP/IP a//b/c.txt",
         "open <*> <*>, seq/ack/win TCP/IP a//b/c.txt"},
        /* a key given such a value keeps its key */
        {"delay=00:00:01, peer=10.0.0.1:80 name=cp-1.tcloud-pg0.utah.cloudlab.us tr.host=cp-2.a-pg0.b.us",
         "delay=<*>, peer=<*> name=<*> tr.host=<*>"},
        /* the closing bracket of a bracket opened inside the value is the value's */
        {"PCI interrupt 0000:00:02.0[A] -> GSI 16, at (10.0.0.1:80)",
         "PCI interrupt <*> -> GSI <*>, at (<*>)"},
        {"jk2_init() Found child 6725 in scoreboard slot 10",
         "jk2_init() Found child <*> in scoreboard slot <*>"},
        /* a long run of parameters is one (a list), four stay four; so is a run of tokens that differ
         * only in their numbers */
        {"delete 1 2 3 4 5 6 7 done",
         "delete <*> done"},
        {"REPORT : 1 2 3 4",
         "REPORT : <*> <*> <*> <*>"},
        {"nodes an14 an15 an16 an17 an18 an19 down",
         "nodes <*> down"},
        {"nodes an14 an15 an16 an17 down",
         "nodes an14 an15 an16 an17 down"},
        /* dates: weekday and month names, Capitalised or in capitals; lower-case words stay */
        {"at Sun Jul 10 2005 and MONDAY in may",
         "at <*> <*> <*> <*> and <*> in may"},
        {"Sunday Marching Mayday",
         "<*> Marching Mayday"},
        /* numbers with a unit; angle brackets separate values; IPv6 and MAC addresses */
        {"timeout of 10000ms exceeded, 64KB left",
         "timeout of <*> exceeded, <*> left"},
        {"cap <memory:8192, vCores:32>",
         "cap <memory:<*>, vCores:<*>>"},
        {"addr fe80::1c57:7ef3:5a10 via [FF:F2:9F:16:7B:E0], wl0:",
         "addr <*> via [<*>], wl0:"},
        /* a host name with a number in it is one parameter; "core.<*>" and dotted leaders are not names */
        {"for cp-1.tcloud-pg0.utah.cloudlab.us: ok host.example.com core.2275 dcbf.....0",
         "for <*>: ok host.example.com core.<*> dcbf.....<*>"},
        /* a quoted value given to a key is a parameter; a quoted word elsewhere is not */
        {"acquire tag=\"AudioMix\", mode='fast' name=\"x, said \"done\"",
         "acquire tag=\"<*>\", mode='<*>' name=\"<*>\"done\""},
        /* whatever words it holds: the value is one token */
        {"acquire tag=\"View Lock\", mode='a b c' uid=1",
         "acquire tag=\"<*>\", mode='<*>' uid=<*>"},
        {"say msg=\"never closed here",
         "say msg=\"never closed here"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(norm(t, cases[i].in), cases[i].want);
    char err[200];
    /* masks run first and keep the whitespace around what they replace; a sign a mask left behind
     * goes with the parameter */
    lf_tokenizer *m;
    assert_int_equal(lf_tokenizer_new(&m), 0);
    assert_int_equal(lf_tokenizer_add_mask(m, "0x.*?\\s", err, sizeof err), 0);
    assert_int_equal(lf_tokenizer_add_mask(m, "core\\.\\d+", err, sizeof err), 0);
    assert_int_equal(lf_tokenizer_add_mask(m, "\\b\\d+\\b", err, sizeof err), 0);
    assert_string_equal(norm(m, "[HRESULT = 0x800f080d - CBS_E_X] generating core.2275"),
                        "[HRESULT = <*> - CBS_E_X] generating <*>");
    assert_string_equal(norm(m, "cancelNotification,index:-1"), "cancelNotification,index:<*>");
    /* a mask that starts with the key's mark leaves the mark with the key */
    lf_tokenizer *k;
    assert_int_equal(lf_tokenizer_new(&k), 0);
    assert_int_equal(lf_tokenizer_add_mask(k, "=\\d+", err, sizeof err), 0);
    assert_string_equal(norm(k, "psu failure ambient=28 limit=4"), "psu failure ambient=<*> limit=<*>");
    /* and one that runs on to the next space gives back the punctuation around the value; a UUID is
     * one value before any mask sees its parts */
    assert_int_equal(lf_tokenizer_add_mask(k, "/.+?\\s", err, sizeof err), 0);
    assert_string_equal(norm(k, "image at (/var/lib/x): checking /a/(b) \"/c/d\" /e/f, now"),
                        "image at (<*>): checking <*> \"<*>\" <*>, now");
    assert_int_equal(lf_tokenizer_add_mask(k, "\\d+", err, sizeof err), 0);
    assert_string_equal(norm(k, "[instance: b9000564-fe1a-409b-bdcc-1e88b294cd1d] x-b9000564-fe1a-409b-bdcc-1e88b294cd1dz"),
                        "[instance: <*>] x-<*>-<*>-<*>-bdcc-<*>"); /* not inside a longer word */
    lf_tokenizer_free(k);
    /* masks are compiled without capturing groups, except one that refers back to a group */
    lf_tokenizer *r;
    assert_int_equal(lf_tokenizer_new(&r), 0);
    assert_int_equal(lf_tokenizer_add_mask(r, "(\\w)\\1+", err, sizeof err), 0);
    assert_string_equal(norm(r, "say aaa and bb or c"), "say <*> and <*> or c");
    lf_tokenizer_free(r);
    assert_int_equal(lf_tokenizer_add_mask(m, "(unclosed", err, sizeof err), LF_ECONFIG);
    assert_non_null(strstr(err, "unclosed"));
    lf_tokenizer_free(m);
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

/* A miner with its tokenizer; messages are queued, then mined as one batch. */
typedef struct fixture {
    lf_tokenizer *t;
    lf_miner *m;
    int slots[4096];
    size_t n;
} fixture;

static void fx_init(fixture *f, const char *type, size_t cap)
{
    lf_miner_config c;
    lf_miner_config_default(&c);
    c.max_templates = cap;
    memset(f, 0, sizeof *f);
    assert_int_equal(lf_tokenizer_new(&f->t), 0);
    assert_int_equal(lf_miner_new(&c, type, &f->m), 0);
}

static void fx_free(fixture *f)
{
    lf_miner_free(f->m);
    lf_tokenizer_free(f->t);
}

static int queue(fixture *f, const char *msg)
{
    const lf_token *toks;
    const char *text;
    int n = lf_tokenizer_run(f->t, msg, strlen(msg), &toks, &text);
    assert_true(n >= 0);
    int slot = lf_miner_add(f->m, toks, n, text);
    assert_true(slot >= 0);
    f->slots[f->n++] = slot;
    return slot;
}

static void mine(fixture *f)
{
    assert_int_equal(lf_miner_mine(f->m), 0);
}

/* The template of the i-th message queued since the last reset. */
static lf_template *tpl(fixture *f, size_t i)
{
    lf_template *t = lf_miner_result(f->m, f->slots[i]);
    assert_non_null(t);
    return t;
}

static const char *text(fixture *f, size_t i)
{
    return lf_template_text(tpl(f, i), NULL);
}

static void next_batch(fixture *f)
{
    lf_miner_reset(f->m);
    f->n = 0;
}

/* Mines lines[] as one batch and returns the template text of line i. */
static void mine_lines(fixture *f, const char *const *lines, size_t n)
{
    next_batch(f);
    for (size_t i = 0; i < n; i++)
        queue(f, lines[i]);
    mine(f);
}

static void parameters_and_event_types(void **state)
{
    fixture f;
    fx_init(&f, "app", 0);
    static const char *const lines[] = {
        /* 0-5: user names: three or more values in an otherwise constant message are a parameter */
        "Failed password for root from 10.0.0.1 port 22 ssh2",
        "Failed password for root from 10.0.0.2 port 22 ssh2",
        "Failed password for uucp from 10.0.0.3 port 22 ssh2",
        "Failed password for admin from 10.0.0.4 port 22 ssh2",
        "Failed password for root from 10.0.0.5 port 22 ssh2",
        "Failed password for git from 10.0.0.6 port 22 ssh2",
        /* 6-13: two word values are two event types, four users a parameter */
        "session opened for user alice",
        "session closed for user alice",
        "session opened for user bob",
        "session closed for user bob",
        "session opened for user carol",
        "session closed for user carol",
        "session opened for user dave",
        "session closed for user dave",
        /* 12-14: a constant that holds a digit is a word: HTTPS and SOCKS5 are two event types */
        "proxy.example.com:5070 open through proxy p.example.com:5070 HTTPS",
        "proxy.example.com:5070 open through proxy p.example.com:5070 SOCKS5",
        "proxy.example.com:5070 open through proxy p.example.com:5070 HTTPS",
        /* 15-17: values that differ only in their numbers are one parameter */
        "NFS Mount failed on bglio716, slept 15 seconds",
        "NFS Mount failed on bglio91, slept 15 seconds",
        "NFS Mount failed on bglio3, slept 15 seconds",
        /* 18-19: messages that share little are different event types */
        "disk full on sda",
        "cache miss at level",
    };
    mine_lines(&f, lines, sizeof lines / sizeof *lines);
    for (size_t i = 1; i < 6; i++)
        assert_ptr_equal(tpl(&f, i), tpl(&f, 0));
    assert_string_equal(text(&f, 0), "Failed password for <*> from <*> port <*> ssh2");
    for (size_t i = 8; i < 14; i += 2) {
        assert_ptr_equal(tpl(&f, i), tpl(&f, 6));
        assert_ptr_equal(tpl(&f, i + 1), tpl(&f, 7));
    }
    assert_ptr_not_equal(tpl(&f, 6), tpl(&f, 7));
    assert_string_equal(text(&f, 6), "session opened for user <*>");
    assert_ptr_equal(tpl(&f, 14), tpl(&f, 16));
    assert_ptr_not_equal(tpl(&f, 14), tpl(&f, 15));
    assert_ptr_equal(tpl(&f, 17), tpl(&f, 18));
    assert_ptr_equal(tpl(&f, 17), tpl(&f, 19));
    assert_string_equal(text(&f, 17), "NFS Mount failed on <*>, slept <*> seconds");
    assert_ptr_not_equal(tpl(&f, 20), tpl(&f, 21));
    fx_free(&f);
}

static void generalising_punctuation(void **state)
{
    fixture f;
    fx_init(&f, "app", 0);
    static const char *const lines[] = {
        "Loading hive: sam, into key 'abc1' now",    "Loading hive: default, into key 'xyz2' now",
        "Loading hive: system, into key 'qq3' now",  "Loading hive: user, into key 'uu4' now",
        "cache state size=12 mode=fast on disk",     "cache state size=13 mode=slow-ish on disk",
        "cache state size=14 mode=warm on disk",     "cache state size=15 mode=cold on disk",
    };
    mine_lines(&f, lines, 8);
    assert_string_equal(text(&f, 0), "Loading hive: <*>, into key '<*>' now");
    assert_string_equal(text(&f, 4), "cache state size=<*> mode=<*> on disk");
    assert_int_equal(lf_miner_template_count(f.m), 2);
    fx_free(&f);
}

/* A message with another boolean is another event type, and the template shows the boolean as a
 * parameter (so its value is among the parameters); a few word values are that many event types;
 * where every value holds a parameter, two shapes are two event types. */
static void booleans_and_few_values(void **state)
{
    fixture f;
    fx_init(&f, "app", 0);
    static const char *const lines[] = {
        /* 0-3: booleans */
        "updateClipping isOverlap:false, top=12",
        "updateClipping isOverlap:true, top=13",
        "updateClipping isOverlap:false, top=14",
        "updateClipping isOverlap:TRUE, top=15",
        /* 4-6: three values of an enumeration in an otherwise constant message */
        "DMA zone: 4096 pages, LIFO batch:0",
        "Normal zone: 225280 pages, LIFO batch:31",
        "HighMem zone: 32768 pages, LIFO batch:31",
        /* 7-10: two shapes, each around a parameter */
        "session opened for user news by (uid=0)",
        "session opened for user news by LOGIN(uid=0)",
        "session opened for user news by (uid=12)",
        "session opened for user news by LOGIN(uid=7)",
    };
    mine_lines(&f, lines, sizeof lines / sizeof *lines);
    assert_ptr_equal(tpl(&f, 0), tpl(&f, 2));
    assert_ptr_not_equal(tpl(&f, 0), tpl(&f, 1));
    assert_ptr_not_equal(tpl(&f, 1), tpl(&f, 3)); /* "true" and "TRUE" are two words */
    assert_string_equal(text(&f, 0), "updateClipping isOverlap:<*>, top=<*>");
    assert_string_equal(text(&f, 1), "updateClipping isOverlap:<*>, top=<*>");
    /* the same text, two event types: the ids are born from the text with the boolean in it */
    assert_int_equal(lf_template_id(tpl(&f, 0)), lf_miner_template_id("app", "updateClipping isOverlap:false, top=<*>",
                                                                       strlen("updateClipping isOverlap:false, top=<*>")));
    assert_int_not_equal(lf_template_id(tpl(&f, 0)), lf_template_id(tpl(&f, 1)));
    size_t tl;
    const char *t = lf_template_text(tpl(&f, 1), &tl);
    lf_param p[4];
    assert_int_equal(lf_template_params(t, tl, lines[1], strlen(lines[1]), p, 4), 2);
    assert_memory_equal(lines[1] + p[0].off, "true", p[0].len);
    assert_ptr_not_equal(tpl(&f, 4), tpl(&f, 5));
    assert_ptr_not_equal(tpl(&f, 5), tpl(&f, 6));
    assert_string_equal(text(&f, 5), "Normal zone: <*> pages, LIFO batch:<*>");
    assert_ptr_equal(tpl(&f, 7), tpl(&f, 9));
    assert_ptr_equal(tpl(&f, 8), tpl(&f, 10));
    assert_ptr_not_equal(tpl(&f, 7), tpl(&f, 8));
    assert_string_equal(text(&f, 8), "session opened for user news by LOGIN(uid=<*>)");
    /* the superuser's name is shown as a parameter too (Khan et al.'s US rule), but stays a word */
    next_batch(&f);
    queue(&f, "session closed for user root");
    queue(&f, "session closed for user root");
    mine(&f);
    assert_string_equal(text(&f, 0), "session closed for user <*>");
    assert_int_equal(lf_template_id(tpl(&f, 0)), lf_miner_template_id("app", "session closed for user root",
                                                                       strlen("session closed for user root")));
    /* only the user name: "Root cause", "root-ca.pem" stay */
    next_batch(&f);
    queue(&f, "Root cause: root-ca.pem not found");
    mine(&f);
    assert_string_equal(text(&f, 0), "Root cause: root-ca.pem not found");
    /* a value shown as a parameter is no parameter to the rules for a value of varying length: the
     * unit after it stays, and the gap is a parameter of its own */
    next_batch(&f);
    queue(&f, "session for root bytes 705");
    queue(&f, "session for root bytes 1398 (1.36 KB)");
    mine(&f);
    assert_ptr_equal(tpl(&f, 0), tpl(&f, 1));
    assert_string_equal(text(&f, 0), "session for <*> bytes <*>");
    size_t tl2;
    const char *t2 = lf_template_text(tpl(&f, 1), &tl2);
    const char *m2 = "session for root bytes 1398 (1.36 KB)";
    lf_param p2[4];
    assert_int_equal(lf_template_params(t2, tl2, m2, strlen(m2), p2, 4), 2);
    assert_memory_equal(m2 + p2[0].off, "root", p2[0].len);
    assert_memory_equal(m2 + p2[1].off, "1398 (1.36 KB)", p2[1].len);
    fx_free(&f);
}

/* A key printed without a value is another event type than the key with one (a local login has
 * "rhost=", a remote one "rhost=host"), in one batch and when a later batch meets the template. */
static void empty_values(void **state)
{
    fixture f;
    fx_init(&f, "app", 0);
    static const char *const lines[] = {
        "authentication failure; logname= uid=0 tty=ssh ruser= rhost=10.0.0.1",
        "authentication failure; logname= uid=0 tty=ssh ruser= rhost=zummit.com",
        "authentication failure; logname= uid=0 tty=ssh ruser= rhost=massive.merukuru.org",
        "authentication failure; logname= uid=0 tty=ssh ruser= rhost=10.0.0.2",
        "authentication failure; logname= uid=0 tty=:0 ruser= rhost=",
    };
    mine_lines(&f, lines, 5);
    for (size_t i = 1; i < 4; i++)
        assert_ptr_equal(tpl(&f, i), tpl(&f, 0));
    assert_string_equal(text(&f, 0), "authentication failure; logname= uid=<*> tty=ssh ruser= rhost=<*>");
    assert_ptr_not_equal(tpl(&f, 4), tpl(&f, 0));
    assert_string_equal(text(&f, 4), "authentication failure; logname= uid=<*> tty=:<*> ruser= rhost=");
    /* later: the template with a value does not take a message without one */
    static const char *const later[] = {
        "authentication failure; logname= uid=0 tty=ssh ruser= rhost=",
        "authentication failure; logname= uid=0 tty=ssh ruser= rhost=10.0.0.9",
    };
    mine_lines(&f, later, 2);
    assert_string_equal(text(&f, 1), "authentication failure; logname= uid=<*> tty=ssh ruser= rhost=<*>");
    assert_string_equal(text(&f, 0), "authentication failure; logname= uid=<*> tty=<*> ruser= rhost=");
    /* keys given no value, several of them in one place: one template "<*>=" that later empty keys
     * fit, as the partition would have grouped them */
    static const char *const keys[] = {"option alpha= unset", "option beta= unset", "option gamma= unset",
                                       "option delta= unset"};
    mine_lines(&f, keys, 4);
    assert_string_equal(text(&f, 0), "option <*>= unset");
    lf_template *opt = tpl(&f, 0);
    static const char *const more[] = {"option epsilon= unset"};
    mine_lines(&f, more, 1);
    assert_ptr_equal(tpl(&f, 0), opt);
    assert_true(lf_ttok_is_empty_value("rhost=", 6));
    assert_true(lf_ttok_is_empty_value("ruser=,", 7));
    assert_true(lf_ttok_is_empty_value("<*>=", 4));
    assert_false(lf_ttok_is_empty_value("dGVzdA==", 8)); /* base64 padding is a value's */
    assert_false(lf_ttok_is_empty_value("sig=QU1D==", 10));
    assert_false(lf_ttok_is_empty_value("=", 1));
    assert_int_equal(lf_ttok_key_length("tr.intent=x", 11), 10);
    assert_int_equal(lf_ttok_key_length("=x", 2), 0);
    fx_free(&f);
}

/* Past participles in one column are outcomes or states, as many event types as values (OpenStack's
 * "VM Started/Stopped/Paused/Resumed"), while as many names there are a parameter. */
static void past_participles(void **state)
{
    fixture f;
    fx_init(&f, "app", 0);
    static const char *const lines[] = {
        "[instance: 1] VM Started (Lifecycle Event)", "[instance: 2] VM Stopped (Lifecycle Event)",
        "[instance: 3] VM Paused (Lifecycle Event)",  "[instance: 4] VM Resumed (Lifecycle Event)",
        "[instance: 5] VM Started (Lifecycle Event)", "[instance: 6] VM Paused (Lifecycle Event)",
        "[instance: 1] VM alpha (Lifecycle Note)",    "[instance: 2] VM beta (Lifecycle Note)",
        "[instance: 3] VM gamma (Lifecycle Note)",    "[instance: 4] VM Fred (Lifecycle Note)",
    };
    mine_lines(&f, lines, 10);
    for (size_t i = 0; i < 4; i++)
        for (size_t j = i + 1; j < 4; j++)
            assert_ptr_not_equal(tpl(&f, i), tpl(&f, j));
    assert_ptr_equal(tpl(&f, 4), tpl(&f, 0));
    assert_ptr_equal(tpl(&f, 5), tpl(&f, 2));
    assert_string_equal(text(&f, 3), "[instance: <*>] VM Resumed (Lifecycle Event)");
    for (size_t i = 7; i < 10; i++)
        assert_ptr_equal(tpl(&f, i), tpl(&f, 6));
    assert_string_equal(text(&f, 6), "[instance: <*>] VM <*> (Lifecycle Note)");
    assert_true(lf_ttok_is_past("closed,", 7));
    assert_true(lf_ttok_is_past("Paused", 6));
    assert_false(lf_ttok_is_past("Fred", 4));      /* too short to be one */
    assert_false(lf_ttok_is_past("PAUSED", 6));    /* the capitals rule's */
    assert_false(lf_ttok_is_past("wl0ed", 5));
    fx_free(&f);
}

/* A column split for a segment's other messages is no reason to split an event type there: groups
 * that differ only where they hold parameters are joined when the rules, given them alone, would not
 * split them; two shapes around a parameter stay two event types, as the rules say. */
static void partition_rejoins(void **state)
{
    (void)state;
    enum { COPY = 100, DONE = 101, S1 = 11, S2 = 12, S3 = 13 };
#define W(h) {(h), (h), LF_PTOK_WILD}
#define K(h) {(h), (h), 0}
    /* items 0-2: "copy <file> done", the file in three shapes, each holding a parameter; items 3-5:
     * other messages, parameters everywhere, the file column's first shape in all three */
    const lf_ptok t[6][3] = {
        {K(COPY), W(S1), K(DONE)}, {K(COPY), W(S2), K(DONE)}, {K(COPY), W(S3), K(DONE)},
        {W(200), W(S1), W(300)},   {W(201), W(S1), W(301)},   {W(202), W(S1), W(302)},
    };
    lf_pitem items[6];
    for (int i = 0; i < 6; i++)
        items[i] = (lf_pitem){t[i], 1};
    lf_partition_rules rules = {0.6, 3, true};
    uint32_t group[6];
    size_t ngroups;
    assert_int_equal(lf_partition(items, 6, 3, &rules, group, &ngroups), 0);
    assert_int_equal(group[0], group[1]);
    assert_int_equal(group[1], group[2]);
    for (int i = 3; i < 6; i++)
        assert_int_not_equal(group[i], group[0]);
    /* with two shapes the rules split them by themselves, and they stay apart */
    lf_pitem two[5] = {items[0], items[1], items[3], items[4], items[5]};
    assert_int_equal(lf_partition(two, 5, 3, &rules, group, &ngroups), 0);
    assert_int_not_equal(group[0], group[1]);
    /* every allocation that fails is reported, and the next call gives the same answer */
    for (uint64_t nth = 1;; nth++) {
        assert_true(nth < 100);
        lf_fail_arm(LF_FAIL_ALLOC, nth, false);
        int rc = lf_partition(items, 6, 3, &rules, group, &ngroups);
        bool hit = lf_fail_calls(LF_FAIL_ALLOC) >= nth;
        lf_fail_disarm(LF_FAIL_ALLOC);
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_int_equal(group[0], group[2]);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
    }
#undef W
#undef K
}

/* One value printed as a varying number of tokens: one event type; the unit goes with the value. */
static void across_token_counts(void **state)
{
    fixture f;
    fx_init(&f, "proxy", 0);
    static const char *const lines[] = {
        "h:80 close, 0 bytes sent, 0 bytes received, lifetime 00:01",
        "h:80 close, 1190 bytes (1.16 KB) sent, 1671 bytes (1.63 KB) received, lifetime 00:02",
        "h:80 close, 451 bytes sent, 18846 bytes (18.4 KB) received, lifetime 00:03",
        "h:80 close, 1165 bytes (1.13 KB) sent, 815 bytes received, lifetime 00:04",
        "h:80 open through proxy p:80 HTTPS",
    };
    mine_lines(&f, lines, 5);
    for (size_t i = 1; i < 4; i++)
        assert_ptr_equal(tpl(&f, i), tpl(&f, 0));
    assert_ptr_not_equal(tpl(&f, 4), tpl(&f, 0));
    assert_string_equal(text(&f, 0), "h:<*> close, <*> sent, <*> received, lifetime <*>");
    /* the parameters come out of the original message whole */
    size_t tl;
    const char *t = lf_template_text(tpl(&f, 1), &tl);
    lf_param p[8];
    assert_int_equal(lf_template_params(t, tl, lines[1], strlen(lines[1]), p, 8), 4);
    assert_int_equal(p[1].len, strlen("1190 bytes (1.16 KB)"));
    assert_memory_equal(lines[1] + p[1].off, "1190 bytes (1.16 KB)", p[1].len);
    assert_memory_equal(lines[1] + p[2].off, "1671 bytes (1.63 KB)", p[2].len);
    /* merged ids are aliases of the one kept */
    size_t na;
    const lf_miner_alias *al = lf_miner_aliases(f.m, &na);
    assert_true(na >= 1);
    for (size_t i = 0; i < na; i++)
        assert_int_equal(lf_miner_resolve(f.m, al[i].from), lf_template_id(tpl(&f, 0)));
    /* a later message of any of the shapes takes the merged template */
    next_batch(&f);
    queue(&f, "h:81 close, 5 bytes (5 KB) sent, 9 bytes received, lifetime 01:00");
    mine(&f);
    assert_string_equal(text(&f, 0), "h:<*> close, <*> sent, <*> received, lifetime <*>");
    fx_free(&f);
}

/* A template keeps its id while it generalises; ids merged later resolve to the one kept. */
static void stable_ids(void **state)
{
    fixture f;
    fx_init(&f, "app", 0);
    queue(&f, "Connection from alice closed by peer");
    mine(&f);
    uint64_t id = lf_template_id(tpl(&f, 0));
    assert_string_equal(text(&f, 0), "Connection from alice closed by peer");
    assert_int_equal(id, lf_miner_template_id("app", "Connection from alice closed by peer",
                                              strlen("Connection from alice closed by peer")));
    next_batch(&f);
    queue(&f, "Connection from bob closed by peer");
    mine(&f);
    /* two values, then three: still that many event types, as far as this miner can tell */
    uint64_t id_bob = lf_template_id(tpl(&f, 0));
    assert_int_not_equal(id_bob, id);
    next_batch(&f);
    queue(&f, "Connection from carol closed by peer");
    mine(&f);
    uint64_t id_carol = lf_template_id(tpl(&f, 0));
    assert_int_equal(lf_miner_template_count(f.m), 3);
    next_batch(&f);
    queue(&f, "Connection from dave closed by peer");
    mine(&f);
    /* a fourth value: a parameter; the oldest template takes the others, its id stays */
    assert_string_equal(text(&f, 0), "Connection from <*> closed by peer");
    assert_int_equal(lf_template_id(tpl(&f, 0)), id);
    assert_int_equal(lf_miner_resolve(f.m, id_bob), id);
    assert_int_equal(lf_miner_resolve(f.m, id_carol), id);
    assert_int_equal(lf_template_count(tpl(&f, 0)), 4);
    assert_int_equal(lf_miner_template_count(f.m), 1);
    fx_free(&f);
}

static uint32_t rnd(uint32_t *x)
{
    *x = *x * 1103515245u + 12345u;
    return *x >> 8;
}

static void make_line(char *line, size_t n, uint32_t *x)
{
    static const char *const users[] = {"root", "admin", "guest", "oracle", "test", "ftp"};
    static const char *const verbs[] = {"opened", "closed"};
    switch (rnd(x) % 4) {
    case 0:
        snprintf(line, n, "session %s for user %s by uid %u", verbs[rnd(x) % 2], users[rnd(x) % 6], rnd(x) % 1000);
        break;
    case 1:
        snprintf(line, n, "Received block blk_%u of size %u from 10.0.%u.%u", rnd(x), rnd(x) % 65536, rnd(x) % 256,
                 rnd(x) % 256);
        break;
    case 2:
        snprintf(line, n, "worker%u finished job %s in %u ms", rnd(x) % 9, rnd(x) % 3 ? "ingest" : "compact",
                 rnd(x) % 5000);
        break;
    default:
        snprintf(line, n, "state %s -> %s", rnd(x) % 2 ? "RUNNING" : "IDLE", rnd(x) % 2 ? "DONE" : "FAILED");
    }
}

/* Results depend only on the input: two miners fed the same batches agree; and mining in small
 * batches ends with the same grouping (ids resolved) as one big batch. */
static void deterministic_and_batch_independent(void **state)
{
    enum { N = 3000 };
    static char lines[N][128];
    uint32_t x = 12345;
    for (int i = 0; i < N; i++)
        make_line(lines[i], sizeof lines[i], &x);
    fixture big, a, b;
    fx_init(&big, "t", 0);
    fx_init(&a, "t", 0);
    fx_init(&b, "t", 0);
    static uint64_t id_big[N], id_a[N];
    for (int i = 0; i < N; i++)
        queue(&big, lines[i]);
    mine(&big);
    for (int i = 0; i < N; i++)
        id_big[i] = lf_template_id(tpl(&big, (size_t)i));
    for (int start = 0; start < N; start += 50) {
        next_batch(&a);
        next_batch(&b);
        for (int i = start; i < start + 50; i++) {
            queue(&a, lines[i]);
            queue(&b, lines[i]);
        }
        mine(&a);
        mine(&b);
        for (int i = start; i < start + 50; i++) {
            id_a[i] = lf_template_id(tpl(&a, (size_t)(i - start)));
            assert_int_equal(id_a[i], lf_template_id(tpl(&b, (size_t)(i - start))));
        }
    }
    /* same partition of the lines: i and j share a resolved id in one exactly when in the other */
    for (int i = 0; i < N; i += 7)
        for (int j = i + 1; j < N; j += 13)
            assert_int_equal(lf_miner_resolve(a.m, id_a[i]) == lf_miner_resolve(a.m, id_a[j]), id_big[i] == id_big[j]);
    assert_int_equal(lf_miner_template_count(a.m), lf_miner_template_count(big.m));
    fx_free(&big);
    fx_free(&a);
    fx_free(&b);
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
    fixture f;
    fx_init(&f, "t", 100);
    char line[200], w1[16], w2[16], w3[16];
    size_t mem_at_cap = 0;
    for (uint64_t i = 0; i < 20000; i++) {
        next_batch(&f);
        snprintf(line, sizeof line, "%s begin %s middle %s end", word(i, w3), word(i * 31 + 1, w1), word(i * 7919 + 13, w2));
        queue(&f, line);
        /* a hot template stays: it is always recently used */
        queue(&f, "hot template line stays");
        mine(&f);
        assert_true(lf_miner_template_count(f.m) <= 100);
        if (i == 1000)
            mem_at_cap = lf_miner_memory(f.m);
    }
    assert_true(lf_miner_evictions(f.m) > 19000);
    /* memory does not grow once the cap is reached */
    assert_true(lf_miner_memory(f.m) <= mem_at_cap * 2);
    assert_true(lf_template_count(tpl(&f, 1)) >= 20000);
    fx_free(&f);
}

static void batch_limit(void **state)
{
    lf_miner_config c;
    lf_miner_config_default(&c);
    c.max_batch = 3;
    lf_miner *m;
    lf_tokenizer *t;
    assert_int_equal(lf_miner_new(&c, "t", &m), 0);
    assert_int_equal(lf_tokenizer_new(&t), 0);
    const char *msgs[] = {"a one", "b two", "a one", "c three", "d four"};
    int want[] = {0, 1, 0, 2, LF_ELIMIT};
    for (int i = 0; i < 5; i++) {
        const lf_token *toks;
        const char *text;
        int n = lf_tokenizer_run(t, msgs[i], strlen(msgs[i]), &toks, &text);
        assert_int_equal(lf_miner_add(m, toks, n, text), want[i]);
    }
    assert_int_equal(lf_miner_batch_size(m), 3);
    assert_int_equal(lf_miner_mine(m), 0);
    assert_non_null(lf_miner_result(m, 2));
    assert_null(lf_miner_result(m, 3));
    lf_miner_reset(m);
    assert_int_equal(lf_miner_batch_size(m), 0);
    lf_miner_config_default(&c);
    c.word_share = 1.5;
    lf_miner *bad;
    assert_int_equal(lf_miner_new(&c, "t", &bad), LF_ECONFIG);
    lf_miner_free(m);
    lf_tokenizer_free(t);
}

static void persistence(void **state)
{
    char path[] = "/tmp/lf-test-templates-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    fixture f;
    fx_init(&f, "svc", 0);
    static const char *const lines[] = {
        "user=alice logged in from 10.0.0.1", "user=bob logged in from 10.0.0.2", "user=carol logged in from 10.0.0.3",
        "user=erin logged in from 10.0.0.5",  "disk full on /var",                "h close, 5 bytes sent, lifetime 1",
        "h close, 5 bytes (5 KB) sent, lifetime 1",
    };
    mine_lines(&f, lines, 7);
    assert_string_equal(text(&f, 0), "user=<*> logged in from <*>");
    uint64_t id_user = lf_template_id(tpl(&f, 0)), id_bytes = lf_template_id(tpl(&f, 5));
    size_t na;
    const lf_miner_alias *al = lf_miner_aliases(f.m, &na);
    assert_int_equal(na, 1);
    uint64_t alias_from = al[0].from;
    assert_int_equal(lf_template_store_save(f.m, path), 0);
    fx_free(&f);

    fixture r;
    fx_init(&r, "svc", 0);
    assert_int_equal(lf_template_store_load(r.m, path), 0);
    assert_int_equal(lf_miner_template_count(r.m), 3);
    assert_int_equal(lf_miner_resolve(r.m, alias_from), id_bytes);
    queue(&r, "user=dave logged in from 10.0.0.4");
    queue(&r, "h close, 7 bytes (7 KB) sent, lifetime 2");
    mine(&r);
    assert_int_equal(lf_template_id(tpl(&r, 0)), id_user);
    assert_int_equal(lf_template_count(tpl(&r, 0)), 5);
    assert_int_equal(lf_template_id(tpl(&r, 1)), id_bytes);
    assert_int_equal(lf_miner_template_count(r.m), 3);
    fx_free(&r);

    /* another type's file, or a damaged one, is refused */
    fixture o;
    fx_init(&o, "other", 0);
    assert_int_equal(lf_template_store_load(o.m, path), LF_EFORMAT);
    fx_free(&o);
    FILE *fl = fopen(path, "a");
    fputs("0123456789abcdef\tx\tforged template\n", fl);
    fclose(fl);
    fx_init(&o, "svc", 0);
    assert_int_equal(lf_template_store_load(o.m, path), LF_ECORRUPT);
    fx_free(&o);
    fx_init(&o, "svc", 0);
    assert_int_equal(lf_template_store_load(o.m, "/nonexistent/x"), -ENOENT);
    fx_free(&o);
    /* version 1 files (id = hash of the text) are still read, and checked */
    fl = fopen(path, "w");
    const char *v1 = "Connection from <*> closed";
    fprintf(fl, "logferry-templates 1 svc\n%016llx\t7\t%s\n", (unsigned long long)lf_miner_template_id("svc", v1, strlen(v1)), v1);
    fclose(fl);
    fx_init(&o, "svc", 0);
    assert_int_equal(lf_template_store_load(o.m, path), 0);
    queue(&o, "Connection from x closed");
    mine(&o);
    assert_int_equal(lf_template_id(tpl(&o, 0)), lf_miner_template_id("svc", v1, strlen(v1)));
    fx_free(&o);
    fl = fopen(path, "w");
    fprintf(fl, "logferry-templates 1 svc\n0123456789abcdef\t7\t%s\n", v1);
    fclose(fl);
    fx_init(&o, "svc", 0);
    assert_int_equal(lf_template_store_load(o.m, path), LF_ECORRUPT);
    fx_free(&o);
    unlink(path);
}

typedef struct changes {
    int templates, aliases;
    uint64_t last_from, last_to;
} changes;

static int count_tpl(lf_template *t, void *arg)
{
    (void)t;
    ((changes *)arg)->templates++;
    return 0;
}

static int count_alias(const lf_miner_alias *a, void *arg)
{
    changes *c = arg;
    c->aliases++;
    c->last_from = a->from;
    c->last_to = a->to;
    return 0;
}

/* Shared templates (several parsers): what is restored agrees with what is mined; equal
 * structures under two ids merge into the one earlier in the store's order; changes are reported
 * until committed. */
static void sharing(void **state)
{
    fixture f;
    fx_init(&f, "svc", 0);
    assert_int_equal(lf_miner_restore(f.m, 0x1111, "job <*> done in <*> ms", 22, 5, 10), 0);
    assert_int_equal(lf_miner_restore(f.m, 0x2222, "job <*> done in <*> ms", 22, 3, 7), 0);
    assert_int_equal(lf_miner_template_count(f.m), 1);
    assert_int_equal(lf_miner_resolve(f.m, 0x1111), 0x2222);
    assert_int_equal(lf_miner_restore(f.m, 0x3333, "a  b", 4, 1, 11), 0); /* a gap between a and b */
    assert_int_equal(lf_miner_restore(f.m, 0x4444, "a\tb", 3, 1, 12), LF_EFORMAT);
    assert_int_equal(lf_miner_restore(f.m, 0, "x", 1, 1, 12), LF_EFORMAT);
    queue(&f, "job 17 done in 5 ms");
    queue(&f, "a x y z b");
    queue(&f, "a b");
    mine(&f);
    assert_int_equal(lf_template_id(tpl(&f, 0)), 0x2222);
    assert_int_equal(lf_template_id(tpl(&f, 1)), 0x3333);
    assert_int_equal(lf_template_id(tpl(&f, 2)), 0x3333);
    /* the merge of the two restored duplicates is news for the store; nothing mined changed */
    assert_true(lf_miner_dirty(f.m));
    changes ch = {0};
    assert_int_equal(lf_miner_foreach_changed(f.m, count_tpl, count_alias, &ch), 0);
    assert_int_equal(ch.aliases, 1);
    assert_int_equal(ch.last_from, 0x1111);
    assert_int_equal(ch.last_to, 0x2222);
    lf_miner_commit(f.m, 12);
    assert_false(lf_miner_dirty(f.m));
    ch = (changes){0};
    assert_int_equal(lf_miner_foreach_changed(f.m, count_tpl, count_alias, &ch), 0);
    assert_int_equal(ch.aliases + ch.templates, 0);
    next_batch(&f);
    queue(&f, "brand new message here");
    mine(&f);
    assert_true(lf_miner_dirty(f.m));
    assert_int_equal(lf_template_order(tpl(&f, 0)), UINT64_MAX);
    lf_miner_commit(f.m, 13);
    assert_int_equal(lf_template_order(tpl(&f, 0)), 13);
    assert_false(lf_miner_dirty(f.m));
    assert_int_equal(lf_miner_restore_alias(f.m, 0x3333, 0x2222), 0);
    assert_int_equal(lf_miner_resolve(f.m, 0x3333), 0x2222);
    assert_int_equal(lf_miner_restore_alias(f.m, 5, 5), LF_EFORMAT);
    fx_free(&f);
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
    assert_int_equal(lf_engine_queue(e, &ev), 0);
    assert_int_equal(ev.nfields, 4);
    assert_true(ev.has_ts);
    assert_int_equal(ev.ts_us, 1577934245500000LL);
    assert_memory_equal(ev.level, "warn", 4);
    assert_memory_equal(ev.content, "disk 91% full", 13);
    assert_memory_equal(ev.value[3], "3", 1);
    assert_int_equal(lf_engine_flush(e), 0);
    assert_string_equal(lf_template_text(lf_engine_template(e, ev.slot), NULL), "disk <*>% full");
    lf_engine_reset(e);
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
    assert_int_equal(lf_engine_queue(e, &ev), 0);
    assert_true(ev.has_ts);
    assert_int_equal(ev.ts_us, 1226262975000000LL);
    assert_memory_equal(ev.level, "INFO", 4);
    assert_int_equal(lf_engine_flush(e), 0);
    assert_string_equal(lf_template_text(lf_engine_template(e, ev.slot), NULL),
                        "PacketResponder <*> for block <*> terminating");
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
        cmocka_unit_test(token_rules),
        cmocka_unit_test(parameters_and_event_types),
        cmocka_unit_test(generalising_punctuation),
        cmocka_unit_test(booleans_and_few_values),
        cmocka_unit_test(empty_values),
        cmocka_unit_test(past_participles),
        cmocka_unit_test(partition_rejoins),
        cmocka_unit_test(across_token_counts),
        cmocka_unit_test(stable_ids),
        cmocka_unit_test(deterministic_and_batch_independent),
        cmocka_unit_test(lru_eviction),
        cmocka_unit_test(batch_limit),
        cmocka_unit_test(persistence),
        cmocka_unit_test(sharing),
        cmocka_unit_test(engine_jsonlines),
        cmocka_unit_test(engine_format_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
