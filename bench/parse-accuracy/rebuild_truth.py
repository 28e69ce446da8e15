#!/usr/bin/env python3
"""Rebuilds the per-line ground truth of Loghub systems that come with template lists only.

For each system S of DIR (or those named), from DIR/settings.json (its log_format), DIR/S/S_2k.log
and the template lists DIR/S/S_2k.log_templates.csv (EventId per template, the original grouping)
and DIR/S/S_2k.log_templates_corrected.csv (the corrected templates of logpai/logparser), writes
the two files bench-parse-accuracy reads:

  S_2k.log_structured.csv            EventId of each line (GA)
  S_2k.log_structured_corrected.csv  EventTemplate of each line (PA, FTA)

Each line's content (the format's Content field) takes the most specific template that matches it
whole: the one with the most constant characters, then the first listed. On the eight systems of
../shared/loghub, whose stored ground truth was made by hand, this gives exactly the stored
grouping and the stored corrected template on 15,999 of 16,000 lines (a HealthApp line whose
template does not match its own content).

Usage: bench/parse-accuracy/rebuild_truth.py [--force] DIR [S...]
Existing files are kept unless --force. Lines no template matches are reported on stderr and get a
group of their own; a log that is not UTF-8 is refused.
"""
import csv
import json
import os
import re
import sys


def format_regex(fmt):
    """Loghub's format notation as a Python regex: <Name> fields match lazily, a run of spaces any
    whitespace."""
    rx, names = "", []
    for part in re.split(r"(<[^<>]+>)", fmt):
        if re.fullmatch(r"<[^<>]+>", part):
            names.append(part[1:-1])
            rx += "(?P<%s>.*?)" % part[1:-1]
        else:
            rx += re.sub(" +", r"\\s+", part)
    return re.compile("^" + rx + "$"), names


def template_regex(t):
    """A template as a regex over the whitespace-normalised content, and its constant characters."""
    t = re.sub(r"\s+", " ", t.strip())
    pieces = t.replace("<NUM>", "<*>").split("<*>")
    rx = ".*?".join(re.sub(r"\\ ", r"\\s+", re.escape(p)) for p in pieces)
    return re.compile("^" + rx + "$", re.S), len(re.sub(r"\s", "", "".join(pieces)))


def load_templates(path):
    """EventId,EventTemplate lines. Read line by line rather than as CSV: some published lists hold
    a template with an unbalanced quote (Thunderbird's 'connection from "<*>'), which a CSV reader
    takes for a field running over the following lines, and some a template broken over two lines
    (Mac's 'Page bounds {{<*>, <*>}' / '{<*>, <*>}}', where the break stood for ', ')."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    records = []
    for line in lines[1:]:
        if records and not re.match(r"^[A-Z]+\d+,", line):
            records[-1] += ", " + line
        elif line:
            records.append(line)
    out = []
    for rec in records:
        eid, t = rec.split(",", 1)
        if len(t) >= 2 and t[0] == '"' and t[-1] == '"' and t.count('"') % 2 == 0:
            t = t[1:-1].replace('""', '"')
        elif t.startswith('"'):
            t = t[1:].replace('""', '"')
        rx, constant = template_regex(t)
        out.append((eid, t, rx, constant))
    return out


def best(templates, content):
    c = re.sub(r"\s+", " ", content.strip())
    fits = [(constant, -i, eid, t) for i, (eid, t, rx, constant) in enumerate(templates) if rx.match(c)]
    if not fits:
        return None, None
    fits.sort(reverse=True)
    return fits[0][2], fits[0][3]


def rebuild(d, s, settings, force):
    base = os.path.join(d, s, s + "_2k.log")
    outs = [base + "_structured.csv", base + "_structured_corrected.csv"]
    if not force and any(os.path.exists(p) for p in outs):
        print(f"{s}: structured files exist, kept (use --force)", file=sys.stderr)
        return 0
    rx, names = format_regex(settings[s]["log_format"])
    try:
        with open(base, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except UnicodeDecodeError as e:  # a line we cannot read is refused, not matched as something else
        sys.exit(f"{base}: not UTF-8 ({e})")
    if lines and lines[-1] == "":
        lines.pop()
    original = load_templates(base + "_templates.csv")
    corrected = load_templates(base + "_templates_corrected.csv")
    rows, unmatched = [], 0
    for i, line in enumerate(lines, 1):
        m = rx.match(line.strip())
        if not m:
            print(f"{s}: line {i} does not fit the format; its whole text is matched", file=sys.stderr)
        content = m.group("Content") if m else line
        eid, _ = best(original, content)
        _, template = best(corrected, content)
        if eid is None or template is None:
            unmatched += 1
            print(f"{s}: line {i} matches no template: {content[:150]}", file=sys.stderr)
            eid = eid or f"unmatched-{i}"
            template = template or content
        fields = [m.group(n) if m else "" for n in names]
        rows.append([i] + fields + [eid, template])
    for path in outs:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["LineId"] + names + ["EventId", "EventTemplate"])
            w.writerows(rows)
    print(f"{s}: {len(rows)} lines, {unmatched} matched no template", file=sys.stderr)
    return 0


def main():
    args = sys.argv[1:]
    force = "--force" in args
    args = [a for a in args if a != "--force"]
    if not args:
        sys.exit(__doc__)
    d = args[0]
    with open(os.path.join(d, "settings.json"), encoding="utf-8") as f:
        settings = json.load(f)
    for s in args[1:] or list(settings):
        rebuild(d, s, settings, force)
    return 0


if __name__ == "__main__":
    main()
