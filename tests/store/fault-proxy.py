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
  packrange N short|cutoff|lie|wrongrange|STATUS
                            the N-th ranged GET of a content-addressed pack (.pack), counted
                            from when the mode was set, and only it: half its bytes with a
                            Content-Length that says so (short), the full Content-Length then
                            half the body and the connection closed (cutoff), the right length
                            of other bytes (lie), a Content-Range one byte off (wrongrange), or
                            STATUS and an S3 error body; every other request is forwarded
  packstall N M STATUS      ranged GETs of packs: the N-th is never answered (held for 60 s),
                            the M-th is answered STATUS; the others are forwarded
  ignorerange               forward ranged GETs without their Range header, so the
                            whole object comes back with 200, as some servers do
  endlesslist same|fresh [N [uploads]]
                            bucket listings (objects and multipart uploads, or only the
                            latter) never end: every page is truncated, with the same
                            continuation token (same) or a new one each time (fresh), and
                            N keys of its own
  inject KEY...             bucket listings (objects and multipart uploads) also list
                            these keys, '{p}' standing for the prefix asked for and
                            Python's backslash escapes (\\n, \\x1b, \\x20) for other bytes
  bigpage N SIZE            object listings also list N keys of SIZE bytes under the
                            prefix asked for (a valid page well over 1 MiB)
  endlessbody               GETs of manifests (.json): 200 and a body that never ends
  bigrange                  ranged GETs of archives: the right status and Content-Range,
                            then a body that runs on past the range and never ends
  longlength                GETs of archives: a Content-Length 1000 bytes over the body
  trickle [tar]             GETs of objects (or only archives): the headers, then the
                            body at 2 bytes/s
  slow RATE                 GETs of archives: the body at RATE bytes/s (a store far
                            away or overloaded), in tenths of a second
  escapes                   every request: 403 with terminal escapes and a forged log
                            line in <Code> and <Message>
  redirect                  GETs of objects: 307 to http://localhost:PORT/stolen/...
  cas HOW pack|idx [FILE] [only=TEXT]
                            GETs of content-addressed packs (ranged) or indexes (those
                            whose path holds TEXT): a store whose answers lie. HOW is
                              other    the right status, range and length, other bytes
                              past     the range asked for, then 4 KiB more, Content-Length
                                       saying so
                              endless  the range asked for, then 1 MiB more, chunked (no
                                       Content-Length)
                              short    half the bytes, Content-Length saying so
                              whole    200 and the whole object, the Range dropped
                              shifted  206 for the range moved by half its length (it
                                       overlaps the one asked for), Content-Range saying so
                              overlap  the same bytes, under the Content-Range asked for
                              file     200 and FILE's bytes (another save's index, a forged one)
