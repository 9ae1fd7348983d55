# Content-addressed saves, the default format, through pre and post: a chain of states
# round-trips entry by entry (files and directories added, modified, deleted; type changes;
# mode-only and mtime-only changes), the second save uploads only what is new and says so,
# an unchanged tree is not saved again, and a pack whose bytes are not its index's is never
# restored: nothing of that save is written, the next candidate is restored instead, and
# with none left the job goes on cold.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../raw_store.sh"
use_store incremental

JOB="$SCRATCH/job.toml"
deps_job "$JOB"

state_a() {
  local t="$M/work/job/target"
  mkdir -p "$t/keep/sub" "$t/gone-dir/x" "$t/becomes-file" "$t/modes"
  head -c 3000000 /dev/urandom > "$t/big.bin"       # cut into chunks
  for i in $(seq 1 40); do echo "small $i" > "$t/keep/sub/f$i"; done
  echo "deleted later" > "$t/gone-dir/x/old"
  echo "a file, then a link" > "$t/becomes-link"
  echo inside > "$t/becomes-file/inner"
  echo "mode" > "$t/modes/m"; chmod 640 "$t/modes/m"
  echo "time" > "$t/modes/t"; touch -d '2020-01-02 03:04:05.5' "$t/modes/t"
  ln -s keep/sub/f1 "$t/link"
}

# A's tree turned into B's in place, as a job changes what it restored.
to_state_b() {
  local t="$M/work/job/target"
  head -c 1000 /dev/urandom | dd of="$t/big.bin" bs=1 seek=1500000 conv=notrunc status=none
  echo "changed" > "$t/keep/sub/f7"
  rm -r "$t/gone-dir"
  rm "$t/becomes-link"; ln -s keep "$t/becomes-link"
  rm -r "$t/becomes-file"; echo "now a file" > "$t/becomes-file"
  chmod 600 "$t/modes/m"
  touch -d '2022-05-06 07:08:09.25' "$t/modes/t"
  mkdir -p "$t/new-dir/deep"; echo new > "$t/new-dir/deep/n"
}

machine one; state_a
ctx feature pull_request job-one
eph post --job "$JOB" --status 0 2> "$SCRATCH/one.err"
expect_result post deps saved
grep -q "saved 'deps' key 'deps': .*uploaded .* new of " "$SCRATCH/one.err" ||
  fail "the summary does not say what was new: $(cat "$SCRATCH/one.err")"
first=$(the_manifest)
raw_get "$first" "$SCRATCH/first.json"
[ "$(json_get "$SCRATCH/first.json" content)" = cas1 ] || fail "the default save is not content-addressed"
index=$(json_get "$SCRATCH/first.json" archive)
case $index in cas1/*/deps/trusted/index/*.idx) ;; *) fail "the manifest names $index" ;; esac
packs_a=$(raw_ls | grep -c '\.pack$')
listing "$M/work/job" > "$SCRATCH/a.list"

# On a pristine machine: A exactly; then B made over it and saved on A's index.
machine two
ctx feature pull_request job-two
eph pre --job "$JOB" 2> "$SCRATCH/two.err" || fail "pre failed"
expect_result pre deps hit
[ "$(listing "$M/work/job")" = "$(cat "$SCRATCH/a.list")" ] ||
  { diff "$SCRATCH/a.list" <(listing "$M/work/job") >&2; fail "A did not round-trip"; }
to_state_b
eph post --job "$JOB" --status 0 2> "$SCRATCH/two-post.err"
expect_result post deps saved
uploaded=$(sed -n "s/.*saved 'deps' key 'deps': .*uploaded \([0-9.]*\) \([KMG]*i*B\) new of .*/\1 \2/p" \
  "$SCRATCH/two-post.err")
[ -n "$uploaded" ] || fail "no summary of what was new: $(cat "$SCRATCH/two-post.err")"
case $uploaded in *KiB | *" B") ;; *) fail "the second save uploaded $uploaded, not only what changed" ;; esac
[ "$(raw_ls | grep -c '\.pack$')" = $((packs_a + 1)) ] || fail "the second save wrote more than one pack"
second=$(newest_manifest_besides "$first")
listing "$M/work/job" > "$SCRATCH/b.list"

# Nothing changed since the restore: no save.
machine three
ctx feature pull_request job-three
eph pre --job "$JOB" 2>/dev/null
expect_result pre deps hit
[ "$(listing "$M/work/job")" = "$(cat "$SCRATCH/b.list")" ] ||
  { diff "$SCRATCH/b.list" <(listing "$M/work/job") >&2; fail "B did not round-trip"; }
eph post --job "$JOB" --status 0 2>/dev/null
expect_result post deps unchanged

# A flipped byte in the pack only B uses: B is refused as a whole, nothing of it is written,
# and the restore passes over it to A.
new_pack=""
for k in $(raw_ls | grep '\.pack$'); do
  raw_get "$k" "$SCRATCH/p"
  if [ "$(stat -c %s "$SCRATCH/p")" -lt 1000000 ]; then new_pack=$k; fi
done
[ -n "$new_pack" ] || fail "no pack of B's alone: $(raw_ls)"
raw_get "$new_pack" "$SCRATCH/p"
python3 - "$SCRATCH/p" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xFF
open(p, "wb").write(bytes(b))
PY
raw_put "$SCRATCH/p" "$new_pack"
machine four
ctx feature pull_request job-four
eph pre --job "$JOB" 2> "$SCRATCH/four.err" || fail "pre failed the job"
expect_result pre deps hit
raw_get "$second" "$SCRATCH/second.json"
grep "passed over .*$(basename "$(json_get "$SCRATCH/second.json" archive)")" "$SCRATCH/four.err" |
  grep -Eq "SHA-256 mismatch|does not decode|not the content" ||
  fail "the warning does not say B's content was wrong: $(cat "$SCRATCH/four.err")"
[ "$(listing "$M/work/job")" = "$(cat "$SCRATCH/a.list")" ] ||
  { diff "$SCRATCH/a.list" <(listing "$M/work/job") >&2; fail "a byte of B was written, or A not restored"; }
# With A's packs broken too: no candidate is left, nothing is written, the job goes on cold.
for k in $(raw_ls | grep '\.pack$' | grep -vx "$new_pack"); do
  raw_get "$k" "$SCRATCH/p"
  printf 'X' | dd of="$SCRATCH/p" bs=1 seek=100 conv=notrunc status=none
  raw_put "$SCRATCH/p" "$k"
done
machine five
ctx feature pull_request job-five
eph pre --job "$JOB" 2> "$SCRATCH/five.err" || fail "pre failed the job"
expect_result pre deps failed
grep -Eq "SHA-256 mismatch|does not decode|not the content" "$SCRATCH/five.err" ||
  fail "the warning does not say the content was wrong: $(cat "$SCRATCH/five.err")"
[ ! -e "$M/work/job/target" ] || fail "a refused restore wrote $(find "$M/work/job/target" | head -3)"
validate_report
echo "incremental: ok"
