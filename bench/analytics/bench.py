"""Incremental daily run time as history grows: day after day of parsed data (sessions of 100
events each) is loaded with LOAD DATA; at each sample point the jobs first catch up the earlier days
(not timed), then one new day is loaded and one incremental run of every built-in job is timed.
Flat means the run's cost depends on the day's data, not on the history's size."""
import datetime as dt
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "lib"))
import lfharness as H  # noqa: E402
import lfmariadb  # noqa: E402

DAYS = int(os.environ.get("BENCH_DAYS", "100"))
EVENTS = int(os.environ.get("BENCH_EVENTS_PER_DAY", "100000"))
SAMPLES = [int(x) for x in os.environ.get("BENCH_SAMPLES", "1 10 25 50 100").split() if int(x) <= DAYS]
PER_SESSION = 100
JOBS = ("daily_usage", "feature_usage", "errors", "retention")
LEVELS = ["info"] * 90 + ["warn"] * 6 + ["error"] * 3 + ["fatal"]
FIRST = dt.date(2026, 1, 1)


def load_day(db, n):
    """Day n (0-based): EVENTS events in EVENTS/100 sessions, parsed at a time that orders days."""
    day = FIRST + dt.timedelta(days=n)
    parsed = dt.datetime(2026, 1, 1) + dt.timedelta(hours=n)
    sess, evs, sts = [], [], []
    for s in range(EVENTS // PER_SESSION):
        sid = f"{n:08x}{s:024x}"
        k = n * 100003 + s * 7919
        start = f"{day} {k % 24:02d}:{k % 60:02d}:{(k // 7) % 60:02d}"
        sess.append(f"{sid}\tsite{k % 5}\tProduct{k % 3}\t{k % 4}.0\tapp\thost{k % 50}\tuser{k % 700}\t"
                    f"{start}\t{k % 3600000}\t{int(k % 53 == 0)}\t{parsed}\tbench")
        counts = {}
        for e in range(PER_SESSION):
            tid = 1 + (k + e * 31) % 200
            counts[tid] = counts.get(tid, 0) + 1
            evs.append(f"{sid}\t{e}\t{e + 1}\t{LEVELS[(k + e) % 100]}\t{tid}\tm")
        sts.extend(f"{sid}\t{t}\t{c}" for t, c in counts.items())
    d = lfharness_dir
    for name, rows in (("s", sess), ("e", evs), ("t", sts)):
        with open(os.path.join(d, name + ".tsv"), "w") as f:
            f.write("\n".join(rows) + "\n")
    db.sql_root(
        f"LOAD DATA LOCAL INFILE '{d}/s.tsv' INTO TABLE sessions (session_id, site, product, "
        "product_version, log_type, host, user_name, started_at, duration_ms, crashed, parsed_at, "
        f"parser_version); LOAD DATA LOCAL INFILE '{d}/e.tsv' INTO TABLE events (session_id, seq, line, "
        f"level, template_id, message); LOAD DATA LOCAL INFILE '{d}/t.tsv' INTO TABLE session_templates",
        "logferry")


def run_jobs(conf, timed):
    out = {}
    for job in JOBS:
        t0 = time.time()
        r = subprocess.run([H.binary("logferry-analytics"), "--config", conf, "run", job],
                           capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise SystemExit(f"{job} failed: {r.stderr}")
        out[job] = (time.time() - t0) * 1000
    return out if timed else None


lfharness_dir = None


def main():
    global lfharness_dir
    db = lfmariadb.scratch_server(buffer_pool="512M")
    lfharness_dir = H.scratch_dir("lfbench-analytics-")
    d = lfharness_dir
    orig_sql_root = db.sql_root

    def sql_root(sql, database=None):  # the client needs --local-infile for LOAD DATA LOCAL
        args = ["mariadb", "--no-defaults", "--local-infile=1", "-S", db.socket, "-uroot", "--batch",
                "--skip-column-names"] + ([database] if database else [])
        r = subprocess.run(args, input=sql.encode(), capture_output=True)
        if r.returncode:
            raise RuntimeError(r.stderr.decode())
        return r.stdout.decode()
    db.sql_root = sql_root
    del orig_sql_root
    conf = os.path.join(d, "analytics.conf")
    with open(conf, "w") as f:
        f.write(f"[log]\nlevel = warn\n[mysql]\nhost = 127.0.0.1\nport = {db.port}\nuser = {db.user}\n"
                f"password = {db.password}\n")
    pconf = os.path.join(d, "parser.conf")
    with open(pconf, "w") as f:
        f.write(f"[mysql]\nhost = 127.0.0.1\nport = {db.port}\nuser = {db.user}\npassword = {db.password}\n"
                "database = logferry\n")
    db.sql_root("CREATE DATABASE logferry")
    subprocess.run([H.binary("logferry-parser"), "--config", pconf, "db", "migrate"], check=True,
                   capture_output=True)
    db.sql_root("INSERT INTO templates VALUES " + ",".join(
        f"({i}, 'app', 'template {i} <*>', NOW(), NOW(), 0)" for i in range(1, 201)), "logferry")
    print(f"# {EVENTS} events/day in {EVENTS // PER_SESSION} sessions; one incremental run of each "
          "built-in job after loading day N (ms, wall clock incl. process start)")
    print(f"{'days':>5} " + " ".join(f"{j:>14}" for j in JOBS) + f" {'total':>8}", flush=True)
    loaded = 0
    for n in SAMPLES:
        while loaded < n - 1:
            load_day(db, loaded)
            loaded += 1
        run_jobs(conf, False)  # catch up the earlier days, untimed
        load_day(db, loaded)
        loaded += 1
        t = run_jobs(conf, True)
        print(f"{n:>5} " + " ".join(f"{t[j]:>14.0f}" for j in JOBS) + f" {sum(t.values()):>8.0f}", flush=True)
    db.kill()


if __name__ == "__main__":
    main()
