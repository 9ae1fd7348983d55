# Restores over an existing tree (an in-job restore, or files already there): the job's own
# files whose names merely look temporary survive, and names up to the file system's limit
# are restored into directories that exist.
. "$(dirname "$0")/../lib.sh"

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
long=$(printf 'n%.0s' $(seq 1 250))
lookalike=x.tmp.123.0123456789abcdef

machine source
ctx feature pull_request
mkdir -p "$M/work/job/target/d"
echo saved > "$M/work/job/target/$lookalike"
echo long > "$M/work/job/target/d/$long"
eph post --job "$JOB" --status 0 >/dev/null 2>&1
expect_result post deps saved

machine existing
mkdir -p "$M/work/job/target/d"
echo "the job's" > "$M/work/job/target/$lookalike"
echo "the job's too" > "$M/work/job/target/y.tmp.456.0123456789abcdef"
shaped=.ephemera-0123456789abcdef-00000000 # the shape of the tool's own temporary names
echo "the job's three" > "$M/work/job/target/$shaped"
echo old > "$M/work/job/target/d/$long"
eph restore deps --job "$JOB" 2> "$SCRATCH/err" || fail "restore failed: $(cat "$SCRATCH/err")"
expect_result restore deps hit
[ "$(cat "$M/work/job/target/$lookalike")" = saved ] || fail "the restored $lookalike is gone or wrong"
[ "$(cat "$M/work/job/target/y.tmp.456.0123456789abcdef")" = "the job's too" ] \
  || fail "a file of the job's that looks temporary was removed"
[ "$(cat "$M/work/job/target/d/$long")" = long ] || fail "the 250-byte name was not restored"
[ "$(cat "$M/work/job/target/$shaped")" = "the job's three" ] \
  || fail "a file of the job's with a temporary name's shape was removed"
find "$M/work/job" -name '.ephemera-*' ! -name "$shaped" | grep -q . && fail "staging names left behind"
find "$M/state/staging" -type f | grep -q . && fail "the journal outlived the restore"

# And pre over the same tree: the look-alike survives again.
eph pre --job "$JOB" 2>/dev/null || fail "pre failed"
expect_result pre deps hit
[ "$(cat "$M/work/job/target/$lookalike")" = saved ] || fail "pre removed $lookalike"
[ -f "$M/work/job/target/y.tmp.456.0123456789abcdef" ] || fail "pre removed the job's look-alike"
[ -f "$M/work/job/target/$shaped" ] || fail "pre removed the job's file of the temporary shape"
echo "existing trees: ok"
