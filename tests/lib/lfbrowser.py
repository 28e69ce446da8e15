"""Headless Debian Chromium driven through ChromeDriver's W3C WebDriver HTTP API, standard library only.

    with Browser() as b:
        b.get(f"http://127.0.0.1:{port}/dashboard")
        b.wait_for(lambda: b.find_all("svg polyline"), "the charts drawn")
        b.click(b.find("#refresh"))
        H.check(not b.js_errors(), f"JavaScript errors: {b.js_errors()}")

Each Browser starts its own chromedriver on a free loopback port with a fresh Chromium profile, HOME
and TMPDIR in a scratch directory, so several can run at once (in one test or in parallel tests).
quit() (also run by the context manager, at exit and on SIGTERM/SIGINT/SIGHUP) ends the session and
kills chromedriver and every Chromium process it started, and waits until they are gone. A small
watchdog process does the same if the test process itself is killed (SIGKILL), so no Chromium is
left behind.

Elements are Element objects (a str holding the WebDriver element id) that can also be passed to
execute() as arguments. WebDriver errors raise WebDriverError (NoSuchElementError for "no such
element") carrying the W3C error code and message.

Needs the Debian packages chromium and chromium-driver (scripts/install-deps.sh); available() tells
whether they are installed, so a test can exit 77 (skipped) when they are not.
"""
import atexit
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import lfharness as H

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Without the background-networking flags Chromium tries to reach Google hosts (component updates,
# variations, sync, safe browsing): this machine has no outside network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]

ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element identifier


def available():
    """None when headless Chromium can be driven here, else why not (for a skip message)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return f"{' and '.join(missing)} missing (scripts/install-deps.sh installs chromium and chromium-driver)"
    return None


class WebDriverError(Exception):
    """An error answer of the WebDriver API: error is the W3C code ("no such element", "javascript
    error", "invalid argument", ...), status the HTTP status, message ChromeDriver's text."""

    def __init__(self, error, message, status=None, command=None):
        self.error, self.message, self.status, self.command = error, message, status, command
        where = f" ({command})" if command else ""
        super().__init__(f"{error}{where}: {message}")


class NoSuchElementError(WebDriverError):
    pass


class BrowserTimeout(H.TestFailure):
    """wait_for's condition did not become true in time."""


class Element(str):
    """A WebDriver element id (a str), turned back into an element reference when passed to execute()."""


# Run by the watchdog (python3 -c): reads the process group ids of chromedriver from the pipe; at EOF
# (the test process is gone: quit() never ran) kills those groups and every process whose command
# line names the scratch directory (Chromium's crash handler starts in a session of its own). quit()
# writes "done" first, and the watchdog then just exits.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
fd, marker, keep = int(sys.argv[1]), os.fsencode(sys.argv[2]), sys.argv[3] == "1"
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups, buf = [], b""
while True:
    chunk = os.read(fd, 4096)
    if not chunk:
        break
    buf += chunk
    if b"done\n" in buf:
        sys.exit(0)
    *lines, buf = buf.split(b"\n")
    for x in lines:  # "PGID" to watch, "-PGID" when that chromedriver is gone already
        if x.startswith(b"-"):
            groups = [g for g in groups if g != -int(x)]
        elif x.strip():
            groups.append(int(x))
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
deadline = time.time() + 5
while time.time() < deadline:
    left = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker in f.read() and int(pid) != os.getpid():
                    os.kill(int(pid), signal.SIGKILL)
                    left += 1
        except OSError:
            pass
    if not left:
        break
    time.sleep(0.05)
if not keep:
    shutil.rmtree(sys.argv[2], ignore_errors=True)
"""

_live = []
_handlers_installed = False


def _leave(signum, frame):
    raise SystemExit(128 + signum)


def _install_signal_handlers():
    """SIGTERM's default action would end the test without atexit, leaving Chromium running: make
    every way out the same one (only where the test has not set handlers of its own)."""
    global _handlers_installed
    if _handlers_installed or threading.current_thread() is not threading.main_thread():
        return
    _handlers_installed = True
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _leave)


@atexit.register
def _quit_all():
    for b in list(_live):
        b.quit()


def _proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def _proc_stat(pid):
    """(state, ppid, pgid) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return rest[0], int(rest[1]), int(rest[2])
    except (OSError, IndexError, ValueError):
        return None


class Browser:
    """One headless Chromium session. Keyword arguments:
    width, height   the window size (default 1280x800)
    args            extra Chromium arguments, after CHROMIUM_ARGS
    timeout         seconds a WebDriver command may take (page loads, scripts), default 60
    """

    def __init__(self, width=1280, height=800, args=(), timeout=60.0):
        reason = available()
        if reason:
            raise RuntimeError(reason)
        self.timeout = timeout
        self.session = None
        self.driver = None
        self._log = []
        self._quit = False
        self._watch_fd = self._watchdog = None
        self.port = None
        self.dir = tempfile.mkdtemp(prefix="lfbrowser-")
        self.marker = self.dir + "/"  # in the command line of chromedriver and of every Chromium it starts
        for sub in ("home", "home/.config", "home/.cache", "tmp", "profile"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.driver_log = os.path.join(self.dir, "chromedriver.log")
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
        _live.append(self)
        _install_signal_handlers()
        rd = wr = None
        try:
            rd, wr = os.pipe()
            self._watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(rd), self.marker,
                                               "1" if os.environ.get("LF_KEEP_SCRATCH") else "0"],
                                              pass_fds=(rd,), start_new_session=True,
                                              stdin=subprocess.DEVNULL)
            os.close(rd)
            rd = None
            self._watch_fd, wr = wr, None
            self._start_driver()
            caps = {"browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": {"pageLoad": int(timeout * 1000), "script": int(timeout * 1000)},
                    "goog:loggingPrefs": {"browser": "ALL"},
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": CHROMIUM_ARGS + [f"--user-data-dir={self.dir}/profile"] + list(args)}}
            try:
                value = self._cmd("POST", "/session", {"capabilities": {"alwaysMatch": caps}}, session=False)
            except WebDriverError as e:
                raise WebDriverError(e.error, f"{e.message}\nchromedriver log:\n{self.driver_log_tail()}",
                                     e.status, "new session") from None
            self.session = value["sessionId"]
            self.capabilities = value.get("capabilities", {})
            self._cmd("POST", "/window/rect", {"width": width, "height": height})
        except BaseException:
            for fd in (rd, wr):
                if fd is not None:
                    os.close(fd)
            self.quit()
            raise

    # -- processes ---------------------------------------------------------------------------------

    def _start_driver(self):
        env = dict(os.environ, HOME=f"{self.dir}/home", XDG_CONFIG_HOME=f"{self.dir}/home/.config",
                   XDG_CACHE_HOME=f"{self.dir}/home/.cache", TMPDIR=f"{self.dir}/tmp")
        for attempt in range(5):
            port = H.free_port()
            with open(os.path.join(self.dir, "chromedriver.out"), "wb") as out:
                p = subprocess.Popen([CHROMEDRIVER, f"--port={port}", f"--log-path={self.driver_log}"],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
            os.write(self._watch_fd, f"{p.pid}\n".encode())
            self.driver, self.port = p, port
            deadline = time.time() + 20
            while time.time() < deadline and p.poll() is None:
                try:
                    if self._request("GET", "/status", None, 2.0)[1].get("value", {}).get("ready"):
                        return
                except (OSError, ValueError):
                    pass
                time.sleep(0.05)
            self._kill_driver()
            os.write(self._watch_fd, f"-{p.pid}\n".encode())
            # another process took the port between free_port() and chromedriver's bind: next port
            with open(os.path.join(self.dir, "chromedriver.out"), errors="replace") as f:
                if "port not available" not in f.read():
                    break
        raise RuntimeError(f"chromedriver did not start:\n{self.driver_log_tail()}")

    def driver_log_tail(self, n=30):
        """The last n lines of chromedriver's output and of its log."""
        text = ""
        for name in ("chromedriver.out", "chromedriver.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += "".join(f.readlines()[-n:])
            except OSError:
                pass
        return text

    def _ours(self, zombies=False):
        """Every live process of this browser: chromedriver's process group, its descendants, and
        whatever names the scratch directory (the crash handler daemonises). With zombies=True also
        the dead ones not yet reaped that are still known to be ours (in the group)."""
        pgid = self.driver.pid if self.driver else None
        found = set()
        procs = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            st = _proc_stat(pid)
            if st:
                procs[int(pid)] = st
        for pid, (state, ppid, pg) in procs.items():
            if state == "Z":
                if zombies and pgid is not None and pg == pgid:
                    found.add(pid)
            elif pgid is not None and pg == pgid:
                found.add(pid)
            else:
                cmd = _proc_cmdline(pid)
                if cmd and os.fsencode(self.marker) in cmd:
                    found.add(pid)
        grew = True
        while grew:
            n = len(found)
            found |= {pid for pid, (state, ppid, _) in procs.items()
                      if ppid in found and (zombies or state != "Z")}
            grew = len(found) != n
        found.discard(os.getpid())
        if self._watchdog is not None:
            found.discard(self._watchdog.pid)
        return found

    def pids(self):
        """The ids of every live process this browser runs (chromedriver, Chromium and its children)."""
        return sorted(self._ours()) if self.driver else []

    def _kill_driver(self):
        if self.driver is None:
            return
        if self.driver.poll() is None:
            try:
                os.killpg(self.driver.pid, signal.SIGKILL)
            except OSError:
                pass
        self.driver.wait()

    def quit(self):
        """Ends the session, kills chromedriver and Chromium, waits until every one of their
        processes is gone and removes the scratch directory. Safe to call more than once."""
        if self._quit:
            return
        self._quit = True
        seen = self._ours(zombies=True) if self.driver else set()
        if self.session and self.driver and self.driver.poll() is None and self.port:
            try:  # lets Chromium close its profile cleanly
                self._request("DELETE", f"/session/{self.session}", None, 15.0)
            except (OSError, ValueError):
                pass
        self.session = None
        deadline = time.time() + 15
        while True:
            seen |= self._ours(zombies=True) if self.driver else set()
            left = self._ours() if self.driver else set()
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if self.driver:
                try:
                    os.killpg(self.driver.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    self.driver.wait(0.2)
                except subprocess.TimeoutExpired:
                    pass
            if not left and (not self.driver or self.driver.poll() is not None):
                break
            if time.time() > deadline:
                print(f"lfbrowser: processes {sorted(left)} still alive after SIGKILL", file=sys.stderr)
                break
            time.sleep(0.05)
        # the killed processes that were reparented to init stay zombies until it reaps them: wait
        # for that too (briefly), so that a pgrep right after quit() finds nothing of this browser
        deadline = time.time() + 5
        while any(os.path.exists(f"/proc/{pid}") for pid in seen) and time.time() < deadline:
            time.sleep(0.05)
        if getattr(self, "_watch_fd", None) is not None:
            try:
                os.write(self._watch_fd, b"done\n")
            except OSError:
                pass
            os.close(self._watch_fd)
            self._watch_fd = None
        if getattr(self, "_watchdog", None) is not None:
            try:
                self._watchdog.wait(10)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
        if not os.environ.get("LF_KEEP_SCRATCH"):
            shutil.rmtree(self.dir, ignore_errors=True)
        if self in _live:
            _live.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()
        return False

    # -- the WebDriver protocol --------------------------------------------------------------------

    def _request(self, method, path, body, timeout):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with self._opener.open(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"value": {"error": "unknown error", "message": raw.decode(errors="replace")}}

    def _cmd(self, method, path, body=None, session=True):
        """One WebDriver command; returns its "value" or raises WebDriverError."""
        if self._quit:
            raise WebDriverError("invalid session id", "the browser has quit", None, f"{method} {path}")
        if session:
            path = f"/session/{self.session}{path}"
        if method == "POST" and body is None:
            body = {}
        try:
            status, answer = self._request(method, path, body, self.timeout + 10)
        except (OSError, ValueError) as e:
            alive = "running" if self.driver and self.driver.poll() is None else "exited"
            raise WebDriverError("unknown error", f"no answer from chromedriver ({alive}): {e}\n"
                                 f"{self.driver_log_tail(10)}", None, f"{method} {path}") from None
        value = answer.get("value") if isinstance(answer, dict) else None
        if status >= 400:
            v = value if isinstance(value, dict) else {}
            cls = NoSuchElementError if v.get("error") == "no such element" else WebDriverError
            raise cls(v.get("error", "unknown error"), v.get("message", str(answer)), status, f"{method} {path}")
        return value

    def _to_wire(self, v):
        if isinstance(v, Element):
            return {ELEMENT_KEY: str(v)}
        if isinstance(v, (list, tuple)):
            return [self._to_wire(x) for x in v]
        if isinstance(v, dict):
            return {k: self._to_wire(x) for k, x in v.items()}
        return v

    def _from_wire(self, v):
        if isinstance(v, dict):
            if ELEMENT_KEY in v and len(v) == 1:
                return Element(v[ELEMENT_KEY])
            return {k: self._from_wire(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self._from_wire(x) for x in v]
        return v

    # -- navigation --------------------------------------------------------------------------------

    def get(self, url):
        """Loads url and returns when its load event has fired."""
        self._cmd("POST", "/url", {"url": url})

    def current_url(self):
        return self._cmd("GET", "/url")

    def title(self):
        return self._cmd("GET", "/title")

    def refresh(self):
        self._cmd("POST", "/refresh")

    def back(self):
        self._cmd("POST", "/back")

    # -- elements ----------------------------------------------------------------------------------

    def find(self, css, within=None):
        """The first element matching the CSS selector; NoSuchElementError when there is none."""
        base = f"/element/{within}" if within else ""
        return Element(self._cmd("POST", f"{base}/element", {"using": "css selector", "value": css})[ELEMENT_KEY])

    def find_all(self, css, within=None):
        """Every element matching the CSS selector, in document order (possibly none)."""
        base = f"/element/{within}" if within else ""
        found = self._cmd("POST", f"{base}/elements", {"using": "css selector", "value": css})
        return [Element(e[ELEMENT_KEY]) for e in found]

    def text(self, el):
        """The rendered text of the element (as a user sees it: hidden parts left out)."""
        return self._cmd("GET", f"/element/{el}/text")

    def attr(self, el, name):
        """The element's attribute name (None when absent); for a few boolean and form attributes
        ChromeDriver answers the current property, as Selenium's getAttribute does."""
        return self._cmd("GET", f"/element/{el}/attribute/{name}")

    def prop(self, el, name):
        """The element's DOM property name (its current value, e.g. "value" of an input)."""
        return self._cmd("GET", f"/element/{el}/property/{name}")

    def click(self, el):
        self._cmd("POST", f"/element/{el}/click")

    def type(self, el, text):
        """Types text into the element as key presses (focuses it first)."""
        self._cmd("POST", f"/element/{el}/value", {"text": text})

    def clear(self, el):
        self._cmd("POST", f"/element/{el}/clear")

    # -- scripts, cookies, pictures, logs ----------------------------------------------------------

    def execute(self, js, *args):
        """Runs js as a function body (arguments[0], ...) in the page and returns what it returns
        (elements come back as Element). A thrown exception raises WebDriverError "javascript error"."""
        return self._from_wire(self._cmd("POST", "/execute/sync", {"script": js, "args": self._to_wire(list(args))}))

    def cookies(self):
        """The cookies visible to the current page: a list of dicts (name, value, path, domain,
        httpOnly, secure, sameSite, expiry)."""
        return self._cmd("GET", "/cookie")

    def cookie(self, name):
        """The value of the named cookie, None when there is none."""
        for c in self.cookies():
            if c.get("name") == name:
                return c.get("value")
        return None

    def screenshot(self, path):
        """Saves a PNG of the viewport at path and returns path."""
        png = base64.b64decode(self._cmd("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)
        return path

    def log(self):
        """Every browser log entry so far (console messages, uncaught exceptions, failed loads):
        dicts with level (SEVERE, WARNING, INFO, DEBUG), source (javascript, console-api, network,
        ...), message and timestamp. ChromeDriver hands each entry out once; they are kept here."""
        try:
            new = self._cmd("POST", "/se/log", {"type": "browser"})
        except WebDriverError as e:
            if e.error != "unknown command":
                raise
            new = self._cmd("POST", "/log", {"type": "browser"})  # older ChromeDriver
        self._log.extend(new or [])
        return list(self._log)

    def js_errors(self, network=False):
        """The SEVERE browser log entries: uncaught exceptions and console.error() calls (and failed
        resource loads too with network=True). An empty list means the page had no JS error."""
        return [e for e in self.log() if e.get("level") == "SEVERE" and (network or e.get("source") != "network")]

    # -- waiting -----------------------------------------------------------------------------------

    def wait_for(self, condition, what, timeout=10.0, step=0.05):
        """Polls condition() until it returns something true, which is returned. "no such element"
        and "stale element reference" count as not yet. On timeout raises BrowserTimeout naming
        what was awaited, the page's URL and its JS errors."""
        deadline = time.time() + timeout
        last = None
        while True:
            try:
                v = condition()
                if v:
                    return v
            except WebDriverError as e:
                if e.error not in ("no such element", "stale element reference"):
                    raise
                last = e
            if time.time() >= deadline:
                break
            time.sleep(step)
        try:
            where = f"; page {self.current_url()}, JS errors {self.js_errors()}"
        except WebDriverError:
            where = ""
        raise BrowserTimeout(f"timed out after {timeout}s waiting for {what}"
                             f"{f' (last: {last})' if last else ''}{where}")

    def wait_find(self, css, timeout=10.0):
        """The first element matching css once there is one."""
        return self.wait_for(lambda: self.find(css), f"an element matching {css!r}", timeout)
