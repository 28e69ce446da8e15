#!/usr/bin/env python3
"""Whole-process lines/s of two parser binaries, measured alternately on the same systems, so that a
machine whose speed drifts between runs (a shared VM moves 10-30%) still gives a fair ratio.

Each round runs `bench-parse-accuracy --parser OLD --runs R --no-loso DIR`, then the same with NEW
(the order swaps every round). Prints, per system and for the median over systems: the median
lines/s of each binary over the rounds, and the median of the per-round ratios NEW/OLD.

Usage: bench/parse-accuracy/side_by_side.py OLD NEW DIR [--rounds N] [--runs R]
       (the bench driver is $LF_BUILD_DIR/bench/bench-parse-accuracy, default build/rel)
"""
import argparse
import os
import statistics
import subprocess
import sys


def wall_lines_per_s(driver, parser, directory, runs):
    """{system: wall lines/s, "median": the median over systems} from one bench run."""
    out = subprocess.run([driver, "--parser", parser, "--runs", str(runs), "--no-loso", directory],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    figures = {}
    # rows: system GA "GA ids" PA FTA templates wall cpu; then "mean GA "GA ids" PA FTA wall cpu
    # (lines/s: medians over systems)"
    for row in out.splitlines()[1:]:
        cells = row.split()
        if not cells:
            break
        if cells[0] == "mean":
            figures["median"] = float(cells[5])
            break
        figures[cells[0]] = float(cells[-2])
    if "median" not in figures:
        sys.exit("side_by_side: no summary row in the bench output:\n" + out)
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("dir")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    build = os.environ.get("LF_BUILD_DIR", "build/rel")
    driver = os.path.join(build, "bench", "bench-parse-accuracy")
    got = {"old": [], "new": []}
    for r in range(a.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for which in order:
            got[which].append(wall_lines_per_s(driver, getattr(a, which), a.dir, a.runs))
    print(f"{'system':<12} {'old l/s':>12} {'new l/s':>12} {'new/old':>8}   ({a.rounds} alternated rounds of {a.runs})")
    for system in got["old"][0]:
        old = [g[system] for g in got["old"]]
        new = [g[system] for g in got["new"]]
        ratio = statistics.median(n / o for o, n in zip(old, new))
        print(f"{system:<12} {statistics.median(old):>12,.0f} {statistics.median(new):>12,.0f} {ratio:>8.3f}")


if __name__ == "__main__":
    main()
