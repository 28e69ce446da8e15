"""The receiver's read routes end to end: sessions uploaded through the real receiver, parsed by a
real logferry-parser into a private MariaDB, then listed and read back over HTTP.

- GET /v1/sessions and /v1/sessions/{id}/events need a token with scope read (admin includes it):
  none -> 401, worker -> 403, read -> 200;
- the list is filterable by site and time and pages with its cursor without losing or repeating a
  session; events come back in order, paged by seq, equal in number to a direct parse;
- GET /v1/sessions/{id} says "parsed" with the event count once the parser loaded it;
- /v1/search answers 503 when no Elasticsearch is configured;
- a query parameter that cannot be read whole (too long, a bad escape, a NUL, not UTF-8, given
  twice) is refused with 400, never dropped (which would widen the answer), while long but legal
  values are read at their real length; a percent-encoded cursor is the same cursor;
- paging returns every session exactly once whatever started_at holds, NULL included.
"""
import json
import random
import urllib.parse

import lfharness as H
import lfmariadb
import lfparser as P
import lfupload as U


def setup():
    db = lfmariadb.scratch_server()
    rx = U.Receiver(extra_config=f"""[mysql]
host = 127.0.0.1
port = {db.port}
user = {db.user}
password = {db.password}
database = logferry
""")
    parser = P.Parser(rx, db, workers=2)
    H.check(parser.cli("db", "migrate").returncode == 0, "db migrate")
    parser.start()
    return db, rx, parser


def get_json(rx, path, token):
    status, _, data = rx.get(path, token=token)
    return status, (json.loads(data) if data else None)


def test_scopes_paging_and_events():
    db, rx, parser = setup()
    rng = random.Random(11)
    expected = {}
    for i in range(12):
        log = P.make_log(rng, rng.randrange(30, 250))
        s = U.make_session(rx.site, log, identity=f"read-{i}")
        status, body, _ = rx.upload(s)
        H.check(status == 201, f"upload {i}: {status} {body}")
        expected[s.id] = P.expected_rows(parser, log)[0]
    P.wait_for(lambda: int(db.query("SELECT COUNT(*) FROM logferry.sessions")[0][0]) == len(expected), 90,
               "all sessions parsed")

    # scopes
    H.check(get_json(rx, "/v1/sessions", None)[0] == 401, "no token must be 401")
    H.check(get_json(rx, "/v1/sessions", rx.worker_token)[0] == 403, "worker token must be 403")
    H.check(get_json(rx, f"/v1/sessions/{next(iter(expected))}/events", rx.worker_token)[0] == 403,
            "worker token on events must be 403")
    status, page = get_json(rx, "/v1/sessions?limit=1000", rx.read_token)
    H.check(status == 200, f"list: {status} {page}")

    # paging: limit 5 over 12 sessions gives every session exactly once
    seen, cursor, pages = [], None, 0
    while True:
        q = {"limit": "5", "site": rx.site}
        if cursor:
            q["cursor"] = cursor
        status, page = get_json(rx, "/v1/sessions?" + urllib.parse.urlencode(q), rx.read_token)
        H.check(status == 200, f"page {pages}: {status} {page}")
        items = page.get("sessions", [])
        H.check(len(items) <= 5, f"page of {len(items)} > limit")
        seen += [it["session_id"] for it in items]
        pages += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
        H.check(pages < 10, "pagination does not end")
    H.check(sorted(seen) == sorted(expected), f"paged list has {len(seen)} ids, {len(set(seen))} distinct, "
            f"expected {len(expected)}")
    status, page = get_json(rx, "/v1/sessions?site=no-such-site", rx.read_token)
    H.check(status == 200 and page.get("sessions") == [], f"unknown site: {status} {page}")

    # events of one session, paged by seq, in order, as many as a direct parse
    sid = max(expected, key=expected.get)
    events, cursor = [], None
    for _ in range(1000):
        path = f"/v1/sessions/{sid}/events?limit=37" + (f"&cursor={cursor}" if cursor else "")
        status, page = get_json(rx, path, rx.admin_token)
        H.check(status == 200, f"events: {status} {page}")
        events += page.get("events", [])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    seqs = [e["seq"] for e in events]
    H.check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "events out of order or repeated")
    H.check(len(events) == expected[sid], f"{len(events)} events over HTTP, direct parse {expected[sid]}")
    H.check(get_json(rx, "/v1/sessions/0123456789abcdef0123456789abcdef/events", rx.read_token)[0] == 404,
            "events of an unknown session must be 404")

    # the session's status comes from the parsed-events database once it is loaded
    status, js = get_json(rx, f"/v1/sessions/{sid}", rx.read_token)
    H.check(status == 200 and js["status"] == "parsed" and js["events"] == expected[sid],
            f"status of a parsed session: {status} {js}")

    # no Elasticsearch configured
    H.check(get_json(rx, "/v1/search?q=closed", rx.read_token)[0] == 503, "search without ES must be 503")
    parser.stop()
    rx.stop()


