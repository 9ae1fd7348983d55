# Manifests a store writer forged or moved, planted straight into the store: one that names
# a file outside its own archive object, one copied into the next epoch's prefix, one with a
# negative size. Each is refused where it is read, with a warning naming it, and the
# restore takes the real save instead; gc never touches what a forged manifest names.
. "$(dirname "$0")/../lib.sh"
# These saves are single archives (EPHEMERA_FORMAT=archive), the format this script forges
# and inspects object by object; stores keep holding and restoring them.
export EPHEMERA_FORMAT=archive
. "$(dirname "$0")/../raw_store.sh"

JOB="$SCRATCH/job.toml"
deps_job "$JOB"

# 1. The newest manifest's archive field names a file elsewhere: outside the store
# (local) or another object of the bucket (s3). It holds a valid archive with the true
# size and digest, so only where it lies gives it away.
use_store moved
save_from good feature good.o
good=$(the_manifest)
save_from evil evil pwned
evil=$(newest_manifest_besides "$good")
evil_archive=${evil%.json}.tar.zst
raw_get "$evil" "$SCRATCH/forged.json"
raw_get "$evil_archive" "$SCRATCH/outside.tar.zst"
raw_rm "$evil_archive"
if [ "$STORE_KIND" = local ]; then
  elsewhere="$SCRATCH/outside.tar.zst"
else
  elsewhere=elsewhere/outside.tar.zst
  raw_put "$SCRATCH/outside.tar.zst" "$elsewhere"
fi
json_set "$SCRATCH/forged.json" "archive=\"$elsewhere\""
raw_put "$SCRATCH/forged.json" "$evil"
restore_on two
[ ! -e "$M/work/job/target/pwned" ] || fail "restored the archive a moved manifest names"
[ -e "$M/work/job/target/good.o" ] || fail "the real save was not restored"
expect_result pre deps hit
grep -q "ignoring manifest .*${evil##*/}: its archive '$elsewhere' is not its own object" \
  "$SCRATCH/two.err" || fail "no warning naming the moved manifest"
"$EPHEMERA" ls 2>/dev/null | grep -q pwned && fail "ls lists the moved manifest"
# gc, told to delete everything, deletes the real save and leaves what the forgery names.
"$EPHEMERA" gc --max-bytes 0 --grace 0s >/dev/null 2>&1 || fail "gc failed"
if [ "$STORE_KIND" = local ]; then
  [ -e "$elsewhere" ] || fail "gc deleted the file a forged manifest names"
else
  raw_ls | grep -qx "$elsewhere" || fail "gc deleted the object a forged manifest names"
fi

# 2. A manifest and its archive copied into the next epoch's prefix, signature and all:
# the epoch bump must still start from scratch.
use_store epoch
export EPHEMERA_SIGNING_KEY=k3y
save_from old feature old.o
old=$(the_manifest)
raw_get "$old" "$SCRATCH/m.json"
raw_get "${old%.json}.tar.zst" "$SCRATCH/a.tar.zst"
raw_put "$SCRATCH/m.json" "$(echo "$old" | sed 's|/e1/|/e2/|')"
raw_put "$SCRATCH/a.tar.zst" "$(echo "${old%.json}.tar.zst" | sed 's|/e1/|/e2/|')"
deps_job "$JOB"
sed -i 's/^epoch = 1$/epoch = 2/' "$JOB"
restore_on bumped
expect_result pre deps miss
[ ! -e "$M/work/job/target/old.o" ] || fail "an epoch bump restored the old epoch's save"
grep -q "ignoring manifest .*/e2/.*: its scope and key say it belongs in '.*/e1/deps/'" \
  "$SCRATCH/bumped.err" || fail "no warning naming the copied manifest"
unset EPHEMERA_SIGNING_KEY
deps_job "$JOB"

# 3. A negative size, which used to wrap to 2^64-1: refused as malformed, so the restore
# takes the older, sound save instead of failing on the forgery.
use_store negative
save_from first feature first.o
first=$(the_manifest)
save_from second feature second.o
second=$(newest_manifest_besides "$first")
raw_get "$second" "$SCRATCH/neg.json"
json_set "$SCRATCH/neg.json" 'compressed_size=-1'
raw_put "$SCRATCH/neg.json" "$second"
restore_on three
expect_result pre deps hit
[ -e "$M/work/job/target/first.o" ] || fail "the sound save was not restored"
grep -q "ignoring manifest .*${second##*/}: manifest field 'compressed_size' is -1, not a whole number" \
  "$SCRATCH/three.err" || fail "no warning naming the manifest with a negative size"
echo "forged: ok"
