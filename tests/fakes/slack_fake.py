#!/usr/bin/env python3
"""slack_fake: a Slack incoming-webhook catcher for logferry's tests (Python 3 standard library only).

    python3 tests/fakes/slack_fake.py --port 0 --port-file F [--host 127.0.0.1]

Reproduces what Slack documents for incoming webhooks:
  POST /services/<T...>/<B...>/<secret> with Content-Type application/json and a JSON object
  {"text": ..., "blocks"?: [...], "attachments"?: [...], ...} (or the legacy form encoding
  application/x-www-form-urlencoded with payload=<json>). Success is 200 with the body "ok"
  (text/html, as Slack sends it). Errors are HTTP statuses with short plain-text bodies, the strings
  of Slack's incoming-webhook error table:
    400 invalid_payload      the body cannot be understood as its content type says (bad JSON, not an
                             object, a content type other than JSON or form)
    400 missing_text_or_fallback_or_attachments
                             valid JSON with none of text, blocks, attachments (Slack has also been
                             seen to answer "no_text" here; any non-200 is a failure for a client)
    400 invalid_blocks       blocks not a list of objects with a "type", or more than 50
    400 invalid_attachments  attachments not a list of objects
    404 no_service           a path that is not /services/<team>/<bot>/<secret>
    405                      a method other than POST on a webhook path
  Rate limiting answers 429 with a Retry-After header in seconds.
Not reproduced: block and attachment contents are not validated beyond their shape; no message
formatting, threading, unfurling, or the Web API (chat.postMessage); 40,000-character text
truncation is not applied.

Control endpoints:
  GET  /_fake/messages[?since=N]  accepted messages in arrival order: path, payload, content_type,
                                  received_at (Unix time, float), index
  GET  /_fake/requests            every webhook request with its answer status (faults included)
  POST /_fake/faults {"rate_limit": K, "retry_after": N}  next K requests: 429 + Retry-After: N
                     {"status_500": K}                    next K requests: 500 rollup_error
                     {"hang": K}                          next K requests are read and never
                                                          answered (until the client gives up)
                     {"answer_status": S, "answer_body": B, "answer_count": K}
                                                          next K requests: any documented error,
                                                          e.g. 410 channel_is_archived
                     {"delay_ms": D}                      every answer is delayed by D ms
                     GET shows what is left. Order when several are armed: hang, rate_limit,
                     status_500, answer.
  POST /_fake/reset               drops messages, request log and faults
"""
import argparse
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HOOK_RE = re.compile(r"^/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+$")
MAX_BODY = 1 << 20
MAX_BLOCKS = 50


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.reset()

    def reset(self):
        with self.lock:
            self.messages = []
            self.requests = []
            self.faults = {"rate_limit": 0, "retry_after": 1, "status_500": 0, "hang": 0,
                           "answer_status": 0, "answer_body": "", "answer_count": 0, "delay_ms": 0}


