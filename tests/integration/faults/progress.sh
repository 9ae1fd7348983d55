# Progress you can see in a CI log: a download longer than two seconds, with stderr not a
# terminal, prints a plain line every few seconds with the bytes so far, of how many, the
# rate and the time left; no terminal control bytes reach the log. A fault proxy slows the
# store's archive downloads.
. "$(dirname "$0")/../lib.sh"
# The proxy slows single-archive downloads: these saves are that format.
export EPHEMERA_FORMAT=archive
[ "${STORE_KIND}" = s3 ] || fail "this test needs STORE_KIND=s3"

start_fault_proxy

JOB="$SCRATCH/job.toml"
deps_job "$JOB"
machine saver; ctx feature pull_request job-save
mkdir -p "$M/work/job/target"
head -c 1500000 /dev/urandom > "$M/work/job/target/blob"
eph post --job "$JOB" --status 0 2> "$SCRATCH/save.err" || fail "post failed: $(cat "$SCRATCH/save.err")"
expect_result post deps saved
# A quick save shows no progress at all, only its summary line.
if grep -q "uploading\|packing" "$SCRATCH/save.err"; then
  fail "a save of well under two seconds printed progress: $(cat "$SCRATCH/save.err")"
fi

# 1.5 MB at 150 kB/s: about ten seconds, so lines at 2 s and 7 s at least.
fault slow 150000
machine slow; ctx feature pull_request job-slow
eph pre --job "$JOB" 2> "$SCRATCH/slow.err" < /dev/null || fail "pre failed: $(cat "$SCRATCH/slow.err")"
expect_result pre deps hit
grep -q "slow" "$P.log" || fail "the proxy never slowed a download: $(cat "$P.log")"
pattern="^ephemera: restoring 'deps': downloading: [0-9.]+ [KM]iB of 1\.4 MiB \([0-9]+%\), [0-9]+\.[0-9] [kM]B/s, [0-9]+:[0-9]{2} left$"
lines=$(grep -cE "$pattern" "$SCRATCH/slow.err" || true)
[ "$lines" -ge 2 ] || fail "expected periodic progress lines in the log, got $lines: $(cat "$SCRATCH/slow.err")"
# The bytes only grow from one line to the next.
grep -E "$pattern" "$SCRATCH/slow.err" | /usr/bin/python3 -c '
import re, sys
units = {"B": 1, "KiB": 1024, "MiB": 1 << 20}
done = []
for line in sys.stdin:
    n, u = re.search(r"downloading: ([0-9.]+) (\S+) of", line).groups()
    done.append(float(n) * units[u])
assert done == sorted(done) and done[0] < done[-1], done' || fail "the progress lines do not advance"
if grep -q $'\r\|\033' "$SCRATCH/slow.err"; then
  fail "a log got terminal control bytes: $(cat -v "$SCRATCH/slow.err")"
fi
grep "downloading" "$SCRATCH/slow.err"
