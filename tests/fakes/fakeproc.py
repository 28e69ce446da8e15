"""Starts the fakes in this folder for a test and talks to them (Python 3 standard library only).

    from fakeproc import start_fake, Client
    proc, port = start_fake("es_fake.py")          # or "slack_fake.py"
    es = Client(port)                               # one keep-alive connection
    status, body = es.json("PUT", "/logferry-events-1")
    # HTTPS verified with the fake's CA, and credentials sent with every request:
    proc, port = start_fake("es_fake.py", "--tls-dir", tls_dir, "--user", "u:p:all")
    es = Client(port, cafile=os.path.join(tls_dir, "ca.pem"), headers=basic_auth("u", "p"))

The process is killed when the test exits (even on failure).
"""
import atexit
import base64
import http.client
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_procs = []


@atexit.register
def _kill_all():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


def start_fake(script, *args, timeout=15.0, log_path=None):
    """Runs tests/fakes/<script> --port 0 --port-file F; returns (Popen, port)."""
    d = tempfile.mkdtemp(prefix="lffake-")
    port_file = os.path.join(d, "port")
    err = open(log_path, "ab") if log_path else subprocess.DEVNULL
    p = subprocess.Popen([sys.executable, os.path.join(HERE, script), "--port", "0",
                          "--port-file", port_file, *args], stderr=err, stdout=subprocess.DEVNULL)
    _procs.append(p)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{script} exited with {p.returncode} before writing its port")
        try:
            with open(port_file) as f:
                text = f.read().strip()
            if text:
                os.unlink(port_file)
                os.rmdir(d)
                return p, int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    p.kill()
    raise TimeoutError(f"{script} did not write its port within {timeout}s")


def stop_fake(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def basic_auth(user, password):
    """{"Authorization": "Basic base64(user:password)"}."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def api_key_auth(key_id, key):
    """{"Authorization": "ApiKey base64(id:key)"} (the "encoded" value of Elasticsearch's create
    API key API)."""
    return {"Authorization": "ApiKey " + base64.b64encode(f"{key_id}:{key}".encode()).decode()}


class Client:
    """A keep-alive HTTP/1.1 client. A connection the server closed raises (after which the next
    request opens a new one): tests of dropped connections must see the drop.
    cafile: speak HTTPS, verifying the server with that CA; headers: sent with every request."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, cafile=None, headers=None):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None
        self.connects = 0
        self.ssl_context = ssl.create_default_context(cafile=cafile) if cafile else None
        self.default_headers = dict(headers or {})

    def request(self, method, path, body=None, headers=None):
        """Returns (status, headers lower-cased, body bytes)."""
        if isinstance(body, str):
            body = body.encode()
        if self.conn is None:
            if self.ssl_context is not None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                        context=self.ssl_context)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.connects += 1
        try:
            self.conn.request(method, path, body=body, headers={**self.default_headers, **(headers or {})})
            r = self.conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def json(self, method, path, obj=None, content_type="application/json"):
        """Sends obj as JSON (when given); returns (status, decoded JSON or None)."""
        body = json.dumps(obj).encode() if obj is not None else None
        headers = {"Content-Type": content_type} if body is not None else {}
        status, _, data = self.request(method, path, body, headers)
        return status, (json.loads(data) if data else None)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
