# Retention by use: a restore marks the save it used (one small object a save and day), and
# gc's --max-age and --max-bytes go by last use. A hot save older than --max-age but restored
# just now stays; a cold one of the same age goes, with its use markers; --max-bytes evicts
# the least recently used first, not the oldest.
. "$(dirname "$0")/../lib.sh"
# --max-bytes counts the sizes of single archives: a content-addressed save shares its packs.
export EPHEMERA_FORMAT=archive
. "$(dirname "$0")/../raw_store.sh"

job_with_key() { deps_job "$1"; sed -i "s/^cache_key = .*/cache_key = \"$2\"/" "$1"; }
save_key() { # save_key KEY: a save of 100 kB of its own under KEY, from a fresh machine
  job_with_key "$SCRATCH/$1.toml" "$1"
  machine "save-$1"; ctx feature pull_request "job-save-$1"
  mkdir -p "$M/work/job/target"
  head -c 100000 /dev/urandom > "$M/work/job/target/blob"
  eph post --job "$SCRATCH/$1.toml" --status 0 2>> "$SCRATCH/log" || fail "post $1 failed"
  expect_result post deps saved
}
restore_key() { # restore_key KEY: a pre on a fresh machine; it must hit
  machine "restore-$1-$RANDOM"; ctx feature pull_request "job-restore-$1"
  eph pre --job "$SCRATCH/$1.toml" 2>> "$SCRATCH/log" || fail "pre $1 failed"
  expect_result pre deps hit
}
manifest_of() { raw_ls | grep "/deps/e1/$1/.*\.json$"; }

save_key hot
save_key cold
sleep 22 # both are now older than the --max-age below (20 s: room for a slow store between
         # the restore and gc, which must still count the restore as within it)
restore_key hot
restore_key hot # the same day: no second marker
markers=$(raw_ls | grep -c '\.used/' || true)
[ "$markers" = 1 ] || fail "expected one use marker for two restores in a day, got $markers: $(raw_ls)"
raw_ls | grep -q "^$(manifest_of hot | sed 's/\.json$//')\.used/$(date -u +%Y%m%d)$" ||
  fail "the marker is not beside the hot save's manifest: $(raw_ls)"

# ls says when each was last restored, and on how many days.
"$EPHEMERA" ls --json > "$SCRATCH/ls.json"
/usr/bin/python3 - "$SCRATCH/ls.json" <<'PY' || fail "ls --json does not show the use"
import json, sys
saves = {s["key"]: s for s in json.load(open(sys.argv[1]))}
assert saves["hot"]["restored_days"] == 1 and saves["hot"]["last_used"], saves["hot"]
assert saves["cold"]["restored_days"] == 0 and saves["cold"]["last_used"] is None, saves["cold"]
PY
"$EPHEMERA" ls > "$SCRATCH/ls.txt"
grep -q "USED" "$SCRATCH/ls.txt" || fail "ls has no USED column: $(cat "$SCRATCH/ls.txt")"
awk 'length > 100 { exit 1 }' "$SCRATCH/ls.txt" || fail "an ls line is over 100 columns"

"$EPHEMERA" gc --max-age 20s --grace 0s > "$SCRATCH/gc.txt" || fail "gc failed"
cat "$SCRATCH/gc.txt"
[ -n "$(manifest_of hot)" ] || fail "gc deleted the hot save, restored seconds ago"
[ -z "$(manifest_of cold)" ] || fail "gc kept the cold save, never restored and over --max-age"
grep -q "never restored, over --max-age" "$SCRATCH/gc.txt" || fail "gc does not say why"
[ "$(raw_ls | grep -c '\.used/' || true)" = 1 ] || fail "the hot save's marker is gone"
restore_key hot # still restorable

# --max-bytes: a, b, c saved in that order; a restored last. Room for two saves: the least
# recently used (b) goes, not the oldest (a).
use_store lru
save_key a; sleep 1.1
save_key b; sleep 1.1
save_key c; sleep 1.1
restore_key a
"$EPHEMERA" gc --max-bytes 250kB --grace 0s > "$SCRATCH/gc2.txt" || fail "gc failed"
cat "$SCRATCH/gc2.txt"
[ -n "$(manifest_of a)" ] || fail "--max-bytes evicted a, the most recently used"
[ -z "$(manifest_of b)" ] || fail "--max-bytes kept b, the least recently used"
[ -n "$(manifest_of c)" ] || fail "--max-bytes evicted c before b"
grep -q "least recently used" "$SCRATCH/gc2.txt" || fail "gc does not say why"

# A marker never brings back an invalidated save; gc deletes the marker with its save.
"$EPHEMERA" invalidate --repository acme/widget --reason "poisoned" > /dev/null
sleep 1.1
"$EPHEMERA" gc --grace 0s > "$SCRATCH/gc3.txt" || fail "gc failed"
[ -z "$(manifest_of a)" ] || fail "an invalidated save restored today was kept"
if raw_ls | grep -q '\.used/'; then fail "use markers outlived their saves: $(raw_ls)"; fi
