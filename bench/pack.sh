#!/bin/sh
# Pack and unpack, side by side with the pipeline GitHub's actions/cache runs
# (tar --posix -cf - | zstdmt, level 3; zstd -dc | tar -xf -), on the same files, warm
# cache, several rounds, medians and ratios. Two corpora are built here once:
#   node: a node_modules tree from the npm registry (tens of thousands of small files)
#   libs: about 1 GiB of shared libraries copied from /usr/lib
# usage: sh bench/pack.sh [ROUNDS]      (BENCH_DIR, default /tmp/ephemera-bench)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
rounds=${1:-3}
B=${BENCH_DIR:-/tmp/ephemera-bench}
mkdir -p "$B"
sh tools/install-deps.sh build >/dev/null
command -v npm >/dev/null || apt-get install -y -qq npm >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
tool="$top/build/bench/archive/bench_archive"

if [ ! -d "$B/node/node_modules" ]; then
  mkdir -p "$B/node"
  (cd "$B/node" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error \
    typescript webpack webpack-cli eslint @babel/core @babel/preset-env jest react react-dom \
    next @angular/core rxjs lodash aws-sdk >/dev/null)
fi
if [ ! -d "$B/libs/lib" ]; then
  mkdir -p "$B/libs/lib"
  # The largest regular .so files of /usr/lib until about 1 GiB.
  find /usr/lib -type f -name '*.so*' -printf '%s %p\n' | sort -rn | awk '
    { total += $1; if (total > 1073741824) exit; print $2 }' | while read -r f; do
    cp "$f" "$B/libs/lib/$(echo "$f" | tr / _)"
  done
fi

# t CMD...: wall seconds and peak RSS (KiB) of one run, appended to $B/t.
t() { /usr/bin/time -f '%e %M' -a -o "$B/t" "$@" >/dev/null 2>&1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

fresh() { # a new, empty directory for an unpack round, on a quiet file system
  rm -rf "$B/out"; sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  mkdir -p "$B/out/$1"
  cat "$B/peer.tar.zst" "$B/ours.tar.zst" >/dev/null
}

printf '%-6s %-8s %10s %10s %8s %12s %12s\n' corpus step peer_s ours_s ratio peer_MiB_rss ours_MiB_rss
for corpus in node libs; do
  src="$B/$corpus"
  dir=node_modules; [ "$corpus" = libs ] && dir=lib
  find "$src/$dir" -type f -exec cat {} + >/dev/null # warm
  for step in pack unpack; do
    : > "$B/peer"; : > "$B/ours"
    for r in $(seq 1 "$rounds"); do
      if [ $step = pack ]; then
        rm -f "$B/peer.tar.zst" "$B/ours.tar.zst"
        : > "$B/t"; t sh -c "tar --posix -cf - -C '$src' '$dir' | zstdmt -3 -q -o '$B/peer.tar.zst'"
        cat "$B/t" >> "$B/peer"
        : > "$B/t"; t "$tool" pack "$src/$dir" "$B/ours.tar.zst" 3
        cat "$B/t" >> "$B/ours"
      else
        fresh peer; : > "$B/t"; t sh -c "zstd -dc '$B/peer.tar.zst' | tar -xf - -C '$B/out/peer'"
        cat "$B/t" >> "$B/peer"
        fresh ours; : > "$B/t"; t "$tool" unpack "$B/ours.tar.zst" "$B/out/ours"
        cat "$B/t" >> "$B/ours"
      fi
    done
    ps=$(cut -d' ' -f1 "$B/peer" | median); os=$(cut -d' ' -f1 "$B/ours" | median)
    pm=$(cut -d' ' -f2 "$B/peer" | sort -n | tail -1); om=$(cut -d' ' -f2 "$B/ours" | sort -n | tail -1)
    printf '%-6s %-8s %10s %10s %7.2fx %12d %12d\n' "$corpus" "$step" "$ps" "$os" \
      "$(echo "$ps $os" | awk '{print ($2 > 0 ? $1 / $2 : 0)}')" $((pm / 1024)) $((om / 1024))
    [ $step = pack ] && pack_peer=$ps
  done
  # For scale: the zstd CLI at the same level on every core with the tar stream already in
  # memory, writing nothing (compression alone, as the CLI does it); and libarchive's own
  # CLI, the fastest peer.
  tar --posix -cf /dev/shm/ephemera-bench.tar -C "$src" "$dir"
  : > "$B/floor"; : > "$B/bsd"
  for r in $(seq 1 "$rounds"); do
    : > "$B/t"; t zstd -3 -T0 -q -f /dev/shm/ephemera-bench.tar -o /dev/null
    cat "$B/t" >> "$B/floor"
    if command -v bsdtar >/dev/null; then
      : > "$B/t"; t bsdtar --zstd --options "zstd:compression-level=3,zstd:threads=$(nproc)" \
        -cf "$B/bsd.tar.zst" -C "$src" "$dir"
      cat "$B/t" >> "$B/bsd"
    fi
  done
  rm -f /dev/shm/ephemera-bench.tar "$B/bsd.tar.zst"
  fs=$(cut -d' ' -f1 "$B/floor" | median)
  printf '%-6s pack compression alone (zstd -3 -T0, tar in memory, to /dev/null): %s s = %.2fx\n' \
    "$corpus" "$fs" "$(echo "$pack_peer $fs" | awk '{print $1 / $2}')"
  if [ -s "$B/bsd" ]; then
    bs=$(cut -d' ' -f1 "$B/bsd" | median)
    printf '%-6s pack by bsdtar (zstd threads=%d): %s s = %.2fx\n' "$corpus" "$(nproc)" "$bs" \
      "$(echo "$pack_peer $bs" | awk '{print $1 / $2}')"
  fi
  files=$(find "$src/$dir" -type f | wc -l)
  raw=$(du -sb "$src/$dir" | cut -f1)
  printf '%-6s %d files, %d MiB; compressed: peer %d, ours %d bytes (%+.1f%%)\n' "$corpus" "$files" \
    $((raw >> 20)) "$(stat -c %s "$B/peer.tar.zst")" "$(stat -c %s "$B/ours.tar.zst")" \
    "$(echo "$(stat -c %s "$B/peer.tar.zst") $(stat -c %s "$B/ours.tar.zst")" | awk '{print ($2 - $1) * 100 / $1}')"
  # Both unpack to the same tree.
  rm -rf "$B/out"; mkdir -p "$B/out/peer" "$B/out/ours"
  zstd -dc "$B/peer.tar.zst" | tar -xf - -C "$B/out/peer"
  "$tool" unpack "$B/ours.tar.zst" "$B/out/ours" >/dev/null
  diff -r --no-dereference "$B/out/peer" "$B/out/ours" >/dev/null || { echo "$corpus: the trees differ"; exit 1; }
done
rm -rf "$B/out"
echo "ratio = peer seconds / ephemera seconds (above 1: ephemera is faster); RSS is the peak of one process"
