# What the operator and the job log read: ls within 100 columns with a short id that show
# and gc take (show also a manifest file on this machine), sizes for people in text and
# exact in --json, and one summary line at the end of pre and of post.
. "$(dirname "$0")/../lib.sh"
# The sizes and links asserted are those of single-archive saves.
export EPHEMERA_FORMAT=archive
. "$(dirname "$0")/../raw_store.sh"

JOB="$SCRATCH/job.toml"
write_job() { # name
  printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "%s"\nrules = ["out"]\nepoch = 12\ncache_key = "a-cache-key-longer-than-its-column-in-ls"\n' "$1" > "$JOB"
}
save() { # machine branch content
  machine "$1"
  mkdir -p "$M/work/job/out"; head -c 3000 /dev/urandom > "$M/work/job/out/f"; echo "$3" >> "$M/work/job/out/f"
  ctx "$2" pull_request "job-$1"
  eph post --job "$JOB" --status 0 2> "$SCRATCH/post.err"
  expect_result post "$NAME" saved
}
ephemera() { "$EPHEMERA" "$@"; }

NAME=a-stanza-name-that-is-long-enough-to-be-cut
write_job "$NAME"
save s1 a-branch-name-longer-than-fits one
# post ends with one summary line: hits, misses, saves, bytes, seconds.
tail -n 1 "$SCRATCH/post.err" | grep -Eq '^ephemera: post: 0 hits, 0 misses, 1 save; [0-9.]+ (B|KiB) \([0-9.]+ (B|KiB) compressed\) in [0-9.]+ s$' \
  || fail "post's last line is not its summary: $(tail -n 1 "$SCRATCH/post.err")"
save s2 a-branch-name-longer-than-fits two
save s3 short three

# 1. ls: every line within 100 columns, each save with its id.
ephemera ls > "$SCRATCH/ls.txt"
awk 'length($0) > 100 { print; bad = 1 } END { exit bad }' "$SCRATCH/ls.txt" \
  || fail "ls lines over 100 columns: $(cat "$SCRATCH/ls.txt")"
ephemera ls --json > "$SCRATCH/ls.json"
ids=$(python3 -c 'import json,sys; print(" ".join(r["id"] for r in json.load(open(sys.argv[1]))))' "$SCRATCH/ls.json")
[ "$(echo "$ids" | wc -w)" = 3 ] || fail "ls --json ids: '$ids'"
for id in $ids; do
  [ "${#id}" = 10 ] || fail "id '$id' is not 10 hex"
  grep -q "^$id " "$SCRATCH/ls.txt" || fail "ls does not print id $id: $(cat "$SCRATCH/ls.txt")"
done
python3 - "$SCRATCH/ls.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
assert all(isinstance(r["compressed_size"], int) and r["compressed_size"] > 3000 for r in rows), rows
PY
grep -q ' KiB ' "$SCRATCH/ls.txt" || fail "ls sizes are not for people"

# 2. show takes the id, or a prefix of it, with sizes for people and exact in --json.
old=$(python3 -c 'import json,sys; print([r["id"] for r in json.load(open(sys.argv[1])) if r["job_id"] == "job-s1"][0])' "$SCRATCH/ls.json")
ephemera show "$old" > "$SCRATCH/show.txt"
grep -q "^id: *$old$" "$SCRATCH/show.txt" || fail "show by id: $(cat "$SCRATCH/show.txt")"
grep -Eq '^compressed_size: +[0-9.]+ KiB \([0-9]+ bytes\)$' "$SCRATCH/show.txt" \
  || fail "show's size is not for people: $(grep size "$SCRATCH/show.txt")"
grep -q 'not restorable: superseded' "$SCRATCH/show.txt" || fail "show verdict"
ephemera show "${old:0:6}" --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert isinstance(j["compressed_size"], int) and j["job_id"] == "job-s1", j' || fail "show --json by a prefix"
set +e
ephemera show 0000000000 2> "$SCRATCH/show.err"; code=$?
set -e
[ "$code" = 2 ] || fail "show of an unknown id exited $code"
grep -q "no save '0000000000'" "$SCRATCH/show.err" || fail "show of an unknown id: $(cat "$SCRATCH/show.err")"

# 3. show takes a manifest file on this machine, and says whether the store has it.
manifest=$(raw_ls | grep '\.json$' | grep -v _invalidations | head -n 1)
raw_get "$manifest" "$SCRATCH/copy.json"
ephemera show "$SCRATCH/copy.json" > "$SCRATCH/show.txt"
grep -q '^in_store: *true' "$SCRATCH/show.txt" || fail "show FILE: $(cat "$SCRATCH/show.txt")"
grep -q '^verdict:' "$SCRATCH/show.txt" || fail "show FILE has no verdict"
ephemera show "$SCRATCH/copy.json" --store "$SCRATCH/empty-store" > "$SCRATCH/show.txt"
grep -q '^verdict: *not in the store' "$SCRATCH/show.txt" || fail "show FILE of another store: $(cat "$SCRATCH/show.txt")"
echo '{"archive": "v1/x/y.tar.zst"}' > "$SCRATCH/bad.json"
set +e
ephemera show "$SCRATCH/bad.json" 2> "$SCRATCH/show.err"; code=$?
set -e
[ "$code" = 2 ] || fail "show of a bad manifest file exited $code"
grep -q "bad.json" "$SCRATCH/show.err" || fail "show of a bad file does not name it"

# 4. gc --save ID deletes that save only; --dry-run deletes nothing; sizes for people.
before=$(raw_ls | wc -l)
ephemera gc --save "$old" --dry-run > "$SCRATCH/gc.txt"
grep -q "^would delete save $old .*(.* KiB)" "$SCRATCH/gc.txt" || fail "gc --dry-run: $(cat "$SCRATCH/gc.txt")"
[ "$(raw_ls | wc -l)" = "$before" ] || fail "gc --save --dry-run deleted something"
ephemera gc --save "$old" > "$SCRATCH/gc.txt"
grep -q "^freed 1 save, .* KiB" "$SCRATCH/gc.txt" || fail "gc --save: $(cat "$SCRATCH/gc.txt")"
[ "$(raw_ls | wc -l)" = "$((before - 2))" ] || fail "gc --save did not delete one manifest and its archive"
ephemera ls --json | grep -q '"job_id": "job-s1"' && fail "the save gc deleted is still listed"
ephemera ls --json | grep -q '"job_id": "job-s2"' || fail "gc deleted another save"
ephemera gc --grace 0s --dry-run > "$SCRATCH/gc.txt"
grep -Eq '^would free [0-9]+ objects, [0-9.]+ (B|KiB)$' "$SCRATCH/gc.txt" || fail "gc total: $(cat "$SCRATCH/gc.txt")"

# 5. pre ends with its summary line.
machine warm; ctx short pull_request
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
expect_result pre "$NAME" hit
tail -n 1 "$SCRATCH/pre.err" | grep -Eq '^ephemera: pre: 1 hit, 0 misses, 0 saves; [0-9.]+ (B|KiB) \([0-9.]+ (B|KiB) compressed\) in [0-9.]+ s$' \
  || fail "pre's last line is not its summary: $(tail -n 1 "$SCRATCH/pre.err")"

echo "output: ok"
