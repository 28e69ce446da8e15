"""The parser's Elasticsearch indexing against Elasticsearch as it really runs (the strict fake,
tests/fakes/es_fake.py), nothing dropped silently:

- security on (HTTPS with the cluster's own CA, 401 without credentials): the parser indexes with a
  password file and the receiver's /v1/search reads with a read-only user; the secrets never reach
  a log or --dump-config;
- credentials that stop working (a wrong password): every session is held, none handed back or
  dead-lettered, the log says to check the credentials; with the right ones everything is indexed;
- a parameter longer than Lucene's 32766-byte term limit: its event is indexed (the keyword stays
  out of the index) and found by a word of its message;
- index creation refused (action.auto_create_index off, then the shard limit): sessions held and
  the reason logged, indexed once the cluster allows it;
- documents an index's mapping can never take: counted by error type, logged with the session, a
  parse_failures row, and the session acked;
- an index prefix Elasticsearch would refuse, or in the logs-*-* name space, is refused at start.
"""
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

import lfharness as H  # noqa: E402
import lfmariadb  # noqa: E402
import lfparser as P  # noqa: E402
import lfupload as U  # noqa: E402
from fakeproc import Client, start_fake  # noqa: E402

DAY = "2026-11-15"
INDEX = "logferry-events-2026.11.15"


def day_log(n, tag, extra_line=None):
    """n lines on DAY (so that every event goes to INDEX)."""
    lines = [f"{DAY} 10:{i // 60 % 60:02d}:{i % 60:02d}.000 INFO [ui] {tag} opened dialog {i}" for i in range(n)]
    if extra_line:
        lines.append(extra_line)
    return ("\n".join(lines) + "\n").encode()


def queue_stats(rx):
    status, _, data = rx.get("/v1/queues/sessions", token=rx.worker_token)
    H.check(status == 200, f"queue stats: {status}")
    return json.loads(data)


def upload(rx, logs):
    ids = []
    for i, log in enumerate(logs):
        s = U.make_session(rx.site, log, identity=f"es-{i}-{random.random()}")
        st, js, _ = rx.upload(s)
        H.check(st == 201, f"upload {i}: {st} {js}")
        ids.append(s.id)
    return ids


def drained(rx):
    st = queue_stats(rx)
    return st["depth"] == 0 and st["in_flight"] == 0 and st["delayed"] == 0


def docs(es, pattern="logferry-events-*"):
    st, body = es.json("GET", f"/_fake/docs?index={pattern}")
    H.check(st == 200, f"fake docs: {st}")
    return {doc_id: src for content in body["indices"].values() for doc_id, src in content["docs"].items()}


def parser_metric(parser, name):
    with open(parser.conf + ".port") as f:
        port = int(f.read().strip())
    _, _, data = H.http("GET", port, "/metrics")
    total = None
    for line in data.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total = (total or 0) + float(line.split()[-1])
    return total


def held(rx, parser, n_workers, needle):
    """Every worker holds a session, nothing is handed back or dead-lettered, and the log says why."""
    P.wait_for(lambda: queue_stats(rx)["in_flight"] == n_workers, 30, "the workers to hold their sessions")
    P.wait_for(lambda: needle in parser.log_text(), 30, f"the log to say {needle!r}")
    st = queue_stats(rx)
    H.check(st["dlq_depth"] == 0 and st["totals"]["nacked"] == 0 and st["totals"]["acked"] == 0,
            f"held sessions: {st}")


def secure_fake(d):
    _, port = start_fake("es_fake.py", "--tls-dir", os.path.join(d, "tls"), "--user", "lfparser:p4rser-pw:all",
                         "--user", "lfsearch:s3arch-pw:read", log_path=os.path.join(d, "es_fake.log"))
    return port, os.path.join(d, "tls", "ca.pem")


