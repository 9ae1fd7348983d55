# Direct access to the store's objects, as a store writer has it: the local store's files
# or the bucket through s3obj.py beside it. Keys are the catalog's ("v1/..."). Sourced
# after lib.sh.
if [ "${STORE_KIND:-local}" = s3 ]; then
  RAW_BUCKET=$EPHEMERA_TEST_S3_BUCKET
fi

# use_store NAME: a fresh, empty store of the same kind for what follows.
use_store() {
  case "${STORE_KIND:-local}" in
    local) STORE="$SCRATCH/store-$1" ;;
    s3) STORE="s3://$RAW_BUCKET/it-$(basename "$SCRATCH" | tr 'A-Z.' 'a-z-')-$1" ;;
  esac
  export EPHEMERA_STORE="$STORE"
}

raw_prefix() { echo "${STORE#s3://"$RAW_BUCKET"/}"; }

# raw_ls: every object key of the store, one a line, sorted.
raw_ls() {
  case "${STORE_KIND:-local}" in
    local) [ ! -d "$STORE" ] || (cd "$STORE" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) ;;
    s3) s3obj ls "s3://$RAW_BUCKET/$(raw_prefix)/" | sed "s|^$(raw_prefix)/||" | LC_ALL=C sort ;;
  esac
}

# raw_get KEY FILE / raw_put FILE KEY / raw_rm KEY
raw_get() {
  case "${STORE_KIND:-local}" in
    local) cp "$STORE/$1" "$2" ;;
    s3) s3obj get "s3://$RAW_BUCKET/$(raw_prefix)/$1" "$2" ;;
  esac
}
raw_put() {
  case "${STORE_KIND:-local}" in
    local) mkdir -p "$(dirname "$STORE/$2")" && cp "$1" "$STORE/$2" ;;
    s3) s3obj put "$1" "s3://$RAW_BUCKET/$(raw_prefix)/$2" ;;
  esac
}
raw_rm() {
  case "${STORE_KIND:-local}" in
    local) rm -f "$STORE/$1" ;;
    s3) s3obj rm "s3://$RAW_BUCKET/$(raw_prefix)/$1" ;;
  esac
}

# the_manifest: the key of the store's only manifest (fails if there is not exactly one).
the_manifest() {
  local keys
  keys=$(raw_ls | grep '\.json$' | grep -v '^v1/_' || true)
  [ "$(printf '%s\n' "$keys" | grep -c .)" = 1 ] || fail "expected one manifest, found: $keys"
  echo "$keys"
}

# json_set FILE FIELD=JSON...: sets fields of a JSON file in place.
json_set() {
  local file=$1; shift
  /usr/bin/python3 - "$file" "$@" <<'PY'
import json, sys
path = sys.argv[1]
m = json.load(open(path))
for arg in sys.argv[2:]:
    field, value = arg.split("=", 1)
    m[field] = json.loads(value)
json.dump(m, open(path, "w"), indent=2)
PY
}
json_get() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# save_from MACHINE BRANCH FILE: a machine whose target/ holds FILE saves it from BRANCH
# ($JOB, with the deps stanza).
save_from() {
  machine "$1"
  mkdir -p "$M/work/job/target"
  echo "$3 from $1" > "$M/work/job/target/$3"
  ctx "$2" pull_request "job-$1"
  eph post --job "$JOB" --status 0 2>/dev/null
  expect_result post deps saved
}

# restore_on MACHINE: pre on a fresh machine of another branch; its stderr in $SCRATCH/MACHINE.err.
restore_on() {
  machine "$1"
  ctx "branch-$1" pull_request "job-$1"
  eph pre --job "$JOB" 2> "$SCRATCH/$1.err" || fail "pre failed on $1"
  cat "$SCRATCH/$1.err" >&2
}

# newest_manifest_besides KEY...: the one manifest key of the store not among KEY...
newest_manifest_besides() {
  local keys
  keys=$(raw_ls | grep '\.json$' | grep -v '^v1/_')
  for k in "$@"; do keys=$(printf '%s\n' "$keys" | grep -vx "$k"); done
  [ "$(printf '%s\n' "$keys" | grep -c .)" = 1 ] || fail "expected one new manifest, found: $keys"
  echo "$keys"
}
