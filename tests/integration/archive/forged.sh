# Forged archives planted in a local store by a store writer (signing off, so a manifest
# that matches its archive is accepted): whatever they hold, a restore never changes a
# directory the stanza's rules do not select, and an archive object that is not a regular
# file is refused without hanging.
. "$(dirname "$0")/../lib.sh"
# These saves are single archives (EPHEMERA_FORMAT=archive), the format this script forges
# and inspects object by object; stores keep holding and restoring them.
export EPHEMERA_FORMAT=archive
FORGE="$SOURCE_ROOT/tests/integration/archive/forge.py"

# stanza_job FILE RULE: one stanza 'deps' with that single rule.
stanza_job() {
  printf 'name = "build"\nvariety = "basic"\n[[persist]]\nname = "deps"\nrules = ["%s"]\n' "$2" > "$1"
  printf 'epoch = 1\ncache_key = "deps"\n' >> "$1"
}

# saved RULE SETUP: a fresh store holding one real save of a stanza with RULE, made on a
# machine where SETUP (a shell snippet, run in $M) put the files.
saved() {
  export EPHEMERA_STORE="$SCRATCH/store-$RANDOM"
  stanza_job "$SCRATCH/job.toml" "$1"
  machine "save-$RANDOM"
  (cd "$M" && sh -c "$2")
  eph post --job "$SCRATCH/job.toml" --status 0 >/dev/null
  expect_result post deps saved
}

ctx feature pull_request

# An archive object that is a fifo nobody writes: a plain open would wait forever.
saved "target" 'mkdir -p work/job/target && echo x > work/job/target/x'
"$FORGE" --fifo "$EPHEMERA_STORE"
machine fifo
timeout 60 "$EPHEMERA" pre --job "$SCRATCH/job.toml" --root "$M" --workdir /work/job \
  --home /home/build --state-dir "$M/state" 2> "$SCRATCH/err" || fail "pre hung or failed on a fifo"
expect_result pre deps failed
grep -q 'not a regular file' "$SCRATCH/err" || fail "no word that the archive is not a regular file"
[ ! -e "$M/work/job/target" ] || fail "something was restored from a fifo"

# '/tmp/**/*.txt' selects text files below /tmp, never /tmp itself: its sticky bit stays.
saved "/tmp/**/*.txt" 'mkdir -p tmp && echo t > tmp/a.txt'
"$FORGE" "$EPHEMERA_STORE" d:root/tmp:0777 f:root/tmp/a.txt:0644:forged
machine sticky
mkdir -p "$M/tmp"; chmod 1777 "$M/tmp"
eph pre --job "$SCRATCH/job.toml" 2> "$SCRATCH/err" || fail "pre failed"
[ "$(stat -c %a "$M/tmp")" = 1777 ] || fail "/tmp lost its sticky bit: $(stat -c %a "$M/tmp")"
expect_result pre deps failed
grep -q "refused entry 'root/tmp'" "$SCRATCH/err" || fail "the refusal does not name root/tmp"
[ ! -e "$M/tmp/a.txt" ] || fail "a refused archive left a file"

# '~/.cargo/registry' selects the registry, not ~/.cargo.
saved "~/.cargo/registry" 'mkdir -p home/build/.cargo/registry && echo r > home/build/.cargo/registry/r'
"$FORGE" "$EPHEMERA_STORE" d:home/.cargo:0777 d:home/.cargo/registry:0755 \
  f:home/.cargo/registry/r:0644:forged
machine cargo
mkdir -p "$M/home/build/.cargo"; chmod 0755 "$M/home/build/.cargo"
touch -d '2020-01-01 00:00:00' "$M/home/build/.cargo"
was=$(stat -c '%a %Y' "$M/home/build/.cargo")
eph pre --job "$SCRATCH/job.toml" 2>/dev/null || fail "pre failed"
[ "$(stat -c '%a %Y' "$M/home/build/.cargo")" = "$was" ] || fail "~/.cargo changed: $(stat -c '%a %Y' "$M/home/build/.cargo")"
expect_result pre deps failed

# '/opt/tools' does not select /opt: a forged entry cannot make it 0000.
saved "/opt/tools" 'mkdir -p opt/tools && echo t > opt/tools/t'
"$FORGE" "$EPHEMERA_STORE" d:root/opt:0000 d:root/opt/tools:0755 f:root/opt/tools/t:0755:forged
machine opt
mkdir -p "$M/opt"; chmod 0755 "$M/opt"
eph pre --job "$SCRATCH/job.toml" 2>/dev/null || fail "pre failed"
[ "$(stat -c %a "$M/opt")" = 755 ] || fail "/opt changed: $(stat -c %a "$M/opt")"
expect_result pre deps failed

# The same forge with only selected entries is restored (the refusals above are the
# directories', not the forge's); a parent that must be made gets a default mode.
"$FORGE" "$EPHEMERA_STORE" d:root/opt/tools:0700 f:root/opt/tools/t:0755:forged
machine opt-ok
eph pre --job "$SCRATCH/job.toml" 2>/dev/null || fail "pre failed"
expect_result pre deps hit
[ "$(cat "$M/opt/tools/t")" = forged ] || fail "the selected entries were not restored"
[ "$(stat -c %a "$M/opt/tools")" = 700 ] || fail "a selected directory did not get its mode"
[ "$(stat -c %a "$M/opt")" = 755 ] || fail "a made parent has mode $(stat -c %a "$M/opt")"

echo "forged archives: ok"
