# key_files are patterns in the rules language, relative to the working directory:
# `**/package-lock.json` matches at any depth, the matches go into the key sorted, with their
# paths; one that matches nothing is a warning with its position in check, plan and pre;
# plan lists the files the key hashed; post computes the key again; the size is bounded.
. "$(dirname "$0")/../lib.sh"

JOB="$SCRATCH/job.toml"
cat > "$JOB" <<'TOML'
name = "build"
variety = "basic"

[[persist]]
name = "deps"
rules = ["target"]
epoch = 1
cache_key = "deps"
key_files = ["**/package-lock.json", "!vendor/**"]
TOML

populate() {
  mkdir -p "$M/work/job/target" "$M/work/job/app/web" "$M/work/job/vendor/x"
  echo "built $1" > "$M/work/job/target/out.o"
  echo '{"a": 1}' > "$M/work/job/package-lock.json"
  echo "{\"web\": $1}" > "$M/work/job/app/web/package-lock.json"
  echo '{"vendored": 1}' > "$M/work/job/vendor/x/package-lock.json"
}

plan_json() { eph plan --job "$JOB" --json; }
key_of_plan() { plan_json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["key"])'; }

# 1. A glob at any depth: plan lists every file that went into the key, sorted, excluded
# ones left out; the key follows a nested lock file.
machine one
ctx feature pull_request
populate 1
eph plan --job "$JOB" > "$SCRATCH/plan.out" 2> "$SCRATCH/plan.err"
grep -q "key from 2 files" "$SCRATCH/plan.out" || fail "plan does not count the key files: $(cat "$SCRATCH/plan.out")"
files=$(plan_json | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)[0]["key_files"]))')
[ "$files" = "app/web/package-lock.json package-lock.json" ] || fail "key files: '$files'"
[ ! -s "$SCRATCH/plan.err" ] || fail "plan warned about matching key files: $(cat "$SCRATCH/plan.err")"
k1=$(key_of_plan)
case "$k1" in deps-????????????????) ;; *) fail "key '$k1' is not deps-<16 hex>" ;; esac
echo '{"web": 2}' > "$M/work/job/app/web/package-lock.json"
k2=$(key_of_plan)
[ "$k1" != "$k2" ] || fail "a nested package-lock.json did not change the key"
echo '{"vendored": 2}' > "$M/work/job/vendor/x/package-lock.json"
[ "$(key_of_plan)" = "$k2" ] || fail "an excluded key file changed the key"

# 2. The key is computed again at post: a job that changed a lock file saves under the new key.
machine two
ctx feature pull_request
populate 1
eph pre --job "$JOB" 2> /dev/null
echo '{"web": 7}' > "$M/work/job/app/web/package-lock.json"
eph post --job "$JOB" --status 0 2> /dev/null
expect_result post deps saved
report_json | python3 -c '
import json, sys
r = json.load(sys.stdin)["entries"]
pre = [e for e in r if e["phase"] == "pre"][-1]["key_wanted"]
post = [e for e in r if e["phase"] == "post"][-1]["key_wanted"]
sys.exit(0 if pre != post else "post saved under the key pre computed: " + pre)'
# A machine with the same lock files hits that save exactly.
machine three
ctx other pull_request
populate 1
echo '{"web": 7}' > "$M/work/job/app/web/package-lock.json"
eph pre --job "$JOB" 2> /dev/null
expect_result pre deps hit
[ "$(cat "$M/work/job/target/out.o")" = "built 1" ] || fail "the save was not restored"

# 3. A typo matches nothing: a warning with file:line:col in check, plan and pre; still exit 0.
sed -i 's|key_files = .*|key_files = ["package-lock.jsn"]|' "$JOB"
line=$(grep -n '^key_files' "$JOB" | cut -d: -f1)
machine four
ctx feature pull_request
populate 1
set +e
"$EPHEMERA" check "$JOB" --root "$M" --workdir /work/job --home /home/build \
  > "$SCRATCH/check.out" 2> "$SCRATCH/check.err"; code=$?
