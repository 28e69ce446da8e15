#!/usr/bin/env python3
"""The quick start: the whole logferry pipeline on one machine, on generated sample data.

Run through scripts/quickstart.sh, which installs the packages and builds first. Everything lives in
one directory (default .quickstart/ in the checkout), recreated at each run:

  sites/          sample sessions written by logferry-sessiongen, one folder per customer site
  mariadb/        a private MariaDB server on a loopback port (nothing touches a system service)
  receiver/       the receiver's configuration, keys, sites, tokens, queue and encrypted store
  uploader-SITE/  one uploader per site: its key, registry and outbox
  parser/         the parser's configuration (log types from the generator)
  analytics/      the analytics loader's configuration
  monitor/        the monitor's configuration and state; Slack is replaced by a local catcher
                  (tests/fakes/slack_fake.py) whose messages the report counts

The programs run with the same configuration layout the Debian packages install under /etc/logferry,
only with paths under this directory. At the end the script prints what came out and stops them.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
sys.path.insert(0, os.path.join(TOP, "tests", "fakes"))

import lfharness as H  # noqa: E402
import lfmariadb  # noqa: E402
import lfsessions  # noqa: E402

PRODUCTS = {  # generator slug -> (product name, log type)
    "atlas-studio": ("Atlas Studio", "classic"),
    "beacon-server": ("Beacon Server", "jsonl"),
    "cobalt-cli": ("Cobalt CLI", "classic"),
}
FILENAME_REGEX = r"^(?<user>[^_]+)_(?<host>[^_]+)_(?<version>[^_]+)_(?<start>\d{8}T\d{6}Z)_\d+\.log$"


def say(msg):
    print(f"\033[1m==> {msg}\033[0m" if sys.stdout.isatty() else f"==> {msg}", flush=True)


def run(args, **kw):
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    if p.returncode not in kw.pop("ok_codes", (0,)) and p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(args)}\n{p.stdout}{p.stderr}")
    return p


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def wait_port_file(path, proc, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}; see {proc.log_path}")
        try:
            with open(path) as f:
                txt = f.read().strip()
            if txt:
                port = int(txt)
                H.wait_port(port, proc=proc)
                return port
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start; see {proc.log_path}")


class Quickstart:
    def __init__(self, build, base, sessions, seed):
        self.build, self.base, self.sessions, self.seed = build, base, sessions, seed
        self.procs = []

    def bin(self, name):
        return os.path.join(self.build, name)

    def start(self, name, conf, what):
        log = os.path.join(os.path.dirname(conf), what + ".log")
        p = H.start([self.bin(name), "--config", conf], log_path=log)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()

    # -- steps -------------------------------------------------------------------------------
    def generate(self):
        say(f"generating {self.sessions} sample sessions (seed {self.seed})")
        self.sites_dir = os.path.join(self.base, "sites")
        run([self.bin("logferry-sessiongen"), "--out", self.sites_dir, "--seed", str(self.seed),
             "--sessions", str(self.sessions), "--sites", "2", "--users", "24", "--days", "28",
             "--max-size", "2M", "--truth", os.path.join(self.base, "truth.jsonl")])
        self.sites = sorted(d for d in os.listdir(self.sites_dir)
                            if os.path.isdir(os.path.join(self.sites_dir, d)))
        self.truth = lfsessions.load_truth(os.path.join(self.base, "truth.jsonl"))
        total = sum(t["bytes"] for t in self.truth)
        print(f"    {len(self.truth)} sessions, {total / 1e6:.1f} MB, sites: {', '.join(self.sites)}")

    def mariadb(self):
        say("starting a private MariaDB")
        self.db = lfmariadb.MariaDB(os.path.join(self.base, "mariadb", "data")).start()
        print(f"    127.0.0.1:{self.db.port} (data in {self.db.datadir})")

    def receiver(self):
        say("configuring and starting logferry-receiver")
        d = os.path.join(self.base, "receiver")
        self.rx_dir = d
        self.rx_conf = os.path.join(d, "receiver.conf")
        write(self.rx_conf, f"""[http]
listen = 127.0.0.1:0
port_file = {d}/port
body_tmp_dir = {d}
[store]
dir = {d}/sessions
index_path = {d}/index.db
keys_dir = {d}/keys
[queue]
path = {d}/queue.db
[auth]
sites_file = {d}/sites
tokens_file = {d}/tokens
token_key_file = {d}/token.key
[limits]
min_free_disk = 0
""")
        self.rx_cli("keys", "rotate")
        self.worker_token = self.rx_cli("tokens", "add", "parser", "--scope", "worker").strip()
        self.read_token = self.rx_cli("tokens", "add", "quickstart", "--scope", "read").strip()
        self.rx = self.start("logferry-receiver", self.rx_conf, "receiver")
        self.rx_port = wait_port_file(os.path.join(d, "port"), self.rx, "receiver")
        print(f"    http://127.0.0.1:{self.rx_port}")

    def rx_cli(self, *args):
        return run([self.bin("logferry-receiver"), "--config", self.rx_conf, *args]).stdout

    def parser(self):
        say("migrating the database and starting logferry-parser")
        d = os.path.join(self.base, "parser")
        self.parser_conf = os.path.join(d, "parser.conf")
        with open(os.path.join(self.sites_dir, "logtypes.conf")) as f:
            logtypes = f.read()
        write(self.parser_conf, f"""[http]
