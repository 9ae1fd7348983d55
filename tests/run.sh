#!/bin/sh
# The whole test suite, from a clean clone on a fresh Debian 12 machine:
# installs what is missing, builds with -Dwerror=true, starts a real S3 server on
# 127.0.0.1, runs every meson test, then a second build with address and undefined
# behaviour sanitizers and its unit and integration tests. Ends with "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)

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

configure "$build" -Dwerror=true
if ! ninja -C "$build" >"$build.build.txt" 2>&1; then
  tail -n 60 "$build.build.txt"
  echo "0 passed, 1 failed"
  exit 1
fi

# One S3 server for the whole run; its address and credentials reach the tests through
# the environment file it writes. A server that does not start fails the suite.
s3dir=$(mktemp -d /tmp/ephemera-s3.XXXXXX)
stop_s3() {
  [ -x tests/store/s3-server.sh ] && sh tests/store/s3-server.sh stop "$s3dir" || true
  rm -rf "$s3dir"
}
trap stop_s3 EXIT INT TERM
if [ -f tests/store/s3-server.sh ]; then
  sh tests/store/s3-server.sh start "$s3dir"
  set -a
  . "$s3dir/env"
  set +a
fi

status=0
meson test -C "$build" --num-processes "$jobs" --print-errorlogs >"$build/test-output.txt" 2>&1 || status=1
tail -n 30 "$build/test-output.txt"

if [ "${EPHEMERA_SKIP_ASAN:-0}" != 1 ]; then
  # GCC 12 raises false maybe-uninitialized warnings inside <regex> under the sanitizers.
  configure "$asan" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcpp_args=-Wno-maybe-uninitialized
  if ! ninja -C "$asan" >"$asan.build.txt" 2>&1; then
    tail -n 40 "$asan.build.txt"
    echo "FAILED: the sanitizer build does not compile"
    status=1
  fi
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    meson test -C "$asan" --num-processes "$jobs" --print-errorlogs --no-suite bench \
    >"$asan/test-output.txt" 2>&1 || status=1
  tail -n 30 "$asan/test-output.txt"
fi

/usr/bin/python3 - "$build" "$asan" <<'PY'
import json, os, sys
passed = failed = 0
for d in sys.argv[1:]:
    log = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        continue
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
