"""The parser service end to end: sessions uploaded through the real receiver, parsed by
logferry-parser daemons into a real MariaDB and the Elasticsearch fake.

- plain run: every session loaded once, rows equal to a direct `logferry-parser parse`;
- chaos: two parsers SIGKILLed at random and restarted, MariaDB killed and restarted in the middle of
  loads, the fake answering bulk items with 429 and dropping connections; afterwards every session
  has exactly one copy of its rows in MySQL and in the index (counts and CRC32 sums per session
  compared with a direct parse), nothing is left in the queue or its dead-letter queue.
"""
import json
import os
import random
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fakes"))

import lfharness as H
import lfmariadb
import lfparser as P
import lfupload as U
from fakeproc import start_fake, Client


def upload_sessions(rx, parser, rng, n, min_lines=20, max_lines=400):
    expected = {}
    for i in range(n):
        log = P.make_log(rng, rng.randrange(min_lines, max_lines))
        s = U.make_session(rx.site, log, identity=f"sess-{i}-{rng.random()}")
        status, body, _ = rx.upload(s)
        H.check(status == 201, f"upload {i}: {status} {body}")
        expected[s.id] = P.expected_rows(parser, log)
    return expected


def queue_stats(rx):
    status, _, data = rx.get("/v1/queues/sessions", token=rx.worker_token)
    H.check(status == 200, f"queue stats: {status}")
    return json.loads(data)


def mysql_rows(db, database="logferry"):
    rows = db.query("SELECT session_id, COUNT(*), SUM(CRC32(message)) FROM events GROUP BY session_id", database)
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def check_mysql(db, expected, database="logferry"):
    got = mysql_rows(db, database)
    H.check(set(got) == set(expected), f"sessions with events: {len(got)} of {len(expected)}")
    for sid, exp in expected.items():
        H.check(got[sid] == exp, f"session {sid}: MySQL has {got[sid]}, direct parse {exp}")
    sessions = db.query("SELECT session_id, event_count FROM sessions", database)
    H.check(len(sessions) == len(expected), f"{len(sessions)} sessions rows for {len(expected)} sessions")
    for sid, count in sessions:
        H.check(int(count) == expected[sid][0], f"session {sid}: event_count {count}")
    # templates' counts add up to exactly one load of every session
    total = int(db.query("SELECT COALESCE(SUM(occurrences),0) FROM templates", database)[0][0])
    H.check(total == sum(e[0] for e in expected.values()), f"template occurrences {total}")


def check_es(es_port, expected):
    es = Client(es_port)
    status, body = es.json("GET", "/_fake/docs?index=logferry-events-*")
    H.check(status == 200, f"fake docs: {status}")
    per = {}
    for index, content in body["indices"].items():
        for doc_id, src in content["docs"].items():
            sid = src["session_id"]
            H.check(doc_id == f"{sid}-{src['seq']}", f"document id {doc_id} for {sid} seq {src['seq']}")
            n, crc = per.get(sid, (0, 0))
            per[sid] = (n + 1, crc + zlib.crc32(src["message"].encode()))
    H.check(set(per) == set(expected), f"sessions in the index: {len(per)} of {len(expected)}")
    for sid, exp in expected.items():
        H.check(per[sid] == exp, f"session {sid}: index has {per[sid]}, direct parse {exp}")


def wait_drained(rx, db, expected, timeout):
    def done():
        st = queue_stats(rx)
        if st["depth"] or st["in_flight"] or st["delayed"]:
            return False
        return len(mysql_rows(db)) >= len(expected)
    P.wait_for(done, timeout, "the queue to drain")


def test_sessions_load_once():
    db = lfmariadb.scratch_server()
    rx = U.Receiver()
    parser = P.Parser(rx, db, workers=2)
    rng = random.Random(7)
    expected = upload_sessions(rx, parser, rng, 25)
    parser.start()
    wait_drained(rx, db, expected, 90)
    check_mysql(db, expected)
    st = queue_stats(rx)
    H.check(st["dlq_depth"] == 0, f"dead letters: {st}")
    H.check(parser.stop() == 0, "parser exits 0 on SIGTERM")
    out = parser.cli("db", "status")
    H.check(out.returncode == 0 and b"0 pending" in out.stdout, f"db status: {out.stdout} {out.stderr}")