set -e
[ "$code" = 0 ] || fail "check exited $code for a key file that matches nothing"
grep -q "^$JOB:$line:[0-9]*: warning: .*'package-lock.jsn' matches nothing in /work/job" \
  "$SCRATCH/check.err" || fail "check did not warn at the key file: $(cat "$SCRATCH/check.err")"
eph plan --job "$JOB" > /dev/null 2> "$SCRATCH/plan.err"
grep -q "$JOB:$line:.*warning: .*package-lock.jsn' matches nothing" "$SCRATCH/plan.err" \
  || fail "plan did not warn: $(cat "$SCRATCH/plan.err")"
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
grep -q "$JOB:$line:.*warning: .*package-lock.jsn' matches nothing" "$SCRATCH/pre.err" \
  || fail "pre did not warn: $(cat "$SCRATCH/pre.err")"
# Run from another directory, the right name matches nothing either, and says where it looked.
sed -i 's|key_files = .*|key_files = ["package-lock.json"]|' "$JOB"
mkdir -p "$M/work/elsewhere"
"$EPHEMERA" check "$JOB" --root "$M" --workdir /work/elsewhere 2> "$SCRATCH/check.err" > /dev/null
grep -q "matches nothing in /work/elsewhere" "$SCRATCH/check.err" \
  || fail "check from another directory did not warn: $(cat "$SCRATCH/check.err")"
"$EPHEMERA" check "$JOB" --root "$M" --workdir /work/job 2> "$SCRATCH/check.err" > /dev/null
[ ! -s "$SCRATCH/check.err" ] || fail "check warned about a key file that is there: $(cat "$SCRATCH/check.err")"

# 4. '=' and '%' mean nothing for a key file: an error at its position.
sed -i 's|key_files = .*|key_files = ["=package-lock.json"]|' "$JOB"
set +e
"$EPHEMERA" check "$JOB" 2> "$SCRATCH/check.err" > /dev/null; code=$?
set -e
[ "$code" = 2 ] || fail "check accepted '=' in key_files (exit $code)"
grep -q "$JOB:$line:.*error: .*mean nothing for a key file" "$SCRATCH/check.err" \
  || fail "no error at the key file: $(cat "$SCRATCH/check.err")"

# 5. A preset's key files are each optional: no warning while one is there, one warning
# naming the preset when none is.
cat > "$SCRATCH/preset.toml" <<'TOML'
name = "build"
variety = "basic"

[[persist]]
preset = "cargo-registry"
epoch = 1
TOML
"$EPHEMERA" check "$SCRATCH/preset.toml" --root "$M" --workdir /work/job 2> "$SCRATCH/check.err" > /dev/null
grep -q "preset 'cargo-registry'.*Cargo.lock" "$SCRATCH/check.err" \
  || fail "no warning for a preset whose key files are all absent: $(cat "$SCRATCH/check.err")"
echo lock > "$M/work/job/Cargo.lock"
"$EPHEMERA" check "$SCRATCH/preset.toml" --root "$M" --workdir /work/job 2> "$SCRATCH/check.err" > /dev/null
[ ! -s "$SCRATCH/check.err" ] || fail "a preset warned with its key file there: $(cat "$SCRATCH/check.err")"

# 6. Bounded: a pattern matching too many files is a clear error, and pre goes on cold.
sed -i 's|key_files = .*|key_files = ["many/*"]|' "$JOB"
mkdir -p "$M/work/job/many"
(cd "$M/work/job/many" && seq 1 10001 | xargs touch)
eph plan --job "$JOB" > "$SCRATCH/plan.out" 2> /dev/null
grep -q "more than the 10000 a key may hash" "$SCRATCH/plan.out" \
  || fail "plan did not say the key files are too many: $(cat "$SCRATCH/plan.out")"
set +e
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"; code=$?
set -e
[ "$code" = 0 ] || fail "pre failed the job over too many key files (exit $code)"
grep -q "more than the 10000" "$SCRATCH/pre.err" || fail "pre did not say why: $(cat "$SCRATCH/pre.err")"

echo "key files: ok"
