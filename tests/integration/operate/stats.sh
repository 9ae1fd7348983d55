# ephemera stats, from the event records pre, post and the in-job restore append to the
# store: after a scripted series of saves, hits, misses and skipped saves on several
# machines, every count is exact; a malformed record is skipped with a warning naming it.
# The bytes stored are what the store holds for the stanza, counted from its objects: two
# content-addressed saves that share a pack count it once.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../raw_store.sh"

JOB="$SCRATCH/job.toml"
deps_job "$JOB" 'restore_keys = ["de"]'
OTHER="$SCRATCH/other.toml" # the same stanza under a key nothing was saved with, no prefix
deps_job "$OTHER"
sed -i 's/^cache_key = .*/cache_key = "nothing"/' "$OTHER"
PREFIX="$SCRATCH/prefix.toml" # a key never saved, whose restore_keys prefix finds deps
deps_job "$PREFIX" 'restore_keys = ["de"]'
sed -i 's/^cache_key = .*/cache_key = "dex"/' "$PREFIX"

machine m1; ctx feature pull_request job-1
eph pre --job "$JOB" 2>> "$SCRATCH/log"            # miss 1 (empty store)
mkdir -p "$M/work/job/target"; head -c 50000 /dev/urandom > "$M/work/job/target/blob"
eph post --job "$JOB" --status 0 2>> "$SCRATCH/log" # save 1
machine m2; ctx feature pull_request job-2
eph pre --job "$JOB" 2>> "$SCRATCH/log"            # exact 1
eph post --job "$JOB" --status 0 2>> "$SCRATCH/log" # unchanged 1
machine m3; ctx feature pull_request job-3
eph pre --job "$JOB" 2>> "$SCRATCH/log"            # exact 2
machine m4; ctx feature pull_request job-4
eph pre --job "$OTHER" 2>> "$SCRATCH/log"          # miss 2
machine m5; ctx feature pull_request job-5
eph pre --job "$PREFIX" 2>> "$SCRATCH/log"         # prefix 1
expect_result pre deps hit
machine m6; ctx feature pull_request job-6
set +e; eph restore deps --job "$JOB" 2>> "$SCRATCH/log"; set -e # exact 3 (in-job)
machine m7; ctx main push job-7
eph pre --job "$JOB" 2>> "$SCRATCH/log"            # not restored (protected): no record
# Another repository's records are not counted with --repository.
machine m8; ctx feature pull_request job-8
GITHUB_REPOSITORY=other/repo eph pre --job "$JOB" 2>> "$SCRATCH/log"

# A malformed record and one filed under another repository's folder: skipped, named.
records=$(raw_ls | grep -c '^v1/_events/acme~2Fwidget/' || true)
[ "$records" = 8 ] || fail "expected 8 event records of acme/widget, got $records: $(raw_ls)"
day=$(date -u +%Y%m%d)
echo '{"format": "ephemera-event/1", "phase": "pre"}' > "$SCRATCH/bad.event"
raw_put "$SCRATCH/bad.event" "v1/_events/acme~2Fwidget/~/$day/20260101T000000.000000Z-0badf00d.event"
raw_get "$(raw_ls | grep '^v1/_events/acme~2Fwidget/' | grep -v 0badf00d | head -1)" "$SCRATCH/good.event"
raw_put "$SCRATCH/good.event" "v1/_events/acme~2Fwidget/elsewhere/$day/20260101T000000.000000Z-0e15e0e5.event"

# raw_size KEY: the size of one object of the store.
raw_size() {
  case "${STORE_KIND:-local}" in
    local) stat -c %s "$STORE/$1" ;;
    s3) s3obj size "s3://$RAW_BUCKET/$(raw_prefix)/$1" ;;
  esac
}
# held REPOSITORY: the bytes of every archive, index and pack the store holds for it.
held() {
  local total=0 k folder
  folder=$(printf '%s' "$1" | sed 's|/|~2F|g')
  for k in $(raw_ls | grep -E "^(cas1|v1)/$folder/" | grep -E '\.(pack|idx|tar\.zst)$'); do
    total=$((total + $(raw_size "$k")))
  done
  echo "$total"
}
stored=$(held acme/widget)

"$EPHEMERA" stats --repository acme/widget --json > "$SCRATCH/stats.json" 2> "$SCRATCH/stats.err" ||
  fail "stats failed: $(cat "$SCRATCH/stats.err")"
grep -q "skipping the event record .*0badf00d.event: 'repository' is missing" "$SCRATCH/stats.err" ||
  fail "the malformed record was not named: $(cat "$SCRATCH/stats.err")"
