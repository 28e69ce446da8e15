"""logferry-monitor end to end: the real receiver and parser (with a private MariaDB), the Slack fake,
and a small toggling HTTP endpoint in the test for checks that must fail and recover on cue.

- the parser stopped: exactly one FIRING after the pending period, one STILL FAILING per reminder
  interval, one RESOLVED once it is back; restarting the monitor (SIGTERM, then SIGKILL) in the
  middle of an incident sends no duplicate;
- a flapping check: exactly one FLAPPING and nothing for it afterwards;
- a burst of 429s from Slack: every notification arrives, once, in order; /healthz is degraded
  while deliveries keep failing and ok again after;
- `silence CHECK 6s`: nothing for that check until the silence ends, then one FIRING;
- the heartbeat URL is fetched every cycle; /metrics and /healthz of the monitor.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fakes"))

import lfharness as H
import lfmariadb
import lfparser as P
import lfupload as U
from fakeproc import start_fake, Client

HOST = "mon-test"
REMINDER_S = 4


class Toggle:
    """GET /hb counts pings; GET /h/NAME answers {"status":"ok"} or 503 as set by fail(NAME)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.failing = set()
        self.pings = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                with outer.lock:
                    if self.path == "/hb":
                        outer.pings.append(time.time())
                        code, body = 200, b"OK"
                    elif self.path.startswith("/h/"):
                        bad = self.path[3:] in outer.failing
                        code = 503 if bad else 200
                        body = json.dumps({"status": "failing" if bad else "ok"}).encode()
                    else:
                        code, body = 404, b"no"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def fail(self, name, on=True):
        with self.lock:
            (self.failing.add if on else self.failing.discard)(name)

    def ping_count(self):
        with self.lock:
            return len(self.pings)


class Env:
    pass


E = Env()


def notes(since_index=0):
    """Every notification Slack received, in order: (kind, check, attachment, message index, time)."""
    st, msgs = E.slack.json("GET", "/_fake/messages")
    assert st == 200
    msgs = msgs["messages"]
    out = []
    for m in msgs:
        if m["index"] < since_index:
            continue
        p = m["payload"]
        for a in p.get("attachments", []):
            kind, check = a["title"].split(": ", 1)
            out.append((kind, check, a, m["index"], m["received_at"]))
    return out


def of(check, since_index=0):
    return [(k, a, t) for k, c, a, _, t in notes(since_index) if c == check]


def kinds(check, since_index=0):
    return [k for k, _, _ in of(check, since_index)]


def field(att, title):
    for f in att.get("fields", []):
        if f["title"] == title:
            return f["value"]
    return None


def wait_for(cond, timeout, what):
    return P.wait_for(cond, timeout, what, step=0.1)


def monitor_conf():
    checks = f"""
[check.parser_health]
kind = healthz
url = http://127.0.0.1:{E.parser_port}/healthz
interval = 1s
timeout = 800ms
pending_count = 2
reminder_every = {REMINDER_S}s
flap_changes = 0
"""
    checks += f"""
[check.parser_progress]
kind = parser_progress
url = http://127.0.0.1:{E.rx.port}/v1/queues/sessions
token = {E.rx.worker_token}
metrics_url = http://127.0.0.1:{E.parser_port}/metrics
progress_window = 3s
interval = 1s
timeout = 800ms
pending_count = 1
reminder_every = 1h
flap_changes = 0
"""
    for name in ("burst_a", "burst_b", "burst_c", "quiet"):
        checks += f"""
[check.{name}]
kind = healthz
url = http://127.0.0.1:{E.toggle.port}/h/{name}
interval = 1s
timeout = 800ms
pending_count = 2
reminder_every = 1h
flap_changes = 0
"""
    checks += f"""
[check.flappy]
kind = healthz
url = http://127.0.0.1:{E.toggle.port}/h/flappy
interval = 1s
timeout = 800ms
pending_count = 1
reminder_every = 1h
flap_window = 2m
flap_changes = 4
flap_quiet = 2m
"""
    return f"""[log]
level = debug
[http]
listen = 127.0.0.1:0
port_file = {E.dir}/monitor.port
[slack]
webhook_url = http://127.0.0.1:{E.slack_port}/services/T0TEST/B0TEST/s3cr3t
timeout = 2s
[monitor]
state_dir = {E.dir}/state
host = {HOST}
heartbeat_url = http://127.0.0.1:{E.toggle.port}/hb
heartbeat_interval = 1s
group_window = 0
""" + checks


