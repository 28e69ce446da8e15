"""Must-show: a generator writes sessions while the uploader and the receiver are killed (SIGKILL)
and restarted at random, the network to the receiver is cut and restored (a TCP forwarder in this
test that we pause), and logs are rotated by rename and by copytruncate. At the end every session
is on the receiver exactly once (the receiver's ids are exactly the expected ids: an id binds the
site, the session's identity and the BLAKE2b of its bytes) and a sample is exported and compared
byte for byte. The second run also deletes the uploader's state directory in the middle."""
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import lfharness as H  # noqa: E402
from lfupload import Receiver, session_id  # noqa: E402
from lfuploader import Uploader  # noqa: E402

SESSIONS = int(os.environ.get("LF_CHAOS_SESSIONS", "800"))


class Forwarder:
    """127.0.0.1:port -> the receiver's current port. cut() refuses and resets connections."""

    def __init__(self, target_port_fn):
        self.target = target_port_fn
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.up = True
        self.conns = []
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            if not self.up:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
                continue
            try:
                s = socket.create_connection(("127.0.0.1", self.target()), timeout=5)
            except (OSError, TypeError):
                c.close()
                continue
            with self.lock:
                self.conns += [c, s]
            threading.Thread(target=self._pipe, args=(c, s), daemon=True).start()
            threading.Thread(target=self._pipe, args=(s, c), daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.up = False
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                except OSError:
                    pass
            self.conns = []

    def restore(self):
        self.up = True

    def close(self):
        self.stopped = True
        self.cut()
        self.ls.close()


def pool(n):
    out = H.scratch_dir("lfpool-")
    subprocess.run([H.binary("logferry-sessiongen"), "--out", out, "--seed", "7", "--sessions", str(n),
                    "--max-size", "24K"], check=True, capture_output=True)
    bodies = []
    for root, _, names in os.walk(out):
        for nm in sorted(names):
            if nm.endswith(".log"):
                with open(os.path.join(root, nm), "rb") as f:
                    bodies.append(f.read())
    shutil.rmtree(out)
    return bodies


class Generator(threading.Thread):
    """Writes SESSIONS session files in small chunks; rotates some by rename, some by copytruncate.
    truth: identity -> set of contents that must each be on the receiver once."""

    def __init__(self, src, bodies, seed):
        super().__init__(daemon=True)
        self.src, self.bodies, self.rnd = src, bodies, random.Random(seed)
        self.truth = []
        self.done = False
        self.error = None

    def write(self, path, body):
        with open(path, "ab") as f:
            cuts = sorted(self.rnd.sample(range(1, len(body)), min(3, len(body) - 1)))
            last = 0
            for c in cuts + [len(body)]:
                f.write(body[last:c])
                f.flush()
                last = c
                time.sleep(self.rnd.random() * 0.01)

    def run(self):
        try:
            for i in range(SESSIONS):
                sub = f"d{i % 4}"
                os.makedirs(os.path.join(self.src, sub), exist_ok=True)
                rel = f"{sub}/u{i % 50:04d}_h{i % 7}_20261101T10{i % 60:02d}00Z_{i}.log"
                path = os.path.join(self.src, rel)
                a = self.bodies[i % len(self.bodies)] + f"session {i}\n".encode()
                self.write(path, a)
                self.truth.append((rel, a))
                r = self.rnd.random()
                if r < 0.15:  # rotation by rename
                    os.rename(path, path + ".1")
                elif r < 0.25:  # copytruncate, then the product writes a new session into it
                    shutil.copy2(path, path + ".1")
                    with open(path, "r+b") as f:
                        f.truncate(0)
                    b = self.bodies[(i * 7 + 3) % len(self.bodies)] + f"second {i}\n".encode()
                    self.write(path, b)
                    self.truth.append((rel, b))
                time.sleep(self.rnd.random() * 0.02)
        except Exception as e:  # reported by the test
            self.error = e
        self.done = True


def chaos_run(wipe_state):
    rng = random.Random(11 if wipe_state else 5)
    rx = Receiver()
    fw = Forwarder(lambda: rx.port)
    src = H.scratch_dir("lfsrc-")
    watch = (f"dir = {src}\nrecursive = true\ninclude = *.log, *.log.1\nlog_type = classic\n"
             f"product = atlas\nsettle = 2s\n")
    up = Uploader(rx, {"apps": watch}, url=f"http://127.0.0.1:{fw.port}")
    up.start()
    gen = Generator(src, pool(120), seed=3 if wipe_state else 4)
    gen.start()
    actions = {"kill_uploader": 0, "kill_receiver": 0, "cut": 0, "wipe_state": 0}
    wiped = False
    t0 = time.time()
    while not gen.done:
        time.sleep(rng.uniform(0.5, 2.0))
        a = rng.choice(["kill_uploader", "kill_receiver", "cut"])
        if wipe_state and not wiped and time.time() - t0 > 8:
            a = "wipe_state"
        actions[a] += 1
        if a == "kill_uploader":
            up.kill()
            time.sleep(rng.uniform(0, 0.5))
            up.start()
        elif a == "wipe_state":
            up.kill()
            shutil.rmtree(up.state)
            wiped = True
            up.start()
        elif a == "kill_receiver":
            rx.kill()
            time.sleep(rng.uniform(0, 1.0))
            rx.start()
        else:
            fw.cut()
            time.sleep(rng.uniform(0.5, 3.0))
            fw.restore()
    H.check(gen.error is None, f"generator failed: {gen.error}")
    want = {}
    for rel, body in gen.truth:
        want[session_id(up.site, rel, body)] = (rel, body)
    deadline = time.time() + 90
    have = set()
    while time.time() < deadline:
        have = {r[0] for r in rx.index_rows()}
        if set(want) <= have:
            break
        time.sleep(0.5)
    time.sleep(3)  # anything still arriving would be a copy: give it the chance to show
    have = sorted(r[0] for r in rx.index_rows())
    missing = set(want) - set(have)
    extra = set(have) - set(want)
    H.check(not missing, f"{len(missing)} sessions missing of {len(want)}; e.g. "
                         f"{[want[m][0] for m in list(missing)[:5]]}; actions {actions}\n{up.log_text()[-3000:]}")
    H.check(not extra, f"{len(extra)} sessions on the receiver that are not sessions of the source "
                       f"(copies or partial snapshots); actions {actions}")
    H.check(len(have) == len(set(have)) == len(want), "exactly once")
    for sid in rng.sample(sorted(want), 25):
        z = zipfile.ZipFile(io.BytesIO(rx.export(sid)))
        m = json.loads(z.read("manifest.json"))
        H.check(z.read(m["log_name"]) == want[sid][1], f"{sid} differs from its source")
    if wipe_state:
        H.check(wiped, "state was wiped")
    up.stop()
    fw.close()
    print(f"  {len(want)} sessions from {SESSIONS} files, actions {actions}, {time.time() - t0:.0f}s",
          flush=True)


def test_chaos_kills_cuts_rotations():
    chaos_run(wipe_state=False)


def test_chaos_with_state_dir_deleted_midway():
    chaos_run(wipe_state=True)


if __name__ == "__main__":
    H.run_tests([test_chaos_kills_cuts_rotations, test_chaos_with_state_dir_deleted_midway])
