"""The whole appliance on separate hosts: one network namespace per host, joined by two bridges the
test creates (and deletes) in a namespace of its own. Nothing listens on or talks to any address
outside them.

    public 10.231.1.0/24   site-1, site-2 (uploaders) ---- receiver host: nginx (TLS, 443)
    internal 10.231.0.0/24 receiver (8440), MariaDB, parser-1, parser-2, monitor, Slack catcher,
                           analytics

The sites reach the receiver only through nginx running packaging/nginx/logferry-receiver.conf with a
private CA; they have no route to the internal network. 2,000 generated sessions from both sites are
released in five batches, one per incident, and for each incident the test waits until Slack has
been told, so the expected alerts are exact:

  A  nothing happens                            no alert
  B  the link between receiver and parsers is   `parsing` FIRING (no session parsed while the
     cut (blackhole routes on both sides)        queue fills), RESOLVED once restored
  C  parser-2 is killed with SIGKILL            `parser-2` FIRING, RESOLVED after its restart
  D  MariaDB is killed with SIGKILL while       `mysql` and `parsing` FIRING, both RESOLVED after
     sessions arrive                             its restart (the parsers hold their sessions)
  E  the receiver is killed with SIGKILL        `receiver` and `parsing` FIRING (queue statistics
     during uploads                              unreadable), both RESOLVED after its restart

At the end every session is in MySQL exactly once with the generator's ground truth, the queue and
its dead-letter queue are empty, the analytics tables equal an independent computation, and Slack
received exactly the FIRING/RESOLVED pairs above, each check's in order, and nothing else.
"""
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import lfanalytics  # noqa: E402
import lfharness as H  # noqa: E402
import lfhosts  # noqa: E402
import lfmariadb  # noqa: E402
import lfnetns  # noqa: E402
import lfsessions  # noqa: E402
import lfuploader  # noqa: E402
from lfhosts import run_ok, write  # noqa: E402

