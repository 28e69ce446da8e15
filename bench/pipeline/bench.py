"""Pipeline benchmark driver (run by bench/pipeline/run.sh): sessions/s and events/s from the first
upload to the moment MySQL's sessions table holds every session, for four cells: the embedded queue
and JetStream, each with one and with two parser processes (2 workers each). Every cell starts
fresh: a receiver, a nats-server (JetStream cells), the parsers on a new database of one private
MariaDB that serves the whole run. Cells are interleaved run by run; medians are printed.

The sessions are classic-format logs with stack traces (lfparser.make_log), the same logs in every
cell under new session ids, signed before the clock starts and uploaded by 8 threads."""
import concurrent.futures
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(root, "tests", "lib"))
build = os.environ.get("LF_BUILD_DIR", os.path.join(root, "build", "bench"))
os.environ["LF_BUILD_DIR"] = build
import lfharness as H  # noqa: E402
import lfmariadb  # noqa: E402
import lfnats  # noqa: E402
import lfparser as P  # noqa: E402
import lfupload as U  # noqa: E402

N = int(os.environ.get("LF_BENCH_SESSIONS", "1000"))
RUNS = int(os.environ.get("LF_BENCH_RUNS", "3"))
NODES = int(os.environ.get("LF_BENCH_NATS_NODES", "1"))
MAX_LINES = int(os.environ.get("LF_BENCH_MAX_LINES", "2000"))
UPLOADERS = 8
STALL_S = 120  # no new session in MySQL for this long: a stall, reported with the parsers' stacks
CELLS = [("embedded", 1), ("embedded", 2), ("jetstream", 1), ("jetstream", 2)]


def logs():
    rng = random.Random(21)
    # sizes spread like real sessions: many short ones, a few long
    return [P.make_log(rng, max(20, min(MAX_LINES, int(rng.expovariate(1 / (MAX_LINES / 4)))))) for _ in range(N)]


def sessions_loaded(db, database):
    try:
        return int(db.query("SELECT COUNT(*) FROM sessions", database)[0][0])
    except RuntimeError:
        return 0  # the database or table is not there yet


