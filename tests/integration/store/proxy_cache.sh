# A caching proxy near the runners (nginx with examples/nginx-cache.conf) in front of the S3
# server, in both save formats: saves go through it; restores through it are byte-identical;
# the second restore is served from its cache, the store asked for no pack or archive but
# still for every listing, manifest and index; a 403 is never cached; a cached object is
# served without a signature (why it must sit on the runners' private network); a forged
# object whose path normalizes to a real one's does not take its place in the cache; and a
# poisoned cache makes a clean miss that writes nothing. The fault proxy sits between nginx
# and the store: its log is what the store was asked.
. "$(dirname "$0")/../lib.sh"
[ "${STORE_KIND}" = s3 ] || fail "this test needs STORE_KIND=s3"
command -v nginx > /dev/null || fail "nginx is not installed (sh tools/install-deps.sh test)"
on_exit 's3obj rmtree "$STORE/" > /dev/null 2>&1'

start_fault_proxy
N="$SCRATCH/nginx"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
conf=$(sh "$SOURCE_ROOT/examples/nginx-cache.sh" "$N" "${PROXY_URL#http://}" "127.0.0.1:$port" 1g root)
nginx -p "$N" -c "$conf" -g 'daemon off;' 2> "$N/stderr" &
NGINX_PID=$!
on_exit 'kill $NGINX_PID 2>/dev/null; wait $NGINX_PID 2>/dev/null'
NGINX="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -s -o /dev/null "$NGINX/" && break
  kill -0 "$NGINX_PID" 2> /dev/null || fail "nginx did not start: $(cat "$N/stderr" "$N/error.log" 2>/dev/null)"
  sleep 0.1
