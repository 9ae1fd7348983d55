# A time budget for pre (--budget, EPHEMERA_BUDGET): a restore that would run past it gives
# up, leaves nothing behind and the job goes on cold, exit 0, the report saying why. On S3 a
# fault proxy slows the store's archive downloads; on a local store the archive is large
# enough that its unpack outlasts the budget.
. "$(dirname "$0")/../lib.sh"
# The proxy slows single-archive downloads: on S3 these saves are that format.
if [ "${STORE_KIND}" = s3 ]; then export EPHEMERA_FORMAT=archive; fi

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
ctx feature pull_request job-save

# A strict reading of the budget: a malformed one is the operator's error, exit 2, naming it.
machine bad
for value in 12x 0 8d "5 m" 1e3; do
  set +e
  eph pre --job "$JOB" --budget "$value" 2> "$SCRATCH/bad.err"
  st=$?
  set -e
  [ "$st" = 2 ] || fail "--budget '$value' exited $st, not 2"
  grep -q -- "--budget '$value' is not a time budget" "$SCRATCH/bad.err" ||
    fail "the error does not name --budget '$value': $(cat "$SCRATCH/bad.err")"
done
set +e
EPHEMERA_BUDGET=soon eph pre --job "$JOB" 2> "$SCRATCH/bad.err"
st=$?
set -e
[ "$st" = 2 ] || fail "EPHEMERA_BUDGET=soon exited $st, not 2"
grep -q "EPHEMERA_BUDGET 'soon' is not a time budget" "$SCRATCH/bad.err" ||
  fail "the error does not name EPHEMERA_BUDGET: $(cat "$SCRATCH/bad.err")"

# nothing_left: the job's tree is as pristine as before pre, and no download or staging
# name is left in the state dir.
nothing_left() {
  [ -z "$(find "$M/work/job" "$M/home/build" -mindepth 1 | head -1)" ] ||
    fail "$1: the budget run left files: $(find "$M/work/job" "$M/home/build" -mindepth 1 | head)"
  [ -z "$(find "$M/state" -type f -not -name report.json | head -1)" ] ||
    fail "$1: the state dir keeps $(find "$M/state" -type f -not -name report.json)"
}

# budget_miss WHAT: the newest entry is a miss whose reason starts its budget part.
budget_miss() {
  expect_result "$1" deps miss
  report_json | /usr/bin/python3 -c '
import json, sys
e = [e for e in json.load(sys.stdin)["entries"] if e["name"] == "deps"][-1]
assert "; budget: " in e["reason"] and "ran out" in e["reason"], e["reason"]' ||
    fail "the report does not say the budget ran out"
  validate_report
}

