"""The receiver's Elasticsearch session store against Elasticsearch as it really runs (the strict fake,
tests/fakes/es_fake.py): the recovery scan pages through a thousand stored sessions whatever the
chunk size; chunk size, index name and URL are checked at start with a clear error; a stored write
whose answer was lost is recognised by its bytes (409 with the same data); with security on (HTTPS
with the cluster's own CA, 401 without credentials) the store works with a password file or an API
key, never prints the secret, and refuses to start with wrong credentials."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

import lfharness as H  # noqa: E402
import lfupload as U  # noqa: E402
from fakeproc import Client, start_fake  # noqa: E402
from lfharness import check, run_tests  # noqa: E402


def es_receiver(store_conf, fake_args=(), start=True):
    """A receiver on the Elasticsearch store of a fake of its own; store_conf gets {port} and {dir}."""
    rx = U.Receiver(start=False, backend="filesystem")
    _, port = start_fake("es_fake.py", *fake_args, log_path=os.path.join(rx.dir, "es_fake.log"))
    with open(rx.conf, "a") as f:
        f.write("[store]\nbackend = elasticsearch\n" + store_conf.format(port=port, dir=rx.dir))
    rx.es_port = port
    if start:
        rx.start()
    return rx


def start_fails(rx, needle):
    p = rx.start(wait=False)
    try:
        rc = p.wait(30)
    except Exception:
        p.kill()
        raise
    rx.proc = None
    text = rx.log_text()
    check(rc != 0, f"the receiver started: {text[-1000:]}")
    check(needle in text, f"{needle!r} not in the receiver's log: {text[-1500:]}")
    return text


def test_recovery_scan_pages_a_thousand_sessions():
    # 1K chunks: the old scan read search pages with a chunk's response limit (about 66 KB) while
    # a page of 500 hits is about 100 KB, so the receiver did not start past ~350 sessions
    rx = es_receiver("es_url = http://127.0.0.1:{port}\nes_chunk_size = 1K\n")
    sessions = []
    for i in range(1000):
        log = (f"2026-11-30 10:{i // 60 % 60:02d}:{i % 60:02d} INFO [scan] session {i} ".encode() * 30)[:1500]
        s = U.make_session("site-a", log, identity=f"C:/logs/scan-{i}.log")
        st, js, _ = rx.upload(s)
        check(st == 201, f"upload {i}: {st} {js}")
        sessions.append(s)
    rx.stop()
    os.unlink(os.path.join(rx.dir, "index.db"))  # recovery must find every session by scanning
    rx.start()
    rows = rx.index_rows()
    check(len(rows) == 1000, f"{len(rows)} sessions indexed again after the scan, 1000 stored")
    for s in (sessions[0], sessions[499], sessions[500], sessions[999]):
        check(rx.export(s.id) == s.body, f"session {s.id} exports its bytes")
    rx.stop()


def test_limits_checked_at_start():
    rx = es_receiver("es_url = http://127.0.0.1:{port}\nes_chunk_size = 64M\n", start=False)
    p = rx.cli_run("--check-config")
    check(p.returncode != 0 and b"es_chunk_size" in p.stderr, f"64M chunks: {p.returncode} {p.stderr!r}")
    rx = es_receiver("es_url = http://127.0.0.1:{port}\nes_index = Logferry-Sessions\n", start=False)
    p = rx.cli_run("--check-config")
    check(p.returncode != 0 and b"lower case" in p.stderr, f"upper case index: {p.stderr!r}")
    rx = es_receiver("es_url = http://127.0.0.1:{port}\nes_index = logs-app-sessions\n", start=False)
    p = rx.cli_run("--check-config")
    check(p.returncode != 0 and b"built-in data stream" in p.stderr, f"logs-* index: {p.stderr!r}")
    rx = es_receiver("es_url = http://elastic:changeme@127.0.0.1:{port}\n", start=False)
    p = rx.cli_run("--check-config")
    check(p.returncode != 0 and b"must not hold credentials" in p.stderr and b"changeme" not in p.stderr,
          f"credentials in the URL: {p.stderr!r}")


def test_lost_reply_after_a_stored_write():
    rx = es_receiver("es_url = http://127.0.0.1:{port}\nes_chunk_size = 4K\n")
    es = Client(rx.es_port)
    # every chunk write of this upload is stored and its answer lost: the client retries, gets 409
    # and finds its own bytes there
    st, _ = es.json("POST", "/_fake/faults", {"lose_reply_after_write": 3})
    check(st == 200, f"fault: {st}")
    log = b"2026-11-30 11:00:00 INFO [lost] a reply that never came\n" * 200
    s = U.make_session("site-a", log, identity="C:/logs/lost.log")
    st, js, _ = rx.upload(s)
    check(st == 201, f"upload with lost replies: {st} {js}")
    st, faults = es.json("GET", "/_fake/faults")
    check(faults.get("lose_reply_after_write", 0) == 0, f"the lost replies were used: {faults}")
    check(rx.export(s.id) == s.body, "the session reads back whole")
    rx.stop()


def secure_fake_args(d):
    return ["--tls-dir", os.path.join(d, "tls"), "--user", "lfstore:s3cret-pw:all",
            "--api-key", "keyid:keysecret:all", "--user", "reader:r3ad:read"]


def test_security_on():
    rx = U.Receiver(start=False, backend="filesystem")
    _, port = start_fake("es_fake.py", *secure_fake_args(rx.dir), log_path=os.path.join(rx.dir, "es_fake.log"))
    ca = os.path.join(rx.dir, "tls", "ca.pem")
    pw = os.path.join(rx.dir, "es.pw")
    with open(pw, "w") as f:
        f.write("s3cret-pw\n")
    os.chmod(pw, 0o600)
    base = open(rx.conf).read()

    def conf(store):
        with open(rx.conf, "w") as f:
            f.write(base + "[store]\nbackend = elasticsearch\n" + store)

    # no credentials: Elasticsearch answers 401 and the receiver says what to set
    conf(f"es_url = https://127.0.0.1:{port}\nes_ca_file = {ca}\n")
    start_fails(rx, "credentials")
    # no CA: the certificate does not verify
    conf(f"es_url = https://127.0.0.1:{port}\nes_user = lfstore\nes_password_file = {pw}\n")
    start_fails(rx, "Elasticsearch")
    # a wrong password
    bad = os.path.join(rx.dir, "bad.pw")
    with open(bad, "w") as f:
        f.write("wrong\n")
    conf(f"es_url = https://127.0.0.1:{port}\nes_user = lfstore\nes_password_file = {bad}\nes_ca_file = {ca}\n")
    start_fails(rx, "401")
    # a user without the privileges the store needs
    conf(f"es_url = https://127.0.0.1:{port}\nes_user = reader\nes_password = r3ad\nes_ca_file = {ca}\n")
    start_fails(rx, "403")

    # right: uploads are stored, the password is never printed
    conf(f"es_url = https://127.0.0.1:{port}\nes_user = lfstore\nes_password = s3cret-pw\nes_ca_file = {ca}\n")
    dump = rx.cli("--dump-config")
    check("s3cret-pw" not in dump and "es_password = " in dump, f"--dump-config shows the secret: {dump}")
    conf(f"es_url = https://127.0.0.1:{port}\nes_user = lfstore\nes_password_file = {pw}\nes_ca_file = {ca}\n")
    rx.start()
    log = b"2026-11-30 12:00:00 INFO [tls] stored over https with a password\n" * 100
    s = U.make_session("site-a", log, identity="C:/logs/tls.log")
    st, js, _ = rx.upload(s)
    check(st == 201, f"upload: {st} {js}")
    check(rx.export(s.id) == s.body, "export over https")
    rx.stop()
    # an API key works the same
    key = os.path.join(rx.dir, "es.key")
    with open(key, "w") as f:
        import base64
        f.write(base64.b64encode(b"keyid:keysecret").decode() + "\n")
    conf(f"es_url = https://127.0.0.1:{port}\nes_api_key_file = {key}\nes_ca_file = {ca}\n")
    rx.start()
    check(rx.export(s.id) == s.body, "export with an API key")
    rx.stop()
    text = rx.log_text()
    check("s3cret-pw" not in text and "keysecret" not in text, "a secret reached the log")


if __name__ == "__main__":
    run_tests([test_recovery_scan_pages_a_thousand_sessions, test_limits_checked_at_start,
               test_lost_reply_after_a_stored_write, test_security_on])
