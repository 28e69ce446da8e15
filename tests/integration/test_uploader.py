"""logferry-uploader against the real receiver: once, status, keygen, idempotent ids after a wiped
state (invariant 3), refusals to the failed area, receiver down, continuation tails, rotation,
outbox cap, after-upload actions."""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import lfharness as H  # noqa: E402
from lfupload import Receiver, session_id  # noqa: E402
from lfuploader import Uploader  # noqa: E402

NAME_RE = r"^(?<user>u\d+)_(?<host>[^_]+)_(?<version>[^_]+)_(?<stamp>\d{8}T\d{6}Z)_(?<pid>\d+)\.log"


def gen(out, n, seed=1, max_size="64K"):
    subprocess.run([H.binary("logferry-sessiongen"), "--out", out, "--seed", str(seed), "--sessions", str(n),
                    "--max-size", max_size], check=True, capture_output=True)
    os.unlink(os.path.join(out, "logtypes.conf"))
    files = {}
    for root, _, names in os.walk(out):
        for n_ in names:
            p = os.path.join(root, n_)
            with open(p, "rb") as f:
                files[os.path.relpath(p, out)] = f.read()
    return files


def watch(d, extra="", settle="1s"):
    return f"dir = {d}\nrecursive = true\ninclude = *.log, *.log.[0-9]\nlog_type = classic\nproduct = atlas\n" \
           f"filename_regex = {NAME_RE}\nmetadata = region=eu, tier=gold\nsettle = {settle}\n" + extra


def ids(rx):
    return sorted(r[0] for r in rx.index_rows())


def manifest_of(rx, sid):
    z = zipfile.ZipFile(io.BytesIO(rx.export(sid)))
    m = json.loads(z.read("manifest.json"))
    return m, z.read(m["log_name"])


def test_once_ships_each_session_once_and_wiped_state_gives_same_ids():
    rx = Receiver()
    src = H.scratch_dir("lfsrc-")
    files = gen(src, 40)
    up = Uploader(rx, {"apps": watch(src)})
    p = up.run("once")
    H.check(p.returncode == 0, f"once exited {p.returncode}: {p.stderr.decode()[-2000:]}")
    want = sorted(session_id(up.site, rel, body) for rel, body in files.items())
    H.check(ids(rx) == want, f"receiver has {len(ids(rx))} ids, want {len(want)}")
    rel, body = sorted(files.items())[3]
    m, log = manifest_of(rx, session_id(up.site, rel, body))
    H.check(log == body, "stored log differs from its source")
    H.check(m["user"] == os.path.basename(rel).split("_")[0], f"user from filename_regex: {m}")
    H.check(m["metadata"].get("region") == "eu" and m["metadata"].get("pid"), f"metadata: {m}")
    H.check(m["source_path"] == os.path.join(src, rel) and m["log_size"] == len(body), f"{m}")
    st = up.status()
    H.check(st["shipped"] == 40 and st["pending"] == 0 and st["failed"] == 0, f"status {st}")
    # Nothing new: a second run packs nothing.
    p = up.run("once")
    H.check(p.returncode == 0 and b"packed 0," in p.stderr, p.stderr.decode()[-500:])
    # State wiped: the same ids again, the receiver answers 200, no copy.
    shutil.rmtree(up.state)
    p = up.run("once")
    H.check(p.returncode == 0, p.stderr.decode()[-1000:])
    H.check(b"packed 40, shipped 40 (40 already stored)" in p.stderr, p.stderr.decode()[-800:])
    H.check(ids(rx) == want, "receiver ids changed after the state was wiped")


def sites_report(rx):
    return {s["site"]: s for s in json.loads(rx.cli("sites", "list", "--json"))["sites"]}