listen = 127.0.0.1:0
port_file = {d}/port
[receiver]
url = http://127.0.0.1:{self.rx_port}
token = {self.worker_token}
wait = 2s
[parser]
workers = 2
keys_dir = {self.rx_dir}/keys
[mysql]
host = 127.0.0.1
port = {self.db.port}
user = {self.db.user}
password = {self.db.password}
database = logferry
""" + logtypes)
        out = run([self.bin("logferry-parser"), "--config", self.parser_conf, "db", "migrate"])
        print("    " + (out.stdout.strip() or out.stderr.strip().splitlines()[-1]))
        self.parser_proc = self.start("logferry-parser", self.parser_conf, "parser")
        self.parser_port = wait_port_file(os.path.join(d, "port"), self.parser_proc, "parser")

    def monitor(self):
        say("starting logferry-monitor, with a local Slack catcher in place of Slack")
        from fakeproc import Client, start_fake
        d = os.path.join(self.base, "monitor")
        os.makedirs(d, exist_ok=True)
        proc, self.slack_port = start_fake("slack_fake.py", log_path=os.path.join(d, "slack.log"))
        self.procs.append(proc)
        self.slack = Client(self.slack_port)
        conf = os.path.join(d, "monitor.conf")
        every = "interval = 2s\ntimeout = 1500ms\npending_count = 3\n"
        write(conf, f"""[http]
listen = 127.0.0.1:0
port_file = {d}/port
[slack]
webhook_url = http://127.0.0.1:{self.slack_port}/services/T0QUICK/B0QUICK/start
[monitor]
state_dir = {d}/state
host = quickstart
[check.receiver]
kind = healthz
url = http://127.0.0.1:{self.rx_port}/healthz
{every}
[check.parser_progress]
kind = parser_progress
url = http://127.0.0.1:{self.rx_port}/v1/queues/sessions
token = {self.read_token}
metrics_url = http://127.0.0.1:{self.parser_port}/metrics
progress_window = 2m
{every}
[check.mysql]
kind = mysql
mysql_host = 127.0.0.1
mysql_port = {self.db.port}
mysql_user = {self.db.user}
mysql_password = {self.db.password}
{every}
[check.dead_letters]
kind = queue
url = http://127.0.0.1:{self.rx_port}/v1/queues/sessions
token = {self.read_token}
{every}
""")
        self.monitor_conf = conf
        p = self.start("logferry-monitor", conf, "monitor")
        wait_port_file(os.path.join(d, "port"), p, "monitor")

    def uploaders(self):
        for site in self.sites:
            say(f"site {site}: key pair, registration at the receiver, logferry-uploader once")
            d = os.path.join(self.base, f"uploader-{site}")
            conf = os.path.join(d, "uploader.conf")
            watches = ""
            for slug, (product, log_type) in PRODUCTS.items():
                src = os.path.join(self.sites_dir, site, slug)
                if not os.path.isdir(src):
                    continue
                watches += f"""
[watch.{slug}]
dir = {src}
include = *.log
log_type = {log_type}
product = {product}
filename_regex = {FILENAME_REGEX}
settle = 1s
"""
            write(conf, f"""[http]
listen = 127.0.0.1:0
[receiver]
url = http://127.0.0.1:{self.rx_port}
concurrency = 8
[uploader]
site = {site}
key_file = {d}/site.key
state_dir = {d}/state
after_upload = keep
[outbox]
dir = {d}/outbox
""" + watches)
            keygen = run([self.bin("logferry-uploader"), "--config", conf, "keygen"]).stdout
            pubkey = next((w for w in keygen.split() if len(w) == 44 and w.endswith("=")), None)
            if not pubkey:
                raise SystemExit(f"keygen printed no public key:\n{keygen}")
            self.rx_cli("sites", "add", site, pubkey)
            t0 = time.time()
            p = run([self.bin("logferry-uploader"), "--config", conf, "once"])
            last = (p.stderr.strip().splitlines() or [""])[-1]
            print(f"    {time.time() - t0:.1f}s: {last.split('] ', 1)[-1]}")

    def wait_parsed(self, timeout=600):
        say("waiting for the parser to load every session into MariaDB")
        expected = len(self.truth)
        deadline = time.time() + timeout
        n = -1
        while time.time() < deadline:
            try:
                n = int(self.db.query("SELECT COUNT(*) FROM logferry.sessions")[0][0])
            except (RuntimeError, IndexError):
                n = 0
            if n >= expected:
                break
            time.sleep(1)
        print(f"    {n} of {expected} sessions parsed")

    def analytics(self):
        say("running the analytics loaders")
        d = os.path.join(self.base, "analytics")
        conf = os.path.join(d, "analytics.conf")
        write(conf, f"""[http]
