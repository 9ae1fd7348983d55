# ephemera persist and ephemera restore inside a job, and the exit codes a job script tests.
. "$(dirname "$0")/lib.sh"

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

# By stanza name from the job file.
JOB="$SCRATCH/job.toml"
printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "tools"\nrules = ["~/.tools"]\nepoch = 1\ncache_key = "t1"\n' > "$JOB"
machine three
ctx third pull_request
eph restore tools --job "$JOB"
[ -f "$M/home/build/.tools/bin/t" ] || fail "restore by stanza name did not unfurl"
set +e
eph restore nope --job "$JOB" 2> "$SCRATCH/err"; code=$?
set -e
[ "$code" = 2 ] || fail "an unknown stanza exited $code"

validate_report
echo "in-job: ok"
