# Raw access to the store's objects, as a store writer has it, for planting forgeries:
# the local directory, or the S3 prefix through s3obj.py. Keys are relative to the store.
case "${STORE_KIND:-local}" in
  s3)
    PREFIX=${STORE#s3://$EPHEMERA_TEST_S3_BUCKET/}
    obj_put() { s3obj put "$2" "s3://$EPHEMERA_TEST_S3_BUCKET/$PREFIX/$1"; }
    obj_get() { s3obj get "s3://$EPHEMERA_TEST_S3_BUCKET/$PREFIX/$1" -; }
    # KEY ETAG SIZE a line, sorted: the ETag of a small object is its MD5.
    obj_sums() { s3obj sums "s3://$EPHEMERA_TEST_S3_BUCKET/$PREFIX/" | sed "s|^$PREFIX/||" | LC_ALL=C sort; }
    # An object beside the store, outside its prefix, and the key that reaches it from inside.
    OUTSIDE_KEY="v1/../../$PREFIX-outside/precious"
    outside_put() { s3obj put "$1" "s3://$EPHEMERA_TEST_S3_BUCKET/$PREFIX-outside/precious"; }
    outside_sum() { s3obj get "s3://$EPHEMERA_TEST_S3_BUCKET/$PREFIX-outside/precious" - | sha256sum; }
    ;;
  *)
    obj_put() { mkdir -p "$(dirname "$STORE/$1")"; cp "$2" "$STORE/$1"; }
    obj_get() { cat "$STORE/$1"; }
    obj_sums() {
      [ -d "$STORE" ] || return 0
      (cd "$STORE" && find . -type f -printf '%P\n' | LC_ALL=C sort | while read -r k; do
        printf '%s %s\n' "$k" "$(sha256sum < "$k" | cut -c1-64)"
      done)
    }
    OUTSIDE_KEY="v1/../../outside/precious"
    outside_put() { mkdir -p "$SCRATCH/outside"; cp "$1" "$SCRATCH/outside/precious"; }
    outside_sum() { sha256sum < "$SCRATCH/outside/precious"; }
    ;;
esac
obj_keys() { obj_sums | awk '{print $1}'; }
obj_count() { obj_sums | wc -l; }

# forge SOURCE_KEY DEST_KEY FIELD=JSON...: a copy of a manifest with fields replaced (JSON
# values) and no signature, as a store writer without the signing key could write it.
forge() {
  local src=$1 dest=$2; shift 2
  obj_get "$src" > "$SCRATCH/forge.in"
  /usr/bin/python3 - "$SCRATCH/forge.in" "$SCRATCH/forge.out" "$@" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m.pop("signature", None)
for kv in sys.argv[3:]:
    k, v = kv.split("=", 1)
    assert k in m, k
    m[k] = json.loads(v)
json.dump(m, open(sys.argv[2], "w"))
PY
  obj_put "$dest" "$SCRATCH/forge.out"
}
