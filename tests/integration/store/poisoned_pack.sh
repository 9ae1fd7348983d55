# A store writer replaces a pack of the newest content-addressed save with other bytes of the
# same length. pre on the next machine refuses that save (a miss: it is the only one); post
# of that job does not build on it (a save references its base's packs without reading them,
# so it would carry the bad pack into every later save of the scope): it says its base was
# passed over and saves in full, under packs of other names; the machine after restores that
# save byte for byte.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../raw_store.sh"
use_store poisoned
[ "${STORE_KIND:-local}" != s3 ] || on_exit 's3obj rmtree "$STORE/" > /dev/null 2>&1'

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
head -c 300000 /dev/urandom > "$SCRATCH/blob"
# build: the job's output, the same on every machine.
build() {
  mkdir -p "$M/work/job/target"
  echo "a.o" > "$M/work/job/target/a.o"
  cp "$SCRATCH/blob" "$M/work/job/target/blob"
}

machine first; ctx feature pull_request job-first; build
eph post --job "$JOB" --status 0 2> /dev/null
expect_result post deps saved
raw_ls | grep '/packs/.*\.pack$' > "$SCRATCH/first.packs"
[ "$(grep -c . "$SCRATCH/first.packs")" = 1 ] || fail "expected one pack: $(cat "$SCRATCH/first.packs")"
pack=$(cat "$SCRATCH/first.packs")
size=$(raw_get "$pack" "$SCRATCH/pack" && stat -c %s "$SCRATCH/pack")
head -c "$size" /dev/urandom > "$SCRATCH/other"
raw_put "$SCRATCH/other" "$pack"

# The next job: its pre refuses the save, it builds the same output, its post saves.
machine second; ctx feature pull_request job-second
eph pre --job "$JOB" 2> "$SCRATCH/second-pre.err" || fail "pre failed: $(cat "$SCRATCH/second-pre.err")"
case $(result_of pre deps) in miss | failed) ;; *) fail "pre restored a save whose pack lies" ;; esac
build
eph post --job "$JOB" --status 0 2> "$SCRATCH/second-post.err" ||
  fail "post failed: $(cat "$SCRATCH/second-post.err")"
expect_result post deps saved
expected=$(listing "$M/work/job")
grep -q "saved 'deps'.*the base .* was passed over: its restore was refused here (.*$(basename "$pack" .pack).*); saved in full" \
  "$SCRATCH/second-post.err" ||
  fail "post's summary does not say it passed over the refused base: $(cat "$SCRATCH/second-post.err")"
[ -n "$(LC_ALL=C comm -13 "$SCRATCH/first.packs" <(raw_ls | grep '/packs/.*\.pack$'))" ] ||
  fail "post uploaded no pack: it built on the refused save"
echo "post passed over the refused save and saved in full"

# The machine after restores the new save, exactly.
machine third; ctx feature pull_request job-third
eph pre --job "$JOB" 2> "$SCRATCH/third.err" || fail "pre failed: $(cat "$SCRATCH/third.err")"
expect_result pre deps hit
[ "$(listing "$M/work/job")" = "$expected" ] ||
  fail "the restored tree is not the one saved: $(cat "$SCRATCH/third.err")"
echo "poisoned_pack: ok"
