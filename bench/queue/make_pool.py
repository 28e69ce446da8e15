"""Writes N tiny sessions (zip with manifest, as the uploader builds them) for bench-queue's HTTP
part: records "ID LEN\n" followed by LEN bytes. Usage: make_pool.py SITE N OUT"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "lib"))
import lfupload as U  # noqa: E402

site, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tag = os.urandom(4).hex()
with open(out, "wb") as f:
    for i in range(n):
        s = U.make_session(site, f"bench {tag} line {i}\n".encode(), identity=f"bench-{tag}-{i}")
        f.write(f"{s.id} {len(s.body)}\n".encode() + s.body)
