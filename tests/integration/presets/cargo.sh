# cargo-deps on a real, offline build: a workspace of two crates on five
# crates Debian ships (librust-*-dev, through source replacement). Cold, then warm: the warm
# job compiles no registry crate, only the workspace's, and its post saves nothing; editing
# a workspace crate changes nothing saved either.
. "$(dirname "$0")/common.sh"

export PATH=/usr/bin:/bin # Debian's cargo and rustc, for the build and the key's `rustc -vV`
command -v cargo > /dev/null || fail "cargo is not installed (apt-get install cargo)"
[ -d /usr/share/cargo/registry/memchr-2.5.0 ] || fail "librust-memchr-dev is not installed"
SRC="$SOURCE_ROOT/tests/data/presets/cargo"
THIRD_PARTY='cfg-if|itoa|memchr|ryu|smallvec'

cat > "$JOB" <<'TOML'
name = "build"
variety = "basic"

[[persist]]
preset = "cargo-deps"
epoch = 1
TOML
"$EPHEMERA" check "$JOB" > "$SCRATCH/check.txt"
grep -q 'preset cargo-deps' "$SCRATCH/check.txt" || fail "check does not show the expansion"

build() {
  mkdir -p "$HOME/.cargo"
  printf '[source.crates-io]\nreplace-with = "debian"\n[source.debian]\ndirectory = "/usr/share/cargo/registry"\n[net]\noffline = true\n' \
    > "$HOME/.cargo/config.toml"
  CARGO_HOME="$HOME/.cargo" cargo build --offline
  ./target/debug/app
}
export -f build

ctx feature pull_request
run_job cold "$SRC" bash -c build
expect_result pre cargo-deps miss
expect_result post cargo-deps saved
grep -Eq "Compiling ($THIRD_PARTY) v" "$SCRATCH/cold.log" || fail "the cold job compiled no registry crate"
# match shows the set as pre and post derive it: the workspace's crates left out.
eph match --job "$JOB" --name cargo-deps > "$SCRATCH/match.txt" 2> /dev/null
grep -q '/target/debug/deps/libmemchr-' "$SCRATCH/match.txt" || fail "match lists no registry crate"
if grep -E 'itoa[-_]fmt|/app-' "$SCRATCH/match.txt"; then
  fail "match lists the workspace's crates"
fi

run_job warm "$SRC" bash -c build
expect_result pre cargo-deps hit
fp="$M/work/job/target/debug/.fingerprint"
ls "$fp" | grep -Eq '^memchr-[0-9a-f]{16}$' || fail "memchr's fingerprint was not restored"
if grep -E "Compiling ($THIRD_PARTY) v" "$SCRATCH/warm.log"; then
  fail "the warm job compiled a registry crate"
fi
grep -q "Compiling itoa-fmt v" "$SCRATCH/warm.log" || fail "the workspace's crates were restored"
grep -q '^42 42.0 unix' "$SCRATCH/warm.log" || fail "the warm build does not run"
expect_result post cargo-deps unchanged

# A second warm job that edits a workspace crate: only that crate and app compile, nothing
# third-party changed, nothing is saved.
cp -a "$SRC" "$SCRATCH/edited"
sed -i 's/format!("{} {}"/format!("{}  {}"/' "$SCRATCH/edited/itoa-fmt/src/lib.rs"
run_job warm2 "$SCRATCH/edited" bash -c build
expect_result pre cargo-deps hit
if grep -E "Compiling ($THIRD_PARTY) v" "$SCRATCH/warm2.log"; then
  fail "the second warm job compiled a registry crate"
fi
grep -q "Compiling itoa-fmt v" "$SCRATCH/warm2.log" || fail "the edited crate was not rebuilt"
expect_result post cargo-deps unchanged
echo "ok"
