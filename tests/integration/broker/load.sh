# Load through two brokers in front of one store: 32 jobs at once, each saving through one
# broker and restoring on a fresh machine through the other, for EPHEMERA_LOAD_SECONDS (60
# by default, a minute; `tests/run.sh --long` gives 300). Every restore byte-identical to its save, no
# error, no refusal: the brokers share nothing but the store.
. "$(dirname "$0")/lib.sh"
seconds=${EPHEMERA_LOAD_SECONDS:-60}
jobs=32
export GITHUB_REPOSITORY=acme/widget GITHUB_SHA=feedface
start_broker a --rate 0
A=$BROKER
start_broker b --rate 0
B=$BROKER
mkdir -p "$SCRATCH/log"
deadline=$(( $(date +%s) + seconds ))
tree_sum() { (cd "$1/work/job/target" && find . -type f -exec sha256sum {} + | LC_ALL=C sort | sha256sum | cut -c1-64); }
on() { # on BROKER MACHINE_DIR TOKEN ARGS...
  local broker=$1 m=$2 tok=$3; shift 3
  BROKER=$broker TOKEN=$tok on_machine "$EPHEMERA" "$@" --root "$m" --workdir /work/job \
    --home /home/build --state-dir "$m/state" --strict
}
result() { "$EPHEMERA" report --json --root "$1" --state-dir "$1/state" \
  | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"][-1]["result"])'; }

job() {
  local j=$1 i=0 rounds=0
  deps_job "$SCRATCH/job$j.toml" "cache_key = \"k$j\""
  sed -i '/^cache_key = "deps"$/d' "$SCRATCH/job$j.toml"
  while [ "$(date +%s)" -lt "$deadline" ]; do
    i=$((i + 1))
    local up=$A down=$B; [ $((i % 2)) = 0 ] && up=$B down=$A
    local m="$SCRATCH/j$j"
    rm -rf "$m" "$m-down"; mkdir -p "$m/work/job/target/d" "$m/home/build" "$m-down/work/job" "$m-down/home/build"
    head -c $(( 20000 + RANDOM )) /dev/urandom > "$m/work/job/target/blob"
    echo "job $j round $i" > "$m/work/job/target/d/f"
    local want; want=$(tree_sum "$m")
    local tok; tok=$(BUILDOMAT_JOB_ID="j$j-$i" GITHUB_BRANCH=feature EPHEMERA_EVENT=pull_request token)
    GITHUB_BRANCH=feature EPHEMERA_EVENT=pull_request BUILDOMAT_JOB_ID="j$j-$i" \
      on "$up" "$m" "$tok" post --job "$SCRATCH/job$j.toml" --status 0 2>> "$SCRATCH/log/j$j" \
      || { echo "post j$j.$i exited $?" >> "$SCRATCH/errors"; continue; }
    [ "$(result "$m")" = saved ] || { echo "post j$j.$i: $(result "$m")" >> "$SCRATCH/errors"; continue; }
    tok=$(BUILDOMAT_JOB_ID="j$j-$i-r" GITHUB_BRANCH=feature EPHEMERA_EVENT=pull_request token)
    GITHUB_BRANCH=feature EPHEMERA_EVENT=pull_request BUILDOMAT_JOB_ID="j$j-$i-r" \
      on "$down" "$m-down" "$tok" pre --job "$SCRATCH/job$j.toml" 2>> "$SCRATCH/log/j$j" \
      || { echo "pre j$j.$i exited $?" >> "$SCRATCH/errors"; continue; }
    [ "$(result "$m-down")" = hit ] || { echo "pre j$j.$i: $(result "$m-down")" >> "$SCRATCH/errors"; continue; }
    [ "$(tree_sum "$m-down")" = "$want" ] || echo "pre j$j.$i: restored other bytes" >> "$SCRATCH/errors"
    rounds=$((rounds + 1))
  done
  echo "$rounds" > "$SCRATCH/rounds.$j"
}

pids=""
for j in $(seq 1 $jobs); do job "$j" & pids="$pids $!"; done
for p in $pids; do wait "$p"; done
if [ -s "$SCRATCH/errors" ]; then
  head -20 "$SCRATCH/errors" >&2
  for f in "$SCRATCH"/log/*; do tail -2 "$f"; done | sort | uniq -c | sort -rn | head >&2
  fail "$(wc -l < "$SCRATCH/errors") errors under load"
fi
grep -h refused "$SCRATCH/a.log" "$SCRATCH/b.log" | head -5 | grep . >&2 && fail "a broker refused a job's own request"
total=$(cat "$SCRATCH"/rounds.* | awk '{s += $1} END {print s}')
[ "$total" -ge "$jobs" ] || fail "only $total save-and-restore rounds in $seconds s"
echo "broker load ($STORE_KIND): $total rounds of $jobs jobs through two brokers in $seconds s"
