# A miss says why: what the store holds of the stanza and why each save was passed over
# (invalidated, an older epoch, untrusted, ...), in the log and the report; -v names each
# save. `ephemera lookup` asks the same of the store without downloading.
. "$(dirname "$0")/../lib.sh"

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
save() { # machine [epoch]
  machine "$1"; ctx feature pull_request "job-$1"
  mkdir -p "$M/work/job/target"; echo "$1" > "$M/work/job/target/out"
  eph post --job "$JOB" --status 0 2> /dev/null
  expect_result post deps saved
}
reason_of_pre() {
  report_json | python3 -c 'import json,sys; print([e for e in json.load(sys.stdin)["entries"] if e["phase"] == "pre"][-1]["reason"])'
}

# 1. Nothing saved yet: the miss says so, in one or two lines.
machine cold; ctx feature pull_request
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
expect_result pre deps miss
grep -q "searched acme/widget/-/deps/e1: the store holds no save of this stanza" "$SCRATCH/pre.err" \
  || fail "a cold miss does not say the store holds nothing: $(cat "$SCRATCH/pre.err")"
[ "$(grep -c "restore 'deps'" "$SCRATCH/pre.err")" -le 2 ] || fail "the default miss is over two lines"
set +e
eph lookup --job "$JOB" > "$SCRATCH/lookup.out"; code=$?
set -e
[ "$code" = 3 ] || fail "lookup of a miss exited $code, not 3"
grep -q "^deps: miss (key 'deps'): searched" "$SCRATCH/lookup.out" || fail "lookup miss: $(cat "$SCRATCH/lookup.out")"

# 2. A save: lookup names it by id without downloading; exit 0.
save s1
machine look; ctx feature pull_request
eph lookup --job "$JOB" --json > "$SCRATCH/lookup.json"
python3 - "$SCRATCH/lookup.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert len(j) == 1 and j[0]["result"] == "hit" and j[0]["step"] == "exact", j
assert len(j[0]["id"]) == 10 and j[0]["job_id"] == "job-s1" and j[0]["compressed_bytes"] > 0, j
PY
[ -z "$(ls -A "$M/work/job")" ] || fail "lookup wrote into the working directory"
[ ! -e "$M/state/report.json" ] || fail "lookup wrote a report"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["id"])' "$SCRATCH/lookup.json")
eph lookup --job "$JOB" | grep -q "^deps: hit $id key 'deps' (exact, own branch 'feature')" || fail "lookup hit text"
"$EPHEMERA" ls | grep -q "^$id " || fail "lookup's id is not ls's"

# 3. After invalidate: pre says the save was invalidated, with the marker's reason.
"$EPHEMERA" invalidate --repository acme/widget --name deps --reason "poisoned toolchain" > /dev/null
machine after; ctx feature pull_request
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
expect_result pre deps miss
grep -q "passed over 1 invalidated (invalidated at .*: poisoned toolchain)" "$SCRATCH/pre.err" \
  || fail "the miss does not say the save was invalidated: $(cat "$SCRATCH/pre.err")"
reason_of_pre | grep -q "miss: searched acme/widget/-/deps/e1: passed over 1 invalidated" \
  || fail "the report does not say why: $(reason_of_pre)"
validate_report
# -v: each save passed over, by id, key, time and job.
machine verbose; ctx feature pull_request
eph pre -v --job "$JOB" 2> "$SCRATCH/pre.err"
grep -q "passed over $id acme/widget/-/deps/e1 key 'deps' created .* by job 'job-s1': invalidated at" \
  "$SCRATCH/pre.err" || fail "-v does not name the save passed over: $(cat "$SCRATCH/pre.err")"
set +e
eph lookup --job "$JOB" > "$SCRATCH/lookup.out"; code=$?
set -e
[ "$code" = 3 ] || fail "lookup after invalidate exited $code"
grep -q "1 invalidated" "$SCRATCH/lookup.out" || fail "lookup after invalidate: $(cat "$SCRATCH/lookup.out")"

# 4. A bumped epoch: the older epoch's save is named as lying elsewhere.
sed -i 's/^epoch = 1$/epoch = 2/' "$JOB"
save s2
sed -i 's/^epoch = 2$/epoch = 3/' "$JOB"
machine epoch; ctx feature pull_request
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
grep -q "searched acme/widget/-/deps/e3: no save there; elsewhere: 2 of an older epoch" "$SCRATCH/pre.err" \
  || fail "the miss does not name the older epochs: $(cat "$SCRATCH/pre.err")"

# 5. An untrusted job's save is passed over by a trusted job, and says so.
sed -i 's/^epoch = 3$/epoch = 2/' "$JOB"
machine fork; ctx feature pull_request job-fork
export EPHEMERA_UNTRUSTED=1 EPHEMERA_ORIGIN=evil/fork
mkdir -p "$M/work/job/target"; echo fork > "$M/work/job/target/out"
eph post --job "$JOB" --status 0 2> /dev/null
unset EPHEMERA_UNTRUSTED EPHEMERA_ORIGIN
"$EPHEMERA" invalidate --repository acme/widget --name deps --reason again > /dev/null
machine fork2; ctx feature pull_request job-fork
export EPHEMERA_UNTRUSTED=1 EPHEMERA_ORIGIN=evil/fork
mkdir -p "$M/work/job/target"; echo fork > "$M/work/job/target/out"
eph post --job "$JOB" --status 0 2> /dev/null
unset EPHEMERA_UNTRUSTED EPHEMERA_ORIGIN
machine trusted; ctx feature pull_request
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
expect_result pre deps miss
grep -q "passed over 1 untrusted (untrusted (origin .evil/fork.), and this job is trusted), 2 invalidated" "$SCRATCH/pre.err" \
  || fail "the miss does not say the save was untrusted: $(cat "$SCRATCH/pre.err")"

# 6. lookup against a store that cannot be opened: exit 1, saying which.
touch "$SCRATCH/file"
set +e
EPHEMERA_STORE="$SCRATCH/file/store" eph lookup --job "$JOB" > /dev/null 2> "$SCRATCH/lookup.err"; code=$?
set -e
[ "$code" = 1 ] || fail "lookup of an unusable store exited $code, not 1"
grep -q "unable to look up in $SCRATCH/file/store" "$SCRATCH/lookup.err" || fail "lookup error: $(cat "$SCRATCH/lookup.err")"

echo "misses: ok"
