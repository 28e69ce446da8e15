"""Test hosts as Linux network namespaces, joined by bridges in a namespace of their own.

    net = Network("lfmh", {"db": [("br0", "10.231.0.3")], "app": [("br0", "10.231.0.2")]})
    net.up()                       # namespaces <tag><pid>-HOST, deleted at exit
    subprocess.run(net.in_ns("app", ["curl", ...]))
    net.http("app", "GET", "http://10.231.0.3:8080/healthz")   # (status, body), 0: no connection
    net.cut("app", "db")           # blackhole routes both ways: a sender's connect fails at once
    net.cut("app", "db", False)    # restored
    net.sever("app", "db")         # silently: frames vanish on the wire, connects time out

Every address is a /24 on a bridge the test created; nothing reaches outside the namespaces. Needs
root and iproute2. The namespaces of an earlier run that was killed before it could clean up (its
pid is gone) are removed by the next up() with the same tag.
"""
import atexit
import os
import re
import subprocess

NOWHERE_MAC = "02:00:00:00:de:ad"  # locally administered; no host of a Network has it


def ip(*args):
    p = subprocess.run(["ip", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def available():
    """None when namespaces can be made here, else why not (for a test's exit 77)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    try:
        subprocess.run(["ip", "netns", "list"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        return f"`ip netns` does not work here: {e}"
    return None


class Network:
    def __init__(self, tag, hosts):
        """tag: a short prefix naming this kind of test (the pid is added); hosts: {host: [(bridge,
        address)]}, each host getting eth0, eth1, ... in that order."""
        self.stem = tag
        self.tag = f"{tag}{os.getpid()}"
        self.hosts = hosts
        self._up = False

    def ns(self, host):
        return f"{self.tag}-{host}"

    def in_ns(self, host, args):
        """A command line that runs args on host."""
        return ["ip", "netns", "exec", self.ns(host)] + list(args)

    def addresses(self, host):
        return [addr for _, addr in self.hosts[host]]

    def remove_stale(self):
        """Namespaces left by an earlier run with this tag that was killed before it could clean up."""
        for line in ip("netns", "list").splitlines():
            m = re.match(rf"^({re.escape(self.stem)}(\d+)-\S+)", line)
            if m and not os.path.exists(f"/proc/{m.group(2)}"):
                subprocess.run(["ip", "netns", "delete", m.group(1)], capture_output=True)

    def up(self):
        self.remove_stale()
        atexit.register(self.down)
        self._up = True
        sw = self.ns("switch")
        ip("netns", "add", sw)
        for br in sorted({br for links in self.hosts.values() for br, _ in links}):
            ip("-n", sw, "link", "add", br, "type", "bridge")
            ip("-n", sw, "link", "set", br, "up")
        for i, (host, links) in enumerate(self.hosts.items()):
            ip("netns", "add", self.ns(host))
            ip("-n", self.ns(host), "link", "set", "lo", "up")
            for k, (br, addr) in enumerate(links):
                peer = f"h{i}e{k}"
                ip("-n", self.ns(host), "link", "add", f"eth{k}", "type", "veth", "peer", "name", peer, "netns", sw)
                ip("-n", sw, "link", "set", peer, "master", br, "up")
                ip("-n", self.ns(host), "addr", "add", addr + "/24", "dev", f"eth{k}")
                ip("-n", self.ns(host), "link", "set", f"eth{k}", "up")
        return self

    def down(self):
        if not self._up:
            return
        for host in list(self.hosts) + ["switch"]:
            subprocess.run(["ip", "netns", "delete", self.ns(host)], capture_output=True)
        self._up = False

    def http(self, host, method, url, token=None, timeout=5, cacert=None):
        """(status, body) of one request made with curl from inside host; status 0 when it could
        not connect (or, with cacert, the server's certificate is not from that CA)."""
        args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--max-time", str(timeout), url]
        if cacert:
            args += ["--cacert", cacert]
        if token:
            args += ["-H", f"Authorization: Bearer {token}"]
        p = subprocess.run(self.in_ns(host, args), capture_output=True, text=True, errors="replace")
        body, _, code = p.stdout.rpartition("\n")
        return int(code or 0), body

    def sysctl(self, host, name, value):
        """A kernel setting of host's network namespace (e.g. net.ipv4.tcp_retries2)."""
        p = subprocess.run(self.in_ns(host, ["sysctl", "-q", "-w", f"{name}={value}"]), capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"sysctl {name}={value} on {host}: {p.stderr.strip()}")

    def blackhole(self, host, addr, on=True):
        """On host, packets to addr are discarded (on) or flow again (off). Its own senders get an
        error at once (EINVAL: curl's "Couldn't connect"); sever() is the silent cut."""
        ip("-n", self.ns(host), "route", "add" if on else "del", "blackhole", addr + "/32")

    def cut(self, a, b, cut=True):
        """The link between hosts a and b broken (blackhole routes on both sides: each side's
        connects and sends fail at once) or restored."""
        for addr in self.addresses(b):
            self.blackhole(a, addr, cut)
        for addr in self.addresses(a):
            self.blackhole(b, addr, cut)

    def sever(self, a, b, cut=True):
        """The wire between hosts a and b cut silently (or mended): on each, the neighbour entries
        for the other's addresses on a bridge they share are pinned to a MAC address no host has,
        so frames go out and vanish. Neither side gets an error (a blackhole route gives its
        sender one at once): as with a dead cable, TCP retransmits until it gives up (see
        net.ipv4.tcp_retries2) and a connect times out. Mended: the entries are removed and ARP
        finds the real ones. No netfilter or tc needed."""
        pinned = []
        for x, y in ((a, b), (b, a)):
            for k, (br, _) in enumerate(self.hosts[x]):
                pinned += [(x, f"eth{k}", addr) for br2, addr in self.hosts[y] if br2 == br]
        if not pinned:
            raise ValueError(f"{a} and {b} share no bridge")
        for host, dev, addr in pinned:
            if cut:
                ip("-n", self.ns(host), "neigh", "replace", addr, "lladdr", NOWHERE_MAC, "dev", dev, "nud", "permanent")
            else:
                ip("-n", self.ns(host), "neigh", "del", addr, "dev", dev)

    def isolate(self, host, cut=True):
        """host cut from (or restored to) every other host."""
        for other in self.hosts:
            if other != host:
                self.cut(host, other, cut)
