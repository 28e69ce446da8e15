"""The Elasticsearch fake (tests/fakes/es_fake.py) answers as Elasticsearch 8 documents it, strictly:
wrong content types, a bulk body without its final newline and conflicting ids get the documented
errors; and its fault injection does what it says. Also: TLS with a generated CA, authentication
(401) and privileges (403), the keyword term limit and ignore_above, index and template name rules,
the built-in index templates, action.auto_create_index, the shard limit, indexing pressure and
lost replies of stored writes."""
import base64
import datetime
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from fakeproc import Client, api_key_auth, basic_auth, start_fake, stop_fake  # noqa: E402
from lfharness import check, run_tests, scratch_dir  # noqa: E402

PROC, PORT = start_fake("es_fake.py", "--max-content-length", "1mb", "--refresh-interval-ms", "300")
ES = Client(PORT)
NDJSON = "application/x-ndjson"


def reset():
    st, _ = ES.json("POST", "/_fake/reset")
    check(st == 200, "reset")


def bulk(lines, path="/_bulk", ctype=NDJSON, terminate=True):
    body = "\n".join(json.dumps(x) for x in lines) + ("\n" if terminate else "")
    st, hdrs, data = ES.request("POST", path, body, {"Content-Type": ctype})
    return st, json.loads(data) if data else None


def err_type(body):
    return body["error"]["type"]


def test_root_and_product_header():
    st, hdrs, data = ES.request("GET", "/")
    body = json.loads(data)
    check(st == 200 and body["version"]["number"].startswith("8."), body)
    check(body["tagline"] == "You Know, for Search", body)
    check(hdrs.get("x-elastic-product") == "Elasticsearch", hdrs)


def test_create_index_and_already_exists():
    reset()
    st, body = ES.json("PUT", "/logferry-a", {"mappings": {"properties": {"n": {"type": "long"}}}})
    check(st == 200 and body == {"acknowledged": True, "shards_acknowledged": True, "index": "logferry-a"}, body)
    st, body = ES.json("PUT", "/logferry-a")
    check(st == 400 and err_type(body) == "resource_already_exists_exception", body)
    check(body["status"] == 400 and body["error"]["root_cause"][0]["type"] == "resource_already_exists_exception", body)
    check(body["error"]["index"] == "logferry-a" and "already exists" in body["error"]["reason"], body)
    st, body = ES.json("PUT", "/Bad-Name")
    check(st == 400 and err_type(body) == "invalid_index_name_exception", body)
    st, body = ES.json("PUT", "/_under")
    check(st == 400 and err_type(body) == "invalid_index_name_exception", body)
    st, body = ES.json("PUT", "/x", {"mappings": {"properties": {"f": {"type": "nosuch"}}}})
    check(st == 400 and err_type(body) == "mapper_parsing_exception", body)
    st, hdrs, _ = ES.request("HEAD", "/logferry-a")
    check(st == 200, st)
    st, hdrs, _ = ES.request("HEAD", "/missing")
    check(st == 404, st)
    st, body = ES.json("GET", "/logferry-a")
    check(body["logferry-a"]["mappings"]["properties"]["n"]["type"] == "long", body)


def test_delete_index():
    reset()
    ES.json("PUT", "/del-me")
    st, body = ES.json("DELETE", "/del-me")
    check(st == 200 and body == {"acknowledged": True}, body)
    st, body = ES.json("DELETE", "/del-me")
    check(st == 404 and err_type(body) == "index_not_found_exception", body)
    check(body["error"]["reason"] == "no such index [del-me]", body)
    ES.json("PUT", "/del-a")
    st, body = ES.json("DELETE", "/del-*")
    check(st == 400 and err_type(body) == "illegal_argument_exception", body)


def test_content_type_is_required():
    reset()
    st, _, data = ES.request("PUT", "/ct", b'{"settings":{}}', {"Content-Type": "text/plain"})
    body = json.loads(data)
    check(st == 406 and body == {"error": "Content-Type header [text/plain] is not supported", "status": 406}, body)
    st, _, data = ES.request("PUT", "/ct/_doc/1", b'{"a":1}', {})
    check(st == 406 and json.loads(data)["error"] == "Content-Type header is missing", data)
    st, body = bulk([{"index": {"_index": "ct"}}, {"a": 1}], ctype="text/plain")
    check(st == 406, body)
    # Both NDJSON and JSON are accepted for bulk, with a charset too.
    st, body = bulk([{"index": {"_index": "ct"}}, {"a": 1}], ctype="application/json; charset=UTF-8")
    check(st == 200 and body["errors"] is False, body)


def test_index_templates():
    reset()
    tpl = {"index_patterns": ["logferry-events-*"], "priority": 10,
           "template": {"settings": {"number_of_replicas": 0},
                        "mappings": {"properties": {"ts": {"type": "date"}, "level": {"type": "keyword"},
                                                    "bytes": {"type": "long"}}}}}
    st, body = ES.json("PUT", "/_index_template/logferry-events", tpl)
    check(st == 200 and body == {"acknowledged": True}, body)
    st, body = ES.json("GET", "/_index_template/logferry-events")
    check(st == 200 and body["index_templates"][0]["name"] == "logferry-events", body)
    check(body["index_templates"][0]["index_template"]["index_patterns"] == ["logferry-events-*"], body)
    st, body = ES.json("GET", "/_index_template/nope")
    check(st == 404 and err_type(body) == "resource_not_found_exception", body)
    st, body = ES.json("PUT", "/_index_template/bad", {"template": {}})
    check(st == 400 and err_type(body) == "action_request_validation_exception", body)
    # Same priority, overlapping patterns: refused as Elasticsearch does.
    st, body = ES.json("PUT", "/_index_template/clash", {"index_patterns": ["logferry-*"], "priority": 10})
    check(st == 400 and err_type(body) == "illegal_argument_exception" and "same priority" in body["error"]["reason"], body)
    # An auto-created index takes the template's mappings; a conflicting type is rejected.
    st, body = ES.json("PUT", "/logferry-events-2026.11.22/_doc/1", {"ts": "2026-11-22T01:02:03Z", "bytes": "12"})
    check(st == 201 and body["result"] == "created", body)
    st, body = ES.json("PUT", "/logferry-events-2026.11.22/_doc/2", {"ts": "2026-11-22T01:02:03Z", "bytes": "many"})
    check(st == 400 and err_type(body) == "document_parsing_exception", body)
    check("failed to parse field [bytes] of type [long] in document with id '2'" in body["error"]["reason"], body)
    st, body = ES.json("PUT", "/logferry-events-2026.11.22/_doc/3", {"ts": "yesterday-ish"})
    check(st == 400 and err_type(body) == "document_parsing_exception" and "[date]" in body["error"]["reason"], body)
    st, body = ES.json("GET", "/logferry-events-2026.11.22/_mapping")
    check(body["logferry-events-2026.11.22"]["mappings"]["properties"]["level"]["type"] == "keyword", body)


def test_create_and_conflict():
    reset()
    st, body = ES.json("PUT", "/docs/_create/s1", {"session": "s1", "n": 1})
    check(st == 201, body)
    for key in ("_index", "_id", "_version", "result", "_shards", "_seq_no", "_primary_term"):
        check(key in body, f"{key} missing from {body}")
    check(body["result"] == "created" and body["_version"] == 1 and "_type" not in body, body)
    st, body = ES.json("PUT", "/docs/_create/s1", {"session": "s1", "n": 2})
    check(st == 409 and err_type(body) == "version_conflict_engine_exception", body)
    check(body["error"]["reason"] == "[s1]: version conflict, document already exists (current version [1])", body)
    st, body = ES.json("PUT", "/docs/_doc/s1?op_type=create", {"session": "s1"})
    check(st == 409 and err_type(body) == "version_conflict_engine_exception", body)
    st, body = ES.json("PUT", "/docs/_doc/s2?op_type=create", {"session": "s2"})
    check(st == 201, body)
    # Plain index overwrites: 200 updated, version 2.
    st, body = ES.json("PUT", "/docs/_doc/s1", {"session": "s1", "n": 3})
    check(st == 200 and body["result"] == "updated" and body["_version"] == 2, body)
    st, body = ES.json("GET", "/docs/_doc/s1")
    check(st == 200 and body["found"] is True and body["_source"] == {"session": "s1", "n": 3}, body)
    st, body = ES.json("GET", "/docs/_doc/none")
    check(st == 404 and body == {"_index": "docs", "_id": "none", "found": False}, body)
    st, body = ES.json("GET", "/nosuchindex/_doc/x")
    check(st == 404 and err_type(body) == "index_not_found_exception", body)
    st, body = ES.json("POST", "/docs/_doc", {"auto": True})
    check(st == 201 and len(body["_id"]) == 20, body)
    st, body = ES.json("DELETE", "/docs/_doc/s2")
    check(st == 200 and body["result"] == "deleted", body)
    st, body = ES.json("DELETE", "/docs/_doc/s2")
    check(st == 404 and body["result"] == "not_found", body)


