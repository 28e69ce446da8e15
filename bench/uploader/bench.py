"""Uploader benchmark driver (run by bench/uploader/run.sh): the same generated sessions shipped to
the same real receiver by `logferry-uploader once` and by the naive way (per file: a `zip` process,
a `logferry-sign` process for the Authorization header, a `curl` process). Prints sessions/s, MB/s,
CPU seconds per GB and peak RSS for both, and the ratio."""
import hashlib
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import time

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(root, "tests", "lib"))
build = os.environ.get("LF_BUILD_DIR", os.path.join(root, "build", "bench"))
os.environ["LF_BUILD_DIR"] = build
import lfharness as H  # noqa: E402
from lfupload import Receiver, Signer  # noqa: E402
from lfuploader import Uploader  # noqa: E402

N = int(os.environ.get("LF_BENCH_SESSIONS", "1500"))
NAIVE_N = int(os.environ.get("LF_BENCH_NAIVE_SESSIONS", str(min(N, 400))))
# LF_BENCH_DEFLATE: the uploader's outbox.deflate_level for this run (default: its configured default)
LEVEL = ["--set", "outbox.deflate_level=" + os.environ["LF_BENCH_DEFLATE"]] if os.environ.get("LF_BENCH_DEFLATE") else []


def gen(out, n, seed):
    subprocess.run([H.binary("logferry-sessiongen"), "--out", out, "--seed", str(seed), "--sessions", str(n),
                    "--max-size", "256K"], check=True, capture_output=True)
    os.unlink(os.path.join(out, "logtypes.conf"))
    files = []
    for r, _, names in os.walk(out):
        files += [os.path.join(r, x) for x in names]
    return sorted(files)


# Peak RSS is measured by GNU time(1), never with wait4/getrusage from here: a child forked by
# Python inherits Python's RSS high-water mark through exec (Linux keeps the larger of the old and
# the new image's), so ru_maxrss of any child of this script reads as at least this script's own
# ~20 MiB. time(1) is a small C program, so its child's figure is the child's own.
TIME = ["/usr/bin/time", "-f", "LF_PEAK_RSS_KIB=%M"]


def peak_of(stderr_text):
    for line in stderr_text.splitlines():
        if line.startswith("LF_PEAK_RSS_KIB="):
            return int(line.split("=", 1)[1])
    raise SystemExit(f"no peak RSS from time(1): {stderr_text[-500:]}")


def naive_peak(rx, files, src, work):
    """Peak RSS of the naive way's processes (zip, logferry-sign, curl) on the largest file, each
    under time(1), outside the timed loop (time(1) would add a process per step to it)."""
    p = max(files, key=os.path.getsize)
    d = os.path.join(work, "naive-peak")
    os.mkdir(d)
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump({"format": 1}, f)
    z = os.path.join(d, "s.zip")
    peaks = {}
    out = subprocess.run(TIME + ["zip", "-q", "-j", z, os.path.join(d, "manifest.json"), p],
                         capture_output=True, check=True)
    peaks["zip"] = peak_of(out.stderr.decode())
    with open(z, "rb") as f:
        body = f.read()
    out = subprocess.run(TIME + [H.binary("logferry-sign"), "header", os.path.join(work, "naive.sk"), "naive",
                                 "PUT", "/v1/sessions/x", "now", "-"], input=body, capture_output=True, check=True)
    peaks["sign"] = peak_of(out.stderr.decode())
    # a PUT the receiver refuses (unsigned): the same curl work up to the answer
    out = subprocess.run(TIME + ["curl", "-s", "-o", "/dev/null", "-X", "PUT", "-H", "Content-Type: application/zip",
                                 "--data-binary", f"@{z}", f"http://127.0.0.1:{rx.port}/v1/sessions/{'0' * 32}"],
                         capture_output=True, check=True)
    peaks["curl"] = peak_of(out.stderr.decode())
    shutil.rmtree(d)
    return peaks


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def self_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def sid(site, identity, log):
    h = hashlib.blake2b(digest_size=32)
    for f in (b"logferry.session-id.v1", site.encode(), identity.encode(),
              hashlib.blake2b(log, digest_size=32).digest()):
        h.update(struct.pack(">Q", len(f)) + f)
    return h.digest()[:16].hex()