def page_all(rx, limit, extra=None):
    seen, cursor, pages = [], None, 0
    while True:
        q = {"limit": str(limit)}
        q.update(extra or {})
        if cursor:
            q["cursor"] = cursor
        status, page = get_json(rx, "/v1/sessions?" + urllib.parse.urlencode(q), rx.read_token)
        H.check(status == 200, f"page {pages}: {status} {page}")
        seen += [it["session_id"] for it in page.get("sessions", [])]
        pages += 1
        cursor = page.get("next_cursor")
        if not cursor:
            return seen
        H.check(pages < 100, "pagination does not end")


def test_filters_fail_closed_and_null_start_paging():
    db, rx, parser = setup()
    rng = random.Random(16)
    ids = []
    for i in range(9):
        s = U.make_session(rx.site, P.make_log(rng, 20), identity=f"nulls-{i}")
        status, body, _ = rx.upload(s)
        H.check(status == 201, f"upload {i}: {status} {body}")
        ids.append(s.id)
    P.wait_for(lambda: int(db.query("SELECT COUNT(*) FROM logferry.sessions")[0][0]) == len(ids), 90,
               "all sessions parsed")
    # three sessions without a start time (the parser leaves it NULL when neither log nor manifest has one)
    db.sql_root("UPDATE sessions SET started_at = NULL WHERE session_id IN (%s)" %
                ",".join(f"'{x}'" for x in ids[:3]), "logferry")
    for limit in (1, 2, 4, 100):
        seen = page_all(rx, limit)
        H.check(sorted(seen) == sorted(ids) and len(seen) == len(set(seen)),
                f"limit {limit}: paged {len(seen)} ids, {len(set(seen))} distinct, of {len(ids)}")

    def status_of(query, path="/v1/sessions"):
        st, page = get_json(rx, path + "?" + query, rx.read_token)
        return st, page

    def count_of(query):
        st, page = status_of(query)
        H.check(st == 200, f"{query}: {st} {page}")
        return len(page["sessions"])

    # legal values of any length the columns take are read whole: they match nothing here
    product = urllib.parse.quote("\u00e9" * 27)  # 54 bytes of UTF-8, 162 once percent-encoded
    H.check(count_of("product=" + product) == 0, "a 54-byte product name matches no session")
    H.check(count_of("site=" + "s" * 81) == 0, "an 81-character site matches no session")
    H.check(count_of("product=" + "p" * 161) == 0, "a 161-character product matches no session")
    H.check(count_of("site=" + urllib.parse.quote(rx.site)) == len(ids), "the site percent-encoded")
    # values that cannot be read whole are refused, whatever the parameter
    refused = ["site=%zz", "site=site-a%00", "site=%ff%fe", "product=" + "p" * 600, "site=a&site=b",
               "cursor=" + "1" * 64, "cursor=%zz", "limit=" + "9" * 40, "limit=0", "from=%zz",
               "to=" + "2" * 100, "site=" + "%41" * 300]
    for q in refused:
        st, page = status_of(q)
        H.check(st == 400 and page and page.get("error") == "bad_request", f"{q[:60]}: {st} {page}")
    # a cursor percent-encoded in full is the same cursor
    st, first = status_of("limit=4")
    cur = first["next_cursor"]
    enc = "".join("%%%02X" % ord(c) for c in cur)
    a, b = status_of("limit=4&cursor=" + cur), status_of("limit=4&cursor=" + enc)
    H.check(a == b and a[0] == 200, f"encoded cursor: {a} vs {b}")
    # the events route too
    sid = ids[5]
    for q in ("cursor=" + "1" * 64, "limit=" + "9" * 40, "cursor=%00", "limit=1&limit=2"):
        st, page = status_of(q, f"/v1/sessions/{sid}/events")
        H.check(st == 400, f"events {q[:40]}: {st} {page}")
    parser.stop()
    rx.stop()


if __name__ == "__main__":
    H.run_tests([test_scopes_paging_and_events, test_filters_fail_closed_and_null_start_paging])
