# ephemera export: any save, content-addressed or a single archive, as a plain tar.zst that GNU
# tar unpacks into exactly the tree a restore writes (files, directories, symlinks, hard links,
# modes, mtimes); by id, by the report's link (the report's own export command run as printed) and on
# stdout. A pack or an archive whose bytes were altered is refused with the save named, and
# nothing is left where the export was to go; bad arguments exit 2.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../raw_store.sh"

JOB="$SCRATCH/job.toml"
deps_job "$JOB" 'restore_keys = ["de"]'

# A tree with every kind of entry a save holds, modes and mtimes set by hand.
populate() {
  local t="$M/work/job/target"
  mkdir -p "$t/sub/deep" "$t/empty-dir" "$t/modes"
  head -c 3000000 /dev/urandom > "$t/sub/big.bin"  # cut into chunks
  for i in $(seq 1 30); do echo "small $i" > "$t/sub/deep/f$i"; done
  : > "$t/empty-file"
  echo "mode" > "$t/modes/m"; chmod 600 "$t/modes/m"
  echo "exec" > "$t/modes/x"; chmod 751 "$t/modes/x"
  echo "old" > "$t/modes/old"; touch -d '2001-02-03 04:05:06.123456789' "$t/modes/old"
  ln "$t/sub/big.bin" "$t/big-link"  # a hard link, as cargo leaves its build outputs
  ln -s sub/deep/f1 "$t/link"
  ln -s ../nowhere "$t/dangling"
  chmod 700 "$t/sub/deep"
  touch -d '2019-05-06 07:08:09.5' "$t/sub/deep" "$t/empty-dir"
}

# exported_equals_restored TARBALL: GNU tar's unpacking of it is the restored tree of $M.
exported_equals_restored() {
  local x="$SCRATCH/x-$RANDOM"
  mkdir "$x"
  tar --zstd -xpf "$1" -C "$x" || fail "GNU tar could not read $1"
  [ -d "$x/work/target" ] || fail "the export holds no work/target: $(find "$x" | head)"
  diff <(listing "$M/work/job") <(listing "$x/work") >&2 ||
    fail "the export of $1 is not the restored tree"
  [ "$(stat -c %h "$M/work/job/target/big-link")" = 2 ] || fail "the restore broke a hard link"
  [ "$(stat -c %i "$x/work/target/big-link")" = "$(stat -c %i "$x/work/target/sub/big.bin")" ] ||
    fail "the export of $1 broke a hard link"
  rm -rf "$x"
}

# expect_no_export DIR: nothing of an export was left in DIR (no file, no temporary).
expect_nothing_in() {
  [ -z "$(ls -A "$1")" ] || fail "a refused export left $(ls -A "$1")"
}

# --- A content-addressed save (the default format).
use_store cas
machine one; populate
ctx feature pull_request job-one
eph post --job "$JOB" --status 0 2>/dev/null
expect_result post deps saved
manifest=$(the_manifest)
raw_get "$manifest" "$SCRATCH/m.json"
[ "$(json_get "$SCRATCH/m.json" content)" = cas1 ] || fail "the default save is not content-addressed"
id=$("$EPHEMERA" ls --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

machine two
ctx feature pull_request job-two
eph pre --job "$JOB" 2>/dev/null
expect_result pre deps hit

mkdir "$SCRATCH/out"
"$EPHEMERA" export "$id" "$SCRATCH/out/by-id.tar.zst" 2> "$SCRATCH/export.err" ||
  fail "export by id: $(cat "$SCRATCH/export.err")"
grep -q "exported save $id" "$SCRATCH/export.err" || fail "no summary: $(cat "$SCRATCH/export.err")"
exported_equals_restored "$SCRATCH/out/by-id.tar.zst"
# zstd and tar as two programs, as on a machine without tar's --zstd.
mkdir "$SCRATCH/plain"
zstd -dc "$SCRATCH/out/by-id.tar.zst" | tar -xp -C "$SCRATCH/plain" || fail "zstd | tar failed"
rm -rf "$SCRATCH/plain"

# The report's link is the index, and the report prints the command that exports it: run as
# printed, it writes what the job used.
line=$(eph report | sed -n 's/^ *export: //p' | head -1)
[ -n "$line" ] || fail "the report gives no export command: $(eph report)"
link=$(report_json | python3 -c 'import json,sys; print([e for e in json.load(sys.stdin)["entries"] if e.get("archive")][0]["archive"]["link"])')
case $link in *"/cas1/"*"/index/"*.idx) ;; *) fail "the report's link is $link" ;; esac
case $line in "ephemera export --store '$STORE' '$link' 'deps.tar.zst'") ;;
  *) fail "the report's command is $line" ;; esac
(cd "$SCRATCH/out" && PATH="$(dirname "$EPHEMERA"):$PATH" && eval "$line" 2>/dev/null) ||
  fail "the report's command failed: $line"
