# Shared by every integration script, sourced as `. "$(dirname "$0")/../lib.sh"` from its
# area folder: a scratch root per machine, a store chosen by $STORE_KIND (local or s3), and
# small assertions that say what was expected. raw_store.sh beside it reaches the objects.
set -euo pipefail

: "${EPHEMERA:?EPHEMERA must name the binary}"
SCRATCH=$(mktemp -d /tmp/ephemera-it.XXXXXX)
# keep_on_failure [STATUS]: keep the scratch dir when the script failed (STATUS, default $?).
keep_on_failure() {
  status=${1:-$?}
  if [ "$status" -ne 0 ]; then
    echo "FAILED (exit $status); scratch kept in $SCRATCH" >&2
  else
    rm -rf "$SCRATCH"
  fi
}
# on_exit COMMAND: run COMMAND (shell text) when the script ends, however it ends, before the
# scratch dir is kept or removed; the last registered runs first. Scripts register what they
# started here instead of replacing the EXIT trap, so one cleanup never drops another.
EXIT_HOOKS=()
on_exit() { EXIT_HOOKS=("$1" "${EXIT_HOOKS[@]}"); }
# The script's status is taken first and passed on: under set -e a trap stops at its first
# failing command, so nothing here may return it.
run_exit_hooks() {
  local status=$1 hook
  for hook in "${EXIT_HOOKS[@]}"; do
    eval "$hook" || true
  done
  keep_on_failure "$status"
}
trap 'run_exit_hooks "$?"' EXIT

case "${STORE_KIND:-local}" in
  local)
    STORE="$SCRATCH/store"
    ;;
  s3)
    : "${EPHEMERA_TEST_S3_ENDPOINT:?the S3 server of tests/run.sh is not running}"
    : "${EPHEMERA_TEST_S3_BUCKET:?the S3 server of tests/run.sh is not running}"
    export EPHEMERA_S3_ENDPOINT="$EPHEMERA_TEST_S3_ENDPOINT"
    STORE="s3://$EPHEMERA_TEST_S3_BUCKET/it-$(basename "$SCRATCH" | tr 'A-Z.' 'a-z-')"
    ;;
  *)
    echo "unknown STORE_KIND ${STORE_KIND}" >&2
    exit 2
    ;;
esac
export EPHEMERA_STORE="$STORE"
unset EPHEMERA_STATE_DIR EPHEMERA_JOB GITHUB_REPOSITORY GITHUB_BRANCH GITHUB_SHA BUILDOMAT_JOB_ID \
  EPHEMERA_EVENT EPHEMERA_UNTRUSTED EPHEMERA_ORIGIN EPHEMERA_SIGNING_KEY

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# s3obj ls|sums|get|put|rm|rmtree|size ARGS...: raw requests to the test S3 server, as a
# store writer makes them (tests/integration/s3obj.py says how; awscli cost 1.3 s of CPU a call).
s3obj() { /usr/bin/python3 "$SOURCE_ROOT/tests/integration/s3obj.py" "$@"; }

# start_fault_proxy [UPSTREAM]: tests/store/fault-proxy.py in front of UPSTREAM (default the
# S3 server of tests/run.sh), stopped when the script ends; ephemera's S3 endpoint becomes
# the proxy's. Sets PROXY_URL, PROXY_PID and P: the proxy logs one line a request to $P.log,
# and `fault MODE ARGS...` sets what it does to the next requests (the modes are in
# fault-proxy.py) and empties the log. Fails unless it listens within 10 s.
start_fault_proxy() {
  local upstream=${1:-${EPHEMERA_TEST_S3_ENDPOINT:?the S3 server of tests/run.sh is not running}}
  P="$SCRATCH/proxy"
  rm -f "$P.port" "$P.port.mode"
  /usr/bin/python3 "$SOURCE_ROOT/tests/store/fault-proxy.py" "$upstream" "$P.port" "$P.log" &
  PROXY_PID=$!
  on_exit stop_fault_proxy
  local _
  for _ in $(seq 1 100); do
    [ -s "$P.port" ] && break
    kill -0 "$PROXY_PID" 2>/dev/null || fail "the fault proxy did not start"
    sleep 0.1
  done
  [ -s "$P.port" ] || fail "the fault proxy did not listen within 10 s"
  PROXY_URL="http://127.0.0.1:$(cat "$P.port")"
  export EPHEMERA_S3_ENDPOINT="$PROXY_URL"
}
fault() { echo "$*" > "$P.port.mode"; : > "$P.log"; }
# stop_fault_proxy: the store goes away (nothing listens at PROXY_URL any more).
stop_fault_proxy() {
  [ -n "${PROXY_PID:-}" ] || return 0
  kill "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
  PROXY_PID=""
}

# deps_job FILE [LINE...]: the job most scripts use, one stanza 'deps' saving target/
# under key 'deps'; extra TOML lines go into the stanza.
deps_job() {
  local file=$1; shift
  {
    printf 'name = "build"\nvariety = "basic"\n\n[[persist]]\nname = "deps"\nrules = ["target"]\n'
    printf 'epoch = 1\ncache_key = "deps"\n'
    for line in "$@"; do printf '%s\n' "$line"; done
  } > "$file"
}

# machine NAME: a fresh pristine root with /work/job and /home/build.
machine() {
  M="$SCRATCH/$1"
  mkdir -p "$M/work/job" "$M/home/build"
}

# eph ARGS...: ephemera on the current machine $M, context from the CTX_* variables.
eph() {
  "$EPHEMERA" "$@" --root "$M" --workdir /work/job --home /home/build \
    --state-dir "$M/state"
}

# ctx BRANCH EVENT [JOB_ID]: the agent's context for the next calls.
ctx() {
  export GITHUB_REPOSITORY=acme/widget GITHUB_BRANCH="$1" EPHEMERA_EVENT="$2"
  export BUILDOMAT_JOB_ID="${3:-job-$RANDOM}" GITHUB_SHA=feedface
  [ -n "$1" ] || unset GITHUB_BRANCH
  [ -n "$2" ] || unset EPHEMERA_EVENT
}

# A tree listing with contents, modes, mtimes and link targets, for comparisons.
listing() {
  (cd "$1" && find . -mindepth 1 \( -path ./state -o -path './state/*' \) -prune -o \
    -printf '%y %m %T@ %p -> %l\n' | LC_ALL=C sort)
  (cd "$1" && find . -type f -not -path './state/*' -exec sha256sum {} + | LC_ALL=C sort)
}

report_json() { eph report --json; }

# result_of PHASE NAME: the result of the newest report entry for that stanza.
result_of() {
  report_json | /usr/bin/python3 -c '
import json, sys
phase, name = sys.argv[1], sys.argv[2]
r = json.load(sys.stdin)
hits = [e for e in r["entries"] if e["phase"] == phase and e["name"] == name]
print(hits[-1]["result"] if hits else "none")' "$1" "$2"
}

expect_result() {
  got=$(result_of "$1" "$2")
  [ "$got" = "$3" ] || fail "$1 '$2': expected $3, got $got"
}

validate_report() {
  report_json > "$SCRATCH/report.json"
  /usr/bin/python3 - "$SOURCE_ROOT/schema/report-v1.schema.json" "$SCRATCH/report.json" <<'PY'
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))
PY
}
