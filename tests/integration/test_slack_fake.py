"""The Slack incoming-webhook fake (tests/fakes/slack_fake.py) answers as Slack documents: "ok" on
success, short error strings with 4xx/5xx statuses on bad payloads, 429 with Retry-After when rate
limited; it records accepted messages with arrival times and injects faults on demand."""
import json
import os
import socket
import sys
import time
from urllib.parse import urlencode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from fakeproc import Client, start_fake  # noqa: E402
from lfharness import check, run_tests  # noqa: E402

PROC, PORT = start_fake("slack_fake.py")
HOOK = "/services/T000AAA/B000BBB/XXXXsecretXXXX"
S = Client(PORT)


def post(payload, ctype="application/json", path=HOOK, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    st, hdrs, data = S.request("POST", path, body, {"Content-Type": ctype} if ctype else {})
    return st, hdrs, data.decode()


def messages(since=0):
    return S.json("GET", f"/_fake/messages?since={since}")[1]["messages"]


def reset():
    check(S.json("POST", "/_fake/reset")[0] == 200, "reset")


def test_accepts_documented_payloads():
    reset()
    t0 = time.time()
    st, hdrs, body = post({"text": "disk full on central"})
    check(st == 200 and body == "ok", (st, body))
    check(hdrs["content-type"].startswith("text/html"), hdrs)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*queue* depth 1200"}}]
    st, _, body = post({"text": "fallback", "blocks": blocks})
    check(st == 200 and body == "ok", body)
    st, _, body = post({"attachments": [{"fallback": "f", "color": "danger", "text": "x"}]})
    check(st == 200, body)
    st, _, body = post({"blocks": blocks})
    check(st == 200, body)
    # The legacy form encoding is accepted too.
    st, _, body = post(None, "application/x-www-form-urlencoded",
                       raw=urlencode({"payload": json.dumps({"text": "form"})}).encode())
    check(st == 200 and body == "ok", body)
    msgs = messages()
    check(len(msgs) == 5, msgs)
    check(msgs[0]["payload"] == {"text": "disk full on central"} and msgs[0]["path"] == HOOK, msgs[0])
    check(msgs[1]["payload"]["blocks"] == blocks, msgs[1])
    check(msgs[4]["payload"] == {"text": "form"}, msgs[4])
    check(all(t0 - 1 <= m["received_at"] <= time.time() + 1 for m in msgs), msgs)
    check([m["received_at"] for m in msgs] == sorted(m["received_at"] for m in msgs), "arrival order")
    check(len(messages(since=3)) == 2, "since")


def test_rejects_bad_payloads():
    reset()
    cases = [
        (None, "application/json", b"{not json", 400, "invalid_payload"),
        (None, "application/json", b"[1,2]", 400, "invalid_payload"),
        ({"text": "x"}, "text/plain", None, 400, "invalid_payload"),
        ({"text": "x"}, None, None, 400, "invalid_payload"),
        ({"text": 5}, "application/json", None, 400, "invalid_payload"),
        ({}, "application/json", None, 400, "missing_text_or_fallback_or_attachments"),
        ({"text": ""}, "application/json", None, 400, "missing_text_or_fallback_or_attachments"),
        ({"username": "bot"}, "application/json", None, 400, "missing_text_or_fallback_or_attachments"),
        ({"blocks": "nope"}, "application/json", None, 400, "invalid_blocks"),
        ({"blocks": [{"text": "no type"}]}, "application/json", None, 400, "invalid_blocks"),
        ({"blocks": [{"type": "divider"}] * 51}, "application/json", None, 400, "invalid_blocks"),
        ({"text": "x", "attachments": {"a": 1}}, "application/json", None, 400, "invalid_attachments"),
    ]
    for payload, ctype, raw, want_status, want_body in cases:
        st, _, body = post(payload, ctype, raw=raw)
        check((st, body) == (want_status, want_body), f"{payload!r} {ctype}: got {st} {body}")
    st, _, body = post({"text": "x"}, path="/services/T1/B2")
    check((st, body) == (404, "no_service"), (st, body))
    st, _, body = S.request("GET", HOOK)
    check(st == 405, st)
    check(messages() == [], "nothing rejected was recorded")


def test_rate_limit_retry_after():
    reset()
    S.json("POST", "/_fake/faults", {"rate_limit": 2, "retry_after": 7})
    for _ in range(2):
        st, hdrs, body = post({"text": "burst"})
        check(st == 429 and hdrs.get("retry-after") == "7", (st, hdrs))
    st, _, body = post({"text": "after"})
    check(st == 200 and body == "ok", body)
    msgs = messages()
    check([m["payload"]["text"] for m in msgs] == ["after"], msgs)
    reqs = S.json("GET", "/_fake/requests")[1]["requests"]
    check([r["status"] for r in reqs] == [429, 429, 200], reqs)


def test_status_500_and_canned_answers():
    reset()
    S.json("POST", "/_fake/faults", {"status_500": 1})
    st, _, body = post({"text": "x"})
    check((st, body) == (500, "rollup_error"), (st, body))
    S.json("POST", "/_fake/faults", {"answer_status": 410, "answer_body": "channel_is_archived",
                                     "answer_count": 1})
    st, _, body = post({"text": "x"})
    check((st, body) == (410, "channel_is_archived"), (st, body))
    st, _, body = post({"text": "x"})
    check(st == 200, st)
    st, faults = S.json("GET", "/_fake/faults")
    check(faults["status_500"] == 0 and faults["answer_count"] == 0, faults)
    st, body = S.json("POST", "/_fake/faults", {"bogus": 1})
    check(st == 400, body)


def test_hang():
    reset()
    S.json("POST", "/_fake/faults", {"hang": 1})
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    body = json.dumps({"text": "never"}).encode()
    s.sendall(b"POST " + HOOK.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    s.settimeout(1.0)
    got = b""
    try:
        got = s.recv(100)
    except TimeoutError:
        pass
    s.close()
    check(got == b"", f"hung request was answered: {got!r}")
    # The next request is answered normally, and the hung one was not recorded.
    st, _, body = post({"text": "fine"})
    check(st == 200, st)
    check([m["payload"]["text"] for m in messages()] == ["fine"], messages())


def test_delay_and_keep_alive():
    reset()
    c = Client(PORT)
    S.json("POST", "/_fake/faults", {"delay_ms": 200})
    t0 = time.time()
    st, _, _ = c.request("POST", HOOK, json.dumps({"text": "slow"}), {"Content-Type": "application/json"})
    check(st == 200 and time.time() - t0 >= 0.19, time.time() - t0)
    S.json("POST", "/_fake/faults", {"delay_ms": 0})
    for i in range(4):
        st, _, _ = c.request("POST", HOOK, json.dumps({"text": f"m{i}"}), {"Content-Type": "application/json"})
        check(st == 200, st)
    check(c.connects == 1, f"{c.connects} connections")
    c.close()


if __name__ == "__main__":
    run_tests([test_accepts_documented_payloads, test_rejects_bad_payloads, test_rate_limit_retry_after,
               test_status_500_and_canned_answers, test_hang, test_delay_and_keep_alive])
