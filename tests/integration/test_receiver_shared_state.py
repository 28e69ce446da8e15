"""Two receivers on one NATS JetStream (`[queue] backend = jetstream`, separate state directories) share
the sites, the tokens and the session index through the key-value buckets LF_SITES, LF_TOKENS and
LF_SESSIONS (issue 21, must-show 2). A real nats-server and the real receivers; no parser is needed,
the queue's depth is read from JetStream through GET /v1/queues/sessions.

1. `sites add` run with receiver A's configuration lets the site upload to receiver B; `sites
   disable` on B refuses it on A; `tokens revoke` on A refuses the token on B; `sites list` and
   `tokens list` read the buckets.
2. A session uploaded to A (201) and then to B answers 200 duplicate on B, B stores no copy, and the
   queue holds it once; GET /v1/sessions/{id} on B answers from the bucket, naming A; the same id
   with other content answers 409 on B (and on A).
   Rows a crash left "claiming" are settled at start: this receiver's claim makes them publishable,
   another's makes them "foreign" (never published, answered from the claim).
   The same id sent to both at once: one 201, the other 200 or 409, each id queued once.
3. NATS SIGKILLed: the running receiver keeps its tables (a token still works, the outage is in its
   log); a receiver restarted meanwhile refuses to start and says why; once NATS is back it starts.
4. `sites import` / `tokens import` copy the files into empty buckets, keeping entries already
   there; a receiver with another token key leaves the tokens out and says why."""
import json
import os
import random
import shutil
import sqlite3
import threading
import time

import lfharness as H
import lfnats
import lfparser as P
import lfupload as U


def js_conf(server, name):
    return (f"[queue]\nbackend = jetstream\nservers = {server.url()}\nconnect_timeout = 500ms\n"
            f"advertise_url = http://{name}.invalid:8440\n")


def depth(rx):
    status, _, data = rx.get("/v1/queues/sessions", rx.read_token)
    H.check(status == 200, f"queue stats: {status} {data}")
    return json.loads(data)["depth"]


def two_receivers():
    """A NATS server and, on it, A with site-a (imported into the buckets at its start), B with A's token key and tokens and a
    site of its own that is not in the bucket yet."""
    server = lfnats.NatsServer().start().wait_healthy()
    a = U.Receiver(extra_config=js_conf(server, "rx-a"))
    return server, a, second_receiver(server, a)


def second_receiver(server, a):
    """B, sharing A's NATS, token key, tokens and keyring, with a site of its own not yet in the bucket."""
    b = U.Receiver(extra_config=js_conf(server, "rx-b"), site="site-b", start=False)
    b.import_shared = False  # site-b must come from `sites add`, not from B's file
    # a token is a keyed hash: every receiver needs the same token key (documented)
    shutil.copy2(os.path.join(a.dir, "token.key"), os.path.join(b.dir, "token.key"))
    # and one keyring, since a parser reads every receiver's sessions with its one copy (documented)
    shutil.rmtree(os.path.join(b.dir, "keys"), ignore_errors=True)
    shutil.copytree(os.path.join(a.dir, "keys"), os.path.join(b.dir, "keys"))
    b.worker_token, b.read_token, b.admin_token = a.worker_token, a.read_token, a.admin_token
    b.start()
    return b


def stop_all(server, *receivers):
    for rx in receivers:
        H.check(rx.stop() == 0, rx.log_text()[-2000:])
    server.stop()


COLUMNS = "id, site, size, stored_size, content_hash, received_ms, backend, location"


def copy_row(src, dst, sid):
    """dst's index gets src's row of sid as "claiming", as if dst had stored it and died."""
    with sqlite3.connect(os.path.join(src.dir, "index.db")) as db:
        row = db.execute(f"SELECT {COLUMNS} FROM sessions WHERE id = ?", (sid,)).fetchone()
    with sqlite3.connect(os.path.join(dst.dir, "index.db")) as db:
        db.execute(f"INSERT INTO sessions ({COLUMNS}, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'claiming')", row)


def set_status(rx, sid, status):
    with sqlite3.connect(os.path.join(rx.dir, "index.db")) as db:
        db.execute("UPDATE sessions SET status = ? WHERE id = ?", (status, sid))


def edit_config(rx, old, new):
    with open(rx.conf) as f:
        conf = f.read()
    H.check(old in conf, f"{old!r} in {rx.conf}")
    with open(rx.conf, "w") as f:
        f.write(conf.replace(old, new))


def upload_status(rx, s, signer=None):
    status, body, _ = rx.upload(s, signer=signer)
    return status, body


