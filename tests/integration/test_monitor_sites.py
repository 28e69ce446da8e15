"""The monitor's site checks against a real receiver and the Slack fake, and what its messages point
to:

- site_quiet: a site that uploaded and then went quiet for longer than max_quiet fires once (naming
  it), and resolves when it uploads again; a site that never uploaded is not judged;
- site_refusals: a refused upload (a stale signature) fires, naming the site and the reason; the
  next run without new refusals resolves;
- every message links the dashboard, and a check's messages its runbook; a check with its own
  webhook_url posts there, the others to [slack] webhook_url;
- `test-alert` posts one message through the real path and says what Slack answered (200; 404
  no_service for a webhook URL that is wrong).
"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fakes"))

import lfharness as H  # noqa: E402
import lfparser as P  # noqa: E402
import lfupload as U  # noqa: E402
from fakeproc import Client, start_fake  # noqa: E402

QUIET_S = 4


class Env:
    pass


E = Env()


def wait_for(cond, timeout, what):
    return P.wait_for(cond, timeout, what, step=0.1)


def notes(check, path=None):
    """(kind, attachment) of every notification for check (posted to webhook path, if given), in order."""
    st, msgs = E.slack.json("GET", "/_fake/messages")
    H.check(st == 200, f"slack fake: {st}")
    out = []
    for m in msgs["messages"]:
        if path and m["path"] != path:
            continue
        for a in m["payload"].get("attachments", []):
            kind, name = a["title"].split(": ", 1)
            if name == check:
                out.append((kind, a))
    return out


def kinds(check):
    return [k for k, _ in notes(check)]


def text_of(att):
    return att.get("text", "") + " " + " ".join(f.get("value", "") for f in att.get("fields", []))


def checks_run():
    """How many check runs the monitor finished (its /metrics)."""
    port_file = f"{E.dir}/monitor.port"
    if not os.path.exists(port_file) or not open(port_file).read().strip():
        return 0
    _, _, body = H.http("GET", int(open(port_file).read()), "/metrics")
    return sum(float(line.split()[-1]) for line in body.decode().splitlines()
               if line.startswith("lf_monitor_checks_total{"))


def upload():
    sess = U.make_session(E.rx.site, P.make_log(random.Random(time.time()), 10), identity=f"s-{time.time()}")
    status, body, _ = E.rx.upload(sess)
    H.check(status == 201, f"upload: {status} {body}")


def setup():
    E.dir = H.scratch_dir("lfmonsites-")
    E.slack_proc, E.slack_port = start_fake("slack_fake.py", log_path=f"{E.dir}/slack.log")
    E.slack = Client(E.slack_port)
    E.rx = U.Receiver()
    every = "interval = 1s\ntimeout = 800ms\npending_count = 1\nreminder_every = 1h\nflap_changes = 0\n"
    E.conf = f"{E.dir}/monitor.conf"
    with open(E.conf, "w") as f:
        f.write(f"""[http]
