#!/usr/bin/env python3
"""Checks a token rule of the miner against Loghub ground truths: how many event types contradict it
(one event type whose lines hold two different tokens of the rule's kind in one place, which the rule
would split) and how many pairs of event types support it (lines of two event types that differ in
one place only, where both hold a token of the rule's kind, which the rule keeps apart).

Rules (parser/template_token.c, parser/miner_partition.c):
  past   a past participle: small letters, the first may be a capital, "ed" after three or more
  empty  a key printed without its value ("rhost=") against the key with one ("rhost=host")
  path   a relative path to a file ("Nodes/dn731/pkts_out.rrd") is a parameter: lines where the
         corrected template keeps one as it is contradict it, lines where it does not support it

Usage: bench/parse-accuracy/truth_checks.py DIR [DIR...]   (Loghub layout: S/S_2k.log_structured.csv)
Prints per system and rule: the places of event types that hold such a token (what the rule could get
wrong), contradicting event types, supporting pairs, and an example of each.
"""
import collections
import csv
import os
import re
import sys

PAST = re.compile(r"^[A-Za-z][a-z]{2,}ed[,.;:]*$")
# parser/template_token.c lf_ttok_key_length / lf_ttok_is_empty_value
KEY = re.compile(r"^([\w.-]+=)(.*)$", re.ASCII)
# parser/tokenize.c: a token's pieces (split at these) and is_path's relative case
PIECE_DELIM = re.compile(r"[,!;:=|\"'\[\](){}]")
REL_PATH = re.compile(r"^[\w.-]+(/[\w.-]+){2,}$", re.ASCII)


def is_relative_file_path(piece):
    """tokenize.c is_path for a piece not starting with '/': three or more names joined by single
    '/', the last with an extension of letters after its last dot (not right after the '/')."""
    if len(piece) < 7 or not REL_PATH.match(piece):
        return False
    last = piece.rsplit("/", 1)[1]
    dot = last.rfind(".")
    return dot > 0 and last[dot + 1:].isalpha() and last[dot + 1:].isascii()


def past_kind(tok):
    """The token's value if it is a past participle, else None."""
    return tok.rstrip(",.;:") if PAST.match(tok) and tok[1:].rstrip(",.;:").islower() else None


def empty_kind(tok):
    """'empty' or 'value' for a key=value token (keyed by the key), else None."""
    m = KEY.match(tok)
    return None if not m else (m.group(1), "empty" if m.group(2) in ("", ",", ";") else "value")


def check(rows, rule):
    """rows: (event id, tokens). Returns (places, contradictions, supports): the number of an event
    type's places that hold the rule's kind of token, and examples of the other two."""
    kind = past_kind if rule == "past" else empty_kind
    seen = collections.defaultdict(set)  # (event, ntok, place) -> kinds
    around = collections.defaultdict(set)  # (ntok, place, the other tokens) -> (event, kind)
    for eid, toks in rows:
        for i, t in enumerate(toks):
            k = kind(t)
            if k is None:
                continue
            seen[(eid, len(toks), i)].add(k)
            around[(len(toks), i, tuple(toks[:i]), tuple(toks[i + 1:]))].add((eid, k))
    if rule == "past":
        contra = [(e, sorted(v)) for (e, _, _), v in seen.items() if len(v) > 1]
    else:
        contra = [(e, sorted(v)) for (e, _, _), v in seen.items() if len({s for _, s in v}) > 1]
    support = set()
    for key, v in around.items():
        events = {e for e, _ in v}
        kinds = {k for _, k in v} if rule == "past" else {s for _, (_, s) in v}
        if len(events) > 1 and len(kinds) > 1:
            support.add(tuple(sorted(events)))
    return len(seen), contra, sorted(support)


def check_paths(rows):
    """rows: (event id, tokens, corrected template). Returns (places, contradictions, supports)."""
    places, contra, support = 0, [], []
    for eid, toks, template in rows:
        for t in toks:
            for piece in PIECE_DELIM.split(t):
                if piece.startswith("/") or not is_relative_file_path(piece):
                    continue
                places += 1
                (contra if piece in template else support).append((eid, piece))
    return places, contra, support


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for root in sys.argv[1:]:
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name, name + "_2k.log_structured.csv")
            if not os.path.exists(path):
                continue
            with open(path, newline="", encoding="utf-8") as f:
                rows = [(r["EventId"], r["Content"].split()) for r in csv.DictReader(f)]
            corrected = path.replace("_structured.csv", "_structured_corrected.csv")
            with open(corrected if os.path.exists(corrected) else path, newline="", encoding="utf-8") as f:
                templates = [r["EventTemplate"] for r in csv.DictReader(f)]
            results = [(rule, check(rows, rule)) for rule in ("past", "empty")]
            results.append(("path", check_paths([(e, t, x) for (e, t), x in zip(rows, templates)])))
            for rule, (places, contra, support) in results:
                print(f"{name:12s} {rule:6s} places {places:4d}  contradicting {len(contra):3d}  supporting {len(support):3d}"
                      + (f"  e.g. against {contra[0]}" if contra else "")
                      + (f"  e.g. for {support[0]}" if support else ""))


if __name__ == "__main__":
    main()
