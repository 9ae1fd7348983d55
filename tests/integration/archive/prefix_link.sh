# post walks a rule's literal prefix one component at a time and never through a symlink:
# with target -> /elsewhere and the rule 'target/debug', /elsewhere/debug is not saved.
. "$(dirname "$0")/../lib.sh"

JOB="$SCRATCH/job.toml"
printf 'name = "build"\nvariety = "basic"\n[[persist]]\nname = "deps"\nrules = ["target/debug"]\n' > "$JOB"
printf 'epoch = 1\ncache_key = "deps"\n' >> "$JOB"

machine linked
ctx feature pull_request
mkdir -p "$M/elsewhere/debug"
echo "not the job's" > "$M/elsewhere/debug/secret"
ln -s "$M/elsewhere" "$M/work/job/target"
eph post --job "$JOB" --status 0 2> "$SCRATCH/err" || fail "post failed"
grep -q 'target is a symlink' "$SCRATCH/err" || fail "no warning naming the symlink: $(cat "$SCRATCH/err")"

machine fresh
eph pre --job "$JOB" 2>/dev/null || fail "pre failed"
[ ! -e "$M/work/job/target/debug/secret" ] || fail "a file behind the symlinked prefix was saved and restored"
echo "prefix link: ok"
