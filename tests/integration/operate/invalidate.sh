# invalidate narrower than a stanza: one key (--key) or one branch (--branch), a --dry-run
# that writes nothing, and a count of the saves hidden, by id; lookup, ls and a signed
# store honour the narrower marker like any other.
. "$(dirname "$0")/../lib.sh"

export EPHEMERA_SIGNING_KEY=0123456789abcdef0123456789abcdef
JOB="$SCRATCH/job.toml"
save() { # machine branch key
  printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "deps"\nrules = ["out"]\nepoch = 1\ncache_key = "%s"\n' "$3" > "$JOB"
  machine "$1"; mkdir -p "$M/work/job/out"; echo "$1" > "$M/work/job/out/f"
  ctx "$2" pull_request "job-$1"
  eph post --job "$JOB" --status 0 2> /dev/null
  expect_result post deps saved
}
ephemera() { "$EPHEMERA" "$@"; }
id_of() { ephemera ls --json | python3 -c 'import json,sys; print([r["id"] for r in json.load(sys.stdin) if r["job_id"] == sys.argv[1]][0])' "$1"; }
restorable() { ephemera ls --json | python3 -c 'import json,sys; print(" ".join(sorted(r["job_id"] for r in json.load(sys.stdin) if r["restorable"])))'; }

save a1 alpha ka
save a2 alpha kb
save b1 beta ka
[ "$(restorable)" = "job-a1 job-a2 job-b1" ] || fail "before: $(restorable)"

# 1. --dry-run says what it would hide and writes nothing.
ephemera invalidate --repository acme/widget --name deps --key ka --dry-run > "$SCRATCH/inv.txt"
grep -q "would hide 2 saves: .*$(id_of job-a1)" "$SCRATCH/inv.txt" || fail "dry run: $(cat "$SCRATCH/inv.txt")"
grep -q "$(id_of job-b1)" "$SCRATCH/inv.txt" || fail "dry run does not name every save"
[ "$(restorable)" = "job-a1 job-a2 job-b1" ] || fail "a dry run hid saves: $(restorable)"
! ephemera ls | grep -q '^marker:' || fail "a dry run wrote a marker: $(ephemera ls)"

# 2. A narrowing that names nothing a save can have is a usage error that says what, and
# writes no marker: an empty --key or --branch (an unset variable in a script) would
# otherwise hide every save of the repository.
refused() { # WHAT ARGS...: exit 2, the message names WHAT
  local what=$1; shift
  set +e; ephemera invalidate --repository acme/widget "$@" > /dev/null 2> "$SCRATCH/err"; rc=$?; set -e
  [ "$rc" = 2 ] || fail "invalidate $*: exit $rc, expected 2"
  grep -qF -- "$what" "$SCRATCH/err" || fail "invalidate $*: does not say '$what': $(cat "$SCRATCH/err")"
}
refused "--key ''" --key ''
refused "--branch ''" --branch ''
refused "--key 'a/b': not a key a save can have" --key a/b
refused "--key 'a\nb'" --key "$(printf 'a
b')"
refused "--name 'Deps'" --name Deps
refused "--keys" --keys ka
! ephemera ls | grep -q '^marker:' || fail "a refused invalidate wrote a marker: $(ephemera ls)"
[ "$(restorable)" = "job-a1 job-a2 job-b1" ] || fail "a refused invalidate hid saves: $(restorable)"
# A key with its key files' digest is a key a save can have.
ephemera invalidate --repository acme/widget --key ka-0123456789abcdef --dry-run | grep -q "would hide 0 saves" \
  || fail "a key with a digest was refused"

# 3. --key: only that key's saves; the count and ids are said.
ephemera invalidate --repository acme/widget --key ka --reason "bad lock" > "$SCRATCH/inv.txt"
grep -q "hid 2 saves:" "$SCRATCH/inv.txt" || fail "invalidate --key: $(cat "$SCRATCH/inv.txt")"
grep -q "the marker is signed" "$SCRATCH/inv.txt" || fail "the marker is not signed"
[ "$(restorable)" = "job-a2" ] || fail "after --key: $(restorable)"
ephemera ls | grep -q "^marker: acme/widget key 'ka' invalidated at .*: bad lock" || fail "ls marker: $(ephemera ls)"
# A restore of that key misses, saying why; another key still hits.
machine r1; ctx alpha pull_request
printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "deps"\nrules = ["out"]\nepoch = 1\ncache_key = "ka"\n' > "$JOB"
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
expect_result pre deps miss
grep -q "invalidated at .* for key 'ka': bad lock" "$SCRATCH/pre.err" || fail "the miss does not say invalidated: $(cat "$SCRATCH/pre.err")"
sed -i 's/cache_key = "ka"/cache_key = "kb"/' "$JOB"
machine r2; ctx alpha pull_request
eph pre --job "$JOB" 2> /dev/null
expect_result pre deps hit

# 4. --branch: only that branch's saves; a second marker hides nothing already hidden.
save b2 beta kb
ephemera invalidate --repository acme/widget --branch beta > "$SCRATCH/inv.txt"
grep -q "hid 1 save: $(id_of job-b2)$" "$SCRATCH/inv.txt" || fail "invalidate --branch: $(cat "$SCRATCH/inv.txt")"
[ "$(restorable)" = "job-a2" ] || fail "after --branch: $(restorable)"
ephemera invalidate --repository acme/widget --branch beta --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["hidden"] == [] and j["signed"], j' || fail "a second marker counted hidden saves"

echo "invalidate: ok"
