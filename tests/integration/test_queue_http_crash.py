"""Issue 3's crash test over HTTP: SIGKILL the receiver at random moments, hundreds of times, while
producers send (signed uploads of small sessions: a 2xx is an acknowledged send, and each stored
upload enqueues its session id on "sessions") and consumers receive and ack over HTTP with a short
visibility. At the end the receiver is restarted cleanly and the queue drained. Checks, exactly:

1. every send acknowledged to its producer is delivered (during the run or the drain);
2. nothing is delivered again after its ack was acknowledged, unless the acked delivery's visibility
   had run out before the ack was sent (then the ack may still have been accepted as "acked" or
   turned "stale", and a redelivery is allowed);
3. every delivery not acked comes back, and not before its visibility deadline; a delivery whose ack
   was sent but whose answer was cut off by the kill may or may not come back.

Signing uses libsodium through ctypes (the logferry-sign subprocess per upload would dominate a
50-300 ms cycle). CYCLES (default 200), SEED can be set in the environment.
Run: LF_BUILD_DIR=build/qc python3 tests/integration/test_queue_http_crash.py"""
import base64
import ctypes
import ctypes.util
import hashlib
import http.client
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import lfharness as H  # noqa: E402
import lfupload as U  # noqa: E402

check = H.check
CYCLES = int(os.environ.get("CYCLES", "200"))
SEED = int(os.environ.get("SEED", "4242"))
PRODUCERS = 3
CONSUMERS = 2
VIS_S = 3
CLOCK_SLACK_MS = 50  # the receiver's persisted clock vs ours: same host, rounding only


class FastSigner:
    """Ed25519 over METHOD\\nPATH\\nTS\\nhex(BLAKE2b-256(body)) as lf_sign.h specifies, via libsodium."""

    def __init__(self, sk_path, site):
        name = ctypes.util.find_library("sodium") or "libsodium.so.23"
        self.lib = ctypes.CDLL(name)
        check(self.lib.sodium_init() >= 0, "sodium_init")
        with open(sk_path) as f:
            self.sk = base64.b64decode(f.read().strip())
        check(len(self.sk) == 64, "secret key length")
        self.site = site

    def header(self, method, path, body):
        ts = int(time.time())
        msg = f"{method}\n{path}\n{ts}\n{hashlib.blake2b(body, digest_size=32).hexdigest()}".encode()
        sig = ctypes.create_string_buffer(64)
        rc = self.lib.crypto_sign_detached(sig, None, msg, ctypes.c_ulonglong(len(msg)), self.sk)
        check(rc == 0, "crypto_sign_detached")
        return f'Ferry-Ed25519 site="{self.site}", ts="{ts}", sig="{base64.b64encode(sig.raw).decode()}"'