def write_secret(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def test_security_on_and_credentials_that_stop_working():
    db = lfmariadb.scratch_server()
    d = H.scratch_dir("lfes-")
    port, ca = secure_fake(d)
    search_pw = write_secret(d, "search.pw", "s3arch-pw")
    rx = U.Receiver(extra_config=f"[queue]\nmax_receives = 2\n[search]\nes_url = https://127.0.0.1:{port}\n"
                                 f"es_user = lfsearch\nes_password_file = {search_pw}\nes_ca_file = {ca}\n")
    bad = write_secret(d, "bad.pw", "not-the-password")
    good = write_secret(d, "good.pw", "p4rser-pw")
    es_conf = f"[elasticsearch]\nurl = https://127.0.0.1:{port}\nuser = lfparser\nca_file = {ca}\n"
    parser = P.Parser(rx, db, workers=2, extra=es_conf + f"password_file = {bad}\n")
    H.check(parser.cli("db", "migrate").returncode == 0, "db migrate")
    ids = upload(rx, [day_log(30, f"secure{i}") for i in range(5)])
    parser.start()
    held(rx, parser, 2, "does not accept the credentials")
    time.sleep(3)  # several retries later, still nothing handed back (max_receives is 2)
    st = queue_stats(rx)
    H.check(st["dlq_depth"] == 0 and st["totals"]["nacked"] == 0, f"after retries: {st}")
    H.check(parser.stop() == 0, "parser stops while holding")

    parser = P.Parser(rx, db, workers=2, extra=es_conf + f"password_file = {good}\n")
    dump = parser.cli("--dump-config").stdout.decode()
    H.check("p4rser-pw" not in dump, "--dump-config shows no secret")
    parser.start()
    P.wait_for(lambda: drained(rx), 60, "the queue to drain")
    indexed = {src["session_id"] for src in docs_tls(port, ca).values()}
    H.check(indexed == set(ids), f"indexed sessions: {len(indexed)} of {len(ids)}")
    H.check(queue_stats(rx)["dlq_depth"] == 0, "no dead letters")
    # the receiver searches with its read-only user (once the index has refreshed)
    def search():
        st, _, body = rx.get("/v1/search?q=secure3", rx.read_token)
        H.check(st == 200, f"search: {st} {body[:300]!r}")
        hits = json.loads(body)["hits"]
        return hits if len(hits) == 30 else None
    hits = P.wait_for(search, 30, "the search to find the session's 30 events")
    H.check({h["session_id"] for h in hits} == {ids[3]}, f"search hits: {hits[:2]}")
    H.check(parser.stop() == 0, "parser exits 0")
    for text in (parser.log_text(), rx.log_text()):
        H.check("p4rser-pw" not in text and "s3arch-pw" not in text, "a secret reached a log")


def docs_tls(port, ca):
    import http.client
    import ssl
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    conn.request("GET", "/_fake/docs?index=logferry-events-*")
    r = conn.getresponse()
    body = json.loads(r.read())
    conn.close()
    H.check(r.status == 200, f"fake docs: {r.status}")
    return {doc_id: src for content in body["indices"].values() for doc_id, src in content["docs"].items()}


def test_long_parameter_is_indexed_and_found():
    db = lfmariadb.scratch_server()
    _, port = start_fake("es_fake.py")
    es = Client(port)
    rx = U.Receiver(extra_config=f"[search]\nes_url = http://127.0.0.1:{port}\n")
    parser = P.Parser(rx, db, workers=1, extra=f"[elasticsearch]\nurl = http://127.0.0.1:{port}\n")
    H.check(parser.cli("db", "migrate").returncode == 0, "db migrate")
    huge = "7" * 40000  # a number: a parameter of the event, over Lucene's 32766 bytes as a keyword
    log = day_log(20, "longparam", f"{DAY} 11:00:00.000 INFO [ui] upload of {huge} bytes accepted for zebra")
    ids = upload(rx, [log])
    parser.start()
    P.wait_for(lambda: drained(rx), 60, "the queue to drain")
    got = [src for src in docs(es).values() if src["session_id"] == ids[0]]
    H.check(len(got) == 21, f"{len(got)} of 21 events indexed")
    long_ones = [src for src in got if any(len(p) >= 40000 for p in src.get("params", []))]
    H.check(len(long_ones) == 1, "the event with the long parameter is in the index, whole")
    es.json("POST", "/_refresh")
    st, _, body = rx.get("/v1/search?q=zebra", rx.read_token)
    hits = json.loads(body)["hits"] if st == 200 else []
    H.check(st == 200 and len(hits) == 1 and hits[0]["session_id"] == ids[0], f"search by a word: {st} {hits}")
    failures = db.query("SELECT COUNT(*) FROM parse_failures", "logferry")
    H.check(failures == [["0"]], f"no failure recorded: {failures}")
    H.check(parser.stop() == 0, "parser exits 0")


def test_index_creation_refused_holds_until_allowed():
    db = lfmariadb.scratch_server()
    _, port = start_fake("es_fake.py", "--auto-create-index", "false")
    es = Client(port)
    rx = U.Receiver(extra_config="[queue]\nmax_receives = 2\n")
    parser = P.Parser(rx, db, workers=1, extra=f"[elasticsearch]\nurl = http://127.0.0.1:{port}\n")
    H.check(parser.cli("db", "migrate").returncode == 0, "db migrate")
    ids = upload(rx, [day_log(10, f"autocreate{i}") for i in range(3)])
    parser.start()
    held(rx, parser, 1, "auto_create_index")
    H.check(not docs(es), "nothing indexed while index creation is off")
    # the shard limit: creation allowed again, but the cluster is full
    st, _ = es.json("POST", "/_fake/settings", {"auto_create_index": True, "max_shards": 0})
    H.check(st == 200, f"settings: {st}")
    P.wait_for(lambda: "max_shards_per_node" in parser.log_text(), 30, "the shard limit in the log")
    H.check(queue_stats(rx)["totals"]["acked"] == 0, "nothing acked while the cluster is full")
    st, _ = es.json("POST", "/_fake/settings", {"max_shards": 1000})
    P.wait_for(lambda: drained(rx), 60, "the queue to drain")
    indexed = {src["session_id"] for src in docs(es).values()}
    H.check(indexed == set(ids), f"indexed: {len(indexed)} of {len(ids)}")
    H.check(queue_stats(rx)["dlq_depth"] == 0, "no dead letters")
    H.check(parser.stop() == 0, "parser exits 0")


def test_mapping_refusal_is_counted_logged_and_acked():
    db = lfmariadb.scratch_server()
    _, port = start_fake("es_fake.py")
    es = Client(port)
    # someone created the day's index by hand with a mapping our documents do not fit
    st, body = es.json("PUT", "/" + INDEX, {"mappings": {"properties": {"level": {"type": "long"}}}})
    H.check(st == 200, f"create index: {st} {body}")
    rx = U.Receiver()
    parser = P.Parser(rx, db, workers=1, extra=f"[elasticsearch]\nurl = http://127.0.0.1:{port}\n")
    H.check(parser.cli("db", "migrate").returncode == 0, "db migrate")
    ids = upload(rx, [day_log(12, "mapping")])
    parser.start()
    P.wait_for(lambda: drained(rx), 60, "the queue to drain")
    H.check(queue_stats(rx)["totals"]["acked"] == 1, "the session is acked")
    fails = db.query("SELECT session_id, stage, reason FROM parse_failures", "logferry")
    H.check(len(fails) == 1 and fails[0][0] == ids[0] and fails[0][1] == "index", f"parse_failures: {fails}")
    H.check("document_parsing_exception" in fails[0][2] or "mapper_parsing_exception" in fails[0][2], fails)
    refused = parser_metric(parser, "lf_parser_es_refused_total")
    H.check(refused == 12, f"lf_parser_es_refused_total: {refused}")
    H.check(f"session {ids[0]}" in parser.log_text() and "can never be indexed" in parser.log_text(),
            "the refusal is logged with its session")
    rows = db.query(f"SELECT COUNT(*) FROM events WHERE session_id = '{ids[0]}'", "logferry")
    H.check(rows == [["12"]], f"the events are in MySQL: {rows}")
    H.check(parser.stop() == 0, "parser exits 0")


class _NoDb:  # --check-config connects to nothing
    port, user, password = 9, "nobody", "none"


def test_index_prefix_checked_at_start():
    db = _NoDb()
    rx = U.Receiver(start=False)
    rx.port = 9
    for prefix, needle in (("Logferry-", b"lower case"), ("logs-app-", b"built-in data stream"),
                           ("_x", b"must not start")):
        parser = P.Parser(rx, db, workers=1,
                          extra=f"[elasticsearch]\nurl = http://127.0.0.1:9\nindex_prefix = {prefix}\n")
        p = parser.cli("--check-config")
        H.check(p.returncode != 0 and needle in p.stderr, f"prefix {prefix}: {p.returncode} {p.stderr!r}")
    parser = P.Parser(rx, db, workers=1, extra="[elasticsearch]\nurl = http://u:pw@127.0.0.1:9\n")
    p = parser.cli("--check-config")
    H.check(p.returncode != 0 and b"must not hold credentials" in p.stderr and b":pw" not in p.stderr,
            f"credentials in the URL: {p.stderr!r}")


if __name__ == "__main__":
    H.run_tests([test_index_prefix_checked_at_start, test_long_parameter_is_indexed_and_found,
                 test_mapping_refusal_is_counted_logged_and_acked, test_index_creation_refused_holds_until_allowed,
                 test_security_on_and_credentials_that_stop_working])
