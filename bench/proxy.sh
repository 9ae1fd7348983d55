#!/bin/bash
# A restore of a ~1 GiB set through a caching proxy near the runners (nginx with
# examples/nginx-cache.conf) in front of Ceph RGW, against one straight from RGW, in one run:
# straight, through nginx cold (its cache emptied and nginx restarted each round), through
# nginx warm, and the floor: the save's objects downloaded alone (bench_store get, as a
# restore fetches an archive; no unpack, no files written). Medians of ROUNDS, each as a
# ratio to straight (below 1: faster than straight). The set is saved once; every round
# restores it. Starts an S3 server of its own, sized for the run; EPHEMERA_BENCH_S3_ENV=FILE
# uses the server that environment file names instead (a set of at most 1 GiB, stored under
# a prefix of this run's own and deleted at the end). EPHEMERA_FORMAT=archive measures single
# archives instead of content-addressed packs.
# usage: bash bench/proxy.sh [ROUNDS]     (EPHEMERA_BENCH_MIB: the set's size, default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
rounds=${1:-3}
sh tools/install-deps.sh test >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
E="$top/build/ephemera"
tool="$top/build/bench/store/bench_store"
B=$(mktemp -d /tmp/ephemera-proxybench.XXXXXX)
own_s3=
nginx_pid=
stop_nginx() {
  if [ -n "$nginx_pid" ]; then
    kill "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=
  fi
}
cleanup() {
  stop_nginx
  if [ -n "$own_s3" ]; then
    sh tests/store/s3-server.sh stop "$B/s3" >/dev/null 2>&1
  elif [ -n "${store:-}" ]; then
    aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" s3 rm --quiet --recursive "$store/" >/dev/null 2>&1
  fi
  rm -rf "$B"
  return 0
}
trap cleanup EXIT
mib=${EPHEMERA_BENCH_MIB:-1024}
if [ -n "${EPHEMERA_BENCH_S3_ENV:-}" ]; then
  [ "$mib" -le 1024 ] || { echo "a shared S3 server has no room for $mib MiB" >&2; exit 2; }
  set -a; . "$EPHEMERA_BENCH_S3_ENV"; set +a
else
  own_s3=1
  EPHEMERA_S3_MEMSTORE_BYTES=$(( (mib >> 10) + 2 << 30 )) \
    sh tests/store/s3-server.sh start "$B/s3" >/dev/null 2>&1
  set -a; . "$B/s3/env"; set +a
fi
export AWS_PAGER=""
aws() { /usr/bin/aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" "$@"; }
straight="$EPHEMERA_TEST_S3_ENDPOINT"
bucket=$EPHEMERA_TEST_S3_BUCKET
prefix="bench-proxy-$(basename "$B" | tr 'A-Z.' 'a-z-')"
store="s3://$bucket/$prefix"
export EPHEMERA_STORE="$store" EPHEMERA_S3_ENDPOINT="$straight"
export GITHUB_REPOSITORY=acme/bench GITHUB_BRANCH=feature EPHEMERA_EVENT=pull_request GITHUB_SHA=feedface
unset EPHEMERA_SIGNING_KEY EPHEMERA_STATE_DIR EPHEMERA_UNTRUSTED

# The set: 7/8 in 16 MiB files of random bytes (build outputs, which compress little), 1/8 in
# 4 KiB text files (sources, metadata), so that both transfer and file creation count.
printf 'name = "bench"\nvariety = "basic"\n[[persist]]\nname = "set"\nrules = ["set"]\nepoch = 1\ncache_key = "k"\nlevel = 1\n' > "$B/job.toml"
machine() { rm -rf "$B/m"; mkdir -p "$B/m/work/job" "$B/m/home/build"; }
hook() { "$E" "$@" --root "$B/m" --workdir /work/job --home /home/build --state-dir "$B/m/state"; }
machine
big=$(( mib * 7 / 8 / 16 )) small=$(( mib * 1024 / 8 / 4 ))
mkdir -p "$B/m/work/job/set/big" "$B/m/work/job/set/small"
for i in $(seq 1 "$big"); do head -c 16777216 /dev/urandom > "$B/m/work/job/set/big/b$i"; done
/usr/bin/python3 - "$B/m/work/job/set/small" "$small" <<'PY'
import os, random, sys
words = [f"word{i}" for i in range(5000)]
rng = random.Random(1)
for i in range(int(sys.argv[2])):
    d = os.path.join(sys.argv[1], f"d{i % 64}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.txt"), "w") as f:
        text = " ".join(rng.choice(words) for _ in range(700))
        f.write(text[:4096])