def test_bulk_format_and_items():
    reset()
    # The final newline is required.
    st, body = bulk([{"index": {"_index": "b", "_id": "1"}}, {"a": 1}], terminate=False)
    check(st == 400 and err_type(body) == "illegal_argument_exception", body)
    check(body["error"]["reason"] == "The bulk request must be terminated by a newline [\\n]", body)
    st, body = bulk([{"explode": {"_index": "b"}}, {"a": 1}])
    check(st == 400 and "expected one of [create, delete, index, update]" in body["error"]["reason"], body)
    st, body = bulk([{"index": {}}, {"a": 1}])
    check(st == 400 and err_type(body) == "action_request_validation_exception", body)
    st, _, data = ES.request("POST", "/_bulk", b"", {"Content-Type": NDJSON})
    check(st == 400 and "no requests added" in json.loads(data)["error"]["reason"], data)

    st, body = bulk([{"create": {"_index": "b", "_id": "1"}}, {"level": "info", "n": 5},
                     {"create": {"_index": "b", "_id": "1"}}, {"level": "info", "n": 6},
                     {"index": {"_index": "b", "_id": "2"}}, {"level": "warn", "n": "seven"},
                     {"index": {"_id": "3"}}, {"level": "error", "n": 8},
                     {"update": {"_index": "b", "_id": "1"}}, {"doc": {"level": "debug"}},
                     {"update": {"_index": "b", "_id": "404"}}, {"doc": {"level": "x"}},
                     {"delete": {"_index": "b", "_id": "3"}},
                     {"delete": {"_index": "b", "_id": "nope"}}], path="/b/_bulk")
    check(st == 200 and body["errors"] is True and isinstance(body["took"], int), body)
    items = body["items"]
    check([list(i)[0] for i in items] == ["create", "create", "index", "index", "update", "update",
                                         "delete", "delete"], items)
    statuses = [list(i.values())[0]["status"] for i in items]
    check(statuses == [201, 409, 400, 201, 200, 404, 200, 404], statuses)
    check(items[1]["create"]["error"]["type"] == "version_conflict_engine_exception", items[1])
    check(items[2]["index"]["error"]["type"] == "document_parsing_exception", items[2])
    check(items[3]["index"]["_index"] == "b", items[3])
    check(items[5]["update"]["error"]["type"] == "document_missing_exception", items[5])
    check(items[7]["delete"]["result"] == "not_found" and "error" not in items[7]["delete"], items[7])
    st, body = ES.json("GET", "/b/_doc/1")
    check(body["_source"] == {"level": "debug", "n": 5} and body["_version"] == 2, body)
    # A bulk of only successes says errors:false.
    st, body = bulk([{"index": {"_index": "b", "_id": "9"}}, {"n": 9}])
    check(st == 200 and body["errors"] is False and body["items"][0]["index"]["status"] == 201, body)


def test_dynamic_mapping_conflicts():
    reset()
    st, body = bulk([{"index": {"_index": "dyn", "_id": "1"}},
                     {"count": 1, "ok": True, "ratio": 0.5, "ts": "2026-11-22T00:00:00Z", "msg": "Hello World", "obj": {"x": 1}},
                     {"index": {"_index": "dyn", "_id": "2"}}, {"count": "lots"},
                     {"index": {"_index": "dyn", "_id": "3"}}, {"ok": "maybe"},
                     {"index": {"_index": "dyn", "_id": "4"}}, {"obj": "flat"},
                     {"index": {"_index": "dyn", "_id": "5"}}, {"msg": {"nested": 1}},
                     {"index": {"_index": "dyn", "_id": "6"}}, {"count": "42", "msg": 17}])
    st_items = [i["index"]["status"] for i in body["items"]]
    check(st_items == [201, 400, 400, 400, 400, 201], body)
    props = ES.json("GET", "/dyn/_mapping")[1]["dyn"]["mappings"]["properties"]
    check(props["count"]["type"] == "long" and props["ok"]["type"] == "boolean", props)
    check(props["ratio"]["type"] == "float" and props["ts"]["type"] == "date", props)
    check(props["msg"]["type"] == "text" and props["msg"]["fields"]["keyword"]["type"] == "keyword", props)
    check("properties" in props["obj"], props)
    # Strict mappings refuse unknown fields.
    ES.json("PUT", "/strict", {"mappings": {"dynamic": "strict", "properties": {"a": {"type": "keyword"}}}})
    st, body = ES.json("PUT", "/strict/_doc/1", {"a": "x", "b": 1})
    check(st == 400 and err_type(body) == "strict_dynamic_mapping_exception", body)


def seed_search_data():
    reset()
    ES.json("PUT", "/_index_template/ev", {"index_patterns": ["logferry-events-*"],
                                           "template": {"settings": {"index": {"refresh_interval": "-1"}},
                                                        "mappings": {"properties": {
                                               "ts": {"type": "date"}, "level": {"type": "keyword"},
                                               "site": {"type": "keyword"}, "n": {"type": "long"},
                                               "message": {"type": "text"}}}}})
    lines = []
    for i in range(30):
        day = "2026.11.21" if i < 15 else "2026.11.22"
        lines.append({"create": {"_index": f"logferry-events-{day}", "_id": f"e{i:02d}"}})
        lines.append({"ts": f"2026-11-{21 + (i >= 15)}T00:00:{i:02d}Z", "level": ["info", "warn", "error"][i % 3],
                      "site": f"site-{i % 2}", "n": i, "message": f"Disk FULL on node{i} after retry"})
    st, body = bulk(lines)
    check(st == 200 and body["errors"] is False, body)


def search(path, query):
    st, body = ES.json("POST", path, query)
    check(st == 200, f"{st} {body}")
    return body


def test_refresh_semantics():
    seed_search_data()
    # Not refreshed yet: search sees nothing, GET by id sees the document (real-time).
    body = search("/logferry-events-*/_search", {"query": {"match_all": {}}})
    check(body["hits"]["total"] == {"value": 0, "relation": "eq"}, body)
    check(ES.json("GET", "/logferry-events-2026.11.21/_doc/e00")[0] == 200, "realtime get")
    st, body = ES.json("POST", "/logferry-events-*/_refresh")
    check(st == 200 and body["_shards"]["failed"] == 0, body)
    body = search("/logferry-events-*/_search", {"query": {"match_all": {}}})
    check(body["hits"]["total"]["value"] == 30 and len(body["hits"]["hits"]) == 10, body)
    for k in ("took", "timed_out", "_shards", "hits"):
        check(k in body, f"{k} missing")
    # The refresh interval makes documents visible on its own too.
    ES.json("PUT", "/auto", {"settings": {"index": {"refresh_interval": "300ms"}}})
    ES.json("PUT", "/auto/_doc/late", {"n": 99})
    time.sleep(0.4)
    body = search("/auto/_search", {"query": {"term": {"n": 99}}})
    check(body["hits"]["total"]["value"] == 1, body)
    # ?refresh=true makes a write visible at once.
    ES.json("PUT", "/logferry-events-2026.11.22/_doc/now?refresh=true", {"n": 100})
    body = search("/logferry-events-*/_search", {"query": {"term": {"n": 100}}})
    check(body["hits"]["total"]["value"] == 1, body)


