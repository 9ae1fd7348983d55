# Use markers and event records through a broker: restores mark what they used (a trusted
# job's marker, a fork's "-u" one), pre and post append their records, and gc and stats see
# them as on a direct store. A fork's token that writes a marker or a record of another scope,
# trust, day or job is refused (403, or 404 for a save it may not see), logged, and nothing is
# stored; its records are bounded per token.
. "$(dirname "$0")/lib.sh"

start_broker b1
JOB="$SCRATCH/job.toml"
deps_job "$JOB"
day=$(date -u +%Y%m%d)

machine saver
mkdir -p "$M/work/job/target"; echo "trusted bytes" > "$M/work/job/target/a"
ctx feature pull_request job-save
TOKEN=$(token)
beph post --job "$JOB" --status 0
expect_result post deps saved
manifest=$(store_objects | grep '^v1/acme~2Fwidget/.*\.json$')
stem=${manifest%.json}

machine trusted
ctx feature pull_request job-trusted
TOKEN=$(token)
beph pre --job "$JOB" 2>"$SCRATCH/trusted.err"
expect_result pre deps hit
grep -q "not written yet\|unable to record" "$SCRATCH/trusted.err" &&
  fail "the restore's use was not recorded: $(cat "$SCRATCH/trusted.err")"
store_objects | grep -qx "$stem.used/$day" || fail "no trusted use marker: $(store_objects)"

FORK=$(BUILDOMAT_JOB_ID=job-fork token --untrusted --origin pr-7)
machine fork
ctx feature pull_request job-fork
TOKEN=$FORK
beph pre --job "$JOB" --untrusted --origin pr-7
expect_result pre deps hit
store_objects | grep -qx "$stem.used/$day-u" || fail "no untrusted use marker: $(store_objects)"
grep -q refused "$SCRATCH/b1.log" && fail "the broker refused a job's own marker or record: $(cat "$SCRATCH/b1.log")"

# The operator sees the uses and the records: one save, two restores by exact key.
"$EPHEMERA" --store "$STORE" stats --repository acme/widget --json > "$SCRATCH/stats.json"
/usr/bin/python3 - "$SCRATCH/stats.json" <<'PY' || fail "stats through the broker: $(cat "$SCRATCH/stats.json")"
import json, sys
out = json.load(open(sys.argv[1]))
assert out["records"] == 3, out
(s,) = out["stanzas"]
assert s["saves"]["saved"] == 1 and s["restores"] == {"exact": 2, "prefix": 0, "miss": 0}, s
PY
EPHEMERA_PUBLIC_KEY="$KEYS/broker.pem.pub" "$EPHEMERA" --store "$STORE" ls --json > "$SCRATCH/ls.json"
/usr/bin/python3 - "$SCRATCH/ls.json" <<'PY' || fail "ls does not show the use: $(cat "$SCRATCH/ls.json")"
import json, sys
(save,) = json.load(open(sys.argv[1]))
assert save["restored_days"] == 1 and save["last_used"], save
PY

# A hostile client with the fork's token.
# event FILE [FIELD=JSON...]: a record of the fork's own, with fields changed.
event() {
  local out=$1; shift
  /usr/bin/python3 - "$out" "$@" <<'PY'
import json, sys, datetime
e = {"format": "ephemera-event/1", "phase": "pre", "repository": "acme/widget", "target": "",
     "job_id": "job-fork", "branch": "feature", "trusted": False,
     "created": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "seconds": 1.0,
     "stanzas": [{"name": "deps", "result": "hit", "step": "exact", "moved": 10, "stored": 0,
                  "seconds": 1.0, "budget": False}]}
for change in sys.argv[2:]:
    k, v = change.split("=", 1)
    e[k] = json.loads(v)
json.dump(e, open(sys.argv[1], "w"))
PY
}
logged=$(refused_count b1)
before=$(store_objects)
: > "$SCRATCH/empty"
echo x > "$SCRATCH/byte"
other_stem="v1/acme~2Fother/~/deps/e1/deps/${stem##*/}"

