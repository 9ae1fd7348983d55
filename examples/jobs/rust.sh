#!/bin/bash
#
# Copyright 2026 The ephemera authors
#
# Licensed under the Mozilla Public License 2.0.
#
#:
#: name = "build-and-test / rust"
#: variety = "basic"
#: target = "helios-2.0"
#: rust_toolchain = "1.85.0"
#: output_rules = [
#:	"/work/out/*",
#:	"=/work/out/app.tar.gz",
#: ]
#: access_repos = [
#:	"oxidecomputer/illumos-gate",
#: ]
#:
#: [[publish]]
#: from_output = "/work/out/app.tar.gz"
#: series = "image"
#: name = "app.tar.gz"
#:
#: [dependencies.build-tools]
#: job = "build-tools"
#:
#: # The crates cargo downloads, keyed by the lock file (`ephemera presets` shows what a
#: # preset expands to; any key written here overrides the preset's).
#: [[persist]]
#: preset = "cargo-registry"
#: epoch = 1
#: max_size = "2GiB"
#:
#: # Build outputs of third-party crates, keyed by the toolchain and the lock file; the
#: # workspace's own crates are left out, so editing them saves nothing.
#: [[persist]]
#: preset = "cargo-deps"
#: epoch = 3
#: share = "branch"
#

set -o errexit
set -o pipefail
set -o xtrace

cargo --version
rustc --version

banner build
ptime -m cargo build --locked

banner test
ptime -m cargo test --locked
