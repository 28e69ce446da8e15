"""Helpers for the uploader's tests: an uploader configured in a scratch directory against a
lfupload.Receiver, its site key registered there; and the agent of a site host in the multi-host
tests (agent_setup)."""
import os
import subprocess
import time

import lfharness as H
import lfhosts

# the products logferry-sessiongen generates, by its folder name: (product, log type)
GENERATED_PRODUCTS = {"atlas-studio": ("Atlas Studio", "classic"), "beacon-server": ("Beacon Server", "jsonl"),
                      "cobalt-cli": ("Cobalt CLI", "classic")}
GENERATED_FILENAME_REGEX = r"^(?<user>[^_]+)_(?<host>[^_]+)_(?<version>[^_]+)_(?<start>\d{8}T\d{6}Z)_\d+\.log$"


def agent_setup(d, site, sites_dir, url, settle, ca_file=None, timeout=120):
    """(configuration path, public key) of an uploader in folder d for site, watching
    sites_dir/<site>/<product folder> for every generated product and uploading to url (listening
    on 127.0.0.1:8441 in its host); its key made, not yet registered with a receiver."""
    watches = ""
    for slug, (product, log_type) in GENERATED_PRODUCTS.items():
        src = os.path.join(sites_dir, site, slug)
        os.makedirs(src, exist_ok=True)
        watches += f"""[watch.{slug}]
dir = {src}
include = *.log
log_type = {log_type}
product = {product}
filename_regex = {GENERATED_FILENAME_REGEX}
settle = {settle}
"""
    conf = f"{d}/uploader.conf"
    ca = f"ca_file = {ca_file}\n" if ca_file else ""
    lfhosts.write(conf, f"""[log]
level = info
[http]
listen = 127.0.0.1:8441
[receiver]
url = {url}
{ca}concurrency = 4
timeout = 20s
backoff_max = 2s
[uploader]
site = {site}
key_file = {d}/site.key
state_dir = {d}/state
scan_interval = 300ms
after_upload = keep
[outbox]
dir = {d}/outbox
""" + watches)
    out = lfhosts.run_ok([H.binary("logferry-uploader"), "--config", conf, "keygen"], "uploader keygen", timeout)
    pubkey = next(w for w in out.split() if len(w) == 44 and w.endswith("="))
    return conf, pubkey


class Uploader:
    def __init__(self, rx, watches, site="site-u", extra="", register=True, url=None):
        self.dir = H.scratch_dir("lfupl-")
        self.rx = rx
        self.site = site
        self.conf = os.path.join(self.dir, "uploader.conf")
        self.key = os.path.join(self.dir, "site.key")
        self.state = os.path.join(self.dir, "state")
        self.outbox = os.path.join(self.dir, "outbox")
        self.log = os.path.join(self.dir, "uploader.log")
        self.port_file = os.path.join(self.dir, "port")
        self.url = url
        self.proc = None
        self.write_conf(watches, extra)
        out = self.cli("keygen")
        line = out.strip().splitlines()[-1].split()
        assert line[:3] == ["logferry-receiver", "sites", "add"], out
        self.pk = line[4]
        if register:
            rx.cli("sites", "add", site, self.pk)
            self.wait_registered()

    def wait_registered(self):
        """Until the running receiver knows the site: a signed, deliberately invalid upload must be
        refused for its body (400), not as an unknown site (401)."""
        if not self.rx.proc:
            return
        from lfupload import Signer
        signer = Signer(self.key, self.site)
        path = "/v1/sessions/" + "0" * 32
        deadline = time.time() + 15
        while time.time() < deadline:
            h = {"Content-Type": "application/zip", "Authorization": signer.header("PUT", path, b"x")}
            status, _, _ = H.http("PUT", self.rx.port, path, b"x", h)
            if status != 401:
                return
            time.sleep(0.1)
        raise AssertionError("the receiver did not learn the new site")

    def write_conf(self, watches, extra=""):
        url = self.url or f"http://127.0.0.1:{self.rx.port}"
        text = f"""[log]
level = info
[http]
listen = 127.0.0.1:0
port_file = {self.port_file}
[receiver]
url = {url}
proxy =
timeout = 10s
backoff_max = 2s
[uploader]
site = {self.site}
key_file = {self.key}
state_dir = {self.state}
scan_interval = 300ms
[outbox]
dir = {self.outbox}
"""
        for name, body in watches.items():
            text += f"[watch.{name}]\n{body}\n"
        text += extra
        with open(self.conf, "w") as f:
            f.write(text)

    def run(self, *args, timeout=120):
        return subprocess.run([H.binary("logferry-uploader"), "--config", self.conf, *args],
                              capture_output=True, timeout=timeout)

    def cli(self, *args):
        p = self.run(*args)
        if p.returncode != 0:
            raise AssertionError(f"uploader {args} exited {p.returncode}: {p.stderr.decode()}")
        return p.stdout.decode()

    def status(self):
        out = {}
        failed, waiting = [], []
        for line in self.cli("status").splitlines():
            if line.startswith("failed "):
                failed.append(line)
            elif line.startswith("waiting "):
                waiting.append(line)
            else:
                k, v = line.split(":", 1)
                out[k.strip()] = float(v)
        out["failed_lines"] = failed
        out["waiting_lines"] = waiting
        return out

    def start(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.proc = H.start([H.binary("logferry-uploader"), "--config", self.conf, "run"],
                            log_path=self.log)
        return self.proc

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self):
        if self.proc:
            rc = H.stop(self.proc)
            self.proc = None
            return rc

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""
