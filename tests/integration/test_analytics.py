"""logferry-analytics on a real MariaDB: generated parsed data, the analytics tables compared with an
independent computation in Python, rerun idempotence, SIGKILL inside a partition's transaction, late
data, two processes racing for one job, and a custom SQL job."""
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import lfanalytics  # noqa: E402
import lfharness as H  # noqa: E402
import lfmariadb  # noqa: E402

DB = None
DIR = None
CONF = None
SRC = "lfa_src"
DST = "lfa_dst"
PRODUCTS = ["Alpha", "Beta"]
VERSIONS = ["1.0", "1.1", "2.0"]
SITES = ["paris", "tokyo", "lyon"]
USERS = [f"user{i}" for i in range(40)]
HOSTS = [f"host{i}" for i in range(15)]
LEVELS = ["info", "info", "info", "warn", "ERROR", "error", "fatal", None]
START = dt.date(2026, 3, 2)  # a Monday
SESSION_NO = [0]
TEMPLATES = {i: f"template <*> number {i}" for i in range(1, 26)}


def setup():
    global DB, DIR, CONF
    DB = lfmariadb.scratch_server(buffer_pool="128M")
    DIR = H.scratch_dir("lfanalytics-")
    CONF = os.path.join(DIR, "analytics.conf")
    with open(os.path.join(DIR, "custom.sql"), "w") as f:
        f.write(f"DELETE FROM custom_sessions WHERE day BETWEEN :from_day AND :to_day;\n"
                f"INSERT INTO custom_sessions SELECT DATE(started_at), COUNT(*) FROM {SRC}.sessions\n"
                f"  WHERE started_at >= :from_day AND started_at < :to_day + INTERVAL 1 DAY\n"
                f"  GROUP BY DATE(started_at);\n")
    with open(CONF, "w") as f:
        f.write(f"""[http]
listen = 127.0.0.1:0
[mysql]
host = 127.0.0.1
port = {DB.port}
user = {DB.user}
password = {DB.password}
[analytics]
source_database = {SRC}
target_database = {DST}
[job.custom_sessions]
sql_file = {DIR}/custom.sql
schedule = 0 3 * * *
""")
    pconf = os.path.join(DIR, "parser.conf")
    with open(pconf, "w") as f:
        f.write(f"[mysql]\nhost = 127.0.0.1\nport = {DB.port}\nuser = {DB.user}\n"
                f"password = {DB.password}\ndatabase = {SRC}\n")
    DB.sql_root(f"CREATE DATABASE {SRC}; CREATE DATABASE {DST};"
                f"CREATE TABLE {DST}.custom_sessions (day DATE PRIMARY KEY, n INT)")
    r = subprocess.run([H.binary("logferry-parser"), "--config", pconf, "db", "migrate"],
                       capture_output=True, text=True, timeout=120)
    H.check(r.returncode == 0, f"parser db migrate failed: {r.stderr}")
    DB.sql_root("INSERT INTO templates (template_id, log_type, template, first_seen, last_seen, occurrences) "
                "VALUES " + ",".join(f"({i}, 'app', '{t}', NOW(), NOW(), 0)" for i, t in TEMPLATES.items()), SRC)
    # two templates merged into others by the miner: their events count under the one they joined
    DB.sql_root("UPDATE templates SET canonical_id = 3 WHERE template_id IN (24, 25)", SRC)


