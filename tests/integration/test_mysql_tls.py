"""TLS to MySQL for every program that connects, against a MariaDB that requires it
(--require-secure-transport=ON, a certificate from a test CA naming 127.0.0.1 and localhost, also
listening on 127.0.0.2, which the certificate does not name):

- the parser service, the receiver's read routes, analytics (`run` of every built-in job, from a
  [source] server of its own too, and the dashboard's API) and the monitor's mysql check work with
  ssl_mode = verify_ca and the CA in ssl_ca;
- each is refused, with an error that says why, without TLS (ssl_mode = disabled: the server
  refuses plaintext), with another CA, and with verify_identity on an address the certificate does
  not name (while verify_identity on 127.0.0.1 works);
- --check-config reports an unreadable ssl_ca, a verify mode without ssl_ca and an unknown
  ssl_mode, naming the key.
"""
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

import lfanalytics
import lfharness as H
import lfmariadb
import lfparser as P
import lfupload as U
from fakeproc import start_fake


class E:
    dir = db = tls = rx = parser = None


def tls_conf(mode="verify_ca", ca=None, prefix=""):
    ca = E.tls["ca"] if ca is None and mode.startswith("verify") else ca
    return f"{prefix}ssl_mode = {mode}\n" + (f"{prefix}ssl_ca = {ca}\n" if ca else "")


def mysql_keys(database=None):
    return "".join(f"{k} = {v}\n" for k, v in E.db.dsn(database).items() if v is not None)


def mysql_section(database, tls):
    return "[mysql]\n" + mysql_keys(database) + tls


def setup():
    E.dir = H.scratch_dir("lfmysqltls-")
    E.tls = lfmariadb.tls_files(E.dir)
    E.db = lfmariadb.scratch_server(extra_args=lfmariadb.tls_required_args(E.tls))
    E.rx = U.Receiver(extra_config=mysql_section("logferry", tls_conf()))
    E.parser = P.Parser(E.rx, E.db, workers=2, extra=tls_conf())


def run(args, timeout=120):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def refused(r, *needles):
    """A command that failed, saying each needle (on stderr, where the programs log)."""
    err = r.stderr.decode(errors="replace") if isinstance(r.stderr, bytes) else r.stderr
    H.check(r.returncode != 0, f"{r.args} succeeded: {r.stdout[-300:]}")
    for n in needles:
        H.check(n in err, f"{r.args}: \"{n}\" not in: {err[-1500:]}")


def test_parser_and_read_routes_over_tls():
    r = E.parser.cli("db", "migrate")
    H.check(r.returncode == 0, f"db migrate over TLS: {r.stderr.decode()}")
    E.parser.start()
    rng = random.Random(5)
    ids = []
    for i in range(6):
        log = P.make_log(rng, rng.randrange(40, 200))
        day = f"2026-03-{2 + i % 5:02d}T{8 + i:02d}:00:00Z"
        m = U.make_manifest(E.rx.site, log, sid=U.session_id(E.rx.site, f"tls-{i}", log), user=f"user{i % 3}",
                            host=f"host{i % 2}", started_at=day)
        s = U.make_session(E.rx.site, log, manifest=m)
        status, body, _ = E.rx.upload(s)
        H.check(status == 201, f"upload {i}: {status} {body}")
        ids.append(s.id)
    P.wait_for(lambda: int(E.db.query("SELECT COUNT(*) FROM logferry.sessions")[0][0]) == len(ids), 90,
               "every session parsed over TLS")
    H.check("loading rows with LOAD DATA LOCAL INFILE" in E.parser.log_text(), "the parser says how it loads")
    # the parser's connections really are TLS ones (the server refuses others, but look anyway)
    st, _, body = E.rx.get("/v1/sessions", token=E.rx.read_token)
    H.check(st == 200, f"GET /v1/sessions over TLS: {st} {body[:300]}")
    H.check(sorted(s["session_id"] for s in json.loads(body)["sessions"]) == sorted(ids), "the list")
    st, _, body = E.rx.get(f"/v1/sessions/{ids[0]}/events", token=E.rx.read_token)
    H.check(st == 200 and json.loads(body)["events"], f"events over TLS: {st} {body[:300]}")
    E.parser.stop()


