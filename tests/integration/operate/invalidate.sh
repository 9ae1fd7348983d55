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

# 2. --key: only that key's saves; the count and ids are said.
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
grep -q "invalidated at .*bad lock" "$SCRATCH/pre.err" || fail "the miss does not say invalidated: $(cat "$SCRATCH/pre.err")"
sed -i 's/cache_key = "ka"/cache_key = "kb"/' "$JOB"
machine r2; ctx alpha pull_request
eph pre --job "$JOB" 2> /dev/null
expect_result pre deps hit

# 3. --branch: only that branch's saves; a second marker hides nothing already hidden.
save b2 beta kb
ephemera invalidate --repository acme/widget --branch beta > "$SCRATCH/inv.txt"
grep -q "hid 1 save: $(id_of job-b2)$" "$SCRATCH/inv.txt" || fail "invalidate --branch: $(cat "$SCRATCH/inv.txt")"
[ "$(restorable)" = "job-a2" ] || fail "after --branch: $(restorable)"
ephemera invalidate --repository acme/widget --branch beta --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["hidden"] == [] and j["signed"], j' || fail "a second marker counted hidden saves"

echo "invalidate: ok"
