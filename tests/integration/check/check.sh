# 'ephemera check' as a job author and an editor use it: gcc-style positions in the
# script's own numbering, exit 0 or 2, warnings that do not fail, --json for tools.
set -euo pipefail
: "${EPHEMERA:?EPHEMERA must name the binary}"
D=$(mktemp -d /tmp/ephemera-check.XXXXXX)
trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect CODE FILE [PATTERN...]: check FILE exits CODE and its output has each line.
expect() {
  local code=$1 file=$2; shift 2
  local got=0
  "$EPHEMERA" check "$file" >"$D/out" 2>&1 || got=$?
  [ "$got" = "$code" ] || { cat "$D/out" >&2; fail "check $file: exit $got, wanted $code"; }
  for want in "$@"; do
    grep -qF -- "$want" "$D/out" || { cat "$D/out" >&2; fail "check $file: no line with: $want"; }
  done
}

mkdir -p "$D/.github/buildomat/jobs" "$D/.github/buildomat/persist"
job="$D/.github/buildomat/jobs/build.sh"
printf '%s\n' '#!/bin/bash' '#' '# Copyright 2025 Oxide Computer Company' '#' \
  '#: name = "build"' '#: variety = "basic"' '#: output_rules = [' '#:	"/out/*",' '#: ]' \
  '#:' '#: [dependencies.pre-build]' '#: job = "pre-build"' '#:' \
  '#: [[persist]]' '#: name = "cargo"' '#: rules = ["~/.cargo/registry"]' '#: epoch = 1' \
  '' 'cargo build' >"$job"
expect 0 "$job" "$job: ok (1 persist stanza, from $job)" "  cargo: $job:14:4 (epoch 1)"

# The sibling file joins in, and check says where each stanza came from.
sib="$D/.github/buildomat/persist/build.toml"
printf '%s\n' '[[persist]]' 'name = "target"' 'rules = ["target/**/*", "!target/**/incremental"]' \
  'epoch = 4' >"$sib"
expect 0 "$job" "$job: ok (2 persist stanzas, from $job and $sib)" "  target: $sib:1:1 (epoch 4)"

# An error in the sibling is placed in the sibling; a name used twice is placed on the second.
printf '%s\n' '[[persist]]' 'name = "cargo"' 'rules = ["x"]' 'epoch = 4' >"$sib"
expect 2 "$job" "$sib:2:8: error:"
printf '%s\n' '[[persist]]' 'name = "target"' 'rules = ["target/a**"]' 'epoch = 4' >"$sib"
expect 2 "$job" "$sib:3:19: error: persist[1].rules[0] 'target/a**':"
rm "$sib"

# A broken script: the position counts the licence header and the plain '#' lines.
bad="$D/bad.sh"
printf '%s\n' '#!/bin/bash' '#' '# licence' '#' '#: name = "bad"' '#: variety = "basic"' \
  '#: [[persist]]' '#: name = "x"' '#: rules = ["a"]' '#: epok = 1' >"$bad"
expect 2 "$bad" "$bad:10:4: error: persist[0]: unknown key 'epok' in [[persist]]; did you mean 'epoch'?" \
  "$bad:7:4: error: persist[0].epoch is required"

# A missing comma in an array: the TOML parser's complaint, at the script's line.
printf '%s\n' '#!/bin/bash' '#: name = "bad"' '#: variety = "basic"' '#: output_rules = [' \
  '#:   "/a"' '#:   "/b",' '#: ]' >"$bad"
expect 2 "$bad" "$bad:6:"

# Lints are warnings: exit 0, but the author is told.
lint="$D/lint.sh"
printf '%s\n' '#!/bin/bash' '#: name = "lint"' '##: variety = "x"' '#: variety = "basic"' '' \
  '#: enable = false' 'make' >"$lint"
expect 0 "$lint" "$lint:3:1: warning: '##:' is a comment" "$lint:6:1: warning: this '#:' line comes after"

# Several files: every one is reported, and one bad file makes the exit 2.
printf '%s\n' 'name = "t"' 'variety = "basic"' >"$D/plain.toml"
got=0
"$EPHEMERA" check "$D/plain.toml" "$bad" >"$D/out" 2>&1 || got=$?
[ "$got" = 2 ] || fail "a bad file among good ones must exit 2, got $got"
grep -qF "$D/plain.toml: ok (0 persist stanzas)" "$D/out" || fail "the good file is not reported"

# Not a job file at all.
echo 'name: x' >"$D/job.yml"
expect 2 "$D/job.yml" "job.yml"
expect 2 "$D/missing.sh" "missing.sh"
: >"$D/empty.sh"
expect 2 "$D/empty.sh" "$D/empty.sh:1:1: error:"

# --json: the parsed job for other tools, with positions.
rm -f "$sib"
"$EPHEMERA" check --json "$job" >"$D/job.json"
/usr/bin/python3 - "$D/job.json" "$job" <<'PY'
import json, sys
jobs = json.load(open(sys.argv[1]))
assert len(jobs) == 1, jobs
j = jobs[0]
assert j["name"] == "build" and j["variety"] == "basic" and j["enable"] is True, j
p = j["persist"][0]
assert p["name"] == "cargo" and p["epoch"] == 1, p
assert p["position"] == {"file": sys.argv[2], "line": 14, "column": 4}, p["position"]
assert p["rules"][0]["value"] == "~/.cargo/registry", p["rules"]
assert p["rules"][0]["position"]["line"] == 16, p["rules"]
PY

# The examples shipped with the project are all valid.
for f in "$SOURCE_ROOT"/examples/demo/*.sh "$SOURCE_ROOT"/examples/jobs/*.sh "$SOURCE_ROOT"/examples/jobs/*.toml \
  "$SOURCE_ROOT"/examples/buildomat/jobs/*.sh; do
  "$EPHEMERA" check "$f" >/dev/null || fail "example $f does not pass check"
done
echo "check: ok"
