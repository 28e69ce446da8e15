#!/usr/bin/env python3
"""Debian packages: build them (packaging/build-deb.sh), lintian reports no error or warning, install
them into a clean Debian 12 root made by debootstrap (minbase, cached under build/pkgtest), check
files, the logferry user, permissions and the keys made on first install, start every program as its
unit would (user logferry, packaged configuration) in a private network namespace and ask /healthz,
reinstall without losing keys, then purge and check nothing is left.

Slow (a package build plus an install; about 3-5 minutes once the debootstrap cache exists): CI can
leave it out with `ctest -E integration.test_packaging`, or LF_SKIP_PACKAGING=1. Needs root (chroot,
namespaces) and Debian's mirror for debootstrap and the dependencies of the packages."""
import glob
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import lfharness as H  # noqa: E402

SRC = H.SOURCE_DIR
WORK = os.path.join(SRC, "build", "pkgtest")
BASE = os.path.join(WORK, "base")          # debootstrap result, reused between runs
ARCHIVES = os.path.join(WORK, "archives")  # .debs apt fetched into the root, reused between runs
ROOT = os.path.join(WORK, "root")          # the root of this run, a fresh copy of BASE
OUT = os.path.join(WORK, "dist")
MIRROR = os.environ.get("LF_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PROGRAMS = {"uploader": 8441, "receiver": 8440, "parser": 8442, "analytics": 8443, "monitor": 8444}
# The one value a packaged configuration cannot have: the site's name, given at the receiver.
EXTRA = {"uploader": ["--set", "uploader.site=pkgtest"]}
PACKAGES = ["logferry", "logferry-common"] + [f"logferry-{p}" for p in PROGRAMS]

state = {}


def sh(args, timeout=900, check=True, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}\nstdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}")
    return r


def in_root(cmd, **kw):
    """Runs cmd inside ROOT with its own /proc, in a private mount namespace (nothing leaks to the host)."""
    script = 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"'
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    return sh(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, ROOT] + cmd, env=env, **kw)


def root_path(p):
    return os.path.join(ROOT, p.lstrip("/"))


def test_build():
    t0 = time.time()
    shutil.rmtree(OUT, ignore_errors=True)
    r = sh([os.path.join(SRC, "packaging", "build-deb.sh")], env=dict(os.environ, LF_DEB_OUT=OUT))
    debs = sorted(glob.glob(os.path.join(OUT, "*.deb")))
    names = {os.path.basename(d).split("_")[0] for d in debs}
    for p in PACKAGES:
        H.check(p in names, f"{p} not built: {sorted(names)}\n{r.stdout[-2000:]}")
    state["debs"] = [d for d in debs if "-dbgsym_" not in d]
    state["changes"] = glob.glob(os.path.join(OUT, "*.changes"))[0]
    print(f"     built {len(debs)} packages in {time.time() - t0:.0f}s", flush=True)


def test_lintian():
    r = sh(["lintian", "--fail-on", "none", "--tag-display-limit", "0", state["changes"]])
    bad = [line for line in r.stdout.splitlines() if line[:2] in ("E:", "W:")]
    H.check(not bad, "lintian:\n" + "\n".join(bad))


