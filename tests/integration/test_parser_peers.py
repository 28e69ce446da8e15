"""A parser fetches each session from the receiver that stores it (issue 21, `[queue] backend =
jetstream`): two receivers on loopback, each with its own filesystem store and its own
[queue] advertise_url, one nats-server, one MariaDB, one parser whose [receiver] url is receiver A
and whose [receiver] peers lists B.

1. Sessions uploaded to A and to B all end in MySQL exactly once, with the rows of a direct parse.
2. With B stopped, B's sessions wait (set aside, not redelivered, not dead-lettered, while the parser
   tries B again and again) and A's are parsed meanwhile; once B is back, B's are parsed.
3. A third receiver whose advertise_url names a host the parser was not given: its message is
   dead-lettered with the reason, and that host (a listening socket) never saw a connection, so
   the worker token never left for it.
4. (test_full_waiting_list) With [receiver] max_waiting_sessions = 2 and both receivers stopped, A's
   sessions fill the list and the parser takes no new message (B's stay in the stream, not held by
   the workers); once A is back its sessions are parsed (workers holding B's messages would never
   take them up), then B's are set aside until two wait, and B's last one stays in the stream. A
   stop while NATS is killed and sessions are set aside ends within 5 s (no nack waiting out its
   request timeout), and after NATS and B are back every session is loaded exactly once.

The receivers share the sites and tokens (JetStream buckets, filled by A's first start), A's token
key and A's keyring, as the parser decrypts with one keyring and authenticates with one token."""
import base64
import json
import os
import random
import select
import shutil
import socket
import sys

import lfharness as H
import lfmariadb
import lfnats
import lfparser as P
import lfupload as U

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# that test's NATS client; a connection per request (nats(server)): the server drops one left idle
from test_parser_jetstream import Nats  # noqa: E402


def nats(server):
    return Nats(server.port)


def receiver(server, advertise=None, like=None):
    """A receiver on a fixed port (its advertise_url must survive a restart), advertising
    http://127.0.0.1:<its port> or advertise; with like, A's keyring and tokens."""
    port = H.free_port()
    url = advertise or f"http://127.0.0.1:{port}"
    rx = U.Receiver(extra_config=f"[queue]\nbackend = jetstream\nservers = {server.url()}\nmax_receives = 2\n"
                                 f"visibility = 4s\nadvertise_url = {url}\n", start=False)
    with open(rx.conf) as f:
        text = f.read()
    H.check("listen = 127.0.0.1:0\n" in text, "the receiver's listen line")
    with open(rx.conf, "w") as f:
        f.write(text.replace("listen = 127.0.0.1:0\n", f"listen = 127.0.0.1:{port}\n"))
    if like:
        # sites and tokens are shared through JetStream (imported by A's first start); a token is a
        # keyed hash, so every receiver has A's token key, and the parser decrypts with A's keyring
        rx.import_shared = False
        rx.site, rx.signer, rx.worker_token = like.site, like.signer, like.worker_token
        shutil.copy2(os.path.join(like.dir, "token.key"), os.path.join(rx.dir, "token.key"))
        shutil.rmtree(os.path.join(rx.dir, "keys"), ignore_errors=True)
        shutil.copytree(os.path.join(like.dir, "keys"), os.path.join(rx.dir, "keys"))
    rx.start()
    H.check(rx.port == port, f"receiver on {rx.port}, configured {port}")
    rx.url = url
    return rx


def upload(rx, rng, name):
    log = P.make_log(rng, rng.randrange(40, 160))
    s = U.make_session(rx.site, log, identity=name)
    status, body, _ = rx.upload(s)
    H.check(status == 201, f"upload {name} to {rx.url}: {status} {body}")
    return s.id, log


def loaded(db, sid):
    if db.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='logferry' AND "
                "table_name='sessions'") != [["1"]]:
        return 0
    return int(db.query(f"SELECT COUNT(*) FROM sessions WHERE session_id='{sid}'", "logferry")[0][0])


def check_rows(db, parser, sessions):
    """Each session once, with the events of a direct parse of what was uploaded."""
    for sid, log in sessions.items():
        H.check(loaded(db, sid) == 1, f"session {sid}: exactly one copy")
        rows = db.query(f"SELECT COUNT(*), SUM(CRC32(message)) FROM events WHERE session_id='{sid}'", "logferry")
        got = (int(rows[0][0]), int(rows[0][1] or 0))
        exp = P.expected_rows(parser, log)
        H.check(got == exp, f"session {sid}: rows {got} vs a direct parse {exp}")