elapsed() { /usr/bin/python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$@"; }

if [ "$STORE_KIND" = s3 ]; then
  start_fault_proxy
  machine saver
  mkdir -p "$M/work/job/target"
  head -c 3000000 /dev/urandom > "$M/work/job/target/blob"
  eph post --job "$JOB" --status 0 2> "$SCRATCH/save.err" || fail "post failed: $(cat "$SCRATCH/save.err")"
  expect_result post deps saved

  # 3 MB at 100 kB/s is 30 s: a budget of 3 s stops it within the budget and a second.
  fault slow 100000
  machine slow; ctx feature pull_request job-slow
  start=$(date +%s.%N)
  timeout 60 "$EPHEMERA" pre --job "$JOB" --budget 3s --root "$M" --workdir /work/job \
    --home /home/build --state-dir "$M/state" 2> "$SCRATCH/slow.err" ||
    fail "pre failed on a slowed store: $(cat "$SCRATCH/slow.err")"
  took=$(elapsed "$start" "$(date +%s.%N)")
  grep -q "slow" "$P.log" || fail "the proxy never slowed a download: $(cat "$P.log")"
  /usr/bin/python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 4.0 else 1)" "$took" ||
    fail "pre took $took s on a budget of 3 s"
  grep -q "time budget of 3 s (--budget 3s) ran out" "$SCRATCH/slow.err" ||
    fail "the log does not say the budget ran out: $(cat "$SCRATCH/slow.err")"
  nothing_left "s3 --budget"
  budget_miss pre
  echo "a restore from a store slowed to 100 kB/s gave up after $took s on a budget of 3 s"

  # The in-job restore reads EPHEMERA_BUDGET: a miss (exit 3), nothing left.
  machine injob; ctx feature pull_request job-injob
  set +e
  EPHEMERA_BUDGET=2s eph restore deps --job "$JOB" 2> "$SCRATCH/injob.err"
  st=$?
  set -e
  [ "$st" = 3 ] || fail "an in-job restore out of budget exited $st, not 3: $(cat "$SCRATCH/injob.err")"
  grep -q "(EPHEMERA_BUDGET 2s) ran out" "$SCRATCH/injob.err" ||
    fail "the in-job restore does not say its budget ran out: $(cat "$SCRATCH/injob.err")"
  nothing_left "in-job restore"

  # The same store at full speed restores within the same budget: the budget cost nothing.
  fault pass
  machine fast; ctx feature pull_request job-fast
  eph pre --job "$JOB" --budget 30s 2> "$SCRATCH/fast.err" || fail "pre failed: $(cat "$SCRATCH/fast.err")"
  expect_result pre deps hit
else
  # An archive whose unpack takes seconds on this machine (about 170 MB/s), a budget of 0.5 s:
  # the unpack loop stops, its staging is rolled back.
  machine saver
  mkdir -p "$M/work/job/target/many"
  for i in 1 2 3; do head -c 80000000 /dev/urandom > "$M/work/job/target/big$i"; done
  for i in $(seq 1 2000); do echo "$i" > "$M/work/job/target/many/f$i"; done
  eph post --job "$JOB" --status 0 2> "$SCRATCH/save.err" || fail "post failed: $(cat "$SCRATCH/save.err")"
  expect_result post deps saved

  machine slow; ctx feature pull_request job-slow
  start=$(date +%s.%N)
  eph pre --job "$JOB" --budget 0.5s 2> "$SCRATCH/slow.err" ||
    fail "pre failed out of budget: $(cat "$SCRATCH/slow.err")"
  took=$(elapsed "$start" "$(date +%s.%N)")
  grep -q "unpacking: out of time: the time budget of 0.5 s (--budget 0.5s) ran out" "$SCRATCH/slow.err" ||
    fail "the unpack was not what the budget stopped: $(cat "$SCRATCH/slow.err")"
  /usr/bin/python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 1.5 else 1)" "$took" ||
    fail "pre took $took s on a budget of 0.5 s"
  nothing_left "local --budget"
  budget_miss pre
  echo "an unpack of 240 MB gave up after $took s on a budget of 0.5 s"

  # EPHEMERA_BUDGET for pre, and --strict does not turn a budget miss into a failure.
  machine env; ctx feature pull_request job-env
  EPHEMERA_BUDGET=0.3s eph pre --job "$JOB" --strict 2> "$SCRATCH/env.err" ||
    fail "pre --strict failed on a budget miss: $(cat "$SCRATCH/env.err")"
  grep -q "(EPHEMERA_BUDGET 0.3s) ran out" "$SCRATCH/env.err" ||
    fail "EPHEMERA_BUDGET was not used: $(cat "$SCRATCH/env.err")"
  nothing_left "EPHEMERA_BUDGET"
  budget_miss pre

  # Within its budget the restore is whole.
  machine fast; ctx feature pull_request job-fast
  eph pre --job "$JOB" --budget 60s 2> "$SCRATCH/fast.err" || fail "pre failed: $(cat "$SCRATCH/fast.err")"
  expect_result pre deps hit
  [ "$(find "$M/work/job/target" -type f | wc -l)" = 2003 ] || fail "the restore within budget is not whole"
fi
