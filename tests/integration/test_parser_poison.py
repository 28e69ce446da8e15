"""Poison sessions and reparse: a session whose stored object was damaged (it no longer decrypts) and
one whose log type the parser does not know are handed back until the queue's max_receives, then
sit in the dead-letter queue, each with parse_failures rows that say why, while a good session loads.
`reparse --failed` moves them back; once the damage is repaired the session loads (exactly once),
the one with the unknown type returns to the dead-letter queue."""
import json
import os
import random

import lfharness as H
import lfmariadb
import lfparser as P
import lfupload as U


def queue_stats(rx):
    status, _, data = rx.get("/v1/queues/sessions", token=rx.worker_token)
    H.check(status == 200, f"queue stats: {status}")
    return json.loads(data)


def stored_file(rx, sid):
    for f in rx.stored_files():
        if os.path.basename(f).startswith(sid):
            return f
    raise H.TestFailure(f"no stored object for {sid}")


def test_poison_sessions_dead_letter_and_reparse():
    db = lfmariadb.scratch_server()
    rx = U.Receiver(extra_config="[queue]\nmax_receives = 2\n")
    parser = P.Parser(rx, db, workers=1, extra=f"[receiver]\nadmin_token = {rx.admin_token}\n")
    rng = random.Random(3)
    good_log = P.make_log(rng, 50)
    good = U.make_session(rx.site, good_log, identity="good")
    damaged = U.make_session(rx.site, P.make_log(rng, 40), identity="damaged")
    m = U.make_manifest(rx.site, b"2026-01-01 00:00:00.000 INFO [x] y\n", log_name="s.log")
    m["log_type"] = "nosuchtype"
    unknown = U.Session(m["session_id"], U.build_zip([("manifest.json", json.dumps(m).encode()),
                                                       ("s.log", b"2026-01-01 00:00:00.000 INFO [x] y\n")]), m)
    for s in (good, damaged, unknown):
        status, body, _ = rx.upload(s)
        H.check(status == 201, f"upload: {status} {body}")
    path = stored_file(rx, damaged.id)
    with open(path, "rb") as f:
        original = f.read()
    spoiled = bytearray(original)
    spoiled[len(spoiled) // 2] ^= 0x55
    with open(path, "wb") as f:
        f.write(bytes(spoiled))

    parser.start()
    P.wait_for(lambda: queue_stats(rx)["dlq_depth"] == 2, 60, "two dead letters")
    exp = P.expected_rows(parser, good_log)
    rows = db.query(f"SELECT COUNT(*), SUM(CRC32(message)) FROM events WHERE session_id='{good.id}'", "logferry")
    H.check((int(rows[0][0]), int(rows[0][1])) == exp, f"good session rows {rows} vs {exp}")
    fails = db.query("SELECT session_id, stage, reason, attempt FROM parse_failures ORDER BY id", "logferry")
    by = {}
    for sid, stage, reason, attempt in fails:
        by.setdefault(sid, []).append((stage, reason, int(attempt)))
    H.check(len(by.get(damaged.id, [])) == 2, f"damaged session failures: {by.get(damaged.id)}")
    H.check(all(st == "decrypt" for st, _, _ in by[damaged.id]), f"stage: {by[damaged.id]}")
    H.check([a for _, _, a in by[damaged.id]] == [1, 2], f"attempts: {by[damaged.id]}")
    H.check(len(by.get(unknown.id, [])) == 2 and "nosuchtype" in by[unknown.id][0][1],
            f"unknown type failures: {by.get(unknown.id)}")
    H.check(good.id not in by, "no failure for the good session")
    H.check(not db.query(f"SELECT 1 FROM sessions WHERE session_id IN ('{damaged.id}','{unknown.id}')", "logferry"),
            "nothing loaded for the poison sessions")

    # repair the stored object, then reparse --failed: the repaired one loads, the other dead-letters again
    with open(path, "wb") as f:
        f.write(original)
    out = parser.cli("reparse", "--failed")
    H.check(out.returncode == 0 and b"moved" in out.stdout, f"reparse --failed: {out.stdout} {out.stderr}")
    P.wait_for(lambda: db.query(f"SELECT COUNT(*) FROM sessions WHERE session_id='{damaged.id}'", "logferry")
               == [["1"]], 60, "the repaired session to load")
    P.wait_for(lambda: queue_stats(rx)["dlq_depth"] == 1 and queue_stats(rx)["depth"] == 0, 60,
               "the unknown-type session back in the dead-letter queue")
    cnt = db.query("SELECT session_id, COUNT(*) FROM events GROUP BY session_id", "logferry")
    H.check(sorted(r[0] for r in cnt) == sorted([good.id, damaged.id]), f"sessions with events: {cnt}")

    # usage errors and a token without the admin scope
    out = parser.cli("reparse")
    H.check(out.returncode == 2, f"reparse without a selection exits 2: {out.returncode}")
    out = parser.cli("reparse", "--failed", "--token", rx.worker_token)
    H.check(out.returncode == 1 and b"forbidden" in out.stderr, f"worker token refused: {out.returncode} {out.stderr}")
    H.check(parser.stop() == 0, "parser exits 0")


if __name__ == "__main__":
    H.run_tests([test_poison_sessions_dead_letter_and_reparse])
