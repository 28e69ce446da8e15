"""The Elasticsearch fake (tests/fakes/es_fake.py) answers as Elasticsearch 8 documents it, strictly:
wrong content types, a bulk body without its final newline and conflicting ids get the documented
errors; and its fault injection does what it says."""
import datetime
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from fakeproc import Client, start_fake  # noqa: E402
from lfharness import check, run_tests  # noqa: E402

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


if __name__ == "__main__":
    run_tests([test_root_and_product_header, test_create_index_and_already_exists, test_delete_index,
               test_content_type_is_required, test_index_templates, test_create_and_conflict, test_binary_field,
               test_bulk_format_and_items, test_dynamic_mapping_conflicts, test_refresh_semantics,
               test_search_queries, test_sort_paging_source, test_cluster_health,
               test_max_content_length_413, test_keep_alive, test_fault_injection,
               test_raw_socket_http11])
