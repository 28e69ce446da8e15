#!/usr/bin/env python3
"""es_fake: a stand-in for an Elasticsearch 8 node, for logferry's tests.

No Elasticsearch server can be installed from the package registries this project uses (Debian and
npm), so tests talk to this fake instead. It reproduces the DOCUMENTED request and response formats
of the endpoints logferry uses, strictly: wrong content types, a bulk body without its final newline
or a conflicting id get the errors Elasticsearch documents. Python 3 standard library only (plus the
`openssl` command, only with --tls-dir, to make certificates).

    python3 tests/fakes/es_fake.py --port 0 --port-file F [--max-content-length 100mb]
                                   [--refresh-interval-ms 1000] [--host 127.0.0.1]
                                   [--tls-dir DIR] [--user NAME:PASSWORD:PRIVS]...
                                   [--api-key ID:KEY:PRIVS]... [--no-builtin-templates]
                                   [--auto-create-index true|false] [--max-shards N]
                                   [--indexing-pressure-bytes N]

Reproduced (Elasticsearch 8 formats, no mapping types, no "_type" in responses):
  GET  /                                   node info (version 8.x, tagline)
  PUT  /<index>                            create; 400 resource_already_exists_exception,
                                           400 invalid_index_name_exception; settings/mappings/aliases
  HEAD|GET|DELETE /<index>, GET /<index>/_mapping
                                           404 index_not_found_exception for a missing index;
                                           DELETE refuses wildcards (action.destructive_requires_name)
  PUT|GET|DELETE /_index_template/<name>   composable templates: index_patterns (required), template
                                           {settings, mappings, aliases}, priority (same-priority
                                           overlapping patterns are refused as Elasticsearch does),
                                           version, _meta, allow_auto_create. The highest-priority
                                           match applies when an index is created (explicitly or
                                           automatically). Names and patterns are validated as for
                                           composable templates (400 invalid_index_template_exception).
  PUT|POST /<index>/_doc/<id>[?op_type=create], POST /<index>/_doc, PUT|POST /<index>/_create/<id>
                                           201 created / 200 updated; 409
                                           version_conflict_engine_exception on an existing id
  GET|DELETE /<index>/_doc/<id>            found:false / result:not_found with 404
  POST|PUT /_bulk, /<index>/_bulk          NDJSON; Content-Type application/x-ndjson or
                                           application/json (406 otherwise); body must end with
                                           "\\n" (400 illegal_argument_exception); actions index,
                                           create, delete, update (doc, doc_as_upsert, upsert);
                                           per-item status and error objects, "errors", "took"
  GET|POST /<index>/_search, /_search      query DSL subset: match_all, match_none, term, terms,
                                           range (gt/gte/lt/lte, dates with now-N[smhdwMy]), match
                                           (operator or/and), query_string (field:value terms,
                                           quoted phrases, AND/OR/NOT, *), exists, ids, bool
                                           (must/filter/should/must_not, minimum_should_match); size,
                                           from (from+size <= 10000), sort (fields, _doc, _score,
                                           order, missing last), search_after, _source (bool, list,
                                           includes/excludes), track_total_hits; URL q=, size=,
                                           from=, sort=; wildcard and comma index patterns
                                           (logferry-events-*), _all
  GET|POST /<index>/_count, POST /<index>/_refresh, GET /_cluster/health[/<index>] (status green,
  yellow or red settable; wait_for_status with timeout answers 408 timed_out when unmet)
  413 (empty body, connection closed) above http.max_content_length (default 100mb).
  Near-real-time search: documents become searchable after a refresh (POST _refresh, ?refresh=true
  or wait_for on writes, or the index refresh interval: the index setting refresh_interval, else
  --refresh-interval-ms, 1 s by default, -1 never); GET by id is real-time.
  Dynamic mapping as documented: boolean, long, float, date (date_detection on strict_date_optional_time
  strings), text with a .keyword sub-field (ignore_above 256), object; explicit mappings of types
  text, keyword, long, integer, short, byte, double, float, half_float, boolean, date, object,
  nested, ip; dynamic true/false/strict. A value that does not fit its field's type is rejected with
  400 document_parsing_exception (the name since 8.8; 8.0-8.7 said mapper_parsing_exception; a
  client should test the status, 400, not the name), strict_dynamic_mapping_exception for strict,
  in bulk items too;
  numeric strings are coerced as Elasticsearch does (coerce defaults to true). term on a text field
  matches analysed tokens (lower-cased words), and sorting on a text field is refused (fielddata
  disabled), as in Elasticsearch. Every response carries X-elastic-product: Elasticsearch.

Rules Elasticsearch always applies (always on here too):
  * Index names (PUT /<index>, writes that create an index, bulk items): lowercase, no \\ / * ? " < > |
    space , # :, not starting with - _ +, not . or .., at most 255 UTF-8 bytes: 400
    invalid_index_name_exception "Invalid index name [x], <reason>" (per item in a bulk).
  * Keyword terms: a keyword value (or keyword multi-field, each array element separately) longer
    than 32766 UTF-8 bytes (Lucene's term limit) is refused with 400 document_parsing_exception
    caused by illegal_argument_exception "Document contains at least one immense term in field=...";
    with ignore_above: N a value longer than N (UTF-16 units, as Java counts) is kept in _source but
    not indexed: term/exists queries and sorting on that field do not see it.
  * Built-in composable templates of a default 8.x install: logs (logs-*-*), metrics (metrics-*-*),
    synthetics (synthetics-*-*), all priority 100 with data_stream {} (so a user template with an
    overlapping pattern and priority 100 is refused). --no-builtin-templates starts without them.
    NOTE: data streams themselves are not reproduced: an index matching them is a plain index.

Off unless asked for (CLI options; the three settings can also be changed at run time):
  --tls-dir DIR        HTTPS only (a plain-HTTP request gets no answer: the TLS handshake fails).
                       DIR/ca.pem, ca.key, server.pem, server.key (SAN IP:127.0.0.1, DNS:localhost)
                       are made with `openssl` when DIR/ca.pem is missing; clients trust DIR/ca.pem.
  --user NAME:PASSWORD:PRIVS, --api-key ID:KEY:PRIVS (repeatable)
                       security on: every request needs "Authorization: Basic base64(name:password)"
                       or "Authorization: ApiKey base64(id:key)" (the "encoded" value of the create
                       API key API), else 401 security_exception with WWW-Authenticate challenges.
                       PRIVS is a comma list of privileges granted on the cluster and on every index:
                       all, monitor, manage, manage_index_templates, read, write, index, create,
                       create_doc, delete, create_index, delete_index, view_index_metadata,
                       maintenance, auto_configure; a missing one gives 403 security_exception
                       (per item in a bulk). A user NAME has one role, NAME_role; API keys belong
                       to the user "elastic".
  --auto-create-index false    action.auto_create_index: writes to a missing index get 404
  --max-shards N       cluster.max_shards_per_node x nodes: index creation over N open shard copies
                       (number_of_shards x (1 + number_of_replicas)) gets 400 validation_exception
  --indexing-pressure-bytes N  indexing_pressure.memory.limit: a write request (bulk, doc) whose
                       body plus the write bodies in flight passes N gets 429
                       es_rejected_execution_exception
  POST /_fake/settings {"auto_create_index": bool, "max_shards": N|null,
                        "indexing_pressure_bytes": N|null}; GET /_fake/settings shows them (and
                        in_flight_write_bytes, read-only).

NOT reproduced (say so in a test rather than rely on it): scoring is a simple count of matching
clauses, not BM25; no aggregations, highlighting, scroll, PIT, suggesters, scripts, ingest
pipelines, aliases resolution beyond storing them, data streams, component templates, bearer
tokens, index-pattern-scoped privileges, security APIs (_security/*), multiple shards or
nodes, versioning parameters (if_seq_no, version), routing, YAML/CBOR/SMILE bodies,
action.auto_create_index patterns (only true/false). Unknown search keys answer 400 parsing_exception
naming the key. Positions in parsing errors ("[1:15]") are not computed exactly. Analysis is an
approximation of the standard analyzer.

Fault injection (never applied to /_fake/ paths):
  POST /_fake/faults {"status_503": N, "status_429": N, "drop_connection": N, "bulk_item_429": N,
                      "delay_ms": D, "delay_count": N, "lose_reply_after_write": N}
       the next N requests answer 503 cluster_block_exception / 429 es_rejected_execution_exception /
       are closed without an answer; the next N bulk ITEMS fail with 429; requests are delayed by D
       ms (the next N requests, or all while delay_count is absent); the next N write requests
       (PUT|POST /<index>/_doc, _create, _update, DELETE /<index>/_doc/<id>, _bulk) are carried
       out and stored, then the connection is closed without an answer (a stored write whose reply
       was lost). GET /_fake/faults shows what is left. POST /_fake/health {"status": "yellow"}
       sets the cluster health.
  GET /_fake/docs[?index=pattern]   every stored document by index (refreshed or not) and mappings
  GET /_fake/requests               the requests received (method, path, status, content type)
  POST /_fake/reset                 drops all indices, templates (the built-in ones come back),
                                    faults and the request log; settings go back to the CLI values
The /_fake/* endpoints are not part of Elasticsearch: they need no credentials even with security on.
"""
import argparse
import base64
import datetime
import fcntl
import fnmatch
import hmac
import ipaddress
import json
import os
import re
import shutil
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

VERSION = "8.11.0"
MAX_RESULT_WINDOW = 10000


class EsError(Exception):
    """An Elasticsearch error answer: status plus the documented error object."""

    def __init__(self, status, etype, reason, http_headers=None, **extra):
        super().__init__(reason)
        self.status = status
        self.etype = etype
        self.reason = reason
        self.extra = extra
        self.http_headers = http_headers or []   # [(name, value)], e.g. WWW-Authenticate on a 401

    def obj(self):
        e = {"type": self.etype, "reason": self.reason}
        e.update(self.extra)
        return e

    def body(self):
        e = self.obj()
        root = dict(e)
        root.pop("caused_by", None)
        out = {"root_cause": [root]}
        out.update(e)
        return {"error": out, "status": self.status}


def index_not_found(name):
    return EsError(404, "index_not_found_exception", f"no such index [{name}]",
                   **{"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_",
                      "index": name})


def java_list(items):
    """A Java List.toString(), as Elasticsearch prints lists in its messages: [a, b]."""
    return "[" + ", ".join(str(i) for i in items) + "]"


def wild_match(pattern, text):
    """Elasticsearch's simple wildcard match (Regex.simpleMatch): only '*' is special."""
    rx = _WILD_CACHE.get(pattern)
    if rx is None:
        rx = _WILD_CACHE[pattern] = re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.S)
    return rx.fullmatch(text) is not None


_WILD_CACHE = {}


def globs_intersect(p, q):
    """Whether some name matches both '*'-wildcard patterns (the automaton intersection that
    MetadataIndexTemplateService uses to find overlapping index templates)."""
    seen = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(p) and j == len(q):
            return True
        if i < len(p) and p[i] == "*":
            stack.append((i + 1, j))
            if j < len(q):
                stack.append((i, j + 1))
        if j < len(q) and q[j] == "*":
            stack.append((i, j + 1))
            if i < len(p):
                stack.append((i + 1, j))
        if i < len(p) and j < len(q) and p[i] != "*" and q[j] != "*" and p[i] == q[j]:
            stack.append((i + 1, j + 1))
    return False


def utf16_len(s):
    """String.length() in Java (UTF-16 code units): what ignore_above compares with."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+)\s*(b|kb|mb|gb)?\s*", str(text).lower())
    if not m:
        raise ValueError(f"bad size {text!r}")
    mult = {"b": 1, None: 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}[m.group(2)]
    return int(m.group(1)) * mult


# ------------------------------------------------------------------------------ dates and values --

DATE_RE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?$")


def parse_date_millis(value):
    """strict_date_optional_time||epoch_millis, as epoch milliseconds; None when it does not parse."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if not isinstance(value, str):
        return None
    s = value.strip()
    if re.fullmatch(r"-?\d+", s) and len(s) != 4:
        return int(s)  # epoch_millis (a bare 4-digit string is a year)
    m = DATE_RE.match(s)
    if not m:
        return None
    y, mo, d, h, mi, se, frac, tz = m.groups()
    try:
        dt = datetime.datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0),
                               int(se or 0), tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    ms = int(dt.timestamp() * 1000)
    if frac:
        ms += int((frac + "000")[:3])
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        off = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0)
        ms -= sign * off * 60000
    return ms


