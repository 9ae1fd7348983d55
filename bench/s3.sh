#!/bin/sh
# Upload and download of a 1 GiB archive against the local S3 server (Ceph RGW, as the
# tests use), side by side with 'aws s3 cp' in the same run; medians and ratios.
# usage: sh bench/s3.sh [ROUNDS]
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
rounds=${1:-3}
sh tools/install-deps.sh test >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
B=$(mktemp -d /tmp/ephemera-s3bench.XXXXXX)
trap 'sh tests/store/s3-server.sh stop "$B/s3" >/dev/null 2>&1 || true; rm -rf "$B"' EXIT
# RGW frees deleted objects hours later: give its RAM device room for every round.
EPHEMERA_S3_MEMSTORE_BYTES=$(( (2 * rounds + 2) << 30 )) sh tests/store/s3-server.sh start "$B/s3" >/dev/null 2>&1
set -a; . "$B/s3/env"; set +a
export AWS_PAGER=""
tool="$top/build/bench/store/bench_store"
url="s3://$EPHEMERA_TEST_S3_BUCKET/bench?endpoint=$EPHEMERA_TEST_S3_ENDPOINT"
aws() { /usr/bin/aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" "$@"; }
head -c 1073741824 /dev/urandom > "$B/a.tar.zst"
cat "$B/a.tar.zst" > /dev/null
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$B/t"
for r in $(seq 1 "$rounds"); do
  rm -f "$B/down"
  /usr/bin/time -f "aws-up %e" -a -o "$B/t" /usr/bin/aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" \
    s3 cp --quiet "$B/a.tar.zst" "s3://$EPHEMERA_TEST_S3_BUCKET/aws/a.tar.zst"
  /usr/bin/time -f "aws-down %e" -a -o "$B/t" /usr/bin/aws --endpoint-url "$EPHEMERA_TEST_S3_ENDPOINT" \
    s3 cp --quiet "s3://$EPHEMERA_TEST_S3_BUCKET/aws/a.tar.zst" "$B/down"
  cmp -s "$B/down" "$B/a.tar.zst" || { echo "awscli's download differs"; exit 1; }
  aws s3 rm --quiet "s3://$EPHEMERA_TEST_S3_BUCKET/aws/a.tar.zst"
  rm -f "$B/down"
  /usr/bin/time -f "eph-up %e" -a -o "$B/t" "$tool" put "$url" a.tar.zst "$B/a.tar.zst"
  /usr/bin/time -f "eph-down %e" -a -o "$B/t" "$tool" get "$url" a.tar.zst "$B/down"
  cmp -s "$B/down" "$B/a.tar.zst" || { echo "ephemera's download differs"; exit 1; }
  rm -f "$B/down"
  /usr/bin/time -f "eph-down1 %e" -a -o "$B/t" "$tool" get-stream "$url" a.tar.zst "$B/down"
  cmp -s "$B/down" "$B/a.tar.zst" || { echo "ephemera's single-stream download differs"; exit 1; }
  aws s3 rm --quiet "s3://$EPHEMERA_TEST_S3_BUCKET/bench/a.tar.zst"
  rm -f "$B/down"
done
for d in up down; do
  a=$(grep "^aws-$d " "$B/t" | cut -d' ' -f2 | med); e=$(grep "^eph-$d " "$B/t" | cut -d' ' -f2 | med)
  echo "$d 1 GiB: aws s3 cp $a s, ephemera $e s, ratio aws/ephemera $(echo "$a $e" | awk '{printf "%.2f", $1 / $2}')x (above 1: ephemera is faster)"
done
one=$(grep "^eph-down1 " "$B/t" | cut -d' ' -f2 | med)
echo "down 1 GiB in one GET (no ranges): ephemera $one s"