done
export EPHEMERA_S3_ENDPOINT="$NGINX"
bucket=$EPHEMERA_TEST_S3_BUCKET
prefix=${STORE#s3://$bucket/}

# What the store was asked since the last `fault pass`: GETs of the immutable objects, and
# of the rest.
object_gets() { grep -cE "^GET [^ ]*(\.pack|\.tar\.zst)( |\?)" "$P.log" || true; }
other_gets() { grep -cE "^GET [^ ]*(\.json|\.idx|list-type=2)" "$P.log" || true; }

for format in cas1 archive; do
  if [ "$format" = archive ]; then export EPHEMERA_FORMAT=archive; else unset EPHEMERA_FORMAT; fi
  JOB="$SCRATCH/$format.toml"
  printf 'name = "build"\nvariety = "basic"\n[[persist]]\nname = "deps-%s"\nrules = ["target"]\nepoch = 1\ncache_key = "k"\n' \
    "$format" > "$JOB"
  stanza="deps-$format"
  machine "saver-$format"; ctx feature pull_request "job-save-$format"
  mkdir -p "$M/work/job/target/sub"
  head -c 20000000 /dev/urandom > "$M/work/job/target/blob"
  for i in $(seq 1 50); do echo "small $i" > "$M/work/job/target/sub/f$i"; done
  saver=$M
  eph post --job "$JOB" --status 0 2> "$SCRATCH/save.err" || fail "post through nginx: $(cat "$SCRATCH/save.err")"
  expect_result post "$stanza" saved
  case $format in
    cas1) object=$(s3obj ls "s3://$bucket/$prefix/cas1/" | grep '/packs/.*\.pack$' | head -1) ;;
    archive) object=$(s3obj ls "s3://$bucket/$prefix/v1/" | grep 'deps-archive.*\.tar\.zst$' | head -1) ;;
  esac
  [ -n "$object" ] || fail "$format: no object saved through nginx"

  # An unsigned GET is the store's 403, and that answer is not kept for the signed ones.
  code=$(curl -s -o /dev/null -w '%{http_code}' "$NGINX/$bucket/$object")
  [ "$code" = 403 ] || fail "$format: an unsigned GET of an uncached object: HTTP $code, not 403"

  # A store writer's object whose key holds "x/../" is a different object to S3, but the
  # same path to nginx once normalized: fetching it must not fill the real object's entry.
  forged="$prefix/x/../${object#"$prefix"/}"
  head -c 1000 /dev/urandom > "$SCRATCH/forged"
  s3obj put "$SCRATCH/forged" "s3://$bucket/$forged"
  curl -sf --path-as-is --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" \
    --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: $(sha256sum < /dev/null | cut -d' ' -f1)" \
    -o "$SCRATCH/got" "$NGINX/$bucket/$forged" || fail "$format: the forged object through nginx"
  cmp -s "$SCRATCH/got" "$SCRATCH/forged" || fail "$format: the forged object did not come back"

  # 1. Cold: the store serves the object through nginx.
  fault pass
  machine "cold-$format"; ctx feature pull_request
  eph pre --job "$JOB" 2> "$SCRATCH/cold.err" || fail "cold pre: $(cat "$SCRATCH/cold.err")"
  expect_result pre "$stanza" hit
  [ "$(listing "$M/work/job")" = "$(listing "$saver/work/job")" ] || fail "$format: the cold restore differs"
  [ "$(object_gets)" -ge 1 ] || fail "$format: the cold restore did not reach the store: $(cat "$P.log")"

  # 2. Warm: every byte of the object from nginx's cache; listings, manifests and indexes
  # from the store, so a new save or an invalidation is seen at once.
  fault pass
  : > "$N/access.log"
  machine "warm-$format"; ctx feature pull_request
  eph pre --job "$JOB" 2> "$SCRATCH/warm.err" || fail "warm pre: $(cat "$SCRATCH/warm.err")"
  expect_result pre "$stanza" hit
  [ "$(listing "$M/work/job")" = "$(listing "$saver/work/job")" ] || fail "$format: the warm restore differs"
  [ "$(object_gets)" = 0 ] || fail "$format: the warm restore asked the store for the object: $(cat "$P.log")"
  [ "$(other_gets)" -ge 2 ] || fail "$format: listings and manifests did not reach the store: $(cat "$P.log")"
  grep -qE "\"GET /$bucket/$object .* cache=HIT" "$N/access.log" || fail "$format: no HIT in nginx's log: $(cat "$N/access.log")"
  ! grep -E "\.(json|idx) |list-type=2" "$N/access.log" | grep -v "cache=-" ||
    fail "$format: nginx cached something other than a pack or an archive"

  # 3. What is cached is served without a signature: the proxy must sit where only the
  # runners reach it (README "A store near the runners").
  code=$(curl -s -o /dev/null -w '%{http_code}' "$NGINX/$bucket/$object")
  [ "$code" = 200 ] || fail "$format: an unsigned GET of a cached object: HTTP $code"

  # 4. A poisoned cache (its files rewritten: 64 other bytes in the middle of each body) is a
  # clean miss: nothing restored, the job unharmed, the check that caught it named.
  /usr/bin/python3 - "$N/cache" <<'PY'
import os, sys
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        path = os.path.join(d, f)
        data = bytearray(open(path, "rb").read())
        body = data.index(b"\r\n\r\n") + 4
        middle = body + (len(data) - body) // 2
        for i in range(middle, min(middle + 64, len(data))):
            data[i] ^= 0x5A
        open(path, "wb").write(data)
PY
  machine "poisoned-$format"; ctx feature pull_request
  eph pre --job "$JOB" 2> "$SCRATCH/poisoned.err" || fail "pre failed on a poisoned cache: $(cat "$SCRATCH/poisoned.err")"
  [ "$(result_of pre "$stanza")" != hit ] || fail "$format: a poisoned cache was restored"
  [ -z "$(find "$M/work/job" -mindepth 1 -print -quit)" ] ||
    fail "$format: a poisoned restore left $(find "$M/work/job" -mindepth 1 | head -3)"
  grep -qiE "sha-?256|digest|does not decode" "$SCRATCH/poisoned.err" ||
    fail "$format: the poisoned restore does not say what was wrong: $(cat "$SCRATCH/poisoned.err")"
done
echo "proxy cache: ok"
