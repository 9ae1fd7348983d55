#!/bin/sh
# Incremental saves against today's single archive, side by side on the same states, warm
# cache, stores and restores in tmpfs (a VM disk's writeback throttling swamps the formats):
# for each pair of states A -> B, the bytes a second, content-addressed save of B uploads
# against a base of A, beside a full tar.zst of B; its wall time beside a full pack of B; a
# verified restore of B beside a full-archive restore of B; and the first (full) save of A
# beside a full pack of A. Ratios are ours / full. As in a job, B is made where A was restored:
# A is restored from the store into a work dir (recording what it wrote), B is brought over it
# with `rsync --checksum --delete` (changed files rewritten, the others untouched, as npm and
# ccache leave them), and the second save reads only what the restore did not write as it is.
#   npm-1  a node_modules from the npm registry, then five patch bumps (lockfile kept)
#   npm-2  npm-1's B, then five minor and major bumps
#   npm-3  npm-1 with every mtime fresh, as `rm -rf node_modules && npm ci` leaves it
#   ccache a ccache dir of compiled C++ objects, then 3% of the sources edited and rebuilt
#   rust   a cargo workspace's target/ (three crates on a dozen crates Debian ships as
#          librust-*-dev, built offline through source replacement), then one crate edited
#          and rebuilt
# The floor of a restore is printed beside it: `zstd -d` of the full archive alone, and
# `cp -a` of the tree alone (writing the files, no format at all). With STORE, the full
# archive of B is put in the store too and restored from there as a restore does it (the
# download, then the unpack), and ours is set beside max(download alone, unpack alone) of the
# same bytes: its packs downloaded whole with nothing written, and restored from a copy of them
# in a local directory.
# usage: sh bench/incremental.sh [PAIR...]   (BENCH_DIR, default /tmp/ephemera-incremental;
#        STORE: a store URL to use instead of a tmpfs directory, e.g. s3://bucket/bench;
#        TMPFS_DIR: where stores and restores go, default /dev/shm/ephemera-incremental;
#        a directory on disk, e.g. /var/tmp/ephemera-incremental, measures on disk)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
B=${BENCH_DIR:-/tmp/ephemera-incremental}
T=${TMPFS_DIR:-/dev/shm/ephemera-incremental}
mkdir -p "$B" "$T"
sh tools/install-deps.sh build >/dev/null
command -v npm >/dev/null || apt-get install -y -qq npm >/dev/null
command -v ccache >/dev/null || apt-get install -y -qq ccache >/dev/null
command -v rsync >/dev/null || apt-get install -y -qq rsync >/dev/null
case " ${*:-rust} " in
*" rust "*)
  [ -x /usr/bin/cargo ] || apt-get install -y -qq cargo >/dev/null
  for crate in serde-dev serde-derive-dev serde-json-dev regex-dev smallvec-dev rayon-dev; do
    dpkg -s "librust-$crate" >/dev/null 2>&1 || apt-get install -y -qq "librust-$crate" >/dev/null
  done
  ;;
esac
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build bench/cas/bench_cas bench/archive/bench_archive bench/store/bench_store >/dev/null
cas="$top/build/bench/cas/bench_cas"
obj="$top/build/bench/store/bench_store"
full="$top/build/bench/archive/bench_archive"
pairs=${*:-npm-1 npm-2 npm-3 ccache rust}

