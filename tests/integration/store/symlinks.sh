# A store writer's symlinks in a local store (a scope directory moved out and linked back,
# a repository directory and an object that point elsewhere) never let gc delete, pre read
# or post write a file outside the store; the commands warn and exit as they would for any
# other cache problem.
. "$(dirname "$0")/../lib.sh"
[ "${STORE_KIND}" = local ] || fail "this test needs STORE_KIND=local"

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
machine a; ctx feature pull_request job-a
mkdir -p "$M/work/job/target"
echo "saved bytes" > "$M/work/job/target/f"
eph post --job "$JOB" --status 0 2> "$SCRATCH/post.err" ||
  fail "post failed: $(cat "$SCRATCH/post.err")"
expect_result post deps saved

OUT="$SCRATCH/outside"
mkdir -p "$OUT"
# The whole save, moved out of the store with a symlink left in its place.
mv "$STORE/v1/acme~2Fwidget/~/deps" "$OUT/deps"
ln -s "$OUT/deps" "$STORE/v1/acme~2Fwidget/~/deps"
# Beside it, what gc would take for an archive no manifest names and a killed save's file.
keydir="$OUT/deps/e1/deps"
echo victim > "$keydir/20200101T000000.000000Z-00000000.tar.zst"
echo victim > "$keydir/.ephemera-0123456789abcdef-00000000"
# A repository directory that points outside, and an object that is a link to a file.
mkdir -p "$OUT/repo/~/deps/e1/deps"
echo victim > "$OUT/repo/~/deps/e1/deps/20200101T000000.000000Z-11111111.tar.zst"
ln -s "$OUT/repo" "$STORE/v1/acme~2Fother"
echo victim > "$OUT/file"
ln -s "$OUT/file" "$STORE/v1/acme~2Fwidget/~/20200101T000000.000000Z-22222222.tar.zst"
# A second store whose top directory is a link to a directory outside that holds what gc
# deletes: an archive no manifest names and a killed save's temporary file.
STORE2="$SCRATCH/store2"
mkdir -p "$STORE2" "$OUT/top/acme~2Fwidget/~/deps/e1/deps"
echo victim > "$OUT/top/acme~2Fwidget/~/deps/e1/deps/20200101T000000.000000Z-33333333.tar.zst"
echo victim > "$OUT/top/acme~2Fwidget/~/deps/e1/deps/.ephemera-0123456789abcdef-00000001"
ln -s "$OUT/top" "$STORE2/v1"
find "$OUT" -exec touch -h -d '2020-01-01 00:00:00' {} +
snapshot() {
  (cd "$OUT" && find . -printf '%y %m %T@ %p\n' | LC_ALL=C sort &&
    find . -type f -exec sha256sum {} + | LC_ALL=C sort)
}
snapshot > "$SCRATCH/before"
untouched() {
  snapshot > "$SCRATCH/after"
  diff "$SCRATCH/before" "$SCRATCH/after" >&2 || fail "$1 changed files outside the store (above)"
}

# gc (as cron runs it, with no grace) deletes nothing through the links and warns once.
for store in "$STORE" "$STORE2"; do
  set +e
  "$EPHEMERA" gc --grace 0s --store "$store" > "$SCRATCH/gc.out" 2> "$SCRATCH/gc.err"
  code=$?
  set -e
  [ "$code" = 0 ] || fail "gc of $store exited $code: $(cat "$SCRATCH/gc.err")"
  untouched "gc of $store"
  grep -q "warning: skipping .* symlink(s) in $store, such as 'v1" "$SCRATCH/gc.err" ||
    fail "gc of $store did not warn about the symlinks: $(cat "$SCRATCH/gc.err")"
  [ "$(grep -c 'skipping .* symlink' "$SCRATCH/gc.err")" = 1 ] ||
    fail "gc warned more than once: $(cat "$SCRATCH/gc.err")"
  # What it may delete is inside the store: the content-addressed index and pack of the save
  # whose manifest was moved out (no manifest in the store names them any more).
  if grep '^deleted ' "$SCRATCH/gc.out" | grep -v "^deleted file://$store/cas1/" >&2; then
    fail "gc of $store deleted something but an index or pack no manifest names (above)"
  fi
done
[ -L "$STORE/v1/acme~2Fwidget/~/deps" ] && [ -L "$STORE2/v1" ] || fail "gc removed a planted link"

# pre on a fresh machine reads nothing through the links: a miss, exit 0, with the warning.
machine b; ctx feature pull_request job-b
set +e
eph pre --job "$JOB" 2> "$SCRATCH/pre.err"
code=$?
set -e
[ "$code" = 0 ] || fail "pre exited $code: $(cat "$SCRATCH/pre.err")"
expect_result pre deps miss
[ ! -e "$M/work/job/target/f" ] || fail "pre restored the save that lies outside the store"
grep -q "symlink" "$SCRATCH/pre.err" ||
  fail "pre did not warn about the symlinks: $(cat "$SCRATCH/pre.err")"
untouched pre

# ls shows nothing of it; post's save is refused (a cache problem: exit 0) and writes
# nothing through the link.
"$EPHEMERA" ls > "$SCRATCH/ls.out" 2> "$SCRATCH/ls.err" ||
  fail "ls failed: $(cat "$SCRATCH/ls.err")"
if grep -q deps "$SCRATCH/ls.out"; then
  fail "ls listed the save outside the store: $(cat "$SCRATCH/ls.out")"
fi
mkdir -p "$M/work/job/target"
echo "new bytes" > "$M/work/job/target/f"
set +e
eph post --job "$JOB" --status 0 2> "$SCRATCH/post2.err"
code=$?
set -e
[ "$code" = 0 ] || fail "post exited $code: $(cat "$SCRATCH/post2.err")"
grep -q "is a symlink" "$SCRATCH/post2.err" ||
  fail "post did not say why: $(cat "$SCRATCH/post2.err")"
untouched post
[ "$(result_of post deps)" != saved ] || fail "post reported a save it could not make"
# --strict turns the refused save into a failure.
set +e
eph post --job "$JOB" --status 0 --strict 2> "$SCRATCH/post3.err"
code=$?
set -e
[ "$code" = 1 ] || fail "post --strict exited $code: $(cat "$SCRATCH/post3.err")"
untouched "post --strict"