listen = 127.0.0.1:0
[mysql]
host = 127.0.0.1
port = {self.db.port}
user = {self.db.user}
password = {self.db.password}
[analytics]
source_database = logferry
target_database = logferry_analytics
""")
        p = subprocess.run([self.bin("logferry-analytics"), "--config", conf, "backfill"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            print(f"    analytics: {(p.stderr.strip().splitlines() or ['failed'])[-1]}")
            return False
        return True

    def verify(self):
        """Compares MariaDB with the generator's ground truth, session by session. Returns the problems."""
        say("checking the result against the generator's ground truth")
        problems = lfsessions.verify(self.db, self.truth)
        for p in problems[:10]:
            print("    MISMATCH " + p)
        crashed = sum(t["crashed"] for t in self.truth)
        events = sum(t["events"] for t in self.truth)
        if not problems:
            print(f"    all {len(self.truth)} sessions match: site, product, version, user, host, {events} events, "
                  f"{crashed} crashes, warning and error counts")
        return problems

    def report(self, analytics_ok):
        say("what came out")
        q = self.db.query
        print("\nSessions by site and product (MariaDB logferry.sessions):")
        for row in q("SELECT site, product, COUNT(*), SUM(event_count), SUM(error_count), SUM(crashed) "
                     "FROM logferry.sessions GROUP BY site, product ORDER BY site, product"):
            print(f"  {row[0]:<10} {row[1]:<14} {row[2]:>5} sessions {row[3]:>8} events "
                  f"{row[4]:>5} errors {row[5]:>3} crashed")
        print("\nMost frequent templates (mined, not configured; merged ids counted with the one they joined):")
        for row in q("SELECT t.log_type, SUM(x.occurrences), LEFT(t.template, 90) FROM logferry.templates x "
                     "JOIN logferry.templates t ON t.template_id = COALESCE(x.canonical_id, x.template_id) "
                     "GROUP BY t.template_id, t.log_type, t.template ORDER BY 2 DESC LIMIT 10"):
            print(f"  {row[0]:<8} {row[1]:>8}  {row[2]}")
        if analytics_ok:
            print("\nDaily usage, latest days (MariaDB logferry_analytics.daily_usage):")
            try:
                for row in q("SELECT day, product, SUM(sessions), SUM(users) FROM logferry_analytics.daily_usage "
                             "GROUP BY day, product ORDER BY day DESC, product LIMIT 15"):
                    print(f"  {row[0]}  {row[1]:<14} {row[2]:>4} sessions {row[3]:>3} users")
            except RuntimeError as e:
                print(f"  ({e})")
        st, _, body = H.http("GET", self.rx_port, "/v1/queues/sessions", None,
                             {"Authorization": f"Bearer {self.worker_token}"})
        print(f"\nQueue 'sessions' at the receiver: {body.decode().strip()}")
        st, msgs = self.slack.json("GET", "/_fake/messages")
        print(f"\nMonitor: {len(msgs['messages'])} Slack messages (none is the healthy answer); its view:")
        status = run([self.bin("logferry-monitor"), "--config", self.monitor_conf, "status"]).stdout
        print("  " + status.strip().replace("\n", "\n  "))
        print(f"\nEverything is under {self.base}; logs: */*.log. MariaDB: "
              f"mariadb -h127.0.0.1 -P{self.db.port} -u{self.db.user} -p{self.db.password} logferry")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="build directory with the programs")
    ap.add_argument("--dir", required=True, help="working directory (recreated)")
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    base = os.path.abspath(a.dir)
    if os.path.exists(base):
        shutil.rmtree(base)
    os.makedirs(base)
    qs = Quickstart(os.path.abspath(a.build), base, a.sessions, a.seed)
    try:
        qs.generate()
        qs.mariadb()
        qs.receiver()
        qs.parser()
        qs.monitor()
        qs.uploaders()
        qs.wait_parsed()
        problems = qs.verify()
        ok = qs.analytics()
        qs.report(ok)
        if problems or not ok:
            sys.exit(1)
    finally:
        qs.stop_all()
        if getattr(qs, "db", None):
            qs.db.stop()


if __name__ == "__main__":
    main()
