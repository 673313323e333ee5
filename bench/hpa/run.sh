#!/usr/bin/env bash
# Times the HPA engine through the kpiscale command: every shared conformance case, and the
# documented 1500 s simulation. Prints the median and min–max of N runs (wall clock, ms).
# Usage: bench/hpa/run.sh [BUILD_DIR] [RUNS]
set -euo pipefail
build=${1:-build}
runs=${2:-7}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$build/cli/kpiscale"
cases=("$root"/../shared/reference/hpa-conformance/*.json)
measure() {
  local name=$1; shift
  local times=()
  for _ in $(seq "$runs"); do
    local t0=$(date +%s%N)
    "$@" > /dev/null
    local t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
  done
  sorted=($(printf '%s\n' "${times[@]}" | sort -n))
  printf '%-28s median %7.2f ms  min %7.2f  max %7.2f  (%d runs)\n' "$name" \
    "$(echo "${sorted[$((runs / 2))]} / 1000" | bc -l)" "$(echo "${sorted[0]} / 1000" | bc -l)" \
    "$(echo "${sorted[$((runs - 1))]} / 1000" | bc -l)" "$runs"
}
measure "conformance (106 cases)" "$bin" hpa conformance "${cases[@]}"
measure "simulate spike (100 ticks)" "$bin" simulate --hpa "$root/examples/hpa/ci-failure-agent-hpa.yaml" \
  --trace "$root/examples/hpa/traffic-spike.csv"