def test_search_queries():
    seed_search_data()
    ES.json("POST", "/_refresh")
    P = "/logferry-events-*/_search"

    def total(q, path=P):
        return search(path, {"query": q, "size": 100})["hits"]["total"]["value"]
    check(total({"term": {"level": "warn"}}) == 10, "term keyword")
    check(total({"term": {"level": "WARN"}}) == 0, "term is exact on keyword")
    check(total({"terms": {"level": ["warn", "error"]}}) == 20, "terms")
    check(total({"range": {"n": {"gte": 10, "lt": 20}}}) == 10, "range numeric")
    check(total({"range": {"ts": {"gte": "2026-11-22T00:00:00Z"}}}) == 15, "range date")
    check(total({"range": {"ts": {"gte": "now-3650d"}}}) == 30, "date math")
    check(total({"match": {"message": "disk full"}}) == 30, "match analysed")
    check(total({"match": {"message": {"query": "disk node7", "operator": "and"}}}) == 1, "match and")
    check(total({"term": {"message": "disk"}}) == 30, "term on text matches tokens")
    check(total({"term": {"message": "Disk"}}) == 0, "term on text is not analysed")
    check(total({"query_string": {"query": "level:error AND site:site-1"}}) == 5, "query_string AND")
    check(total({"query_string": {"query": "message:\"full on node3\""}}) == 1, "query_string phrase")
    check(total({"bool": {"must": [{"match": {"message": "retry"}}],
                          "filter": [{"term": {"site": "site-0"}}, {"range": {"n": {"lt": 10}}}],
                          "must_not": [{"term": {"level": "info"}}]}}) == 3, "bool")
    check(total({"bool": {"should": [{"term": {"n": 1}}, {"term": {"n": 2}}]}}) == 2, "bool should")
    check(total({"exists": {"field": "site"}}) == 30, "exists")
    check(total({"ids": {"values": ["e01", "e29", "zz"]}}) == 2, "ids")
    check(total({"match_all": {}}, "/logferry-events-2026.11.21/_search") == 15, "one index")
    check(total({"match_all": {}}, "/logferry-events-2026.11.21,logferry-events-2026.11.22/_search") == 30, "comma")
    check(total({"match_all": {}}, "/nomatch-*/_search") == 0, "wildcard matching nothing")
    st, body = ES.json("POST", "/missing-index/_search", {"query": {"match_all": {}}})
    check(st == 404 and err_type(body) == "index_not_found_exception", body)
    st, body = ES.json("POST", P, {"query": {"fuzzy_wuzzy": {}}})
    check(st == 400 and err_type(body) == "parsing_exception" and "unknown query [fuzzy_wuzzy]" in body["error"]["reason"], body)
    st, body = ES.json("POST", P, {"aggs": {"x": {}}})
    check(st == 400 and err_type(body) == "parsing_exception", body)
    st, body = ES.json("POST", "/logferry-events-*/_count", {"query": {"term": {"level": "info"}}})
    check(st == 200 and body["count"] == 10 and "_shards" in body, body)
    st, _, data = ES.request("GET", "/logferry-events-*/_search?q=level:error&size=3")
    body = json.loads(data)
    check(body["hits"]["total"]["value"] == 10 and len(body["hits"]["hits"]) == 3, body)


def test_sort_paging_source():
    seed_search_data()
    ES.json("POST", "/_refresh")
    P = "/logferry-events-*/_search"
    body = search(P, {"sort": [{"n": "desc"}], "size": 5, "_source": ["n", "level"]})
    hits = body["hits"]["hits"]
    check([h["_source"]["n"] for h in hits] == [29, 28, 27, 26, 25], hits)
    check(hits[0]["_source"] == {"n": 29, "level": "error"} and hits[0]["sort"] == [29], hits[0])
    check(hits[0]["_score"] is None and body["hits"]["max_score"] is None, body)
    body = search(P, {"sort": [{"n": {"order": "asc"}}], "from": 10, "size": 3, "_source": False})
    check([h["sort"][0] for h in body["hits"]["hits"]] == [10, 11, 12], body)
    check("_source" not in body["hits"]["hits"][0], body)
    # search_after walks the whole result set without gaps or repeats.
    seen, after = [], None
    for _ in range(10):
        q = {"size": 7, "sort": [{"ts": "asc"}, {"n": "asc"}]}
        if after:
            q["search_after"] = after
        hits = search(P, q)["hits"]["hits"]
        if not hits:
            break
        seen.extend(h["_id"] for h in hits)
        after = hits[-1]["sort"]
    check(seen == [f"e{i:02d}" for i in range(30)], seen)
    # Dates sort as epoch milliseconds.
    body = search(P, {"size": 1, "sort": [{"ts": "asc"}]})
    epoch_ms = int(datetime.datetime(2026, 11, 21, tzinfo=datetime.timezone.utc).timestamp() * 1000)
    check(body["hits"]["hits"][0]["sort"] == [epoch_ms], body)
    # Text fields cannot be sorted on; from+size is bounded.
    st, body = ES.json("POST", P, {"sort": [{"message": "asc"}]})
    check(st == 400 and "Fielddata is disabled" in body["error"]["reason"], body)
    st, body = ES.json("POST", P, {"from": 9990, "size": 20})
    check(st == 400 and "Result window is too large" in body["error"]["reason"], body)
    body = search(P, {"_source": {"includes": ["le*"]}, "size": 1})
    check(list(body["hits"]["hits"][0]["_source"]) == ["level"], body)


def test_cluster_health():
    reset()
    st, body = ES.json("GET", "/_cluster/health")
    check(st == 200 and body["status"] == "green" and body["timed_out"] is False, body)
    for k in ("cluster_name", "number_of_nodes", "number_of_data_nodes", "active_primary_shards",
              "active_shards", "relocating_shards", "initializing_shards", "unassigned_shards"):
        check(k in body, f"{k} missing")
    ES.json("POST", "/_fake/health", {"status": "red"})
    check(ES.json("GET", "/_cluster/health")[1]["status"] == "red", "red")
    t0 = time.time()
    st, body = ES.json("GET", "/_cluster/health?wait_for_status=yellow&timeout=300ms")
    check(st == 408 and body["timed_out"] is True and time.time() - t0 >= 0.25, body)
    ES.json("POST", "/_fake/health", {"status": "yellow"})
    st, body = ES.json("GET", "/_cluster/health?wait_for_status=yellow&timeout=1s")
    check(st == 200 and body["status"] == "yellow", body)


def test_max_content_length_413():
    reset()
    big = b'{"index":{"_index":"big"}}\n{"pad":"' + b"x" * (1 << 20) + b'"}\n'
    st, hdrs, data = ES.request("POST", "/_bulk", big, {"Content-Type": NDJSON})
    check(st == 413, st)
    # A request just under the limit is fine (on a new connection: 413 closed the old one).
    ok = b'{"index":{"_index":"big"}}\n{"pad":"' + b"x" * 1000 + b'"}\n'
    st, hdrs, data = ES.request("POST", "/_bulk", ok, {"Content-Type": NDJSON})
    check(st == 200, st)


def test_keep_alive():
    reset()
    c = Client(PORT)
    for i in range(5):
        st, _ = c.json("PUT", f"/ka/_doc/{i}", {"i": i})
        check(st in (200, 201), st)
    check(c.connects == 1, f"{c.connects} connections for 5 requests")
    c.close()


def test_fault_injection():
    reset()
    ES.json("POST", "/_fake/faults", {"status_503": 2})
    st1, b1 = ES.json("GET", "/_cluster/health")
    st2, b2 = ES.json("GET", "/_cluster/health")
    st3, b3 = ES.json("GET", "/_cluster/health")
    check((st1, st2, st3) == (503, 503, 200), (st1, st2, st3))
    check(err_type(b1) == "cluster_block_exception", b1)
    ES.json("POST", "/_fake/faults", {"status_429": 1})
    st, body = ES.json("GET", "/_cluster/health")
    check(st == 429 and err_type(body) == "es_rejected_execution_exception", body)
    # Bulk item rejections: the first N items fail with 429, the rest succeed.
    ES.json("POST", "/_fake/faults", {"bulk_item_429": 2})
    st, body = bulk([{"index": {"_index": "f", "_id": str(i)}} if j == 0 else {"i": i}
                     for i in range(4) for j in (0, 1)])
    check(st == 200 and body["errors"] is True, body)
    check([i["index"]["status"] for i in body["items"]] == [429, 429, 201, 201], body)
    check(body["items"][0]["index"]["error"]["type"] == "es_rejected_execution_exception", body)
    # Dropped connections: closed without an answer.
    ES.json("POST", "/_fake/faults", {"drop_connection": 1})
    c = Client(PORT)
    dropped = False
    try:
        c.request("GET", "/_cluster/health")
    except Exception:
        dropped = True
    check(dropped, "connection was not dropped")
    check(c.request("GET", "/_cluster/health")[0] == 200, "next request answered")
    c.close()
    # Delays.
    ES.json("POST", "/_fake/faults", {"delay_ms": 300, "delay_count": 1})
    t0 = time.time()
    ES.json("GET", "/_cluster/health")
    d1 = time.time() - t0
    t0 = time.time()
    ES.json("GET", "/_cluster/health")
    d2 = time.time() - t0
    check(d1 >= 0.29 and d2 < 0.25, (d1, d2))
    st, faults = ES.json("GET", "/_fake/faults")
    check(faults["status_503"] == 0 and faults["bulk_item_429"] == 0 and faults["delay_count"] == 0, faults)
    # State inspection shows unrefreshed documents too.
    st, body = ES.json("GET", "/_fake/docs?index=f")
    check(sorted(body["indices"]["f"]["docs"]) == ["2", "3"], body)
    st, body = ES.json("GET", "/_fake/requests")
    check(any(r["status"] == 503 for r in body["requests"]), body)


