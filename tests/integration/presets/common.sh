# Shared by the preset tests: a job of one preset stanza, and jobs run as the agent runs them
# (pre, the build in the checkout with $HOME the job's home, post) on pristine machines.
. "$(dirname "$0")/../lib.sh"

JOB="$SCRATCH/job.toml"

# preset_job PRESET [LINE...]: one stanza of that preset, epoch 1; extra lines go into it.
preset_job() {
  local preset=$1; shift
  {
    printf 'name = "build"\nvariety = "basic"\n\n[[persist]]\npreset = "%s"\nepoch = 1\n' "$preset"
    for line in "$@"; do printf '%s\n' "$line"; done
  } > "$JOB"
}

# run_job NAME SRC CMD...: on a pristine machine NAME, SRC copied into the checkout: pre, CMD
# in the checkout (HOME the job's home), post. CMD's output is in $SCRATCH/NAME.log.
run_job() {
  local name=$1 src=$2; shift 2
  machine "$name"
  cp -a "$src/." "$M/work/job/"
  eph pre --job "$JOB"
  if ! (cd "$M/work/job" && HOME="$M/home/build" "$@") > "$SCRATCH/$name.log" 2>&1; then
    cat "$SCRATCH/$name.log" >&2
    fail "the build on machine '$name' failed"
  fi
  eph post --job "$JOB" --status 0
}
