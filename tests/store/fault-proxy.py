#!/usr/bin/python3
"""A fault-injecting HTTP proxy in front of the real S3 server, for the fault tests.

usage: fault-proxy.py UPSTREAM_URL PORT_FILE LOG_FILE

Listens on a free port of 127.0.0.1 (written to PORT_FILE), forwards every request
verbatim (the Host header too, so SigV4 signatures stay valid) and logs one line per
request: "METHOD PATH -> STATUS". The fault to inject is read for each request from the
file named by PORT_FILE + ".mode", one word and arguments:

  pass                      forward untouched
  fail N STATUS [RETRY]     answer the next N requests with STATUS and an S3 error body
                            (and Retry-After: RETRY), then forward
  always STATUS             answer every request with STATUS
  stall                     GETs of archives: send the headers and 1 KiB, then hang
  badxml                    bucket listings answer 200 with a broken XML body
  lie                       GETs of archives: the right length, other bytes
  short                     GETs of archives: half the object, with a Content-Length
                            that says so (a store that lost the tail)
  cutoff                    GETs of archives: the full Content-Length, then half the
                            body and the connection closed
  failrange N STATUS        answer the next N ranged GETs that do not start at byte 0
                            with STATUS (a part in the middle of a parallel download)
  ignorerange               forward ranged GETs without their Range header, so the
                            whole object comes back with 200, as some servers do
"""
import http.client
import http.server
import os
import socketserver
import sys
import threading
import time
import urllib.parse

upstream = urllib.parse.urlparse(sys.argv[1])
port_file, log_file = sys.argv[2], sys.argv[3]
mode_file = port_file + ".mode"
lock = threading.Lock()
state = {"failed": 0}


def mode():
    """The current fault; counters start again whenever the mode file is written."""
    try:
        with open(mode_file) as f:
            generation = (os.fstat(f.fileno()).st_mtime_ns, os.fstat(f.fileno()).st_ino)
            words = f.read().split()
    except FileNotFoundError:
        return ["pass"]
    with lock:
        if state.get("generation") != generation:
            state["generation"] = generation
            state["failed"] = 0
    return words or ["pass"]


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def log(self, status):
        with lock, open(log_file, "a") as f:
            rng = self.headers.get("Range")
            f.write(f"{self.command} {self.path}{' range=' + rng if rng else ''} -> {status}\n")

    def error(self, status, code, retry_after=None):
        body = (f"<?xml version=\"1.0\"?><Error><Code>{code}</Code>"
                f"<Message>injected by the fault proxy</Message></Error>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(body)
        self.log(status)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        m = mode()
        codes = {403: "AccessDenied", 500: "InternalError", 503: "SlowDown", 429: "SlowDown"}
        if m[0] == "fail":
            with lock:
                take = state["failed"] < int(m[1])
                state["failed"] += take
            if take:
                status = int(m[2])
                return self.error(status, codes.get(status, "InternalError"), m[3] if len(m) > 3 else None)
        rng = self.headers.get("Range") or ""
        if m[0] == "failrange" and rng and not rng.startswith("bytes=0-"):
            with lock:
                take = state["failed"] < int(m[1])
                state["failed"] += take
            if take:
                status = int(m[2])
                return self.error(status, codes.get(status, "InternalError"))
        if m[0] == "always":
            status = int(m[1])
            return self.error(status, codes.get(status, "InternalError"))
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        dropped = ("connection", "range") if m[0] == "ignorerange" else ("connection",)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        archive_get = self.command == "GET" and ".tar.zst" in self.path and resp.status in (200, 206)
        listing = self.command == "GET" and ("list-type" in self.path or "prefix=" in self.path)
        if m[0] == "badxml" and listing and resp.status == 200:
            data = b"<?xml version=\"1.0\"?><ListBucketResult><Contents><Key>v1/x"
        if m[0] == "lie" and archive_get:
            data = bytes(b ^ 0x5A for b in data)
        declared = len(data)
        if m[0] == "short" and archive_get:
            data = data[:len(data) // 2]
            declared = len(data)
        if m[0] == "cutoff" and archive_get:
            data = data[:len(data) // 2]
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        if m[0] == "stall" and archive_get:
            self.wfile.write(data[:1024])
            self.wfile.flush()
            self.log("stalled")
            time.sleep(3600)
            return
        if self.command != "HEAD":
            self.wfile.write(data)
        if m[0] == "cutoff" and archive_get:
            self.wfile.flush()
            self.close_connection = True
            self.log("cut off")
            return
        self.log(resp.status)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up mid-body (as ephemera does on an ignored Range) is expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


server = Server(("127.0.0.1", 0), Proxy)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
