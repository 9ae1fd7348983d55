# A store that cannot be reached never fails the job: warnings, a report that says why,
# exit 0; --strict makes it exit 1. A broken job file is the author's error: exit 2.
. "$(dirname "$0")/../lib.sh"

JOB="$SCRATCH/job.toml"
printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "d"\nrules = ["out/**/*"]\nepoch = 1\n' > "$JOB"
case "${STORE_KIND:-local}" in
  local) export EPHEMERA_STORE="$SCRATCH/not-a-dir/store"; : > "$SCRATCH/not-a-dir" ;;
  s3) export EPHEMERA_S3_ENDPOINT="http://127.0.0.1:9" ;;
esac

machine one
ctx feature pull_request
mkdir -p "$M/work/job/out"; echo x > "$M/work/job/out/x"
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
grep -q 'warning' "$SCRATCH/pre.err" || fail "no warning for a dead store"
expect_result pre d failed
eph post --job "$JOB" --status 0 2> "$SCRATCH/post.err"
expect_result post d failed
report_json | grep -q '"error": ".\+"' || fail "the report does not say why"

set +e
eph pre --job "$JOB" --strict 2>/dev/null; code=$?
set -e
[ "$code" = 1 ] || fail "--strict with a dead store exited $code"

printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "d"\nrules = ["out/**/*"]\n' > "$JOB"
set +e
eph pre --job "$JOB" 2> "$SCRATCH/bad.err"; code=$?
set -e
[ "$code" = 2 ] || fail "a job file without epoch exited $code"
grep -q 'job.toml:[0-9]*:[0-9]*: error' "$SCRATCH/bad.err" || fail "no position: $(cat "$SCRATCH/bad.err")"

# A malformed S3 limit in the agent's environment is a usage error, named, not a deadline
# of one second (what "10s" once became) nor of ten.
if [ "${STORE_KIND:-local}" = s3 ]; then
  printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "d"\nrules = ["out/**/*"]\nepoch = 1\n' > "$JOB"
  set +e
  EPHEMERA_S3_DEADLINE=10s eph pre --job "$JOB" 2> "$SCRATCH/limit.err"; code=$?
  set -e
  [ "$code" = 2 ] || fail "a malformed EPHEMERA_S3_DEADLINE exited $code"
  grep -q "EPHEMERA_S3_DEADLINE='10s' is not a whole number of seconds" "$SCRATCH/limit.err" ||
    fail "the variable is not named: $(cat "$SCRATCH/limit.err")"
fi

validate_report
echo "store down: ok"
