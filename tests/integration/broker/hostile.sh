# A hostile client behind a broker: it holds a fork's token (or an altered, expired, foreign
# one) and sends requests of its own making. Every read and write it must not do is refused
# (403, or 404 for a save it may not see), logged by the broker, and stores nothing; what a
# trusted job restores afterwards is the trusted save.
. "$(dirname "$0")/lib.sh"
# Single-archive saves: hostile-cas.sh tries the same against content-addressed ones.
export EPHEMERA_FORMAT=archive

start_broker b1
JOB="$SCRATCH/job.toml"
deps_job "$JOB"

# A trusted job's save, which the fork will try to reach or poison.
machine trusted
mkdir -p "$M/work/job/target"; echo "trusted bytes" > "$M/work/job/target/a"
ctx feature pull_request job-trusted
TOKEN=$(token)
beph post --job "$JOB" --status 0
expect_result post deps saved
trusted_manifest=$(store_objects | grep '\.json$' | head -1)
[ -n "$trusted_manifest" ] || fail "no trusted manifest in the store"
stamp_dir=${trusted_manifest%/*}

FORK=$(token --untrusted --origin pr-7)
logged=$(refused_count b1)
before=$(store_objects)

printf 'forged archive bytes' > "$SCRATCH/blob"
# 1. Another scope: another repository's folder, another target, the store's own objects.
refused "write into another repository" 403 \
  "$(req "$FORK" PUT "v1/acme~2Fother/~/deps/e1/deps/20261201T000000.000000Z-00000001.tar.zst" "$SCRATCH/blob")"
refused "write into another target" 403 \
  "$(req "$FORK" PUT "v1/acme~2Fwidget/linux/deps/e1/deps/20261201T000000.000000Z-00000001.tar.zst" "$SCRATCH/blob")"
refused "write an invalidation marker" 403 \
  "$(req "$FORK" PUT "v1/_invalidations/acme~2Fwidget/20261201T000000.000000Z-00000001.json" "$SCRATCH/blob")"
refused "delete the trusted save" 403 "$(req "$FORK" DELETE "$trusted_manifest")"
refused "overwrite the trusted archive" 403 \
  "$(req "$FORK" PUT "${trusted_manifest%.json}.tar.zst" "$SCRATCH/blob")"
refused "overwrite the trusted manifest" 403 "$(req "$FORK" PUT "$trusted_manifest" "$SCRATCH/blob")"
status=$(curl -s -o "$SCRATCH/answer" -w '%{http_code}' -H "Authorization: Bearer $FORK" "$BROKER/v1/list?prefix=v1/")
refused "list the whole store" 403 "$status"

# 2. A trusted flag: a manifest of the fork's own scope that says trusted, or names no origin.
# The fork reads the trusted manifest (it may: trusted saves reach untrusted jobs) and replays
# it at a stamp of its own with its own archive.
[ "$(req "$FORK" GET "$trusted_manifest")" = 200 ] || fail "the fork may read a trusted save"
cp "$SCRATCH/answer" "$SCRATCH/trusted.json"
stamp="20261201T000000.000000Z-0000f0f0"
# (An archive in its own scope it may write: it stays an orphan without a manifest.)
[ "$(req "$FORK" PUT "$stamp_dir/$stamp.tar.zst" "$SCRATCH/blob")" = 204 ] || fail "the fork's own archive"
/usr/bin/python3 - "$SCRATCH/trusted.json" "$stamp_dir/$stamp" "$SCRATCH" <<'PY'
import json, sys, datetime
m = json.load(open(sys.argv[1]))
base, out = sys.argv[2], sys.argv[3]
m["archive"] = base + ".tar.zst"
m["compressed_size"] = len(b"forged archive bytes")
m["created"] = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
m["job_id"] = "job-fork"
json.dump(m, open(out + "/claims-trusted.json", "w"))           # trusted, as replayed
m["trusted"] = False
json.dump(m, open(out + "/no-origin.json", "w"))                # untrusted, no origin
m["origin"] = "pr-8"
json.dump(m, open(out + "/other-origin.json", "w"))             # another fork's origin
m["origin"] = "pr-7"
m["branch"] = "main"
json.dump(m, open(out + "/other-branch.json", "w"))             # a branch it does not build
m["branch"] = "feature"
m["job_id"] = "job-trusted"
json.dump(m, open(out + "/other-job.json", "w"))                # another job's id
m["job_id"] = "job-fork"
m["signature"] = "ed25519:" + "00" * 64
m["repository"] = "acme/other"
json.dump(m, open(out + "/other-repo.json", "w"))               # another repository
PY
FORK=$(BUILDOMAT_JOB_ID=job-fork token --untrusted --origin pr-7)
for forged in claims-trusted no-origin other-origin other-branch other-job other-repo; do
  refused "manifest $forged" 403 "$(req "$FORK" PUT "$stamp_dir/$stamp.json" "$SCRATCH/$forged.json")"
done
# The replayed trusted manifest, byte for byte, at its own key and at a new one.
refused "replay the trusted manifest in place" 403 "$(req "$FORK" PUT "$trusted_manifest" "$SCRATCH/trusted.json")"
refused "replay the trusted manifest elsewhere" 403 \
  "$(req "$FORK" PUT "$stamp_dir/20261201T000000.000000Z-0000f0f1.json" "$SCRATCH/trusted.json")"
# The same through the real client, with no --untrusted flag: the token decides, not flags.
machine fork
mkdir -p "$M/work/job/target"; echo "poison" > "$M/work/job/target/a"
ctx feature pull_request job-fork
TOKEN=$FORK
beph post --job "$JOB" --status 0 2>"$SCRATCH/fork-post.err"
grep -q "403" "$SCRATCH/fork-post.err" || fail "the fork's trusted save was not refused: $(cat "$SCRATCH/fork-post.err")"
logged=$(refused_count b1)

# 3. A protected branch: a push to main never saves, whatever the client says.
MAIN=$(GITHUB_BRANCH=main EPHEMERA_EVENT=push token)
refused "a push to main writes" 403 "$(req "$MAIN" PUT "$stamp_dir/20261201T000000.000000Z-0000f0f2.tar.zst" "$SCRATCH/blob")"
machine main
mkdir -p "$M/work/job/target"; echo "main" > "$M/work/job/target/a"
ctx main push job-main
TOKEN=$MAIN
beph post --job "$JOB" --status 0 --protected-branch nothing 2>/dev/null || true
logged=$(refused_count b1)

# 4. Another repository's token, a token of another key, an expired one, one byte altered.
OTHER=$("$EPHEMERA" token --key "$KEYS/broker.pem" --repository acme/other --branch feature \
  --event pull_request --job-id job-other --untrusted --origin pr-7)
refused "another repository's token reads" 403 "$(req "$OTHER" GET "$trusted_manifest")"
refused "another repository's token writes" 403 "$(req "$OTHER" PUT "$stamp_dir/20261201T000000.000000Z-0000f0f3.tar.zst" "$SCRATCH/blob")"
"$EPHEMERA" token --keygen "$KEYS/rogue.pem" 2>/dev/null
ROGUE=$("$EPHEMERA" token --key "$KEYS/rogue.pem" --repository acme/widget --branch feature \
  --event pull_request --job-id job-rogue)
refused "a token of another key" 403 "$(req "$ROGUE" PUT "$stamp_dir/20261201T000000.000000Z-0000f0f4.tar.zst" "$SCRATCH/blob")"
EXPIRED=$(token --ttl 1)
sleep 2
refused "an expired token" 403 "$(req "$EXPIRED" PUT "$stamp_dir/20261201T000000.000000Z-0000f0f5.tar.zst" "$SCRATCH/blob")"
TRUSTED=$(token)
for at in 8 40 $(( ${#TRUSTED} - 5 )); do
  c=${TRUSTED:$at:1}; r=A; [ "$c" = A ] && r=B
  ALTERED="${TRUSTED:0:$at}$r${TRUSTED:$((at + 1))}"
  refused "a token altered at byte $at" 403 "$(req "$ALTERED" PUT "$stamp_dir/20261201T000000.000000Z-0000f0f6.tar.zst" "$SCRATCH/blob")"
done
refused "no token" 401 "$(curl -s -o "$SCRATCH/answer" -w '%{http_code}' -X PUT --data-binary @"$SCRATCH/blob" \
  "$BROKER/v1/objects/$stamp_dir/20261201T000000.000000Z-0000f0f7.tar.zst")"

# Nothing was stored but the fork's orphan archives in its own scope (which no restore sees
# and gc removes): no manifest, nothing anywhere else.
after=$(store_objects)
added=$(comm -13 <(echo "$before") <(echo "$after"))
echo "$added" | grep -q '\.json$' && fail "a refused attempt stored a manifest: $added"
echo "$added" | grep -v '^$' | grep -v "^$stamp_dir/[^/]*\.tar\.zst$" && fail "a refused attempt stored outside the fork's scope"
[ "$(comm -23 <(echo "$before") <(echo "$after"))" = "" ] || fail "a refused attempt removed an object"

# A trusted job restores the trusted bytes.
machine check
ctx feature pull_request job-check
TOKEN=$(token)
beph pre --job "$JOB"
expect_result pre deps hit
[ "$(cat "$M/work/job/target/a")" = "trusted bytes" ] || fail "the trusted job restored $(cat "$M/work/job/target/a")"

# The fork's own untrusted save works, reaches its own origin, and no one else.
machine fork-own
mkdir -p "$M/work/job/target"; echo "fork bytes" > "$M/work/job/target/a"
ctx feature2 pull_request job-fork2
TOKEN=$(token --untrusted --origin pr-7)
beph post --job "$JOB" --status 0 --untrusted --origin pr-7
expect_result post deps saved
fork_manifest=$(comm -13 <(echo "$after") <(store_objects) | grep '\.json$')
machine fork-again
ctx feature2 pull_request job-fork3
TOKEN=$(token --untrusted --origin pr-7)
beph pre --job "$JOB" --untrusted --origin pr-7
[ "$(cat "$M/work/job/target/a")" = "fork bytes" ] || fail "the fork did not get its own save"
ctx feature2 pull_request job-fork4
PR8=$(token --untrusted --origin pr-8)
logged=$(refused_count b1)
refused "another fork reads the save of pr-7" 404 "$(req "$PR8" GET "$fork_manifest")"
refused "a trusted job reads an untrusted save" 404 "$(req "$TRUSTED" GET "$fork_manifest")"
refused "a trusted job reads an untrusted archive" 404 "$(req "$TRUSTED" GET "${fork_manifest%.json}.tar.zst")"
machine trusted-again
ctx feature2 pull_request job-check2
TOKEN=$(token)
beph pre --job "$JOB"
[ "$(cat "$M/work/job/target/a")" = "trusted bytes" ] || fail "a trusted job restored the fork's save"
echo "broker hostile ($STORE_KIND): ok"
