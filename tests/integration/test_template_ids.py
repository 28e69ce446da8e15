"""One template id per event type as stored: sessions of known event types go through the real
receiver to two logferry-parser daemons (two workers each, so four miners share their templates
through MySQL), one of them SIGKILLed and restarted in the middle, then through logferry-analytics.

Early sessions show a word parameter (a dialog name, a user) with only one or two values, so the
miners first keep those apart and merge them later, when more values have been seen: ids superseded
that way must resolve (templates.canonical_id) to the one of their event type. One event type prints
a size as a varying number of tokens ("705 bytes" or "1398 bytes (1.36 KB)"). Afterwards:

- every stored event's id, resolved, is the same for all events of its type, and differs between types;
- canonical_id always names a live template (chains are one step long);
- feature_usage has exactly one row per event type (day, product and version) with the right counts.
"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import lfharness as H  # noqa: E402
import lfmariadb  # noqa: E402
import lfparser as P  # noqa: E402
import lfupload as U  # noqa: E402

WORDS = ["alpha", "beta", "gamma", "delta", "report", "export", "import", "main", "zeta"]
USERS = ["root", "alice", "bob", "carol", "dave", "erin"]

# event types: a function of (rng) -> message text
TYPES = [
    lambda r: f"Opened dialog {r.choice(WORDS)} in the main window",
    lambda r: f"User {r.choice(USERS)} saved file {r.randrange(100)}.dat",
    lambda r: f"Connection to 10.0.{r.randrange(256)}.{r.randrange(256)}:{r.randrange(1, 65535)} closed",
    lambda r: f"Command {r.choice(WORDS)} took {r.randrange(1, 9000)} ms",
    lambda r: (f"Transferred {r.randrange(1, 1024)} bytes to the cache" if r.random() < 0.5 else
               f"Transferred {r.randrange(1024, 10 ** 6)} bytes ({r.randrange(1, 999)}.{r.randrange(10)} KB) "
               f"to the cache"),
    lambda r: f"Cache hit for key {r.randrange(10 ** 6)}",
    lambda r: f"Cache miss for key {r.randrange(10 ** 6)}",
    lambda r: f"Failed to open {r.choice(WORDS)}.txt: error {r.randrange(1, 200)}",
    lambda r: f"License check passed for seat {r.randrange(1, 50)}",
]


def make_session_log(rng, n_lines, words_seen):
    """A classic-format log and the event type of each of its events, in order."""
    t0 = 1793606400 + rng.randrange(0, 3600 * 8)
    out, types = [], []
    for i in range(n_lines):
        k = rng.randrange(len(TYPES))
        # the first sessions see few dialog names and users: the miners meet them a few at a time
        r = random.Random(rng.random())
        r.choice = (lambda seq, r=r: seq[r.randrange(min(len(seq), words_seen))])
        msg = TYPES[k](r)
        t = t0 + i * 0.25
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(t))) + ".%03d" % int((t % 1) * 1000)
        level = "ERROR" if k == 7 else "INFO"
        out.append(f"{stamp} {level} [core] {msg}")
        types.append(k)
        if k == 7:
            out.append(f"\tat io.open(file.c:{rng.randrange(1, 999)})")
    return ("\n".join(out) + "\n").encode(), types


def upload(rx, rng, n, words_seen, truth, first):
    for i in range(n):
        log, types = make_session_log(rng, rng.randrange(20, 60), words_seen)
        s = U.make_session(rx.site, log, identity=f"tid-{first + i}")
        status, body, _ = rx.upload(s)
        H.check(status == 201, f"upload {first + i}: {status} {body}")
        truth[s.id] = types


def loaded(db):
    return int(db.query("SELECT COUNT(*) FROM sessions", "logferry")[0][0])


def test_one_id_per_event_type():
    db = lfmariadb.scratch_server()
    rx = U.Receiver()
    parsers = [P.Parser(rx, db, workers=2, name=f"parser{i}") for i in range(2)]
    out = parsers[0].cli("db", "migrate")
    H.check(out.returncode == 0, f"db migrate: {out.stdout} {out.stderr}")
    rng = random.Random(20261206)
    truth = {}
    for p in parsers:
        p.start()
    # waves: one or two values of each word parameter first, then all of them
    total = 0
    for words_seen, n in ((1, 6), (2, 8), (3, 8), (len(WORDS), 18)):
        upload(rx, rng, n, words_seen, truth, total)
        total += n
        P.wait_for(lambda: loaded(db) >= total, 120, f"{total} sessions loaded")
        if words_seen == 2:
            # a parser killed and started again keeps the templates (they are in MySQL)
            parsers[0].kill()
            parsers[0].start()
    for p in parsers:
        H.check(p.stop() == 0, f"{p.conf}: exit status")
        H.check("templates_dir" not in p.log_text(), "no warning about templates")

    # every stored event's id, resolved through merges
    rows = db.query("SELECT e.session_id, e.seq, COALESCE(t.canonical_id, e.template_id), t.template_id IS NULL "
                    "FROM events e LEFT JOIN templates t ON t.template_id = e.template_id", "logferry")
    H.check(len(rows) == sum(len(v) for v in truth.values()), f"{len(rows)} events stored")
    by_type = {}
    for sid, seq, rid, missing in rows:
        H.check(int(missing) == 0, f"event {sid}/{seq}: its template id is not in the templates table")
        by_type.setdefault(truth[sid][int(seq)], set()).add(int(rid))
    for k, ids in sorted(by_type.items()):
        H.check(len(ids) == 1, f"event type {k} ({TYPES[k](random.Random(1))!r}) stored under {len(ids)} ids")
    firsts = [next(iter(v)) for v in by_type.values()]
    H.check(len(set(firsts)) == len(firsts), f"distinct event types share an id: {by_type}")
    # merged ids point at live templates: one join resolves any stored id
    bad = db.query("SELECT a.template_id FROM templates a JOIN templates b ON b.template_id = a.canonical_id "
                   "WHERE b.canonical_id IS NOT NULL", "logferry")
    H.check(not bad, f"canonical_id chains longer than one step: {bad}")
    merged = int(db.query("SELECT COUNT(*) FROM templates WHERE canonical_id IS NOT NULL", "logferry")[0][0])
    H.check(merged > 0, "no template was ever merged: the test did not exercise merging")

    # feature usage: one row per event type, with its events and sessions
    aconf = os.path.join(parsers[0].dir, "analytics.conf")
    with open(aconf, "w") as f:
        f.write(f"[http]\nlisten = 127.0.0.1:0\n[mysql]\nhost = 127.0.0.1\nport = {db.port}\nuser = {db.user}\n"
                f"password = {db.password}\n[analytics]\nsource_database = logferry\n"
                f"target_database = logferry_analytics\n")
    r = subprocess.run([H.binary("logferry-analytics"), "--config", aconf, "run", "feature_usage",
                        "--from", "2026-11-01", "--to", "2026-11-03"], capture_output=True, text=True, timeout=300)
    H.check(r.returncode == 0, f"analytics backfill: {r.stdout} {r.stderr}")
    fu = db.query("SELECT day, template_id, events, sessions FROM feature_usage", "logferry_analytics")
    id_type = {next(iter(v)): k for k, v in by_type.items()}
    per_type = {}
    for day, tid, events, sessions in fu:
        k = id_type.get(int(tid))
        H.check(k is not None, f"feature_usage row for template {tid} that no event type has")
        H.check(k not in per_type, f"event type {k} has two feature_usage rows")
        per_type[k] = (int(events), int(sessions))
    for k in by_type:
        want_events = sum(t.count(k) for t in truth.values())
        want_sessions = sum(1 for t in truth.values() if k in t)
        H.check(per_type.get(k) == (want_events, want_sessions),
                f"event type {k}: feature_usage {per_type.get(k)}, expected {(want_events, want_sessions)}")


if __name__ == "__main__":
    H.run_tests([test_one_id_per_event_type])