def test_sites_and_tokens_shared():
    server, a, b = two_receivers()
    rng = random.Random(31)

    s_b = U.make_session("site-b", P.make_log(rng, 10), identity="shared-1")
    status, body = upload_status(b, s_b)
    H.check(status == 401 and body["error"] == "unauthorized", f"site-b unknown on B at first: {status} {body}")

    pk_b = U.Signer.keygen(os.path.join(b.dir, "site-b-2.sk"))  # a fresh key: B's own file is not used
    b.signer = U.Signer(os.path.join(b.dir, "site-b-2.sk"), "site-b")
    out = a.cli("sites", "add", "site-b", pk_b)
    H.check("added" in out, out)
    H.wait_for(lambda: upload_status(b, s_b)[0] == 201, "sites add on A to let site-b upload to B", timeout=10)
    listed = a.cli("sites", "list", "--json")
    H.check("site-b" in listed and "site-a" in listed, f"sites list reads the bucket: {listed}")

    s_b2 = U.make_session("site-b", P.make_log(rng, 10), identity="shared-2")
    out = b.cli("sites", "disable", "site-b")
    H.check("disabled" in out, out)
    H.wait_for(lambda: upload_status(a, s_b2, signer=b.signer)[0] == 403,
               "sites disable on B to refuse site-b on A", timeout=10)
    b.cli("sites", "enable", "site-b")
    H.wait_for(lambda: upload_status(a, s_b2, signer=b.signer)[0] == 201, "sites enable on B to reach A",
               timeout=10)

    status, _, _ = b.get(f"/v1/sessions/{s_b.id}", a.read_token)
    H.check(status == 200, f"A's read token works on B: {status}")
    H.check("reader1" in b.cli("tokens", "list"), "tokens list reads the bucket")
    out = a.cli("tokens", "revoke", "reader1")
    H.check("revoked" in out, out)
    H.wait_for(lambda: b.get(f"/v1/sessions/{s_b.id}", a.read_token)[0] == 401,
               "tokens revoke on A to refuse the token on B", timeout=10)
    H.check(a.get(f"/v1/sessions/{s_b.id}", a.read_token)[0] == 401, "and on A")
    H.check(b.get(f"/v1/sessions/{s_b.id}", a.admin_token)[0] == 200, "other tokens still work on B")
    p = a.cli_run("tokens", "revoke", "reader1")
    H.check(p.returncode != 0 and b"no token named" in p.stderr, f"revoking twice: {p.stderr}")
    p = a.cli_run("tokens", "add", "admin1", "--scope", "admin")
    H.check(p.returncode != 0 and b"exists" in p.stderr, f"a name already in the bucket: {p.stderr}")

    stop_all(server, a, b)


