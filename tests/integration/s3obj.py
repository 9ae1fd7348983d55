#!/usr/bin/python3
"""Raw object access to the test S3 server, as a store writer has it, for the integration
scripts: what they did with awscli, at a fiftieth of its start-up cost (awscli spent 1.3 s
of CPU on every call, and the S3 scripts make hundreds; this one makes one SigV4-signed
request on the standard library, or a few for a listing).

  s3obj.py ls s3://BUCKET/PREFIX         every key below PREFIX, one a line, sorted
  s3obj.py sums s3://BUCKET/PREFIX       KEY ETAG SIZE a line, sorted (ETag without quotes)
  s3obj.py get s3://BUCKET/KEY FILE|-    the object's bytes
  s3obj.py put FILE|- s3://BUCKET/KEY    stores them
  s3obj.py rm s3://BUCKET/KEY            deletes it (no error when it is absent, as S3)
  s3obj.py rmtree s3://BUCKET/PREFIX     deletes every key below PREFIX
  s3obj.py size s3://BUCKET/KEY          its size in bytes (fails when it is absent)
  s3obj.py uploads s3://BUCKET/PREFIX    KEY UPLOAD_ID a line, sorted: the multipart uploads
                                         begun below PREFIX and neither completed nor aborted
  s3obj.py abort s3://BUCKET/KEY UPLOAD  aborts that multipart upload

The server is $EPHEMERA_TEST_S3_ENDPOINT (the real one, never a fault proxy in front of it),
the credentials AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the region AWS_REGION. Keys are
sent as they are: a key holding "x/../" reaches the object of that name, as S3 has it.
Exits 1 with the server's status on stderr when a request fails.
"""
import datetime
import hashlib
import hmac
import http.client
import os
import sys
import urllib.parse
import xml.etree.ElementTree as ET

ENDPOINT = urllib.parse.urlsplit(os.environ["EPHEMERA_TEST_S3_ENDPOINT"])
REGION = os.environ.get("AWS_REGION", "us-east-1")
ACCESS = os.environ["AWS_ACCESS_KEY_ID"]
SECRET = os.environ["AWS_SECRET_ACCESS_KEY"]
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
conn = http.client.HTTPConnection(ENDPOINT.hostname, ENDPOINT.port or 80, timeout=60)


def q(s, safe):
    return urllib.parse.quote(s, safe=safe)


def request(method, bucket, key="", query=None, body=b""):
    """One signed request; returns (status, body bytes, headers)."""
    query = query or {}
    path = "/" + q(bucket, "") + ("/" + q(key, "/~") if key else "")
    qs = "&".join(f"{q(k, '~')}={q(v, '~')}" for k, v in sorted(query.items()))
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    host = ENDPOINT.netloc
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, path, qs] + [f"{h}:{headers[h]}" for h in sorted(headers)] +
                          ["", signed, payload])
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + SECRET).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={ACCESS}/{scope}, "
                                f"SignedHeaders={signed}, Signature={sig}")
    conn.request(method, path + ("?" + qs if qs else ""), body=body, headers=headers)
    r = conn.getresponse()
    return r.status, r.read(), r.headers


def split(url):
    assert url.startswith("s3://"), url
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def check(what, status, body, ok=(200,)):
    if status not in ok:
        sys.exit(f"s3obj.py: {what}: HTTP {status} {body[:300]!r}")


def listing(url):
    bucket, prefix = split(url)
    token = None
    while True:
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        status, body, _ = request("GET", bucket, query=query)
        check(f"list {url}", status, body)
        root = ET.fromstring(body)
        for c in root.iter(NS + "Contents"):
            yield (bucket, c.findtext(NS + "Key"), c.findtext(NS + "ETag", "").strip('"'),
                   c.findtext(NS + "Size"))
        token = root.findtext(NS + "NextContinuationToken")
        if root.findtext(NS + "IsTruncated") != "true" or not token:
            return


def uploads(url):
    bucket, prefix = split(url)
    markers = {}
    while True:
        status, body, _ = request("GET", bucket, query={"uploads": "", "prefix": prefix, **markers})
        check(f"list the uploads of {url}", status, body)
        root = ET.fromstring(body)
        for u in root.iter(NS + "Upload"):
            yield u.findtext(NS + "Key"), u.findtext(NS + "UploadId")
        markers = {"key-marker": root.findtext(NS + "NextKeyMarker") or "",
                   "upload-id-marker": root.findtext(NS + "NextUploadIdMarker") or ""}
        if root.findtext(NS + "IsTruncated") != "true" or not markers["key-marker"]:
            return


def main(cmd, *args):
    if cmd in ("ls", "sums"):
        rows = sorted(listing(args[0]), key=lambda r: r[1].encode())
        for _, key, etag, size in rows:
            print(key if cmd == "ls" else f"{key} {etag} {size}")
    elif cmd == "get":
        status, body, _ = request("GET", *split(args[0]))
        check(f"get {args[0]}", status, body)
        if args[1] == "-":
            sys.stdout.buffer.write(body)
        else:
            with open(args[1], "wb") as f:
                f.write(body)
    elif cmd == "put":
        data = sys.stdin.buffer.read() if args[0] == "-" else open(args[0], "rb").read()
        status, body, _ = request("PUT", *split(args[1]), body=data)
        check(f"put {args[1]}", status, body)
    elif cmd == "rm":
        status, body, _ = request("DELETE", *split(args[0]))
        check(f"rm {args[0]}", status, body, ok=(200, 204))
    elif cmd == "rmtree":
        for bucket, key, _, _ in list(listing(args[0])):
            status, body, _ = request("DELETE", bucket, key)
            check(f"rm {key}", status, body, ok=(200, 204))
    elif cmd == "size":
        status, body, headers = request("HEAD", *split(args[0]))
        check(f"head {args[0]}", status, body)
        print(headers["Content-Length"])
    elif cmd == "uploads":
        for key, upload in sorted(uploads(args[0]), key=lambda r: (r[0].encode(), r[1])):
            print(f"{key} {upload}")
    elif cmd == "abort":
        status, body, _ = request("DELETE", *split(args[0]), query={"uploadId": args[1]})
        check(f"abort {args[0]}", status, body, ok=(200, 204))
    else:
        sys.exit(f"s3obj.py: unknown command {cmd}")


if __name__ == "__main__":
    main(*sys.argv[1:])
