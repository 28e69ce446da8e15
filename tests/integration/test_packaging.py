#!/usr/bin/env python3
"""Debian packages under a real systemd: build the seven packages (packaging/build-deb.sh) twice,
the second time with a higher version; lintian reports no error or warning; then boot Debian 12
with systemd as PID 1 (systemd-nspawn --boot over a debootstrap root cached under build/pkgtest,
with a private network: loopback only) and, inside it, as an operator would:

- install; the units are enabled, not started; an unconfigured service refuses to start with exit
  status 2, one line in the journal saying why, and no restart loop;
- configure the roles as docs/install.md says (admin commands run as root, no setpriv), start every
  service: each is active and answers /healthz; one session is uploaded, parsed into MariaDB and
  loaded by the analytics;
- upgrade to the rebuilt set while the services run and sessions keep arriving: every service runs
  the new version afterwards and every session is in MariaDB exactly once, none refused;
- power off and boot again: every enabled service comes back by itself and the pipeline works;
- apt remove stops the unit and keeps configuration, keyring and stored sessions; apt purge removes
  the programs' state and configuration and nothing else.

Slow (two package builds, a debootstrap the first time, two boots): about 6-10 minutes. Skipped
(exit 77, reported as skipped by ctest) without root, dpkg-buildpackage or systemd-nspawn, when
LF_SKIP_PACKAGING=1, in the sanitizer build (the packages do not use the build directory: the gcc
suite covers them) and when the machine cannot boot a container at all."""
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import lfharness as H  # noqa: E402
import lfparser  # noqa: E402

SKIP = 77
SRC = H.SOURCE_DIR
WORK = os.path.join(SRC, "build", "pkgtest")
CACHE = os.path.join(WORK, "cache")
ROOT = os.path.join(WORK, "root")           # the container of this run, a fresh copy of the base
OUT = os.path.join(WORK, "dist")
MIRROR = os.environ.get("LF_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PROGRAMS = ["uploader", "receiver", "parser", "analytics", "monitor"]
PACKAGES = ["logferry", "logferry-common"] + [f"logferry-{p}" for p in PROGRAMS]
# What the container needs beside the packages' own dependencies: systemd as PID 1, a MariaDB for
# the parser and the analytics, curl for /healthz, bash-completion for the completion files.
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "mariadb-server", "mariadb-client", "curl",
                 "ca-certificates", "procps", "bash-completion", "man-db"]
DB_PASSWORD = "pkgtest-db-password"
LOGS = "/srv/applogs"        # the directory the uploader watches, inside the container
SITE = "pkgsite"

LOGTYPE = lfparser.LOGTYPES  # the classic format the session logs below are written in

state = {"sessions": []}


class Skip(Exception):
    pass


def sh(args, timeout=900, check=True, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}\nstdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}")
    return r


