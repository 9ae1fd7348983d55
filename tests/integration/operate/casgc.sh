# gc of content-addressed saves through the real binary: a superseded save frees its index
# and the packs only it used in the same run, a save killed before its manifest keeps its
# objects for the grace period and loses them after it, an index that cannot be read keeps
# its scope's packs, what is not a pack or an index is never touched, and gc killed after any
# object it removes leaves a store that restores the newest save byte for byte and a later
# gc frees every orphan.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../raw_store.sh"
use_store casgc
ephemera() { "$EPHEMERA" "$@"; }

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
T=work/job/target

# live_packs: the pack keys the indexes of the store's manifests reference, sorted.
live_packs() {
  local m
  for m in $(raw_ls | grep '\.json$' | grep -v '^v1/_'); do
    raw_get "$m" "$SCRATCH/m.json"
    local index
    index=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["archive"])' "$SCRATCH/m.json")
    raw_get "$index" "$SCRATCH/i.zst"
    zstd -qdc "$SCRATCH/i.zst" | /usr/bin/python3 -c '
import struct, sys
b = sys.stdin.buffer.read()
magic = b"ephemera-cas-index/1\n"
assert b.startswith(magic)
at = len(magic)
n, = struct.unpack_from("<I", b, at); at += 4 + n
packs, = struct.unpack_from("<I", b, at); at += 4
prefix = sys.argv[1].rsplit("/index/", 1)[0] + "/packs/"
for _ in range(packs):
    pid = b[at:at + 32].hex(); at += 32 + 8
    frames, = struct.unpack_from("<I", b, at); at += 4 + 8 * frames
    print(prefix + pid + ".pack")' "$index"
  done | LC_ALL=C sort -u
}
stored_packs() { raw_ls | grep '\.pack$' || true; }
indexes() { raw_ls | grep '\.idx$' || true; }

# no_orphans: every pack is one a manifest's index references, every index one a manifest names.
no_orphans() {
  [ "$(stored_packs)" = "$(live_packs)" ] || fail "$1: packs no index references: $(comm -23 <(stored_packs) <(live_packs))"
  [ "$(indexes | wc -l)" = "$(raw_ls | grep '\.json$' | grep -vc '^v1/_')" ] || fail "$1: indexes no manifest names: $(indexes)"
}

# restores_newest: a fresh machine restores exactly the newest saved state.
restores_newest() {
  machine "check-$RANDOM"
  eph pre --job "$JOB" > /dev/null 2> "$M.err" || fail "$1: pre failed: $(cat "$M.err")"
  expect_result pre deps hit
  (cd "$M/$T" && find . -type f -exec sha256sum {} + | LC_ALL=C sort) > "$SCRATCH/got"
  diff "$SCRATCH/got" "$SCRATCH/want" > /dev/null || fail "$1: the restore is not the newest save"
}

# A chain of saves on one machine, each changing the same one of four 1 MB files: every save
# but the last is superseded, and each later one's new pack holds content no later state uses
# (the first pack keeps the three files that never change).
machine builder
ctx feature pull_request job-chain
mkdir -p "$M/$T"
for f in a b c d; do head -c 1000000 /dev/urandom > "$M/$T/$f.bin"; done
save_next() {
  machine builder
  eph pre --job "$JOB" > /dev/null 2>&1
  head -c 1000000 /dev/urandom > "$M/$T/$1.bin"
  eph post --job "$JOB" --status 0 2> "$SCRATCH/post.err" || fail "post: $(cat "$SCRATCH/post.err")"
  expect_result post deps saved
  (cd "$M/$T" && find . -type f -exec sha256sum {} + | LC_ALL=C sort) > "$SCRATCH/want"
}
for i in 1 2 3 4; do save_next a; done
[ "$(indexes | wc -l)" = 4 ] || fail "four indexes expected: $(indexes)"

