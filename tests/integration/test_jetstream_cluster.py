"""Issue 21's scale-out under chaos: a 3-node NATS JetStream cluster, two receivers behind nginx, two
parsers and MariaDB, each on a network-namespace host of its own (one bridge the test creates):

    nats1..3  10.233.0.11-13   nats-server (Debian's), one JetStream cluster, file stores
    rxa, rxb  10.233.0.21-22   logferry-receiver, [queue] backend = jetstream, replicas = 3, each its
                               own filesystem store, advertise_url = its own address; sites and
                               tokens added once, on A (JetStream buckets); B has A's token key
                               and store key
    lb        10.233.0.30      nginx, round-robin over the two receivers (plain HTTP, port 8080)
    p1, p2    10.233.0.41-42   logferry-parser on JetStream; [receiver] url = one receiver and
                               peers = the other (p1: rxa then rxb, p2: rxb then rxa)
    db        10.233.0.50      MariaDB
    site-1/2  10.233.0.61-62   the real uploader agent, pointed at nginx (its retries after a 502 or
                               503 are the product's)
    ctl       10.233.0.5       where the test's own probes come from

Generated sessions are released into the sites' watched folders in batches at a steady pace while,
one after the other:

  nats    the node leading the queue's stream is SIGKILLed: the stream gets a leader on the other
          two and uploads go on; restarted on its store, it rejoins (routes, meta leader) and every
          stream (queue, dead letters, the shared buckets) has a leader and current replicas
  rxa     receiver A is SIGKILLed during uploads: nginx sends them to B; restarted, A answers 2xx again
  p2      parser p2 is SIGKILLed while it parses; restarted, it parses again (what it held comes back
          after the ack wait)
  cut     the wire between p1 and receiver B is cut silently (lfnetns sever: no error on either
          side, connects and requests time out, as with a dead cable) and the sessions
          not yet released go out at once; p1 holds a session B stores, past twice the ack wait,
          while the rest is loaded; restored, p1 goes on

Then: every session whose upload nginx answered 2xx is in MySQL `sessions` exactly once, no session
is there that never got a 2xx, every generated session is there with the generator's ground truth
(lfsessions.verify), every event's raw message is byte-identical to the source lines it came from,
the dead-letter stream and the queue's stream are empty (and the consumer has nothing pending or
unacknowledged), no parse failure was recorded, and every process exits 0 on SIGTERM. A summary prints the counts and how long each
recovery took.

Needs root (network namespaces), nginx, MariaDB and nats-server; exit 77 without namespaces or
nats-server. Timeouts and the release pace are tripled in the sanitizer build. LF_JSCLUSTER_SESSIONS sets how many
sessions (default 600).
"""
import hashlib
import json
import os
import random
import re
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import lfharness as H  # noqa: E402
import lfhosts  # noqa: E402
import lfmariadb  # noqa: E402
import lfnats  # noqa: E402
import lfnetns  # noqa: E402
import lfsessions  # noqa: E402
import lfuploader  # noqa: E402
from lfhosts import tail, write  # noqa: E402

SESSIONS = int(os.environ.get("LF_JSCLUSTER_SESSIONS", "600"))
BATCH = 10
SCALE = 3 if H.sanitizer_build() else 1  # ASan/UBSan programs run several times slower
RELEASE_EVERY_S = 1.0 * SCALE  # so that uploads go on through every step of the chaos
NET_PREFIX = "10.233.0."
HOSTS = {
    "ctl": [("br0", NET_PREFIX + "5")],
    "nats1": [("br0", NET_PREFIX + "11")],
    "nats2": [("br0", NET_PREFIX + "12")],
    "nats3": [("br0", NET_PREFIX + "13")],
    "rxa": [("br0", NET_PREFIX + "21")],
    "rxb": [("br0", NET_PREFIX + "22")],
    "lb": [("br0", NET_PREFIX + "30")],
    "p1": [("br0", NET_PREFIX + "41")],
    "p2": [("br0", NET_PREFIX + "42")],
    "db": [("br0", NET_PREFIX + "50")],
    "site-1": [("br0", NET_PREFIX + "61")],
    "site-2": [("br0", NET_PREFIX + "62")],
}
IP = {h: links[0][1] for h, links in HOSTS.items()}
RX_PORT, PARSER_PORT, LB_PORT = 8440, 8442, 8080
RX_URL = {rx: f"http://{IP[rx]}:{RX_PORT}" for rx in ("rxa", "rxb")}
PARSER_RECEIVERS = {"p1": ("rxa", "rxb"), "p2": ("rxb", "rxa")}  # [receiver] url, then peers
VISIBILITY_S = 8  # the receivers' [queue] visibility and the parsers' [receiver] visibility: equal
Q_STREAM, DLQ_STREAM, CONSUMER = "LF_Q_sessions", "LF_DLQ_sessions", "lf-parsers"

