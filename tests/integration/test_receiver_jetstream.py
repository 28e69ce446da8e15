"""The receiver on the JetStream backend (`[queue] backend = jetstream`): a real nats-server, the real
receiver and parser, a real MariaDB.

1. Sessions uploaded through the receiver are published to JetStream and parsed into MySQL exactly
   once; a repeated upload publishes again (deduplicated by the stream); the queue's statistics come
   from JetStream through GET /v1/queues/{q} and `queue stats`; receive answers 409.
2. A publish that fails (LF_FAIL_PUBLISH) answers 503, never 2xx; the receiver is then SIGKILLed with
   the session stored but not acknowledged, and its restart (recovery.c) publishes it.
   Without a restart, the periodic sweep publishes it.
3. nats-server SIGKILLed and restarted while uploads run: /healthz is degraded, every upload is
   retried until 2xx, and every session ends in MySQL exactly once.
4. The monitor's queue check on the receiver's statistics is ok, then fires on a dead letter; the
   dead letter shows in `queue peek`, and is redriven through POST /v1/queues/{q}/redrive and
   `queue redrive`; `queue check` reports the streams healthy.
5. --check-config checks the CA and nkey seed files of [queue]."""
import os
import random
import re
import subprocess
import threading
import time

import lfharness as H
import lfhosts
import lfmariadb
import lfnats
import lfparser as P
import lfupload as U


def js_conf(server, extra=""):
    return f"[queue]\nbackend = jetstream\nservers = {server.url()}\n{extra}"


def count_sessions(db, ids):
    if not ids:
        return {}
    inlist = ",".join(f"'{i}'" for i in ids)
    if db.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='logferry' AND "
                "table_name='sessions'") != [["1"]]:
        return {}  # the parser has not created its tables yet
    rows = db.query(f"SELECT session_id, COUNT(*) FROM sessions WHERE session_id IN ({inlist}) GROUP BY session_id",
                    "logferry")
    return {r[0]: int(r[1]) for r in rows}


def wait_all_loaded(db, ids, parser, rx, timeout=120):
    try:
        H.wait_for(lambda: len(count_sessions(db, ids)) == len(ids), f"{len(ids)} sessions loaded", timeout=timeout)
    except H.TestFailure as e:
        missing = sorted(set(ids) - set(count_sessions(db, ids)))
        rows = {r[0]: r[1] for r in rx.index_rows()}
        raise H.TestFailure(f"{e}; missing {[(m, rows.get(m)) for m in missing]}; queue {stats(rx)}; "
                            f"parser log: {parser.log_text()[-3000:]}")
    counts = count_sessions(db, ids)
    H.check(all(c == 1 for c in counts.values()), f"exactly one copy each: {counts}")


def upload_until_2xx(rx, s, timeout=90):
    """Retries as an uploader does; the statuses seen on the way."""
    seen = []
    deadline = time.time() + timeout
    while True:
        try:
            status, body, _ = rx.upload(s, timeout=15)
        except OSError as e:
            status, body = None, str(e)
        seen.append(status)
        if status in (200, 201):
            return seen
        H.check(status in (None, 503), f"upload {s.id}: {status} {body}")
        H.check(time.time() < deadline, f"upload {s.id} never got a 2xx: {seen}")
        time.sleep(0.2)


def make_parser(server, rx, db):
    # the receiver's URL is written into its configuration: made after any receiver restart
    return P.Parser(rx, db, workers=2, extra=js_conf(server, "max_receives = 2\n"))


def setup(rx_extra="", rx_env=None):
    H.check(not lfnats.missing(), f"nats-server: {lfnats.missing()}")
    server = lfnats.NatsServer().start().wait_healthy()
    db = lfmariadb.scratch_server()
    rx = U.Receiver(extra_config=js_conf(server, rx_extra), env=rx_env)
    return server, db, rx, make_parser(server, rx, db)


def stats(rx):
    status, _, data = rx.get("/v1/queues/sessions", rx.read_token)
    H.check(status == 200, f"stats: {status} {data}")
    import json
    return json.loads(data)


