#!/usr/bin/env bash
# Runs the common/ core benchmarks with their peers (same binary, same run): report ingestion
# (ParseReportBatch = decode + validate, against protobuf decode alone) and log formatting
# (kpiscale logfmt/JSON against spdlog's default pattern), with 5 repetitions; prints per
# benchmark the median and min–max of CPU ns/op and wall ns/op as a Markdown table.
# Usage: bench/core/run.sh [BUILD_DIR]   (default: build; configured if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
reps=${KPISCALE_BENCH_REPETITIONS:-5}
if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKPISCALE_BUILD_BENCH=ON >/dev/null
fi
cmake --build "$build" --target kpiscale_core_bench -j 2 >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$build/bench/core/kpiscale_core_bench" --benchmark_repetitions="$reps" \
  --benchmark_min_time=0.3 --benchmark_format=json --benchmark_out="$out" \
  --benchmark_out_format=json >/dev/null
python3 - "$out" "$reps" <<'PY'
import json, statistics, sys
data = json.load(open(sys.argv[1]))
runs, order = {}, []
for b in data["benchmarks"]:
    if b.get("run_type") != "iteration":
        continue
    name = b["run_name"]
    if name not in runs:
        runs[name] = []
        order.append(name)
    runs[name].append(b)
ctx = data["context"]
print(f"host: {ctx.get('host_name')}, {ctx.get('num_cpus')} CPUs @ {ctx.get('mhz_per_cpu')} MHz, "
      f"load avg {', '.join(f'{x:.2f}' for x in ctx.get('load_avg', []))}, "
      f"{sys.argv[2]} repetitions")
print()
print("| benchmark | CPU ns/op median | CPU min–max | wall ns/op median | wall min–max | windows/s (CPU, median) | bytes |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name in order:
    rs = runs[name]
    cpu = [r["cpu_time"] for r in rs]
    wall = [r["real_time"] for r in rs]
    ips = [r["items_per_second"] for r in rs if "items_per_second" in r]
    rate = f"{statistics.median(ips):,.0f}" if ips else ""
    size = f"{rs[0]['bytes']:g}" if "bytes" in rs[0] else ""
    print(f"| {name} | {statistics.median(cpu):.1f} | {min(cpu):.1f}–{max(cpu):.1f} | "
          f"{statistics.median(wall):.1f} | {min(wall):.1f}–{max(wall):.1f} | {rate} | {size} |")
PY
