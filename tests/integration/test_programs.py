"""The five programs' common skeleton (lf_service): options, configuration errors and round trips,
the daemon's /healthz and /metrics, SIGHUP reloads, graceful SIGTERM and systemd notifications."""
import http.client as httpclient
import json
import os
import re
import signal
import socket
import subprocess
import time

from lfharness import binary, check, run_tests, scratch_dir, start

PROGRAMS = ["logferry-uploader", "logferry-receiver", "logferry-parser", "logferry-analytics",
            "logferry-monitor"]


def http(method, port, path, timeout=10.0):
    """One request on a new connection: (status, lower-cased headers, body)."""
    c = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)


def wait_for(pred, what, timeout=15.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} while waiting for {what}")
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def read_file(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? '
                    r'(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|NaN|\+Inf|-Inf)$')


def parse_prometheus(text):
    """Checks the text exposition format 0.0.4 strictly; returns {series text: value}."""
    check(text.endswith("\n"), "exposition does not end with a newline")
    types, helps, samples = {}, set(), {}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            check(name not in helps, f"line {n}: second HELP for {name}")
            helps.add(name)
        elif line.startswith("# TYPE "):
            parts = line.split(" ")
            check(len(parts) == 4 and parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"),
                  f"line {n}: bad TYPE line {line!r}")
            check(parts[2] not in types, f"line {n}: second TYPE for {parts[2]}")
            types[parts[2]] = parts[3]
        else:
            m = SAMPLE.match(line)
            check(m is not None, f"line {n}: not a sample line: {line!r}")
            name = m.group(1)
            family = name
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
                    family = name[: -len(suffix)]
            check(family in types, f"line {n}: sample {name} before its TYPE")
            key = name + (m.group(2) or "")
            check(key not in samples, f"line {n}: duplicate series {key}")
            samples[key] = float(m.group(3))
    return samples


