#!/usr/bin/env python3
"""Instructions per line of `logferry-parser parse` for each system of Loghub-layout directories,
counted by callgrind (deterministic, so usable on a busy machine where timings are not):
(Ir of the 2k sample repeated 11 times - Ir of it once) / (10 x its lines), which leaves out start-up.
With --varied the ten copies after the first have their numbers varied, as bench-parse-accuracy
times the parser (its --keep-input writes them; the bench is found beside PARSER, in bench/).

Usage: bench/parse-accuracy/ir_per_line.py [--varied] PARSER DIR [DIR...]
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


def varied_inputs(parser, root, out_dir):
    """Writes out_dir/<system>.log for every system of root: its sample and ten copies of it with their
    numbers varied, by bench-parse-accuracy itself (one way of varying for both figures)."""
    bench = os.path.join(os.path.dirname(os.path.abspath(parser)), "bench", "bench-parse-accuracy")
    subprocess.run([bench, "--parser", parser, "--runs", "1", "--lines", "22000", "--scale", "0", "--no-loso",
                    "--keep-input", out_dir, root], stdout=subprocess.DEVNULL, check=True)


def main():
    args = sys.argv[1:]
    varied = "--varied" in args
    args = [a for a in args if a != "--varied"]
    if len(args) < 2:
        sys.exit(__doc__)
    parser, roots = args[0], args[1:]
    per_line = {}
    with tempfile.TemporaryDirectory() as tmp:
        for root in roots:
            settings = json.load(open(os.path.join(root, "settings.json")))
            kept = os.path.join(tmp, "varied")
            if varied:
                os.makedirs(kept, exist_ok=True)
                varied_inputs(parser, root, kept)
            for name, s in sorted(settings.items()):
                d = os.path.join(root, name)
                logs = [f for f in os.listdir(d) if f.endswith("_2k.log")] if os.path.isdir(d) else []
                if not logs:
                    continue
                data = open(os.path.join(d, logs[0]), "rb").read()
                if not data.endswith(b"\n"):
                    data += b"\n"
                lines = data.count(b"\n")
                one = os.path.join(tmp, f"{name}.1.log")
                with open(one, "wb") as f:
                    f.write(data)
                many = os.path.join(kept, f"{name}.log")
                if not varied:
                    many = os.path.join(tmp, f"{name}.11.log")
                    with open(many, "wb") as f:
                        f.write(data * 11)
                with open(many, "rb") as f:
                    many_lines = f.read().count(b"\n")
                args = [parser, "parse", "--format", s["log_format"]]
                for m in s["regex"]:
                    args += ["--mask", m]
                per_line[name] = (ir(args + [many]) - ir(args + [one])) / (many_lines - lines)
                print(f"{name:12s} {per_line[name]:8.0f} instructions/line", flush=True)
    print(f"median       {statistics.median(per_line.values()):8.0f}")


if __name__ == "__main__":
    main()
