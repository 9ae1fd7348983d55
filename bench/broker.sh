#!/bin/bash
# pre and post of a 1 GiB set through a broker (`ephemera serve` on 127.0.0.1 in front of
# Ceph RGW) against the same directly on RGW, in one run: medians, the ratio through/direct,
# and the broker's CPU seconds per GiB it moved. Starts an S3 server of its own, sized for
# the run (a shared one holds 2 GiB at most, and frees deleted objects only hours later);
# EPHEMERA_BENCH_S3_ENV=FILE uses the server that environment file names instead, for a
# small EPHEMERA_BENCH_MIB (the set's size, default 1024) only.
# usage: bash bench/broker.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
rounds=${1:-3}
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
E="$top/build/ephemera"
B=$(mktemp -d /tmp/ephemera-brokerbench.XXXXXX)
own_s3=
cleanup() {
  [ -n "${broker_pid:-}" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  if [ -n "$own_s3" ]; then
    sh tests/store/s3-server.sh stop "$B/s3" >/dev/null 2>&1
  elif [ -n "${direct:-}" ]; then
    aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" s3 rm --quiet --recursive "$direct/" >/dev/null 2>&1
    aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" s3 rm --quiet --recursive "$fronted/" >/dev/null 2>&1
  fi
  rm -rf "$B"
  return 0
}
trap cleanup EXIT
mib=${EPHEMERA_BENCH_MIB:-1024}
if [ -n "${EPHEMERA_BENCH_S3_ENV:-}" ]; then
  [ "$mib" -le 128 ] || { echo "a shared S3 server has no room for $mib MiB a round" >&2; exit 2; }
  set -a; . "$EPHEMERA_BENCH_S3_ENV"; set +a
else
  own_s3=1
  EPHEMERA_S3_MEMSTORE_BYTES=$(( (4 * rounds * mib >> 10) + 2 << 30 )) \
    sh tests/store/s3-server.sh start "$B/s3" >/dev/null 2>&1
  set -a; . "$B/s3/env"; set +a
fi
export EPHEMERA_S3_ENDPOINT="$EPHEMERA_TEST_S3_ENDPOINT"
run="bench-broker-$(basename "$B" | tr 'A-Z.' 'a-z-')"
direct="s3://$EPHEMERA_TEST_S3_BUCKET/$run-direct"
fronted="s3://$EPHEMERA_TEST_S3_BUCKET/$run-broker"

# The set: 16 files of random bytes (zstd cannot shrink them), 1 GiB in all by default.
mkdir -p "$B/src/target"
for i in $(seq 1 16); do head -c $((mib << 16)) /dev/urandom > "$B/src/target/f$i"; done
printf 'name = "build"\nvariety = "basic"\n\n[[persist]]\nname = "deps"\nrules = ["target"]\nepoch = 1\ncache_key = "deps"\nlevel = 1\n' > "$B/job.toml"

"$E" token --keygen "$B/broker.pem" 2>/dev/null
"$E" --store "$fronted" serve --listen 127.0.0.1:0 --port-file "$B/port" --signing-key "$B/broker.pem" \
  --rate 0 -q 2>"$B/broker.log" &
broker_pid=$!
for _ in $(seq 100); do [ -s "$B/port" ] && break; sleep 0.1; done
broker="http://127.0.0.1:$(cat "$B/port")"
export GITHUB_REPOSITORY=acme/widget GITHUB_BRANCH=feature EPHEMERA_EVENT=pull_request GITHUB_SHA=feedface

cpu() { awk '{print $14 + $15}' "/proc/$broker_pid/stat"; }
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# hook WHO PHASE MACHINE STORE [ENV...]: one timed hook on a machine of its own.
hook() {
  local who=$1 phase=$2 m="$B/$3" store=$4; shift 4
  local status=(); [ "$phase" = post ] && status=(--status 0)
  /usr/bin/time -f "$who-$phase %e" -a -o "$B/t" env "$@" "$E" "$phase" --job "$B/job.toml" \
    "${status[@]}" --store "$store" --root "$m" --workdir /work/job --home /home/build \
    --state-dir "$m/state" -q
}
: > "$B/t"
ticks=0
for r in $(seq 1 "$rounds"); do
  for who in direct broker; do
    rm -rf "$B/up" "$B/down"
    mkdir -p "$B/up/work/job" "$B/up/home/build" "$B/down/work/job" "$B/down/home/build"
    cp -a "$B/src/target" "$B/up/work/job/"
    export BUILDOMAT_JOB_ID="bench-$r-$who"
    if [ $who = direct ]; then
      hook direct post up "$direct"
      hook direct pre down "$direct"
      aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" s3 rm --quiet --recursive "$direct/" >/dev/null 2>&1 || true
    else
      token=$("$E" token --key "$B/broker.pem" --repository acme/widget --branch feature \
        --event pull_request --job-id "$BUILDOMAT_JOB_ID")
      before=$(cpu)
      hook broker post up "$broker" -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY EPHEMERA_TOKEN="$token"
      hook broker pre down "$broker" -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY EPHEMERA_TOKEN="$token"
      ticks=$(( ticks + $(cpu) - before ))
      aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" s3 rm --quiet --recursive "$fronted/" >/dev/null 2>&1 || true
    fi
    diff -r "$B/src/target" "$B/down/work/job/target" >/dev/null || { echo "$who: the restore differs"; exit 1; }
  done
done
hz=$(getconf CLK_TCK)
# Every round's seconds, in the order they ran, beside the medians: a loaded machine shows.
echo "rounds: $(tr '\n' ' ' < "$B/t")"
for phase in post pre; do
  d=$(grep "^direct-$phase " "$B/t" | cut -d' ' -f2 | med)
  b=$(grep "^broker-$phase " "$B/t" | cut -d' ' -f2 | med)
  echo "$phase $mib MiB: direct on RGW $d s, through the broker $b s, ratio broker/direct $(echo "$b $d" | awk '{printf "%.2f", $1 / $2}')x"
done
# Each round moves the set up and down through (or past) the broker.
echo "broker CPU: $(echo "$ticks $hz $rounds $mib" | awk '{printf "%.2f", $1 / $2 / (2 * $3 * $4 / 1024)}') s per GiB moved"
