"""`logferry-parser parse`: events as JSON lines from hostile input (CRLF, no final newline, NUL,
invalid UTF-8, a line of megabytes), continuation lines, configured and built-in log types, template
persistence across runs, and every Loghub system of ../shared/loghub when it is there."""
import json
import os
import subprocess

from lfharness import SOURCE_DIR, binary, check, run_tests, scratch_dir

PARSER = binary("logferry-parser")
LOGHUB = os.path.join(SOURCE_DIR, "..", "shared", "loghub")
HDFS_FORMAT = "<Date> <Time> <Pid> <Level> <Component>: <Content>"


def parse(args, data=None, expect_rc=0):
    p = subprocess.run([PARSER, "parse"] + args, input=data, capture_output=True, timeout=120)
    check(p.returncode == expect_rc, f"exit {p.returncode}, stderr {p.stderr[:500]!r}")
    events = []
    for raw in p.stdout.split(b"\n")[:-1]:
        events.append(json.loads(raw.decode("utf-8")))  # strict: the output must be valid UTF-8 JSON
    check(p.stdout == b"" or p.stdout.endswith(b"\n"), "output ends with a newline")
    return events, p.stderr.decode("utf-8", "replace")


def test_hostile_bytes():
    d = scratch_dir()
    path = os.path.join(d, "in.log")
    big = b"x" * (3 << 20)
    with open(path, "wb") as f:
        f.write(b"081109 203615 148 INFO dfs.A: first line\r\n")
        f.write(b"081109 203615 149 INFO dfs.A: nul \x00 and bad utf8 \xff\xfe \xc3\x28 ok\r\n")
        f.write(b"081109 203615 150 INFO dfs.A: long " + big + b"\n")
        f.write(b"081109 203615 151 INFO dfs.A: \xe2\x82\xac euro \xf0\x9f\x98\x80 and \"quotes\" \\ \t tab\n")
        f.write(b"081109 203615 152 INFO dfs.A: last line without newline")
    ev, _ = parse(["--format", HDFS_FORMAT, "--no-continuation", "--max-line", "1048576", path])
    check([e["line"] for e in ev] == [1, 2, 3, 4, 5], f"line numbers {[e['line'] for e in ev]}")
    check(ev[0]["content"] == "first line", "CR dropped: %r" % ev[0]["content"])
    check(ev[1]["content"] == "nul \x00 and bad utf8 \ufffd\ufffd \ufffd( ok", repr(ev[1]["content"]))
    check(ev[2].get("truncated") is True and len(ev[2]["content"]) < (1 << 20), "long line cut at max_line")
    check(ev[3]["content"] == "\u20ac euro \U0001F600 and \"quotes\" \\ \t tab", repr(ev[3]["content"]))
    check(ev[4]["content"] == "last line without newline", "final line without newline")
    for e in ev:
        for k in ("line", "ts", "level", "fields", "content", "template_id", "template", "params"):
            check(k in e, f"{k} missing")
        check(set(e["fields"]) == {"Date", "Time", "Pid", "Level", "Component", "Content"}, str(e["fields"]))
        check(len(e["params"]) == e["template"].count("<*>"), "one param per <*>")
    # the same bytes from stdin
    with open(path, "rb") as f:
        ev2, _ = parse(["--format", HDFS_FORMAT, "--no-continuation", "--max-line", "1048576", "-"], f.read())
    check(ev2 == ev, "stdin and file agree")


def test_continuation_and_unmatched():
    data = (b"2020-01-01 10:00:00 ERROR main: request failed\n"
            b"java.lang.IllegalStateException: boom\n"
            b"\tat com.example.A.run(A.java:10)\n"
            b"2020-01-01 10:00:01 INFO main: recovered after 3 tries\n")
    fmt = ["--format", "<Date> <Time> <Level> <Component>: <Content>", "--time-format", "%Y-%m-%d %H:%M:%S"]
    ev, _ = parse(fmt + ["-"], data)
    check(len(ev) == 2, f"{len(ev)} events")
    check(ev[0]["continuation"] == ["java.lang.IllegalStateException: boom", "\tat com.example.A.run(A.java:10)"],
          str(ev[0].get("continuation")))
    check(ev[0]["ts"] == "2020-01-01T10:00:00.000Z" and ev[0]["level"] == "ERROR", str(ev[0]))
    check(ev[1]["line"] == 4 and ev[1]["template"] == "recovered after <*> tries", str(ev[1]))
    check(ev[1]["params"] == ["3"], str(ev[1]["params"]))
    ev, _ = parse(fmt + ["--no-continuation", "-"], data)
    check(len(ev) == 4 and ev[1].get("unmatched") is True and ev[1]["fields"] == {}, str(ev[1]))
    # an unmatched first line is an event of its own even with continuation
    ev, _ = parse(fmt + ["-"], b"orphan line\n" + data)
    check(len(ev) == 3 and ev[0].get("unmatched") is True, str(ev[0]))


