"""Private NATS servers with JetStream for tests, benchmarks and manual runs.

Each server has its own scratch directory (config file nats.conf, log nats.log, JetStream file store
store/), its own client, cluster and HTTP monitoring ports, and is killed when the Python process
that started it ends: at exit, on SIGTERM/SIGHUP, and, through PR_SET_PDEATHSIG, even when that
process is itself killed with SIGKILL. Readiness is read from the monitoring endpoints (/varz,
/routez, /jsz, /healthz), never waited for with fixed sleeps. Standard library only; needs Debian's
nats-server (and openssl for TLS).

    import lfnats
    c = lfnats.NatsCluster(3).start().wait_ready()    # 3 nodes on loopback
    c.urls()                     # "nats://127.0.0.1:P1,nats://127.0.0.1:P2,nats://127.0.0.1:P3"
    c.meta_leader()              # "n2": the JetStream meta leader, as the nodes agree on it
    c.servers[0].kill()          # SIGKILL; .stop() is SIGTERM; .start() restarts on its store
    c.wait_stream_ready("LF_Q_sessions", among=c.servers[1:])   # a leader there, its replicas current
    c.wait_streams_ready()       # the same for every stream, key-value buckets' included
    s = lfnats.NatsServer(user="u", password="p", tls=True).start().wait_healthy()
    s.url(auth=True), s.tls      # "nats://u:p@127.0.0.1:P", {"ca": ..., "client_cert": ...}

On network namespace hosts (lfnetns), give each node (address, prefix):
    NatsCluster(hosts=[("10.232.0.2", net.in_ns("a", [])), ...]); the monitoring endpoints are then
    read from inside the node's namespace.

`python3 lfnats.py serve [--nodes 3] [--user U --password P] [--tls] [--json] [--parent-pid PID]`
starts a server or a cluster, prints its client URLs (or, with --json, one JSON line with the URLs,
monitoring ports, directories and TLS files) and stops when the parent process is gone.

What nats-server 2.9 (Debian 12's 2.9.10) does that a test must know:
- A cluster block without routes is fatal with JetStream ("JetStream cluster requires configured
  routes"): a NatsServer has a cluster block only when given cluster_name (NatsCluster does that).
- /routez names routes by server id only (no remote_name): NatsCluster maps ids through /varz.
- A route is pinged only when idle; a meta leader keeps sending to a follower cut off by a silent
  link, so it keeps that route until TCP gives up (~15 min by default): on namespace hosts, set
  net.ipv4.tcp_retries2 low (lfnetns.Network.sysctl) to see a cut in seconds.
- An isolated former meta leader goes on naming itself leader in its own /jsz for a while: ask the
  nodes that kept a quorum (meta_leader(among=...)).
- SIGTERM shuts down cleanly (log: "Server Exiting..") but exits with status 1.
- The servers die with the thread that started them (PR_SET_PDEATHSIG): start them from a thread
  that lives as long as they should.
"""
import atexit
import ctypes
import http.client as httpclient
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness  # noqa: E402
import lfmariadb  # noqa: E402

SERVER_PATHS = ("/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server")
_servers = []


def server_path():
    """The nats-server program ($LF_NATS_SERVER, e.g. another version's), or None when it is not
    installed."""
    if os.environ.get("LF_NATS_SERVER"):
        p = os.environ["LF_NATS_SERVER"]
        return p if os.access(p, os.X_OK) else None
    for p in SERVER_PATHS:
        if os.access(p, os.X_OK):
            return p
    return shutil.which("nats-server")


def missing():
    """None when servers can be started here, else why not (for a test's exit 77)."""
    if not server_path():
        return ("nats-server is not installed (apt-get install nats-server; scripts/install-deps.sh does)"
                + (f"; LF_NATS_SERVER={os.environ['LF_NATS_SERVER']} is not a program"
                   if os.environ.get("LF_NATS_SERVER") else ""))
    return None


def version():
    out = subprocess.run([server_path(), "--version"], capture_output=True, text=True).stdout
    return out.strip().rsplit("v", 1)[-1]


# -- the way out ---------------------------------------------------------------------------------

def _kill_all():
    for s in list(_servers):
        s.kill()


def _leave(signum, frame):
    raise SystemExit(128 + signum)  # atexit then kills the servers


