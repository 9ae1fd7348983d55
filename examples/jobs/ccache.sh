#!/bin/bash
#: name = "c-build"
#: variety = "basic"
#:
#: # The cache keyed by the versions of cc and c++; its statistics are not saved, and a job
#: # that only hit the cache saves nothing.
#: [[persist]]
#: preset = "ccache"
#: epoch = 1
#: max_size = "500MB"

set -o errexit
export CCACHE_DIR="$HOME/.cache/ccache"
make CC="ccache cc" -j"$(nproc)"
ccache --show-stats
