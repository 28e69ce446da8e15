"""The parser on the JetStream backend (`[queue] backend = jetstream`): a real nats-server with
JetStream, the real receiver (for the stored sessions), a real MariaDB. The parser creates the
queue's streams and consumer; session ids published to the stream with the session id as
Nats-Msg-Id (as receivers will) are parsed and loaded exactly once, a re-publish within the dedup
window is dropped by the server, and a message that is not a session id ends in the dead-letter
stream after max_receives with its reason, while the good session loads.

The test speaks the NATS text protocol itself (CONNECT, HPUB with a reply inbox, the JetStream API
subjects): the Python standard library has no NATS client, and nothing but nats-server is needed."""
import base64
import json
import random
import socket

import lfharness as H
import lfmariadb
import lfnats
import lfparser as P
import lfupload as U


class Nats:
    """One connection, one request at a time, on one reply inbox."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.rf = self.sock.makefile("rb")
        line = self.rf.readline()
        H.check(line.startswith(b"INFO "), f"NATS greeting: {line!r}")
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,'
                          b'"protocol":1,"name":"test"}\r\nSUB _INBOX.test 1\r\nPING\r\n')
        self._read_until_pong()

    def _read_until_pong(self):
        while True:
            line = self.rf.readline()
            if line.startswith(b"PONG"):
                return
            H.check(not line.startswith(b"-ERR"), f"NATS: {line!r}")

    def request(self, subject, payload=b"", headers=None):
        """(status header line or None, headers bytes, body) of the reply."""
        if headers:
            hdr = b"NATS/1.0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"
            self.sock.sendall(f"HPUB {subject} _INBOX.test {len(hdr)} {len(hdr) + len(payload)}\r\n".encode()
                              + hdr + payload + b"\r\n")
        else:
            self.sock.sendall(f"PUB {subject} _INBOX.test {len(payload)}\r\n".encode() + payload + b"\r\n")
        while True:
            line = self.rf.readline()
            H.check(line != b"", "NATS connection closed")
            if line.startswith(b"PING"):
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG "):
                n = int(line.split()[-1])
                return None, b"", self.rf.read(n + 2)[:-2]
            elif line.startswith(b"HMSG "):
                parts = line.split()
                hlen, total = int(parts[-2]), int(parts[-1])
                raw = self.rf.read(total + 2)[:-2]
                first = raw[:hlen].split(b"\r\n", 1)[0]
                return first, raw[:hlen], raw[hlen:]
            else:
                H.check(not line.startswith(b"-ERR"), f"NATS: {line!r}")

    def publish_session(self, sid):
        """Publishes sid as a receiver does; the PubAck as a dict. A 503 (no stream yet) is None."""
        status, _, body = self.request("logferry.q.sessions", sid.encode(), {"Nats-Msg-Id": sid})
        if status and b"503" in status:
            return None
        ack = json.loads(body)
        H.check("error" not in ack, f"publish {sid}: {ack}")
        return ack

    def stream_info(self, stream):
        _, _, body = self.request(f"$JS.API.STREAM.INFO.{stream}")
        return json.loads(body)

    def dead_letter(self, seq):
        _, _, body = self.request("$JS.API.STREAM.MSG.GET.LF_DLQ_sessions", json.dumps({"seq": seq}).encode())
        return json.loads(body)


def test_parser_consumes_from_jetstream():
    # installed by scripts/install-deps.sh: missing is a broken machine, not a skip
    H.check(not lfnats.missing(), f"nats-server: {lfnats.missing()}")
    server = lfnats.NatsServer().start().wait_healthy()
    port = server.port

    db = lfmariadb.scratch_server()
    rx = U.Receiver()
    parser = P.Parser(rx, db, workers=2, extra=(f"[queue]\nbackend = jetstream\nservers = {server.url()}\n"
                                                 "max_receives = 2\n"))
    rng = random.Random(11)
    log = P.make_log(rng, 120)
    good = U.make_session(rx.site, log, identity="jetstream-good")
    status, body, _ = rx.upload(good)
    H.check(status == 201, f"upload: {status} {body}")

    parser.start()
    client = Nats(port)
    ack = H.wait_for(lambda: client.publish_session(good.id), "the parser to create the queue's stream", timeout=30)
    H.check(ack["stream"] == "LF_Q_sessions" and not ack.get("duplicate"), f"first publish: {ack}")
    again = client.publish_session(good.id)
    H.check(again["duplicate"] is True and again["seq"] == ack["seq"], f"re-publish: {again}")
    poison = client.publish_session("not-a-session-id")

    exp = P.expected_rows(parser, log)
    H.wait_for(lambda: db.query(f"SELECT COUNT(*) FROM sessions WHERE session_id='{good.id}'", "logferry") == [["1"]],
               "the session to load", timeout=60)
    rows = db.query(f"SELECT COUNT(*), SUM(CRC32(message)) FROM events WHERE session_id='{good.id}'", "logferry")
    H.check((int(rows[0][0]), int(rows[0][1])) == exp, f"rows {rows} vs a direct parse {exp}")

    H.wait_for(lambda: client.stream_info("LF_DLQ_sessions")["state"]["messages"] == 1,
               "the poison message in the dead-letter stream", timeout=60)
    dl = client.dead_letter(1)["message"]
    H.check(base64.b64decode(dl["data"]) == b"not-a-session-id", f"dead letter body: {dl}")
    hdrs = base64.b64decode(dl["hdrs"]).decode()
    H.check("Lf-Dead-Letter-Reason: received 3 times, more than max_receives (2)" in hdrs, f"headers: {hdrs}")
    H.check("Lf-Msg-Id: not-a-session-id" in hdrs, f"headers: {hdrs}")
    q = client.stream_info("LF_Q_sessions")
    H.check(q["state"]["messages"] == 0, f"the queue's stream is empty once all is acked: {q['state']}")
    H.check(poison["seq"] == ack["seq"] + 1, f"poison seq {poison}")

    status = parser.stop()
    H.check(status == 0, f"parser exit status {status}: {parser.log_text()[-3000:]}")
    H.check(db.query(f"SELECT COUNT(*) FROM sessions WHERE session_id='{good.id}'", "logferry") == [["1"]],
            "exactly one copy")


if __name__ == "__main__":
    H.run_tests([test_parser_consumes_from_jetstream])