def _register(server):
    if server in _servers:
        return
    if not _servers:
        atexit.register(_kill_all)
        # SIGTERM's default action would end this process without atexit, leaving servers behind
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) == signal.SIG_DFL:
                    signal.signal(sig, _leave)
    _servers.append(server)


def _die_with_parent():
    """In the child before exec: SIGKILL when the thread that started it ends (a harness killed
    with SIGKILL leaves no server behind). `ip netns exec` execs, so this reaches nats-server."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent was gone already
        os._exit(1)


_FETCH = """import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
except OSError:
    code, body = 0, b""
sys.stdout.write(str(code) + "\\n")
sys.stdout.flush()
sys.stdout.buffer.write(body)
"""


class _PortTaken(Exception):
    pass


class NatsServer:
    def __init__(self, base_dir=None, name="n1", bind="127.0.0.1", port=None, monitor_port=None,
                 cluster_name=None, cluster_port=None, routes=(), user=None, password=None, tls=False,
                 tls_verify=False, prefix=(), ping_interval="1s", ping_max=3, max_file_store="1G",
                 max_memory_store="64M", extra_config=""):
        """base_dir: its directory (a scratch one by default); bind: the address all its ports
        listen on; port/monitor_port/cluster_port: fixed ports (free ones by default);
        cluster_name: join a cluster (a cluster block listening on cluster_port, with routes, a
        list of "host:port" of the others); user/password: required of clients; tls: clients
        must use TLS (files made with openssl in base_dir/tls, or a dict like
        lfmariadb.tls_files()'s), tls_verify: and present a client certificate of the CA;
        prefix: a command put before nats-server (e.g. `ip netns exec NS`); ping_interval/ping_max:
        how soon a silent client or route is dropped (short, so a cut link shows in seconds);
        extra_config: text appended to the config file."""
        self.dir = os.path.abspath(base_dir or lfharness.scratch_dir("lfnats-"))
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.bind = bind
        self.fixed_ports = {"port": port is not None, "monitor_port": monitor_port is not None,
                            "cluster_port": cluster_port is not None}
        self.port = port or lfharness.free_port()
        self.monitor_port = monitor_port or lfharness.free_port()
        self.cluster_name = cluster_name
        self.cluster_port = (cluster_port or lfharness.free_port()) if cluster_name else None
        self.routes = list(routes)
        self.user = user
        self.password = password
        self.tls = tls
        self.tls_verify = tls_verify
        self.prefix = list(prefix)
        self.ping_interval = ping_interval
        self.ping_max = ping_max
        self.max_file_store = max_file_store
        self.max_memory_store = max_memory_store
        self.extra_config = extra_config
        self.store_dir = os.path.join(self.dir, "store")
        self.config_path = os.path.join(self.dir, "nats.conf")
        self.log_path = os.path.join(self.dir, "nats.log")
        self.stderr_path = os.path.join(self.dir, "nats.stderr")  # what it says before its log is open
        self.proc = None
        self._log_start = 0

    # -- configuration -----------------------------------------------------------------------------
    @property
    def host(self):
        """The address clients and monitoring requests use."""
        return "127.0.0.1" if self.bind in ("0.0.0.0", "") else self.bind

    def _tls_files(self):
        if self.tls is True:
            d = os.path.join(self.dir, "tls")
            if not os.path.exists(os.path.join(d, "server.pem")):
                os.makedirs(d, exist_ok=True)
                san = "IP:127.0.0.1,DNS:localhost" + (f",IP:{self.host}" if self.host != "127.0.0.1" else "")
                self.tls = lfmariadb.tls_files(d, san)
            else:
                self.tls = {k: os.path.join(d, v) for k, v in _TLS_NAMES.items()}
        return self.tls

    def write_config(self):
        q = json.dumps  # a quoted string in NATS's config syntax
        lines = [f"server_name: {q(self.name)}",
                 f"listen: {q(f'{self.bind}:{self.port}')}",
                 f"http: {q(f'{self.bind}:{self.monitor_port}')}",
                 f"log_file: {q(self.log_path)}",
                 f"ping_interval: {q(self.ping_interval)}",
                 f"ping_max: {int(self.ping_max)}",
                 "jetstream {",
                 f"  store_dir: {q(self.store_dir)}",
                 f"  max_file_store: {self.max_file_store}",
                 f"  max_memory_store: {self.max_memory_store}",
                 "}"]
        if self.cluster_name:
            lines += ["cluster {",
                      f"  name: {q(self.cluster_name)}",
                      f"  listen: {q(f'{self.bind}:{self.cluster_port}')}",
                      "  routes: [" + ", ".join(q(f"nats-route://{r}") for r in self.routes) + "]",
                      "}"]
        if self.user:
            lines += ["authorization {", f"  user: {q(self.user)}", f"  password: {q(self.password or '')}", "}"]
        if self.tls:
            t = self._tls_files()
            lines += ["tls {", f"  cert_file: {q(t['server_cert'])}", f"  key_file: {q(t['server_key'])}",
                      f"  ca_file: {q(t['ca'])}", f"  verify: {'true' if self.tls_verify else 'false'}",
                      "  timeout: 5", "}"]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n" + self.extra_config + "\n")

    # -- lifecycle ---------------------------------------------------------------------------------
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.running() else None

    def launch(self):
        """Starts the process on the current config and returns at once (see start)."""
        if self.running():
            raise RuntimeError(f"nats-server {self.name} is already running")
        if not server_path():
            raise RuntimeError(missing())
        self.write_config()
        self._log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self._stderr_start = os.path.getsize(self.stderr_path) if os.path.exists(self.stderr_path) else 0
        err = open(self.stderr_path, "ab")
        _register(self)
        self.proc = subprocess.Popen(self.prefix + [server_path(), "-c", self.config_path],
                                     stdout=err, stderr=err, stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        err.close()
        return self

    def wait_up(self, timeout=30.0):
        """Until it accepts clients ("Server is ready" in its log) and answers /varz; _PortTaken
        when it exited because a port was taken."""
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                text = self.log_since_start() + _read(self.stderr_path)[self._stderr_start:]
                if "address already in use" in text:
                    raise _PortTaken(self.name)
                raise RuntimeError(f"nats-server {self.name} exited with {self.proc.returncode}; "
                                   f"{self.log_path} ends:\n{_tail(self.log_path)}{_tail(self.stderr_path)}")
            if "Server is ready" in self.log_since_start() and self.monitor("/varz") is not None:
                return self
            if time.time() > deadline:
                raise TimeoutError(f"nats-server {self.name} not up after {timeout}s; see {self.log_path}")
            time.sleep(0.05)

    def repick_ports(self):
        for attr, fixed in self.fixed_ports.items():
            if not fixed and getattr(self, attr) is not None:
                setattr(self, attr, lfharness.free_port())

    def start(self, timeout=30.0):
        """Starts it (again, on the same ports and store after stop/kill) and waits until it is up;
        a port taken between choosing and binding it is replaced by another at the first start
        of a server outside a cluster whose ports were all chosen here (NatsCluster.start does
        the same for a cluster)."""
        first = self._log_start == 0 and not os.path.exists(self.log_path)
        for attempt in range(5):
            try:
                return self.launch().wait_up(timeout)
            except _PortTaken:
                if not first or self.cluster_name or any(self.fixed_ports.values()):
                    raise RuntimeError(f"a port of nats-server {self.name} is in use; see {self.log_path}")
                self.repick_ports()
        raise RuntimeError(f"could not find free ports for nats-server {self.name}")

    def stop(self, timeout=30.0):
        """Clean shutdown (SIGTERM); returns the exit status."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"nats-server {self.name} did not exit within {timeout}s of SIGTERM")
        return self.proc.returncode if self.proc else None

    def kill(self):
        """Crash: SIGKILL. Its store stays for the next start."""
        if self.running():
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def restart(self, timeout=30.0):
        self.stop()
        return self.start(timeout)

    def log_since_start(self):
        try:
            with open(self.log_path, errors="replace") as f:
                f.seek(self._log_start)
                return f.read()
        except OSError:
            return ""

    # -- clients -----------------------------------------------------------------------------------
    def url(self, auth=False, scheme="nats"):
        """nats://host:port (with user:password@ when auth and set). Clients of a TLS server use TLS
        with self.tls['ca'] as their CA (libnats: natsOptions_SetSecure and LoadCATrustedCertificates)."""
        cred = f"{self.user}:{self.password}@" if auth and self.user else ""
        return f"{scheme}://{cred}{self.host}:{self.port}"

    # -- monitoring --------------------------------------------------------------------------------
    def http_get(self, path, timeout=3.0):
        """(status, body bytes) of GET path on the monitoring port; (0, b"") when nothing answers."""
        if self.prefix:  # from inside its namespace, with curl (a Python there starts slower)
            url = f"http://{self.host}:{self.monitor_port}{path}"
            if shutil.which("curl"):
                p = subprocess.run(self.prefix + ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time",
                                                  str(timeout), url], capture_output=True, timeout=timeout + 10)
                body, _, code = p.stdout.rpartition(b"\n")
            else:
                p = subprocess.run(self.prefix + [sys.executable, "-c", _FETCH, url, str(timeout)],
                                   capture_output=True, timeout=timeout + 10)
                code, _, body = p.stdout.partition(b"\n")
            return int(code or 0), body
        try:
            status, _, body = lfharness.http("GET", self.monitor_port, path, host=self.host, timeout=timeout)
            return status, body
        except (OSError, httpclient.HTTPException):
            return 0, b""

    def monitor(self, path, timeout=3.0):
        """The JSON of a monitoring endpoint (e.g. "/varz"), or None when it does not answer 200."""
        status, body = self.http_get(path, timeout)
        if status != 200:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    def healthz(self):
        """(status, JSON) of /healthz: 200 once it and its JetStream are current."""
        status, body = self.http_get("/healthz")
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, None

    def varz(self):
        return self.monitor("/varz")

    def routez(self):
        return self.monitor("/routez")

    def jsz(self, streams=True):
        return self.monitor("/jsz?streams=true&consumers=true&config=true" if streams else "/jsz")

    def server_id(self):
        """The id it made at its start (/varz server_id; 2.9's /routez names routes by id only)."""
        if getattr(self, "_id_of", None) != self.pid:
            v = self.varz()
            if v is None:
                return None
            self._id, self._id_of = v.get("server_id"), self.pid
        return self._id

    def route_ids(self):
        """Server ids of the servers it has a route to (None when it does not answer)."""
        r = self.routez()
        if r is None:
            return None
        return sorted({rt.get("remote_id") for rt in r.get("routes") or []})

    def num_routes(self):
        r = self.routez()
        return None if r is None else r.get("num_routes", 0)

    def meta_leader(self):
        """The JetStream meta leader's name as this server sees it ("" when none, None when it
        does not answer). A standalone server is its own leader."""
        j = self.monitor("/jsz")
        if j is None:
            return None
        if not self.cluster_name:
            return self.name
        return (j.get("meta_cluster") or {}).get("leader", "")

    def wait_healthy(self, timeout=30.0):
        lfharness.wait_for(lambda: self.healthz()[0] == 200, f"nats-server {self.name}'s /healthz",
                           timeout=timeout, step=0.1)
        return self