def cpu_s(pid):
    """User + system CPU seconds of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_all(groups):
    return {g: sum(cpu_s(pid) for pid in pids) for g, pids in groups.items()}


def stacks(parsers):
    out = []
    for p in parsers:
        if not p.running():
            out.append(f"parser {p.proc.pid} exited {p.proc.returncode}")
            continue
        g = subprocess.run(["gdb", "-p", str(p.proc.pid), "-batch", "-ex", "thread apply all bt"], capture_output=True,
                           text=True, timeout=120) if shutil.which("gdb") else None
        out.append(f"parser {p.proc.pid} stacks:\n" + (g.stdout[-6000:] if g else "(gdb not installed)"))
    return "\n".join(out)


def stalled(what, parsers, rx):
    logs_ = "\n".join(f"--- {p.log}\n{p.log_text()[-3000:]}" for p in parsers)
    raise SystemExit(f"STALL: {what}\n{stacks(parsers)}\n{logs_}\n--- receiver log\n{rx.log_text()[-2000:]}")


def wait_parsers_ready(parsers, rx):
    deadline = time.time() + STALL_S
    while not all(" workers on queue " in p.log_text() for p in parsers):
        for p in parsers:
            if not p.running():
                raise SystemExit(f"parser exited {p.proc.returncode}: {p.log_text()[-3000:]}")
        if time.time() > deadline:
            stalled(f"parsers not ready after {STALL_S}s", parsers, rx)
        time.sleep(0.05)


def cell(db, bodies, backend, nparsers, tag):
    server = None
    js = ""
    if backend == "jetstream":
        if NODES > 1:
            server = lfnats.NatsCluster(NODES).start().wait_ready()
            urls = server.urls()
        else:
            server = lfnats.NatsServer().start().wait_healthy()
            urls = server.url()
        js = f"[queue]\nbackend = jetstream\nservers = {urls}\nreplicas = {NODES}\n"
    # visibility equal on both sides (the consumer's ack wait); more publish slots than uploaders
    rx = U.Receiver(extra_config=(js + "visibility = 20s\nmax_publishes = 16\n") if js else "", window="30m")
    database = f"bench_{tag}"
    parsers = [P.Parser(rx, db, workers=2, database=database, name=f"parser{i}",
                        extra=js) for i in range(nparsers)]
    for p in parsers:
        p.start()
    wait_parsers_ready(parsers, rx)
    rng = random.Random(tag)
    todo = []
    for i, log in enumerate(bodies):
        s = U.make_session(rx.site, log, identity=f"{tag}-{i}-{rng.random()}")
        path = f"/v1/sessions/{s.id}"
        todo.append((path, s.body, rx.signer.header("PUT", path, s.body)))

    refused = []  # one entry per 503 (list.append is atomic across the threads)

    def upload(item):
        path, body, auth = item
        while True:
            status, hdrs, data = H.http("PUT", rx.port, path, body, {"Content-Type": "application/zip",
                                                                     "Authorization": auth}, timeout=60)
            if status in (200, 201):
                return
            if status != 503:
                raise SystemExit(f"upload {path}: {status} {data[:300]}")
            refused.append(path)
            time.sleep(0.05)  # refused for now (busy): as an uploader would, only sooner

    nats_pids = [] if not server else [x.pid for x in server.servers] if NODES > 1 else [server.pid]
    groups = {"receiver": [rx.proc.pid], "parsers": [p.proc.pid for p in parsers], "mariadbd": [db.proc.pid],
              "nats-server": nats_pids}
    cpu0 = cpu_all(groups)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(UPLOADERS) as ex:
        done = ex.map(upload, todo)
        for _ in done:
            pass
        t_up = time.monotonic() - t0
    last, last_change = -1, time.monotonic()
    while True:
        n = sessions_loaded(db, database)
        now = time.monotonic()
        if n >= N:
            break
        if n != last:
            last, last_change = n, now
        elif now - last_change > STALL_S:
            stalled(f"{backend} x{nparsers}: {n} of {N} sessions in MySQL, none for {STALL_S}s", parsers, rx)
        time.sleep(0.1)
    dt = time.monotonic() - t0
    cpu = {g: v - cpu0[g] for g, v in cpu_all(groups).items()}
    rows, distinct, events = db.query("SELECT COUNT(*), COUNT(DISTINCT session_id), SUM(event_count) FROM sessions",
                                      database)[0]
    event_rows = int(db.query("SELECT COUNT(*) FROM events", database)[0][0])
    if int(rows) != N or int(distinct) != N or int(events) != event_rows:
        raise SystemExit(f"{backend} x{nparsers}: {rows} sessions rows ({distinct} distinct) for {N} uploaded; "
                         f"{events} events counted, {event_rows} events rows")
    for p in parsers:
        rc = p.stop()
        if rc != 0:
            raise SystemExit(f"parser exited {rc}: {p.log_text()[-2000:]}")
    rx.stop()
    if server:
        server.stop()
    db.sql_root(f"DROP DATABASE {database}")
    for d in [rx.dir] + [p.dir for p in parsers]:
        shutil.rmtree(d, ignore_errors=True)
    return {"s": dt, "upload_s": t_up, "sessions_per_s": N / dt, "events_per_s": int(events) / dt,
            "events": int(events), "cpu": cpu, "refused": len(refused)}


def main():
    if lfnats.missing():
        raise SystemExit(lfnats.missing())
    bodies = logs()
    mb = sum(len(b) for b in bodies) / 1e6
    db = lfmariadb.scratch_server()
    results = {c: [] for c in CELLS}
    t_start = time.monotonic()
    for r in range(RUNS):
        order = CELLS if r % 2 == 0 else CELLS[::-1]  # neither end of the order always goes first
        for backend, nparsers in order:
            res = cell(db, bodies, backend, nparsers, f"r{r}_{backend[:3]}{nparsers}")
            results[(backend, nparsers)].append(res)
            print(f"run {r + 1}/{RUNS} {backend:9} x{nparsers}: {res['s']:.1f}s (uploads done at {res['upload_s']:.1f}s), "
                  f"{res['sessions_per_s']:.1f} sessions/s, {res['events_per_s']:.0f} events/s, {res['refused']} uploads "
                  "refused (503) and retried", file=sys.stderr,
                  flush=True)
    db.stop()
    events = results[CELLS[0]][0]["events"]
    print(f"{N} sessions ({mb:.1f} MB of log, {events} events) per cell, uploaded by {UPLOADERS} threads; "
          f"medians of {RUNS} runs (range); parsers with 2 workers each; JetStream on {NODES} node(s), "
          f"{NODES} replica(s); {time.monotonic() - t_start:.0f}s in all")
    print(f"{'queue':10} {'parsers':>7} | {'sessions/s':>22} | {'events/s':>26} | {'upload phase s':>14}")
    med = {}
    for c in CELLS:
        rs = results[c]
        ss = [x["sessions_per_s"] for x in rs]
        es = [x["events_per_s"] for x in rs]
        med[c] = (statistics.median(ss), statistics.median(es))
        print(f"{c[0]:10} {c[1]:>7} | {med[c][0]:8.1f} ({min(ss):5.1f}-{max(ss):5.1f}) | "
              f"{med[c][1]:9.0f} ({min(es):6.0f}-{max(es):6.0f}) | {statistics.median(x['upload_s'] for x in rs):14.1f}")
    print(f"CPU seconds per 1000 sessions, medians (this machine has {os.cpu_count()} cores, shared):")
    print(f"{'queue':10} {'parsers':>7} | " + " ".join(f"{g:>11}" for g in results[CELLS[0]][0]["cpu"]))
    for c in CELLS:
        rs = results[c]
        print(f"{c[0]:10} {c[1]:>7} | " + " ".join(f"{statistics.median(x['cpu'][g] for x in rs) * 1000 / N:11.2f}"
                                                   for g in rs[0]["cpu"]))
    for n in (1, 2):
        print(f"jetstream/embedded, {n} parser(s): {med[('jetstream', n)][0] / med[('embedded', n)][0]:.2f}")
    for b in ("embedded", "jetstream"):
        print(f"{b}: 2 parsers / 1 parser: {med[(b, 2)][0] / med[(b, 1)][0]:.2f}")


if __name__ == "__main__":
    main()