def monitor_start():
    pf = f"{E.dir}/monitor.port"
    if os.path.exists(pf):
        os.unlink(pf)
    E.mon = H.start([H.binary("logferry-monitor"), "--config", E.conf], log_path=f"{E.dir}/monitor.log")
    E.mon_port = wait_for(lambda: open(pf).read().strip() if os.path.exists(pf) else None, 20, "monitor port")
    E.mon_port = int(E.mon_port)
    H.wait_port(E.mon_port, proc=E.mon)


def monitor_cli(*args):
    p = subprocess.run([H.binary("logferry-monitor"), "--config", E.conf, *args], capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def parser_start():
    pf = E.parser.conf + ".port"
    if os.path.exists(pf):
        os.unlink(pf)
    E.parser.start()
    def port_or_exit():
        H.check(E.parser.proc.poll() is None, f"parser exited {E.parser.proc.returncode}")
        return open(pf).read().strip() if os.path.exists(pf) else None
    port = int(wait_for(port_or_exit, 30, "parser port"))
    H.check(port == E.parser_port or E.parser_port is None, "parser keeps its port")
    E.parser_port = port


def parser_healthy():
    try:
        st, _, body = H.http("GET", E.parser_port, "/healthz")
        return st == 200 and json.loads(body)["status"] == "ok"
    except OSError:
        return False


def fixed_port():
    """A free port below the ephemeral range, so that no outgoing connection takes it while the parser
    is down (the monitor keeps connecting to it)."""
    import random
    import socket
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    for _ in range(200):
        port = random.randrange(10000, lo)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise H.TestFailure("no free port below the ephemeral range")


def setup():
    E.dir = H.scratch_dir("lfmonitor-")
    E.toggle = Toggle()
    E.slack_proc, E.slack_port = start_fake("slack_fake.py", log_path=f"{E.dir}/slack.log")
    E.slack = Client(E.slack_port)
    E.db = lfmariadb.scratch_server()
    E.rx = U.Receiver()
    # a fixed port, so that the monitor's check keeps pointing at the parser across its restarts
    E.parser_port = fixed_port()
    E.parser = P.Parser(E.rx, E.db, workers=1)
    txt = open(E.parser.conf).read().replace("listen = 127.0.0.1:0", f"listen = 127.0.0.1:{E.parser_port}")
    with open(E.parser.conf, "w") as f:
        f.write(txt)
    rc = E.parser.cli("db", "migrate")
    H.check(rc.returncode == 0, f"parser db migrate: {rc.stderr.decode()}")
    parser_start()
    wait_for(parser_healthy, 30, "parser healthy")
    E.conf = f"{E.dir}/monitor.conf"
    with open(E.conf, "w") as f:
        f.write(monitor_conf())
    monitor_start()


def slack_index():
    st, msgs = E.slack.json("GET", "/_fake/messages")
    return len(msgs["messages"])


def metric(name):
    st, _, body = H.http("GET", E.mon_port, "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise H.TestFailure(f"metric {name} missing")


def monitor_health():
    st, _, body = H.http("GET", E.mon_port, "/healthz")
    return st, json.loads(body)


# ------------------------------------------------------------------------------------------------


def test_healthy_start_sends_nothing():
    time.sleep(3)
    H.check(notes() == [], f"nothing sent while everything is healthy: {notes()}")
    st, h = monitor_health()
    H.check(st == 200 and h["status"] == "ok", f"monitor /healthz ok: {h}")
    rc, out, err = monitor_cli("status")
    H.check(rc == 0 and "parser_health" in out and "ok" in out, f"status lists the checks: {rc} {out} {err}")


def test_parser_stopped_fires_once_reminds_resolves():
    start = slack_index()
    t_stop = time.time()
    H.check(E.parser.stop() == 0, "parser exits 0")
    # work arrives while the parser is down: parser_progress stalls (the default metric is the
    # parser's real counter, read from its /metrics once it is back)
    import random
    sess = U.make_session(E.rx.site, P.make_log(random.Random(7), 30), identity=f"mon-{time.time()}")
    status, body, _ = E.rx.upload(sess)
    H.check(status == 201, f"upload: {status} {body}")
    wait_for(lambda: "FIRING" in kinds("parser_health", start), 15, "FIRING for parser_health")
    (k, att, t_fire), = of("parser_health", start)
    H.check(k == "FIRING", "first message is FIRING")
    # pending_count 2 at 1 s intervals: not before the second failure
    H.check(t_fire - t_stop >= 0.9, f"FIRING only after the pending period ({t_fire - t_stop:.1f}s)")
    H.check(field(att, "Host") == HOST, f"host field: {att}")
    H.check("parser_health" in att["fallback"] and HOST in att["fallback"], f"fallback text: {att['fallback']}")
    H.check(att["color"] == "danger", "FIRING is red")
    wait_for(lambda: kinds("parser_health", start).count("STILL FAILING") >= 2, 3 * REMINDER_S + 5,
             "two reminders")
    parser_start()
    wait_for(lambda: "RESOLVED" in kinds("parser_health", start), 30, "RESOLVED for parser_health")
    time.sleep(2.5)
    got = of("parser_health", start)
    ks = [k for k, _, _ in got]
    H.check(ks == ["FIRING", "STILL FAILING", "STILL FAILING", "RESOLVED"], f"exact sequence: {ks}")
    gaps = [got[i + 1][2] - got[i][2] for i in range(2)]
    H.check(all(REMINDER_S - 1 <= g <= REMINDER_S + 1.5 for g in gaps), f"one reminder per interval: {gaps}")
    H.check(got[-1][1]["color"] == "good" and field(got[-1][1], "Host") == HOST, "RESOLVED is green, with host")
    wait_for(lambda: "RESOLVED" in kinds("parser_progress", start), 20, "parser_progress RESOLVED")
    _, _, pm = H.http("GET", E.parser_port, "/metrics")
    H.check(b"\nlf_parser_sessions_total 1" in pm, "the parser exports the counter parser_progress reads by default")
    H.check(kinds("parser_progress", start) == ["FIRING", "RESOLVED"],
            f"parser_progress stalled once, then progressed: {kinds('parser_progress', start)}")


def test_monitor_restart_mid_incident_no_duplicate():
    start = slack_index()
    H.check(E.parser.stop() == 0, "parser exits 0")
    wait_for(lambda: "FIRING" in kinds("parser_health", start), 15, "FIRING")
    t_fire = of("parser_health", start)[0][2]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if sig == signal.SIGTERM:
            H.check(H.stop(E.mon) == 0, "monitor exits 0 on SIGTERM")
        else:
            E.mon.kill()
            E.mon.wait()
        monitor_start()
        time.sleep(2.5)
    t_end = time.time()
    got = of("parser_health", start)
    ks = [k for k, _, _ in got]
    H.check(ks.count("FIRING") == 1, f"one FIRING across two monitor restarts: {ks}")
    # reminders keep their schedule (counted from the stored FIRING), never repeated
    n_rem = ks.count("STILL FAILING")
    H.check(n_rem <= int((t_end - t_fire) / REMINDER_S) + 0, f"no extra reminders: {ks} in {t_end - t_fire:.1f}s")
    times = [t for _, _, t in got]
    H.check(all(b - a >= REMINDER_S - 1 for a, b in zip(times, times[1:])), f"messages spaced by the interval: {times}")
    parser_start()
    wait_for(lambda: "RESOLVED" in kinds("parser_health", start), 30, "RESOLVED")
    time.sleep(2)
    ks = kinds("parser_health", start)
    H.check(ks.count("RESOLVED") == 1 and ks[-1] == "RESOLVED" and ks.count("FIRING") == 1, f"one RESOLVED: {ks}")


def test_flapping_check_one_flapping_alert():
    start = slack_index()
    # 6 changes at 2.5 s: every phase is observed at least twice (1 s interval)
    for i in range(6):
        E.toggle.fail("flappy", i % 2 == 0)
        time.sleep(2.5)
    E.toggle.fail("flappy", False)
    time.sleep(2.5)
    ks = kinds("flappy", start)
    H.check(ks.count("FLAPPING") == 1, f"exactly one FLAPPING: {ks}")
    # transitions 1-3 are announced, the 4th makes it flapping, then silence for the check
    H.check(ks == ["FIRING", "RESOLVED", "FIRING", "FLAPPING"], f"sequence: {ks}")
    att = of("flappy", start)[-1][1]
    H.check(att["color"] == "warning" and field(att, "Host") == HOST, f"FLAPPING is yellow with host: {att}")


def test_429_burst_loses_nothing():
    start = slack_index()
    st, _ = E.slack.json("POST", "/_fake/faults", {"rate_limit": 5, "retry_after": 1})
    H.check(st == 200, "faults armed")
    for n in ("burst_a", "burst_b", "burst_c"):
        E.toggle.fail(n)
    saw_degraded = False
    deadline = time.time() + 25
    while time.time() < deadline:
        st, h = monitor_health()
        if h["status"] == "degraded":
            saw_degraded = True
        if all("FIRING" in kinds(n, start) for n in ("burst_a", "burst_b", "burst_c")):
            break
        time.sleep(0.2)
    H.check(saw_degraded, "/healthz degraded while deliveries are rate-limited")
    for n in ("burst_a", "burst_b", "burst_c"):
        E.toggle.fail(n, False)
    wait_for(lambda: all("RESOLVED" in kinds(n, start) for n in ("burst_a", "burst_b", "burst_c")), 25,
             "three RESOLVED")
    time.sleep(2)
    for n in ("burst_a", "burst_b", "burst_c"):
        H.check(kinds(n, start) == ["FIRING", "RESOLVED"], f"{n}: each once, in order: {kinds(n, start)}")
    st, reqs = E.slack.json("GET", "/_fake/requests")
    reqs = reqs["requests"]
    n429 = sum(1 for r in reqs if r.get("status") == 429)
    H.check(n429 == 5, f"the fake answered 429 five times ({n429})")
    wait_for(lambda: monitor_health()[1]["status"] == "ok", 5, "healthz ok again")
    H.check(metric("lf_monitor_delivery_failures_total") >= 5, "delivery failures counted")
    H.check(metric("lf_monitor_undelivered_notifications") == 0, "nothing waiting")


def test_silenced_check_sends_nothing_until_the_end():
    start = slack_index()
    rc, out, err = monitor_cli("silence", "quiet", "6s", "maintenance", "window")
    H.check(rc == 0, f"silence: {rc} {out} {err}")
    t_end = time.time() + 6
    E.toggle.fail("quiet")
    rc, out, err = monitor_cli("status")
    H.check(rc == 0 and "maintenance window" in out, f"status shows the silence: {out}")
    while time.time() < t_end - 0.3:
        H.check(kinds("quiet", start) == [], "nothing for a silenced check")
        time.sleep(0.3)
    wait_for(lambda: "FIRING" in kinds("quiet", start), 10, "FIRING once the silence ended")
    (k, att, t), = of("quiet", start)
    H.check(t >= t_end - 0.5, f"FIRING not before the end of the silence ({t - t_end:.1f}s)")
    E.toggle.fail("quiet", False)
    wait_for(lambda: "RESOLVED" in kinds("quiet", start), 10, "RESOLVED")
    H.check(kinds("quiet", start) == ["FIRING", "RESOLVED"], f"sequence: {kinds('quiet', start)}")
    # unsilence: a new silence ended early lets the next incident through at once
    rc, _, err = monitor_cli("silence", "quiet", "1h")
    H.check(rc == 0, err)
    rc, _, err = monitor_cli("unsilence", "quiet")
    H.check(rc == 0, f"unsilence: {err}")
    rc, _, _ = monitor_cli("unsilence", "quiet")
    H.check(rc != 0, "unsilence of a check without a silence fails")


def test_heartbeat_metrics_healthz():
    c0, t0 = E.toggle.ping_count(), time.time()
    hb0 = metric('lf_monitor_heartbeats_total{result="ok"}')
    time.sleep(5)
    n = E.toggle.ping_count() - c0
    el = time.time() - t0
    H.check(el - 2 <= n <= el + 1, f"heartbeat each second: {n} pings in {el:.1f}s")
    time.sleep(0.7)
    hb1 = metric('lf_monitor_heartbeats_total{result="ok"}')
    H.check(hb1 - hb0 >= n - 1, f"heartbeats counted in /metrics ({hb1 - hb0} vs {n})")
    sent = metric("lf_monitor_messages_sent_total")
    H.check(sent >= 1, "messages counted")
    H.check(metric('lf_monitor_checks_total{result="ok"}') > 0, "check runs counted")
    st, h = monitor_health()
    H.check(st == 200 and h["status"] == "ok" and "alerting" in h["checks"], f"/healthz: {h}")
    # the SIGHUP path: a changed interval restarts the checks, nothing is repeated
    before = slack_index()
    txt = open(E.conf).read().replace("heartbeat_interval = 1s", "heartbeat_interval = 2s")
    with open(E.conf, "w") as f:
        f.write(txt)
    E.mon.send_signal(signal.SIGHUP)
    wait_for(lambda: metric("lf_monitor_engine_restarts_total") == 1, 10, "engine restarted")
    c0 = E.toggle.ping_count()
    time.sleep(4.2)
    n = E.toggle.ping_count() - c0
    H.check(1 <= n <= 3, f"new heartbeat interval applied ({n} pings in 4.2s)")
    H.check(slack_index() == before, "a reload sends nothing")
    H.check(E.mon.poll() is None, "monitor still running")


def teardown():
    for name in ("mon",):
        p = getattr(E, name, None)
        if p and p.poll() is None:
            rc = H.stop(p)
            H.check(rc == 0, f"monitor exits 0 ({rc})")
    for name in ("parser", "rx", "db"):
        o = getattr(E, name, None)
        if o:
            o.stop()
    if getattr(E, "slack_proc", None):
        E.slack_proc.terminate()
        E.slack_proc.wait()


def test_all():
    setup()
    try:
        for t in (test_healthy_start_sends_nothing, test_parser_stopped_fires_once_reminds_resolves,
                  test_monitor_restart_mid_incident_no_duplicate, test_flapping_check_one_flapping_alert,
                  test_429_burst_loses_nothing, test_silenced_check_sends_nothing_until_the_end,
                  test_heartbeat_metrics_healthz):
            t0 = time.time()
            t()
            print(f"  ok {t.__name__} ({time.time() - t0:.1f}s)", flush=True)
    except Exception:
        for log in (f"{E.dir}/monitor.log", getattr(getattr(E, "parser", None), "log", "")):
            try:
                with open(log, errors="replace") as f:
                    print(f"--- {log}\n" + f.read()[-4000:])
            except OSError:
                pass
        raise
    finally:
        teardown()


if __name__ == "__main__":
    H.run_tests([test_all])
