# Request bodies the broker would hold in memory: cpp-httplib reads the body of a request no
# streaming route takes into memory before any handler (the token check included) runs, up
# to --max-object with a Content-Length and without a bound chunked. Each such request is
# refused (413 or 405) before its body is read, with or without a token, logged; a request
# with no body declared is answered at once, not after the read timeout; and clients sending
# large bodies at once leave the broker's memory where it was.
. "$(dirname "$0")/lib.sh"

start_broker b1 --max-object 10MB
ctx feature pull_request job-a
TOKEN=$(token)
key="v1/acme~2Fwidget/~/deps/e1/deps/20261201T000000.000000Z-0000b001"
logged=$(refused_count b1)

# raw METHOD PATH HEADER...: the status line the broker answers a request of these headers
# with, before a byte of a body is sent (its first 12 bytes; "" if none within 5 s).
raw() {
  /usr/bin/python3 - "${BROKER#http://}" "$@" <<'PY'
import socket, sys
host, port = sys.argv[1].split(":")
method, path, headers = sys.argv[2], sys.argv[3], sys.argv[4:]
s = socket.create_connection((host, int(port)))
s.settimeout(5)
s.sendall((f"{method} {path} HTTP/1.1\r\nHost: x\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode())
try:
    print(s.recv(12).decode(errors="replace"))
except socket.timeout:
    print("")
PY
}
# answered_before_body WHAT WANT METHOD PATH HEADER...: refused with WANT, unread, and logged.
answered_before_body() {
  local what=$1 want=$2
  shift 2
  local got; got=$(raw "$@")
  echo "$got" > "$SCRATCH/answer"
  refused "$what" "$want" "$(echo "$got" | sed -n 's/^HTTP\/1\.1 \([0-9]*\).*/\1/p')"
}
auth="Authorization: Bearer $TOKEN"
gib="Content-Length: 1073741824"
answered_before_body "a delete with a body" 413 DELETE "/v1/objects/$key.tar.zst" "$auth" "$gib"
answered_before_body "a delete with a body and no token" 413 DELETE "/v1/objects/$key.tar.zst" "$gib"
answered_before_body "a stat with a body" 413 GET "/v1/stat/$key.json" "$auth" "$gib"
answered_before_body "a start of an upload with a body" 413 POST "/v1/uploads/$key.tar.zst?size=1" "$auth" "$gib"
answered_before_body "a completion of 1 GiB" 413 POST "/v1/complete/$key.tar.zst" "$auth" "$gib"
answered_before_body "a put past --max-object" 413 PUT "/v1/objects/$key.tar.zst" "$auth" "$gib"
answered_before_body "a put to no endpoint" 413 PUT "/v1/nothing" "$gib"
answered_before_body "a chunked delete" 413 DELETE "/v1/objects/$key.tar.zst" "$auth" "Transfer-Encoding: chunked"
answered_before_body "a chunked post to no endpoint" 413 POST "/v1/nothing" "Transfer-Encoding: chunked"
answered_before_body "a body framed twice" 400 PUT "/v1/objects/$key.tar.zst" "$auth" \
  "Transfer-Encoding: chunked" "Content-Length: 10"
answered_before_body "a body framed by another coding" 400 PUT "/v1/objects/$key.tar.zst" "$auth" \
  "Transfer-Encoding: gzip"
answered_before_body "a length that is no number" 400 PUT "/v1/objects/$key.tar.zst" "$auth" \
  "Content-Length: +10"
answered_before_body "a PATCH" 405 PATCH "/v1/objects/$key.tar.zst" "$auth" "$gib"
answered_before_body "a PRI" 405 PRI "/v1/objects/$key.tar.zst" "$auth" "$gib"
# The same refusal reaches a client that asks first, before it sends the body.
answered_before_body "a delete with a body, expecting 100-continue" 413 DELETE \
  "/v1/objects/$key.tar.zst" "$auth" "$gib" "Expect: 100-continue"

# A request with no body declared has none: answered at once, not after the read timeout.
for path in "/v1/uploads/$key.tar.zst?size=1" "/v1/nothing"; do
  got=$(raw POST "$path" "$auth")
  [ -n "$got" ] || fail "POST $path with no Content-Length: no answer within 5 s"
done
got=$(raw PUT "/v1/objects/$key.tar.zst" "$auth")
[ -n "$got" ] || fail "PUT with no Content-Length: no answer within 5 s"

# A request refused before its body was read ends its connection: the body, a request of its
# own here, is never answered as the next request on it (behind a proxy that reuses
# connections, the answer to someone else's).
smuggled=$(/usr/bin/python3 - "${BROKER#http://}" "$key" <<'PY'
import socket, sys, time
host, port = sys.argv[1].split(":")
inner = b"GET /v1/key HTTP/1.1\r\nHost: x\r\n\r\n"
s = socket.create_connection((host, int(port)))
s.settimeout(10)
s.sendall(f"PUT /v1/objects/{sys.argv[2]}.tar.zst HTTP/1.1\r\nHost: x\r\n"
          f"Content-Length: {len(inner)}\r\n\r\n".encode())
got = s.recv(65536)  # the refusal (no token), before the body
try:
    time.sleep(0.2)
    s.sendall(inner)
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except OSError:
    pass  # closed: what a broker that ends the connection does
print(got.count(b"HTTP/1.1 "))
PY
)
[ "$smuggled" = 1 ] || fail "one request with another in its body was answered $smuggled times"

# Four clients at once, each sending 64 MiB to a route that takes no body (two framed by a
# Content-Length, which the library bounded by --max-object alone, here its default of 64 GiB;
# two chunked, which it did not bound at all): the broker's peak memory stays where it was.
start_broker b2
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$BROKER_PID/status"; }
peak=$(hwm)
[ -n "$peak" ] || fail "no peak memory in /proc/$BROKER_PID/status"
/usr/bin/python3 - "${BROKER#http://}" "$key" <<'PY'
import socket, sys, threading
host, port = sys.argv[1].split(":")
size, chunk = 64 << 20, b"\0" * (1 << 20)
def send(path, chunked):
    try:
        s = socket.create_connection((host, int(port)))
        s.settimeout(20)
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        s.sendall(f"DELETE {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode())
        for _ in range(size // len(chunk)):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            s.sendall(b"0\r\n\r\n")
        s.recv(100)
    except OSError:
        pass  # refused and closed while sending: what a bounded broker does
threads = [threading.Thread(target=send, args=(f"/v1/objects/{sys.argv[2]}-{i}.tar.zst", i % 2))
           for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
PY
kill -0 "$BROKER_PID" || fail "the broker died"
grown=$(( ($(hwm) - peak) / 1024 ))
[ "$grown" -lt 32 ] || fail "four 64 MiB bodies grew the broker's peak memory by $grown MiB"
# It still serves.
[ "$(req "$TOKEN" GET "$key.json")" = 404 ] || fail "the broker no longer answers: $(cat "$SCRATCH/answer")"
echo "broker bodies ($STORE_KIND): ok (peak memory grew $grown MiB)"
