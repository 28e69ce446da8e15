"""kill -9 of logferry-receiver at random moments (design invariant 1 and the queue's at-least-once):

1. Concurrent uploads, receiver killed at a random delay, restarted: every upload that got a 2xx is
   stored (export == uploaded bytes) and queued exactly once, and after the restart no indexed
   session is left unqueued (recovery completes half-done uploads).
2. Uploads (producer) and HTTP receive/ack (consumer) running while the receiver is killed: every
   acknowledged send is eventually delivered; a message whose ack was acknowledged is never delivered
   again; a delivered but unacked message comes back after its visibility timeout.

Run: LF_BUILD_DIR=build/r1 python3 tests/integration/test_receiver_crash.py
ROUNDS (default 40) and UPLOADERS (16) can be set in the environment."""
import collections
import json
import os
import random
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import lfharness as H  # noqa: E402
import lfupload as U  # noqa: E402

check = H.check
ROUNDS = int(os.environ.get("ROUNDS", "40"))
UPLOADERS = int(os.environ.get("UPLOADERS", "16"))


def queued_receives(rx, queue):
    """(session id, receive count) of every message on queue, from `queue peek`."""
    out = rx.cli("queue", "peek", queue, "1000")
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5:
            found.append((parts[-1], int(parts[2].removeprefix("receives="))))
    return found


def queued_ids(rx):
    return [sid for sid, _ in queued_receives(rx, "sessions")]


def test_kill_during_uploads():
    rx = U.Receiver(start=False)
    rng = random.Random(int(os.environ.get("SEED", "1234")))
    acked = {}  # id -> body
    t_end = time.time() + 100
    rounds = 0
    for rnd in range(ROUNDS):
        if time.time() > t_end:
            break
        rounds += 1
        sessions = []
        for i in range(UPLOADERS):
            size = rng.choice([200, 5000, 60000, 300000])
            log = (f"round {rnd} uploader {i} ".encode() * (size // 24 + 1))[:size]
            s = U.make_session("site-a", log, identity=f"r{rnd}u{i}")
            path = f"/v1/sessions/{s.id}"
            sessions.append((s, rx.signer.header("PUT", path, s.body)))
        rx.start()
        results = {}

        def upload(s, auth):
            try:
                st, js, _ = rx.upload(s, signer=False, headers={"Authorization": auth}, timeout=10)
                results[s.id] = st
            except Exception as e:  # connection reset by the kill
                results[s.id] = repr(e)

        threads = [threading.Thread(target=upload, args=sa) for sa in sessions]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.0, 0.25))
        rx.kill()
        for t in threads:
            t.join(15)
        for s, _ in sessions:
            if results.get(s.id) in (200, 201):
                acked[s.id] = s.body
    # restart: recovery runs before listening
    rx.start()
    rx.stop()
    rows = rx.index_rows()
    check(all(st == "queued" for _, st, _ in rows), f"unqueued rows after recovery: {[r for r in rows if r[1] != 'queued']}")
    q = queued_ids(rx)
    check(len(q) == len(set(q)), "a session queued twice")
    indexed = {r[0] for r in rows}
    check(set(q) == indexed, f"queue and index differ: {len(set(q) ^ indexed)}")
    for sid, body in acked.items():
        check(sid in indexed, f"acknowledged {sid} not indexed")
        check(rx.export(sid) == body, f"acknowledged {sid} exports other bytes")
    if rx.backend == "elasticsearch":
        # a complete object is one whose chunk 0 exists (it is written last)
        status, _, data = H.http("GET", rx.es_port, "/_fake/docs")
        docs = [d for idx in json.loads(data)["indices"].values() for d in idx["docs"].values()]
        lfz = sorted({d["session_id"] for d in docs if d.get("chunk") == 0})
    else:
        lfz = [f for f in rx.stored_files() if f.endswith(".lfz")]
    check(len(lfz) == len(indexed), f"{len(lfz)} objects, {len(indexed)} rows")
    print(f"  {rounds} rounds x {UPLOADERS} uploaders: {len(acked)} acknowledged, {len(indexed)} stored "
          f"(the rest were cut by the kill)", flush=True)
    check(len(acked) > 0, "no upload ever succeeded")