_TLS_NAMES = {"ca": "ca.pem", "other_ca": "other-ca.pem", "server_cert": "server.pem", "server_key": "server.key",
              "client_cert": "client.pem", "client_key": "client.key"}


class NatsCluster:
    def __init__(self, n=3, hosts=None, base_dir=None, name="lftest", **server_kw):
        """n servers named n1..nN forming the cluster `name`, each routed to all the others, on
        loopback; or, with hosts, a list of (address, prefix), one server per host (n = len(hosts)),
        each bound to its address and started with its prefix. server_kw go to every NatsServer
        (user, password, tls, ping_interval, ...); with tls one CA and certificate (naming every
        address) serve all nodes."""
        self.dir = os.path.abspath(base_dir or lfharness.scratch_dir("lfnats-cluster-"))
        hosts = list(hosts) if hosts else [("127.0.0.1", ())] * n
        self.name = name
        if server_kw.get("tls") is True:
            d = os.path.join(self.dir, "tls")
            os.makedirs(d, exist_ok=True)
            san = ",".join(["IP:127.0.0.1", "DNS:localhost"] + [f"IP:{a}" for a in sorted({a for a, _ in hosts})
                                                                if a != "127.0.0.1"])
            server_kw["tls"] = lfmariadb.tls_files(d, san)
        self.servers = [NatsServer(os.path.join(self.dir, f"n{i + 1}"), name=f"n{i + 1}", bind=addr, prefix=prefix,
                                   cluster_name=name, **server_kw)
                        for i, (addr, prefix) in enumerate(hosts)]
        self._set_routes()

    def _set_routes(self):
        for s in self.servers:
            s.routes = [f"{o.host}:{o.cluster_port}" for o in self.servers if o is not s]

    def __getitem__(self, i):
        return self.servers[i]

    def __len__(self):
        return len(self.servers)

    def server(self, name):
        return next(s for s in self.servers if s.name == name)

    def start(self, timeout=30.0):
        """Starts every node (each up and accepting clients; see wait_ready for the cluster)."""
        for attempt in range(5):
            try:
                for s in self.servers:
                    s.launch()
                for s in self.servers:
                    s.wait_up(timeout)
                return self
            except _PortTaken:
                self.kill()
                for s in self.servers:
                    s.repick_ports()
                self._set_routes()
        raise RuntimeError("could not find free ports for the cluster")

    def stop(self):
        for s in self.servers:
            s.stop()

    def kill(self):
        for s in self.servers:
            s.kill()

    def running(self):
        return [s for s in self.servers if s.running()]

    def urls(self, auth=False, scheme="nats"):
        """The client URLs of every node, comma-separated, as libnats and the nats tools take them."""
        return ",".join(s.url(auth, scheme) for s in self.servers)

    # -- state -------------------------------------------------------------------------------------
    def route_names(self, server):
        """Names of the nodes server has routes to (ids of servers not in this cluster as they are;
        None when it does not answer)."""
        ids = server.route_ids()
        if ids is None:
            return None
        names = {s.server_id(): s.name for s in self.running()}
        return sorted(names.get(i, i) for i in ids)

    def routes(self):
        """{server name: [names of the servers it has routes to] or None when it does not answer}."""
        return {s.name: self.route_names(s) if s.running() else None for s in self.servers}

    def meta_leader(self, among=None):
        """The meta leader that every running node (or those in `among`, names or servers) agrees
        on, else None."""
        nodes = self._nodes(among)
        seen = {s.meta_leader() for s in nodes}
        if len(seen) == 1:
            leader = seen.pop()
            if leader and leader in {s.name for s in self.servers}:
                return leader
        return None

    def _nodes(self, among):
        if among is None:
            return self.running()
        return [s if isinstance(s, NatsServer) else self.server(s) for s in among]

    def ready(self, among=None):
        """Whether the nodes in among (default: all) each have routes to exactly the others in
        among and agree on a meta leader among them."""
        nodes = self._nodes(among) if among is not None else self.servers
        names = {s.name for s in nodes}
        for s in nodes:
            if not s.running():
                return False
            routes = self.route_names(s)
            if routes is None or set(routes) != names - {s.name}:
                return False
        leader = self.meta_leader(nodes)
        return bool(leader and leader in names)

    def wait_ready(self, among=None, timeout=60.0):
        """Until ready(among); a failure says what every node saw."""
        def ok():
            for s in self._nodes(among) if among is not None else self.servers:
                if not s.running():
                    raise RuntimeError(f"nats-server {s.name} exited with {s.proc.returncode if s.proc else '-'}; "
                                       f"{s.log_path} ends:\n{_tail(s.log_path)}")
            return self.ready(among)
        try:
            lfharness.wait_for(ok, "the NATS cluster to form", timeout=timeout, step=0.2)
        except lfharness.TestFailure as e:
            raise lfharness.TestFailure(f"{e}: routes {self.routes()}, "
                                        f"meta leaders {[(s.name, s.meta_leader()) for s in self.running()]}")
        return self

    def jetstream_info(self):
        """/jsz of the meta leader (of the first node that answers when none is agreed on)."""
        leader = self.meta_leader()
        order = sorted(self.running(), key=lambda s: s.name != leader)
        for s in order:
            j = s.jsz(streams=False)
            if j is not None:
                return j
        return None

    def stream_info(self, name, account=None, among=None):
        """The stream's entry in /jsz (config, state, cluster with leader and replicas) as its
        leader reports it, else as any node that has it; None when no node has it. among: ask only
        those nodes (names or servers; default every running one)."""
        found = None
        for s in self._nodes(among):
            for st in _streams(s.jsz(), account):
                if st.get("name") == name:
                    if (st.get("cluster") or {}).get("leader") == s.name:
                        return st
                    found = found or st
        return found

    def stream_ready(self, name, among=None):
        """The stream's leader when one of the nodes in among (default: the running ones) leads it
        and each replica it lists among them is current, else None (the replicas of nodes outside
        among, e.g. one killed, are not asked to be current)."""
        nodes = self._nodes(among)
        names = {s.name for s in nodes}
        st = self.stream_info(name, among=nodes)
        cl = (st or {}).get("cluster") or {}
        leader = cl.get("leader")
        if leader not in names:
            return None
        for r in cl.get("replicas") or []:
            if r.get("name") in names and not r.get("current"):
                return None
        return leader

    def wait_stream_ready(self, name, among=None, timeout=60.0):
        """Until stream_ready(name, among); returns the leader; a failure shows the stream's cluster
        state."""
        try:
            return lfharness.wait_for(lambda: self.stream_ready(name, among), f"stream {name} to have a leader "
                                      "and current replicas", timeout=timeout, step=0.2)
        except lfharness.TestFailure as e:
            st = self.stream_info(name, among=self._nodes(among))
            raise lfharness.TestFailure(f"{e}: {(st or {}).get('cluster')}")

    def stream_names(self, among=None):
        """Every stream the nodes in among (default: the running ones) know of, key-value buckets'
        (KV_NAME) included."""
        return sorted({st.get("name") for s in self._nodes(among) for st in _streams(s.jsz())} - {None})

    def wait_streams_ready(self, among=None, timeout=60.0):
        """Until every stream (stream_names) is stream_ready; returns {name: leader}."""
        deadline = time.time() + timeout
        return {name: self.wait_stream_ready(name, among, max(0.1, deadline - time.time()))
                for name in self.stream_names(among)}


