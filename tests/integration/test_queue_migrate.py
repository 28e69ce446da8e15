"""`logferry-receiver queue migrate`: a receiver's embedded queue moved onto JetStream without losing
a message, by the operator flow (stop the receiver, set [queue] backend = jetstream keeping [queue]
path, and import the sites and tokens into their buckets; migrate; start the receiver; switch the
parsers). A real nats-server, the real receiver and
parser, a real MariaDB.

1. A receiver on the embedded queue holds sessions in every state: visible, in flight (received
   through the queue API by a worker that never acks), delayed (nacked with a delay) and one dead
   letter (received max_receives times). While it runs, migrate is refused and moves nothing.
   Stopped, the migration fails once part-way (LF_FAIL_PUBLISH), is SIGKILLed part-way, then run to
   completion, then run again as a no-op: JetStream then holds each session exactly once and the
   dead letter with its reason; the receiver and a parser on JetStream load every session into
   MySQL exactly once, the dead letter too once redriven.
   Also refused while another process has the stopped receiver's queue store open.
2. With no queue store at [queue] path, or an empty file there, migrate says so and succeeds."""
import os
import random
import re
import sqlite3
import subprocess

import lfharness as H
import lfmariadb
import lfnats
import lfparser as P
import lfupload as U
from test_receiver_jetstream import count_sessions, js_conf, wait_all_loaded

STATS = re.compile(r"depth (\d+), in flight (\d+), delayed (\d+), oldest \d+ ms, dead letters (\d+)")


def queue_figures(rx, conf):
    """(depth, in flight, delayed, dead letters) by `queue stats` under the given configuration."""
    p = subprocess.run([H.binary("logferry-receiver"), "--config", conf, "queue", "stats"], capture_output=True,
                       timeout=60)
    out = p.stdout.decode()
    m = STATS.search(out)
    H.check(p.returncode == 0 and m, f"queue stats: {p.returncode} {out} {p.stderr.decode()}")
    return tuple(int(x) for x in m.groups())