listen = 127.0.0.1:0
port_file = {E.dir}/monitor.port
[slack]
webhook_url = http://127.0.0.1:{E.slack_port}/services/T0TEST/B0TEST/s3cr3t
timeout = 2s
dashboard_url = https://dash.example.test/pipeline
[monitor]
state_dir = {E.dir}/state
host = sites-test
group_window = 0
[check.site_quiet]
kind = site_quiet
url = http://127.0.0.1:{E.rx.port}/v1/sites
token = {E.rx.read_token}
max_quiet = {QUIET_S}s
runbook_url = https://wiki.example.test/runbooks/site-quiet
{every}
[check.site_refusals]
kind = site_refusals
url = http://127.0.0.1:{E.rx.port}/v1/sites
token = {E.rx.read_token}
max_refusals = 0
webhook_url = http://127.0.0.1:{E.slack_port}/services/T0TEST/B0SECURITY/r0ut3d
{every}""")
    E.mon = H.start([H.binary("logferry-monitor"), "--config", E.conf], log_path=f"{E.dir}/monitor.log")


def test_never_uploaded_is_not_quiet():
    # each check has run a few times (interval 1s, pending_count 1): any alert would be out by now
    wait_for(lambda: checks_run() >= 6, 30, "the site checks to run three times each")
    wait_for(lambda: E.slack.json("GET", "/_fake/messages")[0] == 200, 5, "the Slack fake")
    H.check(kinds("site_quiet") == [] and kinds("site_refusals") == [], "nothing to say while no site uploaded")


def test_quiet_site_fires_once_and_resolves_on_upload():
    t0 = time.time()
    upload()
    wait_for(lambda: "FIRING" in kinds("site_quiet"), 30, "FIRING for site_quiet")
    # last_upload has whole seconds: the quiet time may look up to a second longer than it is
    H.check(time.time() - t0 >= QUIET_S - 1.5, f"fired after {time.time() - t0:.1f}s, before max_quiet")
    (kind, att), = notes("site_quiet")
    H.check(f"{E.rx.site} sent nothing for" in text_of(att), f"the alert names the site: {att}")
    H.check(att.get("title_link") == "https://wiki.example.test/runbooks/site-quiet", f"runbook link: {att}")
    H.check("<https://dash.example.test/pipeline|open>" in text_of(att), f"dashboard link: {att}")
    upload()
    wait_for(lambda: "RESOLVED" in kinds("site_quiet"), 30, "RESOLVED for site_quiet")
    H.check(kinds("site_quiet") == ["FIRING", "RESOLVED"], f"exact sequence: {kinds('site_quiet')}")


def test_refusals_fire_and_resolve():
    path = "/v1/sessions/" + "2" * 32
    h = {"Content-Type": "application/zip",
         "Authorization": E.rx.signer.header("PUT", path, b"x", ts=int(time.time()) - 86400)}
    status, _, _ = H.http("PUT", E.rx.port, path, b"x", h)
    H.check(status == 401, f"stale upload: {status}")
    wait_for(lambda: "FIRING" in kinds("site_refusals"), 30, "FIRING for site_refusals")
    att = notes("site_refusals")[0][1]
    H.check(f"{E.rx.site} (stale 1)" in text_of(att), f"the alert names site and reason: {att}")
    wait_for(lambda: "RESOLVED" in kinds("site_refusals"), 30, "RESOLVED for site_refusals")
    H.check(kinds("site_refusals") == ["FIRING", "RESOLVED"], f"exact sequence: {kinds('site_refusals')}")
    # routed: every site_refusals message went to its own webhook, site_quiet's to the default
    H.check(len(notes("site_refusals", "/services/T0TEST/B0SECURITY/r0ut3d")) == 2, "site_refusals not routed")
    H.check(len(notes("site_quiet", "/services/T0TEST/B0TEST/s3cr3t")) == len(notes("site_quiet")),
            "site_quiet left the default webhook")


def test_alert_command_says_what_slack_answered():
    p = subprocess.run([H.binary("logferry-monitor"), "--config", E.conf, "test-alert", "site_quiet"],
                       capture_output=True, timeout=30)
    out = p.stdout.decode()
    H.check(p.returncode == 0 and "Slack answered 200" in out, f"test-alert: {p.returncode} {out} {p.stderr}")
    got = [a for k, a in notes("site_quiet") if "Test message from logferry-monitor" in a.get("text", "")]
    H.check(len(got) == 1 and got[0]["title_link"] == "https://wiki.example.test/runbooks/site-quiet", f"{got}")
    # a routed check's test goes to its own webhook
    p = subprocess.run([H.binary("logferry-monitor"), "--config", E.conf, "test-alert", "site_refusals"],
                       capture_output=True, timeout=30)
    H.check(p.returncode == 0, f"test-alert site_refusals: {p.returncode} {p.stdout} {p.stderr}")
    H.check(any("Test message" in a.get("text", "")
                for _, a in notes("site_refusals", "/services/T0TEST/B0SECURITY/r0ut3d")), "not routed")
    bad = E.conf + ".bad"
    with open(E.conf) as f, open(bad, "w") as g:
        g.write(f.read().replace("/services/T0TEST/B0TEST/s3cr3t", "/wrong/path"))
    p = subprocess.run([H.binary("logferry-monitor"), "--config", bad, "test-alert"], capture_output=True, timeout=30)
    H.check(p.returncode == 1 and "Slack answered 404 no_service" in p.stdout.decode(),
            f"test-alert to a wrong webhook: {p.returncode} {p.stdout} {p.stderr}")


def teardown():
    if getattr(E, "mon", None) and E.mon.poll() is None:
        H.check(H.stop(E.mon) == 0, "monitor exits 0")
    if getattr(E, "rx", None):
        E.rx.stop()
    if getattr(E, "slack_proc", None):
        E.slack_proc.terminate()
        E.slack_proc.wait()


def test_all():
    setup()
    try:
        for t in (test_never_uploaded_is_not_quiet, test_quiet_site_fires_once_and_resolves_on_upload,
                  test_refusals_fire_and_resolve, test_alert_command_says_what_slack_answered):
            t0 = time.time()
            t()
            print(f"  ok {t.__name__} ({time.time() - t0:.1f}s)", flush=True)
    except Exception:
        with open(f"{E.dir}/monitor.log", errors="replace") as f:
            print("--- monitor.log\n" + f.read()[-4000:])
        raise
    finally:
        teardown()


if __name__ == "__main__":
    H.run_tests([test_all])
