#!/bin/bash
#: name = "c-build"
#: variety = "basic"
#:
#: [[persist]]
#: name = "ccache"
#: # ccache updates its statistics while a build runs elsewhere on the machine: '%'
#: # archives them as read instead of failing the save.
#: rules = [
#:   "~/.cache/ccache/**/*",
#:   "%~/.cache/ccache/**/stats",
#: ]
#: epoch = 1
#: cache_key = "gcc-12"
#: restore_keys = ["gcc-"]
#: max_size = "500MB"

set -o errexit
export CCACHE_DIR="$HOME/.cache/ccache"
ccache --zero-stats
make CC="ccache cc" -j"$(nproc)"
ccache --show-stats