def insert_sessions(rng, days, per_day, parsed_at):
    """Random sessions (some without user, host or duration) with events and session_templates."""
    sess, evs, sts = [], [], []
    for day in days:
        for _ in range(per_day):
            SESSION_NO[0] += 1
            sid = f"{SESSION_NO[0]:032x}"
            start = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86400))
            dur = rng.choice([None] + [rng.randrange(1, 3_600_000) for _ in range(6)])
            user = rng.choice(USERS + [None])
            host = rng.choice(HOSTS + [None])
            sess.append((sid, rng.choice(SITES), rng.choice(PRODUCTS), rng.choice(VERSIONS), host, user,
                         start, dur, rng.random() < 0.1, parsed_at))
            counts = {}
            for seq in range(rng.randrange(0, 12)):
                tid = rng.randrange(1, 26)
                counts[tid] = counts.get(tid, 0) + 1
                evs.append((sid, seq, rng.choice(LEVELS), tid))
            for tid, n in counts.items():
                sts.append((sid, tid, n))

    def q(v):
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "1" if v else "0"
        if isinstance(v, int):
            return str(v)
        return "'" + str(v) + "'"
    stmts = []
    for i in range(0, len(sess), 500):
        stmts.append("INSERT INTO sessions (session_id, site, product, product_version, log_type, host, "
                     "user_name, started_at, duration_ms, crashed, parsed_at, parser_version) VALUES " +
                     ",".join(f"({q(s[0])},{q(s[1])},{q(s[2])},{q(s[3])},'app',{q(s[4])},{q(s[5])},"
                              f"{q(s[6])},{q(s[7])},{q(s[8])},{q(s[9])},'t')" for s in sess[i:i + 500]))
    for i in range(0, len(evs), 1000):
        stmts.append("INSERT INTO events (session_id, seq, line, level, template_id, message) VALUES " +
                     ",".join(f"({q(e[0])},{e[1]},{e[1] + 1},{q(e[2])},{e[3]},'m')" for e in evs[i:i + 1000]))
    for i in range(0, len(sts), 1000):
        stmts.append("INSERT INTO session_templates VALUES " +
                     ",".join(f"({q(s[0])},{s[1]},{s[2]})" for s in sts[i:i + 1000]))
    DB.sql_root(";\n".join(stmts), SRC)


def analytics(*args, env=None, timeout=300):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([H.binary("logferry-analytics"), "--config", CONF] + list(args),
                          capture_output=True, text=True, timeout=timeout, env=e)


def run_ok(*args, **kw):
    r = analytics(*args, **kw)
    H.check(r.returncode == 0, f"{args} failed ({r.returncode}): {r.stderr}")
    return r


def run_all():
    for job in ("daily_usage", "feature_usage", "errors", "retention", "custom_sessions"):
        run_ok("run", job)


# -- the independent computation (tests/lib/lfanalytics.py) -----------------------------------

def compare():
    lfanalytics.compare(DB, SRC, DST, TEMPLATES)


def checksums():
    out = {}
    for t in ("daily_usage", "feature_usage", "errors_daily", "new_error_templates", "retention_weekly",
              "custom_sessions"):
        out[t] = DB.query(f"CHECKSUM TABLE {t}", DST)[0][1]
    return out


def days(n, first=START):
    return [first + dt.timedelta(days=i) for i in range(n)]


# -- tests -------------------------------------------------------------------------------------

def test_tables_equal_independent_computation():
    setup()
    insert_sessions(random.Random(7), days(16), 40, "2026-03-20 10:00:00")
    run_all()
    compare()
    cs = DB.query("SELECT day, n FROM custom_sessions ORDER BY day", DST)
    exp = DB.query("SELECT DATE(started_at), COUNT(*) FROM sessions GROUP BY 1 ORDER BY 1", SRC)
    H.check(cs == exp, f"custom job: {cs[:3]} vs {exp[:3]}")
    runs = DB.query("SELECT job, status, window_from, window_to FROM job_runs", DST)
    H.check(len(runs) == 5 and all(r[1] == "ok" for r in runs), f"job_runs: {runs}")
    H.check(runs[0][2] == "2026-03-02" and runs[0][3] == "2026-03-17", f"window: {runs[0]}")
    st = run_ok("status").stdout
    H.check("daily_usage" in st and "custom_sessions" in st, st)


def test_rerun_and_backfill_leave_identical_tables():
    before = checksums()
    run_all()
    run_ok("run", "daily_usage", "--from", "2026-03-01", "--to", "2026-03-20")
    run_ok("run", "errors", "--from", "2026-03-05", "--to", "2026-03-06")
    run_ok("backfill")
    H.check(checksums() == before, f"rerun changed tables: {before} -> {checksums()}")


