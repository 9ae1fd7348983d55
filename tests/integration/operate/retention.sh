# What gc keeps and why: superseded saves go after the grace period, an archive whose
# manifest cannot be read is never an orphan, a dry run writes nothing, and what the store
# holds reaches the terminal escaped.
. "$(dirname "$0")/../lib.sh"
# These saves are single archives (EPHEMERA_FORMAT=archive), the format this script forges
# and inspects object by object; stores keep holding and restoring them.
export EPHEMERA_FORMAT=archive
. "$(dirname "$0")/objects.sh"
ephemera() { "$EPHEMERA" "$@"; }

JOB="$SCRATCH/job.toml"
save() { # machine key content [branch]
  printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "deps"\nrules = ["out/**/*"]\nepoch = 1\ncache_key = "%s"\n' "$2" > "$JOB"
  machine "$1"
  mkdir -p "$M/work/job/out"; echo "$3" > "$M/work/job/out/f"
  ctx "${4:-dev}" pull_request "job-$1"
  eph post --job "$JOB" --status 0 2>/dev/null
  expect_result post deps saved
}
manifest_of() { obj_keys | grep "/$1/.*\.json$" | grep -v _invalidations; }

# A fixed key saved three times: the two older saves are superseded. Within the grace
# period gc frees nothing and says why; past it, it frees them without --keep.
save s1 fixed one
save s2 fixed two
save s3 fixed three
ephemera gc --dry-run > "$SCRATCH/young.txt"
grep -q '^would free 0 objects' "$SCRATCH/young.txt" || fail "young saves: $(cat "$SCRATCH/young.txt")"
grep -q '^kept 1 restorable save$' "$SCRATCH/young.txt" || fail "no kept line: $(cat "$SCRATCH/young.txt")"
grep -q '^kept 2 saves superseded less than --grace 1h ago' "$SCRATCH/young.txt" ||
  fail "the grace period is not named: $(cat "$SCRATCH/young.txt")"
ephemera gc --grace 0s --keep 2 | grep -q 'kept 1 superseded save within --keep 2' ||
  fail "--keep 2 did not keep the one before the newest"
ephemera gc --grace 0s > "$SCRATCH/gc.txt"
grep -q 'superseded by the save of' "$SCRATCH/gc.txt" || fail "superseded: $(cat "$SCRATCH/gc.txt")"
left=$(ephemera ls --json | /usr/bin/python3 -c 'import json,sys; print(" ".join(r["job_id"] for r in json.load(sys.stdin)))')
[ "$left" = "job-s3" ] || fail "gc left: $left"

# An archive whose manifest cannot be read (a newer format, a wrong type, a truncated body)
# is not an orphan: gc leaves it and says so.
save n1 newer a; save n2 wrongtype b; save n3 truncated c
forge "$(manifest_of newer)" "$(manifest_of newer)" 'format="ephemera-manifest/2"'
forge "$(manifest_of wrongtype)" "$(manifest_of wrongtype)" 'files="many"'
obj_get "$(manifest_of truncated)" | head -c 100 > "$SCRATCH/truncated"
obj_put "$(manifest_of truncated)" "$SCRATCH/truncated"
obj_keys | grep -E '/(newer|wrongtype|truncated)/.*\.tar\.zst$' > "$SCRATCH/unreadable"
[ "$(wc -l < "$SCRATCH/unreadable")" = 3 ] || fail "three archives expected"
ephemera gc --grace 0s > "$SCRATCH/gc.txt" 2>/dev/null
while read -r key; do
  obj_keys | grep -qxF "$key" || fail "gc deleted $key, whose manifest it could not read"
done < "$SCRATCH/unreadable"
grep -q 'kept 3 manifest objects that could not be read' "$SCRATCH/gc.txt" ||
  fail "gc does not say what it could not read: $(cat "$SCRATCH/gc.txt")"

# A dry run writes nothing to the store: the same objects, and (local) not even a probe
# written and removed again.
save d1 dry one; save d2 dry two
before=$(obj_sums)
[ "${STORE_KIND:-local}" = local ] && stamp_before=$(stat -c %y "$STORE/v1")
ephemera gc --grace 0s --dry-run > "$SCRATCH/dry.txt" 2>/dev/null
grep -q '^would free [1-9]' "$SCRATCH/dry.txt" || fail "dry run: $(cat "$SCRATCH/dry.txt")"
[ "$(obj_sums)" = "$before" ] || fail "a dry run changed the store"
if [ "${STORE_KIND:-local}" = local ]; then
  [ "$(stat -c %y "$STORE/v1")" = "$stamp_before" ] || fail "a dry run wrote into the store"
fi

# A save whose manifest names an archive outside its own name is not restorable.
save o1 outside one
m=$(manifest_of outside)
other=$(obj_keys | grep '/dry/.*\.tar\.zst$' | head -n 1)
forge "$m" "${m%.json}-copy.json" "archive=\"$other\""
ephemera ls --json > "$SCRATCH/ls.json"
/usr/bin/python3 - "$SCRATCH/ls.json" <<'PY'
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["manifest_object"].endswith("-copy.json")]
assert all(not r["restorable"] for r in rows), rows
PY

# Sizes forged to wrap a total do not: ls's totals stop at the largest size.
for i in 1 2; do
  forge "$m" "${m%.json}-big$i.json" "archive=\"${m%.json}-big$i.tar.zst\"" \
    'compressed_size=9223372036854775808'
done
ephemera ls 2>/dev/null | grep '^total: ' | grep -q 'TiB' || fail "ls totals wrapped: $(ephemera ls | tail -n 3)"

# What a store holds is escaped on the way to a terminal.
save e1 escape one "$(printf 'dev\033[31mred')"
ephemera ls > "$SCRATCH/ls.txt"
grep -q "$(printf '\033')" "$SCRATCH/ls.txt" && fail "ls printed a raw escape byte"
grep -qF 'dev\x1b[31mred' "$SCRATCH/ls.txt" || fail "the branch is not shown escaped"

# invalidate of no repository hides nothing, so it is a usage error.
code=0
ephemera invalidate --repository "" 2> "$SCRATCH/inv.err" || code=$?
[ "$code" = 2 ] || fail "invalidate --repository '' exited $code"
ephemera gc --keep 0 2>/dev/null && fail "--keep 0 was accepted"
echo "retention: ok"
