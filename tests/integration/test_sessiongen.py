"""logferry-sessiongen: deterministic output, a ground truth that matches the files, realistic shape
(long tail of sizes, returning users, version roll-out, crashes, stack traces), both formats."""
import collections
import datetime
import filecmp
import json
import os
import re
import statistics
import subprocess

from lfharness import binary, check, run_tests, scratch_dir

GEN = binary("logferry-sessiongen")

CLASSIC_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}\.\d{3}) (DEBUG|INFO|WARN|ERROR|FATAL) *\[([^\]]+)\] (.*)$")
CONTINUATION_RE = re.compile(r"^(\t|    at |Caused by: )")
SHUTDOWN = "Shutdown complete after "


def gen(*args, expect=0, timeout=300):
    p = subprocess.run([GEN, *map(str, args)], capture_output=True, timeout=timeout)
    check(p.returncode == expect,
          f"{args}: exit {p.returncode}, wanted {expect}; stderr: {p.stderr.decode(errors='replace')}")
    return p


def load_truth(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def iso_ms(s):
    """'2026-11-02T09:15:01.123Z' -> ms since the epoch."""
    d = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return round(d.timestamp() * 1000)


def tree(d):
    out = {}
    for root, _, files in os.walk(d):
        for name in files:
            p = os.path.join(root, name)
            out[os.path.relpath(p, d)] = p
    return out


def template_regex(key):
    parts = [re.escape(p) for p in key.split("<*>")]
    return re.compile("^" + "(.*?)".join(parts) + "$", re.S)


# One default-shaped run (default sizes, so the long tail is real) shared by the checks below.
_default = {}


def default_run():
    if not _default:
        d = scratch_dir("lfsg-")
        out, truth = os.path.join(d, "out"), os.path.join(d, "truth.jsonl")
        gen("--out", out, "--seed", 7, "--sessions", 300, "--truth", truth)
        _default.update(out=out, truth=load_truth(truth))
    return _default


def test_help_and_bad_arguments():
    text = gen("--help").stdout.decode()
    for opt in ("--out", "--seed", "--sites", "--users", "--days", "--start", "--sessions", "--max-size",
                "--formats", "--truth", "--layout", "--one-file", "--size", "--templates"):
        check(opt in text, f"--help does not mention {opt}")
    d = scratch_dir("lfsg-")
    gen("--out", d, expect=2)                                   # no seed
    gen("--out", d, "--seed", 1, "--formats", "xml", expect=2)
    gen("--out", d, "--seed", 1, "--start", "2026-02-30", expect=2)
    gen("--out", d, "--seed", 1, "--max-size", "10", expect=2)
    gen("--out", d, "--seed", 1, "--layout", "tree", expect=2)
    gen("--seed", 1, "--one-file", os.path.join(d, "x.log"), expect=2)  # no --size


def test_determinism():
    d = scratch_dir("lfsg-")
    runs = []
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        out = os.path.join(d, name)
        gen("--out", out, "--seed", seed, "--sessions", 120, "--max-size", "1M", "--truth", out + ".truth")
        runs.append(out)
    a, b, c = (tree(r) for r in runs)
    check(len(a) == 121, f"expected 120 sessions and logtypes.conf, got {len(a)} files")
    check(a.keys() == b.keys(), "same seed, different file names")
    for rel in a:
        check(filecmp.cmp(a[rel], b[rel], shallow=False), f"same seed, {rel} differs")
        if rel != "logtypes.conf":
            check(os.stat(a[rel]).st_mtime_ns == os.stat(b[rel]).st_mtime_ns, f"same seed, {rel} mtime differs")
    check(filecmp.cmp(runs[0] + ".truth", runs[1] + ".truth", shallow=False), "same seed, truth differs")
    check(a.keys() != c.keys(), "a different seed gave the same sessions")
    check(not filecmp.cmp(runs[0] + ".truth", runs[2] + ".truth", shallow=False), "different seed, same truth")


def check_big_session(path, t, data):
    """The cheaper check for the long tail's giants: counts, ends, and a sample of lines."""
    check(data.count(b"\n") == t["lines"], f"{t['path']}: line count differs from the truth")
    head = data[:200_000].decode("utf-8", "replace").split("\n")[:-1]
    tail = data[-200_000:].decode("utf-8", "replace").split("\n")[1:-1]
    for line in head + tail:
        if t["format"] == "jsonl":
            json.loads(line)
        else:
            check(CLASSIC_RE.match(line) or CONTINUATION_RE.match(line), f"{t['path']}: bad line {line!r}")
    last = json.loads(tail[-1])["msg"] if t["format"] == "jsonl" else CLASSIC_RE.match(tail[-1]) and tail[-1]
    if not t["crashed"]:
        check(last and SHUTDOWN in last, f"{t['path']}: clean session does not end with its shutdown line")


def check_session(out, t, templates_too):
    path = os.path.join(out, t["path"])
    st = os.stat(path)
    check(st.st_size == t["bytes"], f"{t['path']}: {st.st_size} bytes, truth says {t['bytes']}")
    check(st.st_mtime_ns // 1_000_000 == iso_ms(t["ended_at"]), f"{t['path']}: mtime is not ended_at")
    with open(path, "rb") as f:
        data = f.read()
    check(data.endswith(b"\n"), f"{t['path']}: last line not terminated")
    if len(data) > 3_000_000:
        return check_big_session(path, t, data)
    lines = data.decode("utf-8").split("\n")[:-1]
    check(len(lines) == t["lines"], f"{t['path']}: {len(lines)} lines, truth says {t['lines']}")
    levels = collections.Counter()
    msgs, stamps = [], []
    if t["format"] == "classic":
        for line in lines:
            m = CLASSIC_RE.match(line)
            if m:
                levels[m.group(3)] += 1
                msgs.append(m.group(5))
                stamps.append(f"{m.group(1)}T{m.group(2)}Z")
            else:
                check(CONTINUATION_RE.match(line), f"{t['path']}: neither an event nor a stack line: {line!r}")
                check(msgs, f"{t['path']}: continuation line before any event")
        check(t["continuation_lines"] == len(lines) - len(msgs), f"{t['path']}: continuation count")
    else:
        for line in lines:
            o = json.loads(line)
            for k in ("ts", "level", "component", "msg"):
                check(k in o, f"{t['path']}: JSON line without {k}")
            check(isinstance(o.get("duration_ms", 0), int) and isinstance(o.get("file_size", 0), int),
                  f"{t['path']}: typed fields are not numbers")
            levels[o["level"].upper()] += 1
            msgs.append(o["msg"])
            stamps.append(o["ts"])
        check(t["continuation_lines"] == 0, "JSON lines have no continuation lines")
    check(len(msgs) == t["events"], f"{t['path']}: {len(msgs)} events, truth says {t['events']}")
    check(dict(levels) == {k: v for k, v in t["levels"].items() if v},
          f"{t['path']}: levels {dict(levels)} vs truth {t['levels']}")
    check(sum(t["templates"].values()) == t["events"], f"{t['path']}: template counts do not add up")
    check(stamps[0] == t["started_at"] and stamps[-1] == t["ended_at"], f"{t['path']}: start/end times")
    check(stamps == sorted(stamps), f"{t['path']}: timestamps go backwards")
    if t["crashed"]:
        check(not any(m.startswith(SHUTDOWN) for m in msgs), f"{t['path']}: crashed session has a shutdown line")
    else:
        check(msgs[-1].startswith(SHUTDOWN), f"{t['path']}: clean session does not end with its shutdown line")
    if templates_too:
        # Every message matches one of the session's templates, and no template claims more
        # messages than match it.
        regs = {k: template_regex(k) for k in t["templates"]}
        matching = collections.Counter()
        for m in msgs:
            hits = [k for k, r in regs.items() if r.match(m)]
            check(hits, f"{t['path']}: message matches no template of the truth: {m!r}")
            for k in hits:
                matching[k] += 1
        for k, n in t["templates"].items():
            check(n <= matching[k], f"{t['path']}: template {k!r} counted {n}, only {matching[k]} match")


def test_truth_matches_files():
    run = default_run()
    out, truth = run["out"], run["truth"]
    check(len(truth) == 300, f"{len(truth)} truth records")
    files = tree(out)
    check(set(files) == {t["path"] for t in truth} | {"logtypes.conf"}, "files and truth disagree")
    for t in truth:
        check(t["path"] == f"{t['site']}/{t['product_slug']}/{os.path.basename(t['path'])}", "layout")
        check(os.path.basename(t["path"]).startswith(f"{t['user']}_{t['host']}_"), "file name")
        check_session(out, t, templates_too=t["bytes"] < 300_000)
    with open(os.path.join(out, "logtypes.conf")) as f:
        conf = f.read()
    for want in ("[logtype.classic]", r"format = <Date> <Time> <Level> \[<Component>\] <Content>",
                 "time_format = %Y-%m-%d %H:%M:%S.%f", "[logtype.jsonl]", "builtin = jsonlines",
                 "time_fields = ts", "level_field = level", "message_key = msg"):
        check(want in conf, f"logtypes.conf lacks {want!r}")
    formats = collections.Counter(t["format"] for t in truth)
    check(formats["classic"] > 0 and formats["jsonl"] > 0, f"formats {formats}")
    check(len({t["site"] for t in truth}) == 4, "default is four sites")
    crashed = [t for t in truth if t["crashed"]]
    check(0 < len(crashed) < len(truth) * 0.2, f"{len(crashed)} crashed sessions")


def test_stack_traces_and_vocabulary():
    run = default_run()
    kinds = collections.Counter()
    for t in run["truth"]:
        if t["format"] != "classic" or t["bytes"] > 2_000_000 or not t["continuation_lines"]:
            continue
        with open(os.path.join(run["out"], t["path"]), encoding="utf-8") as f:
            for line in f:
                for prefix in ("\tat ", "    at ", "Caused by: ", "\t#", "\t... "):
                    if line.startswith(prefix):
                        kinds[prefix] += 1
    check(all(kinds[p] for p in ("\tat ", "    at ", "Caused by: ", "\t#", "\t... ")), f"stack line kinds {kinds}")
    vocab = [json.loads(l) for l in gen("--templates").stdout.decode().splitlines()]
    per_product = collections.Counter(v["product"] for v in vocab)
    check(len(per_product) >= 3, f"products {per_product}")
    for prod, n in per_product.items():
        check(60 <= n <= 150, f"{prod}: {n} templates")
    seen = collections.defaultdict(collections.Counter)
    for t in run["truth"]:
        seen[t["product"]].update(t["templates"])
    known = collections.defaultdict(set)
    for v in vocab:
        known[v["product"]].add(v["template"])
    for prod, counts in seen.items():
        check(set(counts) <= known[prod], f"{prod}: truth names templates --templates does not list")
        check(len(counts) >= 40, f"{prod}: only {len(counts)} distinct templates used")
        ranked = sorted(counts.values(), reverse=True)
        check(ranked[0] > 10 * statistics.median(ranked), f"{prod}: no skew in feature usage")


def test_long_tail():
    sizes = sorted(t["bytes"] for t in default_run()["truth"])
    med = statistics.median(sizes)
    check(sizes[0] >= 2048, f"smallest session {sizes[0]} bytes")
    check(sizes[-1] > 20 * med, f"max {sizes[-1]} is not > 20x the median {med}")


def test_users_return_across_weeks():
    truth = default_run()["truth"]
    weeks = collections.defaultdict(set)
    for t in truth:
        d = datetime.date.fromisoformat(t["started_at"][:10])
        weeks[t["user"]].add(d.isocalendar()[:2])
    spans = sorted(len(w) for w in weeks.values())
    check(spans[-1] >= 3, f"no user returns over three weeks: {spans}")
    check(spans[0] == 1, "every user returns: retention would be trivial")
    hosts = collections.defaultdict(set)
    for t in truth:
        if t["product"] != "Beacon Server":
            hosts[t["user"]].add(t["host"])
    check(max(len(h) for h in hosts.values()) >= 2, "no user works on more than one host")


def test_versions_roll_out():
    truth = default_run()["truth"]
    by_product = collections.defaultdict(lambda: collections.defaultdict(list))
    for t in truth:
        by_product[t["product"]][t["version"]].append(iso_ms(t["started_at"]))
    first_day = min(iso_ms(t["started_at"]) for t in truth)
    last_day = max(iso_ms(t["started_at"]) for t in truth)
    for prod, versions in by_product.items():
        order = sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".")))
        # Servers are few, so a small run may miss one of Beacon Server's versions.
        check(len(order) >= (2 if prod == "Beacon Server" else 3), f"{prod}: only versions {order}")
        firsts = [min(versions[v]) for v in order]
        check(firsts == sorted(firsts), f"{prod}: newer versions appear earlier: {order}")
        newest = order[-1]
        check(min(versions[newest]) > first_day + (last_day - first_day) // 3,
              f"{prod}: {newest} appears in the first third of the range")
        mean = {v: statistics.mean(versions[v]) for v in order}
        check(mean[order[-1]] > mean[order[0]], f"{prod}: the newest version is not used later")


