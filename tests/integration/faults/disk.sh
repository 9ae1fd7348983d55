# A full disk and a read-only store never fail the job and never leave half a restore or
# half a save behind. Small tmpfs mounts (this test needs root, as the suite does) stand in
# for a machine's full disk and an operator's read-only store.
. "$(dirname "$0")/../lib.sh"
[ "${STORE_KIND}" = local ] || fail "this test mounts its own local store"
MOUNTS=""
mount_tmpfs() { # mount_tmpfs DIR SIZE
  mkdir -p "$1"
  mount -t tmpfs -o "size=$2" tmpfs "$1" || fail "unable to mount a tmpfs at $1 (the suite runs as root)"
  MOUNTS="$1 $MOUNTS"
}
on_exit 'for m in $MOUNTS; do umount -l "$m" 2>/dev/null || true; done'
used() { df --output=used -B1 "$1" | tail -1; }

JOB="$SCRATCH/job.toml"
deps_job "$JOB"

# The save every restore below wants: 24 MB that does not compress, and small files.
machine src; ctx feature pull_request job-src
mkdir -p "$M/work/job/target/many"
head -c 12000000 /dev/urandom > "$M/work/job/target/a"
head -c 12000000 /dev/urandom > "$M/work/job/target/b"
for f in $(seq 1 200); do echo "file $f" > "$M/work/job/target/many/f$f"; done
eph post --job "$JOB" --status 0 2>/dev/null
expect_result post deps saved
SRC=$M

# 1. The job's disk fills during a cold restore: exit 0, the report says so, the tree and
#    the disk are as before (the staged tree is gone).
machine cold; ctx feature pull_request job-cold
mount_tmpfs "$M/work/job" 16m
echo "the job's own file" > "$M/work/job/mine"
before=$(listing "$M/work/job"); free_before=$(used "$M/work/job")
eph pre --job "$JOB" 2> "$SCRATCH/cold.err" || fail "pre failed the job on a full disk"
expect_result pre deps failed
grep -q "No space left on device" "$SCRATCH/cold.err" || fail "the warning does not say the disk is full: $(cat "$SCRATCH/cold.err")"
[ "$(listing "$M/work/job")" = "$before" ] || fail "a failed restore changed the job's tree"
[ "$(used "$M/work/job")" = "$free_before" ] || fail "a failed restore left bytes on the disk"

# 2. The same over an existing tree (files go in under temporary names): the old files
#    stay exactly as they were.
machine warm; ctx feature pull_request job-warm
mount_tmpfs "$M/work/job" 20m
mkdir -p "$M/work/job/target/many"
echo old > "$M/work/job/target/a"; echo old > "$M/work/job/target/many/f1"
head -c 9000000 /dev/urandom > "$M/work/job/ballast"
before=$(listing "$M/work/job"); free_before=$(used "$M/work/job")
eph pre --job "$JOB" 2> "$SCRATCH/warm.err" || fail "pre failed the job on a full disk"
expect_result pre deps failed
[ "$(listing "$M/work/job")" = "$before" ] || { diff <(echo "$before") <(listing "$M/work/job") >&2; fail "a failed restore over a tree changed it"; }
[ "$(used "$M/work/job")" = "$free_before" ] || fail "a failed restore over a tree left bytes"

# 3. No room for a download. A local store needs none (its archive is verified and
#    unpacked where it lies); from S3 (the suite's server) nothing reaches the job's tree
#    and no temporary is left.
machine dl; ctx feature pull_request job-dl
mount_tmpfs "$M/state/tmp" 4m
eph pre --job "$JOB" 2> "$SCRATCH/dl.err" || fail "pre failed the job"
expect_result pre deps hit
: "${EPHEMERA_TEST_S3_ENDPOINT:?the S3 server of tests/run.sh is not running}"
S3_STORE="s3://$EPHEMERA_TEST_S3_BUCKET/disk-$(basename "$SCRATCH" | tr 'A-Z.' 'a-z-')"
M=$SRC; ctx feature pull_request job-src-s3
# A single archive is downloaded whole before it is unpacked: it needs the room.
EPHEMERA_FORMAT=archive EPHEMERA_S3_ENDPOINT=$EPHEMERA_TEST_S3_ENDPOINT \
  eph post --job "$JOB" --status 0 --store "$S3_STORE" 2>/dev/null
