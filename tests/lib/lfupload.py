"""Uploader-side helpers for the receiver's tests: build session zips with manifests (zipfile),
sign requests with tools/logferry-sign (Python has no Ed25519), run a receiver in a scratch
directory, and upload.

    rx = Receiver()                      # configured in a scratch dir, started, site "site-a" added
    s = make_session("site-a", b"log lines\n")
    status, body = rx.upload(s)          # 201
"""
import hashlib
import http.client
import io
import json
import os
import re
import struct
import subprocess
import time
import zipfile

import lfharness as H


def session_id(site, identity, log):
    """lf_manifest_session_id(): first 16 bytes of BLAKE2b-256 over length-prefixed fields, hex."""
    h = hashlib.blake2b(digest_size=32)
    for f in (b"logferry.session-id.v1", site.encode(), identity.encode(),
              hashlib.blake2b(log, digest_size=32).digest()):
        h.update(struct.pack(">Q", len(f)) + f)
    return h.digest()[:16].hex()


class Session:
    def __init__(self, sid, body, manifest):
        self.id, self.body, self.manifest = sid, body, manifest


def make_manifest(site, log, sid=None, log_name="session.log", **extra):
    m = {"format": 1, "session_id": sid or session_id(site, log_name + str(len(log)), log), "site": site,
         "product": "Studio", "product_version": "4.2.1", "log_type": "classic", "log_name": log_name,
         "log_size": len(log), "log_blake2b": hashlib.blake2b(log, digest_size=32).hexdigest()}
    m.update(extra)
    return m


def build_zip(entries, compression=zipfile.ZIP_DEFLATED):
    """entries: list of (name, bytes) or (ZipInfo, bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def make_session(site, log, sid=None, log_name="session.log", manifest=None, identity=None):
    if sid is None and identity is not None:
        sid = session_id(site, identity, log)
    m = manifest or make_manifest(site, log, sid=sid, log_name=log_name)
    body = build_zip([("manifest.json", json.dumps(m).encode()), (log_name, log)])
    return Session(m["session_id"], body, m)


class Signer:
    def __init__(self, sk_path, site):
        self.sk_path, self.site = sk_path, site

    @staticmethod
    def keygen(sk_path):
        out = subprocess.run([H.binary("logferry-sign"), "keygen", sk_path], check=True, capture_output=True)
        return out.stdout.decode().strip()

    def header(self, method, path, body, ts="now"):
        out = subprocess.run([H.binary("logferry-sign"), "header", self.sk_path, self.site, method, path, str(ts),
                              "-"], input=body, check=True, capture_output=True)
        return out.stdout.decode().strip()


# The store backend every Receiver uses unless told otherwise; the Elasticsearch variants of the
# receiver tests set it to "elasticsearch" (each Receiver then gets its own Elasticsearch fake).
DEFAULT_BACKEND = os.environ.get("LF_TEST_STORE_BACKEND", "filesystem")


def _es_store_config(receiver_dir):
    import sys as _sys
    _sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
    from fakeproc import start_fake
    _, port = start_fake("es_fake.py", log_path=os.path.join(receiver_dir, "es_fake.log"))
    # small chunks so that sessions of a few KiB already span several chunk documents
    return f"[store]\nbackend = elasticsearch\nes_url = http://127.0.0.1:{port}\nes_chunk_size = 4K\n", port


class Receiver:
    """A receiver in a scratch directory, on the filesystem store or (backend="elasticsearch") on the
    Elasticsearch store backed by a fake of its own."""

    def __init__(self, extra_config="", env=None, start=True, site="site-a", window="5m", min_free_disk="0",
                 backend=None):
        self.dir = H.scratch_dir("lfrecv-")
        self.backend = backend or DEFAULT_BACKEND
        self.es_port = None
        if self.backend == "elasticsearch":
            es_conf, self.es_port = _es_store_config(self.dir)
            extra_config = es_conf + extra_config
        self.env = env or {}
        self.port_file = os.path.join(self.dir, "port")
        self.conf = os.path.join(self.dir, "receiver.conf")
        self.store = os.path.join(self.dir, "sessions")
        self.log = os.path.join(self.dir, "receiver.log")
        base = f"""[log]