NET = lfnetns.Network("lfjsc", HOSTS)
in_ns = NET.in_ns
ns_http = NET.http


class Env:
    pass


E = Env()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_for(cond, timeout, what, step=0.3, detail=None):
    """Polls cond until true (returned); the failure names what was awaited and, when given,
    detail() says what was seen instead."""
    timeout *= SCALE
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() >= deadline:
            raise H.TestFailure(f"timed out after {timeout}s waiting for {what}"
                                + (f"; {detail()}" if detail else ""))
        time.sleep(step)


def run_ok(args, what):
    return lfhosts.run_ok(args, what, timeout=120 * SCALE)


def start_in(host, args, name):
    return H.start(in_ns(host, args), log_path=os.path.join(E.dir, name + ".log"))


def wait_healthy(url, proc, what, timeout=60):
    def ok():
        if proc.poll() is not None:
            raise H.TestFailure(f"{what} exited with {proc.returncode}; {proc.log_path} ends:\n{tail(proc.log_path)}")
        return ns_http("ctl", "GET", url, timeout=2)[0] == 200
    wait_for(ok, timeout, f"{what} to answer {url}", step=0.2)


def metric(url, name):
    """A counter's value from a Prometheus /metrics page (summed over its labels), None when the
    page does not answer."""
    st, body = ns_http("ctl", "GET", url, timeout=3)
    if st != 200:
        return None
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.split()[-1])
    return total


# -- NATS ----------------------------------------------------------------------------------------

def nats_start():
    E.nats = lfnats.NatsCluster(hosts=[(IP[h], in_ns(h, [])) for h in ("nats1", "nats2", "nats3")],
                                base_dir=os.path.join(E.dir, "nats"))
    E.nats.start(timeout=30 * SCALE)
    E.nats.wait_ready(timeout=60 * SCALE)


def stream_state(name):
    st = E.nats.stream_info(name)
    return (st or {}).get("state") or {}


def consumer_state():
    st = E.nats.stream_info(Q_STREAM) or {}
    for c in st.get("consumer_detail") or []:
        if c.get("name") == CONSUMER:
            return c
    return {}


# -- receivers -----------------------------------------------------------------------------------

def receiver_conf(rx):
    d = os.path.join(E.dir, rx)
    conf = f"{d}/receiver.conf"
    write(conf, lfhosts.receiver_conf(d, f"{IP[rx]}:{RX_PORT}", queue=f"""backend = jetstream
servers = {E.nats.urls()}
replicas = 3
visibility = {VISIBILITY_S}s
republish_interval = 5s
advertise_url = {RX_URL[rx]}
"""))
    return conf


def receivers_setup():
    E.rx_conf = {rx: receiver_conf(rx) for rx in ("rxa", "rxb")}
    rxa = in_ns("rxa", [H.binary("logferry-receiver"), "--config", E.rx_conf["rxa"]])  # on its host: it reaches NATS
    run_ok(rxa + ["keys", "rotate"], "receiver keys rotate")
    E.worker_token = run_ok(rxa + ["tokens", "add", "parsers", "--scope", "worker"], "tokens add").strip()
    E.read_token = run_ok(rxa + ["tokens", "add", "monitor", "--scope", "read"], "tokens add").strip()
    # The sites and tokens are JetStream's (LF_SITES, LF_TOKENS), written by A's commands; B needs
    # A's token key to check those tokens. The store key is shared too, so that the parsers decrypt
    # the sessions of either receiver with one keyring.
    b = os.path.join(E.dir, "rxb")
    shutil.copytree(os.path.join(E.dir, "rxa", "keys"), os.path.join(b, "keys"))
    shutil.copy2(os.path.join(E.dir, "rxa", "token.key"), os.path.join(b, "token.key"))
    E.rx = {}