class Notify:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []

    def poll(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return self.messages

    def wait(self, text, timeout=10.0):
        return wait_for(lambda: any(text in m for m in self.poll()), f"notification {text!r}", timeout)

    def close(self):
        self.sock.close()


def test_help_and_version():
    for prog in PROGRAMS:
        r = run([binary(prog), "--help"])
        check(r.returncode == 0, f"{prog} --help exited {r.returncode}")
        for want in (f"Usage: {prog} ", "--config PATH", "--set SECTION.KEY=VALUE", "--dump-config",
                     "--check-config", "--version", f"/etc/logferry/{prog.split('-')[1]}.conf"):
            check(want in r.stdout, f"{prog} --help lacks {want!r}:\n{r.stdout}")
        if prog == "logferry-parser":
            check("\nCommands:\n  parse " in r.stdout, f"parser --help lacks the parse command:\n{r.stdout}")
        r = run([binary(prog), "--version"])
        check(r.returncode == 0 and re.fullmatch(prog + r" \d+\.\d+\.\d+\S*\n", r.stdout) is not None,
              f"{prog} --version: {r.returncode} {r.stdout!r}")
        r = run([binary(prog), "--bogus"])
        check(r.returncode == 2 and "unknown option --bogus" in r.stderr, f"{prog} --bogus: {r.returncode} {r.stderr}")
        r = run([binary(prog), "nosuchcommand"])
        check(r.returncode == 2 and "unknown command" in r.stderr, f"{prog} nosuchcommand: {r.stderr}")


# Repeated sections through --set, so that the round trip covers them too.
EXTRA_SETS = {
    "logferry-uploader": ["watch.app.dir=/srv/app/logs", "watch.app.settle=90s", "watch.b.dir=/b"],
    "logferry-parser": ["logtype.app.format=<Date> <Time> <Level> <Content>", "logtype.app.mask=blk_-?\\d+",
                        "logtype.app.mask=(\\d+\\.){3}\\d+"],
    "logferry-monitor": ["check.api.kind=healthz", "check.api.url=http://127.0.0.1:8440/healthz",
                         "slack.webhook_url=https://hooks.example.invalid/T000/B000/XXXX"],
}


def test_dump_config_round_trip():
    d = scratch_dir()
    for prog in PROGRAMS:
        sets = ["--set", "log.level=warn", "--set", "http.max_connections=77", "--set",
                "http.body_tmp_dir=/var/tmp/with space ; and # marks", "--set", "http.idle_timeout=90s"]
        secret = any("webhook_url" in x for x in EXTRA_SETS.get(prog, []))
        for x in EXTRA_SETS.get(prog, []):
            if "webhook_url" not in x:
                sets += ["--set", x]
        if secret:  # a secret is masked, and a dump holding the mask is refused, not loaded
            r = run([binary(prog), "--config", os.devnull, "--set", EXTRA_SETS[prog][-1], "--dump-config"])
            check(r.returncode == 0 and "webhook_url = (secret)\n" in r.stdout and "hooks.example" not in r.stdout,
                  f"{prog}: secret not masked:\n{r.stdout}")
            path = os.path.join(d, prog + "-secret.conf")
            with open(path, "w") as f:
                f.write(r.stdout)
            r = run([binary(prog), "--config", path, "--check-config"])
            check(r.returncode == 2 and "webhook_url: \"(secret)\" is the mask" in r.stderr, f"{prog}: {r.stderr}")
        r = run([binary(prog), "--config", os.devnull, *sets, "--dump-config"])
        check(r.returncode == 0, f"{prog} --dump-config exited {r.returncode}: {r.stderr}")
        first = r.stdout
        wants = ["level = warn\n", "max_connections = 77\n", "idle_timeout = 90s\n"]
        wants += {"logferry-uploader": ["\n[watch.app]\ndir = /srv/app/logs\ninclude = *.log\n", "\nsettle = 90s\n"],
                  "logferry-parser": ["\n[logtype.app]\nformat = <Date> <Time> <Level> <Content>\n"
                                      "mask = \"blk_-?\\\\d+\"\nmask = \"(\\\\d+\\\\.){3}\\\\d+\"\n"],
                  "logferry-monitor": ["\n[check.api]\nkind = healthz\n"]}.get(prog, [])
        for want in wants:
            check(want in first, f"{prog} dump lacks {want!r}:\n{first}")
        path = os.path.join(d, prog + ".conf")
        with open(path, "w") as f:
            f.write(first)
        r = run([binary(prog), "--config", path, "--dump-config"])
        check(r.returncode == 0, f"{prog} does not load its own dump: {r.stderr}")
        check(r.stdout == first, f"{prog}: dump of the dump differs:\n{first}\n---\n{r.stdout}")
        # the dump's values are valid; the defaults alone may not be enough to start the service
        # (the uploader needs a site and its key, the parser a token and a keyring), which
        # --check-config then says instead of "valid"
        r = run([binary(prog), "--config", path, "--check-config"])
        check((r.returncode == 0 and "is valid" in r.stdout) or
              (r.returncode == 2 and "configuration error" not in r.stderr and "would not start" in r.stderr
               and prog in ("logferry-uploader", "logferry-parser")),
              f"{prog} --check-config: {r.returncode} {r.stderr}")


def test_bad_configuration():
    d = scratch_dir()
    bad = os.path.join(d, "bad.conf")
    with open(bad, "w") as f:
        f.write("# comment\n[http]\nlisten = 127.0.0.1:0\nmax_connections = lots\n")
    typo = os.path.join(d, "typo.conf")
    with open(typo, "w") as f:
        f.write("[log]\nlevel = info\nlevle = debug\n")
    section = os.path.join(d, "section.conf")
    with open(section, "w") as f:
        f.write("[log]\nlevel = info\n\n[htttp]\nlisten = 1\n")
    for prog in PROGRAMS:
        for flag in ("--check-config", "--dump-config", None):
            args = [binary(prog), "--config", bad] + ([flag] if flag else [])
            r = run(args)
            check(r.returncode == 2, f"{prog} {flag}: bad config exited {r.returncode}")
            want = f"{bad}:4: [http] max_connections: \"lots\" is not an unsigned integer"
            check(want in r.stderr, f"{prog}: expected {want!r} in:\n{r.stderr}")
            check(r.stdout == "", f"{prog}: printed something for a bad config: {r.stdout!r}")
        r = run([binary(prog), "--config", typo, "--check-config"])
        check(r.returncode == 2 and f"{typo}:3: [log] levle: unknown key" in r.stderr, f"{prog}: {r.stderr}")
        r = run([binary(prog), "--config", section, "--check-config"])
        check(r.returncode == 2 and f"{section}:4: [htttp]: unknown section" in r.stderr, f"{prog}: {r.stderr}")
        r = run([binary(prog), "--config", os.path.join(d, "missing.conf"), "--check-config"])
        check(r.returncode == 2 and "missing.conf: No such file or directory" in r.stderr, f"{prog}: {r.stderr}")
        r = run([binary(prog), "--config", os.devnull, "--set", "http.listen=nowhere", "--check-config"])
        check(r.returncode == 2 and "--set: [http] listen: \"nowhere\" is not HOST:PORT" in r.stderr,
              f"{prog}: {r.stderr}")


_mariadb = []


def mariadb():
    """One private MariaDB for the programs whose daemon needs a database at start (started lazily)."""
    if not _mariadb:
        import lfmariadb
        _mariadb.append(lfmariadb.scratch_server())
    return _mariadb[0]


def write_config(prog, path, listen, port_file, level="info"):
    """The program's defaults (from its own dump) with data paths moved into the scratch directory
    (directories created), so that no test writes under /var/lib, a private MariaDB for a [mysql]
    section, and the given [log] and [http] values. Returns the line count."""
    r = run([binary(prog), "--config", os.devnull, "--dump-config"])
    check(r.returncode == 0, f"{prog} --dump-config: {r.stderr}")
    data = os.path.join(os.path.dirname(path), "data")
    repl = {("log", "level"): level, ("http", "listen"): listen, ("http", "port_file"): port_file,
            ("http", "header_timeout"): "20s"}
    if prog == "logferry-uploader":  # a site and its key are required to run
        key = os.path.join(os.path.dirname(path), "site.key")
        repl[("uploader", "site")] = "test-site"
        repl[("uploader", "key_file")] = key
        if not os.path.exists(key):
            k = run([binary(prog), "--config", os.devnull, "--set", "uploader.site=test-site", "--set",
                     f"uploader.key_file={key}", "keygen"])
            check(k.returncode == 0, f"uploader keygen: {k.stderr}")
    if prog == "logferry-parser":  # a worker token and a keyring that loads are required to run
        keys = os.path.join(os.path.dirname(path), "keys")
        repl[("receiver", "token")] = "not-checked-until-the-first-request"
        repl[("parser", "keys_dir")] = keys
        if not os.path.exists(keys):
            k = run([binary("logferry-receiver"), "--config", os.devnull, "--set", f"store.keys_dir={keys}",
                     "keys", "rotate"])
            check(k.returncode == 0, f"receiver keys rotate: {k.stderr}")
    if "\n[mysql]\n" in r.stdout:
        db = mariadb()
        for k, v in db.dsn("logferry").items():
            repl[("mysql", k)] = v
    out, section = [], ""
    for line in r.stdout.splitlines():
        if line.startswith("["):
            section = line[1:-1]
        m = re.match(r"^(?:# )?(\w+) = (.*)$", line)
        if m and (section, m.group(1)) in repl:
            line = f"{m.group(1)} = {repl[(section, m.group(1))]}"
        elif m and not line.startswith("#") and m.group(2).startswith("/var/lib/logferry/"):
            moved = os.path.join(data, m.group(2)[len("/var/lib/logferry/"):])
            os.makedirs(moved if m.group(1).endswith("dir") else os.path.dirname(moved), mode=0o700, exist_ok=True)
            line = f"{m.group(1)} = {moved}"
        out.append(line)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return len(out)


def run_daemon(prog):
    d = scratch_dir()
    conf = os.path.join(d, "daemon.conf")
    port_file = os.path.join(d, "port")
    log = os.path.join(d, "stderr.log")
    os.makedirs(os.path.join(d, "data"))
    write_config(prog, conf, "127.0.0.1:0", port_file)
    notify = Notify(d)
    try:
        p = start([binary(prog), "--config", conf], log_path=log,
                  env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})
        port = int(wait_for(lambda: read_file(port_file).strip(), "port file", proc=p))
        check(f"listening on 127.0.0.1:{port}" in read_file(log), f"{prog}: no 'listening on' line")
        notify.wait("READY=1")
        notify.wait("WATCHDOG=1")  # WatchdogSec=0.4s: pinged from the loop every 200 ms
        before = sum(m == "WATCHDOG=1" for m in notify.poll())
        time.sleep(0.5)
        check(sum(m == "WATCHDOG=1" for m in notify.poll()) >= before + 2, f"{prog}: watchdog pings stopped")

        status, headers, body = http("GET", port, "/healthz")
        check(status == 200, f"{prog} /healthz: {status}")
        check(headers["content-type"].startswith("application/json"), f"{prog} /healthz type {headers}")
        health = json.loads(body)
        # degraded is still 200 (e.g. a receiver on a nearly full test disk); failing would be 503
        check(health["status"] in ("ok", "degraded") and health["program"] == prog, f"{prog} /healthz: {health}")
        check(isinstance(health["uptime_s"], int) and health["version"], f"{prog} /healthz: {health}")

        status, headers, body = http("GET", port, "/metrics")
        check(status == 200, f"{prog} /metrics: {status}")
        check(headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", f"{headers}")
        samples = parse_prometheus(body.decode())
        for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                     "process_start_time_seconds", "lf_http_requests_total"):
            check(name in samples, f"{prog} /metrics lacks {name}")
        check(samples["process_resident_memory_bytes"] > 1 << 20, "implausible RSS")
        check(samples["process_open_fds"] >= 3, "implausible fd count")
        check(abs(samples["process_start_time_seconds"] - time.time()) < 120, "implausible start time")
        check(samples["lf_http_requests_total"] >= 2, "requests not counted")

        # SIGHUP: the log level applies at once, a new listen address needs a restart
        lines = write_config(prog, conf, "127.0.0.1:1", port_file, level="debug")
        p.send_signal(signal.SIGHUP)
        wait_for(lambda: "needs a restart: [http] listen" in read_file(log), "reload log line", proc=p)
        text = read_file(log)
        check("changed: [log] level;" in text, f"{prog}: reload did not report the level:\n{text}")
        check("DEBUG" in text.split("SIGHUP")[-1], f"{prog}: debug level not applied:\n{text}")
        notify.wait("RELOADING=1")
        notify.wait("restart needed for: [http] listen")
        status, _, _ = http("GET", port, "/healthz")  # still on the old address
        check(status == 200, f"{prog}: /healthz after reload {status}")
        status, _, body = http("GET", port, "/metrics")
        check('lf_config_reloads_total{result="ok"} 1\n' in body.decode(), f"{prog}: reload not counted")

        # a broken file on SIGHUP keeps the running configuration
        with open(conf, "a") as f:
            f.write("[nope]\n")
        p.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in read_file(log), "failed reload", proc=p)
        check(f"{conf}:{lines + 1}: [nope]: unknown section" in read_file(log), f"{prog}: {read_file(log)}")

        # SIGTERM while a request is still arriving: it is answered, then the process exits 0
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        notify.wait("STOPPING=1")
        time.sleep(0.3)
        check(p.poll() is None, f"{prog} exited before the request in progress was answered")
        s.sendall(b"User-Agent: slow\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        check(data.startswith(b"HTTP/1.1 200 "), f"{prog}: in-flight request got {data[:100]!r}")
        check(b"connection: close" in data.lower(), f"{prog}: draining response without Connection: close")
        check(b'"program":"' + prog.encode() + b'"' in data, f"{prog}: in-flight body {data!r}")
        try:  # no second signal: the process must exit by itself
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{prog} did not exit after SIGTERM:\n{read_file(log)}")
        check(rc == 0, f"{prog} exited {rc} after SIGTERM:\n{read_file(log)}")
        check(not os.path.exists(port_file), f"{prog} left its port file")
        errors = [l for l in read_file(log).splitlines() if "ERROR" in l and "reload failed" not in l]
        check(not errors, f"{prog} logged errors: {errors}")
    finally:
        notify.close()


def test_daemons():
    for prog in PROGRAMS:
        run_daemon(prog)


def test_listen_failure():
    # a port in use: the daemon exits 1 with a message, not 0 and not a crash
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    d = scratch_dir()
    os.makedirs(os.path.join(d, "data"))
    try:
        for prog in PROGRAMS:
            conf = os.path.join(d, prog + ".conf")
            write_config(prog, conf, f"127.0.0.1:{port}", os.path.join(d, "port"))
            r = run([binary(prog), "--config", conf])
            check(r.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in r.stderr,
                  f"{prog}: {r.returncode} {r.stderr}")
    finally:
        blocker.close()


def commands_of(prog):
    """The command names --help lists (its "Commands:" part)."""
    out = run([binary(prog), "--help"]).stdout
    part = out.split("\nCommands:\n", 1)[1] if "\nCommands:\n" in out else ""
    return [line.split()[0] for line in part.splitlines() if line.startswith("  ") and not line.startswith("   ")]


def opened_files(args):
    """Runs args under strace; the files it opened or created, leaving out what the dynamic loader,
    the C library and the kernel's pseudo-filesystems need."""
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat,creat,mkdir,mkdirat,unlink,unlinkat,rename,renameat,renameat2",
                        "-o", "/dev/stderr"] + args, capture_output=True, text=True, timeout=60,
                       # LeakSanitizer cannot run under ptrace (the sanitizer suite would abort)
                       env={**os.environ, "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"})
    files = []
    for line in r.stderr.splitlines():
        m = re.search(r'(?:open|openat|creat|mkdir|mkdirat|unlink|unlinkat|rename\w*)\((?:[^"]*?)"([^"]+)"', line)
        if not m:
            continue
        path = m.group(1)
        if path.startswith(("/etc/ld.so", "/lib", "/usr/lib", "/proc/", "/sys/", "/dev/", "/usr/share/locale",
                            "/etc/localtime", "/usr/share/zoneinfo", "/etc/nsswitch.conf", "/etc/gconv")):
            continue
        files.append(line.strip())
    return r, files