def test_unregistered_site_waits_then_ships_once_registered():
    """A 401 the receiver's side can fix (the site is not registered yet) keeps the sessions in the
    outbox, says why in status, and they ship exactly once when the site is registered. The receiver
    logs each refusal with site, session and reason, and counts it for the site."""
    rx = Receiver()
    src = H.scratch_dir("lfsrc-")
    files = gen(src, 3, seed=2)
    up = Uploader(rx, {"apps": watch(src)}, site="late-site", register=False)
    p = up.run("once")
    H.check(p.returncode == 75, f"once exited {p.returncode}: {p.stderr.decode()[-800:]}")
    H.check(b"the receiver refuses this site" in p.stderr, p.stderr.decode()[-800:])
    st = up.status()
    H.check(st["failed"] == 0 and st["pending"] == 3, f"{st}")
    # the sessions tried before the backoff paused the rest say why they wait
    waiting = st["waiting_lines"]
    H.check(1 <= len(waiting) <= 3 and all("HTTP 401" in l and "unknown site" in l for l in waiting), f"{st}")
    H.check(os.listdir(os.path.join(up.outbox, "failed")) == [], "sessions moved to failed/")
    H.check(ids(rx) == [], "nothing stored")
    want = sorted(session_id(up.site, rel, body) for rel, body in files.items())
    log = rx.log_text()
    for line in waiting:
        sid = re.search(r" ([0-9a-f]{32}) ", line).group(1)
        H.check(f"refused upload: site late-site (not registered), session {sid}: 401 unknown_site" in log,
                f"no refusal line for {sid}:\n{log[-2000:]}")
    n = len(waiting)
    H.check(rx.metric('lf_receiver_site_refusals_total{site="(unregistered)",reason="unknown_site"}') >= n,
            "refusals of unregistered names not counted")
    # counted durably: the daemon writes them to the index within a second
    rep = H.wait_for(lambda: (lambda r: r if r.get("(unregistered)", {}).get("refusals", 0) >= n else None)(
        sites_report(rx)), "the refusals in sites list", 20)
    H.check(rep["(unregistered)"]["refusals_by_reason"].get("unknown_site", 0) >= n, f"{rep}")

    rx.cli("sites", "add", "late-site", up.pk)
    up.wait_registered()
    p = up.run("once")
    H.check(p.returncode == 0, f"once exited {p.returncode}: {p.stderr.decode()[-800:]}")
    H.check(ids(rx) == want, f"not every session once: {ids(rx)}")
    st = up.status()
    H.check(st["shipped"] == 3 and st["pending"] == 0 and not st["waiting_lines"] and st["failed"] == 0, f"{st}")
    rep = sites_report(rx)
    site = rep["late-site"]
    H.check(site["sessions"] == 3 and site["bytes"] > 0 and site["last_upload"] and site["state"] == "enabled",
            f"sites list: {site}")
    H.check(rx.metric('lf_receiver_site_sessions_total{site="late-site"}') == 3, "per-site series")
    text = rx.cli("sites", "list")
    H.check(re.search(r"^late-site\s+enabled\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+3\s+\d+\s+0\s", text, re.M),
            f"sites list:\n{text}")
    # the same from the API, for a read token only
    status, _, body = H.http("GET", rx.port, "/v1/sites", None, {"Authorization": "Bearer " + rx.read_token})
    H.check(status == 200 and {s["site"]: s for s in json.loads(body)["sites"]}["late-site"]["sessions"] == 3,
            f"GET /v1/sites: {status} {body[:500]}")
    status, _, _ = H.http("GET", rx.port, "/v1/sites")
    H.check(status == 401, f"GET /v1/sites without a token: {status}")