def validate(ctype, body):
    """(status, error string) for a rejected payload, or (200, payload dict)."""
    base = (ctype or "").split(";")[0].strip().lower()
    try:
        if base == "application/json":
            payload = json.loads(body.decode("utf-8"))
        elif base == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
            payload = json.loads(form["payload"][-1])
        else:
            return 400, "invalid_payload"
    except (ValueError, KeyError, UnicodeDecodeError):
        return 400, "invalid_payload"
    if not isinstance(payload, dict):
        return 400, "invalid_payload"
    text = payload.get("text")
    if text is not None and not isinstance(text, str):
        return 400, "invalid_payload"
    blocks = payload.get("blocks")
    if blocks is not None:
        if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS or \
                not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks):
            return 400, "invalid_blocks"
    atts = payload.get("attachments")
    if atts is not None:
        if not isinstance(atts, list) or not all(isinstance(a, dict) for a in atts):
            return 400, "invalid_attachments"
    if not text and not blocks and not atts:
        return 400, "missing_text_or_fallback_or_attachments"
    return 200, payload


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "slack_fake"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("slack_fake: " + fmt % args + "\n")

    def answer(self, status, text, ctype="text/html", headers=None):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def handle_any(self):
        st = self.server.state
        parts = urlsplit(self.path)
        if parts.path.startswith("/_fake/"):
            return self.control(parts.path, parse_qs(parts.query))
        body = self.read_body()
        if body is None:
            self.close_connection = True
            return self.answer(413, "request_too_large", headers={"Connection": "close"})
        status = self.webhook(parts.path, body)
        with st.lock:
            st.requests.append({"method": self.command, "path": parts.path, "status": status,
                                "content_type": self.headers.get("Content-Type"),
                                "received_at": time.time()})

    do_GET = do_POST = do_PUT = do_DELETE = handle_any

    def webhook(self, path, body):
        st = self.server.state
        if not HOOK_RE.match(path):
            self.answer(404, "no_service")
            return 404
        if self.command != "POST":
            self.answer(405, "invalid_method", headers={"Allow": "POST"})
            return 405
        with st.lock:
            f = st.faults
            delay = f["delay_ms"]
            fault = None
            if f["hang"] > 0:
                f["hang"] -= 1
                fault = ("hang",)
            elif f["rate_limit"] > 0:
                f["rate_limit"] -= 1
                fault = (429, "rate_limited", {"Retry-After": str(f["retry_after"])})
            elif f["status_500"] > 0:
                f["status_500"] -= 1
                fault = (500, "rollup_error", {})
            elif f["answer_count"] > 0:
                f["answer_count"] -= 1
                fault = (f["answer_status"], f["answer_body"], {})
        if delay:
            time.sleep(delay / 1000.0)
        if fault == ("hang",):
            # Read, never answer: hold the connection until the client closes it or we stop.
            self.close_connection = True
            self.connection.settimeout(0.2)
            deadline = time.time() + 600
            while not st.stopping.is_set() and time.time() < deadline:
                try:
                    if not self.connection.recv(4096):
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
            return 0
        if fault:
            self.answer(fault[0], fault[1], headers=fault[2])
            return fault[0]
        status, result = validate(self.headers.get("Content-Type"), body)
        if status != 200:
            self.answer(status, result)
            return status
        with st.lock:
            st.messages.append({"index": len(st.messages), "path": path, "payload": result,
                                "content_type": self.headers.get("Content-Type"),
                                "received_at": time.time()})
        self.answer(200, "ok")
        return 200

    def control(self, path, params):
        st = self.server.state
        body = self.read_body() or b""
        if path == "/_fake/messages" and self.command == "GET":
            since = int(params.get("since", ["0"])[-1])
            with st.lock:
                msgs = st.messages[since:]
            return self.answer(200, json.dumps({"messages": msgs}), "application/json")
        if path == "/_fake/requests" and self.command == "GET":
            with st.lock:
                reqs = list(st.requests)
            return self.answer(200, json.dumps({"requests": reqs}), "application/json")
        if path == "/_fake/faults":
            if self.command == "POST":
                try:
                    req = json.loads(body or b"{}")
                except ValueError:
                    return self.answer(400, json.dumps({"error": "bad JSON"}), "application/json")
                with st.lock:
                    for k in req:
                        if k not in st.faults:
                            return self.answer(400, json.dumps({"error": f"unknown fault {k}"}),
                                               "application/json")
                    st.faults.update(req)
            with st.lock:
                return self.answer(200, json.dumps(st.faults), "application/json")
        if path == "/_fake/reset" and self.command == "POST":
            st.reset()
            return self.answer(200, json.dumps({"reset": True}), "application/json")
        return self.answer(404, json.dumps({"error": f"no control endpoint {self.command} {path}"}),
                           "application/json")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description="Slack incoming-webhook fake")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    srv = Server((args.host, args.port), Handler)
    srv.state = State()
    srv.verbose = args.verbose
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    sys.stderr.write(f"slack_fake listening on {args.host}:{port}\n")
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.state.stopping.set()


if __name__ == "__main__":
    main()
