# The broker's uploads in parts against a hostile client (S3: the parts go straight to the
# store by presigned links, and a ticket binds each upload to the token that started it, its
# key, its upload id and its sizes). A start with an altered, expired, foreign or fork's
# token, a completion with another token's ticket, an altered one, other sizes or another
# upload's id, an abort of someone else's upload: each is refused (403, or the precise 4xx),
# logged by the broker, begins no upload and stores nothing; the legitimate upload that all of
# it aimed at still completes afterwards, and parts that make other than the declared size
# publish nothing.
. "$(dirname "$0")/lib.sh"
[ "$STORE_KIND" = s3 ] || fail "uploads in parts are S3's: run with STORE_KIND=s3"
on_exit clean_s3

start_broker b1 --max-object 1000000
ctx feature pull_request job-a
A=$(token)
B=$(BUILDOMAT_JOB_ID=job-b token)
FORK=$(BUILDOMAT_JOB_ID=job-fork token --untrusted --origin pr-7)
OTHER=$("$EPHEMERA" token --key "$KEYS/broker.pem" --repository acme/other --branch feature \
  --event pull_request --job-id job-other)
MAIN=$(GITHUB_BRANCH=main EPHEMERA_EVENT=push token)
"$EPHEMERA" token --keygen "$KEYS/rogue.pem" 2>/dev/null
ROGUE=$("$EPHEMERA" token --key "$KEYS/rogue.pem" --repository acme/widget --branch feature \
  --event pull_request --job-id job-a)
EXPIRED=$(token --ttl 1)
# altered TEXT AT: TEXT with its byte AT changed.
altered() {
  local c=${1:$2:1} r=A
  [ "$c" = A ] && r=B
  echo "${1:0:$2}$r${1:$(($2 + 1))}"
}