PY
(cd "$B/m/work/job" && find set -type f -exec sha256sum {} + | LC_ALL=C sort) > "$B/want"
files=$(wc -l < "$B/want")
hook post --job "$B/job.toml" --status 0 2> "$B/save.err" || { cat "$B/save.err"; exit 1; }
grep -q "saved 'set'" "$B/save.err" || { cat "$B/save.err"; exit 1; }
case "${EPHEMERA_FORMAT:-cas1}" in
  archive) objects=$(aws s3 ls --recursive "$store/v1/" | awk '/\.tar\.zst$/ {print $4}') ;;
  *) objects=$(aws s3 ls --recursive "$store/cas1/" | awk '/\.pack$/ {print $4}') ;;
esac
stored=$(aws s3 ls --recursive --summarize "$store/" | awk '/Total Size/ {print $3}')

# nginx on a free port in front of the straight endpoint, its cache empty.
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=www-data
[ "$(id -u)" -eq 0 ] && user=root
conf=$(sh examples/nginx-cache.sh "$B/nginx" "${straight#http://}" "127.0.0.1:$port" 4g "$user")
start_nginx() {
  nginx -p "$B/nginx" -c "$conf" -g 'daemon off;' 2>> "$B/nginx/stderr" &
  nginx_pid=$!
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0
    sleep 0.1
  done
  cat "$B/nginx/stderr" >&2
  exit 1
}

now() { date +%s.%N; }
# restore NAME ENDPOINT: one restore on a fresh machine, checked byte for byte.
# Each timing starts with nothing waiting to be written back: the previous restore's GiB
# (and nginx's cache files) would otherwise be flushed during this one and stall its writes.
restore() {
  machine
  sync
  local t0 t1
  t0=$(now)
  EPHEMERA_S3_ENDPOINT=$2 hook pre --job "$B/job.toml" 2> "$B/pre.err"
  t1=$(now)
  grep -q "restored 'set'" "$B/pre.err" || { echo "$1: not restored"; cat "$B/pre.err"; exit 1; }
  (cd "$B/m/work/job" && find set -type f -exec sha256sum {} + | LC_ALL=C sort) | cmp -s - "$B/want" ||
    { echo "$1: the restore differs"; exit 1; }
  echo "$1 $(echo "$t0 $t1" | awk '{print $2 - $1}')" >> "$B/t"
}
download() {
  local t0 t1 o
  sync
  t0=$(now)
  for o in $objects; do "$tool" get "$store?endpoint=$straight" "${o#"$prefix"/}" "$B/obj"; done
  t1=$(now)
  rm -f "$B/obj"
  echo "floor $(echo "$t0 $t1" | awk '{print $2 - $1}')" >> "$B/t"
}
: > "$B/t"
for r in $(seq 1 "$rounds"); do
  restore straight "$straight"
  stop_nginx
  rm -rf "$B/nginx/cache"/*
  start_nginx
  restore cold "http://127.0.0.1:$port"
  restore warm "http://127.0.0.1:$port"
  download
done
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
s=$(grep '^straight ' "$B/t" | cut -d' ' -f2 | med)
echo "restore of $(( mib )) MiB set ($files files; ${EPHEMERA_FORMAT:-cas1}; $(( stored >> 20 )) MiB stored," \
  "$(echo "$objects" | wc -w) objects), S3 at $straight, median of $rounds:"
for what in straight cold warm floor; do
  t=$(grep "^$what " "$B/t" | cut -d' ' -f2 | med)
  case $what in
    straight) label="straight from RGW" ;;
    cold) label="through nginx, cold" ;;
    warm) label="through nginx, warm" ;;
    floor) label="download alone (floor)" ;;
  esac
  printf '  %-24s %7.2f s  %5.2fx straight  %6.0f MB/s\n' "$label" "$t" \
    "$(echo "$t $s" | awk '{print $1 / $2}')" "$(echo "$stored $t" | awk '{print $1 / $2 / 1e6}')"
done
