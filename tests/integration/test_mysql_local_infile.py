"""A MariaDB with local_infile off (MySQL 8's default), started with --local-infile=0 and a small
max_allowed_packet: the parser and every built-in analytics job detect it and load with INSERT
statements instead of LOAD DATA LOCAL INFILE, and end with the same tables as on a server with
local_infile on.

The same sessions (stack traces with tabs and newlines, backslashes, utf8mb4 text, one session big
enough that its events need many INSERT statements under the packet limit) go through a receiver
and a parser for each server; then the events are compared row for row, and analytics `run` of each
built-in job gives on both servers the tables the independent computation (lfanalytics) expects.
"""
import datetime as dt
import os
import random
import subprocess

import lfanalytics
import lfharness as H
import lfmariadb
import lfparser as P
import lfupload as U

JOBS = ("daily_usage", "feature_usage", "errors", "retention")
DAYS = ("--from", "2026-03-01", "--to", "2026-03-31")


class Stack:
    """A MariaDB with a receiver and a parser loading into it."""

    def __init__(self, name, extra_args=()):
        self.name = name
        self.db = lfmariadb.scratch_server(extra_args=list(extra_args))
        self.rx = U.Receiver(extra_config="")
        self.parser = P.Parser(self.rx, self.db, workers=1, name=name)
        r = self.parser.cli("db", "migrate")
        H.check(r.returncode == 0, f"{name}: db migrate: {r.stderr.decode()}")
        self.parser.start()


def stamp(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def awkward_log(rng, t0):
    """Lines whose fields hold what the TSV escapes: backslashes, tabs, 4-byte UTF-8, \\N as text."""
    lines = []
    texts = ["Opened C:\\Users\\Zo\u00eb\\Documents\\report \U0001F600.docx",
             "Literal \\N and \\t and \\\\ in a message", "Caf\u00e9 \u65e5\u672c\u8a9e \U0001D11E done",
             "Quote ' double \" semicolon ; -- done", "Failed to open x.txt: error 13"]
    for i in range(60):
        lvl = rng.choice(["INFO", "WARN", "ERROR"])
        lines.append(f"{stamp(t0 + i)} {lvl} [io] {rng.choice(texts)}")
        if lvl == "ERROR":
            lines.append("\tat io.open(C:\\src\\io.c:42)\twith a tab")
    return ("\n".join(lines) + "\n").encode()


def sessions():
    rng = random.Random(23)
    out = []
    for i in range(14):
        day = dt.date(2026, 3, 2) + dt.timedelta(days=rng.randrange(0, 20))
        t0 = dt.datetime.combine(day, dt.time(9), dt.timezone.utc).timestamp() + i * 60
        if i == 0:
            log = P.make_log(rng, 6000)  # its events: far more than one 256 KiB statement
        elif i % 3 == 0:
            log = awkward_log(rng, t0)
        else:
            log = P.make_log(rng, rng.randrange(30, 300))
        started = dt.datetime.fromtimestamp(t0, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append((log, f"local-infile-{i}", {"user": f"user{i % 5}", "host": f"host{i % 3}",
                                               "product": rng.choice(["Studio", "Viewer"]), "started_at": started}))
    return out


def upload_all(stack, items):
    for log, identity, extra in items:
        sid = U.session_id(stack.rx.site, identity, log)
        m = U.make_manifest(stack.rx.site, log, sid=sid, **extra)
        status, body, _ = stack.rx.upload(U.make_session(stack.rx.site, log, manifest=m))
        H.check(status == 201, f"{stack.name}: upload {identity}: {status} {body}")


EVENTS = ("SELECT session_id, seq, line, ts, level, component, template_id, HEX(params), HEX(fields), HEX(message) "
          "FROM events ORDER BY session_id, seq")


def analytics_conf(stack):
    path = os.path.join(stack.parser.dir, "analytics.conf")
    mysql = "".join(f"{k} = {v}\n" for k, v in stack.db.dsn(None).items() if k != "database")
    with open(path, "w") as f:
        f.write(f"[http]\nlisten = 127.0.0.1:0\n[mysql]\n{mysql}"
                "[analytics]\nsource_database = logferry\ntarget_database = logferry_analytics\n")
    return path


def test_parser_and_analytics_give_the_same_tables():
    on = Stack("on")
    off = Stack("off", ["--local-infile=0", "--max-allowed-packet=256K"])
    H.check(off.db.query("SELECT @@GLOBAL.local_infile")[0][0] == "0", "the second server has local_infile off")
    items = sessions()
    for stack in (on, off):
        upload_all(stack, items)
    for stack in (on, off):
        P.wait_for(lambda: int(stack.db.query("SELECT COUNT(*) FROM logferry.sessions")[0][0]) == len(items), 120,
                   f"{stack.name}: every session parsed")
    H.check("loading rows with LOAD DATA LOCAL INFILE" in on.parser.log_text(), "on: the parser uses LOAD DATA")
    H.check("the server has local_infile off: loading rows with multi-row INSERT statements"
            in off.parser.log_text(), f"off: the parser says it uses INSERT: {off.parser.log_text()[-2000:]}")
    a, b = on.db.query(EVENTS, "logferry"), off.db.query(EVENTS, "logferry")
    H.check(len(a) > 6000, f"events of the big session: {len(a)}")
    H.check(a == b, f"events differ: {len(a)} rows with LOAD DATA, {len(b)} with INSERT; first difference "
                    f"{next(((x, y) for x, y in zip(a, b) if x != y), None)}")
    H.check(any("5C" in r[9] for r in b) and any("F09F9880" in r[9] for r in b) and any("096174" in r[9] for r in b),
            "the messages hold backslashes, 4-byte characters and tabs")

    templates = {int(t): s for t, s in on.db.query("SELECT template_id, template FROM templates", "logferry")}
    tables = {}
    for stack in (on, off):
        conf = analytics_conf(stack)
        for job in JOBS:
            r = subprocess.run([H.binary("logferry-analytics"), "--config", conf, "run", job, *DAYS],
                               capture_output=True, text=True, timeout=300)
            H.check(r.returncode == 0, f"{stack.name}: run {job}: {r.stderr[-2000:]}")
            if stack is off:
                H.check("multi-row INSERT statements" in r.stderr, f"off: {job} says it loads with INSERT: {r.stderr}")
        lfanalytics.compare(stack.db, "logferry", "logferry_analytics", templates)
        tables[stack.name] = lfanalytics.actual(stack.db, "logferry_analytics")
    for t in tables["on"]:
        H.check(tables["on"][t] == tables["off"][t], f"{t}: the two servers' tables differ")
    for stack in (on, off):
        stack.parser.stop()


if __name__ == "__main__":
    H.run_tests([test_parser_and_analytics_give_the_same_tables])
