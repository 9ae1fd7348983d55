# A stanza whose rules match no file: post saves nothing (an empty archive would be
# restored as a hit, so `if ephemera restore X` would call the cache warm for ever), and an
# archive that holds no file, planted by a store writer or left by an older version, is a
# miss for pre and for an in-job restore.
. "$(dirname "$0")/../lib.sh"
# These saves are single archives (EPHEMERA_FORMAT=archive), the format this script forges
# and inspects object by object; stores keep holding and restoring them.
export EPHEMERA_FORMAT=archive
. "$(dirname "$0")/../raw_store.sh"

JOB="$SCRATCH/job.toml"
deps_job "$JOB"

# 1. Nothing where the rules point, then only an empty directory: skipped, with a warning,
# and the store holds no manifest.
use_store empty
machine one
ctx feature pull_request
eph post --job "$JOB" --status 0 2> "$SCRATCH/one.err"
expect_result post deps skipped
grep -q "matched no file or symlink" "$SCRATCH/one.err" || fail "no warning for an empty set"
report_json | grep -q "nothing to save" || fail "the report does not say why nothing was saved"
mkdir -p "$M/work/job/target/empty"
eph post --job "$JOB" --status 0 2> "$SCRATCH/one.err"
expect_result post deps skipped
raw_ls | grep -q '\.json$' && fail "an empty set was saved: $(raw_ls)"

# 2. An archive holding only a directory, with a true digest and size in its manifest.
save_from two feature real.o
manifest=$(the_manifest)
archive=${manifest%.json}.tar.zst
mkdir -p "$SCRATCH/empty/work/target"
tar --format=pax -C "$SCRATCH/empty" -cf - work/target | zstd -q > "$SCRATCH/empty.tar.zst"
raw_get "$manifest" "$SCRATCH/m.json"
json_set "$SCRATCH/m.json" "sha256=\"$(sha256sum < "$SCRATCH/empty.tar.zst" | cut -d' ' -f1)\"" \
  "compressed_size=$(stat -c %s "$SCRATCH/empty.tar.zst")" unpacked_bytes=0 files=0
raw_put "$SCRATCH/empty.tar.zst" "$archive"
raw_put "$SCRATCH/m.json" "$manifest"

machine three
ctx other pull_request
eph pre --job "$JOB"
expect_result pre deps miss
report_json | grep -q "holds no file or symlink" || fail "the report does not say why it missed"
set +e
eph restore deps --job "$JOB"; code=$?
set -e
[ "$code" = 3 ] || fail "an in-job restore of an empty archive exited $code, not 3 (miss)"
expect_result restore deps miss

validate_report
echo "empty set: ok"
