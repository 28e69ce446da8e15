"""The HTTP server under attack: logferry-http-testserver keeps serving a normal client (every one of
its requests is checked) while slow clients, a connection flood, 1 GiB uploads, malformed requests
and header floods hit it; its peak RSS stays bounded and it drains and exits 0 on SIGTERM.

Memory bound: with --max-connections 64 the server can hold at most, per connection, 128 KiB of
unparsed input, 32 KiB of headers and 256 KiB of body in memory (bodies past that spill to a temp
file), i.e. < 27 MiB for 64 connections, plus the 64 KiB shared read buffer and the process itself
(~4 MiB). 64 MiB leaves room for allocator slack; a server that read a 1 GiB body into memory or
queued output without bound would pass it at once. Sanitizer builds (LF_SANITIZE=ON) carry shadow
memory and quarantine, so there the bound is 128 MiB.
"""
import os
import re
import select
import socket
import subprocess
import threading
import time
import http.client

import lfharness as h

HEADER_TIMEOUT_MS = 2000
MAX_CONNECTIONS = 64
UPLOAD_MAX = 1024 * 1024
GIB = 1024 * 1024 * 1024


def sanitized_build():
    try:
        with open(os.path.join(h.BUILD_DIR, "CMakeCache.txt")) as f:
            return re.search(r"^LF_SANITIZE:BOOL=ON$", f.read(), re.M) is not None
    except OSError:
        return False


RSS_BOUND_KIB = (128 if sanitized_build() else 64) * 1024


