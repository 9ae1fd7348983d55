# What ephemera puts in S3 is ordinary S3 objects: awscli lists and fetches them, the
# archive's SHA-256 is the manifest's, GNU tar reads it, and the presigned link from
# 'ephemera show' downloads the same bytes with plain curl.
. "$(dirname "$0")/../lib.sh"
# These saves are single archives (EPHEMERA_FORMAT=archive), whose one object this script
# fetches, stalls and forges; stores keep holding and restoring them.
export EPHEMERA_FORMAT=archive
[ "${STORE_KIND}" = s3 ] || fail "this test needs STORE_KIND=s3"
export AWS_PAGER=""
aws() { /usr/bin/aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" "$@"; }

JOB="$SCRATCH/job.toml"
cat > "$JOB" <<'TOML'
name = "build"
variety = "basic"

[[persist]]
name = "deps"
rules = ["target", "~/.cache/tool"]
epoch = 1
cache_key = "deps"
TOML

machine one
mkdir -p "$M/work/job/target/sub" "$M/home/build/.cache/tool"
echo "object one" > "$M/work/job/target/sub/one.o"
head -c 200000 /dev/urandom > "$M/home/build/.cache/tool/blob"
ln -s sub/one.o "$M/work/job/target/link"
ctx feature pull_request job-aws-1
eph pre --job "$JOB" >/dev/null
eph post --job "$JOB" --status 0 >/dev/null
expect_result post deps saved

prefix=${STORE#s3://$EPHEMERA_TEST_S3_BUCKET/}
aws s3 ls --recursive "s3://$EPHEMERA_TEST_S3_BUCKET/$prefix/" > "$SCRATCH/ls.txt"
cat "$SCRATCH/ls.txt"
[ "$(grep -c '\.tar\.zst$' "$SCRATCH/ls.txt")" = 1 ] || fail "awscli does not list exactly one archive"
[ "$(grep -c '\.json$' "$SCRATCH/ls.txt")" = 1 ] || fail "awscli does not list exactly one manifest"
archive=$(awk '/\.tar\.zst$/ {print $4}' "$SCRATCH/ls.txt")
manifest=$(awk '/\.json$/ {print $4}' "$SCRATCH/ls.txt")
case "$archive" in
  "$prefix"/v1/acme~2Fwidget/~/deps/e1/deps/*) ;; # no target: "~"
  *) fail "archive object $archive is not where the layout puts it" ;;
esac

aws s3 cp "s3://$EPHEMERA_TEST_S3_BUCKET/$archive" "$SCRATCH/a.tar.zst" >/dev/null
aws s3 cp "s3://$EPHEMERA_TEST_S3_BUCKET/$manifest" "$SCRATCH/m.json" >/dev/null
want=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$SCRATCH/m.json")
got=$(sha256sum "$SCRATCH/a.tar.zst" | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "manifest says $want, awscli fetched $got"
size=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["compressed_size"])' "$SCRATCH/m.json")
[ "$size" = "$(stat -c %s "$SCRATCH/a.tar.zst")" ] || fail "manifest size $size differs from the object"

mkdir "$SCRATCH/gnu"
zstd -dc "$SCRATCH/a.tar.zst" | tar -x -C "$SCRATCH/gnu"
cmp "$SCRATCH/gnu/work/target/sub/one.o" "$M/work/job/target/sub/one.o" || fail "GNU tar unpacks other bytes"
cmp "$SCRATCH/gnu/home/.cache/tool/blob" "$M/home/build/.cache/tool/blob" || fail "GNU tar unpacks other bytes"
[ "$(readlink "$SCRATCH/gnu/work/target/link")" = sub/one.o ] || fail "the symlink is not a symlink"

# The report and 'show' carry a presigned link that plain curl can follow.
"$EPHEMERA" show "${archive#"$prefix"/}" --json > "$SCRATCH/show.json"
link=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["presigned"])' "$SCRATCH/show.json")
case "$link" in
  "$EPHEMERA_TEST_S3_ENDPOINT"/*X-Amz-Signature=*) ;;
  *) fail "no presigned link in show: $link" ;;
esac
curl -sSf -o "$SCRATCH/curl.tar.zst" "$link" || fail "curl could not fetch the presigned link"
cmp "$SCRATCH/curl.tar.zst" "$SCRATCH/a.tar.zst" || fail "the presigned link gives other bytes"
if echo "$link" | grep -q "$AWS_SECRET_ACCESS_KEY"; then fail "the secret key is in the link"; fi
# A link with a tampered signature is refused by the server.
bad=$(echo "$link" | sed 's/X-Amz-Signature=0/X-Amz-Signature=1/; t; s/X-Amz-Signature=./X-Amz-Signature=0/')
[ "$bad" != "$link" ] || fail "the test did not tamper with the link"
if curl -sf -o /dev/null "$bad"; then fail "the server accepted a tampered link"; fi

# And the other way: an object awscli deletes is simply a miss for the next machine.
aws s3 rm "s3://$EPHEMERA_TEST_S3_BUCKET/$archive" >/dev/null
machine two
ctx feature pull_request job-aws-2
eph pre --job "$JOB" 2> "$SCRATCH/pre2.txt" >/dev/null || fail "pre must not fail when an archive vanished"
[ ! -e "$M/work/job/target/sub/one.o" ] || fail "restored from an archive that does not exist"
cat "$SCRATCH/pre2.txt"
echo "awscli: ok"
