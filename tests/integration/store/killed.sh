# kill -9 at any moment of a save or a restore: the store never shows a torn save, the
# next restore is whole and clean, and gc removes what the killed processes left.
. "$(dirname "$0")/../lib.sh"

JOB="$SCRATCH/job.toml"
deps_job "$JOB" "level = 19"
machine source
mkdir -p "$M/work/job/target/many"
head -c 30000000 /dev/urandom > "$M/work/job/target/blob"
for f in $(seq 1 300); do echo "file $f" > "$M/work/job/target/many/f$f"; done
(cd "$M/work/job/target" && find . -type f -exec sha256sum {} + | LC_ALL=C sort) > "$SCRATCH/want"
SRC=$M

# hooks_at M ARGS...: ephemera on machine M, in the background; prints its pid.
bg() { local m=$1; shift; "$EPHEMERA" "$@" --root "$m" --workdir /work/job --home /home/build \
  --state-dir "$m/state" >/dev/null 2>&1 & echo $!; }

verify_restore() { # a fresh machine restores either nothing or the whole save
  machine "check$1"
  eph pre --job "$JOB" >/dev/null 2>"$M.err" || fail "pre failed after a killed save"
  local r; r=$(result_of pre deps)
  case "$r" in
    hit) (cd "$M/work/job/target" && find . -type f -exec sha256sum {} + | LC_ALL=C sort) > "$SCRATCH/got"
         cmp -s "$SCRATCH/got" "$SCRATCH/want" || fail "a restore after a killed save is not the whole save" ;;
    miss) ;;
    *) fail "pre after a killed save: $r ($(cat "$M.err"))" ;;
  esac
}

ctx feature pull_request killer
i=0
for delay in 0.05 0.3 0.6 1.0 1.5 2.5; do
  i=$((i + 1))
  pid=$(bg "$SRC" post --job "$JOB" --status 0)
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  verify_restore "$i"
done

# One save that completes, then restores killed part-way; the next restore is whole and
# leaves nothing of the killed one behind.
eph_src() { "$EPHEMERA" "$@" --root "$SRC" --workdir /work/job --home /home/build --state-dir "$SRC/state2"; }
eph_src post --job "$JOB" --status 0 >/dev/null 2>&1
machine victim
for delay in 0.05 0.2 0.5; do
  pid=$(bg "$M" pre --job "$JOB")
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
# The state dir keeps the killed restores' journals (what each staged), nothing else.
find "$M/state" -mindepth 1 -maxdepth 1 ! -name staging -exec rm -rf {} +
eph pre --job "$JOB" >/dev/null 2>"$M.err" || fail "pre after killed restores failed"
expect_result pre deps hit
(cd "$M/work/job/target" && find . -type f -exec sha256sum {} + | LC_ALL=C sort) > "$SCRATCH/got"
diff "$SCRATCH/got" "$SCRATCH/want" || fail "the restore after killed restores is not exactly the save"
find "$M/work/job" \( -name '*.tmp.*' -o -name '.ephemera-*' \) | grep -q . && fail "leftovers of killed restores remain"
find "$M/state/staging" -type f | grep -q . && fail "a journal outlived the restores"

# A multipart upload a killed save never finished (made here with awscli, so there is
# one whatever the timing of the kills above).
if [ "$STORE_KIND" = s3 ]; then
  prefix=${STORE#s3://$EPHEMERA_TEST_S3_BUCKET/}
  /usr/bin/aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" s3api create-multipart-upload \
    --bucket "$EPHEMERA_TEST_S3_BUCKET" --key "$prefix/v1/acme~2Fwidget/~/deps/e1/deps/stale.tar.zst" >/dev/null
fi

# gc with no grace removes every leftover of the killed saves; what stays is whole.
"$EPHEMERA" gc --grace 0s > "$SCRATCH/gc.txt" 2>&1 || fail "gc failed: $(cat "$SCRATCH/gc.txt")"
"$EPHEMERA" gc --grace 0s --dry-run > "$SCRATCH/gc2.txt" 2>&1
grep -qi "orphan" "$SCRATCH/gc2.txt" && fail "orphans left after gc: $(cat "$SCRATCH/gc2.txt")"
if [ "$STORE_KIND" = local ]; then
  find "$STORE" -name '.ephemera-*' | grep -q . && fail "temporary files left in the store after gc"
  for a in $(find "$STORE" -name '*.tar.zst'); do
    [ -f "${a%.tar.zst}.json" ] || fail "archive without a manifest after gc: $a"
  done
fi
if [ "$STORE_KIND" = s3 ]; then
  left=$(/usr/bin/aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" s3api list-multipart-uploads \
    --bucket "$EPHEMERA_TEST_S3_BUCKET" --prefix "$prefix/" --query 'length(Uploads || `[]`)' --output text)
  [ "$left" = 0 ] || fail "$left multipart uploads left after gc"
fi
verify_restore final
echo "killed: ok"
