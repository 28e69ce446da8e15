"""tests/lib/lfbrowser.py against a tiny page served on loopback from this process: every call of the
API (navigation, elements, clicks and typing, scripts, cookies, waiting, screenshots, the browser
log), WebDriver errors as exceptions, two browsers at once, and no chromedriver or Chromium process
left once quit() returns. Exits 77 (skipped) without /usr/bin/chromium or /usr/bin/chromedriver."""
import http.server
import os
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import lfharness as H  # noqa: E402
import lfbrowser as B  # noqa: E402

SKIP = 77

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>lfbrowser test</title>
<link rel="icon" href="data:,">
<style>body { font: 16px sans-serif; } #hidden { display: none; }</style></head>
<body>
<h1 id="title" data-kind="heading">Browser test</h1>
<p id="hidden">not shown</p>
<button id="btn" type="button">Press me</button>
<span id="status">idle</span>
<select id="product">
  <option value="">all</option><option value="Alpha">Alpha</option><option value="Beta">Beta</option>
</select>
<input id="name" type="text" value="preset">
<span id="echo"></span>
<ul><li class="item">one</li><li class="item">two</li><li class="item">three</li></ul>
<script>
document.getElementById("btn").addEventListener("click", function () {
  // later, as a fetch would: the test has to wait for it, not find it at once
  setTimeout(function () {
    document.getElementById("status").textContent = "pressed";
    document.cookie = "pressed=yes; path=/; SameSite=Lax";
  }, 300);
});
document.getElementById("product").addEventListener("change", function (e) {
  history.replaceState(null, "", e.target.value ? "?product=" + encodeURIComponent(e.target.value)
                                                : location.pathname);
});
document.getElementById("name").addEventListener("input", function (e) {
  document.getElementById("echo").textContent = e.target.value;
});
</script>
</body></html>
"""

BROKEN = b"""<!doctype html><html><head><link rel="icon" href="data:,"></head><body><p>broken</p>
<script>console.error("dashboard: cannot draw"); noSuchFunction();</script></body></html>"""


class Site:
    """http.server on a loopback port, in a thread of this process."""

    def __init__(self):
        self.requests = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append((self.path, self.headers.get("Cookie", "")))
                path = self.path.split("?")[0]
                body = {"/page": PAGE, "/broken": BROKEN}.get(path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                if path == "/page":
                    self.send_header("Set-Cookie", "lf_session=s3cr3t; Path=/; HttpOnly; SameSite=Strict")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


SITE = None


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    H.check(head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    return struct.unpack(">II", head[16:24])


def test_page_api():
    with B.Browser(width=1024, height=700) as b:
        url = f"{SITE.url}/page"
        b.get(url)
        H.check(b.current_url() == url, f"current_url {b.current_url()}")
        H.check(b.title() == "lfbrowser test", f"title {b.title()!r}")

        title = b.find("#title")
        H.check(isinstance(title, str) and title, f"find returns an element id: {title!r}")
        H.check(b.text(title) == "Browser test", f"text {b.text(title)!r}")
        H.check(b.attr(title, "data-kind") == "heading", "attr")
        H.check(b.attr(title, "nonexistent") is None, "an absent attribute is None")
        H.check(b.text(b.find("#hidden")) == "", "text is what is rendered: a hidden element has none")
        items = b.find_all("li.item")
        H.check([b.text(i) for i in items] == ["one", "two", "three"], "find_all in document order")
        H.check(b.find_all("li.none") == [], "find_all of nothing is an empty list")
        ul = b.find("ul")
        H.check(len(b.find_all("li", within=ul)) == 3 and b.text(b.find("li", within=ul)) == "one", "within")

        # click: the text and the cookie change 300 ms later; wait_for polls for it
        H.check(b.cookie("pressed") is None, "no cookie before the click")
        b.click(b.find("#btn"))
        H.check(b.text(b.find("#status")) == "idle", "the page changes only later")
        b.wait_for(lambda: b.text(b.find("#status")) == "pressed", "the button's effect")
        b.wait_for(lambda: b.cookie("pressed") == "yes", "the cookie set by the click")
        cookies = {c["name"]: c for c in b.cookies()}
        H.check(cookies["lf_session"]["value"] == "s3cr3t" and cookies["lf_session"]["httpOnly"] is True,
                f"the server's HttpOnly cookie: {cookies}")
        H.check(cookies["pressed"]["httpOnly"] is False and cookies["pressed"]["path"] == "/", f"{cookies}")
        H.check("lf_session" not in b.execute("return document.cookie"), "HttpOnly is not visible to scripts")

        # select: history.replaceState changes the location without a request
        n_requests = len(SITE.requests)
        b.click(b.find("#product option[value=Beta]"))
        b.wait_for(lambda: b.current_url() == f"{url}?product=Beta", "the location after choosing Beta")
        H.check(b.prop(b.find("#product"), "value") == "Beta", "the select's value")
        b.click(b.find("#product option[value='']"))
        b.wait_for(lambda: b.current_url() == url, "the location after choosing all")
        H.check(len(SITE.requests) == n_requests, "replaceState made no request")

        # typing and clearing
        name = b.find("#name")
        H.check(b.attr(name, "value") == "preset", "the input's preset value")
        b.clear(name)
        H.check(b.prop(name, "value") == "", "clear")
        b.type(name, "Zoë 42")
        H.check(b.prop(name, "value") == "Zoë 42", f"typed value {b.prop(name, 'value')!r}")
        b.wait_for(lambda: b.text(b.find("#echo")) == "Zoë 42", "the input event's echo")

        # scripts: arguments, elements in and out, values
        H.check(b.execute("return arguments[0] + arguments[1]", 40, 2) == 42, "execute with arguments")
        H.check(b.execute("return arguments[0].id", title) == "title", "an element as an argument")
        el = b.execute("return document.querySelector('#status')")
        H.check(isinstance(el, B.Element) and b.text(el) == "pressed", "an element as a result")
        H.check(b.execute("return {a: [1, 'x', null], b: true}") == {"a": [1, "x", None], "b": True},
                "structured results")

        # the cookies go back to the server on the next load
        b.get(url)
        sent = SITE.requests[-1][1]
        H.check("pressed=yes" in sent and "lf_session=s3cr3t" in sent, f"cookies sent: {sent!r}")

        shot = os.path.join(H.scratch_dir("lfbrowser-shot-"), "page.png")
        H.check(b.screenshot(shot) == shot, "screenshot returns its path")
        w, h = png_size(shot)
        H.check(w == 1024 and 300 < h <= 700, f"screenshot of the viewport: {w}x{h}")
        H.check(os.path.getsize(shot) > 2000, "the screenshot has content")
        H.check(b.js_errors() == [], f"the page has no JavaScript error: {b.js_errors()}")


def test_errors_and_log():
    with B.Browser() as b:
        b.get(f"{SITE.url}/broken")
        errors = b.wait_for(lambda: len(b.js_errors()) >= 2 and b.js_errors(), "the page's two errors")
        texts = [e["message"] for e in errors]
        H.check(any("dashboard: cannot draw" in t for t in texts), f"console.error is logged: {texts}")
        H.check(any("noSuchFunction" in t and "ReferenceError" in t for t in texts), f"uncaught error: {texts}")
        H.check({e["source"] for e in errors} == {"console-api", "javascript"}, f"sources: {errors}")
        H.check(len(b.js_errors()) == 2, "entries are kept, not handed out once")
        b.execute("console.log('just info')")
        b.wait_for(lambda: any("just info" in e["message"] for e in b.log()), "an INFO entry in the log")
        H.check(len(b.js_errors()) == 2, "console.log is not an error")

        try:
            b.find("#missing")
            H.check(False, "find of a missing element raised nothing")
        except B.NoSuchElementError as e:
            H.check(e.error == "no such element" and e.status == 404 and "#missing" in e.message, str(e))
        for call, code in ((lambda: b.execute("throw new Error('thrown here')"), "javascript error"),
                           (lambda: b.find("p[["), "invalid selector"),
                           (lambda: b.text("not-an-element-id"), "no such element")):
            try:
                call()
                H.check(False, f"no {code}")
            except B.WebDriverError as e:
                H.check(e.error == code, f"expected {code}, got {e}")
        try:
            b.execute("throw new Error('thrown here')")
        except B.WebDriverError as e:
            H.check("thrown here" in e.message, f"the script's message: {e}")

        # wait_for polls until its time is up, then names what it waited for
        calls = []
        try:
            b.wait_for(lambda: calls.append(1), "something that never happens", timeout=0.5)
            H.check(False, "wait_for of a false condition returned")
        except B.BrowserTimeout as e:
            H.check("something that never happens" in str(e) and "/broken" in str(e), str(e))
        H.check(len(calls) > 3, f"wait_for polled only {len(calls)} times")
        # "no such element" counts as not yet
        b.execute("setTimeout(function () { var p = document.createElement('p'); p.id = 'late';"
                  " document.body.appendChild(p); }, 200)")
        H.check(b.wait_find("#late"), "wait_find")


def gone(pids):
    return not [p for p in pids if os.path.exists(f"/proc/{p}")]


def test_two_browsers_then_nothing_left():
    b1, b2 = B.Browser(), B.Browser()
    try:
        H.check(b1.port != b2.port and b1.dir != b2.dir, "each browser has its own driver and profile")
        b1.get(f"{SITE.url}/page")
        b2.get(f"{SITE.url}/broken")
        b1.click(b1.find("#btn"))
        b1.wait_for(lambda: b1.cookie("pressed") == "yes", "the cookie in the first browser")
        H.check(b2.cookie("pressed") is None and b2.cookie("lf_session") is None, "profiles are separate")
        pids1, pids2 = b1.pids(), b2.pids()
        H.check(len(pids1) >= 3 and not set(pids1) & set(pids2), f"process sets {pids1} {pids2}")
        H.check(b1.driver.pid in pids1, "chromedriver is one of them")
        browser_pid = b1.capabilities.get("goog:processID")
        H.check(browser_pid in pids1, f"Chromium ({browser_pid}) is one of them")
        dir1 = b1.dir
    finally:
        b1.quit()
    H.check(gone(pids1), f"left after quit: {[p for p in pids1 if os.path.exists(f'/proc/{p}')]}")
    H.check(B.Browser._ours(b1) == set(), "no process names the first browser's directory")
    H.check(not os.path.exists(dir1) or os.environ.get("LF_KEEP_SCRATCH"), "scratch directory removed")
    H.check(gone(pids2) is False and b2.text(b2.find("p")) == "broken", "the other browser goes on")
    try:
        b1.current_url()
        H.check(False, "a call after quit went through")
    except B.WebDriverError as e:
        H.check(e.error == "invalid session id", str(e))
    b1.quit()  # twice is harmless
    b2.quit()
    H.check(gone(pids2), "second browser's processes left")


if __name__ == "__main__":
    H.skip_in_sanitizer_build("the browser library's self-test")
    reason = B.available()
    if reason:
        print(f"SKIP: {reason}")
        sys.exit(SKIP)
    SITE = Site()
    try:
        H.run_tests([test_page_api, test_errors_and_log, test_two_browsers_then_nothing_left])
    finally:
        SITE.close()