def test_refusal_log_is_rate_limited_per_site():
    """A flood of refused uploads from one site gives LF_SITE_LOG_BURST log lines a minute, not one
    each; every refusal is still counted."""
    rx = Receiver()
    path = "/v1/sessions/" + "1" * 32
    for _ in range(20):
        h = {"Content-Type": "application/zip",
             "Authorization": rx.signer.header("PUT", path, b"x", ts=int(time.time()) - 86400)}
        status, _, _ = H.http("PUT", rx.port, path, b"x", h)
        H.check(status == 401, f"stale signature answered {status}")
    lines = [l for l in rx.log_text().splitlines() if "refused upload: site site-a," in l]
    H.check(len(lines) == 5, f"{len(lines)} log lines for 20 refusals:\n" + "\n".join(lines))
    H.check("401 stale" in lines[0] and "not logged for a minute" in lines[-1], "\n".join(lines))
    H.check(rx.metric('lf_receiver_site_refusals_total{site="site-a",reason="stale"}') == 20, "all counted")
    rep = H.wait_for(lambda: (lambda r: r if r["site-a"]["refusals"] == 20 else None)(sites_report(rx)),
                     "20 refusals in sites list", 20)
    H.check(rep["site-a"]["refusals_by_reason"] == {"stale": 20} and rep["site-a"]["last_refusal"], f"{rep}")


def test_refused_for_good_then_retry_failed():
    """A refusal that can never succeed as it is (413 here) moves the session to failed/; once the
    cause is fixed, retry-failed puts it back and a running uploader ships it, exactly once."""
    rx = Receiver()
    src = H.scratch_dir("lfsrc-")
    rng = __import__("random").Random(7)
    files = {}
    for i in range(2):
        rel = f"u000{i}_h1_1.0_20261101T10000{i}Z_{i}.log"
        body = "".join(f"{rng.getrandbits(64):016x} line {n}\n" for n in range(800)).encode()
        with open(os.path.join(src, rel), "wb") as f:
            f.write(body)
        os.utime(os.path.join(src, rel), (time.time() - 10, time.time() - 10))
        files[rel] = body
    rx.stop()
    conf = open(rx.conf).read()
    with open(rx.conf, "w") as f:
        f.write(conf.replace("max_upload_size = 16M", "max_upload_size = 1K"))
    rx.start()
    up = Uploader(rx, {"apps": watch(src)})
    p = up.run("once")
    H.check(p.returncode == 65, f"once exited {p.returncode}: {p.stderr.decode()[-800:]}")
    st = up.status()
    H.check(st["failed"] == 2 and all("HTTP 413" in l for l in st["failed_lines"]), f"{st}")
    H.check(len(os.listdir(os.path.join(up.outbox, "failed"))) == 2, "failed zips kept")
    r = up.run("retry-failed", "0" * 32)
    H.check(r.returncode == 1 and b"not a failed session" in r.stdout, f"{r.returncode} {r.stdout}")

    rx.stop()
    with open(rx.conf, "w") as f:
        f.write(conf)
    rx.start()
    up.write_conf({"apps": watch(src)})
    up.start()
    r = up.run("retry-failed", "--all")
    H.check(r.returncode == 0 and b"2 sessions back in the outbox" in r.stdout, f"{r.returncode} {r.stdout}")
    want = sorted(session_id(up.site, rel, body) for rel, body in files.items())
    H.wait_for(lambda: ids(rx) == want, "the retried sessions at the receiver", 30)
    H.wait_for(lambda: up.status()["shipped"] == 2, "the uploader's registry to say shipped", 30)
    st = up.status()
    H.check(st["failed"] == 0 and os.listdir(os.path.join(up.outbox, "failed")) == [], f"{st}")
    H.check(up.stop() == 0, "clean stop")


def test_receiver_down_keeps_outbox_then_ships():
    rx = Receiver()
    src = H.scratch_dir("lfsrc-")
    files = gen(src, 10, seed=3)
    up = Uploader(rx, {"apps": watch(src)})
    rx.stop()
    t0 = time.time()
    p = up.run("once")
    H.check(p.returncode == 75, f"once exited {p.returncode}: {p.stderr.decode()[-800:]}")
    H.check(time.time() - t0 < 60, "once gave up in bounded time")
    st = up.status()
    H.check(st["pending"] == 10 and st["outbox_bytes"] > 0, f"{st}")
    # The source may go away once packed: the outbox is the copy.
    shutil.rmtree(src)
    os.makedirs(src)
    rx.start()
    up.write_conf({"apps": watch(src)})
    p = up.run("once")
    H.check(p.returncode == 0, p.stderr.decode()[-800:])
    want = sorted(session_id(up.site, rel, body) for rel, body in files.items())
    H.check(ids(rx) == want, "all shipped from the outbox")
    H.check(up.status()["outbox_bytes"] == 0, "outbox empty")