# ls counts a content-addressed save as its index plus the packs it references.
raw_size() {
  case "${STORE_KIND:-local}" in
    local) stat -c %s "$STORE/$1" ;;
    s3) s3obj size "s3://$RAW_BUCKET/$(raw_prefix)/$1" ;;
  esac
}
ephemera ls --json > "$SCRATCH/ls.json"
newest=$(/usr/bin/python3 -c '
import json, sys
saves = json.load(open(sys.argv[1]))
n = max(saves, key=lambda s: s["created"])
print(n["archive"], n["stored_bytes"])' "$SCRATCH/ls.json")
want=$(raw_size "${newest% *}")
for p in $(raw_get "${newest% *}" "$SCRATCH/n.zst" && zstd -qdc "$SCRATCH/n.zst" | /usr/bin/python3 -c '
import struct, sys
b = sys.stdin.buffer.read(); at = 21
n, = struct.unpack_from("<I", b, at); at += 4 + n
packs, = struct.unpack_from("<I", b, at); at += 4
for _ in range(packs):
    print(b[at:at + 32].hex()); at += 40
    f, = struct.unpack_from("<I", b, at); at += 4 + 8 * f'); do
  want=$((want + $(raw_size "${newest%/index/*}/packs/$p.pack")))
done
[ "${newest#* }" = "$want" ] || fail "ls says the newest save holds ${newest#* } bytes, the store $want"

# Within the grace period nothing content-addressed goes, and gc says why.
ephemera gc > "$SCRATCH/young.txt"
[ "$(indexes | wc -l)" = 4 ] || fail "gc within the grace period removed an index"
grep -q '^freed 0 objects' "$SCRATCH/young.txt" || fail "young: $(cat "$SCRATCH/young.txt")"

# A save killed after its index, before its manifest: its objects stay within the grace period.
machine builder
eph pre --job "$JOB" > /dev/null 2>&1
head -c 1000000 /dev/urandom > "$M/$T/killed.bin"
EPHEMERA_FAULT=cas-index-written eph post --job "$JOB" --status 0 > /dev/null 2>&1 &&
  fail "the fault point did not kill the save"
rm "$M/$T/killed.bin"
[ "$(indexes | wc -l)" = 5 ] || fail "the killed save left no index"
ephemera gc --grace 1h --json > "$SCRATCH/young.json"
[ "$(indexes | wc -l)" = 5 ] || fail "gc removed the index of a save in progress"
grep -q '1 content-addressed object (indexes no manifest names, packs no index references) younger than --grace 1h' \
  "$SCRATCH/young.json" || fail "gc does not say it kept the save in progress: $(cat "$SCRATCH/young.json")"

# Past it: the superseded saves' manifests, their indexes, the killed save's index and every
# pack no kept index references, counted apart in the JSON and the text.
ephemera gc --grace 0s --dry-run --json > "$SCRATCH/dry.json"
/usr/bin/python3 - "$SCRATCH/dry.json" <<'PY' || fail "dry run: $(cat "$SCRATCH/dry.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["freed_indexes"] == 4, j["freed_indexes"]
assert j["freed_packs"] == 3, j["freed_packs"]  # saves 2 and 3, and the killed one's
assert j["freed_pack_bytes"] > 3000000, j["freed_pack_bytes"]
assert j["freed_index_bytes"] > 0
whys = [d["why"] for d in j["deleted"]]
assert whys.count("the index of a save deleted above") == 3, whys
assert any(w.startswith("an index no manifest names") for w in whys), whys
PY
[ "$(indexes | wc -l)" = 5 ] || fail "a dry run deleted an index"

# gc killed after each object it removes: the store restores the newest save every time.
for i in $(seq 1 40); do
  if EPHEMERA_FAULT=gc-removed ephemera gc --grace 0s > /dev/null 2>&1; then
    break
  fi
  restores_newest "gc killed after $i removals"
done
[ "$i" -gt 5 ] || fail "gc ran through after $i kills: the fault point is not reached"
no_orphans "after gc killed $i times"
[ "$(indexes | wc -l)" = 1 ] || fail "one index expected: $(indexes)"
ephemera gc --grace 0s | grep -q '^freed 0 objects' || fail "a second gc found more to free"
restores_newest "after gc"

# A save killed at each step (after its pack, after its index): the old state restores, and
# gc past the grace period leaves no orphan.
for point in cas-pack-uploaded cas-index-written; do
  machine builder
  eph pre --job "$JOB" > /dev/null 2>&1
  head -c 1000000 /dev/urandom > "$M/$T/e.bin"
  EPHEMERA_FAULT=$point eph post --job "$JOB" --status 0 > /dev/null 2>&1 &&
    fail "the fault point $point did not kill the save"
  rm "$M/$T/e.bin"
  restores_newest "after a save killed at $point"
done
ephemera gc --grace 0s > "$SCRATCH/gc.txt"
grep -q 'of which [1-9][0-9]* content-addressed packs\?, .* and [1-9][0-9]* index' "$SCRATCH/gc.txt" ||
  fail "gc does not count packs and indexes: $(cat "$SCRATCH/gc.txt")"
no_orphans "after killed saves"

# An index a live manifest names that cannot be read: gc keeps every pack of its scope and
# names it; a dead pack planted beside stays with it, then goes once the index is whole.
live=$(indexes)
scope=${live%/index/*}
raw_get "$live" "$SCRATCH/live.idx"
head -c 2000000 /dev/urandom > "$SCRATCH/dead.pack"
dead="$scope/packs/$(sha256sum < "$SCRATCH/dead.pack" | cut -c1-64).pack"
raw_put "$SCRATCH/dead.pack" "$dead"
echo "not an index" > "$SCRATCH/junk"
raw_put "$SCRATCH/junk" "$live"
ephemera gc --grace 0s > "$SCRATCH/gc.txt" 2> "$SCRATCH/gc.err" || fail "gc failed on a bad index"
raw_ls | grep -qxF "$dead" || fail "gc deleted a pack while an index of its scope could not be read"
grep -qF "could not be read" "$SCRATCH/gc.txt" || fail "gc does not say why it kept the packs: $(cat "$SCRATCH/gc.txt")"
grep -qF "$live" "$SCRATCH/gc.err" || fail "the warning does not name the index: $(cat "$SCRATCH/gc.err")"
raw_put "$SCRATCH/live.idx" "$live"
ephemera gc --grace 0s > /dev/null
raw_ls | grep -qxF "$dead" && fail "the dead pack outlived a gc with every index read"

# Objects below cas1/ that are not where a save puts a pack or an index are never touched.
echo stray > "$SCRATCH/stray"
raw_put "$SCRATCH/stray" "cas1/stray.pack"
raw_put "$SCRATCH/stray" "$scope/packs/NOTHEX.pack"
raw_put "$SCRATCH/stray" "$scope/index/readme.txt"
ephemera gc --grace 0s > "$SCRATCH/gc.txt"
for k in cas1/stray.pack "$scope/packs/NOTHEX.pack" "$scope/index/readme.txt"; do
  raw_ls | grep -qxF "$k" || fail "gc deleted $k"
done
grep -q 'kept 3 objects below cas1/ that are not a pack or an index' "$SCRATCH/gc.txt" ||
  fail "gc does not say what it left: $(cat "$SCRATCH/gc.txt")"
restores_newest "at the end"

# gc --save of the older of two saves sharing packs: its manifest, its index and the packs
# only it references go (however young), the bytes said are those, and the newer restores.
rm -f "$SCRATCH/stray"
raw_ls | grep -e '^cas1/stray' -e NOTHEX -e readme.txt | while read -r k; do raw_rm "$k"; done
save_next a
[ "$(indexes | wc -l)" = 2 ] || fail "two indexes expected: $(indexes)"
ephemera ls --json > "$SCRATCH/ls.json"
read -r old_id old_obj old_index new_id new_index < <(/usr/bin/python3 -c '
import json, sys
s = sorted(json.load(open(sys.argv[1])), key=lambda s: s["created"])
print(s[0]["id"], s[0]["manifest_object"], s[0]["archive"], s[1]["id"], s[1]["archive"])' "$SCRATCH/ls.json")
before_packs=$(stored_packs)
# the packs only the older references: stored now, not referenced by the newer's index
raw_get "$old_obj" "$SCRATCH/old.json"
raw_rm "$old_obj"
only_newer=$(live_packs)
raw_put "$SCRATCH/old.json" "$old_obj"
own=$(comm -23 <(echo "$before_packs") <(echo "$only_newer"))
[ -n "$own" ] || fail "the older save has no pack of its own"
[ -n "$only_newer" ] || fail "the newer save references no pack"
want=$(( $(raw_size "$old_obj") + $(raw_size "$old_index") ))
for p in $own; do want=$((want + $(raw_size "$p"))); done
ephemera gc --save "$old_id" --json > "$SCRATCH/gcsave.json"
/usr/bin/python3 - "$SCRATCH/gcsave.json" "$want" "$(echo "$own" | wc -l)" <<'PY' || fail "gc --save: $(cat "$SCRATCH/gcsave.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["freed_bytes"] == int(sys.argv[2]), (j["freed_bytes"], sys.argv[2])
assert j["freed_saves"] == 1 and j["freed_indexes"] == 1, j
assert j["freed_packs"] == int(sys.argv[3]), j["freed_packs"]
PY
[ "$(stored_packs)" = "$only_newer" ] || fail "gc --save left or took packs: $(stored_packs) vs $only_newer"
[ "$(indexes)" = "$new_index" ] || fail "gc --save left the index: $(indexes)"
restores_newest "after gc --save of the older save"

# gc --save of the only save frees all it held, and says so for people.
ephemera gc --save "$new_id" > "$SCRATCH/gcsave.txt"
grep -q '^freed 1 save, .* (of which [1-9][0-9]* content-addressed packs\?, .* and 1 index, ' \
  "$SCRATCH/gcsave.txt" || fail "gc --save: $(cat "$SCRATCH/gcsave.txt")"
[ -z "$(stored_packs)$(indexes)" ] || fail "gc --save of the only save left $(stored_packs) $(indexes)"
