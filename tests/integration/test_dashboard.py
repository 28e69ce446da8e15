"""The analytics dashboard as an analyst and an operator meet it, in headless Chromium against the real
logferry-analytics daemon, a real MariaDB and a real receiver:

- without a sign-in the pages send the browser to the sign-in page and the API answers 401; a
  reader cannot re-run or redrive (403), an admin only with the session's CSRF token; the cookie is
  HttpOnly and SameSite=Strict, and Secure when the proxy says the request came over TLS;
- a site filter changes every chart (usage, features, errors, retention) to the numbers computed
  here independently from the parsed tables, read from the charts' tooltips; the view is in the URL
  (a new page on that URL draws the same charts); each chart's CSV holds the same numbers;
- an error is shown in the page;
- the pipeline page shows the receiver's sites and dead letters, the parser stage and each job's
  runs; the admin's re-run button re-runs a failed job and the page shows the new run; the redrive
  button moves the dead letters back to the queue; both ask for confirmation and are logged.
"""
import csv
import datetime as dt
import io
import json
import os
import random
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import lfbrowser  # noqa: E402
import lfharness as H  # noqa: E402
import lfupload as U  # noqa: E402
import test_analytics as TA  # noqa: E402  (its MariaDB, parsed-data generator and configuration)

if lfbrowser.available():
    print(f"SKIP: {lfbrowser.available()}")
    sys.exit(77)

PASSWORDS = {"alice": "correct horse battery", "bob": "tr0ub4dor&3"}
E = {}  # the daemon's port, log, the receiver


def analytics_cli(*args, stdin=None):
    return subprocess.run([H.binary("logferry-analytics"), "--config", TA.CONF] + list(args), input=stdin,
                          capture_output=True, text=True, timeout=120)


def setup():
    TA.setup()
    TA.insert_sessions(random.Random(11), TA.days(21), 30, "2026-03-25 10:00:00")
    TA.run_all()
    rx = U.Receiver(extra_config="[queue]\nmax_receives = 1\n")
    E["rx"] = rx
    token_file = os.path.join(TA.DIR, "receiver.token")
    with open(token_file, "w") as f:
        f.write(rx.admin_token + "\n")
    users = os.path.join(TA.DIR, "dashboard-users")
    with open(TA.CONF, "a") as f:
        f.write(f"[dashboard]\nusers_file = {users}\n[pipeline]\nreceiver_url = http://127.0.0.1:{rx.port}\n"
                f"receiver_token_file = {token_file}\n")
    for name, role in (("alice", "admin"), ("bob", "read")):
        r = analytics_cli("users", "add", name, "--role", role, stdin=PASSWORDS[name] + "\n")
        H.check(r.returncode == 0, f"users add {name}: {r.stderr}")
    r = analytics_cli("users", "list")
    H.check(r.stdout.split() == ["alice", "admin", "bob", "read"], f"users list: {r.stdout}")
    H.check(oct(os.stat(users).st_mode & 0o777) == "0o600", "the users file is private")
    port_file = os.path.join(TA.DIR, "dash.port")
    E["log"] = os.path.join(TA.DIR, "dash.log")
    E["proc"] = H.start([H.binary("logferry-analytics"), "--config", TA.CONF, "--set", "analytics.schedule=0 0 1 1 *",
                         "--set", "job.custom_sessions.schedule=0 0 1 1 *", "--set", f"http.port_file={port_file}"],
                        log_path=E["log"])
    H.wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), "the dashboard's port")
    E["port"] = int(open(port_file).read())
    E["url"] = f"http://127.0.0.1:{E['port']}"


def log_text():
    with open(E["log"], errors="replace") as f:
        return f.read()


def login(user, headers=None):
    """Signs in over HTTP; returns the Set-Cookie header and the session cookie's value."""
    form = urllib.parse.urlencode({"user": user, "password": PASSWORDS[user], "next": "/dashboard"}).encode()
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    h.update(headers or {})
    st, hdrs, _ = H.http("POST", E["port"], "/dashboard/login", form, h)
    H.check(st == 303, f"sign-in of {user}: {st}")
    set_cookie = hdrs.get("set-cookie")
    return set_cookie, set_cookie.split(";")[0]


