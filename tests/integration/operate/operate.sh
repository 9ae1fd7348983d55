# ls, show, invalidate and gc against a store with real saves.
. "$(dirname "$0")/../lib.sh"
# These saves are single archives (EPHEMERA_FORMAT=archive), the format this script forges
# and inspects object by object; stores keep holding and restoring them.
export EPHEMERA_FORMAT=archive

JOB="$SCRATCH/job.toml"
write_job() { # epoch
  printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "deps"\nrules = ["out/**/*"]\nepoch = %s\ncache_key = "k"\n' "$1" > "$JOB"
}
save() { # machine branch content [epoch]
  write_job "${4:-1}"
  machine "$1"
  mkdir -p "$M/work/job/out"; echo "$3" > "$M/work/job/out/f"
  ctx "$2" pull_request "job-$1"
  eph post --job "$JOB" --status 0 2>/dev/null
  expect_result post deps saved
}
ephemera() { "$EPHEMERA" "$@"; }

save s1 alpha one
save s2 alpha two
save s3 beta three

# ls: a table with totals, and JSON with every manifest field.
ephemera ls > "$SCRATCH/ls.txt"
grep -q '^total: 3 archives' "$SCRATCH/ls.txt" || fail "ls totals: $(cat "$SCRATCH/ls.txt")"
grep -q 'superseded' "$SCRATCH/ls.txt" || fail "ls does not show the superseded save"
ephemera ls --json > "$SCRATCH/ls.json"
/usr/bin/python3 - "$SCRATCH/ls.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 3, rows
for r in rows:
    for k in ("repository", "target", "name", "epoch", "key", "sha256", "compressed_size", "files",
              "created", "job_id", "branch", "trusted", "link", "restorable", "status"):
        assert k in r, (k, r)
assert sum(1 for r in rows if r["restorable"]) == 2, rows
PY
ephemera ls --repository acme/widget --name deps --json | grep -q '"job_id": "job-s3"' || fail "ls filter"
[ "$(ephemera ls --repository other/repo --json | tr -d '[:space:]')" = "[]" ] || fail "ls filter leaks"

# show: by SHA-256 prefix, with the verdict.
sha=$(/usr/bin/python3 -c 'import json,sys; print([r for r in json.load(open(sys.argv[1])) if r["job_id"]=="job-s1"][0]["sha256"][:12])' "$SCRATCH/ls.json")
ephemera show "$sha" > "$SCRATCH/show.txt"
grep -q 'not restorable: superseded' "$SCRATCH/show.txt" || fail "show verdict: $(cat "$SCRATCH/show.txt")"
ephemera show "$sha" --json | grep -q '"restorable": false' || fail "show --json"
set +e
ephemera show deadbeefdeadbeef 2>/dev/null; code=$?
set -e
[ "$code" = 2 ] || fail "show of an unknown archive exited $code"

# invalidate: hidden from pre at once, shown as such by ls.
ephemera invalidate --repository acme/widget --name deps --reason "poisoned toolchain"
machine after; ctx alpha pull_request
write_job 1
eph pre --job "$JOB" 2>/dev/null
expect_result pre deps miss
ephemera ls | grep -q 'invalidated at .*poisoned toolchain' || fail "ls does not show the invalidation"
save s4 alpha four
machine after2; ctx alpha pull_request
eph pre --job "$JOB" 2>/dev/null
expect_result pre deps hit
[ "$(cat "$M/work/job/out/f")" = four ] || fail "a save after the invalidation is not restored"

# gc: the dry run lists exactly what the real run deletes.
save s5 alpha five 2
ephemera gc --grace 0s --keep 1 --dry-run --json > "$SCRATCH/dry.json"
ephemera ls --json > "$SCRATCH/before.json"
ephemera gc --grace 0s --keep 1 --json > "$SCRATCH/real.json"
/usr/bin/python3 - "$SCRATCH/dry.json" "$SCRATCH/real.json" <<'PY'
import json, sys
dry, real = (json.load(open(p)) for p in sys.argv[1:])
assert dry["dry_run"] and not real["dry_run"]
assert [d["object"] for d in dry["deleted"]] == [d["object"] for d in real["deleted"]], (dry, real)
whys = " ".join(d["why"] for d in real["deleted"])
assert "invalidated" in whys and "epoch 1 is below" in whys, whys
assert real["freed_bytes"] > 0
PY
left=$(ephemera ls --json | /usr/bin/python3 -c 'import json,sys; print(" ".join(r["job_id"] for r in json.load(sys.stdin)))')
[ "$left" = "job-s5" ] || fail "gc left: $left"

# A malformed duration or size is a usage error (exit 2) that names the flag.
refused() { # refused FLAG VALUE
  local code=0
  ephemera gc "$1" "$2" 2> "$SCRATCH/bad.err" || code=$?
  [ "$code" = 2 ] || fail "gc $1 '$2' exited $code"
  grep -q -- "$1 '$2'" "$SCRATCH/bad.err" || fail "gc $1 '$2': $(cat "$SCRATCH/bad.err")"
}
refused --grace "30 d"; refused --grace 1.; refused --grace .5h; refused --grace 2x
refused --max-age 1h30m; refused --max-age -1d; refused --max-bytes 4gigs
ephemera gc --grace 1.5h --max-age 2.5w --dry-run > /dev/null || fail "fractional durations refused"

# The grace period protects young saves; --max-bytes and --max-age trim the rest.
save s6 gamma six 2
ephemera gc --max-bytes 1 --json | grep -q '"freed_bytes": 0' || fail "gc touched saves younger than the grace period"
ephemera gc --grace 0s --max-age 1w --json | grep -q '"freed_bytes": 0' || fail "max-age deleted young saves"
ephemera gc --grace 0s --max-bytes 1 > "$SCRATCH/budget.txt"
grep -q 'over --max-bytes' "$SCRATCH/budget.txt" || fail "no budget deletion: $(cat "$SCRATCH/budget.txt")"

# Orphans (an archive with no manifest, as a killed save leaves) go only after the grace period.
save s7 alpha seven 2
if [ "${STORE_KIND:-local}" = local ]; then
  arch=$(find "$STORE" -name '*.tar.zst' | head -n 1)
  cp "$arch" "${arch%.tar.zst}-orphan.tar.zst"
  ephemera gc | grep -q orphan && fail "a young orphan was deleted"
  ephemera gc --grace 0s | grep -q 'no manifest names' || fail "the orphan was not collected"
  [ ! -e "${arch%.tar.zst}-orphan.tar.zst" ] || fail "the orphan is still there"
fi

# gc while a pre restores: the restore succeeds.
save s8 alpha eight 2
for i in 1 2 3 4 5; do save "extra$i" "b$i" "x$i" 2; done
machine during; ctx alpha pull_request
write_job 2
( for i in 1 2 3; do ephemera gc --grace 0s --keep 1 >/dev/null 2>&1; done ) &
gcpid=$!
eph pre --job "$JOB" 2>/dev/null
wait "$gcpid"
expect_result pre deps hit
[ "$(cat "$M/work/job/out/f")" = eight ] || fail "restore during gc"

# A dead store is exit 1 for the operator's commands.
set +e
"$EPHEMERA" ls --store "$SCRATCH/job.toml/store" 2>/dev/null; code=$?
set -e
[ "$code" = 1 ] || fail "ls against a dead store exited $code"
echo "operate: ok"
