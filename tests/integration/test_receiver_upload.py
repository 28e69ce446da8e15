"""logferry-receiver uploads end to end: signed PUTs stored encrypted, idempotency, status, blob and
export, key rotation, the hostile-input suite (each refused with the right status and nothing
stored), slow-loris uploads, queue routes, and fsync/ENOSPC failure injection.

Run: LF_BUILD_DIR=build/r1 python3 tests/integration/test_receiver_upload.py
Backends: filesystem (LF_RECEIVER_BACKENDS to choose; Elasticsearch is not built yet)."""
import hashlib
import json
import os
import socket
import sys
import time
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import lfharness as H  # noqa: E402
import lfupload as U  # noqa: E402

check = H.check
ZIP_LIMITS = "[zip]\nmax_total_size = 4M\nmax_ratio = 100\n"


def lfz_files(rx):
    """Stored objects: .lfz files on the filesystem store, chunk documents on the Elasticsearch one."""
    if rx.backend == "elasticsearch":
        status, _, data = H.http("GET", rx.es_port, "/_fake/docs")
        check(status == 200, f"es fake docs: {status}")
        indices = json.loads(data)["indices"]
        return sorted(k for idx in indices.values() for k in idx["docs"])
    return [f for f in rx.stored_files() if f.endswith(".lfz")]


def tmp_files(rx):
    d = os.path.join(rx.store, ".tmp")
    return os.listdir(d) if os.path.isdir(d) else []


def test_store_duplicate_conflict_status_blob_export():
    rx = U.Receiver(ZIP_LIMITS)
    log = b"2026-11-01 10:00:00 INFO [main] started\n" * 200
    s = U.make_session("site-a", log, identity="C:/logs/a.log")
    st, js, _ = rx.upload(s)
    check(st == 201, f"first upload: {st} {js}")
    check(js["session_id"] == s.id and js["duplicate"] is False, js)
    st, js, _ = rx.upload(s)
    check(st == 200 and js["duplicate"] is True, f"identical re-upload: {st} {js}")
    other = U.make_session("site-a", b"other content\n", sid=s.id)
    st, js, _ = rx.upload(other)
    check(st == 409 and js["error"] == "conflict", f"same id, other content: {st} {js}")

    # status route: read scope
    st, _, body = rx.get(f"/v1/sessions/{s.id}")
    check(st == 401, f"status without a token: {st}")
    st, _, body = rx.get(f"/v1/sessions/{s.id}", rx.worker_token)
    check(st == 403, f"status with a worker-only token: {st}")
    st, _, body = rx.get(f"/v1/sessions/{s.id}", rx.read_token)
    js = json.loads(body)
    check(st == 200 and js["status"] == "queued" and js["site"] == "site-a", f"status: {st} {js}")
    check(js["content_blake2b"] == hashlib.blake2b(s.body, digest_size=32).hexdigest(), js)
    st, _, _ = rx.get("/v1/sessions/" + "0" * 32, rx.read_token)
    check(st == 404, f"unknown session: {st}")

    # blob route: worker scope, the encrypted object
    st, _, blob = rx.get(f"/v1/sessions/{s.id}/blob", rx.read_token)
    check(st == 403, f"blob with a read-only token: {st}")
    st, hdrs, blob = rx.get(f"/v1/sessions/{s.id}/blob", rx.worker_token)
    check(st == 200 and blob[:6] == b"LFENC1", f"blob: {st} {blob[:16]!r}")
    check(log[:64] not in blob, "the stored object is not plaintext")
    if rx.backend == "elasticsearch":
        # ordered chunk documents <id>-<n>, base64 in a binary field, together the stored object
        status, _, data = H.http("GET", rx.es_port, "/_fake/docs")
        docs = {k: v for idx in json.loads(data)["indices"].values() for k, v in idx["docs"].items()}
        chunks = sorted((d["chunk"], d) for k, d in docs.items() if k.startswith(s.id + "-"))
        check(len(chunks) == (len(blob) + 4095) // 4096, f"a {len(blob)}-byte object in 4 KiB chunks: "
              f"{len(chunks)} documents")
        check([c for c, _ in chunks] == list(range(len(chunks))), "chunks numbered 0..n-1")
        import base64
        check(b"".join(base64.b64decode(d["data"]) for _, d in chunks) == blob,
              "blob route serves the stored chunks in order")
    else:
        files = lfz_files(rx)
        check(len(files) == 1, files)
        with open(files[0], "rb") as f:
            check(f.read() == blob, "blob route serves the stored file")
        check(os.stat(files[0]).st_mode & 0o077 == 0, "stored object readable by others")
        # date-sharded path
        rel = os.path.relpath(files[0], rx.store).split(os.sep)
        check(len(rel) == 4 and rel[3] == s.id + ".lfz" and len(rel[0]) == 4, rel)

    # export decrypts to the uploaded zip
    check(rx.export(s.id) == s.body, "export returns the uploaded bytes")

    # queued once, on "sessions", with the id as body
    out = rx.cli("queue", "peek")
    check(out.count(s.id) == 1, f"queue peek: {out}")
    check(rx.metric('lf_receiver_uploads_total{outcome="stored"}') == 1, "stored counter")
    if rx.backend == "elasticsearch":
        big = U.make_session("site-a", os.urandom(9000).hex().encode() + b"\n", identity="big")
        st, js, _ = rx.upload(big)
        check(st == 201, f"large upload: {st} {js}")
        check(rx.export(big.id) == big.body, "a session of several chunks exports byte for byte")
    check(rx.metric('lf_receiver_uploads_total{outcome="duplicate"}') == 1, "duplicate counter")
    check(rx.metric('lf_receiver_uploads_total{outcome="conflict"}') == 1, "conflict counter")
    check(rx.stop() == 0, "clean exit")


