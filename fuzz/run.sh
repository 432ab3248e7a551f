#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after the other
# on one core, and prints one line per target from libFuzzer's final
# stats: executions, coverage (cov: edges, ft: features), corpus size.
# Exits non-zero when a target crashes, leaks, times out or runs out of
# memory; the input is then in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# libFuzzer's seed is FUZZ_SEED (default 1), so a run (CI's smoke included)
# replays the same mutations from the committed seeds and a failure can be
# reproduced; FUZZ_SEED=0 picks a random seed, for longer exploratory runs.
# FUZZ_RUNS=N stops each target after N inputs (SECONDS stays the upper
# bound): with a fixed seed and a fresh corpus, such a run executes the same
# inputs on every machine, whatever its speed, so a CI smoke that passes here
# passes there. CI runs `FUZZ_RUNS=40000 fuzz/run.sh 120` on a fresh corpus.
#
# Needs nightly and cargo-fuzz (see README.md).
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
./seed.sh
cargo +nightly fuzz build -O >/dev/null 2>logs.build || { cat logs.build >&2; exit 1; }
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p logs
failed=0
printf '%-14s %12s %8s %8s %8s %s\n' target execs exec/s cov ft result
for t in "${targets[@]}"; do
  mkdir -p "artifacts/$t" "corpus/$t"
  "$bin/$t" -seed="${FUZZ_SEED:-1}" -max_total_time="$secs" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" "corpus/$t" \
    >"logs/$t.log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log")
  last=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  result=ok
  if [ $rc -ne 0 ]; then
    result="FAILED (rc $rc, see fuzz/logs/$t.log and fuzz/artifacts/$t/)"
    failed=1
  fi
  printf '%-14s %12s %8s %8s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
exit $failed