def test_raw_socket_http11():
    """A pipelined keep-alive exchange over one raw socket: HTTP/1.1 framing with Content-Length."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    req = b"GET /_cluster/health HTTP/1.1\r\nHost: x\r\n\r\n"
    s.sendall(req + req)
    data = b""
    deadline = time.time() + 5
    while data.count(b"HTTP/1.1 200") < 2 and time.time() < deadline:
        data += s.recv(65536)
    s.close()
    check(data.count(b"HTTP/1.1 200") == 2, data[:300])


def test_binary_field():
    reset()
    st, body = ES.json("PUT", "/blobs", {"mappings": {"properties": {
        "session_id": {"type": "keyword"}, "data": {"type": "binary", "doc_values": False}}}})
    check(st == 200, body)
    st, body = ES.json("GET", "/blobs/_mapping")
    check(st == 200 and body["blobs"]["mappings"]["properties"]["data"]["type"] == "binary", body)
    st, body = ES.json("PUT", "/blobs/_create/a-0?refresh=true", {"session_id": "a", "data": "aGVsbG8gd29ybGQ="})
    check(st == 201, body)
    st, body = ES.json("GET", "/blobs/_doc/a-0")
    check(st == 200 and body["_source"]["data"] == "aGVsbG8gd29ybGQ=", body)
    for bad in ("not base64!", "aGVsbG8*", 42):
        st, body = ES.json("PUT", "/blobs/_create/b-0", {"session_id": "b", "data": bad})
        check(st == 400 and err_type(body) == "document_parsing_exception", (bad, body))
    st, body = ES.json("POST", "/blobs/_search", {"query": {"term": {"session_id": "a"}}})
    check(st == 200 and body["hits"]["total"]["value"] == 1, body)
    st, body = ES.json("POST", "/blobs/_search", {"query": {"term": {"data": "aGVsbG8gd29ybGQ="}}})
    check(st == 400 and err_type(body) == "query_shard_exception", body)


# ------------------------------------------------------------------- strictness added later --
# Each of these starts its own fake when it needs options (TLS, users, limits).

def wait_for(cond, what, timeout=15.0):
    """Polls cond() until it is true (conditions, never fixed sleeps)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def raw_request(port, method, path, body=None, headers=None, context=None):
    """One request on its own connection: (status, [(header, value)...] with repeats, body)."""
    if context is not None:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        c.close()


def test_tls_with_generated_ca():
    d = os.path.join(scratch_dir("esfake-tls-"), "certs")
    proc, port = start_fake("es_fake.py", "--tls-dir", d)
    for name in ("ca.pem", "ca.key", "server.pem", "server.key"):
        check(os.path.exists(os.path.join(d, name)), f"{name} was not generated")
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
    st, hdrs, data = raw_request(port, "GET", "/", context=ctx)
    check(st == 200 and json.loads(data)["tagline"] == "You Know, for Search", data)
    # the certificate is for 127.0.0.1 and localhost (hostname verification is on)
    c = http.client.HTTPSConnection("localhost", port, timeout=10, context=ctx)
    c.request("GET", "/_cluster/health")
    check(c.getresponse().status == 200, "https://localhost")
    c.close()
    es = Client(port, cafile=os.path.join(d, "ca.pem"))
    st, body = es.json("PUT", "/tls-idx/_doc/1?refresh=true", {"n": 1})
    check(st == 201, body)
    es.close()
    # without the CA the server is not trusted
    refused = False
    try:
        raw_request(port, "GET", "/", context=ssl.create_default_context())
    except ssl.SSLCertVerificationError:
        refused = True
    check(refused, "a client without the CA must not trust the server")
    # plain HTTP to the TLS port gets no answer: the handshake fails and the connection closes
    failed = False
    try:
        raw_request(port, "GET", "/")
    except (http.client.HTTPException, OSError):
        failed = True
    check(failed, "plain HTTP to the TLS port was answered")
    # still serving after that
    check(raw_request(port, "GET", "/", context=ctx)[0] == 200, "TLS after a plaintext attempt")
    # a second start on the same directory keeps the CA clients already trust
    with open(os.path.join(d, "ca.pem"), "rb") as f:
        ca = f.read()
    stop_fake(proc)
    proc2, port2 = start_fake("es_fake.py", "--tls-dir", d)
    with open(os.path.join(d, "ca.pem"), "rb") as f:
        check(f.read() == ca, "the CA was regenerated")
    check(raw_request(port2, "GET", "/", context=ctx)[0] == 200, "restart with the same CA")
    stop_fake(proc2)


SEC_USERS = ["admin:s3cret:all", "reader:rpw:read", "writer:wpw:write", "creator:cpw:write,create_index",
             "mon:mpw:monitor", "tpl:tpw:manage_index_templates", "maint:xpw:maintenance",
             "manager:gpw:manage", "docmaker:dpw:create_doc", "colon:pa:ss:all"]
SEC_KEYS = ["key1:k1secret:write,create_index", "key2:k2secret:read"]


def start_secure_fake(*extra):
    args = []
    for u in SEC_USERS:
        args += ["--user", u]
    for k in SEC_KEYS:
        args += ["--api-key", k]
    return start_fake("es_fake.py", *args, *extra)


def test_security_401_and_accepted_credentials():
    proc, port = start_secure_fake()
    challenges = ['Basic realm="security" charset="UTF-8"', "ApiKey"]   # no Bearer without TLS
    # no credentials
    st, hdrs, data = raw_request(port, "GET", "/_cluster/health?pretty")
    body = json.loads(data)
    check(st == 401 and body["status"] == 401, (st, body))
    err = body["error"]
    check(err["type"] == "security_exception" and err["root_cause"][0]["type"] == "security_exception", body)
    check(err["reason"] == "missing authentication credentials for REST request [/_cluster/health?pretty]", err)
    check(err["header"] == {"WWW-Authenticate": challenges}, err)
    check(err["root_cause"][0]["header"] == {"WWW-Authenticate": challenges}, err)
    check([v for k, v in hdrs if k.lower() == "www-authenticate"] == challenges, hdrs)
    # wrong password, unknown user
    for auth in (basic_auth("admin", "nope"), basic_auth("nobody", "s3cret")):
        st, hdrs, data = raw_request(port, "GET", "/", headers=auth)
        err = json.loads(data)["error"]
        user = base64.b64decode(auth["Authorization"][6:]).decode().split(":")[0]
        check(st == 401 and err["type"] == "security_exception", (st, err))
        check(err["reason"] == f"unable to authenticate user [{user}] for REST request [/]", err)
        check([v for k, v in hdrs if k.lower() == "www-authenticate"] == challenges, hdrs)
    # wrong or unknown API key
    for auth, why in ((api_key_auth("key1", "wrong"), "API key: invalid credentials for API key [key1]"),
                      (api_key_auth("nokey", "x"), "API key: unable to find apikey with id nokey")):
        st, hdrs, data = raw_request(port, "GET", "/", headers=auth)
        err = json.loads(data)["error"]
        check(st == 401 and err["reason"] == "unable to authenticate with provided credentials and anonymous "
                                             "access is not allowed for this request", (st, err))
        check(err["additional_unsuccessful_credentials"] == why, err)
    # an unknown scheme counts as no credentials
    st, _, data = raw_request(port, "GET", "/", headers={"Authorization": "Bearer abc"})
    check(st == 401 and "missing authentication credentials" in json.loads(data)["error"]["reason"], data)
    # HEAD: 401 without a body, with the challenges
    st, hdrs, data = raw_request(port, "HEAD", "/")
    check(st == 401 and data == b"" and any(k.lower() == "www-authenticate" for k, _ in hdrs), (st, hdrs))
    # accepted: Basic (a password may contain ':') and ApiKey base64(id:key)
    for auth in (basic_auth("admin", "s3cret"), basic_auth("colon", "pa:ss")):
        st, _, data = raw_request(port, "GET", "/", headers=auth)
        check(st == 200 and json.loads(data)["version"]["number"].startswith("8."), (st, data))
    st, _, data = raw_request(port, "PUT", "/keyed/_doc/1", json.dumps({"a": 1}),
                              {**api_key_auth("key1", "k1secret"), "Content-Type": "application/json"})
    check(st == 201, data)
    # /_fake/* stays open (it is not part of Elasticsearch)
    st, _, data = raw_request(port, "GET", "/_fake/docs?index=keyed")
    check(st == 200 and json.loads(data)["indices"]["keyed"]["docs"]["1"] == {"a": 1}, data)
    # the request log shows the 401s
    st, _, data = raw_request(port, "GET", "/_fake/requests")
    check(any(r["status"] == 401 for r in json.loads(data)["requests"]), data)
    stop_fake(proc)
    # with TLS the token service is on by default: a Bearer challenge too
    d = os.path.join(scratch_dir("esfake-tls-"), "certs")
    proc, port = start_secure_fake("--tls-dir", d)
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
    st, hdrs, data = raw_request(port, "GET", "/", context=ctx)
    check(st == 401 and [v for k, v in hdrs if k.lower() == "www-authenticate"] ==
          ['Basic realm="security" charset="UTF-8"', 'Bearer realm="security"', "ApiKey"], hdrs)
    st, _, _ = raw_request(port, "GET", "/", headers=basic_auth("admin", "s3cret"), context=ctx)
    check(st == 200, st)
    stop_fake(proc)