def test_kill_during_queue_traffic():
    rx = U.Receiver(start=False)
    rng = random.Random(99)
    produced = set()       # ids whose upload got 2xx
    acked_at = {}          # session id -> time its ack was acknowledged
    deliveries = []        # (time received, session id)
    ack_unknown = set()    # ids in an ack whose answer the kill cut off (may or may not have committed)
    lock = threading.Lock()
    n = 0
    for rnd in range(8):
        rx.start()
        stop = threading.Event()

        def producer(rnd=rnd):
            i = 0
            while not stop.is_set() and i < 200:
                s = U.make_session("site-a", f"queue round {rnd} item {i}\n".encode() * 20, identity=f"q{rnd}-{i}")
                i += 1
                try:
                    st, _, _ = rx.upload(s, timeout=5)
                except Exception:
                    return
                if st in (200, 201):
                    with lock:
                        produced.add(s.id)

        def consumer():
            while not stop.is_set():
                try:
                    st, js = rx.post("/v1/queues/sessions/receive", {"max": 5, "wait_s": 1, "visibility_s": 2},
                                     rx.worker_token, timeout=5)
                except Exception:
                    return
                if st != 200:
                    continue
                now = time.time()
                with lock:
                    deliveries.extend((now, m["body"]) for m in js["messages"])
                # ack most, leave some unacked so they must come back
                keep = [m for m in js["messages"] if rng.random() < 0.7]
                if not keep:
                    continue
                try:
                    st, res = rx.post("/v1/queues/sessions/ack", {"receipts": [m["receipt"] for m in keep]},
                                      rx.worker_token, timeout=5)
                except Exception:
                    with lock:
                        ack_unknown.update(m["body"] for m in keep)
                    return
                if st == 200:
                    t = time.time()
                    with lock:
                        for m, r in zip(keep, res["results"]):
                            if r == "acked":
                                acked_at.setdefault(m["body"], t)

        ts = [threading.Thread(target=producer), threading.Thread(target=consumer)]
        for t in ts:
            t.start()
        time.sleep(rng.uniform(0.3, 1.5))
        rx.kill()
        stop.set()
        for t in ts:
            t.join(10)
        n += 1
    # drain after the last restart: everything unacked comes back once visibility expires
    rx.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        st, js = rx.post("/v1/queues/sessions/receive", {"max": 100, "wait_s": 3, "visibility_s": 60},
                         rx.worker_token, timeout=10)
        check(st == 200, f"drain receive: {st}")
        now = time.time()
        deliveries.extend((now, m["body"]) for m in js["messages"])
        if js["messages"]:
            st, res = rx.post("/v1/queues/sessions/ack", {"receipts": [m["receipt"] for m in js["messages"]]},
                              rx.worker_token)
            t = time.time()
            for m, r in zip(js["messages"], res["results"]):
                if r == "acked":
                    acked_at.setdefault(m["body"], t)
        else:
            _, _, body = rx.get("/v1/queues/sessions", rx.worker_token)
            stats = json.loads(body)
            if stats["depth"] == 0 and stats["in_flight"] == 0 and stats["delayed"] == 0:
                break
    rx.stop()
    # A message received max_receives times without an ack moves to the dead-letter queue instead
    # of coming back: kills cut receive answers too, so a few messages reach that count. That is the
    # queue's contract, so they count as come back, but an acked message is never dead-lettered.
    max_receives = int(re.search(r"^max_receives = (\d+)$", rx.cli("--dump-config"), re.M).group(1))
    dead_counts = dict(queued_receives(rx, "sessions.dlq"))
    check(all(c >= max_receives for c in dead_counts.values()),
          f"dead-lettered before {max_receives} receives: {dead_counts}")
    dead = set(dead_counts)
    check(not dead & set(acked_at), f"acked messages dead-lettered: {sorted(dead & set(acked_at))[:3]}")
    delivered = {sid for _, sid in deliveries}
    missing = produced - delivered
    check(not missing, f"{len(missing)} acknowledged sends never delivered")
    # a delivery whose ack was never acknowledged came back: at the end every delivered id is acked
    unacked = delivered - set(acked_at) - ack_unknown - dead
    check(not unacked, f"{len(unacked)} delivered but never acked messages did not come back: "
          + "; ".join(f"{sid} delivered at {[round(t % 1000, 3) for t, d in deliveries if d == sid]}"
                      for sid in sorted(unacked)[:3]))
    times_delivered = collections.Counter(sid for _, sid in deliveries)
    redelivered = sum(1 for c in times_delivered.values() if c > 1)
    again = [(t, sid) for t, sid in deliveries if sid in acked_at and t > acked_at[sid] + 0.001]
    check(not again, f"delivered again after an acknowledged ack: {again[:3]}")
    print(f"  {n} kills: {len(produced)} acknowledged sends, {len(deliveries)} deliveries, "
          f"{redelivered} messages delivered more than once (unacked or cut by a kill), {len(acked_at)} acked, "
          f"{len(dead)} dead-lettered; messages by times delivered: "
          f"{sorted(collections.Counter(times_delivered.values()).items())}", flush=True)
    check(len(produced) > 0 and len(deliveries) > len(acked_at) - 1, "traffic happened")


if __name__ == "__main__":
    H.run_tests([test_kill_during_uploads, test_kill_during_queue_traffic])