class Server:
    def __init__(self):
        self.log = os.path.join(h.scratch_dir(), "server.log")
        self.proc = h.start([h.binary("logferry-http-testserver"), "--listen", "127.0.0.1", "--port", "0",
                             "--max-connections", str(MAX_CONNECTIONS),
                             "--header-timeout-ms", str(HEADER_TIMEOUT_MS), "--body-timeout-ms", "2000",
                             "--idle-timeout-ms", "6000", "--upload-max", str(UPLOAD_MAX)],
                            log_path=self.log, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        h.check(line.strip().isdigit(), f"server printed {line!r}, not its port")
        self.port = int(line)
        h.wait_port(self.port, proc=self.proc)


class NormalClient(threading.Thread):
    """One keep-alive connection making GET, PUT and health requests until stopped; checks each."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.failures = []
        self.slowest = 0.0

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        body = bytes(range(256)) * 80  # 20 KiB
        i = 0
        while not self.stop.is_set() and i < 100000:
            i += 1
            kind = i % 3
            t0 = time.time()
            try:
                if kind == 0:
                    conn.request("GET", "/small")
                    want = (200, b"hello from logferry\n")
                elif kind == 1:
                    conn.request("PUT", "/upload", body=body)
                    want = (200, b'{"bytes":%d}' % len(body))
                else:
                    conn.request("GET", "/healthz")
                    want = (200, b'{"status":"ok"}')
                r = conn.getresponse()
                got = (r.status, r.read())
                if got != want:
                    self.failures.append(f"request {i}: {got!r} != {want!r}")
                else:
                    self.ok += 1
            except Exception as e:  # any failure of the normal client fails the test
                self.failures.append(f"request {i}: {type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            self.slowest = max(self.slowest, time.time() - t0)
            time.sleep(0.005)
        conn.close()


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_status(s, timeout=5.0):
    """Status code of the response on s, or None when the connection ends without one."""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        return "timeout"
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    return int(m.group(1)) if m else None


def slow_client(port, results):
    """Sends a request header one byte a second; records what ended it and when."""
    t0 = time.time()
    try:
        s = connect(port)
        s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        outcome = None
        while time.time() - t0 < 15:
            r, _, _ = select.select([s], [], [], 1.0)
            if r:
                outcome = read_status(s)
                break
            try:
                s.send(b"a")
            except OSError:
                outcome = "closed"
                break
        s.close()
        results.append((outcome, time.time() - t0))
    except OSError as e:
        results.append((f"error {e}", time.time() - t0))


def attack_slow_clients(port, n=30):
    results = []
    threads = [threading.Thread(target=slow_client, args=(port, results), daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


def attack_big_body_content_length(port):
    s = connect(port)
    t0 = time.time()
    s.sendall(b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % GIB)
    sent = 0
    chunk = b"x" * 65536
    s.setblocking(False)
    status = None
    # keep sending like a real uploader would, until the answer comes or we are cut off
    while time.time() - t0 < 10 and sent < GIB:
        r, w, _ = select.select([s], [s], [], 1.0)
        if r:
            status = read_status(s)
            break
        if w:
            try:
                sent += s.send(chunk)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                status = read_status(s)
                break
    elapsed = time.time() - t0
    s.close()
    h.check(status == 413, f"1 GiB Content-Length: got {status!r}, not 413")
    h.check(elapsed < 5, f"1 GiB Content-Length: 413 took {elapsed:.1f}s")
    h.check(sent < 64 * 1024 * 1024, f"1 GiB Content-Length: client could send {sent} bytes")
    print(f"  1 GiB Content-Length: 413 after {elapsed * 1000:.0f} ms, client had sent {sent} bytes", flush=True)


def attack_big_body_chunked(port):
    s = connect(port)
    t0 = time.time()
    s.sendall(b"PUT /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b"y" * 65536 + b"\r\n"
    sent = 0
    status = None
    s.setblocking(False)
    while time.time() - t0 < 10 and sent < GIB:
        r, w, _ = select.select([s], [s], [], 1.0)
        if r:
            status = read_status(s)
            break
        if w:
            try:
                sent += s.send(chunk)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                status = read_status(s) or "cut off"
                break
    elapsed = time.time() - t0
    s.close()
    h.check(status in (413, "cut off"), f"chunked 1 GiB: got {status!r}")
    h.check(elapsed < 5, f"chunked 1 GiB: stopped only after {elapsed:.1f}s")
    h.check(sent < 64 * 1024 * 1024, f"chunked 1 GiB: client could send {sent} bytes")
    print(f"  chunked 1 GiB: {status} after {elapsed * 1000:.0f} ms, client had sent {sent} bytes", flush=True)


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"GET /small HTTP/2.0\r\nHost: x\r\n\r\n",
    b"G\x00T /small HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /sm all HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET small HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /small HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    b"GET /small HTTP/1.1\r\nHost: x\r\nX: \x7f\r\n\r\n",
    b"GET /%%% HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"PUT /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),  # a TLS ClientHello
]


def attack_malformed(port):
    for i, req in enumerate(MALFORMED):
        s = connect(port)
        s.sendall(req)
        status = read_status(s)
        s.close()
        h.check(status == 400, f"malformed request {i} ({req[:30]!r}): got {status!r}, not 400")
    print(f"  {len(MALFORMED)} malformed requests: 400 each", flush=True)


def attack_header_floods(port):
    # many headers
    s = connect(port)
    s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(500)) + b"\r\n")
    status = read_status(s)
    s.close()
    h.check(status == 431, f"500 headers: got {status!r}, not 431")
    # one enormous header
    s = connect(port)
    s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 200000 + b"\r\n\r\n")
    status = read_status(s)
    s.close()
    h.check(status == 431, f"200 KB header: got {status!r}, not 431")
    # headers that never end, streamed until the server answers
    s = connect(port)
    s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n")
    s.setblocking(False)
    status = None
    t0 = time.time()
    n = 0
    while time.time() - t0 < 5:
        r, w, _ = select.select([s], [s], [], 1.0)
        if r:
            status = read_status(s)
            break
        try:
            s.send(b"X-Flood-%d: %s\r\n" % (n, b"z" * 100))
            n += 1
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            status = read_status(s)
            break
    s.close()
    h.check(status == 431, f"endless headers: got {status!r} after {n} lines, not 431")
    print("  header floods: 431 each", flush=True)


def attack_connection_cap(port, n=90):
    socks, statuses = [], []
    for _ in range(n):
        s = connect(port)
        s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    for s in socks:
        statuses.append(read_status(s))
    for s in socks:
        s.close()
    ok = statuses.count(200)
    rejected = statuses.count(503)
    h.check(ok + rejected == n, f"connection flood: unexpected answers {sorted(set(map(str, statuses)))}")
    h.check(ok <= MAX_CONNECTIONS - 1, f"connection flood: {ok} served past a cap of {MAX_CONNECTIONS}")
    h.check(rejected >= n - (MAX_CONNECTIONS - 1), f"connection flood: only {rejected} got 503")
    print(f"  connection flood: {ok} served, {rejected} answered 503", flush=True)


def legit_uploads(port, n=16):
    """n clients at once upload exactly the route's limit: each body spills to a temp file."""
    results = []

    def one():
        try:
            # (lfharness.http() cannot be used: inside it, the name http is the function itself)
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            c.request("PUT", "/upload", body=b"u" * UPLOAD_MAX)
            r = c.getresponse()
            results.append((r.status, r.read()))
            c.close()
        except Exception as e:
            results.append((type(e).__name__, str(e).encode()))

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    want = (200, b'{"bytes":%d}' % UPLOAD_MAX)
    bad = [r for r in results if r != want]
    h.check(len(results) == n and not bad, f"parallel 1 MiB uploads: {bad[:3]}")
    print(f"  {n} parallel uploads of 1 MiB: all 200", flush=True)


def test_attack():
    srv = Server()
    pid = srv.proc.pid
    base_kib = h.hwm_kib(pid)
    normal = NormalClient(srv.port)
    normal.start()
    time.sleep(0.3)
    t0 = time.time()

    slow_threads, slow_results = attack_slow_clients(srv.port)
    attack_big_body_content_length(srv.port)
    attack_big_body_chunked(srv.port)
    attack_malformed(srv.port)
    attack_header_floods(srv.port)
    legit_uploads(srv.port)
    for t in slow_threads:
        t.join(20)
    for outcome, elapsed in slow_results:
        h.check(outcome in (408, "closed", None), f"slow client ended with {outcome!r}")
        h.check(elapsed < HEADER_TIMEOUT_MS / 1000 + 2.0, f"slow client lasted {elapsed:.1f}s")
    h.check(len(slow_results) == len(slow_threads), "a slow client did not finish")
    got408 = sum(1 for o, _ in slow_results if o == 408)
    print(f"  {len(slow_results)} slow clients: {got408} got 408, the rest were closed, "
          f"longest {max(e for _, e in slow_results):.1f}s", flush=True)
    time.sleep(2.5)  # connections closed above finish their linger, so the cap test counts right
    attack_connection_cap(srv.port)
    attack_big_body_content_length(srv.port)  # once more, now that the server has seen it all

    time.sleep(0.5)
    normal.stop.set()
    normal.join(10)
    hwm = h.hwm_kib(pid)
    print(f"normal client: {normal.ok} requests ok, {len(normal.failures)} failed, slowest {normal.slowest * 1000:.0f} ms",
          flush=True)
    print(f"server peak RSS (VmHWM): {hwm / 1024:.1f} MiB (at start {base_kib / 1024:.1f} MiB, "
          f"bound {RSS_BOUND_KIB / 1024:.0f} MiB), attack took {time.time() - t0:.1f}s", flush=True)
    h.check(not normal.failures, f"normal client failures: {normal.failures[:5]}")
    h.check(normal.ok >= 100, f"normal client made only {normal.ok} requests")
    h.check(hwm < RSS_BOUND_KIB, f"peak RSS {hwm} KiB >= {RSS_BOUND_KIB} KiB")

    rc = h.stop(srv.proc)
    h.check(rc == 0, f"server exited {rc} on SIGTERM")
    with open(srv.log) as f:
        log = f.read()
    m = re.search(r"stats .*bytes_in=(\d+)", log)
    h.check(m is not None, "server printed no stats")
    bytes_in = int(m.group(1))
    print(f"server read {bytes_in / 1048576:.1f} MiB in all; {m.group(0)}", flush=True)
    h.check(bytes_in < 128 * 1024 * 1024, f"server read {bytes_in} bytes: it consumed the 1 GiB bodies")


if __name__ == "__main__":
    h.run_tests([test_attack])