def test_security_403_per_privilege():
    proc, port = start_secure_fake()

    def as_(user, pw):
        return Client(port, headers=basic_auth(user, pw))
    admin, reader, writer = as_("admin", "s3cret"), as_("reader", "rpw"), as_("writer", "wpw")
    creator, mon, tpl = as_("creator", "cpw"), as_("mon", "mpw"), as_("tpl", "tpw")
    maint, manager, docmaker = as_("maint", "xpw"), as_("manager", "gpw"), as_("docmaker", "dpw")

    def denied(resp, action, who, granted, kind="index", on=None):
        st, body = resp
        check(st == 403 and body["status"] == 403, resp)
        err = body["error"]
        want = f"action [{action}] is unauthorized for {who}" + (f" on indices [{on}]" if on else "") + \
               f", this action is granted by the {kind} privileges [{granted}]"
        check(err["type"] == "security_exception" and err["reason"] == want, (want, err))
        check(err["root_cause"][0]["reason"] == want and "header" not in err, err)

    def user(name):
        return f"user [{name}] with effective roles [{name}_role]"
    # monitor: GET / and cluster health
    denied(reader.json("GET", "/"), "cluster:monitor/main", user("reader"), "monitor,manage,all", "cluster")
    denied(writer.json("GET", "/_cluster/health"), "cluster:monitor/health", user("writer"),
           "monitor,manage,all", "cluster")
    check(mon.json("GET", "/")[0] == 200 and mon.json("GET", "/_cluster/health")[0] == 200, "monitor")
    # manage_index_templates
    t = {"index_patterns": ["sec-*"], "priority": 5}
    denied(writer.json("PUT", "/_index_template/sec", t), "indices:admin/index_template/put", user("writer"),
           "manage_index_templates,manage,all", "cluster")
    denied(reader.json("GET", "/_index_template/sec"), "indices:admin/index_template/get", user("reader"),
           "manage_index_templates,manage,all", "cluster")
    check(tpl.json("PUT", "/_index_template/sec", t)[0] == 200, "manage_index_templates puts a template")
    check(tpl.json("DELETE", "/_index_template/sec")[0] == 200, "manage_index_templates deletes a template")
    # create_index: PUT /<index> and the automatic creation by a write
    denied(writer.json("PUT", "/sec-a"), "indices:admin/create", user("writer"), "create_index,manage,all")
    check(creator.json("PUT", "/sec-a")[0] == 200, "create_index creates")
    check(writer.json("PUT", "/sec-a/_doc/1", {"n": 1})[0] == 201, "write into an existing index")
    denied(writer.json("PUT", "/sec-new/_doc/1", {"n": 1}), "indices:admin/auto_create", user("writer"),
           "auto_configure,create_index,manage,all")
    check(admin.json("HEAD", "/sec-new")[0] == 404, "the refused write created nothing")
    check(creator.json("PUT", "/sec-new/_doc/1", {"n": 1})[0] == 201, "create_index + write auto-creates")
    # write: documents, _create, _update, deletes
    denied(reader.json("PUT", "/sec-a/_doc/2", {"n": 2}), "indices:data/write/index", user("reader"),
           "create_doc,create,index,write,all")
    denied(reader.json("PUT", "/sec-a/_create/2", {"n": 2}), "indices:data/write/index", user("reader"),
           "create_doc,create,index,write,all")
    denied(reader.json("POST", "/sec-a/_update/1", {"doc": {"n": 5}}), "indices:data/write/update",
           user("reader"), "index,write,all")
    denied(reader.json("DELETE", "/sec-a/_doc/1"), "indices:data/write/delete", user("reader"),
           "delete,write,all")
    check(writer.json("POST", "/sec-a/_update/1", {"doc": {"n": 5}})[0] == 200, "write updates")
    check(writer.json("PUT", "/sec-a/_create/9", {"n": 9})[0] == 201, "write _create")
    check(writer.json("DELETE", "/sec-a/_doc/9")[0] == 200, "write deletes a document")
    # read: GET doc, _search, _count
    denied(writer.json("GET", "/sec-a/_doc/1"), "indices:data/read/get", user("writer"), "read,all")
    denied(writer.json("POST", "/sec-a/_search", {"query": {"match_all": {}}}), "indices:data/read/search",
           user("writer"), "read,all")
    denied(writer.json("GET", "/_count"), "indices:data/read/search", user("writer"), "read,all")
    check(reader.json("GET", "/sec-a/_doc/1")[1]["_source"] == {"n": 5}, "read gets")
    check(reader.json("POST", "/sec-a/_search", {"query": {"match_all": {}}})[0] == 200, "read searches")
    check(reader.json("POST", "/sec-*/_count", {})[0] == 200, "read counts")
    # maintenance: refresh
    denied(writer.json("POST", "/sec-a/_refresh"), "indices:admin/refresh", user("writer"),
           "maintenance,manage,all")
    check(maint.json("POST", "/sec-a/_refresh")[0] == 200, "maintenance refreshes")
    # manage: mappings, index deletion, creation, refresh
    denied(writer.json("GET", "/sec-a/_mapping"), "indices:admin/mappings/get", user("writer"),
           "view_index_metadata,manage,all")
    denied(writer.json("DELETE", "/sec-new"), "indices:admin/delete", user("writer"), "delete_index,manage,all")
    check(manager.json("GET", "/sec-a/_mapping")[0] == 200, "manage reads mappings")
    check(manager.json("POST", "/_refresh")[0] == 200, "manage refreshes")
    check(manager.json("DELETE", "/sec-new")[0] == 200, "manage deletes an index")
    check(manager.json("PUT", "/sec-m")[0] == 200, "manage creates an index")
    # bulk: the request needs a write privilege; each item is then authorized on its own
    lines = [{"index": {"_index": "sec-a", "_id": "b1"}}, {"n": 1},
             {"index": {"_index": "sec-missing", "_id": "b2"}}, {"n": 2},
             {"create": {"_index": "sec-a", "_id": "b3"}}, {"n": 3},
             {"delete": {"_index": "sec-a", "_id": "b1"}}]
    body = "\n".join(json.dumps(x) for x in lines) + "\n"
    st, _, data = reader.request("POST", "/_bulk", body, {"Content-Type": NDJSON})
    denied((st, json.loads(data)), "indices:data/write/bulk", user("reader"),
           "create_doc,create,delete,index,write,all")
    st, _, data = writer.request("POST", "/_bulk", body, {"Content-Type": NDJSON})
    res = json.loads(data)
    check(st == 200 and res["errors"] is True, res)
    check([list(i.values())[0]["status"] for i in res["items"]] == [201, 403, 201, 200], res)
    item = res["items"][1]["index"]
    check(item["error"]["type"] == "security_exception" and item["error"]["reason"] ==
          "action [indices:admin/auto_create] is unauthorized for user [writer] with effective roles "
          "[writer_role], this action is granted by the index privileges [auto_configure,create_index,manage,all]",
          item)
    check(admin.json("HEAD", "/sec-missing")[0] == 404, "the refused item created no index")
    st, _, data = creator.request("POST", "/_bulk", body, {"Content-Type": NDJSON})
    check([list(i.values())[0]["status"] for i in json.loads(data)["items"]] == [201, 201, 409, 200], data)
    # item-level denials name the index: create_doc may create documents, not overwrite them
    lines = [{"create": {"_index": "sec-a", "_id": "c1"}}, {"n": 1},
             {"index": {"_index": "sec-a", "_id": "c2"}}, {"n": 2}]
    st, _, data = docmaker.request("POST", "/_bulk", "\n".join(json.dumps(x) for x in lines) + "\n",
                                   {"Content-Type": NDJSON})
    res = json.loads(data)
    check([list(i.values())[0]["status"] for i in res["items"]] == [201, 403], res)
    check(res["items"][1]["index"]["error"]["reason"] ==
          "action [indices:data/write/index:op_type/index] is unauthorized for user [docmaker] with effective "
          "roles [docmaker_role] on indices [sec-a], this action is granted by the index privileges "
          "[create,index,write,all]", res)
    check(docmaker.json("PUT", "/sec-a/_doc/c3?op_type=create", {"n": 3})[0] == 201, "create_doc op_type=create")
    denied(docmaker.json("PUT", "/sec-a/_doc/c4", {"n": 4}), "indices:data/write/index:op_type/index",
           user("docmaker"), "create,index,write,all", on="sec-a")
    # API keys: described by id and owner, no roles
    key2 = Client(port, headers=api_key_auth("key2", "k2secret"))
    denied(key2.json("PUT", "/sec-a/_doc/k", {"n": 1}), "indices:data/write/index",
           "API key id [key2] of user [elastic]", "create_doc,create,index,write,all")
    check(key2.json("GET", "/sec-a/_doc/1")[0] == 200, "API key with read")
    for c in (admin, reader, writer, creator, mon, tpl, maint, manager, docmaker, key2):
        c.close()
    stop_fake(proc)