def test_key_rotation_old_sessions_still_export():
    rx = U.Receiver(ZIP_LIMITS)
    a = U.make_session("site-a", b"first session\n" * 50, identity="a")
    check(rx.upload(a)[0] == 201, "upload a")
    keys_before = [l.split()[0] for l in rx.cli("keys", "list").splitlines() if l]
    check(len(keys_before) == 1, keys_before)
    out = rx.cli("keys", "rotate")
    check("new current key" in out, out)
    keys = [l for l in rx.cli("keys", "list").splitlines() if l]
    check(len(keys) == 2 and sum(1 for k in keys if k.endswith(" current")) == 1, keys)
    b = U.make_session("site-a", b"second session\n" * 50, identity="b")
    check(rx.upload(b)[0] == 201, "upload b")
    blob_a = rx.get(f"/v1/sessions/{a.id}/blob", rx.worker_token)[2]
    blob_b = rx.get(f"/v1/sessions/{b.id}/blob", rx.worker_token)[2]
    current = [k.split()[0] for k in keys if k.endswith(" current")][0]
    check(blob_b[8:24].hex() == current, "the new session uses the new key")
    check(blob_a[8:24].hex() != current and blob_a[8:24].hex() == keys_before[0], "the old session keeps its old key")
    check(rx.export(a.id) == a.body and rx.export(b.id) == b.body, "both export after rotation")
    rx.stop()
    check(rx.export(a.id) == a.body, "export with the daemon stopped")


def symlink_zip(site):
    log = b"x\n"
    m = U.make_manifest(site, log)
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("manifest.json", json.dumps(m))
        zi = zipfile.ZipInfo("session.log")
        zi.create_system = 3
        zi.external_attr = (0o120777 << 16)
        z.writestr(zi, b"/etc/passwd")
    return m["session_id"], buf.getvalue()