def test_uploads_parsed_once():
    server, db, rx, parser = setup()
    rng = random.Random(21)
    sessions = [U.make_session(rx.site, P.make_log(rng, 30), identity=f"js-{i}") for i in range(20)]
    for s in sessions:
        status, body, _ = rx.upload(s)
        H.check(status == 201, f"upload: {status} {body}")
    st = stats(rx)
    H.check(st["exists"] and st["depth"] == 20, f"20 sessions waiting on JetStream: {st}")
    cli = rx.cli("queue", "stats", "sessions")
    H.check("depth 20," in cli, f"queue stats: {cli}")
    status, body, _ = rx.upload(sessions[0])
    H.check(status == 200 and body["duplicate"], f"re-upload: {status} {body}")
    H.check(stats(rx)["depth"] == 20, "the re-publish was deduplicated by the stream")
    status, body = rx.post("/v1/queues/sessions/receive", {"max": 1}, rx.worker_token)
    H.check(status == 409 and body["error"] == "wrong_backend", f"receive on jetstream: {status} {body}")

    parser.start()
    ids = [s.id for s in sessions]
    wait_all_loaded(db, ids, parser, rx)
    H.wait_for(lambda: stats(rx)["depth"] == 0 and stats(rx)["in_flight"] == 0, "the queue to drain", timeout=30)
    H.wait_for(lambda: all(r[1] == "queued" for r in rx.index_rows()), "every row marked queued", timeout=10)
    H.check(parser.stop() == 0, parser.log_text()[-2000:])
    H.check(rx.stop() == 0, rx.log_text()[-2000:])
    server.stop()


