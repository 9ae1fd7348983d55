#!/bin/sh
# The whole test suite, from a clean clone on a fresh Debian 12 machine:
# installs what is missing, builds with -Dwerror=true, starts a real S3 server on
# 127.0.0.1, runs every meson test, then a second build with address and undefined
# behaviour sanitizers (clang) and its unit and integration tests, then fuzzes each
# libFuzzer target. Ends with "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
# --long: fuzz each target for 10 minutes instead of the CI default.
fuzz_seconds=${EPHEMERA_FUZZ_SECONDS:-30}
# --long also holds the load tests for 5 minutes a store instead of 30 s (the broker's: 60 s).
[ "${1:-}" = --long ] && fuzz_seconds=600 && export EPHEMERA_LOAD_SECONDS=${EPHEMERA_LOAD_SECONDS:-300}

started=$(date +%s)
# phase WHAT: a line saying how far into the run each phase starts.
phase() { echo "== $(( $(date +%s) - started )) s: $1"; }

sh tools/install-deps.sh test

build=${EPHEMERA_BUILD:-build}
asan=${EPHEMERA_ASAN_BUILD:-build-asan}
jobs=$(nproc)

configure() {
  dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

# One S3 server for the whole run, started while the first tree compiles; its address
# and credentials reach the tests through the environment file it writes. A server that
# does not start fails the suite.
s3dir=$(mktemp -d /tmp/ephemera-s3.XXXXXX)
s3pid=
stop_s3() {
  # A start still under way (the first tree failed to compile) finishes before the stop.
  [ -z "$s3pid" ] || wait "$s3pid" 2>/dev/null || true
  [ -x tests/store/s3-server.sh ] && sh tests/store/s3-server.sh stop "$s3dir" || true
  rm -rf "$s3dir" "$s3dir.log"
}
trap stop_s3 EXIT INT TERM
if [ -f tests/store/s3-server.sh ]; then
  sh tests/store/s3-server.sh start "$s3dir" >"$s3dir.log" 2>&1 &
  s3pid=$!
fi

# The sanitizer and fuzz trees compile from the start, at a lower priority: while the first
# tree compiles (it gets the cores first), then while its tests run, which spend much of
# their time waiting on the S3 server, fsync and child processes. The sanitizer tree is
# GCC's: clang compiles it 30% faster (131 s of CPU against 186 for the eight heaviest
# files), but clang 14's LeakSanitizer crashed at exit in three integration tests of one
# full run ("Tracer caught signal 11", exit 134), where GCC 12's never has. GCC 12 raises
# false maybe-uninitialized warnings inside <regex> under the sanitizers. The fuzz targets
# (clang's) keep a tree of their own: libFuzzer's coverage
# instrumentation in the sanitizer tests' objects made them 70% slower (toml11 parsing 2,000
# stanzas: 7.9 s of CPU against 4.6), more than the second compile costs. -O0: the
# sanitizers find the same bugs, and the tree compiles five times faster. -g1: line tables
# for the sanitizers' stack traces, a tenth less to compile. -no-pie: as a
# position-independent executable the instrumented ephemera carried 967,000 relocations the
# loader applied at every start (0.25 s; 0.12 s without), and the tests start it often.
fuzz=${EPHEMERA_FUZZ_BUILD:-build-fuzz}
targets="fuzz_jobfile fuzz_rules fuzz_manifest fuzz_unpack fuzz_s3xml fuzz_cas_index fuzz_token"
rm -f "$asan.build.ok" "$fuzz.build.ok" "$asan"/meson-logs/testlog*.json "$fuzz"/meson-logs/testlog*.json
# A tree clang configured cannot be reconfigured for GCC.
if [ -f "$asan/build.ninja" ] && grep -q clang "$asan/meson-info/intro-compilers.json"; then
  rm -rf "$asan"
fi
# Through ccache, as meson puts the first tree (it does not when CXX is given), and without
# the working directory in its hash (debug information puts it there): a clone in another
# folder, as CI's is, reuses the objects an earlier build of the same sources made; their
# line tables then name that folder.
cxx=clang++ asan_cxx=g++
! command -v ccache >/dev/null || cxx="ccache clang++" asan_cxx="ccache g++"
(
  export CCACHE_NOHASHDIR=1
  if [ "${EPHEMERA_SKIP_ASAN:-0}" != 1 ]; then
    CXX=$asan_cxx configure "$asan" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
      -Doptimization=0 -Ddebug=false "-Dcpp_args=-Wno-maybe-uninitialized -g1" -Dcpp_link_args=-no-pie
    nice -n 10 ninja -C "$asan" >"$asan.build.txt" 2>&1 && touch "$asan.build.ok"
  fi
  if [ "${EPHEMERA_SKIP_FUZZ:-0}" != 1 ]; then
    CXX=$cxx configure "$fuzz" -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined -Db_lundef=false
    nice -n 10 ninja -C "$fuzz" $(for t in $targets; do echo "tests/fuzz/$t"; done) \
      >"$fuzz.build.txt" 2>&1 && touch "$fuzz.build.ok"
  fi
) &
later=$!

# No debug information in the tree the tests and benchmarks use: a quarter less to compile.
phase "compile $build"
configure "$build" -Dwerror=true -Ddebug=false
if ! ninja -C "$build" >"$build.build.txt" 2>&1; then
  tail -n 60 "$build.build.txt"
  pkill -P "$later" ninja || true
  wait "$later" || true
  echo "0 passed, 1 failed"
  exit 1
fi
if [ -n "$s3pid" ]; then
  if ! wait "$s3pid"; then
    cat "$s3dir.log"
    echo "0 passed, 1 failed"
    exit 1
  fi
  rm -f "$s3dir.log"
  set -a
  . "$s3dir/env"
  set +a
fi

# The load tests count what lands in a fixed time: they run once the compiles are done.
phase "tests of $build (sanitizer and fuzz trees compiling)"
status=0
rm -f "$build"/meson-logs/testlog*.json
meson test -C "$build" --num-processes "$jobs" --print-errorlogs --no-suite load \
  >"$build/test-output.txt" 2>&1 || status=1
tail -n 30 "$build/test-output.txt"
phase "waiting for the sanitizer and fuzz trees"
wait "$later" || true
phase "load tests"
meson test -C "$build" --num-processes "$jobs" --print-errorlogs --suite load --logbase testlog-load \
  >"$build/test-output-load.txt" 2>&1 || status=1
tail -n 12 "$build/test-output-load.txt"
if [ "${EPHEMERA_SKIP_ASAN:-0}" != 1 ]; then
  if [ ! -f "$asan.build.ok" ]; then
    tail -n 40 "$asan.build.txt"
    echo "FAILED: the sanitizer build does not compile"
    status=1
  fi
  phase "tests of $asan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    meson test -C "$asan" --num-processes "$jobs" --print-errorlogs --no-suite bench --no-suite load \
    >"$asan/test-output.txt" 2>&1 || status=1
  tail -n 30 "$asan/test-output.txt"
fi

# Fuzzing: each libFuzzer target (clang, address and undefined sanitizers) from its seed
# corpus and the inputs that once crashed it (tests/fuzz/regressions), for a set time.
if [ "${EPHEMERA_SKIP_FUZZ:-0}" != 1 ]; then
  phase "fuzzing"
  fuzzlog=$fuzz/meson-logs/testlog.json
  mkdir -p "$fuzz/meson-logs" "$fuzz/crashes"
  : > "$fuzzlog"
  if [ ! -f "$fuzz.build.ok" ]; then
    tail -n 40 "$fuzz.build.txt"
    echo '{"name": "fuzz-build", "result": "FAIL"}' >> "$fuzzlog"
  else
    # One target a core at a time; each is single-threaded.
    running=0
    for t in $targets; do
      work="$fuzz/corpus/$t"
      mkdir -p "$work" "tests/fuzz/regressions/$t"
      rm -f "$fuzz/$t.status"
      (
        ASAN_OPTIONS=detect_leaks=1 "$fuzz/tests/fuzz/$t" -max_total_time="$fuzz_seconds" -timeout=10 \
          -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$fuzz/crashes/$t-" \
          "$work" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" >"$fuzz/$t.log" 2>&1
        echo $? >"$fuzz/$t.status"
      ) &
      running=$((running + 1))
      if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
      fi
    done
    wait
    for t in $targets; do
      result=OK
      [ "$(cat "$fuzz/$t.status" 2>/dev/null)" = 0 ] || result=FAIL
      runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$fuzz/$t.log" | grep -o '[0-9]*$' || echo 0)
      echo "fuzz $t: $result, $runs executions in ${fuzz_seconds} s"
      [ $result = OK ] || tail -n 30 "$fuzz/$t.log"
      echo "{\"name\": \"fuzz-$t\", \"result\": \"$result\"}" >> "$fuzzlog"
    done
  fi
fi

phase "done"
/usr/bin/python3 - "$build" "$asan" "$fuzz" <<'PY'
import json, os, sys
passed = failed = 0
logs = []
for d in sys.argv[1:]:
    for name in ("testlog.json", "testlog-load.json"):
        log = os.path.join(d, "meson-logs", name)
        if os.path.exists(log):
            logs.append((d, log))
for d, log in logs:
    for line in open(log):
        r = json.loads(line)
        ok = r["result"] in ("OK", "EXPECTEDFAIL")
        if not ok and r["result"] != "SKIP":
            print(f"FAILED: {d}: {r['name']} ({r['result']})")
        passed += ok
        failed += (not ok)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or passed == 0 else 0)
PY
[ $? -eq 0 ] || status=1
exit $status