SESSIONS = int(os.environ.get("LF_MULTIHOST_SESSIONS", "2000"))
BATCHES = "ABCDE"
INTERNAL, PUBLIC = "10.231.0.", "10.231.1."
HOSTS = {  # host: [(bridge, address)]
    "receiver": [("br0", INTERNAL + "2"), ("br1", PUBLIC + "2")],
    "db": [("br0", INTERNAL + "3")],
    "monitor": [("br0", INTERNAL + "4")],
    "slack": [("br0", INTERNAL + "5")],
    "analytics": [("br0", INTERNAL + "6")],
    "parser-1": [("br0", INTERNAL + "21")],
    "parser-2": [("br0", INTERNAL + "22")],
    "site-1": [("br1", PUBLIC + "11")],
    "site-2": [("br1", PUBLIC + "12")],
}
RX_IP, DB_IP, SLACK_IP = INTERNAL + "2", INTERNAL + "3", INTERNAL + "5"
PARSER_IPS = {"parser-1": INTERNAL + "21", "parser-2": INTERNAL + "22"}
PROGRESS_WINDOW_S = 20


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_for(cond, timeout, what, step=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise H.TestFailure(f"timed out after {timeout}s waiting for {what}")


# -- the network -------------------------------------------------------------------------------

NET = lfnetns.Network("lfmh", HOSTS)
in_ns = NET.in_ns


def cut_receiver_from_parsers(cut):
    """Blackhole routes both ways: the link is gone (a sender's connect fails at once; see
    lfnetns.sever for a cut where packets silently vanish)."""
    for host, addr in PARSER_IPS.items():
        NET.blackhole(host, RX_IP, cut)
        NET.blackhole("receiver", addr, cut)


def ns_http(host, method, url, token=None, timeout=5, cacert=None):
    """(status, body) of one request made from inside a host; status 0 when it could not connect
    (or the server's certificate is not trusted)."""
    args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--max-time", str(timeout), url]
    if cacert:
        args += ["--cacert", cacert]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    p = subprocess.run(in_ns(host, args), capture_output=True, text=True)
    body, _, code = p.stdout.rpartition("\n")
    return int(code or 0), body


# -- the hosts ---------------------------------------------------------------------------------

class Env:
    pass


E = Env()


def start_in(host, args, name):
    log_path = os.path.join(E.dir, name + ".log")
    return H.start(in_ns(host, args), log_path=log_path)


def wait_healthy(host, url, proc, what, timeout=60):
    def ok():
        if proc.poll() is not None:
            raise H.TestFailure(f"{what} exited with {proc.returncode}; {proc.log_path} ends:\n"
                                f"{lfhosts.tail(proc.log_path)}")
        return ns_http(host, "GET", url, timeout=2)[0] == 200
    wait_for(ok, timeout, f"{what} to answer {url}", step=0.2)


def make_tls():
    d = os.path.join(E.dir, "tls")
    os.makedirs(d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run_ok(["openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt", "-days", "2",
            "-subj", "/CN=logferry test CA"], "openssl CA")
    run_ok(["openssl", "req", *ec, "-keyout", f"{d}/receiver.key", "-out", f"{d}/receiver.csr",
            "-subj", "/CN=logferry.test"], "openssl request")
    write(f"{d}/ext.cnf", f"subjectAltName=DNS:logferry.test,IP:{PUBLIC}2\n")
    run_ok(["openssl", "x509", "-req", "-in", f"{d}/receiver.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
            "-CAcreateserial", "-out", f"{d}/receiver.crt", "-days", "2", "-extfile", f"{d}/ext.cnf"],
           "openssl sign")
    return d


def start_nginx(tls):
    """nginx on the receiver host with the shipped example, only paths and the upstream replaced."""
    d = os.path.join(E.dir, "nginx")
    os.makedirs(d)
    with open(os.path.join(H.SOURCE_DIR, "packaging", "nginx", "logferry-receiver.conf")) as f:
        site = f.read()
    for old, new in (("server 127.0.0.1:8440;", f"server {RX_IP}:8440;"),
                     ("/etc/logferry/tls/receiver.crt", f"{tls}/receiver.crt"),
                     ("/etc/logferry/tls/receiver.key", f"{tls}/receiver.key")):
        H.check(old in site, f"the nginx example no longer has {old!r}")
        site = site.replace(old, new)
    write(f"{d}/logferry-receiver.conf", site)
    write(f"{d}/nginx.conf", lfhosts.nginx_conf(d, f"    include {d}/logferry-receiver.conf;\n"))
    E.nginx = start_in("receiver", ["nginx", "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log"], "nginx")
    url = f"https://{PUBLIC}2/healthz"
    wait_for(lambda: ns_http("site-1", "GET", url, cacert=f"{tls}/ca.crt")[0] == 200, 30,
             "the receiver's /healthz through nginx over TLS", step=0.2)
    H.check(ns_http("site-1", "GET", url)[0] == 0, "a certificate not from the site's CA is refused")
    H.check(ns_http("site-1", "GET", f"http://{RX_IP}:8440/healthz", timeout=2)[0] == 0,
            "a site cannot reach the receiver but through nginx")


def receiver_setup():
    d = E.rx_dir = os.path.join(E.dir, "receiver")
    E.rx_conf = f"{d}/receiver.conf"
    write(E.rx_conf, lfhosts.receiver_conf(d, f"{RX_IP}:8440"))
    rx = [H.binary("logferry-receiver"), "--config", E.rx_conf]
    run_ok(rx + ["keys", "rotate"], "receiver keys rotate")
    E.worker_token = run_ok(rx + ["tokens", "add", "parsers", "--scope", "worker"], "tokens add").strip()
    E.monitor_token = run_ok(rx + ["tokens", "add", "monitor", "--scope", "read"], "tokens add").strip()


def receiver_start():
    E.rx = start_in("receiver", [H.binary("logferry-receiver"), "--config", E.rx_conf], "receiver")
    wait_healthy("monitor", f"http://{RX_IP}:8440/healthz", E.rx, "receiver")


def queue_stats():
    import json
    st, body = ns_http("monitor", "GET", f"http://{RX_IP}:8440/v1/queues/sessions", E.monitor_token)
    H.check(st == 200, f"queue statistics: {st} {body}")
    return json.loads(body)


def uploader_setup(site_no, site):
    conf, pubkey = lfuploader.agent_setup(os.path.join(E.dir, f"uploader-{site}"), site, E.sites_dir,
                                          f"https://{PUBLIC}2", "1s", ca_file=f"{E.tls}/ca.crt")
    run_ok([H.binary("logferry-receiver"), "--config", E.rx_conf, "sites", "add", site, pubkey], "sites add")
    host = f"site-{site_no}"
    p = start_in(host, [H.binary("logferry-uploader"), "--config", conf, "run"], f"uploader-{site}")
    wait_healthy(host, "http://127.0.0.1:8441/healthz", p, f"uploader of {site}")
    return p


def parser_conf(host):
    return lfhosts.parser_conf(os.path.join(E.dir, host), f"{PARSER_IPS[host]}:8442",
                               f"url = http://{RX_IP}:8440\ntoken = {E.worker_token}\nwait = 2s\nvisibility = 10s\n",
                               os.path.join(E.rx_dir, "keys"), DB_IP, E.db, E.logtypes)


def parser_start(host):
    p = start_in(host, [H.binary("logferry-parser"), "--config", parser_conf(host)], host)
    wait_healthy("monitor", f"http://{PARSER_IPS[host]}:8442/healthz", p, host)
    E.parsers[host] = p


def monitor_start():
    d = os.path.join(E.dir, "monitor")
    common = "interval = 1s\ntimeout = 900ms\nreminder_every = 1h\nflap_changes = 0\n"
    checks = f"""[check.receiver]
kind = healthz
url = http://{RX_IP}:8440/healthz
pending_count = 2
{common}
[check.parsing]
kind = parser_progress
url = http://{RX_IP}:8440/v1/queues/sessions
token = {E.monitor_token}
metrics_url = http://{PARSER_IPS['parser-1']}:8442/metrics
progress_window = {PROGRESS_WINDOW_S}s
pending_count = 1
{common}
[check.mysql]
kind = mysql
mysql_host = {DB_IP}
mysql_user = {E.db.user}
mysql_password = {E.db.password}
pending_count = 2
{common}
"""
    for host, addr in PARSER_IPS.items():
        checks += f"[check.{host}]\nkind = healthz\nurl = http://{addr}:8442/healthz\npending_count = 2\n{common}\n"
    write(f"{d}/monitor.conf", f"""[log]
level = info
[http]
listen = {INTERNAL}4:8444
[slack]
webhook_url = http://{SLACK_IP}:8080/services/T0LF/B0LF/multihost
timeout = 3s
[monitor]
state_dir = {d}/state
host = monitor-host
group_window = 0
""" + checks)
    E.monitor = start_in("monitor", [H.binary("logferry-monitor"), "--config", f"{d}/monitor.conf"], "monitor")
    wait_healthy("monitor", f"http://{INTERNAL}4:8444/healthz", E.monitor, "monitor")


def slack_notes():
    """[(kind, check)] in arrival order."""
    import json
    st, body = ns_http("slack", "GET", f"http://{SLACK_IP}:8080/_fake/messages")
    H.check(st == 200, f"Slack catcher: {st}")
    out = []
    for m in json.loads(body)["messages"]:
        for a in m["payload"].get("attachments", []):
            kind, check = a["title"].split(": ", 1)
            out.append((kind, check))
    return out


def wait_note(kind, check, timeout=120):
    want = E.expected_notes.count((kind, check)) + 1
    wait_for(lambda: slack_notes().count((kind, check)) >= want, timeout, f"{kind} for {check} in Slack")
    E.expected_notes.append((kind, check))
    log(f"    Slack: {kind} {check}")


def loaded():
    try:
        return int(E.db.query("SELECT COUNT(*) FROM sessions", "logferry")[0][0])
    except (RuntimeError, IndexError):
        return -1


def release(batch):
    """Moves a batch's generated files into the sites' watched folders (a rename: whole files)."""
    for t in E.batches[batch]:
        src = os.path.join(E.gen_dir, t["path"])
        dst = os.path.join(E.sites_dir, t["path"])
        os.rename(src, dst)
    E.released += len(E.batches[batch])
    log(f"batch {batch}: {len(E.batches[batch])} sessions released ({E.released} in all)")


def wait_loaded(n, timeout=600):
    wait_for(lambda: loaded() >= n, timeout, f"{n} sessions in MySQL (have {loaded()})", step=1)


# -- the test ----------------------------------------------------------------------------------

def setup():
    E.dir = H.scratch_dir("lfmultihost-")
    NET.up()
    E.sites_dir = os.path.join(E.dir, "sites")
    E.gen_dir, E.truth, E.logtypes = lfhosts.generate_sessions(E.dir, seed=2026, sessions=SESSIONS, users=40,
                                                               days=21, max_size="48K")
    order = list(E.truth)
    random.Random(5).shuffle(order)
    per = len(order) // len(BATCHES)
    E.batches = {b: order[i * per:(i + 1) * per if i < len(BATCHES) - 1 else len(order)]
                 for i, b in enumerate(BATCHES)}
    E.released = 0
    E.expected_notes = []
    E.parsers = {}
    sites = sorted({t["site"] for t in E.truth})
    H.check(len(sites) == 2, f"two sites generated: {sites}")
    for t in E.truth:
        os.makedirs(os.path.join(E.sites_dir, os.path.dirname(t["path"])), exist_ok=True)

    E.slack = H.start(in_ns("slack", [sys.executable, os.path.join(H.SOURCE_DIR, "tests", "fakes", "slack_fake.py"),
                                      "--port", "8080", "--host", SLACK_IP, "--port-file", f"{E.dir}/slack.port"]),
                      log_path=f"{E.dir}/slack.log")
    wait_for(lambda: ns_http("slack", "GET", f"http://{SLACK_IP}:8080/_fake/messages")[0] == 200, 20,
             "the Slack catcher", step=0.2)
    E.db = lfmariadb.MariaDB(os.path.join(E.dir, "mariadb", "data"), port=3306, bind=DB_IP,
                             prefix=in_ns("db", []), buffer_pool="128M")
    E.db.start()
    receiver_setup()
    E.tls = make_tls()
    receiver_start()
    start_nginx(E.tls)
    run_ok(in_ns("parser-1", [H.binary("logferry-parser"), "--config", parser_conf("parser-1"), "db", "migrate"]),
           "parser db migrate")
    for host in PARSER_IPS:
        parser_start(host)
    monitor_start()
    E.uploaders = [uploader_setup(i + 1, site) for i, site in enumerate(sites)]


def incident_cut():
    log("B: cutting the link between the receiver and the parsers")
    before = loaded()
    cut_receiver_from_parsers(True)
    release("B")
    wait_for(lambda: queue_stats()["depth"] > 0, 120, "sessions queued while the parsers are cut off")
    wait_note("FIRING", "parsing", timeout=PROGRESS_WINDOW_S + 90)
    during = loaded()
    # at most the sessions the four workers had already fetched when the link went
    H.check(during - before <= 4, f"{during - before} sessions loaded across a cut link")
    cut_receiver_from_parsers(False)
    log("B: link restored")
    wait_note("RESOLVED", "parsing")
    wait_loaded(E.released)


def incident_parser_killed():
    release("C")
    base = loaded()
    wait_for(lambda: loaded() >= base + 40, 180, "parsing to get going")
    log("C: SIGKILL parser-2")
    E.parsers["parser-2"].kill()
    E.parsers["parser-2"].wait()
    wait_note("FIRING", "parser-2")
    parser_start("parser-2")
    log("C: parser-2 restarted")
    wait_note("RESOLVED", "parser-2")
    wait_loaded(E.released)


def incident_mysql_killed():
    log("D: SIGKILL MariaDB")
    E.db.kill()
    release("D")
    wait_for(lambda: queue_stats()["depth"] > 0, 120, "sessions queued while MariaDB is down")
    wait_note("FIRING", "mysql")
    wait_note("FIRING", "parsing", timeout=PROGRESS_WINDOW_S + 90)
    stats = queue_stats()
    H.check(stats["dlq_depth"] == 0, f"dead letters while MariaDB is down: {stats}")
    E.db.start()
    log("D: MariaDB restarted")
    wait_note("RESOLVED", "mysql")
    wait_note("RESOLVED", "parsing")
    wait_loaded(E.released)


def incident_receiver_killed():
    release("E")
    wait_for(lambda: queue_stats()["totals"]["sent"] >= E.released - len(E.batches["E"]) + 30, 180,
             "uploads of the last batch to get going")
    log("E: SIGKILL the receiver during uploads")
    E.rx.kill()
    E.rx.wait()
    wait_note("FIRING", "receiver")
    wait_note("FIRING", "parsing")
    receiver_start()
    log("E: receiver restarted")
    wait_note("RESOLVED", "receiver")
    wait_note("RESOLVED", "parsing")
    wait_loaded(E.released)


def test_appliance_across_hosts():
    t0 = time.time()
    setup()
    log(f"setup done in {time.time() - t0:.0f}s: {len(E.truth)} sessions in {len(BATCHES)} batches")
    release("A")
    wait_loaded(E.released)
    incident_cut()
    incident_parser_killed()
    incident_mysql_killed()
    incident_receiver_killed()

    log("checking MySQL against the generator's ground truth")
    wait_for(lambda: not (lambda s: s["depth"] or s["in_flight"] or s["delayed"])(queue_stats()), 120,
             "the queue to drain")
    problems = lfsessions.verify(E.db, E.truth)
    H.check(not problems, f"{len(problems)} problems: {problems[:5]}")
    stats = queue_stats()
    H.check(stats["dlq_depth"] == 0 and stats["depth"] == 0, f"queue at the end: {stats}")
    H.check(stats["totals"]["sent"] >= len(E.truth), f"queue totals: {stats['totals']}")

    with open(os.path.join(E.dir, "nginx", "access.log")) as f:
        puts = sum(1 for line in f if '"PUT /v1/sessions/' in line)
    H.check(puts >= len(E.truth), f"only {puts} uploads went through nginx for {len(E.truth)} sessions")

    log("analytics: backfill on the analytics host, then the independent computation")
    d = os.path.join(E.dir, "analytics")
    write(f"{d}/analytics.conf", f"""[http]
listen = 127.0.0.1:8443
[mysql]
host = {DB_IP}
port = 3306
user = {E.db.user}
password = {E.db.password}
[analytics]
source_database = logferry
target_database = logferry_analytics
""")
    run_ok(in_ns("analytics", [H.binary("logferry-analytics"), "--config", f"{d}/analytics.conf", "backfill"]),
           "analytics backfill")
    templates = {int(r[0]): r[1] for r in E.db.query("SELECT template_id, template FROM templates", "logferry")}
    lfanalytics.compare(E.db, "logferry", "logferry_analytics", templates)

    log("Slack: exactly the expected alerts")
    time.sleep(3)  # a late, unexpected notification would arrive within a few check intervals
    got = slack_notes()
    # per check, the exact sequence; two checks failing in one incident may arrive in either order
    for check in ("receiver", "parsing", "mysql", "parser-1", "parser-2"):
        H.check([k for k, c in got if c == check] == [k for k, c in E.expected_notes if c == check],
                f"Slack received {got}, expected {E.expected_notes} (in any order across checks)")
    H.check(len(got) == len(E.expected_notes) == 12, f"Slack received {got}, expected {E.expected_notes}")
    for host, p in E.parsers.items():
        H.check(p.poll() is None, f"{host} exited with {p.returncode}")
        H.check(H.stop(p, timeout=60) == 0, f"{host} exits 0 on SIGTERM")
    for p in E.uploaders + [E.monitor, E.rx]:
        H.check(H.stop(p, timeout=60) == 0, f"{p.args[4]} exits 0 on SIGTERM")
    log(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("test_multihost needs root (network namespaces)", file=sys.stderr)
        sys.exit(1)
    H.run_tests([test_appliance_across_hosts])