def make_root():
    if not os.path.exists(os.path.join(BASE, "usr", "bin", "apt-get")):
        shutil.rmtree(BASE, ignore_errors=True)
        os.makedirs(os.path.join(WORK, "cache"), exist_ok=True)
        sh(["debootstrap", "--variant=minbase", "--cache-dir=" + os.path.join(WORK, "cache"),
            "bookworm", BASE, MIRROR], timeout=1800)
    shutil.rmtree(ROOT, ignore_errors=True)
    sh(["cp", "-a", BASE, ROOT])
    shutil.copy("/etc/resolv.conf", root_path("/etc/resolv.conf"))
    # As in a container: packages never start services here (systemd is not running anyway).
    with open(root_path("/usr/sbin/policy-rc.d"), "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(root_path("/usr/sbin/policy-rc.d"), 0o755)
    os.makedirs(ARCHIVES, exist_ok=True)
    for d in glob.glob(os.path.join(ARCHIVES, "*.deb")):
        shutil.copy(d, root_path("/var/cache/apt/archives/"))


def test_install():
    t0 = time.time()
    make_root()
    os.makedirs(root_path("/tmp/debs"), exist_ok=True)
    for d in state["debs"]:
        shutil.copy(d, root_path("/tmp/debs/"))
    in_root(["apt-get", "update", "-qq"])
    debs = sorted("/tmp/debs/" + os.path.basename(d) for d in state["debs"])
    r = in_root(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + debs)
    state["install_log"] = r.stdout + r.stderr
    for d in glob.glob(root_path("/var/cache/apt/archives/*.deb")):
        shutil.copy(d, ARCHIVES)
    print(f"     clean root and install in {time.time() - t0:.0f}s", flush=True)


def stat_of(path):
    st = os.stat(root_path(path))
    return st.st_mode & 0o7777, st.st_uid, st.st_gid


def test_files_users_permissions():
    pw = open(root_path("/etc/passwd")).read().splitlines()
    user = [line.split(":") for line in pw if line.startswith("logferry:")]
    H.check(len(user) == 1, "no logferry user in the root")
    uid, gid, home, shell = int(user[0][2]), int(user[0][3]), user[0][5], user[0][6]
    H.check(uid < 1000 and uid != 0, f"logferry is not a system user: uid {uid}")
    H.check(home == "/var/lib/logferry" and shell.endswith("nologin"), f"home {home}, shell {shell}")
    grp = [line for line in open(root_path("/etc/group")).read().splitlines() if line.startswith("logferry:")]
    H.check(len(grp) == 1 and int(grp[0].split(":")[2]) == gid, "no logferry group")
    state["uid"], state["gid"] = uid, gid
    H.check(stat_of("/etc/logferry") == (0o750, 0, gid), f"/etc/logferry {stat_of('/etc/logferry')}")
    H.check(stat_of("/var/lib/logferry") == (0o750, uid, gid), f"/var/lib/logferry {stat_of('/var/lib/logferry')}")
    conffiles = in_root(["dpkg-query", "-W", "-f", "${Conffiles}\n"] + PACKAGES).stdout
    for p in PROGRAMS:
        conf = f"/etc/logferry/{p}.conf"
        H.check(os.access(root_path(f"/usr/bin/logferry-{p}"), os.X_OK), f"no /usr/bin/logferry-{p}")
        H.check(stat_of(conf) == (0o640, 0, gid), f"{conf} {stat_of(conf)}")
        H.check(conf in conffiles, f"{conf} is not a conffile")
        H.check(stat_of(f"/var/lib/logferry/{p}") == (0o750, uid, gid), f"state dir of {p}")
        unit = root_path(f"/usr/lib/systemd/system/logferry-{p}.service")
        if not os.path.exists(unit):
            unit = root_path(f"/lib/systemd/system/logferry-{p}.service")
        text = open(unit).read()
        for want in ("Type=notify", "WatchdogSec=", "ProtectSystem=strict", f"StateDirectory=logferry/{p}",
                     "NoNewPrivileges=yes", "User=logferry"):
            H.check(want in text, f"logferry-{p}.service lacks {want}")
        H.check(os.path.lexists(root_path(f"/etc/systemd/system/multi-user.target.wants/logferry-{p}.service")),
                f"logferry-{p}.service not enabled")
        text = open(root_path(conf)).read()
        H.check("--dump-config" in text and "[http]" in text, f"{conf} is not the dumped configuration")
        in_root([f"/usr/bin/logferry-{p}", "--config", conf, "--check-config"])
    H.check(os.path.exists(root_path("/usr/lib/sysusers.d/logferry-common.conf")), "no sysusers.d file")
    H.check(os.path.exists(root_path("/usr/share/doc/logferry-receiver/examples/logferry-receiver.conf")),
            "no nginx example for TLS in front of the receiver")
    H.check(os.path.exists(root_path("/usr/share/doc/logferry-common/install.md"))
            or os.path.exists(root_path("/usr/share/doc/logferry-common/install.md.gz")), "no install.md")


def test_keys_made_on_first_install():
    uid, gid = state["uid"], state["gid"]
    key = "/etc/logferry/uploader.key"
    H.check(stat_of(key) == (0o600, uid, gid), f"{key} {stat_of(key)}")
    H.check("logferry-receiver sites add" in state["install_log"], "the uploader's install did not print the sites add line")
    keys = "/var/lib/logferry/receiver/keys"
    H.check(stat_of(keys) == (0o700, uid, gid), f"{keys} {stat_of(keys)}")
    files = os.listdir(root_path(keys))
    H.check(len(files) >= 1, "the receiver keyring is empty")
    for f in files:
        H.check(stat_of(f"{keys}/{f}") == (0o600, uid, gid), f"key {f} {stat_of(keys + '/' + f)}")
    listed = in_root(["/usr/bin/logferry-receiver", "keys", "list"]).stdout
    H.check("current" in listed, f"keys list: {listed}")
    state["keys"] = sorted(files)
    state["uploader_key"] = open(root_path(key), "rb").read()


def test_programs_answer_healthz():
    """Each program started as its unit would (user logferry, /etc/logferry/<p>.conf), inside the root
    and a private network namespace; /healthz is asked from that namespace."""
    holder = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "sleep", "300"])
    procs = []
    try:
        ns = str(holder.pid)
        for _ in range(50):
            if os.readlink(f"/proc/{ns}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            time.sleep(0.1)
        sh(["nsenter", "-t", ns, "-n", "ip", "link", "set", "lo", "up"])
        sh(["nsenter", "-t", ns, "-m", "mount", "-t", "proc", "proc", root_path("/proc")])
        for p in PROGRAMS:
            log = open(os.path.join(WORK, f"{p}.log"), "w")
            cmd = ["nsenter", "-t", ns, "-n", "-m", "chroot", ROOT, "setpriv", "--reuid=logferry",
                   "--regid=logferry", "--init-groups", f"/usr/bin/logferry-{p}", "--config", f"/etc/logferry/{p}.conf"] + EXTRA.get(p, [])
            procs.append((p, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})))
        probe = ("import json,sys,time,urllib.request,urllib.error\n"
                 "out={}\n"
                 "for p,port in json.loads(sys.argv[1]).items():\n"
                 "  for i in range(100):\n"
                 "    try:\n"
                 "      r=urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz',timeout=2); out[p]=[r.status,r.read().decode()[:300]]; break\n"
                 "    except urllib.error.HTTPError as e: out[p]=[e.code,e.read().decode()[:300]]; break\n"
                 "    except OSError as e: out[p]=[0,str(e)]; time.sleep(0.1)\n"
                 "print(json.dumps(out))\n")
        r = sh(["nsenter", "-t", ns, "-n", sys.executable, "-c", probe, json.dumps(PROGRAMS)], timeout=120)
        answers = json.loads(r.stdout)
        bad = {}
        for p, (code, body) in answers.items():
            print(f"     logferry-{p}: /healthz {code} {body[:120]}", flush=True)
            if code == 0:
                bad[p] = body
        for p, proc in procs:
            if proc.poll() is not None:
                bad.setdefault(p, f"exited {proc.returncode}")
        logs = {p: open(os.path.join(WORK, f"{p}.log")).read()[-800:] for p in bad}
        H.check(not bad, f"no /healthz answer: {bad}\nlogs: {logs}")
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        holder.kill()
        holder.wait()


