# With signing on, a store writer without the key plants forged manifests and markers: gc,
# run as an operator would (no grace, a budget), leaves every live signed save of another
# repository and a file outside the store untouched; ls and pre agree the saves are live.
. "$(dirname "$0")/../lib.sh"
# These saves are single archives (EPHEMERA_FORMAT=archive), the format this script forges
# and inspects object by object; stores keep holding and restoring them.
export EPHEMERA_FORMAT=archive
. "$(dirname "$0")/objects.sh"
export EPHEMERA_SIGNING_KEY=operator-secret

JOB="$SCRATCH/job.toml"
write_job() { # key
  printf 'name = "j"\nvariety = "basic"\n[[persist]]\nname = "deps"\nrules = ["out/**/*"]\n' > "$JOB"
  printf 'epoch = 1\ncache_key = "%s"\n' "$1" >> "$JOB"
}
save() { # machine key content
  write_job "$2"
  machine "$1"
  mkdir -p "$M/work/job/out"; echo "$3" > "$M/work/job/out/f"
  ctx main-dev pull_request "job-$1"
  eph post --job "$JOB" --status 0 2>/dev/null
  expect_result post deps saved
}
save s1 k1 one
save s2 k2 two
obj_sums | { grep -v "^v1/_events/" || true; } > "$SCRATCH/victims" # the saves, not the stats records
[ "$(wc -l < "$SCRATCH/victims")" = 4 ] || fail "expected two saves: $(cat "$SCRATCH/victims")"
m1=$(awk '$1 ~ /\/k1\/.*\.json$/ {print $1}' "$SCRATCH/victims")
a1=$(awk '$1 ~ /\/k1\/.*\.tar\.zst$/ {print $1}' "$SCRATCH/victims")
[ -n "$m1" ] && [ -n "$a1" ] || fail "no save of k1: $(cat "$SCRATCH/victims")"
echo precious > "$SCRATCH/precious"
outside_put "$SCRATCH/precious"
outside=$(outside_sum)

# The forgeries, each under the forger's own repository unless said otherwise.
evil='v1/evil~2Ffork/~/deps'
forge "$m1" "$evil/e1/k/20260101T000000.000000Z-00000001.json" \
  'repository="evil/fork"' "archive=\"$evil/e1/k/20260101T000000.000000Z-00000001.tar.zst\"" \
  'compressed_size=4611686018427387904'                        # a huge size
forge "$m1" "$evil/e0/k/20260101T000000.000000Z-00000002.json" \
  'repository="evil/fork"' 'epoch=0' "archive=\"$a1\""  # another save's archive
forge "$m1" "$evil/e0/k/20260101T000000.000000Z-00000003.json" \
  'repository="evil/fork"' 'epoch=0' "archive=\"$OUTSIDE_KEY\""  # outside the store
forge "$m1" "$evil/e1/k/20260101T000000.000000Z-00000004.json" \
  'epoch=99'                                                    # acme/widget at epoch 99
forge "$m1" "${m1%.json}-newer.json" "archive=\"${a1%.tar.zst}-newer.tar.zst\"" \
  'compressed_size=4611686018427387904'                        # in place, unsigned
printf '{"repository": "acme/widget", "target": "", "name": "", "reason": "forged", "created": "2099-01-01T00:00:00.000000Z"}\n' > "$SCRATCH/marker"
obj_put 'v1/_invalidations/evil~2Ffork/20990101T000000.000000Z-00000005.json' "$SCRATCH/marker"
obj_put 'v1/_invalidations/acme~2Fwidget/20990101T000000.000000Z-00000006.json' "$SCRATCH/marker"

# ls flags the forgeries and keeps calling the saves restorable.
ephemera() { "$EPHEMERA" "$@"; }
ephemera ls --json > "$SCRATCH/ls.json" 2> "$SCRATCH/ls.err"
/usr/bin/python3 - "$SCRATCH/ls.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
real = [r for r in rows if r["job_id"] in ("job-s1", "job-s2") and r.get("signature")]
assert len(real) == 2 and all(r["restorable"] for r in real), rows
assert not any(r["restorable"] for r in rows if not r.get("signature")), rows
PY
grep -q 'ignoring invalidation .*unsigned, and signing is on' "$SCRATCH/ls.err" ||
  fail "an unsigned marker is not flagged: $(cat "$SCRATCH/ls.err")"

ephemera gc --grace 0s --max-bytes 100MiB > "$SCRATCH/gc.txt" 2> "$SCRATCH/gc.err" ||
  fail "gc failed: $(cat "$SCRATCH/gc.err")"
cat "$SCRATCH/gc.txt"
obj_sums | { grep -v "^v1/_events/" || true; } > "$SCRATCH/after"
while read -r line; do
  grep -qxF "$line" "$SCRATCH/after" || fail "gc touched a live signed save: $line"
done < "$SCRATCH/victims"
[ "$(outside_sum)" = "$outside" ] || fail "gc deleted a file outside the store"
grep -q 'takes no part' "$SCRATCH/gc.txt" || fail "gc did not remove or name a forgery"

# The saves are still restored.
for k in k1 k2; do
  write_job "$k"
  machine "after-$k"; ctx main-dev pull_request
  eph pre --job "$JOB" 2>/dev/null
  expect_result pre deps hit
done

# A marker made by invalidate is signed, and counts.
ephemera invalidate --repository acme/widget --reason "signed by the operator" | grep -q signed ||
  fail "invalidate does not say the marker is signed"
machine hidden; ctx main-dev pull_request
eph pre --job "$JOB" 2>/dev/null
expect_result pre deps miss
echo "forgeries: ok"
