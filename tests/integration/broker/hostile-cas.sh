# Content-addressed saves through a broker, and a hostile client holding a fork's token: packs
# and indexes go only into the token's own scope (its repository, target and trust folder)
# under the SHA-256 of their bytes, the manifest the broker signs names an index of its own
# scope that is in the store, and a restore reads packs of its own scope only, so an untrusted
# save never uses a trusted pack nor the reverse. Every refusal is 403 (404 for what the token
# may not see), logged, and stores nothing.
. "$(dirname "$0")/lib.sh"

start_broker b1 --verbose
JOB="$SCRATCH/job.toml"
deps_job "$JOB"

machine trusted
mkdir -p "$M/work/job/target"; echo "trusted bytes" > "$M/work/job/target/a"
head -c 3000000 /dev/urandom > "$M/work/job/target/big"
ctx feature pull_request job-trusted
TOKEN=$(token)
beph post --job "$JOB" --status 0
expect_result post deps saved
cas=cas1/acme~2Fwidget/~/deps
pack=$(store_objects | grep "^$cas/trusted/packs/.*\.pack$" | head -1)
index=$(store_objects | grep "^$cas/trusted/index/.*\.idx$")
manifest=$(store_objects | grep '^v1/acme~2Fwidget/.*\.json$')
[ -n "$pack" ] && [ -n "$index" ] && [ -n "$manifest" ] || fail "not a content-addressed save: $(store_objects)"

# A trusted job restores it through the broker; on S3 the packs come from presigned URLs.
machine check
ctx feature pull_request job-check
TOKEN=$(token)
beph pre --job "$JOB"
expect_result pre deps hit
cmp "$SCRATCH/trusted/work/job/target/big" "$M/work/job/target/big" || fail "the restore differs"
if [ "$STORE_KIND" = s3 ]; then
  grep -q "GET cas1/.*\.pack: sent to a presigned URL" "$SCRATCH/b1.log" ||
    fail "the broker streamed the packs itself: $(cat "$SCRATCH/b1.log")"
fi

FORK=$(BUILDOMAT_JOB_ID=job-fork token --untrusted --origin pr-7)
logged=$(refused_count b1)
before=$(store_objects)

head -c 10000 /dev/urandom > "$SCRATCH/blob"
sha=$(sha256sum "$SCRATCH/blob" | cut -c1-64)
# Packs and indexes: the trusted folder, another repository, another origin, a name that is
# not the bytes' SHA-256.
refused "a fork's pack in the trusted folder" 403 "$(req "$FORK" PUT "$cas/trusted/packs/$sha.pack" "$SCRATCH/blob")"
refused "a fork's index in the trusted folder" 403 "$(req "$FORK" PUT "$cas/trusted/index/$sha.idx" "$SCRATCH/blob")"
refused "a pack of another repository" 403 \
  "$(req "$FORK" PUT "cas1/acme~2Fother/~/deps/untrusted/pr-7/packs/$sha.pack" "$SCRATCH/blob")"
refused "a pack of another target" 403 \
  "$(req "$FORK" PUT "cas1/acme~2Fwidget/linux/deps/untrusted/pr-7/packs/$sha.pack" "$SCRATCH/blob")"
refused "a pack of another origin" 403 "$(req "$FORK" PUT "$cas/untrusted/pr-8/packs/$sha.pack" "$SCRATCH/blob")"
refused "a pack under another name than its digest" 403 \
  "$(req "$FORK" PUT "$cas/untrusted/pr-7/packs/$(printf '%064d' 0).pack" "$SCRATCH/blob")"
refused "the trusted pack overwritten" 403 "$(req "$FORK" PUT "$pack" "$SCRATCH/blob")"
refused "another origin's pack read" 404 "$(req "$FORK" GET "$cas/untrusted/pr-8/packs/$sha.pack")"

