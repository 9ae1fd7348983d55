# ephemera match: what rules select, one job-visible absolute path a line, sorted, with
# totals on stderr; from the command line or from a job file's stanzas.
. "$(dirname "$0")/../lib.sh"

machine one
W="$M/work/job" H="$M/home/build"
mkdir -p "$W/target/deps" "$H/.cargo/registry/src/x" "$H/.cargo/registry/cache" "$M/outside"
echo a > "$W/target/a.o"
echo bb > "$W/target/deps/b.rlib"
ln -s a.o "$W/target/link"
ln -s "$M/outside" "$W/target/away" # a link to a directory is listed, never followed
echo secret > "$M/outside/secret"
echo c > "$H/.cargo/registry/cache/c.crate"
echo s > "$H/.cargo/registry/src/x/lib.rs"

match() { "$EPHEMERA" match --root "$M" --workdir /work/job --home /home/build "$@"; }

# A directory rule takes everything below it; a '!' rule on a directory drops all below it.
match target '~/.cargo/registry' '!~/.cargo/registry/src' > "$SCRATCH/out" 2> "$SCRATCH/err"
cat > "$SCRATCH/want" <<'TXT'
/home/build/.cargo/registry
/home/build/.cargo/registry/cache
/home/build/.cargo/registry/cache/c.crate
/work/job/target
/work/job/target/a.o
/work/job/target/away
/work/job/target/deps
/work/job/target/deps/b.rlib
/work/job/target/link
TXT
diff -u "$SCRATCH/want" "$SCRATCH/out" || fail "match listed other paths"
grep -qx 'ephemera: 3 files, 2 symlinks, 4 directories, 7 B' "$SCRATCH/err" ||
  fail "match totals: $(cat "$SCRATCH/err")"
grep -q secret "$SCRATCH/out" && fail "match followed a symlink"

# --json: each entry with its type, size, mode and the rule that selected it; a '=' rule
# that matches nothing is called out on stderr (a save would fail).
match --json 'target/**/*.o' '=nothing/*' target/link > "$SCRATCH/json" 2> "$SCRATCH/err"
/usr/bin/python3 - "$SCRATCH/json" <<'PY' || fail "match --json: $(cat "$SCRATCH/json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert [e["path"] for e in j["entries"]] == ["/work/job/target/a.o", "/work/job/target/link"], j
a, link = j["entries"]
assert (a["type"], a["size"], a["mode"], a["rule"]) == ("file", 2, "0644", "target/**/*.o"), a
assert (link["type"], link["target"], link["rule"]) == ("symlink", "a.o", "target/link"), link
assert (j["files"], j["symlinks"], j["directories"], j["bytes"]) == (1, 1, 0, 2), j
PY
grep -qF "rule '=nothing/*' must match: MATCHED NOTHING" "$SCRATCH/err" ||
  fail "an unmatched '=' rule was not called out: $(cat "$SCRATCH/err")"

# The rules of a job file's stanzas, all or one by --name, including its sibling persist file.
mkdir -p "$SCRATCH/repo/jobs" "$SCRATCH/repo/persist"
printf '#!/bin/bash\n#: name = "build"\n#: variety = "basic"\n#:\n#: [[persist]]\n#: name = "target"\n#: rules = ["target/deps"]\n#: epoch = 1\n' \
  > "$SCRATCH/repo/jobs/build.sh"
printf '[[persist]]\nname = "cargo"\nrules = ["~/.cargo/registry/cache/*.crate"]\nepoch = 1\n' \
  > "$SCRATCH/repo/persist/build.toml"
match --job "$SCRATCH/repo/jobs/build.sh" > "$SCRATCH/out" 2> /dev/null
printf '%s\n' /home/build/.cargo/registry/cache/c.crate /work/job/target/deps \
  /work/job/target/deps/b.rlib | diff -u - "$SCRATCH/out" || fail "match --job listed other paths"
match --job "$SCRATCH/repo/jobs/build.sh" --name cargo > "$SCRATCH/out" 2> /dev/null
echo /home/build/.cargo/registry/cache/c.crate | diff -u - "$SCRATCH/out" ||
  fail "match --job --name listed other paths"

# Usage errors are exit 2 and say what is wrong.
expect_usage() {
  local why=$1; shift
  set +e
  match "$@" > /dev/null 2> "$SCRATCH/err"; code=$?
  set -e
  [ "$code" = 2 ] || fail "match $* exited $code"
  grep -qF "$why" "$SCRATCH/err" || fail "match $*: no '$why' in: $(cat "$SCRATCH/err")"
}
expect_usage "RULE 'a/**b': '**' must be a whole path component" 'a/**b'
expect_usage "give rules, or --job FILE"
expect_usage "not both" --job "$SCRATCH/repo/jobs/build.sh" target
expect_usage "no [[persist]] stanza named 'nope'" --job "$SCRATCH/repo/jobs/build.sh" --name nope
# Nothing was written anywhere: match only reads.
[ ! -e "$M/tmp" ] || fail "match wrote a state dir"
