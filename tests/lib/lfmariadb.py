"""A private MariaDB server for tests, benchmarks and the quick start.

Each instance has its own data directory, socket and loopback port, runs as the current user and
is stopped (and, for scratch instances, deleted) when the test ends. Nothing touches the system's
MariaDB service. Requires the Debian packages mariadb-server and mariadb-client.
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import time

import lfharness


class MariaDB:
    def __init__(self, datadir, port=None, buffer_pool="256M", extra_args=(), bind="127.0.0.1", prefix=()):
        """bind: the address it listens on; prefix: a command put before mariadbd (e.g.
        `ip netns exec NS` to run it on a test's network namespace host)."""
        self.datadir = os.path.abspath(datadir)
        self.base = os.path.dirname(self.datadir)
        self.fixed_port = port is not None
        self.port = port or lfharness.free_port()
        self.socket = os.path.join(self.base, "mariadb.sock")
        self.pid_file = os.path.join(self.base, "mariadb.pid")
        self.log = os.path.join(self.base, "mariadb.err")
        # its own temporary directory: with the shared /tmp a bootstrap once failed in CI when its
        # temporary tables vanished under it ("Could not remove temporary table ... error: 2")
        self.tmpdir = os.path.join(self.base, "tmp")
        self.buffer_pool = buffer_pool
        self.extra_args = list(extra_args)
        self.bind = bind
        self.prefix = list(prefix)
        self.proc = None
        self.user = "logferry"
        self.password = "logferry-test"

    # -- lifecycle -----------------------------------------------------------------------------
    def install(self):
        if os.path.isdir(os.path.join(self.datadir, "mysql")):
            return
        os.makedirs(self.datadir, exist_ok=True)
        r = subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}", f"--user={_user()}",
             f"--tmpdir={self.tmpdir}",
             "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        if r.returncode != 0:  # say why: its output is the only account of a failed bootstrap
            raise RuntimeError(f"mariadb-install-db exited with {r.returncode}:\n{r.stdout[-3000:]}")
        self._fresh = True

    def start(self, timeout=60.0):
        """Starts the server; a port taken between choosing and binding it is replaced by another."""
        for attempt in range(5):
            try:
                return self._start_once(timeout)
            except _PortTaken:
                if self.fixed_port:
                    raise RuntimeError(f"port {self.port} is in use")
                self.port = lfharness.free_port()
        raise RuntimeError("could not find a free port for mariadbd")

    def _start_once(self, timeout):
        os.makedirs(self.tmpdir, exist_ok=True)
        self.install()
        log_start = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        args = self.prefix + ["mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--user={_user()}",
                f"--tmpdir={self.tmpdir}", f"--socket={self.socket}", f"--port={self.port}", f"--bind-address={self.bind}",
                f"--pid-file={self.pid_file}", "--skip-name-resolve", f"--log-error={self.log}",
                f"--innodb-buffer-pool-size={self.buffer_pool}", "--innodb-log-file-size=128M",
                "--local-infile=1", "--max-connections=500", "--max-allowed-packet=256M",
                "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
                "--default-time-zone=+00:00"] + self.extra_args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(self.kill)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                with open(self.log, errors="replace") as f:
                    f.seek(log_start)
                    if "Address already in use" in f.read():
                        raise _PortTaken()
                raise RuntimeError(f"mariadbd exited with {self.proc.returncode}; see {self.log}:\n"
                                   + _tail(self.log))
            if os.path.exists(self.socket) and self._ping():
                break
            time.sleep(0.1)
        else:
            raise TimeoutError(f"mariadbd not ready after {timeout}s; see {self.log}")
        if getattr(self, "_fresh", False):
            self.sql_root(
                f"CREATE USER IF NOT EXISTS '{self.user}'@'%' IDENTIFIED BY '{self.password}';"
                f"CREATE USER IF NOT EXISTS '{self.user}'@'localhost' IDENTIFIED BY '{self.password}';"
                f"GRANT ALL ON *.* TO '{self.user}'@'%'; GRANT ALL ON *.* TO '{self.user}'@'localhost';"
                "FLUSH PRIVILEGES;")
            self._fresh = False
        return self

    def stop(self, timeout=60.0):
        """Clean shutdown (SIGTERM)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)

    def kill(self):
        """Crash: SIGKILL, as a power cut would leave it (InnoDB recovers at the next start)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self):
        self.stop()
        return self.start()

    # -- SQL -----------------------------------------------------------------------------------
    def _ping(self):
        r = subprocess.run(["mariadb-admin", "--no-defaults", "-S", self.socket, "-uroot", "ping"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r.returncode == 0

    def sql_root(self, sql, database=None):
        args = ["mariadb", "--no-defaults", "-S", self.socket, "-uroot", "--batch", "--skip-column-names"]
        if database:
            args.append(database)
        r = subprocess.run(args, input=sql.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError(f"SQL failed: {r.stderr.decode().strip()}\n{sql[:500]}")
        return r.stdout.decode()

    def query(self, sql, database=None):
        """Rows as lists of strings (NULL as None)."""
        out = self.sql_root(sql, database)
        rows = []
        for line in out.splitlines():
            rows.append([None if v == "NULL" else v for v in line.split("\t")])
        return rows

    def dsn(self, database):
        """The connection settings logferry programs take in their [mysql] sections."""
        return {"host": self.bind, "port": str(self.port), "user": self.user,
                "password": self.password, "database": database}


class _PortTaken(Exception):
    pass


def _user():
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


def _tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def scratch_server(**kw):
    """A new MariaDB in a scratch directory, started."""
    base = lfharness.scratch_dir("lfmariadb-")
    return MariaDB(os.path.join(base, "data"), **kw).start()


def tls_files(d, san="IP:127.0.0.1,DNS:localhost"):
    """Makes, with openssl, in directory d: a test CA (ca.pem), a server certificate it signs for
    127.0.0.1 and localhost only (server.pem, server.key; san, an openssl subjectAltName value, names
    others), a client certificate it signs (client.pem, client.key) and another CA that signed none
    of them (other-ca.pem). Returns {name: path} with keys ca, other_ca, server_cert, server_key,
    client_cert, client_key."""
    def run(*args):
        r = subprocess.run(["openssl", *args], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.decode()}")
    new_key = ["-newkey", "rsa:2048", "-nodes"]
    run("req", "-x509", *new_key, "-days", "2", "-subj", "/CN=logferry test CA", "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-x509", *new_key, "-days", "2", "-subj", "/CN=another CA", "-keyout", "other-ca.key",
        "-out", "other-ca.pem")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
    for name, subject, ext in (("server", "/CN=localhost", ["-extfile", "server.ext"]),
                               ("client", "/CN=logferry client", [])):
        run("req", *new_key, "-subj", subject, "-keyout", f"{name}.key", "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            *ext, "-out", f"{name}.pem")
    names = {"ca": "ca.pem", "other_ca": "other-ca.pem", "server_cert": "server.pem", "server_key": "server.key",
             "client_cert": "client.pem", "client_key": "client.key"}
    return {k: os.path.join(d, v) for k, v in names.items()}


def tls_required_args(files):
    """mariadbd options for a server that accepts TLS connections only (its Unix socket aside), with
    the certificate of tls_files(), listening on 127.0.0.1 (named in the certificate) and on
    127.0.0.2 (not named: a host-name mismatch for verify_identity)."""
    return [f"--ssl-ca={files['ca']}", f"--ssl-cert={files['server_cert']}", f"--ssl-key={files['server_key']}",
            "--require-secure-transport=ON", "--bind-address=127.0.0.1,127.0.0.2"]


def _serve(argv):
    """`python3 lfmariadb.py serve --parent-pid PID [--tls-required DIR] [--arg=--OPTION=VALUE]...`:
    starts a scratch server (requiring TLS with certificates made in DIR; each --arg given to
    mariadbd after the defaults), prints "PORT SOCKET USER PASSWORD\\n" on stdout, and stops it when
    the parent process is gone (C tests use this)."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("--parent-pid", type=int, required=True)
    ap.add_argument("--arg", action="append", default=[])
    ap.add_argument("--tls-required", metavar="DIR", help="tls_files(DIR) and tls_required_args")
    a = ap.parse_args(argv)

    # SIGTERM's default action would end this process without its `finally` (or atexit), leaving
    # mariadbd behind: make every way out the same one
    def leave(signum, frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, leave)
    m = None
    try:
        extra = tls_required_args(tls_files(a.tls_required)) if a.tls_required else []
        m = scratch_server(buffer_pool="64M", extra_args=extra + a.arg)
        m.sql_root("CREATE DATABASE IF NOT EXISTS lftest")
        print(m.port, m.socket, m.user, m.password, flush=True)
        while True:
            try:
                os.kill(a.parent_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.3)
    finally:
        if m:
            m.kill()


if __name__ == "__main__":
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    _serve(sys.argv[1:])
