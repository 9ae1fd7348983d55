# Several jobs save the same key at once and others restore it meanwhile: every save
# lands whole, every manifest is valid, every restore is byte-identical to one complete
# save, and nobody's job fails.
. "$(dirname "$0")/../lib.sh"

JOB="$SCRATCH/job.toml"
deps_job "$JOB"

n=6
for i in $(seq 1 $n); do
  machine "saver$i"
  mkdir -p "$M/work/job/target/sub"
  head -c 400000 /dev/urandom > "$M/work/job/target/blob"
  for f in $(seq 1 40); do echo "job $i file $f" > "$M/work/job/target/sub/f$f"; done
  (cd "$M/work/job/target" && find . -type f -exec sha256sum {} + | LC_ALL=C sort) > "$SCRATCH/sums$i"
done

# All the saves at once, and restores racing them.
pids=""
for i in $(seq 1 $n); do
  M="$SCRATCH/saver$i"
  ( ctx feature pull_request "saver-$i"; eph post --job "$JOB" --status 0 >/dev/null 2>"$M.err" ) &
  pids="$pids $!"
  machine "reader$i"
  ( ctx feature pull_request "reader-$i"; eph pre --job "$JOB" >/dev/null 2>"$M.err" ) &
  pids="$pids $!"
done
for p in $pids; do wait "$p" || fail "a hook failed while others saved the same key"; done

for i in $(seq 1 $n); do
  M="$SCRATCH/saver$i"
  expect_result post deps saved
done
"$EPHEMERA" ls --json > "$SCRATCH/ls.json"
/usr/bin/python3 - "$SCRATCH/ls.json" "$n" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
rows = rows if isinstance(rows, list) else rows.get("archives", rows)
assert len(rows) == int(sys.argv[2]), f"{len(rows)} saves listed, wanted {sys.argv[2]}"
PY

# Every reader got nothing (it started first) or exactly one saver's tree.
check_tree() {
  [ -d "$M/work/job/target" ] || return 0
  (cd "$M/work/job/target" && find . -type f -exec sha256sum {} + | LC_ALL=C sort) > "$SCRATCH/got"
  for i in $(seq 1 $n); do cmp -s "$SCRATCH/got" "$SCRATCH/sums$i" && return 0; done
  fail "$M restored a tree that is no complete save"
}
for i in $(seq 1 $n); do M="$SCRATCH/reader$i"; check_tree; done

# After the dust settles a new machine restores the newest save, whole.
machine late
ctx feature pull_request late
eph pre --job "$JOB" >/dev/null
expect_result pre deps hit
check_tree
[ -d "$M/work/job/target" ] || fail "nothing restored after the saves"
echo "concurrent: ok"