def _streams(jsz, account=None):
    for acc in (jsz or {}).get("account_details") or []:
        if account is None or acc.get("name") == account:
            yield from acc.get("stream_detail") or []


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _tail(path, n=20):
    return "".join(_read(path).splitlines(True)[-n:])


def _serve(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="lfnats.py serve", description="a NATS server or cluster with JetStream "
                                 "until the parent process is gone")
    ap.add_argument("cmd", choices=["serve"])
    ap.add_argument("--parent-pid", type=int, default=os.getppid(), help="stop when it is gone (default: the caller)")
    ap.add_argument("--nodes", type=int, default=1, help="1: a standalone server; more: a cluster on loopback")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--tls", action="store_true", help="clients must use TLS (CA in the printed tls files)")
    ap.add_argument("--dir", help="keep its files there (default: a scratch directory removed at exit)")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of the URLs")
    a = ap.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _leave)
    kw = {"user": a.user, "password": a.password, "tls": a.tls}
    try:
        if a.nodes > 1:
            c = NatsCluster(a.nodes, base_dir=a.dir, **kw).start().wait_ready()
            servers, urls = c.servers, c.urls()
        else:
            s = NatsServer(base_dir=a.dir, **kw).start().wait_healthy()
            servers, urls = [s], s.url()
        if a.json:
            print(json.dumps({"urls": urls, "user": a.user, "password": a.password,
                              "tls": servers[0].tls or None,
                              "servers": [{"name": s.name, "url": s.url(), "monitor": f"http://{s.host}:{s.monitor_port}",
                                           "dir": s.dir, "pid": s.pid} for s in servers]}), flush=True)
        else:
            print(urls, flush=True)
        told = set()
        while True:
            try:
                os.kill(a.parent_pid, 0)
            except ProcessLookupError:
                break
            for s in servers:
                if not s.running() and s.name not in told:
                    told.add(s.name)
                    print(f"nats-server {s.name} exited with {s.proc.returncode}; see {s.log_path}", file=sys.stderr)
            time.sleep(0.3)
    finally:
        _kill_all()


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "serve":
        print("usage: lfnats.py serve [--help]", file=sys.stderr)
        sys.exit(2)
    _serve(sys.argv[1:])