def remove_tree(path):
    """rmtree that first unmounts whatever is mounted under path (a debootstrap or container killed
    half way leaves its /proc there), so that it never deletes through a mount."""
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for m in sorted((m for m in points if m == real or m.startswith(real + "/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", m], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def root_path(p):
    return os.path.join(ROOT, p.lstrip("/"))


# ------------------------------------------------------------------------------------------------
# The container


def die_with_parent():
    """In the child before exec: SIGTERM when the test process dies (a ctest timeout kills it with
    SIGKILL), which makes systemd-nspawn halt the container instead of leaving it running."""
    import ctypes
    import signal
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Container:
    """systemd-nspawn --boot over ROOT, in its own mount namespace with a private /run/systemd/nspawn
    (the host has no systemd to register with), loopback only. Commands run inside with nsenter."""

    def __init__(self):
        self.proc = None
        self.leader = None
        self.boots = 0

    def boot(self):
        self.boots += 1
        log = open(os.path.join(WORK, f"boot{self.boots}.log"), "wb")
        script = ('mkdir -p /run/systemd/nspawn && mount -t tmpfs tmpfs /run/systemd/nspawn && '
                  'exec systemd-nspawn --boot --directory="$0" --register=no --keep-unit --private-network '
                  '--console=pipe --machine=lfpkgtest')
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, ROOT],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)
        deadline = time.time() + 120
        while self.leader is None:
            if self.proc.poll() is not None:
                text = open(log.name, errors="replace").read()[-3000:]
                if self.boots == 1:  # nspawn gave up before the container had a PID 1
                    raise Skip(f"this machine cannot boot a container (systemd-nspawn exited "
                               f"{self.proc.returncode}): {text}")
                raise AssertionError(f"systemd-nspawn exited {self.proc.returncode}: {text}")
            H.check(time.time() < deadline, "the container's PID 1 did not appear in 120 s")
            self.leader = self._find_leader()
            if self.leader is None:
                time.sleep(0.1)
        # "offline" until PID 1 answers on its socket; then --wait returns once the boot is over
        r = None
        while r is None or r.stdout.strip() in ("offline", ""):
            H.check(time.time() < deadline + 180 and self.proc.poll() is None,
                    f"systemd in the container never answered: {r.stdout if r else ''}")
            r = self.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=300)
            if r.stdout.strip() in ("offline", ""):
                time.sleep(0.2)
        H.check(r.stdout.strip() in ("running", "degraded"), f"boot ended {r.stdout.strip()!r}: "
                + self.run(["systemctl", "--failed", "--no-pager"], check=False).stdout)

    def _find_leader(self):
        """The container's PID 1: a descendant of systemd-nspawn that is PID 1 of its PID namespace."""
        parents = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                status = open(f"/proc/{pid}/status").read()
            except OSError:
                continue
            ppid = re.search(r"^PPid:\s+(\d+)$", status, re.M)
            nspid = re.search(r"^NSpid:\s+(.*)$", status, re.M)
            parents[pid] = (ppid.group(1) if ppid else "0", nspid.group(1).split() if nspid else [])
        for pid, (ppid, nspid) in parents.items():
            if len(nspid) < 2 or nspid[-1] != "1":
                continue
            up, seen = ppid, 0
            while up in parents and up != "0" and seen < 64:
                if up == str(self.proc.pid):
                    return pid
                up, seen = parents[up][0], seen + 1
        return None

    def run(self, cmd, check=True, timeout=300, input=None):
        env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive",
               "HOME=/root", "TERM=dumb"]
        r = subprocess.run(["nsenter", "--target", self.leader, "--all", "--wd=/"] + env + cmd,
                           capture_output=True, text=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError(f"in the container: {cmd} exited {r.returncode}\nstdout: {r.stdout[-3000:]}\n"
                                 f"stderr: {r.stderr[-3000:]}")
        return r

    def poweroff(self):
        if not self.proc or self.proc.poll() is not None:
            return
        # asked again until it happens: early in a boot systemctl cannot reach PID 1 yet
        deadline = time.time() + 180
        try:
            while self.proc.poll() is None:
                if time.time() > deadline:
                    self.proc.kill()
                    self.proc.wait()
                    raise AssertionError("the container did not power off in 180 s")
                if self.leader:
                    self.run(["systemctl", "poweroff"], check=False, timeout=60)
                else:
                    self.proc.terminate()  # systemd-nspawn halts the container on SIGTERM
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self.leader = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.leader = None


ct = Container()


def wait_for(what, fn, timeout=180, every=0.5):
    """Polls fn until it returns something true; fails naming what was awaited and the last value."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def sql(query):
    return ct.run(["mysql", "-N", "-B", "-e", query]).stdout.strip()


def conf_set(program, section, key, value):
    """Sets one key of /etc/logferry/PROGRAM.conf as an operator would with an editor: the line that
    holds it (or its commented-out default) in that section, or a new line under the header."""
    path = root_path(f"/etc/logferry/{program}.conf")
    lines = open(path).read().split("\n")
    current, header, done = None, None, False
    for i, line in enumerate(lines):
        m = re.match(r"^\[(.+)\]\s*$", line)
        if m:
            current = m.group(1)
            if current == section:
                header = i
            continue
        if current == section and re.match(rf"^#?\s*{re.escape(key)}\s*=", line):
            lines[i] = f"{key} = {value}"
            done = True
            break
    if not done:
        if header is None:
            lines += ["", f"[{section}]", f"{key} = {value}"]
        else:
            lines.insert(header + 1, f"{key} = {value}")
    open(path, "w").write("\n".join(lines))


def listen_port(program):
    text = open(root_path(f"/etc/logferry/{program}.conf")).read()
    m = re.search(r"^\[http\][^\[]*?^listen = [^\n]*:(\d+)$", text, re.M | re.S)
    return int(m.group(1))


def healthz(program):
    r = ct.run(["curl", "-s", "-m", "5", "-w", "\n%{http_code}", f"http://127.0.0.1:{listen_port(program)}/healthz"],
               check=False)
    body, _, code = r.stdout.rpartition("\n")
    return (int(code) if code.isdigit() else 0), body


def active(unit):
    return ct.run(["systemctl", "is-active", unit], check=False).stdout.strip()


SESSION_SEQ = [0]


def write_session():
    """A finished session log (its last line matches the watch's end_line), moved into the watched
    directory in one rename so the uploader never sees half of it. Returns its file name."""
    SESSION_SEQ[0] += 1
    n = SESSION_SEQ[0]
    name = f"session-{n:05d}.log"
    t = 1793606400 + n * 60
    lines = []
    for i in range(20):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + i)) + ".%03d" % i
        lines.append(f"{stamp} INFO [core] Opened dialog number {n * 100 + i} in the main window")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + 30)) + ".000"
    lines.append(f"{stamp} INFO [core] Session ended")
    tmp = root_path(f"/srv/incoming/{name}")
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(tmp, root_path(f"{LOGS}/{name}"))
    state["sessions"].append(name)
    return name


def parsed_sessions():
    out = sql("SELECT source_path, COUNT(*) FROM logferry.sessions GROUP BY source_path")
    rows = {}
    for line in out.splitlines():
        path, count = line.rsplit("\t", 1)
        rows[os.path.basename(path)] = int(count)
    return rows


def all_parsed():
    rows = parsed_sessions()
    want = set(state["sessions"])
    return rows if want <= set(rows) else None


# ------------------------------------------------------------------------------------------------
# Tests


def test_build():
    t0 = time.time()
    shutil.rmtree(OUT, ignore_errors=True)
    env = dict(os.environ, LF_DEB_OUT=os.path.join(OUT, "v1"), LF_DEB_WORKTREE="1")
    r = sh([os.path.join(SRC, "packaging", "build-deb.sh")], env=env)
    debs = sorted(glob.glob(os.path.join(OUT, "v1", "*.deb")))
    names = {os.path.basename(d).split("_")[0] for d in debs}
    for p in PACKAGES:
        H.check(p in names, f"{p} not built: {sorted(names)}\n{r.stdout[-2000:]}")
    state["v1"] = [d for d in debs if "-dbgsym_" not in d]
    state["version1"] = os.path.basename(state["v1"][0]).split("_")[1]
    state["changes"] = glob.glob(os.path.join(OUT, "v1", "*.changes"))[0]
    # the same tree again with a higher version: what an upgrade installs
    state["version2"] = state["version1"] + "+pkgtest.up1"
    env = dict(env, LF_DEB_OUT=os.path.join(OUT, "v2"), LF_DEB_VERSION=state["version2"])
    sh([os.path.join(SRC, "packaging", "build-deb.sh")], env=env)
    state["v2"] = [d for d in sorted(glob.glob(os.path.join(OUT, "v2", "*.deb"))) if "-dbgsym_" not in d]
    H.check(len(state["v2"]) == len(state["v1"]), f"second build: {state['v2']}")
    print(f"     built {state['version1']} and {state['version2']} in {time.time() - t0:.0f}s", flush=True)


def test_lintian():
    r = sh(["lintian", "--fail-on", "none", "--tag-display-limit", "0", state["changes"]])
    bad = [line for line in r.stdout.splitlines() if line[:2] in ("E:", "W:")]
    H.check(not bad, "lintian:\n" + "\n".join(bad))
    over = glob.glob(os.path.join(SRC, "packaging", "debian", "*.lintian-overrides"))
    H.check(not over, f"lintian overrides left: {over}")


def test_control_fields_say_only_what_is_true():
    for deb in state["v1"]:
        fields = sh(["dpkg-deb", "--field", deb]).stdout
        H.check("example.org" not in fields and "example.com" not in fields, f"{deb}: placeholder field\n{fields}")
    author = sh(["git", "-C", SRC, "log", "-1", "--format=%an <%ae>", "HEAD"]).stdout.strip()
    maint = sh(["dpkg-deb", "--field", state["v1"][0], "Maintainer"]).stdout.strip()
    H.check(maint == os.environ.get("LF_DEB_MAINTAINER", author), f"Maintainer {maint!r}, author {author!r}")


def package_dependencies():
    """The first alternative of every dependency of the built packages that is not one of ours."""
    deps = set()
    for deb in state["v1"]:
        text = sh(["dpkg-deb", "--field", deb, "Depends"]).stdout.strip()
        for item in filter(None, (s.strip() for s in text.split(","))):
            name = item.split("|")[0].split("(")[0].strip()
            if name and not name.startswith("logferry"):
                deps.add(name)
    return sorted(deps)


def make_root():
    include = sorted(set(BASE_PACKAGES) | set(package_dependencies()))
    key = hashlib.sha256(" ".join(include).encode()).hexdigest()[:12]
    base = os.path.join(WORK, f"sysbase-{key}")
    if not os.path.exists(os.path.join(base, "lib", "systemd", "systemd")):
        remove_tree(base)
        os.makedirs(CACHE, exist_ok=True)
        t0 = time.time()
        # in a mount namespace of its own: the /proc it mounts in the new root goes with it
        sh(["unshare", "--mount", "--propagation", "private",
            "debootstrap", "--variant=minbase", f"--cache-dir={CACHE}", "--include=" + ",".join(include),
            "bookworm", base, MIRROR], timeout=1800)
        # an empty machine-id: systemd makes one at each boot (a copy must not share the base's)
        open(os.path.join(base, "etc", "machine-id"), "w").close()
        print(f"     debootstrap of the base in {time.time() - t0:.0f}s", flush=True)
    # bases of earlier dependency sets are not needed any more
    for old in glob.glob(os.path.join(WORK, "sysbase-*")):
        if old != base:
            remove_tree(old)
    remove_tree(ROOT)
    sh(["cp", "-a", "--reflink=auto", base, ROOT])
    for v in ("v1", "v2"):
        os.makedirs(root_path(f"/root/debs/{v}"))
        for d in state[v]:
            shutil.copy(d, root_path(f"/root/debs/{v}/"))
    for d in (LOGS, "/srv/incoming"):
        os.makedirs(root_path(d))


def test_boot_and_install():
    t0 = time.time()
    make_root()
    ct.boot()
    H.check(ct.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd", "PID 1 is not systemd")
    debs = sorted(f"/root/debs/v1/{os.path.basename(d)}" for d in state["v1"])
    r = ct.run(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + debs, timeout=600)
    state["install_log"] = r.stdout + r.stderr
    H.check("logferry-receiver sites add" in state["install_log"], "the uploader's install did not print the sites add line")
    for p in PROGRAMS:
        unit = f"logferry-{p}.service"
        H.check(ct.run(["systemctl", "is-enabled", unit], check=False).stdout.strip() == "enabled", f"{unit} not enabled")
        H.check(active(unit) == "inactive", f"{unit} was started at install: {active(unit)}")
    print(f"     boot and install in {time.time() - t0:.0f}s", flush=True)


def stat_of(path):
    st = os.stat(root_path(path))
    return st.st_mode & 0o7777, st.st_uid, st.st_gid


def test_files_users_docs_manuals():
    pw = [line.split(":") for line in open(root_path("/etc/passwd")).read().splitlines() if line.startswith("logferry:")]
    H.check(len(pw) == 1, "no logferry user")
    uid, gid, home, shell = int(pw[0][2]), int(pw[0][3]), pw[0][5], pw[0][6]
    H.check(0 < uid < 1000 and home == "/var/lib/logferry" and shell.endswith("nologin"), f"user {pw[0]}")
    state["uid"], state["gid"] = uid, gid
    H.check(stat_of("/etc/logferry") == (0o750, 0, gid), f"/etc/logferry {stat_of('/etc/logferry')}")
    conffiles = ct.run(["dpkg-query", "-W", "-f", "${Conffiles}\n"] + PACKAGES).stdout
    for p in PROGRAMS:
        conf = f"/etc/logferry/{p}.conf"
        H.check(stat_of(conf) == (0o640, 0, gid), f"{conf} {stat_of(conf)}")
        H.check(conf in conffiles, f"{conf} is not a conffile")
        H.check(stat_of(f"/var/lib/logferry/{p}") == (0o750, uid, gid), f"state dir of {p}")
        unit = ct.run(["systemctl", "cat", f"logferry-{p}.service"]).stdout
        for want in ("Type=notify", "RestartPreventExitStatus=2", "ProtectSystem=strict", "User=logferry"):
            H.check(want in unit, f"logferry-{p}.service lacks {want}")
        # the manual page, and bash completion of the program's commands
        page = ct.run(["man", "-P", "cat", f"logferry-{p}"], check=False)
        H.check(page.returncode == 0 and "--check-config" in page.stdout.replace("\u2010", "-"),
                f"man logferry-{p}: {page.returncode} {page.stderr[-300:]}")
        H.check(os.path.exists(root_path(f"/usr/share/bash-completion/completions/logferry-{p}")),
                f"no bash completion for logferry-{p}")
    page = ct.run(["man", "-P", "cat", "5", "logferry.conf"], check=False)
    H.check(page.returncode == 0 and "receiver" in page.stdout, f"man 5 logferry.conf: {page.stderr[-300:]}")
    docs = set(os.listdir(root_path("/usr/share/doc/logferry-common")))
    for doc in ("install.md", "operations.md", "configuration.md", "api.md", "uploader.md", "analytics.md",
                "monitor.md", "parser.md", "receiver.md"):
        H.check(doc in docs or doc + ".gz" in docs, f"{doc} not installed: {sorted(docs)}")
    # completion reads the installed program: commands of the receiver, subcommands of "sites"
    script = ("source /usr/share/bash-completion/bash_completion; "
              "source /usr/share/bash-completion/completions/logferry-receiver; "
              "complete_words() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); COMP_LINE=\"$*\"; "
              "COMP_POINT=${#COMP_LINE}; COMPREPLY=(); _logferry logferry-receiver \"${COMP_WORDS[-1]}\" "
              "\"${COMP_WORDS[-2]}\"; echo \"${COMPREPLY[*]}\"; }; "
              "complete_words logferry-receiver s; complete_words logferry-receiver sites ''; "
              "complete_words logferry-receiver --set store.ke")
    out = ct.run(["bash", "-c", script]).stdout.splitlines()
    H.check(sorted(out[0].split()) == ["sessions", "sites"], f"commands completed: {out}")
    H.check(sorted(out[1].split()) == ["add", "disable", "enable", "import", "list"], f"sites completed: {out}")
    H.check(out[2].split() == ["store.keys_dir="], f"--set completed: {out}")


def test_unconfigured_service_stays_down_and_says_why():
    # the packaged uploader.conf has no site: the unit must fail once, with status 2, and stay down
    r = ct.run(["logferry-uploader", "--check-config"], check=False)
    H.check(r.returncode == 2, f"--check-config exited {r.returncode}: {r.stdout} {r.stderr}")
    H.check(re.search(r"^/etc/logferry/uploader\.conf:\d+: \[uploader\] site: not set", r.stderr, re.M),
            f"--check-config does not name file, line and key: {r.stderr}")
    ct.run(["systemctl", "start", "logferry-uploader.service"], check=False)
    show = ct.run(["systemctl", "show", "-p", "ActiveState,SubState,ExecMainStatus,NRestarts",
                   "logferry-uploader.service"]).stdout
    props = dict(line.split("=", 1) for line in show.split())
    H.check(props["ActiveState"] == "failed" and props["ExecMainStatus"] == "2" and props["NRestarts"] == "0",
            f"an unconfigured uploader: {props} (a restart would show as activating/auto-restart)")
    journal = ct.run(["journalctl", "-u", "logferry-uploader", "-o", "cat", "--no-pager"]).stdout
    lines = [line for line in journal.splitlines() if "not starting:" in line]
    H.check(len(lines) == 1 and "[uploader] site" in lines[0], f"journal: {journal[-2000:]}")
    ct.run(["systemctl", "reset-failed", "logferry-uploader.service"])


def test_configure_roles_and_run_the_pipeline():
    """docs/install.md's first configuration, run as root without setpriv."""
    t0 = time.time()
    ct.run(["systemctl", "enable", "--now", "mariadb"])
    for host in ("localhost", "127.0.0.1"):
        sql(f"CREATE USER IF NOT EXISTS 'logferry'@'{host}' IDENTIFIED BY '{DB_PASSWORD}'; "
            f"GRANT ALL ON logferry.* TO 'logferry'@'{host}'; "
            f"GRANT ALL ON logferry_analytics.* TO 'logferry'@'{host}'")
    # site key: replaced on purpose (keygen --force, as root), registered at the receiver
    line = ct.run(["logferry-uploader", "keygen", "--force"]).stdout.strip()
    H.check(line.startswith("logferry-receiver sites add"), f"keygen printed {line!r}")
    H.check(stat_of("/etc/logferry/uploader.key") == (0o600, state["uid"], state["gid"]),
            f"the key keygen --force wrote as root: {stat_of('/etc/logferry/uploader.key')}")
    pubkey = line.split()[-1]
    ct.run(["logferry-receiver", "sites", "add", SITE, pubkey])
    token = ct.run(["logferry-receiver", "tokens", "add", "parser", "--scope", "worker"]).stdout.strip()
    for f in ("sites", "tokens", "token.key"):
        st = stat_of(f"/var/lib/logferry/receiver/{f}")
        H.check(st[1:] == (state["uid"], state["gid"]), f"/var/lib/logferry/receiver/{f} written as root: {st}")
    ct.run(["logferry-receiver", "keys", "rotate"])
    for f in os.listdir(root_path("/var/lib/logferry/receiver/keys")):
        H.check(stat_of(f"/var/lib/logferry/receiver/keys/{f}")[1] == state["uid"], f"key {f} owned by root")

    conf_set("uploader", "uploader", "site", SITE)
    with open(root_path("/etc/logferry/uploader.conf"), "a") as f:
        f.write(f"\n[watch.app]\ndir = {LOGS}\ninclude = *.log\nlog_type = classic\nproduct = pkgtest\n"
                f"end_line = Session ended\nsettle = 2s\n")
    conf_set("uploader", "uploader", "scan_interval", "1s")
    conf_set("parser", "receiver", "token", token)
    conf_set("parser", "receiver", "wait", "2s")
    conf_set("parser", "mysql", "password", DB_PASSWORD)
    with open(root_path("/etc/logferry/parser.conf"), "a") as f:
        f.write(LOGTYPE)
    conf_set("analytics", "mysql", "password", DB_PASSWORD)
    with open(root_path("/etc/logferry/monitor.conf"), "a") as f:
        f.write(f"\n[check.receiver]\nkind = healthz\nurl = http://127.0.0.1:{listen_port('receiver')}/healthz\n")
    for p in PROGRAMS:
        r = ct.run([f"logferry-{p}", "--check-config"], check=False)
        H.check(r.returncode == 0, f"logferry-{p} --check-config after configuring: {r.stdout} {r.stderr}")
    for p in ["receiver", "parser", "uploader", "analytics", "monitor"]:
        ct.run(["systemctl", "start", f"logferry-{p}.service"])
    for p in PROGRAMS:
        H.check(active(f"logferry-{p}.service") == "active", f"logferry-{p}: {active(f'logferry-{p}.service')}")
        code, body = healthz(p)
        H.check(code == 200, f"logferry-{p} /healthz {code} {body[:300]}")
        H.check(json.loads(body).get("version") == state["version1"], f"logferry-{p} version: {body[:200]}")
    write_session()
    rows = wait_for("the first session in MariaDB", all_parsed, timeout=180)
    H.check(list(rows.values()) == [1], f"sessions: {rows}")
    events = int(sql("SELECT COUNT(*) FROM logferry.events"))
    H.check(events >= 21, f"{events} events for a 21-line session")
    # the analytics, run by hand as root (it acts as the service user), load from it
    r = ct.run(["logferry-analytics", "backfill"], check=False, timeout=300)
    H.check(r.returncode == 0, f"analytics backfill: {r.stdout[-1000:]} {r.stderr[-1000:]}")
    tables = sql("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'logferry_analytics'")
    H.check(int(tables) > 0, "no analytics tables")
    print(f"     configured and first session through in {time.time() - t0:.0f}s", flush=True)


def test_upgrade_while_running():
    t0 = time.time()
    pids = {p: ct.run(["systemctl", "show", "-p", "MainPID", "--value", f"logferry-{p}.service"]).stdout.strip()
            for p in PROGRAMS}
    stop = threading.Event()

    def keep_writing():
        while not stop.is_set():
            write_session()
            stop.wait(0.3)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        wait_for("a session written before the upgrade", lambda: len(state["sessions"]) >= 3, timeout=30)
        debs = sorted(f"/root/debs/v2/{os.path.basename(d)}" for d in state["v2"])
        ct.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "Dpkg::Options::=--force-confold"]
               + debs, timeout=600)
        during = len(state["sessions"])
        wait_for("sessions written after the upgrade", lambda: len(state["sessions"]) >= during + 3, timeout=30)
    finally:
        stop.set()
        writer.join()
    for p in PROGRAMS:
        unit = f"logferry-{p}.service"
        wait_for(f"{unit} active after the upgrade", lambda u=unit: active(u) == "active", timeout=120)
        code, body = wait_for(f"logferry-{p} /healthz", lambda q=p: (lambda r: r if r[0] == 200 else None)(healthz(q)))
        H.check(json.loads(body).get("version") == state["version2"], f"logferry-{p} after the upgrade: {body[:200]}")
        pid = ct.run(["systemctl", "show", "-p", "MainPID", "--value", unit]).stdout.strip()
        H.check(pid != pids[p], f"{unit} was not restarted (pid {pid})")
    rows = wait_for(f"all {len(state['sessions'])} sessions in MariaDB", all_parsed, timeout=300)
    dups = {k: v for k, v in rows.items() if v != 1}
    H.check(not dups, f"sessions not exactly once: {dups}")
    failed = os.listdir(root_path("/var/lib/logferry/uploader/outbox/failed"))
    H.check(not failed, f"uploads refused across the upgrade: {failed}")
    print(f"     upgrade with {len(state['sessions'])} sessions in {time.time() - t0:.0f}s", flush=True)


