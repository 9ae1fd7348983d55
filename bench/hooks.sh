#!/bin/sh
# The hooks on the node_modules corpus of bench/pack.sh, local store:
#   - a post whose files are unchanged since the restore, against a full save (target <= 5%)
#   - a warm pre (lookup, copy, verify, unpack), against a bare unpack of the same archive
#     (target <= 1.1x)
# usage: sh bench/hooks.sh [ROUNDS]     (BENCH_DIR, default /tmp/ephemera-bench; run bench/pack.sh first)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
rounds=${1:-3}
B=${BENCH_DIR:-/tmp/ephemera-bench}
[ -d "$B/node/node_modules" ] || { echo "run sh bench/pack.sh first (it builds the corpus)"; exit 2; }
ninja -C build >/dev/null
eph="$top/build/ephemera"
tool="$top/build/bench/archive/bench_archive"
H="$B/hooks"
rm -rf "$H"; mkdir -p "$H"
cat > "$H/job.toml" <<'TOML'
name = "bench"
variety = "basic"

[[persist]]
name = "node"
rules = ["node_modules"]
epoch = 1
cache_key = "node"
TOML
export GITHUB_REPOSITORY=bench/node GITHUB_BRANCH=feature EPHEMERA_EVENT=pull_request GITHUB_SHA=f00d
export EPHEMERA_STORE="$H/store"
med() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
quiet() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

: > "$H/save"; : > "$H/unchanged"; : > "$H/pre"; : > "$H/bare"
for r in $(seq 1 "$rounds"); do
  # A full save of the corpus where it lies (root $B, workdir /node).
  rm -rf "$H/store" "$H/state-save"
  BUILDOMAT_JOB_ID="save-$r" /usr/bin/time -f '%e' -a -o "$H/save" "$eph" post --job "$H/job.toml" \
    --status 0 --root "$B" --workdir /node --home /nohome --state-dir "$H/state-save" >/dev/null 2>&1
  # A warm pre on a pristine machine, then a post with nothing changed. The archive is in
  # the page cache for the pre as for the bare unpack below: both start from the same place.
  archive=$(find "$H/store" -name '*.tar.zst' | head -1)
  rm -rf "$H/m"; mkdir -p "$H/m/node"; quiet
  cat "$archive" >/dev/null
  BUILDOMAT_JOB_ID="warm-$r" /usr/bin/time -f '%e' -a -o "$H/pre" "$eph" pre --job "$H/job.toml" \
    --root "$H/m" --workdir /node --home /nohome --state-dir "$H/m/state" >/dev/null 2>&1
  [ -f "$H/m/node/node_modules/typescript/package.json" ] || { echo "the warm pre restored nothing"; exit 1; }
  BUILDOMAT_JOB_ID="warm-$r" /usr/bin/time -f '%e' -a -o "$H/unchanged" "$eph" post --job "$H/job.toml" \
    --status 0 --root "$H/m" --workdir /node --home /nohome --state-dir "$H/m/state" > "$H/post.txt" 2>&1
  grep -q "nothing changed" "$H/post.txt" || { cat "$H/post.txt"; echo "the post did not skip"; exit 1; }
  # A bare unpack of the same archive into a fresh directory.
  rm -rf "$H/m" "$H/bare-out"; mkdir -p "$H/bare-out"; quiet
  cat "$archive" >/dev/null
  /usr/bin/time -f '%e' -a -o "$H/bare" "$tool" unpack "$archive" "$H/bare-out" >/dev/null 2>&1
  rm -rf "$H/bare-out"
done
s=$(med "$H/save"); u=$(med "$H/unchanged"); p=$(med "$H/pre"); b=$(med "$H/bare")
echo "full save (post):         $s s"
echo "unchanged post:           $u s  = $(echo "$u $s" | awk '{printf "%.1f", 100 * $1 / $2}')% of a full save (target <= 5%)"
echo "warm pre:                 $p s"
echo "bare unpack:              $b s  warm pre / bare = $(echo "$p $b" | awk '{printf "%.2f", $1 / $2}')x (target <= 1.1x)"
echo "medians of $rounds rounds"
rm -rf "$H"