# Manifests: the fork reads the trusted one (trusted saves reach untrusted jobs) and writes
# its own, pointing at the trusted index, another repository's, one not in the store.
[ "$(req "$FORK" GET "$manifest")" = 200 ] || fail "the fork may read the trusted manifest"
cp "$SCRATCH/answer" "$SCRATCH/trusted.json"
stamp_dir=${manifest%/*}
forge() { # forge OUT ARCHIVE SHA SIZE: the fork's own manifest naming that index
  /usr/bin/python3 - "$SCRATCH/trusted.json" "$@" <<'PY'
import json, sys, datetime
m = json.load(open(sys.argv[1]))
out, archive, sha, size = sys.argv[2:]
m.update(trusted=False, origin="pr-7", job_id="job-fork", archive=archive, sha256=sha,
         compressed_size=int(size),
         created=datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
m.pop("signature", None)
json.dump(m, open(out, "w"))
PY
}
index_sha=${index##*/}; index_sha=${index_sha%.idx}
index_size=$(on_machine curl -s -H "Authorization: Bearer $FORK" "$BROKER/v1/stat/$index" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')
forge "$SCRATCH/m1.json" "$index" "$index_sha" "$index_size"
refused "a fork's manifest naming the trusted index" 403 \
  "$(req "$FORK" PUT "$stamp_dir/20261201T000000.000000Z-0000c0c0.json" "$SCRATCH/m1.json")"
forge "$SCRATCH/m2.json" "cas1/acme~2Fother/~/deps/untrusted/pr-7/index/$index_sha.idx" "$index_sha" "$index_size"
refused "a fork's manifest naming another repository's index" 403 \
  "$(req "$FORK" PUT "$stamp_dir/20261201T000000.000000Z-0000c0c1.json" "$SCRATCH/m2.json")"
forge "$SCRATCH/m3.json" "$cas/untrusted/pr-7/index/$sha.idx" "$sha" 10000
refused "a fork's manifest naming an index not in the store" 403 \
  "$(req "$FORK" PUT "$stamp_dir/20261201T000000.000000Z-0000c0c2.json" "$SCRATCH/m3.json")"
TRUSTED=$(token)
refused "a trusted manifest of the fork's making" 403 \
  "$(req "$TRUSTED" PUT "$stamp_dir/20261201T000000.000000Z-0000c0c3.json" "$SCRATCH/m3.json")"

after=$(store_objects)
[ "$before" = "$after" ] || fail "a refused write stored something: $(diff <(echo "$before") <(echo "$after"))"

# The fork copies the trusted index into its own folder (its bytes, its name: allowed) and
# publishes a manifest of its own for it: its packs are the trusted ones, which a restore of
# the fork's scope never reads, so the fork restores nothing of them.
got=$(curl -s -o "$SCRATCH/index.idx" -w '%{http_code} %{redirect_url}' -H "Authorization: Bearer $FORK" \
  "$BROKER/v1/objects/$index")
case "$got" in # on S3 the broker answers with a presigned URL, fetched without the token
  307\ *) curl -sf -o "$SCRATCH/index.idx" "${got#307 }" || fail "the presigned index" ;;
  200\ *) ;;
  *) fail "the fork may read the trusted index: $got" ;;
esac
[ "$(req "$FORK" PUT "$cas/untrusted/pr-7/index/$index_sha.idx" "$SCRATCH/index.idx")" = 204 ] ||
  fail "the fork's own index: $(cat "$SCRATCH/answer")"
forge "$SCRATCH/m4.json" "$cas/untrusted/pr-7/index/$index_sha.idx" "$index_sha" "$index_size"
[ "$(req "$FORK" PUT "$stamp_dir/20261201T000000.000000Z-0000c0c4.json" "$SCRATCH/m4.json")" = 204 ] ||
  fail "the fork's own manifest: $(cat "$SCRATCH/answer")"
machine fork
ctx feature pull_request job-fork2
TOKEN=$(BUILDOMAT_JOB_ID=job-fork2 token --untrusted --origin pr-7)
beph pre --job "$JOB" --untrusted --origin pr-7 2>"$SCRATCH/fork.err"
# It chose its own origin's save (the newest), whose index names the trusted scope: refused,
# never read from the trusted packs.
grep -q "invalid index: it belongs to scope 'acme~2Fwidget/~/deps/trusted', not 'acme~2Fwidget/~/deps/untrusted/pr-7'" "$SCRATCH/fork.err" ||
  fail "the fork's save read packs outside its scope: $(cat "$SCRATCH/fork.err")"
[ ! -e "$M/work/job/target/big" ] || cmp -s "$SCRATCH/trusted/work/job/target/big" "$M/work/job/target/big" ||
  fail "the fork restored something else"

# A trusted job never reads the fork's objects, and still restores the trusted save.
refused "a trusted job reads the fork's index" 404 "$(req "$TRUSTED" GET "$cas/untrusted/pr-7/index/$index_sha.idx")"
machine check2
ctx feature pull_request job-check2
TOKEN=$(token)
beph pre --job "$JOB"
expect_result pre deps hit
cmp "$SCRATCH/trusted/work/job/target/big" "$M/work/job/target/big" || fail "the trusted restore differs"

# The fork's own content-addressed save works through the broker, in its own folder only.
machine fork-own
mkdir -p "$M/work/job/target"; echo "fork bytes" > "$M/work/job/target/a"
ctx feature2 pull_request job-fork3
TOKEN=$(BUILDOMAT_JOB_ID=job-fork3 token --untrusted --origin pr-7)
mid=$(store_objects)
beph post --job "$JOB" --status 0 --untrusted --origin pr-7
expect_result post deps saved
added=$(comm -13 <(echo "$mid") <(store_objects))
echo "$added" | grep -v "^$cas/untrusted/pr-7/\|^v1/acme~2Fwidget/~/deps/e1/deps/[^/]*\.json$\|^v1/_events/" &&
  fail "the fork's save wrote outside its scope: $added"
echo "broker hostile-cas ($STORE_KIND): ok"
