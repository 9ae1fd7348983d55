#!/bin/sh
# A real S3 server for the tests: Ceph's RADOS Gateway on a one-host cluster (one mon, one
# OSD on the RAM-backed memstore) listening on 127.0.0.1. RGW verifies SigV4 signatures and
# payload hashes, so signing bugs fail the tests instead of passing unseen.
#
# usage: sh tests/store/s3-server.sh start DIR   (writes DIR/env: endpoint, bucket, credentials)
#        sh tests/store/s3-server.sh stop DIR
set -eu
cmd=$1
D=$2

stop() {
  for pidfile in "$D"/run/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$pid" 2>/dev/null || true
  done
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

fail() {
  echo "s3-server: $*" >&2
  for log in "$D"/log/*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
  done
  stop
  exit 1
}

mkdir -p "$D/run" "$D/log" "$D/mon" "$D/osd"
MP=$(free_port)
PORT=$(free_port)
FSID=$(cat /proc/sys/kernel/random/uuid)
C="$D/ceph.conf"
: > "$D/keyring"
cat > "$C" <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MP
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
ms bind ipv6 = false
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
mon data = $D/mon/\$name
osd data = $D/osd/\$name
keyring = $D/keyring
osd objectstore = memstore
memstore device bytes = ${EPHEMERA_S3_MEMSTORE_BYTES:-2147483648}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail crit = 0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT
CONF

timeout 30 monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MP]" "$D/monmap" >/dev/null 2>&1 \
  || fail "monmaptool failed"
timeout 60 ceph-mon -c "$C" --mkfs -i a --monmap "$D/monmap" >/dev/null 2>&1 || fail "ceph-mon --mkfs failed"
timeout 60 ceph-mon -c "$C" -i a >/dev/null 2>&1 || fail "ceph-mon did not start"
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
ID=$(timeout 60 ceph -c "$C" osd new "$OSD_UUID" 2>/dev/null) || fail "ceph osd new failed"
mkdir -p "$D/osd/osd.$ID"
timeout 60 ceph-osd -c "$C" -i "$ID" --mkfs --osd-uuid "$OSD_UUID" >/dev/null 2>&1 || fail "ceph-osd --mkfs failed"
timeout 60 ceph-osd -c "$C" -i "$ID" >/dev/null 2>&1 || fail "ceph-osd did not start"
timeout 90 radosgw -c "$C" -n client.rgw.a >/dev/null 2>&1 || fail "radosgw did not start"

i=0
until curl -s -o /dev/null "http://127.0.0.1:$PORT/"; do
  i=$((i + 1))
  [ $i -lt 600 ] || fail "radosgw does not answer on port $PORT"
  sleep 0.1
done

AK="EPH$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr 'a-f' 'A-F')"
SK=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
timeout 60 radosgw-admin -c "$C" user create --uid=ci --display-name=ci --access-key="$AK" \
  --secret-key="$SK" >/dev/null 2>&1 || fail "radosgw-admin user create failed"

printf '[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n' > "$D/aws-config"
cat > "$D/env" <<ENV
EPHEMERA_TEST_S3_ENDPOINT=http://127.0.0.1:$PORT
EPHEMERA_TEST_S3_BUCKET=ephemera-test
AWS_ACCESS_KEY_ID=$AK
AWS_SECRET_ACCESS_KEY=$SK
AWS_REGION=us-east-1
AWS_EC2_METADATA_DISABLED=true
AWS_SHARED_CREDENTIALS_FILE=/dev/null
AWS_CONFIG_FILE=$D/aws-config
ENV

# The first bucket creates RGW's pools; give it time.
i=0
until env $(cat "$D/env") timeout 60 /usr/bin/aws --endpoint-url "http://127.0.0.1:$PORT" \
  s3api create-bucket --bucket ephemera-test >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -lt 5 ] || fail "unable to create the test bucket"
  sleep 2
done
echo "s3-server: radosgw on 127.0.0.1:$PORT, bucket ephemera-test" >&2
