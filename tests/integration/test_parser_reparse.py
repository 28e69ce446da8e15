"""`logferry-parser reparse --session ID` and `--since TIME` through the receiver's admin route
POST /v1/sessions/{id}/reparse: the sessions are queued again (even inside the queue's dedup window),
parsed again, and still have exactly one copy of their rows; the route refuses other scopes and
unknown sessions."""
import json
import random
import time

import lfharness as H
import lfmariadb
import lfparser as P
import lfupload as U


def parsed_at(db, sid):
    rows = db.query(f"SELECT parsed_at FROM logferry.sessions WHERE session_id = '{sid}'")
    return rows[0][0] if rows else None


def test_reparse_session_and_since():
    db = lfmariadb.scratch_server()
    rx = U.Receiver()
    parser = P.Parser(rx, db, workers=1)
    H.check(parser.cli("db", "migrate").returncode == 0, "db migrate")
    parser.start()
    rng = random.Random(5)
    expected = {}
    for i in range(4):
        log = P.make_log(rng, rng.randrange(40, 120))
        s = U.make_session(rx.site, log, identity=f"reparse-{i}")
        st, body, _ = rx.upload(s)
        H.check(st == 201, f"upload: {st} {body}")
        expected[s.id] = P.expected_rows(parser, log)
    P.wait_for(lambda: int(db.query("SELECT COUNT(*) FROM logferry.sessions")[0][0]) == 4, 60, "4 sessions parsed")
    ids = sorted(expected)

    # the route: admin only, 404 for unknown ids
    st, _ = rx.post(f"/v1/sessions/{ids[0]}/reparse", {}, token=rx.worker_token)
    H.check(st == 403, f"worker token: {st}")
    st, _ = rx.post(f"/v1/sessions/{ids[0]}/reparse", {}, token=None)
    H.check(st == 401, f"no token: {st}")
    st, _ = rx.post("/v1/sessions/0123456789abcdef0123456789abcdef/reparse", {}, token=rx.admin_token)
    H.check(st == 404, f"unknown session: {st}")

    # --session: parsed again (a newer parsed_at), still one copy
    before = {sid: parsed_at(db, sid) for sid in ids}
    time.sleep(0.05)
    r = parser.cli("reparse", "--session", ids[0], "--token", rx.admin_token)
    H.check(r.returncode == 0, f"reparse --session: {r.returncode} {r.stderr.decode()}")
    P.wait_for(lambda: parsed_at(db, ids[0]) != before[ids[0]], 60, "session parsed again")
    H.check(all(parsed_at(db, sid) == before[sid] for sid in ids[1:]), "only the named session was reparsed")

    # --since: every session parsed since a time before the first load
    mark = {sid: parsed_at(db, sid) for sid in ids}
    r = parser.cli("reparse", "--since", "2000-01-01", "--token", rx.admin_token)
    H.check(r.returncode == 0, f"reparse --since: {r.returncode} {r.stderr.decode()}")
    P.wait_for(lambda: all(parsed_at(db, sid) != mark[sid] for sid in ids), 60, "all sessions parsed again")
    P.wait_for(lambda: json.loads(rx.get("/v1/queues/sessions", rx.worker_token)[2])["depth"] == 0 and
               json.loads(rx.get("/v1/queues/sessions", rx.worker_token)[2])["in_flight"] == 0, 60, "queue drained")

    rows = db.query("SELECT session_id, COUNT(*), SUM(CRC32(message)) FROM logferry.events GROUP BY session_id")
    got = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    H.check(got == expected, f"rows after reparse differ from a direct parse: {got} vs {expected}")
    total = int(db.query("SELECT SUM(occurrences) FROM logferry.templates")[0][0])
    H.check(total == sum(e[0] for e in expected.values()), f"template occurrences {total} count each session once")
    parser.stop()
    rx.stop()


if __name__ == "__main__":
    H.run_tests([test_reparse_session_and_since])