def test_formats_and_flat_layout():
    d = scratch_dir("lfsg-")
    out, truth = os.path.join(d, "flat"), os.path.join(d, "t.jsonl")
    gen("--out", out, "--seed", 3, "--sessions", 40, "--max-size", "256K", "--formats", "jsonl",
        "--layout", "flat", "--sites", 2, "--users", 10, "--days", 14, "--start", "2027-01-04", "--truth", truth)
    records = load_truth(truth)
    names = sorted(os.listdir(out))
    check(len(names) == 41 and "logtypes.conf" in names, f"flat layout: {len(names)} entries")
    for t in records:
        check("/" not in t["path"] and t["path"].startswith(f"{t['site']}_{t['product_slug']}_{t['user']}_"),
              f"flat name {t['path']}")
        check(t["format"] == "jsonl", "--formats jsonl still wrote classic")
        check(t["started_at"] >= "2027-01-04", "--start ignored")
        check(t["bytes"] <= 256 * 1024 + 8192, f"--max-size ignored: {t['bytes']}")
        check_session(out, t, templates_too=True)
    check({t["product"] for t in records} >= {"Atlas Studio"}, "desktop product missing")
    check(len({t["site"] for t in records}) <= 2, "--sites ignored")


def test_one_file():
    d = scratch_dir("lfsg-")
    path, truth = os.path.join(d, "big.log"), os.path.join(d, "t.jsonl")
    gen("--one-file", path, "--size", "3M", "--seed", 5, "--truth", truth, "--out", os.path.join(d, "conf"))
    t = load_truth(truth)[0]
    size = os.path.getsize(path)
    check(3 << 20 <= size <= (3 << 20) + 65536, f"--size 3M gave {size} bytes")
    check(not t["crashed"] and t["product"] == "Atlas Studio", "one-file defaults")
    check(os.path.exists(os.path.join(d, "conf", "logtypes.conf")), "logtypes.conf not written with --out")
    t["path"] = os.path.basename(path)
    check_session(d, t, templates_too=False)
    jpath = os.path.join(d, "big.jsonl")
    gen("--one-file", jpath, "--size", "1M", "--seed", 5, "--product", "beacon-server", "--truth", truth)
    t = load_truth(truth)[0]
    t["path"] = os.path.basename(jpath)
    check(t["format"] == "jsonl", "beacon-server writes JSON lines")
    check_session(d, t, templates_too=True)