class Log:
    """Everything the clients saw, with our wall-clock ms."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent_ok = {}       # session id -> time the 2xx came back
        self.send_tries = 0
        self.deliveries = []    # (qid, sid, receipt, t_req_ms, t_resp_ms, visible_at_ms)
        self.ack_ok = {}        # receipt -> (qid, t_req_ms, t_resp_ms)   answer said "acked"
        self.ack_stale = set()  # receipts answered "stale"
        self.ack_cut = set()    # receipts whose ack was sent but no answer came back


def now_ms():
    return int(time.time() * 1000)


def post_json(conn, path, obj, token):
    body = json.dumps(obj).encode()
    conn.request("POST", path, body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    r = conn.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


def consume_once(conn, token, log, vis_s, wait_s=0, ack_prob=0.85, rng=None):
    """One receive, then an ack of most of what came back. Returns the number of messages received.
    Exceptions (the receiver died) propagate after recording what was learned."""
    t_req = now_ms()
    st, js = post_json(conn, "/v1/queues/sessions/receive", {"max": 10, "wait_s": wait_s, "visibility_s": vis_s},
                       token)
    t_resp = now_ms()
    if st != 200:
        raise ConnectionError(f"receive {st} {js}")
    msgs = js["messages"]
    with log.lock:
        for m in msgs:
            log.deliveries.append((m["id"], m["body"], m["receipt"], t_req, t_resp, m["visible_at_ms"]))
    to_ack = [m for m in msgs if rng is None or rng.random() < ack_prob]
    if not to_ack:
        return len(msgs)
    receipts = [m["receipt"] for m in to_ack]
    qids = {m["receipt"]: m["id"] for m in to_ack}
    t_req = now_ms()
    with log.lock:
        log.ack_cut.update(receipts)
    st, js = post_json(conn, "/v1/queues/sessions/ack", {"receipts": receipts}, token)
    t_resp = now_ms()
    if st != 200:
        raise ConnectionError(f"ack {st} {js}")
    with log.lock:
        for rcpt, res in zip(receipts, js["results"]):
            log.ack_cut.discard(rcpt)
            if res == "acked":
                log.ack_ok[rcpt] = (qids[rcpt], t_req, t_resp)
            else:
                log.ack_stale.add(rcpt)
    return len(msgs)


def run_cycle(rx, signer, next_session, log, rng, duration_s):
    stop = threading.Event()

    def producer(seed):
        conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=5)
        try:
            while not stop.is_set():
                with log.lock:
                    i = next_session[0]
                    next_session[0] += 1
                    log.send_tries += 1
                s = U.make_session("site-a", f"message {i} {seed}\n".encode() * 3, identity=f"m{i}")
                path = f"/v1/sessions/{s.id}"
                conn.request("PUT", path, s.body, {"Content-Type": "application/zip",
                                                   "Authorization": signer.header("PUT", path, s.body)})
                r = conn.getresponse()
                r.read()
                t = now_ms()
                if 200 <= r.status < 300:
                    with log.lock:
                        log.sent_ok[s.id] = t
                elif r.status not in (429, 503):
                    raise AssertionError(f"upload answered {r.status}")
        except (OSError, http.client.HTTPException):
            pass  # the kill
        finally:
            conn.close()

    def consumer(seed):
        crng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=5)
        try:
            while not stop.is_set():
                if consume_once(conn, rx.worker_token, log, VIS_S, rng=crng) == 0:
                    time.sleep(0.01)
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    threads = [threading.Thread(target=producer, args=(rng.random(),)) for _ in range(PRODUCERS)]
    threads += [threading.Thread(target=consumer, args=(rng.random(),)) for _ in range(CONSUMERS)]
    for t in threads:
        t.start()
    time.sleep(duration_s)
    rx.proc.kill()  # SIGKILL
    rx.proc.wait()
    rx.proc = None
    stop.set()
    for t in threads:
        t.join(10)
        check(not t.is_alive(), "client thread stuck after the kill")


def drain(rx, log, max_s=60):
    """Clean restart; receive and ack everything until the queue is empty (in-flight ones come back
    after their visibility). Everything received here is acked."""
    conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=10)
    deadline = time.time() + max_s
    while time.time() < deadline:
        n = consume_once(conn, rx.worker_token, log, VIS_S, wait_s=1, rng=None)
        if n:
            continue
        st, _, data = H.http("GET", rx.port, "/v1/queues/sessions", None,
                             {"Authorization": f"Bearer {rx.admin_token}"})
        check(st == 200, f"stats {st}")
        s = json.loads(data)
        if s["depth"] == 0 and s["in_flight"] == 0 and s["delayed"] == 0:
            conn.close()
            return s
    raise AssertionError("queue not drained in time")


def verify(log, stats):
    delivered_sids = {d[1] for d in log.deliveries}
    lost = [sid for sid in log.sent_ok if sid not in delivered_sids]
    check(not lost, f"{len(lost)} acknowledged sends never delivered, e.g. {lost[:3]}")
    check(stats["dlq_depth"] == 0, f"dead letters: {stats}")

    by_qid = {}
    for d in log.deliveries:
        by_qid.setdefault(d[0], []).append(d)
    # 2. after an acknowledged ack, no delivery (unless the acked receipt had expired before the ack)
    again = 0
    for rcpt, (qid, t_ack_req, t_ack_resp) in log.ack_ok.items():
        acked = [d for d in by_qid[qid] if d[2] == rcpt]
        check(len(acked) == 1, f"ack of a receipt never delivered: {rcpt}")
        if acked[0][5] <= t_ack_req + CLOCK_SLACK_MS:
            continue
        later = [d for d in by_qid[qid] if d[3] > t_ack_resp]
        again += len(later)
        check(not later, f"message {qid} delivered again at {[d[3] for d in later]} after its ack was "
                         f"acknowledged at {t_ack_resp} (visible_at {acked[0][5]})")
    # 3. every unacked delivery comes back, not before its visibility deadline
    came_back = ambiguous = 0
    for qid, ds in by_qid.items():
        ds.sort(key=lambda d: d[4])
        for i, d in enumerate(ds):
            rcpt = d[2]
            if rcpt in log.ack_ok:
                continue
            nxt = ds[i + 1] if i + 1 < len(ds) else None
            if rcpt in log.ack_cut:
                ambiguous += 1
                if nxt is None:
                    continue
            check(nxt is not None, f"message {qid} delivered at {d[4]} (receipt {rcpt}) never acked and never "
                                   f"came back")
            check(nxt[4] + CLOCK_SLACK_MS >= d[5], f"message {qid} came back at {nxt[4]}, before its visibility "
                                                   f"deadline {d[5]}")
            came_back += 1
    # each message ends acked exactly once in the drain or run (or its ack was cut off)
    for qid, ds in by_qid.items():
        last = ds[-1]
        check(last[2] in log.ack_ok or last[2] in log.ack_cut, f"message {qid}: last delivery not acked")
    return came_back, ambiguous


def test_sigkill_cycles():
    rng = random.Random(SEED)
    rx = U.Receiver(start=False, extra_config="[queue]\nmax_receives = 1000\n")
    signer = FastSigner(rx.signer.sk_path, rx.site)
    next_session = [0]
    log = Log()
    start_times = []
    t0 = time.time()
    for c in range(CYCLES):
        ts = time.time()
        rx.start()
        start_times.append(time.time() - ts)
        run_cycle(rx, signer, next_session, log, rng, rng.uniform(0.05, 0.3))
    t_cycles = time.time() - t0
    rx.start()
    stats = drain(rx, log)
    came_back, ambiguous = verify(log, stats)
    rx.stop()
    start_times.sort()
    print(f"{CYCLES} SIGKILLs in {t_cycles:.1f}s (receiver start median {start_times[len(start_times) // 2] * 1000:.0f} ms, "
          f"max {start_times[-1] * 1000:.0f} ms); sends tried {log.send_tries}, acknowledged {len(log.sent_ok)}; "
          f"deliveries {len(log.deliveries)} of {len({d[0] for d in log.deliveries})} messages; acks acknowledged "
          f"{len(log.ack_ok)}, stale {len(log.ack_stale)}, cut off by the kill {len(log.ack_cut)}; unacked deliveries "
          f"that came back {came_back}; ambiguous (ack cut off) {ambiguous}")
    check(len(log.sent_ok) >= CYCLES, f"too little traffic: {len(log.sent_ok)} acknowledged sends")
    check(came_back > 0, "no unacked delivery was exercised")


if __name__ == "__main__":
    H.run_tests([test_sigkill_cycles])