machine dl3; ctx feature pull_request job-dl3
mount_tmpfs "$M/state/tmp" 4m
EPHEMERA_S3_ENDPOINT=$EPHEMERA_TEST_S3_ENDPOINT eph pre --job "$JOB" --store "$S3_STORE" 2> "$SCRATCH/dl3.err" ||
  fail "pre failed the job when the download did not fit"
grep -q "No space left on device" "$SCRATCH/dl3.err" || fail "the warning does not say the disk is full: $(cat "$SCRATCH/dl3.err")"
[ ! -e "$M/work/job/target" ] || fail "a download that did not fit restored files"
[ -z "$(ls -A "$M/state/tmp")" ] || fail "the partial download was left: $(ls -A "$M/state/tmp")"
# A content-addressed save streams from its packs, verified chunk by chunk: it needs none.
S3_CAS="$S3_STORE-cas"
M=$SRC; ctx feature pull_request job-src-s3-cas
EPHEMERA_S3_ENDPOINT=$EPHEMERA_TEST_S3_ENDPOINT eph post --job "$JOB" --status 0 --store "$S3_CAS" 2>/dev/null
machine dl4; ctx feature pull_request job-dl4
mount_tmpfs "$M/state/tmp" 4m
EPHEMERA_S3_ENDPOINT=$EPHEMERA_TEST_S3_ENDPOINT eph pre --job "$JOB" --store "$S3_CAS" 2> "$SCRATCH/dl4.err" ||
  fail "pre failed the job"
expect_result pre deps hit
(cd "$M/work/job/target" && find . -type f -exec sha256sum {} + | sort) > "$SCRATCH/got"
(cd "$SRC/work/job/target" && find . -type f -exec sha256sum {} + | sort) > "$SCRATCH/want"
cmp -s "$SCRATCH/got" "$SCRATCH/want" || fail "the streamed restore with no room in tmp differs"
[ -z "$(ls -A "$M/state/tmp")" ] || fail "the streamed restore left files in tmp: $(ls -A "$M/state/tmp")"

# 4. No room to pack a save: exit 0, nothing published, nothing left.
machine save; ctx feature pull_request job-save
cp -a "$SRC/work/job/target" "$M/work/job/"
echo changed > "$M/work/job/target/many/f1"
# New content that does not fit (a content-addressed save stages only what is new).
head -c 8M /dev/urandom > "$M/work/job/target/many/new-big"
mount_tmpfs "$M/state/tmp" 4m
eph post --job "$JOB" --status 0 2> "$SCRATCH/save.err" || fail "post failed the job when the archive did not fit"
expect_result post deps failed
grep -q "No space left on device" "$SCRATCH/save.err" || fail "the warning does not say the disk is full: $(cat "$SCRATCH/save.err")"
[ -z "$(ls -A "$M/state/tmp")" ] || fail "the partial archive was left: $(ls -A "$M/state/tmp")"
[ "$(find "$STORE" -name '*.json' | wc -l)" = 1 ] || fail "a save that did not fit published something"

# 5. A store an operator made read-only: saves warn and exit 0; restores still work.
RO="$SCRATCH/ro-store"
mount_tmpfs "$RO" 64m
cp -a "$STORE/." "$RO/"
mount -o remount,ro "$RO" || fail "unable to make the store read-only"
export EPHEMERA_STORE="$RO"
machine ro; ctx feature pull_request job-ro
cp -a "$SRC/work/job/target" "$M/work/job/"
echo changed > "$M/work/job/target/many/f2"
eph post --job "$JOB" --status 0 2> "$SCRATCH/ro.err" || fail "post failed the job on a read-only store"
expect_result post deps failed
grep -q "Read-only file system" "$SCRATCH/ro.err" || fail "the warning does not say the store is read-only: $(cat "$SCRATCH/ro.err")"
set +e; eph post --job "$JOB" --status 0 --strict 2>/dev/null; code=$?; set -e
[ "$code" = 1 ] || fail "--strict on a read-only store: exit $code, wanted 1"
machine ro2; ctx feature pull_request job-ro2
eph pre --job "$JOB" 2> "$SCRATCH/ro2.err" || fail "pre failed on a read-only store"
expect_result pre deps hit
(cd "$M/work/job/target" && find . -type f -exec sha256sum {} + | sort) > "$SCRATCH/got"
(cd "$SRC/work/job/target" && find . -type f -exec sha256sum {} + | sort) > "$SCRATCH/want"
cmp -s "$SCRATCH/got" "$SCRATCH/want" || fail "the restore from a read-only store differs"
echo "disk: ok"