def test_reboot_brings_every_service_back():
    ct.poweroff()
    ct.boot()
    for p in PROGRAMS:
        unit = f"logferry-{p}.service"
        wait_for(f"{unit} active after the boot", lambda u=unit: active(u) == "active", timeout=120)
        H.check(healthz(p)[0] == 200, f"logferry-{p} /healthz after the boot")
    write_session()
    wait_for("a session sent after the boot in MariaDB", all_parsed, timeout=180)


def test_remove_stops_and_keeps_data():
    keys = sorted(os.listdir(root_path("/var/lib/logferry/receiver/keys")))
    stored = sorted(glob.glob(root_path("/var/lib/logferry/receiver/sessions/*/*/*/*.lfz")))
    H.check(len(stored) >= len(state["sessions"]), f"{len(stored)} stored sessions")
    ct.run(["apt-get", "remove", "-y", "-q", "logferry-receiver"], timeout=300)
    H.check(active("logferry-receiver.service") in ("inactive", "unknown"), "the receiver still runs after remove")
    H.check(ct.run(["pgrep", "-x", "logferry-receiver"], check=False).returncode == 1, "a receiver process is left")
    H.check(sorted(os.listdir(root_path("/var/lib/logferry/receiver/keys"))) == keys, "remove touched the keyring")
    H.check(sorted(glob.glob(root_path("/var/lib/logferry/receiver/sessions/*/*/*/*.lfz"))) == stored,
            "remove touched the stored sessions")
    H.check(os.path.exists(root_path("/etc/logferry/receiver.conf")), "remove deleted the conffile")
    # the others keep running until they are removed too
    H.check(active("logferry-parser.service") == "active", "removing the receiver stopped the parser")


