"""Helpers for the parser service's tests: classic-format session logs (with stack traces and
warnings), a logferry-parser daemon in a scratch directory wired to a Receiver (lfupload) and a
MariaDB (lfmariadb), and the expected rows of a session from a direct `logferry-parser parse`.

    rx = lfupload.Receiver(); db = lfmariadb.scratch_server()
    p = Parser(rx, db, workers=2); p.start()
    exp = expected_rows(p, log_bytes)       # (event count, SUM(CRC32(message)))
"""
import json
import os
import random
import subprocess
import time
import zlib

import lfharness as H

LOGTYPES = r"""
[logtype.classic]
format = <Date> <Time> <Level> \[<Component>\] <Content>
time_fields = Date,Time
time_format = %Y-%m-%d %H:%M:%S.%f
timezone = UTC
level_field = Level
"""

COMPONENTS = ["core", "ui", "io", "net", "render", "license"]
MESSAGES = ["Opened dialog {w} in the main window", "Exported {n} pages to {w}.pdf in {n} ms",
            "Connection to {h}:{n} closed", "Cache hit ratio {n} percent", "User {w} saved file {w}.dat",
            "Command {w} took {n} ms", "Slow disk: {n} ms for {w}", "Failed to open {w}.txt: error {n}"]
WORDS = ["alpha", "beta", "gamma", "delta", "report", "export", "import", "main", "zeta"]


def make_log(rng, n_lines):
    t0 = 1793606400 + rng.randrange(0, 86400 * 30)
    out = []
    for i in range(n_lines):
        t = t0 + i * 0.37
        lvl = rng.choices(["INFO", "DEBUG", "WARN", "ERROR"], [70, 15, 10, 5])[0]
        msg = rng.choice(MESSAGES).format(w=rng.choice(WORDS), n=rng.randrange(1, 100000),
                                          h=f"10.0.{rng.randrange(256)}.{rng.randrange(256)}")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(t))) + ".%03d" % int((t % 1) * 1000)
        out.append(f"{stamp} {lvl} [{rng.choice(COMPONENTS)}] {msg}")
        if lvl == "ERROR" and rng.random() < 0.7:
            for d in range(rng.randrange(1, 5)):
                out.append(f"\tat module{d}.fn(file{d}.c:{rng.randrange(1, 999)})")
    return ("\n".join(out) + "\n").encode()


def write_parser_conf(path, rx, db, workers=2, database="logferry", extra=""):
    with open(path, "w") as f:
        f.write(f"""[log]
level = info
[http]
listen = 127.0.0.1:0
port_file = {path}.port
[receiver]
url = http://127.0.0.1:{rx.port}
token = {rx.worker_token}
wait = 2s
visibility = 20s
[parser]
workers = {workers}
keys_dir = {rx.dir}/keys
retry_delay = 1s
failure_delay = 1s
[mysql]
host = 127.0.0.1
port = {db.port}
user = {db.user}
password = {db.password}
database = {database}
""" + extra + LOGTYPES)


class Parser:
    def __init__(self, rx, db, workers=2, database="logferry", extra="", name="parser"):
        self.dir = H.scratch_dir("lfparser-")
        self.conf = os.path.join(self.dir, name + ".conf")
        self.log = os.path.join(self.dir, name + ".log")
        write_parser_conf(self.conf, rx, db, workers, database, extra)
        self.proc = None

    def start(self):
        self.proc = H.start([H.binary("logferry-parser"), "--config", self.conf], log_path=self.log)
        return self.proc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc:
            return H.stop(self.proc, timeout=60)

    def cli(self, *args):
        return subprocess.run([H.binary("logferry-parser"), "--config", self.conf, *args], capture_output=True)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


def expected_rows(parser, log, log_type="classic"):
    """(events, SUM of CRC32 of each event's raw message) from `logferry-parser parse` of the log."""
    path = os.path.join(parser.dir, "direct.log")
    with open(path, "wb") as f:
        f.write(log)
    p = subprocess.run([H.binary("logferry-parser"), "parse", "--type", log_type, "--config", parser.conf, path],
                       capture_output=True, check=True)
    lines = log.split(b"\n")
    n, crc = 0, 0
    for row in p.stdout.decode().splitlines():
        ev = json.loads(row)
        msg = lines[ev["line"] - 1]
        for c in ev.get("continuation", []):
            msg += b"\n" + c.encode()
        n += 1
        crc += zlib.crc32(msg)
    return n, crc


def wait_for(cond, timeout, what, step=0.3):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise H.TestFailure(f"timed out after {timeout}s waiting for {what}")