cmp "$SCRATCH/out/deps.tar.zst" "$SCRATCH/out/by-id.tar.zst" || fail "export by link and by id differ"
report_json | python3 -c '
import json, sys
for e in json.load(sys.stdin)["entries"]:
    if e.get("archive") and e["archive"]["presigned"]:
        sys.exit("a presigned link to an index, which no one can unpack: " + e["archive"]["presigned"])'
"$EPHEMERA" show "$id" --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["export"].startswith("ephemera export --store "), j["export"]
assert "presigned" not in j, j' || fail "show gives no export command, or a presigned index"

# On stdout.
"$EPHEMERA" export "$id" - 2>/dev/null > "$SCRATCH/out/stdout.tar.zst" || fail "export to stdout"
cmp "$SCRATCH/out/stdout.tar.zst" "$SCRATCH/out/by-id.tar.zst" || fail "export to stdout differs"
rm "$SCRATCH/out/"*

# Bad arguments: exit 2, before the store is read.
for args in "" "$id" "$id $SCRATCH/no-such-dir/o.tar.zst" "$id $SCRATCH/out" "ffffffffff $SCRATCH/out/o"; do
  set +e
  # shellcheck disable=SC2086
  "$EPHEMERA" export $args 2>/dev/null
  rc=$?
  set -e
  [ "$rc" = 2 ] || fail "export $args exited $rc, not 2"
done
expect_nothing_in "$SCRATCH/out"

# A flipped byte in a pack: refused, the save named, nothing left; an OUT already there is as
# it was.
pack=$(raw_ls | grep '\.pack$' | head -1)
raw_get "$pack" "$SCRATCH/p"
python3 - "$SCRATCH/p" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xFF
open(p, "wb").write(bytes(b))
PY
raw_put "$SCRATCH/p" "$pack"
set +e
"$EPHEMERA" export "$id" "$SCRATCH/out/t.tar.zst" 2> "$SCRATCH/tampered.err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "a tampered pack exported with exit $rc"
grep -q "unable to export save $id" "$SCRATCH/tampered.err" || fail "the error does not name the save: $(cat "$SCRATCH/tampered.err")"
grep -Eq "SHA-256 mismatch|does not decode" "$SCRATCH/tampered.err" ||
  fail "the error does not say the content was wrong: $(cat "$SCRATCH/tampered.err")"
expect_nothing_in "$SCRATCH/out"
echo "before" > "$SCRATCH/out/kept.tar.zst"
"$EPHEMERA" export "$id" "$SCRATCH/out/kept.tar.zst" 2>/dev/null && fail "a tampered pack exported"
[ "$(cat "$SCRATCH/out/kept.tar.zst")" = before ] || fail "a refused export changed the file it was to replace"
[ "$(ls -A "$SCRATCH/out")" = kept.tar.zst ] || fail "a refused export left $(ls -A "$SCRATCH/out")"
rm "$SCRATCH/out/kept.tar.zst"

# --- A single-archive save: the export is its archive, byte for byte, verified.
use_store archive
machine three; populate
ctx feature pull_request job-three
EPHEMERA_FORMAT=archive eph post --job "$JOB" --status 0 2>/dev/null
expect_result post deps saved
manifest=$(the_manifest)
archive=${manifest%.json}.tar.zst
raw_get "$archive" "$SCRATCH/stored.tar.zst"
id=$("$EPHEMERA" ls --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
machine four
ctx feature pull_request job-four
eph pre --job "$JOB" 2>/dev/null
expect_result pre deps hit
"$EPHEMERA" export "$id" "$SCRATCH/out/a.tar.zst" 2>/dev/null || fail "export of a single archive"
cmp "$SCRATCH/out/a.tar.zst" "$SCRATCH/stored.tar.zst" || fail "the export is not the stored archive"
exported_equals_restored "$SCRATCH/out/a.tar.zst"
"$EPHEMERA" export "$id" - 2>/dev/null | cmp - "$SCRATCH/stored.tar.zst" || fail "on stdout"
rm "$SCRATCH/out/a.tar.zst"
# The report of a single archive gives its link, and no export line is needed.
eph report | grep -q "^ *export:" && fail "the report of a single archive gives an export command"
python3 - "$SCRATCH/stored.tar.zst" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xFF
open(p, "wb").write(bytes(b))
PY
raw_put "$SCRATCH/stored.tar.zst" "$archive"
set +e
"$EPHEMERA" export "$id" "$SCRATCH/out/a.tar.zst" 2> "$SCRATCH/tampered.err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "a tampered archive exported with exit $rc"
grep -q "unable to export save $id.*digest mismatch" "$SCRATCH/tampered.err" ||
  fail "the error does not name the save and the mismatch: $(cat "$SCRATCH/tampered.err")"
expect_nothing_in "$SCRATCH/out"
"$EPHEMERA" export "$id" - 2>/dev/null > "$SCRATCH/stdout.tar.zst" && fail "a tampered archive went to stdout"
[ ! -s "$SCRATCH/stdout.tar.zst" ] || fail "a tampered archive's bytes reached stdout"
echo "export: ok"