def me(cookie):
    st, _, body = H.http("GET", E["port"], "/dashboard/api/me", None, {"Cookie": cookie})
    H.check(st == 200, f"me: {st} {body}")
    return json.loads(body)


def browser_login(b, user):
    b.get(E["url"] + "/dashboard")
    b.wait_for(lambda: "/dashboard/login" in b.current_url(), "the sign-in page")
    b.type(b.find("input[name=user]"), user)
    b.type(b.find("input[name=password]"), PASSWORDS[user])
    b.click(b.find("button[type=submit]"))
    # the path, not the URL's end: the sign-in page's own URL ends with "?next=/dashboard"
    b.wait_for(lambda: urllib.parse.urlsplit(b.current_url()).path == "/dashboard", "back on the dashboard")
    b.wait_for(lambda: b.find("form#f") and b.execute("return document.readyState") == "complete",
               "the dashboard loaded")


# -- the independent computation ---------------------------------------------------------------

def expected_for_site(site):
    """Every chart's tooltips for a view filtered by site, from the parsed tables."""
    ses, evs, sts = TA.lfanalytics.source(TA.DB, TA.SRC)
    mine = {s[0]: s for s in ses if s[1] == site}
    usage, groups = {}, {}
    for sid, _, prod, ver, _, user, day, _, _ in mine.values():
        usage.setdefault(day, [0, 0])[0] += 1
        if user is not None:
            groups.setdefault((day, prod, ver), set()).add(user)
    for (day, _, _), users in groups.items():
        usage[day][1] += len(users)
    tips = {"usage": set(), "features": set(), "errors": set(), "retention": set()}
    for day, (n, u) in usage.items():
        tips["usage"] |= {f"{day} sessions: {n}", f"{day} users: {u}"}
    feat = {}
    for sid, tid, n in sts:
        if sid in mine:
            g = feat.setdefault(int(tid), [0, set()])
            g[0] += int(n)
            g[1].add(sid)
    top = sorted(feat.items(), key=lambda kv: (-kv[1][0], kv[0]))[:15]
    tips["features"] = {f"{TA.TEMPLATES[tid]}: {v[0]} events, {len(v[1])} sessions" for tid, v in top}
    errs = {}
    for sid, level, _ in evs:
        lv = (level or "").lower()
        if sid in mine and lv in ("error", "fatal"):
            errs.setdefault(mine[sid][6], [0, 0])[0 if lv == "error" else 1] += 1
    for day, (e, f) in errs.items():
        tips["errors"] |= {f"{day} errors: {e}", f"{day} fatals: {f}"}
    act = set()
    for sid, _, prod, _, _, user, day, _, _ in mine.values():
        if user is not None:
            d = dt.date.fromisoformat(day)
            act.add((prod, user, d - dt.timedelta(days=d.weekday())))
    cohort = {}
    for prod, user, w in act:
        cohort[(prod, user)] = min(cohort.get((prod, user), w), w)
    size, cells = {}, {}
    for c in cohort.values():
        size[c] = size.get(c, 0) + 1
    for prod, user, w in act:
        c = cohort[(prod, user)]
        k = (c, (w - c).days // 7)
        cells[k] = cells.get(k, 0) + 1
    for (c, o), n in cells.items():
        tips["retention"].add(f"cohort {c.isoformat()} +{o}: {n} of {size[c]} users ({round(100 * n / size[c])}%)")
    return tips


def chart_tips(b):
    return {k: set(b.execute(f"return [...document.querySelectorAll('#{k} svg title')].map(t => t.textContent)"))
            for k in ("usage", "features", "errors", "retention")}


def js_round_ok(tips):
    """Python rounds halves to even, JavaScript up: retention percentages are compared without them."""
    return {t.rsplit(" (", 1)[0] if t.startswith("cohort ") else t for t in tips}


# -- tests -------------------------------------------------------------------------------------

def test_without_sign_in_everything_refuses():
    setup()
    st, hdrs, _ = H.http("GET", E["port"], "/dashboard?site=tokyo")
    H.check(st == 303 and hdrs.get("location") == "/dashboard/login?next=/dashboard%3Fsite%3Dtokyo",
            f"page without sign-in: {st} {hdrs}")
    st, hdrs, _ = H.http("GET", E["port"], "/dashboard/pipeline")
    H.check(st == 303 and hdrs.get("location", "").startswith("/dashboard/login"), f"pipeline page: {st}")
    for path in ("/dashboard/api/usage", "/dashboard/api/filters", "/dashboard/api/pipeline", "/dashboard/api/me",
                 "/dashboard/api/usage?format=csv"):
        st, _, body = H.http("GET", E["port"], path)
        H.check(st == 401 and b"usage" not in body, f"{path} without sign-in: {st} {body[:100]}")
    for path in ("/dashboard/api/jobs/daily_usage/run", "/dashboard/api/redrive"):
        st, _, _ = H.http("POST", E["port"], path, b"", {"X-CSRF-Token": "x"})
        H.check(st == 401, f"POST {path} without sign-in: {st}")
    # a wrong password, an unknown user, a forged cookie
    for user, pw in (("alice", "wrong"), ("mallory", "x")):
        form = urllib.parse.urlencode({"user": user, "password": pw}).encode()
        st, hdrs, body = H.http("POST", E["port"], "/dashboard/login", form,
                                {"Content-Type": "application/x-www-form-urlencoded"})
        H.check(st == 401 and not hdrs.get("set-cookie") and b"Wrong user or password" in body,
                f"bad sign-in {user}: {st}")
    H.check("sign-in refused for alice" in log_text(), "a refused sign-in is logged")
    st, _, _ = H.http("GET", E["port"], "/dashboard/api/usage", None, {"Cookie": "lf_dash=" + "0" * 64})
    H.check(st == 401, f"forged cookie: {st}")
    # the cookie's flags, Secure when the proxy says TLS
    set_cookie, cookie = login("bob")
    flags = [f.strip() for f in set_cookie.split(";")]
    H.check("HttpOnly" in flags and "SameSite=Strict" in flags and "Path=/dashboard" in flags
            and "Secure" not in flags, f"cookie over plain HTTP: {set_cookie}")
    set_cookie, _ = login("bob", {"X-Forwarded-Proto": "https"})
    H.check("Secure" in [f.strip() for f in set_cookie.split(";")], f"cookie behind TLS: {set_cookie}")
    # after signing in, only our own pages: never another site
    for nxt, want in (("https://evil.test/x", "/dashboard"), ("/dashboard//evil.test", "/dashboard"),
                      ("/dashboard/pipeline\r\nX: y", "/dashboard"), ("/dashboard/pipeline?x=1", "/dashboard/pipeline?x=1")):
        form = urllib.parse.urlencode({"user": "bob", "password": PASSWORDS["bob"], "next": nxt}).encode()
        st, hdrs, _ = H.http("POST", E["port"], "/dashboard/login", form,
                             {"Content-Type": "application/x-www-form-urlencoded"})
        H.check(st == 303 and hdrs.get("location") == want and "x" not in hdrs, f"next={nxt!r}: {st} {hdrs}")
    # a reader reads, and may not act
    st, _, _ = H.http("GET", E["port"], "/dashboard/api/usage", None, {"Cookie": cookie})
    H.check(st == 200, f"reader reads: {st}")
    csrf = me(cookie)["csrf"]
    st, _, _ = H.http("POST", E["port"], "/dashboard/api/jobs/daily_usage/run", b"",
                      {"Cookie": cookie, "X-CSRF-Token": csrf})
    H.check(st == 403, f"reader re-runs: {st}")
    # an admin needs the CSRF token
    _, admin = login("alice")
    st, _, _ = H.http("POST", E["port"], "/dashboard/api/jobs/daily_usage/run", b"", {"Cookie": admin})
    H.check(st == 403, f"admin without CSRF token: {st}")
    # signing out ends the session
    st, _, _ = H.http("POST", E["port"], "/dashboard/logout", b"", {"Cookie": cookie, "X-CSRF-Token": csrf})
    H.check(st == 204, f"sign-out: {st}")
    st, _, _ = H.http("GET", E["port"], "/dashboard/api/usage", None, {"Cookie": cookie})
    H.check(st == 401, f"after sign-out: {st}")
    # a user removed from the file is signed out at once
    _, c2 = login("bob")
    r = analytics_cli("users", "remove", "bob")
    H.check(r.returncode == 0, r.stderr)
    H.wait_for(lambda: H.http("GET", E["port"], "/dashboard/api/usage", None, {"Cookie": c2})[0] == 401,
               "the removed user's session refused")
    r = analytics_cli("users", "add", "bob", stdin=PASSWORDS["bob"] + "\n")
    H.check(r.returncode == 0, r.stderr)


def test_site_filter_changes_every_chart():
    want = expected_for_site("tokyo")
    everything = expected_for_site("paris")
    for k in want:
        H.check(want[k] and want[k] != everything[k], f"{k}: the data does not tell sites apart")
    with lfbrowser.Browser() as b:
        browser_login(b, "bob")
        b.wait_for(lambda: b.find("body[data-ready='1']"), "the first drawing")
        before = chart_tips(b)
        sel = b.find("select[name=site]")
        b.wait_for(lambda: b.find("select[name=site] option[value=tokyo]"), "the site list")
        b.execute("arguments[0].value = 'tokyo'", sel)
        b.click(b.find("#f button[type=submit]"))
        b.wait_for(lambda: b.find("body[data-ready='2']"), "the filtered drawing")
        got = chart_tips(b)
        for k in want:
            H.check(got[k] != before[k], f"{k}: the site filter did not change the chart")
            H.check(js_round_ok(got[k]) == js_round_ok(want[k]),
                    f"{k}: drawn {sorted(got[k])[:4]} want {sorted(want[k])[:4]} "
                    f"(missing {sorted(want[k] - got[k])[:3]}, extra {sorted(got[k] - want[k])[:3]})")
        shot = b.screenshot(os.path.join(H.BUILD_DIR, "test_dashboard.png"))
        with open(shot, "rb") as f:
            H.check(f.read(8) == b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG")
        url = b.current_url()
        H.check("site=tokyo" in url, f"the view is not in the URL: {url}")
        # each chart's CSV, as its link gives it, holds the same numbers as the API
        for kind in ("usage", "features", "errors", "retention"):
            href = b.attr(b.find(f"a[data-csv={kind}]"), "href")
            H.check("site=tokyo" in href and "format=csv" in href, f"{kind} CSV link: {href}")
            # a returned promise is awaited by WebDriver
            text = b.execute("return fetch(arguments[0]).then(async r => r.status + '\\n' + "
                             "r.headers.get('content-type') + '\\n' + await r.text())", href)
            status, ctype, body = text.split("\n", 2)
            H.check(status == "200" and ctype.startswith("text/csv"), f"{kind} CSV: {status} {ctype}")
            rows = list(csv.reader(io.StringIO(body)))
            api = json.loads(b.execute("return fetch(arguments[0]).then(r => r.text())",
                                       href.replace("format=csv", "format=json")))
            H.check(rows[0] == api["columns"] and rows[1:] == [[v if v is not None else "" for v in r]
                                                              for r in api["rows"]], f"{kind}: CSV and JSON differ")
        H.check(not b.js_errors(), f"JavaScript errors: {b.js_errors()}")
    # a new browser on the shared URL draws the same view
    with lfbrowser.Browser() as b:
        browser_login(b, "bob")
        b.get(url)
        b.wait_for(lambda: b.find("body[data-ready='1']"), "the shared view drawn")
        H.check(b.prop(b.find("select[name=site]"), "value") == "tokyo", "the shared view's site filter")
        H.check(chart_tips(b) == got, "the shared view draws other numbers")


def test_error_is_shown_in_the_page():
    TA.DB.sql_root("RENAME TABLE errors_daily TO errors_daily_away", TA.DST)
    try:
        with lfbrowser.Browser() as b:
            browser_login(b, "bob")
            err = b.wait_for(lambda: b.text(b.find("#error")), "an error shown in the page")
            H.check("errors" in err and "500" in err, f"error text: {err}")
    finally:
        TA.DB.sql_root("RENAME TABLE errors_daily_away TO errors_daily", TA.DST)


def runs_of(b, job):
    return b.execute("return [...document.querySelectorAll('tr[data-run-job=\"' + arguments[0] + '\"]')]"
                     ".map(r => [+r.dataset.runId, r.dataset.status])", job)


def confirm(b):
    b.wait_for(lambda: b.execute("return document.getElementById('confirm').open"), "the confirmation")
    b.click(b.find("#confirm-yes"))


def test_pipeline_rerun_and_redrive():
    rx = E["rx"]
    # two sessions uploaded and dead-lettered: received once (max_receives 1) and not acked
    for i in range(2):
        st, _, _ = rx.upload(U.make_session(rx.site, f"line {i}\n".encode() * 5))
        H.check(st in (200, 201), f"upload: {st}")
    st, body = rx.post("/v1/queues/sessions/receive", {"max": 10, "visibility_s": 1}, rx.worker_token)
    H.check(st == 200 and len(body["messages"]) == 2, f"receive: {st} {body}")

    def dead():
        rx.post("/v1/queues/sessions/receive", {"max": 10, "visibility_s": 1}, rx.worker_token)
        return json.loads(rx.get("/v1/queues/sessions", rx.read_token)[2])["dlq_depth"] == 2
    H.wait_for(dead, "both sessions dead-lettered")
    # a failed run of feature_usage: its source table away
    TA.DB.sql_root("RENAME TABLE session_templates TO session_templates_away", TA.SRC)
    r = analytics_cli("run", "feature_usage", "--from", "2026-03-02", "--to", "2026-03-03")
    TA.DB.sql_root("RENAME TABLE session_templates_away TO session_templates", TA.SRC)
    H.check(r.returncode != 0, "the run fails without its source table")
    with lfbrowser.Browser() as b:
        browser_login(b, "alice")
        b.get(E["url"] + "/dashboard/pipeline")
        b.wait_for(lambda: b.find("body[data-ready]"), "the pipeline drawn")
        H.check(b.text(b.find(f"#sites tr[data-site='{rx.site}']")).split()[2] == "2",
                f"the site's uploads: {b.text(b.find('#sites'))}")
        H.check(b.text(b.find("#dlq-depth")) == "2", "the dead letters shown")
        runs = runs_of(b, "feature_usage")
        H.check(runs and runs[0][1] == "failed", f"the failed run shown first: {runs}")
        H.check("bad" in b.attr(b.find("tr[data-job=feature_usage] td"), "class"), "the failed job stands out")
        b.click(b.find("button[data-run=feature_usage]"))
        b.click(b.find("#confirm-no"))  # cancelled: nothing runs
        H.check(runs_of(b, "feature_usage")[0] == runs[0], "a cancelled re-run ran")
        b.click(b.find("button[data-run=feature_usage]"))
        confirm(b)
        new = b.wait_for(lambda: [r for r in runs_of(b, "feature_usage") if r[0] > runs[0][0]],
                         "the new run shown", timeout=60)
        H.check(new[0][1] == "ok", f"the re-run: {new}")
        # the cancelled click started nothing: the confirmed one is the only run since (read once the
        # confirmed run has ended, so a cancelled run that was merely slow would be counted too)
        since = TA.DB.query(f"SELECT COUNT(*) FROM job_runs WHERE job = 'feature_usage' AND id > {runs[0][0]}",
                            TA.DST)
        H.check(since == [["1"]], f"runs after the cancelled and the confirmed click: {since}")
        H.check("Job feature_usage: ok" in b.text(b.find("#notice")), b.text(b.find("#notice")))
        b.click(b.find("#redrive"))
        confirm(b)
        b.wait_for(lambda: b.text(b.find("#dlq-depth")) == "0", "the dead letters gone", timeout=30)
        H.check(not b.js_errors(), f"JavaScript errors: {b.js_errors()}")
    q = json.loads(rx.get("/v1/queues/sessions", rx.read_token)[2])
    H.check(q["dlq_depth"] == 0 and q["depth"] == 2, f"the queue after redrive: {q}")
    text = log_text()
    H.check("alice ran job feature_usage: ok" in text and "alice redrove the dead letters of queue sessions" in text,
            "the actions are logged with who did them")
    last = TA.DB.query("SELECT status FROM job_runs WHERE job = 'feature_usage' ORDER BY id DESC LIMIT 1", TA.DST)
    H.check(last == [["ok"]], f"job_runs: {last}")
    H.stop(E["proc"])


if __name__ == "__main__":
    H.run_tests([test_without_sign_in_everything_refuses, test_site_filter_changes_every_chart,
                 test_error_is_shown_in_the_page, test_pipeline_rerun_and_redrive])
