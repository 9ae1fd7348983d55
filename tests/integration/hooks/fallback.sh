# When the archive a lookup chose is corrupt or missing, the restore passes over it to the
# next candidate in the lookup order and says which it passed over and why; at most three
# candidates are tried, so a store full of broken saves cannot make a restore slow.
. "$(dirname "$0")/../lib.sh"
# These saves are single archives (EPHEMERA_FORMAT=archive), the format this script forges
# and inspects object by object; stores keep holding and restoring them.
export EPHEMERA_FORMAT=archive
. "$(dirname "$0")/../raw_store.sh"

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
use_store fallback

# stem KEY: a manifest's file name without .json, which its archive's name shares.
stem() { local n=${1##*/}; echo "${n%.json}"; }

# passed_over MACHINE: how many candidates the restore on MACHINE passed over.
passed_over() { grep -c "restore 'deps': passed over " "$SCRATCH/$1.err" || true; }

# The newest save's archive has other bytes of the same size: the next one is restored.
save_from first feature first.o
first=$(the_manifest)
save_from second feature second.o
second=$(newest_manifest_besides "$first")
raw_get "${second%.json}.tar.zst" "$SCRATCH/a.tar.zst"
/usr/bin/python3 - "$SCRATCH/a.tar.zst" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xff
open(p, "wb").write(b)
PY
raw_put "$SCRATCH/a.tar.zst" "${second%.json}.tar.zst"
restore_on one
expect_result pre deps hit
[ -e "$M/work/job/target/first.o" ] || fail "the next candidate was not restored"
[ ! -e "$M/work/job/target/second.o" ] || fail "the corrupt archive was restored"
grep -q "restore 'deps': passed over .*$(stem "$second")" "$SCRATCH/one.err" ||
  fail "the log does not say which archive was passed over"
grep "passed over .*$(stem "$second")" "$SCRATCH/one.err" | grep -qi 'digest\|sha-\?256' ||
  fail "the log does not say why the archive was passed over"
grep -q "after passing over 1 candidate" "$SCRATCH/one.err" || fail "the summary line does not say so"
report_json | grep -q "passed over .*$(stem "$second")" || fail "the report does not say what was passed over"
validate_report

# A newer save whose archive is gone: passed over too, and then the corrupt one.
save_from third feature third.o
third=$(newest_manifest_besides "$first" "$second")
raw_rm "${third%.json}.tar.zst"
restore_on two
expect_result pre deps hit
[ -e "$M/work/job/target/first.o" ] || fail "the third candidate was not restored"
[ "$(passed_over two)" = 2 ] || fail "expected two candidates passed over, got $(passed_over two)"
grep -q "passed over .*$(stem "$third")" "$SCRATCH/two.err" || fail "the missing archive is not named"

# A fourth broken save: three candidates are tried and fail, the fourth (sound) one is not
# tried, and the job goes on cold.
save_from fourth feature fourth.o
fourth=$(newest_manifest_besides "$first" "$second" "$third")
raw_rm "${fourth%.json}.tar.zst"
restore_on three
expect_result pre deps failed
[ ! -e "$M/work/job/target/first.o" ] || fail "more than three candidates were tried"
[ "$(passed_over three)" = 2 ] || fail "expected two candidates passed over, got $(passed_over three)"
grep -q "unable to restore 'deps'" "$SCRATCH/three.err" || fail "the last failure is not reported"
echo "fallback: ok"
