# A store writer's forged objects and a server that lies (tests/store/fault-proxy.py
# rewriting the real S3 server's answers) never make a command touch an object outside the
# store's prefix, hang, hold what a request cannot legitimately return, or put the
# server's raw text on the terminal. Every command runs under `timeout`: ending is the test.
. "$(dirname "$0")/../lib.sh"
# These saves are single archives (EPHEMERA_FORMAT=archive), whose one object this script
# fetches, stalls and forges; stores keep holding and restoring them.
export EPHEMERA_FORMAT=archive
[ "${STORE_KIND}" = s3 ] || fail "this test needs STORE_KIND=s3"

start_fault_proxy
export EPHEMERA_S3_STALL_SECONDS=2 EPHEMERA_S3_CONNECT_SECONDS=2
# bounded SECONDS ARGS...: ephemera ARGS (a hook on machine $M) must end by itself within
# SECONDS (exit 124 is a hang); returns its exit code.
bounded() {
  local limit=$1; shift
  local machine=()
  case "$1" in pre | post) machine=(--root "$M" --workdir /work/job --home /home/build --state-dir "$M/state") ;; esac
  set +e
  timeout "$limit" "$EPHEMERA" "$@" "${machine[@]}"
  code=$?
  set -e
  [ "$code" != 124 ] || fail "'ephemera $*' did not end within $limit s"
  return "$code"
}