def test_help_everywhere():
    """-h is --help; the footer names the manual; PROGRAM COMMAND --help (or -h) exits 0, prints the
    command's usage and opens no file (no configuration, no queue.db, no token file)."""
    for prog in PROGRAMS:
        long_help = run([binary(prog), "--help"]).stdout
        short = run([binary(prog), "-h"])
        check(short.returncode == 0 and short.stdout == long_help, f"{prog} -h: {short.returncode} {short.stderr}")
        check(f"man {prog}" in long_help and "man logferry.conf" in long_help and "docs/" not in long_help,
              f"{prog} --help footer:\n{long_help[-400:]}")
        cmds = commands_of(prog)
        check(cmds, f"{prog} lists no commands")
        for cmd in cmds:
            for flag in ("--help", "-h"):
                args = [binary(prog), "--config", "/nonexistent/logferry-test.conf", cmd, flag]
                r, files = opened_files(args)
                check(r.returncode == 0, f"{prog} {cmd} {flag} exited {r.returncode}: {r.stderr[-500:]}")
                check(f" {cmd}" in r.stdout and ("Usage" in r.stdout or "usage" in r.stdout),
                      f"{prog} {cmd} {flag}: {r.stdout[:300]}")
                check(not files, f"{prog} {cmd} {flag} touched files: {files}")