def test_parser_refusals_say_why():
    # the server refuses plaintext; the error points at ssl_mode
    plain = P.Parser(E.rx, E.db, workers=1, extra=tls_conf("disabled"), name="plain")
    refused(plain.cli("db", "status"), "require_secure_transport")
    # another CA
    refused(E.parser.cli("--set", f"mysql.ssl_ca={E.tls['other_ca']}", "db", "status"),
            "TLS (ssl_mode verify_ca, ssl_ca " + E.tls["other_ca"], "certificate")
    # verify_identity: 127.0.0.1 is in the certificate, 127.0.0.2 is not
    r = E.parser.cli("--set", "mysql.ssl_mode=verify_identity", "db", "status")
    H.check(r.returncode == 0, f"verify_identity on 127.0.0.1: {r.stderr.decode()}")
    refused(E.parser.cli("--set", "mysql.ssl_mode=verify_identity", "--set", "mysql.host=127.0.0.2", "db", "status"),
            "TLS (ssl_mode verify_identity", "Validation of SSL server certificate failed")
    r = E.parser.cli("--set", "mysql.host=127.0.0.2", "db", "status")
    H.check(r.returncode == 0, f"verify_ca does not check the name: {r.stderr.decode()}")
    # the daemon holds sessions and says why while it cannot connect
    bad = P.Parser(E.rx, E.db, workers=1, extra=tls_conf(ca=E.tls["other_ca"]), name="badca")
    bad.start()
    rng = random.Random(9)
    log = P.make_log(rng, 30)
    status, body, _ = E.rx.upload(U.make_session(E.rx.site, log, identity="held"))
    H.check(status == 201, f"upload: {status} {body}")
    P.wait_for(lambda: "TLS (ssl_mode verify_ca" in bad.log_text(), 30, "the parser logging the TLS refusal")
    bad.stop()


def test_receiver_refusals_say_why():
    rx = U.Receiver(extra_config=mysql_section("logferry", tls_conf(ca=E.tls["other_ca"])))
    st, _, body = rx.get("/v1/sessions", token=rx.read_token)
    H.check(st == 503, f"read routes with another CA: {st} {body[:200]}")
    with open(rx.log, errors="replace") as f:
        text = f.read()
    H.check("TLS (ssl_mode verify_ca" in text, f"the receiver says why: {text[-1500:]}")
    rx.stop()
    # verify_identity on an address the certificate does not name
    rx2 = U.Receiver(extra_config=mysql_section("logferry", tls_conf("verify_identity")).replace(
        "host = 127.0.0.1", "host = 127.0.0.2"))
    st, _, body = rx2.get("/v1/sessions", token=rx2.read_token)
    H.check(st == 503, f"read routes with a name mismatch: {st} {body[:200]}")
    with open(rx2.log, errors="replace") as f:
        H.check("Validation of SSL server certificate failed" in f.read(), "the receiver says why")
    rx2.stop()


def check_config(binary, conf, *sets):
    return run([H.binary(binary), "--config", conf, *[a for s in sets for a in ("--set", s)], "--check-config"])


def test_check_config_reports_tls_settings():
    missing = os.path.join(E.dir, "no-such-ca.pem")
    r = check_config("logferry-parser", E.parser.conf, f"mysql.ssl_ca={missing}")
    H.check(r.returncode == 2 and "[mysql] ssl_ca" in r.stdout + r.stderr and "no-such-ca.pem" in r.stdout + r.stderr,
            f"parser --check-config with a missing CA: {r.returncode} {r.stdout} {r.stderr}")
    r = check_config("logferry-receiver", E.rx.conf, "mysql.ssl_ca=")
    H.check(r.returncode == 2 and "ssl_ca" in r.stdout + r.stderr, f"receiver, empty CA: {r.stdout} {r.stderr}")
    r = check_config("logferry-receiver", E.rx.conf, f"mysql.ssl_ca={missing}")
    H.check(r.returncode == 2 and "[mysql] ssl_ca" in r.stdout + r.stderr, f"receiver: {r.stdout} {r.stderr}")
    r = check_config("logferry-parser", E.parser.conf, "mysql.ssl_mode=required")
    H.check(r.returncode == 2 and "ssl_ca" in r.stdout + r.stderr and "verify_ca" in r.stdout + r.stderr,
            f"a CA with ssl_mode required: {r.stdout} {r.stderr}")
    r = run([H.binary("logferry-parser"), "--config", E.parser.conf, "--set", "mysql.ssl_mode=verify-ca", "--check-config"])
    H.check(r.returncode == 2 and "ssl_mode" in r.stderr, f"an unknown ssl_mode: {r.returncode} {r.stderr}")
    r = check_config("logferry-parser", E.parser.conf)
    H.check(r.returncode == 0, f"the good configuration passes: {r.stdout} {r.stderr}")


