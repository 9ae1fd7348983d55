# pre and post through a broker on 127.0.0.1 in front of the store: the build machine holds
# a token and the broker's URL, never the store's credentials or a signing key; saves come
# back byte for byte, signed by the broker, and verify with its public key alone.
. "$(dirname "$0")/lib.sh"

start_broker b1 --verbose
JOB="$SCRATCH/job.toml"
deps_job "$JOB" 'restore_keys = ["de"]'

populate() {
  mkdir -p "$M/work/job/target/sub"
  echo "lib $1" > "$M/work/job/target/a.rlib"
  ln -s a.rlib "$M/work/job/target/link"
  # Past the broker's 1 MiB and the client's 4 MiB: against S3 the read goes to a presigned
  # URL and the upload to presigned parts.
  head -c 6000000 /dev/urandom > "$M/work/job/target/sub/big.bin"
  chmod 640 "$M/work/job/target/sub/big.bin"
}

machine first; populate one
ctx feature pull_request job-1
TOKEN=$(token)
beph post --job "$JOB" --status 0
expect_result post deps saved
grep -q refused "$SCRATCH/b1.log" && fail "the broker refused the job's own save: $(cat "$SCRATCH/b1.log")"

# The manifest is the broker's: Ed25519-signed, and good for the public key alone.
EPHEMERA_PUBLIC_KEY="$KEYS/broker.pem.pub" "$EPHEMERA" --store "$STORE" ls --json > "$SCRATCH/ls.json"
/usr/bin/python3 - "$SCRATCH/ls.json" <<'PY' || fail "the save is not signed by the broker"
import json, sys
saves = json.load(open(sys.argv[1]))
assert len(saves) == 1, saves
assert saves[0]["signature"].startswith("ed25519:"), saves[0]["signature"]
assert saves[0]["restorable"], saves[0]
PY
# Another key's public half refuses it.
"$EPHEMERA" token --keygen "$KEYS/other.pem" 2>/dev/null
EPHEMERA_PUBLIC_KEY="$KEYS/other.pem.pub" "$EPHEMERA" --store "$STORE" ls --json 2>/dev/null \
  | grep -q '"restorable": true' && fail "a save verified with another key"

# A fresh machine restores it through the broker, byte for byte.
machine second
ctx feature pull_request job-2
TOKEN=$(token)
beph pre --job "$JOB"
expect_result pre deps hit
diff <(listing "$SCRATCH/first/work/job/target") <(listing "$SCRATCH/second/work/job/target") || fail "restored tree differs"
# Against S3 the archive's bytes went between the store and the machine, not through the
# broker, both ways.
if [ "$STORE_KIND" = s3 ]; then
  grep -q "presigned URL" "$SCRATCH/b1.log" || fail "the broker streamed an S3 archive itself"
  grep -q "bytes in 1 presigned part(s)" "$SCRATCH/b1.log" ||
    fail "the upload went through the broker: $(cat "$SCRATCH/b1.log")"
fi

# In-job restore and ls through the broker, with an operator's token for ls.
machine third
ctx feature pull_request job-3
TOKEN=$(token)
beph restore deps --job "$JOB" || fail "in-job restore through the broker missed"
cmp "$SCRATCH/first/work/job/target/sub/big.bin" "$M/work/job/target/sub/big.bin"
TOKEN=$("$EPHEMERA" token --key "$KEYS/broker.pem" --operator)
on_machine "$EPHEMERA" ls --json | grep -q '"key": "deps"' || fail "an operator's ls through the broker"

# What an interrupted write left (a local store's temporary file, an unfinished S3 multipart
# upload) is listed and removed through the broker by an operator's gc; the save stays.
case "$STORE_KIND" in
  local) dir=$(dirname "$(find "$STORE/v1" -name '*.json' | head -1)")
         leftover="$dir/.ephemera-0123456789abcdef-00000000"
         echo half > "$leftover" ;;
  s3) path=${STORE#s3://}
      aws --endpoint-url "$EPHEMERA_S3_ENDPOINT" s3api create-multipart-upload \
        --bucket "${path%%/*}" --key "${path#*/}/v1/acme~2Fwidget/~/deps/e1/deps/stale.tar.zst" >/dev/null ;;
esac
on_machine "$EPHEMERA" gc --grace 0s > "$SCRATCH/gc.out" 2>&1 || fail "gc through the broker: $(cat "$SCRATCH/gc.out")"
grep -q "interrupted write" "$SCRATCH/gc.out" || fail "gc did not name the leftover: $(cat "$SCRATCH/gc.out")"
case "$STORE_KIND" in
  local) [ -e "$leftover" ] && fail "the temporary file outlived gc through the broker" ;;
  s3) left=$(aws --endpoint-url "$EPHEMERA_S3_ENDPOINT" s3api list-multipart-uploads \
          --bucket "${path%%/*}" --prefix "${path#*/}/" --query 'length(Uploads || `[]`)' --output text)
      [ "$left" = 0 ] || fail "$left multipart uploads outlived gc through the broker" ;;
esac
on_machine "$EPHEMERA" ls --json | grep -q '"key": "deps"' || fail "gc through the broker removed the save"

# An operator exports the save through the broker: the archive verified against the broker's
# signed manifest, and GNU tar unpacks it into the tree the job saved.
id=$(on_machine "$EPHEMERA" ls --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
on_machine "$EPHEMERA" export "$id" "$SCRATCH/exported.tar.zst" 2> "$SCRATCH/export.err" ||
  fail "export through the broker: $(cat "$SCRATCH/export.err")"
mkdir "$SCRATCH/exported"
tar --zstd -xpf "$SCRATCH/exported.tar.zst" -C "$SCRATCH/exported"
diff <(listing "$SCRATCH/first/work/job/target") <(listing "$SCRATCH/exported/work/target") >&2 ||
  fail "the export through the broker is not the saved tree"

# A job's token does not list the store.
ctx feature pull_request job-4
TOKEN=$(token)
on_machine "$EPHEMERA" ls >/dev/null 2>&1 && fail "a job's token listed the whole store"

# The pinned public key: a broker whose key is not the pinned one is not believed.
machine fourth
ctx feature pull_request job-5
TOKEN=$(token)
EPHEMERA_PUBLIC_KEY="$KEYS/other.pem.pub" beph pre --job "$JOB" 2>"$SCRATCH/pinned.err"
expect_result pre deps miss
echo "broker roundtrip ($STORE_KIND): ok"
