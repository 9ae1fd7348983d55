# An operator's gc through the broker on content-addressed objects, as on archives: it lists
# cas1/, reads the indexes, keeps a killed save's index and packs within the grace period and
# removes them after it, and removes an unsigned content-addressed save (which takes no part
# where the broker signs) with its index and the packs only it used; the broker's own save
# keeps its index and packs and stays restorable.
. "$(dirname "$0")/lib.sh"

start_broker b1
JOB="$SCRATCH/job.toml"
deps_job "$JOB"
cas_objects() { store_objects | grep '^cas1/' || true; }

machine first
mkdir -p "$M/work/job/target"
head -c 2000000 /dev/urandom > "$M/work/job/target/big.bin"
ctx feature pull_request job-1
TOKEN=$(token)
beph post --job "$JOB" --status 0
expect_result post deps saved

# With the store's credentials (no broker): one content-addressed save killed after its
# index, one complete but unsigned.
echo killed > "$M/work/job/target/killed"
EPHEMERA_FAULT=cas-index-written eph post --job "$JOB" --status 0 > /dev/null 2>&1 &&
  fail "the fault point did not kill the save"
rm "$M/work/job/target/killed"; echo more > "$M/work/job/target/more"
eph post --job "$JOB" --status 0 2> /dev/null
[ "$(cas_objects | grep -c '\.idx$')" = 3 ] || fail "three indexes expected: $(cas_objects)"

TOKEN=$("$EPHEMERA" token --key "$KEYS/broker.pem" --operator)
on_machine "$EPHEMERA" gc > "$SCRATCH/young.txt" 2>&1 || fail "gc through the broker: $(cat "$SCRATCH/young.txt")"
[ "$(cas_objects | grep -c '\.idx$')" = 3 ] || fail "gc through the broker removed an index within the grace period"
on_machine "$EPHEMERA" gc --grace 0s --json > "$SCRATCH/gc.json" 2> "$SCRATCH/gc.err" ||
  fail "gc through the broker: $(cat "$SCRATCH/gc.err")"
/usr/bin/python3 - "$SCRATCH/gc.json" <<'PY' || fail "gc through the broker: $(cat "$SCRATCH/gc.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["freed_indexes"] == 2, j
assert j["freed_packs"] >= 2, j
PY
[ "$(cas_objects | grep -c '\.idx$')" = 1 ] || fail "gc through the broker left: $(cas_objects)"
grep -q refused "$SCRATCH/b1.log" && fail "the broker refused the operator's gc: $(cat "$SCRATCH/b1.log")"

machine second
ctx feature pull_request job-2
TOKEN=$(token)
beph pre --job "$JOB"
expect_result pre deps hit
cmp "$SCRATCH/first/work/job/target/big.bin" "$M/work/job/target/big.bin" || fail "restored bytes differ"
