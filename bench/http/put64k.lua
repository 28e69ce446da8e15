-- wrk script: PUT a 64 KiB body on every request (keep-alive).
wrk.method = "PUT"
wrk.body = string.rep("x", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
