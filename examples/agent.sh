#!/bin/sh
# A stand-in CI agent: runs `ephemera pre`, the job script, `ephemera post` with the job's
# exit status, then prints the report. The job runs in the workdir with $HOME set; with
# EPHEMERA_ROOT set, every job-visible path lives under that scratch directory.
#
# usage: examples/agent.sh JOB_SCRIPT
# environment: EPHEMERA (the binary), EPHEMERA_ROOT (default /), JOB_WORKDIR (job-visible,
# default the current directory), JOB_HOME (job-visible, default $HOME), and the context
# variables ephemera reads itself: GITHUB_REPOSITORY, GITHUB_BRANCH, GITHUB_SHA,
# BUILDOMAT_JOB_ID, EPHEMERA_EVENT, EPHEMERA_STORE, EPHEMERA_STATE_DIR.
set -u
job=$1
ephemera=${EPHEMERA:-ephemera}
root=${EPHEMERA_ROOT:-/}
workdir=${JOB_WORKDIR:-$(pwd)}
home=${JOB_HOME:-$HOME}
host() { if [ "$root" = / ]; then echo "$1"; else echo "$root$1"; fi; }

common="--root $root --workdir $workdir --home $home"
# shellcheck disable=SC2086
"$ephemera" pre --job "$job" $common || echo "agent: ephemera pre failed ($?); running cold"

mkdir -p "$(host "$workdir")"
( cd "$(host "$workdir")" && HOME=$(host "$home") bash "$job" )
status=$?

# shellcheck disable=SC2086
"$ephemera" post --job "$job" --status "$status" $common || echo "agent: ephemera post failed"
# shellcheck disable=SC2086
"$ephemera" report $common
exit "$status"