def test_growth_after_ship_is_a_continuation_and_rotation_keeps_id():
    rx = Receiver()
    src = H.scratch_dir("lfsrc-")
    path = os.path.join(src, "u0001_h1_20261101T100000Z_1.log")
    first = b"line one\nline two\n"
    with open(path, "wb") as f:
        f.write(first)
    os.utime(path, (time.time() - 10, time.time() - 10))
    up = Uploader(rx, {"apps": watch(src)})
    H.check(up.run("once").returncode == 0, "first ship")
    sid0 = session_id(up.site, os.path.basename(path), first)
    H.check(ids(rx) == [sid0], f"{ids(rx)}")
    tail = b"line three\n"
    with open(path, "ab") as f:
        f.write(tail)
    os.utime(path, (time.time() - 10, time.time() - 10))
    H.check(up.run("once").returncode == 0, "continuation")
    sid1 = session_id(up.site, os.path.basename(path) + "#part=1", tail)
    H.check(ids(rx) == sorted([sid0, sid1]), f"{ids(rx)}")
    m, log = manifest_of(rx, sid1)
    H.check(log == tail and m["continuation_of"] == sid0 and m["part"] == 1, f"{m}")
    # Rotation by rename: same inode and content under a new name: nothing new shipped.
    os.rename(path, path + ".1")
    p = up.run("once")
    H.check(p.returncode == 0 and ids(rx) == sorted([sid0, sid1]), f"{ids(rx)} {p.stderr.decode()[-500:]}")
    # on_change = warn: growth is logged and counted, not shipped.
    path2 = os.path.join(src, "u0002_h1_20261101T100000Z_2.log")
    with open(path2, "wb") as f:
        f.write(b"a\n")
    os.utime(path2, (time.time() - 10, time.time() - 10))
    p = up.run("--set", "uploader.on_change=warn", "once")
    H.check(p.returncode == 0, p.stderr.decode()[-500:])
    with open(path2, "ab") as f:
        f.write(b"b\n")
    os.utime(path2, (time.time() - 10, time.time() - 10))
    p = up.run("--set", "uploader.on_change=warn", "once")
    H.check(p.returncode == 0 and b"after it was shipped" in p.stderr, p.stderr.decode()[-800:])
    H.check(len(ids(rx)) == 3, f"{ids(rx)}")


def test_unfinished_file_is_not_shipped_end_line_finishes_it():
    rx = Receiver()
    src = H.scratch_dir("lfsrc-")
    path = os.path.join(src, "u0003_h1_20261101T100000Z_3.log")
    with open(path, "wb") as f:
        f.write(b"start\nworking\n")
    up = Uploader(rx, {"apps": watch(src, "end_line = ^Shutdown complete\n", settle="1h")})
    H.check(up.run("once").returncode == 0, "once")
    H.check(ids(rx) == [], "a file still being written is not shipped")
    with open(path, "ab") as f:
        f.write(b"Shutdown complete after 3 s\n")
    H.check(up.run("once").returncode == 0, "once")
    with open(path, "rb") as f:
        body = f.read()
    H.check(ids(rx) == [session_id(up.site, os.path.basename(path), body)], "end line finishes it")