cas=cas1/acme~2Fwidget/~/deps/trusted/packs
# pack N: a blob of 1000 random bytes in $SCRATCH/blobN; echoes its key in the trusted folder.
pack() {
  head -c 1000 /dev/urandom > "$SCRATCH/blob$1"
  echo "$cas/$(sha256sum < "$SCRATCH/blob$1" | cut -c1-64).pack"
}
start() { call "$1" POST "/v1/uploads/$2?size=${3:-1000}"; } # TOKEN KEY [SIZE]
# send_parts FILE PLAN: FILE's bytes to the parts PLAN (a start's answer) names, in order;
# PLAN gets their ETags, and loses the links, as the client's completion carries it.
send_parts() {
  local file=$1 plan=$2 n=0 url etags=()
  local part_size; part_size=$(jq -r .part_size "$plan")
  for url in $(jq -r '.parts[]' "$plan"); do
    tail -c +$((n * part_size + 1)) "$file" | head -c "$part_size" > "$SCRATCH/part"
    etags+=("$(curl -s -f -D - -o /dev/null -T "$SCRATCH/part" "$url" | tr -d '\r' |
      sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')")
    n=$((n + 1))
  done
  jq --args 'del(.parts) + {etags: $ARGS.positional}' "${etags[@]}" < "$plan" > "$plan.tmp"
  mv "$plan.tmp" "$plan"
}
# edit PLAN FILTER: a copy of PLAN with jq's FILTER applied, in $SCRATCH/edited.
edit() { jq "$2" "$1" > "$SCRATCH/edited"; }

logged=$(refused_count b1)
before=$(store_objects)
uploads_before=$(s3_uploads)

# 1. Starts the token may not make: none begins an upload.
k1=$(pack 1)
for at in 8 40 $((${#A} - 5)); do
  refused "a start with a token altered at byte $at" 403 "$(start "$(altered "$A" "$at")" "$k1")"
done
sleep 2 # past the expiry of EXPIRED (1 s), however fast the lines above ran
refused "a start with an expired token" 403 "$(start "$EXPIRED" "$k1")"
refused "a start with a token of another key" 403 "$(start "$ROGUE" "$k1")"
refused "a start with another repository's token" 403 "$(start "$OTHER" "$k1")"
refused "a start of a fork for a trusted key" 403 "$(start "$FORK" "$k1")"
refused "a start of a push to a protected branch" 403 "$(start "$MAIN" "$k1")"
refused "a start with no token" 401 \
  "$(curl -s -o "$SCRATCH/answer" -w '%{http_code}' -X POST "$BROKER/v1/uploads/$k1?size=1000")"
refused "a start of a manifest in parts" 403 \
  "$(start "$A" "v1/acme~2Fwidget/~/deps/e1/deps/20261201T000000.000000Z-0000a001.json")"
refused "a start of more than --max-object" 413 "$(start "$A" "$k1" 1000001)"
refused "a start of nothing" 413 "$(start "$A" "$k1" 0)"
refused "a start of a size that is no number" 400 "$(start "$A" "$k1" 1e3)"
[ "$(s3_uploads)" = "$uploads_before" ] || fail "a refused start began an upload: $(s3_uploads)"

# 2. The upload they all aim at: job a's, of k1, its part sent; and job b's of the same key.
[ "$(start "$A" "$k1")" = 200 ] || fail "job a's start: $(cat "$SCRATCH/answer")"
cp "$SCRATCH/answer" "$SCRATCH/plan-a"
send_parts "$SCRATCH/blob1" "$SCRATCH/plan-a"
[ "$(start "$B" "$k1")" = 200 ] || fail "job b's start: $(cat "$SCRATCH/answer")"
cp "$SCRATCH/answer" "$SCRATCH/plan-b"
send_parts "$SCRATCH/blob1" "$SCRATCH/plan-b"
SHORT=$(token --ttl 5)
[ "$(start "$SHORT" "$k1")" = 200 ] || fail "the short token's start: $(cat "$SCRATCH/answer")"
cp "$SCRATCH/answer" "$SCRATCH/plan-short"
send_parts "$SCRATCH/blob1" "$SCRATCH/plan-short"
ticket_a=$(jq -r .ticket "$SCRATCH/plan-a")

# Completions the token may not make.
complete() { call "$1" POST "/v1/complete/$2" "$3"; } # TOKEN KEY PLAN
refused "job b completes job a's upload with a's ticket" 403 "$(complete "$B" "$k1" "$SCRATCH/plan-a")"
edit "$SCRATCH/plan-a" ".upload = \"$(jq -r .upload "$SCRATCH/plan-b")\""
refused "job a completes job b's upload id with a's ticket" 403 "$(complete "$A" "$k1" "$SCRATCH/edited")"
refused "job a completes with job b's plan" 403 "$(complete "$A" "$k1" "$SCRATCH/plan-b")"
for at in 0 20 $((${#ticket_a} - 1)); do
  edit "$SCRATCH/plan-a" ".ticket = \"$(altered "$ticket_a" "$at")\""
  refused "a completion with its ticket altered at byte $at" 403 "$(complete "$A" "$k1" "$SCRATCH/edited")"
done
edit "$SCRATCH/plan-a" '.size = 999'
refused "a completion declaring another size" 403 "$(complete "$A" "$k1" "$SCRATCH/edited")"
edit "$SCRATCH/plan-a" '.part_size = 500 | .etags += .etags'
refused "a completion declaring another part size" 403 "$(complete "$A" "$k1" "$SCRATCH/edited")"
edit "$SCRATCH/plan-a" '.etags += .etags'
refused "a completion with more parts than declared" 400 "$(complete "$A" "$k1" "$SCRATCH/edited")"
k2=$(pack 2)
refused "a completion of another key with the plan of k1" 403 "$(complete "$A" "$k2" "$SCRATCH/plan-a")"
refused "a fork completes job a's upload" 403 "$(complete "$FORK" "$k1" "$SCRATCH/plan-a")"
refused "a completion with job a's token altered" 403 \
  "$(complete "$(altered "$A" 40)" "$k1" "$SCRATCH/plan-a")"
refused "another repository's token completes" 403 "$(complete "$OTHER" "$k1" "$SCRATCH/plan-a")"
sleep 6 # past the expiry of SHORT (5 s)
refused "a completion with the starting token expired" 403 \
  "$(complete "$SHORT" "$k1" "$SCRATCH/plan-short")"
printf '{"upload": ' > "$SCRATCH/truncated"
refused "a completion that is no JSON" 400 "$(complete "$A" "$k1" "$SCRATCH/truncated")"

# Aborts of someone else's upload.
abort() { call "$1" POST "/v1/abort/$2" "$3"; } # TOKEN KEY PLAN
refused "job b aborts job a's upload" 403 "$(abort "$B" "$k1" "$SCRATCH/plan-a")"
refused "a fork aborts job a's upload" 403 "$(abort "$FORK" "$k1" "$SCRATCH/plan-a")"
edit "$SCRATCH/plan-b" ".upload = \"$(jq -r .upload "$SCRATCH/plan-a")\""
refused "job b aborts job a's upload id with b's ticket" 403 "$(abort "$B" "$k1" "$SCRATCH/edited")"
refused "an abort with the expired token" 403 "$(abort "$SHORT" "$k1" "$SCRATCH/plan-short")"
after=$(store_objects)
[ "$after" = "$before" ] || fail "a refused request stored: $(comm -13 <(echo "$before") <(echo "$after"))"
s3_uploads | grep -q "$(jq -r .upload "$SCRATCH/plan-a")" || fail "a refused abort ended job a's upload"

# Job a's upload survived all of it: it completes, once, with its bytes.
[ "$(complete "$A" "$k1" "$SCRATCH/plan-a")" = 204 ] || fail "job a's completion: $(cat "$SCRATCH/answer")"
s3obj get "$STORE/$k1" "$SCRATCH/got"
cmp "$SCRATCH/blob1" "$SCRATCH/got" || fail "the completed object is not job a's bytes"
[ "$(abort "$B" "$k1" "$SCRATCH/plan-b")" = 204 ] || fail "job b aborts its own upload"

# 3. Parts that make other than the declared size publish nothing: fewer bytes, more bytes.
archive="v1/acme~2Fwidget/~/deps/e1/deps/20261201T000000.000000Z-0000a002.tar.zst"
head -c 1000 /dev/urandom > "$SCRATCH/short"
head -c 3000 /dev/urandom > "$SCRATCH/long"
for sent in short long; do
  [ "$(start "$A" "$archive" 2000)" = 200 ] || fail "the start of the $sent archive: $(cat "$SCRATCH/answer")"
  cp "$SCRATCH/answer" "$SCRATCH/plan-$sent"
  # The presigned link takes any length: the store, not the link, says what arrived.
  url=$(jq -r '.parts[0]' "$SCRATCH/plan-$sent")
  etag=$(curl -s -f -D - -o /dev/null -T "$SCRATCH/$sent" "$url" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')
  jq --arg e "$etag" 'del(.parts) + {etags: [$e]}' "$SCRATCH/plan-$sent" > "$SCRATCH/edited"
  refused "parts of a $sent archive" 403 "$(complete "$A" "$archive" "$SCRATCH/edited")"
  grep -q "not the 2000 declared" "$SCRATCH/answer" || fail "the $sent archive's refusal: $(cat "$SCRATCH/answer")"
  store_objects | grep -qF "$archive" && fail "the $sent archive was published"
done
# The declared size publishes, once: an archive is immutable.
head -c 2000 /dev/urandom > "$SCRATCH/exact"
[ "$(start "$A" "$archive" 2000)" = 200 ] || fail "the start of the archive: $(cat "$SCRATCH/answer")"
cp "$SCRATCH/answer" "$SCRATCH/plan-exact"
send_parts "$SCRATCH/exact" "$SCRATCH/plan-exact"
[ "$(complete "$A" "$archive" "$SCRATCH/plan-exact")" = 204 ] || fail "the archive's completion: $(cat "$SCRATCH/answer")"
logged=$(refused_count b1)
refused "the archive completed again" 403 "$(complete "$A" "$archive" "$SCRATCH/plan-exact")"
refused "the archive started again" 403 "$(start "$A" "$archive" 2000)"
s3obj get "$STORE/$archive" "$SCRATCH/got"
cmp "$SCRATCH/exact" "$SCRATCH/got" || fail "the archive is not the bytes of its parts"
[ "$(comm -13 <(echo "$before") <(store_objects))" = "$(printf '%s\n' "$k1" "$archive" | LC_ALL=C sort)" ] || fail "the store holds more than job a's object: $(store_objects)"
echo "broker hostile uploads ($STORE_KIND): ok"