def test_check_config_says_what_start_needs():
    """--check-config checks what the daemon needs, not only the values; the daemon itself refuses to
    start with exit status 2 and one line saying why (the units do not restart on 2)."""
    d = scratch_dir()
    r = run([binary("logferry-uploader"), "--config", "/dev/null", "--check-config"])
    check(r.returncode == 2 and "/dev/null: [uploader] site: not set" in r.stderr, f"uploader: {r.returncode} {r.stderr}")
    conf = os.path.join(d, "uploader.conf")
    with open(conf, "w") as f:
        f.write(f"[http]\nlisten = 127.0.0.1:0\n[receiver]\nurl = ftp://receiver\n[uploader]\nsite = a\n"
                f"key_file = {d}/missing.key\nstate_dir = {d}/state\n[outbox]\ndir = {d}/outbox\n"
                f"[watch.app]\ndir = {d}/uploader.conf\n")
    r = run([binary("logferry-uploader"), "--config", conf, "--check-config"])
    check(r.returncode == 2, f"uploader: {r.returncode} {r.stdout} {r.stderr}")
    for want in (f"{conf}:4: [receiver] url: the URL must start with http:// or https://",
                 f"{conf}:7: [uploader] key_file: {d}/missing.key", f"{conf}:12: [watch.app] dir: ",
                 "3 problems: the service would not start"):
        check(want in r.stderr, f"uploader --check-config lacks {want!r}:\n{r.stderr}")
    r = run([binary("logferry-uploader"), "--config", conf])
    lines = [line for line in r.stderr.splitlines() if "not starting" in line]
    check(r.returncode == 2 and len(lines) == 1 and "and 2 more" in lines[0] and "--check-config" in lines[0],
          f"daemon: {r.returncode} {r.stderr}")
    check(not os.path.exists(os.path.join(d, "state")), "the refused daemon created its state directory")

    # the parser: a worker token, a keyring that loads, log types that load
    pconf = os.path.join(d, "parser.conf")
    os.makedirs(os.path.join(d, "keys"), mode=0o700)
    with open(pconf, "w") as f:
        f.write(f"[parser]\nkeys_dir = {d}/keys\n[logtype.app]\nmask = x\n")
    r = run([binary("logferry-parser"), "--config", pconf, "--check-config"])
    for want in ("[receiver] token: not set", f"{pconf}:2: [parser] keys_dir: {d}/keys has no key",
                 "[logtype.app] needs format"):
        check(want in r.stderr, f"parser --check-config lacks {want!r}:\n{r.stderr}")
    check(r.returncode == 2, f"parser: {r.returncode}")

    # a configuration the daemon can start with is valid, and says so
    good = os.path.join(d, "monitor.conf")
    with open(good, "w") as f:
        f.write(f"[http]\nlisten = 127.0.0.1:0\n[monitor]\nstate_dir = {d}/monitor\n")
    r = run([binary("logferry-monitor"), "--config", good, "--check-config"])
    check(r.returncode == 0 and "is valid" in r.stdout, f"monitor: {r.returncode} {r.stdout} {r.stderr}")


