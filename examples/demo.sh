#!/bin/sh
# Installs what is missing, builds ephemera, then runs an example job twice through a
# stand-in agent in a scratch root with the local store: cold (nothing restored, saved),
# then warm (restored, the expensive steps skipped, the unchanged save skipped).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
sh tools/install-deps.sh build
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

echo "== ephemera check: the example jobs"
./build/ephemera check examples/demo/build.sh examples/jobs/*.sh examples/jobs/*.toml \
  examples/buildomat/jobs/*.sh

scratch=$(mktemp -d /tmp/ephemera-demo.XXXXXX)
export EPHEMERA="$top/build/ephemera"
export EPHEMERA_STORE="$scratch/store"
export GITHUB_REPOSITORY=example/demo GITHUB_BRANCH=feature/faster EPHEMERA_EVENT=pull_request
export GITHUB_SHA=0123456789abcdef0123456789abcdef01234567
export JOB_WORKDIR=/work/demo JOB_HOME=/home/build
printf 'dep-set 1\n' > "$scratch/deps.lock"

run() {
  # Each run is a pristine machine: a fresh root, its own state dir.
  machine="$scratch/machine$1"
  mkdir -p "$machine/work/demo" "$machine/home/build"
  cp "$scratch/deps.lock" "$machine/work/demo/"
  export EPHEMERA_ROOT="$machine" EPHEMERA_STATE_DIR="$machine/state" BUILDOMAT_JOB_ID="demo-$1"
  start=$(date +%s.%N)
  sh examples/agent.sh "$top/examples/demo/build.sh"
  end=$(date +%s.%N)
  echo "== run $1 took $(awk "BEGIN{printf \"%.1f\", $end-$start}") s"
}

echo "== run 1: cold"
run 1
echo
echo "== run 2: warm"
run 2
echo
echo "== the store"
./build/ephemera ls --store "$EPHEMERA_STORE" || true
echo "demo scratch directory: $scratch"
