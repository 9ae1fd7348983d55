# A hostile job writes its state dir (it is exported into the job) and its tree: bad
# bookkeeping is a warning naming the file, never a failed hook nor a lost save; a bad
# --status, --root or job id never saves or lands somewhere unmeant; a fifo never blocks.
. "$(dirname "$0")/../lib.sh"

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
printf '[[persist]]\nname = "more"\nrules = ["more"]\nepoch = 1\ncache_key = "more"\n' >> "$JOB"
populate() {
  mkdir -p "$M/work/job/target" "$M/work/job/more" "$M/home/build/.tools"
  echo "$1" > "$M/work/job/target/a"; echo "$1" > "$M/work/job/more/b"
  echo tools > "$M/home/build/.tools/t"
}
# hook NAME ARGS...: run a hook under a timeout (nothing may block), stderr kept in NAME.err.
hook() {
  local name=$1; shift
  set +e
  timeout 60 "$EPHEMERA" "$@" --root "$M" --workdir /work/job --home /home/build \
    --state-dir "$M/state" 2> "$SCRATCH/$name.err"
  code=$?
  set -e
  cat "$SCRATCH/$name.err" >&2
}

# 1. A corrupt report.json: pre and post exit 0, say which file, and the saves happen.
machine corrupt
ctx feature pull_request
populate one
mkdir -p "$M/state"; echo '{"entries": [1' > "$M/state/report.json"
hook pre pre --job "$JOB"
[ "$code" = 0 ] || fail "pre with a corrupt report.json exited $code"
grep -q "$M/state/report.json" "$SCRATCH/pre.err" || fail "pre did not name the corrupt report"
echo '[[[' > "$M/state/report.json"
hook post post --job "$JOB" --status 0
[ "$code" = 0 ] || fail "post with a corrupt report.json exited $code"
grep -q "$M/state/report.json" "$SCRATCH/post.err" || fail "post did not name the corrupt report"
expect_result post deps saved
expect_result post more saved
if grep -q 'goes on cold' "$SCRATCH/pre.err"; then fail "pre said cold"; fi

# 2. report.json replaced by a symlink: never read nor written through.
machine symlinked
ctx feature pull_request
populate two
mkdir -p "$M/state"; echo 'not yours' > "$SCRATCH/outside"
ln -s "$SCRATCH/outside" "$M/state/report.json"
hook post post --job "$JOB" --status 0
[ "$code" = 0 ] || fail "post with a symlinked report.json exited $code"
grep -q 'symbolic link' "$SCRATCH/post.err" || fail "post did not say report.json is a link"
[ "$(cat "$SCRATCH/outside")" = 'not yours' ] || fail "post wrote through the symlink"
[ ! -L "$M/state/report.json" ] || fail "the symlink is still there"
expect_result post deps saved
# `ephemera report` on such a file: exit 1, naming it; never its content.
rm "$M/state/report.json"; ln -s "$SCRATCH/outside" "$M/state/report.json"
hook report report
[ "$code" = 1 ] || fail "report on a symlinked report.json exited $code"
grep -q "$M/state/report.json" "$SCRATCH/report.err" || fail "report did not name the file"
if grep -q 'not yours' "$SCRATCH/report.err"; then fail "report leaked the link's target"; fi
printf '{"entries": "\033[31mred"' > "$M/state/report.json"
hook report report
[ "$code" = 1 ] || fail "report on a corrupt report.json exited $code"

# 3. Bad nominations: each skipped with a warning naming its file, the others saved.
machine nominations
ctx feature pull_request
populate three
hook persist persist tools '~/.tools' --epoch 1 --key t1
[ "$code" = 0 ] || fail "persist exited $code"
N="$M/state/nominated"
echo '{"name": "bad", "rules": "target", "epoch": 1}' > "$N/bad.json"
echo '{"name": "neg", "rules": ["target"], "epoch": -1}' > "$N/neg.json"
echo '{"name": "tools", "rules": ["/"], "epoch": 1}' > "$N/dup.json"
echo '[' > "$N/junk.json"
ln -s /etc/passwd "$N/link.json"
mkfifo "$N/fifo.json"
hook post post --job "$JOB" --status 0
[ "$code" = 0 ] || fail "post with bad nominations exited $code"
for f in bad neg dup junk link fifo; do
  grep -q "$N/$f.json" "$SCRATCH/post.err" || fail "no warning naming $f.json"
done
expect_result persist tools saved
expect_result post deps saved
expect_result post more saved
hook strict post --job "$JOB" --status 0 --strict
[ "$code" = 1 ] || fail "--strict did not fail on bad nominations ($code)"