def receiver_start(rx):
    E.rx[rx] = start_in(rx, [H.binary("logferry-receiver"), "--config", E.rx_conf[rx]], rx)
    wait_healthy(f"{RX_URL[rx]}/healthz", E.rx[rx], f"receiver {rx}")


def register_site(site, pubkey):
    # on one receiver: the site registry is shared through JetStream, B follows it
    run_ok(in_ns("rxa", [H.binary("logferry-receiver"), "--config", E.rx_conf["rxa"], "sites", "add", site, pubkey]),
           "sites add on rxa")


def queue_stats(rx):
    st, body = ns_http("ctl", "GET", f"{RX_URL[rx]}/v1/queues/sessions", E.read_token)
    H.check(st == 200, f"queue statistics from {rx}: {st} {body}")
    return json.loads(body)


# -- nginx ---------------------------------------------------------------------------------------

def nginx_start():
    d = os.path.join(E.dir, "nginx")
    os.makedirs(d)
    upstreams = "".join(f"        server {IP[rx]}:{RX_PORT} max_fails=1 fail_timeout=2s;\n" for rx in ("rxa", "rxb"))
    write(f"{d}/nginx.conf", lfhosts.nginx_conf(d, f"""    upstream receivers {{
{upstreams}        keepalive 16;
    }}
    server {{
        listen {IP['lb']}:{LB_PORT};
        client_max_body_size 64m;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_connect_timeout 2s;
        proxy_read_timeout 60s;
        proxy_send_timeout 60s;
        location / {{ proxy_pass http://receivers; }}
    }}
""", log_format='$msec $request_method $request_uri $status "$upstream_addr" "$upstream_status"'))
    E.access_log = f"{d}/access.log"
    E.nginx = start_in("lb", ["nginx", "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log"], "nginx")
    url = f"http://{IP['lb']}:{LB_PORT}/healthz"
    wait_for(lambda: ns_http("site-1", "GET", url)[0] == 200, 30, "the receivers' /healthz through nginx", step=0.2)
    H.check(ns_http("site-1", "GET", url)[0] == 200, "nginx answers a second time (round robin)")


ACCESS_LINE = re.compile(r'^(\S+) PUT /v1/sessions/([0-9a-f]+)\S* (\d+) "([^"]*)" "([^"]*)"$')


def uploads():
    """[(time, session id, status, upstream addresses, upstream statuses)] of every PUT nginx
    answered, in order (the addresses and statuses of every receiver it tried, comma-separated)."""
    out = []
    try:
        with open(E.access_log) as f:
            for line in f:
                m = ACCESS_LINE.match(line.rstrip("\n"))
                if m:
                    out.append((float(m[1]), m[2], int(m[3]), m[4], m[5]))
    except FileNotFoundError:
        pass
    return out


def ok_uploads(since=0.0, via=None):
    """Uploads answered 2xx after since (time), by the receiver via when given (the last upstream
    nginx tried)."""
    n = 0
    for t, _, status, addrs, _ in uploads():
        if t >= since and 200 <= status < 300:
            if via is None or addrs.split(",")[-1].strip() == f"{IP[via]}:{RX_PORT}":
                n += 1
    return n


# -- parsers -------------------------------------------------------------------------------------

def parser_conf(p):
    url, peer = PARSER_RECEIVERS[p]
    receiver = (f"url = {RX_URL[url]}\npeers = {RX_URL[peer]}\ntoken = {E.worker_token}\nwait = 2s\n"
                f"visibility = {VISIBILITY_S}s\n")
    queue = f"backend = jetstream\nservers = {E.nats.urls()}\nreplicas = 3\n"
    return lfhosts.parser_conf(os.path.join(E.dir, p), f"{IP[p]}:{PARSER_PORT}", receiver,
                               os.path.join(E.dir, "rxa", "keys"), IP["db"], E.db, E.logtypes, queue=queue)