"""
import codecs
import itertools
import re
import xml.sax.saxutils
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
counter = itertools.count()


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

    def send_chunked(self, status, headers, chunks):
        """Answers status with a chunked body from the iterable chunks, until the client hangs up."""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.log(f"{status} endless")
        try:
            for chunk in chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except (ConnectionError, BrokenPipeError):
            pass
        self.close_connection = True

    def send_xml(self, xml):
        data = xml.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.log(200)

    def query(self):
        return urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query, keep_blank_values=True)

    def endless_listing(self, how, keys):
        """A page that is always truncated: the same token, or a fresh one, and keys of its own."""
        q = self.query()
        prefix = q.get("prefix", [""])[0]
        n = next(counter)
        token = "same-token" if how == "same" else f"token-{n}"
        names = [xml.sax.saxutils.escape(f"{prefix}endless/{n:09d}-{i:06d}.bin") for i in range(keys)]
        if "uploads" in q:
            entries = "".join(f"<Upload><Key>{k}</Key><UploadId>u{n}</UploadId>"
                              f"<Initiated>2020-01-01T00:00:00.000Z</Initiated></Upload>" for k in names)
            return self.send_xml(f"<?xml version=\"1.0\"?><ListMultipartUploadsResult>{entries}"
                                 f"<IsTruncated>true</IsTruncated><NextKeyMarker>{token}</NextKeyMarker>"
                                 f"<NextUploadIdMarker>{token}</NextUploadIdMarker></ListMultipartUploadsResult>")
        entries = "".join(f"<Contents><Key>{k}</Key><Size>1</Size>"
                          f"<LastModified>2020-01-01T00:00:00.000Z</LastModified></Contents>" for k in names)
        self.send_xml(f"<?xml version=\"1.0\"?><ListBucketResult>{entries}<IsTruncated>true</IsTruncated>"
                      f"<NextContinuationToken>{token}</NextContinuationToken></ListBucketResult>")

    def add_keys(self, data, keys):
        """The listing data with keys added before its end (objects, or multipart uploads)."""
        text = data.decode()
        if "<ListMultipartUploadsResult" in text:
            extra = "".join(f"<Upload><Key>{xml.sax.saxutils.escape(k)}</Key><UploadId>2~injected</UploadId>"
                            f"<Initiated>2020-01-01T00:00:00.000Z</Initiated></Upload>" for k in keys)
            return text.replace("</ListMultipartUploadsResult>", extra + "</ListMultipartUploadsResult>").encode()
        extra = "".join(f"<Contents><Key>{xml.sax.saxutils.escape(k)}</Key><Size>1000</Size>"
                        f"<LastModified>2020-01-01T00:00:00.000Z</LastModified><ETag>&quot;x&quot;</ETag>"
                        f"<StorageClass>STANDARD</StorageClass></Contents>" for k in keys)
        return text.replace("</ListBucketResult>", extra + "</ListBucketResult>").encode()

    def cas_get(self, m):
        """Whether this request is a GET of the content-addressed object kind m[2] names."""
        path = urllib.parse.urlparse(self.path).path
        only = [w[5:] for w in m[3:] if w.startswith("only=")]
        return (m[0] == "cas" and len(m) > 2 and self.command == "GET"
                and path.endswith({"pack": ".pack", "idx": ".idx"}.get(m[2], "\0"))
                and all(o in path for o in only))

    def lie_cas(self, m, headers):
        """Answers a content-addressed GET as the cas mode m says; False: forward it as it is."""
        how = m[1]
        if how == "file":
            data = open(next(w for w in m[3:] if not w.startswith("only=")), "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.log("200 file")
            return True
        asked = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range") or "")
        if how == "whole":
            headers.pop("Range", None)
            headers.pop("range", None)
        elif how in ("shifted", "overlap") and asked:
            first, last = int(asked[1]), int(asked[2])
            shift = max(1, (last - first + 1) // 2)
            for k in [k for k in headers if k.lower() == "range"]:
                del headers[k]
            headers["Range"] = f"bytes={first + shift}-{last + shift}"
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        conn.request(self.command, self.path, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = [(k, v) for k, v in resp.getheaders()
               if k.lower() not in ("content-length", "transfer-encoding", "connection")]
        if resp.status not in (200, 206):
            pass
        elif how == "other":
            data = bytes(b ^ 0x5A for b in data)
        elif how == "past":
            data += b"\x5a" * 4096
        elif how == "endless":
            return self.send_chunked(resp.status, out, [data, b"\x5a" * (1 << 20)]) or True
        elif how == "short":
            data = data[:len(data) // 2]
        elif how == "overlap" and asked:
            first, last = int(asked[1]), int(asked[2])
            data = data[:last - first + 1].ljust(last - first + 1, b"\0")
            out = [(k, v) for k, v in out if k.lower() != "content-range"]
            total = resp.getheader("Content-Range", "/*").rsplit("/", 1)[1]
            out.append(("Content-Range", f"bytes {first}-{last}/{total}"))
        self.send_response(resp.status)
        for k, v in out:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.log(f"{resp.status} cas {how}")
        return True

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        m = mode()
        listing = self.command == "GET" and ("list-type" in self.path or "uploads" in self.path
                                             or "prefix=" in self.path)
        object_get = self.command == "GET" and not listing and (".tar.zst" in self.path or ".json" in self.path)
        if m[0] == "endlesslist" and listing and (len(m) < 4 or "uploads" in self.query()):
            return self.endless_listing(m[1], int(m[2]) if len(m) > 2 else 0)
        if m[0] == "escapes":
            msg = "denied\n\x1b[2J\x1b]0;owned\x07ephemera: forged line"
            body = (f"<?xml version=\"1.0\"?><Error><Code>Access\x1b[31mDenied</Code>"
                    f"<Message>{msg}</Message></Error>").encode()
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return self.log(403)
        if m[0] == "redirect" and object_get:
            self.send_response(307)
            self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/stolen{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return self.log(307)
        if m[0] == "endlessbody" and object_get and ".json" in self.path:
            return self.send_chunked(200, [("Content-Type", "application/json")],
                                     itertools.repeat(b" " * 65536))
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
        pack_fault = None
        if m[0] == "packrange" and self.command == "GET" and ".pack" in self.path and rng:
            with lock:
                state["failed"] += 1
                hit = state["failed"] == int(m[1])
            if hit:
                pack_fault = m[2]
                self.log(f"packrange {pack_fault}")
            if pack_fault and pack_fault.isdigit():
                status = int(pack_fault)
                return self.error(status, codes.get(status, "InternalError"))
        if m[0] == "packstall" and self.command == "GET" and ".pack" in self.path and rng:
            with lock:
                state["failed"] += 1
                n = state["failed"]
            if n == int(m[1]):
                self.log("packstall held")
                time.sleep(60)
                self.close_connection = True
                return
            if n == int(m[2]):
                status = int(m[3])
                return self.error(status, codes.get(status, "InternalError"))
        if m[0] == "always":
            status = int(m[1])
            return self.error(status, codes.get(status, "InternalError"))
        if self.cas_get(m):
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            return self.lie_cas(m, headers)
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        dropped = ("connection", "range") if m[0] == "ignorerange" else ("connection",)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        archive_get = self.command == "GET" and ".tar.zst" in self.path and resp.status in (200, 206)
        if m[0] == "bigrange" and archive_get and resp.status == 206:
            headers = [(k, v) for k, v in resp.getheaders()
                       if k.lower() not in ("content-length", "transfer-encoding", "connection")]
            return self.send_chunked(206, headers, itertools.chain([data], itertools.repeat(b"\0" * 65536)))
        if m[0] == "inject" and listing and resp.status == 200:
            prefix = self.query().get("prefix", [""])[0]
            keys = [codecs.decode(k, "unicode_escape").replace("{p}", prefix) for k in m[1:]]
            data = self.add_keys(data, keys)
        if m[0] == "bigpage" and listing and resp.status == 200 and "uploads" not in self.query():
            prefix = self.query().get("prefix", [""])[0]
            n, size = int(m[1]), int(m[2])
            data = self.add_keys(data, [f"{prefix}zz-big/{i:06d}-".ljust(size, "x") for i in range(n)])
        if m[0] == "badxml" and listing and resp.status == 200:
            data = b"<?xml version=\"1.0\"?><ListBucketResult><Contents><Key>v1/x"
        if (m[0] == "lie" and archive_get) or pack_fault == "lie":
            data = bytes(b ^ 0x5A for b in data)
        # A HEAD answer has no body: its length is the upstream's header.
        declared = int(resp.getheader("Content-Length") or 0) if self.command == "HEAD" else len(data)
        if (m[0] == "short" and archive_get) or pack_fault == "short":
            data = data[:len(data) // 2]
            declared = len(data)
        cutoff = (m[0] == "cutoff" and archive_get) or pack_fault == "cutoff"
        if cutoff:
            data = data[:len(data) // 2]
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() == "content-range" and pack_fault == "wrongrange":
                first, last, total = map(int, re.match(r"bytes (\d+)-(\d+)/(\d+)", v).groups())
                v = f"bytes {first + 1}-{last + 1}/{total}"
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        if m[0] == "longlength" and archive_get:
            declared += 1000
            self.close_connection = True
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        if m[0] == "trickle" and object_get and resp.status in (200, 206) and (len(m) < 2 or archive_get):
            self.log("trickling")
            try:
                for i in range(0, len(data), 2):
                    self.wfile.write(data[i:i + 2])
                    self.wfile.flush()
                    time.sleep(1)
            except (ConnectionError, BrokenPipeError):
                pass
            self.close_connection = True
            return
        if m[0] == "slow" and archive_get:
            self.log("slow")
            step = max(1, int(m[1]) // 10)
            try:
                for i in range(0, len(data), step):
                    self.wfile.write(data[i:i + step])
                    self.wfile.flush()
                    time.sleep(0.1)
            except (ConnectionError, BrokenPipeError):
                pass
            self.close_connection = True
            return
        if m[0] == "stall" and archive_get:
            self.wfile.write(data[:1024])
            self.wfile.flush()
            self.log("stalled")
            time.sleep(3600)
            return
        if self.command != "HEAD":
            self.wfile.write(data)
        if cutoff:
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