def analytics_conf(path, mysql_tls, source=""):
    with open(path, "w") as f:
        f.write(f"""[http]
listen = 127.0.0.1:0
port_file = {path}.port
[mysql]
{mysql_keys()}{mysql_tls}{source}
[analytics]
source_database = logferry
target_database = lfa_tls
schedule = 0 0 1 1 *
""")
        # a dashboard readable without signing in, where this build has sign-in
        if "anonymous" in run([H.binary("logferry-analytics"), "--config", path, "--dump-config"]).stdout:
            f.write("[dashboard]\nanonymous = true\n")
    return path


JOBS = ("daily_usage", "feature_usage", "errors", "retention")
DAYS = ("--from", "2026-03-01", "--to", "2026-03-31")


def analytics(conf, *args):
    return run([H.binary("logferry-analytics"), "--config", conf, *args], timeout=300)


def test_analytics_over_tls():
    conf = analytics_conf(os.path.join(E.dir, "analytics.conf"), tls_conf())
    for job in JOBS:  # the days of the sessions (those parsed in the last minute are not settled yet)
        r = analytics(conf, "run", job, *DAYS)
        H.check(r.returncode == 0, f"run {job} over TLS: {r.stderr[-1500:]}")
    templates = {int(t): s for t, s in E.db.query("SELECT template_id, template FROM templates", "logferry")}
    lfanalytics.compare(E.db, "logferry", "lfa_tls", templates)
    # the dashboard's API reads the tables over TLS too
    p = H.start([H.binary("logferry-analytics"), "--config", conf], log_path=os.path.join(E.dir, "dash.log"))
    port = int(P.wait_for(lambda: open(conf + ".port").read().strip() if os.path.exists(conf + ".port") else None,
                          30, "dashboard port"))
    H.wait_port(port, proc=p)
    st, _, body = H.http("GET", port, "/dashboard/api/usage")
    H.check(st == 200, f"dashboard API over TLS: {st} {body[:300]}")
    rows = json.loads(body)["rows"]
    want = E.db.query("SELECT COUNT(DISTINCT day) FROM daily_usage", "lfa_tls")[0][0]
    H.check(len(rows) == int(want) and len(rows) > 0, f"dashboard rows {rows} vs {want} days")
    H.stop(p)


def test_analytics_refusals_and_source_server():
    conf = analytics_conf(os.path.join(E.dir, "bad.conf"), tls_conf(ca=E.tls["other_ca"]))
    r = analytics(conf, "run", "daily_usage", *DAYS)
    refused(r, "TLS (ssl_mode verify_ca, ssl_ca " + E.tls["other_ca"])
    conf = analytics_conf(os.path.join(E.dir, "plain.conf"), tls_conf("disabled"))
    refused(analytics(conf, "run", "daily_usage", *DAYS), "require_secure_transport")
    # [source] on a server of its own (here: the same one on 127.0.0.2) with its own TLS settings
    src = f"""[source]
host = 127.0.0.2
port = {E.db.port}
"""
    conf = analytics_conf(os.path.join(E.dir, "src-ok.conf"), tls_conf(), src + tls_conf())
    r = analytics(conf, "run", "daily_usage", *DAYS)
    H.check(r.returncode == 0, f"[source] over TLS with verify_ca: {r.stderr[-1500:]}")
    conf = analytics_conf(os.path.join(E.dir, "src-name.conf"), tls_conf(), src + tls_conf("verify_identity"))
    refused(analytics(conf, "run", "daily_usage", *DAYS), "TLS (ssl_mode verify_identity",
            "Validation of SSL server certificate failed")
    conf = analytics_conf(os.path.join(E.dir, "src-plain.conf"), tls_conf(), src + tls_conf("disabled"))
    refused(analytics(conf, "run", "daily_usage", *DAYS), "require_secure_transport")