def test_late_data_recomputes_affected_days():
    # Sessions of old days parsed now: the days they belong to must be recomputed.
    insert_sessions(random.Random(8), [START + dt.timedelta(days=2), START + dt.timedelta(days=9)], 15,
                    "2026-03-21 09:00:00")
    before = DB.query("SELECT sessions FROM daily_usage WHERE day = '2026-03-04'", DST)
    run_all()
    compare()
    after = DB.query("SELECT sessions FROM daily_usage WHERE day = '2026-03-04'", DST)
    H.check(before != after, "late data did not change the day")
    win = DB.query("SELECT window_from, window_to FROM job_runs WHERE job = 'daily_usage' "
                   "ORDER BY id DESC LIMIT 1", DST)[0]
    H.check(win == ["2026-03-04", "2026-03-11"], f"window of the late-data run: {win}")


def test_sigkill_leaves_no_partial_partition():
    # New data for one day; the run pauses between the partition's delete+insert and its commit.
    day = START + dt.timedelta(days=3)
    old = sorted(DB.query(f"SELECT * FROM daily_usage WHERE day = '{day}'", DST))
    insert_sessions(random.Random(9), [day], 30, "2026-03-22 09:00:00")
    p = H.start([H.binary("logferry-analytics"), "--config", CONF, "run", "daily_usage"],
                env={"LF_ANALYTICS_SLEEP_MS": "20000"}, log_path=os.path.join(DIR, "kill.log"))
    deadline = time.time() + 60
    while time.time() < deadline:
        n = DB.query("SELECT COUNT(*) FROM information_schema.innodb_trx", None)[0][0]
        if int(n) > 0:
            break
        time.sleep(0.1)
    else:
        raise H.TestFailure("the run never opened its transaction")
    time.sleep(0.5)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    # The server rolls the dead connection's transaction back: the day is the old one, whole.
    deadline = time.time() + 30
    while int(DB.query("SELECT COUNT(*) FROM information_schema.innodb_trx")[0][0]) and time.time() < deadline:
        time.sleep(0.1)
    now = sorted(DB.query(f"SELECT * FROM daily_usage WHERE day = '{day}'", DST))
    H.check(now == old, f"partition changed by a killed run: {old} -> {now}")
    run_all()
    st = DB.query("SELECT status FROM job_runs WHERE job = 'daily_usage' ORDER BY id DESC LIMIT 2", DST)
    H.check(st == [["ok"], ["abandoned"]], f"the killed run's row: {st}")
    compare()


def test_two_processes_never_run_one_job_at_once():
    insert_sessions(random.Random(10), [START + dt.timedelta(days=5)], 10, "2026-03-23 09:00:00")
    n_before = int(DB.query("SELECT COUNT(*) FROM job_runs WHERE job = 'feature_usage'", DST)[0][0])
    slow = H.start([H.binary("logferry-analytics"), "--config", CONF, "run", "feature_usage"],
                   env={"LF_ANALYTICS_SLEEP_MS": "3000"}, log_path=os.path.join(DIR, "slow.log"))
    deadline = time.time() + 30
    while time.time() < deadline:
        if int(DB.query("SELECT COUNT(*) FROM job_runs WHERE job = 'feature_usage' AND status = 'running'",
                        DST)[0][0]):
            break
        time.sleep(0.05)
    second = run_ok("run", "feature_usage")
    H.check("skipped" in second.stdout, f"second process did not skip: {second.stdout} {second.stderr}")
    H.check(slow.wait(60) == 0, "first process failed")
    runs = DB.query("SELECT status FROM job_runs WHERE job = 'feature_usage'", DST)
    H.check(len(runs) == n_before + 1 and runs[-1][0] == "ok", f"job_runs: {runs}")
    run_all()
    compare()