UNIT_MS = {"s": 1000, "m": 60000, "h": 3600000, "d": 86400000, "w": 7 * 86400000,
           "M": 30 * 86400000, "y": 365 * 86400000}


def parse_date_math(value):
    if isinstance(value, str) and value.startswith("now"):
        ms = int(time.time() * 1000)
        rest = value[3:]
        for sign, num, unit in re.findall(r"([+-])(\d+)([smhdwMy])", rest.split("/")[0]):
            delta = int(num) * UNIT_MS[unit]
            ms += delta if sign == "+" else -delta
        return ms
    return parse_date_millis(value)


WORD_RE = re.compile(r"\w+")


def analyze(text):
    """Approximation of the standard analyzer: lower-cased words."""
    return WORD_RE.findall(str(text).lower())


def preview(value):
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={preview(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------------------------ mappings --

NUMERIC_INT = {"long": (-(1 << 63), (1 << 63) - 1), "integer": (-(1 << 31), (1 << 31) - 1),
               "short": (-(1 << 15), (1 << 15) - 1), "byte": (-128, 127)}
NUMERIC_FLOAT = {"double", "float", "half_float", "scaled_float"}
KNOWN_TYPES = set(NUMERIC_INT) | NUMERIC_FLOAT | {"text", "keyword", "boolean", "date", "object",
                                                  "nested", "ip", "match_only_text", "wildcard",
                                                  "constant_keyword", "binary"}


def check_mapping_props(props, path=""):
    if not isinstance(props, dict):
        raise EsError(400, "mapper_parsing_exception", "Expected map for property [properties]")
    for name, spec in props.items():
        full = f"{path}{name}"
        if not isinstance(spec, dict):
            raise EsError(400, "mapper_parsing_exception",
                          f"Expected map for property [fields] on field [{full}] but got a class java.lang.String")
        ftype = spec.get("type", "object" if "properties" in spec else None)
        if ftype is None:
            raise EsError(400, "mapper_parsing_exception", f"No type specified for field [{full}]")
        if ftype not in KNOWN_TYPES:
            raise EsError(400, "mapper_parsing_exception",
                          f"No handler for type [{ftype}] declared on field [{name}]")
        if "properties" in spec:
            check_mapping_props(spec["properties"], full + ".")


def merge_props(base, extra):
    out = json.loads(json.dumps(base))
    for k, v in extra.items():
        if k in out and isinstance(out[k], dict) and "properties" in out[k] and "properties" in v:
            out[k]["properties"] = merge_props(out[k]["properties"], v["properties"])
        else:
            out[k] = v
    return out


class DocParseError(Exception):
    pass


def dynamic_type(value):
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, str):
        if DATE_RE.match(value) and len(value) >= 10 and parse_date_millis(value) is not None:
            return {"type": "date"}
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    if isinstance(value, dict):
        return {"properties": {}}
    return None


class Index:
    def __init__(self, name, settings, mappings, aliases):
        self.name = name
        self.uuid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")[:22]
        self.settings = settings
        self.mappings = mappings  # {"dynamic"?, "properties": {...}}
        self.mappings.setdefault("properties", {})
        self.aliases = aliases
        self.docs = {}            # id -> {"_source", "_version", "_seq_no"}  (real-time)
        self.visible = {}         # what search sees (last refresh)
        self.seq_no = -1
        self.last_refresh = time.monotonic()
        self.created = int(time.time() * 1000)

    def setting(self, key, default=None):
        """An index setting given nested ({"index": {key: v}}), flat ("index.key") or bare (key)."""
        idx = self.settings.get("index", {})
        if isinstance(idx, dict) and key in idx:
            return idx[key]
        return self.settings.get("index." + key, self.settings.get(key, default))

    def replicas(self):
        return int(self.setting("number_of_replicas", 1))

    def shards(self):
        return int(self.setting("number_of_shards", 1))

    def shard_copies(self):
        """Open shard copies as the shard limit counts them: number_of_shards x (1 + replicas)
        (ShardLimitValidator; see "cluster.max_shards_per_node" in the Cluster-level settings)."""
        return self.shards() * (1 + self.replicas())

    def shards_obj(self):
        return {"total": 1 + self.replicas(), "successful": 1, "failed": 0}

    def refresh_interval_ms(self, default):
        """index.refresh_interval ("1s", "500ms", "-1") or the server's default."""
        idx = self.settings.get("index", {})
        value = idx.get("refresh_interval", self.settings.get("index.refresh_interval",
                                                             self.settings.get("refresh_interval")))
        if value is None:
            return default
        m = re.fullmatch(r"(-?\d+)(ms|s|m)?", str(value).strip())
        if not m:
            return default
        n = int(m.group(1))
        return -1 if n < 0 else n * {"ms": 1, "s": 1000, "m": 60000, None: 1}[m.group(2)]

    def refresh(self):
        self.visible = {k: v for k, v in self.docs.items()}
        self.last_refresh = time.monotonic()

    def field_mapping(self, path):
        """The mapping of a dotted path ("a.b", or "msg.keyword" for a sub-field), or None."""
        props = self.mappings["properties"]
        parts = path.split(".")
        spec = None
        for i, part in enumerate(parts):
            if props is None or part not in props:
                if spec is not None and "fields" in spec and ".".join(parts[i:]) in spec["fields"]:
                    return spec["fields"][".".join(parts[i:])]
                return None
            spec = props[part]
            props = spec.get("properties")
        return spec

    # -- document parsing against the mapping (the strict part) --
    def parse_document(self, source, doc_id):
        """Validates source against the mappings, adding dynamic fields; on a rejection every
        field this document added is removed again (the mapping is as before)."""
        added = []
        dynamic = str(self.mappings.get("dynamic", "true")).lower()
        try:
            self._parse_object(source, self.mappings["properties"], "", doc_id, dynamic, added)
        except DocParseError:
            for props, key in reversed(added):
                props.pop(key, None)
            raise

    def _parse_object(self, obj, props, prefix, doc_id, dynamic, added):
        for key, value in obj.items():
            if key.startswith("_") and prefix == "" and key in ("_id", "_index", "_source", "_version",
                                                                "_seq_no", "_routing"):
                raise DocParseError(("document_parsing_exception",
                                     f"[1:1] Field [{key}] is a metadata field and cannot be added "
                                     f"inside a document. Use the index API request parameters."))
            full = prefix + key
            values = value if isinstance(value, list) else [value]
            for v in values:
                if v is None:
                    continue
                spec = props.get(key)
                if spec is None:
                    if dynamic == "strict":
                        where = prefix[:-1] if prefix else "_doc"
                        raise DocParseError(("strict_dynamic_mapping_exception",
                                             f"[1:2] mapping set to strict, dynamic introduction of "
                                             f"[{key}] within [{where}] is not allowed"))
                    if dynamic == "false":
                        continue
                    spec = dynamic_type(v)
                    if spec is None:
                        continue
                    props[key] = spec
                    added.append((props, key))
                self._parse_value(v, spec, full, doc_id, dynamic, added)

    def _parse_value(self, v, spec, full, doc_id, dynamic, added):
        ftype = spec.get("type", "object")

        def fail(cause=None):
            extra = {}
            if cause:
                extra["caused_by"] = cause
            raise DocParseError(("document_parsing_exception",
                                 f"[1:2] failed to parse field [{full}] of type [{ftype}] in document "
                                 f"with id '{doc_id}'. Preview of field's value: '{preview(v)}'", extra))

        if ftype in ("object", "nested"):
            if not isinstance(v, dict):
                raise DocParseError(("document_parsing_exception",
                                     f"[1:2] object mapping for [{full}] tried to parse field "
                                     f"[{full.split('.')[-1]}] as object, but found a concrete value"))
            spec.setdefault("properties", {})
            sub_dynamic = str(spec.get("dynamic", dynamic)).lower()
            self._parse_object(v, spec["properties"], full + ".", doc_id, sub_dynamic, added)
            return
        if isinstance(v, (dict, list)):
            fail({"type": "illegal_state_exception", "reason": "Can't get text on a START_OBJECT at 1:2"})
        if ftype in NUMERIC_INT:
            lo, hi = NUMERIC_INT[ftype]
            try:
                if isinstance(v, bool):
                    raise ValueError
                n = float(v) if not isinstance(v, int) else v
                if n != n or n in (float("inf"), float("-inf")):
                    raise ValueError
                n = int(n)
            except (ValueError, TypeError):
                fail({"type": "illegal_argument_exception",
                      "reason": f"For input string: \"{v}\""})
            if not lo <= n <= hi:
                fail({"type": "illegal_argument_exception",
                      "reason": f"Value [{v}] is out of range for a {ftype}"})
        elif ftype in NUMERIC_FLOAT:
            try:
                if isinstance(v, bool):
                    raise ValueError
                float(v)
            except (ValueError, TypeError):
                fail({"type": "number_format_exception", "reason": f"For input string: \"{v}\""})
        elif ftype == "boolean":
            if not (isinstance(v, bool) or v in ("true", "false", "")):
                fail({"type": "illegal_argument_exception",
                      "reason": f"Failed to parse value [{v}] as only [true] or [false] are allowed."})
        elif ftype == "date":
            if parse_date_millis(v) is None:
                fail({"type": "illegal_argument_exception",
                      "reason": f"failed to parse date field [{v}] with format [strict_date_optional_time||epoch_millis]"})
        elif ftype == "binary":
            # a base64 string (standard alphabet, padded), kept in _source only
            try:
                if not isinstance(v, str):
                    raise ValueError
                base64.b64decode(v, validate=True)
            except ValueError:
                fail({"type": "illegal_argument_exception", "reason": "Illegal base64 character"})
        elif ftype == "ip":
            try:
                ipaddress.ip_address(str(v))
            except ValueError:
                fail({"type": "illegal_argument_exception",
                      "reason": f"'{v}' is not an IP string literal."})
        elif ftype == "keyword":
            check_keyword_term(v, spec, full, doc_id)
        # multi-fields ("fields": {"raw": {"type": "keyword"}}) index the same value again
        for sub, sspec in (spec.get("fields") or {}).items():
            if isinstance(sspec, dict) and sspec.get("type") == "keyword":
                check_keyword_term(v, sspec, f"{full}.{sub}", doc_id)


# Strings.INVALID_FILENAME_CHARS, printed as Elasticsearch prints the set (its HashSet order).
INVALID_FILENAME_CHARS = set('\\/*?"<>| ,')
INVALID_FILENAME_CHARS_TEXT = '[ , ", *, \\, <, |, ,, >, /, ?]'
MAX_INDEX_NAME_BYTES = 255
MAX_TERM_LENGTH = 32766   # Lucene's IndexWriter.MAX_TERM_LENGTH, in UTF-8 bytes


def check_index_name(name):
    """MetadataCreateIndexService.validateIndexOrAliasName + validateIndexName, in their order.
    Reference: Create index API, path parameter <index> (the index name rules)."""
    nbytes = len(name.encode("utf-8", "surrogatepass"))
    reason = None
    if any(c in INVALID_FILENAME_CHARS for c in name):
        reason = "must not contain the following characters " + INVALID_FILENAME_CHARS_TEXT
    elif name == "":
        reason = "must not be empty"
    elif "#" in name:
        reason = "must not contain '#'"
    elif ":" in name:
        reason = "must not contain ':'"
    elif name[0] in ("_", "-", "+"):
        reason = "must not start with '_', '-', or '+'"
    elif nbytes > MAX_INDEX_NAME_BYTES:
        reason = f"index name is too long, ({nbytes} > {MAX_INDEX_NAME_BYTES})"
    elif name in (".", ".."):
        reason = "must not be '.' or '..'"
    elif name.lower() != name:
        reason = "must be lowercase"
    if reason:
        raise EsError(400, "invalid_index_name_exception", f"Invalid index name [{name}], {reason}",
                      index_uuid="_na_", index=name)


def template_validation_errors(name, patterns):
    """MetadataIndexTemplateService.validate() for a composable template's name and index_patterns
    (reference: Create or update index template API; the messages are those of that method)."""
    errs = []
    if " " in name:
        errs.append("name must not contain a space")
    if "," in name:
        errs.append("name must not contain a ','")
    if "#" in name:
        errs.append("name must not contain a '#'")
    if "*" in name:
        errs.append("name must not contain a '*'")
    if name.startswith("_"):
        errs.append("name must not start with '_'")
    if name.lower() != name:
        errs.append("name must be lower cased")
    for p in patterns:
        if " " in p:
            errs.append(f"index_patterns [{p}] must not contain a space")
        if "," in p:
            errs.append(f"index_pattern [{p}] must not contain a ','")
        if "#" in p:
            errs.append(f"index_pattern [{p}] must not contain a '#'")
        if ":" in p:
            errs.append(f"index_pattern [{p}] must not contain a ':'")
        if p.startswith("_"):
            errs.append(f"index_pattern [{p}] must not start with '_'")
        if any(c in INVALID_FILENAME_CHARS and c != "*" for c in p):
            errs.append(f"index_pattern [{p}] must not contain the following characters "
                        + INVALID_FILENAME_CHARS_TEXT)
    return errs


def validation_failed(errors):
    """ValidationException.getMessage()."""
    return "Validation Failed: " + "".join(f"{i}: {e};" for i, e in enumerate(errors, 1))


def keyword_text(v):
    """What a keyword field indexes for a JSON scalar (the parser's text of the token)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else json.dumps(v)


def check_keyword_term(v, spec, full, doc_id):
    """A keyword value is one Lucene term (KeywordFieldMapper.indexValue). A value longer than
    ignore_above (String.length(), UTF-16 units) is not indexed at all (reference: "ignore_above"
    mapping parameter: applied to each array element separately, the value stays in _source); a
    term over 32766 UTF-8 bytes is refused (reference: "ignore_above": "Lucene's term byte-length
    limit of 32766") by the mapper's preflight IllegalArgumentException, which FieldMapper.parse
    wraps in a document_parsing_exception (since 8.2, elastic/elasticsearch#95227; 7.x returned
    the bare illegal_argument_exception caused by max_bytes_length_exceeded_exception)."""
    if isinstance(v, (dict, list)) or v is None:
        return
    s = keyword_text(v)
    ign = spec.get("ignore_above")
    if ign is not None and utf16_len(s) > int(ign):
        return
    data = s.encode("utf-8", "surrogatepass")
    if len(data) > MAX_TERM_LENGTH:
        prefix = [b - 256 if b > 127 else b for b in data[:30]]   # Java bytes are signed
        raise DocParseError((
            "document_parsing_exception",
            f"[1:2] failed to parse field [{full}] of type [keyword] in document with id '{doc_id}'. "
            f"Preview of field's value: '{preview(v)}'",
            {"caused_by": {
                "type": "illegal_argument_exception",
                "reason": f"Document contains at least one immense term in field=\"{full}\" (whose UTF8 "
                          f"encoding is longer than the max length {MAX_TERM_LENGTH}), all of which were "
                          f"skipped. Please correct the analyzer to not produce such terms. The prefix of "
                          f"the first immense term is: '{java_list(prefix)}...'"}}))


# ------------------------------------------------------------------------------------- search --

def source_values(source, path):
    """All values at a dotted path (arrays flattened)."""
    cur = [source]
    for part in path.split("."):
        nxt = []
        for c in cur:
            if isinstance(c, dict) and part in c:
                v = c[part]
                nxt.extend(v if isinstance(v, list) else [v])
        cur = nxt
    return [c for c in cur if c is not None]


class Searcher:
    def __init__(self, index):
        self.index = index
        self.cache = {}

    def resolve(self, field):
        """(source path, mapping type) of a field name; .keyword sub-fields read their parent."""
        hit = self.cache.get(field)
        if hit is None:
            hit = self.cache[field] = self._resolve(field)
        return hit

    def _resolve(self, field):
        spec = self.index.field_mapping(field)
        if spec is not None and "." in field:
            parent = self.index.field_mapping(field.rsplit(".", 1)[0])
            if parent is not None and field.rsplit(".", 1)[1] in parent.get("fields", {}):
                return field.rsplit(".", 1)[0], spec.get("type", "keyword")
        if spec is None:
            return field, None
        return field, spec.get("type", "object")

    def values(self, doc, field):
        path, ftype = self.resolve(field)
        vals = source_values(doc, path)
        if ftype == "keyword":
            ign = self.ignore_above(field)
            if ign is not None:
                # values over ignore_above were not indexed (kept in _source only)
                vals = [v for v in vals
                        if isinstance(v, (dict, list)) or utf16_len(keyword_text(v)) <= int(ign)]
        return vals, ftype

    def ignore_above(self, field):
        key = ("ignore_above", field)
        if key not in self.cache:
            spec = self.index.field_mapping(field)
            self.cache[key] = spec.get("ignore_above") if spec else None
        return self.cache[key]

    @staticmethod
    def norm(v, ftype):
        if ftype in NUMERIC_INT or ftype in NUMERIC_FLOAT:
            try:
                return float(v)
            except (TypeError, ValueError):
                return None
        if ftype == "date":
            return parse_date_math(v)
        if ftype == "boolean":
            return v in (True, "true")
        if ftype == "keyword":
            return preview(v) if isinstance(v, bool) else str(v)
        return v

    def term_match(self, doc, field, value):
        vals, ftype = self.values(doc, field)
        if ftype == "binary":
            # binary fields are not indexed: Elasticsearch refuses to search them
            raise EsError(400, "query_shard_exception",
                          f"Field [{field}] of type [binary] does not support term queries")
        if ftype == "text" or ftype == "match_only_text":
            tokens = set()
            for v in vals:
                tokens.update(analyze(v))
            return str(value) in tokens
        want = self.norm(value, ftype)
        return any(self.norm(v, ftype) == want for v in vals)

    def score(self, q, doc):
        """Score (> 0 matches) or None for no match. Filter clauses contribute 0 but must match."""
        if not isinstance(q, dict) or len(q) != 1:
            raise EsError(400, "parsing_exception", "[_na] query malformed, must start with start_object")
        (kind, body), = q.items()
        if kind == "match_all":
            return float(body.get("boost", 1.0)) if isinstance(body, dict) else 1.0
        if kind == "match_none":
            return None
        if kind == "term":
            field, spec = self.one_field(kind, body)
            value = spec.get("value") if isinstance(spec, dict) else spec
            return 1.0 if self.term_match(doc, field, value) else None
        if kind == "terms":
            fields = [k for k in body if k != "boost"]
            if len(fields) != 1 or not isinstance(body[fields[0]], list):
                raise EsError(400, "parsing_exception", "[terms] query does not support multiple fields")
            return 1.0 if any(self.term_match(doc, fields[0], v) for v in body[fields[0]]) else None
        if kind == "ids":
            return 1.0 if doc.get("\0id") in body.get("values", []) else None
        if kind == "exists":
            return 1.0 if self.values(doc, body["field"])[0] else None
        if kind == "range":
            field, spec = self.one_field(kind, body)
            vals, ftype = self.values(doc, field)
            if ftype is None:
                ftype = "date" if any(parse_date_millis(spec.get(k)) is not None and isinstance(spec.get(k), str)
                                      for k in ("gt", "gte", "lt", "lte")) else "double"
            for v in vals:
                x = self.norm(v, ftype)
                if x is None:
                    continue
                ok = True
                for op, bound in spec.items():
                    if op in ("format", "boost", "time_zone", "relation"):
                        continue
                    if op not in ("gt", "gte", "lt", "lte"):
                        raise EsError(400, "parsing_exception", f"[range] query does not support [{op}]")
                    b = self.norm(bound, ftype)
                    if b is None:
                        raise EsError(400, "parse_exception", f"failed to parse [{bound}]")
                    ok = ok and {"gt": x > b, "gte": x >= b, "lt": x < b, "lte": x <= b}[op]
                if ok:
                    return 1.0
            return None
        if kind == "match":
            field, spec = self.one_field(kind, body)
            query = spec.get("query") if isinstance(spec, dict) else spec
            operator = (spec.get("operator", "or") if isinstance(spec, dict) else "or").lower()
            vals, ftype = self.values(doc, field)
            if ftype in ("text", "match_only_text", None):
                tokens = set()
                for v in vals:
                    tokens.update(analyze(v))
                qt = analyze(query)
                hits = sum(1 for t in qt if t in tokens)
                if not qt or hits == 0 or (operator == "and" and hits < len(qt)):
                    return None
                return float(hits)
            return 1.0 if self.term_match(doc, field, query) else None
        if kind == "query_string":
            return self.query_string(body, doc)
        if kind == "bool":
            return self.bool_query(body, doc)
        raise EsError(400, "parsing_exception", f"unknown query [{kind}]",
                      line=1, col=1)

    def one_field(self, kind, body):
        fields = [k for k in body if k not in ("boost", "_name")] if isinstance(body, dict) else []
        if len(fields) != 1:
            raise EsError(400, "parsing_exception",
                          f"[{kind}] query doesn't support multiple fields, found [{fields}]")
        return fields[0], body[fields[0]]

    def bool_query(self, body, doc):
        def clauses(name):
            c = body.get(name, [])
            return c if isinstance(c, list) else [c]
        for k in body:
            if k not in ("must", "filter", "should", "must_not", "minimum_should_match", "boost"):
                raise EsError(400, "parsing_exception", f"[bool] query does not support [{k}]")
        total = 0.0
        for c in clauses("must"):
            s = self.score(c, doc)
            if s is None:
                return None
            total += s
        for c in clauses("filter"):
            if self.score(c, doc) is None:
                return None
        for c in clauses("must_not"):
            if self.score(c, doc) is not None:
                return None
        should = clauses("should")
        msm = body.get("minimum_should_match")
        if msm is None:
            msm = 0 if (clauses("must") or clauses("filter")) else (1 if should else 0)
        matched = 0
        for c in should:
            s = self.score(c, doc)
            if s is not None:
                matched += 1
                total += s
        if matched < int(msm):
            return None
        return total

    def query_string(self, body, doc):
        text = body.get("query", "")
        default_field = body.get("default_field", "*")
        default_op = body.get("default_operator", "or").lower()
        tokens = re.findall(r'[+-]?(?:[\w.@-]+:)?"[^"]*"|\(|\)|[^\s()]+', text)
        # Evaluate left to right with AND/OR/NOT (no precedence beyond that; see the docstring).
        result = None
        pending_op = None
        negate = False
        for tok in tokens:
            if tok in ("AND", "OR", "&&", "||"):
                pending_op = "and" if tok in ("AND", "&&") else "or"
                continue
            if tok in ("NOT", "!"):
                negate = True
                continue
            if tok in ("(", ")"):
                continue
            matched = self.qs_term(tok, default_field, doc)
            if negate:
                matched = not matched
                negate = False
            op = pending_op or default_op
            pending_op = None
            if result is None:
                result = matched
            elif op == "and":
                result = result and matched
            else:
                result = result or matched
        return 1.0 if result else None

    def qs_term(self, tok, default_field, doc):
        field = default_field
        m = re.match(r'^([\w.@-]+):(.*)$', tok)
        if m and not tok.startswith('"'):
            field, tok = m.group(1), m.group(2)
        value = tok.strip('"')
        if value == "*":
            return bool(self.values(doc, field)[0]) if field != "*" else True
        fields = [field] if field != "*" else self.all_fields(doc)
        for f in fields:
            vals, ftype = self.values(doc, f)
            if ftype in ("text", None) or ftype == "match_only_text":
                words = analyze(value)
                tokens = []
                for v in vals:
                    tokens.extend(analyze(v))
                joined = " " + " ".join(tokens) + " "
                if words and (" " + " ".join(words) + " ") in joined:
                    return True
            elif self.term_match(doc, f, value):
                return True
        return False

    def all_fields(self, doc, prefix=""):
        out = []
        for k, v in doc.items():
            if k == "\0id":
                continue
            if isinstance(v, dict):
                out.extend(self.all_fields(v, prefix + k + "."))
            else:
                out.append(prefix + k)
        return out


# ----------------------------------------------------------------------------------- security --
# Reference: "Security privileges" (cluster and indices privileges) and "HTTP/REST clients and
# security". The action names are the transport actions Elasticsearch authorizes for each REST
# call; the privilege lists below are what each named privilege grants (IndexPrivilege and
# ClusterPrivilegeResolver), in the order Elasticsearch prints them in a denial ("this action is
# granted by the ... privileges [...]": least to most privileged, Privilege.sortByAccessLevel).

INDEX_PRIVILEGES = [   # (name, action patterns), in Elasticsearch's access-level order
    ("create_doc", ["indices:data/write/index", "indices:data/write/index[*",
                    "indices:data/write/index:op_type/create", "indices:data/write/bulk*"]),
    ("create", ["indices:data/write/index*", "indices:data/write/bulk*"]),
    ("auto_configure", ["indices:admin/mapping/auto_put", "indices:admin/auto_create"]),
    ("create_index", ["indices:admin/create", "indices:admin/auto_create", "indices:admin/data_stream/create"]),
    ("delete", ["indices:data/write/delete*", "indices:data/write/bulk*"]),
    ("delete_index", ["indices:admin/delete", "indices:admin/data_stream/delete"]),
    ("index", ["indices:data/write/index*", "indices:data/write/bulk*", "indices:data/write/update*"]),
    ("maintenance", ["indices:admin/refresh*", "indices:admin/flush*", "indices:admin/synced_flush",
                     "indices:admin/forcemerge*"]),
    ("monitor", ["indices:monitor/*"]),
    ("view_index_metadata", ["indices:admin/aliases/get", "indices:admin/get", "indices:admin/mappings/fields/get*",
                             "indices:admin/mappings/get", "indices:admin/settings/get",
                             "indices:admin/resolve/index", "indices:data/read/field_caps*"]),
    ("manage", ["indices:monitor/*", "indices:admin/*", "indices:data/read/field_caps*"]),
    ("read", ["indices:data/read/*"]),
    ("write", ["indices:data/write/*", "indices:admin/mapping/auto_put"]),
    ("all", ["indices:*"]),
]
CLUSTER_PRIVILEGES = [
    ("manage_index_templates", ["indices:admin/template/*", "indices:admin/index_template/*",
                                "cluster:admin/component_template/*"]),
    ("monitor", ["cluster:monitor/*"]),
    ("manage", ["cluster:*", "indices:admin/template/*", "indices:admin/index_template/*"]),
    ("all", ["cluster:*", "indices:admin/template/*", "indices:admin/index_template/*"]),
]
KNOWN_PRIVILEGES = {n for n, _ in INDEX_PRIVILEGES} | {n for n, _ in CLUSTER_PRIVILEGES}
# The action a bulk item (or the single-document API, which runs as a one-item bulk) is authorized
# for, per item, on its index (AuthorizationService.authorizeBulkItems / getAction).
ITEM_ACTIONS = {"index": "indices:data/write/index:op_type/index",
                "create": "indices:data/write/index:op_type/create",
                "update": "indices:data/write/update", "delete": "indices:data/write/delete"}
API_KEY_OWNER = "elastic"


def is_cluster_action(action):
    """ClusterPrivilegeResolver.isClusterAction: template actions count as cluster actions."""
    return action.startswith(("cluster:", "indices:admin/template/", "indices:admin/index_template/"))


class Principal:
    """A user (--user) or an API key (--api-key) with privileges on the cluster and all indices."""

    def __init__(self, kind, name, secret, privileges):
        self.kind, self.name, self.secret = kind, name, secret
        self.privileges = set(privileges)

    def allows(self, action):
        table = CLUSTER_PRIVILEGES if is_cluster_action(action) else INDEX_PRIVILEGES
        return any(n in self.privileges and any(wild_match(p, action) for p in pats) for n, pats in table)

    def description(self):
        """AuthorizationDenialMessages: a user's effective roles are listed, an API key has none."""
        if self.kind == "api_key":
            return f"API key id [{self.name}] of user [{API_KEY_OWNER}]"
        return f"user [{self.name}] with effective roles [{self.name}_role]"

    def denied(self, action, on_index=None):
        """403 security_exception in the format of AuthorizationDenialMessages.actionDenied. With
        privileges granted on every index, a top-level denial is decided before resolving indices
        (RBACEngine: checkIndicesAction false) and names none; bulk items name their index."""
        msg = f"action [{action}] is unauthorized for {self.description()}"
        if on_index is not None:
            msg += f" on indices [{on_index}]"
        cluster = is_cluster_action(action)
        table = CLUSTER_PRIVILEGES if cluster else INDEX_PRIVILEGES
        grants = [n for n, pats in table if any(wild_match(p, action) for p in pats)]
        if grants:
            msg += (f", this action is granted by the {'cluster' if cluster else 'index'} privileges "
                    f"[{','.join(grants)}]")
        return EsError(403, "security_exception", msg)


def parse_principal(kind, spec):
    """NAME:PASSWORD:PRIVS (the password may contain ':') or ID:KEY:PRIVS."""
    name, sep, rest = spec.partition(":")
    secret, sep2, privs = rest.rpartition(":")
    if not sep or not sep2 or not name:
        raise ValueError(f"--{kind.replace('_', '-')} {spec!r}: expected NAME:SECRET:PRIVS")
    plist = [p.strip() for p in privs.split(",") if p.strip()]
    unknown = [p for p in plist if p not in KNOWN_PRIVILEGES]
    if unknown:
        raise ValueError(f"unknown privilege(s) {unknown}; known: {sorted(KNOWN_PRIVILEGES)}")
    return Principal(kind, name, secret, plist)


def rest_action(method, segs):
    """The transport action Elasticsearch authorizes for a REST request (None: not checked)."""
    if not segs:
        return "cluster:monitor/main" if method in ("GET", "HEAD") else None
    s0 = segs[0]
    if s0 == "_cluster" and len(segs) >= 2 and segs[1] == "health":
        return "cluster:monitor/health"
    if s0 == "_index_template":
        return {"GET": "indices:admin/index_template/get", "HEAD": "indices:admin/index_template/get",
                "PUT": "indices:admin/index_template/put", "POST": "indices:admin/index_template/put",
                "DELETE": "indices:admin/index_template/delete"}.get(method)
    if s0 == "_bulk":
        return "indices:data/write/bulk"
    if s0 in ("_search", "_count"):
        return "indices:data/read/search"
    if s0 == "_refresh":
        return "indices:admin/refresh"
    if s0.startswith("_"):
        return None
    if len(segs) == 1:
        return {"PUT": "indices:admin/create", "DELETE": "indices:admin/delete",
                "GET": "indices:admin/get", "HEAD": "indices:admin/get"}.get(method)
    op = segs[1]
    if op == "_bulk":
        return "indices:data/write/bulk"
    if op in ("_search", "_count"):
        return "indices:data/read/search"
    if op == "_refresh":
        return "indices:admin/refresh"
    if op == "_mapping":
        return "indices:admin/mappings/get"
    if op == "_doc":
        return {"GET": "indices:data/read/get", "HEAD": "indices:data/read/get",
                "DELETE": "indices:data/write/delete", "PUT": "indices:data/write/index",
                "POST": "indices:data/write/index"}.get(method)
    if op == "_create":
        return "indices:data/write/index"
    if op == "_update":
        return "indices:data/write/update"
    return None


def is_write_request(method, segs):
    """Document writes: what indexing pressure accounts and lose_reply_after_write applies to."""
    if not segs:
        return False
    if segs[0] == "_bulk":
        return len(segs) == 1 and method in ("POST", "PUT")
    if segs[0].startswith("_") or len(segs) < 2:
        return False
    op = segs[1]
    if op == "_bulk":
        return len(segs) == 2 and method in ("POST", "PUT")
    if op == "_doc":
        return (method == "POST" and len(segs) in (2, 3)) or (method in ("PUT", "DELETE") and len(segs) == 3)
    if op == "_create":
        return len(segs) == 3 and method in ("PUT", "POST")
    if op == "_update":
        return len(segs) == 3 and method == "POST"
    return False


# ------------------------------------------------------------------------- built-in templates --
# The composable templates a default Elasticsearch 8 install has (x-pack stack templates; reference:
# "Index templates", "Avoid index pattern collisions": built-in templates of priority 100 for
# logs-*-*, metrics-*-* and synthetics-*-*; Elastic Agent's data streams use them).
BUILTIN_TEMPLATES = {
    "logs": {"index_patterns": ["logs-*-*"], "priority": 100, "data_stream": {"hidden": False,
                                                                               "allow_custom_routing": False},
             "composed_of": ["logs-mappings", "data-streams-mappings", "logs-settings", "logs@custom",
                             "ecs@dynamic_templates"],
             "allow_auto_create": True,
             "_meta": {"description": "default logs template installed by x-pack", "managed": True}},
    "metrics": {"index_patterns": ["metrics-*-*"], "priority": 100,
                "data_stream": {"hidden": False, "allow_custom_routing": False},
                "composed_of": ["metrics-mappings", "data-streams-mappings", "metrics-settings",
                                "metrics@custom", "ecs@dynamic_templates"],
                "allow_auto_create": True,
                "_meta": {"description": "default metrics template installed by x-pack", "managed": True}},
    "synthetics": {"index_patterns": ["synthetics-*-*"], "priority": 100,
                   "data_stream": {"hidden": False, "allow_custom_routing": False},
                   "composed_of": ["synthetics-mappings", "data-streams-mappings", "synthetics-settings",
                                   "synthetics@custom", "ecs@dynamic_templates"],
                   "allow_auto_create": True,
                   "_meta": {"description": "default synthetics template installed by x-pack",
                             "managed": True}},
}


# -------------------------------------------------------------------------------------- state --

# The run-time settings (POST /_fake/settings); the CLI gives their start (and reset) values.
DEFAULT_SETTINGS = {"auto_create_index": True,        # action.auto_create_index
                    "max_shards": None,               # cluster.max_shards_per_node x nodes (ES: 1000)
                    "indexing_pressure_bytes": None}  # indexing_pressure.memory.limit (ES: 10% heap)

class State:
    def __init__(self, max_content_length, refresh_interval_ms, settings=None, builtin_templates=True,
                 principals=None, tls=False):
        self.lock = threading.RLock()
        self.max_content_length = max_content_length
        self.refresh_interval_ms = refresh_interval_ms
        self.initial_settings = dict(DEFAULT_SETTINGS, **(settings or {}))
        self.builtin_templates = builtin_templates
        # security: on when any user or API key is configured
        self.users = {p.name: p for p in principals or [] if p.kind == "user"}
        self.api_keys = {p.name: p for p in principals or [] if p.kind == "api_key"}
        self.security = bool(self.users or self.api_keys)
        self.tls = tls
        self.ctx = threading.local()          # the authenticated principal of this thread's request
        self.pressure_lock = threading.Lock()
        self.write_bytes_in_flight = 0        # indexing pressure: bodies of write requests in flight
        self.reset()

    def reset(self):
        with self.lock:
            self.indices = {}
            self.templates = json.loads(json.dumps(BUILTIN_TEMPLATES)) if self.builtin_templates else {}
            self.faults = {"status_503": 0, "status_429": 0, "drop_connection": 0, "bulk_item_429": 0,
                           "delay_ms": 0, "delay_count": None, "lose_reply_after_write": 0}
            self.health = "green"
            self.requests = []
            self.settings = dict(self.initial_settings)

    # ---- security (the principal authenticated for the current request, None when security is off)
    def principal(self):
        return getattr(self.ctx, "principal", None)

    def authorize_item(self, action, index):
        """Item-level authorization of a bulk item / single document write on its index."""
        p = self.principal()
        if p is not None and not p.allows(action):
            raise p.denied(action, on_index=index)

    # ---- indexing pressure (reference: "Indexing pressure", indexing_pressure.memory.limit)
    def pressure_acquire(self, nbytes):
        """IndexingPressure.markCoordinatingOperationStarted: the bytes of this write plus those of
        the writes in flight must not pass the limit, else 429 es_rejected_execution_exception (so a
        single write bigger than the limit is always refused)."""
        limit = self.settings.get("indexing_pressure_bytes")
        with self.pressure_lock:
            current = self.write_bytes_in_flight
            if limit is not None and current + nbytes > limit:
                raise EsError(429, "es_rejected_execution_exception",
                              f"rejected execution of coordinating operation [coordinating_and_primary_bytes="
                              f"{current}, replica_bytes=0, all_bytes={current}, coordinating_operation_bytes="
                              f"{nbytes}, max_coordinating_and_primary_bytes={limit}]")
            self.write_bytes_in_flight += nbytes

    def pressure_release(self, nbytes):
        with self.pressure_lock:
            self.write_bytes_in_flight -= nbytes

    def maybe_refresh(self, idx):
        interval = idx.refresh_interval_ms(self.refresh_interval_ms)
        if interval >= 0 and (time.monotonic() - idx.last_refresh) * 1000 >= interval:
            idx.refresh()

    def resolve(self, expr, allow_missing_wildcard=True):
        """Index names for an expression: comma list, wildcards, _all."""
        names = []
        for part in expr.split(","):
            part = part.strip()
            if part in ("_all", "*"):
                names.extend(sorted(self.indices))
            elif "*" in part or "?" in part:
                names.extend(sorted(n for n in self.indices if fnmatch.fnmatchcase(n, part)))
            else:
                if part not in self.indices:
                    raise index_not_found(part)
                names.append(part)
        seen = []
        for n in names:
            if n not in seen:
                seen.append(n)
        return seen

    def template_for(self, name):
        best = None
        for tname, t in self.templates.items():
            if any(wild_match(p, name) for p in t["index_patterns"]):
                if best is None or t.get("priority", 0) > best[1].get("priority", 0):
                    best = (tname, t)
        return best

    def create_index(self, name, body):
        check_index_name(name)
        if name in self.indices:
            idx = self.indices[name]
            raise EsError(400, "resource_already_exists_exception",
                          f"index [{name}/{idx.uuid}] already exists", index_uuid=idx.uuid, index=name)
        idx = self._build_index(name, body)
        # cluster.max_shards_per_node x data nodes (reference: "Cluster-level shard allocation and
        # routing settings", cluster.max_shards_per_node; ShardLimitValidator's message): all shard
        # copies of open indices count, assigned or not.
        limit = self.settings.get("max_shards")
        if limit is not None:
            current = sum(i.shard_copies() for i in self.indices.values())
            new = idx.shard_copies()
            if current + new > limit:
                raise EsError(400, "validation_exception", validation_failed([
                    f"this action would add [{new}] shards, but this cluster currently has "
                    f"[{current}]/[{limit}] maximum normal shards open"]))
        self.indices[name] = idx
        return idx

    def _build_index(self, name, body):
        body = body or {}
        for k in body:
            if k not in ("settings", "mappings", "aliases"):
                raise EsError(400, "parse_exception", f"unknown key [{k}] for create index")
        settings, mappings, aliases = {}, {"properties": {}}, {}
        tpl = self.template_for(name)
        if tpl:
            t = tpl[1].get("template", {})
            settings = json.loads(json.dumps(t.get("settings", {})))
            mappings = json.loads(json.dumps(t.get("mappings", {"properties": {}})))
            aliases = dict(t.get("aliases", {}))
        mappings.setdefault("properties", {})
        req_map = body.get("mappings", {})
        if req_map:
            if "properties" in req_map:
                check_mapping_props(req_map["properties"])
                mappings["properties"] = merge_props(mappings["properties"], req_map["properties"])
            for k, v in req_map.items():
                if k != "properties":
                    mappings[k] = v
        settings.update(body.get("settings", {}))
        aliases.update(body.get("aliases", {}))
        return Index(name, settings, mappings, aliases)

    def get_or_autocreate(self, name):
        """The index a write goes to, created if missing as a write creates it
        (AutoCreateIndex.shouldAutoCreate, then the auto_create action as the user, then the
        creation with its name and shard-limit checks)."""
        if name in self.indices:
            return self.indices[name]
        tpl = self.template_for(name)
        allow = tpl[1].get("allow_auto_create") if tpl else None
        if allow is not None:
            # a matching template's allow_auto_create overrides action.auto_create_index
            # (reference: Create or update index template API, allow_auto_create)
            if not allow:
                raise EsError(404, "index_not_found_exception",
                              f"no such index [{name}] and composable template "
                              f"{java_list(tpl[1]['index_patterns'])} forbids index auto creation",
                              index_uuid="_na_", index=name)
        elif not self.settings.get("auto_create_index", True):
            # reference: Index API, "Automatically create data streams and indices":
            # action.auto_create_index false
            raise EsError(404, "index_not_found_exception",
                          f"no such index [{name}] and [action.auto_create_index] is [false]",
                          index_uuid="_na_", index=name)
        p = self.principal()
        if p is not None and not p.allows("indices:admin/auto_create"):
            raise p.denied("indices:admin/auto_create")
        return self.create_index(name, None)

    # ---- single-document writes (shared by the document APIs and bulk) ----
    def write_doc(self, index_name, doc_id, source, op, refresh=False, item_action=None):
        """op: index|create. Returns (status, result object)."""
        if not isinstance(source, dict):
            raise EsError(400, "document_parsing_exception" if source is not None else "action_request_validation_exception",
                          "[1:1] failed to parse: root must be an object" if source is not None
                          else "Validation Failed: 1: source is missing;")
        idx = self.get_or_autocreate(index_name)
        self.authorize_item(item_action or ITEM_ACTIONS[op], index_name)
        if doc_id is None:
            doc_id = base64.urlsafe_b64encode(os.urandom(15)).decode()
        if doc_id == "":
            raise EsError(400, "action_request_validation_exception",
                          "Validation Failed: 1: if _id is specified it must not be empty;")
        if len(doc_id.encode()) > 512:
            raise EsError(400, "action_request_validation_exception",
                          f"Validation Failed: 1: id [{doc_id}] is too long, must be no longer than 512 "
                          f"bytes but was: {len(doc_id.encode())};")
        existing = idx.docs.get(doc_id)
        if op == "create" and existing is not None:
            raise EsError(409, "version_conflict_engine_exception",
                          f"[{doc_id}]: version conflict, document already exists (current version [{existing['_version']}])",
                          index_uuid=idx.uuid, shard="0", index=index_name)
        try:
            idx.parse_document(source, doc_id)
        except DocParseError as e:
            etype, reason = e.args[0][0], e.args[0][1]
            extra = e.args[0][2] if len(e.args[0]) > 2 else {}
            raise EsError(400, etype, reason, **extra)
        idx.seq_no += 1
        version = existing["_version"] + 1 if existing else 1
        idx.docs[doc_id] = {"_source": source, "_version": version, "_seq_no": idx.seq_no}
        if refresh:
            idx.refresh()
        result = {"_index": index_name, "_id": doc_id, "_version": version,
                  "result": "updated" if existing else "created", "_shards": idx.shards_obj(),
                  "_seq_no": idx.seq_no, "_primary_term": 1}
        return (200 if existing else 201), result

    def delete_doc(self, index_name, doc_id, refresh=False):
        if index_name not in self.indices:
            raise index_not_found(index_name)
        self.authorize_item(ITEM_ACTIONS["delete"], index_name)
        idx = self.indices[index_name]
        existing = idx.docs.pop(doc_id, None)
        idx.seq_no += 1
        if refresh:
            idx.refresh()
        result = {"_index": index_name, "_id": doc_id,
                  "_version": (existing["_version"] + 1) if existing else 1,
                  "result": "deleted" if existing else "not_found", "_shards": idx.shards_obj(),
                  "_seq_no": idx.seq_no, "_primary_term": 1}
        return (200 if existing else 404), result

    def update_doc(self, index_name, doc_id, body, refresh=False):
        if not isinstance(body, dict):
            raise EsError(400, "x_content_parse_exception", "[1:1] [UpdateRequest] failed to parse")
        for k in body:
            if k not in ("doc", "doc_as_upsert", "upsert", "detect_noop", "_source"):
                raise EsError(400, "x_content_parse_exception", f"[1:2] [UpdateRequest] unknown field [{k}]")
        idx = self.indices.get(index_name)
        if idx is not None:
            self.authorize_item(ITEM_ACTIONS["update"], index_name)
        existing = idx.docs.get(doc_id) if idx else None
        if existing is None:
            if body.get("doc_as_upsert") and "doc" in body:
                return self.write_doc(index_name, doc_id, body["doc"], "create", refresh, ITEM_ACTIONS["update"])
            if "upsert" in body:
                return self.write_doc(index_name, doc_id, body["upsert"], "create", refresh, ITEM_ACTIONS["update"])
            raise EsError(404, "document_missing_exception", f"[{doc_id}]: document missing",
                          index_uuid=idx.uuid if idx else "_na_", shard="0", index=index_name)
        if "doc" not in body:
            raise EsError(400, "action_request_validation_exception",
                          "Validation Failed: 1: script or doc is missing;")
        merged = json.loads(json.dumps(existing["_source"]))

        def deep(a, b):
            for k, v in b.items():
                if isinstance(v, dict) and isinstance(a.get(k), dict):
                    deep(a[k], v)
                else:
                    a[k] = v
        deep(merged, body["doc"])
        if merged == existing["_source"] and body.get("detect_noop", True):
            return 200, {"_index": index_name, "_id": doc_id, "_version": existing["_version"],
                         "result": "noop", "_shards": {"total": 0, "successful": 0, "failed": 0},
                         "_seq_no": existing["_seq_no"], "_primary_term": 1}
        status, res = self.write_doc(index_name, doc_id, merged, "index", refresh, ITEM_ACTIONS["update"])
        return 200, res


# ------------------------------------------------------------------------------------ handler --

def content_type_ok(ctype, ndjson=False):
    base = (ctype or "").split(";")[0].strip().lower()
    allowed = {"application/json", "application/vnd.elasticsearch+json"}
    if ndjson:
        allowed |= {"application/x-ndjson", "application/vnd.elasticsearch+x-ndjson"}
    return base in allowed


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "es_fake"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("es_fake: " + fmt % args + "\n")

    # ---- plumbing ----
    def send_json(self, status, obj, head=False, headers=()):
        if getattr(self, "lose_reply", False):
            # fault lose_reply_after_write: the write was carried out, its answer is never sent
            self.lose_reply = False
            self.drop_connection()
            return
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-elastic-product", "Elasticsearch")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)
        self.last_status = status

    def drop_connection(self):
        """Closes the connection without an answer (no TLS close_notify either)."""
        self.close_connection = True
        self.last_status = -1
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        limit = self.server.state.max_content_length
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > limit:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(16)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            # Read and discard what was announced (bounded), so that the client, which is still
            # sending, sees the 413 instead of a broken pipe; then the connection is closed.
            left = length if length <= 256 << 20 else 0
            self.connection.settimeout(10)
            try:
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 16))
                    if not chunk:
                        break
                    left -= len(chunk)
            except OSError:
                pass
            return None
        return self.rfile.read(length) if length else b""

    def too_large(self):
        self.send_response(413)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.last_status = 413

    def handle_any(self):
        self.last_status = 0
        self.lose_reply = False
        self.pending_delay = 0
        st = self.server.state
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        # each path segment is decoded on its own, so that %2F stays inside its segment
        self.segs = [unquote(x) for x in parts.path.split("/") if x]
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        is_control = path.startswith("/_fake/")
        st.ctx.principal = None
        accounted = 0
        try:
            if not is_control and self.apply_faults():
                return
            body = self.read_body()
            if body is None:
                self.wait_delay()
                self.too_large()
                return
            if is_control:
                self.control(path, params, body)
            else:
                # 401 before 403 before 429, as the security filter runs before the transport action
                st.ctx.principal = self.authenticate()
                action = rest_action(self.command, self.segs)
                p = st.ctx.principal
                if p is not None and action is not None and not p.allows(action):
                    raise p.denied(action)
                write = is_write_request(self.command, self.segs)
                if write:
                    st.pressure_acquire(len(body))
                    accounted = len(body)
                self.wait_delay()
                if write:
                    with st.lock:
                        if st.faults["lose_reply_after_write"] > 0:
                            st.faults["lose_reply_after_write"] -= 1
                            self.lose_reply = True
                self.route(path, params, body)
        except EsError as e:
            self.wait_delay()
            self.send_json(e.status, e.body(), head=self.command == "HEAD", headers=e.http_headers)
        except Exception as e:  # a bug in the fake must not look like a valid answer
            import traceback
            traceback.print_exc()
            self.wait_delay()
            self.send_json(500, {"error": {"type": "es_fake_internal", "reason": repr(e)}, "status": 500})
        finally:
            st.ctx.principal = None
            if accounted:
                st.pressure_release(accounted)
            if not is_control:
                with st.lock:
                    st.requests.append({"method": self.command, "path": self.path,
                                        "status": self.last_status,
                                        "content_type": self.headers.get("Content-Type")})

    def wait_delay(self):
        """The delay_ms fault, once per request: after the body is read (and a write's bytes are
        accounted as in flight), before the answer."""
        if self.pending_delay:
            time.sleep(self.pending_delay / 1000.0)
            self.pending_delay = 0

    # ---- authentication (reference: "HTTP/REST clients and security", "User authentication";
    # the messages and challenges are those of DefaultAuthenticationFailureHandler)
    def challenges(self):
        """WWW-Authenticate values of an 8.11 node: the Basic realm challenge (no comma before
        charset until 8.15, elastic/elasticsearch#110906), Bearer when the token service is on
        (xpack.security.authc.token.enabled defaults to xpack.security.http.ssl.enabled), ApiKey."""
        out = ['Basic realm="security" charset="UTF-8"']
        if self.server.state.tls:
            out.append('Bearer realm="security"')
        out.append("ApiKey")
        return out

    def auth_error(self, reason, **extra):
        ch = self.challenges()
        extra["header"] = {"WWW-Authenticate": ch if len(ch) > 1 else ch[0]}
        return EsError(401, "security_exception", reason,
                       http_headers=[("WWW-Authenticate", c) for c in ch], **extra)

    def authenticate(self):
        """The principal of the Authorization header; 401 security_exception when missing/wrong."""
        st = self.server.state
        if not st.security:
            return None
        scheme, _, cred = (self.headers.get("Authorization") or "").strip().partition(" ")
        cred = cred.strip()
        if scheme.lower() == "basic" and cred:
            try:
                user, sep, password = base64.b64decode(cred, validate=True).decode("utf-8").partition(":")
            except ValueError:
                raise self.auth_error("invalid basic authentication header encoding")
            if not sep:
                raise self.auth_error("invalid basic authentication header value")
            p = st.users.get(user)
            if p is None or not hmac.compare_digest(p.secret.encode(), password.encode()):
                raise self.auth_error(f"unable to authenticate user [{user}] for REST request [{self.path}]")
            return p
        if scheme.lower() == "apikey" and cred:
            # reference: Create API key API: "encoded" is base64(id:api_key), sent as
            # "Authorization: ApiKey <encoded>"; a wrong key is reported by the authenticator chain
            try:
                key_id, sep, key = base64.b64decode(cred, validate=True).decode("utf-8").partition(":")
                if not sep:
                    raise ValueError
            except ValueError:
                raise self.auth_error("error attempting to authenticate request",
                                      caused_by={"type": "illegal_argument_exception",
                                                 "reason": "invalid ApiKey value"})
            p = st.api_keys.get(key_id)
            if p is not None and hmac.compare_digest(p.secret.encode(), key.encode()):
                return p
            why = (f"API key: unable to find apikey with id {key_id}" if p is None
                   else f"API key: invalid credentials for API key [{key_id}]")
            raise self.auth_error("unable to authenticate with provided credentials and anonymous access "
                                  "is not allowed for this request", additional_unsuccessful_credentials=why)
        raise self.auth_error(f"missing authentication credentials for REST request [{self.path}]")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    def apply_faults(self):
        st = self.server.state
        with st.lock:
            f = st.faults
            delay = 0
            if f["delay_ms"] and (f["delay_count"] is None or f["delay_count"] > 0):
                delay = f["delay_ms"]
                if f["delay_count"] is not None:
                    f["delay_count"] -= 1
            drop = f["drop_connection"] > 0
            if drop:
                f["drop_connection"] -= 1
            s503 = not drop and f["status_503"] > 0
            if s503:
                f["status_503"] -= 1
            s429 = not drop and not s503 and f["status_429"] > 0
            if s429:
                f["status_429"] -= 1
        if delay and not (drop or s503 or s429):
            self.pending_delay = delay   # slept after the body is read (see wait_delay)
        elif delay:
            time.sleep(delay / 1000.0)
        if drop:
            self.drop_connection()
            return True
        if s503 or s429:
            self.read_body()
            if s503:
                err = EsError(503, "cluster_block_exception",
                              "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];")
            else:
                err = EsError(429, "es_rejected_execution_exception",
                              "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
                              "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=0, "
                              "max_coordinating_and_primary_bytes=0]")
            self.send_json(err.status, err.body())
            return True
        return False

    def json_body(self, body, required=False):
        if not body:
            if required:
                raise EsError(400, "parse_exception", "request body is required")
            return None
        if not content_type_ok(self.headers.get("Content-Type")):
            self.unsupported_type()
        try:
            return json.loads(body)
        except ValueError as e:
            raise EsError(400, "x_content_parse_exception", f"[1:1] Unexpected character: {e}")

    def unsupported_type(self):
        ctype = self.headers.get("Content-Type")
        if ctype is None:
            raise _Raw(406, {"error": "Content-Type header is missing", "status": 406})
        raise _Raw(406, {"error": f"Content-Type header [{ctype}] is not supported", "status": 406})

    # ---- routing ----
    def route(self, path, params, body):
        try:
            self._route(path, params, body)
        except _Raw as r:
            self.send_json(r.status, r.obj)

    def _route(self, path, params, body):
        st = self.server.state
        m = self.command
        segs = self.segs
        refresh = params.get("refresh") in ("", "true", "wait_for")
        if not segs:
            if m in ("GET", "HEAD"):
                return self.send_json(200, {"name": "es-fake", "cluster_name": "es-fake",
                                            "cluster_uuid": "fakeclusteruuid000000",
                                            "version": {"number": VERSION, "build_flavor": "default",
                                                        "lucene_version": "9.8.0",
                                                        "minimum_wire_compatibility_version": "7.17.0",
                                                        "minimum_index_compatibility_version": "7.0.0"},
                                            "tagline": "You Know, for Search"}, head=m == "HEAD")
            return self.method_not_allowed(path, ["GET", "HEAD"])
        with st.lock:
            if segs[0] == "_cluster" and len(segs) >= 2 and segs[1] == "health":
                return self.cluster_health(segs[2] if len(segs) > 2 else None, params)
            if segs[0] == "_index_template":
                return self.index_template(segs[1] if len(segs) > 1 else None, body)
            if segs[0] == "_bulk":
                return self.bulk(None, params, body)
            if segs[0] in ("_search", "_count"):
                return self.search("_all", params, body, count=segs[0] == "_count")
            if segs[0] == "_refresh":
                return self.refresh("_all")
            if segs[0].startswith("_") and len(segs) > 1:
                raise EsError(400, "illegal_argument_exception",
                              f"request [{path}] contains unrecognized endpoint (not reproduced by es_fake)")
            index = segs[0]
            if len(segs) == 1:
                return self.index_api(index, body)
            op = segs[1]
            if op == "_bulk" and len(segs) == 2:
                return self.bulk(index, params, body)
            if op in ("_search", "_count") and len(segs) == 2:
                return self.search(index, params, body, count=op == "_count")
            if op == "_refresh" and len(segs) == 2:
                if m not in ("POST", "GET"):
                    return self.method_not_allowed(path, ["GET", "POST"])
                return self.refresh(index)
            if op == "_mapping" and len(segs) == 2 and m == "GET":
                names = st.resolve(index)
                return self.send_json(200, {n: {"mappings": st.indices[n].mappings} for n in names})
            if op == "_doc" and len(segs) in (2, 3):
                return self.doc_api(index, segs[2] if len(segs) == 3 else None, params, body, refresh)
            if op == "_create" and len(segs) == 3:
                if m not in ("PUT", "POST"):
                    return self.method_not_allowed(path, ["PUT", "POST"])
                src = self.json_body(body, required=True)
                status, res = st.write_doc(index, segs[2], src, "create", refresh)
                return self.send_json(status, res)
            if op == "_update" and len(segs) == 3 and m == "POST":
                src = self.json_body(body, required=True)
                status, res = st.update_doc(index, segs[2], src, refresh)
                return self.send_json(status, res)
            raise EsError(400, "illegal_argument_exception",
                          f"request [{path}] contains unrecognized endpoint (not reproduced by es_fake)")

    def method_not_allowed(self, path, allowed):
        self.send_json(405, {"error": f"Incorrect HTTP method for uri [{path}] and method [{self.command}], "
                                      f"allowed: {allowed}", "status": 405})

    def index_api(self, index, body):
        st = self.server.state
        m = self.command
        if m == "PUT":
            req = self.json_body(body)
            if req is not None and not isinstance(req, dict):
                raise EsError(400, "parse_exception", "request body must be an object")
            st.create_index(index, req)
            return self.send_json(200, {"acknowledged": True, "shards_acknowledged": True, "index": index})
        if m == "DELETE":
            if "*" in index or index == "_all":
                raise EsError(400, "illegal_argument_exception",
                              "Wildcard expressions or all indices are not allowed")
            names = st.resolve(index)
            for n in names:
                del st.indices[n]
            return self.send_json(200, {"acknowledged": True})
        if m in ("GET", "HEAD"):
            try:
                names = st.resolve(index)
            except EsError:
                if m == "HEAD":
                    return self.send_json(404, {}, head=True)
                raise
            out = {}
            for n in names:
                i = st.indices[n]
                settings = {"index": dict(i.settings.get("index", {}), uuid=i.uuid,
                                          creation_date=str(i.created), provided_name=n,
                                          number_of_shards=str(i.shards()),
                                          number_of_replicas=str(i.replicas()))}
                out[n] = {"aliases": i.aliases, "mappings": i.mappings, "settings": settings}
            return self.send_json(200, out, head=m == "HEAD")
        return self.method_not_allowed("/" + index, ["PUT", "GET", "HEAD", "DELETE"])

    def index_template(self, name, body):
        st = self.server.state
        m = self.command
        if m in ("PUT", "POST"):
            if not name:
                return self.method_not_allowed("/_index_template", ["GET"])
            req = self.json_body(body, required=True)
            if not isinstance(req, dict):
                raise EsError(400, "parse_exception", "request body must be an object")
            for k in req:
                if k not in ("index_patterns", "template", "priority", "version", "_meta",
                             "composed_of", "data_stream", "allow_auto_create"):
                    raise EsError(400, "x_content_parse_exception",
                                  f"[1:2] [index_template] unknown field [{k}]")
            pats = req.get("index_patterns")
            if isinstance(pats, str):
                pats = [pats]
            if not pats:
                raise EsError(400, "action_request_validation_exception",
                              "Validation Failed: 1: index patterns are missing;")
            tpl = req.get("template", {})
            if "mappings" in tpl and "properties" in tpl["mappings"]:
                check_mapping_props(tpl["mappings"]["properties"])
            prio = int(req.get("priority", 0))
            # MetadataIndexTemplateService.v2TemplateOverlaps (reference: Index templates, "Avoid
            # index pattern collisions"): another template whose patterns can match a same name
            # with the same priority is refused, the built-in ones (logs-*-* ...) included.
            overlaps = {other: t["index_patterns"] for other, t in sorted(st.templates.items())
                        if other != name and int(t.get("priority", 0)) == prio
                        and any(globs_intersect(p, q) for p in pats for q in t["index_patterns"])}
            if overlaps:
                raise EsError(400, "illegal_argument_exception",
                              f"index template [{name}] has index patterns {java_list(pats)} matching "
                              f"patterns from existing templates [{','.join(overlaps)}] with patterns "
                              f"({','.join(f'{o} => {java_list(q)}' for o, q in overlaps.items())}) that "
                              f"have the same priority [{prio}], multiple index templates may not match "
                              f"during index creation, please use a different priority")
            errs = template_validation_errors(name, [str(p) for p in pats])
            if errs:
                raise EsError(400, "invalid_index_template_exception",
                              f"index_template [{name}] invalid, cause [{validation_failed(errs)}]")
            stored = dict(req)
            stored["index_patterns"] = pats
            stored.setdefault("composed_of", [])
            st.templates[name] = stored
            return self.send_json(200, {"acknowledged": True})
        if m == "GET":
            names = sorted(st.templates) if not name else \
                [n for n in sorted(st.templates) if fnmatch.fnmatchcase(n, name)]
            if name and not names:
                raise EsError(404, "resource_not_found_exception",
                              f"index template matching [{name}] not found")
            return self.send_json(200, {"index_templates": [
                {"name": n, "index_template": st.templates[n]} for n in names]})
        if m == "DELETE":
            if name not in st.templates:
                raise EsError(404, "resource_not_found_exception", f"index_template [{name}] missing")
            del st.templates[name]
            return self.send_json(200, {"acknowledged": True})
        return self.method_not_allowed("/_index_template", ["GET", "PUT", "DELETE"])

    def doc_api(self, index, doc_id, params, body, refresh):
        st = self.server.state
        m = self.command
        if m in ("PUT", "POST"):
            if m == "PUT" and doc_id is None:
                return self.method_not_allowed(f"/{index}/_doc", ["POST"])
            op = params.get("op_type", "index")
            if op not in ("index", "create"):
                raise EsError(400, "illegal_argument_exception",
                              f"opType must be 'create' or 'index', found: [{op}]")
            src = self.json_body(body, required=True)
            status, res = st.write_doc(index, doc_id, src, op, refresh)
            return self.send_json(status, res)
        if doc_id is None:
            return self.method_not_allowed(f"/{index}/_doc", ["POST"])
        if m in ("GET", "HEAD"):
            if index not in st.indices:
                raise index_not_found(index)
            d = st.indices[index].docs.get(doc_id)
            if d is None:
                return self.send_json(404, {"_index": index, "_id": doc_id, "found": False}, head=m == "HEAD")
            out = {"_index": index, "_id": doc_id, "_version": d["_version"], "_seq_no": d["_seq_no"],
                   "_primary_term": 1, "found": True}
            src = filter_source(d["_source"], params.get("_source"))
            if src is not None:
                out["_source"] = src
            return self.send_json(200, out, head=m == "HEAD")
        if m == "DELETE":
            status, res = st.delete_doc(index, doc_id, refresh)
            return self.send_json(status, res)
        return self.method_not_allowed(f"/{index}/_doc/{doc_id}", ["GET", "PUT", "POST", "DELETE"])

    def refresh(self, expr):
        st = self.server.state
        names = st.resolve(expr)
        for n in names:
            st.indices[n].refresh()
        total = sum(1 + st.indices[n].replicas() for n in names)
        return self.send_json(200, {"_shards": {"total": total, "successful": len(names), "failed": 0}})

    def cluster_health(self, index_expr, params):
        st = self.server.state
        names = st.resolve(index_expr) if index_expr else sorted(st.indices)
        order = {"green": 0, "yellow": 1, "red": 2}
        want = params.get("wait_for_status")
        timed_out = False
        if want:
            if want not in order:
                raise EsError(400, "illegal_argument_exception", f"unknown cluster health status [{want}]")
            tm = re.fullmatch(r"(\d+)(ms|s|m)?", params.get("timeout", "30s"))
            wait_s = int(tm.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 0.001}[tm.group(2)] if tm else 30
            end = time.monotonic() + wait_s
            while order[st.health] > order[want] and time.monotonic() < end:
                st.lock.release()
                try:
                    time.sleep(0.05)
                finally:
                    st.lock.acquire()
            timed_out = order[st.health] > order[want]
        n = len(names)
        unassigned = n if st.health != "green" else 0
        body = {"cluster_name": "es-fake", "status": st.health, "timed_out": timed_out,
                "number_of_nodes": 1, "number_of_data_nodes": 1,
                "active_primary_shards": n if st.health != "red" else 0,
                "active_shards": n if st.health != "red" else 0,
                "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": unassigned,
                "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
                "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0 if not unassigned else 50.0}
        return self.send_json(408 if timed_out else 200, body)

    # ---- bulk ----
    def bulk(self, default_index, params, body):
        st = self.server.state
        if self.command not in ("POST", "PUT"):
            return self.method_not_allowed("/_bulk", ["POST", "PUT"])
        if not content_type_ok(self.headers.get("Content-Type"), ndjson=True):
            self.unsupported_type()
        t0 = time.monotonic()
        if not body:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
        if not body.endswith(b"\n"):
            raise EsError(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
        lines = body.split(b"\n")[:-1]
        ops = []
        i = 0
        while i < len(lines):
            raw = lines[i].rstrip(b"\r")
            i += 1
            if not raw.strip():
                continue
            try:
                action = json.loads(raw)
            except ValueError:
                raise EsError(400, "x_content_parse_exception", f"[{i}:1] Unexpected character in action/metadata line [{i}]")
            if not isinstance(action, dict) or len(action) != 1:
                raise EsError(400, "illegal_argument_exception",
                              f"Malformed action/metadata line [{i}], expected START_OBJECT or END_OBJECT but found [VALUE_STRING]")
            (kind, meta), = action.items()
            if kind not in ("index", "create", "delete", "update"):
                raise EsError(400, "illegal_argument_exception",
                              f"Malformed action/metadata line [{i}], expected one of [create, delete, index, update] but found [{kind}]")
            if not isinstance(meta, dict):
                raise EsError(400, "illegal_argument_exception", f"Malformed action/metadata line [{i}], expected START_OBJECT")
            for k in meta:
                if k not in ("_index", "_id", "routing", "require_alias", "op_type", "if_seq_no",
                             "if_primary_term", "version", "version_type", "pipeline", "retry_on_conflict",
                             "dynamic_templates", "_source", "require_data_stream", "list_executed_pipelines"):
                    raise EsError(400, "illegal_argument_exception",
                                  f"Action/metadata line [{i}] contains an unknown parameter [{k}]")
            index = meta.get("_index", default_index)
            if not index:
                raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
            source = None
            if kind != "delete":
                if i >= len(lines):
                    raise EsError(400, "illegal_argument_exception",
                                  f"The bulk request must be terminated by a newline [\\n]")
                try:
                    source = json.loads(lines[i].rstrip(b"\r"))
                except ValueError:
                    source = _BadJson(i + 1)
                i += 1
            if kind in ("delete", "update") and not meta.get("_id"):
                raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
            if kind == "index" and meta.get("op_type") == "create":
                kind_eff = "create"
            else:
                kind_eff = kind
            ops.append((kind, kind_eff, index, meta.get("_id"), source))
        if not ops:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
        items = []
        errors = False
        touched = set()
        for kind, kind_eff, index, doc_id, source in ops:
            item = {"_index": index, "_id": doc_id}
            with st.lock:
                inject = st.faults["bulk_item_429"] > 0
                if inject:
                    st.faults["bulk_item_429"] -= 1
            try:
                if inject:
                    raise EsError(429, "es_rejected_execution_exception",
                                  "rejected execution of primary operation [coordinating_and_primary_bytes=0, "
                                  "replica_bytes=0, all_bytes=0, primary_operation_bytes=0, "
                                  "max_coordinating_and_primary_bytes=0]")
                if isinstance(source, _BadJson):
                    raise EsError(400, "document_parsing_exception",
                                  f"[{source.line}:1] failed to parse: Unexpected character")
                if kind == "delete":
                    status, res = st.delete_doc(index, doc_id)
                elif kind == "update":
                    status, res = st.update_doc(index, doc_id, source)
                else:
                    status, res = st.write_doc(index, doc_id, source, kind_eff)
                res = dict(res)
                res["status"] = status
                item = res
                touched.add(index)
            except EsError as e:
                errors = True
                item["status"] = e.status
                item["error"] = e.obj()
                if item["_id"] is None:
                    item["_id"] = None
            items.append({kind: item})
        if params.get("refresh") in ("", "true", "wait_for"):
            for n in touched:
                if n in st.indices:
                    st.indices[n].refresh()
        took = int((time.monotonic() - t0) * 1000)
        return self.send_json(200, {"errors": errors, "took": took, "items": items})

    # ---- search ----
    def search(self, expr, params, body, count=False):
        st = self.server.state
        if self.command not in ("GET", "POST"):
            return self.method_not_allowed("/_search", ["GET", "POST"])
        t0 = time.monotonic()
        req = self.json_body(body) or {}
        if not isinstance(req, dict):
            raise EsError(400, "parsing_exception", "Expected [START_OBJECT] but found [START_ARRAY]")
        allowed = {"query"} if count else {"query", "size", "from", "sort", "search_after", "_source",
                                           "track_total_hits", "timeout"}
        for k in req:
            if k not in allowed:
                raise EsError(400, "parsing_exception",
                              f"Unknown key for a START_OBJECT in [{k}]." if k not in (
                                  "aggs", "aggregations", "highlight", "suggest", "collapse", "pit",
                                  "script_fields", "rescore", "knn")
                              else f"[{k}] is not reproduced by es_fake")
        query = req.get("query", {"match_all": {}})
        if "q" in params:
            query = {"query_string": {"query": params["q"]}}
        names = st.resolve(expr)
        hits = []
        for n in names:
            idx = st.indices[n]
            st.maybe_refresh(idx)
            s = Searcher(idx)
            for doc_id, d in idx.visible.items():
                doc = dict(d["_source"])
                doc["\0id"] = doc_id
                score = s.score(query, doc)
                if score is not None:
                    hits.append((n, doc_id, score, d, s))
        shards = {"total": len(names), "successful": len(names), "skipped": 0, "failed": 0}
        if count:
            return self.send_json(200, {"count": len(hits), "_shards": shards})
        size = int(req.get("size", params.get("size", 10)))
        frm = int(req.get("from", params.get("from", 0)))
        if size < 0 or frm < 0:
            raise EsError(400, "illegal_argument_exception", "[size] parameter cannot be negative")
        if frm + size > MAX_RESULT_WINDOW:
            raise EsError(400, "illegal_argument_exception",
                          f"Result window is too large, from + size must be less than or equal to: "
                          f"[{MAX_RESULT_WINDOW}] but was [{frm + size}]. See the scroll api for a more "
                          f"efficient way to request large data sets. This limit can be set by changing "
                          f"the [index.max_result_window] index level setting.")
        sort = req.get("sort")
        if sort is None and "sort" in params:
            sort = [{f.split(":")[0]: {"order": f.split(":")[1] if ":" in f else "asc"}}
                    for f in params["sort"].split(",")]
        sort_specs = normalize_sort(sort)
        by_score = not sort_specs or sort_specs[0][0] == "_score"
        keyed = []
        for n, doc_id, score, d, s in hits:
            key = []
            for field, order in sort_specs:
                if field == "_score":
                    key.append(score)
                elif field == "_doc":
                    key.append(d["_seq_no"])
                else:
                    vals, ftype = s.values(d["_source"], field)
                    if ftype in ("text", "match_only_text"):
                        raise EsError(400, "illegal_argument_exception",
                                      f"Fielddata is disabled on [{field}] in [{n}]. Text fields are not "
                                      f"optimised for operations that require per-document field data like "
                                      f"aggregations and sorting, so these operations are disabled by "
                                      f"default. Please use a keyword field instead.")
                    if ftype in ("object", "nested"):
                        raise EsError(400, "illegal_argument_exception",
                                      f"No mapping found for [{field}] in order to sort on")
                    normed = [Searcher.norm(v, ftype) for v in vals]
                    normed = [v for v in normed if v is not None]
                    if ftype is None and not normed and field not in ("_id",):
                        pass
                    if ftype == "boolean":
                        normed = [1 if v else 0 for v in normed]
                    if ftype == "date" or ftype in NUMERIC_INT:
                        normed = [int(v) for v in normed]
                    if not normed:
                        key.append(None)
                    else:
                        key.append(min(normed) if order == "asc" else max(normed))
            keyed.append((key, (n, doc_id, score, d)))
        if sort_specs:
            # Missing values sort last in both directions.
            def cmp_key(item):
                out = []
                for (field, order), v in zip(sort_specs, item[0]):
                    if v is None:
                        out.append((1, 0))
                    else:
                        out.append((0, v if order == "asc" else _Rev(v)))
                return out
            keyed.sort(key=cmp_key)
        else:
            keyed.sort(key=lambda it: (-it[1][2], it[1][0], it[1][3]["_seq_no"]))
        if "search_after" in req:
            if not sort_specs:
                raise EsError(400, "illegal_argument_exception",
                              "Sort must contain at least one field.")
            after = req["search_after"]
            if not isinstance(after, list) or len(after) != len(sort_specs):
                raise EsError(400, "illegal_argument_exception",
                              f"search_after has {len(after) if isinstance(after, list) else 0} value(s) but sort has {len(sort_specs)}.")

            def after_cmp(key):
                for (field, order), v, a in zip(sort_specs, key, after):
                    if v is None and a is None:
                        continue
                    if v is None:
                        return True
                    if a is None:
                        return False
                    if isinstance(v, (int, float)) and isinstance(a, str):
                        a = parse_date_math(a) if parse_date_math(a) is not None else a
                    if v == a:
                        continue
                    return (v > a) if order == "asc" else (v < a)
                return False
            keyed = [k for k in keyed if after_cmp(k[0])]
            if frm:
                raise EsError(400, "illegal_argument_exception",
                              "`from` parameter must be set to 0 when `search_after` is used.")
        total = len(keyed)
        tth = req.get("track_total_hits", True if count else 10000)
        total_obj = {"value": total, "relation": "eq"}
        if tth is not True and isinstance(tth, int) and not isinstance(tth, bool) and total > tth:
            total_obj = {"value": tth, "relation": "gte"}
        page = keyed[frm:frm + size]
        src_filter = req.get("_source", params.get("_source"))
        out_hits = []
        for key, (n, doc_id, score, d) in page:
            h = {"_index": n, "_id": doc_id, "_score": score if by_score else None}
            src = filter_source(d["_source"], src_filter)
            if src is not None:
                h["_source"] = src
            if sort_specs:
                h["sort"] = [v for v in key]
            out_hits.append(h)
        max_score = max((h[1][2] for h in keyed), default=None) if by_score else None
        resp = {"took": int((time.monotonic() - t0) * 1000), "timed_out": False, "_shards": shards,
                "hits": {"max_score": max_score, "hits": out_hits}}
        if tth is not False:
            resp["hits"]["total"] = total_obj
        return self.send_json(200, resp)

    # ---- control ----
    def control(self, path, params, body):
        st = self.server.state
        m = self.command
        if path == "/_fake/faults":
            if m == "POST":
                req = json.loads(body or b"{}")
                with st.lock:
                    for k, v in req.items():
                        if k not in st.faults:
                            return self.send_json(400, {"error": f"unknown fault {k}"})
                        st.faults[k] = v
            with st.lock:
                return self.send_json(200, dict(st.faults))
        if path == "/_fake/settings":
            if m == "POST":
                req = json.loads(body or b"{}")
                if not isinstance(req, dict):
                    return self.send_json(400, {"error": "expected an object"})
                new = {}
                for k, v in req.items():
                    if k == "in_flight_write_bytes":
                        continue   # read-only, shown by GET
                    if k not in DEFAULT_SETTINGS:
                        return self.send_json(400, {"error": f"unknown setting {k}"})
                    try:
                        new[k] = setting_value(k, v)
                    except ValueError as e:
                        return self.send_json(400, {"error": str(e)})
                with st.lock:
                    st.settings.update(new)
            elif m != "GET":
                return self.send_json(405, {"error": "GET or POST"})
            with st.lock:
                out = dict(st.settings)
            with st.pressure_lock:
                out["in_flight_write_bytes"] = st.write_bytes_in_flight
            return self.send_json(200, out)
        if path == "/_fake/health" and m == "POST":
            req = json.loads(body or b"{}")
            if req.get("status") not in ("green", "yellow", "red"):
                return self.send_json(400, {"error": "status must be green, yellow or red"})
            with st.lock:
                st.health = req["status"]
            return self.send_json(200, {"status": st.health})
        if path == "/_fake/docs":
            with st.lock:
                names = st.resolve(params.get("index", "_all")) if st.indices else []
                out = {n: {"docs": {k: v["_source"] for k, v in st.indices[n].docs.items()},
                           "mappings": st.indices[n].mappings} for n in names}
            return self.send_json(200, {"indices": out})
        if path == "/_fake/requests":
            with st.lock:
                return self.send_json(200, {"requests": list(st.requests)})
        if path == "/_fake/reset" and m == "POST":
            st.reset()
            return self.send_json(200, {"reset": True})
        return self.send_json(404, {"error": f"no fake control endpoint {m} {path}"})


def setting_value(key, value):
    """A run-time setting from JSON or the command line: booleans, counts or sizes ("10mb"); null
    (or "none") turns a limit off."""
    if key == "auto_create_index":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ValueError(f"{key} must be true or false (patterns are not reproduced)")
    if value is None or str(value).lower() in ("none", "null", ""):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number")
    n = parse_size(value) if key == "indexing_pressure_bytes" else int(value)
    if n < 0:
        raise ValueError(f"{key} must not be negative")
    return n


class _Raw(Exception):
    def __init__(self, status, obj):
        super().__init__(status)
        self.status = status
        self.obj = obj


class _BadJson:
    def __init__(self, line):
        self.line = line


class _Rev:
    """Reverses ordering for descending sort keys."""

    def __init__(self, v):
        self.v = v

    def __lt__(self, other):
        return self.v > other.v

    def __eq__(self, other):
        return self.v == other.v


def normalize_sort(sort):
    if sort is None:
        return []
    if not isinstance(sort, list):
        sort = [sort]
    out = []
    for s in sort:
        if isinstance(s, str):
            out.append((s, "desc" if s == "_score" else "asc"))
        elif isinstance(s, dict) and len(s) == 1:
            (field, spec), = s.items()
            order = spec if isinstance(spec, str) else spec.get("order", "desc" if field == "_score" else "asc")
            if order not in ("asc", "desc"):
                raise EsError(400, "illegal_argument_exception", f"Unknown SortOrder [{order}]")
            out.append((field, order))
        else:
            raise EsError(400, "parsing_exception", "malformed sort format")
    return out


def filter_source(source, spec):
    if spec is None or spec is True or spec in ("true", ""):
        return source
    if spec is False or spec == "false":
        return None
    includes, excludes = [], []
    if isinstance(spec, str):
        includes = spec.split(",")
    elif isinstance(spec, list):
        includes = spec
    elif isinstance(spec, dict):
        includes = spec.get("includes", spec.get("include", []))
        excludes = spec.get("excludes", spec.get("exclude", []))
        includes = [includes] if isinstance(includes, str) else includes
        excludes = [excludes] if isinstance(excludes, str) else excludes

    def walk(obj, prefix):
        out = {}
        for k, v in obj.items():
            full = prefix + k
            if any(fnmatch.fnmatchcase(full, e) for e in excludes):
                continue
            if isinstance(v, dict):
                if not includes or any(fnmatch.fnmatchcase(full, i) for i in includes):
                    sub = walk(v, full + ".") if excludes else v
                    out[k] = sub
                    continue
                sub = walk(v, full + ".")
                if sub:
                    out[k] = sub
            elif not includes or any(fnmatch.fnmatchcase(full, i) for i in includes):
                out[k] = v
        return out
    return walk(source, "")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_context = None

    def finish_request(self, request, client_address):
        """With TLS, the handshake happens here, in the connection's own thread: a client that does
        not speak TLS (a plain-HTTP request) fails it and the connection is closed unanswered, as a
        node with xpack.security.http.ssl.enabled closes plaintext connections."""
        if self.ssl_context is None:
            return super().finish_request(request, client_address)
        request.settimeout(10)
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        conn.settimeout(None)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass


OPENSSL_CA_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = es_fake test CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""
OPENSSL_SERVER_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


def ensure_tls_files(d):
    """DIR/ca.pem + ca.key (a CA) and DIR/server.pem + server.key (signed by it, for 127.0.0.1 and
    localhost), made with the openssl command when DIR/ca.pem is missing (reference: "Set up basic
    security plus HTTPS": the HTTP layer presents a certificate clients verify with the CA).
    Returns (server.pem, server.key)."""
    os.makedirs(d, exist_ok=True)
    paths = {n: os.path.join(d, n) for n in ("ca.pem", "ca.key", "server.pem", "server.key")}
    with open(os.path.join(d, ".es_fake.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # two fakes started on one directory make one CA
        if all(os.path.exists(p) for p in paths.values()):
            return paths["server.pem"], paths["server.key"]
        if os.path.exists(paths["ca.pem"]) and not os.path.exists(paths["ca.key"]):
            raise SystemExit(f"es_fake: {paths['ca.pem']} exists without ca.key: cannot sign a server certificate")
        tmp = tempfile.mkdtemp(prefix=".es_fake-tls-", dir=d)
        try:
            def run(*args):
                r = subprocess.run(["openssl", *args], cwd=tmp, capture_output=True, text=True)
                if r.returncode != 0:
                    raise SystemExit(f"es_fake: openssl {' '.join(args)} failed: {r.stderr.strip()}")
            with open(os.path.join(tmp, "ca.cnf"), "w") as f:
                f.write(OPENSSL_CA_CNF)
            with open(os.path.join(tmp, "server.cnf"), "w") as f:
                f.write(OPENSSL_SERVER_CNF)
            make_ca = not os.path.exists(paths["ca.pem"])
            if make_ca:
                run("req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-sha256", "-days", "3650",
                    "-keyout", "ca.key", "-out", "ca.pem", "-config", "ca.cnf", "-extensions", "v3_ca")
            else:
                shutil.copy(paths["ca.pem"], os.path.join(tmp, "ca.pem"))
                shutil.copy(paths["ca.key"], os.path.join(tmp, "ca.key"))
            run("req", "-new", "-nodes", "-newkey", "rsa:2048", "-sha256", "-keyout", "server.key",
                "-out", "server.csr", "-config", "server.cnf")
            run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-set_serial", "0x" + os.urandom(8).hex(), "-days", "3650", "-sha256",
                "-out", "server.pem", "-extfile", "server.cnf", "-extensions", "v3_server")
            for n in ("ca.key", "server.key"):
                os.chmod(os.path.join(tmp, n), 0o600)
            # ca.pem last: its presence means the set is complete
            order = ["server.key", "server.pem"] + (["ca.key", "ca.pem"] if make_ca else [])
            for n in order:
                os.replace(os.path.join(tmp, n), paths[n])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return paths["server.pem"], paths["server.key"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--max-content-length", default="100mb")
    ap.add_argument("--refresh-interval-ms", type=int, default=1000,
                    help="index.refresh_interval; -1 refreshes only on request")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--tls-dir", help="serve HTTPS with DIR/server.pem (made, with a CA, if DIR/ca.pem is missing)")
    ap.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD:PRIVS",
                    help="a user for Basic authentication (turns security on)")
    ap.add_argument("--api-key", action="append", default=[], metavar="ID:KEY:PRIVS",
                    help="an API key for 'Authorization: ApiKey base64(ID:KEY)' (turns security on)")
    ap.add_argument("--no-builtin-templates", action="store_true",
                    help="start without the built-in logs/metrics/synthetics index templates")
    ap.add_argument("--auto-create-index", default="true", help="action.auto_create_index: true|false")
    ap.add_argument("--max-shards", help="cluster.max_shards_per_node x nodes (default: no limit)")
    ap.add_argument("--indexing-pressure-bytes", help="indexing_pressure.memory.limit (default: no limit)")
    args = ap.parse_args()
    try:
        principals = [parse_principal("user", u) for u in args.user] + \
                     [parse_principal("api_key", k) for k in args.api_key]
        settings = {"auto_create_index": setting_value("auto_create_index", args.auto_create_index),
                    "max_shards": setting_value("max_shards", args.max_shards),
                    "indexing_pressure_bytes": setting_value("indexing_pressure_bytes",
                                                             args.indexing_pressure_bytes)}
    except ValueError as e:
        ap.error(str(e))
    ctx = None
    if args.tls_dir:
        cert, key = ensure_tls_files(args.tls_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
    srv = Server((args.host, args.port), Handler)
    srv.ssl_context = ctx
    srv.state = State(parse_size(args.max_content_length), args.refresh_interval_ms, settings=settings,
                      builtin_templates=not args.no_builtin_templates, principals=principals,
                      tls=ctx is not None)
    srv.verbose = args.verbose
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    sys.stderr.write(f"es_fake listening on {'https' if ctx else 'http'}://{args.host}:{port}\n")
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
