#!/bin/sh
# The presets on the real builds of their tests (tests/data/presets), local store, each on
# pristine machines: the job's wall time cold (nothing restored) and warm (restored), and
# what the cache costs around it: the warm pre (restore) and the cold and warm posts (a
# save, then a save skipped because nothing changed).
# usage: sh bench/presets.sh [ROUNDS]     (BENCH_DIR, default /tmp/ephemera-bench-presets)
# cargo: Debian's cargo and rustc offline against /usr/share/cargo/registry; npm: the npm
# registry must be reachable.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
rounds=${1:-3}
B=${BENCH_DIR:-/tmp/ephemera-bench-presets}
ninja -C build >/dev/null
eph="$top/build/ephemera"
rm -rf "$B"; mkdir -p "$B"
export GITHUB_REPOSITORY=bench/presets GITHUB_BRANCH=feature EPHEMERA_EVENT=pull_request GITHUB_SHA=f00d
export PATH=/usr/bin:/bin npm_config_update_notifier=false npm_config_audit=false npm_config_fund=false
unset CCACHE_DIR CCACHE_BASEDIR XDG_CACHE_HOME npm_config_cache
now() { date +%s.%N; }
secs() { awk "BEGIN { printf \"%.2f\", $2 - $1 }"; }
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cargo_build() {
  mkdir -p "$HOME/.cargo"
  printf '[source.crates-io]\nreplace-with = "debian"\n[source.debian]\ndirectory = "/usr/share/cargo/registry"\n[net]\noffline = true\n' \
    > "$HOME/.cargo/config.toml"
  CARGO_HOME="$HOME/.cargo" cargo build --offline
}
npm_build() { npm ci --prefer-offline; }
ccache_build() { ./build.sh; }

# machine PRESET NAME: runs pre, the build, post on a pristine machine; appends
# "pre build post" seconds to $B/PRESET.NAME.
machine() {
  preset=$1 name=$2 m="$B/$1-$2-$r"
  rm -rf "$m"; mkdir -p "$m/work/job" "$m/home/build"
  cp -a "$top/tests/data/presets/$preset/." "$m/work/job/"
  printf 'name = "bench"\nvariety = "basic"\n[[persist]]\npreset = "%s"\nepoch = 1\n' "${preset%%-*}" > "$B/job.toml"
  [ "$preset" = cargo ] && sed -i 's/preset = "cargo"/preset = "cargo-deps"/' "$B/job.toml"
  export EPHEMERA_STORE="$B/store-$preset-$r" BUILDOMAT_JOB_ID="$name-$r"
  flags="--job $B/job.toml --root $m --workdir /work/job --home /home/build --state-dir $m/state"
  t0=$(now)
  # shellcheck disable=SC2086
  "$eph" pre $flags >/dev/null 2>&1
  t1=$(now)
  (cd "$m/work/job" && HOME="$m/home/build" "${preset}_build") >/dev/null 2>&1
  t2=$(now)
  # shellcheck disable=SC2086
  "$eph" post $flags --status 0 >/dev/null 2>&1
  t3=$(now)
  echo "$(secs "$t0" "$t1") $(secs "$t1" "$t2") $(secs "$t2" "$t3")" >> "$B/$preset.$name"
}

for preset in cargo ccache npm; do
  for r in $(seq 1 "$rounds"); do
    machine "$preset" cold
    machine "$preset" warm
  done
done

printf '%-8s %10s %10s %8s %10s %10s %10s\n' preset "cold job" "warm job" ratio "warm pre" "cold post" "warm post"
for preset in cargo ccache npm; do
  cold=$(awk '{print $2}' "$B/$preset.cold" | med)
  warm=$(awk '{print $2}' "$B/$preset.warm" | med)
  pre=$(awk '{print $1}' "$B/$preset.warm" | med)
  cpost=$(awk '{print $3}' "$B/$preset.cold" | med)
  wpost=$(awk '{print $3}' "$B/$preset.warm" | med)
  printf '%-8s %9ss %9ss %7sx %9ss %9ss %9ss\n' "$preset" "$cold" "$warm" \
    "$(awk "BEGIN { printf \"%.2f\", $warm / $cold }")" "$pre" "$cpost" "$wpost"
done
echo "(median of $rounds rounds; job = the build alone; warm post = a save skipped, nothing changed)"