level = info
[http]
listen = 127.0.0.1:0
port_file = {self.port_file}
body_tmp_dir = {self.dir}
[store]
dir = {self.store}
index_path = {self.dir}/index.db
keys_dir = {self.dir}/keys
max_upload_size = 16M
[queue]
path = {self.dir}/queue.db
[auth]
sites_file = {self.dir}/sites
tokens_file = {self.dir}/tokens
token_key_file = {self.dir}/token.key
signature_window = {window}
[limits]
min_free_disk = {min_free_disk}
retry_after = 2s
"""
        # the set-up commands below write the sites and tokens files; with [queue] backend = jetstream
        # the daemon reads the shared buckets instead, so the first start imports the files there
        with open(self.conf, "w") as f:
            f.write(base)
        self.proc = None
        self.port = None
        self.site = site
        self.signer = Signer(os.path.join(self.dir, site + ".sk"), site)
        pk = Signer.keygen(self.signer.sk_path)
        self.cli("sites", "add", site, pk)
        self.worker_token = self.cli("tokens", "add", "worker1", "--scope", "worker").strip()
        self.read_token = self.cli("tokens", "add", "reader1", "--scope", "read").strip()
        self.admin_token = self.cli("tokens", "add", "admin1", "--scope", "admin").strip()
        with open(self.conf, "w") as f:
            f.write(base + extra_config)
        self.import_shared = re.search(r"^backend\s*=\s*jetstream", extra_config, re.M) is not None
        if start:
            self.start()

    def cli(self, *args, check=True):
        p = subprocess.run([H.binary("logferry-receiver"), "--config", self.conf, *args], capture_output=True,
                           env={**os.environ, **self.env})
        if check and p.returncode != 0:
            raise AssertionError(f"logferry-receiver {' '.join(args)} exited {p.returncode}: {p.stderr.decode()}")
        return p.stdout.decode()

    def cli_run(self, *args):
        return subprocess.run([H.binary("logferry-receiver"), "--config", self.conf, *args], capture_output=True,
                              env={**os.environ, **self.env})

    def start(self, env=None, wait=True):
        if self.import_shared:
            self.cli("sites", "import")
            self.cli("tokens", "import")
            self.import_shared = False
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.proc = H.start([H.binary("logferry-receiver"), "--config", self.conf], log_path=self.log,
                            env={**self.env, **(env or {})})
        if not wait:
            return self.proc
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"receiver exited {self.proc.returncode}: {self.log_text()[-2000:]}")
            try:
                with open(self.port_file) as f:
                    txt = f.read().strip()
                if txt:
                    self.port = int(txt)
                    H.wait_port(self.port, proc=self.proc)
                    return self.proc
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        raise AssertionError("receiver did not start")

    def stop(self):
        if self.proc:
            rc = H.stop(self.proc)
            self.proc = None
            return rc

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def upload(self, s, sid=None, signer=None, ts="now", headers=None, body=None, timeout=30.0):
        sid = sid or s.id
        body = s.body if body is None else body
        path = f"/v1/sessions/{sid}"
        h = {"Content-Type": "application/zip"}
        if signer is not False:
            h["Authorization"] = (signer or self.signer).header("PUT", path, body, ts)
        h.update(headers or {})
        status, hdrs, data = H.http("PUT", self.port, path, body, h, timeout=timeout)
        try:
            js = json.loads(data) if data else None
        except ValueError:
            js = None
        return status, js, hdrs

    def get(self, path, token=None):
        h = {"Authorization": f"Bearer {token}"} if token else {}
        return H.http("GET", self.port, path, None, h)

    def post(self, path, obj, token=None, timeout=30.0):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        status, hdrs, data = H.http("POST", self.port, path, json.dumps(obj).encode(), h, timeout=timeout)
        return status, (json.loads(data) if data else None)

    def export(self, sid):
        out = os.path.join(self.dir, f"export-{sid}.zip")
        self.cli("sessions", "export", sid, "--out", out)
        with open(out, "rb") as f:
            data = f.read()
        os.unlink(out)
        return data

    def stored_files(self):
        found = []
        for root, dirs, files in os.walk(self.store):
            if os.path.basename(root) == ".tmp":
                found += [os.path.join(root, f) for f in files]
                continue
            found += [os.path.join(root, f) for f in files]
        return sorted(found)

    def index_rows(self):
        import sqlite3
        db = sqlite3.connect(os.path.join(self.dir, "index.db"))
        try:
            return db.execute("SELECT id, status, content_hash FROM sessions").fetchall()
        finally:
            db.close()

    def metric(self, name_with_labels):
        _, _, data = H.http("GET", self.port, "/metrics")
        for line in data.decode().splitlines():
            if line.startswith(name_with_labels + " "):
                return float(line.split()[-1])
        return None
