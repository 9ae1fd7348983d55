# Shared by the broker scripts: the hooks' scratch roots and store ($STORE_KIND), a key pair,
# brokers started on 127.0.0.1 in front of $STORE (stopped at exit), tokens, and the build
# machine's side, which holds no store credentials.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

KEYS="$SCRATCH/keys"
mkdir -p "$KEYS"
"$EPHEMERA" token --keygen "$KEYS/broker.pem" 2>/dev/null
BROKER_PIDS=()

stop_brokers() {
  local pid
  for pid in "${BROKER_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
# The brokers stop before the scratch dir of a failed test is kept.
on_exit stop_brokers

# start_broker NAME [ARGS...]: a broker in front of $STORE, its log in $SCRATCH/NAME.log;
# sets BROKER (its URL) and BROKER_PID. It alone holds the store's credentials.
start_broker() {
  local name=$1; shift
  rm -f "$SCRATCH/$name.port"
  "$EPHEMERA" --store "$STORE" serve --listen 127.0.0.1:0 --port-file "$SCRATCH/$name.port" \
    --signing-key "$KEYS/broker.pem" "$@" 2>"$SCRATCH/$name.log" &
  BROKER_PID=$!
  BROKER_PIDS+=("$BROKER_PID")
  local i
  for i in $(seq 100); do
    [ -s "$SCRATCH/$name.port" ] && break
    kill -0 "$BROKER_PID" 2>/dev/null || { cat "$SCRATCH/$name.log" >&2; fail "broker $name did not start"; }
    sleep 0.1
  done
  [ -s "$SCRATCH/$name.port" ] || fail "broker $name did not listen within 10 s"
  BROKER="http://127.0.0.1:$(cat "$SCRATCH/$name.port")"
}

# token [ARGS...]: a job's token for acme/widget, context from the CTX_* variables of ctx
# unless ARGS say otherwise.
token() {
  "$EPHEMERA" token --key "$KEYS/broker.pem" --repository acme/widget \
    --branch "${GITHUB_BRANCH:-}" --event "${EPHEMERA_EVENT:-}" --job-id "${BUILDOMAT_JOB_ID:-job}" "$@"
}

# on_machine CMD...: CMD as a build machine runs it: the broker's URL, the job's token
# ($TOKEN), no store credentials and no signing key anywhere in its environment.
on_machine() {
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u EPHEMERA_SIGNING_KEY \
    -u AWS_SHARED_CREDENTIALS_FILE -u AWS_CONFIG_FILE \
    EPHEMERA_STORE="$BROKER" EPHEMERA_TOKEN="$TOKEN" "$@"
}

# beph ARGS...: eph (hooks/lib.sh) on the current machine, through the broker.
beph() { on_machine "$EPHEMERA" "$@" --root "$M" --workdir /work/job --home /home/build \
  --state-dir "$M/state"; }

# store_objects: every object key in $STORE, one a line, sorted (read with the store's own
# credentials, as the operator would).
store_objects() {
  case "$STORE_KIND" in
    local) (cd "$STORE" 2>/dev/null && find . -type f | sed 's|^\./||' | LC_ALL=C sort) || true ;;
    s3) local path=${STORE#s3://}
        s3obj ls "s3://$path/" 2>/dev/null | sed "s|^${path#*/}/||" | LC_ALL=C sort || true ;;
  esac
}

# s3_uploads: the multipart uploads begun and neither completed nor aborted under $STORE
# (S3 only), "KEY UPLOAD" a line.
s3_uploads() { s3obj uploads "$STORE/"; }
# clean_s3: removes what a test left under $STORE on S3, uploads no one completed among it.
clean_s3() {
  local path=${STORE#s3://} key upload
  s3obj rmtree "$STORE/"
  s3_uploads | while read -r key upload; do
    s3obj abort "s3://${path%%/*}/$key" "$upload"
  done
}

# refused_count: how many refusals the broker NAME has logged.
refused_count() { grep -c "refused" "$SCRATCH/$1.log" || true; }

# call TOKEN METHOD PATH [BODY_FILE]: the HTTP status of one raw request to the broker's PATH
# (/v1/..., with its query), its body in $SCRATCH/answer; one not answered within 20 s is 000.
call() {
  local tok=$1 method=$2 path=$3 body=${4:-}
  local args=(-s -m 20 -o "$SCRATCH/answer" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $tok")
  [ -n "$body" ] && args+=(--data-binary "@$body")
  curl "${args[@]}" "$BROKER$path"
}
# req TOKEN METHOD KEY [BODY_FILE]: call on the object KEY.
req() { call "$1" "$2" "/v1/objects/$3" "${4:-}"; }
# refused WHAT EXPECTED STATUS: the attempt was refused with EXPECTED and the broker b1 logged
# it (a new refusal since $logged, which the caller sets from refused_count b1 first).
refused() {
  local what=$1 want=$2 got=$3
  [ "$got" = "$want" ] || fail "$what: HTTP $got, expected $want ($(cat "$SCRATCH/answer"))"
  local now; now=$(refused_count b1)
  [ "$now" -gt "$logged" ] || fail "$what: refused but not logged"
  logged=$now
}
