# A store whose answers lie about content-addressed saves: tests/store/fault-proxy.py between
# ephemera and the real S3 server rewrites what it answers to GETs of packs (ranged) and
# indexes — other bytes of the right length, bytes past the range, a short body, a 200 with
# the whole object, a 206 for another (overlapping) range, another save's index, an index of
# a million entries. Each is refused with a reason that names it, nothing of that save
# reaches the job's directory (not a file, not a staged temporary), the next candidate is
# restored instead or the restore is a clean miss, and the job goes on: pre exits 0 unless
# --strict. A post whose base index lies saves in full.
. "$(dirname "$0")/../lib.sh"
[ "${STORE_KIND}" = s3 ] || fail "this test needs STORE_KIND=s3"
. "$(dirname "$0")/../raw_store.sh"
use_store hostile-cas
on_exit 's3obj rmtree "$STORE/" > /dev/null 2>&1'
start_fault_proxy
export EPHEMERA_S3_STALL_SECONDS=5

JOB="$SCRATCH/job.toml"
deps_job "$JOB"

# Two saves of one key: the older holds first.o, the newer (the first candidate) second.o
# and a larger file, in a pack of its own.
save_from first feature first.o
first_machine=$M
first=$(the_manifest)
raw_ls | grep '/packs/.*\.pack$' > "$SCRATCH/first.packs"
machine second; ctx feature pull_request job-second
mkdir -p "$M/work/job/target"
echo "second.o from second" > "$M/work/job/target/second.o"
head -c 300000 /dev/urandom > "$M/work/job/target/blob"
eph post --job "$JOB" --status 0 2> /dev/null
expect_result post deps saved
second=$(newest_manifest_besides "$first")
raw_get "$first" "$SCRATCH/first.json"
raw_get "$second" "$SCRATCH/second.json"
first_index=$(json_get "$SCRATCH/first.json" archive)
second_index=$(json_get "$SCRATCH/second.json" archive)
case $second_index in cas1/*/index/*.idx) ;; *) fail "the second save is not content-addressed: $second_index" ;; esac
second_sha=$(basename "$second_index" .idx)
# A pack only the newer save has: a lie about it leaves the older save whole.
only_second=$(LC_ALL=C comm -13 "$SCRATCH/first.packs" <(raw_ls | grep '/packs/.*\.pack$') | head -1)
[ -n "$only_second" ] || fail "the newer save has no pack of its own"
only_second=$(basename "$only_second" .pack)

# What the older save's restore leaves, exactly: the tree a lying answer may not change.
expected=$(listing "$first_machine/work/job")

# lied NAME WHY FAULT...: with FAULT set, pre on a fresh machine passes over the newer save
# with a reason matching WHY, restores the older one exactly, and exits 0.
lied() {
  local name=$1 why=$2; shift 2
  fault "$@"
  machine "$name"; ctx "branch-$name" pull_request "job-$name"
  eph pre --job "$JOB" 2> "$SCRATCH/$name.err" || fail "$name: pre failed: $(cat "$SCRATCH/$name.err")"
  grep -qE "cas $2|200 file| endless$" "$P.log" ||
    fail "$name: the proxy told no lie: $(cat "$P.log")"
  expect_result pre deps hit
  grep -q "restore 'deps': passed over .*$(basename "$second_index")" "$SCRATCH/$name.err" ||
    fail "$name: the log does not say the newer save was passed over: $(cat "$SCRATCH/$name.err")"
  grep "passed over" "$SCRATCH/$name.err" | grep -qE "$why" ||
    fail "$name: the reason is not /$why/: $(grep "passed over" "$SCRATCH/$name.err")"
  [ "$(listing "$M/work/job")" = "$expected" ] ||
    fail "$name: the job's directory is not exactly the older save's: $(cd "$M/work/job" && find . | sort)"
  echo "$name: refused, the older save restored"
}

decode='does not decode to its|SHA-256 mismatch|not the content the index names'
lied pack-other "$decode" cas other pack "only=$only_second"
lied pack-overlap "$decode" cas overlap pack "only=$only_second"
lied pack-past 'the server says it is [0-9]+ bytes, expected [0-9]+' cas past pack "only=$only_second"
lied pack-endless 'sent more than the [0-9]+ bytes' cas endless pack "only=$only_second"
lied pack-short 'the server says it is [0-9]+ bytes, expected [0-9]+' cas short pack "only=$only_second"
lied pack-whole 'answered a Range request with the whole object' cas whole pack "only=$only_second"
lied pack-shifted 'asked for bytes [0-9]+-[0-9]+, the server sent [0-9]+-[0-9]+' \
  cas shifted pack "only=$only_second"

not_named='is not the one its manifest names|the server says it is [0-9]+ bytes, expected|sent more than the [0-9]+ bytes'
lied index-other "$not_named" cas other idx "only=$second_sha"
lied index-short "$not_named" cas short idx "only=$second_sha"
lied index-past "$not_named" cas past idx "only=$second_sha"
lied index-endless 'sent more than the [0-9]+ bytes' cas endless idx "only=$second_sha"
# Another save's index, valid and of this scope (the older one's), for the newer one's.
raw_get "$first_index" "$SCRATCH/other.idx"
lied index-another "$not_named" cas file idx "$SCRATCH/other.idx" "only=$second_sha"
# A well-formed index of this scope with a million entries (directories): never parsed, its
# bytes are not those the manifest names.
scope=${second_index#cas1/}
scope=${scope%/index/*}
/usr/bin/python3 - "$scope" "$SCRATCH/million.body" <<'PY'
import struct, sys
scope, out = sys.argv[1].encode(), sys.argv[2]
with open(out, "wb") as f:
    f.write(b"ephemera-cas-index/1\n" + struct.pack("<I", len(scope)) + scope)
    f.write(struct.pack("<I", 0) + struct.pack("<I", 1000000))
    for i in range(1000000):
        path = b"work/target/d%07d" % i
        f.write(struct.pack("<I", len(path)) + path + struct.pack("<BIq", 1, 0o755, 0))
PY
zstd -q -f "$SCRATCH/million.body" -o "$SCRATCH/million.idx"
lied index-million "$not_named" cas file idx "$SCRATCH/million.idx" "only=$second_sha"

# Every save lies: a clean miss, nothing written, exit 0; --strict makes it exit 1.
fault cas other pack
machine all; ctx branch-all pull_request job-all
eph pre --job "$JOB" 2> "$SCRATCH/all.err" || fail "pre failed when every pack lies: $(cat "$SCRATCH/all.err")"
result=$(result_of pre deps)
case $result in miss | failed) ;; *) fail "every pack lies: result $result" ;; esac
[ -z "$(cd "$M/work/job" && find . -mindepth 1 | head -1)" ] ||
  fail "every pack lies, and something was written: $(cd "$M/work/job" && find . -mindepth 1)"
grep -qE "$decode" "$SCRATCH/all.err" || fail "every pack lies: no reason given: $(cat "$SCRATCH/all.err")"
machine strict; ctx branch-strict pull_request job-strict
set +e; eph pre --job "$JOB" --strict 2> /dev/null; code=$?; set -e
[ "$code" = 1 ] || fail "--strict when every pack lies: exit $code, wanted 1"
echo "every pack lies: $result, nothing written, --strict exits 1"

# A post whose base index lies saves in full, and the save restores.
fault cas other idx
machine saver; ctx feature pull_request job-saver
mkdir -p "$M/work/job/target"
echo "third" > "$M/work/job/target/third.o"
eph post --job "$JOB" --status 0 2> "$SCRATCH/saver.err" || fail "post failed: $(cat "$SCRATCH/saver.err")"
expect_result post deps saved
grep -qE "the base .* was passed over: .*($not_named)" "$SCRATCH/saver.err" ||
  fail "post does not say its base was passed over: $(cat "$SCRATCH/saver.err")"
fault pass
machine after; ctx branch-after pull_request job-after
eph pre --job "$JOB" 2> /dev/null
expect_result pre deps hit
[ "$(cat "$M/work/job/target/third.o")" = third ] || fail "the save made past a lying base does not restore"
echo "hostile_cas: ok"
