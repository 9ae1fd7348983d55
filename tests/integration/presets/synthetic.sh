# The presets whose tools cannot run here, on trees laid out as each tool's documentation
# says it lays them out: what is kept is restored on a pristine machine, what is excluded
# is not, a post with nothing changed saves nothing, and the key follows the key files.
. "$(dirname "$0")/common.sh"

ctx feature pull_request

# check_preset PRESET KEEP SKIP KEYFILE: KEEP and SKIP are space-separated paths (~/ for the
# home, else the checkout) that the populate_PRESET function creates.
check_preset() {
  local preset=$1 keep=$2 skip=$3 keyfile=$4
  preset_job "$preset"
  machine "$preset-cold"
  "populate_${preset//-/_}"
  mkdir -p "$(dirname "$M/work/job/$keyfile")" && echo "lock 1" > "$M/work/job/$keyfile"
  eph post --job "$JOB" --status 0
  expect_result post "$preset" saved
  machine "$preset-warm"
  mkdir -p "$(dirname "$M/work/job/$keyfile")" && echo "lock 1" > "$M/work/job/$keyfile"
  eph pre --job "$JOB"
  expect_result pre "$preset" hit
  for p in $keep; do
    local at="$M/work/job/$p"
    [ "${p#\~/}" = "$p" ] || at="$M/home/build/${p#\~/}"
    [ -e "$at" ] || fail "$preset: $p was not restored"
    cmp -s "$at" "$SCRATCH/$preset-cold/${at#"$M/"}" || fail "$preset: $p differs"
  done
  for p in $skip; do
    local at="$M/work/job/$p"
    [ "${p#\~/}" = "$p" ] || at="$M/home/build/${p#\~/}"
    [ ! -e "$at" ] || fail "$preset: $p was saved, the preset excludes it"
  done
  eph post --job "$JOB" --status 0
  expect_result post "$preset" unchanged
  # Another lock: another key, found through the preset's restore_keys where it has them.
  machine "$preset-relock"
  mkdir -p "$(dirname "$M/work/job/$keyfile")" && echo "lock 2" > "$M/work/job/$keyfile"
  eph pre --job "$JOB"
  if "$EPHEMERA" presets --json | python3 -c 'import json,sys; p=[x for x in json.load(sys.stdin) if x["name"]==sys.argv[1]][0]; sys.exit(0 if p["restore_keys"] else 1)' "$preset"; then
    expect_result pre "$preset" hit
    report_json | grep -q '"step": "prefix"' || fail "$preset: a new lock did not hit by prefix"
  else
    expect_result pre "$preset" miss
  fi
}

file() { mkdir -p "$(dirname "$1")" && head -c "${2:-100}" /dev/urandom > "$1"; }

populate_go() {
  local h="$M/home/build"
  file "$h/go/pkg/mod/cache/download/golang.org/x/text/@v/v0.14.0.zip" 3000
  file "$h/go/pkg/mod/golang.org/x/text@v0.14.0/go.mod"
  chmod -R a-w "$h/go/pkg/mod/golang.org/x/text@v0.14.0" # go makes the module cache read-only
  file "$h/.cache/go-build/ab/abcdef0123-a" 500
  file "$h/.cache/go-build/trim.txt" 10
}
check_preset go "~/go/pkg/mod/cache/download/golang.org/x/text/@v/v0.14.0.zip ~/.cache/go-build/ab/abcdef0123-a" "" go.sum
# go touches the build-cache entries it uses: that alone saves nothing.
touch -d '+1 hour' "$M/../go-warm/home/build/.cache/go-build/ab/abcdef0123-a"
M="$SCRATCH/go-warm"
eph post --job "$JOB" --status 0
expect_result post go unchanged

populate_pip() {
  local h="$M/home/build"
  file "$h/.cache/pip/wheels/3a/7f/requests-2.31.0-py3-none-any.whl" 2000
  file "$h/.cache/pip/http-v2/a/b/c/d/e/abcdef" 400
  file "$h/.cache/pip/selfcheck/f00.json" 50
}
check_preset pip "~/.cache/pip/wheels/3a/7f/requests-2.31.0-py3-none-any.whl ~/.cache/pip/http-v2/a/b/c/d/e/abcdef" "~/.cache/pip/selfcheck/f00.json" requirements.txt

