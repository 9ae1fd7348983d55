# Load: 16 posts and 16 pres at once, of four overlapping keys, for EPHEMERA_LOAD_SECONDS
# (30 by default; `tests/run.sh --long` gives 300). No error other than a reported miss,
# every restore byte-identical to some complete save of its key, every manifest whole.
. "$(dirname "$0")/../lib.sh"
seconds=${EPHEMERA_LOAD_SECONDS:-30}
writers=16 readers=16 keys=4
for k in $(seq 1 $keys); do
  cat > "$SCRATCH/job$k.toml" <<TOML
name = "build"
variety = "basic"

[[persist]]
name = "deps"
rules = ["target"]
epoch = 1
cache_key = "k$k"
TOML
done
mkdir -p "$SCRATCH/saves" "$SCRATCH/log"
deadline=$(( $(date +%s) + seconds ))
tree_sum() { (cd "$1/work/job/target" && find . -type f -exec sha256sum {} + | LC_ALL=C sort | sha256sum | cut -c1-64); }
on() { # on MACHINE_DIR ARGS...: ephemera on that machine
  local m=$1; shift
  "$EPHEMERA" "$@" --root "$m" --workdir /work/job --home /home/build --state-dir "$m/state"
}
result() { on "$1" report --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"][-1]["result"])'; }

writer() {
  local w=$1 i=0
  while [ "$(date +%s)" -lt "$deadline" ]; do
    i=$((i + 1))
    local k=$(( (w + i) % keys + 1 )) m="$SCRATCH/w$w"
    rm -rf "$m"; mkdir -p "$m/work/job/target/many" "$m/home/build"
    head -c $(( 100000 + RANDOM * 4 )) /dev/urandom > "$m/work/job/target/blob"
    for f in $(seq 1 $(( RANDOM % 40 + 1 ))); do echo "w$w i$i f$f" > "$m/work/job/target/many/f$f"; done
    tree_sum "$m" > "$SCRATCH/saves/k$k.w$w.$i" # recorded before it can be restored
    GITHUB_REPOSITORY=acme/widget GITHUB_BRANCH=feature EPHEMERA_EVENT=pull_request BUILDOMAT_JOB_ID="w$w-$i" \
      on "$m" post --job "$SCRATCH/job$k.toml" --status 0 --strict 2>> "$SCRATCH/log/w$w" ||
      { echo "post w$w.$i exited $?" >> "$SCRATCH/errors"; continue; }
    r=$(result "$m"); [ "$r" = saved ] || echo "post w$w.$i: $r" >> "$SCRATCH/errors"
    echo "$(du -sb "$m/work/job/target" | cut -f1)" >> "$SCRATCH/bytes.w$w"
  done
}

reader() {
  local r=$1 i=0
  while [ "$(date +%s)" -lt "$deadline" ]; do
    i=$((i + 1))
    local k=$(( (r + i) % keys + 1 )) m="$SCRATCH/r$r"
    rm -rf "$m"; mkdir -p "$m/work/job" "$m/home/build"
    GITHUB_REPOSITORY=acme/widget GITHUB_BRANCH=feature EPHEMERA_EVENT=pull_request BUILDOMAT_JOB_ID="r$r-$i" \
      on "$m" pre --job "$SCRATCH/job$k.toml" --strict 2>> "$SCRATCH/log/r$r" ||
      { echo "pre r$r.$i exited $?" >> "$SCRATCH/errors"; continue; }
    case "$(result "$m")" in
      hit)
        sum=$(tree_sum "$m")
        grep -lqx "$sum" "$SCRATCH"/saves/k$k.* || echo "pre r$r.$i: restored a tree no save of k$k had" >> "$SCRATCH/errors"
        echo hit >> "$SCRATCH/reads.r$r" ;;
      miss) echo miss >> "$SCRATCH/reads.r$r" ;;
      *) echo "pre r$r.$i: $(result "$m")" >> "$SCRATCH/errors" ;;
    esac
  done
}

start=$(date +%s)
pids=""
for w in $(seq 1 $writers); do writer "$w" & pids="$pids $!"; done
for r in $(seq 1 $readers); do reader "$r" & pids="$pids $!"; done
for p in $pids; do wait "$p"; done
elapsed=$(( $(date +%s) - start ))
if [ -s "$SCRATCH/errors" ]; then
  head -20 "$SCRATCH/errors" >&2
  for f in "$SCRATCH"/log/*; do tail -3 "$f"; done | sort | uniq -c | sort -rn | head >&2
  fail "$(wc -l < "$SCRATCH/errors") errors under load"
fi
saves=$(cat "$SCRATCH"/bytes.w* | wc -l); bytes=$(cat "$SCRATCH"/bytes.w* | awk '{s += $1} END {print s}')
hits=$(cat "$SCRATCH"/reads.r* | grep -c hit || true); misses=$(cat "$SCRATCH"/reads.r* | grep -c miss || true)
[ "$saves" -ge $writers ] || fail "only $saves saves landed in $elapsed s"
[ "$hits" -ge 1 ] || fail "no restore hit in $elapsed s"

# Afterwards every key restores whole, and the store lists only whole saves.
for k in $(seq 1 $keys); do
  m="$SCRATCH/final$k"; mkdir -p "$m/work/job" "$m/home/build"
  GITHUB_REPOSITORY=acme/widget GITHUB_BRANCH=feature EPHEMERA_EVENT=pull_request BUILDOMAT_JOB_ID="final$k" \
    on "$m" pre --job "$SCRATCH/job$k.toml" --strict 2>/dev/null
  [ "$(result "$m")" = hit ] || fail "key k$k does not restore after the load"
  grep -lqx "$(tree_sum "$m")" "$SCRATCH"/saves/k$k.* || fail "key k$k restores a tree no save had"
done
listed=$("$EPHEMERA" ls 2> "$SCRATCH/ls.err" | sed -n 's/^total: \([0-9]*\) archives.*/\1/p')
[ ! -s "$SCRATCH/ls.err" ] || fail "ls warned about the store: $(cat "$SCRATCH/ls.err")"
[ "$listed" = "$saves" ] || fail "the store lists $listed saves, $saves landed"
echo "load: $writers writers and $readers readers for $elapsed s: $saves saves ($bytes bytes), $hits hits, $misses misses, 0 errors"