def test_purge_removes_what_policy_says():
    # what dpkg still knows (removing the receiver took the metapackage, which has no conffiles)
    known = ct.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n"] + PACKAGES, check=False).stdout
    left = [line.split()[0] for line in known.splitlines() if len(line.split()) > 1 and line.split()[1] != "un"]
    H.check("logferry-receiver" in left and "logferry-common" in left, f"dpkg knows {known}")
    ct.run(["apt-get", "purge", "-y", "-q"] + left, timeout=300)
    for p in PROGRAMS:
        H.check(active(f"logferry-{p}.service") in ("inactive", "unknown"), f"logferry-{p} runs after purge")
    left = [p for p in ("/etc/logferry", "/var/lib/logferry", "/usr/lib/sysusers.d/logferry-common.conf",
                        "/usr/lib/tmpfiles.d/logferry-common.conf") if os.path.lexists(root_path(p))]
    left += glob.glob(root_path("/etc/systemd/system/*/logferry-*")) + glob.glob(root_path("/usr/bin/logferry-*"))
    left += glob.glob(root_path("/usr/share/bash-completion/completions/logferry-*"))
    H.check(not left, f"left after purge: {left}")
    status = ct.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n"], check=False).stdout
    H.check(not [line for line in status.splitlines() if line.startswith("logferry")], f"still known to dpkg: {status}")
    # and nothing else: the watched logs, the database and the system user stay
    H.check(len(os.listdir(root_path(LOGS))) == len(state["sessions"]), "purge touched the watched logs")
    H.check(int(sql("SELECT COUNT(*) FROM logferry.sessions")) == len(state["sessions"]), "purge touched MariaDB")
    H.check("logferry:" in open(root_path("/etc/passwd")).read(), "purge removed the system user")