def parser_start(p):
    E.parsers[p] = start_in(p, [H.binary("logferry-parser"), "--config", parser_conf(p)], p)
    wait_healthy(f"http://{IP[p]}:{PARSER_PORT}/healthz", E.parsers[p], f"parser {p}")


def parser_metric(p, name):
    return metric(f"http://{IP[p]}:{PARSER_PORT}/metrics", name)


# -- uploaders -----------------------------------------------------------------------------------

def uploader_setup(site):
    """The uploader's configuration and key; its site registered (before the receivers start, so
    that neither refuses a first upload it has not heard of yet)."""
    conf, pubkey = lfuploader.agent_setup(os.path.join(E.dir, f"uploader-{site}"), site, E.sites_dir,
                                          f"http://{IP['lb']}:{LB_PORT}", "500ms", timeout=120 * SCALE)
    register_site(site, pubkey)
    return conf


def uploader_start(host, site, conf):
    p = start_in(host, [H.binary("logferry-uploader"), "--config", conf, "run"], f"uploader-{site}")

    def ok():
        if p.poll() is not None:
            raise H.TestFailure(f"uploader of {site} exited with {p.returncode}:\n{tail(p.log_path)}")
        return ns_http(host, "GET", "http://127.0.0.1:8441/healthz", timeout=2)[0] == 200
    wait_for(ok, 30, f"the uploader of {site}", step=0.2)
    return p


# -- MySQL ---------------------------------------------------------------------------------------

def loaded():
    try:
        return int(E.db.query("SELECT COUNT(*) FROM sessions", "logferry")[0][0])
    except (RuntimeError, IndexError):
        return -1


def releaser():
    """Moves the batches into the sites' watched folders (renames: whole files), one every
    RELEASE_EVERY_S, the rest at once when E.hurry is set."""
    try:
        for batch in E.batches:
            for t in batch:
                os.rename(os.path.join(E.gen_dir, t["path"]), os.path.join(E.sites_dir, t["path"]))
            E.released += len(batch)
            E.hurry.wait(RELEASE_EVERY_S)
    except OSError as e:
        E.release_error = e


def queue_detail():
    c = consumer_state()
    return (f"queue stream {stream_state(Q_STREAM)}, dead letters {stream_state(DLQ_STREAM)}, "
            f"consumer pending {c.get('num_pending')} unacked {c.get('num_ack_pending')}; "
            f"p1 log ends:\n{tail(E.parsers['p1'].log_path, 8)}p2 log ends:\n{tail(E.parsers['p2'].log_path, 8)}")


# -- the test ------------------------------------------------------------------------------------

def setup():
    E.dir = H.scratch_dir("lfjscluster-")
    NET.up()
    for h in HOSTS:
        # TCP gives up on a silent peer in ~3 s instead of ~15 min: a cut link or a SIGKILLed node's
        # host shows quickly to nats-server's routes and to the clients (lfnats.py says why). On
        # p1 it also ends a blob request sent on a kept-alive connection just before the silent
        # cut within seconds: with the default, it waits out the fetch's 300 s timeout
        NET.sysctl(h, "net.ipv4.tcp_retries2", 3)
    E.sites_dir = os.path.join(E.dir, "sites")
    E.gen_dir, E.truth, E.logtypes = lfhosts.generate_sessions(E.dir, seed=2121, sessions=SESSIONS, users=30,
                                                               days=14, max_size="24K", timeout=120 * SCALE)
    order = list(E.truth)
    random.Random(21).shuffle(order)
    E.batches = [order[i:i + BATCH] for i in range(0, len(order), BATCH)]
    E.released, E.release_error = 0, None
    E.hurry = threading.Event()
    E.parsers = {}
    E.figures = {}
    for t in E.truth:
        os.makedirs(os.path.join(E.sites_dir, os.path.dirname(t["path"])), exist_ok=True)
    sites = sorted({t["site"] for t in E.truth})
    H.check(len(sites) == 2, f"two sites generated: {sites}")

    nats_start()
    E.db = lfmariadb.MariaDB(os.path.join(E.dir, "mariadb", "data"), port=3306, bind=IP["db"],
                             prefix=in_ns("db", []), buffer_pool="128M")
    E.db.start(timeout=60 * SCALE)
    receivers_setup()
    uploader_confs = [uploader_setup(site) for site in sites]
    for rx in ("rxa", "rxb"):
        receiver_start(rx)
    nginx_start()
    run_ok(in_ns("p1", [H.binary("logferry-parser"), "--config", parser_conf("p1"), "db", "migrate"]),
           "parser db migrate")
    for p in PARSER_RECEIVERS:
        parser_start(p)
    leader = E.nats.wait_stream_ready(Q_STREAM, timeout=60 * SCALE)
    st = E.nats.stream_info(Q_STREAM)
    H.check(st["config"]["num_replicas"] == 3, f"the queue's stream has 3 replicas: {st['config']}")
    log(f"the queue's stream leader is {leader}, replicas {[r['name'] for r in st['cluster']['replicas']]}")
    E.uploaders = [uploader_start(f"site-{i + 1}", site, conf)
                   for i, (site, conf) in enumerate(zip(sites, uploader_confs))]


