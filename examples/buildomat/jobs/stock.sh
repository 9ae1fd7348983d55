#!/bin/bash
#:
#: name = "stock"
#: variety = "basic"
#: target = "helios-2.0"
#: rust_toolchain = "stable"
#: output_rules = []
#:

# A stock buildomat server refuses keys it does not know, so this job keeps its
# [[persist]] stanzas in ../persist/stock.toml, which ephemera reads by itself.
set -o errexit
cargo build --release
