#!/bin/sh
# A stand-in CI agent: runs `ephemera pre`, the job script, `ephemera post` with the job's
# exit status, then prints the report. The job runs in the workdir with $HOME set; with
# EPHEMERA_ROOT set, every job-visible path lives under that scratch directory.
#
# The job's environment gets what in-job `ephemera restore` and `ephemera persist` need to
# find this job's state: EPHEMERA_JOB (the job file), EPHEMERA_STATE_DIR (chosen here when
# the caller did not), and the directory of $EPHEMERA first on PATH.
#
# usage: examples/agent.sh JOB_SCRIPT
# environment: EPHEMERA (the binary), EPHEMERA_ROOT (default /), JOB_WORKDIR (job-visible,
# default the current directory), JOB_HOME (job-visible, default $HOME), EPHEMERA_STATE_DIR
# (default /tmp/ephemera-state/<job id> under the root), and the context variables ephemera
# reads itself: GITHUB_REPOSITORY, GITHUB_BRANCH, GITHUB_SHA, BUILDOMAT_JOB_ID,
# EPHEMERA_EVENT, EPHEMERA_UNTRUSTED, EPHEMERA_ORIGIN, EPHEMERA_STORE.
set -u
job=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ephemera=${EPHEMERA:-ephemera}
root=${EPHEMERA_ROOT:-/}
workdir=${JOB_WORKDIR:-$(pwd)}
home=${JOB_HOME:-$HOME}
host() { if [ "$root" = / ]; then echo "$1"; else echo "$root$1"; fi; }
state=${EPHEMERA_STATE_DIR:-$(host "/tmp/ephemera-state/${BUILDOMAT_JOB_ID:-agent-$$}")}

common="--root $root --workdir $workdir --home $home --state-dir $state"
# shellcheck disable=SC2086
"$ephemera" pre --job "$job" $common || echo "agent: ephemera pre failed ($?); running cold"

mkdir -p "$(host "$workdir")"
case "$ephemera" in
  */*) bindir=$(cd "$(dirname "$ephemera")" && pwd); PATH="$bindir:$PATH" ;;
esac
(
  cd "$(host "$workdir")" &&
    HOME=$(host "$home") EPHEMERA_JOB="$job" EPHEMERA_STATE_DIR="$state" PATH="$PATH" bash "$job"
)
status=$?

# shellcheck disable=SC2086
"$ephemera" post --job "$job" --status "$status" $common || echo "agent: ephemera post failed"
# shellcheck disable=SC2086
"$ephemera" report $common
exit "$status"