def chaos_nats():
    leader = E.nats.wait_stream_ready(Q_STREAM, timeout=30 * SCALE)
    victim = E.nats.server(leader)
    others = [s for s in E.nats.servers if s is not victim]
    wait_for(lambda: loaded() > 0, 90, "the first sessions in MySQL", detail=queue_detail)
    log(f"nats: SIGKILL {victim.name}, the leader of {Q_STREAM}")
    t0 = time.time()
    victim.kill()
    new = E.nats.wait_stream_ready(Q_STREAM, among=others, timeout=60 * SCALE)
    E.figures["nats: stream leader elected"] = time.time() - t0
    log(f"nats: {new} leads {Q_STREAM} after {time.time() - t0:.1f}s")
    wait_for(lambda: ok_uploads(since=t0) >= 5, 60, "uploads answered 2xx with a NATS node down")
    victim.start(timeout=30 * SCALE)
    t1 = time.time()
    E.nats.wait_ready(timeout=60 * SCALE)
    # every stream, the shared key-value buckets' too, before the next step restarts a receiver:
    # one started while a bucket's stream is still settling can exit 1 (its first watch of the
    # bucket gives up after one 1 s API wait, not retried within the start's 10 s)
    leaders = E.nats.wait_streams_ready(timeout=60 * SCALE)
    H.check({Q_STREAM, DLQ_STREAM} <= set(leaders), f"the queue's streams are known: {leaders}")
    E.figures["nats: restarted node rejoined, replicas current"] = time.time() - t1
    log(f"nats: {victim.name} back in {time.time() - t1:.1f}s, routes {E.nats.routes()}, stream leaders {leaders}")


def chaos_receiver():
    wait_for(lambda: ok_uploads(via="rxa") >= 5, 60, "uploads answered by receiver A")
    # killed while it handles an upload if that can be caught within a while (the summary says)
    in_progress = f"{RX_URL['rxa']}/metrics"
    deadline = time.time() + 20 * SCALE
    E.rxa_in_progress = 0
    while time.time() < deadline and not E.rxa_in_progress:
        E.rxa_in_progress = metric(in_progress, "lf_receiver_uploads_in_progress") or 0
    t0 = time.time()
    E.rx["rxa"].kill()
    log("rxa: SIGKILLed receiver A during uploads")
    E.rx["rxa"].wait()
    wait_for(lambda: ok_uploads(since=t0, via="rxb") >= 5, 60, "uploads going on through receiver B")
    receiver_start("rxa")
    E.figures["rxa: restarted, healthy"] = time.time() - t0
    t1 = time.time()
    wait_for(lambda: ok_uploads(since=t1, via="rxa") >= 1, 60, "receiver A answering 2xx again through nginx")
    E.figures["rxa: answering 2xx again after restart"] = time.time() - t1
    log(f"rxa: back, answering uploads {time.time() - t1:.1f}s after its restart")