def test_session_index_shared():
    server, a, b = two_receivers()
    rng = random.Random(32)
    s = U.make_session("site-a", P.make_log(rng, 20), identity="dup-1")

    status, body = upload_status(a, s)
    H.check(status == 201 and not body["duplicate"], f"first upload to A: {status} {body}")
    H.check(depth(a) == 1, "queued once")
    status, body = upload_status(b, s, signer=a.signer)
    H.check(status == 200 and body["duplicate"] and body["site"] == "site-a", f"same session to B: {status} {body}")
    H.check(b.index_rows() == [] and b.stored_files() == [], f"B kept no copy: {b.index_rows()}")
    H.check(depth(b) == 1, f"still queued once: {depth(b)}")
    H.check(b.metric('lf_receiver_uploads_total{outcome="duplicate"}') == 1, "counted as a duplicate on B")

    status, _, data = b.get(f"/v1/sessions/{s.id}", a.read_token)
    info = json.loads(data) if status == 200 else {}
    H.check(status == 200 and info.get("receiver") == "http://rx-a.invalid:8440" and info.get("site") == "site-a",
            f"B answers from the bucket, naming A: {status} {data}")
    status, _, data = a.get(f"/v1/sessions/{s.id}", a.read_token)
    H.check(status == 200 and json.loads(data)["receiver"] == "http://rx-a.invalid:8440", f"A holds it: {data}")
    H.check(b.get("/v1/sessions/" + "0" * 32, a.read_token)[0] == 404, "an id nobody claimed is 404")

    other = U.make_session("site-a", P.make_log(rng, 25), sid=s.id)
    status, body = upload_status(b, other, signer=a.signer)
    H.check(status == 409 and body["error"] == "conflict", f"other content under the id on B: {status} {body}")
    status, body = upload_status(a, other)
    H.check(status == 409, f"and on A: {status} {body}")

    # a new session stored on B first: claimed by B, a duplicate on A
    s2 = U.make_session("site-a", P.make_log(rng, 20), identity="dup-2")
    status, body = upload_status(b, s2, signer=a.signer)
    H.check(status == 201, f"new on B: {status} {body}")
    status, body = upload_status(a, s2)
    H.check(status == 200 and body["duplicate"], f"then to A: {status} {body}")
    H.check(depth(a) == 2, f"two sessions, each queued once: {depth(a)}")
    rows = {r[0]: r[1] for r in b.index_rows()}
    H.check(rows == {s2.id: "queued"}, f"B holds only its own: {rows}")

    # rows a crash left "claiming" are settled at start: B's own claim makes its row publishable
    # again; a row of an id A claimed (as if B had stored s and died before its claim) is "foreign"
    H.check(b.stop() == 0, b.log_text()[-2000:])
    copy_row(a, b, s.id)
    set_status(b, s2.id, "claiming")
    b.start()
    rows = {r[0]: r[1] for r in b.index_rows()}
    H.check(rows == {s2.id: "queued", s.id: "foreign"}, f"settled at start: {rows}")
    H.check(depth(a) == 2, f"the foreign copy is not published: {depth(a)}")
    status, _, data = b.get(f"/v1/sessions/{s.id}", a.read_token)
    H.check(status == 200 and json.loads(data)["receiver"] == "http://rx-a.invalid:8440",
            f"a foreign row is answered from the claim: {data}")
    status, body = upload_status(b, s, signer=a.signer)
    H.check(status == 200 and body["duplicate"], f"and a re-upload to B is a duplicate: {status} {body}")
    H.check(depth(a) == 2, f"still each queued once: {depth(a)}")

    # a blob with no row (B died between storing it and indexing it): start-up recovery indexes it
    # "claiming", never publishable before its claim is settled; A holds the id, so it is foreign
    H.check(b.stop() == 0, b.log_text()[-2000:])
    with sqlite3.connect(os.path.join(b.dir, "index.db")) as db:
        db.execute("DELETE FROM sessions WHERE id = ?", (s.id,))
    blob = [f for f in a.stored_files() if s.id in os.path.basename(f)]
    H.check(len(blob) == 1, f"A's blob of {s.id}: {a.stored_files()}")
    dst = os.path.join(b.store, os.path.relpath(blob[0], a.store))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(blob[0], dst)
    b.start()
    rows = {r[0]: r[1] for r in b.index_rows()}
    H.check(rows.get(s.id) == "foreign", f"the orphan blob of an id A holds: {rows}")

    stop_all(server, a, b)


def test_claims_are_recognised_under_a_new_name():
    """A receiver knows its own claims by the id its index holds, not by its URL: a row left
    "claiming" (its claim made, the answer lost) is published after a restart under another
    advertise_url, never taken for another receiver's ("foreign": never published, its 2xx lost)."""
    server, a, b = two_receivers()
    s = U.make_session("site-a", P.make_log(random.Random(35), 20), identity="rename-1")
    status, body = upload_status(a, s)
    H.check(status == 201, f"upload to A: {status} {body}")
    H.check(a.stop() == 0, a.log_text()[-2000:])
    set_status(a, s.id, "claiming")
    edit_config(a, "http://rx-a.invalid:8440", "https://rx-a2.invalid")
    a.start()
    rows = {r[0]: r[1] for r in a.index_rows()}
    H.check(rows.get(s.id) in ("stored", "queued"), f"A's own claim recognised under its new name: {rows}")
    H.wait_for(lambda: {r[0]: r[1] for r in a.index_rows()}.get(s.id) == "queued", "A to publish it again",
               timeout=30)
    H.check(depth(a) == 1, f"queued once: {depth(a)}")

    # the index lost and rebuilt by recovery (a new receiver id): the claim is still known as A's by
    # its name and the blob's place
    s3 = U.make_session("site-a", P.make_log(random.Random(34), 20), identity="rename-3")
    status, body = upload_status(a, s3)
    H.check(status == 201, f"upload to A under its new name: {status} {body}")
    H.check(a.stop() == 0, a.log_text()[-2000:])
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(a.dir, "index.db" + suffix)):
            os.unlink(os.path.join(a.dir, "index.db" + suffix))
    a.start()
    rows = {r[0]: r[1] for r in a.index_rows()}
    H.check(rows.get(s3.id) in ("stored", "queued"), f"A's claim known after its index was rebuilt: {rows}")

    # a row "claiming" with other content than the upload, whose id B claimed with the upload's
    # content: the claim decides (200 duplicate), not the local row (409)
    s2 = U.make_session("site-a", P.make_log(random.Random(36), 20), identity="rename-2")
    status, body = upload_status(b, s2, signer=a.signer)
    H.check(status == 201, f"s2 to B: {status} {body}")
    other = U.make_session("site-a", P.make_log(random.Random(37), 25), sid=s2.id)
    H.check(upload_status(a, other)[0] == 409, "other content of s2 refused on A")
    H.check(a.stop() == 0, a.log_text()[-2000:])
    copy_row(b, a, s2.id)
    with sqlite3.connect(os.path.join(a.dir, "index.db")) as db:
        db.execute("UPDATE sessions SET content_hash = ? WHERE id = ?", ("0" * 64, s2.id))
    a.start()
    status, body = upload_status(a, s2)
    H.check(status == 200 and body["duplicate"], f"B's content of s2 on A, whose own row differs: {status} {body}")
    stop_all(server, a, b)