# Markers: one that would count for the trusted save, another repository's, another day's,
# one with content, one of a save that is not there.
refused "a fork's trusted use marker" 403 "$(req "$FORK" PUT "$stem.used/$day" "$SCRATCH/empty")"
refused "a use marker of another repository" 403 "$(req "$FORK" PUT "$other_stem.used/$day-u" "$SCRATCH/empty")"
refused "a use marker of another day" 403 "$(req "$FORK" PUT "$stem.used/20300101-u" "$SCRATCH/empty")"
refused "a use marker with content" 403 "$(req "$FORK" PUT "$stem.used/$day-u" "$SCRATCH/byte")"
refused "a use marker of no save" 404 "$(req "$FORK" PUT "${stem%-*}-00000000.used/$day-u" "$SCRATCH/empty")"
refused "a fork reads a use marker" 403 "$(req "$FORK" GET "$stem.used/$day-u")"

# Records: of another repository or target (by folder or content), another job, trusted,
# another day, malformed, too large.
at() { echo "v1/_events/$1/$2/$3/${day}T000000.000000Z-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ').event"; }
event "$SCRATCH/own.json"
refused "a record in another repository's folder" 403 "$(req "$FORK" PUT "$(at acme~2Fother '~' "$day")" "$SCRATCH/own.json")"
refused "a record in another target's folder" 403 "$(req "$FORK" PUT "$(at acme~2Fwidget linux "$day")" "$SCRATCH/own.json")"
refused "a record filed under another day" 403 "$(req "$FORK" PUT "$(at acme~2Fwidget '~' 20300101)" "$SCRATCH/own.json")"
for forged in 'repository="acme/other"' 'target="linux"' 'job_id="job-trusted"' 'trusted=true' \
    'branch="main"' 'created="2020-01-01T00:00:00.000000Z"' 'phase="nap"'; do
  event "$SCRATCH/forged.json" "$forged"
  refused "a record with $forged" 403 "$(req "$FORK" PUT "$(at acme~2Fwidget '~' "$day")" "$SCRATCH/forged.json")"
done
echo '{"format": ' > "$SCRATCH/broken.json"
refused "a malformed record" 403 "$(req "$FORK" PUT "$(at acme~2Fwidget '~' "$day")" "$SCRATCH/broken.json")"
head -c 70000 /dev/zero | tr '\0' ' ' > "$SCRATCH/huge.json"
refused "a record over 64 KiB" 413 "$(req "$FORK" PUT "$(at acme~2Fwidget '~' "$day")" "$SCRATCH/huge.json")"
status=$(curl -s -o "$SCRATCH/answer" -w '%{http_code}' -H "Authorization: Bearer $FORK" "$BROKER/v1/list?prefix=v1/_events/")
refused "a fork lists the records" 403 "$status"

after=$(store_objects)
[ "$before" = "$after" ] || fail "a refused marker or record was stored: $(diff <(echo "$before") <(echo "$after"))"

# Records are bounded per token: its own, valid, up to the quota and no more.
QUOTA=$(BUILDOMAT_JOB_ID=job-fork token --untrusted --origin pr-7 --ttl 3000)
for i in $(seq 64); do
  [ "$(req "$QUOTA" PUT "$(at acme~2Fwidget '~' "$day")" "$SCRATCH/own.json")" = 204 ] ||
    fail "record $i of the token's own: $(cat "$SCRATCH/answer")"
done
refused "a record past the token's quota" 403 "$(req "$QUOTA" PUT "$(at acme~2Fwidget '~' "$day")" "$SCRATCH/own.json")"
grep -q "event records a token may" "$SCRATCH/answer" || fail "the quota's refusal does not say why: $(cat "$SCRATCH/answer")"
echo "broker records ($STORE_KIND): ok"