def test_manual_pages():
    """PROGRAM --man is a manual page groff reads without a warning, naming every command, and the
    committed docs/man/ pages are what the programs print (scripts/gen-docs.sh writes them)."""
    src = os.environ.get("LF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    for prog in PROGRAMS:
        r = run([binary(prog), "--man"])
        check(r.returncode == 0 and r.stdout.startswith(".\\\" Generated"), f"{prog} --man: {r.returncode}")
        for want in (f".TH {prog.upper()} 8", ".SH SYNOPSIS", ".SH COMMANDS", ".SH EXIT STATUS", "logferry.conf"):
            check(want in r.stdout, f"{prog} --man lacks {want!r}")
        for cmd in commands_of(prog):
            check(f"\\fB{cmd}\\fR" in r.stdout, f"{prog} --man lacks the command {cmd}")
        g = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=r.stdout, capture_output=True, text=True)
        check(g.returncode == 0 and not g.stderr, f"groff on {prog} --man: {g.stderr}")
        with open(os.path.join(src, "docs", "man", prog + ".8")) as f:
            check(f.read() == r.stdout, f"docs/man/{prog}.8 is stale: run scripts/gen-docs.sh")
    r = run([binary("logferry-config-docs"), "--man"])
    g = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=r.stdout, capture_output=True, text=True)
    check(r.returncode == 0 and g.returncode == 0 and not g.stderr, f"logferry.conf(5): {g.stderr[:2000]}")
    with open(os.path.join(src, "docs", "man", "logferry.conf.5")) as f:
        check(f.read() == r.stdout, "docs/man/logferry.conf.5 is stale: run scripts/gen-docs.sh")


if __name__ == "__main__":
    run_tests([test_help_and_version, test_dump_config_round_trip, test_bad_configuration, test_daemons,
               test_listen_failure, test_help_everywhere, test_check_config_says_what_start_needs,
               test_manual_pages])