def chaos_parser():
    name = "lf_parser_sessions_total"
    base = parser_metric("p2", name) or 0
    wait_for(lambda: (parser_metric("p2", name) or 0) >= base + 3, 90, "parser p2 to be parsing",
             detail=queue_detail)
    log("p2: SIGKILL parser p2 while it parses")
    t0 = time.time()
    E.parsers["p2"].kill()
    E.parsers["p2"].wait()
    parser_start("p2")
    wait_for(lambda: (parser_metric("p2", name) or 0) >= 1, 90, "the restarted parser p2 to load a session",
             detail=queue_detail)
    E.figures["p2: restarted, loading again"] = time.time() - t0
    log(f"p2: restarted, loading again after {time.time() - t0:.1f}s")


def log_since(path, offset):
    try:
        with open(path, errors="replace") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return ""


def chaos_cut():
    p1_log = E.parsers["p1"].log_path
    offset = os.path.getsize(p1_log)
    rxb = f"{IP['rxb']}:{RX_PORT}"
    before = loaded()
    log("cut: the link between parser p1 and receiver B; the sessions not yet released go out at once")
    t0 = time.time()
    NET.sever("p1", "rxb")
    E.hurry.set()  # sessions for both receivers while the link is down, however slow the build
    # p1 holds a session B stores (it waits for B, keeping the message) while the rest goes on
    wait_for(lambda: any(rxb in line and ("unavailable" in line or "holding" in line)
                         for line in log_since(p1_log, offset).splitlines()), 90,
             f"p1 to log that it holds a session of receiver B ({rxb}) across the cut", detail=queue_detail)
    t_hold = time.time()
    E.figures["cut: p1 holding a session of B after"] = t_hold - t0
    # held past twice the ack wait: p1 keeps the message while it waits, so no other parser gets it
    # again meanwhile (the end state would show a copy or a dead letter)
    wait_for(lambda: loaded() >= before + 10 and time.time() - t_hold > 2 * VISIBILITY_S, 90,
             f"sessions loaded while p1 and B are cut apart, for more than {2 * VISIBILITY_S}s", detail=queue_detail)
    NET.sever("p1", "rxb", False)
    E.figures["cut: link cut for"] = time.time() - t0
    t1 = time.time()
    done = parser_metric("p1", "lf_parser_sessions_total") or 0
    wait_for(lambda: (parser_metric("p1", "lf_parser_sessions_total") or 0) > done, 60,
             "p1 to load sessions again once the link is back", detail=queue_detail)
    E.figures["cut: p1 loading again after restore"] = time.time() - t1
    log(f"cut: restored after {t1 - t0:.1f}s; p1 loading again {time.time() - t1:.1f}s later")


def check_bytes():
    """Every event's raw message is the very bytes of the source lines it came from (a message
    with continuation lines spans several)."""
    files = {os.path.basename(t["path"]): os.path.join(E.sites_dir, t["path"]) for t in E.truth}
    rows = E.db.query("SELECT s.source_path, e.line, SHA2(e.message, 256) FROM events e "
                      "JOIN sessions s USING (session_id)", "logferry")
    lines_of = {}
    bad = []
    for path, line, digest in rows:
        name = os.path.basename(path or "")
        if name not in lines_of:
            with open(files[name], "rb") as f:
                lines_of[name] = f.read().split(b"\n")
        # the message's own line count is not in the row: try the spans from the line on
        lines = lines_of[name]
        i = int(line) - 1
        span = b""
        for k in range(i, min(len(lines), i + 200)):
            span = lines[k] if k == i else span + b"\n" + lines[k]
            if hashlib.sha256(span).hexdigest() == digest:
                break
        else:
            bad.append(f"{name} line {line}")
    H.check(not bad, f"{len(bad)} of {len(rows)} events differ from their source lines: {bad[:5]}")
    return len(rows)