# 4. An unusable state dir (a file, or a symlinked fingerprints dir): pre restores, warns,
# and never says the job goes on cold.
machine unusable
ctx feature pull_request
mkdir -p "$M/state"; ln -s "$SCRATCH" "$M/state/fingerprints"
hook pre pre --job "$JOB"
[ "$code" = 0 ] || fail "pre with a symlinked fingerprints dir exited $code"
[ -f "$M/work/job/target/a" ] || fail "pre did not restore"
grep -q "$M/state/fingerprints" "$SCRATCH/pre.err" || fail "pre did not name fingerprints"
if grep -q 'goes on cold' "$SCRATCH/pre.err"; then fail "pre said cold after restoring"; fi
[ ! -e "$SCRATCH/deps.json" ] || fail "a fingerprint was written through the symlink"
rm -rf "$M/state"; echo file > "$M/state"
hook pre2 pre --job "$JOB"
[ "$code" = 0 ] || fail "pre with a state dir that is a file exited $code"
grep -q "$M/state" "$SCRATCH/pre2.err" || fail "pre did not name the state dir"
hook post post --job "$JOB" --status 0
[ "$code" = 0 ] || fail "post with a state dir that is a file exited $code"

# 5. --status "" (an unset variable) or garbage: exit 2, nothing saved.
machine status
ctx feature pull_request
populate five
export EPHEMERA_STORE="$SCRATCH/status-store"
for bad in '' ' 0' '0x' 'zero' '99999999999'; do
  hook status post --job "$JOB" --status "$bad"
  [ "$code" = 2 ] || fail "--status '$bad' exited $code"
done
grep -q 'status' "$SCRATCH/status.err" || fail "no word about --status"
hook plan plan --job "$JOB" --status ''
[ "$code" = 2 ] || fail "plan --status '' exited $code"
[ ! -e "$M/state/report.json" ] || fail "a bad --status still wrote a report"
[ -z "$(find "$EPHEMERA_STORE" -type f 2>/dev/null)" ] || fail "a bad --status saved"
export EPHEMERA_STORE="$STORE"

# 6. A key file that is a fifo (or /dev/zero): plan, pre and post never block, and say so.
machine fifo
ctx feature pull_request
populate six
printf 'name = "build"\nvariety = "basic"\n[[persist]]\nname = "keyed"\nrules = ["target"]\nepoch = 1\ncache_key = "k"\nkey_files = ["lock", "zero"]\n' > "$SCRATCH/fifo.toml"
mkfifo "$M/work/job/lock"; ln -s /dev/zero "$M/work/job/zero"
hook plan plan --job "$SCRATCH/fifo.toml"
[ "$code" = 0 ] || fail "plan with a fifo key file exited $code"
hook pre pre --job "$SCRATCH/fifo.toml"
[ "$code" = 0 ] || fail "pre with a fifo key file exited $code"
grep -q "/work/job/lock" "$SCRATCH/pre.err" || fail "pre did not name the fifo"
hook post post --job "$SCRATCH/fifo.toml" --status 0
[ "$code" = 0 ] || fail "post with a fifo key file exited $code"
expect_result post keyed failed
rm "$M/work/job/lock"
hook post post --job "$SCRATCH/fifo.toml" --status 0
grep -q "/work/job/zero" "$SCRATCH/post.err" || fail "post did not name /dev/zero's link"
echo lock > "$M/work/job/lock"; rm "$M/work/job/zero"
hook post post --job "$SCRATCH/fifo.toml" --status 0
expect_result post keyed saved

# 7. The job id names the default state dir: '..' stays below the state dirs.
machine jobid
ctx feature pull_request ..
populate seven
set +e
timeout 60 "$EPHEMERA" post --job "$JOB" --status 0 --root "$M" --workdir /work/job \
  --home /home/build 2> "$SCRATCH/jobid.err"; code=$?
set -e
[ "$code" = 0 ] || fail "post with job id '..' exited $code"
[ ! -e "$M/tmp/report.json" ] || fail "job id '..' put the state dir at <root>/tmp"
ls "$M/tmp/ephemera-state/"*/report.json > /dev/null || fail "no state dir below ephemera-state"

# 8. --root naming a file, or nothing: exit 2 with the reason.
set +e
"$EPHEMERA" plan --job "$JOB" --root "$JOB" 2> "$SCRATCH/root.err"; code=$?
set -e
[ "$code" = 2 ] || fail "--root a file exited $code"
grep -q 'not a directory' "$SCRATCH/root.err" || fail "no reason for --root a file"
set +e
"$EPHEMERA" plan --job "$JOB" --root '' 2> "$SCRATCH/root.err"; code=$?
set -e
[ "$code" = 2 ] || fail "--root '' exited $code"

# 9. --epoch out of range or negative: exit 2, never clamped to the largest number.
machine epochs
ctx feature pull_request
for bad in 99999999999999999999 -1 '' 1x; do
  hook epoch persist tools '~/.tools' --epoch "$bad"
  [ "$code" = 2 ] || fail "persist --epoch '$bad' exited $code"
  hook epoch restore deps --job "$JOB" --epoch "$bad"
  [ "$code" = 2 ] || fail "restore --epoch '$bad' exited $code"
done
[ ! -e "$M/state/nominated" ] || fail "a bad --epoch was nominated"

echo "hostile state: ok"