def test_keyword_term_limit_and_ignore_above():
    reset()
    st, body = ES.json("PUT", "/kw", {"mappings": {"properties": {
        "k": {"type": "keyword"}, "short": {"type": "keyword", "ignore_above": 10},
        "msg": {"type": "text", "fields": {"raw": {"type": "keyword"}}}, "n": {"type": "long"}}}})
    check(st == 200, body)

    def put(doc_id, doc):
        return ES.json("PUT", f"/kw/_doc/{doc_id}", doc)

    def immense(resp, field, value):
        st, body = resp
        check(st == 400 and body["status"] == 400, (st, str(body)[:300]))
        err = body["error"]
        check(err["type"] == "document_parsing_exception", err["type"])
        check(f"failed to parse field [{field}] of type [keyword] in document with id" in err["reason"],
              err["reason"][:200])
        cause = err["caused_by"]
        prefix = [b - 256 if b > 127 else b for b in value.encode()[:30]]
        check(cause["type"] == "illegal_argument_exception" and cause["reason"] ==
              f"Document contains at least one immense term in field=\"{field}\" (whose UTF8 encoding is "
              f"longer than the max length 32766), all of which were skipped. Please correct the analyzer to "
              f"not produce such terms. The prefix of the first immense term is: "
              f"'[{', '.join(map(str, prefix))}]...'", cause["reason"][:300])
        check(err["root_cause"][0]["type"] == "document_parsing_exception" and
              "caused_by" not in err["root_cause"][0], err["root_cause"])
    # 32766 bytes is the limit: one byte more is refused
    check(put("a", {"k": "a" * 32766})[0] == 201, "32766 ASCII bytes")
    immense(put("b", {"k": "a" * 32767}), "k", "a" * 32767)
    # bytes, not characters: 16383 x "é" (2 bytes) = 32766 bytes; one more is 32768
    check(put("c", {"k": "é" * 16383})[0] == 201, "16383 two-byte characters")
    immense(put("d", {"k": "é" * 16384}), "k", "é" * 16384)
    check(put("e", {"k": "a" * 32764 + "é"})[0] == 201, "32764 + 2 bytes")
    immense(put("f", {"k": "a" * 32765 + "é"}), "k", "a" * 32765 + "é")
    immense(put("g", {"k": "€" * 10923}), "k", "€" * 10923)               # 3 bytes each: 32769
    # each array element on its own; the keyword multi-field of a text field too
    immense(put("h", {"k": ["ok", "a" * 40000]}), "k", "a" * 40000)
    immense(put("i", {"msg": "x" * 33000}), "msg.raw", "x" * 33000)
    check(ES.json("GET", "/kw/_doc/b")[0] == 404, "a refused document is not stored")
    # per bulk item
    st, body = bulk([{"index": {"_index": "kw", "_id": "j"}}, {"k": "a" * 32767},
                     {"index": {"_index": "kw", "_id": "k"}}, {"k": "a" * 32766}])
    check(st == 200 and body["errors"] is True, str(body)[:300])
    items = [i["index"] for i in body["items"]]
    check([i["status"] for i in items] == [400, 201], items)
    check(items[0]["error"]["type"] == "document_parsing_exception" and
          items[0]["error"]["caused_by"]["type"] == "illegal_argument_exception", str(items[0])[:300])
    # ignore_above: a longer value is accepted and kept in _source, but not indexed
    long_value = "z" * 11
    check(put("ia", {"short": long_value, "n": 7})[0] == 201, "ignore_above accepts")
    check(put("ib", {"short": ["abc", "y" * 20], "n": 8})[0] == 201, "ignore_above array")
    check(put("ic", {"short": "é" * 10, "n": 9})[0] == 201, "10 characters, 20 bytes: indexed")
    check(put("id", {"short": "a" * 40000, "n": 10})[0] == 201, "ignore_above also avoids the term limit")
    st, body = ES.json("GET", "/kw/_doc/ia")
    check(body["_source"] == {"short": long_value, "n": 7}, body)
    ES.json("POST", "/kw/_refresh")

    def hits(q):
        st, body = ES.json("POST", "/kw/_search", {"query": q, "size": 100})
        check(st == 200, body)
        return sorted(h["_id"] for h in body["hits"]["hits"])
    check(hits({"term": {"short": long_value}}) == [], "an ignored value is not searchable")
    check(hits({"term": {"n": 7}}) == ["ia"], "the document is found by another field")
    check(hits({"term": {"short": "abc"}}) == ["ib"], "other array elements are indexed")
    check(hits({"term": {"short": "é" * 10}}) == ["ic"], "ignore_above counts characters")
    check(hits({"exists": {"field": "short"}}) == ["ib", "ic"], "exists skips ignored values")
    # the dynamic .keyword sub-field has ignore_above 256, the text field itself matches
    st, body = ES.json("PUT", "/kwdyn/_doc/1?refresh=true", {"note": "word " * 80})
    check(st == 201, body)
    st, body = ES.json("GET", "/kwdyn/_mapping")
    check(body["kwdyn"]["mappings"]["properties"]["note"]["fields"]["keyword"]["ignore_above"] == 256, body)
    st, body = ES.json("POST", "/kwdyn/_search", {"query": {"term": {"note.keyword": "word " * 80}}})
    check(body["hits"]["total"]["value"] == 0, body)
    st, body = ES.json("POST", "/kwdyn/_search", {"query": {"match": {"note": "word"}}})
    check(body["hits"]["total"]["value"] == 1, body)


