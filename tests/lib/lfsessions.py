"""Checks parsed sessions in MariaDB against logferry-sessiongen's ground truth (--truth FILE): the
quick start and tests/integration/test_multihost.py use it.

    truth = load_truth(path)
    problems = verify(db, truth)     # [] when every session is there once, with the right fields
"""
import json
import os


def load_truth(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def expected_row(t):
    """(site, product, version, user, host, events, crashed, warnings, errors) as MariaDB prints them."""
    lv = t["levels"]
    return (t["site"], t["product"], t["version"], t["user"], t["host"], str(t["events"]),
            str(int(t["crashed"])), str(lv.get("WARN", 0)), str(lv.get("ERROR", 0) + lv.get("FATAL", 0)))


def verify(db, truth, database="logferry"):
    """Every generated session is in `sessions` exactly once with the truth's fields, and `events`
    holds exactly the truth's events (no session loaded twice). Returns a list of problems."""
    rows = db.query("SELECT source_path, site, product, product_version, user_name, host, event_count, "
                    "crashed, warning_count, error_count FROM sessions", database)
    got = {}
    problems = []
    for r in rows:
        name = os.path.basename(r[0] or "")
        if name in got:
            problems.append(f"{name}: {len(got[name]) + 1} sessions rows")
        got.setdefault(name, []).append(r)
    for t in truth:
        name = os.path.basename(t["path"])
        r = got.get(name)
        if r is None:
            problems.append(f"{t['path']}: not in the database")
        elif tuple(r[0][1:]) != expected_row(t):
            problems.append(f"{t['path']}: database {tuple(r[0][1:])}, truth {expected_row(t)}")
    if len(rows) != len(truth):
        problems.append(f"{len(rows)} sessions in the database for {len(truth)} generated")
    events = int(db.query("SELECT COUNT(*) FROM events", database)[0][0])
    want = sum(t["events"] for t in truth)
    if events != want:
        problems.append(f"{events} events rows for {want} generated events")
    return problems