populate_gradle() {
  local h="$M/home/build"
  file "$h/.gradle/caches/modules-2/files-2.1/com.google.guava/guava/32.1.2-jre/5e64/guava-32.1.2-jre.jar" 3000
  file "$h/.gradle/caches/modules-2/modules-2.lock" 17
  file "$h/.gradle/caches/modules-2/gc.properties" 0
  file "$h/.gradle/caches/8.4/plugin-resolution/x.bin" 30
  file "$h/.gradle/caches/8.4/fileHashes/fileHashes.lock" 17
  file "$h/.gradle/wrapper/dists/gradle-8.4-bin/1w5dpkrfk8irigvoxmyhowfim/gradle-8.4-bin.zip" 2000
}
check_preset gradle "~/.gradle/caches/modules-2/files-2.1/com.google.guava/guava/32.1.2-jre/5e64/guava-32.1.2-jre.jar ~/.gradle/wrapper/dists/gradle-8.4-bin/1w5dpkrfk8irigvoxmyhowfim/gradle-8.4-bin.zip" "~/.gradle/caches/modules-2/modules-2.lock ~/.gradle/caches/modules-2/gc.properties ~/.gradle/caches/8.4/plugin-resolution/x.bin ~/.gradle/caches/8.4/fileHashes/fileHashes.lock" gradle/wrapper/gradle-wrapper.properties

populate_maven() {
  local r="$M/home/build/.m2/repository"
  file "$r/org/slf4j/slf4j-api/2.0.9/slf4j-api-2.0.9.jar" 2000
  file "$r/org/slf4j/slf4j-api/2.0.9/slf4j-api-2.0.9.pom" 300
  file "$r/org/example/missing/1.0/missing-1.0.jar.lastUpdated" 40
  file "$r/org/example/missing/resolver-status.properties" 40
}
check_preset maven "~/.m2/repository/org/slf4j/slf4j-api/2.0.9/slf4j-api-2.0.9.jar ~/.m2/repository/org/slf4j/slf4j-api/2.0.9/slf4j-api-2.0.9.pom" "~/.m2/repository/org/example/missing/1.0/missing-1.0.jar.lastUpdated ~/.m2/repository/org/example/missing/resolver-status.properties" pom.xml

populate_pnpm() {
  file "$M/home/build/.local/share/pnpm/store/v3/files/00/abcdef" 500
}
check_preset pnpm "~/.local/share/pnpm/store/v3/files/00/abcdef" "" pnpm-lock.yaml

populate_yarn() {
  file "$M/home/build/.cache/yarn/v6/npm-ms-2.1.3-abc/node_modules/ms/index.js" 300
  file "$M/home/build/.yarn/berry/cache/ms-npm-2.1.3-abc-10c0.zip" 300
}
check_preset yarn "~/.cache/yarn/v6/npm-ms-2.1.3-abc/node_modules/ms/index.js ~/.yarn/berry/cache/ms-npm-2.1.3-abc-10c0.zip" "" yarn.lock

populate_node_modules() {
  file "$M/work/job/node_modules/ms/index.js" 300
  file "$M/work/job/node_modules/.cache/babel-loader/x.json" 300
}
check_preset node-modules "node_modules/ms/index.js" "node_modules/.cache/babel-loader/x.json" package-lock.json

populate_cargo_registry() {
  local c="$M/home/build/.cargo"
  file "$c/registry/index/index.crates.io-6f17d22bba15001f/.cache/se/rd/serde" 500
  file "$c/registry/cache/index.crates.io-6f17d22bba15001f/serde-1.0.152.crate" 2000
  file "$c/registry/src/index.crates.io-6f17d22bba15001f/serde-1.0.152/src/lib.rs" 800
  file "$c/git/db/gimli-a0d193bd15a5ed96/objects/pack/pack-1.pack" 300
  file "$c/git/checkouts/gimli-a0d193bd15a5ed96/12345/src/lib.rs" 300
}
check_preset cargo-registry "~/.cargo/registry/cache/index.crates.io-6f17d22bba15001f/serde-1.0.152.crate ~/.cargo/registry/index/index.crates.io-6f17d22bba15001f/.cache/se/rd/serde ~/.cargo/git/db/gimli-a0d193bd15a5ed96/objects/pack/pack-1.pack" "~/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde-1.0.152/src/lib.rs ~/.cargo/git/checkouts/gimli-a0d193bd15a5ed96/12345/src/lib.rs" Cargo.lock
echo "ok"