# npm_state DIR [PKG@VERSION...]: DIR/node_modules from A's package.json, or DIR copied from
# npm-1's B (npm-2) with the given packages installed over it.
npm_a() {
  [ -d "$B/npm-a/node_modules" ] && return
  mkdir -p "$B/npm-a"
  cp "$top/bench/incremental-package.json" "$B/npm-a/package.json"
  (cd "$B/npm-a" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
}
npm_over() { # NEW FROM PKG...
  new=$1 from=$2
  shift 2
  [ -d "$B/$new/node_modules" ] && return
  rm -rf "$B/$new"
  cp -a "$B/$from" "$B/$new"
  (cd "$B/$new" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error "$@" >/dev/null)
}
npm_b() { npm_a; npm_over npm-b npm-a webpack@5.76.0 eslint@8.31.0 @babel/core@7.20.12 typescript@4.9.5 lodash@4.17.21; }
npm_c() { npm_b; npm_over npm-c npm-b typescript@5.0.4 jest@29.7.0 eslint@8.57.0 @babel/preset-env@7.23.2 webpack@5.88.2; }
npm_fresh() {
  npm_b
  [ -d "$B/npm-b-fresh/node_modules" ] && return
  cp -a "$B/npm-b" "$B/npm-b-fresh"
  find "$B/npm-b-fresh/node_modules" -exec touch -h -d @1764590400 {} +
}

# A synthetic C++ project (generated, deterministic) compiled through ccache into a fresh
# cache dir (state A), then 3% of its sources edited and built again (state B).
ccache_states() {
  [ -d "$B/ccache-b/cache" ] && return
  n=${CCACHE_FILES:-100}
  rm -rf "$B/ccache-src" "$B/ccache-a" "$B/ccache-b"
  mkdir -p "$B/ccache-src" "$B/ccache-a"
  i=0
  while [ $i -lt $n ]; do
    cat > "$B/ccache-src/f$i.cpp" <<CPP
#include <algorithm>
#include <map>
#include <string>
#include <vector>
template <typename T> struct Box$i { std::vector<T> v; std::map<std::string, T> m; };
int value$i() { return $i * 7; }
std::string f$i(int x) {
  Box$i<int> b;
  for (int k = 0; k < x + value$i(); ++k) { b.v.push_back(k); b.m[std::to_string(k)] = k; }
  std::sort(b.v.begin(), b.v.end());
  return std::to_string(b.v.size() + b.m.size());
}
CPP
    i=$((i + 1))
  done
  build_ccache() {
    for f in "$B"/ccache-src/*.cpp; do
      CCACHE_DIR="$1" ccache g++ -std=c++17 -O1 -g -c "$f" -o "${f%.cpp}.o"
    done
  }
  build_ccache "$B/ccache-a/cache"
  cp -a "$B/ccache-a" "$B/ccache-b"
  edits=$(( (n * 3 + 99) / 100 ))
  i=0
  while [ $i -lt "$edits" ]; do
    sed -i "s/return $i \* 7;/return $i * 11;/" "$B/ccache-src/f$i.cpp"
    i=$((i + 1))
  done
  build_ccache "$B/ccache-b/cache"
}

# A cargo workspace of three crates (two libraries and a binary on serde with its derive,
# serde_json, regex, smallvec and rayon), built with Debian's cargo and rustc offline against
# /usr/share/cargo/registry (the librust-*-dev packages, through source replacement): its
# target/ is state A; one function of one library edited and the workspace built again, as a
# pull request does, gives state B. Both are built in the same place (cargo's fingerprints
# hold paths), a debug build as `cargo build` makes it.
rust_states() {
  [ -d "$B/rust-b/target" ] && return
  s="$B/rust-src"
  rm -rf "$s" "$B/rust-a" "$B/rust-b" "$B/rust-home"
  mkdir -p "$s/model/src" "$s/text/src" "$s/app/src" "$B/rust-home" "$B/rust-a" "$B/rust-b"
  cat >"$B/rust-home/config.toml" <<'TOML'
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
TOML
  printf '[workspace]\nmembers = ["model", "text", "app"]\n' >"$s/Cargo.toml"
  cat >"$s/model/Cargo.toml" <<'TOML'
[package]
name = "model"
version = "0.1.0"
edition = "2021"

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
TOML
  cat >"$s/model/src/lib.rs" <<'RS'
use serde::{Deserialize, Serialize};

/// One build step, as the tool reports it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub seconds: f64,
    pub outputs: Vec<String>,
}

/// The steps of a JSON report.
pub fn parse(text: &str) -> serde_json::Result<Vec<Step>> {
    serde_json::from_str(text)
}

/// The report of steps, as JSON.
pub fn render(steps: &[Step]) -> String {
    serde_json::to_string_pretty(steps).unwrap_or_default()
}
RS
  cat >"$s/text/Cargo.toml" <<'TOML'
[package]
name = "text"
version = "0.1.0"
edition = "2021"

[dependencies]
regex = "1"
smallvec = "1"
rayon = "1"
TOML
  cat >"$s/text/src/lib.rs" <<'RS'
use rayon::prelude::*;
use regex::Regex;
use smallvec::SmallVec;

/// The words of each line that look like identifiers, in parallel.
pub fn identifiers(lines: &[String]) -> Vec<SmallVec<[String; 4]>> {
    let re = Regex::new(r"[A-Za-z_][A-Za-z0-9_]*").unwrap();
    lines
        .par_iter()
        .map(|l| re.find_iter(l).map(|m| m.as_str().to_string()).collect())
        .collect()
}

/// A weight for a word.
pub fn weight(word: &str) -> usize {
    word.len() * 3
}
RS
  cat >"$s/app/Cargo.toml" <<'TOML'
[package]
name = "app"
version = "0.1.0"
edition = "2021"

[dependencies]
model = { path = "../model" }
text = { path = "../text" }
TOML
  cat >"$s/app/src/main.rs" <<'RS'
fn main() {
    let lines: Vec<String> = std::env::args().skip(1).collect();
    let steps: Vec<model::Step> = text::identifiers(&lines)
        .into_iter()
        .enumerate()
        .map(|(i, words)| model::Step {
            name: format!("line{}", i),
            seconds: words.iter().map(|w| text::weight(w)).sum::<usize>() as f64,
            outputs: words.into_vec(),
        })
        .collect();
    println!("{}", model::render(&steps));
}
RS
  rust_build() {
    (cd "$s" && PATH=/usr/bin:/bin CARGO_HOME="$B/rust-home" cargo build --offline -q)
  }
  rust_build
  cp -a "$s/target" "$B/rust-a/target"
  sed -i 's/word.len() \* 3/word.len() * 5 + 1/' "$s/text/src/lib.rs"
  rust_build
  cp -a "$s/target" "$B/rust-b/target"
}

# t OUT CMD...: CMD's stdout to OUT; its wall seconds, peak RSS (KiB) and CPU seconds (user
# + system: what a loaded machine changes least) to OUT.t.
t() {
  out=$1
  shift
  /usr/bin/time -f '%e %M %U %S' -o "$out.t" "$@" >"$out"
  awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$out.t" >"$out.t2" && mv "$out.t2" "$out.t"
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
mib() { awk -v a="$1" 'BEGIN { printf "%.2f", a / 1048576 }'; }

store_for() { # PAIR: a fresh store
  if [ -n "${STORE:-}" ]; then
    # The pair's own prefix, before any ?query of the URL.
    case $STORE in
    *\?*) echo "${STORE%%\?*}/$1-$(date +%s)?${STORE#*\?}" ;;
    *) echo "$STORE/$1-$(date +%s)" ;;
    esac
  else
    rm -rf "$T/store-$1"
    echo "$T/store-$1"
  fi
}

printf '%-7s %9s %9s %7s | %7s %7s %6s | %7s %7s %6s | %7s %7s %6s | %6s %6s\n' \
  pair full_MiB 2nd_MiB ratio full_s 2nd_s ratio unpk_s rest_s ratio pack_A_s 1st_s ratio \
  rss_MiB full_rss
for pair in $pairs; do
  case $pair in
  npm-1) npm_b; a="$B/npm-a/node_modules" b="$B/npm-b/node_modules" ;;
  npm-2) npm_c; a="$B/npm-b/node_modules" b="$B/npm-c/node_modules" ;;
  npm-3) npm_fresh; a="$B/npm-a/node_modules" b="$B/npm-b-fresh/node_modules" ;;
  ccache) ccache_states; a="$B/ccache-a/cache" b="$B/ccache-b/cache" ;;
  rust) rust_states; a="$B/rust-a/target" b="$B/rust-b/target" ;;
  *) echo "unknown pair $pair" >&2; exit 2 ;;
  esac
  find "$a" "$b" -type f -exec cat {} + >/dev/null # warm
  o="$T/$pair"
  rm -rf "$o" && mkdir -p "$o"
  # Ours: the first save of A; A restored into a work dir and turned into B there, as a job
  # does; the second save of it on A's index; a verified restore of B.
  st=$(store_for "$pair")
  t "$o/save-a" "$cas" save "$st" "$a"
  base=$(sed -n "s/^index='\([^']*\)'.*/\1/p" "$o/save-a")
  w="$o/work/$(basename "$b")"
  EPHEMERA_CAS_SEEN="$o/seen" "$cas" restore "$st" "$base" "$o/work" >/dev/null
  rsync -a --checksum --delete "$b/" "$w/"
  t "$o/save-b" env EPHEMERA_CAS_SEEN="$o/seen" "$cas" save "$st" "$w" "$base"
  idx=$(sed -n "s/^index='\([^']*\)'.*/\1/p" "$o/save-b")
  t "$o/restore-b" "$cas" restore "$st" "$idx" "$o/cas-out"
  # Today: a full archive of A and of B, and a restore of B's.
  t "$o/pack-a" "$full" pack "$a" "$o/a.tar.zst"
  t "$o/pack-b" "$full" pack "$w" "$o/b.tar.zst"
  t "$o/unpack-b" "$full" unpack "$o/b.tar.zst" "$o/full-out"
  # The floor: decompressing the archive alone, and copying the tree alone.
  t "$o/zstd-b" zstd -d -c "$o/b.tar.zst"
  rm -f "$o/zstd-b"
  t "$o/cp-b" cp -a "$b" "$o/cp-out"
  if [ -n "${STORE:-}" ]; then
    # From the store: the full archive (download, then unpack), and ours beside its floor.
    "$obj" put "$st" full/b.tar.zst "$o/b.tar.zst"
    cp "$o/b.tar.zst.sha256" "$o/b-down.tar.zst.sha256"
    t "$o/full-rgw" sh -c '"$1" get "$2" full/b.tar.zst "$3" && "$4" unpack "$3" "$5"' sh \
      "$obj" "$st" "$o/b-down.tar.zst" "$full" "$o/rgw-out"
    t "$o/get-b" "$obj" get "$st" full/b.tar.zst "$o/b-down.tar.zst"
    t "$o/fetch-b" "$cas" fetch "$st" "$idx"
    "$cas" mirror "$st" "$idx" "$T/mirror-$pair" >/dev/null
    t "$o/local-b" "$cas" restore "$T/mirror-$pair" "$idx" "$o/local-out"
    diff -r "$o/full-out" "$o/rgw-out" >/dev/null || { echo "$pair: archive restores differ" >&2; exit 1; }
    read -r rgw_s _ rgw_cpu <"$o/full-rgw.t"
    read -r get_s _ get_cpu <"$o/get-b.t"
    read -r fetch_s _ fetch_cpu <"$o/fetch-b.t"
    read -r local_s _ local_cpu <"$o/local-b.t"
    read -r ours_s _ ours_cpu <"$o/restore-b.t"
    floor=$(printf '%s\n' "$fetch_s" "$local_s" | sort -n | tail -1)
    echo "  from the store, wall/cpu s: ours $ours_s/$ours_cpu, full archive (download+unpack)" \
      "$rgw_s/$rgw_cpu ($(ratio "$ours_s" "$rgw_s")x wall, $(ratio "$ours_cpu" "$rgw_cpu")x cpu)," \
      "its download alone $get_s/$get_cpu; our packs' download alone $fetch_s/$fetch_cpu," \
      "restore from a local copy $local_s/$local_cpu: ours/max $(ratio "$ours_s" "$floor")x"
    rm -rf "$o/rgw-out" "$o/local-out" "$o/b-down.tar.zst" "$T/mirror-$pair"
  fi
  diff -r "$o/full-out" "$o/cas-out" >/dev/null || { echo "$pair: restores differ" >&2; exit 1; }
  diff -r "$b" "$o/cas-out/$(basename "$b")" >/dev/null || { echo "$pair: the restore is not B" >&2; exit 1; }
  full_bytes=$(stat -c %s "$o/b.tar.zst")
  second=$(field uploaded "$o/save-b")
  read -r pack_a_s pack_a_rss pack_a_cpu <"$o/pack-a.t"
  read -r pack_b_s pack_b_rss pack_b_cpu <"$o/pack-b.t"
  read -r unpack_s _ unpack_cpu <"$o/unpack-b.t"
  read -r first_s first_rss first_cpu <"$o/save-a.t"
  read -r second_s second_rss second_cpu <"$o/save-b.t"
  read -r restore_s restore_rss restore_cpu <"$o/restore-b.t"
  read -r zstd_s _ zstd_cpu <"$o/zstd-b.t"
  read -r cp_s _ cp_cpu <"$o/cp-b.t"
  rss=$(printf '%s\n' "$first_rss" "$second_rss" "$restore_rss" | sort -n | tail -1)
  printf '%-7s %9s %9s %7s | %7s %7s %6s | %7s %7s %6s | %7s %7s %6s | %6s %6s\n' "$pair" \
    "$(mib "$full_bytes")" "$(mib "$second")" "$(ratio "$second" "$full_bytes")" \
    "$pack_b_s" "$second_s" "$(ratio "$second_s" "$pack_b_s")" \
    "$unpack_s" "$restore_s" "$(ratio "$restore_s" "$unpack_s")" \
    "$pack_a_s" "$first_s" "$(ratio "$first_s" "$pack_a_s")" \
    "$((rss / 1024))" "$((pack_b_rss / 1024))"
  echo "  second save: $(grep -o 'packs=.*files_read=[0-9]*' "$o/save-b")"
  echo "  cpu s: full pack B $pack_b_cpu, 2nd save $second_cpu ($(ratio "$second_cpu" "$pack_b_cpu")x);" \
    "full unpack $unpack_cpu, restore $restore_cpu ($(ratio "$restore_cpu" "$unpack_cpu")x);" \
    "pack A $pack_a_cpu, 1st save $first_cpu ($(ratio "$first_cpu" "$pack_a_cpu")x)"
  echo "  restore wall/cpu s: ours $restore_s/$restore_cpu, full unpack $unpack_s/$unpack_cpu;" \
    "floor: zstd -d alone $zstd_s/$zstd_cpu, cp -a alone $cp_s/$cp_cpu" \
    "(ours/cp -a cpu $(ratio "$restore_cpu" "$cp_cpu")x)"
  rm -rf "$o/full-out" "$o/cas-out" "$o/work" "$o/cp-out"
  [ -n "${STORE:-}" ] || rm -rf "$st"
done