def test_outbox_cap_pauses_without_dropping_and_after_upload_delete():
    rx = Receiver()
    src = H.scratch_dir("lfsrc-")
    files = gen(src, 12, seed=4, max_size="40K")
    up = Uploader(rx, {"apps": watch(src)})
    rx.stop()
    p = up.run("--set", "outbox.max_size=64K", "once")
    H.check(p.returncode == 75, f"{p.returncode} {p.stderr.decode()[-800:]}")
    H.check(b"outbox full" in p.stderr and b"nothing is dropped" in p.stderr, p.stderr.decode()[-800:])
    st = up.status()
    H.check(0 < st["pending"] < 12 and st["dropped"] == 0, f"{st}")
    rx.start()
    up.write_conf({"apps": watch(src)})
    p = up.run("--set", "outbox.max_size=64K", "--set", "uploader.after_upload=delete", "once")
    H.check(p.returncode == 0, p.stderr.decode()[-800:])
    want = sorted(session_id(up.site, rel, body) for rel, body in files.items())
    H.check(ids(rx) == want, f"{len(ids(rx))} of {len(want)}")
    left = [f for _, _, fs in os.walk(src) for f in fs]
    H.check(left == [], f"after_upload = delete left {left}")


def test_full_disk_while_packing_is_retried_not_lost():
    rx = Receiver()
    src = H.scratch_dir("lfsrc-")
    files = gen(src, 6, seed=6)
    up = Uploader(rx, {"apps": watch(src)})
    # Every write of the zip fails (as on a full disk).
    p = subprocess.run([H.binary("logferry-uploader"), "--config", up.conf, "once"], capture_output=True,
                       env={**os.environ, "LF_FAIL_WRITE": "1+"}, timeout=120)
    H.check(p.returncode == 75, f"{p.returncode} {p.stderr.decode()[-800:]}")
    H.check(b"disk full?" in p.stderr and b"could not be packed" in p.stderr, p.stderr.decode()[-800:])
    H.check(ids(rx) == [] and os.listdir(os.path.join(up.outbox, ".tmp")) == [], "no partial zip left")
    p = up.run("once")
    H.check(p.returncode == 0, p.stderr.decode()[-800:])
    want = sorted(session_id(up.site, rel, body) for rel, body in files.items())
    H.check(ids(rx) == want, "shipped once the disk has room")


def test_daemon_ships_and_exposes_metrics():
    rx = Receiver()
    src = H.scratch_dir("lfsrc-")
    up = Uploader(rx, {"apps": watch(src)})
    up.start()
    deadline = time.time() + 20
    while not os.path.exists(up.port_file) and time.time() < deadline:
        time.sleep(0.05)
    port = int(open(up.port_file).read())
    files = gen(src, 5, seed=5)
    want = sorted(session_id(up.site, rel, body) for rel, body in files.items())
    while ids(rx) != want and time.time() < deadline:
        time.sleep(0.2)
    H.check(ids(rx) == want, f"daemon shipped {len(ids(rx))} of {len(want)}")
    # the receiver holds a session before the uploader has read its answer: wait for the count the
    # test means, then check it stays at five
    def shipped():
        _, _, body = H.http("GET", port, "/metrics")
        m = re.search(rb"\nlf_uploader_shipped_total (\d+)", body)
        return int(m.group(1)) if m else None
    while shipped() != 5 and time.time() < deadline:
        time.sleep(0.1)
    H.check(shipped() == 5, f"lf_uploader_shipped_total is {shipped()}, not 5")
    status, _, body = H.http("GET", port, "/healthz")
    H.check(status == 200, body)
    H.check(up.stop() == 0, "clean stop")


if __name__ == "__main__":
    H.run_tests([
        test_once_ships_each_session_once_and_wiped_state_gives_same_ids,
        test_unregistered_site_waits_then_ships_once_registered,
        test_refusal_log_is_rate_limited_per_site,
        test_refused_for_good_then_retry_failed,
        test_receiver_down_keeps_outbox_then_ships,
        test_growth_after_ship_is_a_continuation_and_rotation_keeps_id,
        test_unfinished_file_is_not_shipped_end_line_finishes_it,
        test_outbox_cap_pauses_without_dropping_and_after_upload_delete,
        test_full_disk_while_packing_is_retried_not_lost,
        test_daemon_ships_and_exposes_metrics,
    ])