bucket=$EPHEMERA_TEST_S3_BUCKET
prefix=${STORE#s3://$bucket/}
id=$(basename "$SCRATCH" | tr 'A-Z.' 'a-z-')
# Objects beside the store's prefix and in the bucket's root, which nothing may touch.
outside="outside-$id/x.tar.zst"
root="root-$id.tar.zst"
echo keep | s3obj put - "s3://$bucket/$outside"
echo keep | s3obj put - "s3://$bucket/$root"
on_exit 's3obj rm "s3://$bucket/$outside" >/dev/null 2>&1; s3obj rm "s3://$bucket/$root" >/dev/null 2>&1'
untouched() {
  s3obj size "s3://$bucket/$outside" >/dev/null 2>&1 ||
    fail "$1 deleted $outside, outside the store's prefix"
  s3obj size "s3://$bucket/$root" >/dev/null 2>&1 ||
    fail "$1 deleted $root, in the bucket's root"
  # Every request went to an object under the prefix, or listed under it.
  if grep -v -e "^[A-Z]* /$bucket/$prefix/" -e "^GET /$bucket/?[^ ]*prefix=$prefix%2F" "$P.log" | grep .; then
    fail "$1 sent requests outside the store's prefix (above)"
  fi
}
# clean FILE: what a command printed holds no terminal control byte and no forged line.
clean() {
  if grep -q -P '[\x00-\x08\x0b-\x1f\x7f]' "$1"; then fail "raw control bytes reached the terminal: $(cat -A "$1")"; fi
  if grep -q '^ephemera: forged' "$1"; then fail "the server forged a log line: $(cat "$1")"; fi
}

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
BIG="$SCRATCH/big.toml"
sed -e 's/"deps"/"big"/' -e 's/"target"/"big"/' "$JOB" > "$BIG"
machine a; ctx feature pull_request job-a
mkdir -p "$M/work/job/target" "$M/work/job/big"
head -c 300000 /dev/urandom > "$M/work/job/target/blob"
head -c 20000000 /dev/urandom > "$M/work/job/big/blob"
fault pass
eph post --job "$JOB" --status 0 2> "$SCRATCH/a.err" || fail "post failed: $(cat "$SCRATCH/a.err")"
eph post --job "$BIG" --status 0 2>> "$SCRATCH/a.err" || fail "post failed: $(cat "$SCRATCH/a.err")"
expect_result post deps saved
expect_result post big saved
manifest=$(s3obj ls "s3://$bucket/$prefix/v1/" | grep '/deps/.*\.json$')
[ -n "$manifest" ] || fail "no manifest of deps in the store"
s3obj get "s3://$bucket/$manifest" "$SCRATCH/m.json"

# 16. Manifests whose archive climbs out with '..' (beside the prefix, to the bucket's
# root, to another bucket): pre, show and gc refuse the key; no request leaves the prefix.
forge() { # forge NAME ARCHIVE SHA: a manifest beside the real one
  /usr/bin/python3 - "$SCRATCH/m.json" "$2" "$3" > "$SCRATCH/$1.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["archive"], m["sha256"], m["created"] = sys.argv[2], sys.argv[3], "2020-01-01T00:00:00.000000Z"
print(json.dumps(m))
PY
  s3obj put "$SCRATCH/$1.json" "s3://$bucket/$(dirname "$manifest")/20200101T000000.000000Z-$1.json"
}
forge_all() {
  forge beside "v1/../../$outside" "$(printf 'ab%.0s' $(seq 32))"
  forge root "v1/../../../$bucket/$root" "$(printf 'cd%.0s' $(seq 32))"
  forge other "v1/../../../other-$id/x.tar.zst" "$(printf 'ef%.0s' $(seq 32))"
}
unforge() {
  local k
  for k in $(s3obj ls "s3://$bucket/$prefix/v1/" | grep '20200101T000000\.000000Z-'); do
    s3obj rm "s3://$bucket/$k"
  done
}
forge_all
machine b; ctx feature pull_request job-b
fault pass
bounded 60 pre --job "$JOB" 2> "$SCRATCH/b.err" || fail "pre failed on forged manifests"
untouched "pre"
for sha in abababab cdcdcdcd efefefef; do
  fault pass
  bounded 60 show "$sha" --json > "$SCRATCH/show.json" 2> "$SCRATCH/show.err" || true
  if grep -q -e outside -e "/root-" -e other- "$SCRATCH/show.json"; then
    fail "show presigned a link outside the store's prefix: $(cat "$SCRATCH/show.json")"
  fi
  untouched "show"
done
unforge

# 17. Listed keys that climb out, lie outside the prefix asked for or hold a control byte:
# never handed on (gc would take them for orphans), and named in one escaped warning.
# First a gc with nothing injected takes what the saves above really left: with a 2 s stall
# limit, a post on a loaded machine may have begun a multipart upload twice.
fault pass
bounded 60 gc --grace 0s > "$SCRATCH/gc1.out" 2> "$SCRATCH/gc1.err" || fail "gc failed: $(cat "$SCRATCH/gc1.err")"
fault inject "{p}../../$outside" "{p}../../../$bucket/$root" "{p}../../../other-$id/x.tar.zst" \
  "$outside" '{p}evil\nephemera:\x20forged\x1b[2J.tar.zst'
bounded 60 gc --grace 0s > "$SCRATCH/gc2.out" 2> "$SCRATCH/gc2.err" || fail "gc failed: $(cat "$SCRATCH/gc2.err")"
untouched "gc of listed keys"
grep -q "ignoring 5 key(s) the server listed under s3://$bucket/$prefix/v1/ " "$SCRATCH/gc2.err" ||
  fail "no warning for the object listing: $(cat "$SCRATCH/gc2.err")"
grep -q "ignoring 5 key(s) the server listed under the multipart uploads of" "$SCRATCH/gc2.err" ||
  fail "no warning for the multipart uploads listing: $(cat "$SCRATCH/gc2.err")"
[ "$(grep -c "ignoring" "$SCRATCH/gc2.err")" = "$(grep -c "ignoring 5 key(s)" "$SCRATCH/gc2.err")" ] ||
  fail "not one warning per listing: $(cat "$SCRATCH/gc2.err")"
clean "$SCRATCH/gc2.err"
grep -q "deleted" "$SCRATCH/gc2.out" && fail "gc deleted something: $(cat "$SCRATCH/gc2.out")"

# 20. Listings that never end: the same continuation token again, fresh tokens with keys
# forever (ended by EPHEMERA_S3_DEADLINE), and an endless multipart-uploads listing.
fault endlesslist same
bounded 60 ls > /dev/null 2> "$SCRATCH/ls.err" && fail "ls succeeded on an endless listing"
grep -q "a second time" "$SCRATCH/ls.err" || fail "the repeated token was not named: $(cat "$SCRATCH/ls.err")"
machine c; ctx feature pull_request job-c
bounded 60 pre --job "$JOB" 2> "$SCRATCH/c.err" || fail "pre failed on an endless listing"
grep -q "a second time" "$SCRATCH/c.err" || fail "the repeated token was not named: $(cat "$SCRATCH/c.err")"
fault endlesslist fresh 1000
EPHEMERA_S3_DEADLINE=4 bounded 60 ls > /dev/null 2> "$SCRATCH/ls2.err" && fail "ls succeeded on an endless listing"
grep -q "out of time" "$SCRATCH/ls2.err" || fail "the deadline was not named: $(cat "$SCRATCH/ls2.err")"
fault endlesslist same 10 uploads
bounded 60 gc --grace 0s > /dev/null 2> "$SCRATCH/gc3.err" && fail "gc succeeded on an endless listing"
grep -q "multipart uploads.*a second time" "$SCRATCH/gc3.err" || fail "not named: $(cat "$SCRATCH/gc3.err")"
untouched "gc of an endless listing"

# 21. Bodies past what the request may return: an endless manifest (refused past 1 MiB,
# with little memory), a ranged part that runs on past its range, a Content-Length that
# lies; and a valid listing page far over 1 MiB (1000 keys of 900 bytes) still read.
fault endlessbody
machine d; ctx feature pull_request job-d
/usr/bin/time -f %M -o "$SCRATCH/rss" timeout 60 "$EPHEMERA" pre --job "$JOB" --root "$M" --workdir /work/job \
  --home /home/build --state-dir "$M/state" 2> "$SCRATCH/d.err" || fail "pre failed or hung on an endless manifest"
grep -q "more than the 1048576 bytes" "$SCRATCH/d.err" || fail "the endless manifest was not refused: $(cat "$SCRATCH/d.err")"
[ "$(tail -1 "$SCRATCH/rss")" -lt 200000 ] || fail "pre held $(tail -1 "$SCRATCH/rss") KiB for an endless manifest"
[ ! -e "$M/work/job/target" ] || fail "restored from an endless manifest"
fault bigrange
machine e; ctx feature pull_request job-e
/usr/bin/time -f %M -o "$SCRATCH/rss" timeout 60 "$EPHEMERA" pre --job "$BIG" --root "$M" --workdir /work/job \
  --home /home/build --state-dir "$M/state" 2> "$SCRATCH/e.err" || fail "pre failed or hung on an endless range"
grep -q "more than the [0-9]* bytes this request may return" "$SCRATCH/e.err" ||
  fail "the overlong range was not refused: $(cat "$SCRATCH/e.err")"
[ "$(tail -1 "$SCRATCH/rss")" -lt 300000 ] || fail "pre held $(tail -1 "$SCRATCH/rss") KiB for an endless range"
if grep -q 18446744 "$SCRATCH/e.err"; then fail "a size underflowed: $(cat "$SCRATCH/e.err")"; fi
[ ! -e "$M/work/job/big" ] || fail "restored from an overlong range"
expect_result pre big failed
fault longlength
machine f; ctx feature pull_request job-f
EPHEMERA_S3_PARALLEL=1 bounded 60 pre --job "$JOB" 2> "$SCRATCH/f.err" || fail "pre failed on a wrong length"
grep -q "the server says it is [0-9]* bytes, expected" "$SCRATCH/f.err" || fail "not named: $(cat "$SCRATCH/f.err")"
[ ! -e "$M/work/job/target" ] || fail "restored from a wrong length"
fault bigpage 1000 900
bounded 60 ls --json > "$SCRATCH/ls.json" 2> "$SCRATCH/ls3.err" || fail "ls refused a valid page: $(cat "$SCRATCH/ls3.err")"
grep -q '"deps"' "$SCRATCH/ls.json" || fail "ls lost the archive in a large page: $(cat "$SCRATCH/ls.json")"

# A trickle (2 bytes/s): a manifest's request ends by its size-proportional timeout, an
# archive's download by EPHEMERA_S3_DEADLINE, and the job goes on cold.
fault trickle
machine g; ctx feature pull_request job-g
EPHEMERA_S3_TIMEOUT_SECONDS=3 bounded 60 pre --job "$JOB" 2> "$SCRATCH/g.err" || fail "pre failed on a trickle"
grep -q "trickling" "$P.log" || fail "the proxy never trickled"
grep -q "timed out" "$SCRATCH/g.err" || fail "no timeout named: $(cat "$SCRATCH/g.err")"
[ ! -e "$M/work/job/target" ] || fail "restored from a trickle"
fault trickle tar
machine g2; ctx feature pull_request job-g2
EPHEMERA_S3_DEADLINE=5 bounded 60 pre --job "$JOB" 2> "$SCRATCH/g2.err" || fail "pre failed on a trickle"
grep -q "trickling" "$P.log" || fail "the proxy never trickled"
grep -q "out of time.*EPHEMERA_S3_DEADLINE" "$SCRATCH/g2.err" || fail "no deadline named: $(cat "$SCRATCH/g2.err")"
[ ! -e "$M/work/job/target" ] || fail "restored from a trickle"
expect_result pre deps failed

# The server's words (terminal escapes, a forged line) reach the terminal escaped.
fault escapes
machine h; ctx feature pull_request job-h
bounded 60 pre --job "$JOB" 2> "$SCRATCH/h.err" || fail "pre failed on a 403"
grep -q "403" "$SCRATCH/h.err" || fail "the 403 was not named: $(cat "$SCRATCH/h.err")"
clean "$SCRATCH/h.err"
bounded 60 ls > /dev/null 2> "$SCRATCH/h2.err" || true
clean "$SCRATCH/h2.err"

# A redirect (to another host, where the credentials would go along) is not followed.
fault redirect
machine i; ctx feature pull_request job-i
bounded 60 pre --job "$JOB" 2> "$SCRATCH/i.err" || fail "pre failed on a redirect"
if grep -q "/stolen" "$P.log"; then fail "a redirect was followed: $(cat "$P.log")"; fi
grep -q "redirects are not followed" "$SCRATCH/i.err" || fail "the redirect was not named: $(cat "$SCRATCH/i.err")"
[ ! -e "$M/work/job/target" ] || fail "restored through a redirect"

fault pass
machine z; ctx feature pull_request job-z
eph pre --job "$JOB" 2> "$SCRATCH/z.err" || fail "pre failed"
expect_result pre deps hit
untouched "the whole test"

# Last, as it empties the store: gc of everything, forged manifests included.
forge_all
bounded 60 invalidate --repository acme/widget > /dev/null || fail "invalidate failed"
fault pass
bounded 60 gc --grace 0s > "$SCRATCH/gc.out" 2> "$SCRATCH/gc.err" || true
# Refused by the manifest's own check, or where the key enters the backend.
grep -q "refusing object key 'v1/\.\./\|archive 'v1/\.\./.*is not its own object" "$SCRATCH/gc.err" ||
  fail "gc did not refuse the keys: $(cat "$SCRATCH/gc.err")"
untouched "gc of forged manifests"
echo "hostile: ok"