def test_rows_from_before_claims_are_claimed():
    """A receiver that ran on the embedded queue (its rows never claimed, as after `queue migrate`)
    claims them when it starts on JetStream, so another receiver refuses their ids with other content."""
    server = lfnats.NatsServer().start().wait_healthy()
    a = U.Receiver(extra_config=js_conf(server, "rx-a").replace("backend = jetstream", "backend = embedded"))
    s = U.make_session("site-a", P.make_log(random.Random(39), 20), identity="before-1")
    status, body = upload_status(a, s)
    H.check(status == 201, f"upload on the embedded queue: {status} {body}")
    H.check(a.stop() == 0, a.log_text()[-2000:])
    edit_config(a, "backend = embedded", "backend = jetstream")
    a.cli("sites", "import")
    a.cli("tokens", "import")
    a.start()
    H.check("claimed 1 sessions stored before claims" in a.log_text(), a.log_text()[-2000:])
    b = second_receiver(server, a)
    other = U.make_session("site-a", P.make_log(random.Random(40), 25), sid=s.id)
    status, body = upload_status(b, other, signer=a.signer)
    H.check(status == 409, f"other content under A's old id on B: {status} {body}")
    status, body = upload_status(b, s, signer=a.signer)
    H.check(status == 200 and body["duplicate"], f"the same content on B: {status} {body}")
    a.stop()
    a.start()
    H.check(a.log_text().count("claimed 1 sessions stored before claims") == 1, "claimed once, not at every start")
    stop_all(server, a, b)


def test_embedded_again_with_shared_rows():
    """A receiver moved back to the embedded queue treats rows left "claiming" or "foreign" as its
    own: a retried upload is a duplicate that is queued (it crashed on a missing bucket before)."""
    server, a, b = two_receivers()
    s = U.make_session("site-a", P.make_log(random.Random(38), 20), identity="back-1")
    status, body = upload_status(a, s)
    H.check(status == 201, f"upload to A: {status} {body}")
    stop_all(server, a, b)
    set_status(a, s.id, "claiming")
    edit_config(a, "backend = jetstream", "backend = embedded")
    a.start()
    status, body = upload_status(a, s)
    H.check(status == 200 and body["duplicate"], f"retried upload on the embedded queue: {status} {body}")
    H.check(depth(a) == 1, f"queued on the embedded queue: {depth(a)}")
    H.check(a.stop() == 0, a.log_text()[-2000:])


