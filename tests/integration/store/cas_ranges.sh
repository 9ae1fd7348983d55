# A content-addressed restore from S3 reads its packs as several ranged GETs at once. One of
# them failing, coming back short, cut off, with other bytes or another range refuses the
# whole restore: the job goes on cold and nothing of the state is written. One that is never
# answered while another fails does not hold the restore: the held transfer is stopped with
# it. One that fails once with a 503 is retried and the restore completes. A fault-injecting
# proxy (tests/store/fault-proxy.py) sits in front of the real S3 server.
. "$(dirname "$0")/../lib.sh"
[ "${STORE_KIND}" = s3 ] || fail "this test needs STORE_KIND=s3"

start_fault_proxy
export EPHEMERA_S3_STALL_SECONDS=5 EPHEMERA_S3_CONNECT_SECONDS=2

JOB="$SCRATCH/job.toml"
deps_job "$JOB"

# Incompressible content of about 20 MB: one pack, read as several runs of frames.
machine a
mkdir -p "$M/work/job/target/sub"
for i in 1 2 3 4 5; do head -c 4000000 /dev/urandom > "$M/work/job/target/sub/blob$i"; done
echo small > "$M/work/job/target/small"
listing "$M/work/job" > "$SCRATCH/saved.list"
ctx feature pull_request job-a
eph post --job "$JOB" --status 0 2> "$SCRATCH/a.err" || fail "post failed: $(cat "$SCRATCH/a.err")"
expect_result post deps saved

# restore_refused NAME MODE...: with `fault MODE...`, pre warns, exits 0 and writes nothing.
restore_refused() {
  local name=$1
  shift
  machine "$name"; ctx feature pull_request "job-$name"
  fault "$@"
  timeout 120 "$EPHEMERA" pre --job "$JOB" --root "$M" --workdir /work/job --home /home/build \
    --state-dir "$M/state" 2> "$SCRATCH/$name.err" || fail "pre failed or hung with $*"
  grep -q "packrange" "$P.log" || fail "no pack range was faulted with $*: $(cat "$P.log")"
  [ "$(grep -c '\.pack range=' "$P.log")" -ge 3 ] ||
    fail "the pack was not read as several ranges: $(cat "$P.log")"
  [ ! -e "$M/work/job/target" ] || fail "a refused restore wrote files ($*): $(find "$M/work/job")"
  if find "$M" -name '*ephemera*' -path '*work*' | grep -q .; then
    fail "a refused restore left staging behind ($*)"
  fi
  expect_result pre deps failed
}

restore_refused short packrange 2 short
grep -q "expected" "$SCRATCH/short.err" || fail "a short range is not named: $(cat "$SCRATCH/short.err")"
restore_refused cutoff packrange 2 cutoff
restore_refused lie packrange 3 lie
grep -qi "pack" "$SCRATCH/lie.err" || fail "other bytes are not named: $(cat "$SCRATCH/lie.err")"
restore_refused wrong packrange 2 wrongrange
grep -q "asked for bytes" "$SCRATCH/wrong.err" ||
  fail "another range is not named: $(cat "$SCRATCH/wrong.err")"
restore_refused denied packrange 3 403
grep -q "403" "$SCRATCH/denied.err" || fail "the 403 is not named: $(cat "$SCRATCH/denied.err")"

# A 503 on one range is retried: the restore completes, every byte as saved.
machine retried; ctx feature pull_request job-retried
fault packrange 2 503
eph pre --job "$JOB" 2> "$SCRATCH/retried.err" || fail "pre failed: $(cat "$SCRATCH/retried.err")"
grep -q -- "-> 503" "$P.log" || fail "no range was answered 503: $(cat "$P.log")"
expect_result pre deps hit
listing "$M/work/job" > "$SCRATCH/retried.list"
diff "$SCRATCH/saved.list" "$SCRATCH/retried.list" || fail "the retried restore differs"

# The first range never answered while the third is refused: the restore gives up at once,
# the held transfer stopped with it (the stall timeout is far off), nothing written.
export EPHEMERA_S3_STALL_SECONDS=60
machine held; ctx feature pull_request job-held
fault packstall 1 3 403
start=$(date +%s)
timeout 120 "$EPHEMERA" pre --job "$JOB" --root "$M" --workdir /work/job --home /home/build \
  --state-dir "$M/state" 2> "$SCRATCH/held.err" || fail "pre failed or hung with a held range"
took=$(( $(date +%s) - start ))
grep -q "packstall held" "$P.log" || fail "no range was held: $(cat "$P.log")"
grep -q -- "-> 403" "$P.log" || fail "the third range was not refused: $(cat "$P.log")"
[ "$took" -lt 20 ] || fail "the restore waited $took s for a range it no longer needed"
[ ! -e "$M/work/job/target" ] || fail "a refused restore wrote files: $(find "$M/work/job")"
expect_result pre deps failed
