# A job's token puts other bytes under a pack's name through the broker, in presigned parts
# (the broker checks their size, never sees their content): the name of the pack an honest
# save of the same files makes next. That save's PUT of the pack finds the name taken and the
# broker keeps what is there, so the save is published over the bad bytes. The next job's pre
# refuses it; its post neither builds on it nor makes its pack under the taken name again
# (where the broker would keep the bad bytes once more): the machine after that restores the
# new save byte for byte. The scope heals after one job.
. "$(dirname "$0")/lib.sh"
[ "$STORE_KIND" = s3 ] || fail "uploads in parts are S3's: run with STORE_KIND=s3"
on_exit clean_s3
start_broker b1

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
head -c 300000 /dev/urandom > "$SCRATCH/blob"
# build: the job's output, the same on every machine.
build() {
  mkdir -p "$M/work/job/target"
  echo "a.o" > "$M/work/job/target/a.o"
  cp "$SCRATCH/blob" "$M/work/job/target/blob"
}

# The attacker: learns the pack's name from a save of the same files to a store of its own,
# then uploads other bytes of its size under that name, in parts.
machine evil; ctx feature pull_request job-evil; build
EPHEMERA_STORE="$SCRATCH/predict" eph post --job "$JOB" --status 0 2> /dev/null
pack=$(cd "$SCRATCH/predict" && find cas1 -name '*.pack')
[ "$(echo "$pack" | grep -c .)" = 1 ] || fail "expected one pack: $pack"
size=$(stat -c %s "$SCRATCH/predict/$pack")
head -c "$size" /dev/urandom > "$SCRATCH/other"
EVIL=$(token)
[ "$(call "$EVIL" POST "/v1/uploads/$pack?size=$size")" = 200 ] ||
  fail "the attacker's start: $(cat "$SCRATCH/answer")"
cp "$SCRATCH/answer" "$SCRATCH/plan"
n=0 etags=()
part_size=$(jq -r .part_size "$SCRATCH/plan")
for url in $(jq -r '.parts[]' "$SCRATCH/plan"); do
  tail -c +$((n * part_size + 1)) "$SCRATCH/other" | head -c "$part_size" > "$SCRATCH/part"
  etags+=("$(curl -s -f -D - -o /dev/null -T "$SCRATCH/part" "$url" | tr -d '\r' |
    sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')")
  n=$((n + 1))
done
jq --args 'del(.parts) + {etags: $ARGS.positional}' "${etags[@]}" < "$SCRATCH/plan" > "$SCRATCH/done"
[ "$(call "$EVIL" POST "/v1/complete/$pack" "$SCRATCH/done")" = 204 ] ||
  fail "the attacker's completion: $(cat "$SCRATCH/answer")"

# An honest job saves the same files: published over the bad bytes.
machine honest; ctx feature pull_request job-honest; build
TOKEN=$(token)
beph post --job "$JOB" --status 0 2> /dev/null
expect_result post deps saved
s3obj get "$STORE/$pack" "$SCRATCH/stored"
cmp -s "$SCRATCH/stored" "$SCRATCH/other" || fail "the broker did not keep the attacker's bytes"
store_objects | grep '/packs/.*\.pack$' > "$SCRATCH/before.packs"

# The next job: pre refuses that save, post passes over it and saves under other pack names.
machine second; ctx feature pull_request job-second
TOKEN=$(token)
beph pre --job "$JOB" 2> "$SCRATCH/second-pre.err" || fail "pre failed: $(cat "$SCRATCH/second-pre.err")"
case $(result_of pre deps) in miss | failed) ;; *) fail "pre restored a save whose pack lies" ;; esac
build
beph post --job "$JOB" --status 0 2> "$SCRATCH/second-post.err" ||
  fail "post failed: $(cat "$SCRATCH/second-post.err")"
expect_result post deps saved
expected=$(listing "$M/work/job")
grep -q "saved 'deps'.*the base .* was passed over: its restore was refused here (.*); saved in full" \
  "$SCRATCH/second-post.err" ||
  fail "post's summary does not say it passed over the refused save: $(cat "$SCRATCH/second-post.err")"
[ -n "$(LC_ALL=C comm -13 "$SCRATCH/before.packs" <(store_objects | grep '/packs/.*\.pack$'))" ] ||
  fail "post made no pack of a new name: its save uses the attacker's bytes"

# The machine after restores the new save, exactly.
machine third; ctx feature pull_request job-third
TOKEN=$(token)
beph pre --job "$JOB" 2> "$SCRATCH/third.err" || fail "pre failed: $(cat "$SCRATCH/third.err")"
expect_result pre deps hit
[ "$(listing "$M/work/job")" = "$expected" ] ||
  fail "the restored tree is not the one saved: $(cat "$SCRATCH/third.err")"
echo "poisoned-pack: ok"
