# A store that fails, stalls, lies or answers garbage never fails the job, never restores
# an unverified byte, and is retried only where retrying can help. A fault-injecting proxy
# (tests/store/fault-proxy.py) sits in front of the real S3 server.
. "$(dirname "$0")/../lib.sh"
# These saves are single archives (EPHEMERA_FORMAT=archive), whose one object this script
# fetches, stalls and forges; stores keep holding and restoring them.
export EPHEMERA_FORMAT=archive
[ "${STORE_KIND}" = s3 ] || fail "this test needs STORE_KIND=s3"

start_fault_proxy
export EPHEMERA_S3_STALL_SECONDS=2 EPHEMERA_S3_CONNECT_SECONDS=2

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
populate() {
  mkdir -p "$M/work/job/target"
  head -c 300000 /dev/urandom > "$M/work/job/target/blob"
  echo "$1" > "$M/work/job/target/small"
}

# 503 twice, with Retry-After: retried, and the save lands.
machine a; populate one; ctx feature pull_request job-a
fault fail 2 503 1
eph post --job "$JOB" --status 0 2> "$SCRATCH/a.err" || fail "post failed on a flapping store"
expect_result post deps saved
[ "$(grep -c -- '-> 503' "$P.log")" = 2 ] || fail "the two 503s were not both answered: $(cat "$P.log")"

# 403 on everything: a clear warning, exit 0, and no request repeated.
machine b; populate two; ctx feature pull_request job-b
fault always 403
eph post --job "$JOB" --status 0 2> "$SCRATCH/b.err" || fail "post must not fail the job on a 403"
grep -q "403" "$SCRATCH/b.err" || fail "the warning does not say 403: $(cat "$SCRATCH/b.err")"
expect_result post deps failed
if sort "$P.log" | uniq -d | grep -q .; then fail "a 403 was retried: $(cat "$P.log")"; fi
if grep -q "$AWS_SECRET_ACCESS_KEY" "$SCRATCH/b.err"; then fail "the secret key is in a message"; fi

# A body that stalls: the stall timeout fires, the job goes on cold, nothing is written.
machine c; ctx feature pull_request job-c
fault stall
start=$(date +%s)
timeout 120 "$EPHEMERA" pre --job "$JOB" --root "$M" --workdir /work/job --home /home/build \
  --state-dir "$M/state" 2> "$SCRATCH/c.err" || fail "pre failed or hung on a stalled store"
grep -q "stalled" "$P.log" || fail "the proxy never stalled a download"
grep -qi "timed out" "$SCRATCH/c.err" || fail "the warning does not say it timed out: $(cat "$SCRATCH/c.err")"
[ ! -e "$M/work/job/target/blob" ] || fail "a stalled download restored files"
expect_result pre deps failed
echo "stalled restore gave up after $(( $(date +%s) - start )) s"

# A lying store (right length, other bytes): the digest check refuses it before any write.
machine d; ctx feature pull_request job-d
fault lie
eph pre --job "$JOB" 2> "$SCRATCH/d.err" || fail "pre failed on a lying store"
grep -qi "digest\|sha-256\|sha256" "$SCRATCH/d.err" || fail "no digest mismatch reported: $(cat "$SCRATCH/d.err")"
[ ! -e "$M/work/job/target" ] || fail "bytes from a lying store were written"

# A store that lost an archive's tail (a shorter object, said so by Content-Length), and
# one whose body ends before its Content-Length: refused by size, nothing written.
machine d2; ctx feature pull_request job-d2
fault short
eph pre --job "$JOB" 2> "$SCRATCH/d2.err" || fail "pre failed on a short object"
grep -q "the manifest says\|the server says it is [0-9]* bytes, expected" "$SCRATCH/d2.err" ||
  fail "the short archive was not named: $(cat "$SCRATCH/d2.err")"
[ ! -e "$M/work/job/target" ] || fail "bytes of a short archive were written"
machine d3; ctx feature pull_request job-d3
fault cutoff
eph pre --job "$JOB" 2> "$SCRATCH/d3.err" || fail "pre failed on a cut-off body"
expect_result pre deps failed
grep -q "cut off" "$P.log" || fail "the proxy never cut a body off"
[ ! -e "$M/work/job/target" ] || fail "bytes of a cut-off download were written"
[ -z "$(ls -A "$M/state/tmp" 2>/dev/null)" ] || fail "a cut-off download left a temporary: $(ls -A "$M/state/tmp")"

# A listing that is not XML: a clear error, exit 0.
machine e; ctx feature pull_request job-e
fault badxml
eph pre --job "$JOB" 2> "$SCRATCH/e.err" || fail "pre failed on broken XML"
grep -qi "xml" "$SCRATCH/e.err" || fail "the warning does not name the XML: $(cat "$SCRATCH/e.err")"

# 500 on the first request: retried, and the restore is whole.
machine f; ctx feature pull_request job-f
fault fail 1 500
eph pre --job "$JOB" 2> "$SCRATCH/f.err" || fail "pre failed"
expect_result pre deps hit
cmp "$M/work/job/target/blob" "$SCRATCH/a/work/job/target/blob" || fail "the restore after a retry differs"
[ "$(grep -c -- '-> 500' "$P.log")" = 1 ] || fail "the 500 was not answered once: $(cat "$P.log")"

# An archive over 8 MiB comes down in parallel ranged GETs. A range in the middle answered
# 503 is fetched again on its own (the bytes before it are kept), and the restore is whole.
BIG="$SCRATCH/big.toml"
sed -e 's/"deps"/"big"/' -e 's/"target"/"big"/' "$JOB" > "$BIG"
machine h; ctx feature pull_request job-h
mkdir -p "$M/work/job/big"
head -c 30000000 /dev/urandom > "$M/work/job/big/blob"
fault pass
eph post --job "$BIG" --status 0 2> "$SCRATCH/h.err" || fail "post of the big archive failed"
expect_result post big saved
machine i; ctx feature pull_request job-i
fault failrange 1 503
eph pre --job "$BIG" 2> "$SCRATCH/i.err" || fail "pre failed on a flapping range"
expect_result pre big hit
cmp "$M/work/job/big/blob" "$SCRATCH/h/work/job/big/blob" || fail "the restore after a retried range differs"
[ "$(grep -c 'tar.zst range=bytes=.* -> 206' "$P.log")" -ge 4 ] || fail "not fetched in ranges: $(cat "$P.log")"
grep -q 'tar.zst range=bytes=[1-9].* -> 503' "$P.log" || fail "no range in the middle was failed: $(cat "$P.log")"

# A server that ignores Range and sends the whole object: one plain GET instead, whole.
machine j; ctx feature pull_request job-j
fault ignorerange
eph pre --job "$BIG" 2> "$SCRATCH/j.err" || fail "pre failed on a server without ranges"
expect_result pre big hit
cmp "$M/work/job/big/blob" "$SCRATCH/h/work/job/big/blob" || fail "the restore without ranges differs"
grep -q 'tar.zst -> 200' "$P.log" || fail "no plain GET after the ignored ranges: $(cat "$P.log")"

# Nothing listens at all: exit 0, cold, and --strict makes it exit 1.
stop_fault_proxy
machine g; ctx feature pull_request job-g
eph pre --job "$JOB" 2> "$SCRATCH/g.err" || fail "pre failed with the store down"
set +e; eph pre --job "$JOB" --strict 2>/dev/null; code=$?; set -e
[ "$code" = 1 ] || fail "--strict with the store down: exit $code, wanted 1"
echo "faults: ok"
