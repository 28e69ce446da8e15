"""tests/lib/lfnats.py, the NATS JetStream servers the JetStream backend's tests and benchmarks run
on: that its clusters really form, lose and regain a node, and survive a cut link, as the
monitoring endpoints (/routez, /jsz, /varz, /healthz) tell; no NATS client is involved.

  loopback   3 nodes form (routes to the 2 others each, one JetStream meta leader agreed on);
             the leader SIGKILLed: the other 2 elect another; restarted on its store: back
  single     user/password and TLS required (the INFO a client is greeted with says so), a stop
             and start keeps ports and store, SIGTERM exits
  serve      `lfnats.py serve` prints its URLs, and its servers die with their parent, or with it
             when it is SIGKILLed itself
  namespaces 3 nodes on 3 network-namespace hosts (veth pairs to a bridge, lfnetns); one host's
             link cut (blackhole routes both ways): the 2 others see it gone and keep a leader;
             restored: it is back

Exit 77 when nats-server is not installed; without root or `ip netns`, the loopback parts run and
the exit is 77 when they pass.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import lfharness as H  # noqa: E402
import lfnats  # noqa: E402
import lfnetns  # noqa: E402

LFNATS = os.path.join(H.SOURCE_DIR, "tests", "lib", "lfnats.py")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too (its parent has not reaped it yet)
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def check_leader_kept(c, nodes, lost):
    """The nodes in nodes agree on a leader among them, in /jsz and in /varz alike."""
    leader = c.meta_leader(nodes)
    H.check(leader and leader != lost.name, f"a leader among {[s.name for s in nodes]}: {leader}")
    for s in nodes:
        v = s.varz()
        H.check(v["jetstream"]["meta"]["leader"] == leader, f"/varz of {s.name}: {v['jetstream']['meta']}")
        H.check(v["jetstream"]["meta"]["cluster_size"] == 3, f"/varz of {s.name}: {v['jetstream']['meta']}")
    return leader


def test_loopback_cluster():
    c = lfnats.NatsCluster(3).start()
    t0 = time.time()
    c.wait_ready(timeout=60)
    log(f"3 nodes on loopback formed in {time.time() - t0:.1f}s: {c.urls()}")
    leader = c.meta_leader()
    H.check(leader in ("n1", "n2", "n3"), f"meta leader: {leader}")
    H.check(c.routes() == {"n1": ["n2", "n3"], "n2": ["n1", "n3"], "n3": ["n1", "n2"]}, f"routes: {c.routes()}")
    for s in c.servers:
        H.check(s.healthz()[0] == 200, f"/healthz of {s.name}: {s.healthz()}")
        H.check(s.num_routes() == 2, f"{s.name} has {s.num_routes()} routes")
    info = c.jetstream_info()
    H.check(info["meta_cluster"]["cluster_size"] == 3 and info["meta_cluster"]["leader"] == leader,
            f"/jsz meta_cluster: {info['meta_cluster']}")
    H.check(c.stream_info("LF_NONE") is None, "no stream made yet")
    urls = c.urls().split(",")
    H.check(len(urls) == 3 and all(u.startswith("nats://127.0.0.1:") for u in urls), f"urls: {c.urls()}")

    victim = c.server(leader)
    pid = victim.pid
    log(f"SIGKILL {victim.name}, the meta leader")
    victim.kill()
    H.check(not alive(pid), f"{victim.name} killed")
    others = [s for s in c.servers if s is not victim]
    t0 = time.time()
    c.wait_ready(among=others, timeout=60)
    new_leader = check_leader_kept(c, others, victim)
    log(f"the other two dropped it and elected {new_leader} in {time.time() - t0:.1f}s")

    store = os.path.join(victim.store_dir, "jetstream")
    H.check(os.path.isdir(store), f"{victim.name}'s store is kept: {store}")
    port = victim.port
    victim.start()
    H.check(victim.port == port, "restarted on its port")
    t0 = time.time()
    c.wait_ready(timeout=60)
    log(f"{victim.name} rejoined in {time.time() - t0:.1f}s; leader {c.meta_leader()}")
    for s in c.servers:
        H.check(s.num_routes() == 2, f"{s.name} has {s.num_routes()} routes after the rejoin")
    H.check("Starting JetStream" in victim.log_since_start(), "its log goes on in the same file")
    H.wait_for(lambda: victim.healthz()[0] == 200, f"/healthz of {victim.name} after its rejoin", timeout=30)

    pids = [s.pid for s in c.servers]
    c.stop()
    H.check(not any(alive(p) for p in pids), "SIGTERM ends every node")


def info_line(host, port):
    """The INFO a NATS server greets every new client connection with (read, nothing sent)."""
    with socket.create_connection((host, port), timeout=5) as sock:
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    line = data.split(b"\r\n", 1)[0].decode()
    H.check(line.startswith("INFO "), f"greeting: {line!r}")
    return json.loads(line[5:])


def test_single_server_auth_tls():
    s = lfnats.NatsServer(user="lf", password="secret", tls=True).start().wait_healthy()
    H.check(s.url(auth=True) == f"nats://lf:secret@127.0.0.1:{s.port}", s.url(auth=True))
    for k in ("ca", "server_cert", "server_key", "client_cert", "client_key"):
        H.check(os.path.exists(s.tls[k]), f"TLS file {k}: {s.tls[k]}")
    info = info_line("127.0.0.1", s.port)
    H.check(info.get("auth_required") and info.get("tls_required") and info.get("jetstream"), f"INFO: {info}")
    v = s.varz()
    H.check(v["server_name"] == "n1" and v["port"] == s.port and v["http_port"] == s.monitor_port, f"/varz: {v}")
    H.check(s.meta_leader() == "n1" and s.jsz()["config"]["store_dir"].startswith(s.store_dir), f"/jsz: {s.jsz()}")
    with open(s.config_path) as f:
        H.check("authorization" in f.read(), "the config file has the credentials")
    ports = (s.port, s.monitor_port)
    rc = s.stop()
    # nats-server 2.9 exits 1 after a clean shutdown on SIGTERM
    H.check(rc in (0, 1) and "Server Exiting" in s.log_since_start(), f"SIGTERM: exit {rc}")
    s.start().wait_healthy()
    H.check((s.port, s.monitor_port) == ports, "same ports after a restart")
    s.kill()

    plain = lfnats.NatsServer().start().wait_healthy()
    info = info_line("127.0.0.1", plain.port)
    H.check(not info.get("auth_required") and not info.get("tls_required"), f"INFO: {info}")
    H.check(plain.url() == f"nats://127.0.0.1:{plain.port}", plain.url())
    plain.kill()


def serve(parent_pid, *args):
    p = H.start([sys.executable, LFNATS, "serve", "--parent-pid", str(parent_pid), "--json", *args],
                stdout=subprocess.PIPE)
    line = p.stdout.readline()
    if not line:
        raise H.TestFailure(f"serve printed nothing and exited with {p.wait(10)}")
    return p, json.loads(line)


def test_serve():
    parent = H.start(["sleep", "300"])
    p, out = serve(parent.pid, "--nodes", "3")
    H.check(len(out["urls"].split(",")) == 3 and len(out["servers"]) == 3, f"serve: {out}")
    pids = [s["pid"] for s in out["servers"]]
    H.check(all(alive(x) for x in pids), "its servers run")
    status, _, body = H.http("GET", int(out["servers"][0]["monitor"].rsplit(":", 1)[1]), "/routez")
    H.check(status == 200 and json.loads(body)["num_routes"] == 2, f"/routez: {status} {body[:200]}")
    H.stop(parent, signal.SIGKILL)
    H.check(p.wait(20) == 0, f"serve exits 0 when its parent is gone: {p.returncode}")
    H.wait_for(lambda: not any(alive(x) for x in pids), "the servers to go with it", timeout=10)

    # serve itself SIGKILLed: no atexit runs, its servers still die (PR_SET_PDEATHSIG)
    p, out = serve(os.getpid(), "--user", "u", "--password", "p")
    pid = out["servers"][0]["pid"]
    H.check(out["urls"].startswith("nats://127.0.0.1:") and alive(pid), f"serve: {out}")
    H.stop(p, signal.SIGKILL)
    H.wait_for(lambda: not alive(pid), "a SIGKILLed serve's server to die with it", timeout=10)


HOSTS = {f"nats-{i}": [("br0", f"10.232.0.{10 + i}")] for i in (1, 2, 3)}


def test_namespace_cluster():
    net = lfnetns.Network("lfnats", HOSTS).up()
    for h in HOSTS:
        # nats-server 2.9 pings a route only when it has been idle: the meta leader, which keeps
        # sending to a cut-off follower, would hold that route for the ~15 minutes TCP takes to
        # give up by default. With 3 retransmissions TCP gives up in about 3 seconds.
        net.sysctl(h, "net.ipv4.tcp_retries2", 3)
    c = lfnats.NatsCluster(hosts=[(net.addresses(h)[0], net.in_ns(h, [])) for h in HOSTS])
    c.start()
    t0 = time.time()
    c.wait_ready(timeout=60)
    log(f"3 nodes on 3 hosts formed in {time.time() - t0:.1f}s: {c.urls()}")
    for s, h in zip(c.servers, HOSTS):
        H.check(os.readlink(f"/proc/{s.pid}/exe").endswith("nats-server"), "`ip netns exec` became nats-server")
        H.check(s.varz()["host"] == net.addresses(h)[0], f"{s.name} listens on its host's address")
    H.check(c.urls() == ",".join(f"nats://10.232.0.{10 + i}:{c[i - 1].port}" for i in (1, 2, 3)), c.urls())

    # the leader's host, so that the others must elect one
    cut = c.server(c.meta_leader())
    host = list(HOSTS)[c.servers.index(cut)]
    others = [s for s in c.servers if s is not cut]
    log(f"cutting {host} ({cut.name}, the meta leader) from the others")
    net.isolate(host)
    t0 = time.time()
    c.wait_ready(among=others, timeout=60)
    leader = check_leader_kept(c, others, cut)
    log(f"the others saw {cut.name} gone and elected {leader} in {time.time() - t0:.1f}s")
    H.wait_for(lambda: cut.route_ids() == [], f"{cut.name} to see its routes gone", timeout=30)
    H.check(cut.running(), f"{cut.name} still runs, alone")

    def lagging():
        replicas = c.server(leader).jsz(streams=False)["meta_cluster"].get("replicas") or []
        return [r for r in replicas if r["name"] == cut.name and not r["current"]]
    H.wait_for(lagging, f"the new leader's /jsz to show {cut.name} not current", timeout=30)
    net.isolate(host, False)
    t0 = time.time()
    c.wait_ready(timeout=60)
    log(f"restored: {cut.name} back in {time.time() - t0:.1f}s, routes {c.routes()}, leader {c.meta_leader()}")

    pids = [s.pid for s in c.servers]
    c.kill()
    H.check(not any(alive(p) for p in pids), "SIGKILL ends every node in its namespace")
    net.down()


if __name__ == "__main__":
    H.skip_in_sanitizer_build("the NATS harness's self-test")
    reason = lfnats.missing()
    if reason:
        print(f"skipped: {reason}", flush=True)
        sys.exit(77)
    log(f"nats-server {lfnats.version()}")
    tests = [test_loopback_cluster, test_single_server_auth_tls, test_serve]
    no_netns = lfnetns.available()
    if not no_netns:
        tests.append(test_namespace_cluster)
    try:
        H.run_tests(tests)
    except SystemExit as e:
        if e.code == 0 and no_netns:
            print(f"skipped test_namespace_cluster: {no_netns}", flush=True)
            sys.exit(77)
        raise
