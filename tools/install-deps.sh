#!/bin/sh
# Install, with apt-get, whatever a fresh Debian 12 machine lacks to build, test and demo
# ephemera. Does nothing when everything is present. Usage: sh tools/install-deps.sh [build|test]
set -eu
what=${1:-test}

build_pkgs="meson ninja-build pkg-config cmake g++ libtoml11-dev libre2-dev libarchive-dev
libcurl4-openssl-dev libssl-dev libzstd-dev libcli11-dev catch2 nlohmann-json3-dev libfmt-dev zstd tar
libcpp-httplib-dev"
# The test suite also runs real third-party peers: GNU tar and zstd, libarchive's bsdtar,
# awscli, a JSON Schema validator, curl, Ceph's RADOS Gateway as the S3 server, and
# libfaketime for writers whose clocks disagree, nginx as a caching proxy in front of the
# store (tests/integration/store/proxy_cache.sh, bench/proxy.sh; each runs an nginx of its
# own, and Debian's service is not needed).
test_pkgs="python3 python3-jsonschema libarchive-tools awscli curl radosgw ceph-mon ceph-osd
ceph-common uuid-runtime clang faketime nginx"
# The presets' real builds (tests/integration/presets, bench/presets.sh): Debian's cargo and
# rustc offline against the crates Debian ships, ccache, and npm (any npm on PATH will do:
# NodeSource's nodejs carries its own and conflicts with Debian's npm package).
test_pkgs="$test_pkgs cargo rustc ccache librust-cfg-if-dev librust-itoa-dev librust-memchr-dev
librust-ryu-dev librust-smallvec-dev"

pkgs=$build_pkgs
[ "$what" = test ] && pkgs="$pkgs $test_pkgs"

missing=""
for p in $pkgs; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done
if [ "$what" = test ] && ! command -v npm > /dev/null 2>&1; then
  missing="$missing npm"
fi
[ -z "$missing" ] && exit 0

echo "installing:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing packages and not root: apt-get install$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