def test_monitor_mysql_check_over_tls():
    slack_proc, slack_port = start_fake("slack_fake.py", log_path=os.path.join(E.dir, "slack.log"))
    d = os.path.join(E.dir, "monitor")
    os.makedirs(d)

    def check(name, host, tls):
        return (f"[check.{name}]\nkind = mysql\nmysql_host = {host}\nmysql_port = {E.db.port}\n"
                f"mysql_user = {E.db.user}\nmysql_password = {E.db.password}\n{tls}interval = 1s\ntimeout = 900ms\n"
                "pending_count = 1\nreminder_every = 1h\nflap_changes = 0\n")
    conf = os.path.join(d, "monitor.conf")
    with open(conf, "w") as f:
        f.write(f"""[log]
level = debug
[http]
listen = 127.0.0.1:0
[slack]
webhook_url = http://127.0.0.1:{slack_port}/services/T0TEST/B0TEST/tls
[monitor]
state_dir = {d}/state
group_window = 0
""" + check("good", "127.0.0.1", tls_conf(prefix="mysql_"))
                + check("named", "127.0.0.1", tls_conf("verify_identity", prefix="mysql_"))
                + check("plain", "127.0.0.1", tls_conf("disabled", prefix="mysql_"))
                + check("otherca", "127.0.0.1", tls_conf(ca=E.tls["other_ca"], prefix="mysql_"))
                + check("mismatch", "127.0.0.2", tls_conf("verify_identity", prefix="mysql_")))
    log = os.path.join(d, "monitor.log")
    p = H.start([H.binary("logferry-monitor"), "--config", conf], log_path=log)

    def result(name):
        with open(log, errors="replace") as f:
            lines = [ln for ln in f if f"check {name}: " in ln]
        return lines[-1] if lines else None
    want = {"good": ("ok", None), "named": ("ok", None), "plain": ("FAILED", "require_secure_transport"),
            "otherca": ("FAILED", "TLS (ssl_mode verify_ca"),
            "mismatch": ("FAILED", "Validation of SSL server certificate failed")}
    for name, (state, why) in want.items():
        line = P.wait_for(lambda: result(name), 30, f"a result of check {name}")
        H.check(f"check {name}: {state}" in line and (why is None or why in line), f"check {name}: {line}")
    H.stop(p)
    # --check-config: an unreadable CA in a check
    with open(conf, "a") as f:
        f.write(check("missing", "127.0.0.1", tls_conf(ca=os.path.join(d, "none.pem"), prefix="mysql_")))
    r = run([H.binary("logferry-monitor"), "--config", conf, "--check-config"])
    H.check(r.returncode == 2 and "[check.missing] mysql_ssl_ca" in r.stdout + r.stderr,
            f"monitor --check-config: {r.returncode} {r.stdout} {r.stderr}")
    # settings that do not go together are refused when the file is read
    for tls, key in ((tls_conf("verify_identity", ca="", prefix="mysql_"), "mysql_ssl_ca"),
                     ("mysql_ssl_mode = required\nmysql_ssl_cert = /x.pem\n", "mysql_ssl_key"),
                     ("mysql_ssl_mode = verify-ca\n", "mysql_ssl_mode")):
        with open(conf, "w") as f:
            f.write(f"[slack]\nwebhook_url = http://127.0.0.1:{slack_port}/x\n[monitor]\nstate_dir = {d}/state\n"
                    + check("bad", "127.0.0.1", tls))
        r = run([H.binary("logferry-monitor"), "--config", conf, "--check-config"])
        H.check(r.returncode == 2 and f"[check.bad] {key}" in r.stdout + r.stderr,
                f"monitor --check-config, {key}: {r.returncode} {r.stdout} {r.stderr}")
    slack_proc.kill()


if __name__ == "__main__":
    setup()
    H.run_tests([test_parser_and_read_routes_over_tls, test_parser_refusals_say_why, test_receiver_refusals_say_why,
                 test_check_config_reports_tls_settings, test_analytics_over_tls,
                 test_analytics_refusals_and_source_server, test_monitor_mysql_check_over_tls])
