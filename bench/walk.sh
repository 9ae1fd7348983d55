#!/bin/sh
# The walk: 'ephemera match' with a realistic rule set (cargo registry + target deps,
# with excludes) against 'find -type f' over the same subtrees, on a generated tree of
# over 200,000 entries, warm cache, several rounds; medians, ratio and peak RSS.
# usage: sh bench/walk.sh [ROUNDS]      (BENCH_DIR, default /tmp/ephemera-bench)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
rounds=${1:-5}
B=${BENCH_DIR:-/tmp/ephemera-bench}/walk
sh tools/install-deps.sh build >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
eph="$top/build/ephemera"

if [ ! -f "$B/.done" ]; then
  rm -rf "$B"
  mkdir -p "$B/home/build" "$B/work/job"
  /usr/bin/python3 - "$B" <<'PY'
import os, sys
b = sys.argv[1]
def touch(p, n=0):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(b"x" * n)
reg = f"{b}/home/build/.cargo/registry"
for c in range(900):                        # 900 crates: .crate, index entry, unpacked sources
    name = f"crate{c:04d}-1.{c % 7}.0"
    touch(f"{reg}/cache/index.crates.io-6f17d22bba15001f/{name}.crate", 100)
    touch(f"{reg}/index/index.crates.io-6f17d22bba15001f/.cache/cr/at/{name}", 50)
    for m in range(6):
        for f in range(20):
            touch(f"{reg}/src/index.crates.io-6f17d22bba15001f/{name}/src/m{m}/f{f}.rs", 10)
t = f"{b}/work/job/target/debug"
for c in range(900):
    for k in range(12):
        touch(f"{t}/deps/lib{c}-{k}.rlib", 10)
    for k in range(12):
        touch(f"{t}/build/crate{c}-{k:x}/out/gen{k}.rs", 10)
    for k in range(8):
        touch(f"{t}/.fingerprint/crate{c}-{k:x}/lib-crate{c}", 10)
    for k in range(20):
        touch(f"{t}/incremental/crate{c}-x/s-{k}/query-cache.bin", 10)
PY
  touch "$B/.done"
fi
entries=$(find "$B" | wc -l)

set -- "~/.cargo/registry/**/*" "!~/.cargo/registry/src/**/*" \
  "target/debug/deps/**/*" "target/debug/build/**/*" "target/debug/.fingerprint/**/*" \
  "!target/debug/incremental" "!target/**/*.d"
# The same subtrees for find: what the rules can reach, excludes pruned the way find can.
findcmd="find $B/home/build/.cargo/registry -path $B/home/build/.cargo/registry/src -prune -o -type f -print; \
  find $B/work/job/target/debug/deps $B/work/job/target/debug/build $B/work/job/target/debug/.fingerprint -type f -print"
"$eph" match --root "$B" --home /home/build --workdir /work/job "$@" > "$B/ours.txt" 2>/dev/null
sh -c "$findcmd" > "$B/find.txt"
ours_n=$(wc -l < "$B/ours.txt"); find_n=$(wc -l < "$B/find.txt")

: > "$B/times"
for _ in $(seq 1 "$rounds"); do
  /usr/bin/time -f 'find %e %M' -a -o "$B/times" sh -c "$findcmd" >/dev/null
  /usr/bin/time -f 'ours %e %M' -a -o "$B/times" "$eph" match --root "$B" --home /home/build \
    --workdir /work/job "$@" >/dev/null 2>&1
done
med() { grep "^$1 " "$B/times" | cut -d' ' -f2 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rss() { grep "^$1 " "$B/times" | cut -d' ' -f3 | sort -n | tail -1; }
f=$(med find); o=$(med ours)
echo "tree: $entries entries; ephemera selects $ours_n paths, find lists $find_n files"
echo "find:     $f s (median of $rounds), peak RSS $(( $(rss find) / 1024 )) MiB"
echo "ephemera: $o s (median of $rounds), peak RSS $(( $(rss ours) / 1024 )) MiB"
echo "ratio ephemera/find: $(echo "$o $f" | awk '{printf "%.2f", $1 / $2}') (1.0 = as fast as find; lower is better)"