def raw_request(port, head, body=b"", read_timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        s.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return int(data.split(b" ")[1]) if data else 0
    finally:
        s.close()


def test_hostile_inputs_rejected_and_nothing_stored():
    rx = U.Receiver(ZIP_LIMITS, window="60s")
    log = b"line\n" * 100
    good = U.make_session("site-a", log, identity="good")
    cases = []

    def expect(name, want, got):
        cases.append((name, want, got))

    # signatures
    expect("missing signature", 401, rx.upload(good, signer=False)[0])
    expect("malformed signature", 401, rx.upload(good, signer=False, headers={"Authorization": "Ferry-Ed25519 site=x"})[0])
    forged = rx.signer.header("PUT", f"/v1/sessions/{good.id}", b"another body")
    expect("signature over another body", 401, rx.upload(good, signer=False, headers={"Authorization": forged})[0])
    other_path = rx.signer.header("PUT", "/v1/sessions/" + "1" * 32, good.body)
    expect("signature over another path", 401, rx.upload(good, signer=False, headers={"Authorization": other_path})[0])
    expect("replay outside the window", 401, rx.upload(good, ts=int(time.time()) - 3600)[0])
    expect("timestamp in the future", 401, rx.upload(good, ts=int(time.time()) + 3600)[0])
    stranger = U.Signer(os.path.join(rx.dir, "x.sk"), "site-x")
    U.Signer.keygen(stranger.sk_path)
    s_x = U.make_session("site-x", log, identity="x")
    expect("unknown site", 401, rx.upload(s_x, signer=stranger)[0])
    b_signer = U.Signer(os.path.join(rx.dir, "b.sk"), "site-b")
    rx.cli("sites", "add", "site-b", U.Signer.keygen(b_signer.sk_path))
    rx.cli("sites", "disable", "site-b")
    s_b = U.make_session("site-b", log, identity="b")
    expect("disabled site", 403, rx.upload(s_b, signer=b_signer)[0])
    wrong_key = U.Signer(os.path.join(rx.dir, "x.sk"), "site-a")
    expect("site-a with another key", 401, rx.upload(good, signer=wrong_key)[0])
    expect("site-b signing site-a's manifest", 403,
           rx.upload(good, signer=U.Signer(b_signer.sk_path, "site-b"))[0] if rx.cli("sites", "enable", "site-b") else 0)
    rx.cli("sites", "disable", "site-b")

    # archives
    zeros = b"\0" * (3 << 20)
    bomb = U.make_session("site-a", zeros, identity="bomb")
    expect("zip bomb (ratio)", 400, rx.upload(bomb)[0])
    big = os.urandom(5 << 20)
    expect("total size over zip.max_total_size", 400,
           rx.upload(U.Session(U.session_id("site-a", "big", big),
                               U.build_zip([("manifest.json", json.dumps(U.make_manifest("site-a", big, sid=U.session_id("site-a", "big", big))).encode()),
                                            ("session.log", big)], zipfile.ZIP_STORED), None))[0])
    for name in ("../evil.log", "/abs.log", "a/../../b.log"):
        m = U.make_manifest("site-a", log, log_name="session.log")
        body = U.build_zip([("manifest.json", json.dumps(m).encode()), ("session.log", log), (name, b"x")])
        expect(f"entry name {name}", 400, rx.upload(U.Session(m["session_id"], body, m))[0])
    sid, body = symlink_zip("site-a")
    expect("symlink entry", 400, rx.upload(U.Session(sid, body, None))[0])
    expect("truncated zip", 400, rx.upload(U.Session(good.id, good.body[: len(good.body) // 2], None))[0])
    expect("non-zip body", 400, rx.upload(U.Session(good.id, b"this is not a zip at all\n" * 10, None))[0])
    expect("empty body", 400, rx.upload(U.Session(good.id, b"", None))[0])
    liar = U.make_session("site-a", log, identity="liar")
    expect("manifest lies about the id", 400, rx.upload(liar, sid="f" * 32)[0])
    expect("wrong content type", 415, rx.upload(good, headers={"Content-Type": "application/octet-stream"})[0])
    expect("no content type", 415, rx.upload(good, headers={"Content-Type": ""})[0])
    m = U.make_manifest("site-a", log, log_blake2b="0" * 64)
    body = U.build_zip([("manifest.json", json.dumps(m).encode()), ("session.log", log)])
    expect("log hash mismatch", 400, rx.upload(U.Session(m["session_id"], body, m))[0])
    m = U.make_manifest("site-a", log, log_size=len(log) + 1)
    body = U.build_zip([("manifest.json", json.dumps(m).encode()), ("session.log", log)])
    expect("log size mismatch", 400, rx.upload(U.Session(m["session_id"], body, m))[0])
    body = U.build_zip([("session.log", log)])
    expect("no manifest", 400, rx.upload(U.Session(good.id, body, None))[0])
    m = U.make_manifest("site-a", log)
    m["unexpected"] = 1
    body = U.build_zip([("manifest.json", json.dumps(m).encode()), ("session.log", log)])
    expect("manifest with an unknown key", 400, rx.upload(U.Session(m["session_id"], body, m))[0])
    expect("bad id in the URL", 400, rx.upload(good, sid="NOT-AN-ID")[0])
    # over the limit: refused from Content-Length, before the body is sent
    path = f"/v1/sessions/{good.id}"
    auth = rx.signer.header("PUT", path, b"")
    head = (f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/zip\r\nAuthorization: {auth}\r\n"
            f"Content-Length: {64 << 20}\r\n\r\n").encode()
    expect("body over the limit", 413, raw_request(rx.port, head))

    bad = [(n, w, g) for n, w, g in cases if w != g]
    check(not bad, "wrong answers: " + "; ".join(f"{n}: want {w} got {g}" for n, w, g in bad))
    check(lfz_files(rx) == [], f"nothing stored: {lfz_files(rx)}")
    check(tmp_files(rx) == [], f"no temporaries left: {tmp_files(rx)}")
    check(rx.index_rows() == [], f"nothing indexed: {rx.index_rows()}")
    check("0" in rx.cli("queue", "stats") and "sent 0" in rx.cli("queue", "stats"), rx.cli("queue", "stats"))
    for reason in ("missing_signature", "bad_signature", "stale", "unknown_site", "site_disabled", "zip_limit",
                   "bad_zip", "id_mismatch", "content_type", "content_mismatch", "bad_manifest"):
        v = rx.metric(f'lf_receiver_rejections_total{{reason="{reason}"}}')
        check(v and v >= 1, f"rejection counter {reason}: {v}")
    # the good one still works afterwards
    check(rx.upload(good)[0] == 201, "a good upload after the hostile ones")
    check(rx.stop() == 0, "clean exit")


SLOW_UPLOADS = 2000


def test_slow_uploads_do_not_block_others():
    """Thousands of uploads trickling their bodies (each holding a connection and a body sink) while
    normal uploads go through at full speed; memory stays bounded."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < SLOW_UPLOADS + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, SLOW_UPLOADS + 200), hard))
    rx = U.Receiver(ZIP_LIMITS + f"[http]\nmax_connections = {SLOW_UPLOADS + 100}\n")
    s = U.make_session("site-a", b"slow\n" * 1000, identity="slow")
    path = f"/v1/sessions/{s.id}"
    auth = rx.signer.header("PUT", path, s.body)
    head = (f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/zip\r\nAuthorization: {auth}\r\n"
            f"Content-Length: {len(s.body)}\r\n\r\n").encode()
    slow = []
    for i in range(SLOW_UPLOADS):
        c = socket.create_connection(("127.0.0.1", rx.port), timeout=5)
        c.sendall(head + s.body[:10])
        slow.append(c)
    deadline = time.time() + 20
    while rx.metric("lf_http_connections_open") < SLOW_UPLOADS and time.time() < deadline:
        time.sleep(0.1)  # the receiver may still be accepting
    check(rx.metric("lf_http_connections_open") >= SLOW_UPLOADS,
          f"{rx.metric('lf_http_connections_open')} connections open for {SLOW_UPLOADS} slow uploads")
    check(rx.metric("lf_http_connections_rejected_total") == 0, "no slow upload refused at the cap")
    t0 = time.time()
    for i in range(3):  # trickle a few more bytes on every connection
        for c in slow:
            c.sendall(s.body[10 + i: 11 + i])
        # normal uploads meanwhile
        n = U.make_session("site-a", f"normal {i}\n".encode() * 100, identity=f"n{i}")
        st, js, _ = rx.upload(n, timeout=10)
        check(st == 201, f"normal upload during the slow ones: {st} {js}")
    check(time.time() - t0 < 30, "normal uploads were not delayed")
    for c in slow:
        c.close()
    check(rx.proc.poll() is None, "receiver alive")
    stored = lfz_files(rx)
    check(len({os.path.basename(f).split(".")[0].split("-")[0] for f in stored}) == 3, stored)
    check(H.hwm_kib(rx.proc.pid) < 128 * 1024, "memory bounded")
    rx.stop()


def test_queue_routes():
    rx = U.Receiver(ZIP_LIMITS)
    ids = []
    for i in range(3):
        s = U.make_session("site-a", f"session {i}\n".encode() * 10, identity=f"q{i}")
        check(rx.upload(s)[0] == 201, "upload")
        ids.append(s.id)
    st, _ = rx.post("/v1/queues/sessions/receive", {"max": 10})
    check(st == 401, f"receive without token: {st}")
    st, _ = rx.post("/v1/queues/sessions/receive", {"max": 10}, rx.read_token)
    check(st == 403, f"receive with a read token: {st}")
    st, _, body = rx.get("/v1/queues/sessions", token=rx.read_token)
    check(st == 200 and b'"depth"' in body, f"statistics with a read token (monitoring): {st} {body[:200]!r}")
    st, js = rx.post("/v1/queues/sessions/receive", {"max": 2, "visibility_s": 1}, rx.worker_token)
    check(st == 200 and len(js["messages"]) == 2, f"receive: {st} {js}")
    got = [m["body"] for m in js["messages"]]
    check(all(g in ids for g in got), got)
    r0, r1 = js["messages"][0]["receipt"], js["messages"][1]["receipt"]
    st, js = rx.post("/v1/queues/sessions/ack", {"receipts": [r0, "bogus"]}, rx.worker_token)
    check(st == 200 and js["acked"] == 1 and js["results"] == ["acked", "stale"], f"ack: {st} {js}")
    st, js = rx.post("/v1/queues/sessions/extend", {"receipt": r1, "visibility_s": 30}, rx.worker_token)
    check(st == 200, f"extend: {st} {js}")
    st, js = rx.post("/v1/queues/sessions/extend", {"receipt": r0, "visibility_s": 30}, rx.worker_token)
    check(st == 404, f"extend an acked receipt: {st} {js}")
    st, js = rx.post("/v1/queues/sessions/nack", {"receipt": r1, "delay_s": 0}, rx.worker_token)
    check(st == 200, f"nack: {st} {js}")
    st, js = rx.post("/v1/queues/sessions/receive", {"max": 10, "wait_s": 2}, rx.worker_token)
    check(st == 200 and len(js["messages"]) == 2, f"receive after nack: {js}")
    # long poll on an empty queue ends after wait_s with nothing
    t0 = time.time()
    st, js = rx.post("/v1/queues/other/receive", {"max": 1, "wait_s": 1}, rx.worker_token)
    check(st == 200 and js["messages"] == [] and 0.8 < time.time() - t0 < 5, f"long poll: {js}")
    for bad in ({"max": 0}, {"max": "x"}, {"wait_s": 99999}, {"visibility_s": 0}):
        st, js = rx.post("/v1/queues/sessions/receive", bad, rx.worker_token)
        check(st == 400, f"bad receive {bad}: {st} {js}")
    st, js = rx.post("/v1/queues/bad%20name!/receive", {}, rx.worker_token)
    check(st in (400, 404), f"bad queue name: {st}")
    st, _, body = rx.get("/v1/queues/sessions", rx.worker_token)
    js = json.loads(body)
    check(st == 200 and js["in_flight"] == 2 and js["totals"]["acked"] == 1 and js["totals"]["sent"] == 3, js)
    st, js = rx.post("/v1/queues/sessions/redrive", {}, rx.worker_token)
    check(st == 403, f"redrive needs admin: {st}")
    st, js = rx.post("/v1/queues/sessions/redrive", {}, rx.admin_token)
    check(st == 200 and js["moved"] == 0, f"redrive: {st} {js}")
    rx.cli("tokens", "revoke", "worker1")
    st, _, _ = rx.get("/v1/queues/sessions", rx.worker_token)
    check(st == 401, f"revoked token: {st}")
    check("worker1" not in rx.cli("tokens", "list"), "revoked token listed")
    check(rx.stop() == 0, "clean exit with messages in flight")


def test_fsync_and_disk_full_failures():
    rx = U.Receiver(ZIP_LIMITS)
    a = U.make_session("site-a", b"before\n" * 10, identity="before")
    check(rx.upload(a)[0] == 201, "upload before")
    rx.stop()
    for env, want in (({"LF_FAIL_FSYNC": "1+"}, (503, 507)), ({"LF_FAIL_WRITE": "1+"}, (507,))):
        rx.start(env=env)
        for i in range(3):
            s = U.make_session("site-a", f"failing {i}\n".encode() * 10, identity=f"f{i}{list(env)[0]}")
            st, js, hdrs = rx.upload(s)
            check(st in want, f"{env}: upload must fail, got {st} {js}")
            if st == 503:
                check("retry-after" in hdrs, "503 carries Retry-After")
            st, _, body = rx.get(f"/v1/sessions/{s.id}", rx.read_token)
            if rx.backend == "elasticsearch" and st == 200:
                # Elasticsearch took the object (no local fsync on that path) and the index row was
                # written before the queue's commit failed: it must not claim to be queued, and a retry
                # (or the next start's recovery) enqueues it.
                check(json.loads(body)["status"] != "queued", f"{env}: failed upload claims queued")
            else:
                check(st == 404, f"{env}: failed upload not indexed ({st})")
        rx.kill()
    rx.start()
    b = U.make_session("site-a", b"after\n" * 10, identity="after")
    st, js, _ = rx.upload(b)
    check(st == 201, f"after the fault is gone: {st} {js}")
    check(rx.export(a.id) == a.body and rx.export(b.id) == b.body, "exports")
    check(tmp_files(rx) == [], tmp_files(rx))
    rx.stop()


def test_backpressure_marks():
    rx = U.Receiver(ZIP_LIMITS + "[limits]\nmax_queue_depth = 2\n")
    for i in range(2):
        check(rx.upload(U.make_session("site-a", f"bp {i}\n".encode(), identity=f"bp{i}"))[0] == 201, "upload")
    time.sleep(1.5)  # the depth is sampled every second
    s = U.make_session("site-a", b"one too many\n", identity="bp-over")
    st, js, hdrs = rx.upload(s)
    check(st == 429 and js["error"] == "queue_full" and hdrs.get("retry-after") == "2", f"queue full: {st} {js} {hdrs}")
    # a parser takes the messages: uploads are accepted again
    st, js = rx.post("/v1/queues/sessions/receive", {"max": 10}, rx.worker_token)
    rx.post("/v1/queues/sessions/ack", {"receipts": [m["receipt"] for m in js["messages"]]}, rx.worker_token)
    time.sleep(1.5)
    check(rx.upload(s)[0] == 201, "accepted once the queue drained")
    check(rx.metric('lf_receiver_rejections_total{reason="queue_full"}') == 1, "queue_full counted")
    rx.stop()
    # free disk under the mark
    rx2 = U.Receiver(ZIP_LIMITS, min_free_disk="1000000G")
    st, js, hdrs = rx2.upload(U.make_session("site-a", b"disk\n", identity="disk"))
    check(st == 503 and js["error"] == "disk_low" and "retry-after" in hdrs, f"disk low: {st} {js}")
    st, _, body = rx2.get("/healthz")
    check(b"degraded" in body or b"min_free_disk" in body, f"healthz shows it: {body[:300]!r}")
    check(lfz_files(rx2) == [], "nothing stored")
    rx2.stop()


def test_corrupt_queue_store_refused_at_start():
    rx = U.Receiver(ZIP_LIMITS)
    check(rx.upload(U.make_session("site-a", b"q\n" * 10, identity="q"))[0] == 201, "upload")
    rx.stop()
    qpath = os.path.join(rx.dir, "queue.db")
    for side in ("-wal", "-shm"):
        if os.path.exists(qpath + side):
            os.unlink(qpath + side)
    size = os.path.getsize(qpath)
    with open(qpath, "r+b") as f:
        f.truncate(size // 2)
    p = rx.start(wait=False)
    try:
        p.wait(20)
    except Exception:
        p.kill()
        raise AssertionError("receiver did not exit on a truncated queue store")
    check(p.returncode == 1, f"exit code {p.returncode}")
    log = rx.log_text()
    check("queue store" in log and ("damaged" in log or "corrupt" in log.lower()), log[-1500:])
    with open(qpath, "wb") as f:
        f.write(b"not a database at all" * 100)
    p = rx.start(wait=False)
    p.wait(20)
    check(p.returncode == 1, f"exit code on garbage: {p.returncode}")
    # the operator moves it aside and requeues: the stored session is queued again
    os.rename(qpath, qpath + ".damaged")
    check("1 sessions" in rx.cli("sessions", "requeue"), "requeue")
    rx.start()
    rx.stop()
    check(rx.cli("queue", "peek").count("\n") == 1, rx.cli("queue", "peek"))


if __name__ == "__main__":
    H.run_tests([
        test_store_duplicate_conflict_status_blob_export,
        test_key_rotation_old_sessions_still_export,
        test_hostile_inputs_rejected_and_nothing_stored,
        test_slow_uploads_do_not_block_others,
        test_queue_routes,
        test_fsync_and_disk_full_failures,
        test_backpressure_marks,
        test_corrupt_queue_store_refused_at_start,
    ])