def test_index_name_rules():
    reset()
    long_name = "a" * 256
    cases = [("Upper", "must be lowercase"), ("-dash", "must not start with '_', '-', or '+'"),
             ("_under", "must not start with '_', '-', or '+'"), ("+plus", "must not start with '_', '-', or '+'"),
             (".", "must not be '.' or '..'"), ("..", "must not be '.' or '..'"),
             (long_name, "index name is too long, (256 > 255)"),
             ("é" * 128, "index name is too long, (256 > 255)"),
             ("a#b", "must not contain '#'"), ("a:b", "must not contain ':'")]
    chars = 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
    cases += [(f"a{c}b", chars) for c in '\\/*?"<>| ,']
    for name, why in cases:
        path = "/" + urllib.parse.quote(name, safe="")
        st, body = ES.json("PUT", path)
        check(st == 400 and body["error"]["type"] == "invalid_index_name_exception", (name, st, body))
        check(body["error"]["reason"] == f"Invalid index name [{name}], {why}", (name, body["error"]["reason"]))
        check(body["error"]["index"] == name and body["error"]["index_uuid"] == "_na_", body)
    check(ES.json("PUT", "/" + "a" * 255)[0] == 200, "255 bytes is allowed")
    check(ES.json("PUT", "/.dotted")[0] == 200, "a leading dot is allowed (deprecated)")
    # writes that would create the index, and bulk items
    st, body = ES.json("PUT", "/Bad/_doc/1", {"a": 1})
    check(st == 400 and body["error"]["type"] == "invalid_index_name_exception", body)
    st, body = bulk([{"index": {"_index": "Bad"}}, {"a": 1}, {"index": {"_index": "good"}}, {"a": 1},
                     {"create": {"_index": "_bad", "_id": "1"}}, {"a": 1}])
    check(st == 200 and body["errors"] is True, body)
    items = [list(i.values())[0] for i in body["items"]]
    check([i["status"] for i in items] == [400, 201, 400], items)
    check(items[0]["error"]["reason"] == "Invalid index name [Bad], must be lowercase", items)
    check(items[2]["error"]["reason"] == "Invalid index name [_bad], must not start with '_', '-', or '+'", items)
    # composable template names and patterns
    for name, pats, errors in [
            ("bad name", ["ok-*"], ["name must not contain a space"]),
            ("Upper", ["ok-*"], ["name must be lower cased"]),
            ("a,b", ["ok-*"], ["name must not contain a ','"]),
            ("_t", ["ok-*"], ["name must not start with '_'"]),
            ("t1", ["_x*"], ["index_pattern [_x*] must not start with '_'"]),
            # a space is also one of the characters a file name must not contain: two errors
            ("t2", ["a b*"], ["index_patterns [a b*] must not contain a space",
                              "index_pattern [a b*] must not contain the following characters "
                              '[ , ", *, \\, <, |, ,, >, /, ?]']),
            ("t3", ["a#*"], ["index_pattern [a#*] must not contain a '#'"]),
            ("t4", ["a:*"], ["index_pattern [a:*] must not contain a ':'"]),
            ("t5", ["a?*"], ["index_pattern [a?*] must not contain the following characters "
                             '[ , ", *, \\, <, |, ,, >, /, ?]']),
            ("Bad T", ["_p*"], ["name must not contain a space", "name must be lower cased",
                                "index_pattern [_p*] must not start with '_'"])]:
        st, body = ES.json("PUT", "/_index_template/" + urllib.parse.quote(name, safe=""),
                           {"index_patterns": pats, "priority": 7})
        want = "Validation Failed: " + "".join(f"{i}: {e};" for i, e in enumerate(errors, 1))
        check(st == 400 and body["error"]["type"] == "invalid_index_template_exception", (name, body))
        check(body["error"]["reason"] == f"index_template [{name}] invalid, cause [{want}]", body["error"]["reason"])


def test_builtin_templates():
    reset()
    st, body = ES.json("GET", "/_index_template/logs")
    check(st == 200, body)
    t = body["index_templates"][0]["index_template"]
    check(t["index_patterns"] == ["logs-*-*"] and t["priority"] == 100 and "data_stream" in t, t)
    st, body = ES.json("GET", "/_index_template")
    names = {x["name"]: x["index_template"] for x in body["index_templates"]}
    for name, pat in (("logs", "logs-*-*"), ("metrics", "metrics-*-*"), ("synthetics", "synthetics-*-*")):
        check(names[name]["index_patterns"] == [pat] and names[name]["priority"] == 100, names.get(name))
    # an overlapping user template needs another priority
    st, body = ES.json("PUT", "/_index_template/app", {"index_patterns": ["logs-app-*"], "priority": 100})
    check(st == 400 and body["error"]["type"] == "illegal_argument_exception", body)
    check(body["error"]["reason"] ==
          "index template [app] has index patterns [logs-app-*] matching patterns from existing templates "
          "[logs] with patterns (logs => [logs-*-*]) that have the same priority [100], multiple index "
          "templates may not match during index creation, please use a different priority", body)
    # overlap is any name both can match ("logs-a-app-x", "metrics-a-app-x"...), not only one
    # pattern matching the other; patterns no name can share are fine
    st, body = ES.json("PUT", "/_index_template/m2", {"index_patterns": ["*-app-x"], "priority": 100})
    check(st == 400 and "existing templates [logs,metrics,synthetics]" in body["error"]["reason"], body)
    st, body = ES.json("PUT", "/_index_template/m3", {"index_patterns": ["lo-*", "metricsx*"], "priority": 100})
    check(st == 200, body)
    st, body = ES.json("PUT", "/_index_template/app", {"index_patterns": ["logs-app-*"], "priority": 200})
    check(st == 200 and body == {"acknowledged": True}, body)
    # the higher priority applies to a new index
    ES.json("PUT", "/_index_template/app", {"index_patterns": ["logs-app-*"], "priority": 200,
                                            "template": {"mappings": {"properties": {"lvl": {"type": "keyword"}}}}})
    st, body = ES.json("PUT", "/logs-app-1/_doc/1", {"lvl": "info"})
    check(st == 201, body)
    st, body = ES.json("GET", "/logs-app-1/_mapping")
    check(body["logs-app-1"]["mappings"]["properties"]["lvl"]["type"] == "keyword", body)
    # a reset brings the built-in templates back
    ES.json("DELETE", "/_index_template/logs")
    check(ES.json("GET", "/_index_template/logs")[0] == 404, "deleted")
    reset()
    check(ES.json("GET", "/_index_template/logs")[0] == 200, "built-in templates after a reset")
    check(ES.json("GET", "/_index_template/app")[0] == 404, "user templates dropped by a reset")
    # --no-builtin-templates
    proc, port = start_fake("es_fake.py", "--no-builtin-templates")
    es = Client(port)
    check(es.json("GET", "/_index_template/logs")[0] == 404, "no built-in templates")
    st, body = es.json("PUT", "/_index_template/app", {"index_patterns": ["logs-app-*"], "priority": 100})
    check(st == 200, body)
    es.close()
    stop_fake(proc)


def test_auto_create_index_off():
    reset()
    st, body = ES.json("GET", "/_fake/settings")
    check(st == 200 and body["auto_create_index"] is True and body["max_shards"] is None and
          body["indexing_pressure_bytes"] is None, body)
    st, body = ES.json("POST", "/_fake/settings", {"auto_create_index": False})
    check(st == 200 and body["auto_create_index"] is False, body)
    st, body = ES.json("PUT", "/nothere/_doc/1", {"a": 1})
    check(st == 404 and body["error"]["type"] == "index_not_found_exception", body)
    check(body["error"]["reason"] == "no such index [nothere] and [action.auto_create_index] is [false]", body)
    check(body["error"]["index"] == "nothere", body)
    check(ES.json("POST", "/nothere/_doc", {"a": 1})[0] == 404, "POST _doc")
    check(ES.json("PUT", "/nothere/_create/1", {"a": 1})[0] == 404, "_create")
    check(ES.json("HEAD", "/nothere")[0] == 404, "nothing was created")
    ES.json("PUT", "/there")
    st, body = bulk([{"index": {"_index": "there", "_id": "1"}}, {"a": 1},
                     {"index": {"_index": "nothere", "_id": "1"}}, {"a": 1}])
    check(st == 200 and body["errors"] is True, body)
    items = [i["index"] for i in body["items"]]
    check([i["status"] for i in items] == [201, 404], items)
    check(items[1]["error"]["type"] == "index_not_found_exception" and items[1]["error"]["reason"] ==
          "no such index [nothere] and [action.auto_create_index] is [false]", items)
    # a matching template's allow_auto_create overrides the setting (both ways)
    ES.json("PUT", "/_index_template/auto", {"index_patterns": ["auto-*"], "allow_auto_create": True})
    check(ES.json("PUT", "/auto-1/_doc/1", {"a": 1})[0] == 201, "allow_auto_create true")
    ES.json("POST", "/_fake/settings", {"auto_create_index": True})
    ES.json("PUT", "/_index_template/noauto", {"index_patterns": ["noauto-*"], "allow_auto_create": False})
    st, body = ES.json("PUT", "/noauto-1/_doc/1", {"a": 1})
    check(st == 404 and body["error"]["reason"] ==
          "no such index [noauto-1] and composable template [noauto-*] forbids index auto creation", body)
    check(ES.json("PUT", "/other/_doc/1", {"a": 1})[0] == 201, "auto-creation back on")
    st, body = ES.json("POST", "/_fake/settings", {"no_such_setting": 1})
    check(st == 400, body)
    # the CLI option; a reset goes back to it
    proc, port = start_fake("es_fake.py", "--auto-create-index", "false", "--max-shards", "7",
                            "--indexing-pressure-bytes", "1kb")
    es = Client(port)
    st, body = es.json("GET", "/_fake/settings")
    check(body == {"auto_create_index": False, "max_shards": 7, "indexing_pressure_bytes": 1024,
                   "in_flight_write_bytes": 0}, body)
    check(es.json("PUT", "/x/_doc/1", {"a": 1})[0] == 404, "CLI --auto-create-index false")
    es.json("POST", "/_fake/settings", {"auto_create_index": True, "max_shards": None})
    check(es.json("PUT", "/x/_doc/1", {"a": 1})[0] == 201, "changed at run time")
    es.json("POST", "/_fake/reset")
    check(es.json("GET", "/_fake/settings")[1]["auto_create_index"] is False, "reset restores the CLI value")
    es.close()
    stop_fake(proc)


