# Writers whose clocks disagree (libfaketime shifts a process's clock): the save the store
# received last is the one restored, and gc and invalidation go by the store's clock, so a
# fast or slow clock never makes a fresh save look old or an old one look new.
. "$(dirname "$0")/../lib.sh"
command -v faketime >/dev/null || fail "faketime is missing (tools/install-deps.sh test installs it)"
# libfaketime is preloaded; a sanitizer build must not insist on coming first.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
skewed() { local by=$1; shift; faketime -f "$by" "$@"; }
# S3 refuses requests signed more than 15 minutes off its clock, so against it the
# writers are 10 minutes off; a local store takes any clock.
if [ "$STORE_KIND" = s3 ]; then FAST=+10m SLOW=-10m FASTER=+14m; else FAST=+3h SLOW=-3h FASTER=+5h; fi
JOB="$SCRATCH/job.toml"
deps_job "$JOB"
save_from() { # save_from CLOCK CONTENT
  machine "w-$2"; ctx feature pull_request "job-$2"
  mkdir -p "$M/work/job/target"; echo "$2" > "$M/work/job/target/who"
  skewed "$1" "$EPHEMERA" post --job "$JOB" --status 0 --strict --root "$M" --workdir /work/job \
    --home /home/build --state-dir "$M/state" 2>/dev/null || fail "post with the clock at $1 failed"
  expect_result post deps saved
}
restored() { # restored [CLOCK]: what a fresh machine restores
  machine "r-$RANDOM"; ctx feature pull_request "job-r$RANDOM"
  skewed "${1:-+0}" "$EPHEMERA" pre --job "$JOB" --strict --root "$M" --workdir /work/job \
    --home /home/build --state-dir "$M/state" 2>/dev/null || fail "pre failed"
  cat "$M/work/job/target/who" 2>/dev/null || echo "(nothing)"
}
saves() { "$EPHEMERA" ls 2>/dev/null | sed -n 's/^total: \([0-9]*\) archives.*/\1/p'; }

# A writer with a fast clock saves, then one with a slow clock: the slow one's save is the
# newer, and every reader, whatever its clock, restores it.
save_from $FAST fast
sleep 1.2
save_from $SLOW slow
[ "$(restored)" = slow ] || fail "a save with a fast clock outranked a newer save"
[ "$(restored $FASTER)" = slow ] || fail "a reader with a fast clock chose differently"

# gc on a machine faster still: by the store's clock both saves are seconds old, inside
# a 5-minute grace period, so --keep 1 removes nothing yet, and the skew is reported.
skewed $FASTER "$EPHEMERA" gc --keep 1 --grace 5m 2> "$SCRATCH/gc.err" || fail "gc failed: $(cat "$SCRATCH/gc.err")"
grep -q "ahead of the store's" "$SCRATCH/gc.err" || fail "gc did not report its clock's skew: $(cat "$SCRATCH/gc.err")"
[ "$(saves)" = 2 ] || fail "gc with a fast clock removed a fresh save"
# With no grace, from a slow machine, --keep 1 removes the earlier save: the fast writer's.
skewed $SLOW "$EPHEMERA" gc --keep 1 --grace 0s 2>/dev/null || fail "gc failed"
[ "$(saves)" = 1 ] || fail "gc --keep 1 left $(saves) saves"
[ "$(restored)" = slow ] || fail "gc removed the newer save"

# An operator with a slow clock invalidates: the save made before the marker is hidden,
# and one a slow writer makes after it is not.
sleep 1.2
skewed $SLOW "$EPHEMERA" invalidate --repository acme/widget 2>/dev/null || fail "invalidate failed"
[ "$(restored)" = "(nothing)" ] || fail "an invalidation from a slow clock missed an earlier save"
sleep 1.2
save_from $SLOW after
[ "$(restored)" = after ] || fail "a save after the invalidation, from a slow clock, is hidden"

if [ "$STORE_KIND" = s3 ]; then
  # Beyond what S3 accepts: the save is refused with the reason, and the job goes on.
  machine far; ctx feature pull_request job-far
  mkdir -p "$M/work/job/target"; echo far > "$M/work/job/target/who"
  skewed +3h "$EPHEMERA" post --job "$JOB" --status 0 --root "$M" --workdir /work/job --home /home/build \
    --state-dir "$M/state" 2> "$SCRATCH/far.err" || fail "a clock 3 h off failed the job"
  grep -q "RequestTimeTooSkewed.*clock" "$SCRATCH/far.err" || fail "no clear word on the skew: $(cat "$SCRATCH/far.err")"
fi
echo "clock: ok"