def test_chaos_exactly_once():
    db = lfmariadb.scratch_server()
    _, es_port = start_fake("es_fake.py")
    es = Client(es_port)
    rx = U.Receiver(extra_config="")
    extra = f"[elasticsearch]\nurl = http://127.0.0.1:{es_port}\nbulk_bytes = 64K\n"
    parsers = [P.Parser(rx, db, workers=2, extra=extra, name=f"parser{i}") for i in range(2)]
    rng = random.Random(11)
    expected = upload_sessions(rx, parsers[0], rng, 150, max_lines=600)
    out = parsers[0].cli("db", "migrate")
    H.check(out.returncode == 0 and b"applied" in out.stdout, f"db migrate: {out.stdout} {out.stderr}")
    es.json("POST", "/_fake/faults", {"bulk_item_429": 300, "drop_connection": 6})
    for p in parsers:
        p.start()
    start = time.time()
    kills = 0
    restarted_db = False
    deadline = start + 150
    while time.time() < deadline:
        loaded = len(mysql_rows(db)) if db.proc.poll() is None else 0
        st = queue_stats(rx)
        if loaded >= len(expected) and not (st["depth"] or st["in_flight"] or st["delayed"]):
            break
        if not restarted_db and loaded > len(expected) // 3:
            db.kill()
            time.sleep(1.0)
            db.start()
            restarted_db = True
        victim = rng.choice(parsers)
        if victim.running() and rng.random() < 0.5 and kills < 12:
            time.sleep(rng.random() * 0.8)
            victim.kill()
            kills += 1
            victim.start()
        if rng.random() < 0.2 and loaded < 2 * len(expected) // 3:
            es.json("POST", "/_fake/faults", {"bulk_item_429": 50, "drop_connection": 2})
        time.sleep(0.7)
    wait_drained(rx, db, expected, 60)
    for p in parsers:
        p.stop()
    H.check(restarted_db, "MariaDB was restarted during the loads")
    H.check(kills >= 3, f"only {kills} parser kills")
    check_mysql(db, expected)
    check_es(es_port, expected)
    _, faults = es.json("GET", "/_fake/faults")
    H.check(faults["bulk_item_429"] == 0 and faults["drop_connection"] == 0,
            f"every injected Elasticsearch fault happened: {faults}")
    st = queue_stats(rx)
    H.check(st["dlq_depth"] == 0, f"dead letters: {st}")


def hold_through_outage(rx, parser):
    """Starts the parser (2 workers) into an outage and checks, 8 retry_delays later, that each
    worker still holds its session and none was handed back (each hand-back counts a receive, so
    with max_receives = 2 the old behaviour would have dead-lettered everything by then)."""
    parser.start()
    P.wait_for(lambda: queue_stats(rx)["in_flight"] == 2, 30, "both workers to hold a session")
    time.sleep(8)
    st = queue_stats(rx)
    H.check(st["dlq_depth"] == 0 and st["in_flight"] == 2 and st["depth"] == 10 and st["totals"]["nacked"] == 0,
            f"during the outage: {st}")


def test_long_mysql_outage_dead_letters_nothing():
    """MySQL away for many times max_receives x retry_delay: the workers hold their sessions instead
    of handing them back (which would dead-letter them), and everything loads once it is back."""
    db = lfmariadb.scratch_server()
    rx = U.Receiver(extra_config="[queue]\nmax_receives = 2\n")
    parser = P.Parser(rx, db, workers=2)
    out = parser.cli("db", "migrate")
    H.check(out.returncode == 0, f"db migrate: {out.stdout} {out.stderr}")
    expected = upload_sessions(rx, parser, random.Random(5), 12)
    db.kill()
    hold_through_outage(rx, parser)
    H.check(parser.running(), "the parser keeps running while MySQL is away")
    H.check("holding it until MySQL is back" in parser.log_text(), "the wait is logged")
    db.start()
    wait_drained(rx, db, expected, 90)
    check_mysql(db, expected)
    st = queue_stats(rx)
    H.check(st["dlq_depth"] == 0, f"dead letters: {st}")
    H.check(parser.stop() == 0, "parser exits 0 on SIGTERM")


def test_long_es_outage_dead_letters_nothing():
    """Elasticsearch answering 503 for many times max_receives x retry_delay: the workers hold their
    sessions (their rows are in MySQL already) instead of handing them back, and index everything
    once it is back."""
    db = lfmariadb.scratch_server()
    _, es_port = start_fake("es_fake.py")
    es = Client(es_port)
    rx = U.Receiver(extra_config="[queue]\nmax_receives = 2\n")
    parser = P.Parser(rx, db, workers=2, extra=f"[elasticsearch]\nurl = http://127.0.0.1:{es_port}\n")
    out = parser.cli("db", "migrate")
    H.check(out.returncode == 0, f"db migrate: {out.stdout} {out.stderr}")
    expected = upload_sessions(rx, parser, random.Random(6), 12)
    es.json("POST", "/_fake/faults", {"status_503": 1000000})
    hold_through_outage(rx, parser)
    H.check(len(mysql_rows(db)) == 2, "the held sessions' rows are in MySQL, the others wait")
    H.check("holding it until Elasticsearch is back" in parser.log_text(), "the wait is logged")
    es.json("POST", "/_fake/faults", {"status_503": 0})
    wait_drained(rx, db, expected, 90)
    check_mysql(db, expected)
    check_es(es_port, expected)
    st = queue_stats(rx)
    H.check(st["dlq_depth"] == 0, f"dead letters: {st}")
    H.check(parser.stop() == 0, "parser exits 0 on SIGTERM")


if __name__ == "__main__":
    H.run_tests([test_sessions_load_once, test_chaos_exactly_once, test_long_mysql_outage_dead_letters_nothing,
                 test_long_es_outage_dead_letters_nothing])