def wait_loaded(db, parser, sessions, timeout=90):
    try:
        H.wait_for(lambda: all(loaded(db, sid) for sid in sessions), f"{len(sessions)} sessions loaded",
                   timeout=timeout)
    except H.TestFailure as e:
        raise H.TestFailure(f"{e}; parser log: {parser.log_text()[-3000:]}")
    check_rows(db, parser, sessions)


def consumer_info(server):
    _, _, body = nats(server).request("$JS.API.CONSUMER.INFO.LF_Q_sessions.lf-parsers")
    return json.loads(body)


def parser_metric(parser, name):
    with open(parser.conf + ".port") as f:
        port = int(f.read().strip())
    _, _, data = H.http("GET", port, "/metrics")
    for line in data.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def two_receivers(receiver_extra=""):
    """nats-server, MariaDB, receivers A and B, and a parser (not started) with [receiver] url A and
    peers B, two workers, and a short ack wait (4 s, the receivers' too): an absence of B outlasts
    several, so the waiting sessions are shown to be kept by the parser, not redelivered."""
    H.check(not lfnats.missing(), f"nats-server: {lfnats.missing()}")
    server = lfnats.NatsServer().start().wait_healthy()
    db = lfmariadb.scratch_server()
    rx_a = receiver(server)
    rx_b = receiver(server, like=rx_a)
    parser = P.Parser(rx_a, db, workers=2,
                      extra=(f"[queue]\nbackend = jetstream\nservers = {server.url()}\nmax_receives = 2\n"
                             f"[receiver]\npeers = {rx_b.url}\n{receiver_extra}"))
    with open(parser.conf) as f:
        text = f.read()
    H.check("visibility = 20s\n" in text, "the parser's visibility line")
    with open(parser.conf, "w") as f:
        f.write(text.replace("visibility = 20s\n", "visibility = 4s\n"))
    return server, db, rx_a, rx_b, parser


def test_parser_fetches_from_the_receiver_named():
    server, db, rx_a, rx_b, parser = two_receivers()
    # an address the parser is not given, with a listener that records any connection
    trap = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    trap_url = f"http://127.0.0.1:{trap.getsockname()[1]}"

    parser.start()
    rng = random.Random(21)

    # 1. both receivers' sessions, each fetched from its own receiver
    first = {}
    for i in range(4):
        for rx, tag in ((rx_a, "a"), (rx_b, "b")):
            sid, log = upload(rx, rng, f"first-{tag}-{i}")
            first[sid] = log
    wait_loaded(db, parser, first)

    # 2. B away: its sessions wait, A's go on
    H.check(parser.stop() == 0, f"parser exit status: {parser.log_text()[-3000:]}")
    waiting = dict(upload(rx_b, rng, f"waiting-b-{i}") for i in range(3))
    H.check(rx_b.stop() == 0, "receiver B stopped cleanly")
    parser.start()
    meanwhile = dict(upload(rx_a, rng, f"meanwhile-a-{i}") for i in range(3))
    wait_loaded(db, parser, meanwhile)
    # B tried again and again (max_receives = 2 would have dead-lettered counted deliveries by now)
    H.wait_for(lambda: (parser_metric(parser, "lf_parser_sessions_waiting_for_receiver") == 3 and
                        parser_metric(parser, "lf_parser_retries_total") >= 6),
               "B's sessions set aside and B tried again several times", timeout=90)
    dlq = nats(server).stream_info("LF_DLQ_sessions")
    H.check(dlq["state"]["messages"] == 0, f"nothing dead-lettered while B is away: {dlq['state']}")
    _, _, body = nats(server).request("$JS.API.CONSUMER.INFO.LF_Q_sessions.lf-parsers")
    info = json.loads(body)
    H.check(info["num_ack_pending"] == 3 and info["num_redelivered"] == 0,
            f"B's sessions held by the parser, never redelivered: {info}")
    H.check(not any(loaded(db, sid) for sid in waiting), "B's sessions not loaded while B is away")
    H.check(f"the receiver {rx_b.url} is unavailable" in parser.log_text(), "the wait is logged")

    rx_b.start()
    wait_loaded(db, parser, waiting)
    H.wait_for(lambda: parser_metric(parser, "lf_parser_sessions_waiting_for_receiver") == 0,
               "nothing left waiting", timeout=30)

    # 3. a receiver the parser was not given: dead-lettered unfetched
    rx_c = receiver(server, advertise=trap_url, like=rx_a)
    stray, _ = upload(rx_c, rng, "stray-c")
    H.wait_for(lambda: nats(server).stream_info("LF_DLQ_sessions")["state"]["messages"] == 1,
               "the stray session's message in the dead-letter stream", timeout=60)
    dl = nats(server).dead_letter(1)["message"]
    H.check(base64.b64decode(dl["data"]) == stray.encode(), f"dead letter body: {dl}")
    hdrs = base64.b64decode(dl["hdrs"]).decode()
    H.check(f"Lf-Dead-Letter-Reason: receiver {trap_url} is not in [receiver] url or peers" in hdrs,
            f"headers: {hdrs}")
    H.check(f"Lf-Receiver: {trap_url}" in hdrs, f"the dead letter still names its receiver: {hdrs}")
    readable, _, _ = select.select([trap], [], [], 0)
    H.check(not readable, f"nothing connected to {trap_url}")
    H.check(loaded(db, stray) == 0, "the stray session is not loaded")

    H.check(parser.stop() == 0, f"parser exit status: {parser.log_text()[-3000:]}")
    check_rows(db, parser, {**first, **waiting, **meanwhile})
    H.check(nats(server).stream_info("LF_Q_sessions")["state"]["messages"] == 0,
            "every message acked or dead-lettered")
    trap.close()
    for rx in (rx_a, rx_b, rx_c):
        rx.stop()