def migrate(rx, env=None):
    p = subprocess.run([H.binary("logferry-receiver"), "--config", rx.conf, "queue", "migrate"], capture_output=True,
                       env={**os.environ, **(env or {})}, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def moved(out):
    m = re.search(r"moved (\d+) messages and (\d+) dead letters from ", out)
    H.check(m, f"migrate printed its totals: {out}")
    return int(m.group(1)), int(m.group(2))


def receive(rx, n, visibility_s):
    status, body = rx.post("/v1/queues/sessions/receive", {"max": n, "wait_s": 0, "visibility_s": visibility_s},
                           rx.worker_token)
    H.check(status == 200, f"receive: {status} {body}")
    return body["messages"]


def nack(rx, receipt, delay_s):
    status, body = rx.post("/v1/queues/sessions/nack", {"receipt": receipt, "delay_s": delay_s}, rx.worker_token)
    H.check(status == 200, f"nack: {status} {body}")


def test_migrate_every_state_once():
    H.check(not lfnats.missing(), f"nats-server: {lfnats.missing()}")
    server = lfnats.NatsServer().start().wait_healthy()
    rx = U.Receiver(extra_config="[queue]\nmax_receives = 2\n")
    rng = random.Random(31)
    dead = U.make_session(rx.site, P.make_log(rng, 20), identity="mig-dead")
    status, body, _ = rx.upload(dead)
    H.check(status == 201, f"upload: {status} {body}")
    for _ in range(2):  # two deliveries (max_receives), both given back: the next receive dead-letters it
        got = receive(rx, 1, 30)
        H.check(len(got) == 1 and got[0]["body"] == dead.id, f"the session to dead-letter: {got}")
        nack(rx, got[0]["receipt"], 0)
    H.check(receive(rx, 1, 30) == [], "dead-lettered instead of delivered a third time")

    sessions = [U.make_session(rx.site, P.make_log(rng, 20), identity=f"mig-{i}") for i in range(24)]
    for s in sessions:
        status, body, _ = rx.upload(s)
        H.check(status == 201, f"upload: {status} {body}")
    held = receive(rx, 5, 3600)  # a worker of the stopped receiver: its receipts will be moot
    H.check(len(held) == 5, f"5 in flight: {held}")
    delayed = receive(rx, 1, 3600)
    nack(rx, delayed[0]["receipt"], 3600)
    embedded = rx.conf + ".embedded"
    with open(rx.conf) as f, open(embedded, "w") as g:
        g.write(f.read())
    H.check(queue_figures(rx, embedded) == (18, 5, 1, 1), f"every state: {queue_figures(rx, embedded)}")

    # step 2 of the flow done too early: the receiver still runs on the embedded queue
    with open(rx.conf, "a") as f:
        f.write(js_conf(server))
    rx.cli("sites", "import")  # on JetStream, sites and tokens are shared buckets
    rx.cli("tokens", "import")
    rc, out, err = migrate(rx)
    print(err.strip())
    H.check(rc != 0 and "in use by another process" in err, f"refused while the receiver runs: {rc} {out} {err}")
    H.check(queue_figures(rx, embedded) == (18, 5, 1, 1), "nothing left the embedded queue")
    H.check(queue_figures(rx, rx.conf) == (0, 0, 0, 0), "nothing reached JetStream")
    H.check(rx.stop() == 0, rx.log_text()[-2000:])
    # stopped, but another process has the queue store open (a WAL connection keeps a shared lock)
    other = sqlite3.connect(os.path.join(rx.dir, "queue.db"))
    H.check(other.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] > 0, "the store read")
    rc, out, err = migrate(rx)
    other.close()
    H.check(rc != 0 and "queue store" in err and "in use by another process" in err, f"refused: {rc} {out} {err}")
    H.check(queue_figures(rx, embedded) == (18, 5, 1, 1), "nothing left the embedded queue")

    # a publish fails part-way: what was acknowledged is gone from the embedded queue, the rest stays
    rc, out, err = migrate(rx, {"LF_FAIL_PUBLISH": "6"})
    H.check(rc != 0 and "LF_FAIL_PUBLISH" in err, f"failed part-way: {rc} {out} {err}")
    H.check(moved(out) == (5, 0), f"5 moved before the failure: {out}")
    H.check(queue_figures(rx, rx.conf)[0] == 5, f"5 on JetStream: {queue_figures(rx, rx.conf)}")
    left = queue_figures(rx, embedded)
    H.check(sum(left[:3]) == 19 and left[3] == 1, f"19 left and the dead letter: {left}")

    # SIGKILL once it has moved something (where exactly it dies is up to the race)
    p = subprocess.Popen([H.binary("logferry-receiver"), "--config", rx.conf, "queue", "migrate"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    for line in p.stdout:
        lines.append(line.decode())
        if "moved so far" in lines[-1]:
            p.kill()
            break
    p.wait()
    p.stdout.close()
    p.stderr.close()
    H.check(any("moved so far" in x for x in lines), f"progress printed: {lines}")
    left = queue_figures(rx, embedded)
    on_js = queue_figures(rx, rx.conf)[0]
    print(f"after SIGKILL: embedded {left}, JetStream depth {on_js} (exit {p.returncode})")
    H.check(sum(left[:3]) < 19, f"the killed run moved something: {left}")
    H.check(sum(left[:3]) + on_js >= 24, f"nothing lost: embedded {left}, JetStream {on_js}")

    rc, out, err = migrate(rx)
    print(out.strip())
    H.check(rc == 0, f"migrate: {rc} {out} {err}")
    H.check(moved(out) == (sum(left[:3]), left[3]), f"the rest moved: {out} (left {left})")
    H.check(queue_figures(rx, embedded) == (0, 0, 0, 0), f"embedded queue empty: {queue_figures(rx, embedded)}")
    H.check(queue_figures(rx, rx.conf) == (24, 0, 0, 1),
            f"each session once on JetStream (repeats deduplicated), the dead letter in its stream: "
            f"{queue_figures(rx, rx.conf)}")
    rc, out, err = migrate(rx)
    H.check(rc == 0 and moved(out) == (0, 0), f"a second run moves nothing: {rc} {out} {err}")
    peek = rx.cli("queue", "peek")
    H.check(dead.id in peek and "embedded queue after max_receives" in peek, f"the dead letter's reason: {peek}")

    # steps 4 and 5: the receiver, then the parsers, on JetStream
    rx.start()
    db = lfmariadb.scratch_server()
    parser = P.Parser(rx, db, workers=2, extra=js_conf(server))
    parser.start()
    ids = [s.id for s in sessions]
    wait_all_loaded(db, ids, parser, rx)
    H.check(dead.id not in count_sessions(db, [dead.id]), "the dead letter stays dead until redriven")
    out = rx.cli("queue", "redrive")
    H.check("moved 1 " in out, f"queue redrive: {out}")
    wait_all_loaded(db, ids + [dead.id], parser, rx)
    H.check(parser.stop() == 0, parser.log_text()[-2000:])
    H.check(rx.stop() == 0, rx.log_text()[-2000:])
    server.stop()


def test_migrate_without_a_queue_store():
    H.check(not lfnats.missing(), f"nats-server: {lfnats.missing()}")
    server = lfnats.NatsServer().start().wait_healthy()
    rx = U.Receiver(extra_config=js_conf(server), start=False)
    H.check(not os.path.exists(os.path.join(rx.dir, "queue.db")), "no queue store yet")
    rc, out, err = migrate(rx)
    H.check(rc == 0 and "no queue store" in out and "nothing to move" in out, f"migrate: {rc} {out} {err}")
    H.check(not os.path.exists(os.path.join(rx.dir, "queue.db")), "migrate created no queue store")
    open(os.path.join(rx.dir, "queue.db"), "w").close()
    rc, out, err = migrate(rx)
    H.check(rc == 0 and "is empty" in out and "nothing to move" in out, f"migrate, empty file: {rc} {out} {err}")
    server.stop()


if __name__ == "__main__":
    H.run_tests([test_migrate_every_state_once, test_migrate_without_a_queue_store])
