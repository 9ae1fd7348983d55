# ephemera persist and ephemera restore inside a job, and the exit codes a job script tests.
. "$(dirname "$0")/../lib.sh"

machine one
ctx feature pull_request
mkdir -p "$M/home/build/.tools/bin"; echo t > "$M/home/build/.tools/bin/t"

# --epoch is required, and says why; a bad rule or name is exit 2.
set +e
eph persist tools '~/.tools' 2> "$SCRATCH/err"; code=$?
set -e
[ "$code" = 2 ] || fail "persist without --epoch exited $code"
grep -q 'epoch' "$SCRATCH/err" || fail "no word about the epoch"
set +e
eph persist Tools '~/.tools' --epoch 1; code=$?
set -e
[ "$code" = 2 ] || fail "a bad name exited $code"
# A set is refused on the command line exactly when the same stanza in a job file is, in
# the job file's words, each problem naming its argument.
printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "tools"\nrules = ["!x"]\nepoch = 1\ncache_key = "a/b c"\n' \
  > "$SCRATCH/bad.toml"
set +e
"$EPHEMERA" check "$SCRATCH/bad.toml" 2> "$SCRATCH/toml-err"; toml_code=$?
eph persist tools '!x' --epoch 1 --key 'a/b c' 2> "$SCRATCH/err"; code=$?
eph restore tools --rule '!x' --epoch 1 --key 'a/b c' 2> "$SCRATCH/restore-err"; restore_code=$?
set -e
[ "$toml_code" = 2 ] || fail "check of the stanza exited $toml_code"
[ "$code" = 2 ] || fail "persist of a stanza the job file refuses exited $code"
[ "$restore_code" = 2 ] || fail "restore --rule of a stanza the job file refuses exited $restore_code"
for why in "has only '!' rules: nothing would be persisted" "'a/b c' may hold only A-Z a-z 0-9 . _ -"; do
  grep -qF "$why" "$SCRATCH/toml-err" || fail "check did not say: $why"
  grep -qF "$why" "$SCRATCH/err" || fail "persist did not say: $why ($(cat "$SCRATCH/err"))"
done
grep -qF "persist 'tools': --key 'a/b c'" "$SCRATCH/err" || fail "persist did not name --key"
grep -qF "restore 'tools': --rule has only '!' rules" "$SCRATCH/restore-err" ||
  fail "restore did not name --rule: $(cat "$SCRATCH/restore-err")"
[ ! -e "$M/state/nominated" ] || fail "a refused set was nominated"

eph persist tools '~/.tools' --epoch 1 --key t1
eph post --status 0
expect_result persist tools saved

# Restore in another job: exit 0 and the files are there.
machine two
ctx other pull_request
eph restore tools --rule '~/.tools' --epoch 1 --key t1
[ -f "$M/home/build/.tools/bin/t" ] || fail "restore did not unfurl"

# A miss is exit 3, so a job can `if ephemera restore ...; then`.
set +e
eph restore tools --rule '~/.tools' --epoch 1 --key other; code=$?
set -e
[ "$code" = 3 ] || fail "a miss exited $code"
# status says what the newest restore of the set did: here the miss.
set +e
eph status tools > /dev/null; code=$?
set -e
[ "$code" = 3 ] || fail "status after a miss exited $code"

# By stanza name from the job file.
JOB="$SCRATCH/job.toml"
printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "tools"\nrules = ["~/.tools"]\nepoch = 1\ncache_key = "t1"\n' > "$JOB"
machine three
ctx third pull_request
eph restore tools --job "$JOB"
[ -f "$M/home/build/.tools/bin/t" ] || fail "restore by stanza name did not unfurl"
eph status tools > /dev/null || fail "status after a hit did not exit 0"
eph status tools --json > "$SCRATCH/status.json"
/usr/bin/python3 - "$SCRATCH/status.json" <<'PY' || fail "status --json: $(cat "$SCRATCH/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s == {"name": "tools", "result": "hit", "step": "exact", "key_wanted": "t1",
             "key_found": "t1"}, s
PY
set +e
eph status nope > /dev/null 2>&1; code=$?
set -e
[ "$code" = 2 ] || fail "status of a set the job never named exited $code"
set +e
eph restore nope --job "$JOB" 2> "$SCRATCH/err"; code=$?
set -e
[ "$code" = 2 ] || fail "an unknown stanza exited $code"

# A job with a target: post saves a nomination under the job's target, and an in-job
# restore of the same set by its rules finds it there when the job file is known
# (EPHEMERA_JOB, as the agent exports it).
TJOB="$SCRATCH/targeted.toml"
printf 'name = "t"\nvariety = "basic"\ntarget = "helios-2.0"\n' > "$TJOB"
machine four
ctx fourth pull_request
mkdir -p "$M/home/build/.toolchain"; echo cc > "$M/home/build/.toolchain/cc"
eph persist toolchain '~/.toolchain' --epoch 1 --key tc1
eph post --job "$TJOB" --status 0
expect_result persist toolchain saved
machine five
ctx fifth pull_request
set +e
EPHEMERA_JOB="$TJOB" eph restore toolchain --rule '~/.toolchain' --epoch 1 --key tc1; code=$?
set -e
[ "$code" = 0 ] || fail "restore of a nomination of a targeted job exited $code"
[ -f "$M/home/build/.toolchain/cc" ] || fail "restore of a targeted nomination did not unfurl"

# restore = false keeps a stanza out of pre, but the job can restore it on demand.
OJOB="$SCRATCH/on_demand.toml"
printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "tools"\nrules = ["~/.tools"]\nepoch = 1\ncache_key = "t1"\nrestore = false\n' > "$OJOB"
machine six
ctx sixth pull_request
eph pre --job "$OJOB"
expect_result pre tools skipped
[ ! -e "$M/home/build/.tools/bin/t" ] || fail "pre restored a stanza with restore = false"
set +e
eph restore tools --job "$OJOB"; code=$?
set -e
[ "$code" = 0 ] || fail "an on-demand restore of a restore = false stanza exited $code"
[ -f "$M/home/build/.tools/bin/t" ] || fail "an on-demand restore did not unfurl"
expect_result restore tools hit
# The rest of the policy still holds: a push to a protected branch does not restore it.
machine seven
ctx main push
set +e
eph restore tools --job "$OJOB"; code=$?
set -e
[ "$code" = 3 ] || fail "an on-demand restore on a protected push exited $code"
[ ! -e "$M/home/build/.tools/bin/t" ] || fail "an on-demand restore ran on a protected push"
set +e
eph status tools > /dev/null; code=$?
set -e
[ "$code" = 3 ] || fail "status of a set not restored exited $code"

validate_report
# --version prints what `ephemera version` prints, exit 0.
[ "$("$EPHEMERA" --version)" = "$("$EPHEMERA" version)" ] || fail "--version differs from version"
"$EPHEMERA" --version | grep -q '^ephemera [0-9]' || fail "--version printed no version"

# A report where none was written says where it looked.
machine empty
eph report 2> "$SCRATCH/err" > /dev/null
grep -qF "$M/state/report.json" "$SCRATCH/err" || fail "an empty report does not say where it looked"
set +e
eph status tools 2> "$SCRATCH/err"; code=$?
set -e
[ "$code" = 2 ] || fail "status with no report exited $code"
grep -qF "$M/state/report.json" "$SCRATCH/err" || fail "status with no report does not say where it looked"

echo "in-job: ok"
