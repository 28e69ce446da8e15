"""What the multi-host tests (one network namespace per host: test_multihost, test_jetstream_cluster)
share to set their hosts up: files written with their folders, commands that must succeed, and the
receiver's configuration."""
import os
import shutil
import subprocess

import lfharness as H


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def run_ok(args, what, timeout=120):
    """The command's stdout; a failure (naming what) when it exits non-zero."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise H.TestFailure(f"{what} exited {p.returncode}: {p.stderr.strip()[-800:]}")
    return p.stdout


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def receiver_conf(d, listen, queue=""):
    """A receiver's configuration with everything of its own in folder d; queue: further lines of
    its [queue] section (e.g. the JetStream backend's)."""
    return f"""[log]
level = info
[http]
listen = {listen}
body_tmp_dir = {d}
[store]
dir = {d}/sessions
index_path = {d}/index.db
keys_dir = {d}/keys
[queue]
path = {d}/queue.db
{queue}[auth]
sites_file = {d}/sites
tokens_file = {d}/tokens
token_key_file = {d}/token.key
[limits]
min_free_disk = 0
retry_after = 1s
"""


def generate_sessions(base, seed, sessions, users, days, max_size, timeout=120):
    """(folder, ground truth, [logtype.*] sections) of two sites' sessions that logferry-sessiongen
    generates into base/generated (its truth in base/truth.jsonl)."""
    import lfsessions
    gen_dir = os.path.join(base, "generated")
    truth = os.path.join(base, "truth.jsonl")
    run_ok([H.binary("logferry-sessiongen"), "--out", gen_dir, "--seed", str(seed), "--sessions", str(sessions),
            "--sites", "2", "--users", str(users), "--days", str(days), "--max-size", max_size,
            "--truth", truth], "sessiongen", timeout)
    with open(os.path.join(gen_dir, "logtypes.conf")) as f:
        logtypes = f.read()
    return gen_dir, lfsessions.load_truth(truth), logtypes


def nginx_conf(d, http, log_format=None):
    """nginx.conf for an nginx in the foreground with everything in folder d (pid, logs, temporary
    files); http: the rest of its http block. log_format: the access log's format, when not nginx's."""
    temps = "".join(f"    {k}_temp_path {d}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    access = f"    access_log {d}/access.log;\n"
    if log_format:
        access = f"    log_format lf '{log_format}';\n    access_log {d}/access.log lf;\n"
    return f"""daemon off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 1024; }}
http {{
{access}{temps}{http}}}
"""


def parser_conf(d, listen, receiver, keys_from, db_host, db, logtypes, queue=""):
    """The path of a parser's configuration written in folder d, with its own copy of the store keys
    in keys_from; receiver: the lines of its [receiver] section, queue: of its [queue] section."""
    keys = os.path.join(d, "keys")
    if not os.path.isdir(keys):
        shutil.copytree(keys_from, keys)
    conf = f"{d}/parser.conf"
    queue = f"[queue]\n{queue}" if queue else ""
    write(conf, f"""[log]
level = info
[http]
listen = {listen}
[receiver]
{receiver}{queue}[parser]
workers = 2
keys_dir = {keys}
retry_delay = 1s
failure_delay = 1s
[mysql]
host = {db_host}
port = 3306
user = {db.user}
password = {db.password}
database = logferry
""" + logtypes)
    return conf
