#!/usr/bin/env python3
"""Instructions per line of `logferry-parser parse` for each system of Loghub-layout directories,
counted by callgrind (deterministic, so usable on a busy machine where timings are not):
(Ir of the 2k sample repeated 11 times - Ir of it once) / (10 x its lines), which leaves out start-up.

Usage: bench/parse-accuracy/ir_per_line.py PARSER DIR [DIR...]
       e.g. bench/parse-accuracy/ir_per_line.py build/rel/logferry-parser ../shared/loghub
Needs valgrind. Prints one line per system and the median.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile


def ir(args):
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + args,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", r.stderr).group(1))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    parser, roots = sys.argv[1], sys.argv[2:]
    per_line = {}
    with tempfile.TemporaryDirectory() as tmp:
        for root in roots:
            settings = json.load(open(os.path.join(root, "settings.json")))
            for name, s in sorted(settings.items()):
                d = os.path.join(root, name)
                logs = [f for f in os.listdir(d) if f.endswith("_2k.log")] if os.path.isdir(d) else []
                if not logs:
                    continue
                data = open(os.path.join(d, logs[0]), "rb").read()
                if not data.endswith(b"\n"):
                    data += b"\n"
                lines = data.count(b"\n")
                counts = []
                for reps in (1, 11):
                    path = os.path.join(tmp, f"{name}.{reps}.log")
                    with open(path, "wb") as f:
                        f.write(data * reps)
                    args = [parser, "parse", "--format", s["log_format"]]
                    for m in s["regex"]:
                        args += ["--mask", m]
                    counts.append(ir(args + [path]))
                per_line[name] = (counts[1] - counts[0]) / (10 * lines)
                print(f"{name:12s} {per_line[name]:8.0f} instructions/line", flush=True)
    print(f"median       {statistics.median(per_line.values()):8.0f}")


if __name__ == "__main__":
    main()
