"""bench/parse-accuracy/rebuild_truth.py: the per-line ground truth of a Loghub system rebuilt from its
template lists. A small system written here (the most specific template wins, the published lists'
broken quoting and broken lines, a line no template takes, a log that is not UTF-8); and, when
../shared/loghub is there, its eight systems rebuilt from template lists taken out of their stored
ground truth, which must give the stored grouping exactly (docs/parsing.md says so)."""
import collections
import csv
import json
import os
import subprocess
import sys

from lfharness import SOURCE_DIR, check, run_tests, scratch_dir

TOOL = os.path.join(SOURCE_DIR, "bench", "parse-accuracy", "rebuild_truth.py")
LOGHUB = os.path.join(SOURCE_DIR, "..", "shared", "loghub")


def rebuild(d, *args):
    return subprocess.run([sys.executable, TOOL, *args, d], capture_output=True, text=True, timeout=300)


def column(path, name):
    with open(path, newline="", encoding="utf-8") as f:
        return [r[name] for r in csv.DictReader(f)]


def write(path, text, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(text)


def test_small_system():
    d = scratch_dir()
    write(os.path.join(d, "settings.json"), json.dumps({"Toy": {"log_format": "<Level> <Content>", "regex": []}}))
    base = os.path.join(d, "Toy", "Toy_2k.log")
    write(base, "INFO user root logged in\r\n"
                "INFO user alice logged in\r\n"
                'WARN connection from "#8#"\r\n'
                "INFO Page bounds {{0, 0}, {400, 400}}\r\n"
                "INFO something nobody listed\r\n"
                "INFO user  bob   logged in")
    # as published: E2 more specific than E1; E3 quoted CSV; E4 broken over two lines
    write(base + "_templates.csv", 'EventId,EventTemplate\nE1,user <*> logged in\nE2,user root logged in\n'
                                   'E3,"connection from ""#<*>#"""\nE4,"Page bounds {{<*>, <*>}\n{<*>, <*>}}"\n')
    # the corrected list with Thunderbird's unbalanced quote
    write(base + "_templates_corrected.csv", 'EventId,EventTemplate\nE1,user <*> logged in\n'
                                             'E3,"connection from <*>\nE4,"Page bounds {{<*>, <*>}\n{<*>, <*>}}"\n')
    p = rebuild(d)
    check(p.returncode == 0, p.stderr)
    ids = column(base + "_structured.csv", "EventId")
    check(ids == ["E2", "E1", "E3", "E4", "unmatched-5", "E1"], f"ids {ids}")
    tm = column(base + "_structured_corrected.csv", "EventTemplate")
    check(tm == ["user <*> logged in", "user <*> logged in", "connection from <*>", "Page bounds {{<*>, <*>}, {<*>, <*>}}",
                 "something nobody listed", "user <*> logged in"], f"templates {tm}")
    check("line 5 matches no template" in p.stderr and "1 matched no template" in p.stderr, p.stderr)
    check(column(base + "_structured.csv", "Level")[2] == "WARN", "the format's fields are written")
    # existing files are kept unless --force
    write(base, "INFO user carol logged in\n")
    p = rebuild(d)
    check(p.returncode == 0 and "kept" in p.stderr, p.stderr)
    check(len(column(base + "_structured.csv", "EventId")) == 6, "kept without --force")
    p = rebuild(d, "--force")
    check(p.returncode == 0 and column(base + "_structured.csv", "EventId") == ["E1"], p.stderr)
    # a log that is not UTF-8 is refused, not matched with its bytes replaced
    write(base, b"INFO user \xff logged in\n", "wb")
    p = rebuild(d, "--force")
    check(p.returncode != 0 and "not UTF-8" in p.stderr, f"{p.returncode} {p.stderr}")


def grouping_equal(a, b):
    ga, gb = collections.defaultdict(set), collections.defaultdict(set)
    for i, (x, y) in enumerate(zip(a, b)):
        ga[x].add(i)
        gb[y].add(i)
    return len(a) == len(b) and sorted(map(sorted, ga.values())) == sorted(map(sorted, gb.values()))


def test_shared_systems():
    if not os.path.exists(os.path.join(LOGHUB, "settings.json")):
        print("skip: no ../shared/loghub")
        return
    d = scratch_dir()
    with open(os.path.join(LOGHUB, "settings.json")) as f:
        settings = json.load(f)
    write(os.path.join(d, "settings.json"), json.dumps(settings))
    for s in settings:
        src = os.path.join(LOGHUB, s, f"{s}_2k.log")
        dst = os.path.join(d, s, f"{s}_2k.log")
        os.makedirs(os.path.dirname(dst))
        os.symlink(os.path.abspath(src), dst)
        # the template lists, as they would be published: one row per event of the stored truth
        for stored, listed, key in (("_structured.csv", "_templates.csv", "EventId"),
                                    ("_structured_corrected.csv", "_templates_corrected.csv", "EventTemplate")):
            seen = {}
            with open(src + stored, newline="", encoding="utf-8") as f:
                for r in csv.DictReader(f):
                    seen.setdefault(r[key], r["EventTemplate"])
            with open(dst + listed, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["EventId", "EventTemplate"])
                for i, (k, t) in enumerate(seen.items()):
                    w.writerow([k if key == "EventId" else f"C{i}", t])
    p = rebuild(d)
    check(p.returncode == 0, p.stderr[-2000:])
    same_template = total = 0
    for s in settings:
        src, dst = os.path.join(LOGHUB, s, f"{s}_2k.log"), os.path.join(d, s, f"{s}_2k.log")
        check(grouping_equal(column(src + "_structured.csv", "EventId"), column(dst + "_structured.csv", "EventId")),
              f"{s}: the rebuilt grouping differs from the stored one")
        a = column(src + "_structured_corrected.csv", "EventTemplate")
        b = column(dst + "_structured_corrected.csv", "EventTemplate")
        same_template += sum(" ".join(x.split()) == " ".join(y.split()) for x, y in zip(a, b))
        total += len(a)
    check(total == 16000 and same_template >= 15999, f"{same_template} of {total} corrected templates as stored")


if __name__ == "__main__":
    run_tests([test_small_system, test_shared_systems])
