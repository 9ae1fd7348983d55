# kill -9 of a broker in the middle of an upload publishes nothing torn: the job goes on (a
# warning, exit 0), the store holds no manifest, no index and no part of an object, and a
# restore through a second broker is a clean miss; the next save through it lands whole.
# On the local store the broker is killed while it spools a pack; on S3 while the client
# sends presigned parts straight to the store, which the dead broker then cannot complete.
. "$(dirname "$0")/lib.sh"
# What this leaves on S3 (an upload no one completed among it) goes at the end.
if [ "$STORE_KIND" = s3 ]; then on_exit clean_s3; fi
start_broker victim --verbose
VICTIM=$BROKER
victim_pid=$BROKER_PID
JOB="$SCRATCH/job.toml"
deps_job "$JOB" 'level = 1'
machine first
mkdir -p "$M/work/job/target"
for i in 1 2 3 4; do head -c $((32 << 20)) /dev/urandom > "$M/work/job/target/f$i"; done
ctx feature pull_request job-1
TOKEN=$(token)
beph post --job "$JOB" --status 0 2>"$SCRATCH/post.err" &
post=$!
# Once the upload is under way (the broker's spool has the body's first bytes, or it handed
# out the parts' links), kill it.
under_way() {
  case "$STORE_KIND" in
    local) [ -n "$(find /proc/"$victim_pid"/fd -lname '*ephemera-broker.*' 2>/dev/null)" ] ;;
    s3) grep -q "presigned part(s)" "$SCRATCH/victim.log" ;;
  esac
}
spooling=
for _ in $(seq 400); do
  under_way && spooling=1 && break
  sleep 0.05
done
kill -9 "$victim_pid"
[ -n "$spooling" ] || fail "the upload never reached the broker"
wait "$post" || fail "post failed the job when the broker died: $(cat "$SCRATCH/post.err")"
grep -q "unable to save" "$SCRATCH/post.err" || fail "post did not warn: $(cat "$SCRATCH/post.err")"
store_objects | grep -q '\.json$' && fail "a manifest was published: $(store_objects)"
[ -z "$(store_objects | grep '\.tar\.zst$')" ] || fail "part of an archive reached the store: $(store_objects)"
store_objects | grep -q '\.idx$' && fail "an index was published: $(store_objects)"
# A pack that reached the store before the kill is whole: its bytes are its name's.
for pack in $(store_objects | grep '\.pack$'); do
  case "$STORE_KIND" in
    local) cp "$STORE/$pack" "$SCRATCH/pack" ;;
    s3) s3obj get "$STORE/$pack" "$SCRATCH/pack" ;;
  esac
  [ "$(sha256sum < "$SCRATCH/pack" | cut -c1-64)" = "$(basename "$pack" .pack)" ] || fail "a torn pack: $pack"
done
# Its unlinked spool file went with it: nothing of the upload is left on the broker's machine.
ls /tmp/ephemera-broker.* 2>/dev/null && fail "the spool kept a file"

start_broker second
machine second
ctx feature pull_request job-2
TOKEN=$(token)
beph pre --job "$JOB"
expect_result pre deps miss
machine third
mkdir -p "$M/work/job/target"; cp "$SCRATCH/first/work/job/target/f1" "$M/work/job/target/"
beph post --job "$JOB" --status 0
expect_result post deps saved
echo "broker killed ($STORE_KIND): ok"
