# ccache on a real build: four C++ files compiled through ccache on a pristine machine, then
# again on another: every compile of the warm job is a hit (its statistics start at zero,
# as they are not saved), and its post saves nothing although ccache touched every entry it
# used; a job that compiles something new saves again.
. "$(dirname "$0")/common.sh"

command -v ccache > /dev/null || fail "ccache is not installed (apt-get install ccache)"
unset CCACHE_DIR CCACHE_BASEDIR CCACHE_CONFIGPATH XDG_CACHE_HOME
SRC="$SOURCE_ROOT/tests/data/presets/ccache"
preset_job ccache
"$EPHEMERA" check "$JOB" | grep -q 'preset ccache' || fail "check does not show the expansion"

# stat NAME: a counter of the machine's ccache statistics.
stat_of() {
  HOME="$M/home/build" ccache --print-stats | awk -v k="$1" '$1 == k { print $2 }'
}

ctx feature pull_request
run_job cold "$SRC" ./build.sh
expect_result pre ccache miss
expect_result post ccache saved
[ "$(stat_of cache_miss)" = 4 ] || fail "the cold job did not compile 4 files through ccache"

run_job warm "$SRC" ./build.sh
expect_result pre ccache hit
grep -q '^3 circles; 3 squares; 166.0' "$SCRATCH/warm.log" || fail "the warm build does not run"
hits=$(( $(stat_of direct_cache_hit) + $(stat_of preprocessed_cache_hit) ))
[ "$hits" = 4 ] || fail "the warm job had $hits hits of 4 compiles"
[ "$(stat_of cache_miss)" = 0 ] || fail "the warm job missed $(stat_of cache_miss) compiles"
expect_result post ccache unchanged

run_job warm2 "$SRC" ./build.sh
expect_result post ccache unchanged

# A new file is a new entry: that job saves.
cp -a "$SRC" "$SCRATCH/src-more"
printf 'int extra() { return 7; }\n' > "$SCRATCH/src-more/src/extra.cpp"
sed -i 's/for f in make total describe main/for f in make total describe main extra/' "$SCRATCH/src-more/build.sh"
run_job more "$SCRATCH/src-more" ./build.sh
[ "$(stat_of cache_miss)" = 1 ] || fail "the new file was not the one miss"
expect_result post ccache saved
echo "ok"
