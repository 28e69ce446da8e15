"""packaging/nginx/logferry-analytics.conf, the nginx site in front of the dashboard, as shipped: nginx
-t accepts it, and nginx runs it on loopback (only the listen addresses, the certificate paths and the
upstream replaced; a self-signed certificate made here) in front of a Python stand-in for
logferry-analytics. Plain HTTP only redirects to HTTPS; over HTTPS the dashboard's paths reach the
upstream with X-Forwarded-Proto https, X-Forwarded-For and the Host, its Set-Cookie comes back
unchanged, HSTS is added, the daemon's /metrics and /healthz are not exposed, large bodies are refused
and TLS below 1.2 is not offered. Exits 77 (skipped) without nginx or openssl."""
import http.client
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import lfharness as H  # noqa: E402

SKIP = 77
NAME = "analytics.example.com"
COOKIE = "lf_dash=0123abcd; Path=/dashboard; Max-Age=43200; HttpOnly; SameSite=Strict"


class E:
    dir = None
    upstream = None
    http_port = https_port = None
    seen = []


class Upstream:
    """Stands in for logferry-analytics: records every request, answers the sign-in with a cookie."""

    def __init__(self):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # nginx keeps upstream connections alive

            def answer(self, status, body, extra=()):
                self.send_response(status)
                for k, v in extra:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def record(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                seen.append({"method": self.command, "path": self.path, "body": body,
                             "headers": {k.lower(): v for k, v in self.headers.items()}})
                return body

            def do_GET(self):
                self.record()
                if self.path.startswith("/dashboard"):
                    self.answer(200, json.dumps({"path": self.path}).encode(),
                                [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
                else:
                    self.answer(200, b"upstream answered " + self.path.encode())

            def do_POST(self):
                body = self.record()
                if self.path == "/dashboard/login" and b"user=" in body:
                    secure = "; Secure" if self.headers.get("X-Forwarded-Proto") == "https" else ""
                    self.answer(303, b"", [("Location", "/dashboard"), ("Set-Cookie", COOKIE + secure)])
                else:
                    self.answer(200, b"{}", [("Content-Type", "application/json")])

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def run_ok(args, what):
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    H.check(p.returncode == 0, f"{what}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def site_conf(listen_http, listen_https, upstream):
    """The shipped file with only the addresses and paths replaced (each must still be there)."""
    with open(os.path.join(H.SOURCE_DIR, "packaging", "nginx", "logferry-analytics.conf")) as f:
        site = f.read()
    for old, new in (("listen 80;", f"listen {listen_http};"),
                     ("listen 443 ssl;", f"listen {listen_https} ssl;"),
                     ("server 127.0.0.1:8443;", f"server {upstream};"),
                     ("/etc/logferry/tls/analytics.crt", f"{E.dir}/analytics.crt"),
                     ("/etc/logferry/tls/analytics.key", f"{E.dir}/analytics.key")):
        H.check(site.count(old) == 1, f"the nginx example no longer has {old!r} once")
        site = site.replace(old, new)
    return site


def nginx_conf(site_path, tag):
    d = os.path.join(E.dir, tag)
    os.makedirs(d, exist_ok=True)
    temps = "".join(f"    {k}_temp_path {d}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = f"{d}/nginx.conf"
    with open(conf, "w") as f:
        f.write(f"""daemon off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
{temps}    include {site_path};
}}
""")
    return conf


def test_nginx_t_accepts_the_file_as_shipped():
    """Only the certificate paths changed: ports 80 and 443 as shipped (nginx -t binds nothing)."""
    run_ok(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{E.dir}/analytics.key", "-out", f"{E.dir}/analytics.crt", "-days", "2",
            "-subj", f"/CN={NAME}", "-addext", f"subjectAltName=DNS:{NAME},IP:127.0.0.1"], "openssl self-signed")
    site = site_conf("80", "443", "127.0.0.1:8443")
    path = os.path.join(E.dir, "shipped.conf")
    with open(path, "w") as f:
        f.write(site)
    conf = nginx_conf(path, "check")
    p = run_ok(["nginx", "-t", "-c", conf, "-e", f"{E.dir}/check/error.log"], "nginx -t")
    H.check("test is successful" in p.stderr, p.stderr)
    H.check("[warn]" not in p.stderr and "[emerg]" not in p.stderr, f"nginx -t warns: {p.stderr}")


def start_nginx():
    E.upstream = Upstream()
    E.http_port, E.https_port = H.free_port(), H.free_port()
    path = os.path.join(E.dir, "logferry-analytics.conf")
    with open(path, "w") as f:
        f.write(site_conf(f"127.0.0.1:{E.http_port}", f"127.0.0.1:{E.https_port}", f"127.0.0.1:{E.upstream.port}"))
    conf = nginx_conf(path, "run")
    E.nginx = H.start(["nginx", "-c", conf, "-e", f"{E.dir}/run/error.log"], log_path=f"{E.dir}/run/nginx.out")
    H.wait_port(E.https_port, proc=E.nginx)
    H.wait_port(E.http_port, proc=E.nginx)


def tls_context(**kw):
    ctx = ssl.create_default_context(cafile=f"{E.dir}/analytics.crt")
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def https(method, path, body=None, headers=None, ctx=None):
    c = http.client.HTTPSConnection("127.0.0.1", E.https_port, timeout=10, context=ctx or tls_context())
    try:
        c.request(method, path, body=body, headers={"Host": NAME, **(headers or {})})
        r = c.getresponse()
        data = r.read()
        return r.status, r.getheaders(), data, c.sock.version() if c.sock else None
    finally:
        c.close()


def header(headers, name):
    vals = [v for k, v in headers if k.lower() == name.lower()]
    return vals


def test_http_only_redirects():
    start_nginx()
    before = len(E.upstream.seen)
    for method, path in (("GET", "/dashboard?product=Alpha&from=2026-03-01"), ("GET", "/dashboard/login"),
                         ("POST", "/dashboard/login"), ("GET", "/metrics")):
        st, hdrs, _ = H.http(method, E.http_port, path, body=b"user=a&password=b" if method == "POST" else None,
                             headers={"Host": NAME})
        H.check(st == 301, f"http {method} {path}: {st}")
        H.check(hdrs.get("location") == f"https://{NAME}{path}", f"redirect of {path}: {hdrs.get('location')}")
    H.check(len(E.upstream.seen) == before, "plain HTTP reached the upstream")


def test_https_passes_through_with_forwarded_headers():
    st, hdrs, body, version = https("GET", "/dashboard/api/usage?product=Alpha",
                                    headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"})
    H.check(st == 200 and json.loads(body) == {"path": "/dashboard/api/usage?product=Alpha"}, f"{st} {body}")
    H.check(version in ("TLSv1.2", "TLSv1.3"), f"TLS version {version}")
    req = E.upstream.seen[-1]["headers"]
    H.check(req.get("x-forwarded-proto") == "https", f"X-Forwarded-Proto: {req}")
    H.check(req.get("x-forwarded-for") == "203.0.113.9, 127.0.0.1", f"X-Forwarded-For: {req.get('x-forwarded-for')}")
    H.check(req.get("host") == NAME, f"Host: {req.get('host')}")
    hsts = header(hdrs, "Strict-Transport-Security")
    H.check(hsts == ["max-age=63072000"], f"HSTS: {hsts}")
    H.check(header(hdrs, "Cache-Control") == ["no-store"], "the upstream's headers come through")
    H.check(not any("nginx/" in v for v in header(hdrs, "Server")), f"version shown: {header(hdrs, 'Server')}")

    for path in ("/dashboard", "/dashboard/pipeline", "/dashboard/login", "/dashboard/api/me"):
        st, _, body, _ = https("GET", path)
        H.check(st == 200 and json.loads(body)["path"] == path, f"{path}: {st} {body[:100]}")
    st, hdrs, _, _ = https("GET", "/")
    H.check(st == 302 and header(hdrs, "Location")[0].endswith("/dashboard"), f"/: {st} {hdrs}")


def test_sign_in_cookie_passes_through():
    form = b"user=ana&password=correct%20horse&next=%2Fdashboard"
    st, hdrs, _, _ = https("POST", "/dashboard/login", body=form,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    H.check(st == 303 and header(hdrs, "Location") == ["/dashboard"], f"sign-in: {st} {hdrs}")
    H.check(header(hdrs, "Set-Cookie") == [COOKIE + "; Secure"], f"Set-Cookie: {header(hdrs, 'Set-Cookie')}")
    H.check(E.upstream.seen[-1]["body"] == form, "the form reaches the upstream unchanged")
    st, _, _, _ = https("POST", "/dashboard/logout", body=b"", headers={"Cookie": "lf_dash=0123abcd"})
    H.check(st == 200 and E.upstream.seen[-1]["headers"].get("cookie") == "lf_dash=0123abcd", "the cookie goes up")


def test_only_the_dashboard_is_exposed():
    before = len(E.upstream.seen)
    for path in ("/metrics", "/healthz", "/v1/sessions", "/../dashboard"):
        st, _, _, _ = https("GET", path)
        H.check(st in (400, 404), f"{path} answered {st}")
    H.check(len(E.upstream.seen) == before, f"reached the upstream: {E.upstream.seen[before:]}")
    st, _, _, _ = https("POST", "/dashboard/login", body=b"x" * 64 * 1024,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    H.check(st == 413, f"a 64 KiB body: {st}")
    H.check(len(E.upstream.seen) == before, "the large body reached the upstream")


def test_tls_versions():
    st, _, _, version = https("GET", "/dashboard", ctx=tls_context(maximum_version=ssl.TLSVersion.TLSv1_2))
    H.check(st == 200 and version == "TLSv1.2", f"TLS 1.2: {st} {version}")
    st, _, _, version = https("GET", "/dashboard", ctx=tls_context(minimum_version=ssl.TLSVersion.TLSv1_3))
    H.check(st == 200 and version == "TLSv1.3", f"TLS 1.3: {st} {version}")
    # TLS 1.1 and below are not offered: openssl s_client would refuse on its side too, so ask for a
    # 1.1-only handshake with python's ssl at security level 0 and expect nginx to refuse it
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ssl.SSLError, ValueError) as e:
        print(f"TLS 1.1 client not available here ({e}); only 1.2 and 1.3 checked")
        return
    try:
        with socket.create_connection(("127.0.0.1", E.https_port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname=NAME) as t:
                H.check(False, f"a TLS 1.1 handshake succeeded: {t.version()}")
    except (ssl.SSLError, ConnectionResetError) as e:
        H.check("alert" in str(e).lower() or "version" in str(e).lower() or isinstance(e, ConnectionResetError),
                f"TLS 1.1 refused for another reason: {e}")
        print(f"TLS 1.1 refused: {e}")


def stop_nginx():
    """SIGTERM: the master stops its worker (the SIGKILL at exit would leave the worker running)."""
    if getattr(E, "nginx", None) is not None:
        H.check(H.stop(E.nginx) == 0, "nginx exits 0 on SIGTERM")


if __name__ == "__main__":
    H.skip_in_sanitizer_build("the nginx example's test")
    missing = [p for p in ("nginx", "openssl") if not shutil.which(p)]
    if missing:
        print(f"SKIP: {', '.join(missing)} not installed (scripts/install-deps.sh)")
        sys.exit(SKIP)
    E.dir = H.scratch_dir("lfnginxdash-")
    try:
        H.run_tests([test_nginx_t_accepts_the_file_as_shipped, test_http_only_redirects,
                     test_https_passes_through_with_forwarded_headers, test_sign_in_cookie_passes_through,
                     test_only_the_dashboard_is_exposed, test_tls_versions])
    finally:
        stop_nginx()