def test_cluster_under_chaos():
    t_start = time.time()
    setup()
    log(f"setup done in {time.time() - t_start:.0f}s: {len(E.truth)} sessions in {len(E.batches)} batches, "
        f"one every {RELEASE_EVERY_S}s")
    rel = threading.Thread(target=releaser, daemon=True)
    rel.start()
    chaos_nats()
    chaos_receiver()
    chaos_parser()
    chaos_cut()
    E.hurry.set()
    rel.join(60)
    H.check(E.release_error is None and E.released == len(E.truth),
            f"released {E.released} of {len(E.truth)}: {E.release_error}")

    log("waiting for every session in MySQL and the queue to drain")
    t0 = time.time()
    wait_for(lambda: loaded() >= len(E.truth), 180, f"{len(E.truth)} sessions in MySQL",
             step=1, detail=lambda: f"have {loaded()}; {queue_detail()}")
    wait_for(lambda: stream_state(Q_STREAM).get("messages") == 0 and not consumer_state().get("num_ack_pending")
             and not consumer_state().get("num_pending"), 60, "the queue's stream to drain", detail=queue_detail)
    E.figures["drain after the last chaos"] = time.time() - t0

    ups = uploads()
    ok_ids = {sid for _, sid, st, _, _ in ups if 200 <= st < 300}
    # one row each (its primary key); a second load would show in the events, which verify counts
    in_db = {r[0] for r in E.db.query("SELECT session_id FROM sessions", "logferry")}
    H.check(not ok_ids - in_db, f"answered 2xx but not in MySQL: {sorted(ok_ids - in_db)[:5]}")
    H.check(not in_db - ok_ids, f"in MySQL but never answered 2xx: {sorted(in_db - ok_ids)[:5]}")
    problems = lfsessions.verify(E.db, E.truth)
    H.check(not problems, f"{len(problems)} problems against the ground truth: {problems[:5]}")
    events = check_bytes()
    dlq = stream_state(DLQ_STREAM)
    failures = E.db.query("SELECT session_id, stage, reason FROM parse_failures LIMIT 5", "logferry")
    H.check(dlq.get("messages") == 0, f"dead letters: {dlq}; parse failures: {failures}")
    # every outage here is one a parser waits out holding its session: none is a session's failure
    # (a fetch from a receiver that does not hold the session would be one, even if a retry healed it)
    H.check(not failures, f"parse failures recorded: {failures}")
    H.check(stream_state(Q_STREAM).get("messages") == 0, f"the queue's stream: {stream_state(Q_STREAM)}")
    for rx in ("rxa", "rxb"):
        st = queue_stats(rx)
        H.check(st["depth"] == 0 and st["in_flight"] == 0 and st["dlq_depth"] == 0, f"{rx}'s queue statistics: {st}")

    statuses = {}
    for _, _, st, _, _ in ups:
        statuses[st] = statuses.get(st, 0) + 1
    per_rx = {rx: ok_uploads(via=rx) for rx in ("rxa", "rxb")}
    H.check(all(per_rx.values()), f"nginx spread the uploads over both receivers: {per_rx}")
    log("summary:")
    log(f"  sessions: {len(E.truth)} generated, {len(ok_ids)} answered 2xx, {len(in_db)} in MySQL (once each), "
        f"{events} events byte-identical")
    log(f"  nginx answers to PUT: {dict(sorted(statuses.items()))}; 2xx by receiver {per_rx}")
    log(f"  dead letters 0, parse failures 0, queue stream empty; receiver A was killed with "
        f"{E.rxa_in_progress:.0f} uploads in progress")
    for what, s in E.figures.items():
        log(f"  {what}: {s:.1f}s")

    for p, proc in E.parsers.items():
        H.check(proc.poll() is None, f"parser {p} exited with {proc.returncode}")
        H.check(H.stop(proc, timeout=60) == 0, f"parser {p} exits 0 on SIGTERM:\n{tail(proc.log_path)}")
    for proc in E.uploaders:
        H.check(H.stop(proc, timeout=60) == 0, f"an uploader exits 0 on SIGTERM:\n{tail(proc.log_path)}")
    for rx, proc in E.rx.items():
        H.check(H.stop(proc, timeout=60) == 0, f"receiver {rx} exits 0 on SIGTERM:\n{tail(proc.log_path)}")
    H.stop(E.nginx)
    E.nats.stop()
    log(f"done in {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    why = lfnetns.available() or lfnats.missing()
    if why:
        print(f"SKIP: {why}", flush=True)
        sys.exit(77)
    H.run_tests([test_cluster_under_chaos])