def test_shard_limit():
    reset()
    ES.json("POST", "/_fake/settings", {"max_shards": 5})
    check(ES.json("PUT", "/s1")[0] == 200, "2 shards (1 primary + 1 replica)")
    check(ES.json("PUT", "/s2")[0] == 200, "4 shards")
    st, body = ES.json("PUT", "/s3")
    check(st == 400 and body["error"]["type"] == "validation_exception", body)
    check(body["error"]["reason"] == "Validation Failed: 1: this action would add [2] shards, but this cluster "
                                     "currently has [4]/[5] maximum normal shards open;", body)
    check(ES.json("HEAD", "/s3")[0] == 404, "not created")
    # number_of_shards x (1 + number_of_replicas)
    st, body = ES.json("PUT", "/s4", {"settings": {"number_of_shards": 3, "number_of_replicas": 0}})
    check(st == 400 and "would add [3] shards" in body["error"]["reason"], body)
    check(ES.json("PUT", "/s5", {"settings": {"index": {"number_of_replicas": 0}}})[0] == 200, "5 of 5")
    # automatic creation by a write, per item in a bulk
    st, body = ES.json("PUT", "/s6/_doc/1", {"a": 1})
    check(st == 400 and body["error"]["type"] == "validation_exception" and
          "currently has [5]/[5]" in body["error"]["reason"], body)
    st, body = bulk([{"index": {"_index": "s1", "_id": "1"}}, {"a": 1},
                     {"index": {"_index": "s7", "_id": "1"}}, {"a": 1}])
    items = [i["index"] for i in body["items"]]
    check([i["status"] for i in items] == [201, 400], items)
    check(items[1]["error"]["type"] == "validation_exception", items)
    # deleting an index frees its shards
    ES.json("DELETE", "/s2")
    check(ES.json("PUT", "/s6/_doc/1", {"a": 1})[0] == 201, "room again")
    ES.json("POST", "/_fake/settings", {"max_shards": None})


def test_indexing_pressure():
    reset()
    ES.json("PUT", "/ip")
    ES.json("POST", "/_fake/settings", {"indexing_pressure_bytes": 1000})

    def body_of(size):
        head = json.dumps({"index": {"_index": "ip"}}) + "\n"
        pad = size - len(head) - len(json.dumps({"p": ""}) + "\n")
        return head + json.dumps({"p": "x" * pad}) + "\n"
    big = body_of(1500)
    check(len(big) == 1500, len(big))
    want = ("rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, "
            "all_bytes=0, coordinating_operation_bytes=1500, max_coordinating_and_primary_bytes=1000]")
    for _ in range(2):   # refused every time, not once
        st, _, data = ES.request("POST", "/_bulk", big, {"Content-Type": NDJSON})
        body = json.loads(data)
        check(st == 429 and body["status"] == 429, (st, body))
        check(body["error"]["type"] == "es_rejected_execution_exception" and body["error"]["reason"] == want, body)
    st, body = ES.json("PUT", "/ip/_doc/big", {"p": "x" * 1200})
    check(st == 429 and body["error"]["type"] == "es_rejected_execution_exception", body)
    st, _, data = ES.request("POST", "/_bulk", body_of(600), {"Content-Type": NDJSON})
    check(st == 200 and json.loads(data)["errors"] is False, data)
    check(ES.json("POST", "/ip/_search", {"query": {"match_all": {}}})[0] == 200, "reads are not accounted")
    # bytes in flight count: hold a 600-byte write (delay fault) and send 500 bytes meanwhile
    ES.json("POST", "/_fake/faults", {"delay_ms": 4000, "delay_count": 1})
    result = {}

    def slow():
        c = Client(PORT, timeout=30)
        try:
            result["status"] = c.request("POST", "/_bulk", body_of(600), {"Content-Type": NDJSON})[0]
        finally:
            c.close()
    th = threading.Thread(target=slow)
    th.start()
    wait_for(lambda: ES.json("GET", "/_fake/settings")[1]["in_flight_write_bytes"] == 600, "600 bytes in flight")
    st, _, data = ES.request("POST", "/_bulk", body_of(500), {"Content-Type": NDJSON})
    body = json.loads(data)
    check(st == 429 and body["error"]["reason"] ==
          "rejected execution of coordinating operation [coordinating_and_primary_bytes=600, replica_bytes=0, "
          "all_bytes=600, coordinating_operation_bytes=500, max_coordinating_and_primary_bytes=1000]", body)
    th.join(30)
    check(result.get("status") == 200, result)
    wait_for(lambda: ES.json("GET", "/_fake/settings")[1]["in_flight_write_bytes"] == 0, "nothing in flight")
    st, _, data = ES.request("POST", "/_bulk", body_of(500), {"Content-Type": NDJSON})
    check(st == 200, data)
    ES.json("POST", "/_fake/settings", {"indexing_pressure_bytes": None})


def test_lose_reply_after_write():
    reset()
    st, faults = ES.json("GET", "/_fake/faults")
    check(faults["lose_reply_after_write"] == 0, faults)
    ES.json("POST", "/_fake/faults", {"lose_reply_after_write": 2})
    c = Client(PORT)
    lost = False
    try:
        c.json("PUT", "/lr/_doc/1", {"n": 1})
    except (http.client.HTTPException, OSError):
        lost = True
    check(lost, "the reply of the first write was not lost")
    lost = False
    try:
        c.request("POST", "/_bulk", json.dumps({"create": {"_index": "lr", "_id": "2"}}) + "\n" +
                  json.dumps({"n": 2}) + "\n", {"Content-Type": NDJSON})
    except (http.client.HTTPException, OSError):
        lost = True
    check(lost, "the reply of the bulk was not lost")
    # both were stored
    st, body = ES.json("GET", "/_fake/docs?index=lr")
    check(body["indices"]["lr"]["docs"] == {"1": {"n": 1}, "2": {"n": 2}}, body)
    st, faults = ES.json("GET", "/_fake/faults")
    check(faults["lose_reply_after_write"] == 0, faults)
    # reads are not writes; the next write is answered (a retry of the lost create sees the conflict)
    check(c.json("GET", "/lr/_doc/1")[0] == 200, "read answered")
    st, body = c.json("PUT", "/lr/_create/2", {"n": 2})
    check(st == 409 and body["error"]["type"] == "version_conflict_engine_exception", body)
    st, body = ES.json("GET", "/_fake/requests")
    check([r["status"] for r in body["requests"] if r["path"].startswith(("/lr/_doc/1", "/_bulk"))][:2] == [-1, -1],
          body)
    c.close()


if __name__ == "__main__":
    run_tests([test_root_and_product_header, test_create_index_and_already_exists, test_delete_index,
               test_content_type_is_required, test_index_templates, test_create_and_conflict, test_binary_field,
               test_bulk_format_and_items, test_dynamic_mapping_conflicts, test_refresh_semantics,
               test_search_queries, test_sort_paging_source, test_cluster_health,
               test_max_content_length_413, test_keep_alive, test_fault_injection,
               test_raw_socket_http11, test_tls_with_generated_ca, test_security_401_and_accepted_credentials,
               test_security_403_per_privilege, test_keyword_term_limit_and_ignore_above,
               test_index_name_rules, test_builtin_templates, test_auto_create_index_off, test_shard_limit,
               test_indexing_pressure, test_lose_reply_after_write])
