"""Shared helpers for logferry's integration tests: run the real programs, talk HTTP to them.

Tests are plain Python 3 (standard library only) run by ctest. Each test gets a scratch directory,
starts the programs it needs from $LF_BUILD_DIR on loopback ports it picks, and kills whatever it
started when it ends, even on failure.
"""
import atexit
import http.client as httpclient
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = os.environ.get("LF_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("LF_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))

_procs = []


def binary(name):
    """Path of a built program, e.g. binary('logferry-receiver')."""
    for cand in (os.path.join(BUILD_DIR, name), os.path.join(BUILD_DIR, "tools", name)):
        if os.path.exists(cand):
            return cand
    raise FileNotFoundError(f"{name} not built in {BUILD_DIR}")


def scratch_dir(prefix="lftest-"):
    """A fresh directory removed at exit unless LF_KEEP_SCRATCH is set."""
    d = tempfile.mkdtemp(prefix=prefix)
    if not os.environ.get("LF_KEEP_SCRATCH"):
        atexit.register(shutil.rmtree, d, True)
    return d


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=15.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def start(args, log_path=None, env=None, **kw):
    """Starts a process; it is killed at exit. stderr goes to log_path (or inherits)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    err = open(log_path, "ab") if log_path else None
    p = subprocess.Popen(args, stdout=kw.pop("stdout", err or None), stderr=err or None, env=full_env, **kw)
    p.log_path = log_path
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=20.0):
    """Sends sig and waits; returns the exit code. SIGKILL after timeout."""
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError(f"process {p.args[0]} did not exit within {timeout}s of signal {sig}")
    return p.returncode


@atexit.register
def _kill_all():
    """SIGTERM first, so that a master process takes its workers with it (an nginx master killed with
    SIGKILL leaves its worker running, holding its network namespace), then SIGKILL what is left."""
    alive = [p for p in _procs if p.poll() is None]
    for p in alive:
        try:
            p.terminate()
        except ProcessLookupError:
            pass
    deadline = time.time() + 3
    for p in alive:
        try:
            p.wait(max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
    for p in alive:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


def http(method, port, path, body=None, headers=None, host="127.0.0.1", timeout=10.0):
    """One request on a new connection. Returns (status, headers dict lower-cased, body bytes)."""
    c = httpclient.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def http_json(method, port, path, obj=None, headers=None, **kw):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    body = json.dumps(obj).encode() if obj is not None else None
    status, hdrs, data = http(method, port, path, body, h, **kw)
    return status, (json.loads(data) if data else None)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def hwm_kib(pid):
    """Peak resident set size of a live process."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class TestFailure(AssertionError):
    pass


def sanitizer_build():
    """True when LF_BUILD_DIR is the AddressSanitizer build (the suite's second run)."""
    cache = os.path.join(BUILD_DIR, "CMakeCache.txt")
    return os.path.exists(cache) and "LF_SANITIZE:BOOL=ON" in open(cache).read()


def skip_in_sanitizer_build(what):
    """For tests of test tooling or shipped config files, which run no C code of ours: the gcc suite
    runs them, the sanitizer suite would only spend the time again. Exits 77 (ctest: skipped)."""
    if sanitizer_build():
        print(f"SKIP: {what} runs no program of ours; the gcc suite runs this test")
        sys.exit(77)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def wait_for(fn, what, timeout=20.0, step=0.1):
    """Polls fn until it returns something true, which is returned; fails naming what was awaited."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        check(time.time() < deadline, f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def run_tests(tests):
    """Runs test functions in order; prints 'N passed, N failed' and exits non-zero on failure."""
    passed = failed = 0
    for t in tests:
        t0 = time.time()
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__} ({time.time() - t0:.1f}s)", flush=True)
        except Exception as e:  # report and go on with the next test
            failed += 1
            import traceback
            traceback.print_exc()
            print(f"FAIL {t.__name__}: {e}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