def test_publishes_past_max_publishes_wait_their_turn():
    """More stored sessions than [queue] max_publishes at once: the rest wait for a free publish (no
    thread held) and every upload is answered 201, none 503 busy."""
    server, db, rx, _ = setup(rx_extra="max_publishes = 1\n")
    rng = random.Random(25)
    sessions = [U.make_session(rx.site, P.make_log(rng, 20), identity=f"js-wait-{i}") for i in range(24)]
    statuses = []
    lock = threading.Lock()

    def send(chunk):
        for s in chunk:
            st, body, _ = rx.upload(s, timeout=60)
            with lock:
                statuses.append((st, body.get("error") if isinstance(body, dict) else body))

    threads = [threading.Thread(target=send, args=(sessions[i::12],)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    H.check(sorted(st for st, _ in statuses) == [201] * 24, f"every upload stored and queued: {statuses}")
    H.check(stats(rx)["depth"] == 24, f"24 on JetStream: {stats(rx)}")
    H.check(rx.stop() == 0, rx.log_text()[-2000:])
    server.stop()


def test_failed_publish_repaired_at_restart():
    server, db, rx, _ = setup(rx_extra="republish_interval = 1h\n", rx_env={"LF_FAIL_PUBLISH": "1"})
    rng = random.Random(22)
    s = U.make_session(rx.site, P.make_log(rng, 30), identity="js-crash")
    status, body, hdrs = rx.upload(s)
    H.check(status == 503 and body["error"] == "queue_unavailable", f"failed publish: {status} {body}")
    H.check(rx.metric('lf_receiver_rejections_total{reason="queue_unavailable"}') == 1 and
            rx.metric('lf_receiver_rejections_total{reason="storage_error"}') == 0,
            "a failed publish is counted as the queue's failure, not the store's")
    rows = {r[0]: r[1] for r in rx.index_rows()}
    H.check(rows[s.id] == "stored", f"stored, not queued: {rows}")
    H.check(stats(rx)["depth"] == 0, "nothing reached JetStream")
    rx.kill()  # crash with the session stored but never acknowledged
    rx.env = {}
    rx.start()
    H.wait_for(lambda: stats(rx)["depth"] == 1, "recovery to publish the session", timeout=20)
    H.check({r[0]: r[1] for r in rx.index_rows()}[s.id] == "queued", "marked queued by recovery")
    parser = make_parser(server, rx, db)
    parser.start()
    wait_all_loaded(db, [s.id], parser, rx)
    status, body, _ = rx.upload(s)
    H.check(status == 200, f"the uploader's retry: {status} {body}")
    H.check(parser.stop() == 0, parser.log_text()[-2000:])
    H.check(rx.stop() == 0, rx.log_text()[-2000:])
    server.stop()


def test_sweep_publishes_what_was_never_acknowledged():
    server, db, rx, parser = setup(rx_extra="republish_interval = 1s\n", rx_env={"LF_FAIL_PUBLISH": "1"})
    s = U.make_session(rx.site, P.make_log(random.Random(24), 30), identity="js-sweep")
    status, body, _ = rx.upload(s)
    H.check(status == 503, f"failed publish: {status} {body}")
    H.wait_for(lambda: {r[0]: r[1] for r in rx.index_rows()}[s.id] == "queued", "the sweep to publish it", timeout=20)
    H.check(stats(rx)["depth"] == 1, "on JetStream once")
    H.wait_for(lambda: rx.metric("lf_receiver_sessions_queue_depth") == 1, "the depth gauge", timeout=10)
    parser.start()
    wait_all_loaded(db, [s.id], parser, rx)
    H.check(parser.stop() == 0, parser.log_text()[-2000:])
    H.check(rx.stop() == 0, rx.log_text()[-2000:])
    server.stop()


def test_nats_killed_during_uploads():
    server, db, rx, parser = setup()
    parser.start()
    rng = random.Random(23)
    sessions = [U.make_session(rx.site, P.make_log(rng, 20), identity=f"js-kill-{i}") for i in range(80)]
    # one more, uploaded by the test itself while nats-server is down: the uploader threads may all be
    # through before the kill on a fast machine, and the refusal must not depend on that race
    late = U.make_session(rx.site, P.make_log(rng, 20), identity="js-kill-late")
    # the parser is consuming (not still starting) before the server goes: this is about the receiver
    first = sessions[:5]
    for s in first:
        upload_until_2xx(rx, s)
    wait_all_loaded(db, [s.id for s in first], parser, rx)
    results = {}
    errors = []

    def uploader(part):
        for s in part:
            try:
                results[s.id] = upload_until_2xx(rx, s)
            except AssertionError as e:
                errors.append(str(e))

    rest = sessions[5:]
    threads = [threading.Thread(target=uploader, args=(rest[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    H.wait_for(lambda: len(results) >= 10, "some uploads through", timeout=60)
    server.kill()
    H.wait_for(lambda: b"JetStream unreachable" in H.http("GET", rx.port, "/healthz")[2], "/healthz degraded",
               timeout=30)
    # until it is back, uploads get 503 (the receiver answers no 2xx without a PubAck) and are retried
    st, body, _ = rx.upload(late, timeout=15)
    H.check(st == 503, f"an upload while nats-server is down: {st} {body}")
    H.wait_for(lambda: rx.metric('lf_receiver_rejections_total{reason="queue_unavailable"}') or
               rx.metric('lf_receiver_uploads_total{outcome="failed"}'), "the refusal counted", timeout=10)
    server.start().wait_healthy()
    for t in threads:
        t.join(300)
    H.check(not errors, f"uploads: {errors[:3]}")
    H.check(len(results) == len(rest), f"{len(results)} of {len(rest)} uploads got a 2xx")
    upload_until_2xx(rx, late)
    wait_all_loaded(db, [s.id for s in sessions + [late]], parser, rx, timeout=180)
    H.check(parser.stop() == 0, parser.log_text()[-2000:])
    H.check(rx.stop() == 0, rx.log_text()[-2000:])
    server.stop()


class Monitor:
    """logferry-monitor with one queue check on the receiver's GET /v1/queues/sessions."""

    def __init__(self, rx):
        self.dir = H.scratch_dir("lfmon-")
        self.conf = os.path.join(self.dir, "monitor.conf")
        with open(self.conf, "w") as f:
            f.write(f"""[log]
level = debug
[http]
listen = 127.0.0.1:0
port_file = {self.dir}/monitor.port
[slack]
webhook_url = http://127.0.0.1:9/services/T0TEST/B0TEST/unused
[monitor]
state_dir = {self.dir}/state
host = js-test
group_window = 0
[check.receiver_queue]
kind = queue
url = http://127.0.0.1:{rx.port}/v1/queues/sessions
token = {rx.read_token}
max_depth = 1000
max_dlq_depth = 0
interval = 1s
timeout = 800ms
pending_count = 1
reminder_every = 1h
flap_changes = 0
""")
        self.proc_log = os.path.join(self.dir, "monitor.log")
        self.proc = H.start([H.binary("logferry-monitor"), "--config", self.conf], log_path=self.proc_log)

    def status(self):
        p = subprocess.run([H.binary("logferry-monitor"), "--config", self.conf, "status"], capture_output=True,
                           timeout=30)
        return p.stdout.decode() + p.stderr.decode()

    def stop(self):
        return H.stop(self.proc)


def test_dead_letters_through_the_receiver():
    from test_parser_jetstream import Nats  # the test's own NATS protocol client
    server, db, rx, parser = setup()
    mon = Monitor(rx)
    # on a timeout, say what the monitor said: its start once failed on a locked database
    # (monitor/outbox.c), and a status of "no check has run yet" alone does not tell that
    seen = {}

    def queue_check_ok():
        seen["status"] = mon.status()
        return re.search(r"receiver_queue +ok", seen["status"])
    try:
        H.wait_for(queue_check_ok, "the monitor's queue check ok", timeout=90)
    except H.TestFailure as e:
        raise H.TestFailure(f"{e}; last status:\n{seen.get('status')}\nmonitor log ends:\n"
                            f"{lfhosts.tail(mon.proc_log)}") from None
    client = Nats(server.port)
    H.check(client.publish_session("not-a-session-id") is not None, "poison published")
    parser.start()
    H.wait_for(lambda: stats(rx)["dlq_depth"] == 1, "the poison message dead-lettered", timeout=60)
    H.wait_for(lambda: re.search(r"receiver_queue +firing", mon.status()),
               "the monitor's queue check to fire on the dead letter", timeout=90)
    mon.stop()
    peek = rx.cli("queue", "peek")
    H.check("not-a-session-id" in peek and "max_receives" in peek, f"queue peek: {peek}")
    check = rx.cli("queue", "check")
    H.check(check.strip() == "ok", f"queue check: {check}")
    status, body = rx.post("/v1/queues/sessions/redrive", {}, rx.worker_token)
    H.check(status == 403, f"redrive needs the admin scope: {status} {body}")
    status, body = rx.post("/v1/queues/sessions/redrive", {}, rx.admin_token)
    H.check(status == 200 and body == {"moved": 1}, f"redrive: {status} {body}")
    # delivered again, it fails again and comes back
    H.wait_for(lambda: stats(rx)["dlq_depth"] == 1, "dead-lettered again",
               timeout=60)
    out = rx.cli("queue", "redrive")
    H.check("moved 1 " in out, f"queue redrive: {out}")
    H.check(parser.stop() == 0, parser.log_text()[-2000:])
    H.check(rx.stop() == 0, rx.log_text()[-2000:])
    server.stop()


def test_check_config_reads_the_jetstream_files():
    conf = ("[queue]\nbackend = jetstream\nservers = nats://127.0.0.1:4222\nca_file = /nonexistent/ca.pem\n"
            "nkey = UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4\nnkey_seed_file = /nonexistent/seed\n")
    rx = U.Receiver(extra_config=conf, start=False)
    p = rx.cli_run("--check-config")
    err = p.stderr.decode()
    H.check(p.returncode != 0 and "ca_file" in err and "nkey_seed_file" in err, f"--check-config: {p.returncode} {err}")
    ok = U.Receiver(extra_config="[queue]\nbackend = jetstream\nservers = nats://127.0.0.1:4222\n", start=False)
    p = ok.cli_run("--check-config")
    H.check(p.returncode == 0, f"--check-config without files: {p.returncode} {p.stderr.decode()}")


if __name__ == "__main__":
    H.run_tests([test_uploads_parsed_once, test_publishes_past_max_publishes_wait_their_turn,
                 test_failed_publish_repaired_at_restart,
                 test_sweep_publishes_what_was_never_acknowledged, test_nats_killed_during_uploads,
                 test_dead_letters_through_the_receiver, test_check_config_reads_the_jetstream_files])
