# A fork's pull request chooses its branch name, not its origin: its untrusted save, even
# from a branch it named 'main', never reaches a trusted job, and reaches only untrusted jobs
# of the same origin (EPHEMERA_ORIGIN, given by the agent). An untrusted job with no origin
# saves nothing; EPHEMERA_UNTRUSTED takes documented values only.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../raw_store.sh"

JOB="$SCRATCH/job.toml"
deps_job "$JOB" 'restore_on_protected = true'
use_store fork

# on MACHINE BRANCH EVENT [UNTRUSTED ORIGIN]: a fresh machine with that context (stderr of
# its calls in $SCRATCH/MACHINE.err).
on() {
  machine "$1"
  ctx "$2" "$3" "job-$1"
  unset EPHEMERA_UNTRUSTED EPHEMERA_ORIGIN
  [ -z "${4:-}" ] || export EPHEMERA_UNTRUSTED="$4"
  [ -z "${5:-}" ] || export EPHEMERA_ORIGIN="$5"
}
holds() { [ -e "$M/work/job/target/$1" ]; }
save() {
  mkdir -p "$M/work/job/target"
  echo "$1" > "$M/work/job/target/$1"
  eph post --job "$JOB" --status 0 2>> "$SCRATCH/$(basename "$M").err"
}
pre() { eph pre --job "$JOB" 2>> "$SCRATCH/$(basename "$M").err" >/dev/null; }

on trusted feature pull_request
save trusted.o
expect_result post deps saved
sleep 1 # the fork's save is the newer one by the store's clock too

on fork main pull_request 1 fork/evil
save poison.o
expect_result post deps saved
report_json | grep -q '"origin": "fork/evil"' || fail "the report does not record the origin"

# The trusted build of main takes the trusted save, not the fork's own-branch one.
on main main push
pre
expect_result pre deps hit
holds trusted.o || fail "the trusted main build did not restore the trusted save"
! holds poison.o || fail "a fork's pull request from 'main' poisoned the trusted main build"

# So does any trusted pull request, and an untrusted job of another origin.
on other main pull_request
pre
holds trusted.o && ! holds poison.o || fail "a trusted pull request restored the fork's save"
on other-fork main pull_request yes fork/other
pre
holds trusted.o && ! holds poison.o || fail "another origin restored the fork's save"

# The fork's own next job, on any branch, does restore it.
on fork-again topic pull_request true fork/evil
pre
holds poison.o || fail "the fork's own save was not restored into its next job"

# An untrusted job with no origin saves nothing, and says why.
on anonymous feature pull_request 1
save anon.o
expect_result post deps skipped
grep -q "untrusted job with no origin" "$SCRATCH/anonymous.err" || fail "no reason for the skipped save"

# A push to refs/heads/main is a push to main: protected, never saved.
on ref refs/heads/main push
save ref.o
expect_result post deps skipped
grep -q "protected branch 'main'" "$SCRATCH/ref.err" || fail "refs/heads/main was not protected"

# EPHEMERA_UNTRUSTED takes documented values; anything else is a usage error, not trust.
on typo main pull_request -1
set +e
eph pre --job "$JOB" 2> "$SCRATCH/typo.err" >/dev/null
status=$?
set -e
[ "$status" = 2 ] || fail "EPHEMERA_UNTRUSTED=-1 exited $status, not 2"
grep -q "EPHEMERA_UNTRUSTED='-1'" "$SCRATCH/typo.err" || fail "the bad EPHEMERA_UNTRUSTED is not named"
! holds trusted.o || fail "a job with a bad EPHEMERA_UNTRUSTED restored"
unset EPHEMERA_UNTRUSTED EPHEMERA_ORIGIN
echo "fork: ok"