def test_daemon_catches_up_missed_run():
    # Built-ins scheduled yearly: only a job whose last success is older than its previous scheduled
    # time (daily_usage, made 400 days old) runs at start; the others wait for next January.
    DB.sql_root("UPDATE job_runs SET started_at = started_at - INTERVAL 400 DAY WHERE job = 'daily_usage'",
                DST)
    insert_sessions(random.Random(11), [START + dt.timedelta(days=1)], 10, "2026-03-24 09:00:00")
    counts = dict(DB.query("SELECT job, COUNT(*) FROM job_runs GROUP BY job", DST))
    port_file = os.path.join(DIR, "daemon.port")
    p = H.start([H.binary("logferry-analytics"), "--config", CONF, "--set", "analytics.schedule=0 0 1 1 *",
                 "--set", "job.custom_sessions.schedule=0 0 1 1 *", "--set", f"http.port_file={port_file}",
                 "--set", "analytics.timezone=Europe/Paris"], log_path=os.path.join(DIR, "daemon.log"))
    deadline = time.time() + 30
    while time.time() < deadline:
        n = int(DB.query("SELECT COUNT(*) FROM job_runs WHERE job = 'daily_usage'", DST)[0][0])
        if n > int(counts["daily_usage"]):
            break
        time.sleep(0.2)
    else:
        raise H.TestFailure("daemon did not catch up daily_usage")
    time.sleep(2)
    H.check(p.poll() is None, "daemon exited")
    H.stop(p)
    now = dict(DB.query("SELECT job, COUNT(*) FROM job_runs GROUP BY job", DST))
    for job in ("feature_usage", "errors", "retention", "custom_sessions"):
        H.check(now[job] == counts[job], f"{job} ran without being due: {counts} -> {now}")
    H.check(int(now["daily_usage"]) == int(counts["daily_usage"]) + 1, f"daily_usage runs: {now}")
    got = DB.query("SELECT SUM(sessions) FROM daily_usage WHERE day = '2026-03-03'", DST)[0][0]
    want = DB.query("SELECT COUNT(*) FROM sessions WHERE DATE(started_at) = '2026-03-03'", SRC)[0][0]
    H.check(got == want, f"daemon run did not load the late data: {got} vs {want}")


def test_upgrade_adds_site_and_recomputes():
    """A database at schema version 2 (no site in feature_usage, errors_daily, retention_activity),
    with rows already loaded, upgraded by the next run: every table ends equal to the independent
    computation, site included, with no run by hand."""
    run_all()
    DB.sql_root("DELETE FROM feature_usage; DELETE FROM retention_activity;"
                "ALTER TABLE feature_usage DROP PRIMARY KEY, DROP COLUMN site, "
                "ADD PRIMARY KEY (day, product, product_version, template_id);"
                "ALTER TABLE errors_daily DROP COLUMN site;"
                "ALTER TABLE retention_activity DROP PRIMARY KEY, DROP COLUMN site, DROP COLUMN product_version, "
                "ADD PRIMARY KEY (product, user_name, week);"
                "DELETE FROM schema_migrations WHERE version = 3;"
                "INSERT INTO feature_usage VALUES ('2026-03-02', 'Alpha', '1.0', 7, 'stale', 99, 9)", DST)
    run_all()
    H.check(DB.query("SELECT MAX(version) FROM schema_migrations", DST)[0][0] == "3", "migration 3 applied")
    compare()


def test_data_dictionary_matches_the_schema():
    """`logferry-analytics dictionary` (docs/bi.md is generated from it) names every table and column
    of the migrated analytics database, in order, with their types, and nothing else."""
    r = subprocess.run([H.binary("logferry-analytics"), "dictionary"], capture_output=True, text=True, timeout=30)
    H.check(r.returncode == 0, r.stderr)
    documented, table = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("### "):
            table = line[4:]
            documented[table] = []
        elif line.startswith("| `"):
            name, typ, meaning = [c.strip() for c in line.strip("|").split("|")][:3]
            H.check(meaning.endswith(".") and len(meaning) >= 4, f"{table}.{name}: no meaning")
            documented[table].append((name.strip("`"), typ.split("(")[0].lower()))
    real = {}
    for t, c, typ in DB.query("SELECT table_name, column_name, data_type FROM information_schema.columns "
                              f"WHERE table_schema = '{DST}' AND table_name <> 'custom_sessions' "
                              "ORDER BY table_name, ordinal_position"):
        real.setdefault(t, []).append((c, typ))
    H.check(sorted(documented) == sorted(real), f"tables: documented {sorted(documented)}, real {sorted(real)}")
    for t in real:
        H.check(documented[t] == real[t], f"{t}: documented {documented[t]}, real {real[t]}")


if __name__ == "__main__":
    H.run_tests([test_tables_equal_independent_computation, test_rerun_and_backfill_leave_identical_tables,
                 test_late_data_recomputes_affected_days, test_sigkill_leaves_no_partial_partition,
                 test_two_processes_never_run_one_job_at_once, test_daemon_catches_up_missed_run,
                 test_upgrade_adds_site_and_recomputes, test_data_dictionary_matches_the_schema])
