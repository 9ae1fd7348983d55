# npm on a real project from the npm registry: three packages installed with `npm ci`
# cold, then warm with the npm preset: the warm job fetches no tarball (every one is a
# cache hit) and its post saves nothing. With no registry reachable this test fails: it
# does not skip.
. "$(dirname "$0")/common.sh"

NPM=/usr/bin/npm
[ -x "$NPM" ] || fail "npm is not installed (apt-get install npm)"
SRC="$SOURCE_ROOT/tests/data/presets/npm"
preset_job npm
"$EPHEMERA" check "$JOB" | grep -q 'preset npm' || fail "check does not show the expansion"
export npm_config_update_notifier=false npm_config_audit=false npm_config_fund=false
unset npm_config_cache NPM_CONFIG_CACHE

ctx feature pull_request
machine probe
HOME="$M/home/build" "$NPM" ping > "$SCRATCH/ping.log" 2>&1 ||
  { cat "$SCRATCH/ping.log" >&2; fail "the npm registry is not reachable: this test needs it"; }

run_job cold "$SRC" "$NPM" ci --prefer-offline --loglevel=http
expect_result pre npm miss
expect_result post npm saved
grep -Eq 'http fetch GET 200 .*/ms-2\.1\.3\.tgz' "$SCRATCH/cold.log" ||
  fail "the cold job fetched no tarball"

run_job warm "$SRC" "$NPM" ci --prefer-offline --loglevel=http
expect_result pre npm hit
if grep -E 'http fetch' "$SCRATCH/warm.log"; then
  fail "the warm job fetched from the registry"
fi
[ "$(grep -c 'cache hit' "$SCRATCH/warm.log")" = 3 ] || fail "not every tarball was a cache hit"
(cd "$M/work/job" && node index.js) | grep -q '^172800000 true true' || fail "the project does not run"
expect_result post npm unchanged

run_job warm2 "$SRC" "$NPM" ci --prefer-offline --loglevel=http
expect_result post npm unchanged
echo "ok"
