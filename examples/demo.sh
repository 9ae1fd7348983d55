#!/bin/sh
# Installs what is missing, builds ephemera, and checks the example jobs.
set -eu
cd "$(dirname "$0")/.."
sh tools/install-deps.sh build
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
./build/ephemera version