def main():
    if os.environ.get("LF_SKIP_PACKAGING") == "1":
        print("SKIP: LF_SKIP_PACKAGING=1")
        sys.exit(SKIP)
    missing = [t for t in ("dpkg-buildpackage", "systemd-nspawn", "debootstrap", "lintian") if not shutil.which(t)]
    if missing:
        print(f"SKIP: {', '.join(missing)} missing (scripts/install-deps.sh installs them)")
        sys.exit(SKIP)
    if os.geteuid() != 0:
        print("SKIP: booting a container needs root")
        sys.exit(SKIP)
    cache = os.path.join(H.BUILD_DIR, "CMakeCache.txt")
    if os.path.exists(cache) and "LF_SANITIZE:BOOL=ON" in open(cache).read():
        print("SKIP: the packages do not use this (sanitizer) build; the gcc suite runs this test")
        sys.exit(SKIP)
    t0 = time.time()
    try:
        test_build()
        test_lintian()
        test_control_fields_say_only_what_is_true()
        try:
            test_boot_and_install()
        except Skip as e:
            print(f"SKIP: {e}")
            sys.exit(SKIP)
        H.run_tests([test_files_users_docs_manuals, test_unconfigured_service_stays_down_and_says_why,
                     test_configure_roles_and_run_the_pipeline, test_upgrade_while_running,
                     test_reboot_brings_every_service_back, test_remove_stops_and_keeps_data,
                     test_purge_removes_what_policy_says])
    finally:
        try:
            ct.poweroff()
        except Exception as e:  # noqa: BLE001 - the container must not outlive the test
            print(f"poweroff: {e}")
            ct.kill()
        print(f"test_packaging: {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
