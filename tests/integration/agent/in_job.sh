# examples/agent.sh as a job author uses it: a job whose script calls `ephemera restore`
# and `ephemera persist` by themselves, with nothing but what the agent exports.
. "$(dirname "$0")/../lib.sh"

export EPHEMERA_EVENT=pull_request GITHUB_REPOSITORY=acme/widget GITHUB_BRANCH=feature
export GITHUB_SHA=feedface JOB_WORKDIR=/work/job JOB_HOME=/home/build
JOB="$SCRATCH/job.sh"
cat > "$JOB" <<'SH'
#!/bin/bash
#: name = "build"
#: variety = "basic"
#:
#: [[persist]]
#: name = "deps"
#: rules = ["target"]
#: epoch = 1
#: cache_key = "deps"
set -eu
if ephemera restore deps; then
  echo "job: deps warm"
else
  echo "job: deps cold (exit $?)"
  mkdir -p target && echo built > target/out
fi
if ephemera restore tools --rule '~/.tools' --epoch 1 --key t1; then
  echo "job: tools warm"
else
  mkdir -p ~/.tools && echo tool > ~/.tools/t
  ephemera persist tools '~/.tools' --epoch 1 --key t1
fi
SH

# run N: one pristine machine through the agent; its output in $SCRATCH/run-N.txt.
run() {
  M="$SCRATCH/machine$1"
  mkdir -p "$M/work/job" "$M/home/build"
  EPHEMERA_ROOT="$M" BUILDOMAT_JOB_ID="job-$1" sh "$SOURCE_ROOT/examples/agent.sh" "$JOB" \
    > "$SCRATCH/run-$1.txt" 2>&1 || { cat "$SCRATCH/run-$1.txt"; fail "run $1 failed"; }
}

run 1
grep -q 'job: deps cold (exit 3)' "$SCRATCH/run-1.txt" || { cat "$SCRATCH/run-1.txt"; fail "in-job restore was not a plain miss"; }
# The in-job nomination reached post through the exported state dir.
M="$SCRATCH/machine1"
[ -d "$M/tmp/ephemera-state/job-1" ] || fail "the agent's state dir is not where it said"
"$EPHEMERA" report --json --state-dir "$M/tmp/ephemera-state/job-1" > "$SCRATCH/r1.json"
/usr/bin/python3 - "$SCRATCH/r1.json" <<'PY' || fail "run 1 did not save both sets"
import json, sys
r = json.load(open(sys.argv[1]))
saved = {e["name"] for e in r["entries"] if e["result"] == "saved"}
assert saved == {"deps", "tools"}, saved
PY

run 2
grep -q 'job: deps warm' "$SCRATCH/run-2.txt" || { cat "$SCRATCH/run-2.txt"; fail "in-job restore of a stanza missed"; }
grep -q 'job: tools warm' "$SCRATCH/run-2.txt" || { cat "$SCRATCH/run-2.txt"; fail "in-job restore of a nominated set missed"; }
[ -f "$SCRATCH/machine2/home/build/.tools/t" ] || fail "tools not restored into the job's home"
echo "agent in-job: ok"
