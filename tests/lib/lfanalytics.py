"""The analytics tables computed independently, in Python, from the parsed-events tables: what
logferry-analytics must produce, row for row (tests/integration/test_analytics.py and
test_multihost.py compare with it).

    exp = expected(db, "logferry", templates)   # templates: {template_id: text}
    compare(db, "logferry", "logferry_analytics", templates)
"""
import datetime as dt

import lfharness as H


def source(db, src):
    ses = db.query("SELECT session_id, site, product, product_version, host, user_name, "
                   "DATE_FORMAT(started_at, '%Y-%m-%d'), duration_ms, crashed FROM sessions", src)
    # template ids resolved through merges: a merged template's events count under the one it joined
    canon = {t: c for t, c in db.query("SELECT template_id, canonical_id FROM templates", src) if c is not None}
    evs = [(s, lv, canon.get(t, t)) for s, lv, t in db.query("SELECT session_id, level, template_id FROM events", src)]
    sts = [(s, canon.get(t, t), n) for s, t, n in
           db.query("SELECT session_id, template_id, occurrences FROM session_templates", src)]
    return ses, evs, sts


def nearest_rank(sorted_vals, p):
    """Nearest-rank percentile: the value at 1-based rank ceil(p/100 * n)."""
    rank = max(1, -(-p * len(sorted_vals) // 100))
    return str(sorted_vals[rank - 1])


def expected(db, src, templates):
    ses, evs, sts = source(db, src)
    by_id = {s[0]: s for s in ses}
    usage = {}
    for sid, site, prod, ver, host, user, day, dur, crashed in ses:
        g = usage.setdefault((day, prod, ver, site), {"n": 0, "u": set(), "h": set(), "d": [], "c": 0})
        g["n"] += 1
        if user is not None:
            g["u"].add(user)
        if host is not None:
            g["h"].add(host)
        if dur is not None:
            g["d"].append(int(dur))
        g["c"] += int(crashed) != 0
    daily = []
    for k, g in usage.items():
        d = sorted(g["d"])
        ps = [nearest_rank(d, p) if d else None for p in (50, 90, 99)]
        daily.append(list(k) + [str(g["n"]), str(len(g["u"])), str(len(g["h"]))] + ps + [str(g["c"])])
    feat = {}
    for sid, tid, n in sts:
        s = by_id[sid]
        g = feat.setdefault((s[6], s[2], s[3], s[1], tid), [0, set()])
        g[0] += int(n)
        g[1].add(sid)
    feature = [list(k[:4]) + [k[4], templates[int(k[4])], str(v[0]), str(len(v[1]))] for k, v in feat.items()]
    errs, first = {}, {}
    for sid, level, tid in evs:
        lv = (level or "").lower()
        if lv not in ("error", "fatal"):
            continue
        s = by_id[sid]
        g = errs.setdefault((s[6], s[2], s[3], s[1], sid), [0, 0])
        g[0 if lv == "error" else 1] += 1
        cand = (s[6], s[2], s[3])
        if tid not in first or cand < first[tid]:
            first[tid] = cand
    errors = [list(k) + [str(v[0]), str(v[1])] for k, v in errs.items()]
    new_tpl = [[tid, d, p, v, templates[int(tid)]] for tid, (d, p, v) in first.items()]
    # Weekly retention: cohort = Monday of the user's first week per product.
    act = set()
    for sid, site, prod, ver, host, user, day, dur, crashed in ses:
        if user is None:
            continue
        d = dt.date.fromisoformat(day)
        act.add((prod, user, d - dt.timedelta(days=d.weekday())))
    coh = {}
    for prod, user, w in act:
        coh[(prod, user)] = min(coh.get((prod, user), w), w)
    size = {}
    for (prod, user), c in coh.items():
        size[(prod, c)] = size.get((prod, c), 0) + 1
    ret = {}
    for prod, user, w in act:
        c = coh[(prod, user)]
        k = (c.isoformat(), prod, str((w - c).days // 7))
        ret[k] = ret.get(k, 0) + 1
    retention = [list(k) + [str(v), str(size[(k[1], dt.date.fromisoformat(k[0]))])] for k, v in ret.items()]
    return {"daily_usage": sorted(daily), "feature_usage": sorted(feature), "errors_daily": sorted(errors),
            "new_error_templates": sorted(new_tpl), "retention_weekly": sorted(retention)}


def actual(db, dst):
    cols = {"daily_usage": "*", "feature_usage": "*", "errors_daily": "*", "new_error_templates": "*",
            "retention_weekly": "*"}
    return {t: sorted(db.query(f"SELECT {c} FROM {t}", dst)) for t, c in cols.items()}


def compare(db, src, dst, templates):
    exp, got = expected(db, src, templates), actual(db, dst)
    for t in exp:
        if exp[t] != got[t]:
            missing = [r for r in exp[t] if r not in got[t]][:3]
            extra = [r for r in got[t] if r not in exp[t]][:3]
            raise H.TestFailure(f"{t}: {len(exp[t])} expected rows, {len(got[t])} got; "
                                f"missing {missing}; unexpected {extra}")
        H.check(len(exp[t]) > 0, f"{t}: no rows at all: the data generator is broken")