grep -q "skipping the event record .*0e15e0e5.event: .*lies elsewhere" "$SCRATCH/stats.err" ||
  fail "the misplaced record was not named: $(cat "$SCRATCH/stats.err")"
/usr/bin/python3 - "$SCRATCH/stats.json" "$stored" <<'PY' || fail "stats are not exact: $(cat "$SCRATCH/stats.json")"
import json, sys
out = json.load(open(sys.argv[1]))
stored = int(sys.argv[2])
assert out["records"] == 8 and out["skipped"] == 2, out
(s,) = out["stanzas"]
assert (s["repository"], s["target"], s["name"]) == ("acme/widget", "", "deps"), s
assert s["restores"] == {"exact": 3, "prefix": 1, "miss": 2}, s["restores"]
assert s["saves"] == {"saved": 1, "unchanged": 1}, s["saves"]
assert s["bytes_stored"] == stored, (s["bytes_stored"], stored)
assert "the store holds now" in out["bytes_stored_is"], out
# One upload, four downloads, each of the save's index and its one pack (not the index alone).
assert s["bytes_moved"] == 5 * stored, (s["bytes_moved"], stored)
assert s["seconds"]["pre"] > 0 and s["seconds"]["post"] > 0, s["seconds"]
PY
"$EPHEMERA" stats --repository acme/widget > "$SCRATCH/stats.txt" 2>/dev/null
cat "$SCRATCH/stats.txt"
grep -qE "^deps +3 +1 +2 +1 +1 " "$SCRATCH/stats.txt" || fail "the table is not the same counts"
awk 'length > 100 { exit 1 }' "$SCRATCH/stats.txt" || fail "a stats line is over 100 columns"
grep -q "IN STORE: bytes held now" "$SCRATCH/stats.txt" || fail "the table does not say what IN STORE counts"

# Two content-addressed saves of one stanza, the second made on the first's restore: it
# shares the first's pack and adds one. What the store holds counts that pack once; the
# saves' own reports (each counts every pack its state uses) would count it twice.
machine s1; ctx feature pull_request job-s1
export GITHUB_REPOSITORY=acme/shared
mkdir -p "$M/work/job/target"; head -c 400000 /dev/urandom > "$M/work/job/target/big"
eph post --job "$JOB" --status 0 2>> "$SCRATCH/log"
expect_result post deps saved
machine s2; ctx feature pull_request job-s2
export GITHUB_REPOSITORY=acme/shared
eph pre --job "$JOB" 2>> "$SCRATCH/log"
expect_result pre deps hit
echo "one more file" > "$M/work/job/target/small"
eph post --job "$JOB" --status 0 2>> "$SCRATCH/log"
expect_result post deps saved
[ "$(raw_ls | grep -c '^cas1/acme~2Fshared/.*/packs/')" = 2 ] ||
  fail "expected two packs of acme/shared: $(raw_ls | grep '^cas1/acme~2Fshared/')"
[ "$(raw_ls | grep -c '^cas1/acme~2Fshared/.*/index/')" = 2 ] ||
  fail "expected two indexes of acme/shared: $(raw_ls | grep '^cas1/acme~2Fshared/')"
shared=$(held acme/shared)
"$EPHEMERA" stats --repository acme/shared --json 2> /dev/null | /usr/bin/python3 -c '
import json, sys
(s,) = json.load(sys.stdin)["stanzas"]
assert s["saves"]["saved"] == 2, s
assert s["bytes_stored"] == int(sys.argv[1]), (s["bytes_stored"], int(sys.argv[1]))' "$shared" ||
  fail "stats of two saves sharing a pack is not what the store holds ($shared bytes)"
export GITHUB_REPOSITORY=acme/widget
# Without --repository, every repository's records.
"$EPHEMERA" stats --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
names = {(s["repository"], s["name"]) for s in json.load(sys.stdin)["stanzas"]}
assert ("other/repo", "deps") in names, names' || fail "stats of all repositories misses one"
set +e; "$EPHEMERA" stats --since soon 2> "$SCRATCH/since.err"; st=$?; set -e
[ "$st" = 2 ] && grep -q -- "--since 'soon'" "$SCRATCH/since.err" || fail "a bad --since is not refused"

# gc ages the records out.
sleep 1.1
"$EPHEMERA" gc --events-max-age 0s --grace 0s > /dev/null
[ -z "$(raw_ls | grep '^v1/_events/' | head -1)" ] || fail "gc left event records: $(raw_ls | grep _events)"