def test_parser_reads_logtypes_conf():
    """The parser, given DIR/logtypes.conf, finds the events, levels and times the truth names."""
    try:
        parser = binary("logferry-parser")
    except FileNotFoundError:
        print("logferry-parser not built here; checked in the full build")
        return
    d = scratch_dir("lfsg-")
    out, truth = os.path.join(d, "out"), os.path.join(d, "t.jsonl")
    gen("--out", out, "--seed", 21, "--sessions", 30, "--max-size", "256K", "--truth", truth)
    conf = os.path.join(out, "logtypes.conf")
    for t in load_truth(truth):
        p = subprocess.run([parser, "parse", "--type", t["format"], "--config", conf, os.path.join(out, t["path"])],
                           capture_output=True, timeout=120)
        check(p.returncode == 0, f"parser failed on {t['path']}: {p.stderr.decode(errors='replace')}")
        events = [json.loads(line) for line in p.stdout.decode().splitlines()]
        check(len(events) == t["events"], f"{t['path']}: parser found {len(events)} events, truth {t['events']}")
        levels = collections.Counter(e["level"].upper() for e in events)
        check(dict(levels) == {k: v for k, v in t["levels"].items() if v}, f"{t['path']}: levels differ")
        check(events[0]["ts"] == t["started_at"] and events[-1]["ts"] == t["ended_at"], f"{t['path']}: times")


run_tests([
    test_help_and_bad_arguments,
    test_determinism,
    test_truth_matches_files,
    test_stack_traces_and_vocabulary,
    test_long_tail,
    test_users_return_across_weeks,
    test_versions_roll_out,
    test_formats_and_flat_layout,
    test_one_file,
    test_parser_reads_logtypes_conf,
])
