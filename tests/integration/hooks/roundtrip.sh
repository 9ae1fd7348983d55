# Save then restore on a pristine machine: the same tree, byte for byte, with modes, mtimes
# and symlinks; unchanged saves skipped; epochs, key files and branches honoured.
. "$(dirname "$0")/../lib.sh"

JOB="$SCRATCH/job.toml"
write_job() { # epoch
  cat > "$JOB" <<TOML
name = "build"
variety = "basic"

[[persist]]
name = "deps"
rules = ["target/**/*", "!target/**/*.tmp", "~/.cargo/registry"]
epoch = $1
cache_key = "deps"
key_files = ["Cargo.lock"]
restore_keys = ["deps-"]
TOML
}
write_job 1

populate() {
  local w="$M/work/job" h="$M/home/build"
  mkdir -p "$w/target/debug/deps" "$w/target/empty" "$h/.cargo/registry/index/x" "$h/.cargo/registry/cache"
  echo "lib $1" > "$w/target/debug/deps/liba.rlib"
  printf '\0\1\2binary' > "$w/target/debug/deps/blob.bin"
  echo "scratch" > "$w/target/debug/ignored.tmp"
  echo '#!/bin/sh' > "$w/target/debug/run.sh"; chmod 750 "$w/target/debug/run.sh"
  chmod 600 "$w/target/debug/deps/blob.bin"
  ln -s deps/liba.rlib "$w/target/debug/link"
  ln -s /nonexistent/dangling "$w/target/debug/dangling"
  ln "$w/target/debug/deps/blob.bin" "$w/target/debug/hard"
  : > "$w/target/debug/zero"
  echo "name with spaces" > "$w/target/debug/a file with spaces.txt"
  echo index > "$h/.cargo/registry/index/x/config.json"
  head -c 300000 /dev/urandom > "$h/.cargo/registry/cache/crate.crate"
  touch -d '2021-02-03 04:05:06.123456789' "$w/target/debug/deps/liba.rlib"
  echo "lock 1" > "$w/Cargo.lock"
}

machine first; populate one
ctx feature pull_request
eph post --job "$JOB" --status 0
expect_result post deps saved

# Restore on a fresh machine: identical tree (but for the excluded *.tmp).
machine second
echo "lock 1" > "$M/work/job/Cargo.lock"
eph pre --job "$JOB"
expect_result pre deps hit
debug="$SCRATCH/first/work/job/target/debug"
was=$(stat -c '%.9Y' "$debug")
rm "$debug/ignored.tmp"
touch -m -d "@$was" "$debug"
# Directories outside the stanza (the anchors, target itself) and Cargo.lock are not in it.
outside='^d [0-9]* [0-9.]* \./(home|home/build|home/build/\.cargo|work|work/job|work/job/target) -> $|Cargo\.lock'
diff <(listing "$SCRATCH/first" | grep -Ev "$outside") <(listing "$SCRATCH/second" | grep -Ev "$outside") \
  || fail "restored tree differs"

# Nothing changed since the restore: post skips the save and says so.
eph post --job "$JOB" --status 0 2> "$SCRATCH/unchanged.err"
expect_result post deps unchanged
grep -q 'nothing changed' "$SCRATCH/unchanged.err" || fail "the skip was not explained"

# A change is saved.
echo more >> "$M/work/job/target/debug/deps/liba.rlib"
eph post --job "$JOB" --status 0
expect_result post deps saved

# Files already where the restore writes (a checkout carrying some of target/): the set is
# walked after the restore, and an unchanged post still skips.
machine second-b
echo "lock 1" > "$M/work/job/Cargo.lock"
mkdir -p "$M/work/job/target/debug"; echo "from the checkout" > "$M/work/job/target/checked-in"
eph pre --job "$JOB"
expect_result pre deps hit
[ "$(cat "$M/work/job/target/checked-in")" = "from the checkout" ] \
  || fail "a file the archive lacks was touched"
eph post --job "$JOB" --status 0
expect_result post deps unchanged
# ... and a file changed after the restore is a change.
machine second-c
echo "lock 1" > "$M/work/job/Cargo.lock"
eph pre --job "$JOB"
expect_result pre deps hit
echo changed > "$M/work/job/target/debug/hard"
eph post --job "$JOB" --status 0
expect_result post deps saved

# A changed key file: the exact key misses, the restore_keys prefix hits.
machine third
echo "lock 2" > "$M/work/job/Cargo.lock"
eph pre --job "$JOB"
expect_result pre deps hit
report_json | /usr/bin/python3 -c '
import json, sys
e = [e for e in json.load(sys.stdin)["entries"] if e["phase"] == "pre"][-1]
assert e["step"] == "prefix" and e["prefix"] == "deps-", e
assert e["archive"]["key"] != e["key_wanted"], e
assert len(e["archive"]["sha256"]) == 64 and e["archive"]["files"] > 0, e'

# Bumping the epoch throws every old archive away.
write_job 2
machine fourth
echo "lock 1" > "$M/work/job/Cargo.lock"
eph pre --job "$JOB"
expect_result pre deps miss
write_job 1

# Own branch first, then the newest from any branch.
BJOB="$SCRATCH/branches.toml"
cat > "$BJOB" <<'TOML'
name = "build"
variety = "basic"
[[persist]]
name = "b"
rules = ["out/**/*"]
epoch = 1
cache_key = "k"
TOML
for b in alpha beta; do
  machine "save-$b"
  mkdir -p "$M/work/job/out"; echo "$b" > "$M/work/job/out/who"
  ctx "$b" pull_request
  eph post --job "$BJOB" --status 0
  expect_result post b saved
  sleep 1.1
done
machine on-alpha; ctx alpha pull_request; eph pre --job "$BJOB"
[ "$(cat "$M/work/job/out/who")" = alpha ] || fail "own branch not preferred"
machine on-gamma; ctx gamma pull_request; eph pre --job "$BJOB"
[ "$(cat "$M/work/job/out/who")" = beta ] || fail "newest not chosen from other branches"
report_json | grep -q '"branch_match": "other"' || fail "the report does not say the branch was another"

validate_report
echo "roundtrip: ok"