def naive(rx, files, src, work):
    """The naive way: one zip, one signer and one curl process per file."""
    signer = Signer(os.path.join(work, "naive.sk"), "naive")
    pk = Signer.keygen(signer.sk_path)
    rx.cli("sites", "add", "naive", pk)
    time.sleep(2.5)  # the receiver re-reads its site table
    c0, s0, t0 = children_cpu(), self_cpu(), time.time()
    total = 0
    for p in files:
        with open(p, "rb") as f:
            log = f.read()
        total += len(log)
        rel = os.path.relpath(p, src)
        i = sid("naive", rel, log)
        d = os.path.join(work, i)
        os.mkdir(d)
        m = {"format": 1, "session_id": i, "site": "naive", "product": "atlas", "product_version": "1",
             "log_type": "classic", "log_name": os.path.basename(p), "log_size": len(log),
             "log_blake2b": hashlib.blake2b(log, digest_size=32).hexdigest()}
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump(m, f)
        z = os.path.join(d, "s.zip")
        subprocess.run(["zip", "-q", "-j", z, os.path.join(d, "manifest.json"), p], check=True)
        with open(z, "rb") as f:
            body = f.read()
        path = f"/v1/sessions/{i}"
        auth = signer.header("PUT", path, body)
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                              "-H", "Content-Type: application/zip", "-H", f"Authorization: {auth}",
                              "--data-binary", f"@{z}", f"http://127.0.0.1:{rx.port}{path}"],
                             capture_output=True, check=True)
        if out.stdout not in (b"201", b"200"):
            raise SystemExit(f"naive upload answered {out.stdout!r}")
        shutil.rmtree(d)
    wall = time.time() - t0
    cpu = children_cpu() - c0 + self_cpu() - s0
    peaks = naive_peak(rx, files, src, work)
    return len(files), total, wall, cpu, max(peaks.values()), peaks


def main():
    work = H.scratch_dir("lfbench-upl-")
    rx = Receiver(extra_config="")
    src = os.path.join(work, "src")
    files = gen(src, N, 1)
    up = Uploader(rx, {"apps": f"dir = {src}\nrecursive = true\nsettle = 1s\nlog_type = classic\n"
                                f"product = atlas\n"})
    total = sum(os.path.getsize(p) for p in files)
    t0 = time.time()
    p = subprocess.Popen(TIME + [H.binary("logferry-uploader"), "--config", up.conf, "--set", "log.level=warn",
                                 "--set", "receiver.concurrency=8"] + LEVEL + ["once"], stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)  # CPU time of time(1) and the uploader (time's own is ~0)
    err = p.stderr.read().decode()
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    cpu = ru.ru_utime + ru.ru_stime
    peak_kib = peak_of(err)
    if p.returncode != 0:
        raise SystemExit(f"uploader once exited {p.returncode}")
    if len(rx.index_rows()) != len(files):
        raise SystemExit(f"receiver holds {len(rx.index_rows())} sessions, want {len(files)}")
    u = (len(files), total, wall, cpu, peak_kib)
    nfiles = files[:NAIVE_N]
    nv = naive(rx, nfiles, src, work)
    print(f"sessions: uploader {u[0]}, naive {nv[0]} (sessiongen seed 1, max 256K, "
          f"{total / len(files) / 1024:.0f} KiB average)")
    print(f"{'':10}{'sessions/s':>12}{'MB/s':>10}{'CPU s/GB':>10}{'peak RSS MiB':>14}")
    for name, (n, b, w, c, pk) in (("uploader", u), ("naive", nv[:5])):
        print(f"{name:10}{n / w:12.1f}{b / w / 1e6:10.2f}{c / (b / 1e9):10.1f}{pk / 1024:14.1f}")
    print(f"throughput ratio uploader/naive: {(u[0] / u[2]) / (nv[0] / nv[2]):.1f}x (goal >= 5x); "
          f"uploader peak RSS {u[4] / 1024:.1f} MiB (goal <= 16 MiB)")
    print("peak RSS by time(1); naive: the largest of its processes on the largest file ("
          + ", ".join(f"{k} {v / 1024:.1f}" for k, v in nv[5].items()) + " MiB)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