def test_configured_and_builtin_types():
    d = scratch_dir()
    conf = os.path.join(d, "parser.conf")
    with open(conf, "w") as f:
        f.write("[logtype.web]\n"
                "format = \\[<Time>\\] \\[<Level>\\] <Content>\n"
                "mask = (\\d+\\.){3}\\d+\n"
                "time_format = %a %b %d %H:%M:%S %Y\n"
                "timezone = +01:00\n")
    data = b"[Sun Dec 04 04:47:44 2005] [error] [client 10.0.0.1] Directory index forbidden\n"
    ev, _ = parse(["--type", "web", "--config", conf, "-"], data)
    check(ev[0]["ts"] == "2005-12-04T03:47:44.000Z", ev[0]["ts"])
    check(ev[0]["template"] == "[client <*>] Directory index forbidden", ev[0]["template"])
    check(ev[0]["params"] == ["10.0.0.1"], str(ev[0]["params"]))
    ev, _ = parse(["--type", "jsonlines", "--config", conf, "-"],
                  b'{"time":"2021-05-06T07:08:09Z","severity":"warn","message":"queue 17 is full"}\nnot json\n')
    check(ev[0]["level"] == "warn" and ev[0]["ts"] == "2021-05-06T07:08:09.000Z", str(ev[0]))
    check(ev[0]["template"] == "queue <*> is full" and ev[0]["fields"]["severity"] == "warn", str(ev[0]))
    check(ev[1].get("unmatched") is True and ev[1]["content"] == "not json", str(ev[1]))
    _, err = parse(["--type", "nosuch", "--config", conf, "-"], b"", expect_rc=2)
    check("nosuch" in err, err)
    with open(conf, "a") as f:
        f.write("[logtype.bad]\nformat = <A>\nbogus_key = 1\n")
    _, err = parse(["--type", "web", "--config", conf, "-"], b"", expect_rc=2)
    check("bogus_key" in err, err)
    _, err = parse(["--format", "<A> (<B>", "-"], b"", expect_rc=2)
    check("bad line format" in err, err)
    parse(["-"], b"", expect_rc=2)


def test_templates_persist():
    d = scratch_dir()
    tf = os.path.join(d, "templates")
    fmt = ["--format", "<Level> <Content>", "--templates", tf]
    ev1, _ = parse(fmt + ["-"], b"INFO user=alice logged in from 10.0.0.1\nINFO user=bob logged in from 10.0.0.2\n"
                                b"WARN disk full on /var\n")
    check(os.path.exists(tf), "templates saved")
    # two user names are, so far, two event types; a fourth one makes the name a parameter (a few
    # values are that many event types): the template born first keeps its id, the other one becomes
    # its alias (saved with the templates)
    check(ev1[0]["template_id"] != ev1[1]["template_id"], "two values, two templates")
    ev2, _ = parse(fmt + ["-"], b"INFO user=carol logged in from 10.0.0.3\nINFO user=dave logged in from 10.0.0.4\n")
    check(ev2[0]["template_id"] == ev1[0]["template_id"], "a restarted parser keeps its ids")
    check(ev2[1]["template_id"] == ev1[0]["template_id"], "a restarted parser keeps its ids")
    check(ev2[0]["template"] == "user=<*> logged in from <*>", ev2[0]["template"])
    with open(tf) as f:
        lines = f.read().splitlines()
    check(lines[0] == "logferry-templates 2 inline" and len(lines) == 4, str(lines))
    check(lines[3] == f"alias\t{ev1[1]['template_id']}\t{ev1[0]['template_id']}", str(lines))
    # two processes agree on ids without sharing anything
    a, _ = parse(["--format", "<Level> <Content>", "-"], b"INFO user=x logged in from 10.0.0.9\n"
                 b"INFO user=y logged in from 10.0.0.8\nINFO user=z logged in from 10.0.0.7\n")
    b, _ = parse(["--format", "<Level> <Content>", "-"], b"INFO user=z logged in from 10.0.0.7\n"
                 b"INFO user=y logged in from 10.0.0.8\nINFO user=x logged in from 10.0.0.9\n")
    check(a[1]["template_id"] == b[1]["template_id"], "same template, same id")


def test_loghub_systems():
    settings = os.path.join(LOGHUB, "settings.json")
    if not os.path.exists(settings):
        print("skip: no ../shared/loghub")
        return
    with open(settings) as f:
        systems = json.load(f)
    for name, cfg in systems.items():
        args = ["--format", cfg["log_format"]]
        for m in cfg["regex"]:
            args += ["--mask", m]
        path = os.path.join(LOGHUB, name, f"{name}_2k.log")
        ev, _ = parse(args + [path])
        check(len(ev) == 2000, f"{name}: {len(ev)} events")
        check(all(not e.get("unmatched") for e in ev), f"{name}: every line fits its format")
        check(all(len(e["params"]) == e["template"].count("<*>") for e in ev), f"{name}: params")
        ids = {e["template_id"] for e in ev}
        check(1 < len(ids) < 1000, f"{name}: {len(ids)} template ids")
        again, _ = parse(args + [path])
        check(again == ev, f"{name}: deterministic")


if __name__ == "__main__":
    run_tests([test_hostile_bytes, test_continuation_and_unmatched, test_configured_and_builtin_types,
               test_templates_persist, test_loghub_systems])
