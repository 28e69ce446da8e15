"""`logferry-uploader test`: every check passes against a receiver that takes the site, and each
failure names its cause and what to do: a site that is not registered, a disabled site, a clock ten
minutes off (faketime), a certificate the ca_file does not trust (nginx with TLS in front of the
receiver, on loopback), nothing listening."""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import lfharness as H  # noqa: E402
from lfupload import Receiver  # noqa: E402
from lfuploader import Uploader  # noqa: E402

SITE = "probe-site"


def run_test(up, env=None, wrap=()):
    p = subprocess.run(list(wrap) + [H.binary("logferry-uploader"), "--config", up.conf, "test"], capture_output=True,
                       timeout=60, env={**os.environ, **(env or {})})
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def line(out, check):
    for text in out.splitlines():
        if text.startswith(check + " "):
            return text
    return ""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_registration_states_and_clock():
    rx = Receiver()
    up = Uploader(rx, {}, site=SITE, register=False)
    rc, out, err = run_test(up)
    H.check(rc == 1, f"unregistered: exit {rc}\n{out}{err}")
    H.check("FAIL the receiver does not know the site probe-site" in line(out, "site"), out)
    H.check(f"logferry-receiver sites add {SITE} {up.pk}" in out, f"the fix is printed:\n{out}")
    for check in ("url", "resolve", "connect", "tls", "receiver"):
        H.check(" ok " in line(out, check), f"{check} should pass:\n{out}")

    rx.cli("sites", "add", SITE, up.pk)
    rc, out, err = H.wait_for(lambda: (lambda r: r if r[0] == 0 else None)(run_test(up)), "the site to be known")
    for check in ("url", "resolve", "connect", "tls", "receiver", "site", "clock"):
        H.check(" ok " in line(out, check), f"{check} should pass:\n{out}")
    H.check("is registered and enabled" in line(out, "site") and "not used (http://)" in line(out, "tls"), out)

    rx.cli("sites", "disable", SITE)
    rc, out, _ = H.wait_for(lambda: (lambda r: r if "disabled" in r[1] else None)(run_test(up)), "the site disabled")
    H.check(rc == 1 and f"logferry-receiver sites enable {SITE}" in line(out, "site"), out)
    rx.cli("sites", "enable", SITE)
    H.wait_for(lambda: run_test(up)[0] == 0, "the site enabled again")

    # this host ten minutes behind: the site is known, the clock is the fault
    env = {"FAKETIME_DONT_RESET": "1", "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    rc, out, err = run_test(up, env, wrap=("faketime", "-f", "-600s"))
    H.check(rc == 1, f"skewed clock: exit {rc}\n{out}{err}")
    clock = line(out, "clock")
    H.check("FAIL this clock is" in clock and "behind the receiver's" in clock and "NTP" in clock, out)
    skew = int(clock.split("this clock is ")[1].split()[0])
    H.check(590 <= skew <= 610, f"skew {skew}")

    # nothing listening where the URL points
    rx_port = rx.port
    rx.stop()
    rc, out, _ = run_test(up)
    H.check(rc == 1 and "FAIL cannot connect to 127.0.0.1:%d: Connection refused" % rx_port in line(out, "connect"),
            out)

    # a host name longer than the test can hold is refused, not cut to another name
    text = open(up.conf).read().replace(f"url = http://127.0.0.1:{rx_port}", "url = http://" + "h" * 300 + ":8440")
    with open(up.conf, "w") as f:
        f.write(text)
    rc, out, _ = run_test(up)
    H.check(rc == 1 and "FAIL" in line(out, "url") and "too long" in line(out, "url") and not line(out, "resolve"),
            out)


def make_certs(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def ok(args):
        p = subprocess.run(args, capture_output=True)
        H.check(p.returncode == 0, f"{args}: {p.stderr.decode()}")

    for ca in ("ca", "other-ca"):
        ok(["openssl", "req", "-x509", *ec, "-keyout", f"{d}/{ca}.key", "-out", f"{d}/{ca}.crt", "-days", "2",
            "-subj", f"/CN=logferry {ca}"])
    ok(["openssl", "req", *ec, "-keyout", f"{d}/rx.key", "-out", f"{d}/rx.csr", "-subj", "/CN=127.0.0.1"])
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    ok(["openssl", "x509", "-req", "-in", f"{d}/rx.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-out", f"{d}/rx.crt", "-days", "2", "-extfile", f"{d}/ext.cnf"])


def test_tls_against_ca_file():
    rx = Receiver()
    d = H.scratch_dir("lfupltls-")
    make_certs(d)
    port = free_port()
    temps = "".join(f"    {k}_temp_path {d}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(f"""daemon off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
{temps}    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/rx.crt;
        ssl_certificate_key {d}/rx.key;
        location / {{ proxy_pass http://127.0.0.1:{rx.port}; proxy_set_header Host $host; }}
    }}
}}
""")
    nginx = H.start(["nginx", "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log"], log_path=f"{d}/nginx.out")
    try:
        H.wait_port(port, proc=nginx)
        url = f"https://127.0.0.1:{port}"
        up = Uploader(rx, {}, site=SITE, url=url, extra="")
        for ca, want_rc in (("other-ca", 1), ("ca", 0)):
            text = open(up.conf).read()
            import re
            text = re.sub(r"^ca_file = .*\n", "", text, flags=re.M)
            text = text.replace("[receiver]\n", f"[receiver]\nca_file = {d}/{ca}.crt\n", 1)
            with open(up.conf, "w") as f:
                f.write(text)
            rc, out, err = run_test(up)
            H.check(rc == want_rc, f"ca_file {ca}: exit {rc}\n{out}{err}")
            tls = line(out, "tls")
            if want_rc:
                H.check("FAIL" in tls and "not signed by a CA in [receiver] ca_file" in tls, out)
            else:
                H.check(" ok " in tls and f"{d}/ca.crt" in tls and " ok " in line(out, "site"), out)
    finally:
        H.stop(nginx)


if __name__ == "__main__":
    H.run_tests([test_registration_states_and_clock, test_tls_against_ca_file])