def test_concurrent_uploads_to_both():
    """The same id sent to A and B at the same instant: the claim decides, so one answers 201 and the
    other 200 (same content) or 409 (other content), and the queue holds each id once."""
    server, a, b = two_receivers()
    rng = random.Random(35)
    rounds = 12
    for i in range(rounds):
        same = i % 2 == 0
        s1 = U.make_session("site-a", P.make_log(rng, 15), identity=f"race-{i}")
        s2 = s1 if same else U.make_session("site-a", P.make_log(rng, 16), sid=s1.id)
        results = {}
        barrier = threading.Barrier(2)

        def send(name, rx, sess):
            barrier.wait()
            results[name] = upload_status(rx, sess, signer=a.signer)

        threads = [threading.Thread(target=send, args=("a", a, s1)), threading.Thread(target=send, args=("b", b, s2))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(r[0] for r in results.values())
        H.check(statuses == ([200, 201] if same else [201, 409]), f"round {i} ({'same' if same else 'other'} "
                f"content): {results}")
        winner = next(n for n, r in results.items() if r[0] == 201)
        want = (s1 if winner == "a" else s2).body
        for rx in (a, b):
            status, _, data = rx.get(f"/v1/sessions/{s1.id}", a.read_token)
            H.check(status == 200 and json.loads(data)["receiver"] == f"http://rx-{winner}.invalid:8440",
                    f"round {i}: both name the winner: {data}")
        holder = a if winner == "a" else b
        H.check(holder.export(s1.id) == want, f"round {i}: the winner's content is the one stored")
    H.check(depth(a) == rounds, f"each id queued once: {depth(a)}")
    for rx in (a, b):
        H.check(all(st in ("queued", "foreign") for _, st, _ in rx.index_rows()), f"settled rows: {rx.index_rows()}")
    stop_all(server, a, b)


def test_nats_down():
    server, a, b = two_receivers()
    rng = random.Random(33)
    s = U.make_session("site-a", P.make_log(rng, 10), identity="down-1")
    H.check(upload_status(a, s)[0] == 201, "stored before the outage")

    server.kill()
    H.wait_for(lambda: "JetStream unreachable: keeping the last known" in a.log_text(),
               "A to say it keeps its tables", timeout=15)
    status, _, _ = a.get(f"/v1/sessions/{s.id}", a.read_token)
    H.check(status == 200, f"A still knows its tokens while NATS is down: {status}")
    H.check(a.get(f"/v1/sessions/{s.id}", "not-a-token")[0] == 401, "and still refuses unknown ones")

    t0 = time.time()
    H.check(b.stop() == 0, b.log_text()[-2000:])
    H.check(time.time() - t0 < 5, f"a stop while NATS is away waits no request timeouts: {time.time() - t0:.1f}s")
    try:
        b.start()
        started = True
    except AssertionError:
        started = False
    H.check(not started, "B must not start without JetStream")
    log = b.log_text()
    H.check("NATS" in log or "JetStream" in log, f"B says why: {log[-1500:]}")

    server.start()
    server.wait_healthy()
    b.start()
    H.wait_for(lambda: a.get(f"/v1/sessions/{s.id}", a.read_token)[0] == 200, "A serving", timeout=10)
    status, _, data = b.get(f"/v1/sessions/{s.id}", a.read_token)
    H.check(status == 200 and json.loads(data)["receiver"] == "http://rx-a.invalid:8440",
            f"B reads the session index once NATS is back: {status} {data}")
    stop_all(server, a, b)


def test_import_files():
    server = lfnats.NatsServer().start().wait_healthy()
    rx = U.Receiver(extra_config=js_conf(server, "rx-i"), start=False)
    rx.import_shared = False
    H.check(rx.cli("sites", "list", "--json").count("site-a") == 0, "the bucket starts empty")
    out = rx.cli("sites", "import")
    H.check(out.startswith("1 sites copied"), out)
    out = rx.cli("sites", "import")
    H.check(out.startswith("0 sites copied") and "1 already there" in out, out)
    out = rx.cli("tokens", "import")
    H.check(out.startswith("3 tokens copied"), out)
    H.check(sorted(rx.cli("tokens", "list").split()) == sorted(["admin1", "admin", "reader1", "read", "worker1",
                                                                "worker"]), "the three tokens")
    rx.start()
    s = U.make_session("site-a", P.make_log(random.Random(34), 10), identity="imp-1")
    H.check(upload_status(rx, s)[0] == 201, "the imported site uploads")
    H.check(rx.get(f"/v1/sessions/{s.id}", rx.read_token)[0] == 200, "the imported token reads")
    # a receiver with a token key of its own cannot check the tokens made under another: it leaves
    # them out and says why
    other = U.Receiver(extra_config=js_conf(server, "rx-j"), start=False)
    other.import_shared = False
    other.start()
    H.check(other.get(f"/v1/sessions/{s.id}", rx.read_token)[0] == 401, "a hash of another key matches nothing")
    H.check("made under another token key" in other.log_text(), other.log_text()[-2000:])
    H.check(other.stop() == 0, other.log_text()[-2000:])
    p = U.Receiver(start=False).cli_run("sites", "import")
    H.check(p.returncode == 2, f"import needs backend = jetstream: {p.returncode}")
    stop_all(server, rx)


if __name__ == "__main__":
    H.check(not lfnats.missing(), f"nats-server: {lfnats.missing()}")
    H.run_tests([test_sites_and_tokens_shared, test_session_index_shared, test_claims_are_recognised_under_a_new_name,
                 test_rows_from_before_claims_are_claimed, test_embedded_again_with_shared_rows,
                 test_concurrent_uploads_to_both,
                 test_nats_down, test_import_files])