def test_reinstall_keeps_keys_and_conffiles():
    with open(root_path("/etc/logferry/monitor.conf"), "a") as f:
        f.write("\n# local change\n")
    debs = sorted("/tmp/debs/" + os.path.basename(d) for d in state["debs"])
    in_root(["apt-get", "install", "-y", "-q", "--reinstall", "-o", "Dpkg::Options::=--force-confold"] + debs)
    H.check(sorted(os.listdir(root_path("/var/lib/logferry/receiver/keys"))) == state["keys"], "keyring changed")
    H.check(open(root_path("/etc/logferry/uploader.key"), "rb").read() == state["uploader_key"], "site key changed")
    H.check("# local change" in open(root_path("/etc/logferry/monitor.conf")).read(), "local conffile change lost")
    H.check(stat_of("/etc/logferry/monitor.conf") == (0o640, 0, state["gid"]), "conffile mode after reinstall")


def test_purge_is_clean():
    in_root(["apt-get", "purge", "-y", "-q"] + PACKAGES)
    left = [p for p in ("/etc/logferry", "/var/lib/logferry", "/usr/lib/sysusers.d/logferry-common.conf",
                        "/usr/lib/tmpfiles.d/logferry-common.conf")
            if os.path.lexists(root_path(p))]
    left += glob.glob(root_path("/etc/systemd/system/*/logferry-*")) + glob.glob(root_path("/usr/bin/logferry-*"))
    H.check(not left, f"left after purge: {left}")
    status = in_root(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n"], check=False).stdout
    H.check(not [line for line in status.splitlines() if line.startswith("logferry")], f"still known to dpkg: {status}")


def main():
    if os.environ.get("LF_SKIP_PACKAGING") == "1":
        print("SKIP: LF_SKIP_PACKAGING=1")
        return
    if not shutil.which("dpkg-buildpackage"):
        print("SKIP: dpkg-buildpackage is missing (scripts/install-deps.sh installs devscripts)")
        return
    t0 = time.time()
    try:
        H.run_tests([test_build, test_lintian, test_install, test_files_users_permissions,
                     test_keys_made_on_first_install, test_programs_answer_healthz,
                     test_reinstall_keeps_keys_and_conffiles, test_purge_is_clean])
    finally:
        print(f"test_packaging: {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
