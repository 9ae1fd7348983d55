# invalidate through a broker: only an operator's token writes a marker. A fork's token and
# a trusted job's token are refused, hide nothing and say why (a job that could invalidate
# could make every other job of its repository go cold). The
# operator's narrowed marker is signed by the broker with its key, so a job restoring through
# the broker passes over exactly that key's saves, saying why, and a store writer who
# rewrites the marker's key has a marker that counts for nothing.
. "$(dirname "$0")/lib.sh"

start_broker b1
JOB="$SCRATCH/job.toml"
save() { # KEY JOB_ID
  deps_job "$JOB"
  sed -i "s/^cache_key = .*/cache_key = \"$1\"/" "$JOB"
  machine "$2"; mkdir -p "$M/work/job/target"; echo "$1" > "$M/work/job/target/f"
  ctx feature pull_request "$2"
  TOKEN=$(token)
  beph post --job "$JOB" --status 0 2> /dev/null
  expect_result post deps saved
}
save ka job-a
save kb job-b
restorable() { # as the operator sees it, with the broker's public key
  EPHEMERA_PUBLIC_KEY="$KEYS/broker.pem.pub" "$EPHEMERA" --store "$STORE" ls --json 2> /dev/null |
    /usr/bin/python3 -c 'import json,sys; print(" ".join(sorted(r["key"] for r in json.load(sys.stdin) if r["restorable"])))'
}
[ "$(restorable)" = "ka kb" ] || fail "before: $(restorable)"

# 1. A fork's token and a trusted job's token: refused, nothing written, nothing hidden.
ctx feature pull_request job-fork
for who in fork trusted; do
  case $who in
    fork) TOKEN=$(token --untrusted --origin pr-7) ;;
    trusted) TOKEN=$(token) ;;
  esac
  set +e
  on_machine "$EPHEMERA" invalidate --repository acme/widget --reason "from a $who job" \
    > /dev/null 2> "$SCRATCH/inv.err"
  code=$?
  set -e
  [ "$code" = 1 ] || fail "a $who token's invalidate: exit $code, expected 1"
  grep -q "HTTP 403 .*through a broker only an operator's token may" "$SCRATCH/inv.err" ||
    fail "a $who token's invalidate does not say why: $(cat "$SCRATCH/inv.err")"
done
! store_objects | grep -q "_invalidations" || fail "a job's token wrote a marker: $(store_objects)"
[ "$(restorable)" = "ka kb" ] || fail "a job's token hid saves: $(restorable)"

# 2. The operator's marker for one key, signed by the broker.
TOKEN=$("$EPHEMERA" token --key "$KEYS/broker.pem" --operator)
on_machine "$EPHEMERA" invalidate --repository acme/widget --key ka --reason poisoned > "$SCRATCH/inv.txt" ||
  fail "the operator's invalidate through the broker"
grep -q "hid 1 save:" "$SCRATCH/inv.txt" || fail "the operator's invalidate: $(cat "$SCRATCH/inv.txt")"
[ "$(restorable)" = "kb" ] || fail "after --key ka: $(restorable)"
for key in ka kb; do
  deps_job "$JOB"
  sed -i "s/^cache_key = .*/cache_key = \"$key\"/" "$JOB"
  machine "restore-$key"; ctx feature pull_request "job-r-$key"
  TOKEN=$(token)
  beph pre --job "$JOB" 2> "$SCRATCH/pre.err"
  case $key in
    ka) expect_result pre deps miss
        grep -q "invalidated at .* for key 'ka': poisoned" "$SCRATCH/pre.err" ||
          fail "the miss does not say why: $(cat "$SCRATCH/pre.err")" ;;
    kb) expect_result pre deps hit ;;
  esac
done

# 3. A store writer widens the marker to another key: its signature no longer holds, and
# the marker is ignored, not obeyed.
marker=$(store_objects | grep "_invalidations/.*\.json$" | head -1)
case "$STORE_KIND" in
  local) sed -i 's/"key": "ka"/"key": "kb"/' "$STORE/$marker" ;;
  s3) s3obj get "$STORE/$marker" - | sed 's/"key": "ka"/"key": "kb"/' | s3obj put - "$STORE/$marker" ;;
esac
[ "$(restorable)" = "ka kb" ] || fail "a rewritten marker was obeyed: $(restorable)"
echo "broker invalidate: ok"
