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
#: # The crates cargo downloads: keyed by the lock file, any older set is a good start.
#: [[persist]]
#: name = "cargo-registry"
#: rules = [
#:	"~/.cargo/registry/**/*",
#:	"!~/.cargo/registry/src/**/*",	# cargo re-extracts these from the .crate files
#:	"~/.cargo/git/db",
#: ]
#: epoch = 1
#: cache_key = "registry"
#: key_files = ["Cargo.lock"]
#: restore_keys = ["registry"]
#: max_size = "2GiB"
#:
#: # Build outputs of dependencies, per branch; incremental state is never worth it.
#: [[persist]]
#: name = "target"
#: rules = [
#:	"target/debug/deps/**/*",
#:	"target/debug/build/**/*",
#:	"target/debug/.fingerprint/**/*",
#:	"!target/debug/incremental",
#:	"!target/**/*.d",
#: ]
#: epoch = 3
#: cache_key = "debug"
#: key_files = ["Cargo.lock", "rust-toolchain.toml"]
#: restore_keys = ["debug"]
#: share = "branch"
#: level = 1
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
