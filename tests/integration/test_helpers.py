"""The test helpers that start servers stop them on every way out. `lfmariadb.py serve` (the private
MariaDB of the C tests and of bench/parser/run.sh) is ended with SIGTERM, SIGINT and SIGHUP, as a
shell trap or a terminal would end it, and its mariadbd must be gone when it has exited (issue 16:
SIGTERM's default action skipped the cleanup and left mariadbd running)."""
import os
import signal
import subprocess
import sys

from lfharness import SOURCE_DIR, check, run_tests

SERVE = os.path.join(SOURCE_DIR, "tests", "lib", "lfmariadb.py")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def serve_and_end_with(sig):
    p = subprocess.Popen([sys.executable, SERVE, "serve", "--parent-pid", str(os.getpid())],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server = []
    try:
        ready = p.stdout.readline().split()  # "PORT SOCKET USER PASSWORD" once mariadbd answers
        if len(ready) != 4:
            p.kill()
            check(False, f"serve did not report a server: {ready!r} {p.stderr.read()[-500:]!r}")
        server = [c for c in children(p.pid) if comm(c) == "mariadbd"]
        check(len(server) == 1, f"one mariadbd child expected, saw {[(c, comm(c)) for c in children(p.pid)]}")
        p.send_signal(sig)
        rc = p.wait(timeout=60)
        check(rc != 0, f"{sig.name}: serve exited with {rc}")
        # serve reaps mariadbd before it exits, so it is gone now, not eventually
        check(comm(server[0]) is None, f"{sig.name}: mariadbd {server[0]} still runs after serve exited")
    finally:  # a failing run leaves nothing behind either
        if p.poll() is None:
            p.kill()
            p.wait()
        for c in server:
            if comm(c) == "mariadbd":
                os.kill(c, signal.SIGKILL)


def test_serve_stops_mariadb_on_sigterm():
    serve_and_end_with(signal.SIGTERM)


def test_serve_stops_mariadb_on_sigint():
    serve_and_end_with(signal.SIGINT)


def test_serve_stops_mariadb_on_sighup():
    serve_and_end_with(signal.SIGHUP)


if __name__ == "__main__":
    run_tests([test_serve_stops_mariadb_on_sigterm, test_serve_stops_mariadb_on_sigint,
               test_serve_stops_mariadb_on_sighup])
