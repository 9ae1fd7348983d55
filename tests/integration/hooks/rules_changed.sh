# Rules are part of a save's identity: narrowing a stanza's rules without bumping its epoch
# makes the saves made with the old rules a clean miss that says "saved with other rules",
# never a refusal that reads like an attack; rules respelled (order, '=', a trailing '/')
# still hit; a save whose rules digest matches but whose archive holds an entry outside the
# rules is still refused (a forged archive).
. "$(dirname "$0")/../lib.sh"
# These saves are single archives (EPHEMERA_FORMAT=archive), the format this script forges;
# stores keep holding and restoring them.
export EPHEMERA_FORMAT=archive
. "$(dirname "$0")/../raw_store.sh"

JOB="$SCRATCH/job.toml"
job() { # rules (TOML array body)
  printf 'name = "build"\nvariety = "basic"\n\n[[persist]]\nname = "deps"\nrules = [%s]\nepoch = 1\ncache_key = "deps"\n' "$1" > "$JOB"
}
job '"target", "cache"'
machine one; ctx feature pull_request
mkdir -p "$M/work/job/target" "$M/work/job/cache"
echo t > "$M/work/job/target/t"; echo c > "$M/work/job/cache/c"
eph post --job "$JOB" --status 0 2> /dev/null
expect_result post deps saved

# 1. The same rules, respelled: a hit.
job '"cache/", "=target"'
machine two; ctx feature pull_request
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
expect_result pre deps hit

# 2. Narrowed: a clean miss that says why, no refusal, nothing written.
job '"target"'
machine three; ctx feature pull_request
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
expect_result pre deps miss
grep -q "1 saved with other rules" "$SCRATCH/pre.err" || fail "the miss does not say other rules: $(cat "$SCRATCH/pre.err")"
grep -q "refused" "$SCRATCH/pre.err" && fail "a rules change still reads as a refusal: $(cat "$SCRATCH/pre.err")"
[ -z "$(ls -A "$M/work/job")" ] || fail "a miss wrote files"
set +e
eph lookup --job "$JOB" > "$SCRATCH/lookup.out"; code=$?
set -e
[ "$code" = 3 ] || fail "lookup with other rules exited $code"
grep -q "saved with other rules" "$SCRATCH/lookup.out" || fail "lookup: $(cat "$SCRATCH/lookup.out")"
# The next save, with the narrowed rules, is what the narrowed stanza restores.
mkdir -p "$M/work/job/target"; echo t2 > "$M/work/job/target/t"
eph post --job "$JOB" --status 0 2> /dev/null
expect_result post deps saved
machine four; ctx feature pull_request
eph pre --job "$JOB" 2> /dev/null
expect_result pre deps hit
[ "$(cat "$M/work/job/target/t")" = t2 ] || fail "the narrowed save was not the one restored"

# 3. A manifest with the right digest over an archive holding an entry outside the rules
# (what a store writer could forge): still refused.
manifest=$(raw_ls | grep '\.json$' | grep -v _invalidations | tail -n 1)
raw_get "$manifest" "$SCRATCH/m.json"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert "rules_digest" in m and len(m["rules_digest"]) == 64, m' "$SCRATCH/m.json" \
  || fail "the manifest does not record its rules' digest"
mkdir -p "$SCRATCH/evil/work/target" "$SCRATCH/evil/work/cache"
echo t > "$SCRATCH/evil/work/target/t"; echo evil > "$SCRATCH/evil/work/cache/c"
tar --format=pax -C "$SCRATCH/evil" -cf - work | zstd -q > "$SCRATCH/evil.tar.zst"
python3 - "$SCRATCH/m.json" "$SCRATCH/evil.tar.zst" <<'PY'
import hashlib, json, os, sys
m = json.load(open(sys.argv[1]))
data = open(sys.argv[2], "rb").read()
m["sha256"] = hashlib.sha256(data).hexdigest()
m["compressed_size"] = len(data)
json.dump(m, open(sys.argv[1], "w"))
PY
raw_put "$SCRATCH/evil.tar.zst" "${manifest%.json}.tar.zst"
raw_put "$SCRATCH/m.json" "$manifest"
machine five; ctx feature pull_request
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
grep -q "not a path the stanza's rules admit" "$SCRATCH/pre.err" || fail "a forged archive was not refused: $(cat "$SCRATCH/pre.err")"
[ ! -e "$M/work/job/cache/c" ] || fail "the forged entry was written"

echo "rules changed: ok"
