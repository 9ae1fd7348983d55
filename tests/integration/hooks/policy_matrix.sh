# The policy table of README "Policy" end to end: who restores, who saves, and why.
. "$(dirname "$0")/../lib.sh"

JOB="$SCRATCH/job.toml"
cat > "$JOB" <<'TOML'
name = "build"
variety = "basic"

[[persist]]
name = "deps"
rules = ["target/**/*"]
epoch = 1
cache_key = "deps"

[[persist]]
name = "tools"
rules = ["~/.tools"]
epoch = 1
restore_on_protected = true
TOML

populate() {
  mkdir -p "$M/work/job/target/debug" "$M/home/build/.tools/bin"
  echo "object $1" > "$M/work/job/target/debug/a.o"
  echo "tool $1" > "$M/home/build/.tools/bin/t"
}

# A failed or cancelled pull request never saves.
machine failed; populate failed
ctx feature pull_request
eph pre --job "$JOB"
expect_result pre deps miss
eph post --job "$JOB" --status 1
expect_result post deps skipped
eph post --job "$JOB" --status 130
expect_result post deps skipped
report_json | grep -q 'was cancelled' || fail "the reason does not say the job was cancelled"

# A push to main never saves; an unknown context never saves and says why.
ctx main push
eph post --job "$JOB" --status 0
expect_result post deps skipped
ctx "" ""
eph post --job "$JOB" --status 0 2> "$SCRATCH/unknown.err"
expect_result post deps skipped
grep -q 'context unknown' "$SCRATCH/unknown.err" || fail "no reason given for an unknown context"
[ -z "$(eph ls --json 2>/dev/null | tr -d '[]\n ')" ] || fail "something was saved: $(eph ls)"

# A successful pull request saves both stanzas.
machine saver; populate pr
ctx feature pull_request
eph post --job "$JOB" --status 0
expect_result post deps saved
expect_result post tools saved

# Another pull request restores both.
machine other
ctx other-feature pull_request
eph pre --job "$JOB"
expect_result pre deps hit
expect_result pre tools hit
[ "$(cat "$M/work/job/target/debug/a.o")" = "object pr" ] || fail "deps not restored"

# A push to main restores only where restore_on_protected = true.
machine main
ctx main push
eph pre --job "$JOB"
expect_result pre deps skipped
expect_result pre tools hit
[ ! -e "$M/work/job/target" ] || fail "deps restored on a push to main"
[ -f "$M/home/build/.tools/bin/t" ] || fail "tools not restored on main"

# --protected-branch adds protected branches.
machine release
ctx release/1 push
eph pre --job "$JOB" --protected-branch release/1
expect_result pre deps skipped

# A push to an unprotected branch saves.
machine topic; populate topic
ctx topic/x push
eph post --job "$JOB" --status 0
expect_result post deps saved

# An untrusted job's save is restored only into untrusted jobs of its origin (see fork.sh).
UJOB="$SCRATCH/untrusted.toml"
cat > "$UJOB" <<'TOML'
name = "build"
variety = "basic"
[[persist]]
name = "u"
rules = ["target/**/*"]
epoch = 1
TOML
machine fork; populate fork
ctx fork-branch pull_request
EPHEMERA_UNTRUSTED=1 EPHEMERA_ORIGIN=pr/7 eph post --job "$UJOB" --status 0
expect_result post u saved
machine victim
ctx victim-branch pull_request
eph pre --job "$UJOB"
expect_result pre u miss
machine fork2
ctx fork-branch pull_request
EPHEMERA_UNTRUSTED=1 EPHEMERA_ORIGIN=pr/7 eph pre --job "$UJOB"
expect_result pre u hit

# A disabled job does nothing and says so.
DJOB="$SCRATCH/disabled.toml"
sed 's/^variety = "basic"$/variety = "basic"\nenable = false/' "$JOB" > "$DJOB"
machine disabled
ctx feature pull_request
eph pre --job "$DJOB" 2> "$SCRATCH/disabled.err"
grep -q 'disabled' "$SCRATCH/disabled.err" || fail "a disabled job did not say so"
expect_result pre deps disabled

validate_report
echo "policy matrix: ok"