def test_full_waiting_list():
    server, db, rx_a, rx_b, parser = two_receivers("max_waiting_sessions = 2\n")
    rng = random.Random(22)
    # in the stream: A's two, then B's four (as many as the list and the workers together)
    early = dict(upload(rx_a, rng, f"early-a-{i}") for i in range(2))
    waiting = dict(upload(rx_b, rng, f"waiting-b-{i}") for i in range(4))
    H.check(rx_a.stop() == 0 and rx_b.stop() == 0, "receivers stopped cleanly")
    parser.start()
    full = "taking no new message"
    H.wait_for(lambda: full in parser.log_text(), "the list full and logged", timeout=60)
    # received only while fewer than two wait: at most one more per worker, less the one
    info = consumer_info(server)
    H.check(2 <= info["num_ack_pending"] <= 3 and info["num_ack_pending"] + info["num_pending"] == 6,
            f"A's two set aside, B's mostly left in the stream: {info}")

    rx_a.start()
    wait_loaded(db, parser, early, timeout=60)
    # B's set aside in their place until the list is full again: received only while fewer than two
    # wait, so at most one more per worker, and one of B's four stays in the stream
    H.wait_for(lambda: parser_metric(parser, "lf_parser_sessions_waiting_for_receiver") == 2,
               "two of B's sessions set aside", timeout=60)
    info = consumer_info(server)
    H.check(info["num_ack_pending"] <= 3 and info["num_ack_pending"] + info["num_pending"] == 4 and
            info["num_redelivered"] == 0, f"B's held (at most the list and one per worker), not redelivered: {info}")

    # a stop while NATS is away: the set-aside sessions are left to the ack wait, not nacked
    server.kill()
    H.check(H.stop(parser.proc, timeout=5) == 0, f"parser exit status: {parser.log_text()[-3000:]}")
    server.start()
    server.wait_healthy()
    rx_b.start()
    parser.start()
    wait_loaded(db, parser, waiting, timeout=90)
    H.check(parser.stop() == 0, f"parser exit status: {parser.log_text()[-3000:]}")
    check_rows(db, parser, {**early, **waiting})
    H.check(nats(server).stream_info("LF_DLQ_sessions")["state"]["messages"] == 0, "nothing dead-lettered")
    for rx in (rx_a, rx_b):
        rx.stop()


if __name__ == "__main__":
    H.run_tests([test_parser_fetches_from_the_receiver_named, test_full_waiting_list])
